"""The contract between a paper's model and the one Trainer.

A model is an ``nn.Module`` that owns its networks. The trainer builds optimizers from
:meth:`GANModel.param_groups`, walks :meth:`GANModel.stages`, and calls :meth:`GANModel.train_step`
with a :class:`ganzoo.engine.context.StepContext`; the model does its own D/G updates through it
(so WGAN-GP's 5 D steps, SinGAN's 3+3 and SPADE's 1+1 stay the model's business).

Batches are dicts: ``image`` float (N, C, H, W) in [-1, 1]; optionally ``label`` long (N, 1, H, W)
(semantic maps), ``instance`` (N, 1, H, W), ``class`` long (N,), ``path`` list of str.

A registered model also states ``DEFAULTS``: every key of its config section with the paper's value.
The config pipeline deep-merges the YAML over it, so a run's ``config.yaml`` holds them all.
"""
import torch
from torch import nn


class GANModel(nn.Module):
    #: attribute name of the generator: the module EMA tracks and sampling uses
    generator_name = "G"
    #: networks whose gradients go through a double backward (a gradient penalty): ``train.compile`` leaves
    #: them eager, since torch.compile's aot_autograd cannot differentiate a compiled graph twice
    double_backward_networks = ()

    def networks(self):
        """Name -> module for every trainable network (wrapped separately in DDP by the trainer); frozen
        modules (a classifier used as a loss or as features) are not networks."""
        return {name: module for name, module in self.named_children()
                if any(p.requires_grad for p in module.parameters())}

    def param_groups(self):
        """Name -> optimizer spec ``{"params": [...], "lr": float, "betas": (b1, b2), ...}``."""
        raise NotImplementedError

    def stages(self):
        """Training stages as ``[{"name": str, "steps": int | None, "cost": float}]``; ``None`` steps = the train
        config's; ``cost`` (optional, default 1) is one iteration's cost relative to the other stages'."""
        return [{"name": "train", "steps": None}]

    def prepare(self, dataset):
        """Called once with the training dataset before training starts and before a resume loads state."""

    def begin_stage(self, index):
        """Called when stage ``index`` starts (also on resume into it); optimizers are rebuilt after it."""

    def train_step(self, batch, ctx):
        """One training iteration; returns a dict of detached scalar tensors (losses) to log."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, batch=None, n=None, seed=None):
        """Images in [-1, 1]: conditioned on ``batch`` when the model needs it, else ``n`` samples."""
        raise NotImplementedError
