"""The trainer's config keys (``train``, ``run``, ``eval`` and the loader keys of ``data``) and their defaults.

docs/training.md documents every key; :func:`resolve` validates a whole config against these.
"""
import copy

from ganzoo.config import ConfigError, check_keys

TRAIN = {
    "steps": None,            # iterations per stage (a model's stage may set its own)
    "epochs": None,           # used when steps is null: epochs * batches per epoch
    "batch_size": 1,          # per process
    "precision": "fp32",      # fp32 | bf16 | fp16
    "channels_last": False,
    "compile": False,
    "ema": None,              # {decay: 0.999, start: 0}
    "schedule": None,         # {type: none|step|multistep|linear_decay, ...}
    "optim": {},              # per optimizer name: overrides of the model's param_groups() spec
    "grad_clip": None,        # max global grad norm per optimizer, null = off
    "sync_bn": False,
    "find_unused_parameters": False,
}
RUN = {
    "dir": None,
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
EMA = {"decay": 0.999, "start": 0}
SCHEDULES = {
    "none": {},
    "step": {"step_size": None, "gamma": 0.1},
    "multistep": {"milestones": [], "gamma": 0.1},
    "linear_decay": {"start": 0},
}
SCHEDULE_COMMON = {"type": "none", "unit": "step"}


def with_defaults(cfg):
    """The trainer's defaults under what ``cfg`` gives, so ``train.precision=bf16`` overrides need no ``+``."""
    cfg = dict(cfg)
    for section, defaults in (("train", TRAIN), ("run", RUN), ("eval", EVAL), ("data", LOADER)):
        given = cfg.get(section) or {}
        if isinstance(given, dict):
            cfg[section] = {**copy.deepcopy(defaults), **given}
    return cfg


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
    if not isinstance(train["batch_size"], int) or train["batch_size"] < 1:
        raise ConfigError(f"train.batch_size must be a positive integer, got {train['batch_size']!r}")
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
    return cfg
