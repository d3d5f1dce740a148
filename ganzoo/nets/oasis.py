"""OASIS networks (Schönfeld et al. 2021, "You Only Need Adversarial Supervision for Semantic Image Synthesis").

Generator: SPADE residual blocks (ganzoo.layers.blocks.ResBlock with a SPADE norm); a 3D noise z
(``z_dim`` channels, one vector per sample broadcast over the map) is concatenated to the one-hot label
map and that is both the first conv's input and every SPADE's condition. Widths ngf * (16, 16, 16, 8, 4, 2, 1).
Discriminator: a U-Net of residual blocks giving per-pixel logits over ``label_nc + 1`` classes
(the last one is "fake"), for the N+1 loss of ganzoo/losses/segmentation_gan.py.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.layers.blocks import ResBlock
from ganzoo.layers.conv import conv2d
from ganzoo.registry import DISCRIMINATORS, GENERATORS

GENERATOR_WIDTHS = (16, 16, 16, 8, 4, 2, 1)  # x ngf, official for 256^2 (num_res_blocks 6)
DISCRIMINATOR_WIDTHS = (128, 128, 256, 256, 512, 512)  # encoder outputs, official


@GENERATORS.register("oasis_generator")
class OASISGenerator(nn.Module):
    """label map (N, label_nc, H, W) [+ z (N, z_dim) or (N, z_dim, h, w)] -> image (N, 3, H, W) in [-1, 1]."""

    def __init__(self, label_nc=151, ngf=64, z_dim=64, num_blocks=6, crop_size=256, aspect_ratio=1.0,
                 norm=None, spectral_norm=True):
        super().__init__()
        if num_blocks + 1 > len(GENERATOR_WIDTHS) or num_blocks < 1:
            raise ValueError(f"oasis_generator num_blocks must be 1..{len(GENERATOR_WIDTHS) - 1}, got {num_blocks}")
        norm = norm or {"type": "spade", "param_free": "sync_batch", "hidden": 128, "kernel": 3}
        widths = [ngf * m for m in GENERATOR_WIDTHS[-num_blocks - 1:]]
        self.z_dim, self.num_blocks = int(z_dim), num_blocks
        cond_nc = label_nc + self.z_dim
        self.init_w = crop_size // 2 ** (num_blocks - 1)
        self.init_h = round(self.init_w / aspect_ratio)
        self.output_size = (self.init_h * 2 ** (num_blocks - 1), self.init_w * 2 ** (num_blocks - 1))  # (h, w)
        self.fc = nn.Conv2d(cond_nc, widths[0], 3, padding=1)
        self.body = nn.ModuleList(ResBlock(widths[i], widths[i + 1], norm=norm, activation="lrelu",
                                           spectral_norm=spectral_norm, label_nc=cond_nc)
                                  for i in range(num_blocks))
        self.conv_img = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, seg, z=None):
        if self.z_dim:
            if z is None:
                z = torch.randn(seg.shape[0], self.z_dim, device=seg.device, dtype=seg.dtype)
            z = z.to(seg.dtype)
            # (N, z_dim): one vector per sample; (N, z_dim, h, w): noise that varies over the map
            z = z[:, :, None, None].expand(-1, -1, *seg.shape[2:]) if z.dim() == 2 else \
                F.interpolate(z, size=seg.shape[2:])
            seg = torch.cat([z, seg], 1)
        x = self.fc(F.interpolate(seg, size=(self.init_h, self.init_w)))
        for i, block in enumerate(self.body):
            x = block(x, seg)
            if i < self.num_blocks - 1:
                x = F.interpolate(x, scale_factor=2)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class UNetBlock(nn.Module):
    """Residual block of the OASIS discriminator: (lrelu, conv3x3) twice, 1x1 shortcut when widths differ;
    ``down``: avg-pool after; ``up``: nearest x2 before. The ``first`` block has no leading activation."""

    def __init__(self, fin, fout, down=False, up=False, first=False, spectral_norm=True):
        super().__init__()
        self.down, self.up, self.first = down, up, first
        self.conv1 = conv2d(fin, fout, 3, spectral_norm=spectral_norm)
        self.conv2 = conv2d(fout, fout, 3, spectral_norm=spectral_norm)
        self.conv_s = conv2d(fin, fout, 1, spectral_norm=spectral_norm) if fin != fout else None

    def shortcut(self, x):
        if self.up:
            x = F.interpolate(x, scale_factor=2)
        if self.down and self.first:
            x = F.avg_pool2d(x, 2)
        if self.conv_s is not None:
            x = self.conv_s(x)
        if self.down and not self.first:
            x = F.avg_pool2d(x, 2)
        return x

    def forward(self, x):
        dx = x if self.first else F.leaky_relu(x, 0.2)
        if self.up:
            dx = F.interpolate(dx, scale_factor=2)
        dx = self.conv2(F.leaky_relu(self.conv1(dx), 0.2))
        if self.down:
            dx = F.avg_pool2d(dx, 2)
        return self.shortcut(x) + dx


@DISCRIMINATORS.register("oasis_unet")
class OASISDiscriminator(nn.Module):
    """image (N, 3, H, W) -> per-pixel logits (N, label_nc + 1, H, W); ``width_scale`` shrinks all widths."""

    def __init__(self, label_nc=151, num_blocks=6, width_scale=1.0, spectral_norm=True):
        super().__init__()
        if not 2 <= num_blocks <= len(DISCRIMINATOR_WIDTHS):
            raise ValueError(f"oasis_unet num_blocks must be 2..{len(DISCRIMINATOR_WIDTHS)}, got {num_blocks}")
        widths = [3] + [max(1, int(c * width_scale)) for c in DISCRIMINATOR_WIDTHS[:num_blocks]]
        last = max(1, int(64 * width_scale))
        self.down = nn.ModuleList(UNetBlock(widths[i], widths[i + 1], down=True, first=i == 0,
                                            spectral_norm=spectral_norm) for i in range(num_blocks))
        ups = [UNetBlock(widths[-1], widths[-2], up=True, spectral_norm=spectral_norm)]
        ups += [UNetBlock(2 * widths[-1 - i], widths[-2 - i], up=True, spectral_norm=spectral_norm)
                for i in range(1, num_blocks - 1)]
        ups.append(UNetBlock(2 * widths[1], last, up=True, spectral_norm=spectral_norm))
        self.up = nn.ModuleList(ups)
        self.out = nn.Conv2d(last, label_nc + 1, 1)

    def forward(self, image):
        skips, x = [], image
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](x)
        for i in range(1, len(self.up)):
            x = self.up[i](torch.cat([skips[-i - 1], x], 1))
        return self.out(x)
