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
    #: whether ``train_step`` honours ``train.accumulate`` (splits its batch with ``ctx.micro_batches``)
    supports_accumulation = False
    #: whether :meth:`activation_checkpoint_modules` names modules for ``train.checkpoint_activations``
    supports_activation_checkpointing = False

    def networks(self):
        """Name -> module for every trainable network (wrapped separately in DDP by the trainer); frozen
        modules (a classifier used as a loss or as features) are not networks."""
        return {name: module for name, module in self.named_children()
                if any(p.requires_grad for p in module.parameters())}

    def activation_checkpoint_modules(self):
        """The modules ``train.checkpoint_activations`` recomputes in the backward instead of keeping their
        activations (the memory-heavy ones of the current stage); called at each stage's start."""
        raise NotImplementedError

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

    def norm_stats_forward(self, batch):
        """One no-grad forward of the generator on a training ``batch`` (its norms in train mode): what
        ``train.ema.norm_stats_batches`` runs to recompute the EMA generator's batch-norm statistics."""
        raise NotImplementedError(f"{type(self).__name__} does not support train.ema.norm_stats_batches")


class TensorList(nn.Module):
    """Buffers named ``0, 1, ...`` so a list of differently shaped tensors lives in the state dict (a pyramid)."""

    def __len__(self):
        return len(self._buffers)

    def __getitem__(self, index):
        return self._buffers[str(range(len(self))[index])]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def append(self, tensor):
        self.register_buffer(str(len(self)), tensor)

    def clear(self):
        self._buffers.clear()
