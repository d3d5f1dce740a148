"""``ganzoo-train CONFIG [key=value ...] [--resume [PATH]] [--run-dir DIR]`` (also under torchrun)."""
import argparse
import os
import sys

from ganzoo.cli.common import USER_ERRORS, report_user_error


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ganzoo-train", description="Train a model from a YAML config; writes a run directory.",
        epilog="Multi-GPU: torchrun --nproc-per-node N tools/train.py CONFIG ...  (see docs/training.md)")
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=1000 (+key=value adds a key)")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="PATH",
                        help="continue a run: no PATH = the run directory's latest checkpoint; PATH = a "
                             "checkpoint file or a run directory")
    parser.add_argument("--run-dir", default=None, help="run directory (default: run.dir, else runs/<config name>)")
    return parser


def default_run_dir(config_path, cfg, resume):
    """--run-dir > the run that a resumed checkpoint lives in > run.dir > runs/<config name>."""
    if isinstance(resume, str):
        path = os.path.abspath(resume)
        if os.path.isfile(path):
            parent = os.path.dirname(path)
            return os.path.dirname(parent) if os.path.basename(parent) == "checkpoints" else parent
        return path
    return cfg["run"].get("dir") or os.path.join("runs", os.path.splitext(os.path.basename(config_path))[0])


def make_trainer(config_path, overrides=(), run_dir=None, resume=None):
    """Config -> seeded model and dataset through the registries -> :class:`Trainer` (not started)."""
    from ganzoo import config as config_lib
    from ganzoo.engine import checkpoint, options
    from ganzoo.engine.trainer import Trainer
    from ganzoo.registry import MODELS

    raw = options.with_defaults(config_lib.load_yaml(config_path))
    cfg = options.resolve(config_lib.validate(config_lib.apply_overrides(raw, overrides), source=config_path))
    run_dir = run_dir or default_run_dir(config_path, cfg, resume)
    checkpoint.seed_everything(cfg["run"]["seed"])  # same initial weights on every rank
    model = MODELS.build(cfg["model"])
    dataset = options.build_dataset(cfg["data"])
    return Trainer(model, dataset, cfg, run_dir=run_dir, resume=resume)


def main(argv=None):
    args = build_parser().parse_intermixed_args(argv)
    if isinstance(args.resume, str) and "=" in args.resume and not os.path.exists(args.resume):
        args.overrides.append(args.resume)  # "--resume train.steps=9": an override, not a path
        args.resume = True
    from ganzoo.engine import distributed
    from ganzoo.engine.trainer import NonFiniteLossError

    try:
        trainer = make_trainer(args.config, args.overrides, run_dir=args.run_dir, resume=args.resume)
        result = trainer.fit()
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except USER_ERRORS as err:
        return report_user_error(err)
    finally:
        distributed.shutdown()
    if result["status"] == "interrupted":
        return 130 if result["signal"] == "SIGINT" else 143
    if trainer.is_main:
        print(f"done: {result['step']} steps; run directory {trainer.run_dir} (open index.html); "
              f"checkpoint {result['checkpoint']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
