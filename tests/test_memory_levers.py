"""train.accumulate and train.checkpoint_activations: the same updates as the plain run, less memory."""
import copy

import pytest
import torch

from ganzoo.cli import train as train_cli
from ganzoo.config import ConfigError
from ganzoo.engine.context import StepContext
from ganzoo.layers.checkpointing import checkpoint_activations
from ganzoo.registry import GENERATORS, MODELS


def spade(**kw):
    """A SPADE without batch statistics or power iterations: per-sample norms only, no spectral norm."""
    cfg = {"type": "spade", "label_nc": 4, "contain_dontcare_label": False, "crop_size": 64, "lambda_vgg": 0.0,
           "generator": {"type": "spade_generator", "ngf": 4, "spectral_norm": False,
                         "norm": {"type": "spade", "param_free": "instance", "hidden": 8}},
           "discriminator": {"type": "multiscale_patchgan", "ndf": 4, "n_layers": 2, "num_d": 1,
                             "spectral_norm": False}}
    cfg.update(kw)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def batch(n=4):
    g = torch.Generator().manual_seed(1)
    return {"image": torch.rand(n, 3, 64, 64, generator=g) * 2 - 1,
            "label": torch.randint(0, 4, (n, 1, 64, 64), generator=g)}


class RecordingContext(StepContext):
    """Keeps the gradients each optimizer steps with."""

    def optimizer_step(self, name):
        self.grads[name] = [p.grad.clone() for group in self.optimizers[name].param_groups
                            for p in group["params"] if p.grad is not None]
        super().optimizer_step(name)


def one_step(model, accumulate):
    model.train()
    # SGD: Adam's first step (~lr * sign(grad)) would turn float noise in a near-zero gradient into a full step
    sgd = {name: torch.optim.SGD(spec["params"], lr=spec["lr"]) for name, spec in model.param_groups().items()}
    ctx = RecordingContext(sgd, accumulate=accumulate)
    ctx.grads = {}
    torch.manual_seed(2)
    logs = model.train_step(batch(), ctx)
    return logs, ctx.grads


@pytest.mark.parametrize("step_order", ["ganzoo", "official"])
def test_accumulated_spade_step_equals_the_large_batch(step_order):
    model = spade(step_order=step_order)
    twin = copy.deepcopy(model)
    logs, grads = one_step(model, 1)
    logs2, grads2 = one_step(twin, 2)
    assert set(grads) == set(grads2) == {"G", "D"}
    for name in grads:
        scale = max(g.abs().max() for g in grads[name])
        for a, b in zip(grads[name], grads2[name]):
            assert torch.allclose(a, b, atol=1e-4 * scale, rtol=1e-4)  # float sums in another order
    assert set(logs) == set(logs2)
    for name in logs:
        assert float(logs2[name]) == pytest.approx(float(logs[name]), rel=1e-4, abs=1e-6)
    for key, value in model.state_dict().items():  # and so the weights after the step
        assert torch.allclose(value, twin.state_dict()[key], atol=1e-6), key


def test_accumulated_vae_step_sums_the_kld_over_the_batch():
    """SPADE's KLD is a sum over the batch (not a mean): each part adds its own, unweighted. It depends on the
    encoder only, so it equals the large batch's exactly although the parts draw other z."""
    enc = {"type": "spade_vae_encoder", "z_dim": 8, "ndf": 4, "input_size": 64}
    model = spade(encoder=enc, generator={"type": "spade_generator", "ngf": 4, "spectral_norm": False, "z_dim": 8,
                                          "norm": {"type": "spade", "param_free": "instance", "hidden": 8}})
    twin = copy.deepcopy(model)
    logs, _ = one_step(model, 1)
    logs2, _ = one_step(twin, 2)
    assert float(logs2["kld"]) == pytest.approx(float(logs["kld"]), rel=1e-5)
    assert {"g_gan", "g_feat", "kld", "g_loss", "d_loss"} <= set(logs2)


def test_checkpointed_spade_generator_gives_the_same_gradients_and_statistics():
    torch.manual_seed(0)
    plain = GENERATORS.build({"type": "spade_generator", "label_nc": 4, "ngf": 4, "crop_size": 32,
                              "norm": {"type": "spade", "param_free": "sync_batch", "hidden": 8}})
    checked = copy.deepcopy(plain)
    for block in checked.blocks():
        checkpoint_activations(block)
    assert list(checked.state_dict()) == list(plain.state_dict())
    seg = torch.nn.functional.one_hot(batch()["label"][:, 0], 4).permute(0, 3, 1, 2).float()
    grads = []
    for net in (plain, checked):
        net.train()
        net.zero_grad()
        net(seg).square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters()})
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5), name
    for (name, a), b in zip(plain.state_dict().items(), checked.state_dict().values()):  # BN stats, SN vectors
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


SINGAN_TINY = ["model.max_size=24", "model.min_size=16", "model.steps_per_scale=3", "model.nfc=8",
               "model.min_nfc=8", "run.log_every=1", "run.sample_every=0", "run.ckpt_every=0",
               "train.threads=1", "train.schedule.milestones=[2]"]


def test_singan_with_checkpointed_scales_trains_like_the_plain_run(tmp_path):
    """Through the CLI: the gradient penalty's double backward runs through the checkpointed critic."""
    finals = []
    for flag in ("false", "true"):
        run = tmp_path / flag
        assert train_cli.main(["configs/singan_quick.yaml", *SINGAN_TINY, f"train.checkpoint_activations={flag}",
                               "--run-dir", str(run)]) == 0
        finals.append(torch.load(run / "checkpoints" / "step_00000006.pt", weights_only=True)["model"])
    assert finals[0].keys() == finals[1].keys()
    for key in finals[0]:
        assert torch.allclose(finals[0][key].float(), finals[1][key].float(), atol=1e-5, rtol=1e-4), key


def test_levers_are_checked_before_a_run_starts(tmp_path, capsys):
    run = tmp_path / "r"
    assert train_cli.main(["configs/singan_quick.yaml", "train.accumulate=2", "--run-dir", str(run)]) == 2
    assert "train.accumulate must be an integer from 1 to train.batch_size (1)" in capsys.readouterr().err
    toy = tmp_path / "toy.yaml"
    toy.write_text("model: {type: 'tests.toy_gan:ToyGAN'}\ndata: {type: 'tests.toy_gan:ToyData', n: 8}\n"
                   "train: {steps: 2, batch_size: 4}\n")
    assert train_cli.main([str(toy), "train.accumulate=2", "--run-dir", str(run)]) == 2
    assert "ToyGAN does not accumulate gradients" in capsys.readouterr().err
    assert train_cli.main([str(toy), "train.checkpoint_activations=true", "--run-dir", str(run)]) == 2
    assert "ToyGAN does not support activation checkpointing" in capsys.readouterr().err
    assert not run.exists()
    with pytest.raises(ConfigError, match="checkpoint_activations must be true or false"):
        from ganzoo.engine.options import load_config
        load_config("configs/spade_toy.yaml", ["train.checkpoint_activations=always"])
