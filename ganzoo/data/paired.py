"""Paired image / label-map (/ instance-map) folders for semantic image synthesis.

Layout: ``image_dir/<stem>.jpg``, ``label_dir/<stem>.png`` and optionally ``instance_dir/<stem>.png``;
files are paired by stem (the file name without extension) and a file without a partner is an error
that lists the unpaired names. Relative directories are taken under ``root`` when it is given.
Label maps are class indices, or colour images read through ``palette`` (a palette file as written by
``ganzoo-labels``, a dataset name, or a list of [R, G, B] by class index).
"""
import os

from torch.utils.data import Dataset

from ganzoo.config import check_keys
from ganzoo.data import segmap
from ganzoo.data.colour_masks import config_palette
from ganzoo.registry import DATASETS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MAP_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp")

# the reference's preprocessing options; defaults of its "custom" dataset
TRANSFORM_DEFAULTS = {
    "preprocess_mode": "resize_and_crop",
    "load_size": 286,
    "crop_size": 256,
    "aspect_ratio": 1.0,
    "flip": True,
    "label_nc": 13,
    "contain_dontcare_label": False,
    "max_samples": None,
}


def list_by_stem(directory, extensions, what):
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{what} directory {directory} not found")
    files = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in extensions and not name.startswith("."):
            files.setdefault(stem, os.path.join(directory, name))
    if not files:
        raise FileNotFoundError(f"{what} directory {directory} has no files ending in {', '.join(extensions)}")
    return files


def pair_by_stem(named_listings):
    """``{"image": {stem: path}, "label": {...}, ...}`` -> sorted stems; error listing unpaired files."""
    all_stems = set().union(*named_listings.values())
    problems = []
    for what, listing in named_listings.items():
        missing = sorted(all_stems - set(listing))
        if missing:
            shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
            problems.append(f"no {what} for {len(missing)} file(s): {shown}")
    if problems:
        raise ValueError("unpaired files (pairing is by file name without extension): " + "; ".join(problems))
    return sorted(all_stems)


class SegmentationPairs(Dataset):
    """Base: a list of (image, label, instance-or-None) paths + the shared SPADE preprocessing."""

    def __init__(self, opts, items, where):
        segmap.check_mode(opts["preprocess_mode"], f"{where}.preprocess_mode")
        if opts["max_samples"]:
            items = items[:int(opts["max_samples"])]
        self.opts = opts
        self.items = items
        self.label_nc = int(opts["label_nc"])
        self.contain_dontcare_label = bool(opts["contain_dontcare_label"])
        #: channels of the one-hot label map the model builds (label_nc + dontcare)
        self.num_classes = self.label_nc + int(self.contain_dontcare_label)
        self.use_instance = items[0][2] is not None if items else False

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        image_path, label_path, instance_path = self.items[index]
        return segmap.load_sample(image_path, label_path, instance_path, self.opts)


@DATASETS.register("paired_folders")
class PairedFolders(SegmentationPairs):
    """Image / label / optional instance folders paired by file stem (the reference's custom dataset)."""

    DEFAULTS = {"root": None, "image_dir": None, "label_dir": None, "instance_dir": None, "palette": None,
                **TRANSFORM_DEFAULTS}

    def __init__(self, **kwargs):
        opts = check_keys(kwargs, self.DEFAULTS, "data")
        if opts["palette"] is not None:  # colour label maps: RGB -> class index through these colours
            palette = opts["palette"]
            if isinstance(palette, str) and opts["root"] and os.path.isfile(os.path.join(opts["root"], palette)):
                palette = os.path.join(opts["root"], palette)  # like the folders: relative to root when there
            opts["palette"] = config_palette(palette, "data.palette")
            if len(opts["palette"]) > int(opts["label_nc"]):
                raise ValueError(f"data.palette has {len(opts['palette'])} colours but label_nc is {opts['label_nc']}: "
                                 "one colour per class index 0..label_nc-1")
        for key in ("image_dir", "label_dir"):
            if not opts[key]:
                raise ValueError(f"data.{key} is required for the paired_folders dataset")
        root = opts["root"] or ""
        dirs = {key: os.path.join(root, opts[key]) for key in ("image_dir", "label_dir", "instance_dir") if opts[key]}
        listings = {"image": list_by_stem(dirs["image_dir"], IMAGE_EXTENSIONS, "image"),
                    "label": list_by_stem(dirs["label_dir"], MAP_EXTENSIONS, "label")}
        if "instance_dir" in dirs:
            listings["instance"] = list_by_stem(dirs["instance_dir"], MAP_EXTENSIONS, "instance")
        stems = pair_by_stem(listings)
        items = [(listings["image"][s], listings["label"][s], listings["instance"][s] if "instance" in listings else None)
                 for s in stems]
        super().__init__(opts, items, "data")
