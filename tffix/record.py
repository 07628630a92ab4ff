"""Frozen, slotted records: ``@dataclass(frozen=True, slots=True)``, built cheaply at import.

tffix's model is about a hundred frozen dataclasses, and every run imports most of them,
``tffix diagnose --snapshot F`` included. ``dataclasses`` writes the source of six or seven
methods per class and compiles each with ``exec``, then builds the class a second time to
give it ``__slots__``: a third of that command's import time. ``@record`` makes the same
kind of class without compiling anything at import:

- ``__eq__``, ``__hash__``, ``__repr__`` and the frozen ``__setattr__`` are shared functions
  over an ``operator.attrgetter`` of the fields;
- ``__init__`` is compiled the first time the class is instantiated, from the same kind of
  source as ``dataclasses`` writes, so a class a run never builds costs no compilation and
  one it builds a thousand times runs a generated ``__init__``.

The classes are dataclasses to the rest of the code: ``dataclasses.fields``, ``replace``,
``asdict`` and ``is_dataclass`` work on them, assigning a field raises
``dataclasses.FrozenInstanceError``, and type checkers read ``@record`` as
``@dataclass(frozen=True)`` (PEP 681). What it does not do, ``dataclasses`` still does: no
inheritance between records, no ``ClassVar``, ``InitVar`` or ``kw_only``; each is refused with
a ``TypeError`` when the class is defined.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: object) -> Callable[[Any], Any]:
        return lambda function: function


T = TypeVar("T")
_MISSING: Any = dataclasses.MISSING


class _Factory:
    """The default of a parameter whose field has a ``default_factory``."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """The class's fields, in order, as ``dataclasses.Field`` objects."""
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 - the class's own, as written
    fields: dict[str, dataclasses.Field[Any]] = {}
    for name, annotation in annotations.items():
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        if text.split("[", 1)[0].rsplit(".", 1)[-1] in {"ClassVar", "InitVar"}:
            raise TypeError(
                f"@record {cls.__qualname__}.{name}: ClassVar and InitVar need @dataclass"
            )
        value = cls.__dict__.get(name, _MISSING)
        made: dataclasses.Field[Any] = (
            value if isinstance(value, dataclasses.Field) else dataclasses.field(default=value)
        )
        if made.default is not _MISSING and made.default.__class__.__hash__ is None:
            raise ValueError(
                f"@record {cls.__qualname__}.{name}: mutable default; use default_factory"
            )
        if made.kw_only is True:
            raise TypeError(f"@record {cls.__qualname__}.{name}: kw_only needs @dataclass")
        made.name = name
        made.type = annotation
        made.kw_only = False
        # What ``dataclasses.fields`` keeps: a plain field (not a ClassVar or an InitVar).
        made._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
        fields[name] = made
    seen_default = ""
    for name, made in fields.items():
        has_default = made.default is not _MISSING or made.default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(
                f"non-default argument {name!r} follows default argument {seen_default!r}"
            )
        seen_default = seen_default or (name if has_default else "")
    return fields


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A function giving the values of *names* as one tuple (``()`` for none)."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        one = operator.attrgetter(names[0])
        return lambda instance: (one(instance),)
    return operator.attrgetter(*names)


def _compile_init(cls: type) -> Callable[..., None]:
    """The generated ``__init__`` of *cls*: one statement per field, no loop."""
    fields: dict[str, dataclasses.Field[Any]] = cls.__dataclass_fields__  # type: ignore[attr-defined]
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    parameters, body = ["self"], []
    for number, (name, made) in enumerate(fields.items()):
        setter, value = f"_set{number}", name
        namespace[setter] = cls.__dict__[name].__set__  # the slot's own descriptor
        if made.default_factory is not _MISSING:
            namespace[f"_factory{number}"] = made.default_factory
            parameters.append(f"{name}=_FACTORY")
            value = f"_factory{number}() if {name} is _FACTORY else {name}"
        elif made.default is not _MISSING:
            namespace[f"_default{number}"] = made.default
            parameters.append(f"{name}=_default{number}")
        else:
            parameters.append(name)
        body.append(f"    {setter}(self, {value})")
    source = f"def __init__({', '.join(parameters)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, namespace)
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _first_init(self: Any, *args: Any, **kwargs: Any) -> None:
    """Compile the class's ``__init__``, put it in place, and run it (first instance only)."""
    cls = type(self)
    init = _compile_init(cls)
    cls.__init__ = init
    init(self, *args, **kwargs)


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[T]) -> type[T]:
    """Make *cls* a frozen, slotted dataclass (see the module's docstring)."""
    if cls.__bases__ != (object,):
        raise TypeError(f"@record {cls.__qualname__}: records do not inherit; use @dataclass")
    fields = _fields(cls)
    names = tuple(fields)
    compared = _getter(tuple(n for n, f in fields.items() if f.compare))
    hashed = _getter(
        tuple(n for n, f in fields.items() if (f.compare if f.hash is None else f.hash))
    )
    shown = tuple(n for n, f in fields.items() if f.repr)
    every = _getter(names)

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return compared(self) == compared(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(hashed(self))

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{type(self).__qualname__}({inner})"

    def __getstate__(self: Any) -> tuple[Any, ...]:
        return every(self)

    def __setstate__(self: Any, state: tuple[Any, ...]) -> None:
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)

    body = {
        key: value
        for key, value in cls.__dict__.items()
        if key not in fields and key not in {"__dict__", "__weakref__"}
    }
    body.update(
        __slots__=names,
        __match_args__=names,
        __dataclass_fields__=fields,
        __init__=_first_init,
        __eq__=__eq__,
        __hash__=__hash__,
        __repr__=__repr__,
        __setattr__=_frozen_setattr,
        __delattr__=_frozen_delattr,
        __getstate__=__getstate__,
        __setstate__=__setstate__,
    )
    metaclass: type[Any] = type(cls)
    made: type[T] = metaclass(cls.__name__, cls.__bases__, body)
    made.__qualname__ = cls.__qualname__
    for function in (__eq__, __hash__, __repr__, __getstate__, __setstate__):
        function.__qualname__ = f"{cls.__qualname__}.{function.__name__}"
    return made
