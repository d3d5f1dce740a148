import json
import os

import pytest

from ganzoo.cli import sweep
from ganzoo.config import ConfigError
from ganzoo.sweep import grid, local


def test_grid_product_zip_seeds_and_names():
    g = grid.parse_grid(["model.num_layers=4,5", "model.scale_factor=0.5,0.75"])
    assert len(grid.expand(g)) == 4
    assert grid.expand(g, zip_keys=True) == [["model.num_layers=4", "model.scale_factor=0.5"],
                                             ["model.num_layers=5", "model.scale_factor=0.75"]]
    assert len(grid.expand(g, repeat_seeds=2)) == 8
    assert grid.run_name(["model.num_layers=4", "run.seed=1"]) == "num_layers=4_seed=1"
    with pytest.raises(ConfigError):
        grid.expand(grid.parse_grid(["a=1,2", "b=1"]), zip_keys=True)


def test_local_sweep_skips_done_and_resumes_broken(tmp_path, monkeypatch):
    calls = []

    def fake_call(cmd, **kwargs):
        calls.append(cmd)
        return 0

    monkeypatch.setattr(local.subprocess, "call", fake_call)
    out = str(tmp_path)
    os.makedirs(tmp_path / "num_layers=5" / "checkpoints")
    (tmp_path / "num_layers=5" / "checkpoints" / "step.pt").write_text("x")
    args = ["configs/singan_quick.yaml", "--grid", "model.num_layers=4,5", "--out", out, "--workers", "2"]
    assert sweep.main(args) == 0
    assert len(calls) == 2
    resumed = [c for c in calls if "--resume" in c]
    assert len(resumed) == 1 and resumed[0][-1].endswith("num_layers=5")
    fresh = [c for c in calls if "--resume" not in c][0]
    assert "model.num_layers=4" in fresh and any(a.startswith("train.threads=") for a in fresh)
    rows = json.load(open(tmp_path / "sweep.json"))
    assert [r["state"] for r in rows] == ["done", "done"]
    calls.clear()
    assert sweep.main(args) == 0
    assert calls == []  # both finished: nothing re-runs


TINY = ["model.max_size=24", "model.min_size=16", "model.steps_per_scale=3", "model.nfc=8", "model.min_nfc=8",
        "run.log_every=1", "run.sample_every=3", "run.ckpt_every=3", "run.sample_count=2",
        "train.schedule.milestones=[2]"]


def test_real_sweep_trains_skips_and_resumes(tmp_path):
    out = tmp_path / "sweep"
    args = ["configs/singan_quick.yaml", "--grid", "model.num_layers=3,4", "--set", *TINY,
            "--out", str(out), "--workers", "2", "--threads", "1"]
    assert sweep.main(args) == 0
    runs = [out / "num_layers=3", out / "num_layers=4"]
    for run in runs:
        assert (run / local.DONE).is_file() and (run / "checkpoints" / "step_00000006.pt").is_file()
    logs = {run: (run / "log.jsonl").read_text() for run in runs}
    assert sweep.main(args) == 0  # everything done: no training at all
    assert {run: (run / "log.jsonl").read_text() for run in runs} == logs
    broken = runs[1]  # simulate a crash after the first checkpoint
    (broken / local.DONE).unlink()
    (broken / "checkpoints" / "step_00000006.pt").unlink()
    (broken / "checkpoints" / "latest").write_text("step_00000003.pt")
    assert local.state(str(broken)) == "broken"
    assert sweep.main(args) == 0
    assert (broken / "checkpoints" / "step_00000006.pt").is_file() and (broken / local.DONE).is_file()
    resumed_log = (broken / "log.jsonl").read_text()
    assert resumed_log != logs[broken] and resumed_log.startswith(logs[broken].split("\n", 3)[0])  # steps 4-6 retrained
    assert [json.loads(line)["step"] for line in resumed_log.splitlines()][-1] == 6
    assert (runs[0] / "log.jsonl").read_text() == logs[runs[0]]
    rows = json.load(open(out / "sweep.json"))
    assert [r["state"] for r in rows] == ["done", "done"]
