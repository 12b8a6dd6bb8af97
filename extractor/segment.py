"""Segmentation: transcripts -> speaker turns (:class:`~extractor.types.Turn`).

Reads plain-text and Markdown transcripts (inline ``Speaker: text`` lines, speaker
headings ``## Interviewee`` / ``**Interviewer 1**``, unlabelled continuation lines,
timestamps), WebVTT and SRT captions (``<v Name>`` and ``Name:`` speakers) and ``.docx``.

Rules (they reproduce how the study's coded transcripts were cut into turns):

* every speaker label starts a new turn, even when the same speaker talks on; lines
  without a label continue the current turn (joined with a space); text before the
  first label is *unattributed* and reported, never silently dropped;
* a label indented deeper than the file's usual speaker lines is quoted text, not a
  new turn (transcription tools put such lines inside a turn);
* ``question`` is the text of the nearest preceding interviewer turn when it is at
  most :data:`QUESTION_WINDOW` turns back, else ``""``;
* roles: labels like ``Interviewer 2``, ``interviewr``, ``Interviewee1``, ``Q``/``A``,
  ``Moderator``, ``Participant`` carry their role. Named speakers (``Alice:``) are
  interviewers when listed in ``interviewers``, interviewees when listed in
  ``interviewees``; otherwise the named speaker who speaks the most words is the
  interviewee and every other named speaker an interviewer;
* captions (VTT/SRT) split speech into short cues, so consecutive cues of one
  speaker are merged into one turn.
"""

from __future__ import annotations

import codecs
import html
import logging
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from extractor.errors import InputError
from extractor.types import INTERVIEWEE, INTERVIEWER, Turn, natural_key, normalize_text, turn_id

log = logging.getLogger(__name__)

#: An interviewee turn's ``question`` is the nearest interviewer turn at most this many turns back.
QUESTION_WINDOW = 4
#: Files larger than this are refused unless the caller raises the limit (0 = no limit).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # a long interview is well under 1 MiB; 64 MiB stays under 1 GB of memory
MAX_DOCX_XML_BYTES = 16 * 1024 * 1024

# Any other suffix is read as plain text / Markdown (unless the content says captions or docx).
CAPTION_SUFFIXES = {".vtt", ".srt"}
DOCX_SUFFIXES = {".docx"}
# Formats we recognise but cannot read: say what to do instead of printing mojibake.
_UNSUPPORTED_HINTS = {
    ".doc": "save it as .docx", ".rtf": "save it as .docx or .txt", ".pdf": "export it to .txt",
    ".odt": "save it as .docx", ".pages": "export it to .docx", ".json": "segment the transcript, not JSON",
    ".jsonl": "this looks like a turns file already; later stages read it directly",
}
_MAGIC = {
    b"%PDF": "a PDF file", b"\x89PNG": "a PNG image", b"GIF8": "a GIF image", b"\xff\xd8\xff": "a JPEG image",
    b"\x7fELF": "an executable", b"\x1f\x8b": "a gzip archive", b"\xd0\xcf\x11\xe0": "an old MS Office (.doc) file",
}


@dataclass
class SegmentResult:
    """The turns of one transcript and what the segmenter noticed on the way.

    ``unattributed_lines`` are the 1-based line numbers (paragraph numbers for
    .docx) of text that is in no turn; ``roles`` maps each
    speaker label to the role given to it; ``notes`` are warnings for the user.
    """

    path: Path
    interview: str
    format: str
    encoding: str
    turns: list[Turn] = field(default_factory=list)
    unattributed_lines: list[int] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def unattributed(self) -> int:
        return len(self.unattributed_lines)

    @property
    def n_interviewee(self) -> int:
        return sum(t.is_interviewee for t in self.turns)

    def __iter__(self) -> Iterator[Turn]:
        return iter(self.turns)

    def __len__(self) -> int:
        return len(self.turns)


@dataclass
class BatchReport:
    """Filled in by :func:`segment_paths`: one result per file read, one failure per file skipped."""

    results: list[SegmentResult] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def turns(self) -> int:
        return sum(len(r) for r in self.results)

    @property
    def interviewee_turns(self) -> int:
        return sum(r.n_interviewee for r in self.results)

    @property
    def unattributed(self) -> int:
        return sum(r.unattributed for r in self.results)


# --------------------------------------------------------------------------- reading


def interview_name(path: str | Path) -> str:
    """``.../Interview 9.txt`` -> ``"Interview 9"`` (the file name without its suffix)."""
    return Path(path).stem.strip() or Path(path).name


