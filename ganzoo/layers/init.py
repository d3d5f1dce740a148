"""Weight initialisation schemes used by the papers."""
from torch import nn

from ganzoo.layers.spectral_norm import refresh_spectral_norm


def init_weights(module, kind="xavier", gain=0.02):
    """Init conv/linear weights (``xavier``/``normal``/``kaiming``/``orthogonal``, bias 0) and norms (N(1, gain))."""
    def init(m):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            if kind == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif kind == "normal":
                nn.init.normal_(weight, 0.0, gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(weight, gain=gain)
            else:
                raise ValueError(f"unknown init {kind!r}; valid: xavier, normal, kaiming, orthogonal")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    module.apply(init)
    refresh_spectral_norm(module)
    return module



def init_dcgan_normal(module):
    """The DCGAN-style init of SinGAN and ConSinGAN's official code: conv weights N(0, 0.02) (biases keep
    PyTorch's default), batch-norm weights N(1, 0.02) and biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module
