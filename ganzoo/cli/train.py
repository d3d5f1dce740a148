"""``ganzoo-train CONFIG [key=value ...] [--run-dir DIR]``; ``ganzoo-train --resume --run-dir RUN [key=value ...]``
(also under torchrun)."""
import argparse
import os
import shlex
import sys

from ganzoo.cli.common import run_cli


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ganzoo-train", description="Train a model from a YAML config; writes a run directory.",
        epilog="Multi-GPU: torchrun --nproc-per-node N tools/train.py CONFIG ...  (see docs/training.md)")
    parser.add_argument("config", nargs="?", help="YAML config file (with --resume: default the run's config.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.steps=1000 (+key=value adds a key)")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="PATH",
                        help="continue a run: no PATH = the run directory's latest checkpoint; PATH = a "
                             "checkpoint file or a run directory")
    parser.add_argument("--run-dir", default=None, help="run directory (default: run.dir, else runs/<config name>)")
    parser.add_argument("--allow-changes", action="store_true",
                        help="with --resume: continue with a CONFIG or overrides that differ from the run's "
                             "config.yaml (e.g. more train.steps)")
    return parser


def run_dir_of(resume):
    """The run directory a ``--resume PATH`` (checkpoint file or run directory) belongs to."""
    path = os.path.abspath(resume)
    if os.path.isfile(path):
        parent = os.path.dirname(path)
        return os.path.dirname(parent) if os.path.basename(parent) == "checkpoints" else parent
    return path


def flatten(cfg, prefix=""):
    out = {}
    for key, value in cfg.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_keys(old, new):
    """``["train.steps: 10 -> 20", ...]`` for every dotted key whose value differs."""
    old, new = flatten(old), flatten(new)
    missing = object()
    return [f"{key}: {old.get(key, missing)!r} -> {new.get(key, missing)!r}".replace(repr(missing), "unset")
            for key in sorted(set(old) | set(new)) if old.get(key, missing) != new.get(key, missing)]


def resolve_run(config_path, overrides=(), run_dir=None, resume=None, allow_changes=False):
    """The complete config and run directory of a fresh run or a resume (nothing is written here).

    A resume is checked against the run's ``config.yaml``: a CONFIG or overrides that change it are refused
    (one line listing the keys) unless ``allow_changes``.
    """
    from ganzoo.config import ConfigError
    from ganzoo.engine.options import load_config

    if not resume:
        if not config_path:
            raise ConfigError("give a CONFIG file (or --resume --run-dir RUN to continue a run)")
        cfg = load_config(config_path, overrides)
        if run_dir:
            cfg["run"]["dir"] = run_dir
        return cfg
    if run_dir is None and isinstance(resume, str):
        run_dir = run_dir_of(resume)
    if run_dir is None:
        if not config_path:
            raise ConfigError("--resume needs the run: --run-dir RUN, --resume RUN_OR_CHECKPOINT, or the CONFIG")
        run_dir = load_config(config_path, overrides)["run"]["dir"]
    saved_path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(saved_path):
        raise ConfigError(f"cannot resume {run_dir}: it has no config.yaml (not a ganzoo run directory)")
    saved = load_config(saved_path)
    cfg = load_config(config_path or saved, overrides, where=None if config_path else saved_path)
    cfg["run"]["dir"] = saved["run"]["dir"] = run_dir
    changes = changed_keys(saved, cfg)
    if changes and not allow_changes:
        shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
        raise ConfigError(f"the config differs from {saved_path}: {shown} (pass --allow-changes to continue "
                          "with the new values)")
    return cfg


def resume_command(run_dir):
    """The exact command that continues the run in ``run_dir``, as this process was started."""
    script = sys.argv[0] if sys.argv and sys.argv[0] else "ganzoo-train"
    command = "ganzoo-train" if os.path.basename(script).startswith("ganzoo-train") else f"python {shlex.quote(script)}"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        per_node = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
        command = f"torchrun --nproc-per-node {per_node} {shlex.quote(script)}"
    return f"{command} --resume --run-dir {shlex.quote(run_dir)}"


def make_trainer(config_path, overrides=(), run_dir=None, resume=None, allow_changes=False):
    """Config -> seeded model and dataset through the registries -> :class:`Trainer` (not started)."""
    cfg = resolve_run(config_path, overrides, run_dir, resume, allow_changes)
    from ganzoo.engine import checkpoint, options
    from ganzoo.engine.trainer import Trainer
    from ganzoo.registry import MODELS

    checkpoint.seed_everything(cfg["run"]["seed"])  # same initial weights on every rank
    model = MODELS.build(cfg["model"])
    dataset = options.build_dataset(cfg["data"])
    return Trainer(model, dataset, cfg, resume=resume, resume_hint=resume_command(cfg["run"]["dir"]))


def train(args):
    if args.config and "=" in args.config and not os.path.exists(args.config):
        args.overrides.insert(0, args.config)  # "--resume --run-dir RUN train.steps=9": no CONFIG
        args.config = None
    if isinstance(args.resume, str) and "=" in args.resume and not os.path.exists(args.resume):
        args.overrides.append(args.resume)  # "--resume train.steps=9": an override, not a path
        args.resume = True
    trainer = make_trainer(args.config, args.overrides, run_dir=args.run_dir, resume=args.resume,
                           allow_changes=args.allow_changes)
    from ganzoo.engine import distributed
    from ganzoo.engine.trainer import NonFiniteLossError
    try:
        result = trainer.fit()
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        distributed.shutdown()
    if result["status"] == "interrupted":
        return 130 if result["signal"] == "SIGINT" else 143
    if trainer.is_main:
        print(f"done: {result['step']} steps; run directory {trainer.run_dir} (open index.html); "
              f"checkpoint {result['checkpoint']}", file=sys.stderr)
    return 0


def main(argv=None):
    return run_cli(build_parser(), train, argv, intermixed=True)


if __name__ == "__main__":
    sys.exit(main())
