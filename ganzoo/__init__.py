"""ganzoo: SinGAN, SPADE and Semantic Pyramid in one library.

``import ganzoo`` is light: parts register when a registry is first searched.
"""
__version__ = "0.1.0"

from ganzoo.registry import (  # noqa: F401
    BACKBONES, DATASETS, DISCRIMINATORS, ENCODERS, GENERATORS, LOSSES, METRICS, MODELS, NORMS,
)
