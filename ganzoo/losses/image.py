"""Non-adversarial losses: feature matching, reconstruction, KL divergence, mode seeking."""
import torch
from torch import nn

from ganzoo.registry import LOSSES


@LOSSES.register("feature_matching")
class FeatureMatchingLoss(nn.Module):
    """L1 between D's intermediate features of fake and real (all but the last), summed over layers, / num_D."""

    def forward(self, fake_feats, real_feats):
        total = 0.0
        for fake_d, real_d in zip(fake_feats, real_feats):
            for fake, real in zip(fake_d[:-1], real_d[:-1]):
                total = total + (fake - real.detach()).abs().mean()
        return total / len(fake_feats)


@LOSSES.register("reconstruction")
class ReconstructionLoss(nn.Module):
    """Mean L1 or MSE between an output and its target."""

    def __init__(self, kind="mse"):
        super().__init__()
        if kind not in ("l1", "mse"):
            raise ValueError(f"reconstruction kind must be l1 or mse, got {kind!r}")
        self.kind = kind

    def forward(self, output, target):
        diff = output - target
        return diff.abs().mean() if self.kind == "l1" else diff.pow(2).mean()


@LOSSES.register("kld")
class KLDLoss(nn.Module):
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over batch and dims (SPADE's form)."""

    def forward(self, mu, logvar):
        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


@LOSSES.register("mode_seeking")
class ModeSeekingLoss(nn.Module):
    """Diversity loss (Mao et al. 2019): ``1 / (mean|f1 - f2| / mean|z1 - z2| + eps)``; minimise it."""

    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, fake1, fake2, z1, z2):
        ratio = (fake1 - fake2).abs().mean() / (z1 - z2).abs().mean()
        return 1.0 / (ratio + self.eps)
