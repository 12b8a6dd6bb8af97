"""Batch prediction at the file level (what ``extractor predict`` calls), with reviewers'
answers taught to the model at once.

``--corrections`` answers are labelled examples (:mod:`extractor.classify.teach`): they
re-score every other turn with no retrain, and the answered turns carry the reviewers' labels,
who answered and when (``label_source: "human"``, ``reviewer``, ``reviewed_at``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from extractor.catalog import Catalog
from extractor.errors import InputError
from extractor.types import Labels, Prediction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """A reviewer's labels for one turn, who gave them and when (ISO 8601 UTC, "" if unknown)."""

    labels: Labels
    reviewer: str = ""
    reviewed_at: str = ""


def iso_utc(ts: float | None) -> str:
    """Epoch seconds as ISO 8601 UTC (``2026-12-03T18:00:00Z``); "" for none."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_answers_by_turn(paths: Sequence[str | Path], catalog: Catalog) -> dict[str, Answer]:
    """Turn id -> the answer that counts, from queue / Prodigy / doccano answer files: the same
    rule as :func:`extractor.review.read_corrections` (per annotator the latest answer,
    ``ignore`` withdraws, across annotators the most recent), with who and when."""
    if not paths:
        return {}
    from extractor.review import latest_answers, read_answers, read_corrections

    corrections = read_corrections(list(paths), catalog)
    by_turn: dict[str, tuple[tuple[float, int], Answer]] = {}
    for r in latest_answers(read_answers(list(paths), catalog)).values():
        lab = r.labels()
        if lab is None or corrections.get(r.turn_id) != lab:
            continue
        key = (r.timestamp if r.timestamp is not None else float("-inf"), r.seq)
        if r.turn_id not in by_turn or key >= by_turn[r.turn_id][0]:
            by_turn[r.turn_id] = (key, Answer(lab, r.annotator or "", iso_utc(r.timestamp)))
    return {tid: by_turn[tid][1] for tid in corrections if tid in by_turn}


def apply_human_labels(preds: Sequence[Prediction], human: Mapping[str, Labels | Answer]) -> list[Prediction]:
    """Predictions where reviewers' labels replace the model's (``label_source="human"``, with
    ``reviewer`` / ``reviewed_at`` from an :class:`Answer`); the model's scores stay, evidence
    is kept for the categories both agree on."""
    from extractor.classify.teach import as_human

    out = []
    for p in preds:
        a = human.get(p.id)
        if isinstance(a, Answer):
            p = as_human(p, a.labels, a.reviewer, a.reviewed_at)
        elif a is not None:
            p = as_human(p, a)
        out.append(p)
    return out


def taught_labels(answers: Mapping[str, Labels | Answer]) -> dict[str, Labels]:
    """Turn id -> the labels an answer teaches the classifier."""
    return {tid: a.labels if isinstance(a, Answer) else a for tid, a in answers.items()}


def predict_with_answers(clf, turns: Sequence, answers: Mapping[str, Labels | Answer], **kw) -> list[Prediction]:
    """``clf``'s predictions with ``answers`` taught (they re-score every other turn); the
    answered turns carry the reviewers' labels and, from an :class:`Answer`, who and when."""
    preds = clf.predict(turns, taught=taught_labels(answers) or None, **kw)
    return apply_human_labels(preds, answers) if answers else list(preds)


def predict_file(turns_path: str | Path, model: str | Path, out: str | Path, *, device: str | None = None,
                 batch_size: int = 256, evidence: bool = True, progress: bool = False,
                 corrections: Sequence[str | Path] = (), catalog: str | Path | None = None) -> int:
    """Predict every interviewee turn of a turns file; write predictions JSONL atomically.

    Answers in ``corrections`` teach the model (they re-score the other turns) and their turns
    keep the reviewers' labels. ``catalog``: an updated catalog; entries the model was never
    trained on are scored from their text (:mod:`extractor.classify.extend`)."""
    from extractor.classify import IssueClassifier
    from extractor.jsonl import read_turns, write_jsonl

    turns = read_turns(turns_path)
    if not any(t.is_interviewee for t in turns):
        raise InputError(turns_path, "interviewee turns", "none", hint="was the interviewer named correctly "
                         "when segmenting (`extractor segment --interviewer`)?")
    from extractor.resources import resolve_model

    clf = IssueClassifier.load(resolve_model(model), device=device)  # `default`: the packaged model
    if catalog is not None:
        from extractor.catalog import load_catalog
        from extractor.classify.extend import extend_catalog

        clf = extend_catalog(clf, load_catalog(catalog))
    answers = read_answers_by_turn(corrections, clf.fitted_catalog)
    known = {t.id for t in turns if t.is_interviewee}
    unknown = [tid for tid in answers if tid not in known]
    if unknown:
        log.warning("%d answers name turns absent from %s (ignored), e.g. %s", len(unknown), turns_path, unknown[0])
    preds = predict_with_answers(clf, turns, {tid: a for tid, a in answers.items() if tid in known},
                                 progress=progress, evidence=evidence, batch_size=batch_size)
    return write_jsonl(out, preds)
