"""The two Inception v3 feature extractors the metrics use; weights through ``weights.resolve``.

- :class:`FIDInception`: pytorch-fid's FID Inception (TF-ported weights, the ``pytorch_fid`` package's
  architecture), same blocks, same in-net bilinear resize to 299 and ``2x-1`` as pytorch-fid.
  Weights ``pt_inception-2015-12-05-6726825d.pth``.
- :class:`SIFIDInception`: the early layers of torchvision's ImageNet Inception v3, as SinGAN's SIFID
  uses them (no resize). Weights ``inception_v3_google-0cc3c7bd.pth``.

``weights``: ``None`` (resolve the canonical file: ``$GANZOO_WEIGHTS``, the torch hub cache, a fetch), a
file or folder path, or ``"random"`` (random init, for tests and speed measurements only).
torchvision and pytorch_fid are imported inside the constructors.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import BACKBONES
from .weights import resolve

FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SOURCE = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS
TORCHVISION_INCEPTION_WEIGHTS = "inception_v3_google-0cc3c7bd.pth"
TORCHVISION_INCEPTION_SOURCE = "https://download.pytorch.org/models/" + TORCHVISION_INCEPTION_WEIGHTS

#: feature dims -> index of the last pytorch-fid block needed
FID_BLOCK_BY_DIMS = {64: 0, 192: 1, 768: 2, 2048: 3}


def load_state(filename, weights, source):
    """State dict for ``weights`` (None | path | "random"); ``None`` when random init is asked for."""
    if isinstance(weights, str) and weights == "random":
        return None
    return torch.load(resolve(filename, weights, source), map_location="cpu", weights_only=True)


def build_fid_inception_v3():
    """pytorch-fid's full FID Inception v3 (the ``pytorch_fid`` package's blocks), no weights loaded."""
    from pytorch_fid import inception as pf

    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


def build_torchvision_inception_v3():
    """torchvision's Inception v3 with the key layout of its ImageNet weights file, no weights loaded."""
    from torchvision.models.inception import Inception3
    return Inception3(aux_logits=True, transform_input=False, init_weights=False)


@BACKBONES.register("fid_inception")
class FIDInception(nn.Module):
    """pytorch-fid's Inception: images in [0, 1] (N, 3, H, W) -> pooled features (N, dims) in float32."""

    def __init__(self, dims=2048, weights=None, resize_input=True):
        super().__init__()
        if dims not in FID_BLOCK_BY_DIMS:
            raise ValueError(f"FID dims must be one of {sorted(FID_BLOCK_BY_DIMS)}, got {dims}")
        state = load_state(FID_WEIGHTS, weights, FID_WEIGHTS_SOURCE)
        net = build_fid_inception_v3()
        if state is not None:
            net.load_state_dict(state)
        pool = lambda: nn.MaxPool2d(kernel_size=3, stride=2)  # noqa: E731
        blocks = [
            [net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, pool()],
            [net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, pool()],
            [net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
             net.Mixed_6e],
            [net.Mixed_7a, net.Mixed_7b, net.Mixed_7c],
        ]
        self.dims = dims
        self.resize_input = resize_input
        self.blocks = nn.Sequential(*[nn.Sequential(*b) for b in blocks[:FID_BLOCK_BY_DIMS[dims] + 1]])
        self.requires_grad_(False)
        self.eval()

    def forward(self, x):
        if self.resize_input:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = self.blocks(2 * x - 1)
        # pytorch-fid global-average-pools every block's output (the 2048 block ends with it)
        return x.mean(dim=(2, 3))


@BACKBONES.register("sifid_inception")
class SIFIDInception(nn.Module):
    """SinGAN's SIFID features: images in [0, 1] (N, 3, H, W) -> feature maps (N, dims, h, w), no resize.

    dims 64 = Conv2d_1a..2b (what the official script runs), 192 = + max-pool, Conv2d_3b, Conv2d_4a
    (the layer the paper's text describes).
    """

    def __init__(self, dims=64, weights=None):
        super().__init__()
        if dims not in (64, 192):
            raise ValueError(f"SIFID dims must be 64 or 192, got {dims}")
        state = load_state(TORCHVISION_INCEPTION_WEIGHTS, weights, TORCHVISION_INCEPTION_SOURCE)
        net = build_torchvision_inception_v3()
        if state is not None:
            net.load_state_dict(state)
        layers = [net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3]
        if dims == 192:
            layers += [nn.MaxPool2d(kernel_size=3, stride=2), net.Conv2d_3b_1x1, net.Conv2d_4a_3x3]
        self.dims = dims
        self.layers = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x):
        return self.layers(2 * x - 1)
