"""``healthy``: TensorFlow sees the GPU and nothing else is wrong (known log noise aside).

Not a detector of its own: ``tffix.graph.build_graph`` asks for it once every other finding
is known, because "healthy" means "no problem was found".
"""

from __future__ import annotations

from tffix.causes.base import Cause, Detection, Family, detection
from tffix.facts import Facts


def healthy(facts: Facts) -> Detection:
    """The ``healthy`` finding: how many GPUs TensorFlow lists, and the log noise seen."""
    noise = len(facts.log.noise)
    return detection(
        facts,
        "healthy",
        f"TensorFlow sees {len(facts.tf_gpus or ()) or 'a'} GPU"
        + ("s" if len(facts.tf_gpus or ()) > 1 else "")
        + (f"; {noise} log line(s) are known noise" if noise else ""),
        ["tensorflow.gpus"] if facts.tf_gpus else [h.evidence for h in facts.log.all("gpu-listed")],
    )


FAMILY = Family("healthy", (), (Cause("healthy", None, None),))
