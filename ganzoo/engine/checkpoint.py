"""Checkpoint files: atomic writes, keep-last-k, the ``latest`` pointer, RNG states, ``load_model``.

A checkpoint holds only tensors and plain Python values, so ``torch.load(path, weights_only=True)``
reads it. Layout: ``{"format", "model", "optimizers", "scalers", "ema", "rng", "progress", "config",
"world_size"}``; ``rng`` is one entry per rank.
"""
import os
import random
import re

import numpy as np
import torch

from ganzoo.fileio import atomic_path, write_text

FORMAT = 1
LATEST = "latest"
_NAME = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_name(step):
    return f"step_{step:08d}.pt"


# ---- RNG states as tensors / plain values -------------------------------------------------------

def rng_state():
    version, state, gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    out = {
        "python": [version, list(state), gauss],
        "numpy": [np_kind, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos), int(np_has_gauss),
                  float(np_gauss)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state):
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_kind, np_keys.cpu().numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        states = state["cuda"][:torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([s.cpu() for s in states])


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---- files -------------------------------------------------------------------------------------

def save(state, directory, step, keep_last=3):
    """Write ``step_XXXXXXXX.pt`` atomically, point ``latest`` at it, delete all but the last ``keep_last``.

    A crash at any point leaves the previous checkpoint and ``latest`` intact.
    """
    os.makedirs(directory, exist_ok=True)
    name = checkpoint_name(step)
    path = os.path.join(directory, name)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
    write_text(os.path.join(directory, LATEST), name + "\n")
    for old in list_checkpoints(directory)[:-keep_last]:
        if os.path.basename(old) != name:
            os.remove(old)
    return path


def list_checkpoints(directory):
    """Checkpoint paths in ``directory``, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = [(int(m.group(1)), f) for f in os.listdir(directory) if (m := _NAME.match(f))]
    return [os.path.join(directory, f) for _, f in sorted(found)]


def resolve(path):
    """A checkpoint file from a file, a ``checkpoints/`` folder or a run folder (via ``latest``)."""
    if os.path.isfile(path):
        return path
    for directory in (os.path.join(path, "checkpoints"), path):
        pointer = os.path.join(directory, LATEST)
        if os.path.isfile(pointer):
            with open(pointer) as f:
                target = os.path.join(directory, f.read().strip())
            if os.path.isfile(target):
                return target
            raise FileNotFoundError(f"{pointer} points at {target}, which does not exist")
    if os.path.isdir(path):
        raise FileNotFoundError(f"no checkpoint in {path} (expected {os.path.join(path, 'checkpoints', LATEST)})")
    raise FileNotFoundError(f"checkpoint {path} not found")


def load(path, device="cpu"):
    """Load a checkpoint (file, checkpoints folder or run folder) with ``weights_only=True``."""
    path = resolve(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file: name it in one line
        raise ValueError(f"cannot read checkpoint {path}: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a ganzoo checkpoint (format {FORMAT})")
    return state


def load_model(path, device="auto"):
    """What :func:`ganzoo.load` does: the model of a checkpoint (file, ``checkpoints/`` folder or run folder),
    built from its complete config (``model.config``), weights loaded, the EMA weights in the generator when
    the run used EMA, in eval mode on ``device`` (``auto``, ``cpu``, ``cuda:1`` …)."""
    from ganzoo.device import pick_device
    from ganzoo.engine.options import load_config
    from ganzoo.registry import MODELS

    state = load(path, device="cpu")
    cfg = load_config(state["config"], where=f"config of {path}")  # keys added since the run get defaults
    model = MODELS.build(cfg["model"])
    model.load_state_dict(state["model"])
    if state.get("ema"):
        generator = getattr(model, model.generator_name)
        generator.load_state_dict({**generator.state_dict(), **state["ema"]["shadow"]})
    model.config = cfg
    return model.to(pick_device(device)).eval()
