"""Adversarial losses, each with a discriminator form ``d_loss(real, fake)`` and a generator form ``g_loss(fake)``.

Predictions may be a tensor or a multiscale discriminator's output: a list (one per D) of tensors or
of feature lists whose last entry is the prediction. The loss is averaged over discriminators.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.registry import LOSSES


def predictions(pred):
    """Flatten a D output into the list of its prediction maps (last feature of each sub-D)."""
    if torch.is_tensor(pred):
        return [pred]
    return [p if torch.is_tensor(p) else p[-1] for p in pred]


class GANLoss(nn.Module):
    def d_term(self, pred, real):
        raise NotImplementedError

    def g_term(self, pred):
        return self.d_term(pred, real=True)

    def d_loss(self, real_pred, fake_pred):
        real, fake = predictions(real_pred), predictions(fake_pred)
        return sum(self.d_term(r, True) + self.d_term(f, False) for r, f in zip(real, fake)) / len(real)

    def g_loss(self, fake_pred):
        fake = predictions(fake_pred)
        return sum(self.g_term(f) for f in fake) / len(fake)


@LOSSES.register("hinge")
class HingeLoss(GANLoss):
    """Hinge: D ``relu(1 - real) + relu(1 + fake)``, G ``-fake`` (means)."""

    def d_term(self, pred, real):
        return F.relu(1 - pred).mean() if real else F.relu(1 + pred).mean()

    def g_term(self, pred):
        return -pred.mean()


@LOSSES.register("wgan")
class WGANLoss(GANLoss):
    """Wasserstein: D ``fake - real``, G ``-fake`` (means); pair with a gradient penalty."""

    def d_term(self, pred, real):
        return -pred.mean() if real else pred.mean()


@LOSSES.register("non_saturating")
class NonSaturatingLoss(GANLoss):
    """Original GAN with the non-saturating G: BCE on logits."""

    def d_term(self, pred, real):
        return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, float(real)))


@LOSSES.register("lsgan")
class LSGANLoss(GANLoss):
    """Least squares: D ``(real - 1)^2 + fake^2``, G ``(fake - 1)^2`` (means)."""

    def d_term(self, pred, real):
        return ((pred - 1) ** 2).mean() if real else (pred ** 2).mean()


def gradient_penalty(critic, real, fake, weight=10.0, target=1.0, per_pixel=False):
    """WGAN-GP: ``weight * mean((|grad critic(x_hat)| - target)^2)`` on random interpolates.

    ``per_pixel=True`` takes the gradient norm over channels only, one penalty per pixel (SinGAN's form);
    otherwise the norm is over each whole sample.
    """
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = predictions(critic(mixed))
    grad, = torch.autograd.grad(sum(s.sum() for s in scores), mixed, create_graph=True)
    norm = grad.norm(2, dim=1) if per_pixel else grad.flatten(1).norm(2, dim=1)
    return weight * ((norm - target) ** 2).mean()
