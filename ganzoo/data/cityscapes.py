"""Cityscapes (fine annotations) in its official layout, with SPADE's conventions.

Layout under ``root``::

    leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png
    gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png
    gtFine/train/aachen/aachen_000000_000019_gtFine_instanceIds.png
    (the same under val/)

Files are paired by ``city_seq_frame`` (the first three ``_`` fields). Labels are the 35 labelIds
(0..33 plus license plate 34), no dontcare channel; the instance ids give one edge channel (SPADE's
36 input channels). Preprocessing as the reference: ``fixed`` resize to 512x256 (crop_size 512,
aspect_ratio 2), horizontal flip when training; the generator uses ``num_upsampling_layers: more``.
"""
import os

from ganzoo.config import check_keys
from ganzoo.data.coco_stuff import split_defaults
from ganzoo.data.paired import SegmentationPairs, TRANSFORM_DEFAULTS, pair_by_stem
from ganzoo.data.palettes import class_names
from ganzoo.registry import DATASETS

SUFFIXES = {"image": "_leftImg8bit.png", "label": "_gtFine_labelIds.png", "instance": "_gtFine_instanceIds.png"}


def frame_key(name):
    """``aachen_000000_000019_gtFine_labelIds.png`` -> ``aachen_000000_000019``."""
    return "_".join(name.split("_")[:3])


def list_frames(directory, suffix, what):
    """``{frame key: path}`` of the files ending in ``suffix`` in the city folders under ``directory``."""
    files = {}
    for city in sorted(os.listdir(directory)):
        city_dir = os.path.join(directory, city)
        if os.path.isdir(city_dir):
            for name in sorted(os.listdir(city_dir)):
                if name.endswith(suffix):
                    files.setdefault(frame_key(name), os.path.join(city_dir, name))
    if not files:
        raise FileNotFoundError(f"no *{suffix} files in the city folders of {directory} ({what} maps)")
    return files


@DATASETS.register("cityscapes")
class Cityscapes(SegmentationPairs):
    """leftImg8bit/{split}/<city>/ + gtFine/{split}/<city>/ (labelIds, instanceIds), 35 labels, 512x256."""

    DEFAULTS = {"root": "data/cityscapes", "split": "train",
                **{**TRANSFORM_DEFAULTS, "preprocess_mode": "fixed", "load_size": 512, "crop_size": 512,
                   "aspect_ratio": 2.0, "flip": None,  # null: flip for train only
                   "label_nc": 35, "contain_dontcare_label": False},
                "use_instance": True}

    def __init__(self, **kwargs):
        opts = split_defaults(check_keys(kwargs, self.DEFAULTS, "data"))
        root, split = opts["root"], opts["split"]
        image_dir = os.path.join(root, "leftImg8bit", split)
        label_dir = os.path.join(root, "gtFine", split)
        if not os.path.isdir(image_dir) or not os.path.isdir(label_dir):
            raise FileNotFoundError(f"Cityscapes root {root} must contain leftImg8bit/{split}/<city>/ and "
                                    f"gtFine/{split}/<city>/ (the official layout)")
        listings = {"image": list_frames(image_dir, SUFFIXES["image"], "image"),
                    "label": list_frames(label_dir, SUFFIXES["label"], "label")}
        if opts["use_instance"]:
            listings["instance"] = list_frames(label_dir, SUFFIXES["instance"], "instance")
        try:
            keys = pair_by_stem(listings)
        except ValueError as err:
            raise ValueError(str(err).replace("file name without extension", "city_seq_frame")) from None
        instances = listings.get("instance", {})
        items = [(listings["image"][k], listings["label"][k], instances.get(k)) for k in keys]
        super().__init__(opts, items, "data")
        self.class_names = class_names("cityscapes")
