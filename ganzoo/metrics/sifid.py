"""SIFID (SinGAN, Shaham et al. 2019): per image pair, the Fréchet distance between the distributions
of early Inception features over the pixels of a real and a fake image (each pixel one sample).

As the official ``SIFID/sifid_score.py``: torchvision's ImageNet Inception v3, features of
Conv2d_1a..Conv2d_2b (64 channels) without resizing, input ``2x-1`` of [0, 1] pixels, per-pair scores
and their mean. Differences: images are read with PIL (the official matplotlib reader divides PNGs
by 255 twice), pairs are matched by identical file name (what the official README asks for; the
script zips the two glob orders), and statistics are float64 and batched on the device.
"""
import re

import torch

from ..models.base import eval_mode
from ..registry import METRICS
from .frechet import frechet_distance, spatial_stats
from .images import batches_of, quantize, read_image, sample_images, strict_fp32, to_unit


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def pair_files(real_dir, fake_dir, suffix="jpg"):
    """[(name, real_path, fake_path)] matched by identical file name; one-line error for unmatched files."""
    import pathlib
    real, fake = pathlib.Path(real_dir), pathlib.Path(fake_dir)
    for folder in (real, fake):
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder {folder} not found")
    suffix = suffix.lstrip(".")
    real_names = {p.name for p in real.glob(f"*.{suffix}")}
    fake_names = {p.name for p in fake.glob(f"*.{suffix}")}
    if not real_names and not fake_names:
        raise ValueError(f"no *.{suffix} images in {real} or {fake} (set --images_suffix)")

    def listing(names):
        names = sorted(names, key=_natural_key)
        return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")

    problems = []
    if real_names - fake_names:
        problems.append(f"no fake image for {listing(real_names - fake_names)} (in {real})")
    if fake_names - real_names:
        problems.append(f"no real image for {listing(fake_names - real_names)} (in {fake})")
    if problems:
        raise ValueError("unpaired images: " + "; ".join(problems))
    return [(name, real / name, fake / name) for name in sorted(real_names, key=_natural_key)]


class SIFIDFeatures:
    """SinGAN's Inception layers on ``device``: image batches in [0, 1] -> per-image (mu, sigma) float64."""

    def __init__(self, dims=64, weights=None, device="cpu"):
        from ..backbones.inception import SIFIDInception
        self.device = torch.device(device)
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


def sifid_of_folders(real_dir, fake_dir, suffix="jpg", dims=64, weights=None, device=None, batch_size=16):
    """{name: score} for every pair of same-named images, in natural name order."""
    pairs = pair_files(real_dir, fake_dir, suffix)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    features = SIFIDFeatures(dims, weights, device)
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
        return {"sifid": float(torch.cat(scores)[:self.num_samples].mean())}
