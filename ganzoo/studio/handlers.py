"""The studio's model calls as plain functions (no Gradio): numpy in, lists of uint8 HxWx3 images out.

They call what the CLIs call: ``model.sample`` as in ``ganzoo-synthesize`` and
:func:`ganzoo.apps.singan.random_samples` as in ``tools/singan.py random_samples``.
"""
import numpy as np
import torch
import torch.nn.functional as F

from ganzoo.apps import singan as singan_apps
from ganzoo.data import palettes, segmap


def model_kind(model):
    """``"spade"``, ``"singan"``, ... from the model's config."""
    return model.config["model"]["type"]


def spade_dataset(model):
    """The dataset name the palette and class names come from, else the number of classes."""
    data_type = (model.config.get("data") or {}).get("type")
    return data_type if data_type in palettes.CLASS_FILES else model.num_classes


def spade_palette(model):
    """RGB colour by label index, one per class the model knows (dontcare included)."""
    colours = palettes.palette(spade_dataset(model))
    if len(colours) < model.num_classes:
        colours = palettes.palette(model.num_classes)
    return [tuple(c) for c in colours[:model.num_classes]]


def spade_class_names(model):
    """Class name by label index (``class k`` where the dataset has no name list)."""
    dataset = spade_dataset(model)
    names = palettes.class_names(dataset) if isinstance(dataset, str) else []
    names = list(names[:model.label_nc]) + [f"class {k}" for k in range(len(names), model.label_nc)]
    return names + ["dontcare"] * (model.num_classes - model.label_nc)


def colours_to_indices(rgb, colours, nearest=False):
    """HxWx3 colour map -> HxW label indices (the first index of a colour shared by several classes).
    An unknown colour is a one-line ValueError; ``nearest`` snaps it to the closest palette colour
    (for brush strokes with anti-aliased edges)."""
    rgb = np.asarray(rgb)[..., :3].astype(np.int64)
    table = np.asarray(colours, dtype=np.int64)
    if nearest:
        flat = rgb.reshape(-1, 3)
        distances = ((flat[:, None, :] - table[None, :, :]) ** 2).sum(-1)
        return distances.argmin(1).reshape(rgb.shape[:2])
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    index_of = {}
    for k, (r, g, b) in enumerate(table.tolist()):
        index_of.setdefault((r << 16) | (g << 8) | b, k)
    unique, inverse = np.unique(codes, return_inverse=True)
    unknown = [int(c) for c in unique if int(c) not in index_of]
    if unknown:
        c = unknown[0]
        raise ValueError(f"label map colour ({c >> 16}, {(c >> 8) & 255}, {c & 255}) is not in the model's class "
                         f"palette ({len(unknown)} unknown colour(s)); paint with the palette colours only")
    return np.asarray([index_of[int(c)] for c in unique], dtype=np.int64)[inverse].reshape(rgb.shape[:2])


def spade_label_indices(model, label_map, nearest=False):
    """HxW indices (255 = dontcare) or HxWx3 palette colours -> range-checked HxW int64 label indices."""
    label_map = np.asarray(label_map)
    if label_map.ndim == 3 and label_map.shape[2] == 1:
        label_map = label_map[..., 0]
    if label_map.ndim == 3:
        return colours_to_indices(label_map, spade_palette(model), nearest)
    if label_map.ndim != 2:
        raise ValueError(f"a label map is HxW indices or HxWx3 colours, got shape {label_map.shape}")
    return segmap.label_array(label_map, "label map", model.label_nc, model.num_classes > model.label_nc)


def to_rgb_uint8(image):
    """(C, H, W) in [-1, 1] -> HxWx3 uint8 numpy (a grey image repeated over 3 channels)."""
    array = singan_apps.to_uint8(image).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def spade_synthesize(model, label_map, n=1, seed=0, nearest=False):
    """``n`` images for one label map, seeds ``seed .. seed + n - 1`` (as ``ganzoo-synthesize --n``)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if model.E is None and n > 1:
        raise ValueError("n > 1 needs a VAE model: without an encoder the output is deterministic")
    if model.use_instance:
        raise ValueError("this model uses instance maps, which the studio does not draw yet: use ganzoo-synthesize")
    label = torch.from_numpy(spade_label_indices(model, label_map, nearest))
    height, width = model.G.output_size
    label = F.interpolate(label[None, None].float(), size=(height, width), mode="nearest").long()
    device = next(model.G.parameters()).device
    batch = {"label": label.to(device)}
    return [to_rgb_uint8(model.sample(batch, seed=int(seed) + k)[0]) for k in range(int(n))]


def singan_random_samples(model, n=4, seed=0, scale_h=1.0, scale_w=1.0, start_scale=0):
    """``n`` random SinGAN samples (``tools/singan.py random_samples``): ``scale_h`` / ``scale_w`` stretch
    the height / width (need ``start_scale`` 0)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    images = singan_apps.random_samples(model, int(n), int(start_scale), int(seed), float(scale_h), float(scale_w))
    return [to_rgb_uint8(image) for image in images]
