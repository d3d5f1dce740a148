"""DRN-D-105 semantic segmentation for Cityscapes (fyu/drn ``DRNSeg``), re-implemented for inference.

The SPADE paper scored its Cityscapes images with this network (19 train classes). Module names
are those of ``DRNSeg``'s state dict (``base.0`` .. ``base.8`` = the DRN's layer0..layer8 without
its pool and fc, ``seg`` = 1x1 classifier, ``up`` = fixed bilinear transposed conv, x8), so the
released ``drn_d_105_cityscapes.pth`` loads strictly.

Inputs are ganzoo images, RGB in [-1, 1]; the network normalises them with the mean/std of the
official ``datasets/cityscapes/info.json`` (RGB in [0, 1]).
"""
import math

import torch
from torch import nn

from ..registry import BACKBONES
from .segmentation import load_weights_strictly

NUM_CLASSES = 19
#: fyu/drn datasets/cityscapes/info.json (RGB, [0, 1] pixels)
CITYSCAPES_MEAN = (0.29010095242892997, 0.32808144844279574, 0.28696394422942517)
CITYSCAPES_STD = (0.1829540508368939, 0.18656561047509476, 0.18447508988480435)
WEIGHTS_FILE = "drn_d_105_cityscapes.pth"
WEIGHTS_SOURCE = "http://go.yf.io/drn-cityscapes-models (fyu/drn README)"
# DRN-D layout: (channels, blocks) of layer0..layer8; layers 3-6 are bottlenecks
D105_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)
D105_BLOCKS = (1, 1, 3, 4, 23, 3, 1, 1)


def _conv_bn_relu_layers(cin, cout, count, stride=1, dilation=1, kernel=3):
    """``count`` x (conv, BN, ReLU) in one flat Sequential (DRN-D's layer0/1/2/7/8 naming)."""
    modules = []
    for i in range(count):
        modules += [nn.Conv2d(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1,
                              padding=dilation * (kernel // 2), dilation=dilation, bias=False),
                    nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*modules)


class DRNBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, dilation=1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        y += x if self.downsample is None else self.downsample(x)   # in place: no extra feature-map allocation
        return self.relu(y)


def _bottleneck_layer(inplanes, planes, blocks, stride=1, dilation=1):
    return nn.Sequential(*[DRNBottleneck(inplanes if i == 0 else planes * 4, planes, stride if i == 0 else 1,
                                         dilation) for i in range(blocks)])


def drn_d_trunk(channels=D105_CHANNELS, blocks=D105_BLOCKS):
    """The DRN-D trunk as a Sequential of layer0..layer8 (output stride 8, 512 channels)."""
    c, b = channels, blocks
    layers = [
        _conv_bn_relu_layers(3, c[0], 1, kernel=7),
        _conv_bn_relu_layers(c[0], c[0], b[0]),
        _conv_bn_relu_layers(c[0], c[1], b[1], stride=2),
        _bottleneck_layer(c[1], c[2], b[2], stride=2),
        _bottleneck_layer(c[2] * 4, c[3], b[3], stride=2),
        _bottleneck_layer(c[3] * 4, c[4], b[4], dilation=2),
        _bottleneck_layer(c[4] * 4, c[5], b[5], dilation=4),
        _conv_bn_relu_layers(c[5] * 4, c[6], b[6], dilation=2),
        _conv_bn_relu_layers(c[6], c[7], b[7]),
    ]
    trunk = nn.Sequential(*layers)
    for m in trunk.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
    return trunk


def bilinear_upsampling_kernel(channels, kernel=16):
    """Depthwise ConvTranspose2d weight (C, 1, k, k) doing bilinear interpolation (FCN's kernel)."""
    factor = (kernel + 1) // 2
    center = factor - 1 if kernel % 2 == 1 else factor - 0.5
    ramp = 1 - (torch.arange(kernel, dtype=torch.float64) - center).abs() / factor
    return (ramp[:, None] * ramp[None, :]).float().expand(channels, 1, kernel, kernel).clone()


@BACKBONES.register("drn_d_105_cityscapes")
class DRNSegmenter(nn.Module):
    """DRN-D-105 + 1x1 classifier + x8 bilinear transposed conv: RGB [-1, 1] -> 19 Cityscapes logits.

    ``weights``: a path (file, or a folder holding ``drn_d_105_cityscapes.pth``), ``None`` (looked up by
    :func:`~ganzoo.backbones.weights.resolve`) or ``"random"`` (tests only). Loading is strict.
    """

    arch = "drn_d_105_cityscapes"
    ignore_index = 255

    def __init__(self, weights=None, num_classes=NUM_CLASSES):
        super().__init__()
        self.num_classes = num_classes
        self.base = drn_d_trunk()
        self.seg = nn.Conv2d(D105_CHANNELS[-1], num_classes, 1, bias=True)
        nn.init.normal_(self.seg.weight, 0, math.sqrt(2.0 / num_classes))
        nn.init.zeros_(self.seg.bias)
        self.up = nn.ConvTranspose2d(num_classes, num_classes, 16, stride=8, padding=4, groups=num_classes,
                                     bias=False)
        self.up.weight.data.copy_(bilinear_upsampling_kernel(num_classes))
        self.up.weight.requires_grad_(False)
        self.register_buffer("in_scale", torch.tensor([0.5 / s for s in CITYSCAPES_STD]).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("in_shift", torch.tensor([(0.5 - m) / s for m, s in zip(CITYSCAPES_MEAN, CITYSCAPES_STD)])
                             .view(1, 3, 1, 1), persistent=False)
        self.weight_file = load_weights_strictly(self, weights, WEIGHTS_FILE, WEIGHTS_SOURCE)
        self.eval()

    def normalize(self, images):
        """RGB in [-1, 1] -> ``(x/2 + 1/2 - mean) / std`` (what ``ToTensor`` + ``Normalize(info.json)`` give)."""
        return images * self.in_scale + self.in_shift

    def forward(self, images, out_size=None):
        """Logits (N, 19, H, W) at the input size (the official output: x8 transposed conv, cropped when
        H or W is not a multiple of 8), bilinearly resized to ``out_size`` when given."""
        height, width = images.shape[2:]
        logits = self.up(self.seg(self.base(self.normalize(images))))[:, :, :height, :width]
        if out_size is not None and tuple(out_size) != (height, width):
            logits = nn.functional.interpolate(logits, size=tuple(out_size), mode="bilinear", align_corners=False)
        return logits

    def describe(self):
        return {"network": self.arch, "input_format": "rgb_cityscapes_mean_std", "weights": self.weight_file}
