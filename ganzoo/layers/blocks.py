"""Residual block (plain or SPADE, by its norm) and SAGAN self-attention."""
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.layers.conv import ConvBlock, conv2d
from ganzoo.layers.norms import build_norm, is_conditional


class ResBlock(nn.Module):
    """Pre-activation residual block: (norm, act, conv3x3) twice, hidden width ``min(fin, fout)``.

    When ``fin != fout`` the shortcut is norm + conv1x1 without bias (no activation). With a SPADE norm
    this is exactly SPADE's residual block. ``upsample``/``downsample`` scale by 2 (nearest / avg-pool)
    on both paths, before the convs when upsampling and after them when downsampling.
    """

    def __init__(self, fin, fout, norm="batch", activation="lrelu", spectral_norm=False, label_nc=None,
                 upsample=False, downsample=False, hidden=None):
        super().__init__()
        hidden = hidden or min(fin, fout)
        self.upsample, self.downsample = upsample, downsample
        block = dict(kernel=3, norm=norm, activation=activation, spectral_norm=spectral_norm,
                     bias=True, order="norm_act_conv", label_nc=label_nc)
        self.block_0 = ConvBlock(fin, hidden, **block)
        self.block_1 = ConvBlock(hidden, fout, **block)
        self.learned_shortcut = fin != fout
        if self.learned_shortcut:
            self.norm_s = build_norm(norm, fin, label_nc=label_nc)
            self.conv_s = conv2d(fin, fout, 1, bias=False, spectral_norm=spectral_norm)

    def shortcut(self, x, cond):
        if not self.learned_shortcut:
            return x
        normed = self.norm_s(x, cond) if is_conditional(self.norm_s) else self.norm_s(x)
        return self.conv_s(normed)

    def forward(self, x, cond=None):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        out = self.shortcut(x, cond) + self.block_1(self.block_0(x, cond), cond)
        return F.avg_pool2d(out, 2) if self.downsample else out


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``x + gamma * attention(x)``, gamma initialised to 0.

    Queries/keys use C/8 channels; keys and values are max-pooled 2x2 as in BigGAN/SAGAN reference code
    when ``pool=True`` (quarter the attention cost).
    """

    def __init__(self, channels, spectral_norm=True, pool=True):
        super().__init__()
        inner = max(channels // 8, 1)
        self.pool = pool
        self.query = conv2d(channels, inner, 1, bias=False, spectral_norm=spectral_norm)
        self.key = conv2d(channels, inner, 1, bias=False, spectral_norm=spectral_norm)
        self.value = conv2d(channels, max(channels // 2, 1), 1, bias=False, spectral_norm=spectral_norm)
        self.out = conv2d(max(channels // 2, 1), channels, 1, bias=False, spectral_norm=spectral_norm)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        n, c, h, w = x.shape
        query = self.query(x).flatten(2).transpose(1, 2)           # N, HW, C/8
        key, value = self.key(x), self.value(x)
        if self.pool and h % 2 == 0 and w % 2 == 0:
            key, value = F.max_pool2d(key, 2), F.max_pool2d(value, 2)
        key = key.flatten(2).transpose(1, 2)                        # N, HW', C/8
        value = value.flatten(2).transpose(1, 2)                    # N, HW', C/2
        attended = F.scaled_dot_product_attention(query, key, value, scale=1.0)
        attended = attended.transpose(1, 2).reshape(n, -1, h, w)
        return x + self.gamma * self.out(attended)
