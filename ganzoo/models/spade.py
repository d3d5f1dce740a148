"""SPADE (Park et al. 2019, "Semantic Image Synthesis with Spatially-Adaptive Normalization"), optional VAE.

Losses as the official code: hinge GAN + 10 x feature matching + 10 x VGG19 perceptual (+ 0.05 x KLD with
the encoder); TTUR (G 1e-4, D 4e-4, betas (0, 0.9)); one D and one G update per iteration.

``step_order: ganzoo`` (default) makes one generator forward per iteration: the fake made for the D
update is the one the G update back-propagates through (D step first, then G step on the updated D).
``step_order: official`` runs the official trainer's sequence: G step, then a D step on a fake
regenerated (without graph) by the updated G, so G runs twice and its batch-norm statistics and
spectral-norm vectors move twice. Fake and real go through D as one batch in each step.
"""
import contextlib

import torch

from ganzoo.config import ConfigError, check_keys
from ganzoo.layers.onehot import compact_labels, instance_edges, one_hot
from ganzoo.models.base import GANModel
from ganzoo.nets.spade import reparameterize
from ganzoo.registry import DISCRIMINATORS, ENCODERS, GENERATORS, LOSSES, MODELS

def split_batch(pred):
    """D output on cat([fake, real]) -> (fake part, real part), nested lists kept."""
    if torch.is_tensor(pred):
        n = pred.shape[0] // 2
        return pred[:n], pred[n:]
    pairs = [split_batch(p) for p in pred]
    return [p[0] for p in pairs], [p[1] for p in pairs]


