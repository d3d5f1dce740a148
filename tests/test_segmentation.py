"""CSAIL ADE20K segmentation networks, multi-scale inference, mIoU / pixel accuracy, tools/segment.py."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.backbones import segmentation as seg
from ganzoo.backbones.weights import WeightsNotFoundError
from ganzoo.metrics.segmentation import (ConfusionMatrix, read_label_map, score_label_folders,
                                         scores_from_confusion)
from ganzoo.registry import BACKBONES, METRICS

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def ppm():
    torch.manual_seed(0)
    return BACKBONES.build({"type": "ade20k_resnet50dilated_ppm", "weights": "random"})


@pytest.fixture(scope="module")
def ppm_deepsup(ppm):
    net = BACKBONES.build({"type": "ade20k_resnet50dilated_ppm", "weights": "random", "deep_supervision": True})
    net.load_state_dict(ppm.state_dict(), strict=False)  # same weights, plus the head
    return net


@pytest.fixture(scope="module")
def upernet():
    torch.manual_seed(0)
    return BACKBONES.build({"type": "ade20k_resnet101_upernet", "weights": "random"})


# ----------------------------------------------------------------------------- architectures

def test_dilated_resnet50_ppm_shapes_strides_and_dilations(ppm, ppm_deepsup):
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        feats = ppm.encoder(ppm.normalize(x))
        assert [tuple(f.shape) for f in feats] == [(1, 256, 16, 16), (1, 512, 8, 8), (1, 1024, 8, 8), (1, 2048, 8, 8)]
        assert ppm(x).shape == (1, 150, 8, 8)  # output stride 8
        assert ppm(x, out_size=(64, 64)).shape == (1, 150, 64, 64)
        main, aux = ppm_deepsup(x)
        assert main.shape == aux.shape == (1, 150, 8, 8)
        torch.testing.assert_close(main, ppm(x))
    enc = ppm.encoder
    assert enc.layer1[0].downsample[0].in_channels == 128  # deep stem ends at 128 channels
    for layer, first, rest in ((enc.layer3, 1, 2), (enc.layer4, 2, 4)):
        assert layer[0].conv2.stride == (1, 1) and layer[0].downsample[0].stride == (1, 1)
        assert layer[0].conv2.dilation == (first, first) and layer[0].conv2.padding == (first, first)
        assert all(b.conv2.dilation == (rest, rest) and b.conv2.padding == (rest, rest) for b in layer[1:])
    assert enc.layer2[0].conv2.stride == (2, 2) and enc.layer2[0].conv1.stride == (1, 1)  # stride on the 3x3
    assert len(enc.layer3) == 6 and ppm.padding_constant == 8


def test_resnet101_upernet_shapes_and_strides(upernet):
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        feats = upernet.encoder(upernet.normalize(x))
        assert [tuple(f.shape[1:]) for f in feats] == [(256, 16, 24), (512, 8, 12), (1024, 4, 6), (2048, 2, 3)]
        assert upernet(x).shape == (2, 150, 16, 24)  # fused at stride 4
    assert len(upernet.encoder.layer3) == 23 and upernet.padding_constant == 32
    with pytest.raises(ValueError, match="deep-supervision"):
        BACKBONES.build({"type": "ade20k_resnet101_upernet", "weights": "random", "deep_supervision": True})


# ----------------------------------------------------------------------------- strict loading

def _bn_keys(keys, name, c):
    """Adds the state-dict keys of a BatchNorm with ``c`` channels named ``name``."""
    for suffix in ("weight", "bias", "running_mean", "running_var"):
        keys[f"{name}.{suffix}"] = (c,)
    keys[f"{name}.num_batches_tracked"] = ()


def csail_encoder_layout(depths):
    """Key -> shape of a CSAIL ResNet encoder file, written from the notes (not from the module)."""
    keys = {}

    for i, (cin, cout) in enumerate([(3, 64), (64, 64), (64, 128)], 1):
        keys[f"conv{i}.weight"] = (cout, cin, 3, 3)
        _bn_keys(keys, f"bn{i}", cout)
    inplanes = 128
    for k, (depth, planes) in enumerate(zip(depths, (64, 128, 256, 512)), 1):
        for b in range(depth):
            p = f"layer{k}.{b}"
            cin = inplanes if b == 0 else planes * 4
            keys[f"{p}.conv1.weight"] = (planes, cin, 1, 1)
            keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            keys[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            for j, c in ((1, planes), (2, planes), (3, planes * 4)):
                _bn_keys(keys, f"{p}.bn{j}", c)
            if b == 0:
                keys[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                _bn_keys(keys, f"{p}.downsample.1", planes * 4)
        inplanes = planes * 4
    return keys


def csail_decoder_layout(kind):
    keys = {}

    if kind == "ppm_deepsup":
        for i in range(4):
            keys[f"ppm.{i}.1.weight"] = (512, 2048, 1, 1)
            _bn_keys(keys, f"ppm.{i}.2", 512)
        keys["conv_last.0.weight"] = (512, 4096, 3, 3)
        _bn_keys(keys, "conv_last.1", 512)
        keys["conv_last.4.weight"], keys["conv_last.4.bias"] = (150, 512, 1, 1), (150,)
        keys["cbr_deepsup.0.weight"] = (512, 1024, 3, 3)
        _bn_keys(keys, "cbr_deepsup.1", 512)
        keys["conv_last_deepsup.weight"], keys["conv_last_deepsup.bias"] = (150, 512, 1, 1), (150,)
    else:
        for i in range(4):
            keys[f"ppm_conv.{i}.0.weight"] = (512, 2048, 1, 1)
            _bn_keys(keys, f"ppm_conv.{i}.1", 512)
        keys["ppm_last_conv.0.weight"] = (512, 4096, 3, 3)
        _bn_keys(keys, "ppm_last_conv.1", 512)
        for i, cin in enumerate((256, 512, 1024)):
            keys[f"fpn_in.{i}.0.weight"] = (512, cin, 1, 1)
            _bn_keys(keys, f"fpn_in.{i}.1", 512)
            keys[f"fpn_out.{i}.0.0.weight"] = (512, 512, 3, 3)
            _bn_keys(keys, f"fpn_out.{i}.0.1", 512)
        keys["conv_last.0.0.weight"] = (512, 2048, 3, 3)
        _bn_keys(keys, "conv_last.0.1", 512)
        keys["conv_last.1.weight"], keys["conv_last.1.bias"] = (150, 512, 1, 1), (150,)
    return keys


def shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_module_names_are_the_csail_checkpoint_layout(ppm, ppm_deepsup, upernet):
    assert shapes(ppm.encoder) == csail_encoder_layout((3, 4, 6, 3))
    assert shapes(ppm_deepsup.decoder) == csail_decoder_layout("ppm_deepsup")
    assert shapes(ppm.decoder) == {k: v for k, v in csail_decoder_layout("ppm_deepsup").items()
                                   if "deepsup" not in k}  # built without the training-only head
    assert shapes(upernet.encoder) == csail_encoder_layout((3, 4, 23, 3))
    assert shapes(upernet.decoder) == csail_decoder_layout("upernet")


def fake_file(layout, generator, prefix="", drop_batches_tracked=False):
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            if not drop_batches_tracked:
                state[prefix + key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[prefix + key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[prefix + key] = torch.randn(shape, generator=generator) * 0.01
    return state


def test_strict_loading_of_csail_files(tmp_path, ppm):
    g = torch.Generator().manual_seed(1)
    encoder = fake_file(csail_encoder_layout((3, 4, 6, 3)), g, prefix="module.")  # DataParallel prefix
    decoder = fake_file(csail_decoder_layout("ppm_deepsup"), g, drop_batches_tracked=True)  # torch 0.4 file
    torch.save(encoder, tmp_path / "encoder_epoch_20.pth")
    torch.save(decoder, tmp_path / "decoder_epoch_20.pth")
    net = BACKBONES.build({"type": "ade20k_resnet50dilated_ppm", "weights": str(tmp_path)})
    assert torch.equal(net.encoder.layer3[2].conv2.weight, encoder["module.layer3.2.conv2.weight"])
    assert torch.equal(net.decoder.conv_last[4].bias, decoder["conv_last.4.bias"])
    assert not net.training and net.weight_files["decoder"].endswith("decoder_epoch_20.pth")
    deep = BACKBONES.build({"type": "ade20k_resnet50dilated_ppm", "weights": str(tmp_path), "deep_supervision": True})
    assert torch.equal(deep.decoder.conv_last_deepsup.bias, decoder["conv_last_deepsup.bias"])
    # explicit files, another epoch name: found through the dict form
    os.rename(tmp_path / "encoder_epoch_20.pth", tmp_path / "enc.pth")
    with pytest.raises(WeightsNotFoundError, match="encoder_epoch_20.pth"):
        BACKBONES.build({"type": "ade20k_resnet50dilated_ppm", "weights": str(tmp_path)})

    bad = dict(decoder)
    del bad["conv_last.4.bias"]
    bad["conv_last.5.weight"] = torch.zeros(1)
    bad["ppm.0.1.weight"] = torch.zeros(256, 2048, 1, 1)
    with pytest.raises(ValueError) as err:
        seg.load_strict(ppm.decoder, bad, "decoder_epoch_20.pth")
    message = str(err.value)
    assert "\n" not in message and "decoder_epoch_20.pth" in message
    assert "missing keys: conv_last.4.bias" in message and "unexpected keys: conv_last.5.weight" in message
    assert "ppm.0.1.weight (256, 2048, 1, 1) vs (512, 2048, 1, 1)" in message
    # a UPerNet decoder file is not a PPM decoder
    with pytest.raises(ValueError, match=r"missing keys: conv_last.0.weight.*unexpected keys: conv_last.0.0.weight.*\(72 in all\)"):
        seg.load_strict(ppm.decoder, fake_file(csail_decoder_layout("upernet"), g))


def test_missing_weights_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("GANZOO_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFoundError) as err:
        BACKBONES.build({"type": "ade20k_resnet50dilated_ppm"})
    assert "ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="input_format"):
        BACKBONES.build({"type": "ade20k_resnet50dilated_ppm", "weights": "random", "input_format": "bgr"})


# ----------------------------------------------------------------------------- input transforms

def test_input_transforms_of_both_checkpoint_generations(ppm):
    rgb = torch.tensor([255.0, 128.0, 0.0])  # one pixel as read from a file
    x = (rgb / 127.5 - 1).view(1, 3, 1, 1)
    current = seg.build_segmenter("ade20k_resnet50dilated_ppm", weights="random", input_format="torch_rgb")
    old = seg.build_segmenter("ade20k_resnet50dilated_ppm", weights="random", input_format="caffe_bgr")
    expected_rgb = [(255 / 255 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (0 - 0.406) / 0.225]
    expected_bgr = [0 - 102.9801, 128 - 115.9465, 255 - 122.7717]  # BGR order, 0..255, mean only
    assert current.normalize(x).flatten().tolist() == pytest.approx(expected_rgb, abs=1e-5)
    assert old.normalize(x).flatten().tolist() == pytest.approx(expected_bgr, abs=1e-4)


# ----------------------------------------------------------------------------- multi-scale inference

def test_scaled_size_rule():
    # 683x512 photo (w x h), short side 300, UPerNet multiple 32: 300x400.2 -> 320x416
    assert seg.scaled_size(512, 683, 300, 1000, 32) == (320, 416)
    assert seg.scaled_size(512, 683, 600, 1000, 8) == (600, 800)
    # the long side cap wins: 100x1000 -> scale 1, rounded up to a multiple of 8
    assert seg.scaled_size(100, 1000, 300, 1000, 8) == (104, 1000)


class SizeProbe(torch.nn.Module):
    """Fake 3-class network whose logits are constants set by the size it is fed."""
    padding_constant = 8

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, out_size=None):
        h, w = x.shape[2:]
        self.seen.append((h, w))
        logits = torch.tensor([h / 8.0, w / 8.0, 3.0]).view(1, 3, 1, 1)
        return logits.expand(x.shape[0], 3, *(out_size or (h, w)))


def test_multiscale_averaging_on_a_tiny_image():
    net = SizeProbe()
    image = torch.zeros(1, 3, 20, 30)
    probs = seg.multiscale_probabilities(net, image, scales=(16, 24), max_size=100)
    # short side 16: 0.8 -> 16x24; short side 24: 1.2 -> 24x36 -> 24x40 (multiple of 8)
    assert net.seen == [(16, 24), (24, 40)]

    def softmax(v):
        e = np.exp(np.array(v) - max(v))
        return e / e.sum()

    expected = (softmax([2.0, 3.0, 3.0]) + softmax([3.0, 5.0, 3.0])) / 2
    assert probs.shape == (1, 3, 20, 30)
    assert probs[0, :, 7, 11].tolist() == pytest.approx(expected.tolist(), abs=1e-6)
    assert seg.segment(net, image, scales=(16, 24), max_size=100).unique().tolist() == [int(expected.argmax())]
    # with one scale class 1 and 2 tie at 16x24; averaging with the larger scale decides for class 1
    assert int(expected.argmax()) == 1


def test_multiscale_with_a_real_network_batches(ppm):
    torch.manual_seed(0)
    images = torch.rand(2, 3, 24, 32) * 2 - 1
    probs = seg.multiscale_probabilities(ppm, images, scales=(24, 40), max_size=1000)
    assert probs.shape == (2, 150, 24, 32)
    assert torch.allclose(probs.sum(1), torch.ones(2, 24, 32), atol=1e-5)
    single = seg.multiscale_probabilities(ppm, images[1:], scales=(24, 40), max_size=1000)
    assert torch.allclose(probs[1:], single, atol=1e-5)  # batching does not mix images


# ----------------------------------------------------------------------------- metrics

def test_accuracy_and_miou_against_a_hand_confusion_matrix():
    label = torch.tensor([[1, 1, 2, 0], [2, 3, 3, 0]])  # annotation values, 0 ignored
    pred = torch.tensor([[0, 1, 1, 2], [1, 2, 0, 0]])   # 0-based classes
    # labelled (label class, pred): (0,0) (0,1) (1,1) (1,1) (2,2) (2,0)
    hand = [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    cm = ConfusionMatrix(3).update(pred, label)
    assert cm.matrix[:, :3].tolist() == hand and int(cm.matrix[:, 3].sum()) == 0
    scores = cm.scores()
    assert scores["pixel_accuracy"] == pytest.approx(4 / 6)
    assert scores["iou"] == pytest.approx([1 / 3, 2 / 3, 1 / 2])  # I / (pred area + label area - I)
    assert scores["miou"] == pytest.approx(0.5) and scores["labelled_pixels"] == 6
    # a class absent from both counts 0 in the mean
    four = ConfusionMatrix(4).update(pred, label).scores()
    assert four["miou"] == pytest.approx(1.5 / 4)
    # streaming over two halves = one pass; an "unlabeled" prediction only enlarges its label's area
    halves = ConfusionMatrix(3).update(pred[:1], label[:1]).update(pred[1:], label[1:])
    assert torch.equal(halves.matrix, cm.matrix)
    none = ConfusionMatrix(3).update(torch.tensor([-1, 0]), torch.tensor([1, 1])).scores()
    assert none["pixel_accuracy"] == 0.5 and none["iou"][0] == pytest.approx(0.5)
    assert scores_from_confusion(torch.tensor(hand))["miou"] == pytest.approx(0.5)


def reference_rules_numpy(preds, labels, num_classes=150):
    """The CSAIL/sceneparsing rules written out: shift, zero where GT is 0, per-class histograms."""
    inter_sum = np.zeros(num_classes)
    union_sum = np.zeros(num_classes)
    correct = labelled = 0
    for p, l in zip(preds, labels):
        p = p + 1
        p = p * (l > 0)
        inter = p * (p == l)
        ai = np.histogram(inter, bins=num_classes, range=(1, num_classes))[0]
        ap = np.histogram(p, bins=num_classes, range=(1, num_classes))[0]
        al = np.histogram(l, bins=num_classes, range=(1, num_classes))[0]
        inter_sum += ai
        union_sum += ap + al - ai
        correct += np.sum((p == l) & (l > 0))
        labelled += np.sum(l > 0)
    return correct / labelled, np.mean(inter_sum / (union_sum + 1e-10))


def test_metric_matches_the_reference_rules_on_random_maps():
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 151, size=(17, 23)) for _ in range(3)]
    preds = [np.where(rng.random(l.shape) < 0.6, np.maximum(l - 1, 0), rng.integers(0, 150, size=l.shape))
             for l in labels]
    cm = ConfusionMatrix(150)
    for p, l in zip(preds, labels):
        cm.update(torch.from_numpy(p), torch.from_numpy(l))
    acc, miou = reference_rules_numpy(preds, labels)
    assert cm.scores()["pixel_accuracy"] == pytest.approx(acc, abs=1e-12)
    assert cm.scores()["miou"] == pytest.approx(miou, abs=1e-12)


def save_label(path, array, mode="L"):
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path)


def test_score_folders_resizes_labels_nearest_and_rejects_bad_maps(tmp_path):
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    pred = np.array([[1, 2], [3, 3]])
    save_label(tmp_path / "pred" / "a.png", pred)
    save_label(tmp_path / "gt" / "a.png", np.kron(np.array([[1, 2], [0, 3]]), np.ones((3, 3))))  # 6x6
    result = score_label_folders(str(tmp_path / "pred"), str(tmp_path / "gt"))
    assert result["resized_labels"] == 1 and result["labelled_pixels"] == 3
    assert result["pixel_accuracy"] == 1.0 and result["miou"] == pytest.approx(3 / 150)
    with pytest.raises(ValueError, match=r"size \(6, 6\) differs"):
        score_label_folders(str(tmp_path / "pred"), str(tmp_path / "gt"), resize_labels=False)
    save_label(tmp_path / "gt" / "a.png", [[1, 151], [3, 3]])
    with pytest.raises(ValueError, match=r"a.png: label value 151 is outside 0..150"):
        score_label_folders(str(tmp_path / "pred"), str(tmp_path / "gt"))
    Image.new("RGB", (2, 2)).save(tmp_path / "gt" / "a.png")
    with pytest.raises(ValueError, match="single-channel"):
        read_label_map(str(tmp_path / "gt" / "a.png"))
    (tmp_path / "gt" / "b.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="b.png: cannot read label map"):
        read_label_map(str(tmp_path / "gt" / "b.png"))


class LabelPainter(torch.nn.Module):
    """A fake conditional model: paints each pixel with a colour the tests can look up."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def sample(self, batch=None, n=None, seed=None):
        self.calls.append(seed)
        return batch["label"].float().expand(-1, 3, -1, -1) / 75.0 - 1


