"""``python -m tffix``."""

from __future__ import annotations

try:
    from tffix.cli import main
except KeyboardInterrupt:  # a Ctrl-C while the command line's own modules load
    import sys

    print("tffix: interrupted", file=sys.stderr)
    exec("")  # clears CPython's "unhandled Ctrl-C" note: see tffix.cli._interrupted
    raise SystemExit(130) from None

raise SystemExit(main())
