"""Where pretrained weights come from: a file the user names, one already on disk, or a verified download.

Order: explicit path > ``$GANZOO_WEIGHTS/<file>`` > torch hub cache ``<hub>/checkpoints/<file>`` > fetch
into that cache from the manifest (:mod:`ganzoo.backbones.manifest`), verified before it gets its name
(:mod:`ganzoo.backbones.fetch`). ``GANZOO_OFFLINE=1`` forbids the fetch: a one-line error then names the
file, its URL and where to put it. ``weights="random"`` asks a metric network for a random init instead
(tests and speed measurements only): :func:`warn_if_random` says so loudly and results carry
:data:`NOT_COMPARABLE`.
"""
import hashlib
import os
import sys
import warnings

#: the label a result computed with random weights carries (in printed output and JSON)
NOT_COMPARABLE = "random weights: not comparable to published values"


class WeightsNotFoundError(FileNotFoundError):
    pass


def hub_checkpoint_dir():
    """``<torch hub dir>/checkpoints``, without importing torch when it is not loaded yet (then no
    ``torch.hub.set_dir`` can have moved it): ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``."""
    if "torch.hub" in sys.modules:
        return os.path.join(sys.modules["torch.hub"].get_dir(), "checkpoints")
    torch_home = os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(
        os.getenv("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")))
    return os.path.join(torch_home, "hub", "checkpoints")


def local_path(filename):
    """The path of ``filename`` under ``$GANZOO_WEIGHTS`` or in the torch hub cache, or ``None``."""
    candidates = []
    if os.environ.get("GANZOO_WEIGHTS"):
        candidates.append(os.path.join(os.path.expanduser(os.environ["GANZOO_WEIGHTS"]), filename))
    candidates.append(os.path.join(hub_checkpoint_dir(), filename))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return None


def resolve(filename, path=None, source="", progress=True):
    """Return the path of weights file ``filename``, fetching a manifest file into the cache if it is missing;
    raise a one-line error saying where to get it."""
    if path:
        path = os.path.expanduser(str(path))
        if os.path.isdir(path):
            path = os.path.join(path, filename)
        if os.path.isfile(path):
            return path
        raise WeightsNotFoundError(f"weights file {path} not found (expected {filename}"
                                   + (f", from {source}" if source else "") + ")")
    found = local_path(filename)
    if found:
        return found
    from . import manifest
    from ..download import offline
    entry = manifest.find(filename)
    dest = os.path.join(hub_checkpoint_dir(), filename)
    places = f"put it at $GANZOO_WEIGHTS/{filename} or {dest}, or pass its path explicitly"
    if entry is None or not manifest.urls(entry):
        where = (entry and entry["page"]) or source
        where = f"download it from {where} and " if where else ""
        raise WeightsNotFoundError(f"weights file {filename} not found: {where}{places}")
    if offline():
        if entry["sources"]:
            how = (f"download {', '.join(manifest.urls(entry))}, convert them with tools/convert_{entry['convert']}"
                   f".py -o {os.path.basename(filename)}")
        else:
            how = f"download {entry['url']}"
        raise WeightsNotFoundError(f"weights file {filename} not found and fetching is off (GANZOO_OFFLINE=1 or "
                                   f"--offline): {how} (or run ganzoo-fetch {entry['name']} on a connected machine) "
                                   f"and {places}")
    from .fetch import fetch
    return fetch(entry, dest, progress=progress)


class RandomWeightsWarning(UserWarning):
    pass


def warn_if_random(weights, what):
    """True, with a loud warning, when ``weights`` is ``"random"`` (a random network named ``what``)."""
    if not (isinstance(weights, str) and weights == "random"):
        return False
    warnings.warn(f"{what} has RANDOM weights: its values are NOT comparable to published ones (tests and "
                  "speed measurements only)", RandomWeightsWarning, stacklevel=3)
    return True


def file_digest(path):
    """sha256 (hex) of a weights file's bytes: what caches are keyed by, so that other weights saved under the
    same name (size, mtime) never read back the statistics of these."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
