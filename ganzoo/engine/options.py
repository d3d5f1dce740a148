"""The one config pipeline (:func:`load_config`) and the trainer's keys (``train``, ``run``, ``eval`` and the
loader keys of ``data``) with their defaults.

docs/training.md documents every key. This module imports no torch: a typo in an override of a trainer key
is reported before any heavy import.
"""
import copy
import os

from ganzoo import config as config_lib
from ganzoo.config import ConfigError, check_keys, deep_merge

TRAIN = {
    "steps": None,            # iterations per stage (a model's stage may set its own)
    "epochs": None,           # used when steps is null: epochs * batches per epoch
    "batch_size": 1,          # per process
    "accumulate": 1,          # > 1: each D and G update accumulates the batch in this many parts (less memory)
    "checkpoint_activations": False,  # recompute the heavy modules' activations in the backward (less memory)
    "precision": "fp32",      # fp32 | bf16 | fp16
    "channels_last": False,
    "compile": False,
    "ema": None,              # {decay: 0.999, start: 0, norm_stats_batches: 0}
    "schedule": None,         # {type: none|step|multistep|linear_decay, ...}
    "optim": {},              # per optimizer name: overrides of the model's param_groups() spec
    "grad_clip": None,        # max global grad norm per optimizer, null = off
    "sync_bn": False,
    "find_unused_parameters": False,
    "threads": "auto",        # CPU threads: auto (timed per stage, engine/threads.py) | a fixed count
}
RUN = {
    "dir": None,              # run directory; null = runs/<config file name>
    "seed": 0,
    "device": "auto",         # auto | cpu | cuda | cuda:1 ...
    "deterministic": False,
    "log_every": 100,
    "sample_every": 1000,
    "sample_count": 16,
    "ckpt_every": 5000,
    "keep_last": 3,
    "tensorboard": False,
    "progress": True,
}
EVAL = {"every": 0, "metrics": []}
LOADER = {"num_workers": 0, "pin_memory": None}
EMA = {"decay": 0.999, "start": 0, "norm_stats_batches": 0}  # > 0: BN stats of the average recomputed
SCHEDULES = {
    "none": {},
    "step": {"step_size": None, "gamma": 0.1},
    "multistep": {"milestones": [], "gamma": 0.1},
    "linear_decay": {"start": 0},
}
SCHEDULE_COMMON = {"type": "none", "unit": "step"}


TRAINER_SECTIONS = {"train": TRAIN, "run": RUN, "eval": EVAL}


def load_config(source, overrides=(), where=None):
    """The one way to load a config: a YAML file (or a dict) -> the trainer's, the model's and the dataset's
    defaults deep-merged under it -> dotted overrides (``key=value``; ``+key=value`` adds a key no default
    has) -> values shared by model and data linked -> validation. Returns the complete config, the one a run
    directory's ``config.yaml`` holds; loading that file again gives the same dict.
    """
    if isinstance(source, (str, os.PathLike)):
        where = where or str(source)
        given = config_lib.load_yaml(source)
    else:
        where = where or "config"
        given = copy.deepcopy(dict(source))
    given = config_lib.validate(given, source=where)
    # train.optim maps the model's optimizer names (G, D) to settings: its keys need no "+"
    overrides = [(key, value, allow_new or key.startswith("train.optim."))
                 for key, value, allow_new in map(_parse_override, overrides or ())]
    # trainer keys first: their typos are reported before the model's module (and torch) is imported
    trainer_view = {**given, **{name: deep_merge(defaults, given[name]) for name, defaults in TRAINER_SECTIONS.items()}}
    for key, value, allow_new in overrides:
        if key.split(".")[0] in TRAINER_SECTIONS or key.split(".")[0] not in config_lib.SECTIONS:
            config_lib.set_by_path(trainer_view, key, value, allow_new=allow_new)

    from ganzoo.registry import DATASETS, MODELS
    model_cls = MODELS.get(given["model"]["type"])
    data_cls = DATASETS.get(given["data"]["type"]) if "type" in given["data"] else None
    defaults = {**TRAINER_SECTIONS,
                "model": {"type": given["model"]["type"], **getattr(model_cls, "DEFAULTS", {})},
                "data": {**({"type": given["data"]["type"]} if data_cls else {}),
                         **getattr(data_cls, "DEFAULTS", {}), **LOADER}}
    cfg = {name: deep_merge(defaults.get(name, {}), given[name]) for name in config_lib.SECTIONS}
    stated = copy.deepcopy(given)  # what the user wrote, with the overrides: links follow what was stated
    for key, value, allow_new in overrides:
        config_lib.set_by_path(cfg, key, value, allow_new=allow_new)
        config_lib.set_by_path(stated, key, value, allow_new=True)
    _link_model_and_data(cfg, stated, getattr(model_cls, "DATA_KEYS", ()), getattr(data_cls, "DEFAULTS", {}))
    if hasattr(model_cls, "DEFAULTS"):
        check_keys({k: v for k, v in cfg["model"].items() if k != "type"}, model_cls.DEFAULTS, "model")
    if not cfg["run"]["dir"]:  # the one default: runs/<config file name>
        name = os.path.splitext(os.path.basename(source))[0] if isinstance(source, (str, os.PathLike)) else None
        cfg["run"]["dir"] = os.path.join("runs", name or cfg["model"]["type"])
    return resolve(cfg)


