"""Spectral normalisation with the power-iteration order of the official GAN codes.

``weight / sigma`` with ``sigma = u·W v`` estimated by one power iteration per training-mode forward,
updating ``v = normalize(Wᵀu)`` first and then ``u = normalize(W v)``: the order of the older
``torch.nn.utils.spectral_norm`` that NVlabs/SPADE (and pix2pixHD) train with.
``torch.nn.utils.parametrizations.spectral_norm`` updates ``u`` first; from the same state one SPADE
generator forward then comes out ≈ 10 % apart. The module is a parametrization with that class's
state-dict layout (``parametrizations.weight.original``, ``parametrizations.weight.0._u`` / ``._v``),
so checkpoints of either kind load.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

EPS = 1e-12  # as both torch implementations


class SpectralNorm(nn.Module):
    """Parametrization ``weight -> weight / sigma(weight)`` over the weight reshaped to (out, -1)."""

    def __init__(self, weight):
        super().__init__()
        matrix = weight.detach().flatten(1)
        self.register_buffer("_u", F.normalize(matrix.new_empty(matrix.shape[0]).normal_(), dim=0, eps=EPS))
        self.register_buffer("_v", F.normalize(matrix.new_empty(matrix.shape[1]).normal_(), dim=0, eps=EPS))
        self.power_iteration(matrix, 15)

    @torch.no_grad()
    def power_iteration(self, matrix, iterations):
        """``iterations`` steps of v then u, written into the buffers (their storage is kept)."""
        for _ in range(iterations):
            self._v = F.normalize(torch.mv(matrix.t(), self._u), dim=0, eps=EPS, out=self._v)
            self._u = F.normalize(torch.mv(matrix, self._v), dim=0, eps=EPS, out=self._u)

    def forward(self, weight):
        matrix = weight.flatten(1)
        if self.training:
            self.power_iteration(matrix, 1)
        # copies: a later in-place update must not change what this forward's backward reads
        u = self._u.clone(memory_format=torch.contiguous_format)
        v = self._v.clone(memory_format=torch.contiguous_format)
        return weight / torch.vdot(u, torch.mv(matrix, v))


def spectral_norm(module, name="weight"):
    """Spectral-normalise ``module.<name>`` (a conv, linear or embedding weight) in place; returns ``module``."""
    parametrize.register_parametrization(module, name, SpectralNorm(getattr(module, name)))
    return module


@torch.no_grad()
def refresh_spectral_norm(module, iterations=15):
    """Re-run the power iteration of every spectral norm in ``module`` after its weights changed under it.

    Its u/v vectors were estimated for the old weights; left stale, the first eval-mode forward divides
    by a wrong sigma (activations blow up by orders of magnitude).
    """
    for m in module.modules():
        if parametrize.is_parametrized(m):
            for parametrizations in m.parametrizations.values():
                for parametrization in parametrizations:
                    if isinstance(parametrization, SpectralNorm):
                        parametrization.power_iteration(parametrizations.original.flatten(1), iterations)
