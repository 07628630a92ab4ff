"""pytest fixtures of the simulated GPU machine (see fixtures/README.md)."""

from __future__ import annotations
