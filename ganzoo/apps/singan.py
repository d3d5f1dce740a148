"""SinGAN applications on a trained SinGAN or ConSinGAN model (what ``ganzoo.load`` returns).

Every function returns images as tensors in [-1, 1] on the model's device; :func:`save_image` and
:func:`save_gif` write them. Scale indices: 0 is the coarsest scale, ``model.num_scales - 1`` the
finest. An "injection scale" is where a user image enters the pyramid: 1..N for SinGAN, as in the official
``--harmonization_start_scale`` etc.; 0 for ConSinGAN (its stages pass features, so the image enters at the head).

The models' common interface used here: ``reals`` (the real pyramid), ``channels``, ``trained_scales``,
``injection_scales``, ``resize(x, scale=, size=)``, ``sample(n=, seed=, start_scale=, scale_v=, scale_h=)`` and
``inject(image, scale, generator)``; animation and super-resolution are SinGAN's only.
"""
import math

import torch
import torch.nn.functional as F

from ganzoo.fileio import atomic_path
from ganzoo.modes import eval_mode

# ----------------------------------------------------------------------------------- images

def to_uint8(image):
    """(C, H, W) in [-1, 1] -> (H, W, C) uint8 CPU tensor (rounded)."""
    image = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    return image.permute(1, 2, 0)


def _pil(image):
    from PIL import Image

    array = to_uint8(image).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def save_image(image, path):
    """Write one (C, H, W) or (1, C, H, W) image in [-1, 1] as PNG, atomically."""
    if image.dim() == 4:
        image = image[0]
    with atomic_path(path, ".png") as tmp:
        _pil(image).save(tmp)
    return path


def save_gif(frames, path, fps=10):
    """Write (T, C, H, W) frames in [-1, 1] as a looping GIF."""
    images = [_pil(frame).convert("RGB") for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                       loop=0)
    return path


# ----------------------------------------------------------------------------------- sampling

def random_samples(model, num=50, start_scale=0, seed=None, scale_v=1.0, scale_h=1.0):
    """``num`` random samples; scales below ``start_scale`` keep the training image's layout (z*).

    ``scale_v`` / ``scale_h`` stretch every scale's noise map (arbitrary sizes and aspect ratios);
    they need ``start_scale = 0`` (as in the official code).
    """
    _check_scale(model, start_scale, "start_scale", low=0)
    if (scale_v, scale_h) != (1.0, 1.0) and start_scale != 0:
        raise ValueError("arbitrary sizes (scale_v/scale_h != 1) need start_scale 0: z* exists only at the training size")
    if min(scale_v, scale_h) <= 0:
        raise ValueError(f"scale_v and scale_h must be positive, got {scale_v}, {scale_h}")
    return model.sample(n=num, seed=seed, start_scale=start_scale, scale_v=scale_v, scale_h=scale_h)


def _check_scale(model, scale, name, low=1):
    last = model.trained_scales - 1
    if not low <= scale <= last:
        raise ValueError(f"{name} must be in {low}..{last} for this {last + 1}-scale model, got {scale}")


def _device(model):
    return model.reals[0].device


def _generator(model, seed):
    return None if seed is None else torch.Generator(device=_device(model)).manual_seed(seed)


def _singan_only(model, app):
    if not hasattr(model, "forward_scale"):
        raise ValueError(f"{app} needs a SinGAN model, this is a {type(model).__name__} one")


