"""Frozen classifier pyramids: the feature extractors Semantic Pyramid conditions on.

A pyramid declares its levels (name, channels, stride; stride ``None`` for vector levels such as fc7)
and maps generator-range images ([-1, 1]) to what its checkpoint expects through an
:class:`InputTransform`. Weights are frozen and the module stays in eval mode whatever ``train()`` says.
"""
import warnings
from typing import NamedTuple, Optional

import torch
from torch import nn

from .weights import resolve

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Level(NamedTuple):
    name: str
    channels: int
    stride: Optional[int]  # None: a vector level (fc / pooled / logits)

    @property
    def spatial(self):
        return self.stride is not None


class InputTransform(nn.Module):
    """Affine per-channel map from [-1, 1] RGB to a checkpoint's input: ``y = x[:, order] * scale + shift``.

    One-channel inputs are repeated to three channels first.
    """

    def __init__(self, scale, shift, order=(0, 1, 2)):
        super().__init__()
        self.order = tuple(order)
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def imagenet(cls, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        """torchvision-style checkpoints: ((x + 1) / 2 - mean) / std, RGB."""
        return cls([0.5 / s for s in std], [(0.5 - m) / s for m, s in zip(mean, std)])

    @classmethod
    def caffe(cls, mean_bgr):
        """Caffe checkpoints: BGR, 0-255, minus the per-channel mean (given in BGR order)."""
        return cls([127.5] * 3, [127.5 - m for m in mean_bgr], order=(2, 1, 0))

    def forward(self, x):
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.order != (0, 1, 2):
            x = x[:, list(self.order)]
        return torch.addcmul(self.shift.to(x.dtype), x, self.scale.to(x.dtype))


def load_checkpoint(path):
    """A plain state dict from a checkpoint file: unwraps ``state_dict``/``model`` and strips ``module.``.

    Handles CSAIL ``.pth.tar`` files (``{'state_dict': {'module.conv1.weight': ...}}``, and the
    ``features.module.0.weight`` form of their AlexNet/VGG files). Loaded with ``weights_only=True``.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        try:  # Python-2 era pickles (CSAIL files were written with Python 2.7)
            ckpt = torch.load(path, map_location="cpu", weights_only=True, encoding="latin1")
        except Exception as err:
            raise ValueError(f"cannot load weights file {path} safely (weights_only): {str(err).splitlines()[0]}") \
                from None
    for key in ("state_dict", "model"):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
    if not isinstance(ckpt, dict):
        raise ValueError(f"weights file {path} does not hold a state dict (got {type(ckpt).__name__})")
    return {k.replace("module.", ""): v for k, v in ckpt.items()}


class FrozenPyramid(nn.Module):
    """Base class: subclasses set ``levels`` and ``transform`` and implement ``_features(x, depth)``."""

    levels = ()

    def __init__(self):
        super().__init__()
        self.transform = None

    @staticmethod
    def _make(factory, weights):
        """Build the network without its (slow, discarded) init; ``weights="random"``: a fast init from a
        fixed seed, so that a model rebuilt from a checkpoint gets the same random classifier."""
        with torch.device("meta"):
            net = factory()
        net = net.to_empty(device="cpu")
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            for m in net.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):  # uniform with He variance (uniform_ is the fast one)
                    bound = (6.0 / m.weight[0].numel()) ** 0.5
                    nn.init.uniform_(m.weight, -bound, bound)
                elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                    nn.init.ones_(m.weight)
                    m.reset_running_stats()
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
        return net

    def _load(self, net, weights, filename, source):
        """Load ``weights`` (path | None = resolve ``filename`` | "random") into ``net``; returns leftover meta."""
        if weights == "random":
            warnings.warn(f"{type(self).__name__}: backbone.weights=random - a randomly initialised classifier, "
                          "for smoke tests only; results are meaningless", stacklevel=3)
            return {}
        path = resolve(filename, weights, source=source)
        state = load_checkpoint(path)
        meta = {k[len("meta."):]: state.pop(k) for k in list(state) if k.startswith("meta.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # PyTorch < 0.4 files
        if missing or unexpected:
            raise ValueError(f"weights file {path} does not fit {type(self).__name__}: "
                             f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        return meta

    def freeze(self):
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode=True):
        return super().train(False)

    def forward(self, x, depth=None):
        """Features of every level (shallow to deep) of images ``x`` in [-1, 1].

        ``depth``: compute only the first ``depth`` levels (the rest are skipped, not returned).
        """
        depth = len(self.levels) if depth is None else depth
        return self._features(self.transform(x), depth)
