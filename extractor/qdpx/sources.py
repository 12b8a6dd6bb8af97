"""The transcripts of a project as plain-text sources, each turn's character range in them.

A turn's ``source.file`` is a label, never a path to follow: the original transcript is
read only when it is one of the files, or lies in one of the folders, that the caller
names (``extract``: its inputs; ``qdpx export --sources DIR``), and only when the turns'
offsets still match it. Otherwise a synthetic ``Speaker: text`` source is written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from extractor.errors import InputError
from extractor.types import Turn, normalize_text

MAX_SOURCE_BYTES = 64 * 2**20  # one plain-text source
TEXT_SUFFIXES = (".txt", ".md", ".markdown")


@dataclass
class SourceText:
    """One interview as a plain-text source, with each turn's ``[start, end)`` range in it."""

    name: str
    text: str
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    file: str = ""


def aligned(text: str, turns: Sequence[Turn]) -> bool:
    """True when every turn's ``source`` offsets fall in ``text`` and start with its words."""
    for t in turns:
        s = t.source or {}
        start, end = s.get("start"), s.get("end")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
            return False
        words = normalize_text(t.text).split()
        if words and words[0] not in text[start:end]:
            return False
    return True


def source_range(t: Turn) -> tuple[int, int]:
    """A turn's ``[start, end)`` in its source file (the caller has checked they are there)."""
    s = t.source or {}
    return s["start"], s["end"]


def locate(label: str, allowed: Sequence[str | Path]) -> Path | None:
    """The file a turn's ``source.file`` stands for: one of the ``allowed`` files itself, or the
    file of that name directly inside one of the ``allowed`` folders (never outside it)."""
    from extractor.safeio import is_regular

    if not label:
        return None
    name = Path(label).name
    for root in map(Path, allowed):
        base = root.resolve()
        if base.is_dir():
            cand = root / name
            if name not in ("", ".", "..") and is_regular(cand) and cand.resolve().parent == base:
                return cand
        elif is_regular(root) and Path(label).resolve() == base:
            return root
    return None


def read_source_file(turns: Sequence[Turn], allowed: Sequence[str | Path]) -> tuple[str, str] | None:
    """The transcript file the turns were segmented from, if allowed and its offsets still match it."""
    from extractor.safeio import read_capped

    files = {str((t.source or {}).get("file") or "") for t in turns}
    path = locate(next(iter(files)), allowed) if len(files) == 1 else None
    if path is None or path.suffix.lower() not in TEXT_SUFFIXES:
        return None
    try:
        raw = read_capped(path, MAX_SOURCE_BYTES).decode("utf-8", errors="replace")
    except InputError:
        return None  # too large or unreadable: the synthetic source is used instead
    universal = raw.replace("\r\n", "\n").replace("\r", "\n")
    for text in (universal, raw):  # universal newlines first, then raw
        if aligned(text, turns):
            return str(path), text
    return None


def synthetic_source(name: str, turns: Sequence[Turn]) -> SourceText:
    """``Speaker: text`` paragraphs, one per turn."""
    chunks, ranges, pos = [], {}, 0
    for t in turns:
        prefix = f"{t.speaker_raw or t.speaker.capitalize()}: "
        body = normalize_text(t.text)
        ranges[t.id] = (pos + len(prefix), pos + len(prefix) + len(body))
        chunk = prefix + body + "\n\n"
        chunks.append(chunk)
        pos += len(chunk)
    return SourceText(name, "".join(chunks), ranges)


def build_sources(turns: Iterable[Turn], allowed: Sequence[str | Path] = ()) -> list[SourceText]:
    """Group turns by interview; use the original transcript where it is ``allowed`` (files or
    folders the user gave) and the turns' offsets match it, otherwise a synthetic text."""
    by_iv: dict[str, list[Turn]] = defaultdict(list)
    for t in turns:
        by_iv[t.interview].append(t)
    out = []
    for iv, ts in by_iv.items():
        ts.sort(key=lambda t: t.turn)
        found = read_source_file(ts, allowed) if allowed else None
        if found:
            path, text = found
            out.append(SourceText(iv, text, {t.id: source_range(t) for t in ts}, path))
        else:
            out.append(synthetic_source(iv, ts))
    return out
