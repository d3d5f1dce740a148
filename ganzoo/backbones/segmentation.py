"""CSAIL ADE20K scene-parsing networks (semantic-segmentation-pytorch), re-implemented for inference.

Two encoder/decoder pairs, with the module names of the published ``encoder_epoch_N.pth`` /
``decoder_epoch_N.pth`` files so they load strictly:

* ``ade20k_resnet50dilated_ppm``: dilated ResNet-50 (output stride 8) + PPM head (and, built with
  ``deep_supervision=True``, the training-only deep-supervision head on layer3);
* ``ade20k_resnet101_upernet``: ResNet-101 (output stride 32) + UPerNet (FPN at stride 4); the
  network the SPADE paper used to score ADE20K.

The ResNet is CSAIL's, not torchvision's: a three-conv "deep" stem (3->64 s2, 64->64, 64->128), so
layer1 receives 128 channels, and the stride of a bottleneck sits on its 3x3 conv.

Inputs are ganzoo images, RGB in [-1, 1]; the network converts them to what its checkpoint
generation was trained on (``input_format``, a declared setting, never guessed):

* ``torch_rgb``: RGB in [0, 1], ImageNet mean/std — the current ``ade20k-*`` checkpoints;
* ``caffe_bgr``: BGR in [0, 255] minus the per-channel mean, std 1 — the pre-August-2019
  ``baseline-*`` checkpoints.
"""
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import BACKBONES
from .weights import resolve

NUM_CLASSES = 150
INPUT_FORMATS = ("torch_rgb", "caffe_bgr")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (102.9801, 115.9465, 122.7717)
_HOST = "http://sceneparsing.csail.mit.edu/model/pytorch"


def ade20k_class_names(synonyms=False):
    """The 150 ADE20K class names; entry k = network class k = annotation value k + 1.

    From ``ganzoo/assets/ade20k_classes.txt`` (the Name column of objectInfo150.csv, words joined by
    ``;``); by default only the first word-group before the first ``;`` ("building;edifice" -> "building").
    """
    from ganzoo.data.palettes import ASSETS, CLASS_FILES, read_class_list
    names = read_class_list(os.path.join(ASSETS, CLASS_FILES["ade20k"]))
    return names if synonyms else [name.split(";")[0] for name in names]


