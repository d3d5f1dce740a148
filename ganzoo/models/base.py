"""The contract between a paper's model and the one Trainer.

A model is an ``nn.Module`` that owns its networks. The trainer builds optimizers from
:meth:`GANModel.param_groups`, walks :meth:`GANModel.stages`, and calls :meth:`GANModel.train_step`
with a :class:`ganzoo.engine.context.StepContext`; the model does its own D/G updates through it
(so WGAN-GP's 5 D steps, SinGAN's 3+3 and SPADE's 1+1 stay the model's business).

Batches are dicts: ``image`` float (N, C, H, W) in [-1, 1]; optionally ``label`` long (N, 1, H, W)
(semantic maps), ``instance`` (N, 1, H, W), ``class`` long (N,), ``path`` list of str.
"""
import contextlib

import torch
from torch import nn


@contextlib.contextmanager
def eval_mode(model):
    """``model.eval()`` inside the block; every submodule's own train/eval flag restored afterwards
    (frozen backbones that always stay in eval mode keep it)."""
    flags = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, flag in flags.items():
            module.training = flag


class GANModel(nn.Module):
    #: attribute name of the generator: the module EMA tracks and sampling uses
    generator_name = "G"

    def networks(self):
        """Name -> module for every trainable network (wrapped separately in DDP by the trainer)."""
        return {name: module for name, module in self.named_children() if any(True for _ in module.parameters())}

    def param_groups(self):
        """Name -> optimizer spec ``{"params": [...], "lr": float, "betas": (b1, b2), ...}``."""
        raise NotImplementedError

    def stages(self):
        """Training stages as ``[{"name": str, "steps": int | None}]``; ``None`` steps = the train config's."""
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
