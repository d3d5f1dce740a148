"""Places365 (both on-disk layouts) and the image-folder dataset."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.config import ConfigError
from ganzoo.data.image_folder import ImageTransform
from ganzoo.registry import DATASETS

pytestmark = pytest.mark.filterwarnings("ignore:.*category folders")
CATEGORIES = ["/a/airfield 0", "/b/bus_station/indoor 1", "/z/zen_garden 2"]


def _png(path, value, size=(64, 64)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def write_official(root, per_class=2, size=64):
    """Official layout: lists + data_256_standard/ + val_256/ (file names as in the real lists)."""
    lines, val = [], []
    for label, line in enumerate(CATEGORIES):
        cat = line.split()[0]
        for i in range(per_class):
            rel = f"{cat}/{i + 1:08d}.jpg"
            _png(os.path.join(root, "data_256_standard", rel.lstrip("/")), 40 * label, (size, size))
            lines.append(f"{rel} {label}")
        name = f"Places365_val_{label + 1:08d}.jpg"
        _png(os.path.join(root, "val_256", name), 40 * label, (size, size))
        val.append(f"{name} {label}")
    for name, content in (("places365_train_standard.txt", lines), ("places365_val.txt", val),
                          ("categories_places365.txt", CATEGORIES)):
        with open(os.path.join(root, name), "w") as f:
            f.write("\n".join(content))  # no trailing newline, like the real categories file


def write_easy(root, per_class=2, size=64, list_file=False):
    """Easy format: {train,val}/<category with '-' for sub-categories>/*.jpg."""
    entries = []
    for label, line in enumerate(CATEGORIES):
        folder = line.split()[0][3:].replace("/", "-")
        for split in ("train", "val"):
            for i in range(per_class):
                rel = f"{split}/{folder}/{i:08d}.jpg"
                _png(os.path.join(root, rel), 40 * label, (size, size))
                if split == "train":
                    entries.append(f"/{rel} {label}")
    if list_file:
        with open(os.path.join(root, "train.txt"), "w") as f:
            f.write("\n".join(entries) + "\n")


def test_official_layout(tmp_path):
    write_official(str(tmp_path))
    ds = DATASETS.build({"type": "places365", "root": str(tmp_path), "image_size": 32, "crop": "center"})
    assert ds.layout == "official" and len(ds) == 6
    assert ds.classes == ["airfield", "bus_station-indoor", "zen_garden"]
    item = ds[2]
    assert item["image"].shape == (3, 32, 32) and item["class"].item() == 1
    # fixed affine scaling: pixel 40 -> 40 / 127.5 - 1
    assert torch.allclose(item["image"], torch.full((3, 32, 32), 40 / 127.5 - 1), atol=1e-6)
    val = DATASETS.build({"type": "places365", "root": str(tmp_path), "split": "val", "image_size": 64})
    assert [val[i]["class"].item() for i in range(3)] == [0, 1, 2]
    assert val[0]["path"].endswith("val_256/Places365_val_00000001.jpg")


@pytest.mark.parametrize("list_file", [False, True])
def test_easy_layout(tmp_path, list_file):
    write_easy(str(tmp_path), list_file=list_file)
    ds = DATASETS.build({"type": "places365", "root": str(tmp_path), "image_size": 64, "max_items": 5})
    assert ds.layout == "easy" and len(ds) == 5
    labels = [ds[i]["class"].item() for i in range(5)]
    assert labels == [0, 0, 1, 1, 2]
    assert ds[4]["image"].min() == pytest.approx(80 / 127.5 - 1, abs=1e-6)


def test_easy_layout_labels_follow_categories_file(tmp_path):
    write_easy(str(tmp_path))
    # with the categories file, its indices win over the folder order
    with open(tmp_path / "categories_places365.txt", "w") as f:
        f.write("/z/zen_garden 0\n/a/airfield 1\n/b/bus_station/indoor 2\n")
    ds = DATASETS.build({"type": "places365", "root": str(tmp_path), "image_size": 64})
    assert ds[0]["path"].endswith("airfield/00000000.jpg") and ds[0]["class"].item() == 1


def test_wrong_root_one_line_error(tmp_path):
    for root in (tmp_path / "missing", tmp_path):
        with pytest.raises(FileNotFoundError, match="places365standard_easyformat.tar.*places365_train_standard") as e:
            DATASETS.build({"type": "places365", "root": str(root)})
        assert "\n" not in str(e.value)
    (tmp_path / "places365_train_standard.txt").write_text("/a/airfield/1.jpg 0\n")
    with pytest.raises(FileNotFoundError, match="none of the image folders data_256_standard"):
        DATASETS.build({"type": "places365", "root": str(tmp_path)})
    with pytest.raises(ConfigError, match="unknown key data.imagesize"):
        DATASETS.build({"type": "places365", "root": str(tmp_path), "imagesize": 3})


def test_transform_resize_crop_flip():
    image = Image.fromarray(np.arange(40 * 80 * 3, dtype=np.uint8).reshape(40, 80, 3))
    out = ImageTransform(32, crop="center")(image)
    assert out.shape == (3, 32, 32) and out.min() >= -1 and out.max() <= 1
    assert ImageTransform(32, load_size=48, crop="random")(image).shape == (3, 32, 32)
    assert ImageTransform(16, crop="none")(image).shape == (3, 16, 16)
    torch.manual_seed(0)
    flips = {tuple(ImageTransform(32, flip=True)(image)[0, 0, :2].tolist()) for _ in range(20)}
    assert len(flips) == 2
    with pytest.raises(ValueError, match="crop"):
        ImageTransform(32, crop="middle")


def test_image_folder(tmp_path):
    _png(str(tmp_path / "cats" / "a.png"), 0)
    _png(str(tmp_path / "dogs" / "b.jpg"), 255)
    (tmp_path / "notes.txt").write_text("x")
    ds = DATASETS.build({"type": "image_folder", "root": str(tmp_path), "image_size": 32, "labels": "folders"})
    assert len(ds) == 2 and ds.classes == ["cats", "dogs"]
    assert ds[1]["class"].item() == 1 and ds[1]["image"].max().item() == pytest.approx(1)
    plain = DATASETS.build({"type": "image_folder", "root": str(tmp_path), "image_size": 32})
    assert "class" not in plain[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        DATASETS.build({"type": "image_folder", "root": str(tmp_path / "empty")})
    with pytest.raises(FileNotFoundError, match="not a directory"):
        DATASETS.build({"type": "image_folder", "root": str(tmp_path / "missing")})
