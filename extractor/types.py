"""The records that flow through the pipeline.

A :class:`Turn` is produced by ``segment`` (or read from the gold file) and never
mutated; later stages emit records keyed by ``Turn.id`` (:class:`Prediction`, ...).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping

INTERVIEWEE = "interviewee"
INTERVIEWER = "interviewer"
SPEAKERS = (INTERVIEWEE, INTERVIEWER)


def normalize_text(text: str) -> str:
    """Collapse runs of whitespace and strip: the form turns are compared and hashed in."""
    # Same result as re.sub(r"\s+", " ", text).strip() (str.split and re's \s agree on
    # every code point) but several times faster on long texts.
    return " ".join(text.split())


#: The option/label id of the "the turn describes a fix" flag (review options, model heads).
MITIGATION = "mitigation"


def natural_key(name: str) -> tuple:
    """Sort key for names with numbers: "Interview 9" before "Interview 10"; case-insensitive,
    ties broken by the exact text so the order is total and deterministic."""
    return tuple(int(t) if t.isdecimal() else t.casefold() for t in re.split(r"(\d+)", name)), name


def turn_id(interview: str, speaker: str, text: str, occurrence: int = 0) -> str:
    """Stable content hash of a turn.

    It ignores the turn's position, so a correction still joins its turn after the
    transcript is re-segmented; ``occurrence`` tells apart identical texts ("Yeah.")
    said by the same speaker in the same interview.
    """
    key = "\x1f".join([interview, speaker, normalize_text(text), str(occurrence)])
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Labels:
    """Gold or corrected labels of one interviewee turn."""

    categories: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    mitigation: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Labels":
        return cls(
            categories=tuple(d.get("categories") or ()),
            phases=tuple(d.get("phases") or ()),
            mitigation=bool(d.get("mitigation", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"categories": list(self.categories), "phases": list(self.phases), "mitigation": self.mitigation}


@dataclass(frozen=True)
class Turn:
    """One speaker turn of one interview.

    ``question`` is the interviewer turn that prompted an interviewee turn ("" if none);
    ``source`` locates the turn in its file (``{"file", "start", "end"}`` character
    offsets). Gold turns also carry ``labels``, ``label_source`` and the raw study ``codes``.
    """

    interview: str
    turn: int
    speaker: str
    text: str
    question: str = ""
    speaker_raw: str = ""
    id: str = ""
    source: Mapping[str, Any] | None = None
    labels: Labels | None = None
    label_source: str | None = None
    codes: Mapping[str, Any] | None = None

    @property
    def is_interviewee(self) -> bool:
        return self.speaker == INTERVIEWEE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = self.labels.to_dict() if self.labels is not None else None
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Turn":
        labels = d.get("labels")
        return cls(
            interview=str(d["interview"]),
            turn=int(d["turn"]),
            speaker=str(d["speaker"]),
            text=str(d["text"]),
            question=str(d.get("question") or ""),
            speaker_raw=str(d.get("speaker_raw") or ""),
            id=str(d.get("id") or ""),
            source=d.get("source"),
            labels=Labels.from_dict(labels) if isinstance(labels, Mapping) else None,
            label_source=d.get("label_source"),
            codes=d.get("codes"),
        )


def with_ids(turns: Iterable[Turn]) -> Iterator[Turn]:
    """Fill in missing ``id`` fields (the gold file has none) with :func:`turn_id`."""
    seen: dict[tuple[str, str, str], int] = {}
    for t in turns:
        key = (t.interview, t.speaker, normalize_text(t.text))
        k = seen.get(key, 0)
        seen[key] = k + 1
        yield t if t.id else replace(t, id=turn_id(t.interview, t.speaker, t.text, k))


@dataclass(frozen=True)
class Prediction:
    """The classifier's output for one interviewee turn."""

    interview: str
    turn: int
    id: str
    categories: tuple[str, ...]
    phases: tuple[str, ...]
    mitigation: bool
    scores: Mapping[str, float] = field(default_factory=dict)
    evidence: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    question: str = ""
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        d["phases"] = list(self.phases)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Prediction":
        return cls(
            interview=str(d["interview"]),
            turn=int(d["turn"]),
            id=str(d["id"]),
            categories=tuple(d.get("categories") or ()),
            phases=tuple(d.get("phases") or ()),
            mitigation=bool(d.get("mitigation", False)),
            scores=dict(d.get("scores") or {}),
            evidence=dict(d.get("evidence") or {}),
            text=str(d.get("text") or ""),
            question=str(d.get("question") or ""),
            model=str(d.get("model") or ""),
        )
