"""Typed settings: dataclass fields whose type, allowed values and range are checked when the
dataclass is made, so that no configuration object can hold a value the code would trip over.

A section is a dataclass deriving from `Section`, with `PATH` naming it in messages
("model.encoder"); its fields are declared with `setting(default, ...)`. On construction (also
through dataclasses.replace) every field is checked against its annotation (bool, int, float,
str, X | None, tuple[X, ...], tuple[X, Y], or a nested section) and its metadata: `choices` (a
tuple, a Registry, or a function returning names), bounds on numbers (or on every number of a
tuple), and JSON lists become tuples. A bad value is the package's one-line InputError naming
the setting: `train.epochs: expected an integer, got "abc"`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Callable, ClassVar

from mtlbench.errors import InputError

_NONE = type(None)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    choices: Any = None,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
):
    """A checked field. `choices`: allowed values (tuple, Registry or function returning them);
    the bounds apply to a number, or to each number of a tuple."""
    metadata = {"choices": choices, "at_least": at_least, "above": above, "at_most": at_most, "below": below}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _names(choices: Any) -> tuple:
    if callable(choices) and not hasattr(choices, "names"):
        return tuple(choices())
    return tuple(choices.names()) if hasattr(choices, "names") else tuple(choices)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and _NONE in arguments:
            return None
        (inner,) = [argument for argument in arguments if argument is not _NONE]
        return _coerce(value, inner, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(where, f"expected a list, got {_show(value)}")
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_coerce(item, arguments[0], f"{where}[{index}]") for index, item in enumerate(value))
        if len(value) != len(arguments):
            raise InputError(where, f"expected a list of {len(arguments)} values, got {_show(value)}")
        return tuple(_coerce(item, kind, f"{where}[{index}]") for index, (item, kind) in enumerate(zip(value, arguments)))
    if annotation is bool:
        if not isinstance(value, bool):
            raise InputError(where, f"expected true or false, got {_show(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(where, f"expected an integer, got {_show(value)}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(where, f"expected a number, got {_show(value)}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise InputError(where, f"expected a string, got {_show(value)}")
        return value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if not isinstance(value, annotation):
            raise InputError(where, f"expected an object of {annotation.__name__} settings, got {_show(value)}")
        return value
    raise TypeError(f"{where}: unsupported setting type {annotation!r}")


def _check_range(value: Any, metadata: dict, where: str) -> None:
    numbers = value if isinstance(value, tuple) else (value,)
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        for key, fails, words in (
            ("at_least", lambda n, bound: n < bound, "at least"),
            ("above", lambda n, bound: n <= bound, "above"),
            ("at_most", lambda n, bound: n > bound, "at most"),
            ("below", lambda n, bound: n >= bound, "below"),
        ):
            bound = metadata.get(key)
            if bound is not None and fails(number, bound):
                raise InputError(where, f"must be {words} {bound:g}, got {_show(value)}")


def _check_choice(value: Any, choices: Any, where: str) -> None:
    allowed = _names(choices)
    for item in value if isinstance(value, tuple) else (value,):
        if item not in allowed:
            raise InputError(where, f"{_show(item)} is not one of: {', '.join(_show(name) for name in allowed)}")


class Section:
    """Base of a settings dataclass: checks and normalises every field when it is made."""

    PATH: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            where = f"{self.PATH}.{field.name}" if self.PATH else field.name
            value = _coerce(getattr(self, field.name), hints[field.name], where)
            if value is not None:
                _check_range(value, field.metadata, where)
                if field.metadata.get("choices") is not None:
                    _check_choice(value, field.metadata["choices"], where)
            object.__setattr__(self, field.name, value)
        self.check()

    def check(self) -> None:
        """Checks across fields of the section; the default has none."""

    def where(self, name: str) -> str:
        return f"{self.PATH}.{name}" if self.PATH else name


def build_section(cls: type, values: dict, where: str):
    """An instance of section `cls` from a (partial) dict of JSON values, nested sections included."""
    if not isinstance(values, dict):
        raise InputError(where or "configuration", f"expected an object of settings, got {_show(values)}")
    known = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(where or "configuration", f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(known)})")
    hints = typing.get_type_hints(cls)
    arguments = {}
    for name, value in values.items():
        kind = hints[name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            arguments[name] = build_section(kind, value, f"{where}.{name}" if where else name)
        else:
            arguments[name] = value
    return cls(**arguments)
