"""PatchGAN discriminators (pix2pixHD / SPADE form) and their multiscale wrapper.

Module names follow NVlabs/SPADE (``discriminator_0.model0`` ...) so released weights map onto them.
"""
import torch.nn.functional as F
from torch import nn

from ganzoo.layers.conv import ConvBlock
from ganzoo.layers.init import init_weights
from ganzoo.registry import DISCRIMINATORS


@DISCRIMINATORS.register("patchgan")
class PatchGAN(nn.Module):
    """N-layer PatchGAN, 4x4 convs with padding 2: first conv without norm, the middle ones with
    ``norm`` (+ spectral norm), stride 1 in the last middle layer, a final 1-channel conv.
    ``forward`` returns the list of every layer's output (the last is the prediction map).
    """

    def __init__(self, input_nc=154, ndf=64, n_layers=4, norm="instance", spectral_norm=True, max_channels=512,
                 init="xavier", init_gain=0.02):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(input_nc, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, max_channels)
            layers.append(ConvBlock(nf_prev, nf, kernel=4, stride=1 if n == n_layers - 1 else 2, padding=2,
                                    norm=norm, activation="lrelu", spectral_norm=spectral_norm))
        layers.append(nn.Conv2d(nf, 1, 4, stride=1, padding=2))
        for i, layer in enumerate(layers):
            self.add_module(f"model{i}", layer)
        self.num_layers = len(layers)
        if init:
            init_weights(self, init, init_gain)

    def forward(self, x):
        features = []
        for i in range(self.num_layers):
            x = getattr(self, f"model{i}")(x)
            features.append(x)
        return features


@DISCRIMINATORS.register("multiscale_patchgan")
class MultiscalePatchGAN(nn.Module):
    """``num_d`` PatchGANs on the input and its 3x3/stride-2 average-pooled copies; returns one
    feature list per scale (the format of the feature-matching and GAN losses)."""

    def __init__(self, input_nc=154, num_d=2, ndf=64, n_layers=4, norm="instance", spectral_norm=True,
                 max_channels=512, init="xavier", init_gain=0.02):
        super().__init__()
        self.num_d = num_d
        for i in range(num_d):
            self.add_module(f"discriminator_{i}", PatchGAN(input_nc, ndf, n_layers, norm, spectral_norm, max_channels,
                                                           init=init, init_gain=init_gain))

    def forward(self, x):
        outputs = []
        for i in range(self.num_d):
            if i:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(getattr(self, f"discriminator_{i}")(x))
        return outputs