def decode_bytes(data: bytes, path: str | Path = "<bytes>") -> tuple[str, str, list[str]]:
    """Decode transcript bytes; return ``(text, encoding, notes)``.

    UTF-8 (with or without BOM), UTF-16/32 with a BOM and BOM-less UTF-16 are detected;
    other bytes fall back to cp1252/Latin-1 with a note. Binary data raises
    :class:`InputError`.
    """
    notes: list[str] = []
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc, notes
            except UnicodeDecodeError as e:
                raise InputError(path, f"{enc} text (the file starts with a {enc} byte-order mark)",
                                 f"an undecodable byte at offset {e.start}") from None
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise InputError(path, "a text transcript", what)
    nul = data.count(b"\x00")
    if nul:
        enc = _bomless_utf16(data, nul)
        if enc is None:
            raise InputError(path, "a text transcript", f"binary data ({nul} NUL bytes, first at offset {data.index(0)})",
                             hint="is this a transcript?")
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as e:
            raise InputError(path, "a text transcript", f"binary data (undecodable byte at offset {e.start})") from None
        notes.append(f"no byte-order mark; read as {enc.upper()}")
        return text, enc, notes
    try:
        text, enc = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        # cp1252 is what Windows tools write; its 5 undefined bytes fall back to Latin-1.
        text, enc = data.decode("cp1252", errors=_LATIN1_FALLBACK), "cp1252"
        notes.append(f"not UTF-8 (undecodable byte 0x{data[e.start]:02x} at offset {e.start}); read as cp1252/Latin-1"
                     " - check accented characters")
    bad = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if bad > max(8, len(text[:65536]) // 100):
        raise InputError(path, "a text transcript", f"binary data ({bad} control characters in the first 64 KiB)",
                         hint="is this a transcript?")
    return text, enc, notes


_LATIN1_FALLBACK = "qi-extractor-latin1"
codecs.register_error(_LATIN1_FALLBACK, lambda e: (e.object[e.start:e.end].decode("latin-1"), e.end))


def _bomless_utf16(data: bytes, nul: int) -> str | None:
    """UTF-16 without a BOM: text of Latin letters has a NUL in every other byte."""
    sample = data[:65536]
    if len(sample) < 4 or nul < len(data) // 4:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > 0.4 * len(sample) / 2 and even < 0.05 * len(sample) / 2:
        return "utf-16-le"
    if even > 0.4 * len(sample) / 2 and odd < 0.05 * len(sample) / 2:
        return "utf-16-be"
    return None


# --------------------------------------------------------------------------- speaker labels

_ROLE_WORDS = {
    "interviewer": INTERVIEWER, "interviewers": INTERVIEWER, "moderator": INTERVIEWER, "researcher": INTERVIEWER,
    "host": INTERVIEWER, "facilitator": INTERVIEWER, "q": INTERVIEWER, "question": INTERVIEWER, "i": INTERVIEWER,
    "intervieweur": INTERVIEWER, "enqueteur": INTERVIEWER, "enquêteur": INTERVIEWER,
    "interviewee": INTERVIEWEE, "interviewees": INTERVIEWEE, "participant": INTERVIEWEE, "respondent": INTERVIEWEE,
    "a": INTERVIEWEE, "answer": INTERVIEWEE, "p": INTERVIEWEE, "guest": INTERVIEWEE, "interviewé": INTERVIEWEE,
    "r": INTERVIEWEE,  # "I:" / "R:" (interviewer / respondent), a common qualitative-research convention
    "interviewée": INTERVIEWEE,
}
# Words that end with a colon at the start of a line without naming a speaker.
_NOT_SPEAKERS = {
    "note", "notes", "nb", "example", "examples", "update", "edit", "edited", "warning", "source", "sources",
    "summary", "todo", "ps", "re", "date", "time", "duration", "location", "place", "title", "topic", "subject",
    "interview", "transcript", "attendees", "participants", "speakers", "recording", "link", "http", "https",
    "ok", "okay", "so", "yes", "no", "well", "um", "uh", "and", "but", "because", "also", "then", "step", "tip",
    "answer key", "question key", "file", "project", "language", "meeting", "agenda", "action items",
}
_ROLE_RE = re.compile(r"^(?P<word>[^\W\d_]+(?:[ .-][^\W\d_]+)?)[\s._#-]*(?P<num>\d+(?:\s+\d+)?)?$")
# Capitalised words ("Maria Lopez", "Dr. Bob Li", "Speaker 2"), lowercase particles allowed.
_NAME_RE = re.compile(
    r"^[A-Z\u00C0-\u00DE][\w.'\u2019-]*(?:\s+(?:[A-Z0-9\u00C0-\u00DE][\w.'\u2019-]*"
    r"|van|von|de|der|den|da|di|du|del|della|la|le|bin|ibn|al|el)){0,3}$")
_PAREN_RE = re.compile(r"^(?P<name>[^()]+?)\s*\((?P<inner>[^()]{1,40})\)$")
_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
_TIME_RE = re.compile(_TIME)
_LEAD_TIME_RE = re.compile(rf"^[\[(]?(?P<time>{_TIME})[\])]?(?:\s+|$)")
_TRAIL_TIME_RE = re.compile(rf"\s*[\[(]?(?P<time>{_TIME})[\])]?\s*$")


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@lru_cache(maxsize=4096)
def role_of_label(label: str) -> str | None:
    """Role named by a speaker label (``"Interviewer 2"``, ``"interviewr"``, ``"Q"``), else ``None``.

    Misspellings of interviewer/interviewee within two edits are recognised; the
    ending (``-er`` vs ``-ee``) decides between them.
    """
    label = label.strip().strip("*_#:").strip()
    m = _PAREN_RE.match(label)
    if m:  # "Alice (Interviewer)" or "Interviewer (Alice)"
        return role_of_label(m["inner"]) or role_of_label(m["name"])
    m = _ROLE_RE.match(label)
    if not m:
        return None
    word = m["word"].lower().replace(" ", "").replace("-", "").replace(".", "")
    if word in _ROLE_WORDS:
        # Single letters only count as roles in their Q/A/I/R/P1 uses, not as initials of names.
        if len(word) == 1 and (word == "p") != bool(m["num"]):
            return None
        return _ROLE_WORDS[word]
    if 7 <= len(word) <= 14 and word.startswith("int"):
        d_er, d_ee = _edit_distance(word, "interviewer"), _edit_distance(word, "interviewee")
        if min(d_er, d_ee) <= 2:
            if word.endswith(("er", "r", "eur")):
                return INTERVIEWER
            if word.endswith(("ee", "e", "é", "ée")):
                return INTERVIEWEE
            if d_er != d_ee:
                return INTERVIEWER if d_er < d_ee else INTERVIEWEE
    return None


def _name_label(label: str) -> str | None:
    """The label itself when it looks like a person's name ("Alice", "Dr. Bob Li"), else ``None``."""
    m = _PAREN_RE.match(label)
    core = m["name"] if m else label
    if len(label) > 48 or not _NAME_RE.match(core) or core.lower().rstrip(".") in _NOT_SPEAKERS:
        return None
    return label


def _split_label(label: str) -> tuple[str, str | None]:
    """Remove a timestamp from a label: ``"Alice [00:01:02]"`` -> ``("Alice", "00:01:02")``."""
    m = _TRAIL_TIME_RE.search(label)
    if m and m.start() > 0:
        return label[: m.start()].strip(), m["time"]
    m = _LEAD_TIME_RE.match(label)
    if m and m.end() < len(label):
        return label[m.end():].strip(), m["time"]
    return label.strip(), None


def _norm_name(name: str) -> str:
    return normalize_text(name).casefold()


def _name_in(label: str, names: set[str]) -> bool:
    """Whether a speaker label is one of the given names ("Maria" also matches "Maria Lopez")."""
    if not names:
        return False
    key, base = _norm_name(label), _norm_name(label.split("(")[0])
    return any(key == n or base == n or key.startswith(n + " ") for n in names)


# --------------------------------------------------------------------------- line parsing

# One classified line of a text transcript.
_TEXT, _LABEL, _IGNORED = 1, 2, 3

_HEADING_RE = re.compile(r"^#{1,6}\s*(?P<body>.*?)\s*#*\s*$")
_BOLD_RE = re.compile(r"^(?P<mark>\*\*|__)(?P<label>[^*_\n]{1,60}?)(?P=mark)\s*(?P<rest>.*)$")
_COLON_RE = re.compile(r"^(?P<label>[^:\n]{1,60}?)\s*:(?:\s+|$)(?P<rest>.*)$")
_TIMED_COLON_RE = re.compile(rf"^(?P<label>[^:\n\[(]{{1,60}}?)\s*[\[(](?P<time>{_TIME})[\])]\s*:\s*(?P<rest>.*)$")
_RULE_RE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,}|={3,})$")
_TIME_ONLY_RE = re.compile(rf"^[\[(]?{_TIME}[\])]?(?:\s*-->?\s*[\[(]?{_TIME}[\])]?)?$")


