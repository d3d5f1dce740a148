"""ADE20K SceneParsing (ADEChallengeData2016) for semantic image synthesis.

Layout under ``root``::

    images/training/ADE_train_00000001.jpg      annotations/training/ADE_train_00000001.png
    images/validation/ADE_val_00000001.jpg      annotations/validation/ADE_val_00000001.png
    objectInfo150.txt                           (optional: class names)

Labels are kept raw, 0..150 with 0 = unlabeled / "other", giving 151 one-hot channels
(label_nc 150 + the dontcare channel). This is how the released NVlabs SPADE ADE20K generator was
trained (its label shift is a no-op), so its weights load and see the labels they were trained on.
"""
import os

from ganzoo.config import check_keys
from ganzoo.data.paired import IMAGE_EXTENSIONS, SegmentationPairs, TRANSFORM_DEFAULTS, list_by_stem, pair_by_stem
from ganzoo.registry import DATASETS

SPLITS = {"train": "training", "val": "validation"}


def read_class_names(root):
    """Names 1..150 from ``objectInfo150.txt`` (tab-separated, header Idx Ratio Train Val Name), or None."""
    path = os.path.join(root, "objectInfo150.txt")
    if not os.path.isfile(path):
        return None
    names = ["unlabeled"]
    with open(path) as f:
        for line in f.readlines()[1:]:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 5:
                names.append(fields[4].split(",")[0].strip())
    return names


@DATASETS.register("ade20k")
class ADE20K(SegmentationPairs):
    """ADEChallengeData2016: images/{training,validation} + annotations/{...}, 151 label channels."""

    DEFAULTS = {"root": "data/ADEChallengeData2016", "split": "train",
                **TRANSFORM_DEFAULTS, "label_nc": 150, "contain_dontcare_label": True}

    def __init__(self, **kwargs):
        opts = check_keys(kwargs, self.DEFAULTS, "data")
        if opts["split"] not in SPLITS:
            raise ValueError(f"data.split must be one of {', '.join(SPLITS)}, got {opts['split']!r}")
        root, sub = opts["root"], SPLITS[opts["split"]]
        image_dir = os.path.join(root, "images", sub)
        label_dir = os.path.join(root, "annotations", sub)
        if not os.path.isdir(image_dir) or not os.path.isdir(label_dir):
            raise FileNotFoundError(f"ADE20K root {root} must contain images/{sub}/ and annotations/{sub}/ "
                                    "(the ADEChallengeData2016 layout)")
        listings = {"image": list_by_stem(image_dir, IMAGE_EXTENSIONS, "image"),
                    "label": list_by_stem(label_dir, (".png",), "annotation")}
        stems = pair_by_stem(listings)
        super().__init__(opts, [(listings["image"][s], listings["label"][s], None) for s in stems], "data")
        self.class_names = read_class_names(root)
