"""ConSinGAN (Hinz et al., WACV 2021, "Improved Techniques for Training Single-Image GANs").

One generator grows a stage per resolution (``ganzoo.nets.consingan``); the ``train_depth`` newest stages train
together, the older of them at ``lr_g * lr_scale^age`` (the head at ``lr_g * lr_scale^stage`` while it is among
them, the tail always at ``lr_g``). Stage k's critic starts from stage k-1's. The pyramid has ``train_stages``
sizes: the image fitted into ``max_size`` is the finest, ``r = (min_size / short side)^(1 / (S - 1))`` and
stage i < S - 1 is the image resized by ``r^((S - 2) / ln(S - 1) * ln(S - 1 - i) + 1)`` (denser at the fine end);
``train_mode: harmonization`` uses SinGAN's even spacing ``r^(S - 1 - i)``.

Stage-0 input: noise (generation, retarget), an augmented copy of the coarsest real (harmonization) or a
patch-shuffled one plus ``noise_scaling`` noise (editing). The reconstruction input ``z_rec`` is the coarsest real
itself at stage 0 (plus the fixed noise in editing) and fixed noise above. All state (``reals.k``, ``z_rec.k``,
``noise_amp.k``, ``G.*``, ``D.*``) is in the state dict, so ``load_state_dict`` on a fresh model rebuilds it.
"""
import math

import torch
import torch.nn.functional as F

from ganzoo.config import check_keys
from ganzoo.layers.imresize import BORDERS, imresize, output_length
from ganzoo.losses import gradient_penalty
from ganzoo.models.base import GANModel, TensorList
from ganzoo.modes import eval_mode
from ganzoo.registry import DISCRIMINATORS, GENERATORS, LOSSES, MODELS

TRAIN_MODES = ("generation", "retarget", "harmonization", "editing")
G_KEYS = ("nfc", "num_layers", "kernel", "norm", "negative_slope")
D_KEYS = ("nfc", "num_layers", "kernel", "negative_slope")
CHOICES = {"train_mode": TRAIN_MODES, "g_step_mode": ("repeat", "fresh"), "resize_border": BORDERS,
           "norm": ("none", "batch")}


def stage_scales(height, width, max_size=250, min_size=25, train_stages=6, spacing="dense"):
    """Official rescaling: ``(scale1, r, [scale of stage i relative to the fitted image])``.

    ``scale1 = min(max_size / long side, 1)`` fits the image; ``r = (min_size / short side of the fitted image)
    ^ (1 / stop)`` with ``stop = train_stages - 1``; stage i < stop is ``r^((stop - 1) / ln(stop) ln(stop - i) + 1)``
    (``dense``) or ``r^(stop - i)`` (``even``, harmonization); the last stage is the fitted image (scale 1).
    """
    if train_stages < 2:
        raise ValueError(f"model.train_stages must be >= 2, got {train_stages}")
    scale1 = min(max_size / max(height, width), 1)
    fine = (output_length(height, scale1), output_length(width, scale1))
    if min(fine) < min_size:
        raise ValueError(f"image {width}x{height} fitted into model.max_size={max_size} is {fine[1]}x{fine[0]}, "
                         f"smaller than model.min_size={min_size} on its short side")
    stop = train_stages - 1
    r = (min_size / min(fine)) ** (1 / stop)
    scales = []
    for i in range(stop):
        if spacing == "even":
            exponent = stop - i
        elif stop == 1:  # the official formula is 0/0 here; its limit is 1
            exponent = 1
        else:
            exponent = (stop - 1) / math.log(stop) * math.log(stop - i) + 1
        scales.append(r ** exponent)
    return scale1, r, scales + [1.0]


def stage_sizes(height, width, **kw):
    """(H, W) of every stage for an image of that size (``imresize`` rounds up)."""
    scale1, _, scales = stage_scales(height, width, **kw)
    fine = (output_length(height, scale1), output_length(width, scale1))
    return [(output_length(fine[0], s), output_length(fine[1], s)) if s != 1 else fine for s in scales]


