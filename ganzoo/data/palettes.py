"""Class names and display colours of the semantic-synthesis datasets.

``class_names(dataset)`` and ``palette(dataset_or_n)`` give, for label index k, the class name and the
RGB colour. Cityscapes uses the official colours of its 35 labelIds (0..33 from the benchmark's
``labels.py`` table, 34 = license plate); ADE20K, COCO-Stuff and custom class counts use one
deterministic distinct palette (the PASCAL VOC bit-interleaved colour map; index 0 is black).
"""
import os

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
CLASS_FILES = {"ade20k": "ade20k_classes.txt", "coco_stuff": "coco_stuff_classes.txt",
               "cityscapes": "cityscapes_classes.txt"}

CITYSCAPES_COLORS = [
    (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (111, 74, 0), (81, 0, 81), (128, 64, 128),
    (244, 35, 232), (250, 170, 160), (230, 150, 140), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (180, 165, 180), (150, 100, 100), (150, 120, 90), (153, 153, 153), (153, 153, 153), (250, 170, 30),
    (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142),
    (0, 0, 70), (0, 60, 100), (0, 0, 90), (0, 0, 110), (0, 80, 100), (0, 0, 230), (119, 11, 32), (0, 0, 142),
]


def read_class_list(path):
    """One class name per line (blank lines skipped)."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def class_names(dataset):
    """Names by label index for ``ade20k`` / ``coco_stuff`` / ``cityscapes`` or a class-list file."""
    if dataset in CLASS_FILES:  # ade20k_classes.txt lists synonyms "a;b": keep the first, as segmentation.py
        return [name.split(";")[0] for name in read_class_list(os.path.join(ASSETS, CLASS_FILES[dataset]))]
    if os.path.isfile(str(dataset)):
        return read_class_list(dataset)
    raise ValueError(f"unknown dataset {dataset!r} for class names: use {', '.join(CLASS_FILES)} "
                     "or a path to a class-list file (one name per line)")


def distinct_colors(n):
    """``n`` deterministic, distinct RGB colours (the VOC colour map: bits of k spread over R, G, B)."""
    if n > 2 ** 24:
        raise ValueError(f"at most 2**24 distinct colours, asked for {n}")
    colors = []
    for k in range(n):
        r = g = b = 0
        c = k
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    return colors


def palette(dataset_or_n):
    """RGB tuples by label index: a dataset name, a class-list file, or a number of classes."""
    if isinstance(dataset_or_n, int):
        return distinct_colors(dataset_or_n)
    if dataset_or_n == "cityscapes":
        return list(CITYSCAPES_COLORS)
    return distinct_colors(len(class_names(dataset_or_n)))
