"""A folder of images (recursively), optionally labelled by sub-folder, and the shared image transform."""
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from ganzoo.config import check_keys
from ganzoo.registry import DATASETS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
TRANSFORM_DEFAULTS = {"image_size": 256, "load_size": None, "crop": "center", "flip": False}


class ImageTransform:
    """PIL image -> float tensor (3, S, S) in [-1, 1] with the fixed map ``x / 127.5 - 1``.

    ``load_size``: shorter side is resized to it first (default ``image_size``); ``crop``: ``center`` |
    ``random`` square crop of ``image_size``, or ``none`` = resize straight to ``image_size`` x ``image_size``
    (the aspect is not kept); ``flip``: random horizontal flip.
    """

    def __init__(self, image_size=256, load_size=None, crop="center", flip=False):
        if crop not in ("center", "random", "none"):
            raise ValueError(f"data.crop must be center, random or none, got {crop!r}")
        self.image_size, self.load_size = int(image_size), int(load_size or image_size)
        if self.load_size < self.image_size:
            raise ValueError(f"data.load_size {self.load_size} is smaller than data.image_size {self.image_size}")
        self.crop, self.flip = crop, flip

    def __call__(self, image):
        from PIL import Image
        image = image.convert("RGB")
        size = self.image_size
        if self.crop == "none":
            image = image.resize((size, size), Image.BICUBIC)
        else:
            w, h = image.size
            scale = self.load_size / min(w, h)
            new = (max(size, round(w * scale)), max(size, round(h * scale)))
            if new != (w, h):
                image = image.resize(new, Image.BICUBIC)
            w, h = image.size
            if self.crop == "random":
                left, top = (int(torch.randint(d - size + 1, ())) for d in (w, h))
            else:
                left, top = (w - size) // 2, (h - size) // 2
            image = image.crop((left, top, left + size, top + size))
        array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        if self.flip and torch.rand(()) < 0.5:
            array = array.flip(-1)
        return array.float() / 127.5 - 1.0


def load_image(path):
    from PIL import Image
    with open(path, "rb") as f:
        image = Image.open(f)
        image.load()
    return image


def list_images(root):
    """Image files under ``root`` (recursively), sorted, relative to ``root``."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.relpath(os.path.join(directory, name), root))
    return found


@DATASETS.register("image_folder")
class ImageFolder(Dataset):
    """Every image under ``root``; ``labels: folders`` gives each its sub-folder's index (sorted names)."""
    DEFAULTS = {"root": None, "labels": "none", "min_images": 1, **TRANSFORM_DEFAULTS}

    def __init__(self, **cfg):
        cfg = check_keys(cfg, self.DEFAULTS, "data")
        root = cfg["root"]
        if not root or not os.path.isdir(root):
            raise FileNotFoundError(f"data.root {root!r} is not a directory of images")
        if cfg["labels"] not in ("none", "folders"):
            raise ValueError(f"data.labels must be none or folders, got {cfg['labels']!r}")
        self.root = root
        self.files = list_images(root)
        if len(self.files) < cfg["min_images"]:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under data.root {root}")
        self.transform = ImageTransform(cfg["image_size"], cfg["load_size"], cfg["crop"], cfg["flip"])
        self.classes, self.labels = None, None
        if cfg["labels"] == "folders":
            folders = [os.path.dirname(f) for f in self.files]
            self.classes = sorted(set(folders))
            index = {name: i for i, name in enumerate(self.classes)}
            self.labels = [index[f] for f in folders]

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path = os.path.join(self.root, self.files[i])
        item = {"image": self.transform(load_image(path)), "path": path}
        if self.labels is not None:
            item["class"] = torch.tensor(self.labels[i], dtype=torch.long)
        return item
