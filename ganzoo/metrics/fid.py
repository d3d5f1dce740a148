"""FID with the values of pytorch-fid: same Inception, same preprocessing, float64 statistics.

Preprocessing (as pytorch-fid): PIL RGB uint8 -> /255 -> bilinear resize to 299 (align_corners=False,
no antialias) -> 2x-1 -> Inception -> global average pool. Features are accumulated on the device
in float64 (:class:`FeatureStats`); the Fréchet distance uses an eigen-decomposition in float64.
Statistics files are pytorch-fid's ``.npz`` (keys ``mu``, ``sigma``); folder statistics are cached
under a hash of the files, dims, weights file contents and preprocessing. Random weights
(``weights="random"``) warn, label the result :data:`~ganzoo.backbones.weights.NOT_COMPARABLE` and are
never cached.
"""
import hashlib
import json
import os

import numpy as np
import torch

from ..backbones.weights import NOT_COMPARABLE, file_digest, resolve, warn_if_random
from ..device import pick_device
from ..fileio import atomic_path
from ..modes import eval_mode
from ..registry import METRICS
from .frechet import FeatureStats, frechet_distance
from .images import (batches_of, image_loader, list_images, quantize, sample_images, strict_fp32,
                     to_unit)

STATS_VERSION = 2   # bump when anything that changes the statistics (or their cache key) changes
FID_DIMS = (64, 192, 768, 2048)


def default_cache_dir():
    return os.path.join(os.environ.get("GANZOO_CACHE", os.path.expanduser("~/.cache/ganzoo")), "fid_stats")


class FIDFeatures:
    """pytorch-fid's Inception on ``device``: uint8 or [0, 1] image batches -> (N, dims) float32 features."""

    def __init__(self, dims=2048, weights=None, device="cpu", channels_last=None):
        from ..backbones.inception import FID_WEIGHTS, FID_WEIGHTS_SOURCE, FIDInception
        self.device = torch.device(device)
        self.dims = dims
        self.random_weights = warn_if_random(weights, "the FID Inception")
        self.weights_id = "random" if self.random_weights else file_digest(
            resolve(FID_WEIGHTS, weights, FID_WEIGHTS_SOURCE))
        self.net = FIDInception(dims=dims, weights=weights).to(self.device)
        # channels_last: faster convolutions on CUDA and with oneDNN on CPU (measured ~1.2x on CPU)
        self.channels_last = True if channels_last is None else channels_last
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, images):
        if isinstance(images, (list, tuple)):   # mixed sizes: resize one by one, then one forward
            x = torch.cat([torch.nn.functional.interpolate(to_unit(i[None], self.device), size=(299, 299),
                                                           mode="bilinear", align_corners=False) for i in images])
        else:
            x = to_unit(images, self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with strict_fp32(self.device):
            return self.net(x)

    def describe(self):
        return {"backbone": "pytorch-fid inception", "weights": self.weights_id, "dims": self.dims,
                "resize": "bilinear-299-align_corners=False-no-antialias", "version": STATS_VERSION}


def check_enough(count, dims, what):
    if count < dims:
        smaller = [str(d) for d in FID_DIMS if d < dims]
        advice = f" or smaller dims ({', '.join(smaller)})" if smaller else ""
        raise ValueError(f"{what}: {count} images are fewer than the {dims} feature dims, so the covariance "
                         f"is singular and FID meaningless; use at least {dims} images{advice}")


def statistics(batches, features, what="images", check=True):
    """(mu, sigma) float64 numpy from an iterable of image batches (uint8 or [0, 1])."""
    stats = FeatureStats()
    for batch in batches:
        stats.update(features(batch))
    if check:
        check_enough(stats.count, features.dims, what)
    mu, sigma = stats.mean_cov()
    return mu.cpu().numpy(), sigma.cpu().numpy()


def save_stats(path, mu, sigma):
    """Write pytorch-fid-compatible ``.npz`` statistics atomically."""
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, mu=np.asarray(mu, dtype=np.float64), sigma=np.asarray(sigma, dtype=np.float64))


def load_stats(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"statistics file {path} not found")
    with np.load(path) as data:
        if "mu" not in data or "sigma" not in data:
            raise ValueError(f"{path} is not an FID statistics file (needs arrays 'mu' and 'sigma', "
                             f"has {sorted(data.keys())})")
        return data["mu"].astype(np.float64), data["sigma"].astype(np.float64)


def stats_key(description):
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