def animation(model, start_scale=2, alpha=0.1, beta=0.9, frames=100, seed=None):
    """The paper's random walk in noise space from ``start_scale``: (frames, C, H, W).

    Per scale: ``z_{t} = alpha z* + (1 - alpha)(z_{t-1} + beta (z_{t-1} - z_{t-2}) + (1 - beta) eps)``
    starting from ``z_0 = 0.95 z* + 0.05 eps``; scales below ``start_scale`` use z*. Best with a model
    trained with ``model.noise_padding: true`` (the official animation training).
    """
    _singan_only(model, "animation")
    _check_scale(model, start_scale, "start_scale", low=0)
    generator = _generator(model, seed)
    walks = {}
    for k in range(start_scale, len(model.generators)):
        z_opt = model.z_rec[k]
        channels = 1 if k == 0 else model.channels

        def eps():
            e = torch.randn((1, channels) + tuple(z_opt.shape[2:]), device=z_opt.device, generator=generator)
            return e.expand_as(z_opt)

        prev1, prev2 = 0.95 * z_opt + 0.05 * eps(), z_opt
        steps = []
        for _ in range(frames):
            diff = beta * (prev1 - prev2) + (1 - beta) * eps()
            z = alpha * z_opt + (1 - alpha) * (prev1 + diff)
            prev2, prev1 = prev1, z
            steps.append(z)
        walks[k] = torch.cat(steps)
    with eval_mode(model), torch.no_grad():
        return model.synthesize(frames, start_scale=start_scale, noise_fn=lambda k, n, size: walks[k])


# ----------------------------------------------------------------------------------- injection

def _match_channels(model, image):
    """A user image (C', H, W) or (1, C', H, W) -> the model's device and channel count."""
    image = image.to(_device(model), torch.float32)
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.shape[1] == model.channels:
        return image
    if model.channels == 1:
        if image.shape[1] >= 3:
            return 0.299 * image[:, :1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3]
        return image[:, :1]
    return image[:, :1].expand(-1, model.channels, -1, -1) if image.shape[1] == 1 else image[:, :model.channels]


def _fit(model, image):
    """A user image -> the model's channels and finest-scale size (official ``imresize_to_shape``)."""
    image = _match_channels(model, image)
    size = tuple(model.reals[-1].shape[2:])
    return image if tuple(image.shape[2:]) == size else model.resize(image, size=size)


def _check_injection(model, scale, name="injection scale"):
    scales = model.injection_scales
    if scale not in scales:
        span = f"{scales[0]}..{scales[-1]}" if len(scales) else "none"
        raise ValueError(f"{name} must be in {span} for this {model.trained_scales}-scale "
                         f"{type(model).__name__} model, got {scale}")


def inject(model, image, scale, seed=None):
    """Feed ``image`` to the pyramid at injection scale ``scale`` and generate the finer scales."""
    _check_injection(model, scale)
    return model.inject(_fit(model, image), scale, _generator(model, seed))


