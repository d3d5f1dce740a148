"""ganzoo-eval: run a config's ``eval.metrics`` on a trained checkpoint and print the results as JSON.

    ganzoo-eval CONFIG --checkpoint run/checkpoints/latest.pt [key=value ...] [--out metrics.json]

The model comes from the checkpoint; the dataset from the config's ``data`` section (overrides apply,
e.g. ``data.root=/data/val``). Metrics are METRICS entries, e.g.
``eval: {metrics: [{type: fid, num_samples: 2000, dims: 2048, weights: null, batch_size: 50}]}``.

The SPADE paper's Table 1 row (FID, mIoU, pixel accuracy) on a dataset's val split, in one command:

    ganzoo-eval --checkpoint RUN --dataset coco_stuff|ade20k|cityscapes --root ROOT [--out-dir DIR]
    ganzoo-eval --real --dataset cityscapes --root ROOT       # the real val images: the ceiling

(protocol, segmenter weights and the choices behind them: docs/evaluation.md).
"""
import argparse
import json

import ganzoo
from ganzoo.cli.common import positive_int, require_path, run_cli
from ganzoo.fileio import write_text

PAPER_DATASETS = ("ade20k", "cityscapes", "coco_stuff")


def _short_sides(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive sizes like 300,375; got {text!r}")
    return values


def build_parser():
    parser = argparse.ArgumentParser(prog="ganzoo-eval", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("config", nargs="?", help="YAML config (its data and eval sections are used); "
                                                  "not with --dataset")
    parser.add_argument("overrides", nargs="*", help="dotted config overrides key=value")
    parser.add_argument("--checkpoint", help="checkpoint file, checkpoints folder or run folder")
    parser.add_argument("--device", default="auto", help="auto (cuda when available, else cpu), cpu, cuda:1 ...")
    parser.add_argument("--out", default=None, help="also write the results to this JSON file")
    paper = parser.add_argument_group("paper evaluation (SPADE Table 1: FID, mIoU, accuracy)")
    paper.add_argument("--dataset", choices=sorted(PAPER_DATASETS), help="evaluate on this dataset's val split")
    paper.add_argument("--root", help="dataset root in its official layout")
    paper.add_argument("--split", default="val", help="split folder to evaluate")
    paper.add_argument("--real", action="store_true", help="score the real val images (no model): the ceiling")
    paper.add_argument("--eval-size", choices=("generated", "label"), default=None,
                       help="generated: segment at the generated size, labels nearest-resized (default for "
                            "ade20k, coco_stuff); label: images resized to the annotation size (default cityscapes)")
    paper.add_argument("--segmenter-weights", help="the segmenter's weights file (default: resolved by name); "
                                                   "'random' for pipeline tests")
    paper.add_argument("--fid-weights", help="pytorch-fid Inception file (default: resolved by name); 'random'")
    paper.add_argument("--fid-dims", type=int, default=2048, choices=(64, 192, 768, 2048))
    paper.add_argument("--scales", type=_short_sides, help="ade20k only: CSAIL test short sides, comma-separated "
                                                          "(default 300,375,450,525,600)")
    paper.add_argument("--batch-size", type=positive_int, default=8)
    paper.add_argument("--num-samples", type=positive_int, help="only the first N val images")
    paper.add_argument("--seed", type=int, default=0)
    paper.add_argument("--workers", type=int, default=0, help="data loading processes")
    paper.add_argument("--out-dir", help="write results.json and results.md here")
    paper.add_argument("--name", help="row name in the table (default: the checkpoint, or 'real images')")
    paper.add_argument("--no-progress", action="store_true")
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


def eval_dataset_config(dataset, root, split, model_config=None, num_samples=None):
    """The val dataset's config: the checkpoint's data settings (sizes, label_nc ...) when it trained on the
    same dataset, with ``root``/``split``, no flip and ``max_samples``."""
    from ..registry import DATASETS
    data = dict((model_config or {}).get("data") or {})
    cfg = data if data.get("type") == dataset else {"type": dataset}
    cfg.update(root=root, split=split)
    defaults = getattr(DATASETS.get(dataset), "DEFAULTS", {})
    model = (model_config or {}).get("model") or {}
    for key in ("label_nc", "contain_dontcare_label", "use_instance", "crop_size", "aspect_ratio"):
        if key in defaults and key in model and key not in cfg:   # as the trainer fills them from the model
            cfg[key] = model[key]
    if "flip" in defaults:
        cfg["flip"] = False
    if "max_samples" in defaults:
        cfg["max_samples"] = num_samples
    if "load_size" in defaults:   # as the reference's test options: load size = crop size, no crop margin
        cfg["load_size"] = cfg.get("crop_size") or defaults.get("crop_size") or defaults["load_size"]
    return {k: v for k, v in cfg.items() if k == "type" or k in defaults}


def table_row(name, result):
    """The paper's Table 1 cells: FID, mIoU and accuracy in percent."""
    fid = "-" if result["fid"] is None else f"{result['fid']:.1f}"
    return f"| {name} | {fid} | {100 * result['miou']:.1f} | {100 * result['pixel_accuracy']:.1f} |"


def markdown_report(name, result):
    notes = [f"- {key}: {result[key]}" for key in ("fid_warning", "miou_warning") if key in result]
    proto = result["protocol"]
    lines = [f"# {result['dataset']} {result.get('split', 'val')} ({result['num_images']} images, {result['mode']})", "",
             "| method | FID | mIoU | accu |", "|---|---|---|---|", table_row(name, result), "",
             f"segmenter {proto['network']} ({proto['source']}), eval_size {proto['eval_size']}, "
             f"weights {proto['weights']}", *notes]
    return "\n".join(lines) + "\n"


def data_overrides(items):
    """``["data.load_size=64", ...]`` -> ``{"load_size": 64}`` (YAML values)."""
    import yaml
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("data.") or len(key) <= 5:
            raise ValueError(f"override {item!r}: with --dataset only data.KEY=VALUE overrides apply")
        parsed[key[5:]] = yaml.safe_load(value)
    return parsed


def run_paper_evaluation(args, overrides=()):
    from ..device import pick_device
    from ..engine.options import build_dataset
    from ..metrics.semantic_synthesis import SemanticSynthesisEvaluation
    if not args.root:
        raise ValueError("--dataset needs --root (the dataset folder in its official layout)")
    require_path(args.root, "dataset root")
    if not args.real and not args.checkpoint:
        raise ValueError("--dataset needs --checkpoint (a model to evaluate) or --real (the real images)")
    if args.checkpoint:
        require_path(args.checkpoint, "checkpoint")
    device = pick_device(args.device)
    model, model_cfg = None, None
    if not args.real:   # a ganzoo run/checkpoint of a label-to-image model, or an NVlabs *_net_G.pth
        from .synthesize import load_spade
        model, model_cfg = load_spade(args.checkpoint, device)
    data_cfg = eval_dataset_config(args.dataset, args.root, args.split, model_cfg, args.num_samples)
    data_cfg.update(data_overrides(overrides))
    dataset = build_dataset(data_cfg)
    evaluation = SemanticSynthesisEvaluation(
        args.dataset, segmenter_weights=args.segmenter_weights, eval_size=args.eval_size, fid_dims=args.fid_dims,
        fid_weights=args.fid_weights, batch_size=args.batch_size, seed=args.seed, num_workers=args.workers,
        real=args.real, progress=not args.no_progress, scales=args.scales)
    result = evaluation(model, dataset, device)
    result.update(checkpoint=args.checkpoint, split=args.split)
    name = args.name or ("real images" if args.real else args.checkpoint)
    print("| method | FID | mIoU | accu |\n|---|---|---|---|\n" + table_row(name, result))
    for key in ("fid_warning", "miou_warning"):
        if key in result:
            print(f"({key[:-8]}: {result[key]})")
    text = json.dumps(result, indent=1)
    if args.out:
        write_text(args.out, text + "\n")
    if args.out_dir:
        import os
        write_text(os.path.join(args.out_dir, "results.json"), text + "\n")
        write_text(os.path.join(args.out_dir, "results.md"), markdown_report(name, result))
    return 0


def run(args):
    if args.dataset:
        if args.config and "=" not in args.config:
            raise ValueError("--dataset takes no config file (the checkpoint's own config is used); "
                             "change data settings with data.KEY=VALUE")
        return run_paper_evaluation(args, ([args.config] if args.config else []) + list(args.overrides))
    if not args.config or not args.checkpoint:
        raise ValueError("give CONFIG and --checkpoint, or --dataset with --root (paper evaluation)")
    require_path(args.config, "config")
    require_path(args.checkpoint, "checkpoint")
    results = evaluate_checkpoint(args.checkpoint, args.config, args.overrides, None, args.device)
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        write_text(args.out, text + "\n")


def main(argv=None):
    return run_cli(build_parser(), run, argv, intermixed=True)
