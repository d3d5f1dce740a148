"""COCO-Stuff and Cityscapes for SPADE: the official layouts, SPADE's label / instance / size conventions,
parity with the NVlabs dataset classes, real COCO-Stuff triples, and a few training steps of each config."""
import argparse
import json
import os
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.data import segmap
from ganzoo.layers.onehot import instance_edges
from ganzoo.registry import DATASETS

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO_TINY = os.path.join(ROOT, "tests", "data", "coco_stuff_tiny")
SPADE_REFS = os.path.join(ROOT, "..", "shared", "refs", "spade")
COCO_STEMS = ["000000000009", "000000000025", "000000000030"]
CITY_FRAMES = ["aachen_000000_000019", "aachen_000001_000019", "bochum_000000_000313"]


def coco_label(rng, size=(30, 40)):
    label = rng.integers(0, 182, size).astype(np.uint8)
    label[:5, :] = 255  # unlabeled rows -> the dontcare index 182
    label[-3:, :4] = 181
    return label


def write_coco_tree(root, split="train", stems=COCO_STEMS, suffix="", seed=0):
    rng = np.random.default_rng(seed)
    for sub in ("img", "label", "inst"):
        os.makedirs(os.path.join(root, f"{split}_{sub}{suffix}"), exist_ok=True)
    for stem in stems:
        h, w = 30, 40
        Image.fromarray(rng.integers(0, 256, (h, w, 3)).astype(np.uint8)).save(
            os.path.join(root, f"{split}_img{suffix}", stem + ".jpg"))
        Image.fromarray(coco_label(rng, (h, w)), mode="L").save(
            os.path.join(root, f"{split}_label{suffix}", stem + ".png"))
        Image.fromarray(rng.integers(0, 4, (h, w)).astype(np.uint8) * 40, mode="L").save(
            os.path.join(root, f"{split}_inst{suffix}", stem + ".png"))
    return root


def write_city_tree(root, split="train", frames=CITY_FRAMES, seed=0):
    rng = np.random.default_rng(seed)
    for frame in frames:
        city = frame.split("_")[0]
        image_dir = os.path.join(root, "leftImg8bit", split, city)
        label_dir = os.path.join(root, "gtFine", split, city)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(label_dir, exist_ok=True)
        h, w = 30, 40
        Image.fromarray(rng.integers(0, 256, (h, w, 3)).astype(np.uint8)).save(
            os.path.join(image_dir, frame + "_leftImg8bit.png"))
        Image.fromarray(rng.integers(0, 35, (h, w)).astype(np.uint8), mode="L").save(
            os.path.join(label_dir, frame + "_gtFine_labelIds.png"))
        # 16-bit instance ids as Cityscapes stores them: class id for stuff, class * 1000 + k for objects
        instance = rng.choice([7, 11, 26000, 26001, 33000, 33001], (h, w)).astype(np.uint16)
        Image.fromarray(instance).save(os.path.join(label_dir, frame + "_gtFine_instanceIds.png"))
        for other in ("_gtFine_color.png", "_gtFine_polygons.json"):  # official extras the loader must skip
            open(os.path.join(label_dir, frame + other), "wb").close()
    return root


def nearest(array, size):
    return np.asarray(Image.fromarray(array.astype(np.int32), mode="I").resize(size, Image.NEAREST), dtype=np.int64)


# ---------------------------------------------------------------------------------------------- COCO-Stuff

def test_coco_stuff_pairs_dontcare_instances_and_val_sizes(tmp_path):
    root = write_coco_tree(str(tmp_path / "coco"), "val")
    ds = DATASETS.build({"type": "coco_stuff", "root": root, "split": "val"})
    assert [os.path.basename(p[0]) for p in ds.items] == [s + ".jpg" for s in COCO_STEMS]
    assert ds.opts["load_size"] == 256 and ds.opts["flip"] is False  # the reference's test-time settings
    assert ds.num_classes == 183 and ds.use_instance and len(ds.class_names) == 183
    assert ds.class_names[0] == "person" and ds.class_names[182] == "unlabeled"
    sample = ds[1]
    assert sample["image"].shape == (3, 256, 256) and sample["image"].dtype == torch.float32
    assert -1.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
    raw = np.asarray(Image.open(os.path.join(root, "val_label", COCO_STEMS[1] + ".png")), dtype=np.int64)
    expected = nearest(np.where(raw == 255, 182, raw), (256, 256))
    assert sample["label"].shape == (1, 256, 256) and np.array_equal(sample["label"][0].numpy(), expected)
    assert 182 in sample["label"].unique().tolist()  # 255 -> dontcare index
    inst = np.asarray(Image.open(os.path.join(root, "val_inst", COCO_STEMS[1] + ".png")), dtype=np.int64)
    assert np.array_equal(sample["instance"][0].numpy(), nearest(inst, (256, 256)))
    edges = instance_edges(sample["instance"][None])
    assert edges.shape == (1, 1, 256, 256) and 0 < float(edges.mean()) < 1


