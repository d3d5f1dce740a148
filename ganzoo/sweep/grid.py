"""Settings of a sweep: ``key=v1,v2`` grids (product or ``zip``), repeated over seeds, named by their overrides."""
import itertools
import re

from ganzoo.config import ConfigError


def parse_grid(items):
    """``["model.num_layers=4,5"]`` -> ``[("model.num_layers", ["4", "5"])]`` (values stay YAML text)."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise ConfigError(f"grid entry {item!r} is not key=v1,v2,...")
        grid.append((key, values.split(",")))
    return grid


def expand(grid, zip_keys=False, repeat_seeds=1):
    """One list of ``key=value`` overrides per setting."""
    keys = [key for key, _ in grid]
    lists = [values for _, values in grid]
    if zip_keys:
        if len({len(v) for v in lists}) > 1:
            raise ConfigError("--zip needs the same number of values for every key: "
                              + ", ".join(f"{k} has {len(v)}" for k, v in grid))
        combos = list(zip(*lists))
    else:
        combos = list(itertools.product(*lists))
    settings = []
    for combo in combos:
        for seed in range(repeat_seeds):
            overrides = [f"{k}={v}" for k, v in zip(keys, combo)]
            if repeat_seeds > 1:
                overrides.append(f"run.seed={seed}")
            settings.append(overrides)
    return settings


def run_name(overrides):
    """A directory name that says the setting: ``num_layers=4_scale_factor=0.5`` (last key part only)."""
    parts = [f"{key.split('.')[-1]}={value}" for key, _, value in (o.partition("=") for o in overrides)]
    return re.sub(r"[^A-Za-z0-9=._-]+", "-", "_".join(parts)) or "base"