@dataclass(slots=True)
class _Line:
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


def _classify(stripped: str) -> tuple[int, str, str, str | None, bool, bool]:
    """``(kind, label, rest, time, markup, bare)`` of one non-blank stripped line."""
    if _RULE_RE.match(stripped):
        return _IGNORED, "", "", None, False, False
    if _TIME_ONLY_RE.match(stripped):  # its time goes to the next turn
        return _IGNORED, "", "", _TIME_RE.search(stripped)[0], False, False
    time = None
    body = stripped
    m = _LEAD_TIME_RE.match(body)
    if m:  # "[00:38:00] Interviewee: ..." - the time belongs to the turn
        time, body = m["time"], body[m.end():]
    m = _HEADING_RE.match(body) if body.startswith("#") else None
    if m:
        label, t = _split_label(m["body"].strip("*_ ").rstrip(":").strip("*_ "))
        return _LABEL, label, "", t or time, True, False
    m = _BOLD_RE.match(body) if body[:1] in "*_" else None
    if m:
        label, t = _split_label(m["label"].strip().rstrip(":"))
        rest = m["rest"]
        rest = rest[1:].strip() if rest.startswith(":") else rest
        return _LABEL, label, rest, t or time, True, False
    m = _TIMED_COLON_RE.match(body)
    if m:  # "Interviewee [00:38:10]: text"
        return _LABEL, m["label"].strip(), m["rest"], m["time"], False, False
    m = _COLON_RE.match(body)
    if m and not _TIME_RE.fullmatch(m["label"]):
        label, t = _split_label(m["label"])
        rest = m["rest"]
        mt = _LEAD_TIME_RE.match(rest)
        if mt:  # "Interviewer 1: [00:12:40] text"
            t, rest = t or mt["time"], rest[mt.end():]
        return _LABEL, label, rest, t or time, False, False
    # A line holding only a label ("Interviewee", "Alice  00:03", "Interviewer 1 [00:38:00]").
    if len(body) <= 60:
        label, t = _split_label(body)
        return _LABEL, label, "", t or time, False, not (t or time)
    return _TEXT, "", stripped, None, False, False


