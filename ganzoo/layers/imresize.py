"""MATLAB-style antialiased bicubic resize in pure torch (SinGAN's ``imresize``), GPU-capable.

Semantics (those of the resizer SinGAN's official code uses):

* Kernel: MATLAB cubic (a = -0.5), support 4. When downscaling (scale < 1) the kernel is stretched
  by 1/scale and scaled by scale (antialiasing); when upscaling it is used as is.
* Output size: ``ceil(in * scale)`` per dimension (not floor).
* Coordinates: output pixel ``i`` (1-based) samples input position ``i / scale + 0.5 * (1 - 1/scale)``,
  with the *nominal* scale, not ``out / in``. With ``size=`` the scale of a dimension is ``out / in``.
* Borders, ``border="official"``: taps left of / above the image get zero weight and the remaining
  weights are renormalised to sum 1 (the official code's unsigned-index wrap-around); taps right of /
  below the image are mirrored symmetrically (index L -> L-1, L+1 -> L-2, ...).
  ``border="symmetric"`` mirrors on both sides (MATLAB's own rule). The two differ only in the
  outermost 2 rows/columns at the top/left.
* ``quantize=True`` reproduces the official uint8 round trip: input in [-1, 1] becomes
  ``floor(255 * clamp((x + 1) / 2, 0, 1))`` (truncation, as numpy's ``astype(uint8)``), is resized in
  floating point, then mapped back with ``(y / 255 - 0.5) * 2``. Either way the output is clamped to
  [-1, 1] like the official code's ``norm``. Resizing is a separable pair of matrix products whose
  matrices are cached per (size, scale, device, dtype), so repeated same-shape calls allocate nothing new.
"""
import functools
import math

import torch

BORDERS = ("official", "symmetric")


def _cubic(x):
    ax = x.abs()
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def output_length(in_length, scale):
    """``ceil(in_length * scale)``: the output size rule of the official resizer."""
    return int(math.ceil(in_length * scale))


@functools.lru_cache(maxsize=512)
def resize_matrix(in_length, out_length, scale, antialias=True, border="official"):
    """Float64 CPU matrix ``(out_length, in_length)`` whose product with a column resizes it."""
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    if in_length < 1 or out_length < 1 or scale <= 0:
        raise ValueError(f"cannot resize length {in_length} to {out_length} with scale {scale}")
    stretch = antialias and scale < 1
    width = 4.0 / scale if stretch else 4.0
    f64 = torch.float64
    centers = torch.arange(1, out_length + 1, dtype=f64) / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(centers - width / 2)
    taps = left[:, None] + torch.arange(math.ceil(width) + 2, dtype=f64) - 1  # 0-based input indices
    distance = centers[:, None] - taps - 1
    weights = scale * _cubic(scale * distance) if stretch else _cubic(distance)
    if border == "official":
        weights = torch.where(taps < 0, torch.zeros((), dtype=f64), weights)
    total = weights.sum(1, keepdim=True)
    weights = weights / torch.where(total == 0, torch.ones((), dtype=f64), total)
    period = 2 * in_length
    index = torch.remainder(taps, period)
    index = torch.where(index >= in_length, period - 1 - index, index).long()
    rows = torch.arange(out_length)[:, None].expand_as(index)
    matrix = torch.zeros(out_length, in_length, dtype=f64)
    matrix.index_put_((rows.reshape(-1), index.reshape(-1)), weights.reshape(-1), accumulate=True)
    return matrix


_device_cache = {}


def _matrix_on(in_length, out_length, scale, antialias, border, device, dtype):
    key = (in_length, out_length, float(scale), antialias, border, str(device), dtype)
    matrix = _device_cache.get(key)
    if matrix is None:
        if len(_device_cache) > 1024:
            _device_cache.clear()
        matrix = resize_matrix(in_length, out_length, float(scale), antialias, border).to(device, dtype)
        _device_cache[key] = matrix
    return matrix


def imresize(x, scale=None, size=None, quantize=True, border="official", antialias=True):
    """Resize (N, C, H, W) images in [-1, 1] by ``scale`` (number or (sh, sw)) or to ``size`` (H, W)."""
    if x.dim() != 4:
        raise ValueError(f"imresize expects (N, C, H, W), got shape {tuple(x.shape)}")
    in_h, in_w = x.shape[-2:]
    if (scale is None) == (size is None):
        raise ValueError("imresize needs exactly one of scale= or size=")
    if size is not None:
        out_h, out_w = int(size[0]), int(size[1])
        scale_h, scale_w = out_h / in_h, out_w / in_w
    else:
        scale_h, scale_w = (scale, scale) if isinstance(scale, (int, float)) else scale
        out_h, out_w = output_length(in_h, scale_h), output_length(in_w, scale_w)
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(x.device.type, enabled=False):
        y = x.to(compute)
        if quantize:
            y = torch.floor(255 * ((y + 1) / 2).clamp(0, 1))
        # the official code resizes the dimension with the smaller scale first (H first on ties)
        order = ("h", "w") if scale_h <= scale_w else ("w", "h")
        for dim in order:
            if dim == "h" and scale_h != 1:
                y = torch.matmul(_matrix_on(in_h, out_h, scale_h, antialias, border, x.device, compute), y)
            if dim == "w" and scale_w != 1:
                y = torch.matmul(y, _matrix_on(in_w, out_w, scale_w, antialias, border, x.device, compute).t())
        if quantize:
            y = (y / 255 - 0.5) * 2
        y = y.clamp(-1, 1)
    return y.to(x.dtype)
