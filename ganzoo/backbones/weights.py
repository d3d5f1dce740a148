"""Where pretrained weights come from: never a download, always a file the user put somewhere.

Order: explicit path > ``$GANZOO_WEIGHTS/<file>`` > torch hub cache ``<hub>/checkpoints/<file>``.
"""
import os


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
