"""ganzoo: SinGAN, SPADE and Semantic Pyramid in one library.

``import ganzoo`` is light: parts register when a registry is first searched.
"""
__version__ = "0.1.0"

from ganzoo.registry import (  # noqa: F401
    BACKBONES, DATASETS, DISCRIMINATORS, ENCODERS, GENERATORS, LOSSES, METRICS, MODELS, NORMS,
)


def load(path, device="auto"):
    """The one way to load a trained model: ``ganzoo.load("runs/singan_quick")`` (a run directory, its
    ``checkpoints/`` folder or a checkpoint file) -> the model in eval mode on ``device``, built from the
    run's complete config (``model.config``), with the EMA generator weights when the run used EMA."""
    from ganzoo.engine import checkpoint
    return checkpoint.load_model(path, device)