def test_coco_stuff_train_defaults_crop_and_portraits(tmp_path):
    root = write_coco_tree(str(tmp_path / "coco"), "train")
    write_coco_tree(root, "train", stems=["000000900001"], suffix="_portrait", seed=1)
    torch.manual_seed(0)
    ds = DATASETS.build({"type": "coco_stuff", "root": root})
    assert ds.opts["load_size"] == 286 and ds.opts["crop_size"] == 256 and ds.opts["flip"] is True
    assert len(ds) == 4 and ds.items[3][0].endswith(os.path.join("train_img_portrait", "000000900001.jpg"))
    sample = ds[0]
    assert sample["image"].shape == (3, 256, 256) and sample["label"].shape == sample["instance"].shape == (1, 256, 256)
    assert len(DATASETS.build({"type": "coco_stuff", "root": root, "portraits": False})) == 3
    no_inst = DATASETS.build({"type": "coco_stuff", "root": root, "use_instance": False, "max_samples": 2})
    assert not no_inst.use_instance and "instance" not in no_inst[0] and len(no_inst) == 2


def test_coco_stuff_errors_name_the_expected_folders(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        DATASETS.build({"type": "coco_stuff", "root": str(tmp_path)})
    message = str(err.value)
    assert "train_img/, train_label/, train_inst/" in message and "\n" not in message
    root = write_coco_tree(str(tmp_path / "coco"))
    for name in os.listdir(os.path.join(root, "train_inst")):
        os.remove(os.path.join(root, "train_inst", name))
    os.rmdir(os.path.join(root, "train_inst"))
    with pytest.raises(FileNotFoundError, match="missing train_inst/; instance maps: ganzoo-prepare coco-stuff"):
        DATASETS.build({"type": "coco_stuff", "root": root})
    os.remove(os.path.join(root, "train_label", COCO_STEMS[2] + ".png"))
    with pytest.raises(ValueError, match=f"no label for 1 file\\(s\\): {COCO_STEMS[2]}"):
        DATASETS.build({"type": "coco_stuff", "root": root, "use_instance": False})
    with pytest.raises(ValueError, match="data.split must be one of train, val"):
        DATASETS.build({"type": "coco_stuff", "root": root, "split": "test"})


def test_coco_stuff_real_sample_triples():
    ds = DATASETS.build({"type": "coco_stuff", "root": COCO_TINY, "load_size": 64, "crop_size": 64, "flip": False})
    assert [os.path.basename(p[0]) for p in ds.items] == ["000000017914.jpg", "000000284465.jpg", "000000475177.jpg"]
    for index, (_, label_path, instance_path) in enumerate(ds.items):
        raw = np.asarray(Image.open(label_path), dtype=np.int64)
        assert (raw == 255).any() and raw[raw != 255].max() <= 181  # real COCO-Stuff ids + unlabeled
        sample = ds[index]
        assert sample["image"].shape == (3, 64, 64) and sample["label"].max() == 182
        assert np.array_equal(sample["label"][0].numpy(), nearest(np.where(raw == 255, 182, raw), (64, 64)))
        assert len(sample["instance"].unique()) > 1 and instance_edges(sample["instance"][None]).sum() > 0


# ---------------------------------------------------------------------------------------------- Cityscapes

def test_cityscapes_pairs_by_frame_labels_instances_512x256(tmp_path):
    root = write_city_tree(str(tmp_path / "cityscapes"))
    ds = DATASETS.build({"type": "cityscapes", "root": root})
    assert [os.path.basename(p[1]) for p in ds.items] == [f + "_gtFine_labelIds.png" for f in CITY_FRAMES]
    assert [os.path.basename(p[2]) for p in ds.items] == [f + "_gtFine_instanceIds.png" for f in CITY_FRAMES]
    assert ds.num_classes == 35 and ds.use_instance and ds.opts["flip"] is True and len(ds.class_names) == 35
    torch.manual_seed(0)
    sample = ds[2]
    assert sample["image"].shape == (3, 256, 512) and sample["label"].shape == sample["instance"].shape == (1, 256, 512)
    raw = np.asarray(Image.open(ds.items[2][1]), dtype=np.int64)
    label = sample["label"][0].numpy()
    expected = nearest(raw, (512, 256))
    assert np.array_equal(label, expected) or np.array_equal(label, expected[:, ::-1])  # train: maybe flipped
    assert set(sample["instance"].unique().tolist()) == {7, 11, 26000, 26001, 33000, 33001}  # 16-bit ids intact
    val = DATASETS.build({"type": "cityscapes", "root": write_city_tree(root, "val", CITY_FRAMES[:1]),
                          "split": "val", "crop_size": 64})
    assert val.opts["flip"] is False and len(val) == 1 and val[0]["label"].shape == (1, 32, 64)


def test_cityscapes_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="must contain leftImg8bit/train/<city>/ and gtFine/train/<city>/"):
        DATASETS.build({"type": "cityscapes", "root": str(tmp_path)})
    root = write_city_tree(str(tmp_path / "cityscapes"))
    os.remove(os.path.join(root, "gtFine", "train", "aachen", CITY_FRAMES[1] + "_gtFine_instanceIds.png"))
    with pytest.raises(ValueError, match=f"city_seq_frame\\): no instance for 1 file\\(s\\): {CITY_FRAMES[1]}$"):
        DATASETS.build({"type": "cityscapes", "root": root})
    ds = DATASETS.build({"type": "cityscapes", "root": root, "use_instance": False, "crop_size": 64})
    label = np.zeros((8, 16), np.uint8)
    label[0, 0] = 255  # no dontcare channel in SPADE's Cityscapes: 255 (-> 35) is out of range
    Image.fromarray(label, mode="L").save(ds.items[0][1])
    with pytest.raises(ValueError, match="label value 35 is outside 0..34"):
        ds[0]