def cached(description, compute, cache_dir):
    """``compute()`` -> (mu, sigma), memoised in ``cache_dir`` under a hash of ``description``."""
    if not cache_dir:
        return compute()
    path = os.path.join(cache_dir, f"fid_stats-{stats_key(description)}.npz")
    if os.path.isfile(path):
        return load_stats(path)
    mu, sigma = compute()
    save_stats(path, mu, sigma)
    return mu, sigma


def path_statistics(path, features, batch_size=50, num_workers=None, cache_dir=None, check=True):
    """Statistics of an image folder or a ``.npz`` file; folders are cached (``cache_dir=False``: never).
    ``check=False`` allows fewer images than dims (only for tests and speed measurements)."""
    if str(path).endswith(".npz"):
        return load_stats(path)
    files = list_images(path)
    cache_dir = _cache_dir(cache_dir, features)
    description = dict(features.describe(), folder=os.path.abspath(path),
                       files=[(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files])

    def compute():
        if check:
            check_enough(len(files), features.dims, str(path))
        return statistics(image_loader(files, batch_size, features.device, num_workers), features, str(path),
                          check)

    return cached(description, compute, cache_dir)


def _cache_dir(cache_dir, features):
    """``cache_dir`` (None: the default folder), or False (no cache) for random weights: each random init
    gives other statistics, so they must never be read back."""
    if features.random_weights or cache_dir is False:
        return False
    return default_cache_dir() if cache_dir is None else cache_dir


def default_batch_size(device):
    return 256 if torch.device(device).type == "cuda" else 50


def fid_of_paths(path1, path2, dims=2048, weights=None, batch_size=None, device=None, num_workers=None,
                 cache_dir=None):
    """FID between two inputs, each an image folder or a ``.npz`` of statistics."""
    for path in (path1, path2):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found (expected an image folder or a .npz statistics file)")
    features = FIDFeatures(dims, weights, pick_device(device))
    batch_size = batch_size or default_batch_size(features.device)
    stats1 = path_statistics(path1, features, batch_size, num_workers, cache_dir)
    stats2 = path_statistics(path2, features, batch_size, num_workers, cache_dir)
    return frechet_distance(*stats1, *stats2, device=features.device)


@METRICS.register("fid")
class FID:
    """FID between ``num_samples`` model samples and the dataset's images (pytorch-fid values)."""

    def __init__(self, num_samples=2000, dims=2048, weights=None, batch_size=50, seed=0, real_stats=None,
                 cache_dir=None, num_workers=0):
        self.num_samples, self.dims, self.weights = num_samples, dims, weights
        self.batch_size, self.seed, self.real_stats = batch_size, seed, real_stats
        self.cache_dir, self.num_workers = cache_dir, num_workers
        self._features = None
        self._real = {}

    def features(self, device):
        if self._features is None or self._features.device != torch.device(device):
            self._features = FIDFeatures(self.dims, self.weights, device)
        return self._features

    def real_statistics(self, dataset, features):
        if self.real_stats:
            return load_stats(self.real_stats)
        count = min(self.num_samples, len(dataset))
        key = (id(dataset), count)
        if key not in self._real:
            subset = torch.utils.data.Subset(dataset, range(count))
            batches = (quantize(b["image"]) for b in batches_of(subset, self.batch_size, count, self.num_workers))
            config = getattr(dataset, "cfg", None) or getattr(dataset, "config", None)
            description = dict(features.describe(), dataset=type(dataset).__name__, config=config, count=count)
            cache_dir = _cache_dir(self.cache_dir, features) if config is not None else False
            self._real[key] = cached(json.loads(json.dumps(description, default=str)),
                                     lambda: statistics(batches, features, "dataset images"), cache_dir)
        return self._real[key]

    def __call__(self, model, dataset, device):
        features = self.features(device)
        real = self.real_statistics(dataset, features)
        with eval_mode(model):
            fakes = (quantize(sample_images(model, batch, device, self.seed + i))
                     for i, batch in enumerate(batches_of(dataset, self.batch_size, self.num_samples)))
            fake = statistics(_take(fakes, self.num_samples), features, "model samples")
        result = {"fid": frechet_distance(*fake, *real, device=features.device)}
        return {**result, "fid_warning": NOT_COMPARABLE} if features.random_weights else result


def _take(batches, count):
    """Trim an iterable of batches to ``count`` items in total."""
    seen = 0
    for batch in batches:
        if seen >= count:
            return
        batch = batch[:count - seen]
        seen += len(batch)
        yield batch
