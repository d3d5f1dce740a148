"""Train/eval mode of a module tree, entered for a block and restored after it."""
import contextlib


@contextlib.contextmanager
def eval_mode(module):
    """``module.eval()`` inside the block; every submodule's own train/eval flag restored afterwards
    (frozen backbones that always stay in eval mode keep it)."""
    flags = {child: child.training for child in module.modules()}
    module.eval()
    try:
        yield module
    finally:
        for child, flag in flags.items():
            child.training = flag
