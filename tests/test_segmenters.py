"""The SPADE paper's segmenters (DRN-D-105 Cityscapes, DeepLabV2 COCO-Stuff) and its Table 1 protocol.

Parity with the official modules (fyu/drn, kazuto1011/deeplab-pytorch in ../shared/refs, skipped when
absent), strict loading by the official key names, parameter counts measured there, the label mappings,
the confusion-matrix metrics on hand-computed cases and ``ganzoo-eval --dataset`` on tiny trees.
"""
import json
import math
import os
import re
from collections import namedtuple

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganzoo.backbones.deeplab import DeepLabV2Segmenter
from ganzoo.backbones.drn import DRNSegmenter, bilinear_upsampling_kernel
from ganzoo.backbones.segmentation import load_strict
from ganzoo.backbones.weights import NOT_COMPARABLE
from ganzoo.engine.checkpoint import FORMAT
from ganzoo.metrics import semantic_synthesis as ss
from ganzoo.metrics.segmentation import ConfusionMatrix, scores_from_confusion
from ganzoo.registry import BACKBONES, MODELS

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFS = os.path.join(ROOT, "..", "shared", "refs")
DRN_REF = os.path.join(REFS, "drn")
DEEPLAB_REF = os.path.join(REFS, "deeplab")
COCO_TINY = os.path.join(ROOT, "tests", "data", "coco_stuff_tiny")


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def drn():
    torch.manual_seed(0)
    return DRNSegmenter(weights="random")


@pytest.fixture(scope="module")
def deeplab():
    torch.manual_seed(0)
    return DeepLabV2Segmenter(weights="random")


# ------------------------------------------------------------------ the official code, run from ../shared/refs

def top_level_source(path, names):
    """The top-level ``def``/``class`` blocks called ``names`` of a file that as a whole does not parse on
    Python 3 (fyu/drn's segment.py uses ``async=True``): only those blocks are compiled."""
    blocks, current = [], None
    for line in open(path).read().splitlines(keepends=True):
        if line[:1] and not line[0].isspace() and not line.startswith("#"):
            match = re.match(r"(?:def|class)\s+(\w+)", line)
            current = [] if match and match.group(1) in names else None
            if current is not None:
                blocks.append(current)
        if current is not None:
            current.append(line)
    return "".join("".join(b) for b in blocks)


def official_drnseg(monkeypatch):
    if not os.path.isfile(os.path.join(DRN_REF, "segment.py")):
        pytest.skip("fyu/drn reference not available (../shared/refs/drn)")
    monkeypatch.syspath_prepend(DRN_REF)
    import drn as drn_module
    path = os.path.join(DRN_REF, "segment.py")
    namespace = {"math": math, "nn": nn, "torch": torch, "drn": drn_module}
    exec(compile(top_level_source(path, {"fill_up_weights", "DRNSeg"}), path, "exec"), namespace)
    return namespace["DRNSeg"], drn_module


def official_deeplab(monkeypatch):
    if not os.path.isdir(os.path.join(DEEPLAB_REF, "libs", "models")):
        pytest.skip("kazuto1011/deeplab-pytorch reference not available (../shared/refs/deeplab)")
    monkeypatch.syspath_prepend(DEEPLAB_REF)
    from libs.models import DeepLabV2_ResNet101_MSC
    return DeepLabV2_ResNet101_MSC


