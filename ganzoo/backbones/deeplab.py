"""DeepLab v2 (ResNet-101, ASPP, multi-scale inputs) for COCO-Stuff 164k, re-implemented for inference.

The network of kazuto1011/deeplab-pytorch (``DeepLabV2_ResNet101_MSC``, 182 classes), which SPADE-era
papers use to score COCO-Stuff images. Module names are those of its state dict (``base.layer1`` = the
7x7 stem, ``base.layer2..5`` = bottleneck stages ``blockN.{reduce,conv3x3,increase,shortcut}.{conv,bn}``,
``base.aspp.c0..c3``), so ``deeplabv2_resnet101_msc-cocostuff164k-100000.pth`` loads strictly.

Its ResNet is the MSRA/Caffe one: the stride of a bottleneck sits on its first 1x1 conv, the stem's
max-pool rounds up (``ceil_mode``). Output stride 8 (layer4/5 dilated 2/4), ASPP rates 6/12/18/24 summed.
Multi-scale inputs as the official ``MSC`` wrapper at test time: logits of the image and of copies
scaled by 0.5 and 0.75 (bilinear), resized to the full-scale logits' size, pixel-wise max.

Inputs are ganzoo images, RGB in [-1, 1]; the network converts them to the official input: BGR in
[0, 255] minus the per-channel mean of ``configs/cocostuff164k.yaml`` (std 1).
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import BACKBONES
from .segmentation import load_weights_strictly

NUM_CLASSES = 182
#: configs/cocostuff164k.yaml IMAGE.MEAN, in BGR order
CAFFE_MEAN_BGR = (104.008, 116.669, 122.675)
MSC_SCALES = (0.5, 0.75)
ATROUS_RATES = (6, 12, 18, 24)
WEIGHTS_FILE = "deeplabv2_resnet101_msc-cocostuff164k-100000.pth"
WEIGHTS_SOURCE = "https://github.com/kazuto1011/deeplab-pytorch/releases/download/v1.0/" + WEIGHTS_FILE


class ConvBN(nn.Sequential):
    """conv (no bias) -> BN [-> ReLU]; submodules ``conv``, ``bn`` (``relu`` has no weights)."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, dilation=1, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        if relu:
            self.relu = nn.ReLU()


class CaffeBottleneck(nn.Module):
    def __init__(self, cin, cout, stride, dilation, projection):
        super().__init__()
        mid = cout // 4
        self.reduce = ConvBN(cin, mid, 1, stride)
        self.conv3x3 = ConvBN(mid, mid, 3, 1, dilation, dilation)
        self.increase = ConvBN(mid, cout, 1, relu=False)
        self.shortcut = ConvBN(cin, cout, 1, stride, relu=False) if projection else nn.Identity()

    def forward(self, x):
        y = self.increase(self.conv3x3(self.reduce(x)))
        y += self.shortcut(x)   # in place: no extra feature-map allocation
        return F.relu_(y)


def _stage(blocks, cin, cout, stride, dilation):
    stage = nn.Sequential()
    for i in range(blocks):
        stage.add_module(f"block{i + 1}", CaffeBottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1,
                                                          dilation, projection=i == 0))
    return stage


class ASPP(nn.Module):
    """Sum of parallel 3x3 convs (with bias) at the atrous rates; children ``c0``, ``c1`` ..."""

    def __init__(self, cin, num_classes, rates=ATROUS_RATES):
        super().__init__()
        for i, rate in enumerate(rates):
            conv = nn.Conv2d(cin, num_classes, 3, 1, padding=rate, dilation=rate, bias=True)
            nn.init.normal_(conv.weight, 0, 0.01)
            nn.init.zeros_(conv.bias)
            self.add_module(f"c{i}", conv)

    def forward(self, x):
        first, *rest = self.children()
        out = first(x)
        for conv in rest:
            out += conv(x)   # in place: no extra logit-map allocation
        return out


class DeepLabV2(nn.Sequential):
    """Dilated ResNet-101 (output stride 8) + ASPP: normalised BGR image -> logits at 1/8 size."""

    def __init__(self, num_classes=NUM_CLASSES, blocks=(3, 4, 23, 3), rates=ATROUS_RATES):
        super().__init__()
        self.layer1 = nn.Sequential()
        self.layer1.add_module("conv1", ConvBN(3, 64, 7, 2, 3))
        self.layer1.add_module("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))
        self.layer2 = _stage(blocks[0], 64, 256, 1, 1)
        self.layer3 = _stage(blocks[1], 256, 512, 2, 1)
        self.layer4 = _stage(blocks[2], 512, 1024, 1, 2)
        self.layer5 = _stage(blocks[3], 1024, 2048, 1, 4)
        self.aspp = ASPP(2048, num_classes, rates)


@BACKBONES.register("deeplabv2_cocostuff")
class DeepLabV2Segmenter(nn.Module):
    """DeepLab v2 ResNet-101 MSC: RGB [-1, 1] -> 182 COCO-Stuff logits (max over scales 1, 0.5, 0.75).

    ``weights``: a path (file, or a folder holding the official file), ``None`` (looked up by
    :func:`~ganzoo.backbones.weights.resolve`) or ``"random"`` (tests only). Loading is strict.
    ``scales``: the extra input scales of the max fusion (official: 0.5, 0.75; ``()`` = single scale).
    """

    arch = "deeplabv2_cocostuff"
    ignore_index = 255

    def __init__(self, weights=None, num_classes=NUM_CLASSES, scales=MSC_SCALES):
        super().__init__()
        self.num_classes = num_classes
        self.scales = tuple(float(s) for s in scales)
        if any(s <= 0 for s in self.scales):
            raise ValueError(f"deeplabv2_cocostuff scales must be positive, got {list(scales)}")
        self.base = DeepLabV2(num_classes)
        self.register_buffer("in_shift", torch.tensor([127.5 - m for m in CAFFE_MEAN_BGR]).view(1, 3, 1, 1),
                             persistent=False)
        self.weight_file = load_weights_strictly(self, weights, WEIGHTS_FILE, WEIGHTS_SOURCE)
        self.eval()

    def normalize(self, images):
        """RGB in [-1, 1] -> BGR in [0, 255] minus the Caffe mean (as cv2.imread + mean subtraction)."""
        return images.flip(1) * 127.5 + self.in_shift

    def fused_logits(self, x):
        """The official MSC test-time output on a normalised input: logits at 1/8 size, max over scales."""
        logits = self.base(x)
        size = logits.shape[2:]
        for scale in self.scales:
            scaled = self.base(F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False))
            logits = torch.maximum(logits, F.interpolate(scaled, size=size, mode="bilinear", align_corners=False))
        return logits

    def forward(self, images, out_size=None):
        """Fused logits (N, 182, h/8, w/8), bilinearly upsampled to ``out_size`` when given (official
        evaluation: to the label size, before the argmax)."""
        logits = self.fused_logits(self.normalize(images))
        if out_size is not None:
            logits = F.interpolate(logits, size=tuple(out_size), mode="bilinear", align_corners=False)
        return logits

    def describe(self):
        return {"network": self.arch, "input_format": "caffe_bgr_mean", "scales": [1.0, *self.scales],
                "weights": self.weight_file}
