"""The edges of a plan: which steps need which, groups, and what accepting a step brings."""

from __future__ import annotations

import itertools

import pytest

from tffix import stepdeps
from tffix.model import PlanStep, Safety, StepKind

SITE = "/v/lib/python3.11/site-packages"


def uninstall(*packages: str, resolves: tuple[str, ...] = ("a",)) -> PlanStep:
    return PlanStep(StepKind.PIP_UNINSTALL, "rm", Safety.SAFE, resolves, packages=packages)


def install(*reqs: str, resolves: tuple[str, ...] = ("b",)) -> PlanStep:
    return PlanStep(StepKind.PIP_INSTALL, "add", Safety.SAFE, resolves, requirements=reqs)


def prepend(entry: str, resolves: tuple[str, ...] = ("c",)) -> PlanStep:
    return PlanStep(
        StepKind.ENV_PATH_PREPEND,
        "first",
        Safety.SAFE,
        resolves,
        variable="LD_LIBRARY_PATH",
        entry=entry,
    )


def remove(entry: str, resolves: tuple[str, ...] = ("d",)) -> PlanStep:
    return PlanStep(
        StepKind.ENV_PATH_REMOVE,
        "off",
        Safety.SAFE,
        resolves,
        variable="LD_LIBRARY_PATH",
        entry=entry,
    )


def unset(resolves: tuple[str, ...] = ("e",)) -> PlanStep:
    return PlanStep(
        StepKind.ENV_UNSET, "unset", Safety.SAFE, resolves, variable="CUDA_VISIBLE_DEVICES"
    )


@pytest.mark.parametrize(
    ("plan", "edges"),
    [
        # two TensorFlow distributions share tensorflow/: a swap is one change
        (
            (uninstall("tensorflow-cpu"), install("tensorflow[and-cuda]==2.18.1")),
            {1: (2,), 2: (1,)},
        ),
        ((uninstall("tf-nightly"), install("tensorflow==2.18.1")), {1: (2,), 2: (1,)}),
        # putting back the same distribution at another version
        (
            (uninstall("nvidia-cudnn-cu12"), install("nvidia-cudnn-cu12==9.3.0.75")),
            {1: (2,), 2: (1,)},
        ),
        # unrelated removal and install
        ((uninstall("torch"), install("numpy==1.26.4")), {1: (), 2: ()}),
        # a wheel folder on the path needs the install that creates it, not the other way
        (
            (install("tensorflow[and-cuda]==2.21.0"), prepend(f"{SITE}/nvidia/cusolver/lib")),
            {1: (), 2: (1,)},
        ),
        ((install("numpy==1.26.4"), prepend(f"{SITE}/nvidia/cusolver/lib")), {1: (), 2: ()}),
        # several folders first on one variable for one finding: one change
        (
            (prepend("/a", ("x",)), prepend("/b", ("x",)), prepend("/c", ("y",))),
            {1: (2,), 2: (1,), 3: ()},
        ),
        # a folder off LD_LIBRARY_PATH and the wheels that replace it: one change
        ((install("nvidia-cudnn-cu12==8.9.4.25"), remove("/conda/lib")), {1: (2,), 2: (1,)}),
        ((install("numpy==1.26.4"), remove("/conda/lib")), {1: (), 2: ()}),
        ((unset(), remove("/x")), {1: (), 2: ()}),
        # several folders off one variable for one finding: one change (taking off one stale
        # cuDNN folder only lets the loader find the next)
        (
            (remove("/sys/lib64", ("x",)), remove("/conda/lib", ("x",)), remove("/y", ("y",))),
            {1: (2,), 2: (1,), 3: ()},
        ),
    ],
)
def test_edges(plan: tuple[PlanStep, ...], edges: dict[int, tuple[int, ...]]) -> None:
    assert stepdeps.edges(plan) == edges
    filled = stepdeps.with_needs(plan)
    assert stepdeps.needs_of(filled) == edges


def test_manual_steps_need_nothing_and_nothing_needs_them() -> None:
    manual = PlanStep(StepKind.MANUAL, "driver", Safety.MANUAL, ("a",), commands=("sudo x",))
    plan = (
        manual,
        uninstall("tensorflow-cpu", resolves=("a",)),
        install("tensorflow==2.18.1", resolves=("a",)),
    )
    assert stepdeps.edges(plan) == {1: (), 2: (3,), 3: (2,)}


def test_groups_are_the_steps_that_need_each_other() -> None:
    needs = {1: (2,), 2: (1,), 3: (1,), 4: (), 5: (6,), 6: (5,)}
    assert stepdeps.groups(needs, [1, 2, 3, 4, 5, 6]) == [(1, 2), (3,), (4,), (5, 6)]
    assert stepdeps.groups(needs, [3, 4]) == [(3,), (4,)]  # only among the steps given


def test_closure_brings_prerequisites_transitively() -> None:
    needs = {1: (), 2: (1,), 3: (2,), 4: ()}
    assert stepdeps.closure(needs, [3]) == (1, 2, 3)
    assert stepdeps.closure(needs, [4]) == (4,)


def test_groups_partition_the_steps_and_respect_needs() -> None:
    """Invariant over every small graph: groups partition the steps, each group is closed under
    "needs each other", and a step's prerequisites outside its group come in earlier groups
    only when the edges point back (plan order)."""
    nodes = [1, 2, 3, 4]
    pairs = [(a, b) for a, b in itertools.permutations(nodes, 2)]
    for mask in range(0, 1 << len(pairs), 37):  # a spread of the 4096 graphs
        needs: dict[int, list[int]] = {n: [] for n in nodes}
        for bit, (a, b) in enumerate(pairs):
            if mask >> bit & 1:
                needs[a].append(b)
        groups = stepdeps.groups(needs, nodes)
        flat = [n for g in groups for n in g]
        assert sorted(flat) == nodes
        for group in groups:
            for a in group:
                for b in group:
                    assert b in stepdeps.closure(needs, [a])
