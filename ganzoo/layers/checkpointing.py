"""Activation checkpointing of a module in place (``train.checkpoint_activations``): its activations are
recomputed in the backward instead of kept, trading one more forward for memory.

The module keeps its state-dict keys (its class is swapped for a subclass, not wrapped). Buffers a training
forward changes (batch-norm running statistics, spectral-norm power-iteration vectors) are put back to their
pre-forward values for the recomputation and restored afterwards, so the recomputed forward is the original one
(same weights, same statistics) and the statistics move once per forward, as without checkpointing. Random
draws inside the module are replayed (torch's ``preserve_rng_state``).
"""
import torch
from torch.utils.checkpoint import checkpoint

_SUBCLASSES = {}


def _checkpointed_forward(self, *args, **kwargs):
    forward = super(type(self), self).forward
    if not (self.training and torch.is_grad_enabled()):
        return forward(*args, **kwargs)
    before = []

    def run(*a, **k):
        if not before:  # the forward itself
            before.extend(b.clone() for b in self.buffers())
            return forward(*a, **k)
        after = [b.clone() for b in self.buffers()]  # the recomputation in the backward
        with torch.no_grad():
            for b, saved in zip(self.buffers(), before):
                b.copy_(saved)
        try:
            return forward(*a, **k)
        finally:
            with torch.no_grad():
                for b, saved in zip(self.buffers(), after):
                    b.copy_(saved)

    return checkpoint(run, *args, use_reentrant=False, **kwargs)


def checkpoint_activations(module):
    """Checkpoint ``module``'s forward from now on (idempotent); returns it."""
    cls = type(module)
    if getattr(cls, "_activation_checkpointed", False):
        return module
    if cls not in _SUBCLASSES:
        _SUBCLASSES[cls] = type(cls.__name__, (cls,), {"forward": _checkpointed_forward,
                                                        "_activation_checkpointed": True,
                                                        "__module__": cls.__module__,
                                                        "__qualname__": cls.__qualname__})
    module.__class__ = _SUBCLASSES[cls]
    return module