def _parse_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    pos, lineno, n = 0, 0, len(text)
    while pos < n:
        nl = text.find("\n", pos)
        end = n if nl < 0 else nl
        lineno += 1
        raw = text[pos:end]
        stripped = raw.strip()
        if stripped:
            lead = len(raw) - len(raw.lstrip())
            start = pos + lead
            kind, label, rest, time, markup, bare = _classify(stripped)
            lines.append(_Line(kind, start, start + len(stripped), lineno, lead, label, rest, time, markup, bare))
        pos = end + 1
    return lines


@dataclass(slots=True)
class _Segment:
    speaker_raw: str
    pieces: list[str]
    start: int
    end: int
    lineno: int
    time: str | None = None


def _speaker_labels(lines: Sequence[_Line], known: set[str]) -> set[str]:
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
        elif not ln.bare and _name_label(ln.label):
            counts[ln.label] += 1
            if ln.time and not ln.rest and not ln.markup:
                timed.add(ln.label)
    speakers = {lab for lab in counts if _name_in(lab, known)}
    if roles < 2:
        speakers |= {lab for lab, c in counts.items() if c >= 2 or lab in timed}
    return speakers


def _segments_from_lines(text: str, lines: list[_Line], known: set[str]) -> tuple[list[_Segment], list[int]]:
    speakers = _speaker_labels(lines, known)

    def is_speaker(ln: _Line) -> bool:
        if ln.kind != _LABEL or (ln.bare and len(ln.label) < 3):  # a lone "A" line is not a speaker
            return False
        return ln.label in speakers or role_of_label(ln.label) is not None

    # Labels indented deeper than the file's usual speaker lines are quoted text.
    indents = Counter(ln.indent for ln in lines if is_speaker(ln))
    base_indent = indents.most_common(1)[0][0] if indents else 0

    segments: list[_Segment] = []
    unattributed: list[int] = []
    cur: _Segment | None = None
    pending_time: str | None = None
    for ln in lines:
        if ln.kind == _IGNORED:
            pending_time = ln.time or pending_time
            continue
        if is_speaker(ln) and ln.indent <= base_indent:
            cur = _Segment(ln.label, [ln.rest] if ln.rest.strip() else [], ln.start, ln.end, ln.lineno,
                           ln.time or pending_time)
            pending_time = None
            segments.append(cur)
            continue
        if ln.kind == _LABEL and ln.markup and not ln.rest and ln.label and not is_speaker(ln):
            # A heading that names no speaker (a title): not speech.
            unattributed.append(ln.lineno)
            continue
        if cur is None:
            unattributed.append(ln.lineno)
            continue
        cur.pieces.append(text[ln.start:ln.end])  # as written, label included
        cur.end = ln.end
    return segments, unattributed


