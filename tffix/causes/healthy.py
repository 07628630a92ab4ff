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


def only_noise(facts: Facts) -> Detection | None:
    """``healthy`` (info) for a log whose every line of concern is known noise.

    Asked for by ``tffix.graph.build_graph`` when nothing else was found and whether TensorFlow
    lists a GPU is not shown: the lines a user worries about ("Unable to register cuDNN
    factory", "Could not find TensorRT") are named as harmless instead of passed over. No
    finding when the log holds no known noise (there is nothing to say about it).
    """
    noise = facts.log.noise
    if not noise or facts.gpu_visible is not None:
        return None
    return detection(
        facts,
        "healthy",
        f"{len(noise)} log line(s) are known noise and nothing in the log keeps TensorFlow "
        "from the GPU (whether TensorFlow lists one is not shown)",
        [f"log[{i}]" for i in noise],
    )


FAMILY = Family("healthy", (), (Cause("healthy", None, None),))
