"""Semantic Pyramid networks: the feature-injected generator and its two discriminators.

The generator is told the classifier's level list (name, channels, stride) and builds one injector
per level: vector levels (fc7/fc8, pool/logits) enter the dense stem, spatial levels are added to
the stream where its resolution is ``image_size / stride``. Each injector sees ``feature * mask``
(and, for maps, the mask itself as one more channel).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.layers.blocks import ResBlock, SelfAttention
from ganzoo.layers.conv import ConvBlock, build_activation, conv2d, linear
from ganzoo.layers.init import init_weights
from ganzoo.layers.norms import build_norm
from ganzoo.layers.spectral_norm import spectral_norm as apply_spectral_norm
from ganzoo.registry import DISCRIMINATORS, GENERATORS


def _scaled(channels, factor):
    return [max(int(c / factor), 1) for c in channels]


class _UpConvBlock(nn.Module):
    """The seed's ``default`` generator block: transposed conv 4x4 stride 2, BN, ReLU."""

    def __init__(self, fin, fout):
        super().__init__()
        self.conv = nn.ConvTranspose2d(fin, fout, 4, 2, 1, bias=False)
        self.norm = build_norm("batch", fout)

    def forward(self, x, cond=None):
        return F.relu(self.norm(self.conv(x)))


@GENERATORS.register("semantic_pyramid")
class SemanticPyramidGenerator(nn.Module):
    """Residual SAGAN-style generator with per-level feature injection (``gen_type``: sagan | res | default).

    ``sagan``: pre-activation residual blocks with (class-conditional) BN, spectral norm, self-attention,
    spectral-normed 3x3 injectors of ``cat(feature * mask, mask)``. ``res`` / ``default``: the simpler
    ResNet18-seed variants (residual BN blocks / transposed-conv blocks, conv-BN-ReLU injectors, no SN).
    ``levels``: the classifier's ``(name, channels, stride or None)`` per level (the model passes its
    backbone's); ``use_levels`` restricts injection to some level names (others get no injector).
    """

    def __init__(self, levels, image_size=256, z_dim=128, channels=(512, 512, 256, 128, 64), stem_channels=128,
                 channel_factor=1.0, num_classes=0, gen_type="sagan", attention=(2,), spectral_norm=None,
                 inject_kernel=3, inject_mask=True, use_levels=None, activation="lrelu", init="xavier"):
        super().__init__()
        if gen_type not in ("sagan", "res", "default"):
            raise ValueError(f"generator gen_type must be sagan, res or default, got {gen_type!r}")
        self.levels = [tuple(level) for level in levels]
        self.z_dim, self.num_classes, self.inject_mask = z_dim, num_classes, inject_mask
        sn = gen_type == "sagan" if spectral_norm is None else spectral_norm
        channels = _scaled(channels, channel_factor)
        stem_channels = max(int(stem_channels / channel_factor), 1)
        n_up = len(channels) + 1  # every block doubles, the head once more
        self.stem_size = image_size // 2 ** n_up
        if self.stem_size < 1 or self.stem_size * 2 ** n_up != image_size:
            raise ValueError(f"generator image_size {image_size} must be a multiple of 2**{n_up} "
                             f"(one doubling per block of channels={list(channels)} plus the head)")
        use = set(use_levels) if use_levels else {name for name, _, _ in self.levels}
        unknown = use - {name for name, _, _ in self.levels}
        if unknown:
            raise ValueError(f"generator use_levels {sorted(unknown)} not among the backbone levels "
                             f"{[n for n, _, _ in self.levels]}")
        self.active = [name in use for name, _, _ in self.levels]

        # Dense stem: vector levels, deepest first; the last dense layer's width is the stem map's size.
        self.act = build_activation(activation)
        self.z_in = linear(z_dim, z_dim, spectral_norm=sn)
        vectors = [i for i, (_, _, stride) in enumerate(self.levels) if stride is None][::-1]
        self.dense_levels = vectors
        self.dense, self.dense_inject = nn.ModuleList(), nn.ModuleDict()
        width = z_dim
        for k, i in enumerate(vectors):
            out = stem_channels * self.stem_size ** 2 if k == len(vectors) - 1 else self.levels[i][1]
            self.dense.append(linear(width, out, spectral_norm=sn))
            if self.active[i]:
                self.dense_inject[str(i)] = linear(self.levels[i][1], out, spectral_norm=sn)
            width = out
        if not vectors:
            self.dense.append(linear(width, stem_channels * self.stem_size ** 2, spectral_norm=sn))
        self.stem_channels = stem_channels
        self.stem_conv = conv2d(stem_channels, channels[0], 1, spectral_norm=sn)

        # Up-sampling blocks; spatial level with stride s is added where the stream is image_size / s.
        cond_nc = num_classes if num_classes and gen_type == "sagan" else None
        norm = "class_batch" if cond_nc else "batch"
        self.blocks, self.attn, self.block_inject = nn.ModuleList(), nn.ModuleDict(), nn.ModuleDict()
        self.block_level = []
        fin = channels[0]
        for b, fout in enumerate(channels):
            if gen_type == "default":
                self.blocks.append(_UpConvBlock(fin, fout))
            else:
                self.blocks.append(ResBlock(fin, fout, norm=norm, activation=activation if gen_type == "sagan"
                                            else "relu", spectral_norm=sn, label_nc=cond_nc, upsample=True,
                                            hidden=fout))
            size = self.stem_size * 2 ** (b + 1)
            level = next((i for i, (_, _, stride) in enumerate(self.levels)
                          if stride is not None and image_size // stride == size and self.active[i]), None)
            self.block_level.append(level)
            if level is not None:
                cin = self.levels[level][1] + int(inject_mask)
                if gen_type == "sagan":
                    self.block_inject[str(b)] = conv2d(cin, fout, inject_kernel, spectral_norm=sn)
                else:
                    self.block_inject[str(b)] = ConvBlock(cin, fout, inject_kernel, norm="batch", activation="relu")
            if b in (attention or ()) and gen_type == "sagan":
                self.attn[str(b)] = SelfAttention(fout, spectral_norm=sn)
            fin = fout
        missing = [self.levels[i][0] for i, (_, _, s) in enumerate(self.levels)
                   if s is not None and self.active[i] and i not in self.block_level]
        if missing:
            raise ValueError(f"generator has no block at the resolution of levels {missing} for image_size "
                             f"{image_size}; use_levels can leave them out")
        self.head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvBlock(fin, fin, 3, norm="batch", activation=activation, order="norm_act_conv", spectral_norm=sn),
            ConvBlock(fin, 3, 1, norm="none", activation=activation, order="norm_act_conv", spectral_norm=sn),
            nn.Tanh())
        init_weights(self, kind=init, gain=1.0 if init in ("xavier", "orthogonal") else 0.02)

    def _masked(self, feature, mask, with_mask):
        if feature.dim() == 2:
            return feature * mask.view(-1, 1)
        mask = mask.to(feature.dtype)
        masked = feature * mask
        return torch.cat([masked, mask], 1) if with_mask else masked

    def forward(self, z, features, masks, class_ids=None):
        """``features``/``masks``: one entry per level (masks (N, 1, h, w) for maps, (N,) or (N, 1) for vectors)."""
        h = self.z_in(z)
        for k, i in enumerate(self.dense_levels):
            h = self.dense[k](self.act(h))
            if str(i) in self.dense_inject:
                h = h + self.dense_inject[str(i)](self._masked(features[i], masks[i], False))
        if not self.dense_levels:
            h = self.dense[0](self.act(h))
        h = h.view(h.shape[0], self.stem_channels, self.stem_size, self.stem_size)
        h = self.stem_conv(self.act(h))
        for b, block in enumerate(self.blocks):
            h = block(h, class_ids)
            level = self.block_level[b]
            if level is not None:
                h = h + self.block_inject[str(b)](self._masked(features[level], masks[level], self.inject_mask))
            if str(b) in self.attn:
                h = self.attn[str(b)](h)
        return self.head(h)


def _down_count(image_size, min_size=4):
    return max(int(math.log2(image_size // min_size)), 0)


@DISCRIMINATORS.register("sagan_projection")
class SAGANProjectionDiscriminator(nn.Module):
    """SAGAN/BigGAN residual discriminator with self-attention, spectral norm and a projection term.

    Output (N,) = ``linear(h) + sum_c(embed(y)_c * h_c)`` with ``h`` the globally sum-pooled features;
    ``num_classes: 0`` drops the projection (unconditional).
    """

    def __init__(self, image_size=256, channels=(64, 128, 256, 256, 256, 512, 768), channel_factor=1.0,
                 num_classes=0, attention=(2,), spectral_norm=True, activation="lrelu"):
        super().__init__()
        channels = _scaled(channels, channel_factor)
        downs = _down_count(image_size)
        self.blocks, self.attn, self.down = nn.ModuleList(), nn.ModuleDict(), []
        fin = 3
        for b, fout in enumerate(channels):
            self.blocks.append(ResBlock(fin, fout, norm="none", activation=activation, spectral_norm=spectral_norm,
                                        hidden=fout))
            self.down.append(b < downs)
            if b in (attention or ()):
                self.attn[str(b)] = SelfAttention(fout, spectral_norm=spectral_norm)
            fin = fout
        self.act = build_activation(activation)
        self.linear = linear(fin, 1, spectral_norm=spectral_norm)
        self.embed = None
        if num_classes:
            self.embed = nn.Embedding(num_classes, fin)
            if spectral_norm:
                self.embed = apply_spectral_norm(self.embed)
        init_weights(self, kind="xavier", gain=1.0)

    def forward(self, x, class_ids=None):
        for b, block in enumerate(self.blocks):
            x = block(x)
            if self.down[b]:
                x = F.avg_pool2d(x, 2)
            if str(b) in self.attn:
                x = self.attn[str(b)](x)
        h = self.act(x).sum(dim=(2, 3))
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            if class_ids is None:
                raise ValueError("sagan_projection discriminator with num_classes > 0 needs class ids")
            out = out + (self.embed(class_ids) * h).sum(dim=1)
        return out


@DISCRIMINATORS.register("dcgan_critic")
class DCGANCritic(nn.Module):
    """Unconditional strided-conv critic of the ResNet18 seed: 4x4 stride-2 convs with ``norm``
    (batch | instance | layer) and LeakyReLU down to 4x4, then a 4x4 conv to one score per image."""

    def __init__(self, image_size=256, channels=(64, 64, 128, 256, 512, 512), channel_factor=1.0, norm="instance",
                 spectral_norm=False, num_classes=0):
        super().__init__()
        if num_classes:
            raise ValueError("dcgan_critic is unconditional: use model.num_classes: 0 or the sagan_projection D")
        if norm not in ("batch", "instance", "layer"):
            raise ValueError(f"dcgan_critic norm must be batch, instance or layer, got {norm!r}")
        norm_spec = {"type": "instance", "affine": True} if norm == "instance" else norm
        channels = _scaled(channels, channel_factor)
        downs = _down_count(image_size)
        if downs < 1:
            raise ValueError(f"dcgan_critic image_size must be at least 8, got {image_size}")
        layers = [ConvBlock(3, channels[0], 4, 2, 1, norm="none", spectral_norm=spectral_norm)]
        fin = channels[0]
        for fout in channels[1:downs]:
            layers.append(ConvBlock(fin, fout, 4, 2, 1, norm=norm_spec, spectral_norm=spectral_norm))
            fin = fout
        for _ in range(downs - len(channels)):  # images larger than the channel list covers
            layers.append(ConvBlock(fin, fin, 4, 2, 1, norm=norm_spec, spectral_norm=spectral_norm))
        self.body = nn.Sequential(*layers)
        self.out = conv2d(fin, 1, 4, padding=0, spectral_norm=spectral_norm)
        init_weights(self, kind="normal", gain=0.02)

    def forward(self, x, class_ids=None):
        return self.out(self.body(x)).flatten(1).mean(1)