# --------------------------------------------------------------------------- captions

_CUE_TIME_RE = re.compile(
    r"^\s*(?P<start>(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*(?P<end>(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3})")
_VOICE_RE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
_TAG_RE = re.compile(r"</?[a-z][^>]*>|<\d[\d:.]*>", re.IGNORECASE)
_CAPTION_LABEL_RE = re.compile(r"^(?:-\s*|>>\s*)?(?:\[(?P<br>[^\]]{1,48})\]\s*|(?P<co>[^:<>]{1,48}?)\s*:\s+)(?P<rest>.*)$")


def _caption_lines(text: str) -> Iterator[tuple[int, int, int, str | None, str]]:
    """Yield ``(line_number, start, end, cue_start_time, payload_line)`` for every caption text line.

    Lines of a block that is not a cue (no timing line) come with time ``None``.
    """
    lines = text.split("\n")
    pos, i = 0, 0
    offsets = []
    for ln in lines:
        offsets.append(pos)
        pos += len(ln) + 1
    n = len(lines)
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
        if not m:  # not a cue: its lines are reported as unattributed (time None)
            while i < n and lines[i].strip():
                raw = lines[i]
                yield i + 1, offsets[i], offsets[i] + len(raw), None, raw.strip()
                i += 1
            continue
        time = m["start"]
        i = j + 1
        while i < n and lines[i].strip():
            raw = lines[i]
            lead = len(raw) - len(raw.lstrip())
            yield i + 1, offsets[i] + lead, offsets[i] + len(raw.rstrip()), time, raw.strip()
            i += 1


def _segments_from_captions(text: str, known: set[str]) -> tuple[list[_Segment], list[int]]:
    # Pass 1: split cue lines into (label or None, text) parts.
    parts: list[tuple[int, int, int, str, str | None, str]] = []
    stray: list[int] = []
    for lineno, start, end, time, line in _caption_lines(text):
        if time is None:
            stray.append(lineno)
            continue
        line = html.unescape(line.replace("&nbsp;", " "))
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
        if label and (role_of_label(label) or _name_label(label)):
            parts.append((lineno, start, end, time, label, m["rest"]))
        else:
            parts.append((lineno, start, end, time, None, plain))
    # Names written as "Name:" need two uses (or to be given) to count as speakers.
    counts = Counter(p[4] for p in parts if p[4] and not role_of_label(p[4]))
    voiced = {p[4] for p in parts if p[4]} if _VOICE_RE.search(text) else set()

    def speaker(label: str | None) -> str | None:
        if label is None:
            return None
        if role_of_label(label) or label in voiced or counts[label] >= 2 or _name_in(label, known):
            return label
        return None

    segments: list[_Segment] = []
    unattributed: list[int] = stray
    cur: _Segment | None = None
    for lineno, start, end, time, label, body in parts:
        who = speaker(label)
        if label is not None and who is None:
            body = f"{label}: {body}"
        if who is not None and (cur is None or who != cur.speaker_raw):
            cur = _Segment(who, [], start, end, lineno, time)
            segments.append(cur)
        if cur is None:
            if body.strip():
                unattributed.append(lineno)
            continue
        if body.strip():
            cur.pieces.append(body)
        cur.end = end
    return segments, sorted(set(unattributed))


# --------------------------------------------------------------------------- docx


