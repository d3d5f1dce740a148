"""SIFID (SinGAN, Shaham et al. 2019): per image pair, the Fréchet distance between the distributions
of early Inception features over the pixels of a real and a fake image (each pixel one sample).

As the official ``SIFID/sifid_score.py``: torchvision's ImageNet Inception v3, features of
Conv2d_1a..Conv2d_2b (64 channels) without resizing, input ``2x-1`` of [0, 1] pixels, per-pair scores
and their mean. Differences: images are read with PIL (the official matplotlib reader divides PNGs
by 255 twice), pairs are matched by file stem (the official README asks for the same names; the
script zips the two glob orders), and statistics are float64 and batched on the device. Random weights
(``weights="random"``) warn and label the result not comparable.
"""
import pathlib
import re

import torch

from ..backbones.weights import NOT_COMPARABLE, warn_if_random
from ..device import pick_device

from ..modes import eval_mode
from ..registry import METRICS
from .frechet import frechet_distance, spatial_stats
from .images import IMAGE_EXTENSIONS, batches_of, quantize, read_image, sample_images, strict_fp32, to_unit


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def pair_files(real_dir, fake_dir, suffix=None):
    """[(real file name, real_path, fake_path)] of the images of both folders, matched by file stem (``1.jpg`` with
    ``1.png``: ganzoo writes PNG, the official default is JPEG) or, with ``suffix``, only files ending in it.
    One-line errors for a missing folder, no images, two images of one stem, and unpaired images."""
    real, fake = pathlib.Path(real_dir), pathlib.Path(fake_dir)
    for folder in (real, fake):
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder {folder} not found")
    extensions = (suffix.lstrip("."),) if suffix else IMAGE_EXTENSIONS
    real_files, fake_files = _by_stem(real, extensions), _by_stem(fake, extensions)
    if not real_files and not fake_files:
        raise ValueError(f"no {' / '.join('*.' + e for e in extensions)} images in {real} or {fake}")

    def listing(stems, files):
        names = [files[stem].name for stem in sorted(stems, key=_natural_key)]
        return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")

    no_fake, no_real = real_files.keys() - fake_files.keys(), fake_files.keys() - real_files.keys()
    problems = []
    if no_fake:
        problems.append(f"no fake image for {listing(no_fake, real_files)} (in {real})")
    if no_real:
        problems.append(f"no real image for {listing(no_real, fake_files)} (in {fake})")
    if problems:
        raise ValueError("unpaired images: " + "; ".join(problems))
    stems = sorted(real_files, key=_natural_key)
    return [(real_files[stem].name, real_files[stem], fake_files[stem]) for stem in stems]


def _by_stem(folder, extensions):
    files = {}
    for path in sorted(p for ext in extensions for p in folder.glob(f"*.{ext}")):
        if path.stem in files:
            raise ValueError(f"{files[path.stem].name} and {path.name} in {folder} have the same stem: "
                             "keep one (or pass --images_suffix)")
        files[path.stem] = path
    return files


class SIFIDFeatures:
    """SinGAN's Inception layers on ``device``: image batches in [0, 1] -> per-image (mu, sigma) float64."""

    def __init__(self, dims=64, weights=None, device="cpu"):
        from ..backbones.inception import SIFIDInception
        self.device = torch.device(device)
        self.random_weights = warn_if_random(weights, "the SIFID Inception")
        self.net = SIFIDInception(dims=dims, weights=weights).to(self.device)
        self.net = self.net.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, images):
        x = to_unit(images, self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        with strict_fp32(self.device):
            return spatial_stats(self.net(x))


def sifid_of_tensors(real, fake, features):
    """Per-pair SIFID (N,) float64 for real/fake batches (uint8, or float in [0, 1]) of one size each."""
    mu_r, sigma_r = features(real)
    mu_f, sigma_f = features(fake)
    return frechet_distance(mu_r, sigma_r, mu_f, sigma_f).reshape(-1)


def image_statistics(paths, features, batch_size):
    """Per-image (mu, sigma) for image files of any sizes: same-size images go through the net together."""
    images = [read_image(path) for path in paths]
    by_shape = {}
    for index, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(index)
    mus, sigmas = [None] * len(images), [None] * len(images)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            mu, sigma = features(torch.stack([images[i] for i in chunk]))
            for j, i in enumerate(chunk):
                mus[i], sigmas[i] = mu[j], sigma[j]
    return torch.stack(mus), torch.stack(sigmas)


def sifid_of_folders(real_dir, fake_dir, suffix=None, dims=64, weights=None, device=None, batch_size=16):
    """{real file name: score} for every pair of images with the same stem, in natural order (see
    :func:`pair_files`)."""
    pairs = pair_files(real_dir, fake_dir, suffix)
    features = SIFIDFeatures(dims, weights, pick_device(device))
    mu_r, sigma_r = image_statistics([p[1] for p in pairs], features, batch_size)
    mu_f, sigma_f = image_statistics([p[2] for p in pairs], features, batch_size)
    scores = frechet_distance(mu_r, sigma_r, mu_f, sigma_f).reshape(-1).cpu().tolist()
    return {name: score for (name, _, _), score in zip(pairs, scores)}


@METRICS.register("sifid")
class SIFID:
    """Mean SIFID of ``num_samples`` model samples, each against the dataset image it was made for."""

    def __init__(self, num_samples=50, dims=64, weights=None, batch_size=10, seed=0):
        self.num_samples, self.dims, self.weights = num_samples, dims, weights
        self.batch_size, self.seed = batch_size, seed
        self._features = None

    def __call__(self, model, dataset, device):
        if self._features is None or self._features.device != torch.device(device):
            self._features = SIFIDFeatures(self.dims, self.weights, device)
        scores = []
        with eval_mode(model):
            for i, batch in enumerate(batches_of(dataset, self.batch_size, self.num_samples)):
                fake = quantize(sample_images(model, batch, device, self.seed + i))
                scores.append(sifid_of_tensors(quantize(batch["image"]), fake, self._features))
        result = {"sifid": float(torch.cat(scores)[:self.num_samples].mean())}
        return {**result, "sifid_warning": NOT_COMPARABLE} if self._features.random_weights else result
