"""CPU smoke tests of tools/benchmark.py and tools/compare.py on a tiny test-only GAN."""
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from ganzoo.cli import benchmark
from ganzoo.models.base import GANModel
from tools import compare

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ToyGAN(GANModel):
    """Label-conditioned 1-conv G and D; ``num_stages`` > 1 makes it multi-stage (a new G per stage)."""

    def __init__(self, label_nc=3, num_stages=1, stage_steps=4):
        super().__init__()
        self.label_nc, self.num_stages, self.stage_steps = label_nc, num_stages, stage_steps
        self.G = nn.Conv2d(label_nc + 1, 3, 3, padding=1)
        self.D = nn.Conv2d(3, 1, 3, padding=1)
        self.seen = []

    def stages(self):
        if self.num_stages == 1:
            return super().stages()
        return [{"name": f"scale{i}", "steps": self.stage_steps} for i in range(self.num_stages)]

    def begin_stage(self, index):
        if index > 0:
            self.G = nn.Conv2d(self.label_nc + 1, 3, 3, padding=1)

    def param_groups(self):
        return {"g": {"params": list(self.G.parameters()), "lr": 1e-3, "betas": [0.5, 0.999]},
                "d": {"params": list(self.D.parameters()), "lr": 1e-3, "betas": (0.5, 0.999)}}

    def _fake(self, label):
        onehot = nn.functional.one_hot(label[:, 0], self.label_nc).permute(0, 3, 1, 2).float()
        z = torch.randn_like(onehot[:, :1])
        return torch.tanh(self.G(torch.cat([onehot, z], 1)))

    def train_step(self, batch, ctx):
        image, label = batch["image"], batch["label"]
        self.seen.append((tuple(image.shape), image.min().item(), image.max().item(), int(label.max())))
        with ctx.autocast():
            fake = self._fake(label)
            d_loss = nn.functional.relu(1 - self.D(image)).mean() + nn.functional.relu(1 + self.D(fake.detach())).mean()
        ctx.backward(d_loss, "d")
        ctx.optimizer_step("d")
        with ctx.autocast():
            g_loss = -self.D(self._fake(label)).mean()
        ctx.backward(g_loss, "g")
        ctx.optimizer_step("g")
        ctx.zero_grad("d")
        return {"d": d_loss.detach(), "g": g_loss.detach()}

    @torch.no_grad()
    def sample(self, batch=None, n=None, seed=None):
        return self._fake(batch["label"])


def write_config(tmp_path, **model):
    import yaml
    path = tmp_path / "toy.yaml"
    model = {"type": f"{__name__}:ToyGAN", "label_nc": 3, **model}
    path.write_text(yaml.safe_dump({"model": model, "data": {"crop_size": 16}, "train": {"batch_size": 2}}))
    return str(path)


def test_benchmark_single_stage(tmp_path, capsys):
    torch.set_num_threads(1)
    config = write_config(tmp_path)
    out, prof = tmp_path / "r.json", tmp_path / "prof.txt"
    rc = benchmark.main([config, "--steps", "2", "--warmup", "1", "--repeat", "3", "--batch", "3",
                         "--json", str(out), "--profile", str(prof), "--profile-steps", "1", "--channels-last"])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["batch"] == 3 and result["size"] == [16, 16] and result["precision"] == "fp32"
    assert result["device_type"] == "cpu" and result["threads"] == 1 and result["torch"] == torch.__version__
    assert len(result["repeats_s"]) == 3 and result["img_per_s"] > 0
    # img/s is batch / median seconds per step (repeats_s are rounded to 0.1 ms, so compare with a tolerance)
    assert result["seconds_per_it"] == pytest.approx(sorted(result["repeats_s"])[1] / 2, abs=1e-4)
    assert result["img_per_s"] == pytest.approx(3 / result["seconds_per_it"], rel=1e-3)
    assert result["sample"]["img_per_s"] > 0 and result["peak_gb"] > 0 and result["peak_kind"] == "cpu_ru_maxrss"
    assert result["params"] == {"G": 4 * 3 * 9 + 3, "D": 3 * 9 + 1}
    assert "convolution" in prof.read_text()
    assert "JSON " in capsys.readouterr().out


def test_synthetic_batches_match_the_dataset_format():
    spec = benchmark.input_spec({"data": {"crop_size": 8, "label_nc": 5, "contain_dontcare_label": True},
                                 "model": {"generator": {"num_classes": 7}}})
    assert spec == {"channels": 3, "height": 8, "width": 8, "label_nc": 6, "num_classes": 7}
    batch = benchmark.first_batch(benchmark.SyntheticDataset(spec, length=2), 3)
    assert batch["image"].shape == (3, 3, 8, 8) and batch["image"].min() >= -1 and batch["image"].max() <= 1
    assert batch["label"].dtype == torch.long and batch["label"].shape == (3, 1, 8, 8) and batch["label"].max() < 6
    assert batch["class"].shape == (3,) and batch["class"].max() < 7
    assert torch.equal(batch["image"][0], batch["image"][2])  # cycles through the dataset


