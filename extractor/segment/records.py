"""What segmentation produces besides turns: per-file results, batch reports, raw segments."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from extractor.types import Turn


@dataclass
class SegmentResult:
    """The turns of one transcript and what the segmenter noticed on the way.

    ``unattributed_lines`` are the 1-based line numbers (paragraph numbers for
    .docx) of text that is in no turn; ``roles`` maps each
    speaker label to the role given to it; ``notes`` are warnings for the user.
    ``dropped_controls`` / ``removed_invisible`` count the control characters and the
    invisible formatting characters (zero-width, bidi) removed from the text;
    ``kept_label_lines`` are the lines that start like a speaker label (``Name: ...``)
    but were kept as text of the turn before (a name used once is not taken as a speaker).
    """

    path: Path
    interview: str
    format: str
    encoding: str
    turns: list[Turn] = field(default_factory=list)
    unattributed_lines: list[int] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dropped_controls: int = 0
    removed_invisible: int = 0
    kept_label_lines: list[int] = field(default_factory=list)

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

    @property
    def removed_chars(self) -> int:
        """Control and invisible characters removed from the text, all files together."""
        return sum(r.dropped_controls + r.removed_invisible for r in self.results)

    @property
    def kept_label_lines(self) -> int:
        """Lines that looked like a speaker label but were kept inside the turn before."""
        return sum(len(r.kept_label_lines) for r in self.results)

    def losses(self) -> str:
        """What the summary must not hide, as ``"; ..."`` clauses (``""`` when nothing was removed or merged)."""
        out = ""
        if self.removed_chars:
            out += f"; {self.removed_chars} control or invisible character{'s' * (self.removed_chars != 1)} removed"
        if self.kept_label_lines:
            n = self.kept_label_lines
            out += f"; {n} line{'s' * (n != 1)} starting like a speaker label kept inside the turn before"
        return out


@dataclass(slots=True)
class Segment:
    """One speaker's stretch of text before roles and ids are given (a future :class:`Turn`)."""

    speaker_raw: str
    pieces: list[str]
    start: int
    end: int
    lineno: int
    time: str | None = None


@dataclass
class Scan:
    """What a format reader found: segments, unattributed line numbers, what it removed or kept."""

    segments: list[Segment] = field(default_factory=list)
    unattributed: list[int] = field(default_factory=list)
    dropped_controls: int = 0
    removed_invisible: int = 0
    kept_label_lines: list[int] = field(default_factory=list)
