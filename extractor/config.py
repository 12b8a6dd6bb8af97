"""One way to build and validate stage configs (dataclasses such as ``DiscoverConfig``).

- :func:`from_mapping` builds a config from a mapping (a saved ``config.json``, CLI
  options), ignoring unknown keys and, if asked, ``None`` values (options not given);
- :func:`check_fields` validates fields against declarative rules in ``__post_init__`` and
  raises one error per first bad field, ``Owner.field: expected X, found Y``.

Rules: :class:`Int` (an integer, not a bool, ``>= min``), :class:`Num` (a finite number in a
range), :class:`OneOf` (one of some values), :class:`Bool`, :class:`Str`, :class:`Seq` (a
non-empty list of items following a rule); wrap any of them in :class:`Opt` to allow ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping, TypeVar

from extractor.errors import ExtractorError

T = TypeVar("T")


@dataclass(frozen=True)
class Int:
    min: int | None = 0
    max: int | None = None

    @property
    def expected(self) -> str:
        if self.min is not None and self.max is not None:
            return f"an integer in {self.min}..{self.max}"
        return "an integer" + (f" >= {self.min}" if self.min is not None else "")

    def ok(self, v: Any) -> bool:
        return (isinstance(v, int) and not isinstance(v, bool) and (self.min is None or v >= self.min)
                and (self.max is None or v <= self.max))


@dataclass(frozen=True)
class Num:
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    @property
    def expected(self) -> str:
        if math.isinf(self.hi):
            return f"a number {'>' if self.lo_open else '>='} {self.lo:g}"
        return f"a number in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"

    def ok(self, v: Any) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
            return False
        return (v > self.lo if self.lo_open else v >= self.lo) and (v < self.hi if self.hi_open else v <= self.hi)


@dataclass(frozen=True)
class OneOf:
    values: tuple[Any, ...]

    @property
    def expected(self) -> str:
        shown = [f'"{v}"' if isinstance(v, str) else repr(v) for v in self.values]
        return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]

    def ok(self, v: Any) -> bool:
        return v in self.values


@dataclass(frozen=True)
class Bool:
    expected = "true or false"

    def ok(self, v: Any) -> bool:
        return isinstance(v, bool)


@dataclass(frozen=True)
class Seq:
    """A non-empty list or tuple (not a string) whose items all follow ``rule``."""

    rule: Any

    @property
    def expected(self) -> str:
        return f"a non-empty list, each {self.rule.expected}"

    def ok(self, v: Any) -> bool:
        return isinstance(v, (list, tuple)) and bool(v) and all(self.rule.ok(x) for x in v)


@dataclass(frozen=True)
class Str:
    expected = "a non-empty string"

    def ok(self, v: Any) -> bool:
        return isinstance(v, str) and bool(v)


@dataclass(frozen=True)
class Opt:
    rule: Any

    @property
    def expected(self) -> str:
        return f"None or {self.rule.expected}"

    def ok(self, v: Any) -> bool:
        return v is None or self.rule.ok(v)


def check_fields(obj: Any, rules: Mapping[str, Any], *, error: Callable[[str], Exception] = ExtractorError) -> None:
    """Raise ``error("Owner.field: expected X, found Y")`` for the first field breaking its rule."""
    for name, rule in rules.items():
        value = getattr(obj, name)
        if not rule.ok(value):
            raise error(f"{type(obj).__name__}.{name}: expected {rule.expected}, found {value!r}")


def from_mapping(cls: type[T], values: Mapping[str, Any], *, skip_none: bool = False) -> T:
    """``cls(**values)`` keeping only ``cls``'s fields (and, with ``skip_none``, non-None values)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in values.items() if k in names and not (skip_none and v is None)})
