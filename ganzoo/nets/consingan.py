"""ConSinGAN's networks (Hinz et al., WACV 2021): one generator that grows a stage per resolution, one critic.

Generator: ``head`` (conv, optional BN, LeakyReLU) on the stage-0 input (noise or an image), one ``body`` stage
per resolution (``num_layers`` such blocks, valid convolutions), ``tail`` conv + tanh on the finest features.
Features, not images, flow between stages: each stage's output is bicubically upsampled to the next size,
noise (``nfc`` channels) is added, the stage's blocks run and their output is added to the upsampled input.
``grow()`` appends a deep copy of the last stage (the new stage starts from the previous one's weights).

``edge_upsample`` (the official generation / animation modes): margins come from a bicubic upsampling to the
padded size instead of zero padding, for more diversity at the image borders; the noise then has the padded size.
Critic: ``head`` + ``num_layers`` blocks + tail conv to one channel, valid convolutions, no norm.
"""
import copy

import torch.nn.functional as F
from torch import nn

from ganzoo.layers.conv import ConvBlock, conv2d
from ganzoo.layers.init import init_dcgan_normal
from ganzoo.registry import DISCRIMINATORS, GENERATORS

NORMS = ("none", "batch")


def _block(cin, cout, kernel, norm, negative_slope):
    block = ConvBlock(cin, cout, kernel, padding=0, norm="none", bias=True,
                      activation={"type": "lrelu", "negative_slope": negative_slope})
    if norm == "batch":
        # the official generator never leaves train mode, so its BN always normalises with batch statistics
        block.norm = nn.BatchNorm2d(cout, track_running_stats=False)
    return block


def _stage(nfc, num_layers, kernel, norm, negative_slope):
    return nn.Sequential(*[_block(nfc, nfc, kernel, norm, negative_slope) for _ in range(num_layers)])


def upsample(x, size):
    """Bicubic resize between stages (``align_corners=True``, as the official code)."""
    return F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=True)


def _check(num_layers, kernel, norm):
    if num_layers < 1 or kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"ConSinGAN nets need num_layers >= 1 and an odd kernel, got {num_layers}, {kernel}")
    if norm not in NORMS:
        raise ValueError(f"ConSinGAN norm must be one of {', '.join(NORMS)}, got {norm!r}")


@GENERATORS.register("consingan_generator")
class ConSinGANGenerator(nn.Module):
    """``forward(noises, sizes, amps)``: ``noises[0]`` (N, C, H0, W0) is the stage-0 input, ``noises[k]`` the
    ``nfc``-channel noise of stage k (at ``sizes[k]`` plus ``2 * pad`` with ``edge_upsample``), ``amps[k]`` its
    amplitude; runs as many stages as ``noises`` has entries and returns the image at ``sizes[-1]``."""

    def __init__(self, channels=3, nfc=64, num_layers=3, kernel=3, norm="none", negative_slope=0.05,
                 edge_upsample=True):
        super().__init__()
        _check(num_layers, kernel, norm)
        self.edge_upsample = edge_upsample
        self.margin = (kernel - 1) // 2         # per conv and side
        self.pad = num_layers * self.margin     # what one stage's valid convs eat per side
        self.head = _block(channels, nfc, kernel, norm, negative_slope)
        self.body = nn.ModuleList([_stage(nfc, num_layers, kernel, norm, negative_slope)])
        self.tail = nn.Sequential(conv2d(nfc, channels, kernel, padding=0), nn.Tanh())
        init_dcgan_normal(self)

    def grow(self):
        """Add the next stage as a copy of the last one."""
        self.body.append(copy.deepcopy(self.body[-1]))

    def _pad(self, x, p):
        return F.pad(x, (p, p, p, p))

    def forward(self, noises, sizes, amps):
        m, p = self.margin, self.pad
        x = self.head(self._pad(noises[0], m))
        if self.edge_upsample:
            x = self._pad(upsample(x, (x.shape[2] + 2 * m, x.shape[3] + 2 * m)), p - m)
        else:
            x = self._pad(x, p)
        out = self.body[0](x)
        for k in range(1, len(noises)):
            size = tuple(sizes[k])
            skip = upsample(out, size)
            if self.edge_upsample:
                x = upsample(out, (size[0] + 2 * p, size[1] + 2 * p)) + amps[k] * noises[k]
            else:
                x = self._pad(skip + amps[k] * noises[k], p)
            out = self.body[k](x) + skip
        return self.tail(self._pad(out, m))


@DISCRIMINATORS.register("consingan_discriminator")
class ConSinGANDiscriminator(nn.Module):
    """Patch critic: an (H, W) image -> an (H - 2 (num_layers + 2) pad, ...) score map (valid convolutions)."""

    def __init__(self, channels=3, nfc=64, num_layers=3, kernel=3, negative_slope=0.05):
        super().__init__()
        _check(num_layers, kernel, "none")
        self.head = _block(channels, nfc, kernel, "none", negative_slope)
        self.body = _stage(nfc, num_layers, kernel, "none", negative_slope)
        self.tail = conv2d(nfc, 1, kernel, padding=0)
        init_dcgan_normal(self)

    def forward(self, x):
        return self.tail(self.body(self.head(x)))
