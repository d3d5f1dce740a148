"""ganzoo-eval: run a config's ``eval.metrics`` on a trained checkpoint and print the results as JSON.

    ganzoo-eval CONFIG --checkpoint run/checkpoints/latest.pt [key=value ...] [--out metrics.json]

The model comes from the checkpoint; the dataset from the config's ``data`` section (overrides apply,
e.g. ``data.root=/data/val``). Metrics are METRICS entries, e.g.
``eval: {metrics: [{type: fid, num_samples: 2000, dims: 2048, weights: null, batch_size: 50}]}``.
"""
import argparse
import json

from ganzoo.cli.common import USER_ERRORS, report_user_error
from ganzoo.fileio import write_text


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-eval", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("config", help="YAML config (its data and eval sections are used)")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides key=value")
    parser.add_argument("--checkpoint", required=True, help="checkpoint file of the trained model")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--out", default=None, help="also write the results to this JSON file")
    return parser


def run_metrics(metric_specs, model, dataset, device):
    """{metric name: value} for every spec; a later metric's key of the same name wins."""
    from ..registry import METRICS
    results = {}
    for spec in metric_specs:
        metric = METRICS.build(spec)
        results.update({key: value if isinstance(value, (dict, list, str)) else float(value)
                        for key, value in metric(model, dataset, device).items()})
    return results


def evaluate_checkpoint(checkpoint, config_path, overrides, metric_specs, device):
    """Load the checkpoint's model, build the dataset of ``config_path`` (default: the checkpoint's own
    config) with ``overrides``, run ``metric_specs`` (default: the config's ``eval.metrics``)."""
    from .. import config as config_lib
    from ..engine.checkpoint import load_model
    from ..engine.options import build_dataset
    model, saved_cfg = load_model(checkpoint, device=device)
    if config_path:
        cfg = config_lib.load(config_path, overrides)
    else:
        cfg = config_lib.apply_overrides(saved_cfg, overrides)
    if metric_specs is None:
        metric_specs = (cfg.get("eval") or {}).get("metrics") or []
        if not metric_specs:
            raise ValueError(f"{config_path or checkpoint}: eval.metrics is empty; add e.g. "
                             "eval.metrics: [{type: fid, num_samples: 2000}]")
    dataset = build_dataset(cfg["data"])
    return run_metrics(metric_specs, model.to(device), dataset, device)


def main(argv=None):
    args = build_parser().parse_intermixed_args(argv)
    try:
        import torch
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        results = evaluate_checkpoint(args.checkpoint, args.config, args.overrides, None, device)
    except USER_ERRORS as err:
        return report_user_error(err)
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")
    return 0
