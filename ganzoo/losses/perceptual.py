"""VGG19 perceptual loss (pix2pixHD/SPADE form): weighted L1 between relu1_1..relu5_1 features."""
import warnings

import torch
from torch import nn

from ganzoo.backbones.weights import resolve
from ganzoo.registry import LOSSES

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_SOURCE = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
# End indices (exclusive) in torchvision's vgg19().features of the slices ending at relu1_1 ... relu5_1.
_RELU_ENDS = {"relu1_1": 2, "relu2_1": 7, "relu3_1": 12, "relu4_1": 21, "relu5_1": 30}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@LOSSES.register("vgg")
class VGGLoss(nn.Module):
    """Sum over layers of ``weight * L1(vgg(fake), vgg(real))``; images in [-1, 1].

    ``weights``: a path to ``vgg19-dcbb9e9d.pth`` (or a dir holding it), ``None`` to look in
    ``$GANZOO_WEIGHTS`` and the torch hub cache (fetched there if missing), or ``"random"`` (tests only).
    """

    def __init__(self, weights=None, layers=tuple(_RELU_ENDS), layer_weights=(1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0),
                 normalize_input=True):
        super().__init__()
        from torchvision.models import vgg19
        unknown = [name for name in layers if name not in _RELU_ENDS]
        if unknown:
            raise ValueError(f"unknown VGG layer {unknown[0]!r}; valid: {', '.join(_RELU_ENDS)}")
        if len(layer_weights) != len(layers):
            raise ValueError(f"vgg layer_weights has {len(layer_weights)} entries for {len(layers)} layers")
        net = vgg19(weights=None)
        if weights == "random":
            warnings.warn("VGG loss with random weights: for tests only", stacklevel=2)
        else:
            path = resolve(VGG19_FILE, weights, source=VGG19_SOURCE)
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        ends = sorted(_RELU_ENDS[name] for name in layers)
        starts = [0] + ends[:-1]
        self.slices = nn.ModuleList(net.features[s:e] for s, e in zip(starts, ends))
        self.layer_weights = tuple(layer_weights)
        self.normalize_input = normalize_input
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode=True):
        return super().train(False)  # frozen feature extractor: always eval

    def features(self, x):
        if self.normalize_input:
            x = ((x + 1) / 2 - self.mean) / self.std
        out = []
        for block in self.slices:
            x = block(x)
            out.append(x)
        return out

    def forward(self, fake, real):
        # One pass for both images halves the Python overhead; real features carry no graph.
        feats = self.features(torch.cat([fake, real.detach()]))
        n = fake.shape[0]
        return sum(w * (f[:n] - f[n:].detach()).abs().mean() for w, f in zip(self.layer_weights, feats))
