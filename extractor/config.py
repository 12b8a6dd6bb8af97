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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

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
        if math.isinf(self.hi) and math.isinf(self.lo):
            return "a finite number"
        if math.isinf(self.hi):
            return f"a number {'>' if self.lo_open else '>='} {self.lo:g}"
        return f"a number in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"

    def ok(self, v: Any) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
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


# --- settings: one declaration for the CLI, config files and docs ---------------------------


@dataclass(frozen=True)
class Setting:
    """One command-line setting declared once: its flag, default, rule (range) and help text.

    The CLI builds the option from it (:meth:`add_to`; the help shows the default), parses
    and validates the value with the rule (``nan``, ``inf`` and out-of-range values are one
    line), and the docs list it with :func:`settings_table`. ``default=None`` with ``owner``
    (``"module:Class"`` of a validated config dataclass, imported only when help is shown)
    takes that class's field default and leaves the range check to it, so the default is
    still written once.
    """

    flag: str
    rule: Any
    default: Any
    help: str
    metavar: str | None = None
    owner: str | None = None
    wording: str | None = None  # what the error says is expected, when plainer than the rule's

    @property
    def shown_default(self) -> Any:
        if self.default is None and self.owner:
            import importlib

            module, _, name = self.owner.partition(":")
            cls = getattr(importlib.import_module(module), name)
            field_name = self.flag.lstrip("-").replace("-", "_")
            return next((f.default for f in fields(cls) if f.name == field_name), None)
        return self.default

    def help_text(self) -> str:
        return f"{self.help} (default {self.shown_default}; {self.expected})"

    @property
    def expected(self) -> str:
        return self.wording or self.rule.expected

    def parse(self, text: str) -> Any:
        """The option's value from its text, checked by the rule; else :class:`SettingError` (one line)."""
        as_int = isinstance(self.rule, Int) or (isinstance(self.rule, Opt) and isinstance(self.rule.rule, Int))
        try:
            value: Any = int(text) if as_int else float(text)
        except ValueError:
            value = text
        if not self.rule.ok(value):
            raise SettingError(f"{self.flag}: expected {self.expected}, found {text}")
        return value

    def add_to(self, parser: Any, **kw: Any) -> None:
        """Add the option to an argparse parser (the help, with the default, is built when shown)."""
        import argparse

        setting = self

        class Parse(argparse.Action):
            # checked here, not with type=: argparse would turn the error into two lines of usage
            def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
                setattr(namespace, self.dest, setting.parse(values))

        parser.add_argument(self.flag, action=Parse, default=self.default, metavar=self.metavar,
                            help=LazyHelp(self), **kw)


class SettingError(ExtractorError):
    """A command-line setting outside its range (a usage error: exit status 2)."""


class LazyHelp(str):
    """A help string argparse expands (``help % params``) only when help is printed, so that
    owner defaults are looked up then and ``import extractor.cli`` stays light."""

    setting: Setting

    def __new__(cls, setting: Setting) -> LazyHelp:
        obj = super().__new__(cls, setting.help)
        obj.setting = setting
        return obj

    def __mod__(self, params: Any) -> str:
        return self.setting.help_text().replace("%", "%%") % params


def settings_table(settings: Mapping[str, Setting]) -> str:
    """A Markdown table of settings (command, option, default, accepted values, meaning) for the docs."""
    rows = ["| command | option | default | accepted | meaning |", "|---|---|---|---|---|"]
    for where, s in settings.items():
        accepted = s.expected + (f" (range: {s.owner.rpartition(':')[2]})" if s.owner else "")
        rows.append(f"| {where.split(':')[0]} | `{s.flag}` | {s.shown_default} | {accepted} | {s.help} |")
    return "\n".join(rows) + "\n"