def shuffle_patches(image, generator=None, max_tiles=5):
    """Editing augmentation: copy 1..max_tiles random rectangles of (1, C, H, W) to shifted places (fewer, larger
    tiles moving further when there are few), as the official ``shuffle_grid``."""
    _, _, h, w = image.shape

    def randint(low, high):  # inclusive, like random.randint
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    tiles = randint(1, max_tiles)
    size = {1: (0.2, 0.5), 2: (0.15, 0.3), 3: (0.1, 0.2)}.get(tiles, (0.1, 0.15))
    shift = (0.05, 0.15) if tiles == 1 else (0.05, 0.1)
    out = image.clone()
    for _ in range(tiles):
        y, x = randint(0, h), randint(0, w)
        th = min(randint(int(h * size[0]), int(h * size[1])), h - y)
        tw = min(randint(int(w * size[0]), int(w * size[1])), w - x)
        dy, dx = randint(int(h * shift[0]), int(h * shift[1])), randint(int(w * shift[0]), int(w * shift[1]))
        if float(torch.rand((), generator=generator)) < 0.5:
            dy, dx = -min(dy, y), -min(dx, x)
        else:
            dy, dx = min(dy, h - th - y), min(dx, w - tw - x)
        out[:, :, y + dy:y + dy + th, x + dx:x + dx + tw] = image[:, :, y:y + th, x:x + tw]
    return out


def augment_colours(image, generator=None):
    """Harmonization augmentation in the spirit of the official albumentations pipeline: with p 0.25 one of
    noise, inversion / sepia, channel dropout / shuffle; then with p 0.9 1-2 rectangles of a random colour."""
    def rand():
        return float(torch.rand((), generator=generator))

    x = image.clone()
    _, c, h, w = x.shape
    if rand() < 0.25:
        kind = int(torch.randint(0, 4, (1,), generator=generator))
        if kind == 0:
            x = x + 0.1 * torch.randn(x.shape, generator=generator, device=x.device)
        elif kind == 1:
            x = -x if rand() < 0.5 or c != 3 else _sepia(x)
        elif kind == 2 and c > 1:
            if rand() < 0.5:
                x[:, int(torch.randint(0, c, (1,), generator=generator))] = -1
            else:
                x = x[:, torch.randperm(c, generator=generator)]
        else:
            x = x * (0.5 + torch.rand((1, c, 1, 1), generator=generator, device=x.device))
    if rand() < 0.9:
        holes = int(torch.randint(1, 3, (1,), generator=generator))
        limit = (15, 30) if holes == 2 else (30, 60)
        for _ in range(holes):
            th = min(h, int(torch.randint(limit[0], limit[1] + 1, (1,), generator=generator)))
            tw = min(w, int(torch.randint(limit[0], limit[1] + 1, (1,), generator=generator)))
            y = int(torch.randint(0, h - th + 1, (1,), generator=generator))
            xx = int(torch.randint(0, w - tw + 1, (1,), generator=generator))
            colour = torch.rand((1, c, 1, 1), generator=generator, device=x.device) * 2 - 1
            x[:, :, y:y + th, xx:xx + tw] = colour
    return x.clamp(-1, 1)


def _sepia(x):
    rgb = (x + 1) / 2
    m = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], device=x.device)
    return torch.einsum("oc,nchw->nohw", m, rgb).clamp(0, 1) * 2 - 1


