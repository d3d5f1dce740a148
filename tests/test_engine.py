"""The trainer on a tiny toy GAN (tests/toy_gan.py), built through the CLI's own path (``make_trainer``):
run directory, resume, faults, precision, gradient scaling and clipping, schedules, EMA."""
import copy
import json
import os
import subprocess
import sys
import time

import pytest
import torch
import yaml

import ganzoo
from ganzoo.cli.train import make_trainer
from ganzoo.config import ConfigError
from ganzoo.engine import checkpoint, options
from ganzoo.engine.context import StepContext
from ganzoo.engine.ema import EMA
from ganzoo.engine.optim import build_optimizers, lr_factor
from ganzoo.engine.trainer import NonFiniteLossError

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BASE = {
    "model": {"type": "tests.toy_gan:ToyGAN"},
    "data": {"type": "tests.toy_gan:ToyData", "n": 12},
    "train": {"steps": 8, "batch_size": 4},
    "eval": {},
    "run": {"log_every": 2, "sample_every": 4, "ckpt_every": 4, "keep_last": 2, "progress": False, "seed": 3},
}


def make_cfg(**sections):
    cfg = copy.deepcopy(BASE)
    for section, values in sections.items():
        cfg[section].update(values)
    return cfg


def build(cfg, run_dir, resume=None):
    """The trainer ``ganzoo-train`` makes from ``cfg`` written as a YAML file next to ``run_dir``."""
    config = f"{run_dir}.yaml"
    with open(config, "w") as f:
        yaml.safe_dump(cfg, f)
    return make_trainer(config, run_dir=str(run_dir), resume=resume)


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---- end to end -------------------------------------------------------------------------------

def test_cli_writes_every_run_file(tmp_path):
    from ganzoo.cli.train import main

    config = tmp_path / "toy.yaml"
    config.write_text(
        "model: {type: 'tests.toy_gan:ToyGAN'}\n"
        "data: {type: 'tests.toy_gan:ToyData', n: 8, num_workers: 0}\n"
        "train: {steps: 6, batch_size: 4, ema: {decay: 0.9}, schedule: {type: linear_decay, start: 2}}\n"
        "eval: {every: 3, metrics: [{type: 'tests.toy_gan:toy_metric', num_samples: 2}]}\n"
        "run: {log_every: 2, sample_every: 3, ckpt_every: 3, progress: false}\n")
    run_dir = tmp_path / "run"
    assert main([str(config), "train.steps=6", "--run-dir", str(run_dir)]) == 0
    for name in ("config.yaml", "env.json", "log.jsonl", "metrics.json", "index.html"):
        assert (run_dir / name).is_file(), name
    assert sorted(f for f in os.listdir(run_dir / "samples") if f.startswith("step_")) == \
        ["step_00000003.png", "step_00000006.png"]
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step_00000006.pt"
    env = json.loads((run_dir / "env.json").read_text())["starts"][-1]
    assert env["torch"] == torch.__version__ and env["world_size"] == 1 and env["seed"] == 0
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert set(records[0]["losses"]) == {"d_loss", "g_loss"} and records[0]["img_per_s"] > 0
    # linear decay from step 2 to 0 at step 6: the lr used by the last logged step (t=5) is 1e-3 * (1 - 3/4)
    assert records[-1]["lr"]["G"] == pytest.approx(1e-3 * 0.25)
    assert records[-1]["eta_s"] == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [m["step"] for m in metrics] == [3, 6]
    assert metrics[0]["toy_fp32"] == 1.0 and metrics[0]["toy_eval_mode"] == 1.0
    page = (run_dir / "index.html").read_text()
    assert "samples/step_00000006.png" in page and "toy_mean" in page and "linear_decay" in page
    assert "<svg" in page or "losses.png" in page
    from PIL import Image
    with Image.open(run_dir / "samples" / "step_00000006.png") as grid:  # 16 samples of 8x8 in a 4x4 grid
        assert grid.size == (4 * 10 + 2, 4 * 10 + 2)
    # a second run into the same directory without --resume is refused in one line
    assert main([str(config), "--run-dir", str(run_dir)]) == 2


