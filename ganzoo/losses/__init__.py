"""Registered losses; see gan.py, image.py, perceptual.py."""
from ganzoo.losses.gan import gradient_penalty  # noqa: F401
