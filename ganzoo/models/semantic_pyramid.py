"""Semantic Pyramid (Shocher et al., CVPR 2020): a GAN conditioned on a frozen classifier's features.

Each training sample conditions the generator on one pyramid level of its reference image (deeper
levels off, shallower off or, with probability ``p_spatial``, on only inside/outside a random region).
Losses: adversarial (lsgan | hinge | wgan, + gradient penalty), masked L1 between classifier features
of fake and real after 2x2 max-pooling, and mode seeking between two samples of the same features/masks.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.config import check_keys
from ganzoo.losses import gradient_penalty
from ganzoo.models.base import GANModel
from ganzoo.registry import BACKBONES, DISCRIMINATORS, GENERATORS, LOSSES, MODELS

MASK_DEFAULTS = {
    "level_weights": None,           # sampling weight per used level (None: uniform)
    "fixed_level": None,             # train one level only (name)
    "p_spatial": 0.3,                # probability of a region mask on the shallower levels
    "shapes": ["rect", "blob"],      # region shapes to draw from
    "region": "both",                # shallower levels on: inside | outside | both (random)
    "train1_prob": None,             # seed's two procedures: p(only the selected level); overrides p_spatial
}


def region_masks(n, sizes, shapes=("rect", "blob"), region="both", device="cpu"):
    """Random regions, one per sample, evaluated at every (h, w) in ``sizes``: list of (n, 1, h, w) {0, 1}.

    Rectangles have sides of 25-75 % of the image; blobs are unions of three ellipses (radii 10-35 %).
    The same region (in relative coordinates) is drawn at every size. ``region='outside'`` inverts it.
    """
    rect = torch.rand(n, 4, device=device)
    rect_center, rect_half = rect[:, :2], (0.25 + 0.5 * rect[:, 2:]) / 2
    blob = torch.rand(n, 3, 4, device=device)
    blob_center, blob_radius = blob[..., :2], 0.10 + 0.25 * blob[..., 2:]
    kinds = torch.tensor([["rect", "blob"].index(s) for s in shapes], device=device)
    use_blob = kinds[torch.randint(len(shapes), (n,), device=device)].bool().view(n, 1, 1)
    invert = {"inside": torch.zeros(n, 1, 1, dtype=torch.bool, device=device),
              "outside": torch.ones(n, 1, 1, dtype=torch.bool, device=device)}.get(region)
    if invert is None:
        invert = torch.rand(n, 1, 1, device=device) < 0.5
    out = []
    for h, w in sizes:
        ys = (torch.arange(h, device=device) + 0.5) / h
        xs = (torch.arange(w, device=device) + 0.5) / w
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1)  # h, w, 2
        in_rect = ((grid - rect_center.view(n, 1, 1, 2)).abs() <= rect_half.view(n, 1, 1, 2)).all(-1)
        d = (grid.view(1, 1, h, w, 2) - blob_center.view(n, 3, 1, 1, 2)) / blob_radius.view(n, 3, 1, 1, 2)
        in_blob = (d.pow(2).sum(-1) <= 1).any(1)
        inside = torch.where(use_blob, in_blob, in_rect)
        out.append((inside ^ invert).unsqueeze(1).float())
    return out


def masked_l1(fake, real, mask, pool=True):
    """Mean |fake - real| over channels and the positions where ``mask`` is on (0 when it is nowhere on)."""
    if fake.dim() == 2:
        mask = mask.view(-1, 1)
    elif pool and min(fake.shape[-2:]) >= 2:
        fake, real, mask = F.max_pool2d(fake, 2), F.max_pool2d(real, 2), F.max_pool2d(mask, 2)
    diff = ((fake - real).abs() * mask).sum()
    return diff / (mask.sum() * fake.shape[1]).clamp_min(1e-8)


@MODELS.register("semantic_pyramid")
class SemanticPyramid(GANModel):
    """Semantic Pyramid GAN: classifier-feature-conditioned generator, masks per sample, three losses."""

    DEFAULTS = {
        "image_size": 256,
        "num_classes": 365,              # 0: unconditional G and D
        "channel_factor": 1.0,           # width divisor for G and D
        "backbone": {"type": "vgg16_places365", "weights": None},
        "generator": {"type": "semantic_pyramid"},
        "discriminator": {"type": "sagan_projection"},
        "levels": None,                  # level names to condition on (None: all of the backbone's)
        "gan_loss": "lsgan",             # lsgan | hinge | wgan | non_saturating
        "gradient_penalty": 0.0,         # weight (10 with wgan)
        "d_steps": 1,                    # D updates per G update (each on its own batch)
        "reconstruction": 0.1,           # weight of the masked feature L1
        "level_weights": None,           # per-level reconstruction weights (None: 1 each)
        "pool_features": True,           # 2x2 max-pool features and masks before the L1
        "diversity": 0.1,                # weight of the mode-seeking loss (0: off)
        "masks": MASK_DEFAULTS,
        "lr_g": 1e-4, "lr_d": 1e-4, "betas": [0.0, 0.999],
        "sample_level": None,            # level for sample(); None: cycle through the levels
    }

    def __init__(self, **cfg):
        super().__init__()
        cfg = check_keys(cfg, self.DEFAULTS, "model")
        cfg["masks"] = check_keys(cfg["masks"], MASK_DEFAULTS, "model.masks")
        self.cfg = cfg
        backbone = BACKBONES.build(cfg["backbone"], where="model.backbone")
        self.level_specs = [tuple(level) for level in backbone.levels]
        names = [name for name, _, _ in self.level_specs]
        used = cfg["levels"] or names
        bad = [name for name in used if name not in names]
        if bad:
            raise ValueError(f"model.levels {bad} not among the {cfg['backbone']['type']} levels {names}")
        self.used = [names.index(name) for name in used]
        self.depth = max(self.used) + 1  # deeper classifier levels are never computed
        n_cls = cfg["num_classes"]
        self.backbone = backbone
        common = {"image_size": cfg["image_size"], "channel_factor": cfg["channel_factor"], "num_classes": n_cls}
        self.G = GENERATORS.build(cfg["generator"], {"levels": self.level_specs, "use_levels": used, **common},
                                  where="model.generator",
                                  sources={"levels": "the levels of model.backbone", "use_levels": "model.levels"})
        self.D = DISCRIMINATORS.build(cfg["discriminator"], common, where="model.discriminator")
        self.z_dim = self.G.z_dim  # the trainer may wrap G (DDP, compile): keep what we read from it here
        self.gan_loss = LOSSES.build(cfg["gan_loss"])
        self.diversity_loss = LOSSES.build("mode_seeking")
        weights = cfg["level_weights"] or [1.0] * len(names)
        if len(weights) != len(names):
            raise ValueError(f"model.level_weights needs {len(names)} values ({names}), got {len(weights)}")
        self.register_buffer("rec_weights", torch.tensor(weights, dtype=torch.float32), persistent=False)
        self._init_mask_sampler(cfg["masks"], names)
        self.d_has_batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.D.modules())
        # The frozen classifier is rebuilt from its config, never stored in checkpoints.
        self._register_state_dict_hook(_drop_backbone_keys)
        self.register_load_state_dict_post_hook(_ignore_missing_backbone_keys)

    # ---- masks -------------------------------------------------------------------------------------------
    def _init_mask_sampler(self, mcfg, names):
        probs = torch.zeros(len(names))
        level_weights = mcfg["level_weights"] or [1.0] * len(self.used)
        if len(level_weights) != len(self.used):
            raise ValueError(f"model.masks.level_weights needs one weight per used level {self._used_names()}")
        probs[self.used] = torch.tensor(level_weights, dtype=torch.float32)
        if mcfg["fixed_level"] is not None:
            if mcfg["fixed_level"] not in self._used_names():
                raise ValueError(f"model.masks.fixed_level {mcfg['fixed_level']!r} not among {self._used_names()}")
            probs = torch.zeros(len(names))
            probs[names.index(mcfg["fixed_level"])] = 1.0
        self.register_buffer("level_probs", probs / probs.sum(), persistent=False)
        self.p_spatial = mcfg["p_spatial"] if mcfg["train1_prob"] is None else 1.0 - mcfg["train1_prob"]
        self.shapes = list(mcfg["shapes"])
        bad = [s for s in self.shapes if s not in ("rect", "blob")]
        if bad or not self.shapes or mcfg["region"] not in ("inside", "outside", "both"):
            raise ValueError("model.masks.shapes must be a non-empty subset of [rect, blob] and region one of "
                             "inside, outside, both")
        self.region = "outside" if mcfg["train1_prob"] is not None else mcfg["region"]
        if mcfg["train1_prob"] is not None:
            self.shapes = ["rect"]

    def _used_names(self):
        return [self.level_specs[i][0] for i in self.used]

    def level_index(self, level):
        names = [name for name, _, _ in self.level_specs]
        if isinstance(level, int):
            return level
        if level not in names:
            raise ValueError(f"unknown level {level!r}; valid: {', '.join(names)}")
        return names.index(level)

    def sample_masks(self, features, selected=None, spatial=None):
        """Per-sample training masks for ``features`` (one entry per level, as the backbone returns them).

        ``selected`` (N,) level indices (default: drawn from the level weights); ``spatial`` (N,) bool
        (default: drawn with ``p_spatial``, never for vector levels or the shallowest used level).
        Returns one mask per level: (N, 1, h, w) for maps, (N,) for vectors.
        """
        n, device = features[0].shape[0], features[0].device
        if selected is None:
            selected = torch.multinomial(self.level_probs.to(device), n, replacement=True)
        is_map = torch.tensor([f.dim() == 4 for f in features], device=device)
        if spatial is None:
            spatial = torch.rand(n, device=device) < self.p_spatial
        spatial = spatial & is_map[selected] & (selected > min(self.used))
        sizes = [tuple(f.shape[-2:]) for f in features if f.dim() == 4]
        regions = iter(region_masks(n, sizes, self.shapes, self.region, device) if sizes else [])
        masks = []
        for level, feature in enumerate(features):
            on = selected == level
            if feature.dim() == 2:
                masks.append(on.float())
                continue
            shallower_region = spatial & (selected > level)
            region = next(regions)
            masks.append(torch.where(on.view(n, 1, 1, 1), torch.ones_like(region),
                                     region * shallower_region.view(n, 1, 1, 1).float()))
        return masks

    def level_masks(self, features, level):
        """Masks with only ``level`` on everywhere (generation from one level)."""
        n, index = features[0].shape[0], self.level_index(level)
        if index not in self.used:
            raise ValueError(f"level {level!r} is not one this model was trained on: {', '.join(self._used_names())}")
        selected = torch.full((n,), index, dtype=torch.long, device=features[0].device)
        return self.sample_masks(features, selected, torch.zeros(n, dtype=torch.bool, device=features[0].device))

    # ---- networks ----------------------------------------------------------------------------------------
    @property
    def double_backward_networks(self):
        return ("D",) if self.cfg["gradient_penalty"] else ()

    def param_groups(self):
        betas = tuple(self.cfg["betas"])
        return {"G": {"params": list(self.G.parameters()), "lr": self.cfg["lr_g"], "betas": betas},
                "D": {"params": list(self.D.parameters()), "lr": self.cfg["lr_d"], "betas": betas}}

    @torch.no_grad()
    def features(self, images):
        """Classifier features of images in [-1, 1], levels up to the deepest used one (shallow first)."""
        return self.backbone(images, self.depth)

    @torch.no_grad()
    def generate(self, features, masks, z=None, class_ids=None):
        """Images from ``features``/``masks`` (as :meth:`features` / :meth:`sample_masks` make them)."""
        n = features[0].shape[0]
        if z is None:
            z = torch.randn(n, self.z_dim, device=next(self.G.parameters()).device)
        return self.G(z, features, masks, class_ids)

    def _class_ids(self, batch):
        if not self.cfg["num_classes"]:
            return None
        if "class" not in batch:
            raise ValueError("model.num_classes > 0 needs a 'class' entry in each batch (a labelled dataset); "
                             "set model.num_classes: 0 for unlabelled images")
        return batch["class"].to(batch["image"].device)

    # ---- training ----------------------------------------------------------------------------------------
    def _discriminate(self, real, fake, real_cls, fake_cls):
        if self.d_has_batch_norm:  # keep real and fake batch statistics apart
            return self.D(real, real_cls), self.D(fake, fake_cls)
        both = self.D(torch.cat([real, fake]), None if real_cls is None else torch.cat([real_cls, fake_cls]))
        return both.split([real.shape[0], fake.shape[0]])

    def train_step(self, batch, ctx):
        real = batch["image"].to(ctx.device, non_blocking=True)
        class_ids = self._class_ids({**batch, "image": real})
        n = real.shape[0]
        with ctx.autocast():
            feats = [f.float() for f in self.backbone(real, self.depth)]
        masks = self.sample_masks(feats)
        g_turn = (ctx.step + 1) % self.cfg["d_steps"] == 0
        logs = {}

        # One generator pass serves both updates when G is updated this step (D sees it detached).
        # With diversity, the first ceil(N/2) references each get two latents (same features and masks).
        pairs = g_turn and self.cfg["diversity"] > 0
        index = torch.arange(math.ceil(n / 2), device=ctx.device).repeat(2) if pairs else None
        pick = (lambda t: t if t is None or index is None else t[index])
        g_feats, g_masks, g_cls = [pick(f) for f in feats], [pick(m) for m in masks], pick(class_ids)
        z = torch.randn(len(g_feats[0]), self.z_dim, device=ctx.device)
        with torch.set_grad_enabled(g_turn), ctx.autocast():
            fake = self.G(z, g_feats, g_masks, g_cls)

        # Discriminator.
        with ctx.autocast():
            real_pred, fake_pred = self._discriminate(real, fake.detach(), class_ids, g_cls)
            d_loss = self.gan_loss.d_loss(real_pred.float(), fake_pred.float())
        if self.cfg["gradient_penalty"]:
            gp = gradient_penalty(lambda x: self.D(x, class_ids).float(), real, fake[:n].detach(),
                                  self.cfg["gradient_penalty"])
            d_loss = d_loss + gp
            logs["gp"] = gp.detach()
        ctx.backward(d_loss, "D")
        ctx.optimizer_step("D")
        logs["d_loss"] = d_loss.detach()
        if not g_turn:
            return logs

        # Generator (D frozen: no weight gradients for it).
        self.D.requires_grad_(False)
        try:
            with ctx.autocast():
                adv = self.gan_loss.g_loss(self.D(fake, g_cls).float())
                fake_feats = self.backbone(fake, self.depth)
                rec = sum(self.rec_weights[i] * masked_l1(fake_feats[i].float(), g_feats[i], g_masks[i].float(),
                                                           self.cfg["pool_features"]) for i in self.used)
                g_loss = adv + self.cfg["reconstruction"] * rec
                if pairs:
                    half = len(z) // 2
                    div = self.diversity_loss(fake[:half].float(), fake[half:].float(), z[:half], z[half:])
                    g_loss = g_loss + self.cfg["diversity"] * div
                    logs["diversity"] = div.detach()
            ctx.backward(g_loss, "G")
            ctx.optimizer_step("G")
        finally:
            self.D.requires_grad_(True)
        logs.update(g_adv=adv.detach(), reconstruction=rec.detach(), g_loss=g_loss.detach())
        return logs

    @torch.no_grad()
    def sample(self, batch=None, n=None, seed=None):
        """Samples conditioned on ``batch['image']``: one level per image (``sample_level``, else cycling)."""
        if batch is None:
            raise ValueError("semantic_pyramid samples from reference images: pass a batch")
        device = next(self.G.parameters()).device
        images = batch["image"].to(device)
        feats = self.backbone(images, self.depth)
        if self.cfg["sample_level"] is not None:
            selected = torch.full((len(images),), self.level_index(self.cfg["sample_level"]), device=device)
        else:
            used = torch.tensor(self.used, device=device)
            selected = used[torch.arange(len(images), device=device) % len(used)]
        masks = self.sample_masks(feats, selected, torch.zeros(len(images), dtype=torch.bool, device=device))
        generator = torch.Generator(device).manual_seed(seed) if seed is not None else None
        z = torch.randn(len(images), self.z_dim, device=device, generator=generator)
        return self.G(z, feats, masks, self._class_ids({**batch, "image": images}))


def _drop_backbone_keys(module, state_dict, prefix, local_metadata):
    for key in [k for k in state_dict if k.startswith(prefix + "backbone.")]:
        del state_dict[key]


def _ignore_missing_backbone_keys(module, incompatible):
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith("backbone.")]
