"""Which plan steps need which: the edges of a plan, derived from what the steps do.

Pure. ``with_needs`` fills ``PlanStep.needs`` (1-based numbers in the same plan); the planner
calls it once on the finished plan. The transaction and the prompt then work from the edges:
``groups`` are the steps that need each other (applied and judged as one change), and
``closure`` is what accepting a step brings along.

The rules, each about what a step changes, never about one scenario:

- **replacing a distribution**: an uninstall and a later install are one change when the
  install puts back a distribution of the same name, or when both are TensorFlow
  distributions (they all write the one ``tensorflow/`` folder: removing one deletes files the
  other owns, and removing without installing leaves no TensorFlow), or when they fix the same
  finding. They need each other.
- **one search path**: several folders put first on the same variable for the same finding
  are one change (eleven ``nvidia/*/lib`` folders for one ``cuda-libs-not-found``); so are
  several folders taken off it for the same finding (two folders that each hold a stale cuDNN
  ahead of the wheel's: taking off one only lets the loader find the other).
- **a folder a wheel creates**: putting a folder under ``site-packages/nvidia/`` on a search
  path needs the earlier install of the wheels that create it.
- **a folder a wheel replaces**: taking a folder off ``LD_LIBRARY_PATH`` and installing CUDA
  wheels are one change: without the wheels nothing is left to load, and with the folder
  still first the wheels are never loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from tffix.model import PlanStep, StepKind
from tffix.pkgname import canonicalize_name

TENSORFLOW_DISTRIBUTIONS = frozenset(
    {
        "tensorflow",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "tensorflow-intel",
        "tensorflow-cpu-aws",
        "tensorflow-macos",
        "intel-tensorflow",
        "tf-nightly",
        "tf-nightly-cpu",
        "tf-nightly-gpu",
    }
)
"""Distributions that install the ``tensorflow/`` package folder."""


def _name(text: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement  # imports packaging.tags

    try:
        return str(canonicalize_name(Requirement(text).name))
    except InvalidRequirement:
        return str(canonicalize_name(text))


def _names(texts: Iterable[str]) -> set[str]:
    return {_name(t) for t in texts}


def _installs_wheel_folders(step: PlanStep) -> bool:
    names = _names(step.requirements)
    if any(n.startswith("nvidia-") for n in names):
        return True
    return any("[" in r and _names([r]) & TENSORFLOW_DISTRIBUTIONS for r in step.requirements)


def _replaces(removal: PlanStep, install: PlanStep) -> bool:
    removed, installed = _names(removal.packages), _names(install.requirements)
    if removed & installed:
        return True
    if removed & TENSORFLOW_DISTRIBUTIONS and installed & TENSORFLOW_DISTRIBUTIONS:
        return True
    return bool(set(removal.resolves) & set(install.resolves))


_PATH_EDITS = (StepKind.ENV_PATH_PREPEND, StepKind.ENV_PATH_REMOVE)


def _one_path(a: PlanStep, b: PlanStep) -> bool:
    return (
        a.kind is b.kind
        and a.kind in _PATH_EDITS
        and a.variable == b.variable
        and bool(set(a.resolves) & set(b.resolves))
    )


def _under_wheels(step: PlanStep) -> bool:
    entry = (step.entry or "").replace("\\", "/")
    return step.kind is StepKind.ENV_PATH_PREPEND and "/site-packages/nvidia/" in entry


def _off_library_path(step: PlanStep) -> bool:
    return step.kind is StepKind.ENV_PATH_REMOVE and step.variable == "LD_LIBRARY_PATH"


def _needs_pair(earlier: PlanStep, later: PlanStep) -> tuple[bool, bool]:
    """(later needs earlier, earlier needs later) for two steps in plan order."""
    if earlier.kind is StepKind.PIP_UNINSTALL and later.kind is StepKind.PIP_INSTALL:
        both = _replaces(earlier, later)
        return both, both
    if _one_path(earlier, later):
        return True, True
    if earlier.kind is StepKind.PIP_INSTALL and _under_wheels(later):
        return _installs_wheel_folders(earlier), False
    if earlier.kind is StepKind.PIP_INSTALL and _off_library_path(later):
        both = _installs_wheel_folders(earlier)
        return both, both
    return False, False


def edges(plan: Sequence[PlanStep]) -> dict[int, tuple[int, ...]]:
    """Step number -> the numbers of the steps it needs (1-based, in plan order)."""
    out: dict[int, list[int]] = {n: [] for n in range(1, len(plan) + 1)}
    for i, earlier in enumerate(plan, start=1):
        if earlier.kind is StepKind.MANUAL:
            continue
        for j in range(i + 1, len(plan) + 1):
            later_needs, earlier_needs = _needs_pair(earlier, plan[j - 1])
            if later_needs:
                out[j].append(i)
            if earlier_needs:
                out[i].append(j)
    return {n: tuple(sorted(v)) for n, v in out.items()}


def with_needs(plan: Sequence[PlanStep]) -> tuple[PlanStep, ...]:
    """*plan* with every step's ``needs`` filled in from :func:`edges`."""
    found = edges(plan)
    return tuple(replace(step, needs=found[n]) for n, step in enumerate(plan, start=1))


def needs_of(plan: Sequence[PlanStep]) -> dict[int, tuple[int, ...]]:
    """The edges a plan carries (``PlanStep.needs``), numbers outside the plan dropped."""
    size = len(plan)
    return {
        n: tuple(m for m in step.needs if 1 <= m <= size and m != n)
        for n, step in enumerate(plan, start=1)
    }


def closure(needs: Mapping[int, Sequence[int]], numbers: Iterable[int]) -> tuple[int, ...]:
    """*numbers* and every step they need, directly or not, in order."""
    todo = list(numbers)
    seen: set[int] = set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(needs.get(n, ()))
    return tuple(sorted(seen))


def groups(needs: Mapping[int, Sequence[int]], numbers: Sequence[int]) -> list[tuple[int, ...]]:
    """*numbers* split into groups of steps that need each other (both ways), in plan order.

    A group is the steps of a strongly connected part of the graph: each needs the others, so
    they are applied together and judged together. The groups come in the order of their first
    step.
    """
    members = set(numbers)
    reach = {n: set(closure(needs, [n])) & members for n in members}
    out: list[tuple[int, ...]] = []
    placed: set[int] = set()
    for n in sorted(members):
        if n in placed:
            continue
        group = tuple(sorted(m for m in reach[n] if n in reach[m]))
        placed.update(group)
        out.append(group)
    return out