def random_bn_statistics(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


# ------------------------------------------------------------------ DRN-D-105

def test_input_normalisation_constants(drn, deeplab):
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    drn_in = drn.normalize(x)[0, :, 0]
    for c, (m, s) in enumerate([(0.29010095242892997, 0.1829540508368939), (0.32808144844279574, 0.18656561047509476),
                                (0.28696394422942517, 0.18447508988480435)]):   # fyu/drn cityscapes/info.json
        assert drn_in[c].tolist() == pytest.approx([(v - m) / s for v in (0.0, 0.5, 1.0)], abs=1e-5)
    deeplab_in = deeplab.normalize(x)[0, :, 0]
    for c, m in enumerate((104.008, 116.669, 122.675)):   # configs/cocostuff164k.yaml, B, G, R
        assert deeplab_in[c].tolist() == pytest.approx([0 - m, 127.5 - m, 255 - m], abs=1e-4)


def test_drn_parameter_counts(drn):
    assert n_params(drn) == 54_302_915   # DRNSeg(drn_d_105, 19), measured on fyu/drn
    imagenet_head = 512 * 1000 + 1000      # the DRN's 1x1 fc to 1000 classes that DRNSeg drops
    assert n_params(drn.base) + imagenet_head == 54_801_304   # drn_d_105(): "54.8M" in the fyu/drn README


def test_drn_official_key_names_load_strictly(drn, tmp_path):
    state = drn.state_dict()
    assert len(state) == 651
    for key in ("base.0.0.weight", "base.0.1.running_var", "base.1.0.weight", "base.2.1.bias",
                "base.3.0.downsample.0.weight", "base.5.22.conv3.weight", "base.6.2.bn2.bias",
                "base.7.0.weight", "base.8.1.running_mean", "seg.weight", "seg.bias", "up.weight"):
        assert key in state, key
    torch.save(state, tmp_path / "drn_d_105_cityscapes.pth")
    loaded = BACKBONES.build({"type": "drn_d_105_cityscapes", "weights": str(tmp_path)})
    assert loaded.weight_file == str(tmp_path / "drn_d_105_cityscapes.pth")
    assert torch.equal(loaded.state_dict()["base.5.3.conv2.weight"], state["base.5.3.conv2.weight"])
    broken = dict(state)
    del broken["base.5.3.conv2.weight"]
    with pytest.raises(ValueError, match="missing keys: base.5.3.conv2.weight"):
        load_strict(DRNSegmenter(weights="random"), broken)


def test_drn_upsampling_kernel_is_bilinear():
    kernel = bilinear_upsampling_kernel(2)
    assert kernel.shape == (2, 1, 16, 16)
    ramp = torch.tensor([(1 - abs(i - 7.5) / 8) for i in range(16)])
    assert torch.allclose(kernel[1, 0], ramp[:, None] * ramp[None, :])
    up = nn.ConvTranspose2d(1, 1, 16, stride=8, padding=4, bias=False)
    up.weight.data.copy_(kernel[:1])
    out = up(torch.ones(1, 1, 4, 4))
    assert out.shape[-2:] == (32, 32)
    assert torch.allclose(out[0, 0, 8:24, 8:24], torch.ones(16, 16))   # interior of a constant map stays constant


def test_drn_equals_official_drnseg(drn, monkeypatch):
    DRNSeg, drn_module = official_drnseg(monkeypatch)
    torch.manual_seed(1)
    ref = DRNSeg("drn_d_105", 19, pretrained=False).eval()
    assert n_params(drn_module.drn_d_105()) == 54_801_304
    random_bn_statistics(ref)
    ours = DRNSegmenter(weights="random")
    assert torch.equal(ours.up.weight, ref.up.weight)   # fill_up_weights
    load_strict(ours, ref.state_dict())                 # the official state dict, by its own names
    ref.double()
    ours.double()
    x = (torch.rand(2, 3, 40, 56, dtype=torch.float64) * 2 - 1)
    with open(os.path.join(DRN_REF, "datasets", "cityscapes", "info.json")) as f:
        info = json.load(f)   # what the official test script normalises with
    mean = torch.tensor(info["mean"], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(info["std"], dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        ref_logsoftmax, ref_logits = ref(((x + 1) / 2 - mean) / std)   # ToTensor + Normalize(info.json)
        ours_logits = ours(x)
    assert ours_logits.shape == (2, 19, 40, 56)
    assert torch.allclose(torch.log_softmax(ours_logits, 1), ref_logsoftmax, atol=1e-5, rtol=0)
    assert torch.allclose(ours.seg(ours.base(ours.normalize(x))), ref_logits, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ DeepLabV2 MSC

def test_deeplab_parameter_count_and_key_names(deeplab, tmp_path):
    assert n_params(deeplab) == 55_919_384   # DeepLabV2_ResNet101_MSC(182), measured on deeplab-pytorch
    state = deeplab.state_dict()
    assert len(state) == 632
    for key in ("base.layer1.conv1.conv.weight", "base.layer1.conv1.bn.running_mean",
                "base.layer2.block1.shortcut.conv.weight", "base.layer4.block23.conv3x3.bn.bias",
                "base.layer5.block3.increase.conv.weight", "base.aspp.c0.weight", "base.aspp.c3.bias"):
        assert key in state, key
    assert "base.layer2.block2.shortcut.conv.weight" not in state   # identity shortcut after the first block
    path = tmp_path / "deeplabv2_resnet101_msc-cocostuff164k-100000.pth"
    torch.save(state, path)
    loaded = BACKBONES.build({"type": "deeplabv2_cocostuff", "weights": str(path)})
    assert torch.equal(loaded.state_dict()["base.aspp.c2.weight"], state["base.aspp.c2.weight"])
    with pytest.raises(ValueError, match="unexpected keys: base.extra"):
        load_strict(DeepLabV2Segmenter(weights="random"), {**state, "base.extra": torch.zeros(1)})


def test_deeplab_multiscale_max_fusion(deeplab):
    x = torch.rand(1, 3, 33, 41) * 2 - 1
    with torch.no_grad():
        fused = deeplab(x)
        single = deeplab.base(deeplab.normalize(x))
    assert fused.shape == single.shape == (1, 182, 5, 6)   # ceil-mode stem pool: 33x41 -> 1/8 rounded up
    assert (fused >= single - 1e-6).all() and (fused > single + 1e-4).any()   # max over scales 1, 0.5, 0.75


def test_deeplab_equals_official_msc(monkeypatch):
    DeepLabV2_ResNet101_MSC = official_deeplab(monkeypatch)
    torch.manual_seed(2)
    ref = DeepLabV2_ResNet101_MSC(182).eval()
    assert n_params(ref) == 55_919_384
    random_bn_statistics(ref)
    ours = DeepLabV2Segmenter(weights="random")
    load_strict(ours, ref.state_dict())
    ref.double()
    ours.double()
    x = torch.rand(2, 3, 41, 57, dtype=torch.float64) * 2 - 1
    import yaml
    with open(os.path.join(DEEPLAB_REF, "configs", "cocostuff164k.yaml")) as f:
        mean = yaml.safe_load(f)["IMAGE"]["MEAN"]   # the official config's BGR mean
    bgr_mean = torch.tensor([mean["B"], mean["G"], mean["R"]], dtype=torch.float64).view(1, 3, 1, 1)
    caffe = (x.flip(1) + 1) * 127.5 - bgr_mean   # cv2.imread (BGR, 0..255) minus the mean
    with torch.no_grad():
        expected = ref(caffe)
        got = ours(x)
    assert got.shape == expected.shape == (2, 182, 6, 8)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ label mappings

#: cityscapesScripts labels.py: labelId -> trainId of the 19 evaluated classes, all else ignored
CITYSCAPES_EVALUATED = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                        25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def test_cityscapes_train_ids():
    table = ss.cityscapes_train_ids()
    assert {k: v for k, v in table.items() if v != 255} == CITYSCAPES_EVALUATED
    assert sorted(k for k in table if k >= 0) == list(range(34))
    protocol = ss.get_protocol("cityscapes")
    label = torch.tensor([[0, 7, 33, 34], [9, 26, 255, 1]])   # 34: SPADE's license-plate slot
    assert protocol.classes_of(label).tolist() == [[255, 0, 18, 255], [255, 13, 255, 255]]


def test_cityscapes_train_ids_equal_the_official_table(monkeypatch):
    path = os.path.join(DRN_REF, "datasets", "cityscapes", "prepare_data.py")
    if not os.path.isfile(path):
        pytest.skip("fyu/drn reference not available (../shared/refs/drn)")
    text = open(path).read()
    start = text.index("Label = namedtuple")
    end = text.index("]", text.index("labels = ["))
    namespace = {"namedtuple": namedtuple}
    exec(text[start:end + 1], namespace)
    official = {label.id: (255 if label.trainId in (-1, 255) else label.trainId) for label in namespace["labels"]}
    assert len(official) == 35
    assert ss.cityscapes_train_ids() == official


def test_coco_stuff_and_ade20k_label_mappings():
    coco = ss.get_protocol("coco_stuff")
    assert coco.classes_of(torch.tensor([0, 91, 181, 182, 255])).tolist() == [0, 91, 181, 255, 255]
    ade = ss.get_protocol("ade20k")
    assert ade.classes_of(torch.tensor([0, 1, 75, 150])).tolist() == [255, 0, 74, 149]
    assert (coco.num_classes, ade.num_classes, ss.get_protocol("cityscapes").num_classes) == (182, 150, 19)
    with pytest.raises(ValueError, match="no evaluation protocol for dataset 'voc'"):
        ss.get_protocol("voc")


# ------------------------------------------------------------------ confusion-matrix metrics

def test_train_id_confusion_hand_computed():
    pred = torch.tensor([0, 0, 1, 1, 2, 2])
    label = torch.tensor([0, 1, 1, 1, 255, 0])   # 255 ignored
    cm = ConfusionMatrix(4, label_offset=0, absent_classes="skip").update(pred, label)
    assert cm.matrix[:, :4].tolist() == [[1, 0, 1, 0], [1, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    skip = cm.scores()
    assert skip["pixel_accuracy"] == pytest.approx(3 / 5)
    assert skip["iou"][:3] == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert math.isnan(skip["iou"][3])                     # class 3: neither labelled nor predicted
    assert skip["miou"] == pytest.approx(1 / 3)           # nanmean (fyu/drn, deeplab-pytorch)
    zero = scores_from_confusion(cm.matrix, "zero")
    assert zero["miou"] == pytest.approx(1 / 4)           # CSAIL: an absent class counts 0
    with pytest.raises(ValueError, match="absent_classes"):
        ConfusionMatrix(4, absent_classes="mean")


def test_one_matrix_over_the_split_not_a_mean_of_images():
    cm = ConfusionMatrix(2, label_offset=0, absent_classes="skip")
    cm.update(torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long))          # image A: IoU0 = 1
    cm.update(torch.ones(4, dtype=torch.long), torch.tensor([0, 1, 1, 1]))                 # image B
    # per image: A 1.0, B mean(0, 3/4) -> 0.6875; over the split: IoU0 = 4/5, IoU1 = 3/4
    assert cm.scores()["miou"] == pytest.approx((4 / 5 + 3 / 4) / 2)
    assert cm.scores()["pixel_accuracy"] == pytest.approx(7 / 8)


# ------------------------------------------------------------------ ganzoo-eval --dataset on tiny trees

def write_cityscapes_tree(root, split="val"):
    """4 frames, 2 cities, 64x32, labelIds from a hand-picked set; the red channel encodes the trainId."""
    picked = {7: 0, 8: 1, 26: 13, 33: 18, 0: 255, 9: 255}
    rng = np.random.default_rng(0)
    for city in ("lindau", "munster"):
        for kind in ("leftImg8bit", "gtFine"):
            os.makedirs(os.path.join(root, kind, split, city), exist_ok=True)
        for k in range(2):
            stem = f"{city}_{k:06d}_000019"
            label = rng.choice(list(picked), size=(32, 64)).astype(np.uint8)
            image = np.zeros((32, 64, 3), np.uint8)
            image[..., 0] = np.vectorize(lambda v: 10 * picked[v] if picked[v] != 255 else 250)(label)
            image[..., 1:] = rng.integers(0, 255, (32, 64, 2))
            Image.fromarray(image).save(os.path.join(root, "leftImg8bit", split, city, f"{stem}_leftImg8bit.png"))
            Image.fromarray(label).save(os.path.join(root, "gtFine", split, city, f"{stem}_gtFine_labelIds.png"))
            Image.fromarray(label.astype(np.int32) * 1000 + k).save(
                os.path.join(root, "gtFine", split, city, f"{stem}_gtFine_instanceIds.png"))


def write_ade20k_tree(root):
    rng = np.random.default_rng(1)
    for kind in ("images", "annotations"):
        os.makedirs(os.path.join(root, kind, "validation"), exist_ok=True)
    for k in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            os.path.join(root, "images", "validation", f"ADE_val_{k + 1:08d}.jpg"))
        Image.fromarray(rng.integers(0, 151, (32, 32)).astype(np.uint8)).save(
            os.path.join(root, "annotations", "validation", f"ADE_val_{k + 1:08d}.png"))


def tiny_spade_checkpoint(path, label_nc, dontcare, use_instance, crop_size, aspect_ratio, data):
    cfg = {"type": "spade", "label_nc": label_nc, "contain_dontcare_label": dontcare, "use_instance": use_instance,
           "crop_size": crop_size, "aspect_ratio": aspect_ratio,
           "generator": {"type": "spade_generator", "ngf": 4, "norm": {"type": "spade", "param_free": "batch",
                                                                       "hidden": 8}},
           "discriminator": {"type": "multiscale_patchgan", "ndf": 4}, "lambda_vgg": 0.0}
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    torch.save({"format": FORMAT, "model": model.state_dict(), "config": {"model": cfg, "data": data}}, path)
    return str(path)


def run_eval(argv):
    from ganzoo.cli import eval as eval_cli
    return eval_cli.main(argv + ["--device", "cpu", "--no-progress"])


RANDOM = ["--segmenter-weights", "random", "--fid-weights", "random", "--fid-dims", "64"]


def read_results(out_dir):
    with open(os.path.join(out_dir, "results.json")) as f:
        result = json.load(f)
    with open(os.path.join(out_dir, "results.md")) as f:
        return result, f.read()


def test_eval_cityscapes_tree(tmp_path, capsys):
    root = str(tmp_path / "cityscapes")
    write_cityscapes_tree(root)
    ckpt = tiny_spade_checkpoint(tmp_path / "cs.pt", 35, False, True, 64, 2.0,
                                 {"type": "cityscapes", "root": "elsewhere", "load_size": 64, "crop_size": 64,
                                  "aspect_ratio": 2.0})
    out = str(tmp_path / "out")
    assert run_eval(["--checkpoint", ckpt, "--dataset", "cityscapes", "--root", root, "--out-dir", out,
                     "--batch-size", "3", *RANDOM]) == 0
    printed = capsys.readouterr().out
    assert "| method | FID | mIoU | accu |" in printed and NOT_COMPARABLE in printed
    result, markdown = read_results(out)
    assert result["num_images"] == 4 and result["mode"] == "generated"
    assert result["protocol"]["network"] == "drn_d_105_cityscapes"
    assert result["protocol"]["eval_size"] == "label" and result["protocol"]["absent_classes"] == "skip"
    assert result["fid"] is not None and result["fid_warning"] == NOT_COMPARABLE
    assert result["miou_warning"] == NOT_COMPARABLE
    assert 0 <= result["miou"] <= 1 and 0 <= result["pixel_accuracy"] <= 1
    # 4 frames x 64x32, ignored labelIds 0 and 9 left out
    assert 0 < result["protocol"]["labelled_pixels"] < 4 * 64 * 32
    assert f"| {ckpt} |" in markdown and "drn_d_105_cityscapes" in markdown


class Oracle(nn.Module):
    """Reads the class back from the red channel (10 x trainId): a perfect segmenter for the tiny trees."""

    num_classes = 19

    def forward(self, images, out_size=None):
        value = torch.round((images[:, 0] + 1) * 127.5)
        classes = (value / 10).round().long().clamp(0, self.num_classes - 1)
        logits = nn.functional.one_hot(classes, self.num_classes).permute(0, 3, 1, 2).float()
        if out_size is not None:
            logits = nn.functional.interpolate(logits, size=tuple(out_size), mode="nearest")
        return logits

    def describe(self):
        return {"network": "oracle", "weights": None}


@pytest.mark.parametrize("eval_size", ["generated", "label"])
def test_real_mode_with_a_perfect_segmenter_scores_one(tmp_path, monkeypatch, eval_size):
    """--real: the real val images through the same protocol; labelIds -> trainIds, ignore 255."""
    root = str(tmp_path / "cityscapes")
    write_cityscapes_tree(root)
    monkeypatch.setattr(ss, "build_protocol_segmenter", lambda protocol, weights=None: Oracle())
    out = str(tmp_path / "out")
    assert run_eval(["--real", "--dataset", "cityscapes", "--root", root, "--out-dir", out,
                     "--eval-size", eval_size, "--batch-size", "2", "data.load_size=64", "data.crop_size=64"]) == 0
    result, markdown = read_results(out)
    assert result["mode"] == "real" and result["fid"] is None
    assert result["miou"] == pytest.approx(1.0) and result["pixel_accuracy"] == pytest.approx(1.0)
    assert [v is not None for v in result["iou"]].count(True) == 4   # road, sidewalk, car, bicycle present
    assert "| real images | - | 100.0 | 100.0 |" in markdown


def official_generator_file(tmp_path, label_nc, dontcare, use_instance, crop_size):
    """An NVlabs-format ``latest_net_G.pth`` + ``opt.txt`` (what the released checkpoints hold)."""
    from ganzoo.nets.spade_convert import to_reference
    ganzoo_ckpt = tiny_spade_checkpoint(tmp_path / "g.pt", label_nc, dontcare, use_instance, crop_size, 1.0, {})
    state = torch.load(ganzoo_ckpt, weights_only=True)["model"]
    run = tmp_path / "checkpoints" / "coco_tiny"
    run.mkdir(parents=True)
    torch.save(to_reference({k[2:]: v for k, v in state.items() if k.startswith("G.")}), run / "latest_net_G.pth")
    options = {"label_nc": label_nc, "contain_dontcare_label": dontcare, "no_instance": not use_instance,
               "crop_size": crop_size, "aspect_ratio": 1.0, "ngf": 4}
    (run / "opt.txt").write_text("----------------- Options ---------------\n" + "".join(
        f"{k:>25}: {str(v):<30}\t[default: x]\n" for k, v in options.items()) + "----------------- End -----\n")
    return str(run / "latest_net_G.pth")


def test_eval_coco_stuff_tree_with_an_official_generator_file(tmp_path):
    ckpt = official_generator_file(tmp_path, 182, True, True, 32)
    out = str(tmp_path / "out")
    assert run_eval(["--checkpoint", ckpt, "--dataset", "coco_stuff", "--root", COCO_TINY, "--split", "train",
                     "--out-dir", out, "--batch-size", "2", *RANDOM]) == 0
    result, _ = read_results(out)
    assert result["num_images"] == 3 and result["split"] == "train"
    assert result["protocol"]["network"] == "deeplabv2_cocostuff"
    assert result["protocol"]["scales"] == [1.0, 0.5, 0.75]
    assert result["protocol"]["eval_size"] == "generated"
    assert result["protocol"]["labelled_pixels"] <= 3 * 32 * 32


def test_eval_ade20k_tree(tmp_path):
    root = str(tmp_path / "ade")
    write_ade20k_tree(root)
    ckpt = tiny_spade_checkpoint(tmp_path / "ade.pt", 150, True, False, 32, 1.0,
                                 {"type": "ade20k", "root": "elsewhere", "crop_size": 32})
    out = str(tmp_path / "out")
    assert run_eval(["--checkpoint", ckpt, "--dataset", "ade20k", "--root", root, "--out-dir", out,
                     "--scales", "32", *RANDOM]) == 0
    result, _ = read_results(out)
    assert result["num_images"] == 3 and result["protocol"]["network"] == "ade20k_resnet101_upernet"
    assert result["protocol"]["absent_classes"] == "zero" and result["protocol"]["scales"] == [32]


def test_eval_dataset_mode_errors(tmp_path, capsys):
    assert run_eval(["--dataset", "cityscapes", "--checkpoint", "x.pt"]) == 2
    assert "--dataset needs --root" in capsys.readouterr().err
    assert run_eval(["--dataset", "cityscapes", "--root", str(tmp_path)]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    with pytest.raises(ValueError, match="scales .* ADE20K"):
        ss.SemanticSynthesisEvaluation("coco_stuff", scales=[300])
    with pytest.raises(ValueError, match="eval_size 'full'"):
        ss.SemanticSynthesisEvaluation("coco_stuff", eval_size="full")
