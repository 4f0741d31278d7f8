"""The vocabulary params.py writes each field's facts in: choice sets from Literal aliases, and the
constraints (`Range`, `Multiple`, `Rule`, `NonEmpty`) a field carries in `Annotated[...]`, each with
`ok(value)` and `must` (what the value must be, in the words of the error line)."""

from __future__ import annotations

import typing
from dataclasses import dataclass


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
