"""What the studio accepts from the page: images within a size limit and brushed masks (no Gradio here).

Every problem is a one-line ``ValueError`` that :func:`user_errors` shows in the page as a ``gr.Error``.
"""
import atexit
import os
import shutil
import tempfile

import numpy as np

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # also ganzoo-studio's launch(max_file_size=...)
MAX_PIXELS = 4096 * 4096
_results_root = []


def results_folder():
    """A fresh folder for one request's files (GIFs, downloads), all removed when the studio exits."""
    if not _results_root:
        _results_root.append(tempfile.mkdtemp(prefix="ganzoo-studio-"))
        atexit.register(shutil.rmtree, _results_root[0], True)
    return tempfile.mkdtemp(dir=_results_root[0])


def user_errors(gr, fn):
    """``fn`` with ValueError / OSError turned into a one-line ``gr.Error`` in the page."""
    def wrapped(*args):
        try:
            return fn(*args)
        except (ValueError, OSError) as err:
            raise gr.Error(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    return wrapped


def _paths(payload):
    """Every file path in a component's payload (FileData / ImageData / EditorData, or plain dicts)."""
    if hasattr(payload, "model_dump"):
        payload = payload.model_dump()
    if isinstance(payload, dict):
        own = [payload["path"]] if isinstance(payload.get("path"), str) else []
        return own + [p for key, value in payload.items() if key != "path" for p in _paths(value)]
    if isinstance(payload, (list, tuple)):
        return [p for value in payload for p in _paths(value)]
    return []


def guard_upload(gr, component, what="image", max_bytes=MAX_UPLOAD_BYTES):
    """Make an image component's upload errors page messages: a file over ``max_bytes`` or one that is not an
    image gives a one-line ``gr.Error`` (Gradio's own preprocessing would show a bare "Error")."""
    from PIL import Image, UnidentifiedImageError

    preprocess = component.preprocess

    def checked(payload):
        for path in _paths(payload):
            if os.path.exists(path) and os.path.getsize(path) > max_bytes:
                raise gr.Error(f"the {what} is {os.path.getsize(path) / 2**20:.1f} MB, more than the studio takes "
                               f"({max_bytes / 2**20:.0f} MB)")
        try:
            return preprocess(payload)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            raise gr.Error(f"the {what} is not a readable image (upload a PNG or JPEG)") from None

    component.preprocess = checked
    return component


def check_image(array, what="image", max_pixels=MAX_PIXELS):
    """An HxW, HxWx1, HxWx3 or HxWx4 uint8-range array within ``max_pixels`` -> HxWx3 uint8 (alpha dropped)."""
    if array is None:
        raise ValueError(f"upload the {what} first")
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(f"the {what} must be an HxW grey or HxWx3 colour image, got shape {array.shape}")
    height, width = array.shape[:2]
    if height * width > max_pixels:
        raise ValueError(f"the {what} is {width}x{height} pixels, more than the studio takes "
                         f"({max_pixels / 1e6:.0f} MP): resize it first")
    return np.clip(array[..., :3], 0, 255).astype(np.uint8)


def read_image_upload(path, what="image", max_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_PIXELS, indices=False):
    """An uploaded image file -> HxWx3 uint8, or a one-line ValueError (too large, not an image)."""
    from PIL import Image, UnidentifiedImageError

    if not path:
        raise ValueError(f"upload the {what} first")
    name = os.path.basename(path)
    if os.path.getsize(path) > max_bytes:
        raise ValueError(f"{name} is {os.path.getsize(path) / 2**20:.1f} MB, more than the studio takes "
                         f"({max_bytes / 2**20:.0f} MB)")
    try:
        with Image.open(path) as img:
            if img.width * img.height > max_pixels:
                raise ValueError(f"{name} is {img.width}x{img.height} pixels, more than the studio takes "
                                 f"({max_pixels / 1e6:.0f} MP): resize it first")
            img.load()
            if indices and img.mode in ("L", "P", "I", "I;16"):  # a label map of class indices
                return np.asarray(img, dtype=np.int64)
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        raise ValueError(f"{name} is not a readable image (upload a PNG or JPEG)") from None


def editor_image(editor, what="image"):
    """The uploaded background of a ``gr.ImageEditor`` value -> HxWx3 uint8 (size checked)."""
    if not editor or editor.get("background") is None:
        raise ValueError(f"upload the {what} into the editor first")
    return check_image(editor["background"], what)


def editor_mask(editor, required=True, what="mask"):
    """The strokes brushed on a ``gr.ImageEditor`` (every layer, RGBA) -> HxW uint8, 255 where brushed.

    ``required``: no stroke at all is a ValueError (else an all-zero mask)."""
    image = editor_image(editor)
    height, width = image.shape[:2]
    mask = np.zeros((height, width), bool)
    for layer in editor.get("layers") or []:
        layer = np.asarray(layer)
        painted = layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[2] == 4 else (
            layer.reshape(layer.shape[0], layer.shape[1], -1).max(-1) > 0)
        if painted.shape != mask.shape:
            from PIL import Image
            painted = np.asarray(Image.fromarray(painted).resize((width, height), Image.NEAREST))
        mask |= painted
    if required and not mask.any():
        raise ValueError(f"brush a {what} on the image first (the brushed strokes are the {what})")
    return mask.astype(np.uint8) * 255
