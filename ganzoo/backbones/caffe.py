"""Caffe VGG16-Places365 -> plain PyTorch state dict, without Caffe or a protobuf package.

A minimal protobuf wire-format reader is enough: ``NetParameter`` holds its layers in field 100
(``LayerParameter``: name 1, type 2, blobs 7) or, in old files, field 2 (``V1LayerParameter``: name 4,
blobs 6); a ``BlobProto`` has legacy dims num/channels/height/width (1-4), float data (5, packed or not)
and a ``BlobShape`` (7, dims in field 1). The prototxt gives the order of the layers.
"""
import re

import numpy as np
import torch

from ganzoo.fileio import atomic_path

# torchvision vgg16: features index of each conv, classifier index of each fc (Caffe order).
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG16_FC_INDICES = (0, 3, 6)
VGG16_CONV_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)


def _varint(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def parse_message(buf):
    """Protobuf message bytes -> {field number: [values]}; length-delimited values stay memoryviews,
    varints are ints, fixed32/fixed64 are 4/8-byte memoryviews."""
    buf = memoryview(buf)
    fields, pos, end = {}, 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {field}) at byte {pos}")
        fields.setdefault(field, []).append(value)
    if pos != end:
        raise ValueError("truncated protobuf message")
    return fields


def _packed_varints(values):
    out = []
    for value in values:
        if isinstance(value, int):
            out.append(value)
        else:
            pos = 0
            while pos < len(value):
                v, pos = _varint(value, pos)
                out.append(v)
    return out


def parse_blob(buf):
    """``BlobProto`` bytes -> float32 numpy array of its shape."""
    fields = parse_message(buf)
    chunks = [np.frombuffer(v, dtype="<f4") for v in fields.get(5, [])]
    if not chunks and 8 in fields:  # double_data
        chunks = [np.frombuffer(v, dtype="<f8").astype(np.float32) for v in fields[8]]
    data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if 7 in fields:
        shape = _packed_varints(parse_message(fields[7][0]).get(1, []))
    else:
        shape = [fields.get(i, [1])[0] for i in (1, 2, 3, 4)]
    if int(np.prod(shape)) != data.size:
        raise ValueError(f"blob shape {shape} does not match its {data.size} values")
    return data.reshape(shape)


def read_caffemodel(path):
    """``.caffemodel`` -> {layer name: [blob arrays]} for layers that have blobs."""
    with open(path, "rb") as f:
        net = parse_message(f.read())
    layers = {}
    for field, name_field, blob_field in ((100, 1, 7), (2, 4, 6)):
        for raw in net.get(field, []):
            layer = parse_message(raw)
            blobs = layer.get(blob_field, [])
            if blobs:
                name = bytes(layer[name_field][0]).decode()
                layers[name] = [parse_blob(b) for b in blobs]
    if not layers:
        raise ValueError(f"{path}: no layers with weights found (not a Caffe NetParameter file?)")
    return layers


def read_prototxt_layers(path):
    """Ordered (name, type) of the top-level ``layer``/``layers`` blocks of a Caffe prototxt."""
    with open(path) as f:
        text = re.sub(r"#[^\n]*", "", f.read())
    tokens = re.findall(r'"[^"]*"|\{|\}|[^\s{}:]+:?', text)
    layers, depth, current, key = [], 0, None, None
    for token in tokens:
        if token == "{":
            if depth == 0 and key in ("layer", "layers"):
                current = {}
            depth += 1
            key = None
        elif token == "}":
            depth -= 1
            if depth == 0 and current is not None:
                layers.append((current.get("name"), current.get("type")))
                current = None
        elif token.endswith(":") or key is None:
            key = token.rstrip(":")
        else:
            if current is not None and depth == 1 and key in ("name", "type"):
                current[key] = token.strip('"')
            key = None
    return layers


def read_mean_bgr(path):
    """Per-channel mean (B, G, R) of a Caffe mean ``.binaryproto`` (a BlobProto 1x3xHxW)."""
    with open(path, "rb") as f:
        blob = parse_blob(f.read())
    return blob.reshape(-1, blob.shape[-3] if blob.ndim >= 3 else 3, *blob.shape[-2:]).mean(axis=(0, 2, 3))


def convert_vgg16(caffemodel, prototxt, mean=None, check_shapes=True):
    """State dict with ``torchvision.models.vgg16(num_classes=365)`` keys (+ ``meta.input_mean_bgr``)."""
    order = read_prototxt_layers(prototxt)
    convs = [name for name, kind in order if kind in ("Convolution", "CONVOLUTION")]
    fcs = [name for name, kind in order if kind in ("InnerProduct", "INNER_PRODUCT")]
    if len(convs) != 13 or len(fcs) != 3:
        raise ValueError(f"{prototxt}: expected VGG16 (13 Convolution + 3 InnerProduct layers), "
                         f"found {len(convs)} + {len(fcs)}")
    blobs = read_caffemodel(caffemodel)
    state = {}
    for prefix, names, indices in (("features", convs, VGG16_CONV_INDICES), ("classifier", fcs, VGG16_FC_INDICES)):
        for name, index in zip(names, indices):
            if name not in blobs or len(blobs[name]) != 2:
                raise ValueError(f"{caffemodel}: layer {name!r} of the prototxt has no weight and bias blobs")
            weight, bias = blobs[name]
            if prefix == "classifier":
                weight = weight.reshape(weight.shape[-2:]) if weight.ndim == 4 else weight
            state[f"{prefix}.{index}.weight"] = torch.from_numpy(weight.copy())
            state[f"{prefix}.{index}.bias"] = torch.from_numpy(bias.reshape(-1).copy())
    if check_shapes:
        _check_vgg16_shapes(state, caffemodel)
    if mean is not None:
        state["meta.input_mean_bgr"] = torch.tensor(read_mean_bgr(mean), dtype=torch.float32)
    return state


def _check_vgg16_shapes(state, source):
    cin = 3
    expected = {}
    for index, cout in zip(VGG16_CONV_INDICES, VGG16_CONV_CHANNELS):
        expected[f"features.{index}.weight"] = (cout, cin, 3, 3)
        cin = cout
    for index, shape in zip(VGG16_FC_INDICES, ((4096, 512 * 7 * 7), (4096, 4096), (365, 4096))):
        expected[f"classifier.{index}.weight"] = shape
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise ValueError(f"{source}: {key} has shape {tuple(state[key].shape)}, VGG16-Places365 needs {shape}")


def save_state_dict(state, path):
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
