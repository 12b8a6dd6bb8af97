"""The records that flow through the pipeline.

A :class:`Turn` is produced by ``segment`` (or read from the gold file) and never
mutated; later stages emit records keyed by ``Turn.id`` (:class:`Prediction`, ...).
"""

from __future__ import annotations

import hashlib
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
    """The classifier's output for one interviewee turn.

    ``evidence`` maps each predicted category to the passage of ``text`` that supports it and
    ``spans`` to its ``[start, end)`` character offsets in ``text``. ``label_source`` is
    ``"model"``, or ``"human"`` where a reviewer's labels replaced the model's (``scores``
    then stay the model's).
    """

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
    spans: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    label_source: str = "model"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        d["phases"] = list(self.phases)
        d["spans"] = {c: list(v) for c, v in self.spans.items()}
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
            spans={c: (int(v[0]), int(v[1])) for c, v in (d.get("spans") or {}).items()},
            text=str(d.get("text") or ""),
            question=str(d.get("question") or ""),
            model=str(d.get("model") or ""),
            label_source=str(d.get("label_source") or "model"),
        )
