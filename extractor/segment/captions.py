"""WebVTT and SRT captions: ``<v Name>`` voices and ``Name:`` / ``[Name]`` labels; cues of one speaker merge."""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterator

from extractor.segment.records import Scan, Segment
from extractor.segment.speakers import name_in, name_label, role_of_label
from extractor.textsafe import clean_text, has_unsafe, line_spans

_CUE_TIME_RE = re.compile(
    r"^\s*(?P<start>(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*(?P<end>(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3})")
_VOICE_RE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
_TAG_RE = re.compile(r"</?[a-z][^>]*>|<\d[\d:.]*>", re.IGNORECASE)
_CAPTION_LABEL_RE = re.compile(r"^(?:-\s*|>>\s*)?(?:\[(?P<br>[^\]]{1,48})\]\s*|(?P<co>[^:<>]{1,48}?)\s*:\s+)(?P<rest>.*)$")


def _split(text: str, scan: Scan) -> tuple[list[str], list[tuple[int, int]]]:
    """The file's lines without control / invisible characters, and each raw line's stripped span."""
    dirty = has_unsafe(text)
    lines: list[str] = []
    spans: list[tuple[int, int]] = []
    for pos, end in line_spans(text):
        raw = text[pos:end]
        line = raw
        if dirty:
            line, n_control, n_invisible = clean_text(raw)
            scan.dropped_controls += n_control
            scan.removed_invisible += n_invisible
        lines.append(line)
        spans.append((pos + len(raw) - len(raw.lstrip()), pos + len(raw.rstrip())))
    return lines, spans


def _caption_lines(lines: list[str], spans: list[tuple[int, int]]) -> Iterator[tuple[int, int, int, str | None, str]]:
    """Yield ``(line_number, start, end, cue_start_time, payload_line)`` for every caption text line.

    Lines of a block that is not a cue (no timing line) come with time ``None``.
    """
    i, n = 0, len(lines)
    while i < n:
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        if line.startswith(("WEBVTT", "NOTE", "STYLE", "REGION")) and not _CUE_TIME_RE.match(line):
            while i < n and lines[i].strip():  # a header or comment block
                i += 1
            continue
        # Optional cue identifier (SRT index) before the timing line.
        j = i + 1 if not _CUE_TIME_RE.match(line) and i + 1 < n and _CUE_TIME_RE.match(lines[i + 1]) else i
        m = _CUE_TIME_RE.match(lines[j])
        time = m["start"] if m else None  # not a cue: its lines are reported as unattributed (time None)
        if m:
            i = j + 1
        while i < n and lines[i].strip():
            yield i + 1, spans[i][0], spans[i][1], time, lines[i].strip()
            i += 1


_Part = tuple[int, int, int, str, str | None, str]  # (line, start, end, cue time, label or None, text)


def _caption_parts(lines: list[str], spans: list[tuple[int, int]], scan: Scan) -> list[_Part]:
    """Split cue lines into (label or None, text) parts; lines outside cues go to ``scan.unattributed``."""
    parts: list[_Part] = []
    for lineno, start, end, time, line in _caption_lines(lines, spans):
        if time is None:
            scan.unattributed.append(lineno)
            continue
        # Entities may spell control or invisible characters (&#27;, &#x202e;): removed like the others.
        line, n_control, n_invisible = clean_text(html.unescape(line.replace("&nbsp;", " ")))
        scan.dropped_controls += n_control
        scan.removed_invisible += n_invisible
        voices = list(_VOICE_RE.finditer(line))
        if voices:
            if voices[0].start() > 0 and _TAG_RE.sub("", line[: voices[0].start()]).strip():
                parts.append((lineno, start, end, time, None, _TAG_RE.sub("", line[: voices[0].start()])))
            for k, v in enumerate(voices):
                stop = voices[k + 1].start() if k + 1 < len(voices) else len(line)
                parts.append((lineno, start, end, time, v[1].strip(), _TAG_RE.sub("", line[v.end():stop])))
            continue
        plain = _TAG_RE.sub("", line)
        m = _CAPTION_LABEL_RE.match(plain)
        label = (m["br"] or m["co"]).strip() if m else None
        if m and label and (role_of_label(label) or name_label(label)):
            parts.append((lineno, start, end, time, label, m["rest"]))
        else:
            parts.append((lineno, start, end, time, None, plain))
    return parts


def segments_from_captions(text: str, known: set[str]) -> Scan:
    """Speaker segments of WebVTT / SRT captions; consecutive cues of one speaker are one segment."""
    scan = Scan()
    lines, spans = _split(text, scan)
    parts = _caption_parts(lines, spans, scan)
    # Names written as "Name:" need two uses (or to be given) to count as speakers.
    counts = Counter(p[4] for p in parts if p[4] and not role_of_label(p[4]))
    voiced = {p[4] for p in parts if p[4]} if any(_VOICE_RE.search(line) for line in lines) else set()

    def speaker(label: str | None) -> str | None:
        if label is None:
            return None
        if role_of_label(label) or label in voiced or counts[label] >= 2 or name_in(label, known):
            return label
        return None

    cur: Segment | None = None
    for lineno, start, end, time, label, body in parts:
        who = speaker(label)
        if label is not None and who is None:
            body = f"{label}: {body}"
            if cur is not None:
                scan.kept_label_lines.append(lineno)
        if who is not None and (cur is None or who != cur.speaker_raw):
            cur = Segment(who, [], start, end, lineno, time)
            scan.segments.append(cur)
        if cur is None:
            if body.strip():
                scan.unattributed.append(lineno)
            continue
        if body.strip():
            cur.pieces.append(body)
        cur.end = end
    scan.unattributed = sorted(set(scan.unattributed))
    return scan


_SRT_START_RE = re.compile(r"\d+[ \t]*(?:\r\n|[\n\r\x85\u2028\u2029])[ \t]*(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3}[ \t]*-->")


def looks_like_captions(text: str) -> bool:
    """WebVTT or SRT content, whatever the file is called."""
    head = text[:512].lstrip("\ufeff \t\r\n")
    return head.startswith("WEBVTT") or _SRT_START_RE.match(head) is not None
