"""One training image (SinGAN): a dataset of length 1 whose item is ``{"image": (C, H, W) in [-1, 1], "path"}``.

Channel handling (``mode`` and ``alpha`` keys):

* ``mode: rgb`` (default): RGB images as they are; grayscale (L, I;16, 1-bit) images are replicated
  to 3 identical channels; palette images are converted to RGB.
* ``mode: gray``: every image is converted to one luminance channel (ITU-R 601: 0.299 R + 0.587 G +
  0.114 B); models then work with 1-channel images.
* RGBA / LA / transparent palette images: ``alpha: drop`` (default, the official code's ``x[:, 0:3]``)
  ignores the alpha channel; ``alpha: white`` / ``alpha: black`` composite the image over that colour.

Relative ``image`` paths are looked up in the current directory first, then in the repository root
(so ``ganzoo/assets/...`` works from anywhere inside a checkout).
"""
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from ganzoo.config import check_keys
from ganzoo.registry import DATASETS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULTS = {"image": None, "mode": "rgb", "alpha": "drop"}


def resolve_path(path):
    """``path`` if it exists, else relative to the repository root; FileNotFoundError names both."""
    if path is None or str(path) == "":
        raise FileNotFoundError("data.image is not set: give the training image, e.g. data.image=photo.png")
    path = os.path.expanduser(str(path))
    if os.path.isfile(path) or os.path.isabs(path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"data.image: {path} does not exist")
        return path
    candidate = os.path.join(REPO_ROOT, path)
    if os.path.isfile(candidate):
        return candidate
    raise FileNotFoundError(f"data.image: {path} not found (looked in {os.getcwd()} and {REPO_ROOT})")


def load_image(path, mode="rgb", alpha="drop"):
    """Read an image file as a float (1, C, H, W) tensor in [-1, 1] (C = 3 for rgb, 1 for gray)."""
    from PIL import Image, UnidentifiedImageError

    if mode not in ("rgb", "gray"):
        raise ValueError(f"data.mode must be rgb or gray, got {mode!r}")
    if alpha not in ("drop", "white", "black"):
        raise ValueError(f"data.alpha must be drop, white or black, got {alpha!r}")
    path = resolve_path(path)
    try:
        with Image.open(path) as im:
            im.load()
            image = im.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"data.image: cannot read {path} as an image ({type(err).__name__})") from None
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I", "I;16", "I;16B", "F"):
        array = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(array / max(array.max(), 1) * 255, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        if alpha == "drop":
            image = rgba.convert("RGB")
        else:
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if alpha == "white" else (0, 0, 0, 255))
            image = Image.alpha_composite(background, rgba).convert("RGB")
    image = image.convert("L" if mode == "gray" else "RGB")
    array = np.asarray(image, dtype=np.float64) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(((array - 0.5) * 2).transpose(2, 0, 1).copy()).float()
    return tensor.unsqueeze(0)


@DATASETS.register("single_image")
class SingleImage(Dataset):
    """The one image SinGAN trains on (keys: image, mode rgb|gray, alpha drop|white|black)."""

    DEFAULTS = DEFAULTS

    def __init__(self, **cfg):
        cfg = check_keys(cfg, self.DEFAULTS, "data")
        self.cfg = cfg
        self.path = None if cfg["image"] is None else resolve_path(cfg["image"])
        self.image = None if self.path is None else load_image(self.path, cfg["mode"], cfg["alpha"])[0]

    def __len__(self):
        return 1

    def __getitem__(self, index):
        if self.image is None:
            raise FileNotFoundError("data.image is not set: give the training image, e.g. data.image=photo.png")
        return {"image": self.image, "path": self.path}