class LabelDataset(torch.utils.data.Dataset):
    def __init__(self, n, size=16):
        g = torch.Generator().manual_seed(3)
        self.labels = [torch.randint(0, 151, (1, size, size), generator=g) for _ in range(n)]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": torch.zeros(3, *self.labels[i].shape[1:]), "label": self.labels[i]}


def test_spade_evaluation_metric_protocol_and_scores(ppm, monkeypatch):
    metric = METRICS.build({"type": "segmentation", "network": "ade20k_resnet50dilated_ppm", "weights": "random",
                            "scales": [16], "batch_size": 2, "num_samples": 3, "seed": 5})
    metric._network = ppm  # already built; avoids a second random network
    model = LabelPainter()
    result = metric(model, LabelDataset(4), "cpu")
    assert model.calls == [5, 6] and model.training
    protocol = result["protocol"]
    assert protocol["network"] == "ade20k_resnet50dilated_ppm" and protocol["scales"] == [16]
    assert protocol["num_images"] == 3 and protocol["label_sizes"] == [(16, 16)]
    assert protocol["input_format"] == "torch_rgb" and protocol["weights"]["encoder"] == "random"
    assert 0 <= result["miou"] <= 1 and 0 <= result["pixel_accuracy"] <= 1 and set(result) == {"miou", "pixel_accuracy", "protocol"}
    # the numbers are those of segment() + the confusion matrix on the same fakes
    data = LabelDataset(4)
    cm = ConfusionMatrix(150)
    for i in range(3):
        label = data[i]["label"][None]
        fake = model.sample({"label": label})
        cm.update(seg.segment(ppm, fake, (16,), 1000), label[:, 0])
    assert result["miou"] == pytest.approx(cm.scores()["miou"])
    assert result["pixel_accuracy"] == pytest.approx(cm.scores()["pixel_accuracy"])
    with pytest.raises(ValueError, match="segmentation network"):
        METRICS.build({"type": "segmentation", "network": "deeplab"})


