"""Causes in the user's own code: found by ``tffix.scan`` in the project's files, not in a
snapshot, and fixed by the edit each finding prints (tffix never edits user code).

Their data is in ``rules/code.toml`` with the scan's patterns; the scan also reports the
shared ``cuda-visible-devices-masked`` (``tffix.causes.devices``) at a code location.
"""

from __future__ import annotations

from tffix.causes.base import Cause, Family

FAMILY = Family(
    "code",
    (),
    (
        Cause("code-hides-gpus", None, None),
        Cause("code-pins-cpu", None, None),
        Cause("code-gpu-index-out-of-range", None, None),
        Cause("code-cuda-device-order", None, None),
        Cause("code-keras-backend-not-tensorflow", None, None),
        Cause("code-ld-library-path-too-late", None, None),
        Cause("code-tf-log-silenced", None, None),
        Cause("code-shell-export-no-effect", None, None),
        Cause("code-ray-no-gpus", None, None),
        Cause("code-tensorflow-gpu-requirement", None, None),
        Cause("code-docker-image-without-cuda", None, None),
        Cause("code-compose-no-gpu-reservation", None, None),
    ),
)
