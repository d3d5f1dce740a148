"""SPADE generator and its VAE convolutional encoder (Park et al. 2019), official defaults.

Built from the shared parts: the ``spade`` norm and :class:`ganzoo.layers.blocks.ResBlock` (which with
a SPADE norm is exactly SPADE's residual block). Top-level module names follow NVlabs/SPADE
(``fc``, ``head_0``, ``G_middle_0`` ... ``up_4``, ``conv_img``; encoder ``layer1`` ... ``fc_mu``) so that
released checkpoints map onto them (see :mod:`ganzoo.nets.spade_convert`).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.layers.blocks import ResBlock
from ganzoo.layers.conv import ConvBlock
from ganzoo.layers.init import init_weights
from ganzoo.layers.onehot import OneHotConv2d
from ganzoo.registry import ENCODERS, GENERATORS

NUM_UPSAMPLINGS = {"normal": 5, "more": 6, "most": 7}


def latent_size(crop_size, aspect_ratio, num_upsampling_layers):
    """(h, w) of the first feature map: crop / 2**num_up wide, height from the aspect ratio."""
    if num_upsampling_layers not in NUM_UPSAMPLINGS:
        raise ValueError(f"num_upsampling_layers must be one of {', '.join(NUM_UPSAMPLINGS)}, "
                         f"got {num_upsampling_layers!r}")
    sw = crop_size // 2 ** NUM_UPSAMPLINGS[num_upsampling_layers]
    if sw < 1:
        raise ValueError(f"crop_size {crop_size} is too small for num_upsampling_layers "
                         f"{num_upsampling_layers!r} (needs >= {2 ** NUM_UPSAMPLINGS[num_upsampling_layers]})")
    return round(sw / aspect_ratio), sw


@GENERATORS.register("spade_generator")
class SPADEGenerator(nn.Module):
    """SPADE generator: label map (or z) -> 16·ngf at crop/32, SPADE res-blocks with nearest x2 upsampling, tanh.

    ``label_nc`` is the number of condition channels (one-hot classes incl. dontcare, + 1 edge channel
    when instances are used). With ``z_dim`` set (VAE mode) the first layer is a linear map of z,
    otherwise a 3x3 conv of the label map resized to the latent size. ``norm`` is the res-blocks' norm
    spec (the official ``sync_batch`` param-free form is set by the SPADE model's defaults).

    ``one_hot_classes``: when set, the first that many condition channels are a one-hot map and ``forward``
    also accepts the compact condition of :func:`compact_labels` (class index + extra channels); the
    label convs then run as lookups (:class:`OneHotConv2d`), same parameters, same outputs.
    """

    def __init__(self, label_nc=151, ngf=64, num_upsampling_layers="normal", crop_size=256, aspect_ratio=1.0,
                 norm="spade", spectral_norm=True, z_dim=None, output_nc=3, init="xavier", init_gain=0.02,
                 one_hot_classes=None):
        super().__init__()
        self.label_nc, self.ngf, self.z_dim = label_nc, ngf, z_dim
        self.num_upsampling_layers = num_upsampling_layers
        self.sh, self.sw = latent_size(crop_size, aspect_ratio, num_upsampling_layers)
        scale = 2 ** NUM_UPSAMPLINGS[num_upsampling_layers]
        self.output_size = (self.sh * scale, self.sw * scale)  # (h, w) of the images it makes
        nf = ngf
        self.one_hot_classes = one_hot_classes
        if z_dim:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sh * self.sw)
        elif one_hot_classes:
            self.fc = OneHotConv2d(label_nc, 16 * nf, 3, one_hot_classes)
        else:
            self.fc = nn.Conv2d(label_nc, 16 * nf, 3, padding=1)
        if one_hot_classes:
            norm = {"type": norm} if isinstance(norm, str) else dict(norm)
            if norm["type"] == "spade":
                norm["one_hot_classes"] = one_hot_classes

        def block(fin, fout, upsample):
            return ResBlock(fin, fout, norm=norm, activation="lrelu", spectral_norm=spectral_norm,
                            label_nc=label_nc, upsample=upsample)

        more = num_upsampling_layers in ("more", "most")
        self.head_0 = block(16 * nf, 16 * nf, False)
        self.G_middle_0 = block(16 * nf, 16 * nf, True)
        self.G_middle_1 = block(16 * nf, 16 * nf, more)
        self.up_0 = block(16 * nf, 8 * nf, True)
        self.up_1 = block(8 * nf, 4 * nf, True)
        self.up_2 = block(4 * nf, 2 * nf, True)
        self.up_3 = block(2 * nf, nf, True)
        final_nc = nf
        if num_upsampling_layers == "most":
            self.up_4 = block(nf, nf // 2, True)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, output_nc, 3, padding=1)
        if init:
            init_weights(self, init, init_gain)

    def blocks(self):
        names = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"]
        return [getattr(self, name) for name in names + (["up_4"] if hasattr(self, "up_4") else [])]

    def forward(self, seg, z=None):
        """``seg``: (N, label_nc, H, W) condition, or its compact form when ``one_hot_classes`` is set;
        ``z``: (N, z_dim) latent, required with ``z_dim`` (the model draws it)."""
        if self.z_dim:
            if z is None:
                raise ValueError(f"this generator has z_dim={self.z_dim}: pass z (N, {self.z_dim})")
            x = self.fc(z).view(-1, 16 * self.ngf, self.sh, self.sw)
        else:
            x = self.fc(F.interpolate(seg, size=(self.sh, self.sw), mode="nearest"))
        # one nearest-resized label map per resolution, shared by the three SPADE norms of a block
        resized = {}
        for blk in self.blocks():
            size = tuple(s * 2 for s in x.shape[-2:]) if blk.upsample else tuple(x.shape[-2:])
            if size not in resized:
                resized[size] = seg if size == tuple(seg.shape[-2:]) else F.interpolate(seg, size=size, mode="nearest")
            x = blk(x, resized[size])
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


@ENCODERS.register("spade_vae_encoder")
class SPADEEncoder(nn.Module):
    """SPADE's VAE image encoder: stride-2 3x3 convs (spectral + instance norm) to 4x4, then mu and logvar.

    The input is resized (bilinear) to ``input_size`` (256 as in the reference); the number of convs follows
    from it so the final map is always 4x4. ``z_dim`` is honoured (the reference hard-codes 256).
    """

    def __init__(self, z_dim=256, ndf=64, input_size=256, norm="instance", spectral_norm=True,
                 init="xavier", init_gain=0.02):
        super().__init__()
        n_layers = int(math.log2(input_size // 4))
        if input_size != 4 * 2 ** n_layers:
            raise ValueError(f"encoder input_size must be 4 * 2**k, got {input_size}")
        self.input_size, self.z_dim = input_size, z_dim
        channels = [3] + [ndf * min(2 ** i, 8) for i in range(n_layers)]
        for i in range(n_layers):
            self.add_module(f"layer{i + 1}", ConvBlock(channels[i], channels[i + 1], kernel=3, stride=2, padding=1,
                                                       norm=norm, activation="lrelu", spectral_norm=spectral_norm))
        self.n_layers = n_layers
        self.fc_mu = nn.Linear(channels[-1] * 16, z_dim)
        self.fc_var = nn.Linear(channels[-1] * 16, z_dim)
        if init:
            init_weights(self, init, init_gain)

    def forward(self, image):
        """Image in [-1, 1] -> (mu, logvar), each (N, z_dim)."""
        x = image
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        for i in range(self.n_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        x = x.flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def reparameterize(mu, logvar, generator=None):
    """z = mu + eps * exp(logvar / 2), eps ~ N(0, I)."""
    eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
    return eps * torch.exp(0.5 * logvar) + mu
