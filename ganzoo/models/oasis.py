"""OASIS (Schönfeld et al., ICLR 2021, "You Only Need Adversarial Supervision for Semantic Image Synthesis").

A SPADE generator fed 3D noise (``z_dim`` 64, one vector per sample broadcast over the label map and
concatenated to it) against a U-Net discriminator that labels every pixel with one of the N classes (real)
or the extra "fake" class: class-balanced N+1 cross-entropy, LabelMix consistency (lambda 10), no VGG and
no feature matching (``lambda_vgg`` adds the official optional VGG term). Adam G 1e-4 / D 4e-4, betas
(0, 0.999); the official init (xavier normal, gain 0.02). Samples come from the EMA generator
(``train.ema``: decay 0.9999, its batch-norm statistics recomputed on 51 training batches before every
sample, eval and checkpoint, as the official ``update_EMA``).

``step_order: ganzoo`` (default, as SPADE's) makes one generator forward per iteration: D step on the
detached fake, then G step through the same fake on the updated D. ``step_order: official`` runs the
official loop: G step, then a D step on a fake regenerated (without graph) by the updated G.
"""
import contextlib

import torch

from ganzoo.config import ConfigError, check_keys
from ganzoo.layers.init import init_weights
from ganzoo.layers.onehot import one_hot
from ganzoo.losses.segmentation_gan import labelmix
from ganzoo.models.base import GANModel
from ganzoo.registry import DISCRIMINATORS, GENERATORS, LOSSES, MODELS


