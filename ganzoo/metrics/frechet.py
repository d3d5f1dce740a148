"""Gaussian statistics of features and the Fréchet distance between two Gaussians, in float64.

    d² = |mu1 - mu2|² + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)

``tr sqrt(S1 S2)`` is the sum of the square roots of the eigenvalues of S1 S2, which equal those of
the symmetric PSD matrix ``L^T S2 L`` for any factor ``S1 = L L^T``: a Cholesky factor when S1 is
positive definite, else ``V diag(sqrt(w))`` from its eigen-decomposition. So no scipy ``sqrtm``, no
complex numbers, and it runs batched on any device.
"""
import numpy as np
import torch


def _as_float64(x, device=None):
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    x = torch.as_tensor(x)
    return x.to(device=device or x.device, dtype=torch.float64)


def trace_sqrt_product(sigma1, sigma2):
    """tr sqrt(sigma1 @ sigma2) for symmetric PSD matrices (..., d, d), float64."""
    factor, info = torch.linalg.cholesky_ex(sigma1)
    if bool((info != 0).any()):   # singular / semi-definite: factor through the eigen-decomposition
        w, v = torch.linalg.eigh(sigma1)
        factor = v * w.clamp_min(0).sqrt().unsqueeze(-2)
    inner = factor.transpose(-1, -2) @ sigma2 @ factor
    inner = (inner + inner.transpose(-1, -2)) / 2
    return torch.linalg.eigvalsh(inner).clamp_min(0).sqrt().sum(-1)


def frechet_distance(mu1, sigma1, mu2, sigma2, device=None):
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); numpy or torch inputs, batched over
    leading dims. Returns a python float for unbatched inputs, else a float64 tensor."""
    mu1, mu2 = _as_float64(mu1, device), _as_float64(mu2, device)
    sigma1, sigma2 = _as_float64(sigma1, mu1.device), _as_float64(sigma2, mu1.device)
    mu2 = mu2.to(mu1.device)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape[-1] != mu1.shape[-1]:
        raise ValueError(f"statistics do not match: mu {tuple(mu1.shape)} vs {tuple(mu2.shape)}, "
                         f"sigma {tuple(sigma1.shape)} vs {tuple(sigma2.shape)}")
    diff = mu1 - mu2
    value = ((diff * diff).sum(-1) + sigma1.diagonal(dim1=-2, dim2=-1).sum(-1)
             + sigma2.diagonal(dim1=-2, dim2=-1).sum(-1) - 2 * trace_sqrt_product(sigma1, sigma2))
    return float(value) if value.dim() == 0 else value


class FeatureStats:
    """Streaming mean and covariance of feature vectors, accumulated on their device in float64.

    Sums are taken around a shift (the first batch's mean) so the covariance does not lose digits
    when the mean is large compared to the spread.
    """

    def __init__(self):
        self.count = 0
        self.shift = self.total = self.outer = None

    def update(self, features):
        """Add features (N, d); no host sync."""
        x = features.detach().to(torch.float64)
        if self.shift is None:
            self.shift = x.mean(0)
            self.total = torch.zeros_like(self.shift)
            self.outer = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
        x = x - self.shift
        self.total += x.sum(0)
        self.outer += x.T @ x
        self.count += x.shape[0]

    def mean_cov(self):
        """(mu, sigma) as float64 tensors; sigma is the unbiased covariance like ``np.cov``."""
        if self.count < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {self.count}")
        centered = self.total / self.count
        sigma = (self.outer - self.count * torch.outer(centered, centered)) / (self.count - 1)
        return self.shift + centered, sigma


def spatial_stats(feature_maps):
    """Per-image mean (N, C) and unbiased covariance (N, C, C) over the pixels of (N, C, H, W) maps,
    each pixel one sample (SIFID's statistic), in float64."""
    x = feature_maps.detach().to(torch.float64).flatten(2)          # N, C, P
    pixels = x.shape[-1]
    if pixels < 2:
        raise ValueError("feature maps need at least 2 pixels for a covariance")
    mu = x.mean(-1)
    x = x - mu.unsqueeze(-1)
    return mu, x @ x.transpose(1, 2) / (pixels - 1)