def _docx_text(path: Path, max_bytes: int = 0) -> str:
    """Paragraphs (and table rows as ``cell: cell``) joined by newlines; headings become ``## ``.

    The archive is checked first (:func:`extractor.safeio.check_zip`): a zip bomb is refused
    from its declared sizes before python-docx inflates anything, and ``max_bytes`` caps the
    uncompressed total too.
    """
    import docx  # python-docx; imported here to keep `import extractor` light
    from docx.table import Table

    from extractor.safeio import MAX_ARCHIVE_BYTES, MAX_MEMBER_BYTES, open_zip

    total = min(MAX_ARCHIVE_BYTES, max_bytes) if max_bytes else MAX_ARCHIVE_BYTES
    with open_zip(path, what="a Word .docx document", max_member=min(MAX_MEMBER_BYTES, total),
                  max_total=total) as zf:
        # XML parts become an lxml tree (~40 bytes of memory per byte): a tighter cap keeps
        # the peak under 1 GB. A long interview's document.xml is a few MiB.
        for info in zf.infolist():
            if info.filename.lower().endswith((".xml", ".rels")) and info.file_size > MAX_DOCX_XML_BYTES:
                raise InputError(path, f"Word XML parts of at most {_size(MAX_DOCX_XML_BYTES)}",
                                 f"{info.filename!r} of {_size(info.file_size)}",
                                 hint="split the document, or save it as .txt")
    try:
        document = docx.Document(str(path))
    except Exception as e:  # python-docx raises several unrelated types for broken files
        raise InputError(path, "a Word .docx document", f"an unreadable file ({type(e).__name__}: {e})"[:200]) from None
    # Style names looked up once: python-docx's Paragraph.style searches the styles part on
    # every call (about 2 ms per paragraph, minutes for a large document).
    style_names = {st.style_id: st.name or "" for st in document.styles}
    out: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = [c.text.strip() for c in row.cells]
                cells = [c for k, c in enumerate(cells) if c and c not in cells[:k]]
                if cells:
                    out.append(cells[0] + (": " + " ".join(cells[1:]) if len(cells) > 1 else ""))
            continue
        sid = block._p.style  # the paragraph's own style id; None = the default (Normal) style
        style = style_names.get(sid, sid or "") if sid else ""
        txt = block.text
        out.append(f"## {txt}" if style.lower().startswith(("heading", "title")) and txt.strip() else txt)
    return "\n".join(out)


# --------------------------------------------------------------------------- assembling turns


def _assign_roles(segments: Sequence[_Segment], interviewers: set[str], interviewees: set[str],
                  notes: list[str]) -> dict[str, str]:
    roles: dict[str, str] = {}
    named_words: Counter[str] = Counter()
    for seg in segments:
        if seg.speaker_raw in roles or seg.speaker_raw in named_words:
            if seg.speaker_raw in named_words:
                named_words[seg.speaker_raw] += sum(len(p.split()) for p in seg.pieces)
            continue
        if _name_in(seg.speaker_raw, interviewers):
            roles[seg.speaker_raw] = INTERVIEWER
        elif _name_in(seg.speaker_raw, interviewees):
            roles[seg.speaker_raw] = INTERVIEWEE
        elif (role := role_of_label(seg.speaker_raw)) is not None:
            roles[seg.speaker_raw] = role
        else:
            named_words[seg.speaker_raw] += sum(len(p.split()) for p in seg.pieces)
    if named_words and (interviewers or interviewees) and not any(
            _name_in(s, interviewers | interviewees) for s in roles):
        notes.append(f"none of the names given with --interviewer/--interviewee is a speaker here"
                     f" (speakers: {', '.join(named_words)})")
    if named_words:
        if interviewers and not interviewees:
            guessed = {name: INTERVIEWEE for name in named_words}
        elif interviewees and not interviewers:
            guessed = {name: INTERVIEWER for name in named_words}
        elif INTERVIEWEE in roles.values() and not interviewers:
            guessed = {name: INTERVIEWER for name in named_words}
        else:
            # Default rule: the named speaker with the most words is the interviewee.
            top = max(named_words, key=lambda s: (named_words[s], -list(named_words).index(s)))
            guessed = {name: INTERVIEWEE if name == top else INTERVIEWER for name in named_words}
            who = ", ".join(f"{n}={r}" for n, r in guessed.items())
            notes.append(f"speaker roles guessed ({who}: the speaker with the most words is the interviewee);"
                         " name the interviewers with --interviewer to override")
        roles.update(guessed)
    return roles


def _build_turns(segments: Sequence[_Segment], roles: dict[str, str], interview: str, file: str) -> list[Turn]:
    turns: list[Turn] = []
    last_interviewer: int | None = None
    seen: Counter[tuple[str, str]] = Counter()
    for seg in segments:
        # A label with nothing after it still makes a (blank) turn, as in the coded
        # transcripts, so turn numbers line up with theirs. str.split() collapses the
        # same whitespace as normalize_text, several times faster on big files.
        text = " ".join(" ".join(seg.pieces).split())
        k = len(turns)
        speaker = roles[seg.speaker_raw]
        question = ""
        if last_interviewer is not None and k - last_interviewer <= QUESTION_WINDOW:
            question = turns[last_interviewer].text
        source = {"file": file, "start": seg.start, "end": seg.end, "line": seg.lineno}
        if seg.time:
            source["time"] = seg.time
        # Same ids as extractor.types.with_ids gives the gold file (occurrence-counted).
        occurrence = seen[speaker, text]
        seen[speaker, text] += 1
        turns.append(Turn(interview=interview, turn=k, speaker=speaker, text=text, question=question,
                          speaker_raw=seg.speaker_raw, id=turn_id(interview, speaker, text, occurrence),
                          source=source))
        if speaker == INTERVIEWER:
            last_interviewer = k
    return turns


