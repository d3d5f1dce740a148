"""Registries: name -> class/factory, built from config dicts.

Parts register themselves with a decorator::

    @GENERATORS.register("spade_generator")
    class SPADEGenerator(nn.Module): ...

and are built from a dict with a ``type`` key: ``GENERATORS.build({"type": "spade_generator", "ngf": 32})``.
A type may also be ``"package.module:Class"`` so research code can plug in its own parts.
"""
import difflib
import importlib
import pkgutil

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
        if callable(key):
            return key
        if not isinstance(key, str):
            raise TypeError(f"{self.name} type must be a string, got {type(key).__name__}: {key!r}")
        if ":" in key:
            module_name, _, attr = key.partition(":")
            try:
                return getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as err:
                raise KeyError(f"cannot import {self.name} type {key!r}: {err}") from None
        if key not in self._entries:
            import_all()
        if key not in self._entries:
            close = difflib.get_close_matches(key, self._entries, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise KeyError(f"unknown {self.name} type {key!r}; {hint}known: {', '.join(sorted(self._entries))}")
        return self._entries[key]

    def build(self, cfg, **extra):
        """Build from ``"name"``, ``{"type": name, **kwargs}`` or a callable; ``extra`` are added kwargs."""
        if cfg is None:
            return None
        if callable(cfg):
            return cfg(**extra)
        cfg = {"type": cfg} if isinstance(cfg, str) else dict(cfg)
        if "type" not in cfg:
            raise KeyError(f"{self.name} config needs a 'type' key, got keys {sorted(cfg)}")
        factory = self.get(cfg.pop("type"))
        try:
            return factory(**cfg, **extra)
        except TypeError as err:
            if "argument" in str(err) and ("unexpected" in str(err) or "missing" in str(err)):
                raise TypeError(f"{self.name} {getattr(factory, '__name__', factory)}: {err}") from None
            raise

    def names(self):
        import_all()
        return sorted(self._entries)

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
            doc = (self._entries[key].__doc__ or "").strip().splitlines()
            lines.append(f"  {key:28s} {doc[0] if doc else ''}")
        return "\n".join(lines)


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
    """Every registry with its entries and the first line of each entry's docstring."""
    return "\n\n".join(registry.describe() for registry in ALL)
