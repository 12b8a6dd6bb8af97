"""The records that flow through the pipeline.

A :class:`Turn` is produced by ``segment`` (or read from the gold file) and never
mutated; later stages emit records keyed by ``Turn.id`` (:class:`Prediction`, ...).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from extractor.errors import RecordError

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


def _found(v: Any) -> str:
    return "nothing" if v is None else f"{type(v).__name__} {v!r}"[:80]


def id_list(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """``d[key]`` as a tuple of id strings; a string (which would split into letters) or a
    list holding non-strings is a :class:`RecordError`. Missing or null = empty."""
    v = d.get(key)
    if v is None:
        return ()
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise RecordError(f'"{key}" as a list of id strings', _found(v))
    return tuple(v)


def strict_bool(d: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """``d[key]`` as a JSON boolean (or 0/1); ``"no"``, ``"false"`` or ``2`` are refused, not guessed."""
    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if not isinstance(v, bool):
        raise RecordError(f'"{key}" as true or false', _found(v))
    return v


def _field(d: Mapping[str, Any], key: str, typ: type, default: Any = ...) -> Any:
    v = d.get(key)
    if v is None and default is not ...:
        return default
    if not isinstance(v, typ) or isinstance(v, bool) and typ is not bool:
        raise RecordError(f'"{key}" of type {typ.__name__}', _found(v))
    if typ is int and isinstance(v, int) and not 0 <= v < 2**53:  # turn numbers: JSON-safe, never negative
        raise RecordError(f'"{key}" as a whole number from 0 to 2**53', _found(v))
    return v


@dataclass(frozen=True)
class Labels:
    """Gold or corrected labels of one interviewee turn."""

    categories: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    mitigation: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Labels:
        return cls(categories=id_list(d, "categories"), phases=id_list(d, "phases"),
                   mitigation=strict_bool(d, "mitigation"))

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
    def from_dict(cls, d: Mapping[str, Any]) -> Turn:
        labels = d.get("labels")
        if labels is not None and not isinstance(labels, Mapping):
            raise RecordError('"labels" as {"categories": [ids], "phases": [ids], "mitigation": bool}',
                              _found(labels))
        source, codes = d.get("source"), d.get("codes")
        for key, v in (("source", source), ("codes", codes)):
            if v is not None and not isinstance(v, Mapping):
                raise RecordError(f'"{key}" as an object', _found(v))
        return cls(
            interview=_field(d, "interview", str),
            turn=_field(d, "turn", int),
            speaker=_field(d, "speaker", str),
            text=_field(d, "text", str),
            question=_field(d, "question", str, ""),
            speaker_raw=_field(d, "speaker_raw", str, ""),
            id=_field(d, "id", str, ""),
            source=source,
            labels=Labels.from_dict(labels) if labels is not None else None,
            label_source=_field(d, "label_source", str, None),
            codes=codes,
        )


def with_ids(turns: Iterable[Turn]) -> Iterator[Turn]:
    """Fill in missing ``id`` fields (the gold file has none) with :func:`turn_id`."""
    seen: dict[tuple[str, str, str], int] = {}
    for t in turns:
        key = (t.interview, t.speaker, normalize_text(t.text))
        k = seen.get(key, 0)
        seen[key] = k + 1
        yield t if t.id else replace(t, id=turn_id(t.interview, t.speaker, t.text, k))


def _spans(spans: Any, evidence: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """``{label: [start, end]}`` character offsets of the evidence passages."""
    ok = isinstance(spans, Mapping) and all(
        isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        and 0 <= v[0] <= v[1] for v in spans.values())
    if not ok:
        raise RecordError('"spans" as an object {label: [start, end]}', _found(spans))
    return {c: (v[0], v[1]) for c, v in spans.items()}


@dataclass(frozen=True)
class Prediction:
    """The classifier's output for one interviewee turn.

    ``evidence`` maps each predicted category to the passage of ``text`` that supports it and
    ``spans`` to its ``[start, end)`` character offsets in ``text``. ``label_source`` is
    ``"model"``, or ``"human"`` where a reviewer's labels replaced the model's (``scores``
    then stay the model's). ``reviewer`` and ``reviewed_at`` say who gave human labels and
    when (ISO 8601, UTC); ``untrained`` lists predicted categories that the model was never
    trained on (catalog entries added after training, scored from their text alone). These
    three are written only when set, so model-only predictions serialise as before.
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
    reviewer: str = ""
    reviewed_at: str = ""
    untrained: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"] = list(self.categories)
        d["phases"] = list(self.phases)
        d["spans"] = {c: list(v) for c, v in self.spans.items()}
        for k in ("reviewer", "reviewed_at", "untrained"):
            if not d[k]:
                del d[k]
        if self.untrained:
            d["untrained"] = list(self.untrained)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prediction:
        scores, evidence = d.get("scores") or {}, d.get("evidence") or {}
        if not isinstance(scores, Mapping) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores.values()):
            raise RecordError('"scores" as an object {label: probability}', _found(scores))
        bad = next(((k, v) for k, v in scores.items() if not 0.0 <= v <= 1.0), None)  # False for NaN too
        if bad is not None:
            raise RecordError("scores between 0 and 1", f"{bad[0]!r}: {bad[1]!r}"[:80])
        if not isinstance(evidence, Mapping) or not all(isinstance(v, str) for v in evidence.values()):
            raise RecordError('"evidence" as an object {label: sentence}', _found(evidence))
        return cls(
            interview=_field(d, "interview", str),
            turn=_field(d, "turn", int),
            id=_field(d, "id", str),
            categories=id_list(d, "categories"),
            phases=id_list(d, "phases"),
            mitigation=strict_bool(d, "mitigation"),
            scores=dict(scores),
            evidence=dict(evidence),
            text=_field(d, "text", str, ""),
            question=_field(d, "question", str, ""),
            model=_field(d, "model", str, ""),
            spans=_spans(d.get("spans") or {}, evidence),
            label_source=_field(d, "label_source", str, "model"),
            reviewer=_field(d, "reviewer", str, ""),
            reviewed_at=_field(d, "reviewed_at", str, ""),
            untrained=id_list(d, "untrained"),
        )
