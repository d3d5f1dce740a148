"""Semantic Pyramid applications on one trained model (no further training).

All take a :class:`ganzoo.models.semantic_pyramid.SemanticPyramid` in eval mode and images in [-1, 1]
(N, 3, H, W) at the model's image size, and return images in [-1, 1].

* :func:`generate` - k samples per image from one pyramid level.
* :func:`repaint` - re-paint a region: the region keeps only the deep level, the rest also gets the shallower ones.
* :func:`compose` - paste an object into a background, regenerate from a level of the composite.
* :func:`relabel` - regenerate with another class (class-conditional models).
* :func:`colorize` - features of the grayscale image at low levels, generator adds the colours.
* :func:`sketch_to_photo` - a line drawing's features at a mid level.
* :func:`per_level_fid` - the paper's table: FID of samples from each level against the reference images.
"""
import torch
import torch.nn.functional as F


def _device(model):
    return next(model.G.parameters()).device


def _latents(model, n, seed, device):
    generator = torch.Generator(device).manual_seed(seed) if seed is not None else None
    return torch.randn(n, model.z_dim, device=device, generator=generator)


def _class_ids(model, n, class_ids, device):
    if not model.cfg["num_classes"]:
        return None
    if class_ids is None:
        raise ValueError("this model is class-conditional: pass class ids (e.g. --class 12)")
    class_ids = torch.as_tensor(class_ids, dtype=torch.long, device=device).reshape(-1)
    return class_ids.expand(n) if class_ids.numel() == 1 else class_ids


def _run(model, images, masks_fn, k=1, seed=0, class_ids=None):
    """Features of ``images``, masks from ``masks_fn(features)``, ``k`` latents each -> (N * k, 3, H, W)."""
    device = _device(model)
    images = images.to(device)
    with torch.no_grad():
        feats = model.features(images)
        masks = masks_fn(feats)
        n = len(images)
        index = torch.arange(n, device=device).repeat_interleave(k)
        cls = _class_ids(model, n, class_ids, device)
        return model.generate([f[index] for f in feats], [m[index] for m in masks], _latents(model, n * k, seed, device),
                              None if cls is None else cls[index])


def default_level(model, position):
    """A used level by position among the used ones (0: shallowest, -1: deepest)."""
    return model.level_specs[model.used[position]][0]


def generate(model, images, level, k=4, seed=0, class_ids=None):
    """``k`` samples per image conditioned on ``level`` only: (N * k, 3, H, W), image-major."""
    return _run(model, images, lambda feats: model.level_masks(feats, level), k, seed, class_ids)


def region_level_masks(model, feats, region, deep_level, shallow_level=None):
    """Masks: ``deep_level`` on everywhere; levels from ``shallow_level`` to below it on outside ``region``.

    ``region`` (N or 1, 1, H, W) in {0, 1}, 1 = the part to re-paint; resized to each level by area average
    (a level cell counts as inside when any of it is).
    """
    deep = model.level_index(deep_level)
    shallow = model.level_index(shallow_level if shallow_level is not None else default_level(model, 0))
    if shallow >= deep:
        raise ValueError(f"shallow level {shallow_level!r} must be shallower than the deep level {deep_level!r}")
    n = feats[0].shape[0]
    masks = model.level_masks(feats, deep)
    region = region.to(feats[0].device, torch.float32).expand(n, 1, *region.shape[-2:])
    for level in range(shallow, deep):
        if feats[level].dim() == 4 and level in model.used:
            inside = F.adaptive_max_pool2d(region, feats[level].shape[-2:])
            masks[level] = 1.0 - inside
    return masks


def repaint(model, images, region, deep_level=None, shallow_level=None, k=4, seed=0, class_ids=None):
    """Re-paint ``region`` of each image: inside, only ``deep_level`` guides the generator; outside, the
    shallower levels keep the content. Defaults: the deepest spatial used level and the shallowest used one."""
    if deep_level is None:
        spatial = [i for i in model.used if model.level_specs[i][2] is not None]
        deep_level = model.level_specs[spatial[-1]][0]
    return _run(model, images, lambda feats: region_level_masks(model, feats, region, deep_level, shallow_level),
                k, seed, class_ids)


def paste(background, obj, mask):
    """Composite: ``obj`` where ``mask`` is 1, ``background`` elsewhere (all (N, C, H, W) / (N, 1, H, W))."""
    mask = mask.to(background.dtype)
    return background * (1 - mask) + obj * mask


def compose(model, background, obj, mask, level=None, k=4, seed=0, class_ids=None):
    """Semantic composition: regenerate the pasted composite from ``level`` (default: the deepest spatial one)."""
    if level is None:
        spatial = [i for i in model.used if model.level_specs[i][2] is not None]
        level = model.level_specs[spatial[-1]][0]
    return generate(model, paste(background, obj, mask), level, k, seed, class_ids)


def relabel(model, images, class_id, level=None, k=4, seed=0):
    """Regenerate ``images`` from ``level`` while the generator is told class ``class_id``."""
    if not model.cfg["num_classes"]:
        raise ValueError("re-labelling needs a class-conditional model (model.num_classes > 0)")
    return generate(model, images, level or default_level(model, -1), k, seed, class_ids=class_id)


def to_gray(images):
    """ITU-R 601 luma of [-1, 1] RGB images, repeated to 3 channels."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True).expand(-1, 3, -1, -1)


def colorize(model, images, level=None, k=4, seed=0, class_ids=None):
    """Colour a grayscale image (or the gray version of a colour one) from its low-level features
    (default: the second-shallowest used level: structure without colour commitment)."""
    return generate(model, to_gray(images), level or default_level(model, min(1, len(model.used) - 1)), k, seed,
                    class_ids)


def sketch_to_photo(model, sketches, level=None, k=4, seed=0, class_ids=None):
    """Photos from line drawings (dark lines on white) conditioned on a mid level of the sketch's features."""
    return generate(model, sketches, level or default_level(model, len(model.used) // 2), k, seed, class_ids)


def per_level_fid(model, dataset, num_images=2000, batch_size=16, dims=2048, fid_weights=None, seed=0,
                  levels=None, check=True):
    """{level: FID} of samples generated from each level of the first ``num_images`` dataset images,
    against the statistics of those same images (the paper's per-level table)."""
    from ganzoo.metrics.fid import FIDFeatures, statistics
    from ganzoo.metrics.frechet import frechet_distance
    from ganzoo.metrics.images import batches_of, quantize

    device = _device(model)
    features = FIDFeatures(dims, fid_weights, device)
    count = min(num_images, len(dataset))

    def reals():
        for batch in batches_of(dataset, batch_size, count):
            yield quantize(batch["image"])

    real = statistics(reals(), features, "reference images", check=check)
    names = levels or [model.level_specs[i][0] for i in model.used]
    scores = {}
    for name in names:
        def fakes():
            for i, batch in enumerate(batches_of(dataset, batch_size, count)):
                cls = batch.get("class") if model.cfg["num_classes"] else None
                yield quantize(generate(model, batch["image"], name, k=1, seed=seed + i, class_ids=cls))
        fake = statistics(fakes(), features, f"samples from {name}", check=check)
        scores[name] = float(frechet_distance(*fake, *real, device=features.device))
    return scores
