"""YAML configs as plain dicts: load, dotted overrides, validation, dump.

Sections: ``model``, ``data``, ``train``, ``eval``, ``run``. The one function that turns a file into
a complete config is :func:`ganzoo.engine.options.load_config` (it adds the trainer's, model's and dataset's
defaults); the file a run writes with :func:`dump` is that complete config and is enough to rebuild its model.
"""
import copy
import difflib
import os
import re

import yaml

from ganzoo.fileio import write_text


class ConfigError(ValueError):
    pass


SECTIONS = ("model", "data", "train", "eval", "run")

# PyYAML (YAML 1.1) reads "1e-4" as a string; this loader adds the YAML 1.2 float forms,
# on a private subclass so PyYAML's global resolvers are left alone.
class _Loader(yaml.SafeLoader):
    pass


_FLOAT = re.compile(r"""^[-+]?(
    (\d[\d_]*)?\.[\d_]*([eE][-+]?\d+)?
  | \d[\d_]*[eE][-+]?\d+
  | \.(inf|Inf|INF) | \.(nan|NaN|NAN)
)$""", re.X)
_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _first in "-+0123456789.":
    _Loader.yaml_implicit_resolvers[_first] = [
        (tag, regexp) for tag, regexp in _Loader.yaml_implicit_resolvers.get(_first, [])
        if tag != "tag:yaml.org,2002:float"]
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def parse_value(text):
    """Parse one value as YAML with the float fix ("2e-4" -> 0.0002, "[1, 2]" -> list)."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


def load_yaml(path):
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path} not found")
    with open(path) as f:
        try:
            data = yaml.load(f, Loader=_Loader)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data


def _closest(key, options):
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.4)
    return f" (did you mean {close[0]!r}?)" if close else f" (valid: {', '.join(sorted(options))})"


def set_by_path(cfg, dotted, value, allow_new=False):
    """Set ``cfg['a']['b'] = value`` for ``dotted='a.b'``; an unknown key is an error unless ``allow_new``."""
    parts = dotted.split(".")
    node = cfg
    for i, part in enumerate(parts):
        here = ".".join(parts[:i + 1])
        last = i == len(parts) - 1
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted!r}: {'.'.join(parts[:i])!r} is not a section")
        if part not in node:
            if not allow_new:
                if i == 0:  # a misspelled section: suggest the whole fixed key, not "+section..."
                    fix = difflib.get_close_matches(part, SECTIONS, n=1, cutoff=0.4)
                    hint = f" (did you mean {'.'.join([fix[0], *parts[1:]])!r}?)" if fix else \
                        f" (sections: {', '.join(SECTIONS)})"
                    raise ConfigError(f"unknown config section {part!r} in {dotted!r}{hint}")
                raise ConfigError(f"unknown config key {here!r}{_closest(part, node)}; "
                                  f"use +{dotted}=... to add a new key")
            if not last:
                node[part] = {}
        if last:
            node[part] = value
        else:
            if node[part] is None and allow_new:
                node[part] = {}
            node = node[part]


def apply_overrides(cfg, overrides):
    """Apply ``["train.lr=2e-4", "+model.new_key=1"]`` to a copy of ``cfg``."""
    cfg = copy.deepcopy(cfg)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.batch_size=8)")
        key, _, text = item.partition("=")
        allow_new = key.startswith("+")
        set_by_path(cfg, key.lstrip("+").strip(), parse_value(text), allow_new=allow_new)
    return cfg


def validate(cfg, source="config"):
    unknown = [k for k in cfg if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{source}: unknown section {unknown[0]!r}{_closest(unknown[0], SECTIONS)}")
    if not isinstance(cfg.get("model"), dict) or "type" not in cfg["model"]:
        raise ConfigError(f"{source}: needs a 'model' section with a 'type'")
    for section in SECTIONS:
        cfg.setdefault(section, {})
        if cfg[section] is None:
            cfg[section] = {}
        if not isinstance(cfg[section], dict):
            raise ConfigError(f"{source}: section {section!r} must be a mapping")
    return cfg


def deep_merge(defaults, given):
    """``given`` over ``defaults``, recursively for nested mappings (a new copy; neither is changed).

    A part section whose ``type`` differs from the default's replaces it whole: the defaults of one part
    mean nothing for another.
    """
    merged = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict) and value.get("type", base.get("type")) == base.get("type"):
            merged[key] = deep_merge(base, value)
        elif isinstance(base, dict) and isinstance(value, str) and value == base.get("type"):
            merged[key] = base  # "generator: spade_generator" keeps that part's defaults
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check_keys(given, defaults, where):
    """Raise a one-line error for a key in ``given`` that ``defaults`` does not have; return the deep merge.

    Models and datasets use this to validate their sections against their documented defaults.
    """
    given = dict(given or {})
    for key in given:
        if key not in defaults:
            raise ConfigError(f"unknown key {where}.{key}{_closest(key, defaults)}")
    return deep_merge(defaults, given)


def dumps(cfg):
    return yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None)


def dump(cfg, path):
    """Write the resolved config atomically."""
    write_text(path, dumps(cfg))
