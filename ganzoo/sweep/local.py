"""Run the settings of a sweep as train-CLI subprocesses, ``workers`` at a time, ``threads`` each."""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ganzoo.fileio import write_json

DONE = "sweep_done.json"


def state(run_dir):
    """``done`` (finished by the sweep), ``broken`` (has checkpoints, not done) or ``new``."""
    if os.path.isfile(os.path.join(run_dir, DONE)):
        return "done"
    ckpts = os.path.join(run_dir, "checkpoints")
    return "broken" if os.path.isdir(ckpts) and os.listdir(ckpts) else "new"


def command(config, overrides, run_dir, threads):
    train = [sys.executable, "-m", "ganzoo.cli.train"]
    if state(run_dir) == "broken":
        return train + ["--resume", "--run-dir", run_dir]
    return train + [config, *overrides, f"train.threads={threads}", "--run-dir", run_dir]


def run_one(config, overrides, run_dir, threads):
    """Trains (or resumes) one setting unless it is done; returns its return code."""
    if state(run_dir) == "done":
        return 0
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # ganzoo importable
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    os.makedirs(run_dir, exist_ok=True)
    start = time.time()
    with open(os.path.join(run_dir, "sweep.log"), "a") as log:
        rc = subprocess.call(command(config, overrides, run_dir, threads), stdout=log, stderr=log, env=env)
    if rc == 0:
        write_json(os.path.join(run_dir, DONE), {"overrides": overrides, "train_seconds": time.time() - start})
    return rc


def run_local(config, settings, out, workers=1, threads=None):
    """``settings``: ``{name: overrides}``. Threads per worker default to cores // workers (never oversubscribed)."""
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    with ThreadPoolExecutor(workers) as pool:
        codes = pool.map(lambda item: run_one(config, item[1], os.path.join(out, item[0]), threads),
                         settings.items())
        return dict(zip(settings, codes))


def collect(settings, out):
    """One row per setting: name, overrides, the last metrics record's numbers, training time."""
    rows = []
    for name, overrides in settings.items():
        run_dir = os.path.join(out, name)
        row = {"name": name, "overrides": " ".join(overrides), "state": state(run_dir)}
        metrics_path = os.path.join(run_dir, "metrics.json")
        if os.path.isfile(metrics_path):
            with open(metrics_path) as f:
                records = json.load(f)
            if records:
                row.update({k: v for k, v in records[-1].items() if isinstance(v, (int, float)) and k != "step"})
        if row["state"] == "done":
            with open(os.path.join(run_dir, DONE)) as f:
                row["train_seconds"] = round(json.load(f)["train_seconds"], 1)
        rows.append(row)
    return rows