# ---------------------------------------------------------------------------------------------- parity

@pytest.fixture
def nvlabs_data(monkeypatch):
    """The NVlabs SPADE ``data`` package (import path and module names restored afterwards)."""
    if not os.path.isdir(os.path.join(SPADE_REFS, "data")):
        pytest.skip("NVlabs SPADE reference not available (../shared/refs/spade)")
    pytest.importorskip("torchvision")
    for name in [m for m in sys.modules if m.split(".")[0] in ("data", "util")]:
        monkeypatch.delitem(sys.modules, name)  # put back after the test
    try:
        import dill  # noqa: F401  (its util.py imports dill, for option pickles only)
    except ImportError:
        monkeypatch.setitem(sys.modules, "dill", types.ModuleType("dill"))
    monkeypatch.syspath_prepend(SPADE_REFS)
    import data.cityscapes_dataset
    import data.coco_dataset
    import data.pix2pix_dataset
    yield data
    for name in [m for m in sys.modules if m.split(".")[0] in ("data", "util")]:
        del sys.modules[name]  # the reference's modules go; monkeypatch then restores what was there


def reference_opt(**kwargs):
    opt = dict(phase="train", isTrain=True, no_instance=False, no_flip=True, no_pairing_check=False,
               max_dataset_size=sys.maxsize, coco_no_portraits=False, contain_dontcare_label=False)
    opt.update(kwargs)
    return argparse.Namespace(**opt)


