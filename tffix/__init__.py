"""tffix: find out why TensorFlow does not use the GPU, and repair it."""

from __future__ import annotations

__version__ = "0.1.0"
