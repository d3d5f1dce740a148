"""One setting of a sweep on this machine: a train-CLI subprocess in its own run directory, skipped when done,
resumed when broken; and the rows that describe the finished runs."""
import json
import os
import subprocess
import sys
import time

from ganzoo.fileio import write_json

DONE = "sweep_done.json"
#: torchrun's variables: a run started by a sweep rank is a single-process run, not a rank of the sweep
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                 "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def state(run_dir):
    """``done`` (finished by the sweep), ``broken`` (has checkpoints, not done) or ``new``."""
    if os.path.isfile(os.path.join(run_dir, DONE)):
        return "done"
    ckpts = os.path.join(run_dir, "checkpoints")
    return "broken" if os.path.isdir(ckpts) and os.listdir(ckpts) else "new"


def command(config, overrides, run_dir, threads, run_state):
    train = [sys.executable, "-m", "ganzoo.cli.train"]
    if run_state == "broken":
        return train + ["--resume", "--run-dir", run_dir]
    return train + [config, *overrides, f"train.threads={threads}", "--run-dir", run_dir]


def child_env(threads, gpu=None):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env["OMP_NUM_THREADS"] = str(threads)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def run_one(config, overrides, run_dir, threads, gpu=None):
    """Trains (or resumes) one setting unless it is done; returns its return code."""
    run_state = state(run_dir)
    if run_state == "done":
        return 0
    os.makedirs(run_dir, exist_ok=True)
    start = time.time()
    with open(os.path.join(run_dir, "sweep.log"), "a") as log:
        rc = subprocess.call(command(config, overrides, run_dir, threads, run_state), stdout=log, stderr=log,
                             env=child_env(threads, gpu))
    if rc == 0:
        write_json(os.path.join(run_dir, DONE), {"overrides": overrides, "train_seconds": time.time() - start})
    return rc


def check_finished(settings, out):
    """A finished run of the same name but other overrides (e.g. a changed ``set``) is an error before anything
    runs: it would be skipped as if it were this setting."""
    for name, overrides in settings.items():
        run_dir = os.path.join(out, name)
        if state(run_dir) == "done":
            with open(os.path.join(run_dir, DONE)) as f:
                trained = json.load(f)["overrides"]
            if trained != overrides:
                raise ValueError(f"{run_dir} was trained with other overrides ({' '.join(trained)}); move it "
                                 "away or sweep into another --out")


def latest_samples(run_dir):
    """The newest sample grid of a run (``samples/step_*.png``), relative to the run directory, or None."""
    folder = os.path.join(run_dir, "samples")
    grids = sorted(f for f in os.listdir(folder) if f.startswith("step")) if os.path.isdir(folder) else []
    return f"samples/{grids[-1]}" if grids else None


def parameter_count(run_dir):
    """Parameters of the run's generator (what samples), from its latest checkpoint."""
    from ganzoo.engine import checkpoint
    try:
        model = checkpoint.load_model(run_dir, "cpu")
    except FileNotFoundError:  # done without a checkpoint: a run with ckpt_every 0
        return None
    return sum(p.numel() for p in getattr(model, model.generator_name).parameters())


def collect(settings, out, swept=None):
    """One row per setting: name, overrides, the values it sweeps (``swept``: {name: {key: value}}), state, the
    last metrics record's numbers, training time, generator parameters and newest sample grid."""
    rows = []
    for name, overrides in settings.items():
        run_dir = os.path.join(out, name)
        row = {"name": name, "overrides": " ".join(overrides), **(swept or {}).get(name, {})}
        row["state"] = state(run_dir)
        metrics_path = os.path.join(run_dir, "metrics.json")
        if os.path.isfile(metrics_path):
            with open(metrics_path) as f:
                records = json.load(f)
            if records:
                row.update({k: v for k, v in records[-1].items() if isinstance(v, (int, float)) and k not in ("step", "stage")})
        if row["state"] == "done":
            with open(os.path.join(run_dir, DONE)) as f:
                row["train_seconds"] = round(json.load(f)["train_seconds"], 1)
            row["parameters"] = parameter_count(run_dir)
        row["samples"] = latest_samples(run_dir)
        rows.append(row)
    return rows
