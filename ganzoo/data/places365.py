"""Places365-Standard in either on-disk layout, labels from the official lists.

* official file-list layout (``filelist_places365-standard.tar`` + image tars)::

      <root>/categories_places365.txt           /a/airfield 0 ... (365 lines)
      <root>/places365_train_standard.txt       /a/airfield/00000001.jpg 0
      <root>/places365_val.txt                  Places365_val_00000001.jpg 165
      <root>/data_256_standard/ (or data_256/, data_large_standard/, data_large/)   train images
      <root>/val_256/ (or val_large/)           val images

* easy-format folder layout (``places365standard_easyformat.tar``)::

      <root>/{train,val}/<category>/*.jpg       (+ optional train.txt / val.txt: "path [label]" lines)

  Folder names flatten sub-categories with ``-`` (``bus_station-indoor``); labels come from the list file's
  label column, else ``categories_places365.txt`` when present, else the sorted folder order (which is the
  official index order).
"""
import os

import torch
from torch.utils.data import Dataset

from ganzoo.config import check_keys
from ganzoo.data.image_folder import TRANSFORM_DEFAULTS, ImageTransform, list_images, load_image
from ganzoo.registry import DATASETS

TRAIN_DIRS = ("data_256_standard", "data_256", "data_large_standard", "data_large")
VAL_DIRS = ("val_256", "val_large")
LISTS = {"train": "places365_train_standard.txt", "val": "places365_val.txt"}
DOWNLOAD = "http://data.csail.mit.edu/places/places365/"
LAYOUT_HELP = (
    "expected either the easy format <root>/{train,val}/<category>/*.jpg (places365standard_easyformat.tar) or "
    "the official layout <root>/places365_train_standard.txt, places365_val.txt, categories_places365.txt, "
    "data_256_standard/, val_256/ (filelist_places365-standard.tar, train_256_places365standard.tar, "
    f"val_256.tar); download from {DOWNLOAD}")


def read_categories(path):
    """``/a/airfield 0`` lines -> list of names indexed by label (``airfield``, ``bus_station-indoor``)."""
    names = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                names[int(parts[1])] = parts[0].lstrip("/").split("/", 1)[1].replace("/", "-")
    return [names[i] for i in sorted(names)]


def read_list(path):
    """``path [label]`` lines -> [(path, label or None)]; blank lines skipped, no header."""
    entries = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts:
                entries.append((parts[0], int(parts[1]) if len(parts) > 1 else None))
    return entries


def detect_layout(root, split):
    """``("official", image_dir, list_file)`` or ``("easy", split_dir, list_file or None)``; one-line error else."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"Places365 root {root} not found: {LAYOUT_HELP}")
    if os.path.isfile(os.path.join(root, LISTS[split])):
        dirs = TRAIN_DIRS if split == "train" else VAL_DIRS
        image_dir = next((os.path.join(root, d) for d in dirs if os.path.isdir(os.path.join(root, d))), None)
        if image_dir is None:
            raise FileNotFoundError(f"Places365 root {root} has {LISTS[split]} but none of the image folders "
                                    f"{', '.join(dirs)}: {LAYOUT_HELP}")
        return "official", image_dir, os.path.join(root, LISTS[split])
    split_dir = os.path.join(root, split)
    if os.path.isdir(split_dir):
        list_file = os.path.join(root, f"{split}.txt")
        return "easy", split_dir, list_file if os.path.isfile(list_file) else None
    raise FileNotFoundError(f"Places365 root {root} has neither {LISTS[split]} nor {split}/: {LAYOUT_HELP}")


@DATASETS.register("places365")
class Places365(Dataset):
    """Places365-Standard (official file lists or easy-format folders); items: image [-1, 1], class, path."""
    DEFAULTS = {"root": "data/places365_standard", "split": "train", "max_items": None, **TRANSFORM_DEFAULTS}

    def __init__(self, **cfg):
        cfg = check_keys(cfg, self.DEFAULTS, "data")
        if cfg["split"] not in LISTS:
            raise ValueError(f"data.split must be train or val, got {cfg['split']!r}")
        root = cfg["root"]
        self.layout, image_dir, list_file = detect_layout(root, cfg["split"])
        categories = os.path.join(root, "categories_places365.txt")
        self.classes = read_categories(categories) if os.path.isfile(categories) else None
        if self.layout == "official":
            entries = read_list(list_file)
            if any(label is None for _, label in entries):
                raise ValueError(f"{list_file}: every line must be 'path label'")
            self.files = [os.path.join(image_dir, path.lstrip("/")) for path, _ in entries]
            self.labels = [label for _, label in entries]
        else:
            self._easy(root, image_dir, list_file)
        if cfg["max_items"]:
            self.files, self.labels = self.files[:cfg["max_items"]], self.labels[:cfg["max_items"]]
        if not self.files:
            raise FileNotFoundError(f"Places365 root {root}: no {cfg['split']} images found: {LAYOUT_HELP}")
        self.transform = ImageTransform(cfg["image_size"], cfg["load_size"], cfg["crop"], cfg["flip"])

    def _easy(self, root, split_dir, list_file):
        if list_file:
            entries = read_list(list_file)
            split = os.path.basename(split_dir)
            # list paths may be relative to the root ("train/airfield/1.jpg") or to the split folder
            rel = [p.lstrip("/") for p, _ in entries]
            rel = [p[len(split) + 1:] if p.startswith(split + "/") else p for p in rel]
            given = [label for _, label in entries]
        else:
            rel, given = list_images(split_dir), [None] * 0
        folders = [os.path.dirname(p).replace("/", "-") for p in rel]
        if not self.classes:
            self.classes = sorted(set(folders))
            if len(self.classes) not in (0, 365):
                import warnings
                warnings.warn(f"Places365 {split_dir}: {len(self.classes)} category folders (365 expected); "
                              "labels follow their sorted order")
        index = {name: i for i, name in enumerate(self.classes)}
        unknown = sorted(set(folders) - set(index))
        if unknown and not (given and all(g is not None for g in given)):
            raise ValueError(f"Places365 {split_dir}: folders {unknown[:3]} are not in categories_places365.txt")
        self.files = [os.path.join(split_dir, p) for p in rel]
        self.labels = [g if g is not None else index[f] for g, f in zip(given or [None] * len(rel), folders)]

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return {"image": self.transform(load_image(self.files[i])), "class": torch.tensor(self.labels[i]),
                "path": self.files[i]}
