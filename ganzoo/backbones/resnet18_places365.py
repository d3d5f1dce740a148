"""ResNet18 trained on Places365 (CSAIL ``resnet18_places365.pth.tar``) as a frozen 7-level pyramid:
stem (ReLU after conv1/bn1, stride 2), layer1..layer4 (strides 4..32), pool (512) and logits (365).
Input: torchvision-style ImageNet mean/std.
"""
from ..registry import BACKBONES
from .classifier import FrozenPyramid, InputTransform, Level

WEIGHTS_FILE = "resnet18_places365.pth.tar"
SOURCE = "http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar"


@BACKBONES.register("resnet18_places365")
class ResNet18Places365(FrozenPyramid):
    """ResNet18-Places365 pyramid: stem, layer1-layer4, pool, logits; frozen, eval mode."""

    levels = (Level("stem", 64, 2), Level("layer1", 64, 4), Level("layer2", 128, 8), Level("layer3", 256, 16),
              Level("layer4", 512, 32), Level("pool", 512, None), Level("logits", 365, None))

    def __init__(self, weights=None, num_classes=365):
        super().__init__()
        import torchvision
        self.net = self._make(lambda: torchvision.models.resnet18(weights=None, num_classes=num_classes), weights)
        self._load(self.net, weights, WEIGHTS_FILE, SOURCE)
        self.transform = InputTransform.imagenet()
        self.freeze()

    def _features(self, x, depth):
        n = self.net
        x = n.relu(n.bn1(n.conv1(x)))
        out = [x]
        x = n.maxpool(x)
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4)[:depth - 1]:
            x = layer(x)
            out.append(x)
        if depth > 5:
            x = n.avgpool(x).flatten(1)
            out.append(x)
        if depth > 6:
            out.append(n.fc(x))
        return out
