"""Atomic file writes: a crash leaves the previous file (or none), never half of one."""
import contextlib
import json
import os


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary name beside ``path`` to write to; it replaces ``path`` when the block ends.

    ``suffix`` keeps an extension for writers that choose the format by it (``np.savez``, PIL, matplotlib).
    The folder is created; on an error the temporary file is removed and ``path`` is untouched.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def write_json(path, data):
    write_text(path, json.dumps(data, indent=1) + "\n")
