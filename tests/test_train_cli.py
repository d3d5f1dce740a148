"""ganzoo-train as a user drives it: resume from a run directory, refused changes, nothing written before
every check has passed, the stop hint, the whole-run ETA and the run report."""
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from ganzoo.cli.train import main
from tests.toy_gan import ToyGAN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CostlyToy(ToyGAN):
    """ToyGAN whose second stage costs 3x the first per step (as SinGAN's finer scales do)."""

    def stages(self):
        return [dict(stage, cost=1.0 + 2.0 * i) for i, stage in enumerate(super().stages())]


def toy_config(tmp_path, model="", steps=4):
    path = tmp_path / "toy.yaml"
    path.write_text(f"model: {{type: 'tests.toy_gan:ToyGAN'{model}}}\n"
                    "data: {type: 'tests.toy_gan:ToyData', n: 8}\n"
                    f"train: {{steps: {steps}, batch_size: 4}}\n"
                    "run: {log_every: 1, sample_every: 0, ckpt_every: 2, progress: false}\n")
    return str(path)


def snapshot(run_dir):
    """Bytes of every file in the run directory."""
    out = {}
    for folder, _, files in os.walk(run_dir):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, run_dir)] = f.read()
    return out


def test_resume_needs_no_config_and_refuses_changes_unless_allowed(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main([toy_config(tmp_path), "--run-dir", run]) == 0
    assert main(["--resume", "--run-dir", run]) == 0  # finished already: a no-op resume, no CONFIG needed
    before = snapshot(run)
    capsys.readouterr()
    assert main(["--resume", "--run-dir", run, "train.steps=6"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "train.steps: 4 -> 6" in err and "--allow-changes" in err
    assert snapshot(run) == before  # nothing written
    assert main([toy_config(tmp_path, steps=5), "--resume", "--run-dir", run]) == 2  # a changed CONFIG too
    assert snapshot(run) == before
    assert main(["--resume", "--run-dir", run, "train.steps=6", "--allow-changes"]) == 0
    log = [json.loads(line) for line in open(os.path.join(run, "log.jsonl"))]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]
    starts = json.load(open(os.path.join(run, "env.json")))["starts"]
    assert len(starts) == 3 and all("torch" in s and "argv" in s for s in starts)
    from ganzoo.engine.options import load_config
    assert load_config(os.path.join(run, "config.yaml"))["train"]["steps"] == 6


def test_checkpoint_of_another_model_is_one_line_and_leaves_the_run_untouched(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main([toy_config(tmp_path), "--run-dir", run]) == 0
    before = snapshot(run)
    capsys.readouterr()
    assert main(["--resume", "--run-dir", run, "--allow-changes", "+model.hidden=8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: checkpoint") and "does not fit" in err and "\n" not in err
    assert snapshot(run) == before


def test_a_run_that_cannot_start_leaves_no_run_directory(tmp_path, capsys):
    cfg = tmp_path / "empty.yaml"
    cfg.write_text("model: {type: 'tests.toy_gan:ToyGAN'}\ndata: {type: 'tests.toy_gan:ToyData', n: 0}\n"
                   "train: {steps: 2}\n")
    run = tmp_path / "run"
    assert main([str(cfg), "--run-dir", str(run)]) == 2
    assert "empty" in capsys.readouterr().err
    assert not run.exists()


def test_resume_without_a_run_is_one_line(tmp_path, capsys):
    assert main(["--resume", "--run-dir", str(tmp_path / "nothing")]) == 2
    assert "no config.yaml" in capsys.readouterr().err
    assert main([]) == 2


def test_stop_hint_is_the_exact_command_that_continues(tmp_path):
    run = str(tmp_path / "run")
    cfg = toy_config(tmp_path, model=", sleep: 0.05", steps=2000)
    proc = subprocess.Popen([sys.executable, "tools/train.py", cfg, "--run-dir", run], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    log = os.path.join(run, "log.jsonl")
    deadline = time.time() + 60
    while not (os.path.isfile(log) and os.path.getsize(log)) and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143
    command = err.split("Continue with: ")[1].splitlines()[0]
    assert command == f"python tools/train.py --resume --run-dir {shlex.quote(run)}"
    done = subprocess.run(shlex.split(command) + ["--allow-changes", "+model.sleep=0", "train.steps=40"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resumed from" in done.stderr


def test_eta_covers_the_whole_run_scaled_by_stage_cost(tmp_path):
    cfg = tmp_path / "costly.yaml"
    cfg.write_text("model: {type: 'tests.test_train_cli:CostlyToy', stages: 2, stage_steps: [4, 4]}\n"
                   "data: {type: 'tests.toy_gan:ToyData', n: 8}\n"
                   "train: {batch_size: 4}\nrun: {log_every: 2, sample_every: 0, progress: false}\n")
    run = tmp_path / "run"
    assert main([str(cfg), "--run-dir", str(run)]) == 0
    records = [json.loads(line) for line in open(run / "log.jsonl")]
    # remaining steps at the logs of steps 2, 4 (stage 0) and 6, 8 (stage 1, 3x the cost per step)
    expected = [2 + 4 * 3.0, 0 + 4 * 3.0, 2, 0]
    for record, steps in zip(records, expected):
        assert record["eta_s"] == pytest.approx(record["sec_per_step"] * steps)


@pytest.mark.parametrize("images", [8, 2])
def test_report_is_written_from_memory(tmp_path, monkeypatch, images):
    """index.html comes from the trainer's records (the log is not read back), draws curves with a step
    axis, shows the training data first, and no epoch when an epoch is one step (a one-image run)."""
    from ganzoo.engine import report
    run = tmp_path / "run"
    calls = []
    monkeypatch.setattr(report, "read_log", lambda path: calls.append(path) or [])
    assert main([toy_config(tmp_path), "--run-dir", str(run), "train.batch_size=2", f"data.n={images}",
                 "run.sample_every=2"]) == 0
    assert calls == []
    page = (run / "index.html").read_text()
    assert page.count("<svg") == 2 and page.count(">step</text>") == 2  # d_loss and g_loss panels
    samples = page.split("<h2>Samples</h2>")[1]
    assert samples.index("samples/training_data.png") < samples.index("samples/step_00000002.png")
    header = page.split("<h2>Losses</h2>")[0]
    assert ("epoch" in header) == (images > 2)
