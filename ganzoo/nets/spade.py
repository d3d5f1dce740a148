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
from ganzoo.layers.norms import SPADE
from ganzoo.registry import ENCODERS, GENERATORS

NUM_UPSAMPLINGS = {"normal": 5, "more": 6, "most": 7}
DEFAULT_NORM = {"type": "spade", "param_free": "sync_batch", "hidden": 128, "kernel": 3}


class _OneHotConvFunction(torch.autograd.Function):
    """Sum of table rows picked by ``cols`` (B, taps); the backward scatters into the table tap by tap,
    which is several times faster on CPU than embedding_bag's generic backward."""

    @staticmethod
    def forward(ctx, cols, table):
        ctx.save_for_backward(cols)
        ctx.table_shape = table.shape
        return F.embedding_bag(cols, table, mode="sum")

    @staticmethod
    def backward(ctx, grad):
        cols, = ctx.saved_tensors
        grad = grad.contiguous()
        grad_table = grad.new_zeros(ctx.table_shape)
        # CPU index_add_ is fast on one thread and many times slower when split over threads
        threads = torch.get_num_threads() if grad.device.type == "cpu" else 1
        if threads > 1:
            torch.set_num_threads(1)
        try:
            for tap in range(cols.shape[1]):
                grad_table.index_add_(0, cols[:, tap], grad)
        finally:
            if threads > 1:
                torch.set_num_threads(threads)
        return None, grad_table


class OneHotConv2d(nn.Conv2d):
    """A Conv2d (same parameters and state-dict keys) that also accepts its input in compact form.

    Dense input (``in_channels`` channels) runs the ordinary convolution. Compact input has
    ``1 + in_channels - num_classes`` channels: channel 0 holds the class index (as float) of a one-hot
    map over the first ``num_classes`` channels, the rest are the remaining dense channels (e.g. the
    instance-edge map). A conv of a one-hot map is a sum of weight columns picked by the label under each
    kernel tap, so the compact form costs kernel-area lookups per pixel instead of
    ``num_classes x kernel-area`` multiply-adds: SPADE's label convs (151 -> 128 channels at every
    resolution) are a large share of the generator's work. Same result up to float summation order.
    """

    def __init__(self, in_channels, out_channels, kernel_size, num_classes, padding=None, bias=True):
        padding = kernel_size // 2 if padding is None else padding
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, bias=bias)
        if num_classes > in_channels or kernel_size % 2 == 0 or padding != kernel_size // 2:
            raise ValueError("OneHotConv2d needs num_classes <= in_channels and an odd kernel with 'same' padding")
        self.num_classes = num_classes

    @classmethod
    def from_conv(cls, conv, num_classes):
        out = cls(conv.in_channels, conv.out_channels, conv.kernel_size[0], num_classes, conv.padding[0],
                  conv.bias is not None)
        out.load_state_dict(conv.state_dict())
        return out.to(conv.weight.device)

    def forward(self, x):
        if x.shape[1] == self.in_channels:
            return super().forward(x)
        k, classes, pad = self.kernel_size[0], self.num_classes, self.padding[0]
        n, _, h, w = x.shape
        index = x[:, 0].long()
        # row ``classes`` of every tap's table is zero: the label value of the zero padding
        padded = F.pad(index, (pad, pad, pad, pad), value=classes)
        cols = torch.stack([padded[:, dy:dy + h, dx:dx + w] + (dy * k + dx) * (classes + 1)
                            for dy in range(k) for dx in range(k)], dim=-1).reshape(-1, k * k)
        weight = self.weight[:, :classes].permute(2, 3, 1, 0).reshape(k * k, classes, self.out_channels)
        table = F.pad(weight, (0, 0, 0, 1)).reshape(k * k * (classes + 1), self.out_channels)
        out = _OneHotConvFunction.apply(cols, table).view(n, h, w, self.out_channels).permute(0, 3, 1, 2)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        if self.in_channels > classes:
            out = out + F.conv2d(x[:, 1:].to(out.dtype), self.weight[:, classes:].to(out.dtype), None, 1, pad)
        return out


def compact_labels(label, extra=None):
    """Compact condition for :class:`OneHotConv2d`: class index as float (N,1,H,W) + extra dense channels."""
    compact = label.to(torch.float32)  # float32 keeps class indices exact (bf16 would not past 256)
    if compact.dim() == 3:
        compact = compact.unsqueeze(1)
    return compact if extra is None else torch.cat([compact, extra.to(torch.float32)], 1)


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
    otherwise a 3x3 conv of the label map resized to the latent size.

    ``one_hot_classes``: when set, the first that many condition channels are a one-hot map and ``forward``
    also accepts the compact condition of :func:`compact_labels` (class index + extra channels); the
    label convs then run as lookups (:class:`OneHotConv2d`), same parameters, same outputs.
    """
    test_kwargs = {"label_nc": 4, "ngf": 2, "crop_size": 32, "norm": {"type": "spade", "hidden": 8}}

    def __init__(self, label_nc=151, ngf=64, num_upsampling_layers="normal", crop_size=256, aspect_ratio=1.0,
                 norm=None, spectral_norm=True, z_dim=None, output_nc=3, init="xavier", init_gain=0.02,
                 one_hot_classes=None):
        super().__init__()
        norm = dict(DEFAULT_NORM) if norm is None else norm
        self.label_nc, self.ngf, self.z_dim = label_nc, ngf, z_dim
        self.num_upsampling_layers = num_upsampling_layers
        self.sh, self.sw = latent_size(crop_size, aspect_ratio, num_upsampling_layers)
        scale = 2 ** NUM_UPSAMPLINGS[num_upsampling_layers]
        self.output_size = (self.sh * scale, self.sw * scale)  # (h, w) of the images it makes
        nf = ngf
        if z_dim:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sh * self.sw)
        else:
            self.fc = nn.Conv2d(label_nc, 16 * nf, 3, padding=1)

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
        self.one_hot_classes = one_hot_classes
        if one_hot_classes:
            if not z_dim:
                self.fc = OneHotConv2d.from_conv(self.fc, one_hot_classes)
            for module in self.modules():
                shared = getattr(module, "shared", None) if isinstance(module, SPADE) else None
                if isinstance(shared, nn.Sequential) and type(shared[0]) is nn.Conv2d:
                    shared[0] = OneHotConv2d.from_conv(shared[0], one_hot_classes)
        if init:
            init_weights(self, init, init_gain)

    def blocks(self):
        names = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"]
        return [getattr(self, name) for name in names + (["up_4"] if hasattr(self, "up_4") else [])]

    def forward(self, seg, z=None):
        """``seg``: (N, label_nc, H, W) condition, or its compact form when ``one_hot_classes`` is set."""
        if self.z_dim:
            if z is None:
                z = torch.randn(seg.shape[0], self.z_dim, device=seg.device)
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
    test_kwargs = {"z_dim": 8, "ndf": 2, "input_size": 16}

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