def test_cli_errors_are_one_line(tmp_path, capsys):
    from ganzoo.cli.train import main

    config = tmp_path / "toy.yaml"
    config.write_text("model: {type: 'tests.toy_gan:ToyGAN'}\ndata: {type: 'tests.toy_gan:ToyData'}\n"
                      "train: {stepz: 3}\n")
    assert main([str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown key train.stepz") and "steps" in err and "\n" not in err
    assert main([str(tmp_path / "missing.yaml")]) == 2
    with pytest.raises(ConfigError, match="train.precision"):
        options.resolve(make_cfg(train={"precision": "fp8"}))
    with pytest.raises(ConfigError, match="train.schedule.milestone"):
        options.resolve(make_cfg(train={"schedule": {"type": "multistep", "milestone": [3]}}))
    assert options.split_data({"type": "x", "root": "r", "num_workers": 2}) == \
        ({"type": "x", "root": "r"}, {"num_workers": 2, "pin_memory": None})


# ---- exact resume -----------------------------------------------------------------------------

@pytest.mark.parametrize("setup", [
    {"train": {"steps": 8, "ema": {"decay": 0.8, "start": 2}, "schedule": {"type": "step", "step_size": 3}}},
    # two stages of 5 and 6 steps, stopped mid-stage 1 (step 7), per-stage multistep schedule
    {"model": {"stages": 2, "stage_steps": [5, 6], "stage_schedule": {"type": "multistep", "milestones": [2, 4]}},
     "train": {"ema": {"decay": 0.5}}},
])
def test_resume_is_bit_identical(tmp_path, setup):
    cfg = make_cfg(**setup)
    straight = build(cfg, tmp_path / "a")
    assert straight.fit()["status"] == "done"
    total = straight.step

    half = total // 2 + 1
    first = build(cfg, tmp_path / "b")
    result = first.fit(stop_after=half)
    assert result["status"] == "stopped" and result["step"] == half
    second = build(cfg, tmp_path / "b", resume=True)
    assert second.fit()["step"] == total
    assert_same(params(straight.model), params(second.model))
    assert_same(straight.ema.shadow, second.ema.shadow)
    for name in straight.optimizers:
        sa, sb = straight.optimizers[name].state_dict()["state"], second.optimizers[name].state_dict()["state"]
        for index in sa:
            assert all(torch.equal(sa[index][k], sb[index][k]) for k in sa[index])
    log = [json.loads(line) for line in open(tmp_path / "b" / "log.jsonl")]
    assert [r["step"] for r in log] == list(range(2, total + 1, 2))  # no duplicated records


def test_checkpoint_contents_load_weights_only(tmp_path):
    run_dir = tmp_path / "run"
    trainer = build(make_cfg(train={"precision": "fp16", "ema": {}}), run_dir)
    trainer.fit()
    files = checkpoint.list_checkpoints(run_dir / "checkpoints")
    assert [os.path.basename(f) for f in files] == ["step_00000004.pt", "step_00000008.pt"]  # keep_last 2
    state = torch.load(files[-1], weights_only=True)
    assert set(state) >= {"model", "optimizers", "scalers", "ema", "rng", "progress", "config"}
    assert state["progress"] == {"step": 8, "stage": 0, "stage_step": 8, "epoch": 2, "batch_in_epoch": 2}
    assert state["scalers"]["G"]["scale"] > 0  # fp16: one GradScaler per optimizer
    assert not any("module." in k or "_orig_mod" in k for k in state["model"])
    assert state["config"]["train"]["precision"] == "fp16"

    model = ganzoo.load(str(run_dir), device="cpu")  # run dir -> latest; EMA generator weights
    cfg = model.config
    assert not model.training and cfg["model"]["type"] == "tests.toy_gan:ToyGAN"
    assert torch.equal(model.G.heads[0].weight, trainer.ema.shadow["heads.0.weight"])
    assert torch.equal(model.D[1].weight, trainer.model.D[1].weight)


def test_keep_last_and_crash_during_save(tmp_path, monkeypatch):
    directory = tmp_path / "ckpt"
    for step in (1, 2, 3):
        checkpoint.save({"format": 1, "step": torch.tensor(step)}, str(directory), step, keep_last=2)
    assert [os.path.basename(p) for p in checkpoint.list_checkpoints(directory)] == \
        ["step_00000002.pt", "step_00000003.pt"]
    before = (directory / "step_00000003.pt").read_bytes()

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save({"format": 1}, str(directory), 4, keep_last=2)
    assert sorted(os.listdir(directory)) == ["latest", "step_00000002.pt", "step_00000003.pt"]
    assert (directory / "step_00000003.pt").read_bytes() == before
    assert checkpoint.load(str(directory))["step"] == 3


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path):
    cfg = make_cfg(model={"nan_at_step": 6}, run={"log_every": 0, "ckpt_every": 4})
    run_dir = tmp_path / "run"
    trainer = build(cfg, run_dir)
    with pytest.raises(NonFiniteLossError, match=r"loss 'g_loss' became non-finite \(nan\) at step 6") as err:
        trainer.fit()
    assert "step_00000004.pt" in str(err.value)
    good = run_dir / "checkpoints" / "step_00000004.pt"
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["latest", "step_00000004.pt"]
    assert checkpoint.load(str(good))["progress"]["step"] == 4


def test_sigterm_checkpoints_and_exits(tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text("model: {type: 'tests.toy_gan:ToyGAN', sleep: 0.05}\n"
                      "data: {type: 'tests.toy_gan:ToyData', n: 8}\n"
                      "train: {steps: 100000, batch_size: 4}\n"
                      "run: {log_every: 1, sample_every: 0, ckpt_every: 0, progress: false}\n")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "train.py"), str(config),
                             "--run-dir", str(run_dir)], stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    log = run_dir / "log.jsonl"
    deadline = time.time() + 60
    while not (log.exists() and log.read_text().count("\n") >= 2) and time.time() < deadline:
        time.sleep(0.2)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "SIGTERM received: stopped after step" in err
    state = checkpoint.load(str(run_dir))
    assert 2 <= state["progress"]["step"] < 100000
    # and it continues from there ("--resume KEY=VALUE" is an override, not a path)
    from ganzoo.cli.train import main
    assert main([str(config), "--run-dir", str(run_dir), "--resume", f"train.steps={state['progress']['step'] + 2}",
                 "model.sleep=0", "--allow-changes"]) == 0
    assert checkpoint.load(str(run_dir))["progress"]["step"] == state["progress"]["step"] + 2