def _conv_bn_relu(cin, cout, kernel=3, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class CSAILResNet(nn.Module):
    """CSAIL's deep-stem ResNet trunk; ``forward`` returns the outputs of layer1..layer4.

    ``dilated=True`` is their ``ResnetDilated(dilate_scale=8)``: layer3 and layer4 keep stride 1;
    the first 3x3 conv of layer3/layer4 gets dilation 1/2, their other 3x3 convs 2/4.
    """

    def __init__(self, depths=(3, 4, 6, 3), dilated=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(64, 64, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(64, 128, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.relu3 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.inplanes = 128
        # (stride, dilation of the first block's 3x3, dilation of the other blocks' 3x3)
        plan = [(1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4)] if dilated else [(1, 1, 1), (2, 1, 1), (2, 1, 1), (2, 1, 1)]
        for index, (depth, planes, (stride, first, rest)) in enumerate(zip(depths, (64, 128, 256, 512), plan)):
            setattr(self, f"layer{index + 1}", self._make_layer(planes, depth, stride, first, rest))
        self.feature_strides = (4, 8, 8, 8) if dilated else (4, 8, 16, 32)
        self.feature_channels = (256, 512, 1024, 2048)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))

    def _make_layer(self, planes, depth, stride, first_dilation, dilation):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        blocks = [Bottleneck(self.inplanes, planes, stride, first_dilation, downsample)]
        self.inplanes = planes * 4
        blocks += [Bottleneck(self.inplanes, planes, 1, dilation) for _ in range(1, depth)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.maxpool(x)
        features = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features


def _upsample(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class PPMDeepSup(nn.Module):
    """Pyramid pooling head on layer4 (pool -> 1x1 conv -> BN -> ReLU -> upsample, per scale).

    The deep-supervision head on layer3 (a training aid) exists only with ``deep_supervision=True``;
    then ``forward`` returns ``(logits, deep_supervision_logits)``. Without it, the published decoder
    file's head weights (:attr:`HEAD_KEYS`) are left out when loading.
    """

    HEAD_KEYS = ("cbr_deepsup.", "conv_last_deepsup.")

    def __init__(self, num_classes=NUM_CLASSES, fc_dim=2048, pool_scales=(1, 2, 3, 6), deep_supervision=False):
        super().__init__()
        self.ppm = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(scale), nn.Conv2d(fc_dim, 512, 1, bias=False),
                          nn.BatchNorm2d(512), nn.ReLU(inplace=True)) for scale in pool_scales)
        self.conv_last = nn.Sequential(
            nn.Conv2d(fc_dim + len(pool_scales) * 512, 512, 3, padding=1, bias=False),
            nn.BatchNorm2d(512), nn.ReLU(inplace=True), nn.Dropout2d(0.1), nn.Conv2d(512, num_classes, 1))
        self.deep_supervision = deep_supervision
        self.unused_file_keys = () if deep_supervision else self.HEAD_KEYS
        if deep_supervision:
            self.cbr_deepsup = _conv_bn_relu(fc_dim // 2, fc_dim // 4)
            self.conv_last_deepsup = nn.Conv2d(fc_dim // 4, num_classes, 1)
            self.dropout_deepsup = nn.Dropout2d(0.1)

    def forward(self, features):
        top = features[-1]
        size = top.shape[2:]
        x = self.conv_last(torch.cat([top] + [_upsample(branch(top), size) for branch in self.ppm], 1))
        if not self.deep_supervision:
            return x
        aux = self.conv_last_deepsup(self.dropout_deepsup(self.cbr_deepsup(features[-2])))
        return x, aux


class UPerNet(nn.Module):
    """UPerNet head: PPM on layer4 (pool -> upsample -> 1x1 conv), FPN top-down, fusion at stride 4."""

    def __init__(self, num_classes=NUM_CLASSES, fc_dim=2048, pool_scales=(1, 2, 3, 6),
                 fpn_inplanes=(256, 512, 1024, 2048), fpn_dim=512):
        super().__init__()
        self.ppm_pooling = nn.ModuleList(nn.AdaptiveAvgPool2d(scale) for scale in pool_scales)
        self.ppm_conv = nn.ModuleList(_conv_bn_relu(fc_dim, 512, kernel=1) for _ in pool_scales)
        self.ppm_last_conv = _conv_bn_relu(fc_dim + len(pool_scales) * 512, fpn_dim)
        self.fpn_in = nn.ModuleList(_conv_bn_relu(cin, fpn_dim, kernel=1) for cin in fpn_inplanes[:-1])
        self.fpn_out = nn.ModuleList(nn.Sequential(_conv_bn_relu(fpn_dim, fpn_dim)) for _ in fpn_inplanes[:-1])
        self.conv_last = nn.Sequential(_conv_bn_relu(len(fpn_inplanes) * fpn_dim, fpn_dim),
                                       nn.Conv2d(fpn_dim, num_classes, 1))

    def forward(self, features):
        top = features[-1]
        size = top.shape[2:]
        pooled = [conv(_upsample(pool(top), size)) for pool, conv in zip(self.ppm_pooling, self.ppm_conv)]
        f = self.ppm_last_conv(torch.cat([top] + pooled, 1))
        pyramid = [f]
        for i in reversed(range(len(self.fpn_in))):
            lateral = self.fpn_in[i](features[i])
            f = lateral + _upsample(f, lateral.shape[2:])
            pyramid.append(self.fpn_out[i](f))
        pyramid.reverse()
        size = pyramid[0].shape[2:]
        fused = torch.cat([pyramid[0]] + [_upsample(p, size) for p in pyramid[1:]], 1)
        return self.conv_last(fused)


def _summarise(keys, limit=8):
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def load_weights_strictly(module, weights, filename, source):
    """``weights="random"`` keeps the random init; else the file (a path, a folder or the usual lookup of
    ``filename``) loads by its own key names, strictly. Returns ``"random"`` or the file's path."""
    if isinstance(weights, str) and weights == "random":
        return "random"
    path = resolve(filename, path=weights, source=source)
    load_strict(module, torch.load(path, map_location="cpu", weights_only=True), path)
    return path


def load_strict(module, state, path="state dict"):
    """Load a CSAIL encoder/decoder state dict, refusing any key or shape mismatch with one line.

    A leading ``module.`` is stripped; ``num_batches_tracked`` may be absent (files saved by torch 0.4);
    keys under the module's ``unused_file_keys`` prefixes (a head it was built without) are dropped.
    """
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict (mapping of tensors), got {type(state).__name__}")
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    unused = getattr(module, "unused_file_keys", ())
    state = {k: v for k, v in state.items() if not k.startswith(unused)}
    expected = module.state_dict()
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    problems = []
    if missing:
        problems.append(f"missing keys: {_summarise(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_summarise(unexpected)}")
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        problems.append(f"shape mismatches (file vs network): {_summarise(wrong, 4)}")
    if problems:
        raise ValueError(f"{path} does not match {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


class ADE20KSegmenter(nn.Module):
    """A CSAIL encoder + decoder pair: ganzoo images in [-1, 1] -> 150-class ADE20K logits.

    ``weights``: ``None`` looks up ``<model_dir>/encoder_epoch_N.pth`` and ``decoder_epoch_N.pth``
    through :func:`ganzoo.backbones.weights.resolve` ($GANZOO_WEIGHTS, torch hub cache); a directory
    holding both files (as downloaded from CSAIL); a dict ``{"encoder": path, "decoder": path}``; or
    ``"random"`` (random init, for tests only). Loading is strict. ``deep_supervision=True`` (PPM only)
    builds the training-only head on layer3 and makes ``forward`` return ``(logits, aux_logits)``.
    """

    arch = None
    model_dir = None
    default_epoch = None
    padding_constant = None  # inference sizes are resized up to a multiple of this

    def __init__(self, weights=None, epoch=None, input_format="torch_rgb", num_classes=NUM_CLASSES,
                 deep_supervision=False):
        super().__init__()
        if input_format not in INPUT_FORMATS:
            raise ValueError(f"input_format {input_format!r} is not one of {', '.join(INPUT_FORMATS)} "
                             "(torch_rgb: current ade20k-* checkpoints; caffe_bgr: old baseline-* ones)")
        self.input_format = input_format
        self.num_classes = num_classes
        self.epoch = epoch or self.default_epoch
        self.encoder, self.decoder = self.build(num_classes, deep_supervision)
        self.output_stride = self.encoder.feature_strides[-1] if isinstance(self.decoder, PPMDeepSup) else 4
        if input_format == "torch_rgb":
            scale = [1 / (2 * s) for s in _IMAGENET_STD]
            shift = [(0.5 - m) / s for m, s in zip(_IMAGENET_MEAN, _IMAGENET_STD)]
        else:  # BGR order, 0..255 minus mean
            scale = [127.5] * 3
            shift = [127.5 - m for m in _CAFFE_MEAN_BGR]
        self.register_buffer("in_scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
        self.weight_files = self.load_weights(weights)
        self.eval()

    def build(self, num_classes, deep_supervision):
        raise NotImplementedError

    def weight_filenames(self):
        return f"encoder_epoch_{self.epoch}.pth", f"decoder_epoch_{self.epoch}.pth"

    def load_weights(self, weights):
        if isinstance(weights, str) and weights == "random":
            return {"encoder": "random", "decoder": "random"}
        names = self.weight_filenames()
        source = f"{_HOST}/{self.model_dir}/"
        if weights is None:
            paths = [resolve(f"{self.model_dir}/{name}", source=source + name) for name in names]
        elif isinstance(weights, dict):
            unknown = set(weights) - {"encoder", "decoder"}
            if unknown or len(weights) != 2:
                raise ValueError(f"weights dict needs exactly the keys 'encoder' and 'decoder', got {sorted(weights)}")
            paths = [resolve(name, path=weights[part], source=source + name)
                     for name, part in zip(names, ("encoder", "decoder"))]
        else:
            paths = [resolve(name, path=weights, source=source + name) for name in names]
        for module, path in zip((self.encoder, self.decoder), paths):
            load_strict(module, torch.load(path, map_location="cpu", weights_only=True), path)
        return {"encoder": paths[0], "decoder": paths[1]}

    def normalize(self, images):
        """RGB in [-1, 1] -> the network's input (channel order, range, mean/std of its checkpoint)."""
        if self.input_format == "caffe_bgr":
            images = images.flip(1)
        return images * self.in_scale + self.in_shift

    def forward(self, images, out_size=None):
        """Logits (N, 150, h, w) at the decoder's stride, or bilinearly upsampled to ``out_size``
        (a pair of them when built with ``deep_supervision=True``)."""
        out = self.decoder(self.encoder(self.normalize(images)))
        if out_size is None:
            return out
        if isinstance(out, tuple):
            return tuple(_upsample(o, tuple(out_size)) for o in out)
        return _upsample(out, tuple(out_size))

    def describe(self):
        return {"network": self.arch, "input_format": self.input_format, "weights": self.weight_files}


@BACKBONES.register("ade20k_resnet50dilated_ppm")
class ResNet50DilatedPPM(ADE20KSegmenter):
    """CSAIL dilated ResNet-50 + PPM (deep supervision) for ADE20K, 150 classes, output stride 8."""

    arch = "ade20k_resnet50dilated_ppm"
    model_dir = "ade20k-resnet50dilated-ppm_deepsup"
    default_epoch = 20
    padding_constant = 8

    def build(self, num_classes, deep_supervision):
        return CSAILResNet((3, 4, 6, 3), dilated=True), PPMDeepSup(num_classes, deep_supervision=deep_supervision)


@BACKBONES.register("ade20k_resnet101_upernet")
class ResNet101UPerNet(ADE20KSegmenter):
    """CSAIL ResNet-101 + UPerNet for ADE20K, 150 classes (the SPADE paper's evaluator)."""

    arch = "ade20k_resnet101_upernet"
    model_dir = "ade20k-resnet101-upernet"
    default_epoch = 50
    padding_constant = 32

    def build(self, num_classes, deep_supervision):
        if deep_supervision:
            raise ValueError("ade20k_resnet101_upernet has no deep-supervision head (only ade20k_resnet50dilated_ppm)")
        return CSAILResNet((3, 4, 23, 3), dilated=False), UPerNet(num_classes)


ARCHITECTURES = ("ade20k_resnet101_upernet", "ade20k_resnet50dilated_ppm")


def build_segmenter(arch="ade20k_resnet101_upernet", **kwargs):
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown segmentation network {arch!r}; valid: {', '.join(ARCHITECTURES)}")
    return BACKBONES.build({"type": arch, **kwargs})


# ---------------------------------------------------------------------------------------------
# Multi-scale inference (the reference's test procedure)

DEFAULT_SCALES = (300, 375, 450, 525, 600)
DEFAULT_MAX_SIZE = 1000


def scaled_size(height, width, short_side, max_size=DEFAULT_MAX_SIZE, multiple=1):
    """Size the image is resized to for one test scale: short side -> ``short_side`` unless the long
    side would exceed ``max_size``; each side then rounded *up* to a multiple of ``multiple``."""
    scale = min(short_side / min(height, width), max_size / max(height, width))
    h, w = int(height * scale), int(width * scale)
    return (-(-h // multiple) * multiple, -(-w // multiple) * multiple)


@torch.no_grad()
def multiscale_probabilities(network, images, scales=DEFAULT_SCALES, max_size=DEFAULT_MAX_SIZE, out_size=None):
    """Class probabilities (N, C, H, W) of ``images`` (N, 3, H, W) in [-1, 1], averaged over scales.

    Per scale: bilinear (antialiased, like PIL) resize to :func:`scaled_size`, logits upsampled
    bilinearly to ``out_size`` (default the input size), softmax; the mean over scales is returned.
    """
    height, width = images.shape[2:]
    out_size = tuple(out_size or (height, width))
    multiple = getattr(network, "padding_constant", 1) or 1
    total = None
    for short_side in scales:
        size = scaled_size(height, width, short_side, max_size, multiple)
        resized = images if size == (height, width) else F.interpolate(
            images, size=size, mode="bilinear", align_corners=False, antialias=True)
        probs = torch.softmax(network(resized, out_size=out_size).float(), dim=1)
        total = probs if total is None else total + probs
    return total / len(scales)


def segment(network, images, scales=DEFAULT_SCALES, max_size=DEFAULT_MAX_SIZE, out_size=None):
    """0-based class index maps (N, H, W) long: argmax of :func:`multiscale_probabilities`."""
    return multiscale_probabilities(network, images, scales, max_size, out_size).argmax(1)