@MODELS.register("consingan")
class ConSinGAN(GANModel):
    """ConSinGAN: one growing generator, several stages trained concurrently with lower LRs for older ones."""

    generator_name = "G"
    double_backward_networks = ("D",)  # the gradient penalty
    DEFAULTS = {
        "generator": "consingan_generator",
        "discriminator": "consingan_discriminator",
        "train_mode": "generation",  # --train_mode: generation | retarget | harmonization | editing
        "train_stages": 6,           # --train_stages
        "train_depth": 3,            # --train_depth: stages trained concurrently
        "lr_scale": 0.1,             # --lr_scale: LR factor per stage of age
        "max_size": 250,             # --max_size
        "min_size": 25,              # --min_size
        "nfc": 64,                   # --nfc
        "num_layers": 3,             # --num_layer: conv blocks per stage
        "kernel": 3,                 # --ker_size
        "norm": "none",              # none | batch (--batch_norm, the README's harmonization / editing runs)
        "negative_slope": 0.05,      # --lrelu_alpha
        "noise_amp": 0.1,            # --noise_amp: amp_k = noise_amp * RMSE(real_k, rec_k with amp_k = 0)
        "noise_scaling": 0.1,        # editing: noise added to the stage-0 image
        "alpha": 10.0,               # --alpha: reconstruction weight
        "lambda_grad": 0.1,          # --lambda_grad: per-pixel WGAN-GP weight
        "d_steps": 3,                # --Dsteps
        "g_steps": 3,                # --Gsteps
        "g_step_mode": "repeat",     # repeat: g_steps Adam steps on one gradient (official) | fresh: new each
        "steps_per_stage": 2000,     # --niter
        "lr_g": 5.0e-4,              # --lr_g
        "lr_d": 5.0e-4,              # --lr_d
        "betas": [0.5, 0.999],       # --beta1, 0.999
        "resize_quantize": True,     # uint8 round trip inside every resize (official imresize)
        "resize_border": "official",
    }

    def __init__(self, **cfg):
        super().__init__()
        cfg = check_keys(cfg, self.DEFAULTS, "model")
        for key, valid in CHOICES.items():
            if cfg[key] not in valid:
                raise ValueError(f"model.{key} must be one of {', '.join(valid)}, got {cfg[key]!r}")
        for key in ("d_steps", "g_steps", "steps_per_stage", "num_layers", "train_depth", "train_stages", "nfc"):
            if not isinstance(cfg[key], int) or cfg[key] < 1:
                raise ValueError(f"model.{key} must be a positive integer, got {cfg[key]!r}")
        if cfg["train_stages"] < 2:
            raise ValueError(f"model.train_stages must be >= 2, got {cfg['train_stages']}")
        if not 0 < cfg["lr_scale"] <= 1:
            raise ValueError(f"model.lr_scale must be in (0, 1], got {cfg['lr_scale']}")
        self.cfg = cfg
        edge = cfg["train_mode"] == "generation"
        self._part_specs = {
            "generator": GENERATORS.fill(cfg["generator"], {**{k: cfg[k] for k in G_KEYS}, "edge_upsample": edge},
                                         where="model.generator"),
            "discriminator": DISCRIMINATORS.fill(cfg["discriminator"], {k: cfg[k] for k in D_KEYS},
                                                 where="model.discriminator")}
        self.pad = cfg["num_layers"] * (cfg["kernel"] - 1) // 2
        self.edge_upsample = edge
        self.register_buffer("anchor", torch.zeros(()))  # the model's device
        self.reals = TensorList()
        self.z_rec = TensorList()
        self.noise_amp = TensorList()
        self.G = None
        self.D = None
        self.gan_loss = LOSSES.build("wgan")
        self.rec_loss = LOSSES.build({"type": "reconstruction", "kind": "mse"})

    # ----------------------------------------------------------------- pyramid

    @property
    def num_scales(self):
        return len(self.reals)

    @property
    def trained_scales(self):
        """Stages the generator has (the apps' scale range)."""
        return 0 if self.G is None else len(self.G.body)

    @property
    def injection_scales(self):
        """Where a user image can enter: only stage 0 (the stages pass features, not images)."""
        return range(0, 1)

    @property
    def channels(self):
        return self.reals[0].shape[1]

    def resize(self, x, scale=None, size=None):
        return imresize(x, scale=scale, size=size, quantize=self.cfg["resize_quantize"],
                        border=self.cfg["resize_border"])

    def _spacing(self):
        return "even" if self.cfg["train_mode"] == "harmonization" else "dense"

    def build_pyramid(self, image):
        """Stage images from a (1, C, H, W) image in [-1, 1] (coarsest first), stored in ``reals``."""
        c = self.cfg
        scale1, _, scales = stage_scales(image.shape[2], image.shape[3], c["max_size"], c["min_size"],
                                         c["train_stages"], self._spacing())
        finest = self.resize(image.to(self.anchor.device, torch.float32), scale1)
        self.reals.clear()
        for s in scales[:-1]:
            self.reals.append(self.resize(finest, s))
        self.reals.append(finest)

    def prepare(self, dataset):
        if self.num_scales == 0:
            self.build_pyramid(dataset[0]["image"].unsqueeze(0))

    def stages(self):
        if self.num_scales == 0:
            raise RuntimeError("ConSinGAN.stages() needs the pyramid: call prepare(dataset) or load a checkpoint")
        # an estimate for the ETA: one iteration runs G through stages 0..k and D at stage k, ~ their pixels
        areas = [r.shape[2] * r.shape[3] for r in self.reals]
        costs = [sum(areas[:k + 1]) + areas[k] for k in range(len(areas))]
        return [{"name": f"stage_{k}", "steps": self.cfg["steps_per_stage"], "cost": cost / costs[0]}
                for k, cost in enumerate(costs)]

    # ----------------------------------------------------------------- networks

    def _build(self, registry, part):
        return registry.build(self._part_specs[part], {"channels": self.channels}, where=f"model.{part}",
                              sources={"channels": "the training image's channels"}).to(self.anchor.device)

    def _noise_shape(self, k, size, n=1):
        if k == 0:
            return (n, self.channels) + tuple(size)
        extra = 2 * self.pad if self.edge_upsample else 0
        return (n, self.cfg["nfc"], size[0] + extra, size[1] + extra)

    def _grow(self):
        """Add the next stage: a copy of the last generator stage, its fixed noise and noise amplitude."""
        k = self.trained_scales
        if k == 0:
            self.G = self._build(GENERATORS, "generator")
            self.D = self._build(DISCRIMINATORS, "discriminator")
        else:
            self.G.grow()
        device = self.anchor.device
        size = self.reals[k].shape[2:]
        if k > 0:
            z = torch.randn(self._noise_shape(k, size), device=device)
        elif self.cfg["train_mode"] == "editing":
            z = self.reals[0] + self.cfg["noise_scaling"] * torch.randn(self._noise_shape(0, size), device=device)
        else:
            z = self.reals[0].clone()
        self.z_rec.append(z)
        self.noise_amp.append(torch.ones((), device=device) if k == 0 else torch.zeros((), device=device))
        if k > 0:
            with torch.no_grad():
                rec = self.reconstruct()  # with this stage's noise amplitude still 0
            self.noise_amp[k].fill_(self.cfg["noise_amp"] * float(torch.sqrt(F.mse_loss(rec, self.reals[k]))))

    def begin_stage(self, index):
        if index >= self.num_scales:
            raise ValueError(f"stage {index} does not exist: the pyramid has {self.num_scales} stages")
        while self.trained_scales <= index:
            self._grow()
        self._freeze()

    def _trained_blocks(self):
        return list(self.G.body)[-self.cfg["train_depth"]:]

    def _head_trains(self):
        return self.trained_scales - 1 < self.cfg["train_depth"]

    def _freeze(self):
        """Only the ``train_depth`` newest stages, the tail and (while it is among them) the head train."""
        if self.G is None:
            return
        self.G.requires_grad_(False)
        for block in self._trained_blocks():
            block.requires_grad_(True)
        self.G.tail.requires_grad_(True)
        self.G.head.requires_grad_(self._head_trains())

    def networks(self):
        return {name: net for name, net in (("G", self.G), ("D", self.D)) if net is not None}

    def param_groups(self):
        c = self.cfg
        blocks = self._trained_blocks()
        groups = [{"params": list(block.parameters()), "lr": c["lr_g"] * c["lr_scale"] ** (len(blocks) - 1 - i)}
                  for i, block in enumerate(blocks)]
        if self._head_trains():
            groups.append({"params": list(self.G.head.parameters()),
                           "lr": c["lr_g"] * c["lr_scale"] ** (self.trained_scales - 1)})
        groups.append({"params": list(self.G.tail.parameters()), "lr": c["lr_g"]})
        betas = tuple(c["betas"])
        return {"G": {"params": groups, "lr": c["lr_g"], "betas": betas},
                "D": {"params": list(self.D.parameters()), "lr": c["lr_d"], "betas": betas}}

    # ----------------------------------------------------------------- state

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Grow to what ``state_dict`` holds, then load it (works on a fresh model)."""
        def count(prefix):
            found = {int(key[len(prefix):].split(".")[0]) for key in state_dict if key.startswith(prefix)}
            return max(found) + 1 if found else 0

        device = self.anchor.device
        for i in range(len(self.reals), count("reals.")):
            self.reals.append(torch.zeros_like(state_dict[f"reals.{i}"], device=device))
        stages = count("G.body.")
        if stages and self.G is None:
            self.G = self._build(GENERATORS, "generator")
        while self.G is not None and len(self.G.body) < stages:
            self.G.grow()
        for i in range(len(self.z_rec), count("z_rec.")):
            self.z_rec.append(torch.zeros_like(state_dict[f"z_rec.{i}"], device=device))
            self.noise_amp.append(torch.zeros((), device=device))
        if self.D is None and any(key.startswith("D.") for key in state_dict):
            self.D = self._build(DISCRIMINATORS, "discriminator")
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._freeze()
        return result

    # ----------------------------------------------------------------- generation

    def noise(self, k, n, size, generator=None):
        return torch.randn(self._noise_shape(k, size, n), device=self.anchor.device, generator=generator)

    def synthesize(self, inputs, sizes=None, last=None):
        """The generator on the stage inputs ``inputs`` (a list, stage 0 first) up to stage ``last``."""
        last = self.trained_scales - 1 if last is None else last
        sizes = sizes or [tuple(r.shape[2:]) for r in self.reals]
        return self.G(inputs[:last + 1], sizes[:last + 1], list(self.noise_amp)[:last + 1])

    def reconstruct(self, last=None):
        return self.synthesize(list(self.z_rec), last=last)

    def sizes(self, scale_v=1.0, scale_h=1.0):
        """(H, W) per stage, stretched like the official arbitrary-size evaluation (``int``)."""
        return [(int(r.shape[2] * scale_v), int(r.shape[3] * scale_h)) for r in self.reals]

    @torch.no_grad()
    def sample(self, batch=None, n=None, seed=None, start_scale=0, scale_v=1.0, scale_h=1.0):
        """``n`` random images; stages below ``start_scale`` use the fixed reconstruction inputs (training size)."""
        n = n or (batch["image"].shape[0] if batch is not None else 1)
        generator = None if seed is None else torch.Generator(device=self.anchor.device).manual_seed(seed)
        sizes = self.sizes(scale_v, scale_h)
        if start_scale and (scale_v, scale_h) != (1.0, 1.0):
            raise ValueError("scales below start_scale reuse the fixed inputs, so they need the training size")
        inputs = [self.z_rec[k].expand(n, -1, -1, -1) if k < start_scale else self.noise(k, n, sizes[k], generator)
                  for k in range(self.trained_scales)]
        with eval_mode(self):
            return self.synthesize(inputs, sizes)

    @torch.no_grad()
    def inject(self, image, scale=0, generator=None):
        """Harmonization / editing: ``image`` (1, C, H, W) replaces the stage-0 reconstruction input (resized to the
        coarsest size, plus ``noise_scaling`` noise in editing mode); the other stages keep their fixed noise."""
        if scale not in self.injection_scales:
            raise ValueError(f"ConSinGAN takes an image at stage 0 only, got scale {scale}")
        x = self.resize(image.to(self.anchor.device, torch.float32), size=self.reals[0].shape[2:])
        if self.cfg["train_mode"] == "editing":
            x = x + self.cfg["noise_scaling"] * self.noise(0, 1, x.shape[2:], generator)
        with eval_mode(self):
            return self.synthesize([x] + list(self.z_rec)[1:])

    # ----------------------------------------------------------------- training

    def _stage0_input(self):
        mode, real = self.cfg["train_mode"], self.reals[0]
        if mode == "harmonization":
            return augment_colours(real)
        if mode == "editing":
            return shuffle_patches(real) + self.cfg["noise_scaling"] * self.noise(0, 1, real.shape[2:])
        return self.noise(0, 1, real.shape[2:])

    def train_step(self, batch, ctx):
        c = self.cfg
        k = self.trained_scales - 1
        D, real = self.D, self.reals[k]
        inputs = [self._stage0_input()] + [self.noise(i, 1, self.reals[i].shape[2:]) for i in range(1, k + 1)]
        D.requires_grad_(True)
        for j in range(c["d_steps"]):
            ctx.zero_grad("D")
            with ctx.autocast():
                real_score = D(real)
                if j == c["d_steps"] - 1:
                    fake = self.synthesize(inputs)  # with graph: the G step reuses it
                else:
                    with torch.no_grad():
                        fake = self.synthesize(inputs)
                d_loss = self.gan_loss.d_loss(real_score, D(fake.detach()))
                gp = gradient_penalty(D, real, fake, weight=c["lambda_grad"], per_pixel=True)
            ctx.backward(d_loss + gp, "D")
            ctx.optimizer_step("D")
        D.requires_grad_(False)
        repeat = c["g_step_mode"] == "repeat"
        for j in range(1 if repeat else c["g_steps"]):
            ctx.zero_grad("G")
            with ctx.autocast():
                if j > 0:
                    fake = self.synthesize(inputs)
                g_adv = self.gan_loss.g_loss(D(fake))
                g_rec = torch.zeros((), device=real.device)
                if c["alpha"]:
                    g_rec = c["alpha"] * self.rec_loss(self.reconstruct(), real)
            ctx.backward(g_adv + g_rec, "G")
            if repeat:
                self._repeat_steps(ctx, c["g_steps"])
            else:
                ctx.optimizer_step("G")
        D.requires_grad_(True)
        return {"d_loss": d_loss.detach(), "gp": gp.detach(), "g_adv": g_adv.detach(), "g_rec": g_rec.detach()}

    def _repeat_steps(self, ctx, steps):
        """The official loop: one backward, then ``steps`` optimizer steps on the same gradients."""
        params = [p for group in ctx.optimizers["G"].param_groups for p in group["params"] if p.grad is not None]
        grads = [p.grad.clone() for p in params]
        for i in range(steps):
            if i:
                for p, g in zip(params, grads):
                    p.grad = g.clone()
            ctx.optimizer_step("G")
