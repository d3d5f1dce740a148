"""SinGAN's per-scale networks: fully convolutional, valid (unpadded) 3x3 convs.

Both are ``num_layers`` Conv-BN-LeakyReLU(0.2) blocks (head + body) and a tail conv; the generator's
tail ends in tanh and is added to its ``skip`` input (the upsampled previous scale), the critic's tail
gives a one-channel patch map. Inputs are padded by the caller (the model), so a generator fed an
``(H + 2 pad) x (W + 2 pad)`` map returns ``H x W`` with ``pad = num_layers * (kernel - 1) // 2``.
``nfc`` / ``min_nfc`` are the widths at scale 0; the net of pyramid scale ``scale`` is
:func:`singan_width` times wider (doubling every ``width_every`` scales up to ``max_nfc``).
"""
import torch
from torch import nn

from ganzoo.layers.conv import ConvBlock, conv2d
from ganzoo.layers.init import init_dcgan_normal
from ganzoo.registry import DISCRIMINATORS, GENERATORS


def singan_width(scale_index, nfc=32, every=4, cap=128):
    """Channels at pyramid scale ``scale_index`` (0 = coarsest): ``min(nfc * 2^floor(n / every), cap)``."""
    return min(nfc * 2 ** (scale_index // every), cap)


init_singan_weights = init_dcgan_normal  # official init (shared with ConSinGAN)


class _SinGANTrunk(nn.Module):
    def __init__(self, in_channels, out_channels, nfc, min_nfc, num_layers, kernel, norm, scale, width_every,
                 max_nfc):
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"SinGAN nets need num_layers >= 2, got {num_layers}")
        nfc = singan_width(scale, nfc, width_every, max_nfc)
        min_nfc = singan_width(scale, min_nfc, width_every, max_nfc)
        self.pad = num_layers * (kernel - 1) // 2
        width = nfc
        blocks = [ConvBlock(in_channels, nfc, kernel, padding=0, norm=norm, activation="lrelu", bias=True)]
        for i in range(num_layers - 2):
            narrow = int(nfc / 2 ** (i + 1))  # official: halves per layer, floored at min_nfc
            blocks.append(ConvBlock(max(2 * narrow, min_nfc), max(narrow, min_nfc), kernel, padding=0,
                                    norm=norm, activation="lrelu", bias=True))
            width = max(narrow, min_nfc)
        self.body = nn.Sequential(*blocks)
        self.tail = conv2d(width, out_channels, kernel, padding=0)
        init_singan_weights(self)


@GENERATORS.register("singan_generator")
class SinGANGenerator(_SinGANTrunk):
    """One SinGAN scale: ``forward(x, skip) = tanh(tail(body(x))) + skip``; x is ``skip`` padded by ``pad``."""

    def __init__(self, channels=3, nfc=32, min_nfc=32, num_layers=5, kernel=3, norm="batch", scale=0,
                 width_every=4, max_nfc=128):
        super().__init__(channels, channels, nfc, min_nfc, num_layers, kernel, norm, scale, width_every, max_nfc)

    def forward(self, x, skip):
        return torch.tanh(self.tail(self.body(x))) + skip


@DISCRIMINATORS.register("singan_discriminator")
class SinGANDiscriminator(_SinGANTrunk):
    """Patch critic of one SinGAN scale (11x11 receptive field by default); returns the score map."""

    def __init__(self, channels=3, nfc=32, min_nfc=32, num_layers=5, kernel=3, norm="batch", scale=0,
                 width_every=4, max_nfc=128):
        super().__init__(channels, 1, nfc, min_nfc, num_layers, kernel, norm, scale, width_every, max_nfc)

    def forward(self, x):
        return self.tail(self.body(x))
