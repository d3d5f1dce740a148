"""Patch sliced-Wasserstein distance (Karras et al. 2018, "Progressive Growing of GANs", §5): needs no
pretrained weights.

For each level of a Laplacian pyramid, random ``patch_size``² patches of both image sets are
normalised per channel (each set with its own mean and std), projected on random unit directions,
sorted, and compared (mean absolute difference of the sorted projections = the 1-D Wasserstein-1
distance per direction). Reported ×1000 like the paper, per level and averaged.
"""
import torch
import torch.nn.functional as F

from ..modes import eval_mode
from ..registry import METRICS
from .images import batches_of, sample_images

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur(x):
    kernel = (_BINOMIAL[:, None] * _BINOMIAL[None, :]).to(x)
    kernel = kernel.expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])


def laplacian_pyramid(images, min_resolution=16):
    """Band-pass levels, finest first, ending with the low-pass residual at >= ``min_resolution``."""
    levels, x = [], images
    while min(x.shape[-2:]) // 2 >= min_resolution:
        down = _blur(x)[..., ::2, ::2]
        up = F.interpolate(down, size=x.shape[-2:], mode="bilinear", align_corners=False)
        levels.append(x - up)
        x = down
    levels.append(x)
    return levels


def random_patches(images, count, size, generator):
    """``count`` random ``size``² patches per image -> (N * count, C * size²)."""
    n, c, h, w = images.shape
    if h < size or w < size:
        raise ValueError(f"images of {h}x{w} are smaller than the {size}x{size} SWD patches")
    ys = torch.randint(0, h - size + 1, (n, count), generator=generator).to(images.device)
    xs = torch.randint(0, w - size + 1, (n, count), generator=generator).to(images.device)
    offsets = torch.arange(size, device=images.device)
    rows = (ys[..., None] + offsets)[..., :, None].expand(n, count, size, size)
    cols = (xs[..., None] + offsets)[..., None, :].expand(n, count, size, size)
    flat = (rows * w + cols).reshape(n, 1, -1).expand(n, c, -1)
    picked = images.flatten(2).gather(2, flat).reshape(n, c, count, size * size)
    return picked.permute(0, 2, 1, 3).reshape(n * count, c * size * size)


def _normalise(descriptors, channels):
    d = descriptors.reshape(descriptors.shape[0], channels, -1)
    mean = d.mean(dim=(0, 2), keepdim=True)
    std = d.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
    return ((d - mean) / std).reshape(descriptors.shape[0], -1)


def sliced_wasserstein(a, b, num_projections=512, generator=None):
    """Mean over random unit directions of the W1 distance between the projected sets (same sizes)."""
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs equally many descriptors, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    directions = torch.randn(a.shape[1], num_projections, generator=generator).to(a)
    directions = directions / directions.norm(dim=0, keepdim=True)
    pa, _ = (a @ directions).sort(dim=0)
    pb, _ = (b @ directions).sort(dim=0)
    return (pa - pb).abs().mean()


def patch_swd(real, fake, patches_per_image=128, patch_size=7, num_projections=512, min_resolution=16,
              seed=0):
    """{resolution: SWD ×1000} per Laplacian level plus ``"mean"``; images (N, C, H, W), same N and size."""
    if real.shape != fake.shape:
        raise ValueError(f"patch_swd needs image sets of one shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for level_real, level_fake in zip(laplacian_pyramid(real.float(), min_resolution),
                                      laplacian_pyramid(fake.float(), min_resolution)):
        size = min(patch_size, *level_real.shape[-2:])
        channels = level_real.shape[1]
        a = _normalise(random_patches(level_real, patches_per_image, size, generator), channels)
        b = _normalise(random_patches(level_fake, patches_per_image, size, generator), channels)
        result[level_real.shape[-1]] = float(sliced_wasserstein(a, b, num_projections, generator) * 1000)
    result["mean"] = sum(result.values()) / len(result)
    return result


@METRICS.register("swd")
class SWD:
    """Patch sliced-Wasserstein distance between ``num_samples`` samples and dataset images (×1000)."""

    def __init__(self, num_samples=256, batch_size=16, patches_per_image=128, patch_size=7,
                 num_projections=512, min_resolution=16, seed=0):
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.options = dict(patches_per_image=patches_per_image, patch_size=patch_size,
                            num_projections=num_projections, min_resolution=min_resolution, seed=seed)

    def __call__(self, model, dataset, device):
        real, fake = [], []
        with eval_mode(model):
            for i, batch in enumerate(batches_of(dataset, self.batch_size, self.num_samples)):
                real.append(batch["image"].float())
                fake.append(sample_images(model, batch, device, self.seed + i).cpu())
        real, fake = torch.cat(real)[:self.num_samples], torch.cat(fake)[:self.num_samples]
        if real.shape[-2:] != fake.shape[-2:]:  # e.g. SinGAN trains on a downscaled copy of the dataset image
            real = F.interpolate(real, size=fake.shape[-2:], mode="bicubic", antialias=True,
                                 align_corners=False).clamp(-1, 1)
        levels = patch_swd(real.to(device), fake.to(device), **self.options)
        return {"swd": levels.pop("mean"), **{f"swd_{res}": value for res, value in levels.items()}}
