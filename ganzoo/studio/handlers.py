"""The studio's model calls as plain functions (no Gradio): numpy in, lists of uint8 HxWx3 images out.

They call what the CLIs call: ``model.sample`` as in ``ganzoo-synthesize`` and
:func:`ganzoo.apps.singan.random_samples` as in ``tools/singan.py random_samples``.
The label painter serves every model that synthesizes from label maps (``synthesize(seg, ...)``:
SPADE, OASIS): it needs ``label_nc``, ``num_classes``, ``G.output_size`` and ``sample(batch, seed=)``;
``E`` (a VAE encoder: style images) and ``multimodal`` (outputs vary with the seed) are optional.
"""
import inspect
import os

import numpy as np
import torch
import torch.nn.functional as F

from ganzoo.apps import singan as singan_apps
from ganzoo.data import palettes, segmap


def model_kind(model):
    """``"spade"``, ``"singan"``, ... from the model's config."""
    return model.config["model"]["type"]


def synthesizes_from_labels(model):
    """True for a model with ``synthesize(seg, ...)``: the label-painter tab serves it."""
    synthesize = getattr(model, "synthesize", None)
    if not callable(synthesize):
        return False
    params = list(inspect.signature(synthesize).parameters)
    return bool(params) and params[0] == "seg"


def has_style_encoder(model):
    """A VAE model: an encoder turns a style image into the code z."""
    return getattr(model, "E", None) is not None


def is_multimodal(model):
    """Outputs vary with the seed: a model's own ``multimodal`` flag, else whether it has a VAE encoder."""
    return bool(getattr(model, "multimodal", has_style_encoder(model)))


def output_size(model):
    """(height, width) of the images the model makes."""
    return tuple(int(v) for v in model.G.output_size)


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


def spade_class_names(model, custom=None):
    """Class name by label index: the dataset's names, else ``custom`` (a list or a class-list file, one
    name per line), else ``class k``."""
    dataset = spade_dataset(model)
    if isinstance(dataset, str):
        names = palettes.class_names(dataset)
    elif isinstance(custom, str):
        names = palettes.read_class_list(custom)
    else:
        names = list(custom or [])
    names = list(names[:model.label_nc]) + [f"class {k}" for k in range(len(names), model.label_nc)]
    return names + ["dontcare"] * (model.num_classes - model.label_nc)


def paint_palette(colours):
    """``colours`` with every repeated colour replaced by an unused one, so that each class can be
    painted (Cityscapes gives labels 0-4 the same black); the first of a shared colour keeps it."""
    used, out = set(colours), []
    spare = (c for c in palettes.distinct_colors(len(colours) + 4096) if c not in used)
    seen = set()
    for colour in colours:
        out.append(tuple(colour) if colour not in seen else next(spare))
        seen.add(tuple(colour))
    return out


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


def spade_label_indices(model, label_map, nearest=False, colours=None):
    """HxW indices (255 = dontcare) or HxWx3 colours of ``colours`` (default: the model's palette) ->
    range-checked HxW int64 label indices."""
    label_map = np.asarray(label_map)
    if label_map.ndim == 3 and label_map.shape[2] == 1:
        label_map = label_map[..., 0]
    if label_map.ndim == 3:
        return colours_to_indices(label_map, colours or spade_palette(model), nearest)
    if label_map.ndim != 2:
        raise ValueError(f"a label map is HxW indices or HxWx3 colours, got shape {label_map.shape}")
    return segmap.label_array(label_map, "label map", model.label_nc, model.num_classes > model.label_nc)


def to_rgb_uint8(image):
    """(C, H, W) in [-1, 1] -> HxWx3 uint8 numpy (a grey image repeated over 3 channels)."""
    array = singan_apps.to_uint8(image).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def style_tensor(model, image):
    """HxWx3 uint8 style image -> (1, 3, H, W) in [-1, 1] at the model's output size."""
    image = torch.from_numpy(np.ascontiguousarray(np.asarray(image)[..., :3])).permute(2, 0, 1)[None].float()
    image = F.interpolate(image / 127.5 - 1, size=output_size(model), mode="bilinear", align_corners=False)
    return image.clamp(-1, 1)


def spade_synthesize(model, label_map, n=1, seed=0, nearest=False, style=None, colours=None):
    """``n`` images for one label map, seeds ``seed .. seed + n - 1`` (as ``ganzoo-synthesize --n``).
    ``style``: an HxWx3 uint8 image whose code the VAE encoder gives (VAE models only)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not is_multimodal(model) and n > 1:
        raise ValueError("n > 1 needs a VAE model: without an encoder the output is deterministic")
    if getattr(model, "use_instance", False):
        raise ValueError("this model uses instance maps, which the studio does not draw yet: use ganzoo-synthesize")
    if style is not None and not has_style_encoder(model):
        raise ValueError("a style image needs a VAE model (one with an image encoder)")
    label = torch.from_numpy(spade_label_indices(model, label_map, nearest, colours))
    label = F.interpolate(label[None, None].float(), size=output_size(model), mode="nearest").long()
    device = next(model.G.parameters()).device
    batch = {"label": label.to(device)}
    if style is not None:
        batch["style"] = style_tensor(model, style).to(device)
    return [to_rgb_uint8(model.sample(batch, seed=int(seed) + k)[0]) for k in range(int(n))]


def label_indices_at_output(model, label_map, nearest=False, colours=None):
    """The HxW label indices the model is given (at its output size), for the label-map download."""
    label = torch.from_numpy(spade_label_indices(model, label_map, nearest, colours))
    return F.interpolate(label[None, None].float(), size=output_size(model), mode="nearest").long()[0, 0].numpy()


def save_results(folder, label, colours, images, first_seed):
    """``label.png`` (class indices), ``label_colour.png`` (palette colours) and ``seed_<k>.png`` per output
    in ``folder`` -> their paths."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, "label.png"), os.path.join(folder, "label_colour.png")]
    mode = "L" if label.max() < 256 else "I"
    Image.fromarray(label.astype(np.uint8 if mode == "L" else np.int32), mode=mode).save(paths[0])
    Image.fromarray(np.asarray(colours, np.uint8)[label]).save(paths[1])
    for k, image in enumerate(images):
        paths.append(os.path.join(folder, f"seed_{int(first_seed) + k}.png"))
        Image.fromarray(image).save(paths[-1])
    return paths


def singan_random_samples(model, n=4, seed=0, scale_h=1.0, scale_w=1.0, start_scale=0):
    """``n`` random SinGAN samples (``tools/singan.py random_samples``): ``scale_h`` / ``scale_w`` stretch
    the height / width (need ``start_scale`` 0)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    images = singan_apps.random_samples(model, int(n), int(start_scale), int(seed), float(scale_h), float(scale_w))
    return [to_rgb_uint8(image) for image in images]
