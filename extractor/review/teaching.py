"""Answers that teach at once: the web reviewer re-scores and re-orders what is left after each answer.

As Prodigy's teach recipes do: every answer is a labelled example for a
``TeachSession``-shaped *teacher* (``extractor.classify.teach.TeachSession(model, turns)``:
``.teach(turn_id, labels)``, ``.predictions()``), which re-scores every turn of the session
without a retrain. The pending tasks then show the new scores and pre-selection and come in
the new order (``review export``'s default, most worth reading first); answered tasks never change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from extractor.catalog import Catalog
from extractor.review.options import label_key, labels_to_accept
from extractor.review.ordering import DEFAULT_ORDER, priorities
from extractor.review.queue import finite_or_none
from extractor.types import INTERVIEWEE, INTERVIEWER, Labels, Prediction, Turn, with_ids


class Teacher(Protocol):
    """What the web reviewer needs of a model session (``extractor.classify.teach.TeachSession``)."""

    def teach(self, turn_id: str, labels: Labels) -> None: ...

    def predictions(self) -> list[Prediction]: ...


def task_turns(task: Mapping[str, Any]) -> list[Turn]:
    """The interviewee turn a task asks about (first), then the context turns it carries."""
    meta = task.get("meta") or {}
    ctx = task.get("context") or {}
    interview = str(meta.get("interview") or "")
    turn: int = meta["turn"] if isinstance(meta.get("turn"), int) else 0
    out = [Turn(interview=interview, turn=turn, speaker=INTERVIEWEE, text=str(task.get("text") or ""),
                question=str(ctx.get("question") or ""), id=str(meta.get("id")))]
    for key in ("previous", "next"):
        c = ctx.get(key)
        if isinstance(c, dict) and isinstance(c.get("turn"), int) and isinstance(c.get("text"), str):
            out.append(Turn(interview=interview, turn=c["turn"], speaker=str(c.get("speaker") or INTERVIEWER),
                            text=c["text"]))
    return out


def session_turns(tasks: Iterable[Mapping[str, Any]]) -> list[Turn]:
    """The turns a teach session reads: every task's turn and the turns around it, in interview
    order (neighbours and questions are features); a task's own turn keeps the queue's id."""
    by_pos: dict[tuple[str, int], Turn] = {}
    for task in tasks:
        main, *context = task_turns(task)
        by_pos[(main.interview, main.turn)] = main
        for t in context:
            by_pos.setdefault((t.interview, t.turn), t)
    return list(with_ids(sorted(by_pos.values(), key=lambda t: (t.interview, t.turn))))


def load_teacher(model: str | Path, turns: Sequence[Turn]) -> Teacher:
    """A ``TeachSession`` over ``turns`` with the model at ``model`` (``review serve --model``;
    ``default`` is the packaged model)."""
    from extractor.classify import IssueClassifier
    from extractor.classify.teach import TeachSession
    from extractor.resources import resolve_model

    return TeachSession(IssueClassifier.load(resolve_model(model)), list(turns))


class Rescorer:
    """The teacher's latest scores and the order they give the pending tasks."""

    def __init__(self, teacher: Teacher, catalog: Catalog, *, order: str = DEFAULT_ORDER):
        self.teacher = teacher
        self.catalog = catalog
        self.order = order
        self.preds: dict[str, Prediction] = {}
        self.rank: dict[str, int] = {}
        self.taught = 0

    def teach(self, answers: Iterable[tuple[str, Labels]]) -> None:
        """Give the teacher these (turn id, labels) answers."""
        for turn_id, labels in answers:
            self.teacher.teach(turn_id, labels)
            self.taught += 1

    def forget(self, turn_id: str, instead: Labels | None) -> None:
        """An answer was undone: the answer that counts now (``instead``) is taught, or, with none
        left, the teacher forgets the turn where it can (``forget``); else it stays taught."""
        if instead is not None:
            self.teacher.teach(turn_id, instead)
        elif callable(getattr(self.teacher, "forget", None)):
            self.teacher.forget(turn_id)  # type: ignore[attr-defined]

    def rescore(self, pending: Sequence[str]) -> None:
        """Re-score every turn; rank the ``pending`` ones, most worth reading first (``order``)."""
        self.preds = {p.id: p for p in self.teacher.predictions()}
        todo = [self.preds[t] for t in pending if t in self.preds]
        pri = priorities(todo, self.catalog, self.order)
        ranked = sorted(range(len(todo)), key=lambda i: (pri[i], todo[i].interview, todo[i].turn))
        self.rank = {todo[i].id: r for r, i in enumerate(ranked)}

    def ordered(self, pending: Sequence[str]) -> list[str]:
        """``pending`` in the latest order (turns the teacher does not know keep their place, last)."""
        return sorted(pending, key=lambda t: self.rank.get(t, len(self.rank)))

    def task(self, task: dict[str, Any]) -> dict[str, Any]:
        """``task`` with the teacher's latest scores and pre-selection (a copy)."""
        pred = self.preds.get(str((task.get("meta") or {}).get("id")))
        if pred is None:
            return task
        options = [dict(o, score=finite_or_none(pred.scores.get(label_key(o["id"])))) if isinstance(o, dict)
                   and isinstance(o.get("id"), str) else o for o in task.get("options") or []]
        ids = {o["id"] for o in options if isinstance(o, dict) and isinstance(o.get("id"), str)}
        picked = [o for o in labels_to_accept(Labels(pred.categories, pred.phases, pred.mitigation)) if o in ids]
        return dict(task, options=options, accept=picked, predicted=list(picked))
