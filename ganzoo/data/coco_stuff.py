"""COCO-Stuff 164k in the layout of the SPADE reference, with its conventions.

Layout under ``root`` (paired by file stem)::

    train_img/000000000009.jpg    train_label/000000000009.png    train_inst/000000000009.png
    val_img/...                   val_label/...                   val_inst/...
    train_img_portrait/ ...       (optional, train only: the reference's extra portrait triples)

Labels are the 182 stuff+thing ids 0..181 with 255 = unlabeled, mapped to index 182 (the dontcare
channel): 183 one-hot channels, plus one instance-edge channel from ``*_inst`` (SPADE's 184). The
instance maps are not part of the COCO download: SPADE builds them from the annotations
(``ganzoo-prepare coco-stuff ROOT`` does the same). Preprocessing as the reference: resize to
``load_size`` (286 train, 256 val), random 256 crop, horizontal flip when training.
"""
import os

from ganzoo.config import check_keys
from ganzoo.data.paired import IMAGE_EXTENSIONS, SegmentationPairs, TRANSFORM_DEFAULTS, list_by_stem, pair_by_stem
from ganzoo.data.palettes import class_names
from ganzoo.registry import DATASETS

SPLITS = ("train", "val")
LOAD_SIZE = {"train": 286, "val": 256}  # the reference's train / test defaults


def split_defaults(opts, load_sizes=None):
    """Fill ``load_size`` / ``flip`` left at null with the split's value (flips when training only)."""
    if opts["split"] not in SPLITS:
        raise ValueError(f"data.split must be one of {', '.join(SPLITS)}, got {opts['split']!r}")
    if opts["load_size"] is None and load_sizes:
        opts["load_size"] = load_sizes[opts["split"]]
    if opts["flip"] is None:
        opts["flip"] = opts["split"] == "train"
    return opts


@DATASETS.register("coco_stuff")
class COCOStuff(SegmentationPairs):
    """COCO-Stuff as SPADE reads it: {split}_img / {split}_label / {split}_inst, 182 labels + dontcare."""

    DEFAULTS = {"root": "data/coco_stuff", "split": "train", **TRANSFORM_DEFAULTS,
                "load_size": None, "flip": None,  # null: 286 and flip for train, 256 and no flip for val
                "label_nc": 182, "contain_dontcare_label": True, "use_instance": True, "portraits": True}

    def __init__(self, **kwargs):
        opts = split_defaults(check_keys(kwargs, self.DEFAULTS, "data"), LOAD_SIZE)
        root, split = opts["root"], opts["split"]
        kinds = {"image": "img", "label": "label"}
        if opts["use_instance"]:
            kinds["instance"] = "inst"
        expected = [f"{split}_{sub}" for sub in kinds.values()]
        missing = [name for name in expected if not os.path.isdir(os.path.join(root, name))]
        if missing:
            hint = ("; instance maps: ganzoo-prepare coco-stuff ROOT builds them, or set data.use_instance=false"
                    if f"{split}_inst" in missing else "")
            raise FileNotFoundError(f"COCO-Stuff root {root} must contain {'/, '.join(expected)}/ (SPADE's layout); "
                                    f"missing {'/, '.join(missing)}/{hint}")
        suffixes = [""]
        if split == "train" and opts["portraits"] and os.path.isdir(os.path.join(root, "train_label_portrait")):
            suffixes.append("_portrait")
        listings = {}
        for suffix in suffixes:
            for what, sub in kinds.items():
                extensions = IMAGE_EXTENSIONS if what == "image" else (".png",)
                found = list_by_stem(os.path.join(root, f"{split}_{sub}{suffix}"), extensions, what)
                listings.setdefault(what, {}).update(found)
        stems = pair_by_stem(listings)
        instances = listings.get("instance", {})
        items = [(listings["image"][s], listings["label"][s], instances.get(s)) for s in stems]
        super().__init__(opts, items, "data")
        self.class_names = class_names("coco_stuff") + ["unlabeled"]
