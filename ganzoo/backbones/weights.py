"""Where pretrained weights come from: never a download, always a file the user put somewhere.

Order: explicit path > ``$GANZOO_WEIGHTS/<file>`` > torch hub cache ``<hub>/checkpoints/<file>``.
``weights="random"`` asks a metric network for a random init instead (tests and speed measurements only):
:func:`warn_if_random` says so loudly and results carry :data:`NOT_COMPARABLE`.
"""
import hashlib
import os
import warnings

#: the label a result computed with random weights carries (in printed output and JSON)
NOT_COMPARABLE = "random weights: not comparable to published values"


class WeightsNotFoundError(FileNotFoundError):
    pass


def hub_checkpoint_dir():
    import torch.hub
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def resolve(filename, path=None, source=""):
    """Return the path of weights file ``filename``; raise a one-line error saying where to get it."""
    if path:
        path = os.path.expanduser(str(path))
        if os.path.isdir(path):
            path = os.path.join(path, filename)
        if os.path.isfile(path):
            return path
        raise WeightsNotFoundError(f"weights file {path} not found (expected {filename}"
                                   + (f", from {source}" if source else "") + ")")
    candidates = []
    if os.environ.get("GANZOO_WEIGHTS"):
        candidates.append(os.path.join(os.path.expanduser(os.environ["GANZOO_WEIGHTS"]), filename))
    candidates.append(os.path.join(hub_checkpoint_dir(), filename))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    where = f"download it from {source} and " if source else ""
    raise WeightsNotFoundError(f"weights file {filename} not found: {where}put it in $GANZOO_WEIGHTS "
                               f"or {hub_checkpoint_dir()}, or pass its path explicitly")


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
