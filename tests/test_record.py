"""tffix.record: a ``@record`` class behaves as the ``@dataclass(frozen=True, slots=True)`` it
stands for, to the code that uses it and to ``dataclasses``' own functions."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass, field

import pytest

import tffix
from tffix.record import _frozen_setattr, record


@record
class Part:
    name: str
    size: int = 0
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict, hash=False)
    note: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Twin:
    name: str
    size: int = 0
    tags: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict, hash=False)
    note: str = field(default="", compare=False, repr=False)


def test_it_answers_as_the_dataclass_it_stands_for() -> None:
    for args, kwargs in [(("a",), {}), (("a", 2), {"tags": ("x",)}), ((), {"name": "b"})]:
        ours, theirs = Part(*args, **kwargs), Twin(*args, **kwargs)
        assert repr(ours) == repr(theirs).replace("Twin", "Part")
        assert hash(ours) == hash(Part(*args, **kwargs)) == hash(theirs)
        assert ours == Part(*args, **kwargs) and ours != Part("other")
    assert Part("a", note="x") == Part("a", note="y")  # compare=False
    assert Part("a") != Twin("a")  # another class is never equal
    assert Part.__match_args__ == Twin.__match_args__
    assert Part.__slots__ == Twin.__slots__
    assert not hasattr(Part("a"), "__dict__")


def test_arguments_are_checked_as_a_generated_init_checks_them() -> None:
    for call in (
        lambda: Part(),
        lambda: Part("a", 1, (), {}, "", "too many"),
        lambda: Part("a", name="twice"),
        lambda: Part("a", colour="red"),
    ):
        with pytest.raises(TypeError):
            call()


def test_frozen_and_each_factory_default_is_fresh() -> None:
    one, two = Part("a"), Part("b")
    assert one.extra == {} and one.extra is not two.extra
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.name = "b"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del one.size  # type: ignore[misc]


def test_dataclasses_functions_work_on_it() -> None:
    part = Part("a", 3, ("t",), {"k": 1}, "n")
    assert dataclasses.is_dataclass(part)
    assert [f.name for f in dataclasses.fields(Part)] == [f.name for f in dataclasses.fields(Twin)]
    assert dataclasses.replace(part, size=4) == Part("a", 4, ("t",), {"k": 1})
    assert dataclasses.asdict(part) == dataclasses.asdict(Twin("a", 3, ("t",), {"k": 1}, "n"))
    assert copy.deepcopy(part) == part and copy.copy(part) == part


def test_what_it_does_not_do_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(ValueError, match="mutable default"):

        @record
        class Mutable:
            items: list[int] = []  # noqa: RUF012

    with pytest.raises(TypeError, match="follows default"):

        @record
        class Order:
            first: int = 0
            second: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="inherit"):

        @record
        class Child(Twin):
            more: int = 0


def test_every_record_of_tffix_builds_and_compares() -> None:
    """Each ``@record`` class of the package defines its fields as dataclass fields, and
    its slots are exactly those fields."""
    seen = 0
    for info in pkgutil.walk_packages(tffix.__path__, "tffix."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            made_here = isinstance(value, type) and value.__module__ == info.name
            if made_here and value.__dict__.get("__setattr__") is _frozen_setattr:
                fields = dataclasses.fields(value)
                assert value.__slots__ == tuple(f.name for f in fields), value
                seen += 1
    assert seen >= 90, seen
