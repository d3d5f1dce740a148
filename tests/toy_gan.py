"""A tiny GAN and dataset used only by the engine tests (not shipped in ganzoo).

Config types: ``tests.toy_gan:ToyGAN``, ``tests.toy_gan:ToyData``, metric ``tests.toy_gan:toy_metric``.
With ``stages: k`` the generator grows one output head per stage (like SinGAN's pyramid), and
``load_state_dict`` grows the heads from the keys it is given. With ``record: true`` each step appends
what it saw to ``model.records``: the forward dtype under autocast, the learning rates and G's weights after
the step.
"""
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ganzoo.engine.distributed import unwrap
from ganzoo.models.base import GANModel


class ToyData(Dataset):
    def __init__(self, n=16, size=8, channels=3, flip=True):
        g = torch.Generator().manual_seed(123)
        self.images = torch.rand(n, channels, size, size, generator=g) * 2 - 1
        self.flip = flip

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i]
        if self.flip and torch.rand(()) < 0.5:  # uses the global RNG, as real augmentations do
            image = image.flip(-1)
        return {"image": image, "class": i % 2}


class ToyG(nn.Module):
    def __init__(self, z_dim, hidden, out):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2))
        self.heads = nn.ModuleList()
        self.out = out

    def grow(self):
        head = nn.Linear(self.body[0].out_features, self.out)
        if len(self.heads):
            head.load_state_dict(self.heads[-1].state_dict())
        self.heads.append(head)

    def forward(self, z):
        return torch.tanh(self.heads[-1](self.body(z)))


class ToyGAN(GANModel):
    generator_name = "G"

    def __init__(self, z_dim=8, size=8, channels=3, hidden=16, stages=1, stage_steps=None, lr=1e-3,
                 nan_at_step=None, sleep=0.0, stage_schedule=None, record=False):
        super().__init__()
        self.records = [] if record else None
        self.z_dim, self.size, self.channels, self.lr = z_dim, size, channels, lr
        self.num_stages, self.stage_steps, self.stage_schedule = stages, stage_steps, stage_schedule
        self.nan_at_step, self.sleep = nan_at_step, sleep
        out = channels * size * size
        self.G = ToyG(z_dim, hidden, out)
        self.D = nn.Sequential(nn.Flatten(), nn.Linear(out, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2),
                               nn.Linear(hidden, 1))
        self.register_buffer("fixed_z", torch.zeros(4, z_dim))

    def prepare(self, dataset):
        self.fixed_z.copy_(torch.randn(4, self.z_dim))

    def stages(self):
        out = []
        for i in range(self.num_stages):
            stage = {"name": f"scale{i}", "steps": self.stage_steps[i] if self.stage_steps else None}
            if self.stage_schedule:
                stage["schedule"] = self.stage_schedule
            out.append(stage)
        return out

    def begin_stage(self, index):
        while len(self.G.heads) < index + 1:
            self.G.grow()

    def load_state_dict(self, state, strict=True):
        heads = {k.split(".")[2] for k in state if k.startswith("G.heads.")}
        while len(self.G.heads) < len(heads):
            self.G.grow()
        return super().load_state_dict(state, strict)

    def param_groups(self):
        return {"G": {"params": list(self.G.parameters()), "lr": self.lr, "betas": (0.5, 0.999)},
                "D": {"params": list(self.D.parameters()), "lr": self.lr, "betas": (0.5, 0.999), "type": "adam"}}

    def generate(self, z):
        return self.G(z).view(-1, self.channels, self.size, self.size)

    def train_step(self, batch, ctx):
        if self.sleep:
            time.sleep(self.sleep)
        real = batch["image"]
        n = real.shape[0]
        z = torch.randn(n, self.z_dim, device=real.device)
        with ctx.autocast():
            fake = self.generate(z)
            d_loss = F.softplus(self.D(fake.detach())).mean() + F.softplus(-self.D(real)).mean()
        ctx.zero_grad("D")
        ctx.backward(d_loss, "D")
        ctx.optimizer_step("D")
        with ctx.autocast():
            g_loss = F.softplus(-self.D(self.generate(torch.randn(n, self.z_dim, device=real.device)))).mean()
        ctx.zero_grad("G")
        ctx.backward(g_loss, "G")
        ctx.optimizer_step("G")
        if self.records is not None:
            self.records.append({"dtype": fake.dtype, "stage": ctx.stage, "stage_step": ctx.stage_step,
                                 "lr": {name: opt.param_groups[0]["lr"] for name, opt in ctx.optimizers.items()},
                                 "G": {k: v.detach().clone() for k, v in unwrap(self.G).state_dict().items()}})
        g_loss = g_loss.detach()
        if self.nan_at_step is not None and ctx.step + 1 == self.nan_at_step:
            g_loss = g_loss * float("nan")
        return {"d_loss": d_loss.detach(), "g_loss": g_loss}

    @torch.no_grad()
    def sample(self, batch=None, n=None, seed=None):
        n = n or (len(batch["image"]) if batch else 4)
        device = self.fixed_z.device
        g = torch.Generator(device=device).manual_seed(seed or 0)
        return self.generate(torch.randn(n, self.z_dim, generator=g, device=device))


def toy_metric(num_samples=4):
    """A metric callable as the trainer's eval hook calls it: (model, dataset, device) -> dict."""
    def metric(model, dataset, device):
        images = model.sample(n=num_samples, seed=1)
        return {"toy_mean": images.mean().item(), "toy_fp32": float(images.dtype == torch.float32),
                "toy_eval_mode": float(not model.training and not model.G.training)}
    return metric