def _names(names: Iterable[str] | str | None) -> set[str]:
    if names is None:
        return set()
    if isinstance(names, str):
        names = names.split(",")
    return {_norm_name(n) for n in names if n and n.strip()}


def detect_format(path: Path, head: bytes) -> str:
    """``"text"`` (plain or Markdown), ``"captions"`` (VTT/SRT) or ``"docx"``."""
    suffix = path.suffix.lower()
    if suffix in DOCX_SUFFIXES or (head.startswith(b"PK\x03\x04") and suffix not in CAPTION_SUFFIXES):
        return "docx"
    if suffix in CAPTION_SUFFIXES:
        return "captions"
    return "text"


_SRT_START_RE = re.compile(r"\d+[ \t]*\r?\n[ \t]*(?:\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3}[ \t]*-->")


def _looks_like_captions(text: str) -> bool:
    """WebVTT or SRT content, whatever the file is called."""
    head = text[:512].lstrip("\ufeff \t\r\n")
    return head.startswith("WEBVTT") or _SRT_START_RE.match(head) is not None


def segment_text(
    text: str,
    interview: str,
    *,
    fmt: str = "text",
    file: str = "",
    interviewers: Iterable[str] | str | None = None,
    interviewees: Iterable[str] | str | None = None,
    path: str | Path | None = None,
) -> SegmentResult:
    """Segment already-decoded transcript text.

    ``fmt``: ``"text"`` (plain text or Markdown), ``"captions"`` (WebVTT/SRT) or
    ``"docx"`` (paragraph text, numbered by paragraph).

    Raises :class:`InputError` when the text is empty or has no recognisable speaker.
    """
    where = path if path is not None else (file or "<text>")
    ivr, ive = _names(interviewers), _names(interviewees)
    result = SegmentResult(Path(where), interview, fmt, "")
    if not text.strip():
        raise InputError(where, "a transcript", "an empty file" if not text else "only whitespace")
    if fmt == "captions":
        segments, unattributed = _segments_from_captions(text, ivr | ive)
    else:
        lines = _parse_lines(text)
        segments, unattributed = _segments_from_lines(text, lines, ivr | ive)
    if not segments:
        n_lines = text.count("\n") + 1
        raise InputError(
            where, "speaker labels (e.g. 'Interviewer 1: ...', '## Interviewee', '<v Alice>')",
            f"none in {n_lines} line{'s' * (n_lines != 1)}",
            hint="name speakers with --interviewer/--interviewee if they are written as names",
        )
    result.roles = _assign_roles(segments, ivr, ive, result.notes)
    result.turns = _build_turns(segments, result.roles, interview, file or str(where))
    result.unattributed_lines = unattributed
    if not any(t.text for t in result.turns):
        raise InputError(where, "speech after the speaker labels", "only labels with no text")
    if unattributed:
        shown = ", ".join(map(str, unattributed[:5])) + (", ..." if len(unattributed) > 5 else "")
        unit = "paragraph" if fmt == "docx" else "line"
        result.notes.append(f"{len(unattributed)} {unit}{'s' * (len(unattributed) != 1)} not attributed to a speaker"
                            f" ({unit} {shown})")
    if not any(t.is_interviewee for t in result.turns):
        result.notes.append("no interviewee turn found; check the speaker roles (--interviewer/--interviewee)")
    return result