def test_benchmark_multi_stage_and_errors(tmp_path, capsys):
    torch.set_num_threads(1)
    config = write_config(tmp_path, num_stages=3, stage_steps=2)
    out = tmp_path / "r.json"
    assert benchmark.main([config, "--full", "--stages", "0,2", "--sample-repeat", "0", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [s["stage"] for s in result["stages"]] == [0, 2] and "sample" not in result
    assert result["train_seconds"] > 0 and all(s["schedule_steps"] == 2 for s in result["stages"])
    assert benchmark.main([config, "--stages", "5"]) == 2
    assert benchmark.main([config, "model.label_ncc=3"]) == 2
    err = capsys.readouterr().err
    assert "error: --stages 5 out of range" in err and "label_ncc" in err and "Traceback" not in err


def test_benchmark_loads_the_config_and_enters_stages_through_the_trainer(tmp_path, monkeypatch):
    from ganzoo.engine.trainer import Trainer
    entered, enter_stage = [], Trainer.enter_stage

    def spy(self, index, begin=True):
        enter_stage(self, index, begin)
        entered.append((index, self.ctx.grad_clip, self.ctx.precision))

    monkeypatch.setattr(Trainer, "enter_stage", spy)
    monkeypatch.chdir(tmp_path)   # a run directory would appear here: the benchmark writes none
    config = write_config(tmp_path, num_stages=2, stage_steps=1)
    out = tmp_path / "r.json"
    # a trainer key needs no "+" (the one config pipeline); --precision is the override train.precision=bf16
    assert benchmark.main([config, "train.grad_clip=1.0", "--precision", "bf16", "--steps", "1", "--warmup", "0",
                           "--repeat", "1", "--sample-repeat", "0", "--device", "cpu", "--json", str(out)]) == 0
    assert entered == [(0, 1.0, "bf16"), (1, 1.0, "bf16")]
    result = json.loads(out.read_text())
    assert result["precision"] == "bf16" and [s["stage"] for s in result["stages"]] == [0, 1]
    assert sorted(os.listdir(tmp_path)) == ["r.json", "toy.yaml"]


def test_tool_runs_as_a_script(tmp_path):
    config = write_config(tmp_path)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "benchmark.py"), config.replace(
        "toy.yaml", "toy.yaml"), "--steps", "1", "--warmup", "0", "--repeat", "1", "--sample-repeat", "0"],
        capture_output=True, text=True, env=env, cwd=str(tmp_path))
    # the config names this module by its import name; as a script it is importable through PYTHONPATH
    assert proc.returncode == 0, proc.stderr
    assert '"img_per_s"' in proc.stdout


def test_compare_says_when_references_are_absent(tmp_path, capsys):
    assert compare.main(["spade", "--refs", str(tmp_path / "nowhere")]) == 2
    assert "reference implementations not found" in capsys.readouterr().err


def test_compare_is_a_checkout_tool_outside_the_package():
    import importlib.util
    assert importlib.util.find_spec("ganzoo.cli.compare") is None
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "compare.py"), "fid", "--rounds", "0"],
                          capture_output=True, text=True, cwd="/")
    assert proc.returncode == 2 and "--rounds: must be >= 1" in proc.stderr


def test_compare_alternates_and_reports_the_ratio():
    from types import SimpleNamespace
    def side(value):
        return [sys.executable, "-c", f"print('noise'); print('RESULT {{\"img_per_s\": {value}}}')"]
    case = {"unit": "img/s", "ref_name": "toy", "setting": "toy", "ref": side(2.0), "ours": side(3.0),
            "parse_ref": lambda out, tmp: compare.json_line(out, "RESULT ")["img_per_s"],
            "parse_ours": lambda out, tmp: {"value": compare.json_line(out, "RESULT ")["img_per_s"], "extra": 1}}
    order = []
    sides, extra = compare.run_case("toy", case, rounds=2, threads=1, log=order.append)
    assert [line.split()[2].rstrip(":") for line in order] == ["ref", "ours", "ours", "ref"]
    assert [r["value"] for r in sides["ref"]] == [2.0, 2.0] and sides["ours"][0]["extra"] == 1
    assert all(r["peak_rss_gb"] > 0 for r in sides["ref"] + sides["ours"])
    args = SimpleNamespace(rounds=2, device="cpu", ref_python=sys.executable, argv=["toy"], threads=1)
    result = compare.summarize("toy", case, sides, extra, args)
    assert result["speedup"] == pytest.approx(1.5) and result["paired_speedups"] == pytest.approx([1.5, 1.5])
    with pytest.raises(ValueError, match="no JSON result line"):
        compare.json_line("nothing here", "RESULT ")