@MODELS.register("oasis")
class OASISModel(GANModel):
    """OASIS: label map + 3D noise -> image; per-pixel (N+1)-class U-Net discriminator; LabelMix."""

    #: label facts the model and its dataset share: stated once in either section, filled into the other
    DATA_KEYS = ("label_nc", "contain_dontcare_label", "crop_size", "aspect_ratio")

    DEFAULTS = {
        "label_nc": 150,                 # ADE20K raw labels: 0 = unlabeled + 150 classes
        "contain_dontcare_label": True,  # one more one-hot channel (255 -> label_nc in the loaders)
        "crop_size": 256,
        "aspect_ratio": 1.0,
        "dontcare_class": 0,             # label whose pixels weigh 0 in the balanced loss (official: 0); null: none
        "class_balance": True,           # inverse class-frequency weights on the real-class terms
        "generator": {"type": "oasis_generator", "ngf": 64, "z_dim": 64, "num_blocks": 6,
                      "norm": {"type": "spade", "param_free": "sync_batch", "hidden": 128, "kernel": 3},
                      "spectral_norm": True},
        "discriminator": {"type": "oasis_unet", "num_blocks": 6, "width_scale": 1.0, "spectral_norm": True},
        "lambda_labelmix": 10.0,         # 0 = no LabelMix
        "lambda_vgg": 0.0,               # official --add_vgg_loss uses 10
        "vgg": {"weights": None, "normalize_input": False},
        "init_gain": 0.02,               # xavier-normal gain of the official init; null = PyTorch's default init
        "step_order": "ganzoo",          # ganzoo: D step, G step, one G forward; official: G step, D step, two
        "lr_g": 1.0e-4,
        "lr_d": 4.0e-4,
        "betas": [0.0, 0.999],
        "generator_checkpoint": None,    # official *_G.pth / *_EMA.pth (or a ganzoo state) loaded by prepare()
        "discriminator_checkpoint": None,  # official *_D.pth
    }

    def __init__(self, **cfg):
        super().__init__()
        cfg = check_keys(cfg, self.DEFAULTS, "model")
        if cfg["step_order"] not in ("ganzoo", "official"):
            raise ConfigError(f"model.step_order must be ganzoo or official, got {cfg['step_order']!r}")
        self.cfg = cfg
        self.label_nc = int(cfg["label_nc"])
        self.num_classes = self.label_nc + int(bool(cfg["contain_dontcare_label"]))
        dontcare = cfg["dontcare_class"]
        if dontcare is not None and not 0 <= int(dontcare) < self.num_classes:
            raise ConfigError(f"model.dontcare_class must be null or 0..{self.num_classes - 1}, got {dontcare!r}")
        self.use_instance = False  # the official OASIS uses no instance maps
        classes = "model.label_nc + contain_dontcare_label"
        self.G = GENERATORS.build(cfg["generator"], {"label_nc": self.num_classes, "crop_size": cfg["crop_size"],
                                                     "aspect_ratio": cfg["aspect_ratio"]},
                                  where="model.generator", sources={"label_nc": classes})
        self.D = DISCRIMINATORS.build(cfg["discriminator"], {"label_nc": self.num_classes},
                                      where="model.discriminator", sources={"label_nc": classes})
        self.E = None  # no style encoder: the tools' ``--style`` is for SPADE's VAE
        self.z_dim = self.G.z_dim
        if cfg["init_gain"] is not None:
            init_weights(self.G, "xavier", float(cfg["init_gain"]))
            init_weights(self.D, "xavier", float(cfg["init_gain"]))
        self.seg_loss = LOSSES.build({"type": "segmentation_gan", "balance": bool(cfg["class_balance"]),
                                      "dontcare": None if dontcare is None else int(dontcare)})
        self._vgg = []  # built on first use (needs the VGG19 weights; never saved in checkpoints)

    @property
    def multimodal(self):
        """Whether seeds give different images for one label map (the 3D noise)."""
        return self.z_dim > 0

    # ------------------------------------------------------------------ contract

    def param_groups(self):
        betas = tuple(float(b) for b in self.cfg["betas"])  # Adam rejects a mix of int and float
        return {"G": {"params": list(self.G.parameters()), "lr": self.cfg["lr_g"], "betas": betas},
                "D": {"params": list(self.D.parameters()), "lr": self.cfg["lr_d"], "betas": betas}}

    def prepare(self, dataset):
        got = getattr(dataset, "num_classes", None)
        if got is not None and got != self.num_classes:
            raise ConfigError(f"dataset num_classes={got} but the model expects {self.num_classes}: set the same "
                              "label_nc and contain_dontcare_label in model and data")
        if getattr(dataset, "use_instance", False):
            raise ConfigError("OASIS uses no instance maps: set data.instance_dir to null")
        self.load_reference_checkpoints()

    def load_reference_checkpoints(self):
        """``generator_checkpoint`` / ``discriminator_checkpoint``: official OASIS files or ganzoo states."""
        from ganzoo.nets.oasis_convert import load_into
        for key, net in (("generator_checkpoint", self.G), ("discriminator_checkpoint", self.D)):
            if self.cfg[key]:
                load_into(net, self.cfg[key])

    def vgg(self, device):
        if not self._vgg:
            self._vgg.append(LOSSES.build({"type": "vgg", **self.cfg["vgg"]}).to(device))
        return self._vgg[0]

    # ------------------------------------------------------------------ training

    def condition(self, batch, device):
        return one_hot(batch["label"].to(device, non_blocking=True), self.num_classes)

    def norm_stats_forward(self, batch):
        self.G(self.condition(batch, next(self.G.parameters()).device))

    def train_step(self, batch, ctx):
        """One D and one G update, in the order ``model.step_order`` names."""
        seg = self.condition(batch, ctx.device)
        real = batch["image"].to(ctx.device, non_blocking=True)
        if self.cfg["step_order"] == "official":
            with ctx.autocast():
                fake = self.G(seg)
            losses = self._generator_step(ctx, seg, real, fake)
            with torch.no_grad(), ctx.autocast():
                fake = self.G(seg)
            d_losses = self._discriminator_step(ctx, seg, fake, real)
        else:
            with ctx.autocast():
                fake = self.G(seg)
            d_losses = self._discriminator_step(ctx, seg, fake.detach(), real)
            losses = self._generator_step(ctx, seg, real, fake)
        logs = {name: value.detach() for name, value in losses.items()}
        logs["g_loss"] = sum(logs.values())
        logs.update({name: value.detach() for name, value in d_losses.items()})
        logs["d_loss"] = sum(d_losses.values()).detach()
        return logs

    def discriminator_losses(self, seg, fake, real):
        """{d_fake, d_real[, d_labelmix]}: fake, real (and their LabelMix) through D in one pass."""
        images = [fake, real]
        if self.cfg["lambda_labelmix"]:
            mixed, mask = labelmix(seg, fake, real)
            images.append(mixed)
        preds = self.D(torch.cat(images, 0)).chunk(len(images), 0)
        losses = {"d_fake": self.seg_loss.term(preds[0], seg, False), "d_real": self.seg_loss.term(preds[1], seg, True)}
        if self.cfg["lambda_labelmix"]:
            losses["d_labelmix"] = self.cfg["lambda_labelmix"] * self.seg_loss.labelmix_loss(
                mask, preds[2], preds[0], preds[1])
        return losses

    def _discriminator_step(self, ctx, seg, fake, real):
        with ctx.autocast():
            losses = self.discriminator_losses(seg, fake, real)
        ctx.backward(sum(losses.values()), "D")
        ctx.optimizer_step("D")
        return losses

    def vgg_loss(self, fake, real):
        vgg = self.vgg(fake.device)
        with torch.no_grad():
            real_feats = vgg.features(real)
        return sum(w * (f.float() - r.float()).abs().mean()
                   for w, f, r in zip(vgg.layer_weights, vgg.features(fake), real_feats))

    def _generator_step(self, ctx, seg, real, fake):
        # under DDP, D's gradients are neither computed nor reduced in the G step
        no_sync = self.D.no_sync() if hasattr(self.D, "no_sync") else contextlib.nullcontext()
        with ctx.autocast(), no_sync:
            losses = {"g_adv": self.seg_loss.g_loss(self.D(fake), seg)}
            if self.cfg["lambda_vgg"]:
                losses["g_vgg"] = self.cfg["lambda_vgg"] * self.vgg_loss(fake, real)
        ctx.backward(sum(losses.values()), "G", inputs=list(self.G.parameters()))
        ctx.optimizer_step("G")
        return losses

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def synthesize(self, seg, z=None, style=None, seed=None):
        """Images for one-hot label maps ``seg``: ``z`` as given ((N, z_dim), or (N, z_dim, H, W) for noise
        that varies over the map), else drawn from N(0, I) with ``seed``. Another seed, another image."""
        if style is not None:
            raise ValueError("OASIS has no style encoder: its outputs vary with the noise seed, not a style image")
        if z is None and self.z_dim:
            generator = None if seed is None else torch.Generator(device=seg.device).manual_seed(int(seed))
            z = torch.randn(seg.shape[0], self.z_dim, device=seg.device, generator=generator)
        return self.G(seg, z)

    @torch.no_grad()
    def sample(self, batch=None, n=None, seed=None):
        """Images in [-1, 1] for ``batch['label']``, the noise drawn with ``seed``."""
        if batch is None or "label" not in batch:
            raise ValueError("OASIS samples need a batch with a 'label' map")
        if batch.get("style") is not None:
            raise ValueError("OASIS has no style encoder: its outputs vary with the noise seed, not a style image")
        seg = self.condition(batch, next(self.G.parameters()).device)
        if n is not None:
            seg = seg[:n]
        return self.synthesize(seg, seed=seed)