def dilate_mask(mask, radius, sigma=5.0):
    """Official mask processing in torch: binarise, dilate by a disk, Gaussian blur, min-max to [0, 1]."""
    binary = (mask[:, :1] > -1 + 1.5 / 255).float()  # nonzero after the uint8 conversion
    r = int(radius)
    grid = torch.arange(-r, r + 1, device=mask.device, dtype=torch.float32)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= r * r).float()[None, None]
    dilated = (F.conv2d(binary, disk, padding=r) > 0.5).float()
    half = int(4.0 * sigma + 0.5)  # scikit-image's default truncate=4
    t = torch.arange(-half, half + 1, device=mask.device, dtype=torch.float32)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    blurred = F.conv2d(F.pad(dilated, (half, half, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
    blurred = F.conv2d(F.pad(blurred, (0, 0, half, half), mode="replicate"), g.view(1, 1, -1, 1))
    low, high = blurred.amin(), blurred.amax()
    span = high - low
    # a mask that covers everything (or nothing) stays as it is: min-max would make it all 0 (official: NaN)
    scaled = torch.where(span > 1e-6, (blurred - low) / span.clamp_min(1e-6), blurred)
    return scaled.expand(-1, mask.shape[1], -1, -1)


def harmonization(model, reference, mask, scale, seed=None, radius=7):
    """Blend a pasted object into the image's style: ``(1 - m) * reference + m * out`` (m = dilated mask)."""
    reference = _fit(model, reference)
    m = dilate_mask(_fit(model, mask), radius)
    out = inject(model, reference, scale, seed)
    return (1 - m) * reference + m * out


def editing(model, reference, mask, scale, seed=None, radius=20):
    """Edited image: returns ``(raw output, masked blend)`` like the official editing script."""
    reference = _fit(model, reference)
    m = dilate_mask(_fit(model, mask), radius)
    out = inject(model, reference, scale, seed)
    return out, (1 - m) * reference + m * out


def kmeans(points, k, iters=30, seed=0):
    """Lloyd's k-means in torch on (P, D) points with k-means++ seeding: returns (centres (k, D), labels (P,))."""
    if points.shape[0] < k:
        raise ValueError(f"k-means needs at least k={k} points, got {points.shape[0]}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x = points.float()
    first = int(torch.randint(x.shape[0], (1,), generator=generator))
    centres = x[first:first + 1]
    for _ in range(1, k):
        d2 = torch.cdist(x, centres).amin(1) ** 2
        probs = (d2 / d2.sum()).cpu() if float(d2.sum()) > 0 else torch.full((x.shape[0],), 1 / x.shape[0])
        centres = torch.cat([centres, x[int(torch.multinomial(probs, 1, generator=generator))][None]])
    for _ in range(iters):
        labels = torch.cdist(x, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).clamp_min(1).unsqueeze(1).to(x.dtype)
        updated = torch.where(torch.bincount(labels, minlength=k).unsqueeze(1) > 0, sums / counts, centres)
        if torch.equal(updated, centres):
            break
        centres = updated
    return centres, torch.cdist(x, centres).argmin(1)


def quantize_to(image, centres):
    """Replace every pixel of (1, C, H, W) by its nearest centre (C-dim colours)."""
    n, c, h, w = image.shape
    flat = image.permute(0, 2, 3, 1).reshape(-1, c)
    out = centres[torch.cdist(flat, centres).argmin(1)]
    return out.reshape(n, h, w, c).permute(0, 3, 1, 2)


def paint2image(model, paint, scale, quantize=False, clusters=5, seed=None):
    """Turn a clip-art painting into a realistic image; ``quantize`` maps the paint's colours to the
    ``clusters`` k-means colours of the real image at ``scale`` first (no re-training of that scale)."""
    _check_injection(model, scale, "paint scale")
    paint = _fit(model, paint)
    if quantize:
        real = model.reals[scale]
        centres, _ = kmeans(real.permute(0, 2, 3, 1).reshape(-1, real.shape[1]), clusters, seed=seed or 0)
        paint = quantize_to(paint, centres)
    return inject(model, paint, scale, seed)


def sr_schedule(factor):
    """Official SR schedule: ``iters = round(log(1/factor) / log(2^(-1/3)))``, per-step factor ``factor^(1/iters)``."""
    if factor <= 1:
        raise ValueError(f"super-resolution factor must be > 1, got {factor}")
    iters = max(1, round(math.log(1 / factor, 2 ** (-1 / 3))))
    return iters, factor ** (1 / iters)


def super_resolution(model, factor=4.0, image=None, seed=None):
    """Upsample ``image`` (default: the training image) by ``factor``: the finest generator applied
    ``iters`` times, each after a bicubic upsampling by ``factor^(1/iters)``, with fresh noise scaled
    by the finest noise amplitude (train with configs/singan_sr.yaml). Output cropped to int(factor * size)."""
    _singan_only(model, "super-resolution")
    iters, step = sr_schedule(factor)
    x = model.reals[-1] if image is None else _match_channels(model, image)
    h, w = x.shape[2:]
    generator = _generator(model, seed)
    finest = len(model.generators) - 1
    with eval_mode(model), torch.no_grad():
        for i in range(iters):
            x = model.resize(x, step)
            # the official SR loop starts its count at 0, so its first step draws 1-channel noise
            z = model.noise(0 if i == 0 else finest, 1, tuple(x.shape[2:]), generator)
            x = model.forward_scale(finest, z, x)
    return x[:, :, :int(factor * h), :int(factor * w)]

