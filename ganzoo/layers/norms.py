"""Normalization layers behind one factory: ``build_norm(spec, num_features, label_nc=None)``.

``spec`` is a name (``"batch"``) or a dict (``{"type": "spade", "param_free": "instance"}``).
Conditional norms (SPADE) set ``conditional = True`` and take the condition in ``forward(x, cond)``;
blocks pass the condition only to those, so one block serves every norm.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.layers.batchnorm import BatchNorm1d, BatchNorm2d
from ganzoo.layers.onehot import OneHotConv2d
from ganzoo.registry import NORMS


def _batch_norm(num_features, affine=True, dims=2):
    return BatchNorm1d(num_features, affine=affine) if dims == 1 else BatchNorm2d(num_features, affine=affine)


@NORMS.register("batch")
def batch_norm(num_features, affine=True, dims=2):
    """Batch normalization (``dims=1`` for (N, C) features), with a fast double backward (gradient penalties)."""
    return _batch_norm(num_features, affine, dims)


@NORMS.register("sync_batch")
def sync_batch_norm(num_features, affine=True, dims=2):
    """Batch norm that ``train.sync_bn`` turns into SyncBatchNorm under torchrun (``batch`` norms stay per-process)."""
    norm = _batch_norm(num_features, affine, dims)
    norm.sync_batch = True  # the tag ganzoo.engine.distributed.convert_sync_batch_norms converts
    return norm


@NORMS.register("instance")
def instance_norm(num_features, affine=False):
    """Instance normalization (no affine by default, as SPADE and pix2pixHD use it)."""
    return nn.InstanceNorm2d(num_features, affine=affine)


@NORMS.register("group")
def group_norm(num_features, groups=32, affine=True):
    """Group normalization; ``groups`` is lowered to a divisor of ``num_features`` if needed."""
    groups = min(groups, num_features)
    while num_features % groups:
        groups -= 1
    return nn.GroupNorm(groups, num_features, affine=affine)


@NORMS.register("none")
def no_norm(num_features=None, **unused):
    """Identity."""
    return nn.Identity()


@NORMS.register("layer")
class LayerNorm(nn.Module):
    """Layer norm over (C, H, W) of each sample with a per-channel affine (the MUNIT/SPADE-family form)."""

    def __init__(self, num_features, affine=True, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None

    def forward(self, x):
        x = F.layer_norm(x, x.shape[1:], eps=self.eps)
        if self.weight is None:
            return x
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape) + self.bias.view(shape)


@NORMS.register("spade")
class SPADE(nn.Module):
    """Spatially-adaptive denormalization: param-free norm, then per-pixel ``(1 + gamma)`` and ``beta``.

    gamma/beta come from a small conv net on the label map, nearest-resized to the feature size.
    With ``one_hot_classes`` the first conv also takes the compact label form of
    :func:`ganzoo.layers.onehot.compact_labels` and runs as lookups (same parameters, same outputs).
    """
    conditional = True

    def __init__(self, num_features, label_nc, param_free="batch", hidden=128, kernel=3, one_hot_classes=None):
        super().__init__()
        if param_free not in ("batch", "sync_batch", "instance"):
            raise ValueError(f"spade param_free norm must be batch, sync_batch or instance, got {param_free!r}")
        self.param_free_norm = NORMS.build({"type": param_free, "affine": False}, owned={"num_features": num_features})
        padding = kernel // 2
        if one_hot_classes:
            first = OneHotConv2d(label_nc, hidden, kernel, one_hot_classes)
        else:
            first = nn.Conv2d(label_nc, hidden, kernel, padding=padding)
        self.shared = nn.Sequential(first, nn.ReLU())
        self.gamma = nn.Conv2d(hidden, num_features, kernel, padding=padding)
        self.beta = nn.Conv2d(hidden, num_features, kernel, padding=padding)

    def forward(self, x, cond):
        normalized = self.param_free_norm(x)
        if cond.shape[-2:] != x.shape[-2:]:
            cond = F.interpolate(cond, size=x.shape[-2:], mode="nearest")
        hidden = self.shared(cond)
        return normalized * (1 + self.gamma(hidden)) + self.beta(hidden)


@NORMS.register("class_batch")
class ClassConditionalBatchNorm(nn.Module):
    """Batch norm without affine, then a per-class scale (init 1) and shift (init 0); ``cond`` = class ids (N,)."""
    conditional = True

    def __init__(self, num_features, label_nc, momentum=0.1):
        super().__init__()
        self.norm = BatchNorm2d(num_features, affine=False, momentum=momentum)
        self.embed = nn.Embedding(label_nc, 2 * num_features)
        nn.init.ones_(self.embed.weight[:, :num_features])
        nn.init.zeros_(self.embed.weight[:, num_features:])

    def forward(self, x, cond):
        scale, shift = self.embed(cond).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return torch.addcmul(shift, self.norm(x), scale)


def build_norm(spec, num_features, label_nc=None):
    """Build a norm from a name or dict; ``label_nc`` is passed to conditional norms only."""
    if spec is None:
        spec = "none"
    spec = {"type": spec} if isinstance(spec, str) else dict(spec)
    factory = NORMS.get(spec["type"])
    if getattr(factory, "conditional", False):
        if label_nc is None and "label_nc" not in spec:
            raise ValueError(f"norm {spec['type']!r} is conditional and needs label_nc")
        spec.setdefault("label_nc", label_nc)
    return NORMS.build(spec, owned={"num_features": num_features})


def is_conditional(module):
    return getattr(module, "conditional", False)