def _parse_override(item):
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. train.batch_size=8)")
    key, _, text = item.partition("=")
    return key.lstrip("+").strip(), config_lib.parse_value(text), key.startswith("+")


def _link_model_and_data(cfg, stated, keys, data_defaults):
    """Facts that model and data share (SPADE's label_nc, crop_size …) are stated once: a value given on one
    side fills the other, the model's default fills both when neither side gives it, and two different values
    are a one-line error naming both keys."""
    for key in keys:
        in_model, in_data = key in stated["model"], key in stated["data"]
        if in_model and in_data and stated["model"][key] != stated["data"][key]:
            raise ConfigError(f"model.{key}={stated['model'][key]!r} conflicts with data.{key}="
                              f"{stated['data'][key]!r}: state it once (the other side is filled from it)")
        if in_data and not in_model:
            cfg["model"][key] = stated["data"][key]
        if key in data_defaults and key in cfg["model"]:
            cfg["data"][key] = cfg["model"][key]


def split_data(data_cfg):
    """``(dataset_cfg, loader_cfg)``: the loader keys are popped so the rest goes to ``DATASETS.build``."""
    dataset_cfg = dict(data_cfg or {})
    loader = {key: dataset_cfg.pop(key) for key in LOADER if key in dataset_cfg}
    return dataset_cfg, check_keys(loader, LOADER, "data")


def build_dataset(data_cfg):
    """The dataset of a config's ``data`` section (loader keys such as ``num_workers`` left out)."""
    from ganzoo.registry import DATASETS
    return DATASETS.build(split_data(data_cfg)[0])


def check_schedule(spec, where="train.schedule"):
    """Validated schedule dict (``None`` or a type name allowed)."""
    if spec is None:
        spec = {"type": "none"}
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a mapping with a 'type', got {spec!r}")
    kind = spec.get("type", "none")
    if kind not in SCHEDULES:
        raise ConfigError(f"{where}.type must be one of {', '.join(SCHEDULES)}, got {kind!r}")
    spec = check_keys(spec, {**SCHEDULE_COMMON, **SCHEDULES[kind]}, where)
    if spec["unit"] not in ("step", "epoch"):
        raise ConfigError(f"{where}.unit must be step or epoch, got {spec['unit']!r}")
    if kind == "step" and not spec["step_size"]:
        raise ConfigError(f"{where}.step_size is required for a step schedule")
    return spec


def resolve(cfg):
    """Validate and fill the trainer's sections of a full config; returns a new dict."""
    cfg = copy.deepcopy(cfg)
    train = check_keys(cfg.get("train"), TRAIN, "train")
    run = check_keys(cfg.get("run"), RUN, "run")
    evaluation = check_keys(cfg.get("eval"), EVAL, "eval")
    if train["precision"] not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"train.precision must be fp32, bf16 or fp16, got {train['precision']!r}")
    if train["ema"] is not None:
        ema = {} if train["ema"] is True else train["ema"]
        if not isinstance(ema, dict):
            raise ConfigError(f"train.ema must be null or a mapping {{decay, start}}, got {train['ema']!r}")
        train["ema"] = check_keys(ema, EMA, "train.ema")
    train["schedule"] = check_schedule(train["schedule"])
    if not isinstance(train["optim"] or {}, dict):
        raise ConfigError("train.optim must map optimizer names to settings, e.g. {G: {lr: 2.0e-4}}")
    train["optim"] = train["optim"] or {}
    threads = train["threads"]
    if threads != "auto" and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"train.threads must be auto or a positive integer, got {threads!r}")
    if not isinstance(train["batch_size"], int) or train["batch_size"] < 1:
        raise ConfigError(f"train.batch_size must be a positive integer, got {train['batch_size']!r}")
    accumulate = train["accumulate"]
    if isinstance(accumulate, bool) or not isinstance(accumulate, int) or not 1 <= accumulate <= train["batch_size"]:
        raise ConfigError(f"train.accumulate must be an integer from 1 to train.batch_size "
                          f"({train['batch_size']}), got {accumulate!r}")
    if not isinstance(train["checkpoint_activations"], bool):
        raise ConfigError(f"train.checkpoint_activations must be true or false, got {train['checkpoint_activations']!r}")
    for key in ("log_every", "sample_every", "ckpt_every"):
        if not isinstance(run[key], int) or run[key] < 0:
            raise ConfigError(f"run.{key} must be an integer >= 0 (0 = never), got {run[key]!r}")
    if not isinstance(run["keep_last"], int) or run["keep_last"] < 1:
        raise ConfigError(f"run.keep_last must be an integer >= 1, got {run['keep_last']!r}")
    if not isinstance(evaluation["metrics"] or [], list):
        raise ConfigError("eval.metrics must be a list of metric configs, e.g. [{type: fid}]")
    evaluation["metrics"] = evaluation["metrics"] or []
    split_data(cfg.get("data"))  # validates the loader keys
    cfg.update(train=train, run=run, eval=evaluation)
    return _plain(cfg)


def _plain(value):
    """Tuples to lists (recursively) so that the config dumps as YAML and loads back equal."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