def segment_file(
    path: str | Path,
    *,
    interviewers: Iterable[str] | str | None = None,
    interviewees: Iterable[str] | str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    interview: str | None = None,
) -> SegmentResult:
    """Segment one transcript file (format from its suffix and content).

    ``interviewers``/``interviewees``: names (list or comma-separated string) for
    transcripts whose speakers are people's names; ``max_bytes`` refuses larger files
    (0 = no limit). Raises :class:`InputError` with a one-line message on bad input.
    """
    from extractor.safeio import open_regular, read_capped

    path = Path(path)
    if not path.exists():
        raise InputError(path, "an existing transcript file", "no such file")
    if path.is_dir():
        raise InputError(path, "a transcript file", "a directory", hint="use segment_paths for directories")
    suffix = path.suffix.lower()
    if suffix in _UNSUPPORTED_HINTS:
        raise InputError(path, "a .txt, .md, .vtt, .srt or .docx transcript", f"a {suffix} file",
                         hint=_UNSUPPORTED_HINTS[suffix])
    # Regular files only: a FIFO would block forever, /dev/zero never ends.
    with open_regular(path, what="a transcript file") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
    if max_bytes and size > max_bytes:
        raise InputError(path, f"a transcript of at most {_size(max_bytes)}", _size(size),
                         hint="raise the limit with --max-mb (0 = no limit)")
    fmt = detect_format(path, head)
    name = interview or interview_name(path)
    if fmt == "docx":
        if not zipfile.is_zipfile(path):
            raise InputError(path, "a Word .docx document (a zip archive)",
                             "an empty file" if size == 0 else "something else", hint="is it an old .doc? save it as .docx")
        text, encoding, notes = _docx_text(path, max_bytes), "docx", []
    else:
        data = read_capped(path, max_bytes, what="a transcript file",
                           hint="raise the limit with --max-mb (0 = no limit)")
        if not data:
            raise InputError(path, "a transcript", "an empty file")
        text, encoding, notes = decode_bytes(data, path)
        del data
        if fmt == "text" and _looks_like_captions(text):
            fmt = "captions"
    res = segment_text(text, name, fmt=fmt, file=str(path), interviewers=interviewers,
                       interviewees=interviewees, path=path)
    if fmt == "captions":
        res.format = "vtt" if text.lstrip("\ufeff \t\r\n").startswith("WEBVTT") else "srt"
    res.encoding = encoding
    res.notes[:0] = notes
    for note in res.notes:
        log.debug("%s: %s", path, note)
    return res


def _size(n: int) -> str:
    value, unit = (n / 2**20, "MiB") if n >= 2**20 else (n / 1024, "KiB")
    return f"{value:.1f}".removesuffix(".0") + " " + unit


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, plus the visible files directly inside named directories (natural order)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            # A FIFO or device in the directory is listed too: segment_file refuses it without
            # opening it for reading (no hang), and the batch reports it as skipped.
            files = [f for f in p.iterdir() if not f.name.startswith(".") and not f.is_dir()]
            out.extend(sorted(files, key=lambda f: natural_key(f.name)))
        else:
            out.append(p)
    return out


def segment_paths(
    paths: Iterable[str | Path],
    *,
    interviewers: Iterable[str] | str | None = None,
    interviewees: Iterable[str] | str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    report: BatchReport | None = None,
    progress: bool = False,
) -> Iterator[Turn]:
    """Yield the turns of every transcript in ``paths`` (files or directories), file by file.

    A file that cannot be read is skipped and recorded in ``report.failures``; the
    others are still segmented. Without a ``report``, failures and each file's notes
    are logged as warnings instead.
    """
    level = logging.DEBUG if report is not None else logging.WARNING
    files = expand_paths(paths)
    seen: dict[str, Path] = {}
    if progress:
        from tqdm import tqdm

        files_iter = tqdm(files, desc="segment", unit="file", disable=None if len(files) > 1 else True)
    else:
        files_iter = files
    for f in files_iter:
        try:
            res = segment_file(f, interviewers=interviewers, interviewees=interviewees, max_bytes=max_bytes)
        except InputError as e:
            log.log(level, "skipped %s", e)
            if report is not None:
                report.failures.append((f, str(e)))
            continue
        if res.interview in seen:
            # Two files with one interview name would give two turns per (interview, turn) and
            # clashing ids downstream: the second file is skipped, not silently merged.
            e = InputError(f, "a unique interview name (the file name without suffix)",
                           f"{res.interview!r} also from {seen[res.interview]}", hint="rename one of the files")
            log.log(level, "skipped %s", e)
            if report is not None:
                report.failures.append((f, str(e)))
            continue
        for note in res.notes:
            log.log(level, "%s: %s", f, note)
        seen[res.interview] = f
        if report is not None:
            report.results.append(res)
        yield from res.turns


__all__ = [
    "BatchReport", "DEFAULT_MAX_BYTES", "QUESTION_WINDOW", "SegmentResult", "decode_bytes", "detect_format",
    "expand_paths", "interview_name", "role_of_label", "segment_file", "segment_paths", "segment_text",
]