# ---- parts ------------------------------------------------------------------------------------

def test_lr_schedules_by_hand():
    step = options.check_schedule({"type": "step", "step_size": 3, "gamma": 0.5})
    assert [lr_factor(step, t, 10) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    multi = options.check_schedule({"type": "multistep", "milestones": [2, 5]})
    assert [lr_factor(multi, t, 10) for t in (0, 1, 2, 4, 5, 9)] == pytest.approx([1, 1, .1, .1, .01, .01])
    linear = options.check_schedule({"type": "linear_decay", "start": 6})
    assert [lr_factor(linear, t, 10) for t in (0, 5, 6, 7, 9)] == [1, 1, 1, 0.75, 0.25]
    # SPADE-style: constant for 2 epochs, then linear to 0 over the remaining 2 (5 steps per epoch)
    epochs = options.check_schedule({"type": "linear_decay", "start": 2, "unit": "epoch"})
    assert [lr_factor(epochs, t, 20, steps_per_epoch=5) for t in (0, 9, 10, 14, 15, 19)] == \
        [1, 1, 1, 1, 0.5, 0.5]
    assert lr_factor(options.check_schedule(None), 123, 10) == 1


def test_optimizer_types_and_overrides():
    w = [torch.nn.Parameter(torch.zeros(2))]
    opts = build_optimizers({"G": {"params": w, "lr": 1e-3, "type": "sgd", "momentum": 0.9},
                             "D": {"params": w, "lr": 4e-4, "betas": [0.0, 0.9]}},
                            overrides={"D": {"type": "adamw", "lr": 2e-4}})
    assert isinstance(opts["G"], torch.optim.SGD) and opts["G"].param_groups[0]["momentum"] == 0.9
    assert isinstance(opts["D"], torch.optim.AdamW) and opts["D"].param_groups[0]["lr"] == 2e-4
    assert opts["D"].param_groups[0]["betas"] == (0.0, 0.9)
    with pytest.raises(ConfigError, match="train.optim.E"):
        build_optimizers({"G": {"params": w, "lr": 1.0}}, overrides={"E": {"lr": 1.0}})
    with pytest.raises(ConfigError, match="adam, adamw, sgd"):
        build_optimizers({"G": {"params": w, "lr": 1.0, "type": "lion"}})


def test_ema_matches_hand_computation():
    net = torch.nn.Linear(2, 1)
    ema = EMA(decay=0.9, start=1)
    w0 = net.weight.detach().clone()
    ema.update(net, step=0)                        # before start: a copy
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net, step=1)
    assert torch.allclose(ema.shadow["weight"], 0.9 * w0 + 0.1 * (w0 + 1))
    with ema.swapped_in(net):
        assert torch.equal(net.weight, ema.shadow["weight"])
    assert torch.equal(net.weight, w0 + 1)


def test_deterministic_switch():
    from ganzoo.engine.trainer import configure_backends

    try:
        configure_backends(True, torch.device("cpu"))
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


# ---- precision, gradient scaling and clipping -------------------------------------------------

