"""Review tasks and the queue file they live in (``extractor review export``).

A *queue* is a JSONL file of review tasks, one per interviewee turn, laid out the way
Prodigy's ``choice`` interface reads and writes them, so the same file can be annotated
here (``extractor review annotate`` / ``serve``), in Prodigy, or by hand::

    {"text": turn text, "meta": {"interview", "turn", "id", "model", "catalog", ...},
     "context": {"question", "previous", "next"},
     "options": [{"id": "cat:drift", "text": "Drift", "score": 0.83}, ...],
     "accept": ["cat:drift", "phase:model_maintenance"],   # pre-selected by the model
     "answer": null, "annotator": null, "timestamp": null,
     "_input_hash": ..., "_task_hash": ..., "_view_id": "choice", "config": {...}}

Queues are append-only logs of human work: an answered line is never rewritten (re-export
keeps it byte for byte, answers and merges append), and a queue that is a symbolic link
is written through: its target is locked and replaced, never the link.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from extractor.catalog import Catalog
from extractor.jsonl import atomic_open
from extractor.review.formats import Record, ReviewFileError, parse_file
from extractor.review.options import input_hash, label_key, labels_to_accept, option_ids, option_names, task_hash
from extractor.review.ordering import DEFAULT_ORDER, priorities
from extractor.safeio import locked
from extractor.types import Labels, Prediction, Turn

log = logging.getLogger(__name__)


def write_target(path: str | Path) -> Path:
    """The file a write to ``path`` must replace: a symbolic link's target, else ``path``."""
    return Path(os.path.realpath(path))


def finite_or_none(v: Any, digits: int = 4) -> float | None:
    """A score as a task holds it: rounded, or ``None`` when missing or not finite."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, digits) if math.isfinite(f) else None


def _ctx(t: Turn | Prediction | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {"turn": t.turn, "speaker": getattr(t, "speaker", "interviewee"), "text": t.text}


def make_task(pred: Prediction, catalog: Catalog, *, previous=None, next=None,
              order: str = "", priority: float | None = None) -> dict[str, Any]:
    """One review task for one prediction (see the module docstring for the layout)."""
    opts = option_ids(catalog)
    names = option_names(catalog)
    options = [{"id": o, "text": names[o], "score": finite_or_none(pred.scores.get(label_key(o)))} for o in opts]
    accept = labels_to_accept(Labels(pred.categories, pred.phases, pred.mitigation))
    meta: dict[str, Any] = {"interview": pred.interview, "turn": pred.turn, "id": pred.id,
                            "model": pred.model, "catalog": catalog.tag}
    if order:
        meta["order"] = order
    if priority is not None:
        meta["priority"] = finite_or_none(priority, 6)
    return {
        "text": pred.text,
        "meta": meta,
        "context": {"question": pred.question, "previous": _ctx(previous), "next": _ctx(next)},
        "options": options,
        "accept": accept,
        "predicted": list(accept),
        "answer": None,
        "annotator": None,
        "timestamp": None,
        "_input_hash": input_hash(pred.id),
        "_task_hash": task_hash(pred.id, opts),
        "_view_id": "choice",
        "config": {"choice_style": "multiple"},
    }


def dumps(obj: Mapping[str, Any]) -> str:
    """One queue line (``NaN`` is not JSON: refused)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"


@dataclass
class ExportSummary:
    kept_answered: int = 0
    kept_unanswered: int = 0
    refreshed: int = 0
    added: int = 0
    skipped_answered: int = 0
    path: str = ""
    order: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _turn_neighbours(preds: Sequence[Prediction], turns: Sequence[Turn]) -> list[tuple[Any, Any]]:
    by_pos = {(t.interview, t.turn): i for i, t in enumerate(turns)}
    by_id = {t.id: i for i, t in enumerate(turns)}
    out: list[tuple[Any, Any]] = []
    for p in preds:
        i = by_id.get(p.id, by_pos.get((p.interview, p.turn)))
        if i is None:
            out.append((None, None))
            continue
        prev = turns[i - 1] if i > 0 and turns[i - 1].interview == p.interview else None
        nxt = turns[i + 1] if i + 1 < len(turns) and turns[i + 1].interview == p.interview else None
        out.append((prev, nxt))
    return out


def neighbours(preds: Sequence[Prediction], turns: Sequence[Turn] | None) -> list[tuple[Any, Any]]:
    """(previous, next) context record per prediction: real neighbours when turns are given,
    else the neighbouring predictions of the same interview."""
    if turns:
        return _turn_neighbours(preds, turns)
    order = sorted(range(len(preds)), key=lambda i: (preds[i].interview, preds[i].turn))
    ctx: list[tuple[Any, Any]] = [(None, None)] * len(preds)
    for k, i in enumerate(order):
        same = preds[i].interview
        prev = preds[order[k - 1]] if k > 0 and preds[order[k - 1]].interview == same else None
        nxt = preds[order[k + 1]] if k + 1 < len(order) and preds[order[k + 1]].interview == same else None
        ctx[i] = (prev, nxt)
    return ctx