@MODELS.register("spade")
class SPADEModel(GANModel):
    """SPADE: label map (+ z from a VAE encoder) -> image; multiscale PatchGAN; hinge + FM + VGG (+ KLD)."""

    supports_accumulation = True
    supports_activation_checkpointing = True

    #: label facts the model and its dataset share: stated once in either section, filled into the other
    DATA_KEYS = ("label_nc", "contain_dontcare_label", "crop_size", "aspect_ratio")

    DEFAULTS = {
        "label_nc": 150,                 # classes in the label maps (ADE20K raw labels: 0 = unlabeled + 150)
        "contain_dontcare_label": True,  # one more one-hot channel (255 -> label_nc in the loaders)
        "use_instance": False,           # append the instance-edge channel
        "crop_size": 256,
        "aspect_ratio": 1.0,
        "generator": {"type": "spade_generator", "ngf": 64, "num_upsampling_layers": "normal",
                      "norm": {"type": "spade", "param_free": "sync_batch", "hidden": 128, "kernel": 3},
                      "spectral_norm": True},
        "discriminator": {"type": "multiscale_patchgan", "num_d": 2, "n_layers": 4, "ndf": 64, "max_channels": 512,
                          "norm": "instance", "spectral_norm": True},
        "encoder": None,                 # VAE: {type: spade_vae_encoder, z_dim: 256, ndf: 64}
        "gan_loss": "hinge",
        "lambda_feat": 10.0,
        "lambda_vgg": 10.0,
        "lambda_kld": 0.05,
        "vgg": {"weights": None, "normalize_input": False},  # the official loss feeds [-1, 1] to VGG19
        "fast_label_conv": True,         # label convs of G as lookups on the class index (same weights/outputs)
        "step_order": "ganzoo",          # ganzoo: D step, G step, one G forward; official: G step, D step, two
        "lr_g": 1.0e-4,
        "lr_d": 4.0e-4,
        "betas": [0.0, 0.9],
        "generator_checkpoint": None,    # NVlabs latest_net_G.pth (or a ganzoo file) loaded by prepare()
        "discriminator_checkpoint": None,
        "encoder_checkpoint": None,
    }

    def __init__(self, **cfg):
        super().__init__()
        cfg = check_keys(cfg, self.DEFAULTS, "model")
        if cfg["step_order"] not in ("ganzoo", "official"):
            raise ConfigError(f"model.step_order must be ganzoo or official, got {cfg['step_order']!r}")
        self.cfg = cfg
        self.label_nc = int(cfg["label_nc"])
        self.num_classes = self.label_nc + int(bool(cfg["contain_dontcare_label"]))
        self.use_instance = bool(cfg["use_instance"])
        self.semantic_nc = self.num_classes + int(self.use_instance)
        self.fast_label_conv = bool(cfg["fast_label_conv"])
        encoder = ENCODERS.build(cfg["encoder"], where="model.encoder")
        self.z_dim = encoder.z_dim if encoder is not None else None
        # what the parts get from the model: the label channels, the output size and the encoder's z
        classes = "model.label_nc + contain_dontcare_label"
        owned = {"label_nc": self.semantic_nc, "crop_size": cfg["crop_size"], "aspect_ratio": cfg["aspect_ratio"],
                 "z_dim": self.z_dim}
        if self.fast_label_conv:
            owned["one_hot_classes"] = self.num_classes
        self.G = GENERATORS.build(cfg["generator"], owned, where="model.generator",
                                  sources={"label_nc": f"{classes} + use_instance", "one_hot_classes": classes,
                                           "z_dim": "model.encoder.z_dim"})
        self.D = DISCRIMINATORS.build(cfg["discriminator"], {"input_nc": self.semantic_nc + 3},
                                      where="model.discriminator",
                                      sources={"input_nc": f"{classes} + use_instance + 3 image channels"})
        self.E = encoder
        self.gan_loss = LOSSES.build(cfg["gan_loss"])
        self.feature_matching = LOSSES.build("feature_matching")
        self.kld = LOSSES.build("kld")
        self._vgg = []  # built on first use (needs the VGG19 weights; never saved in checkpoints)

    @property
    def multimodal(self):
        """Whether seeds give different images for one label map (the VAE encoder's z)."""
        return self.E is not None

    # ------------------------------------------------------------------ contract

    def generator_params(self):
        params = list(self.G.parameters())
        if self.E is not None:
            params += list(self.E.parameters())
        return params

    def param_groups(self):
        betas = tuple(float(b) for b in self.cfg["betas"])  # Adam rejects a mix of int and float
        return {"G": {"params": self.generator_params(), "lr": self.cfg["lr_g"], "betas": betas},
                "D": {"params": list(self.D.parameters()), "lr": self.cfg["lr_d"], "betas": betas}}

    def prepare(self, dataset):
        for key, expected in (("num_classes", self.num_classes), ("use_instance", self.use_instance)):
            got = getattr(dataset, key, None)
            if got is not None and got != expected:
                raise ConfigError(f"dataset {key}={got} but the model expects {expected}: set the same label_nc, "
                                  f"contain_dontcare_label and use_instance/instance_dir in model and data")
        self.load_reference_checkpoints()

    def load_reference_checkpoints(self):
        """Load ``generator/discriminator/encoder_checkpoint`` (NVlabs ``*_net_G.pth`` etc. or ganzoo layout)."""
        from ganzoo.nets.spade_convert import load_into
        for key, net in (("generator_checkpoint", self.G), ("discriminator_checkpoint", self.D),
                         ("encoder_checkpoint", self.E)):
            if self.cfg[key]:
                if net is None:
                    raise ConfigError(f"model.{key} is set but the model has no encoder (model.encoder is null)")
                load_into(net, self.cfg[key])

    def vgg(self, device):
        if not self._vgg:
            self._vgg.append(LOSSES.build({"type": "vgg", **self.cfg["vgg"]}).to(device))
        return self._vgg[0]

    # ------------------------------------------------------------------ training

    def condition(self, batch, device):
        """(D's condition: one-hot labels [+ edges], G's condition: the same or its compact form)."""
        label = batch["label"].to(device, non_blocking=True)
        edges = None
        if self.use_instance:
            if "instance" not in batch:
                raise ValueError("model.use_instance is true but the batch has no 'instance' map")
            edges = instance_edges(batch["instance"].to(device, non_blocking=True))
        dense = one_hot(label, self.num_classes)
        if edges is not None:
            dense = torch.cat([dense, edges], 1)
        return dense, (compact_labels(label, edges) if self.fast_label_conv else dense)

    def discriminate(self, seg, fake, real):
        """Fake and real (each concatenated with the label map) through D in one pass."""
        return split_batch(self.D(torch.cat([torch.cat([seg, fake], 1), torch.cat([seg, real], 1)], 0)))

    def vgg_loss(self, fake, real):
        vgg = self.vgg(fake.device)
        with torch.no_grad():
            real_feats = vgg.features(real)
        fake_feats = vgg.features(fake)  # real features carry no graph: no backward through them
        return sum(w * (f.float() - r.float()).abs().mean()
                   for w, f, r in zip(vgg.layer_weights, fake_feats, real_feats))

    def activation_checkpoint_modules(self):
        return self.G.blocks()

    def train_step(self, batch, ctx):
        """One D and one G update, in the order ``model.step_order`` names (docs/spade.md)."""
        seg, g_seg = self.condition(batch, ctx.device)
        real = batch["image"].to(ctx.device, non_blocking=True)
        if ctx.accumulate > 1:
            return self._accumulated_step(ctx, seg, g_seg, real)
        if self.cfg["step_order"] == "official":  # G step, then D step on a fake from the updated G
            losses = self._generator_step(ctx, seg, real, *self._generate(ctx, g_seg, real))
            with torch.no_grad():
                fake = self._generate(ctx, g_seg, real)[0]
            d_loss = self._discriminator_step(ctx, seg, fake, real)
        else:  # D step, then G step back-propagating through the same fake
            fake, mu, logvar = self._generate(ctx, g_seg, real)
            d_loss = self._discriminator_step(ctx, seg, fake.detach(), real)
            losses = self._generator_step(ctx, seg, real, fake, mu, logvar)
        logs = {name: value.detach() for name, value in losses.items()}
        logs["g_loss"] = sum(logs.values())
        logs["d_loss"] = d_loss.detach()
        return logs

    def _accumulated_step(self, ctx, seg, g_seg, real):
        """``train.accumulate``: each update sums its losses over the parts of the batch, weighted by their
        share (the KLD, a sum over the batch, unweighted), then steps once. In the ganzoo order the G phase
        regenerates each part's fake (one more G forward per part) with the z of the D phase."""
        parts = ctx.micro_batches(seg, g_seg, real)
        totals = {}

        def add(losses, weight):
            for name, value in losses.items():
                totals[name] = totals.get(name, 0) + value.detach() * (1 if name == "kld" else weight)

        def d_phase():
            eps = []
            for weight, (s, gs, r) in parts:
                e = None if self.E is None else torch.randn(len(r), self.E.z_dim, device=r.device)
                eps.append(e)
                with torch.no_grad():
                    fake = self._generate(ctx, gs, r, eps=e)[0]
                d_loss = self._discriminator_loss(ctx, s, fake, r)
                ctx.backward(d_loss * weight, "D")
                add({"d_loss": d_loss}, weight)
            ctx.optimizer_step("D")
            return eps

        def g_phase(eps):
            for (weight, (s, gs, r)), e in zip(parts, eps):
                fake, mu, logvar = self._generate(ctx, gs, r, eps=e)
                losses = self._generator_losses(ctx, s, r, fake, mu, logvar)
                ctx.backward(sum(v * (1 if name == "kld" else weight) for name, v in losses.items()), "G",
                             inputs=self.generator_params())
                add(losses, weight)
            ctx.optimizer_step("G")

        if self.cfg["step_order"] == "official":
            g_phase([None] * len(parts))
            d_phase()
        else:
            g_phase(d_phase())
        d_loss = totals.pop("d_loss")
        return {**totals, "g_loss": sum(totals.values()), "d_loss": d_loss}

    def _generate(self, ctx, g_seg, real, eps=None):
        """(fake, mu, logvar): with the encoder, z is reparameterised from the real image's code (with the
        normal draws ``eps`` when given: a replay)."""
        with ctx.autocast():
            mu = logvar = z = None
            if self.E is not None:
                mu, logvar = self.E(real)
                z = reparameterize(mu, logvar) if eps is None else mu + eps * torch.exp(0.5 * logvar)
            return self.G(g_seg, z), mu, logvar

    def _discriminator_loss(self, ctx, seg, fake, real):
        with ctx.autocast():
            pred_fake, pred_real = self.discriminate(seg, fake, real)
            return self.gan_loss.d_loss(pred_real, pred_fake)

    def _discriminator_step(self, ctx, seg, fake, real):
        d_loss = self._discriminator_loss(ctx, seg, fake, real)
        ctx.backward(d_loss, "D")
        ctx.optimizer_step("D")
        return d_loss

    def _generator_losses(self, ctx, seg, real, fake, mu, logvar):
        # under DDP, D's gradients are neither computed nor reduced in the G step
        no_sync = self.D.no_sync() if hasattr(self.D, "no_sync") else contextlib.nullcontext()
        with ctx.autocast(), no_sync:
            pred_fake, pred_real = self.discriminate(seg, fake, real)
            losses = {"g_gan": self.gan_loss.g_loss(pred_fake)}
            if self.cfg["lambda_feat"]:
                losses["g_feat"] = self.feature_matching(pred_fake, pred_real) * self.cfg["lambda_feat"]
            if self.cfg["lambda_vgg"]:
                losses["g_vgg"] = self.vgg_loss(fake, real) * self.cfg["lambda_vgg"]
            if self.E is not None:
                losses["kld"] = self.kld(mu.float(), logvar.float()) * self.cfg["lambda_kld"]
        return losses

    def _generator_step(self, ctx, seg, real, fake, mu, logvar):
        losses = self._generator_losses(ctx, seg, real, fake, mu, logvar)
        # only G (and E) receive gradients: D's weight gradients are never computed here
        ctx.backward(sum(losses.values()), "G", inputs=self.generator_params())
        ctx.optimizer_step("G")
        return losses

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def synthesize(self, seg, z=None, style=None, seed=None):
        """Images for a condition ``seg``. VAE models: ``z`` as given, else encoded from ``style`` images
        (one per sample, or one for all) with reparameterisation, else drawn from N(0, I)."""
        if self.E is not None and z is None:
            generator = None
            if seed is not None:
                generator = torch.Generator(device=seg.device).manual_seed(int(seed))
            if style is not None:
                style = style.to(seg.device)
                mu, logvar = self.E(style)
                if mu.shape[0] == 1 and seg.shape[0] > 1:
                    mu, logvar = mu.expand(seg.shape[0], -1), logvar.expand(seg.shape[0], -1)
                z = reparameterize(mu, logvar, generator)
            else:
                z = torch.randn(seg.shape[0], self.z_dim, device=seg.device, generator=generator)
        return self.G(seg, z)

    @torch.no_grad()
    def sample(self, batch=None, n=None, seed=None):
        """Images in [-1, 1] for ``batch['label']`` (+ ``instance``); with a VAE, ``batch['style']`` images
        give the style, otherwise z ~ N(0, I) (seeded by ``seed``). Without VAE the output is deterministic."""
        if batch is None or "label" not in batch:
            raise ValueError("SPADE samples need a batch with a 'label' map")
        device = next(self.G.parameters()).device
        _, g_seg = self.condition(batch, device)
        if n is not None:
            g_seg = g_seg[:n]
        return self.synthesize(g_seg, style=batch.get("style"), seed=seed)
