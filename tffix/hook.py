"""The import hook: settings that reach every process of an interpreter, activated or not.

Environment fixes in ``activate`` reach activated shells only; a Jupyter kernel, an IDE's run
configuration, cron or ``venv/bin/python train.py`` never source it. What TensorFlow reads
*after* ``import tensorflow`` starts can still be set from inside the process, just in time:

* ``CUDA_VISIBLE_DEVICES`` is read by the CUDA driver at ``cuInit``, and ``XLA_FLAGS`` /
  ``TF_*`` when XLA or the runtime initialise — both after the import begins;
* loader paths cannot be changed in a running process (``LD_LIBRARY_PATH`` is read once, at
  start-up), but a library already loaded by full path is what a later ``dlopen`` of its
  soname returns, so the wheel's libraries are *preloaded* by full path (as torch does for
  its nvidia wheels) before TensorFlow's own ``dlopen``.

The hook is two files in site-packages: ``tffix-hook.pth``, one line that puts a meta-path
finder first (it compares each imported name with ``tensorflow`` and does nothing else), and
``_tffix_hook.py``, the settings, imported by that finder only when ``tensorflow`` is first
imported; it then removes the finder and applies them. A process that never imports
TensorFlow pays for compiling one line at start-up (see ``benchmarks/hook_cost.py``).

This module is pure: it renders the files' text; ``tffix.effects`` writes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

MODULE_NAME = "_tffix_hook.py"
PTH_NAME = "tffix-hook.pth"
PTH_TEXT = (
    "import sys;sys.meta_path.insert(0,type('_TffixHook',(),{'find_spec':staticmethod("
    "lambda n,*a:n.partition('.')[0]=='tensorflow'and __import__('_tffix_hook').apply()"
    "or None)}))\n"
)
"""One line, compiled at every start-up: a finder that does nothing but compare a name until
TensorFlow is imported; the settings module is imported only then."""
MARKER = "# written by tffix: `tffix undo` removes it"

_TEMPLATE = '''\
{marker}
"""Applies tffix's settings when TensorFlow is first imported in this interpreter."""
import sys

SET = {set_}
UNSET = {unset}
PRELOAD = {preload}


def apply():
    sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__name__", "") != "_TffixHook"]
    import os

    for key in UNSET:
        os.environ.pop(key, None)
    os.environ.update(SET)
    if PRELOAD:
        import ctypes

        for lib in PRELOAD:
            try:
                ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                sys.stderr.write("tffix hook: cannot preload %s: %s\\n" % (lib, exc))
    return None
'''


def render_module(
    *,
    set_vars: Mapping[str, str] | None = None,
    unset_vars: Sequence[str] = (),
    preload: Sequence[str] = (),
) -> str:
    """The text of ``_tffix_hook.py`` for these settings (values as JSON literals, never code)."""
    for name in [*(set_vars or {}), *unset_vars]:
        if not name.isidentifier():
            raise ValueError(f"not a variable name: {name!r}")
    return _TEMPLATE.format(
        marker=MARKER,
        set_=json.dumps(dict(set_vars or {}), sort_keys=True),
        unset=json.dumps(sorted(unset_vars)),
        preload=json.dumps(list(preload)),
    )


def is_ours(text: str) -> bool:
    """Whether a ``_tffix_hook.py`` found in site-packages was written by tffix."""
    return text.startswith(MARKER)
