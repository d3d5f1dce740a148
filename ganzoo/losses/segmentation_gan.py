"""OASIS's adversarial supervision (Schönfeld et al. 2021): a per-pixel (N+1)-class discriminator loss.

D predicts, per pixel, one of the N semantic classes for real images and the extra class N for fakes.
Real pixels (and the generator's fakes) are weighted by inverse class frequency in the batch; a
``dontcare`` class gets weight 0. ``labelmix`` mixes real and fake by random class regions.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.registry import LOSSES


def class_balance_weights(label, dontcare=None):
    """Per-pixel weights (N, H, W) for a one-hot ``label`` (N, C, H, W): pixels / (present classes · count)."""
    counts = label.sum(dim=(0, 2, 3))
    if dontcare is not None:
        counts[dontcare] = 0
    present = (counts > 0).sum()
    coefficients = torch.where(counts > 0, label[:, 0].numel() / (present * counts.clamp(min=1)),
                               torch.zeros_like(counts))
    return coefficients[label.argmax(1)]


def labelmix(label, fake, real, generator=None):
    """(mixed image, mask): every class region of ``label`` comes from ``real`` or ``fake`` by a coin flip."""
    classes = label.argmax(1, keepdim=True)
    coin = torch.randint(0, 2, (label.shape[1],), device=label.device, generator=generator)
    mask = coin[classes].to(real.dtype)
    return mask * real + (1 - mask) * fake, mask


@LOSSES.register("segmentation_gan")
class SegmentationGANLoss(nn.Module):
    """OASIS N+1 cross-entropy: real pixels -> their class (class-balanced), fake pixels -> class N."""

    def __init__(self, balance=True, dontcare=None):
        super().__init__()
        self.balance, self.dontcare = balance, dontcare

    def term(self, pred, label, real):
        if not real:
            target = torch.full(pred.shape[:1] + pred.shape[2:], label.shape[1], dtype=torch.long, device=pred.device)
            return F.cross_entropy(pred, target)
        loss = F.cross_entropy(pred, label.argmax(1), reduction="none")
        if self.balance:
            loss = loss * class_balance_weights(label, self.dontcare)
        return loss.mean()

    def d_loss(self, real_pred, fake_pred, label):
        return self.term(real_pred, label, True) + self.term(fake_pred, label, False)

    def g_loss(self, fake_pred, label):
        return self.term(fake_pred, label, True)

    def labelmix_loss(self, mask, mixed_pred, fake_pred, real_pred):
        """LabelMix consistency: D on the mixed image matches the same mix of its real and fake outputs."""
        return F.mse_loss(mixed_pred, mask * real_pred + (1 - mask) * fake_pred)