def export_queue(predictions: Sequence[Prediction], out: str | Path, catalog: Catalog, *,
                 turns: Sequence[Turn] | None = None, order: str = DEFAULT_ORDER, limit: int | None = None,
                 rerank: bool = True, refresh: bool = False, seed: int = 0,
                 thresholds: Mapping[str, float] | None = None) -> ExportSummary:
    """Write (or extend) the review queue ``out`` from predictions, most worth reading first.

    An existing queue is merged, never clobbered: answered lines (and every line of a turn
    someone answered, and tasks of turns the predictions do not cover) are kept byte for byte,
    in their order. With ``rerank`` (the default) the unanswered tasks of the predicted turns
    are written anew from ``predictions`` and come after them, with the turns the queue lacks
    (up to ``limit`` new tasks), in ``order``'s ranking of the new predictions: re-exporting
    after ``predict --corrections`` re-ranks what is left to read. Without ``rerank``
    unanswered tasks stay where they are (``refresh`` replaces them there by their new
    version) and new tasks are appended. A malformed existing queue raises before anything is
    written.
    """
    target = write_target(out)
    with locked(target):  # re-read and rewrite as one step: answers saved meanwhile are not lost
        records: list[Record] = []
        if target.exists():
            records, problems = parse_file(out, catalog)
            if problems:
                raise ReviewFileError(problems)
        summary = ExportSummary(path=str(out), order=order)
        preds = list(predictions)
        answered = {r.turn_id for r in records if r.obj is not None and r.answered}
        todo = [i for i, p in enumerate(preds) if p.id not in answered]  # ranked among themselves, as the
        summary.skipped_answered = len(preds) - len(todo)  # web reviewer ranks what is left to read
        pri = np.zeros(len(preds))
        pri[todo] = priorities([preds[i] for i in todo], catalog, order, thresholds=thresholds, seed=seed)
        idx = sorted(todo, key=lambda i: (pri[i], preds[i].interview, preds[i].turn))  # as rank()
        ranked, fresh = _new_tasks(preds, idx, pri, records, catalog, turns, order, limit, summary)
        if rerank:
            lines = _kept_lines(records, {}, summary, leave=set(fresh))
            new_lines = [dumps(fresh[t]) if t in fresh else line for t, line in ranked]
            summary.refreshed = len(fresh)
        else:
            lines = _kept_lines(records, fresh if refresh else {}, summary)
            new_lines = [line for t, line in ranked if t not in fresh]
        with atomic_open(target) as fh:
            fh.writelines(lines)
            fh.writelines(new_lines)
    log.debug("queue %s: %d answered kept, %d unanswered kept, %d refreshed, %d added (order: %s)",
              out, summary.kept_answered, summary.kept_unanswered, summary.refreshed, summary.added, order)
    return summary


def _new_tasks(preds, idx, pri, records: list[Record], catalog: Catalog, turns, order: str, limit: int | None,
               summary: ExportSummary) -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """((turn id, task line) of the predicted turns ``idx`` (unanswered, in rank order): those the queue
    holds and, up to ``limit``, those it lacks; turn id -> new version of each task the queue
    holds already and nobody answered)."""
    ctx = neighbours(preds, turns)  # context from every prediction, answered ones too
    queued_turns = {r.turn_id for r in records if r.obj is not None}
    fresh: dict[str, dict[str, Any]] = {}
    ranked: list[tuple[str, str]] = []
    for i in idx:
        p = preds[i]
        if p.id in fresh:  # a turn predicted twice: its first (best-ranked) task counts
            continue
        task = make_task(p, catalog, previous=ctx[i][0], next=ctx[i][1], order=order, priority=pri[i])
        if p.id in queued_turns:
            fresh[p.id] = task
            ranked.append((p.id, ""))
        elif limit is None or summary.added < limit:
            ranked.append((p.id, dumps(task)))
            summary.added += 1
            queued_turns.add(p.id)
    return ranked, fresh


def _kept_lines(records: list[Record], fresh: dict[str, dict[str, Any]], summary: ExportSummary,
                leave: Collection[str] = ()) -> list[str]:
    """The existing lines that stay, in order; unanswered tasks of turns in ``leave`` are dropped
    (re-ranked elsewhere), those in ``fresh`` replaced in place."""
    lines: list[str] = []
    for r in records:
        raw = r.raw if r.raw.endswith("\n") else r.raw + "\n"
        if r.obj is None:
            lines.append(raw)
        elif r.answered:
            summary.kept_answered += 1
            lines.append(raw)
        elif r.turn_id in leave:
            continue
        elif r.turn_id in fresh:
            lines.append(dumps(fresh.pop(r.turn_id)))
            summary.refreshed += 1
        else:
            summary.kept_unanswered += 1
            lines.append(raw)
    return lines
