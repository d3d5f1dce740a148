"""LPIPS distance (the ``lpips`` package, offline) and the diversity measures built on samples.

- :class:`LPIPS`: ``lpips.LPIPS`` v0.1 whose linear calibration layers come from the lpips wheel and
  whose trunk (AlexNet / VGG16 / SqueezeNet) comes from a torchvision weights file found (or fetched,
  hash-checked) by ``resolve``. ``pnet_rand=True`` (or ``weights="random"``) keeps a random trunk (tests
  only: the values mean nothing, so it warns and the metric's result carries a ``lpips_diversity_warning``).
- ``lpips_diversity``: mean LPIPS between pairs of samples made for the same input with different seeds.
- ``diversity``: SinGAN's measure (paper §4): per-pixel standard deviation over samples, averaged
  over pixels and normalised by the standard deviation of the real image.
"""
import itertools
import warnings

import torch
from torch import nn

from ..backbones.weights import NOT_COMPARABLE, resolve, warn_if_random
from ..modes import eval_mode
from ..registry import METRICS
from .images import batches_of, sample_images

#: lpips net name -> (torchvision builder, canonical torchvision weights file)
LPIPS_TRUNKS = {
    "alex": ("alexnet", "alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16", "vgg16-397923af.pth"),
    "squeeze": ("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth"),
}


class LPIPS(nn.Module):
    """LPIPS distance: ``forward(x, y)`` with images in [-1, 1] (N, 3, H, W) -> (N,) distances."""

    def __init__(self, net="alex", weights=None, pnet_rand=False):
        super().__init__()
        if net not in LPIPS_TRUNKS:
            raise ValueError(f"LPIPS net must be one of {sorted(LPIPS_TRUNKS)}, got {net!r}")
        builder, filename = LPIPS_TRUNKS[net]
        self.random_weights = warn_if_random("random" if pnet_rand else weights, "the LPIPS trunk")
        path = None if self.random_weights else resolve(filename, weights,
                                                        f"https://download.pytorch.org/models/{filename}")
        import lpips
        with warnings.catch_warnings():  # lpips passes torchvision's deprecated ``pretrained=``
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False)
        if path is not None:
            self.load_trunk(torch.load(path, map_location="cpu", weights_only=True))
        self.requires_grad_(False)
        self.eval()

    def load_trunk(self, state):
        """Copy torchvision ``features.*`` weights into lpips' slices (which keep torchvision's indices)."""
        trunk = self.model.net
        slices = [getattr(trunk, f"slice{i}") for i in range(1, trunk.N_slices + 1)]
        wanted = {}
        for part in slices:
            for key, tensor in part.state_dict().items():
                wanted[key] = (part, tensor)
        missing = [f"features.{k}" for k in wanted if f"features.{k}" not in state]
        if missing:
            raise ValueError(f"LPIPS trunk weights lack {', '.join(missing[:5])}: not a torchvision file?")
        with torch.no_grad():
            for key, (_, tensor) in wanted.items():
                tensor.copy_(state[f"features.{key}"])

    def forward(self, x, y):
        return self.model(x, y).reshape(-1)


def mean_pairwise(distance, images):
    """Mean distance over all unordered pairs of a list of (N, C, H, W) batches (pairs within each index)."""
    values = [distance(a, b) for a, b in itertools.combinations(images, 2)]
    return torch.stack(values).mean()


@METRICS.register("lpips_diversity")
class LPIPSDiversity:
    """Mean pairwise LPIPS between ``samples_per_input`` samples of each of ``num_inputs`` inputs."""

    def __init__(self, num_inputs=50, samples_per_input=2, net="alex", weights=None, pnet_rand=False,
                 batch_size=10, seed=0):
        if samples_per_input < 2:
            raise ValueError("lpips_diversity needs samples_per_input >= 2")
        self.num_inputs, self.samples_per_input = num_inputs, samples_per_input
        self.net, self.weights, self.pnet_rand = net, weights, pnet_rand
        self.batch_size, self.seed = batch_size, seed
        self._lpips = None

    def __call__(self, model, dataset, device):
        if self._lpips is None:
            self._lpips = LPIPS(self.net, self.weights, self.pnet_rand)
        lpips_net = self._lpips.to(device)
        total, count = 0.0, 0
        with eval_mode(model), torch.no_grad():
            for i, batch in enumerate(batches_of(dataset, self.batch_size, self.num_inputs)):
                seeds = [self.seed + 1000003 * k + i for k in range(self.samples_per_input)]
                samples = [sample_images(model, batch, device, s) for s in seeds]
                value = mean_pairwise(lpips_net, samples)
                total, count = total + value * len(batch["image"]), count + len(batch["image"])
        result = {"lpips_diversity": float(total / count)}
        return {**result, "lpips_diversity_warning": NOT_COMPARABLE} if lpips_net.random_weights else result


def singan_diversity(samples, real):
    """SinGAN's diversity: mean over pixels of the std over ``samples`` (K, C, H, W), divided by the std of
    ``real`` (C, H, W) over all its values. Population std (ddof 0) for both."""
    samples = samples.detach().to(torch.float64)
    real = real.detach().to(torch.float64)
    return float(samples.std(dim=0, correction=0).mean() / real.std(correction=0))


@METRICS.register("diversity")
class Diversity:
    """SinGAN's diversity of ``num_samples`` samples of the dataset's first input (paper: 100 samples)."""

    def __init__(self, num_samples=100, batch_size=10, seed=0):
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed

    def __call__(self, model, dataset, device):
        item = dataset[0]
        batch = {k: (v.unsqueeze(0) if torch.is_tensor(v) else [v]) for k, v in item.items()}
        repeated = {k: (v.expand(self.batch_size, *v.shape[1:]) if torch.is_tensor(v) else v * self.batch_size)
                    for k, v in batch.items()}
        samples = []
        with eval_mode(model):
            for i in range(0, self.num_samples, self.batch_size):
                samples.append(sample_images(model, repeated, device, self.seed + i))
        samples = torch.cat(samples)[:self.num_samples]
        return {"diversity": singan_diversity(samples, item["image"])}
