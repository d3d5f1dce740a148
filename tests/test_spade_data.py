"""SPADE data: ADE20K and paired-folders loaders, shared geometry, label checks, instance edges."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.data import segmap
from ganzoo.layers.onehot import instance_edges, one_hot
from ganzoo.registry import DATASETS

torch.set_num_threads(1)

DATA = os.path.join(os.path.dirname(__file__), "data")
ADE20K_TINY = {"root": os.path.join(DATA, "ade20k_tiny"), "crop_size": 32, "load_size": 36}
PAIRED_TINY = {"root": os.path.join(DATA, "paired_tiny"), "image_dir": "images", "label_dir": "labels",
               "instance_dir": "instances", "crop_size": 32, "load_size": 36, "label_nc": 3,
               "contain_dontcare_label": True}


def write_pair(root, stem, label, image=None, sub=("images", "labels"), ext=".png"):
    os.makedirs(os.path.join(root, sub[0]), exist_ok=True)
    os.makedirs(os.path.join(root, sub[1]), exist_ok=True)
    if image is None:  # the image encodes x in red and y in green, to check alignment with the label
        h, w = label.shape
        image = np.zeros((h, w, 3), np.uint8)
        image[..., 0] = np.arange(w)[None, :] * 4
        image[..., 1] = np.arange(h)[:, None] * 4
    Image.fromarray(image).save(os.path.join(root, sub[0], stem + ext))
    Image.fromarray(label.astype(np.uint8), mode="L").save(os.path.join(root, sub[1], stem + ".png"))


def ade_tree(tmp_path, labels):
    root = tmp_path / "ADEChallengeData2016"
    for i, label in enumerate(labels, 1):
        write_pair(str(root), f"ADE_train_{i:08d}", label, sub=("images/training", "annotations/training"))
    return str(root)


def test_ade20k_raw_labels_151_channels_and_geometry(tmp_path):
    label = np.zeros((40, 60), np.uint8)
    label[:, 30:] = 150          # right half: the last ADE class
    label[10:20, 5:15] = 7
    root = ade_tree(tmp_path, [label])
    torch.manual_seed(0)
    ds = DATASETS.build({"type": "ade20k", "root": root, "preprocess_mode": "resize_and_crop", "load_size": 36,
                         "crop_size": 32, "flip": True})
    assert len(ds) == 1 and ds.num_classes == 151 and ds.use_instance is False
    sample = ds[0]
    assert sample["image"].shape == (3, 32, 32) and sample["label"].shape == (1, 32, 32)
    assert sample["label"].dtype == torch.int64 and set(sample["label"].unique().tolist()) <= {0, 7, 150}
    assert 150 in sample["label"].unique().tolist()  # raw labels, no shift (released-model convention)
    # label and image share one geometry: the red channel (x) is monotone along the label's class-150 edge
    red = sample["image"][0]
    cols150 = (sample["label"][0] == 150).float().mean(0) > 0.5
    flipped = bool(red[0, 0] > red[0, -1])
    assert cols150[0 if flipped else -1] and not cols150[-1 if flipped else 0]


def test_ade20k_missing_layout_and_class_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="images/training/ and annotations/training/"):
        DATASETS.build({"type": "ade20k", "root": str(tmp_path)})
    ds = DATASETS.build({"type": "ade20k", **ADE20K_TINY})
    assert ds.class_names[0] == "unlabeled" and ds.class_names[150] == "class150" and len(ds.class_names) == 151


def test_paired_folders_pairing_error_lists_unpaired(tmp_path):
    root = str(tmp_path)
    write_pair(root, "a", np.zeros((8, 8)))
    write_pair(root, "b", np.zeros((8, 8)))
    os.remove(os.path.join(root, "labels", "b.png"))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(os.path.join(root, "labels", "c.png"))
    with pytest.raises(ValueError, match=r"no image for 1 file\(s\): c; no label for 1 file\(s\): b"):
        DATASETS.build({"type": "paired_folders", "root": root, "image_dir": "images", "label_dir": "labels"})
    with pytest.raises(ValueError, match="data.image_dir is required"):
        DATASETS.build({"type": "paired_folders", "label_dir": "labels"})


def test_label_range_error_names_file_and_value(tmp_path):
    root = str(tmp_path)
    label = np.zeros((8, 8)); label[0, 0] = 13
    write_pair(root, "bad", label)
    ds = DATASETS.build({"type": "paired_folders", "root": root, "image_dir": "images", "label_dir": "labels",
                         "label_nc": 13, "crop_size": 8, "load_size": 8})
    with pytest.raises(ValueError) as err:
        ds[0]
    message = str(err.value)
    assert "bad.png" in message and "label value 13" in message and "\n" not in message
    # 255 = unlabeled -> index label_nc, valid only with contain_dontcare_label
    label[0, 0] = 255
    write_pair(root, "bad", label)
    with pytest.raises(ValueError, match="label value 13 "):
        ds[0]
    ds = DATASETS.build({"type": "paired_folders", "root": root, "image_dir": "images", "label_dir": "labels",
                         "label_nc": 13, "contain_dontcare_label": True, "crop_size": 8, "load_size": 8})
    assert ds[0]["label"].max() == 13 and ds.num_classes == 14


def test_paired_folders_with_instances_and_rgb_label_error(tmp_path):
    ds = DATASETS.build({"type": "paired_folders", **PAIRED_TINY})
    sample = ds[1]
    assert ds.use_instance and sample["instance"].shape == (1, 32, 32) and sample["instance"].max() == 2
    assert sample["label"].max() == 3  # 255 (dontcare) -> label_nc
    root = str(tmp_path)
    write_pair(root, "x", np.zeros((8, 8)))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(os.path.join(root, "labels", "x.png"))
    ds = DATASETS.build({"type": "paired_folders", "root": root, "image_dir": "images", "label_dir": "labels"})
    with pytest.raises(ValueError, match="x.png: label map must be single-channel"):
        ds[0]


@pytest.mark.parametrize("mode,size,expected", [
    ("resize_and_crop", (60, 40), (36, 36)), ("scale_width", (60, 40), (36, 24)),
    ("scale_width_and_crop", (60, 40), (36, 24)), ("scale_shortside", (60, 40), (54, 36)),
    ("scale_shortside_and_crop", (40, 60), (36, 54)), ("fixed", (60, 40), (32, 16)),
    ("none", (70, 40), (64, 32)), ("crop", (60, 40), (60, 40))])
def test_preprocess_modes(mode, size, expected):
    assert segmap.resized_size(size, mode, load_size=36, crop_size=32, aspect_ratio=2.0) == expected
    geometry = segmap.draw_geometry(size, mode, 36, 32, 2.0, flip=False)
    img = Image.new("L", size)
    out = segmap.apply_geometry(img, geometry, 32, Image.NEAREST)
    assert out.size == ((32, 32) if "crop" in mode else expected)
    with pytest.raises(ValueError, match="preprocess mode"):
        segmap.check_mode("resize")


def test_nearest_resize_keeps_label_values(tmp_path):
    label = np.random.default_rng(0).choice([3, 9, 11], size=(37, 53))
    root = str(tmp_path)
    write_pair(root, "s", label)
    ds = DATASETS.build({"type": "paired_folders", "root": root, "image_dir": "images", "label_dir": "labels",
                         "preprocess_mode": "fixed", "crop_size": 64, "label_nc": 12})
    assert set(ds[0]["label"].unique().tolist()) <= {3, 9, 11}


def test_one_hot_and_instance_edges_against_numpy():
    rng = np.random.default_rng(0)
    inst = rng.integers(0, 3, (2, 1, 6, 7))
    edges = instance_edges(torch.from_numpy(inst)).numpy()
    expected = np.zeros_like(inst, dtype=bool)
    for n in range(2):
        for y in range(6):
            for x in range(7):
                for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < 6 and 0 <= xx < 7 and inst[n, 0, yy, xx] != inst[n, 0, y, x]:
                        expected[n, 0, y, x] = True
    assert np.array_equal(edges.astype(bool), expected)
    label = torch.tensor([[[[0, 2], [1, 2]]]])
    oh = one_hot(label, 3)
    assert oh.shape == (1, 3, 2, 2) and torch.equal(oh.argmax(1, keepdim=True), label) and oh.sum() == 4
