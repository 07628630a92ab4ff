"""``python -m tffix``."""

from __future__ import annotations

from tffix.cli import main

raise SystemExit(main())
