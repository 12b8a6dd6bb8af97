"""Text from input is data: line breaks, control characters and invisible formatting characters.

One definition of each, used by segmentation (what becomes a line, what is dropped before
speaker labels are matched) and by everything that prints input text on a terminal
(:func:`escape_for_terminal`).

- **Line breaks** are those of :meth:`str.splitlines`: ``\\n``, ``\\r\\n``, a lone ``\\r``,
  ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, NEL (``\\x85``), U+2028 and U+2029.
- **Control characters** (C0, DEL, C1) other than tab and the line breaks carry no text:
  ESC starts terminal escape sequences (title changes, clipboard writes), NUL truncates
  strings in other tools.
- **Invisible formatting characters** (zero-width space/joiners, bidi embeddings,
  overrides and isolates, marks, BOM, soft hyphen, word joiner, Hangul fillers, tag
  characters) show nothing but make two equal-looking labels differ ("Interviewee" with a
  zero-width space inside is another speaker), or reorder what is displayed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
#: Control characters that are neither tab nor a line break.
CONTROL_CHARS = "\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f"
#: Characters that display as nothing (or reorder the display) but are not whitespace.
INVISIBLE_CHARS = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U0001d173-\U0001d17a\U000e0000-\U000e007f"
)
_CONTROL_RE = re.compile(f"[{CONTROL_CHARS}]")
_INVISIBLE_RE = re.compile(f"[{INVISIBLE_CHARS}]")
_UNSAFE_RE = re.compile(f"[{CONTROL_CHARS}{INVISIBLE_CHARS}]")
_OTHER_BREAK_RE = re.compile("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# For the terminal: every control character (tab and line breaks too) and every invisible one.
_TERMINAL_RE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{INVISIBLE_CHARS}]")


def has_unsafe(text: str) -> bool:
    """Whether ``text`` holds a control character (other than tab / line breaks) or an invisible one."""
    return _UNSAFE_RE.search(text) is not None


def clean_text(text: str) -> tuple[str, int, int]:
    """``(text without control and invisible characters, controls dropped, invisibles removed)``.

    Tab and line breaks stay (callers split lines first). Counting both kinds lets the
    caller say what was removed instead of claiming nothing was lost.
    """
    if not has_unsafe(text):
        return text, 0, 0
    text, n_control = _CONTROL_RE.subn("", text)
    text, n_invisible = _INVISIBLE_RE.subn("", text)
    return text, n_control, n_invisible


def line_spans(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every line of ``text`` (line break excluded), whatever its line-ending style.

    A final line break ends the last line (no empty line after it), as :meth:`str.splitlines`.
    """
    pos, n = 0, len(text)
    if _OTHER_BREAK_RE.search(text) is None:  # the common case, several times faster than the regex
        while pos < n:
            nl = text.find("\n", pos)
            end = n if nl < 0 else nl
            yield pos, end
            pos = end + 1
        return
    for m in LINE_BREAK.finditer(text):
        yield pos, m.start()
        pos = m.end()
    if pos < n:
        yield pos, n


def count_lines(text: str) -> int:
    """Line breaks of any style in ``text``, plus one (what an editor's last line number shows)."""
    return 1 + sum(1 for _ in LINE_BREAK.finditer(text))


def escape_for_terminal(text: str, *, keep: str = "") -> str:
    """``text`` safe to print on a terminal: control and invisible characters as visible escapes.

    ESC becomes ``\\x1b``, a right-to-left override ``\\u202e``, a newline ``\\n`` (unless
    named in ``keep``, e.g. ``keep="\\n"`` for multi-line display). A backslash is left as it
    is: the output is for reading, not for parsing back.
    """
    def esc(m: re.Match[str]) -> str:
        ch = m.group(0)
        if ch in keep:
            return ch
        code = ord(ch)
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch) or (
            f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")

    return _TERMINAL_RE.sub(esc, text)


__all__ = ["CONTROL_CHARS", "INVISIBLE_CHARS", "LINE_BREAK", "clean_text", "count_lines", "escape_for_terminal",
           "has_unsafe", "line_spans"]
