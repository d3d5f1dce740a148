"""SinGAN (Shaham et al., ICCV 2019): a pyramid of patch GANs trained coarse to fine on one image.

One training stage per pyramid scale (``stages()``); ``begin_stage(k)`` adds scale k (its generator
starts from scale k-1's weights when the widths match, like the official code) and freezes the
coarser ones. All pyramid state is in the state dict: ``reals.{k}`` (the real pyramid), ``z_rec.{k}``
(fixed reconstruction noise, padded), ``noise_amp.{k}``, ``r`` (the recomputed scale factor),
``generators.{k}.*`` and ``D.*`` (the current critic). ``load_state_dict`` on a fresh model rebuilds
the scales from those keys, so apps need no pickles.

Scale 0 is the coarsest (the paper's n = N). Generation at scale k: ``x_k = G_k(amp_k z_k + up(x_{k-1}),
up(x_{k-1}))`` with ``up`` = :func:`ganzoo.layers.imresize.imresize` by 1/r, cropped to the scale's size;
inputs are zero-padded by ``pad = num_layers * (kernel - 1) / 2`` (valid convolutions).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.config import check_keys
from ganzoo.layers.imresize import BORDERS, imresize, output_length
from ganzoo.losses import gradient_penalty
from ganzoo.models.base import GANModel, TensorList
from ganzoo.modes import eval_mode
from ganzoo.nets.singan import singan_width
from ganzoo.registry import DISCRIMINATORS, GENERATORS, LOSSES, MODELS

# keys of the model that its per-scale nets take as they are (the nets derive each scale's width from them)
NET_KEYS = ("nfc", "min_nfc", "width_every", "max_nfc", "num_layers", "kernel", "norm")
CHOICES = {"pyramid_rounding": ("ceil", "int"), "g_step_mode": ("fresh", "stale"),
           "rec_noise_coarsest": ("resample", "fixed"), "resize_border": BORDERS}


def pyramid_plan(height, width, max_size=250, min_size=25, scale_factor=0.75, rounding="ceil"):
    """Official pyramid formulas: returns ``(num_scales, r, scale1, (H, W) of the finest scale)``.

    ``num_scales = ceil(log(min_size / min(H, W)) / log(r0)) + 1``,
    ``stop = num_scales - ceil(log(min(max_size, max(H, W)) / max(H, W)) / log(r0))``,
    finest image = input resized by ``scale1 = min(max_size / max(H, W), 1)``,
    ``r = (min_size / min(finest)) ** (1 / stop)``; scales ``0..stop``.
    """
    if min(height, width) < min_size:
        raise ValueError(f"image {width}x{height} is smaller than model.min_size={min_size} on its short side")
    if not 0 < scale_factor < 1:
        raise ValueError(f"model.scale_factor must be in (0, 1), got {scale_factor}")
    to_int = math.ceil if rounding == "ceil" else int
    num_scales = to_int(math.log(min_size / min(height, width), scale_factor)) + 1
    scale2stop = to_int(math.log(min(max_size, max(height, width)) / max(height, width), scale_factor))
    stop = num_scales - scale2stop
    scale1 = min(max_size / max(height, width), 1)
    fine = (output_length(height, scale1), output_length(width, scale1)) if scale1 != 1 else (height, width)
    if stop < 1 or min(fine) < min_size:
        raise ValueError(f"image {width}x{height} fitted into model.max_size={max_size} is {fine[1]}x{fine[0]}, "
                         f"too small for model.min_size={min_size}")
    r = (min_size / min(fine)) ** (1 / stop)
    return stop + 1, r, scale1, fine


@MODELS.register("singan")
class SinGAN(GANModel):
    """SinGAN: one patch GAN per scale of a single image, trained coarse to fine."""

    generator_name = "generators"
    supports_activation_checkpointing = True
    double_backward_networks = ("D",)  # the gradient penalty
    DEFAULTS = {
        "generator": "singan_generator",
        "discriminator": "singan_discriminator",
        "max_size": 250,            # --max_size: long side of the finest scale
        "min_size": 25,             # --min_size: short side of the coarsest scale
        "scale_factor": 0.75,       # --scale_factor: initial r, recomputed per image
        "pyramid_rounding": "ceil",  # ceil (train) | int (the official SR script's adjust_scales2image_SR)
        "nfc": 32,                  # --nfc
        "min_nfc": 32,              # --min_nfc
        "width_every": 4,           # channels double every this many scales ...
        "max_nfc": 128,             # ... up to this
        "num_layers": 5,            # --num_layer
        "kernel": 3,                # --ker_size
        "norm": "batch",
        "noise_amp": 0.1,           # --noise_amp: amp_k = noise_amp * RMSE(real_k, up(rec_{k-1}))
        "alpha": 10.0,              # --alpha: reconstruction weight
        "lambda_grad": 0.1,         # --lambda_grad: per-pixel WGAN-GP weight
        "d_steps": 3,               # --Dsteps
        "g_steps": 3,               # --Gsteps
        "steps_per_scale": 2000,    # --niter
        "lr_g": 5.0e-4,             # --lr_g
        "lr_d": 5.0e-4,             # --lr_d
        "betas": [0.5, 0.999],      # --beta1, 0.999
        "g_step_mode": "fresh",     # fresh: new fake per G step | stale: torch<=1.4 official semantics
        "rec_noise_coarsest": "resample",  # resample (official: new z* each iteration at scale 0) | fixed (paper)
        "noise_padding": False,     # noise drawn at the padded size (official animation training)
        "resize_quantize": True,    # uint8 round trip inside every resize (official)
        "resize_border": "official",  # official | symmetric
    }

    def __init__(self, **cfg):
        super().__init__()
        cfg = check_keys(cfg, self.DEFAULTS, "model")
        for key, valid in CHOICES.items():
            if cfg[key] not in valid:
                raise ValueError(f"model.{key} must be one of {', '.join(valid)}, got {cfg[key]!r}")
        for key in ("d_steps", "g_steps", "steps_per_scale", "num_layers"):
            if not isinstance(cfg[key], int) or cfg[key] < 1:
                raise ValueError(f"model.{key} must be a positive integer, got {cfg[key]!r}")
        self.cfg = cfg
        # the model's net keys, filled into both parts now (a conflicting part key fails here, not at scale k)
        owned = {key: cfg[key] for key in NET_KEYS}
        self._part_specs = {"generator": GENERATORS.fill(cfg["generator"], owned, where="model.generator"),
                           "discriminator": DISCRIMINATORS.fill(cfg["discriminator"], owned,
                                                                where="model.discriminator")}
        self.pad = cfg["num_layers"] * (cfg["kernel"] - 1) // 2
        self.register_buffer("r", torch.zeros((), dtype=torch.float64))
        self.reals = TensorList()
        self.z_rec = TensorList()
        self.noise_amp = TensorList()
        self.generators = nn.ModuleList()
        self.D = None
        self.gan_loss = LOSSES.build("wgan")
        self.rec_loss = LOSSES.build({"type": "reconstruction", "kind": "mse"})
        self._r = None
        self._rec_prev = None

    # ----------------------------------------------------------------- pyramid

    @property
    def num_scales(self):
        return len(self.reals)

    @property
    def channels(self):
        return self.reals[0].shape[1]

    def activation_checkpoint_modules(self):
        """The training scale's generator and critic (at the finest scales their activations are the memory
        peak; the frozen coarser scales run without a graph)."""
        return [self.generators[-1], self.D]

    @property
    def trained_scales(self):
        """Scales with a generator (the apps' scale range)."""
        return len(self.generators)

    @property
    def injection_scales(self):
        """Where a user image can enter the pyramid (harmonization, editing, paint2image): 1..N."""
        return range(1, self.trained_scales)

    def sizes(self, scale_v=1.0, scale_h=1.0):
        """(H, W) per scale, optionally stretched (round like the official arbitrary-size mode)."""
        return [(round(scale_v * real.shape[2]), round(scale_h * real.shape[3])) for real in self.reals]

    def resize(self, x, scale=None, size=None):
        return imresize(x, scale=scale, size=size, quantize=self.cfg["resize_quantize"],
                        border=self.cfg["resize_border"])

    def build_pyramid(self, image):
        """Real pyramid from a (1, C, H, W) image in [-1, 1] (coarsest first), stored in ``reals``."""
        c = self.cfg
        num_scales, r, scale1, _ = pyramid_plan(image.shape[2], image.shape[3], c["max_size"], c["min_size"],
                                                c["scale_factor"], c["pyramid_rounding"])
        finest = self.resize(image.to(self.r.device, torch.float32), scale1)
        self.reals.clear()
        stop = num_scales - 1
        for i in range(num_scales):
            self.reals.append(self.resize(finest, r ** (stop - i)))
        self.r.fill_(r)
        self._r = r

    def prepare(self, dataset):
        if self.num_scales == 0:
            self.build_pyramid(dataset[0]["image"].unsqueeze(0))

    def stages(self):
        if self.num_scales == 0:
            raise RuntimeError("SinGAN.stages() needs the pyramid: call prepare(dataset) or load a checkpoint first")
        costs = [self._iteration_cost(i) for i in range(self.num_scales)]
        return [{"name": f"scale_{i}", "steps": self.cfg["steps_per_scale"], "cost": cost / costs[0]}
                for i, cost in enumerate(costs)]

    def _iteration_cost(self, index):
        """One iteration's arithmetic at scale ``index``, up to a constant: every conv of its 3 + 3 steps runs on
        the padded map, so padded pixels x net width squared (measured ratios: docs/singan.md)."""
        _, _, h, w = self._padded_shape(index)
        return h * w * self._widths(index)[0] ** 2

    # ----------------------------------------------------------------- networks

    def _build(self, registry, part, index):
        """Scale ``index``'s generator or critic; the image's channels and the scale index are the model's."""
        return registry.build(self._part_specs[part], {"channels": self.channels, "scale": index},
                              where=f"model.{part}", sources={"channels": "the training image's channels",
                                                              "scale": "the pyramid scale"}).to(self.r.device)

    def _widths(self, index):
        c = self.cfg
        return tuple(singan_width(index, c[key], c["width_every"], c["max_nfc"]) for key in ("nfc", "min_nfc"))

    def _padded_shape(self, index, n=1):
        h, w = self.reals[index].shape[2:]
        return (n, self.channels, h + 2 * self.pad, w + 2 * self.pad)

    def _grow(self):
        """Add the next scale: G (and D) from the previous scale when widths match, z*, noise amplitude."""
        k = len(self.generators)
        G = self._build(GENERATORS, "generator", k)
        same_width = k > 0 and self._widths(k) == self._widths(k - 1)
        if same_width:
            G.load_state_dict(self.generators[k - 1].state_dict())
        if not (same_width and self.D is not None):
            self.D = self._build(DISCRIMINATORS, "discriminator", k)
        self.generators.append(G)
        self._freeze()  # scale k-1 must run in eval mode for the noise amplitude below
        device = self.r.device
        if k == 0 and self.cfg["rec_noise_coarsest"] == "fixed":
            z = self.noise(0, 1)
        else:  # official: zeros for k > 0; at k == 0 redrawn every iteration
            z = torch.zeros(self._padded_shape(k), device=device)
        self.z_rec.append(z)
        if k == 0:
            amp = torch.ones((), device=device)
        else:
            up = self._reconstruction_prev(k)
            amp = self.cfg["noise_amp"] * torch.sqrt(F.mse_loss(self.reals[k], up))
        self.noise_amp.append(amp.detach().reshape(()))

    def begin_stage(self, index):
        if index >= self.num_scales:
            raise ValueError(f"stage {index} does not exist: the pyramid has {self.num_scales} scales")
        while len(self.generators) <= index:
            self._grow()
        self._rec_prev = None
        self._freeze()

    def _freeze(self):
        """Coarser generators are frozen in eval mode (BN running statistics), as in the official code."""
        last = len(self.generators) - 1
        for i, G in enumerate(self.generators):
            G.requires_grad_(i == last)
            if i != last:
                G.eval()

    def train(self, mode=True):
        super().train(mode)
        self._freeze()
        return self

    def networks(self):
        nets = {}  # dotted attribute paths, so the trainer can wrap them in place (DDP / compile)
        if len(self.generators):
            nets[f"generators.{len(self.generators) - 1}"] = self.generators[-1]
        if self.D is not None:
            nets["D"] = self.D
        return nets

    def param_groups(self):
        c = self.cfg
        extra = {"betas": tuple(c["betas"])}
        return {"G": {"params": list(self.generators[-1].parameters()), "lr": c["lr_g"], **extra},
                "D": {"params": list(self.D.parameters()), "lr": c["lr_d"], **extra}}

    # ----------------------------------------------------------------- state

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Grow the pyramid to what ``state_dict`` holds, then load it (works on a fresh model)."""
        def indices(prefix):
            found = {int(key[len(prefix):].split(".")[0]) for key in state_dict if key.startswith(prefix)}
            return sorted(found)

        for i in indices("reals."):
            if i >= len(self.reals):
                self.reals.append(torch.zeros_like(state_dict[f"reals.{i}"], device=self.r.device))
        for i in indices("generators."):
            if i >= len(self.generators):
                self.generators.append(self._build(GENERATORS, "generator", i))
                self.z_rec.append(torch.zeros_like(state_dict[f"z_rec.{i}"], device=self.r.device))
                self.noise_amp.append(torch.zeros((), device=self.r.device))
        if self.D is None and any(key.startswith("D.") for key in state_dict):
            self.D = self._build(DISCRIMINATORS, "discriminator", len(self.generators) - 1)
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._r = float(self.r)
        self._rec_prev = None
        self._freeze()
        return result

    # ----------------------------------------------------------------- generation

    def noise(self, index, n, size=None, generator=None):
        """Padded noise for scale ``index``: 1 channel expanded at scale 0 (official), else C channels."""
        h, w = size or self.reals[index].shape[2:]
        p = self.pad
        shape_hw = (h + 2 * p, w + 2 * p) if self.cfg["noise_padding"] else (h, w)
        channels = 1 if index == 0 else self.channels
        z = torch.randn((n, channels) + shape_hw, device=self.r.device, generator=generator)
        z = z.expand(n, self.channels, *shape_hw)
        return z if self.cfg["noise_padding"] else F.pad(z, (p, p, p, p))

    def upsample(self, x, size):
        """Previous scale's output to ``size``: resize by 1/r, crop; bilinear stretch if it came out smaller."""
        x = self.resize(x, 1 / self._r)[:, :, :size[0], :size[1]]
        if tuple(x.shape[2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return x

    def forward_scale(self, index, z, prev):
        """One generator step: ``G(amp * z + pad(prev), prev)`` (z already padded)."""
        p = self.pad
        return self.generators[index](self.noise_amp[index] * z + F.pad(prev, (p, p, p, p)), prev)

    def synthesize(self, n=1, first=0, last=None, start_scale=0, sizes=None, init=None, generator=None,
                   noise_fn=None):
        """Run scales ``first..last`` on ``n`` samples; returns the output of scale ``last``.

        Scales below ``start_scale`` use the reconstruction noise z* (fixed coarse layout); ``init``
        is the image fed to scale ``first`` (default zeros: generation from scratch); ``sizes`` overrides
        the (H, W) of each scale; ``noise_fn(index, n, size)`` replaces random noise (animation).
        """
        last = len(self.generators) - 1 if last is None else last
        sizes = sizes or self.sizes()
        x = init
        if x is None:
            x = torch.zeros((n, self.channels) + tuple(sizes[first]), device=self.r.device)
        for k in range(first, last + 1):
            if k > first:
                x = self.upsample(x, sizes[k])
            if k < start_scale:
                if tuple(sizes[k]) != tuple(self.reals[k].shape[2:]):
                    raise ValueError("scales below start_scale reuse z*, so they need the training size")
                z = self.z_rec[k].expand(x.shape[0], -1, -1, -1)
            elif noise_fn is not None:
                z = noise_fn(k, x.shape[0], sizes[k])
            else:
                z = self.noise(k, x.shape[0], sizes[k], generator)
            x = self.forward_scale(k, z, x)
        return x

    @torch.no_grad()
    def inject(self, image, scale, generator=None):
        """``image`` (1, C, H, W) at the finest size enters at scale ``scale``: resized to scale ``scale - 1``, upsampled,
        then scales ``scale..N`` generate with random noise."""
        finest = self.num_scales - 1
        below = self.reals[scale - 1].shape[2:]
        x = self.resize(image, self._r ** (finest - scale + 1))[:, :, :below[0], :below[1]]
        x = self.upsample(x, self.reals[scale].shape[2:])
        with eval_mode(self):
            return self.synthesize(1, first=scale, init=x, generator=generator)

    def _reconstruction_prev(self, index):
        """up(rec_{index-1}): the reconstruction through coarser scales with z*, at scale ``index``'s size."""
        if index == 0:
            return torch.zeros_like(self.reals[0])
        with torch.no_grad():
            rec = self.synthesize(1, last=index - 1, start_scale=index)
            return self.upsample(rec, self.reals[index].shape[2:])

    @torch.no_grad()
    def sample(self, batch=None, n=None, seed=None, start_scale=0, scale_v=1.0, scale_h=1.0):
        """``n`` random images from the trained scales (in eval mode, no side effects on BN statistics)."""
        n = n or (batch["image"].shape[0] if batch is not None else 1)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.r.device).manual_seed(seed)
        with eval_mode(self):
            return self.synthesize(n, start_scale=start_scale, sizes=self.sizes(scale_v, scale_h), generator=generator)

    # ----------------------------------------------------------------- training

    def train_step(self, batch, ctx):
        c = self.cfg
        k = len(self.generators) - 1
        G, D = self.generators[k], self.D
        real = self.reals[k]
        if self._rec_prev is None:
            self._rec_prev = self._reconstruction_prev(k)
        rec_prev = self._rec_prev
        if k == 0 and c["rec_noise_coarsest"] == "resample":
            self.z_rec[0].copy_(self.noise(0, 1))
        noise = self.noise(k, 1)
        with torch.no_grad():  # the D steps' random `prev`s, batched through the frozen scales
            if k == 0:
                prevs = torch.zeros((c["d_steps"],) + tuple(real.shape[1:]), device=real.device)
            else:
                prevs = self.upsample(self.synthesize(c["d_steps"], last=k - 1), real.shape[2:])
        stale = c["g_step_mode"] == "stale"
        aliases = None
        D.requires_grad_(True)
        for j in range(c["d_steps"]):
            prev = prevs[j:j + 1]
            ctx.zero_grad("D")
            with ctx.autocast():
                real_score = D(real)
                if stale and j == c["d_steps"] - 1:
                    # torch<=1.4 semantics: G steps back-propagate through this graph while the weights
                    # change in place; `.data` aliases share storage without autograd version checks.
                    aliases = {name: p.data.requires_grad_(True) for name, p in G.named_parameters()}
                    p = self.pad
                    fake = torch.func.functional_call(
                        G, aliases, (self.noise_amp[k] * noise + F.pad(prev, (p, p, p, p)), prev))
                elif j == c["d_steps"] - 1:
                    fake = self.forward_scale(k, noise, prev)  # with graph: G step 0 reuses it (same weights)
                else:
                    with torch.no_grad():
                        fake = self.forward_scale(k, noise, prev)
                d_loss = self.gan_loss.d_loss(real_score, D(fake.detach()))
                gp = gradient_penalty(D, real, fake, weight=c["lambda_grad"], per_pixel=True)
            ctx.backward(d_loss + gp, "D")
            ctx.optimizer_step("D")
        D.requires_grad_(False)  # the G steps need no critic gradients
        for j in range(c["g_steps"]):
            ctx.zero_grad("G")
            with ctx.autocast():
                if not stale and j > 0:
                    fake = self.forward_scale(k, noise, prev)
                g_adv = self.gan_loss.g_loss(D(fake))
                g_rec = torch.zeros((), device=real.device)
                if c["alpha"]:
                    g_rec = c["alpha"] * self.rec_loss(self.forward_scale(k, self.z_rec[k], rec_prev), real)
            ctx.backward(g_adv + g_rec, "G", retain_graph=stale)
            if stale:
                for (name, param) in G.named_parameters():
                    alias = aliases[name]
                    if alias.grad is not None:
                        param.grad = alias.grad if param.grad is None else param.grad + alias.grad
                        alias.grad = None
            ctx.optimizer_step("G")
        D.requires_grad_(True)
        return {"d_loss": d_loss.detach(), "gp": gp.detach(), "g_adv": g_adv.detach(), "g_rec": g_rec.detach()}
