"""Plain-text and Markdown transcripts, line by line: ``Speaker: text``, ``## Speaker`` / ``**Speaker**``
headings, ``Name  00:03`` lines (Otter, Delve), timestamps and unlabelled continuation lines."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from extractor.segment.records import Scan, Segment
from extractor.segment.speakers import LEAD_TIME_RE, TIME, TIME_RE, name_in, name_label, role_of_label, split_label
from extractor.textsafe import clean_text, has_unsafe, line_spans

# One classified line of a text transcript.
_TEXT, _LABEL, _IGNORED = 1, 2, 3

_HEADING_RE = re.compile(r"^#{1,6}\s*(?P<body>.*?)\s*#*\s*$")
_BOLD_RE = re.compile(r"^(?P<mark>\*\*|__)(?P<label>[^*_\n]{1,60}?)(?P=mark)\s*(?P<rest>.*)$")
_COLON_RE = re.compile(r"^(?P<label>[^:\n]{1,60}?)\s*:(?:\s+|$)(?P<rest>.*)$")
_TIMED_COLON_RE = re.compile(rf"^(?P<label>[^:\n\[(]{{1,60}}?)\s*[\[(](?P<time>{TIME})[\])]\s*:\s*(?P<rest>.*)$")
_RULE_RE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,}|={3,})$")
_TIME_ONLY_RE = re.compile(rf"^[\[(]?{TIME}[\])]?(?:\s*-->?\s*[\[(]?{TIME}[\])]?)?$")


@dataclass(slots=True)
class Line:
    """One classified non-blank line of a text transcript."""

    kind: int
    start: int  # character offsets of the stripped line in the file's text
    end: int
    lineno: int
    indent: int = 0
    label: str = ""  # speaker label as written (kind == _LABEL)
    rest: str = ""  # text after the label, or the whole text (kind == _TEXT)
    time: str | None = None
    markup: bool = False  # a Markdown heading or bold label
    bare: bool = False  # a short line with no colon, markup or time: a label only if known from elsewhere
    written: str | None = None  # the line without control / invisible characters, when it had any


def _classify(stripped: str) -> tuple[int, str, str, str | None, bool, bool]:
    """``(kind, label, rest, time, markup, bare)`` of one non-blank stripped line."""
    if _RULE_RE.match(stripped):
        return _IGNORED, "", "", None, False, False
    if _TIME_ONLY_RE.match(stripped):  # its time goes to the next turn
        found = TIME_RE.search(stripped)
        return _IGNORED, "", "", found[0] if found else None, False, False
    time = None
    body = stripped
    m = LEAD_TIME_RE.match(body)
    if m:  # "[00:38:00] Interviewee: ..." - the time belongs to the turn
        time, body = m["time"], body[m.end():]
    m = _HEADING_RE.match(body) if body.startswith("#") else None
    if m:
        label, t = split_label(m["body"].strip("*_ ").rstrip(":").strip("*_ "))
        return _LABEL, label, "", t or time, True, False
    m = _BOLD_RE.match(body) if body[:1] in "*_" else None
    if m:
        label, t = split_label(m["label"].strip().rstrip(":"))
        rest = m["rest"]
        rest = rest[1:].strip() if rest.startswith(":") else rest
        return _LABEL, label, rest, t or time, True, False
    m = _TIMED_COLON_RE.match(body)
    if m:  # "Interviewee [00:38:10]: text"
        return _LABEL, m["label"].strip(), m["rest"], m["time"], False, False
    m = _COLON_RE.match(body)
    if m and not TIME_RE.fullmatch(m["label"]):
        label, t = split_label(m["label"])
        rest = m["rest"]
        mt = LEAD_TIME_RE.match(rest)
        if mt:  # "Interviewer 1: [00:12:40] text"
            t, rest = t or mt["time"], rest[mt.end():]
        return _LABEL, label, rest, t or time, False, False
    # A line holding only a label ("Interviewee", "Alice  00:03", "Interviewer 1 [00:38:00]").
    if len(body) <= 60:
        label, t = split_label(body)
        return _LABEL, label, "", t or time, False, not (t or time)
    return _TEXT, "", stripped, None, False, False


def parse_lines(text: str) -> tuple[list[Line], int, int]:
    """Classified non-blank lines, and the control / invisible characters removed from them.

    Offsets stay those of the text as decoded (so exports can point into the file); the
    label and text are read from the line without control and invisible characters.
    """
    lines: list[Line] = []
    dirty = has_unsafe(text)
    dropped = removed = 0
    for lineno, (pos, end) in enumerate(line_spans(text), 1):
        raw = text[pos:end]
        line = raw
        if dirty:
            line, n_control, n_invisible = clean_text(raw)
            dropped, removed = dropped + n_control, removed + n_invisible
        stripped = line.strip()
        if stripped:
            start = pos + len(raw) - len(raw.lstrip())
            kind, label, rest, time, markup, bare = _classify(stripped)
            lines.append(Line(kind, start, pos + len(raw.rstrip()), lineno, len(line) - len(line.lstrip()), label,
                              rest, time, markup, bare, stripped if line is not raw else None))
    return lines, dropped, removed


def _speaker_labels(lines: Sequence[Line], known: set[str]) -> set[str]:
    """Which candidate labels really are speakers.

    Role labels always are. Names are speakers when given (``known``), when used as
    a label at least twice, or when alone on a line with a time ("Sam  0:07", as
    Otter writes them) - but a file that uses role labels gets no name speakers
    unless given.
    """
    counts: Counter[str] = Counter()
    timed: set[str] = set()
    roles = 0
    for ln in lines:
        if ln.kind != _LABEL:
            continue
        if role_of_label(ln.label):
            roles += 1
        elif not ln.bare and name_label(ln.label):
            counts[ln.label] += 1
            if ln.time and not ln.rest and not ln.markup:
                timed.add(ln.label)
    speakers = {lab for lab in counts if name_in(lab, known)}
    if roles < 2:
        speakers |= {lab for lab, c in counts.items() if c >= 2 or lab in timed}
    return speakers


def segments_from_lines(text: str, known: set[str]) -> Scan:
    """Speaker segments of a plain-text / Markdown transcript (``known``: names given as speakers)."""
    lines, dropped, removed = parse_lines(text)
    speakers = _speaker_labels(lines, known)

    def is_speaker(ln: Line) -> bool:
        if ln.kind != _LABEL or (ln.bare and len(ln.label) < 3):  # a lone "A" line is not a speaker
            return False
        return ln.label in speakers or role_of_label(ln.label) is not None

    # Labels indented deeper than the file's usual speaker lines are quoted text.
    indents = Counter(ln.indent for ln in lines if is_speaker(ln))
    base_indent = indents.most_common(1)[0][0] if indents else 0

    scan = Scan(dropped_controls=dropped, removed_invisible=removed)
    cur: Segment | None = None
    pending_time: str | None = None
    for ln in lines:
        if ln.kind == _IGNORED:
            pending_time = ln.time or pending_time
            continue
        if is_speaker(ln) and ln.indent <= base_indent:
            cur = Segment(ln.label, [ln.rest] if ln.rest.strip() else [], ln.start, ln.end, ln.lineno,
                          ln.time or pending_time)
            pending_time = None
            scan.segments.append(cur)
            continue
        if ln.kind == _LABEL and ln.markup and not ln.rest and ln.label and not is_speaker(ln):
            # A heading that names no speaker (a title): not speech.
            scan.unattributed.append(ln.lineno)
            continue
        if cur is None:
            scan.unattributed.append(ln.lineno)
            continue
        if _looks_like_speaker(ln):
            scan.kept_label_lines.append(ln.lineno)
        cur.pieces.append(text[ln.start:ln.end] if ln.written is None else ln.written)  # as written, label included
        cur.end = ln.end
    return scan


def _looks_like_speaker(ln: Line) -> bool:
    """A ``Name: text`` line that is not a speaker turn here (a name used once, or indented)."""
    return (ln.kind == _LABEL and not ln.bare and bool(ln.rest)
            and (role_of_label(ln.label) is not None or name_label(ln.label) is not None))
