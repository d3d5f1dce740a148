"""VGG16 trained on Places365 (365 classes) as a frozen 7-level pyramid: conv1..conv5 block outputs
(after each max-pool, strides 2..32) + fc7 (after ReLU) + fc8 (logits).

Key names are those of ``torchvision.models.vgg16(num_classes=365)``. There is no official PyTorch
checkpoint: the CSAIL Caffe model is converted on fetch (or by ``tools/convert_vgg16_places365.py``); the converted
weights expect Caffe input (BGR, 0-255, mean-subtracted), which :class:`InputTransform.caffe` produces.
"""
from torch import nn

from ..registry import BACKBONES
from .classifier import FrozenPyramid, InputTransform, Level

WEIGHTS_FILE = "vgg16_places365.pth"
SOURCE = ("http://places2.csail.mit.edu/models_places365/vgg16_places365.caffemodel (+ deploy_vgg16_places365"
          ".prototxt, places365CNN_mean.binaryproto from github.com/CSAILVision/places365), converted with "
          "tools/convert_vgg16_places365.py")
# Per-channel (B, G, R) mean used when the converted file carries none (convert with --mean to store the
# exact mean of places365CNN_mean.binaryproto); the Caffe ImageNet mean pixel, close to the Places mean.
DEFAULT_MEAN_BGR = (104.0, 116.7, 122.7)
POOL_INDICES = (4, 9, 16, 23, 30)  # torchvision vgg16.features index of each block's max-pool


class _VGG16(nn.Module):
    """The layout of ``torchvision.models.vgg16`` (same state-dict keys), without importing torchvision."""

    def __init__(self, num_classes=365):
        super().__init__()
        layers, cin = [], 3
        for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
            for cout in block:
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
                cin = cout
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(4096, num_classes))


@BACKBONES.register("vgg16_places365")
class VGG16Places365(FrozenPyramid):
    """VGG16-Places365 pyramid: conv1-conv5 (pool outputs), fc7, fc8; frozen, eval mode."""

    levels = (Level("conv1", 64, 2), Level("conv2", 128, 4), Level("conv3", 256, 8), Level("conv4", 512, 16),
              Level("conv5", 512, 32), Level("fc7", 4096, None), Level("fc8", 365, None))

    def __init__(self, weights=None, input="caffe", mean_bgr=None, num_classes=365):
        super().__init__()
        net = self._make(lambda: _VGG16(num_classes), weights)
        meta = self._load(net, weights, WEIGHTS_FILE, SOURCE)
        self.features, self.avgpool, self.classifier = net.features, net.avgpool, net.classifier
        if input == "caffe":
            mean = mean_bgr or (meta["input_mean_bgr"].tolist() if "input_mean_bgr" in meta else DEFAULT_MEAN_BGR)
            self.transform = InputTransform.caffe(mean)
        elif input == "imagenet":
            self.transform = InputTransform.imagenet()
        else:
            raise ValueError(f"backbone.input must be 'caffe' (converted CSAIL weights) or 'imagenet' "
                             f"(torchvision-style fine-tuned weights), got {input!r}")
        self.freeze()

    def _features(self, x, depth):
        out, start = [], 0
        for end in POOL_INDICES[:depth]:
            x = self.features[start:end + 1](x)
            out.append(x)
            start = end + 1
        if depth > 5:
            x = self.classifier[:5](self.avgpool(x).flatten(1))  # fc6, relu, dropout, fc7, relu
            out.append(x)
        if depth > 6:
            out.append(self.classifier[6](x))
        return out
