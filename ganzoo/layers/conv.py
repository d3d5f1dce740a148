"""Convolution / linear builders with optional spectral norm, activations, and a conv block."""
from torch import nn

from ganzoo.layers.norms import build_norm, is_conditional
from ganzoo.layers.spectral_norm import spectral_norm as apply_spectral_norm


def _maybe_spectral(module, spectral_norm):
    return apply_spectral_norm(module) if spectral_norm else module


def conv2d(cin, cout, kernel, stride=1, padding=None, bias=True, spectral_norm=False, padding_mode="zeros"):
    """``nn.Conv2d`` with ``padding`` defaulting to ``kernel // 2`` and optional spectral norm."""
    padding = kernel // 2 if padding is None else padding
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias, padding_mode=padding_mode)
    return _maybe_spectral(conv, spectral_norm)


def linear(fin, fout, bias=True, spectral_norm=False):
    return _maybe_spectral(nn.Linear(fin, fout, bias=bias), spectral_norm)


def build_activation(spec):
    """``"lrelu"`` (slope 0.2), ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"none"``, or ``{"type": "lrelu", "negative_slope": s}``."""
    spec = {"type": spec} if isinstance(spec, str) or spec is None else dict(spec)
    kind = spec.pop("type") or "none"
    if kind == "lrelu":
        return nn.LeakyReLU(spec.get("negative_slope", 0.2))
    if kind == "relu":
        return nn.ReLU()
    if kind == "tanh":
        return nn.Tanh()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}; valid: lrelu, relu, tanh, sigmoid, none")


class ConvBlock(nn.Module):
    """Conv + norm + activation, in ``conv_norm_act`` (post-activation) or ``norm_act_conv`` (pre-activation) order.

    The conv bias is dropped when a norm follows it (``bias=None``), since the norm's shift subsumes it.
    """

    def __init__(self, cin, cout, kernel=3, stride=1, padding=None, padding_mode="zeros", norm="none",
                 activation="lrelu", spectral_norm=False, bias=None, order="conv_norm_act", label_nc=None):
        super().__init__()
        if order not in ("conv_norm_act", "norm_act_conv"):
            raise ValueError(f"ConvBlock order must be conv_norm_act or norm_act_conv, got {order!r}")
        self.order = order
        post = order == "conv_norm_act"
        norm_type = norm if isinstance(norm, str) or norm is None else norm.get("type")
        if bias is None:
            bias = not (post and norm_type not in (None, "none"))
        self.conv = conv2d(cin, cout, kernel, stride, padding, bias, spectral_norm, padding_mode)
        self.norm = build_norm(norm, cout if post else cin, label_nc=label_nc)
        self.activation = build_activation(activation)

    def _norm(self, x, cond):
        return self.norm(x, cond) if is_conditional(self.norm) else self.norm(x)

    def forward(self, x, cond=None):
        if self.order == "conv_norm_act":
            return self.activation(self._norm(self.conv(x), cond))
        return self.conv(self.activation(self._norm(x, cond)))
