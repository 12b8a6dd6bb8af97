"""The public segmentation functions: text -> :class:`SegmentResult`, files and folders -> turns."""

from __future__ import annotations

import logging
import os
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from extractor.errors import InputError
from extractor.segment.captions import looks_like_captions, segments_from_captions
from extractor.segment.decode import decode_bytes, format_size
from extractor.segment.records import BatchReport, Scan, Segment, SegmentResult
from extractor.segment.speakers import assign_roles, name_set
from extractor.segment.textlines import segments_from_lines
from extractor.segment.word import docx_text
from extractor.textsafe import clean_text, count_lines
from extractor.types import INTERVIEWER, Turn, natural_key, turn_id

log = logging.getLogger("extractor.segment")

#: An interviewee turn's ``question`` is the nearest interviewer turn at most this many turns back.
QUESTION_WINDOW = 4
#: Files larger than this are refused unless the caller raises the limit (0 = no limit).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # a long interview is well under 1 MiB; 64 MiB stays under 1 GB of memory

# Any other suffix is read as plain text / Markdown (unless the content says captions or docx).
CAPTION_SUFFIXES = {".vtt", ".srt"}
DOCX_SUFFIXES = {".docx"}
# Formats we recognise but cannot read: say what to do instead of printing mojibake.
_UNSUPPORTED_HINTS = {
    ".doc": "save it as .docx", ".rtf": "save it as .docx or .txt", ".pdf": "export it to .txt",
    ".odt": "save it as .docx", ".pages": "export it to .docx", ".json": "segment the transcript, not JSON",
    ".jsonl": "this looks like a turns file already; later stages read it directly",
}


def interview_name(path: str | Path) -> str:
    """``.../Interview 9.txt`` -> ``"Interview 9"`` (the file name without its suffix)."""
    path = Path(path)
    stem = clean_text(path.stem)[0].strip()
    return stem or clean_text(path.name)[0] or path.name


def build_turns(segments: Sequence[Segment], roles: dict[str, str], interview: str, file: str) -> list[Turn]:
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


def detect_format(path: Path, head: bytes) -> str:
    """``"text"`` (plain or Markdown), ``"captions"`` (VTT/SRT) or ``"docx"``."""
    suffix = path.suffix.lower()
    if suffix in DOCX_SUFFIXES or (head.startswith(b"PK\x03\x04") and suffix not in CAPTION_SUFFIXES):
        return "docx"
    if suffix in CAPTION_SUFFIXES:
        return "captions"
    return "text"


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
    ivr, ive = name_set(interviewers), name_set(interviewees)
    result = SegmentResult(Path(where), interview, fmt, "")
    if not text.strip():
        raise InputError(where, "a transcript", "an empty file" if not text else "only whitespace")
    scan = segments_from_captions(text, ivr | ive) if fmt == "captions" else segments_from_lines(text, ivr | ive)
    if not scan.segments:
        n_lines = count_lines(text)
        raise InputError(
            where, "speaker labels (e.g. 'Interviewer 1: ...', '## Interviewee', '<v Alice>')",
            f"none in {n_lines} line{'s' * (n_lines != 1)}",
            hint="name speakers with --interviewer/--interviewee if they are written as names",
        )
    result.roles = assign_roles(scan.segments, ivr, ive, result.notes)
    result.turns = build_turns(scan.segments, result.roles, interview, file or str(where))
    if not any(t.text for t in result.turns):
        raise InputError(where, "speech after the speaker labels", "only labels with no text")
    _record_scan(result, scan)
    if not any(t.is_interviewee for t in result.turns):
        result.notes.append("no interviewee turn found; check the speaker roles (--interviewer/--interviewee)")
    return result


def _lines_text(unit: str, numbers: Sequence[int]) -> tuple[str, str]:
    shown = ", ".join(map(str, numbers[:5])) + (", ..." if len(numbers) > 5 else "")
    return f"{len(numbers)} {unit}{'s' * (len(numbers) != 1)}", f"{unit} {shown}"


def _record_scan(result: SegmentResult, scan: Scan) -> None:
    """Copy what the reader dropped, removed or kept into ``result``, with a note for each."""
    unit = "paragraph" if result.format == "docx" else "line"
    result.unattributed_lines = scan.unattributed
    result.dropped_controls, result.removed_invisible = scan.dropped_controls, scan.removed_invisible
    result.kept_label_lines = scan.kept_label_lines
    if scan.unattributed:
        count, where = _lines_text(unit, scan.unattributed)
        result.notes.append(f"{count} not attributed to a speaker ({where})")
    if scan.dropped_controls:
        n = scan.dropped_controls
        result.notes.append(f"{n} control character{'s' * (n != 1)} (escape sequences, NUL, ...) dropped from the text")
    if scan.removed_invisible:
        n = scan.removed_invisible
        result.notes.append(f"{n} invisible formatting character{'s' * (n != 1)} (zero-width, bidi, BOM, soft hyphen)"
                            " removed before speaker labels were matched")
    if scan.kept_label_lines:
        count, where = _lines_text(unit, scan.kept_label_lines)
        result.notes.append(f"{count} starting like a speaker label kept as text of the turn before ({where}); "
                            "name the speaker with --interviewer/--interviewee if it is one")


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
    from extractor.safeio import open_regular

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
        raise InputError(path, f"a transcript of at most {format_size(max_bytes)}", format_size(size),
                         hint="raise the limit with --max-mb (0 = no limit)")
    fmt = detect_format(path, head)
    name = interview or interview_name(path)
    text, encoding, notes, fmt = _read_text(path, fmt, size, max_bytes)
    res = segment_text(text, name, fmt=fmt, file=str(path), interviewers=interviewers,
                       interviewees=interviewees, path=path)
    if fmt == "captions":
        res.format = "vtt" if text.lstrip("\ufeff \t\r\n").startswith("WEBVTT") else "srt"
    res.encoding = encoding
    res.notes[:0] = notes
    for note in res.notes:
        log.debug("%s: %s", path, note)
    return res


def _read_text(path: Path, fmt: str, size: int, max_bytes: int) -> tuple[str, str, list[str], str]:
    """``(text, encoding, notes, format)`` of a transcript file (the format may turn out to be captions)."""
    from extractor.safeio import read_capped

    if fmt == "docx":
        if not zipfile.is_zipfile(path):
            raise InputError(path, "a Word .docx document (a zip archive)",
                             "an empty file" if size == 0 else "something else", hint="is it an old .doc? save it as .docx")
        return docx_text(path, max_bytes), "docx", [], fmt
    data = read_capped(path, max_bytes, what="a transcript file", hint="raise the limit with --max-mb (0 = no limit)")
    if not data:
        raise InputError(path, "a transcript", "an empty file")
    text, encoding, notes = decode_bytes(data, path)
    del data
    if fmt == "text" and looks_like_captions(text):
        fmt = "captions"
    return text, encoding, notes, fmt


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
            dup = InputError(f, "a unique interview name (the file name without suffix)",
                             f"{res.interview!r} also from {seen[res.interview]}", hint="rename one of the files")
            log.log(level, "skipped %s", dup)
            if report is not None:
                report.failures.append((f, str(dup)))
            continue
        for note in res.notes:
            log.log(level, "%s: %s", f, note)
        seen[res.interview] = f
        if report is not None:
            report.results.append(res)
        yield from res.turns
