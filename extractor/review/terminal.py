"""Text from transcripts and answer files is data: shown on a terminal, it cannot steer it.

A transcript line holding ``ESC ] 52 ; c ; ... BEL`` would write the reader's clipboard,
``ESC ] 0 ; ... BEL`` retitle the window, a bidi override reorder what is read. Every line
the reviewers and the review commands print goes through :func:`printable`, which writes
such characters as visible escapes (``\\x1b``, ``\\u202e``) instead.
"""

from __future__ import annotations

import re

# C0 and C1 controls and DEL (tab and newline too: a printed line is one line), and the
# invisible characters that reorder or hide text (bidi embeddings, overrides and isolates).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: str) -> str:
    """``text`` with every control / bidi character written as a visible escape."""
    return _UNSAFE.sub(_escape, text)
