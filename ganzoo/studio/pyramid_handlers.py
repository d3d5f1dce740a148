"""Semantic Pyramid studio actions as plain functions: uint8 photos / masks in, k uint8 HxWx3 samples out.

Each makes the call ``tools/semantic_pyramid.py <app>`` makes (:mod:`ganzoo.cli.semantic_pyramid`), on the
photo as that CLI prepares a file (centre crop to the model's size), so a seed gives the CLI's samples.
"""
import numpy as np

from ganzoo.apps import semantic_pyramid as sp
from ganzoo.studio.handlers import to_rgb_uint8
from ganzoo.studio.uploads import check_image

DEFAULT = "(default)"


def levels(model):
    """The pyramid levels the model was trained with, shallowest first."""
    return [model.level_specs[i][0] for i in model.used]


def spatial_levels(model):
    """The used levels that are feature maps (a region can be re-painted at them)."""
    return [model.level_specs[i][0] for i in model.used if model.level_specs[i][2] is not None]


def num_classes(model):
    return int(model.cfg["num_classes"] or 0)


def _transform(model, array, what):
    from PIL import Image

    from ganzoo.data.image_folder import ImageTransform

    image = Image.fromarray(check_image(array, what))
    device = next(model.G.parameters()).device
    # contiguous like the CLI's torch.stack: another memory layout changes the convolutions' last bits
    return ImageTransform(model.cfg["image_size"], crop="center")(image).unsqueeze(0).contiguous().to(device)


def photo_tensor(model, photo):
    """HxWx3 uint8 -> (1, 3, S, S) in [-1, 1], as the CLI's ``--image``."""
    return _transform(model, photo, "photo")


def region_tensor(model, mask):
    """HxW uint8 (255 = region) -> (1, 1, S, S) in {0, 1}, as the CLI's ``--mask``."""
    if not np.asarray(mask).any():
        raise ValueError("the region is empty: brush over the part to change")
    return (_transform(model, mask, "region")[:, :1] > 0).float()


def _level(level):
    return None if level in (None, "", DEFAULT) else level


def _class(model, class_id):
    if not num_classes(model):
        return None
    if class_id is None:
        raise ValueError("this model is class-conditional: pick a class")
    class_id = int(class_id)
    if not 0 <= class_id < num_classes(model):
        raise ValueError(f"class must be in 0..{num_classes(model) - 1}, got {class_id}")
    return class_id


def _images(out):
    return [to_rgb_uint8(image) for image in out]


def _k(k):
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return int(k)


def generate(model, photo, level=None, k=4, seed=0, class_id=None):
    """``generate``: k samples from one level of the photo (default: the deepest used level)."""
    level = _level(level) or sp.default_level(model, -1)
    return _images(sp.generate(model, photo_tensor(model, photo), level, _k(k), int(seed), _class(model, class_id)))


def repaint(model, photo, region, level=None, shallow_level=None, k=4, seed=0, class_id=None):
    """``repaint --mask``: the region re-invented from ``level`` while the rest keeps the shallower levels."""
    out = sp.repaint(model, photo_tensor(model, photo), region_tensor(model, region), _level(level),
                     _level(shallow_level), _k(k), int(seed), _class(model, class_id))
    return _images(out)


def compose(model, background, obj, mask, level=None, k=4, seed=0, class_id=None):
    """``compose --object --mask``: the object (mask = 255) pasted into the background and regenerated.
    Returns (composite, samples)."""
    images = photo_tensor(model, background)
    obj = _transform(model, obj, "object image").expand_as(images)
    region = region_tensor(model, mask)
    out = sp.compose(model, images, obj, region, _level(level), _k(k), int(seed), _class(model, class_id))
    return to_rgb_uint8(sp.paste(images, obj, region)[0]), _images(out)


def relabel(model, photo, class_id, level=None, k=4, seed=0):
    """``relabel --class``: regenerate while the generator is told another class."""
    if not num_classes(model):
        raise ValueError("re-labelling needs a class-conditional model (model.num_classes > 0)")
    return _images(sp.relabel(model, photo_tensor(model, photo), _class(model, class_id), _level(level), _k(k),
                              int(seed)))


def colorize(model, photo, level=None, k=4, seed=0, class_id=None):
    """``colorize``: the gray photo's low-level features, colours from the generator. Returns (gray, samples)."""
    gray = sp.to_gray(photo_tensor(model, photo))
    out = sp.colorize(model, gray, _level(level), _k(k), int(seed), _class(model, class_id))
    return to_rgb_uint8(gray[0]), _images(out)


def sketch(model, drawing, level=None, k=4, seed=0, class_id=None):
    """``sketch``: photos from a line drawing's mid-level features."""
    return _images(sp.sketch_to_photo(model, photo_tensor(model, drawing), _level(level), _k(k), int(seed),
                                      _class(model, class_id)))
