"""SinGAN studio actions as plain functions: uint8 numpy images in, uint8 HxWx3 images (or a GIF path) out.

Each makes the call ``tools/singan.py <app>`` makes (:mod:`ganzoo.cli.singan`), with the image a file
would give (:func:`ganzoo.data.single_image.load_image`), so a seed gives the CLI's picture.
"""
import os

import numpy as np
import torch

from ganzoo.apps import singan as apps
from ganzoo.studio.handlers import singan_random_samples, to_rgb_uint8  # noqa: F401 (random samples live there)
from ganzoo.studio.uploads import check_image, results_folder


def image_tensor(array, what="image"):
    """HxW / HxWx3 uint8 -> (1, 3, H, W) float in [-1, 1], the values ``load_image`` reads from a PNG."""
    array = check_image(array, what).astype(np.float64) / 255.0
    return torch.from_numpy(((array - 0.5) * 2).transpose(2, 0, 1).copy()).float().unsqueeze(0)


def injection_scales(model):
    """(first, last) injection scale a user image can enter at (1..N for SinGAN)."""
    scales = model.injection_scales
    if not len(scales):
        raise ValueError("this model has a single scale: no injection scale for harmonization, editing or paint")
    return scales[0], scales[-1]


def _seeded(seed):
    seed = int(seed)
    torch.manual_seed(seed)  # as the CLI does before every app
    return seed


def _mask_tensor(mask):
    if not np.asarray(mask).any():
        raise ValueError("the mask is empty: brush over the part to change")
    return image_tensor(mask, "mask")


def harmonize(model, image, mask, scale, seed=0, radius=7):
    """``tools/singan.py harmonization``: the pasted object (mask, 255 = object) blended into the style."""
    seed = _seeded(seed)
    out = apps.harmonization(model, image_tensor(image), _mask_tensor(mask), int(scale), seed, int(radius))
    return to_rgb_uint8(out[0])


def edit(model, image, mask, scale, seed=0, radius=20):
    """``tools/singan.py editing``: (raw output, output blended into the image outside the mask)."""
    seed = _seeded(seed)
    raw, masked = apps.editing(model, image_tensor(image), _mask_tensor(mask), int(scale), seed, int(radius))
    return to_rgb_uint8(raw[0]), to_rgb_uint8(masked[0])


def paint_to_image(model, paint, scale, quantize=False, clusters=5, seed=0):
    """``tools/singan.py paint2image [--quantize --clusters K]``."""
    seed = _seeded(seed)
    out = apps.paint2image(model, image_tensor(paint, "paint"), int(scale), bool(quantize), int(clusters), seed)
    return to_rgb_uint8(out[0])


def super_resolution(model, factor=4.0, image=None, seed=0):
    """``tools/singan.py sr --factor F [--image I]`` (no image: the training image)."""
    seed = _seeded(seed)
    image = None if image is None else image_tensor(image)
    return to_rgb_uint8(apps.super_resolution(model, float(factor), image, seed)[0])


def animation(model, start_scale=2, alpha=0.1, beta=0.9, frames=100, fps=10, seed=0, folder=None):
    """``tools/singan.py animation``: the GIF written to ``folder`` (default: a fresh :func:`results_folder`)."""
    if int(frames) < 1 or float(fps) <= 0:
        raise ValueError(f"frames must be >= 1 and fps > 0, got {frames} and {fps}")
    seed = _seeded(seed)
    walk = apps.animation(model, int(start_scale), float(alpha), float(beta), int(frames), seed)
    folder = folder or results_folder()
    name = f"start_scale={int(start_scale)}_alpha={float(alpha):g}_beta={float(beta):g}.gif"
    return apps.save_gif(walk, os.path.join(folder, name), float(fps))