# ----------------------------------------------------------------------------- tools/segment.py

def write_photos(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)).save(folder / f"photo{i}.jpg")


def run_tool(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "segment.py"), *args],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_segment_tool_writes_ade20k_label_pngs_previews_and_scores(tmp_path, capsys):
    write_photos(tmp_path / "photos", [(40, 32), (40, 32), (24, 32)])
    out = tmp_path / "labels"
    proc = run_tool("--images", str(tmp_path / "photos"), "--out", str(out), "--random-weights",
                    "--arch", "ade20k_resnet50dilated_ppm", "--scales", "24,32", "--batch-size", "2",
                    "--workers", "0", "--labels", str(tmp_path / "labels"))
    assert proc.returncode == 0, proc.stderr
    for i, size in enumerate([(40, 32), (40, 32), (24, 32)]):
        label = Image.open(out / f"photo{i}.png")
        assert label.mode == "L" and label.size == size
        values = np.asarray(label)
        assert values.min() >= 1 and values.max() <= 150  # class k stored as k+1, never 0
        assert Image.open(out / "preview" / f"photo{i}.png").mode == "RGB"
    scores = json.loads((out / "scores.json").read_text())  # scored against itself
    assert scores["pixel_accuracy"] == pytest.approx(1) and scores["protocol"]["scales"] == [24, 32]
    assert "mIoU" in proc.stdout

    from ganzoo.cli.segment import main
    assert main(["--images", str(tmp_path / "photos"), "--out", str(out), "--weights", str(tmp_path / "none")]) == 2
    assert "encoder_epoch_50.pth" in capsys.readouterr().err
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"no jpeg")
    assert main(["--images", str(tmp_path / "photos"), "--out", str(out), "--random-weights", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read image") and "broken.jpg" in err and err.count("\n") == 1


def test_batches_group_same_size_images():
    from ganzoo.cli.segment import palette, same_size_batches
    assert same_size_batches([(4, 4), (5, 4), (4, 4), (4, 4), (5, 4)], 2) == [[0, 2], [1, 4], [3]]
    colours = palette()
    assert tuple(colours[0]) == (0, 0, 0) and len({tuple(c) for c in colours}) == 151


# ----------------------------------------------------------------------------- photos -> labels -> SPADE

TINY_SPADE = {"label_nc": 150, "contain_dontcare_label": True, "crop_size": 32,
              "generator": {"type": "spade_generator", "ngf": 8, "num_upsampling_layers": "normal",
                            "norm": {"type": "spade", "param_free": "batch", "hidden": 16, "kernel": 3},
                            "spectral_norm": True},
              "discriminator": {"type": "multiscale_patchgan", "num_d": 2, "n_layers": 2, "ndf": 8,
                                "norm": "instance", "spectral_norm": True},
              "lambda_vgg": 0.0}
PAIRED = {"type": "paired_folders", "preprocess_mode": "fixed", "crop_size": 32, "flip": False,
          "label_nc": 150, "contain_dontcare_label": True}


@pytest.fixture(scope="module")
def pseudo_labelled(tmp_path_factory):
    """Photos + label maps written by tools/segment.py with a random network: a paired_folders tree."""
    from ganzoo.cli.segment import main
    root = tmp_path_factory.mktemp("pipeline")
    write_photos(root / "photos", [(40, 40)] * 4)
    assert main(["--images", str(root / "photos"), "--out", str(root / "labels"), "--random-weights",
                 "--arch", "ade20k_resnet50dilated_ppm", "--scales", "32", "--workers", "0"]) == 0
    return root


def test_segment_output_trains_spade_end_to_end(pseudo_labelled):
    pytest.importorskip("ganzoo.models.spade")
    pytest.importorskip("ganzoo.data.paired")
    from ganzoo.engine.context import StepContext
    from ganzoo.registry import DATASETS, MODELS
    torch.manual_seed(0)
    dataset = DATASETS.build({**PAIRED, "image_dir": str(pseudo_labelled / "photos"),
                              "label_dir": str(pseudo_labelled / "labels")})
    assert len(dataset) == 4  # previews in labels/preview/ are not label maps
    sample = dataset[0]
    assert sample["label"].shape == (1, 32, 32) and 1 <= int(sample["label"].min()) <= int(sample["label"].max()) <= 150
    model = MODELS.build({"type": "spade", **TINY_SPADE})
    model.prepare(dataset)
    groups = model.param_groups()
    optimizers = {name: torch.optim.Adam(g["params"], lr=g["lr"], betas=g["betas"]) for name, g in groups.items()}
    ctx = StepContext(optimizers)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    before = [p.detach().clone() for p in model.G.parameters()]
    for _ in range(2):
        logs = model.train_step(batch, ctx)
    assert all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.G.parameters()))
    # and the SPADE evaluation protocol runs on the trained model with the same data
    metric = METRICS.build({"type": "segmentation", "network": "ade20k_resnet50dilated_ppm", "weights": "random",
                            "scales": [32], "batch_size": 2, "num_samples": 2})
    result = metric(model, dataset, "cpu")
    assert 0 <= result["miou"] <= 1 and result["protocol"]["label_sizes"] == [(32, 32)]


def test_segment_output_through_tools_train(pseudo_labelled, tmp_path):
    train_tool = os.path.join(ROOT, "tools", "train.py")
    if not os.path.isfile(train_tool):
        pytest.skip("tools/train.py not available yet")
    import yaml
    cfg = {"model": {"type": "spade", **TINY_SPADE},
           "data": {**PAIRED, "image_dir": str(pseudo_labelled / "photos"),
                    "label_dir": str(pseudo_labelled / "labels")},
           "train": {"batch_size": 2, "steps": 2},
           "run": {"dir": str(tmp_path / "run"), "progress": False, "sample_every": 1000}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, train_tool, str(tmp_path / "tiny.yaml")], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.isdir(tmp_path / "run")


def test_class_names_asset():
    names = seg.ade20k_class_names()
    assert len(names) == 150 and names[0] == "wall" and names[1] == "building" and names[149] == "flag"
    assert seg.ade20k_class_names(synonyms=True)[1] == "building;edifice"
