"""The vocabulary params.py writes each field's facts in: choice sets from Literal aliases, and the
constraints (`Range`, `Multiple`, `Rule`, `NonEmpty`) a field carries in `Annotated[...]`, each with
`ok(value)` and `must` (what the value must be, in the words of the error line); and `build`, which
makes a frozen dataclass from a mapping by those facts, raising MtDepthError naming the key."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Literal

from mtdepth.errors import MtDepthError


def choices(literal: typing.Any) -> tuple[str, ...]:
    """The values of a Literal alias, in order (for click.Choice and pipeline constants)."""
    return typing.get_args(literal)


@dataclass(frozen=True)
class Range:
    """low <= value <= high (either end optional, either end open); `unit` and `note` only word the message."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    unit: str = ""
    note: str = ""

    def ok(self, v) -> bool:
        above = self.low is None or (v > self.low if self.low_open else v >= self.low)
        below = self.high is None or (v < self.high if self.high_open else v <= self.high)
        return above and below

    @property
    def must(self) -> str:
        if self.high is None:
            text = f"{'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        return " ".join(part for part in (text, self.unit, self.note) if part)


@dataclass(frozen=True)
class Multiple:
    """A positive multiple of `of` (image sizes the networks halve five times)."""

    of: int

    def ok(self, v) -> bool:
        return v > 0 and v % self.of == 0

    @property
    def must(self) -> str:
        return f"a positive multiple of {self.of}"


@dataclass(frozen=True)
class Rule:
    """Any other check: a predicate and what the value must be, in words."""

    predicate: typing.Callable[[typing.Any], bool]
    must: str

    def ok(self, v) -> bool:
        return self.predicate(v)


@dataclass(frozen=True)
class NonEmpty:
    """A tuple of choices that must hold at least one."""


def one_of(options: tuple) -> str:
    """ "'a', 'b' or 'c'"."""
    return ", ".join(map(repr, options[:-1])) + f" or {options[-1]!r}"


def coerce(value: typing.Any, hint: typing.Any, key: str, where: str) -> typing.Any:
    """Return `value` as type `hint`, its choices and constraints checked, or raise MtDepthError naming `key`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        inner, *facts = args
        element = typing.get_args(inner)[0] if typing.get_origin(inner) is tuple else None
        if typing.get_origin(element) is Literal:
            result = subset(value, element, any(isinstance(f, NonEmpty) for f in facts), key, where)
        else:
            result = coerce(value, inner, key, where)
        for fact in facts:
            if not isinstance(fact, NonEmpty) and not fact.ok(result):
                raise MtDepthError(f"{where}: {key} must be {fact.must}, got {value!r}")
        return result
    if origin is Literal:
        result = coerce(value, str, key, where)
        if result not in args:
            raise MtDepthError(f"{where}: {key} must be {one_of(args)}, got {value!r}")
        return result
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return coerce(value, inner, key, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise MtDepthError(f"{where}: {key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            if typing.get_origin(args[0]) is Literal:
                return subset(value, args[0], False, key, where)
            return tuple(coerce(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value))
        if len(value) != len(args):
            raise MtDepthError(f"{where}: {key} must have {len(args)} items, got {value!r}")
        return tuple(coerce(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args)))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if hint is str and isinstance(value, bool):  # YAML 1.1 reads an unquoted on/off (as `dvc exp run -S` writes it)
        return "on" if value else "off"
    raise MtDepthError(f"{where}: {key} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def subset(value: typing.Any, literal: typing.Any, non_empty: bool, key: str, where: str) -> tuple[str, ...]:
    """A list of choices of `literal`, checked as a whole (a subset; `non_empty`: at least one)."""
    if not isinstance(value, (list, tuple)):
        raise MtDepthError(f"{where}: {key} must be a list, got {value!r}")
    result = tuple(coerce(v, str, f"{key}[{i}]", where) for i, v in enumerate(value))
    options = choices(literal)
    if not set(result) <= set(options) or (non_empty and not result):
        raise MtDepthError(
            f"{where}: {key} must be a {'non-empty ' if non_empty else ''}subset of {list(options)}, got {value!r}"
        )
    return result


def build(cls: type, raw: typing.Any, prefix: str, where: str) -> typing.Any:
    """Build dataclass `cls` from mapping `raw`, checking every key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise MtDepthError(f"{where}: {prefix.rstrip('.') or 'top level'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            full = f"{prefix}{key}"
            raise MtDepthError(f"{where}: unknown key {full!r} (known: {', '.join(sorted(names))})")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        key = f"{prefix}{f.name}"
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            values[f.name] = build(hint, raw[f.name], f"{key}.", where)
            continue
        values[f.name] = coerce(raw[f.name], hint, key, where)
    return cls(**values)