def assert_same_samples(ours, theirs, instance_mod=None):
    assert len(ours) == len(theirs)
    for index in range(len(ours)):
        torch.manual_seed(index)
        mine, ref = ours[index], theirs[index]
        assert mine["path"] == ref["path"]
        assert torch.equal(mine["label"], ref["label"].long())
        instance = ref["instance"].long() % instance_mod if instance_mod else ref["instance"].long()
        assert torch.equal(mine["instance"], instance)
        assert torch.allclose(mine["image"], ref["image"], atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the reference's regex strings
@pytest.mark.parametrize("split,real", [("train", False), ("val", False), ("train", True)])
def test_coco_stuff_matches_nvlabs(tmp_path, nvlabs_data, monkeypatch, split, real):
    root = COCO_TINY if real else write_coco_tree(str(tmp_path / "coco"), split)
    ours = DATASETS.build({"type": "coco_stuff", "root": root, "split": split, "flip": False})
    load = 286 if split == "train" else 256
    theirs = nvlabs_data.coco_dataset.CocoDataset()
    theirs.initialize(reference_opt(dataroot=root, phase="train" if split == "train" else "test",
                                    isTrain=split == "train", preprocess_mode="resize_and_crop", load_size=load,
                                    crop_size=256, aspect_ratio=1.0, label_nc=182, contain_dontcare_label=True))
    assert theirs.label_paths == [p[1] for p in ours.items] and theirs.instance_paths == [p[2] for p in ours.items]

    def same_crop(opt, size):  # the reference draws its crop from Python's random: give it the one ganzoo draws
        geometry = segmap.draw_geometry(size, opt.preprocess_mode, opt.load_size, opt.crop_size, flip=False)
        return {"crop_pos": geometry["crop"], "flip": False}

    monkeypatch.setattr(nvlabs_data.pix2pix_dataset, "get_params", same_crop)

    class Seeded:  # the reference's sample i with ganzoo's crop of sample i (both drawn after manual_seed(i))
        def __len__(self):
            return len(theirs)

        def __getitem__(self, index):
            torch.manual_seed(index)
            return theirs[index]

    assert_same_samples(ours, Seeded())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cityscapes_matches_nvlabs(tmp_path, nvlabs_data):
    root = write_city_tree(str(tmp_path / "cityscapes"))
    ours = DATASETS.build({"type": "cityscapes", "root": root, "flip": False})
    theirs = nvlabs_data.cityscapes_dataset.CityscapesDataset()
    theirs.initialize(reference_opt(dataroot=root, preprocess_mode="fixed", load_size=512, crop_size=512,
                                    aspect_ratio=2.0, label_nc=35))
    assert theirs.label_paths == [p[1] for p in ours.items] and theirs.instance_paths == [p[2] for p in ours.items]
    # the reference reads 16-bit instance ids into int16 (33001 wraps to -32535): same ids modulo 2**16
    assert_same_samples(ours, theirs, instance_mod=65536)


# ---------------------------------------------------------------------------------------------- training

@pytest.mark.parametrize("config,expected", [
    ("spade_coco_stuff.yaml", {"model.label_nc": 182, "model.contain_dontcare_label": True, "model.crop_size": 256,
                               "model.aspect_ratio": 1.0, "model.generator.num_upsampling_layers": "normal",
                               "data.preprocess_mode": "resize_and_crop", "data.load_size": None,
                               "train.epochs": 100, "train.schedule.type": "none"}),
    ("spade_cityscapes.yaml", {"model.label_nc": 35, "model.contain_dontcare_label": False, "model.crop_size": 512,
                               "model.aspect_ratio": 2.0, "model.generator.num_upsampling_layers": "more",
                               "data.preprocess_mode": "fixed", "train.epochs": 200,
                               "train.schedule.start": 100, "train.schedule.unit": "epoch"}),
])
def test_configs_hold_the_paper_settings(config, expected):
    from ganzoo.engine.options import load_config
    cfg = load_config(os.path.join(ROOT, "configs", config))
    common = {"model.use_instance": True, "data.use_instance": True, "data.flip": None, "model.gan_loss": "hinge",
              "model.lambda_feat": 10.0, "model.lambda_vgg": 10.0, "model.lr_g": 1e-4, "model.lr_d": 4e-4,
              "model.betas": [0.0, 0.9], "model.generator.ngf": 64, "model.discriminator.num_d": 2,
              "model.discriminator.n_layers": 4, "model.encoder": None, "train.batch_size": 32}
    for key, value in {**common, **expected}.items():
        got = cfg
        for part in key.split("."):
            got = got[part]
        assert got == value, key
    assert cfg["data"]["label_nc"] == cfg["model"]["label_nc"] and cfg["data"]["crop_size"] == cfg["model"]["crop_size"]


TINY_MODEL = ["model.generator.ngf=4", "model.generator.norm.hidden=8", "model.discriminator.ndf=4",
              "model.discriminator.n_layers=2", "model.lambda_vgg=0", "train.batch_size=2", "train.sync_bn=false",
              "data.num_workers=0", "run.log_every=1", "run.sample_every=0", "run.ckpt_every=0", "run.progress=false"]


@pytest.mark.parametrize("config,tree,sizes", [
    ("spade_coco_stuff.yaml", lambda _: COCO_TINY, ["model.crop_size=64", "data.load_size=72"]),  # real triples
    ("spade_cityscapes.yaml", write_city_tree, ["model.crop_size=128", "train.schedule.start=1"]),
])
def test_config_trains_through_the_cli(tmp_path, config, tree, sizes):
    from ganzoo.cli.train import main
    root = tree(str(tmp_path / "data"))
    run = str(tmp_path / "run")
    assert main([os.path.join(ROOT, "configs", config), f"data.root={root}", *sizes, *TINY_MODEL,
                 "train.epochs=2", "data.max_samples=2", "--run-dir", run]) == 0
    log = [json.loads(line) for line in open(os.path.join(run, "log.jsonl"))]
    assert [r["step"] for r in log] == [1, 2]
    losses = [value for record in log for value in record["losses"].values()]
    assert {"d_loss", "g_gan", "g_feat"} <= set(log[0]["losses"]) and np.isfinite(losses).all()
