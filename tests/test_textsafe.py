"""Text is data: line breaks of every style, control and invisible characters, terminal escaping."""

from __future__ import annotations

import pytest

from extractor.textsafe import clean_text, count_lines, escape_for_terminal, has_unsafe, line_spans


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\r", "\x85", "\u2028", "\u2029", "\v", "\f"])
def test_every_line_ending_style_is_a_line_break(brk):
    text = f"one{brk}two{brk}three"
    assert [text[s:e] for s, e in line_spans(text)] == ["one", "two", "three"] == text.splitlines()
    assert count_lines(text) == 3


def test_line_spans_match_splitlines_on_mixed_endings():
    text = "a\r\nb\rc\n\nd\u2028e\r\n"
    assert [text[s:e] for s, e in line_spans(text)] == text.splitlines()


def test_clean_text_drops_controls_and_invisibles_and_counts_them():
    text = "Inter\u200bviewee\u202e: \x1b[31mred\x07 tab\tkept\u00ad"
    out, n_control, n_invisible = clean_text(text)
    assert out == "Interviewee: [31mred tab\tkept"
    assert (n_control, n_invisible) == (2, 3)
    assert has_unsafe(text) and not has_unsafe(out)
    assert clean_text("plain") == ("plain", 0, 0)


def test_escape_for_terminal_makes_escape_sequences_visible():
    hostile = "\x1b]52;c;ZXZpbA==\x07 title\x1b]0;pwned\x07 \u202eevil\r\nnext"
    shown = escape_for_terminal(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown and "\n" not in shown
    assert shown.startswith("\\x1b]52;c;ZXZpbA==\\x07") and "\\u202eevil\\r\\nnext" in shown
    assert escape_for_terminal("a\nb\tc", keep="\n") == "a\nb\\tc"
    assert escape_for_terminal("café – ok") == "café – ok"
