"""WebDataset shards: lossless round trips from registered datasets, read-time flip, the CLI and a training run."""
import json
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from ganzoo.data import shards as shards_module
from ganzoo.data.shards import expand_braces, write_shards
from ganzoo.registry import DATASETS

webdataset = pytest.importorskip("webdataset")
torch.set_num_threads(1)

DATA = os.path.join(os.path.dirname(__file__), "data")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRED = {"type": "paired_folders", "root": os.path.join(DATA, "paired_tiny"), "image_dir": "images",
          "label_dir": "labels", "instance_dir": "instances", "crop_size": 32, "load_size": 32, "label_nc": 3,
          "contain_dontcare_label": True, "flip": False}


def assert_same_items(source, shards):
    assert len(shards) == len(source)
    for i in range(len(source)):
        a, b = source[i], shards[i]
        assert sorted(a) == sorted(b)
        assert torch.equal(a["image"], b["image"])  # same uint8 values through the same x / 127.5 - 1
        for key in ("label", "instance", "class"):
            if key in a:
                assert b[key].dtype == torch.long and torch.equal(a[key], b[key])
        assert b.get("path") == a.get("path")


def test_paired_round_trip_index_and_shard_count(tmp_path, monkeypatch):
    source = DATASETS.build(PAIRED)
    out = str(tmp_path / "shards")
    index = write_shards(source, out, per_shard=1)
    assert sorted(os.listdir(out)) == ["index.json", "shard-000000.tar", "shard-000001.tar", "shard-offsets.npz"]
    with open(os.path.join(out, "index.json")) as f:
        assert json.load(f) == index
    assert index["count"] == 2 and index["keys"] == ["instance.png", "json", "label.png", "png"]
    assert index["facts"] == {"label_nc": 3, "contain_dontcare_label": True, "num_classes": 4, "use_instance": True}
    with monkeypatch.context() as patch:  # the saved member table: no tar header is scanned
        patch.setattr(shards_module, "index_tar", None)
        shards = DATASETS.build({"type": "webdataset", "path": out})
    assert (shards.num_classes, shards.use_instance, shards.flip) == (4, True, False)  # what SPADE checks
    assert_same_items(source, shards)
    assert_same_items(source, pickle.loads(pickle.dumps(shards)))  # loader workers get their own handles
    by_pattern = DATASETS.build({"type": "webdataset", "path": os.path.join(out, "shard-{000000..000001}.tar")})
    assert_same_items(source, by_pattern)  # no index.json: the tar headers are scanned
    # plain WebDataset reads them too
    samples = list(webdataset.WebDataset(os.path.join(out, "shard-{000000..000001}.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["000000000", "000000001"] and "label.png" in samples[0]
    # a rewrite with fewer shards leaves no stale shard of the same prefix
    index = write_shards(source, out, per_shard=5)
    assert index["shards"] == ["shard-000000.tar"] and "shard-000001.tar" not in os.listdir(out)
    assert_same_items(source, DATASETS.build({"type": "webdataset", "path": out}))


def save_rgb(path, seed, size=(20, 14)):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def test_image_folder_and_single_image_round_trip(tmp_path):
    for i, name in enumerate(["cats/a.png", "cats/b.png", "dogs/c.jpg"]):
        save_rgb(str(tmp_path / "folder" / name), i, size=(12, 12) if name.endswith(".jpg") else (20, 14))
    source = DATASETS.build({"type": "image_folder", "root": str(tmp_path / "folder"), "labels": "folders",
                             "image_size": 12})
    index = write_shards(source, str(tmp_path / "a"), per_shard=2, prefix="train")
    assert index["shards"] == ["train-000000.tar", "train-000001.tar"] and index["count"] == 3
    # the resized PNGs are re-encoded; the JPEG that needs no resize keeps its own (small) bytes
    members = tarfile.open(tmp_path / "a" / "train-000001.tar").getnames()
    assert "000000002.jpg" in members and "000000002.png" not in members
    with open(tmp_path / "folder" / "dogs" / "c.jpg", "rb") as f:
        assert tarfile.open(tmp_path / "a" / "train-000001.tar").extractfile("000000002.jpg").read() == f.read()
    shards = DATASETS.build({"type": "webdataset", "path": str(tmp_path / "a")})
    assert shards.classes == ["cats", "dogs"]
    assert_same_items(source, shards)
    assert [int(shards[i]["class"]) for i in range(3)] == [0, 0, 1]

    save_rgb(str(tmp_path / "one.png"), 7, size=(13, 9))
    single = DATASETS.build({"type": "single_image", "image": str(tmp_path / "one.png"), "mode": "gray"})
    write_shards(single, str(tmp_path / "b"))
    back = DATASETS.build({"type": "webdataset", "path": str(tmp_path / "b")})[0]["image"]
    original = single[0]["image"]
    assert back.shape == original.shape == (1, 9, 13)
    # single_image maps in float64 first: the 8-bit levels are exactly the same, the floats within rounding
    assert torch.equal(((back + 1) * 127.5).round(), ((original + 1) * 127.5).round())
    assert torch.allclose(back, original, atol=1e-6)


class MapsData(Dataset):
    """Label maps needing 8 bits, 16 bits and more (instance ids past 65535, negative values)."""

    def __init__(self, image=None):
        levels = torch.arange(48).reshape(1, 6, 8)
        self.image = (levels * 5).float() / 127.5 - 1.0 if image is None else image
        self.maps = [levels + 200, levels * 1000, levels * 2000 - 7]

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return {"image": self.image.expand(3, 6, 8), "label": self.maps[i], "instance": self.maps[2 - i]}


def test_maps_by_range_and_off_grid_images_refused(tmp_path):
    source = MapsData()
    write_shards(source, str(tmp_path / "maps"))
    keys = {name.split(".", 1)[1] for name in tarfile.open(tmp_path / "maps" / "shard-000000.tar").getnames()}
    assert keys == {"png", "label.png", "label.npy", "instance.png", "instance.npy"}
    assert_same_items(source, DATASETS.build({"type": "webdataset", "path": str(tmp_path / "maps")}))
    with pytest.raises(ValueError, match="not be lossless"):  # a resized / noisy float image is not 8-bit
        write_shards(MapsData(image=torch.rand(1, 6, 8)), str(tmp_path / "bad"))
    assert not os.path.exists(tmp_path / "bad" / "index.json") and os.listdir(tmp_path / "bad") == []


def test_flip_at_read_time_moves_image_and_maps_together(tmp_path):
    source = DATASETS.build(PAIRED)
    write_shards(source, str(tmp_path / "s"), flip=True)
    shards = DATASETS.build({"type": "webdataset", "path": str(tmp_path / "s")})
    assert shards.flip and not DATASETS.build({"type": "webdataset", "path": str(tmp_path / "s"), "flip": False}).flip
    plain = source[0]
    seen = set()
    torch.manual_seed(0)
    for _ in range(16):
        item = shards[0]
        flipped = torch.equal(item["image"], plain["image"].flip(-1))
        assert flipped or torch.equal(item["image"], plain["image"])
        for key in ("label", "instance"):
            assert torch.equal(item[key], plain[key].flip(-1) if flipped else plain[key])
        seen.add(flipped)
    assert seen == {True, False}


def test_bad_paths_are_one_line_errors(tmp_path):
    assert expand_braces("s-{08..10}-{a,b}.tar") == ["s-08-a.tar", "s-08-b.tar", "s-09-a.tar", "s-09-b.tar",
                                                      "s-10-a.tar", "s-10-b.tar"]
    with pytest.raises(FileNotFoundError, match="no index.json"):
        DATASETS.build({"type": "webdataset", "path": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match="shard-000001.tar not found"):
        DATASETS.build({"type": "webdataset", "path": str(tmp_path / "shard-{000001..000002}.tar")})
    (tmp_path / "x.tar").write_bytes(b"not a tar" * 100)
    with pytest.raises(ValueError, match="not a readable"):
        DATASETS.build({"type": "webdataset", "path": str(tmp_path / "x.tar")})


def spade_config(tmp_path, data):
    path = tmp_path / "spade.yaml"
    path.write_text(
        "model:\n  type: spade\n  label_nc: 3\n  contain_dontcare_label: true\n  use_instance: true\n"
        "  crop_size: 32\n  lambda_vgg: 0.0\n"
        "  generator: {type: spade_generator, ngf: 8, norm: {type: spade, param_free: batch, hidden: 16, kernel: 3}}\n"
        "  discriminator: {type: multiscale_patchgan, num_d: 1, n_layers: 2, ndf: 8, norm: instance}\n"
        f"data: {json.dumps(data)}\n"
        "train: {steps: 2, batch_size: 2, threads: 1}\n"
        "run: {log_every: 1, sample_every: 0, ckpt_every: 0, progress: false}\n")
    return str(path)


def test_cli_writes_shards_and_spade_trains_from_them(tmp_path, capsys):
    from ganzoo.cli.shards import main as shards_main
    from ganzoo.cli.train import main as train_main
    paired = {k: v for k, v in PAIRED.items() if k not in ("type", "crop_size", "label_nc", "contain_dontcare_label")}
    config = spade_config(tmp_path, {"type": "paired_folders", **paired, "flip": True})
    out = str(tmp_path / "shards")
    assert shards_main([config, out, "--per-shard", "1", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "2 items in 2 shard(s)" in captured.out and "warning" not in captured.err
    index = json.load(open(os.path.join(out, "index.json")))
    assert index["flip"] is True  # the source's flip: off while writing, on when reading
    assert_same_items(DATASETS.build(PAIRED), DATASETS.build({"type": "webdataset", "path": out, "flip": False}))
    # a random crop would be frozen into the shards: said so
    assert shards_main([config, str(tmp_path / "crop"), "data.load_size=36", "--no-progress"]) == 0
    assert "random" in capsys.readouterr().err
    assert shards_main([config, out, "--split", "val"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --split: the paired_folders dataset has no split (give its folders instead)"

    run = str(tmp_path / "run")
    assert train_main([spade_config(tmp_path, {"type": "webdataset", "path": out}), "--run-dir", run]) == 0
    assert [json.loads(line)["step"] for line in open(os.path.join(run, "log.jsonl"))] == [1, 2]
    # the shard dataset carries the label facts: a model with other classes is refused
    assert train_main([spade_config(tmp_path, {"type": "webdataset", "path": out}), "--run-dir", str(tmp_path / "r2"),
                       "model.label_nc=5"]) == 2
    assert "num_classes=4" in capsys.readouterr().err


def test_cli_records_the_flip_a_dataset_resolves_from_null(tmp_path, capsys):
    from ganzoo.cli.shards import main as shards_main
    out = str(tmp_path / "coco")
    # coco_stuff's flip: null means "flip when training": off while writing, recorded for read time
    assert shards_main([os.path.join(ROOT, "configs", "spade_coco_stuff.yaml"), out, "--no-progress",
                        f"data.root={os.path.join(DATA, 'coco_stuff_tiny')}", "data.load_size=256"]) == 0
    assert "warning" not in capsys.readouterr().err  # no random draw left in the written items
    index = json.load(open(os.path.join(out, "index.json")))
    assert index["flip"] is True and index["facts"]["num_classes"] == 183 and index["count"] == 3
