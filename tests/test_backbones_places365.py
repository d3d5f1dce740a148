"""Places365 classifier pyramids: levels, input transforms, weight loading, the Caffe converter."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ganzoo.backbones import caffe
from ganzoo.backbones.classifier import InputTransform, load_checkpoint
from ganzoo.backbones.resnet18_places365 import ResNet18Places365
from ganzoo.backbones.vgg16_places365 import VGG16Places365
from ganzoo.backbones.weights import WeightsNotFoundError
from ganzoo.registry import BACKBONES

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:.*backbone.weights=random")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def vgg():
    return BACKBONES.build({"type": "vgg16_places365", "weights": "random"})


@pytest.fixture(scope="module")
def resnet():
    return BACKBONES.build({"type": "resnet18_places365", "weights": "random"})


def _check_levels(net, size):
    with torch.no_grad():
        feats = net(torch.rand(1, 3, size, size) * 2 - 1)
    assert len(feats) == len(net.levels) == 7
    for feat, level in zip(feats, net.levels):
        if level.stride is None:
            assert feat.shape == (1, level.channels)
        else:
            assert feat.shape == (1, level.channels, size // level.stride, size // level.stride)
        assert torch.isfinite(feat).all()


@pytest.mark.parametrize("size", [256, 128])
def test_vgg16_level_shapes(vgg, size):
    _check_levels(vgg, size)
    assert [level.name for level in vgg.levels] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc7", "fc8"]


@pytest.mark.parametrize("size", [256, 128])
def test_resnet18_level_shapes(resnet, size):
    _check_levels(resnet, size)
    assert [level.name for level in resnet.levels] == ["stem", "layer1", "layer2", "layer3", "layer4", "pool", "logits"]


def test_depth_truncates_and_frozen(resnet):
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    full, part = resnet(x), resnet(x, depth=3)
    assert len(part) == 3 and all(torch.equal(a, b) for a, b in zip(part, full))
    assert not any(p.requires_grad for p in resnet.parameters())
    resnet.train()
    assert not resnet.training and not resnet.net.layer1[0].bn1.training
    # gradients reach the input (for the reconstruction loss) but not the weights
    x.requires_grad_(True)
    resnet(x)[-1].sum().backward()
    assert x.grad is not None and all(p.grad is None for p in resnet.parameters())


def test_caffe_transform_known_values():
    t = InputTransform.caffe((104.0, 117.0, 123.0))
    x = torch.empty(1, 3, 2, 2)
    x[:, 0], x[:, 1], x[:, 2] = 1.0, 0.0, -1.0          # R = 255, G = 127.5, B = 0
    y = t(x)
    # output is BGR, 0..255, minus the BGR mean
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([0 - 104.0, 127.5 - 117.0, 255 - 123.0]))


def test_imagenet_transform_known_values():
    t = InputTransform.imagenet()
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1)
    expected = [(0.0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (1.0 - 0.406) / 0.225]
    assert torch.allclose(t(x).flatten(), torch.tensor(expected), atol=1e-6)
    gray = t(torch.zeros(1, 1, 2, 2))                  # one channel -> repeated to RGB
    assert gray.shape == (1, 3, 2, 2)


def test_vgg_input_modes(vgg):
    assert vgg.transform.order == (2, 1, 0)
    imagenet = VGG16Places365(weights="random", input="imagenet")
    assert imagenet.transform.order == (0, 1, 2)
    with pytest.raises(ValueError, match="backbone.input"):
        VGG16Places365(weights="random", input="bgr")


def test_csail_resnet18_checkpoint_and_plain_state_dict(tmp_path, resnet):
    import torchvision
    torch.manual_seed(3)
    source = torchvision.models.resnet18(num_classes=365).eval()
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    csail = tmp_path / "resnet18_places365.pth.tar"
    torch.save({"epoch": 90, "arch": "resnet18", "best_prec1": 54.0,
                "state_dict": {f"module.{k}": v for k, v in state.items()}}, csail)
    plain = tmp_path / "plain.pth"
    torch.save(source.state_dict(), plain)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = source(InputTransform.imagenet()(x))
        for path in (csail, plain):
            net = ResNet18Places365(weights=str(path))
            assert torch.allclose(net(x)[-1], expected, atol=1e-5)
    # GANZOO_WEIGHTS lookup by the canonical file name
    os.environ["GANZOO_WEIGHTS"] = str(tmp_path)
    try:
        assert torch.equal(ResNet18Places365().net.fc.weight, source.fc.weight)
    finally:
        del os.environ["GANZOO_WEIGHTS"]


def test_missing_weights_one_line_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="vgg16_places365.pth.*convert_vgg16_places365") as err:
        VGG16Places365(weights=str(tmp_path / "nope.pth"))
    assert "\n" not in str(err.value)
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {"module.nothing": torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match="does not fit"):
        ResNet18Places365(weights=str(bad))
    assert load_checkpoint(str(bad)) == {"nothing": torch.zeros(1)}


# ---- Caffe converter ---------------------------------------------------------------------------
CONV_NAMES = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
              "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
FC_NAMES = ["fc6", "fc7", "fc8a"]


# Writers of small files in the Caffe formats (the converter reads them back)
def _field_key(field, wire):
    return _encode_varint(field << 3 | wire)


def _encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _len_field(field, payload):
    return _field_key(field, 2) + _encode_varint(len(payload)) + payload


def _encode_blob(array, legacy_dims=False):
    array = np.asarray(array, dtype="<f4")
    if legacy_dims:
        dims = (1,) * (4 - array.ndim) + array.shape
        head = b"".join(_field_key(i, 0) + _encode_varint(d) for i, d in zip((1, 2, 3, 4), dims))
    else:
        head = _len_field(7, _len_field(1, b"".join(_encode_varint(d) for d in array.shape)))
    return head + _len_field(5, array.tobytes())


def _encode_net(layers, v1=False):
    """[(name, caffe type, [arrays])] -> NetParameter bytes (``layer`` field 100, or V1 ``layers`` field 2)."""
    out = _len_field(1, b"net")
    for name, kind, arrays in layers:
        if v1:
            enum = {"Convolution": 4, "InnerProduct": 14}.get(kind, 18)
            body = _len_field(4, name.encode()) + _field_key(5, 0) + _encode_varint(enum)
            body += b"".join(_len_field(6, _encode_blob(a, legacy_dims=True)) for a in arrays)
            out += _len_field(2, body)
        else:
            body = _len_field(1, name.encode()) + _len_field(2, kind.encode())
            body += b"".join(_len_field(7, _encode_blob(a)) for a in arrays)
            out += _len_field(100, body)
    return out


def _tiny_vgg_caffe(tmp_path, v1=False):
    """A VGG16-named Caffe net with tiny blobs, its prototxt and a mean binaryproto."""
    rng = np.random.default_rng(0)
    layers, arrays = [], {}
    cin = 3
    for name in CONV_NAMES:
        arrays[name] = [rng.standard_normal((2, cin, 3, 3)).astype(np.float32), rng.standard_normal(2).astype(np.float32)]
        layers.append((name, "Convolution", arrays[name]))
        layers.append((name.replace("conv", "relu"), "ReLU", []))
        cin = 2
    for name, shape in zip(FC_NAMES, [(4, 8), (4, 4), (3, 4)]):
        arrays[name] = [rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape[0]).astype(np.float32)]
        layers.append((name, "InnerProduct", arrays[name]))
    model = tmp_path / "vgg16_places365.caffemodel"
    model.write_bytes(_encode_net(layers, v1=v1))
    proto = tmp_path / "deploy_vgg16_places365.prototxt"
    body = ['name: "VGG16_Places365"', 'input: "data"', "input_dim: 10 input_dim: 3 input_dim: 224 input_dim: 224"]
    for name, kind, _ in layers:
        body.append(f'layer {{\n  name: "{name}"\n  type: "{kind}"  # comment {{\n  bottom: "x"\n'
                    f'  param {{ lr_mult: 1 decay_mult: 1 }}\n}}')
    proto.write_text("\n".join(body) + "\n")
    mean = tmp_path / "places365CNN_mean.binaryproto"
    mean_image = np.stack([np.full((4, 4), v, np.float32) for v in (100.0, 110.0, 120.0)])[None]
    mean.write_bytes(_encode_blob(mean_image, legacy_dims=True))
    return model, proto, mean, arrays


@pytest.mark.parametrize("v1", [False, True])
def test_caffe_converter_round_trip(tmp_path, v1):
    model, proto, mean, arrays = _tiny_vgg_caffe(tmp_path, v1)
    assert [n for n, k in caffe.read_prototxt_layers(proto) if k == "Convolution"] == CONV_NAMES
    state = caffe.convert_vgg16(model, proto, mean=mean, check_shapes=False)
    for name, index in zip(CONV_NAMES, caffe.VGG16_CONV_INDICES):
        assert np.array_equal(state[f"features.{index}.weight"].numpy(), arrays[name][0])
        assert np.array_equal(state[f"features.{index}.bias"].numpy(), arrays[name][1])
    for name, index in zip(FC_NAMES, caffe.VGG16_FC_INDICES):
        assert np.array_equal(state[f"classifier.{index}.weight"].numpy(), arrays[name][0])
    assert torch.allclose(state["meta.input_mean_bgr"], torch.tensor([100.0, 110.0, 120.0]))
    # same key set as torchvision's vgg16 (plus the mean)
    import torchvision
    with torch.device("meta"):
        keys = set(torchvision.models.vgg16(num_classes=365).state_dict())
    assert set(state) - {"meta.input_mean_bgr"} == keys


def test_convert_cli(tmp_path):
    model, proto, mean, _ = _tiny_vgg_caffe(tmp_path)
    cmd = [sys.executable, os.path.join(ROOT, "tools", "convert_vgg16_places365.py"), str(model), str(proto),
           "--mean", str(mean), "-o", str(tmp_path / "out.pth")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    # the tiny net is not VGG16-sized: a one-line shape error, exit code 2, no file
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "features.0.weight" in out.stderr
    assert out.stderr.count("\n") == 1 and not (tmp_path / "out.pth").exists()
    from ganzoo.cli.convert_vgg16_places365 import main
    assert main([str(tmp_path / "missing.caffemodel"), str(proto)]) == 2


def test_converted_file_loads_with_its_mean(tmp_path, vgg, monkeypatch):
    # (no 550 MB file on disk: the loader is handed the state dict directly)
    from ganzoo.backbones import classifier
    state = dict(vgg.state_dict(), **{"meta.input_mean_bgr": torch.tensor([1.0, 2.0, 3.0])})
    monkeypatch.setattr(classifier, "load_checkpoint", lambda path: dict(state))
    path = tmp_path / "vgg16_places365.pth"
    path.write_bytes(b"")
    net = VGG16Places365(weights=str(path))
    assert torch.allclose(net.transform.shift.flatten(), 127.5 - torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(net.classifier[6].weight, vgg.classifier[6].weight)
