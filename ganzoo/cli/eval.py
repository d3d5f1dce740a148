"""ganzoo-eval: run a config's ``eval.metrics`` on a trained checkpoint and print the results as JSON.

    ganzoo-eval CONFIG --checkpoint run/checkpoints/latest.pt [key=value ...] [--out metrics.json]

The model comes from the checkpoint; the dataset from the config's ``data`` section (overrides apply,
e.g. ``data.root=/data/val``). Metrics are METRICS entries, e.g.
``eval: {metrics: [{type: fid, num_samples: 2000, dims: 2048, weights: null, batch_size: 50}]}``.
"""
import argparse
import json

import ganzoo
from ganzoo.cli.common import require_path, run_cli
from ganzoo.fileio import write_text


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-eval", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("config", help="YAML config (its data and eval sections are used)")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides key=value")
    parser.add_argument("--checkpoint", required=True, help="checkpoint file, checkpoints folder or run folder")
    parser.add_argument("--device", default="auto", help="auto (cuda when available, else cpu), cpu, cuda:1 ...")
    parser.add_argument("--out", default=None, help="also write the results to this JSON file")
    return parser


def evaluate_checkpoint(checkpoint, config_path, overrides, metric_specs, device):
    """Load the checkpoint's model, build the dataset of ``config_path`` (default: the checkpoint's own
    config) with ``overrides``, run ``metric_specs`` (default: the config's ``eval.metrics``) on ``device`` (a
    name such as ``auto`` or a ``torch.device``). A config file is loaded first: its mistakes come before torch."""
    from ..engine.options import build_dataset, load_config
    cfg = load_config(config_path, overrides) if config_path else None
    from ..device import pick_device
    from ..metrics.evaluate import run_metrics
    from ..registry import METRICS
    device = pick_device(device)
    model = ganzoo.load(checkpoint, device=device)
    cfg = cfg or load_config(model.config, overrides, where=f"the config saved in {checkpoint}")
    if metric_specs is None:
        metric_specs = cfg["eval"]["metrics"]
        if not metric_specs:
            raise ValueError(f"{config_path or checkpoint}: eval.metrics is empty; add e.g. "
                             "eval.metrics: [{type: fid, num_samples: 2000}]")
    metrics = [METRICS.build(spec) for spec in metric_specs]
    return run_metrics(metrics, model, build_dataset(cfg["data"]), device)


def run(args):
    require_path(args.config, "config")
    require_path(args.checkpoint, "checkpoint")
    results = evaluate_checkpoint(args.checkpoint, args.config, args.overrides, None, args.device)
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")


def main(argv=None):
    return run_cli(build_parser(), run, argv, intermixed=True)
