"""What a sweep is: a base config, its settings and where and how they run, from a sweep YAML and/or the
command line (same names; the command line wins).

    config: configs/singan_quick.yaml
    grid: {model.num_layers: [4, 5, 6], model.scale_factor: [0.5, 0.75]}
    set: {model.steps_per_scale: 200, eval.metrics: [{type: swd}, {type: diversity}]}
    out: sweeps/singan
    workers: 2
"""
import os

import yaml

from ganzoo.config import ConfigError, _closest, load_yaml
from ganzoo.sweep import grid

EXECUTORS = ("local", "torchrun", "submitit")

DEFAULTS = {
    "config": None,       # the base config every run starts from
    "grid": {},           # key -> list of values (every combination, or position by position with zip);
                          # a list of such grids runs each in turn (one-factor-at-a-time studies)
    "zip": False,
    "repeat_seeds": 1,    # each setting with run.seed = 0..N-1
    "set": {},            # key -> value for every run
    "images": None,       # a folder or a file list: one run per image (data.image), e.g. one SinGAN each
    "out": None,          # the sweep directory
    "executor": "local",  # local | torchrun | submitit
    "workers": 1,         # local: runs at a time
    "threads": None,      # per run; default cores // runs at a time on one machine
    "slurm": {},          # submitit executor parameters (cluster, timeout_min, slurm_partition, gpus_per_node ...)
}


def load(path):
    """The spec of a sweep YAML (it names its base ``config``), or None for a training config (it has a
    ``model`` section instead)."""
    data = load_yaml(path)
    if "config" not in data or "model" in data:
        return None
    for key in data:
        if key not in DEFAULTS:
            raise ConfigError(f"{path}: unknown sweep key {key!r}{_closest(key, DEFAULTS)}")
    spec = {**DEFAULTS, **data}
    if spec["config"] and not os.path.isabs(spec["config"]) and not os.path.exists(spec["config"]):
        beside = os.path.join(os.path.dirname(path), spec["config"])  # relative to the sweep file
        spec["config"] = beside if os.path.exists(beside) else spec["config"]
    return spec


def check(spec):
    """The spec with its values checked (one-line errors) and ``grid``/``set`` normalised."""
    if not spec["config"]:
        raise ConfigError("a sweep needs a base config (CONFIG, or `config:` in the sweep file)")
    if not spec["out"]:
        raise ConfigError("a sweep needs an output directory (--out, or `out:` in the sweep file)")
    if spec["executor"] not in EXECUTORS:
        raise ConfigError(f"unknown executor {spec['executor']!r}{_closest(spec['executor'], EXECUTORS)}")
    grids = spec["grid"] if isinstance(spec["grid"], list) else [spec["grid"]]
    for one in grids:
        if not isinstance(one, dict):
            raise ConfigError(f"grid must be a mapping key -> [values] or a list of them, got {one!r}")
        for key, values in one.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"grid.{key} must be a non-empty list of values, got {values!r}")
    spec["grid"] = [one for one in grids if one]
    if not spec["grid"] and not spec["images"]:
        raise ConfigError("nothing to sweep: give --grid KEY=V1,V2 … and/or --images DIR")
    for key in ("repeat_seeds", "workers"):
        if not isinstance(spec[key], int) or spec[key] < 1:
            raise ConfigError(f"{key} must be an integer >= 1, got {spec[key]!r}")
    return spec


def as_text(value):
    """A value as override text the config parser reads back unchanged (lists and mappings in flow style)."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10 ** 6).strip().removesuffix("\n...").strip()


def image_list(images):
    """The image files of a folder (sorted) or of a text file list (one path per line, relative to it)."""
    from ganzoo.metrics.images import list_images
    if os.path.isdir(images):
        files = list_images(images)
    elif os.path.isfile(images):
        with open(images) as f:
            base = os.path.dirname(images)
            files = [os.path.join(base, line.strip()) for line in f if line.strip() and not line.startswith("#")]
        missing = [p for p in files if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"{images}: listed image {missing[0]} not found ({len(missing)} missing)")
    else:
        raise FileNotFoundError(f"images {images} not found (a folder of images or a text file listing them)")
    if not files:
        raise ConfigError(f"images {images}: no image files")
    return files


def swept_keys(spec):
    return list(dict.fromkeys(key for one in spec["grid"] for key in one))


def settings(spec):
    """``{run name: [key=value overrides]}`` in order: shared ``set`` first, then image, then the setting."""
    return {name: base + combo for name, base, combo in _expanded(spec)}


def swept_values(spec):
    """``{run name: {swept key: value}}``: what each setting itself sets (not the shared ``set``)."""
    from ganzoo.config import parse_value
    return {name: {k: parse_value(v) for k, _, v in (o.partition("=") for o in combo)}
            for name, _, combo in _expanded(spec)}


def _expanded(spec):
    """``[(run name, shared + image overrides, the setting's own overrides)]``."""
    shared = [f"{key}={as_text(value)}" for key, value in spec["set"].items()]
    combos = []
    for one in spec["grid"] or [{}]:
        pairs = [(key, [as_text(v) for v in values]) for key, values in one.items()]
        combos += [c for c in grid.expand(pairs, spec["zip"] and bool(pairs), spec["repeat_seeds"])
                   if c not in combos]
    per_image = [(None, [])]
    if spec["images"]:
        files = image_list(spec["images"])
        stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
        if len(set(stems)) < len(stems):
            raise ConfigError(f"images {spec['images']}: two images share a file stem (run names come from stems)")
        per_image = [(stem, [f"data.image={os.path.abspath(f)}"]) for stem, f in zip(stems, files)]
    return [("_".join(filter(None, [stem, grid.run_name(combo) if combo else None])), shared + image, combo)
            for stem, image in per_image for combo in combos]
