"""Progress bar (tqdm, one per stage; its postfix has the whole run's ETA), ``log.jsonl`` lines and optional TensorBoard scalars.

Everything here runs on rank 0 only; other ranks get a :class:`Progress` with ``enabled=False``.
"""
import json
import os
import sys
import warnings

from ganzoo.fileio import write_text


class Progress:
    def __init__(self, run_dir, enabled=True, bar=True, tensorboard=False):
        self.enabled = enabled
        self.show_bar = enabled and bar
        self.log_path = os.path.join(run_dir, "log.jsonl")
        self.records = []  # every record of log.jsonl, kept for the report (never re-read from disk)
        self.bar = None
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(os.path.join(run_dir, "tensorboard"))
            except ImportError:
                warnings.warn("run.tensorboard is true but tensorboard is not installed "
                              "(pip install tensorboard); continuing without it")

    def start_stage(self, index, count, name, done, total):
        self.close_bar()
        if self.show_bar:
            from tqdm import tqdm
            label = f"stage {index + 1}/{count} {name}" if count > 1 else name
            self.bar = tqdm(total=total, initial=done, desc=label, dynamic_ncols=True, file=sys.stderr)

    def advance(self):
        if self.bar is not None:
            self.bar.update(1)

    def log(self, record):
        if not self.enabled:
            return
        self.records.append(record)
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.bar is not None:
            postfix = {k: f"{v:.4g}" for k, v in record["losses"].items()}
            postfix["run_eta"] = format_seconds(record["eta_s"])
            self.bar.set_postfix(postfix, refresh=False)
        if self.writer is not None:
            for name, value in record["losses"].items():
                self.writer.add_scalar(f"loss/{name}", value, record["step"])
            for name, value in record["lr"].items():
                self.writer.add_scalar(f"lr/{name}", value, record["step"])
            self.writer.add_scalar("speed/img_per_s", record["img_per_s"], record["step"])

    def scalars(self, prefix, values, step):
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def message(self, text):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self):
        self.close_bar()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def format_seconds(seconds):
    """``75`` -> ``1m15s``; ``3700`` -> ``1h01m``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def truncate_jsonl(path, last_step):
    """Drop records after ``last_step`` (written by an interrupted run past its last checkpoint)."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= last_step]
    write_text(path, "".join(lines))