@pytest.mark.filterwarnings("ignore:precision bf16 on the CPU")
@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                              ("fp16", torch.float16)])
def test_autocast_dtype_inside_the_step(tmp_path, precision, dtype):
    trainer = build(make_cfg(model={"record": True}, train={"steps": 2, "precision": precision}), tmp_path / "run")
    trainer.fit()
    assert [r["dtype"] for r in trainer.model.records] == [dtype, dtype]
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in trainer.model.parameters())


def _linear_problem(precision="fp32", grad_clip=None):
    """One weight w = [0, 0] with loss 3 w0 + 4 w1 (gradient [3, 4], norm 5), plain SGD with lr 1."""
    w = torch.nn.Parameter(torch.zeros(2))
    ctx = StepContext({"w": torch.optim.SGD([w], lr=1.0)}, precision=precision, grad_clip=grad_clip)
    return w, ctx, lambda: (w * torch.tensor([3.0, 4.0])).sum()


def test_fp16_grad_scaler_scales_then_unscales_and_skips_inf():
    w, ctx, loss = _linear_problem("fp16")
    scale = ctx.scalers["w"].get_scale()
    assert scale == 2.0 ** 16
    ctx.backward(loss(), "w")
    torch.testing.assert_close(w.grad, torch.tensor([3.0, 4.0]) * scale)  # the scaled loss was backpropagated
    ctx.optimizer_step("w")
    torch.testing.assert_close(w.detach(), torch.tensor([-3.0, -4.0]))  # the step used the unscaled gradient
    assert w.grad is None and ctx.scalers["w"].get_scale() == scale
    ctx.backward(loss() * float("inf"), "w")
    ctx.optimizer_step("w")
    torch.testing.assert_close(w.detach(), torch.tensor([-3.0, -4.0]))  # inf gradient: step skipped ...
    assert ctx.scalers["w"].get_scale() == scale / 2  # ... and the scale updated
    fp32 = _linear_problem("fp32")[1]
    assert not fp32.scalers["w"].is_enabled()


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("max_norm, expected", [(1.0, [0.6, 0.8]), (2.5, [1.5, 2.0]), (10.0, [3.0, 4.0])])
def test_grad_clip_bounds_the_global_norm(precision, max_norm, expected):
    w, ctx, loss = _linear_problem(precision, grad_clip=max_norm)
    ctx.backward(loss(), "w")
    ctx.optimizer_step("w")
    step = -w.detach()  # SGD with lr 1: the step is the (clipped, unscaled) gradient
    torch.testing.assert_close(step, torch.tensor(expected))
    assert step.norm().item() == pytest.approx(min(max_norm, 5.0))


# ---- schedules and EMA through the trainer ----------------------------------------------------

@pytest.mark.parametrize("setup, factors", [
    ({"train": {"schedule": {"type": "step", "step_size": 3, "gamma": 0.5}}}, [1, 1, 1, .5, .5, .5, .25, .25]),
    ({"train": {"schedule": {"type": "multistep", "milestones": [2, 5]}}}, [1, 1, .1, .1, .1, .01, .01, .01]),
    ({"train": {"schedule": {"type": "linear_decay", "start": 4}}}, [1, 1, 1, 1, 1, .75, .5, .25]),
    # per stage: each of the two stages (3 and 5 steps) restarts its own schedule
    ({"model": {"stages": 2, "stage_steps": [3, 5],
                "stage_schedule": {"type": "multistep", "milestones": [1, 3], "gamma": 0.5}}},
     [1, .5, .5] + [1, .5, .5, .25, .25]),
])
def test_lr_at_known_steps(tmp_path, setup, factors):
    cfg = make_cfg(**setup)
    cfg["model"]["record"] = True
    trainer = build(cfg, tmp_path / "run")
    trainer.fit()
    lrs = [r["lr"] for r in trainer.model.records]
    assert [lr["G"] for lr in lrs] == pytest.approx([1e-3 * f for f in factors])
    assert [lr["D"] for lr in lrs] == pytest.approx([1e-3 * f for f in factors])


def test_ema_after_k_steps_equals_the_hand_average(tmp_path):
    decay, start = 0.75, 2
    trainer = build(make_cfg(model={"record": True}, train={"steps": 5, "ema": {"decay": decay, "start": start}}),
                    tmp_path / "run")
    trainer.fit()
    weights = [r["G"] for r in trainer.model.records]  # G after each of the 5 steps
    for name in weights[0]:
        expected = weights[start - 1][name]  # a plain copy before ``start``
        for step in range(start, 5):
            expected = decay * expected + (1 - decay) * weights[step][name]
        torch.testing.assert_close(trainer.ema.shadow[name], expected)
        assert not torch.allclose(expected, weights[-1][name])  # the average is not the last weights
