"""Exponential moving average of a network's state (``train.ema``), swapped in for samples and eval.

The average is a plain name -> tensor dict, so it checkpoints with ``weights_only`` loading and
follows networks that grow between stages (new entries start as copies).

``norm_stats_batches`` > 0 (OASIS): before the average is used or saved, the averaged weights' own
batch-norm statistics replace the averaged ones (see :meth:`EMA.recompute_norm_stats`).
"""
import contextlib

import torch


class EMA:
    def __init__(self, decay=0.999, start=0, norm_stats_batches=0):
        self.decay = float(decay)
        self.start = int(start)
        self.norm_stats_batches = int(norm_stats_batches)
        self.shadow = {}

    @torch.no_grad()
    def update(self, module, step):
        """``shadow = decay * shadow + (1 - decay) * current``; a plain copy before ``start``."""
        state = module.state_dict()
        for name, value in state.items():
            if name not in self.shadow:
                self.shadow[name] = value.detach().clone()
        names = [n for n, v in state.items() if v.is_floating_point()]
        weight = 1.0 if step < self.start else 1.0 - self.decay
        if names:
            torch._foreach_lerp_([self.shadow[n] for n in names], [state[n] for n in names], weight)
        for name, value in state.items():
            if not value.is_floating_point():
                self.shadow[name].copy_(value)

    @contextlib.contextmanager
    def swapped_in(self, module):
        """Temporarily load the averaged weights into ``module`` (restored afterwards)."""
        state = module.state_dict()
        names = [n for n in state if n in self.shadow]
        backup = {n: state[n].detach().clone() for n in names}
        with torch.no_grad():
            for n in names:
                state[n].copy_(self.shadow[n])
        try:
            yield module
        finally:
            with torch.no_grad():
                for n in names:
                    state[n].copy_(backup[n])

    @torch.no_grad()
    def recompute_norm_stats(self, module, run_forwards):
        """Refresh the buffers of the average (BN running statistics, spectral-norm vectors) from train-mode
        forwards of the averaged weights: ``run_forwards()`` runs them with the average swapped into ``module``.
        An average of running statistics is not the statistics of averaged weights (OASIS recomputes them
        before every evaluation and checkpoint)."""
        if not self.shadow:
            return
        with self.swapped_in(module):
            was_training = module.training
            module.train()
            try:
                run_forwards()
            finally:
                module.train(was_training)
            for name, value in module.named_buffers():
                if name in self.shadow:
                    self.shadow[name].copy_(value)

    def state_dict(self):
        return {"decay": self.decay, "start": self.start, "shadow": dict(self.shadow)}

    def load_state_dict(self, state):
        self.shadow = {name: value.clone() for name, value in state["shadow"].items()}
