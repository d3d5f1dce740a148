"""Registries: name -> class/factory, built from config dicts.

Parts register themselves with a decorator::

    @GENERATORS.register("spade_generator")
    class SPADEGenerator(nn.Module): ...

and are built from a dict with a ``type`` key: ``GENERATORS.build({"type": "spade_generator", "ngf": 32})``.
A type may also be ``"package.module:Class"`` so research code can plug in its own parts. A model
fills the values it owns into its parts with ``build(cfg, owned={...}, where="model.generator")``;
mistakes in a part's config are one-line :class:`ganzoo.config.ConfigError` s.
"""
import difflib
import fnmatch
import importlib
import inspect
import pkgutil
import re

from ganzoo.config import ConfigError

# Sub-packages whose modules register parts; imported on first lookup, not at ``import ganzoo``.
_PART_PACKAGES = ("layers", "losses", "nets", "backbones", "data", "models", "metrics")
_loaded = False


def import_all():
    """Import every module of the part packages so that all registrations have happened."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package_name in _PART_PACKAGES:
        package = importlib.import_module(f"ganzoo.{package_name}")
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                importlib.import_module(info.name)


class Registry:
    def __init__(self, name):
        self.name = name
        self._entries = {}

    def register(self, name=None):
        """Decorator registering a class or factory under ``name`` (default: its ``__name__``)."""
        def decorate(obj):
            key = name or obj.__name__
            if key in self._entries and self._entries[key] is not obj:
                raise KeyError(f"{key!r} is already registered in {self.name}")
            self._entries[key] = obj
            return obj
        return decorate

    def get(self, key):
        """The class or factory registered as ``key`` (or ``"package.module:Class"``); a user's unknown name is
        a one-line :class:`ConfigError` with the closest names."""
        if callable(key):
            return key
        if not isinstance(key, str):
            raise ConfigError(f"{self.name} type must be a string, got {type(key).__name__}: {key!r}")
        if ":" in key:
            module_name, _, attr = key.partition(":")
            try:
                return getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as err:
                raise ConfigError(f"cannot import {self.name} type {key!r}: {err}") from None
        if key not in self._entries:
            import_all()
        if key not in self._entries:
            close = difflib.get_close_matches(key, self._entries, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise ConfigError(f"unknown {self.name} type {key!r}; {hint}known: {', '.join(sorted(self._entries))}")
        return self._entries[key]

    def fill(self, cfg, owned=None, where=None, sources=None):
        """The part config ``cfg`` (a name or a dict with a ``type``) as a new dict with ``owned`` filled in.

        ``owned``: constructor kwargs whose values the caller (a model) owns. The part's own config may
        repeat one only with the same value; a different value is a one-line :class:`ConfigError` naming
        both keys, e.g. ``model.generator.nfc=64 conflicts with model.nfc=32``. ``where`` is the part's
        config path (default: the registry's name); an owned value comes from the key of the same name one
        level up (``model.nfc`` for ``model.generator``) unless ``sources`` says where it comes from
        (``{"label_nc": "model.label_nc + contain_dontcare_label"}`` gives ``... conflicts with 151 from
        model.label_nc + contain_dontcare_label``). The type is looked up and the keys
        checked against its constructor here, so a model can validate its parts before it builds them.
        """
        return self._filled(cfg, owned, where, sources, complete=False)

    def _filled(self, cfg, owned, where, sources, complete):
        """:meth:`fill`; with ``complete`` the required constructor kwargs must be there too (for :meth:`build`)."""
        where = where or self.name
        cfg = {"type": cfg} if isinstance(cfg, str) else dict(cfg)
        if "type" not in cfg:
            raise ConfigError(f"{where} needs a 'type' key, got keys {sorted(cfg)}")
        parent = where.rpartition(".")[0]
        for key, value in (owned or {}).items():
            if key in cfg and cfg[key] != value:
                if key in (sources or {}):
                    source = f"{value!r} from {sources[key]}"
                else:
                    source = f"{parent}.{key}={value!r}" if parent else f"the caller's {key}={value!r}"
                raise ConfigError(f"{where}.{key}={cfg[key]!r} conflicts with {source}")
        cfg.update(owned or {})
        kwargs = {key: value for key, value in cfg.items() if key != "type"}
        _check_signature(self.get(cfg["type"]), kwargs, f"{where} ({cfg['type']})", complete)
        return cfg

    def build(self, cfg, owned=None, where=None, sources=None):
        """Build from ``"name"``, ``{"type": name, **kwargs}`` or a callable, ``owned`` filled in as :meth:`fill`
        does. An unknown type, a missing ``type`` and kwargs the constructor does not take (or needs and
        does not get) are one-line ConfigErrors; an error raised inside the constructor is not caught."""
        if cfg is None:
            return None
        if callable(cfg):
            return cfg(**(owned or {}))
        kwargs = self._filled(cfg, owned, where, sources, complete=True)
        return self.get(kwargs.pop("type"))(**kwargs)

    def names(self, filter=None):
        """Registered names, sorted; ``filter`` is a shell pattern such as ``"singan_*"``."""
        import_all()
        return sorted(key for key in self._entries if filter is None or fnmatch.fnmatchcase(key, filter))

    def __contains__(self, key):
        import_all()
        return key in self._entries

    def __iter__(self):
        return iter(self.names())

    def __len__(self):
        return len(self.names())

    def describe(self):
        lines = [f"{self.name}:"]
        for key in self.names():
            lines.append(f"  {key:28s} {first_sentence(self._entries[key].__doc__)}")
        return "\n".join(lines)


def first_sentence(doc):
    """The first sentence of a docstring on one line: its first paragraph up to the first full stop (not the
    one of "e.g." or "i.e.")."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    end = re.search(r"(?<!\be\.g)(?<!\bi\.e)\.(?=\s|$)", paragraph)
    return paragraph[:end.end()] if end else paragraph


def _check_signature(factory, kwargs, label, complete):
    """A kwarg the constructor does not take (or, when ``complete``, a required one not given) is a user error."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no introspectable signature (some builtins): the call decides
        return
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = [key for key in kwargs if key not in named]
        if unknown:
            close = difflib.get_close_matches(unknown[0], named, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else f"options: {', '.join(named) or 'none'}"
            raise ConfigError(f"{label} has no option {unknown[0]!r} ({hint})")
    missing = [n for n in named if params[n].default is params[n].empty and n not in kwargs]
    if complete and missing:
        raise ConfigError(f"{label} needs {', '.join(map(repr, missing))}")


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
ENCODERS = Registry("encoder")
NORMS = Registry("norm")
LOSSES = Registry("loss")
MODELS = Registry("model")
DATASETS = Registry("dataset")
BACKBONES = Registry("backbone")
METRICS = Registry("metric")
ALL = (GENERATORS, DISCRIMINATORS, ENCODERS, NORMS, LOSSES, MODELS, DATASETS, BACKBONES, METRICS)


def describe():
    """Every registry with its entries and the first sentence of each entry's docstring."""
    return "\n\n".join(registry.describe() for registry in ALL)
