"""One capped, typed JSON reader: every JSON and JSONL input goes through :func:`parse_json`.

Refused with one :class:`~extractor.errors.InputError` line (see docs/safety.md): invalid JSON,
``NaN`` / ``Infinity``, numbers out of range, integers over :data:`MAX_INT_DIGITS` digits,
nesting deeper than :data:`MAX_JSON_DEPTH`, a key twice in one object, lone surrogates, and
documents or lines over :data:`MAX_JSON_BYTES` (read through :mod:`extractor.safeio`'s capped,
regular-file-only readers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from extractor.errors import InputError
from extractor.safeio import MiB, human_size, open_regular, read_capped

MAX_JSON_BYTES = 64 * MiB  # one JSON document, or one JSONL line
MAX_JSON_DEPTH = 200  # our records nest 4 levels; a deeper body is an attack or an accident
MAX_INT_DIGITS = 30  # ids, turn numbers and counts; Python refuses > 4300 digits with a ValueError
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


class _Refused(Exception):
    """Raised inside json's hooks; becomes one InputError line."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(expected)
        self.expected, self.found = expected, found


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of at most {MAX_INT_DIGITS} digits", f"one of {len(text.lstrip('-'))} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise _Refused("a finite number", f"{text[:40]} (out of range)")
    return value


def _constant(text: str) -> Any:
    raise _Refused("a finite number (JSON has no NaN or Infinity)", text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Refused("each key once in an object", f"{dup!r} twice")
    return out


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in a JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    for ch in _JSON_STRING.sub('""', text):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, where: str | Path, *, line: int | None = None, expected: str = "valid JSON",
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON text as Python values, or one :class:`InputError` line: never an internal error.

    Refused: invalid JSON, ``NaN`` / ``Infinity`` literals and numbers out of float range,
    integers over :data:`MAX_INT_DIGITS` digits, nesting deeper than ``max_depth``, a key
    twice in one object, and lone surrogates (``"\\ud800"``, which no UTF-8 file can hold).
    """
    if text.count("[") + text.count("{") > max_depth and json_depth(text) > max_depth:
        raise InputError(where, f"JSON nested at most {max_depth} levels deep", "deeper nesting", line=line)
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant,
                           object_pairs_hook=_pairs)
    except _Refused as e:
        raise InputError(where, e.expected, e.found, line=line) from None
    except json.JSONDecodeError as e:
        snippet = text.strip()
        snippet = snippet if len(snippet) <= 60 else snippet[:60] + "..."  # one line: repr escapes the rest
        raise InputError(where, expected, f"invalid JSON ({e.msg}) in {snippet!r}", line=line) from None
    except (RecursionError, ValueError, MemoryError) as e:
        raise InputError(where, "valid JSON of bounded size and depth", type(e).__name__, line=line) from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError(where, "text without lone surrogates", f"\\u{ord(e.object[e.start]):04x}",
                             line=line) from None
    return value


def iter_json_lines(path: str | Path, *, what: str = "a JSONL file", expected: str = "one JSON value per line",
                    max_line_bytes: int = MAX_JSON_BYTES) -> Iterator[tuple[int, Any]]:
    """``(line_number, value)`` for each non-blank line of a JSONL file, each line capped and parsed
    by :func:`parse_json`; a bad line is one :class:`InputError` naming ``file:line``."""
    with open_regular(path, what=what) as fh:  # never a FIFO or a device
        n = 0
        while raw := fh.readline(max_line_bytes + 1):
            n += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                raise InputError(path, f"JSON lines of at most {human_size(max_line_bytes)}", "a longer line", line=n)
            try:
                # utf-8-sig on line 1: files saved by some Windows editors start with a BOM
                text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise InputError(path, "UTF-8 text", f"undecodable byte 0x{raw[e.start]:02x} at column {e.start + 1}",
                                 line=n) from None
            if text.strip():
                yield n, parse_json(text, path, line=n, expected=expected)


def read_json(path: str | Path, *, what: str = "a JSON file", max_bytes: int = MAX_JSON_BYTES) -> Any:
    """One JSON document from a regular file of at most ``max_bytes``, parsed by :func:`parse_json`."""
    data = read_capped(path, max_bytes, what=what)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(path, "UTF-8 text", f"undecodable byte 0x{data[e.start]:02x} at offset {e.start}") from None
    return parse_json(text, path)
