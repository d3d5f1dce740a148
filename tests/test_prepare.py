"""ganzoo-prepare on tiny trees and archives written in the official layouts (counts via a small table)."""
import dataclasses
import functools
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from ganzoo.cli import prepare as prepare_cli
from ganzoo.data import prepare

# a 6 x 7 label map (value 10, one unlabeled 255 pixel) and its hand-computed SPADE instance map
LABEL = np.full((6, 7), 10, np.uint8)
LABEL[5, 6] = 255
EXPECTED_INST = np.array([
    [0, 0, 0, 0, 10, 10, 10],
    [0, 0, 0, 0, 10, 10, 10],
    [0, 0, 0, 1, 1, 1, 1],
    [10, 10, 10, 1, 1, 1, 10],
    [10, 10, 10, 1, 1, 10, 10],
    [10, 10, 10, 1, 10, 10, 255],
], np.uint8)
ANNOTATIONS = [  # image 1: a square (value 0), a crowd RLE (skipped), a triangle (value 1) over the square's corner
    {"id": 11, "image_id": 1, "iscrowd": 0, "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
    {"id": 12, "image_id": 1, "iscrowd": 1, "segmentation": {"counts": [0, 42], "size": [6, 7]}},
    {"id": 13, "image_id": 1, "iscrowd": 0, "segmentation": [[4, 3, 7, 3, 4, 6]]},
    # image 2: one annotation made of two polygons, both painted 0
    {"id": 21, "image_id": 2, "iscrowd": 0, "segmentation": [[1, 1, 2, 1, 2, 2, 1, 2], [5, 5, 6, 5, 6, 6, 5, 6]]},
]


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def jpg_bytes(h=6, w=7):
    buffer = io.BytesIO()
    Image.new("RGB", (w, h), (90, 120, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_zip(path, members):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def write_tar(path, members):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(autouse=True)
def no_published_checksums(monkeypatch):
    """The tiny archives are not the published ones: tests that check checksums set them."""
    for name, archive in list(prepare.ARCHIVES.items()):
        monkeypatch.setitem(prepare.ARCHIVES, name, dataclasses.replace(archive, checksum=None))


def with_checksum(monkeypatch, name, algorithm, digest):
    archive = dataclasses.replace(prepare.ARCHIVES[name], checksum=(algorithm, digest))
    monkeypatch.setitem(prepare.ARCHIVES, name, archive)


def files_with_mtimes(root):
    return {os.path.join(d, n): os.stat(os.path.join(d, n)).st_mtime_ns for d, _, names in os.walk(root) for n in names}


# ---------------------------------------------------------------------------- instance maps

def test_polygon_pixels_hand_computed():
    # square with corners (row, col) (0,0)-(2,3): boundary included -> a 3 x 4 block
    rr, cc = prepare.polygon_pixels([0, 0, 2, 2], [0, 3, 3, 0], (6, 7))
    mask = np.zeros((6, 7), bool)
    mask[rr, cc] = True
    assert mask.sum() == 12 and mask[:3, :4].all()
    # clipped to the image
    rr, cc = prepare.polygon_pixels([-3, -3, 10, 10], [-3, 20, 20, -3], (6, 7))
    assert len(rr) == 42 and rr.max() == 5 and cc.max() == 6


def test_coco_instance_map_hand_computed():
    inst = prepare.coco_instance_map(LABEL, ANNOTATIONS[:3])
    np.testing.assert_array_equal(inst, EXPECTED_INST)
    assert LABEL[0, 0] == 10  # the label map is not modified
    two = prepare.coco_instance_map(LABEL, ANNOTATIONS[3:])
    assert two[0, 0] == 0 and two[4, 4] == 0 and two[0, 1] == 0 and two[2, 2] == 10 and (two == 0).sum() == 8


def test_polygon_pixels_match_scikit_image():
    draw = pytest.importorskip("skimage.draw")
    rng = np.random.default_rng(0)
    for trial in range(200):
        points = rng.integers(0, 16, (rng.integers(3, 9), 2)).astype(float)  # integer vertices: many edge cases
        if trial % 2:
            points = rng.uniform(-2, 18, points.shape)
        ours = np.zeros((16, 16), bool)
        ours[prepare.polygon_pixels(points[:, 0], points[:, 1], (16, 16))] = True
        theirs = np.zeros((16, 16), bool)
        theirs[draw.polygon(points[:, 0], points[:, 1], (16, 16))] = True
        np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------------------- COCO-Stuff from its zips

def coco_zips(folder):
    """The four official COCO-Stuff downloads, tiny: 2 train images, 1 val image."""
    instances = {
        "train": {"images": [{"id": 1, "file_name": "000000000001.jpg", "height": 6, "width": 7},
                             {"id": 2, "file_name": "000000000002.jpg", "height": 6, "width": 7}],
                  "annotations": ANNOTATIONS, "categories": [{"id": 1, "name": "person"}]},
        "val": {"images": [{"id": 3, "file_name": "000000000003.jpg", "height": 6, "width": 7}],
                "annotations": [], "categories": [{"id": 1, "name": "person"}]},
    }
    write_zip(f"{folder}/train2017.zip", {"train2017/": b"", "train2017/000000000001.jpg": jpg_bytes(),
                                          "train2017/000000000002.jpg": jpg_bytes()})
    write_zip(f"{folder}/val2017.zip", {"val2017/000000000003.jpg": jpg_bytes()})
    write_zip(f"{folder}/stuffthingmaps_trainval2017.zip", {
        "train2017/000000000001.png": png_bytes(LABEL), "train2017/000000000002.png": png_bytes(LABEL),
        "val2017/000000000003.png": png_bytes(LABEL)})
    write_zip(f"{folder}/annotations_trainval2017.zip", {
        "annotations/instances_train2017.json": json.dumps(instances["train"]),
        "annotations/instances_val2017.json": json.dumps(instances["val"]),
        "annotations/captions_train2017.json": "{}"})


COCO_COUNTS = {"train": 2, "val": 1}


def test_coco_stuff_built_from_the_official_zips_and_idempotent(tmp_path):
    root = str(tmp_path / "coco_stuff")
    coco_zips(f"{root}/downloads")
    lines = []
    assert prepare.prepare("coco-stuff", root, counts=COCO_COUNTS, progress=False, log=lines.append) == 0
    assert sorted(os.listdir(f"{root}/train_img")) == ["000000000001.jpg", "000000000002.jpg"]
    assert os.listdir(f"{root}/val_label") == ["000000000003.png"]
    assert not os.path.exists(f"{root}/annotations/captions_train2017.json")  # only what the build reads
    inst = np.asarray(Image.open(f"{root}/train_inst/000000000001.png"))
    np.testing.assert_array_equal(inst, EXPECTED_INST)
    np.testing.assert_array_equal(np.asarray(Image.open(f"{root}/val_inst/000000000003.png")), LABEL)
    manifest = json.load(open(f"{root}/{prepare.MANIFEST}"))
    assert manifest["extracted"]["train2017.zip"] == ["train", "val"]
    assert "complete" in lines[-1]

    before = files_with_mtimes(root)
    lines = []
    assert prepare.prepare("coco-stuff", root, counts=COCO_COUNTS, progress=False, log=lines.append) == 0
    assert files_with_mtimes(root) == before and lines == [lines[0]] and "nothing to do" in lines[0]

    # the dataset class of the other helper reads the result, when present
    coco = pytest.importorskip("ganzoo.data.coco_stuff")
    data = coco.COCOStuff(root=root, split="train", load_size=8, crop_size=8)
    assert len(data) == 2 and "instance" in data[0]


def test_coco_stuff_instance_maps_in_worker_processes(tmp_path):
    root = str(tmp_path / "coco_stuff")
    coco_zips(f"{root}/downloads")
    assert prepare_cli.main(["coco-stuff", root, "--split", "train", "--workers", "2", "--no-progress"]) == 1  # counts
    np.testing.assert_array_equal(np.asarray(Image.open(f"{root}/train_inst/000000000001.png")), EXPECTED_INST)
    assert len(os.listdir(f"{root}/train_inst")) == 2


def test_coco_stuff_interrupted_build_continues(tmp_path, monkeypatch):
    root = str(tmp_path / "coco_stuff")
    coco_zips(root)  # archives placed in ROOT itself
    real = prepare.coco_instance_map
    calls = []

    def dies_on_second(label, annotations):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(label, annotations)
    monkeypatch.setattr(prepare, "coco_instance_map", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare("coco-stuff", root, splits=["train"], counts=COCO_COUNTS, progress=False, log=lambda s: None)
    assert os.listdir(f"{root}/train_inst") == ["000000000001.png"]  # atomic: no half-written second file
    first = os.stat(f"{root}/train_inst/000000000001.png").st_mtime_ns
    monkeypatch.setattr(prepare, "coco_instance_map", real)
    lines = []
    assert prepare.prepare("coco-stuff", root, splits=["train"], counts=COCO_COUNTS, progress=False,
                           log=lines.append) == 0
    assert os.stat(f"{root}/train_inst/000000000001.png").st_mtime_ns == first
    assert not any(line.startswith("extracting") for line in lines)  # the manifest knows the zips are done
    assert len(os.listdir(f"{root}/train_inst")) == 2


def test_interrupted_extraction_continues(tmp_path):
    root = str(tmp_path / "ade")
    write_zip(f"{root}/downloads/ADEChallengeData2016.zip", ade_members(3, 1))
    os.makedirs(f"{root}/images/training")
    with open(f"{root}/images/training/ADE_train_00000001.jpg", "wb") as f:  # left by an interrupted run
        f.write(jpg_bytes())
    kept = os.stat(f"{root}/images/training/ADE_train_00000001.jpg").st_mtime_ns
    assert prepare.prepare("ade20k", root, counts={"train": 3, "val": 1}, progress=False, log=lambda s: None) == 0
    assert os.stat(f"{root}/images/training/ADE_train_00000001.jpg").st_mtime_ns == kept
    assert len(os.listdir(f"{root}/annotations/training")) == 3


def test_missing_parts_are_listed_with_url_and_size(tmp_path, capsys):
    root = str(tmp_path / "coco")
    os.makedirs(f"{root}/train_img")
    for i in range(2):
        with open(f"{root}/train_img/{i}.jpg", "wb") as f:
            f.write(jpg_bytes())
    assert prepare.prepare("coco-stuff", root, splits=["train"], counts=COCO_COUNTS, progress=False) == 1
    out = capsys.readouterr().out
    assert "train_img" not in out and "train2017.zip" not in out  # the complete part needs no archive
    assert ("missing stuffthingmaps_trainval2017.zip (659 MB) from http://calvin.inf.ed.ac.uk/wp-content/uploads/"
            "data/cocostuffdataset/stuffthingmaps_trainval2017.zip") in out
    assert "missing annotations_trainval2017.zip (241 MB)" in out and "train2017.zip (18 GB)" not in out
    assert "train: train_label/*.png: 0 files, expected 2" in out and "incomplete" in out


# ---------------------------------------------------------------------------- ADE20K, download through a mirror

def ade_members(n_train, n_val):
    members = {"ADEChallengeData2016/objectInfo150.txt": b"Idx\tRatio\tTrain\tVal\tName\n"}
    for split, sub, n in (("train", "training", n_train), ("val", "validation", n_val)):
        for i in range(1, n + 1):
            members[f"ADEChallengeData2016/images/{sub}/ADE_{split}_{i:08d}.jpg"] = jpg_bytes()
            members[f"ADEChallengeData2016/annotations/{sub}/ADE_{split}_{i:08d}.png"] = png_bytes(LABEL)
    return members


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; yields (www folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_through_the_mirror_verifies_and_extracts(tmp_path, server, monkeypatch):
    www, base = server
    zip_path = write_zip(str(www / "places/ADEchallenge/ADEChallengeData2016.zip"), ade_members(2, 1))
    sha1 = hashlib.sha1(open(zip_path, "rb").read()).hexdigest()
    name = "ADEChallengeData2016.zip"
    with_checksum(monkeypatch, name, "sha1", sha1)
    monkeypatch.setenv("GANZOO_MIRROR", base)
    monkeypatch.delenv("GANZOO_OFFLINE", raising=False)
    monkeypatch.setitem(prepare.COUNTS, "ade20k", {"train": 2, "val": 1})
    root = str(tmp_path / "ADEChallengeData2016")
    assert prepare_cli.main(["ade20k", root, "--download", "--no-progress"]) == 0
    assert os.path.isfile(f"{root}/downloads/{name}") and os.path.isfile(f"{root}/objectInfo150.txt")
    assert sorted(os.listdir(f"{root}/images/validation")) == ["ADE_val_00000001.jpg"]
    from ganzoo.data.ade20k import ADE20K
    assert len(ADE20K(root=root, split="train")) == 2


def test_download_with_a_wrong_checksum_keeps_nothing(tmp_path, server, monkeypatch, capsys):
    www, base = server
    write_zip(str(www / "places/ADEchallenge/ADEChallengeData2016.zip"), ade_members(1, 1))
    with_checksum(monkeypatch, "ADEChallengeData2016.zip", "sha1", "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7")
    monkeypatch.setenv("GANZOO_MIRROR", base)
    monkeypatch.delenv("GANZOO_OFFLINE", raising=False)
    root = str(tmp_path / "ade")
    assert prepare_cli.main(["ade20k", root, "--download", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sha1" in err[0] and "219e1696" in err[0]
    assert os.listdir(f"{root}/downloads") == [] and not os.path.exists(f"{root}/images")


def test_offline_download_is_one_line_and_fetches_nothing(tmp_path, server, monkeypatch, capsys):
    write_zip(str(server[0] / "places/ADEchallenge/ADEChallengeData2016.zip"), ade_members(1, 1))
    monkeypatch.setenv("GANZOO_MIRROR", server[1])
    monkeypatch.setenv("GANZOO_OFFLINE", "1")
    assert prepare_cli.main(["ade20k", str(tmp_path / "ade"), "--download", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "offline" in err[0] and "ADEChallengeData2016.zip" in err[0]
    assert not os.path.exists(tmp_path / "ade" / "downloads" / "ADEChallengeData2016.zip")


def test_cityscapes_needs_a_login_and_is_never_fetched(tmp_path, server, monkeypatch, capsys):
    monkeypatch.setenv("GANZOO_MIRROR", server[1])
    assert prepare_cli.main(["cityscapes", str(tmp_path / "cs"), "--download", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "needs a free login at https://www.cityscapes-dataset.com/downloads/" in out
    assert "gtFine_trainvaltest.zip (241 MB)" in out and not os.path.exists(tmp_path / "cs" / "downloads")


# ---------------------------------------------------------------------------- Cityscapes, Places365

def cityscapes_members(frames):
    members = {"README": b"", "license.txt": b""}
    for split, city, seq in frames:
        stem = f"{city}_{seq:06d}_000019"
        members[f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png"] = png_bytes(np.zeros((4, 8, 3), np.uint8))
        for kind in ("labelIds", "instanceIds", "color"):
            members[f"gtFine/{split}/{city}/{stem}_gtFine_{kind}.png"] = png_bytes(LABEL)
        members[f"gtFine/{split}/{city}/{stem}_gtFine_polygons.json"] = b"{}"
    return members


def test_cityscapes_checks_label_and_instance_ids(tmp_path, capsys):
    root = str(tmp_path / "cityscapes")
    frames = [("train", "aachen", 0), ("train", "bremen", 1), ("val", "lindau", 2), ("test", "berlin", 3)]
    members = cityscapes_members(frames)
    write_zip(f"{root}/gtFine_trainvaltest.zip", {k: v for k, v in members.items() if not k.startswith("left")})
    write_zip(f"{root}/leftImg8bit_trainvaltest.zip", {k: v for k, v in members.items() if k.startswith("left")})
    counts = {"train": 2, "val": 1}
    assert prepare.prepare("cityscapes", root, counts=counts, progress=False) == 0
    assert sorted(os.listdir(f"{root}/gtFine/train/aachen")) == [
        "aachen_000000_000019_gtFine_instanceIds.png", "aachen_000000_000019_gtFine_labelIds.png"]
    assert not os.path.exists(f"{root}/gtFine/test")  # only the asked splits
    os.remove(f"{root}/gtFine/val/lindau/lindau_000002_000019_gtFine_instanceIds.png")
    capsys.readouterr()
    assert prepare.prepare("cityscapes", root, counts=counts, progress=False) == 1
    out = capsys.readouterr().out
    assert "val: gtFine/val/<city>/*_gtFine_instanceIds.png: 0 files, expected 1" in out
    assert "was extracted before" in out


def places_tars(folder):
    categories = "".join(f"/c/cat{i:03d} {i}\n" for i in range(365)).encode()
    write_tar(f"{folder}/filelist_places365-standard.tar", {
        "categories_places365.txt": categories,
        "places365_train_standard.txt": b"/c/cat000/00000001.jpg 0\n/c/cat001/00000001.jpg 1\n",
        "places365_val.txt": b"Places365_val_00000001.jpg 0\n"})
    write_tar(f"{folder}/train_256_places365standard.tar", {"data_256/c/cat000/00000001.jpg": jpg_bytes(),
                                                             "data_256/c/cat001/00000001.jpg": jpg_bytes()})
    write_tar(f"{folder}/val_256.tar", {"val_256/Places365_val_00000001.jpg": jpg_bytes()})


def test_places365_official_tars_and_easy_format(tmp_path, monkeypatch):
    root = str(tmp_path / "places")
    places_tars(f"{root}/downloads")
    for name in ("filelist_places365-standard.tar", "train_256_places365standard.tar", "val_256.tar"):
        with_checksum(monkeypatch, name, "md5", hashlib.md5(open(f"{root}/downloads/{name}", "rb").read()).hexdigest())
    counts = {"train": 2, "val": 1}
    assert prepare.prepare("places365", root, splits=["val"], counts=counts, progress=False) == 0
    assert not os.path.exists(f"{root}/data_256")  # val only: the 24 GB train tar is not touched
    assert prepare.prepare("places365", root, counts=counts, progress=False) == 0
    from ganzoo.data.places365 import Places365
    assert len(Places365(root=root, split="train", image_size=4)) == 2

    easy = tmp_path / "easy"
    for i in range(2):
        (easy / "train" / f"cat{i}").mkdir(parents=True)
        (easy / "train" / f"cat{i}" / "1.jpg").write_bytes(jpg_bytes())
    assert prepare.prepare("places365", str(easy), splits=["train"], counts=counts, progress=False) == 0
    assert prepare.prepare("places365", str(easy), splits=["train"], counts={"train": 3}, progress=False) == 1


def test_a_found_archive_with_a_wrong_checksum_is_an_error(tmp_path, monkeypatch):
    with_checksum(monkeypatch, "filelist_places365-standard.tar", "md5", "35a0585fee1fa656440f3ab298f8479c")
    root = str(tmp_path / "places")
    places_tars(root)
    with pytest.raises(ValueError, match="md5 .* does not match the published 35a0585f"):
        prepare.prepare("places365", root, splits=["val"], counts={"val": 1}, progress=False)


# ---------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("argv, message", [
    (["imagenet", "ROOT"], "unknown dataset 'imagenet'"),
    (["ade20k", "ROOT", "--split", "test"], "unknown split 'test'"),
    (["ade20k", "FILE"], "is a file, not a folder"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "FILE").write_text("x")
    argv = [str(tmp_path / a) if a in ("ROOT", "FILE") else a for a in argv]
    assert prepare_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
