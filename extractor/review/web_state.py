"""The web reviewer's logic, independent of HTTP: which task a tab sees, answers, skips, undo.

Tasks are handed out by turn id: a task shown in one tab is not handed to another for
:data:`CLAIM_S` seconds, and a task answered elsewhere (another tab, ``review annotate``,
another server on the same file) is not shown again. With a *teacher* (see
:mod:`extractor.review.teaching`) every answer re-scores and re-orders the pending tasks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog
from extractor.errors import ExtractorError
from extractor.review.log import QueueLog, QueueView
from extractor.review.options import accept_to_labels, now_iso, option_definitions, option_kind
from extractor.review.session import (
    Saved,
    answer_task,
    check_writable,
    describe_answer,
    likely_options,
    numbered_options,
    save_answer,
    score_of,
    undo_answer,
)
from extractor.review.teaching import Rescorer, Teacher, session_turns
from extractor.types import Labels, Turn

CLAIM_S = 120.0  # a task shown in one tab is not handed to another for this long (tabs refresh it)


@dataclass
class Event:
    """One answer or skip of one tab, for its undo."""

    tab: str
    task_id: str
    kind: str  # "answer" | "skip"
    saved: Saved | None = None
    accept: tuple[str, ...] = ()


def _turn(t: Any) -> dict[str, Any] | None:
    if not isinstance(t, dict) or not t.get("text"):
        return None
    return {"speaker": str(t.get("speaker") or "?"), "text": str(t["text"]), "turn": t.get("turn")}


def task_json(task: dict[str, Any], selection: list[str] | None, definitions: dict[str, str]) -> dict[str, Any]:
    """A task as the page shows it: options numbered as in the terminal, with their definitions."""
    meta = task.get("meta") or {}
    ctx = task.get("context") or {}
    likely = set(likely_options(task))
    prev = _turn(ctx.get("previous"))
    question = ctx.get("question") or ""
    if prev and prev["text"] == question:
        prev = None  # the previous turn is the question itself: shown once
    options = [{"id": o["id"], "number": k, "text": str(o.get("text") or o["id"]), "kind": option_kind(o["id"]),
                "score": score_of(o), "likely": o["id"] in likely, "definition": definitions.get(o["id"], "")}
               for k, o in enumerate(numbered_options(task), 1)]
    return {
        "id": meta.get("id"), "interview": meta.get("interview"), "turn": meta.get("turn"),
        "model": meta.get("model"), "text": str(task.get("text") or ""), "question": str(question),
        "previous": prev, "next": _turn(ctx.get("next")), "options": options,
        "predicted": list(task.get("predicted") or task.get("accept") or []),
        "selection": list(selection if selection is not None else task.get("accept") or []),
    }


class ReviewState:
    """What each browser tab sees and does. ``tab`` is an id each tab makes up (kept across
    reloads), so a reload resumes on the same task and two tabs are not handed the same one."""

    def __init__(self, path: str | Path, annotator: str, catalog: Catalog, *,
                 clock: Callable[[], str] = now_iso, monotonic: Callable[[], float] = time.monotonic,
                 teacher: Teacher | None = None):
        if not annotator:
            raise ExtractorError("an annotator name is needed (--annotator NAME)")
        self.path = Path(path)
        self.annotator = annotator
        self.catalog = catalog
        self.definitions = option_definitions(catalog)
        self.clock = clock
        self.monotonic = monotonic
        self.lock = threading.RLock()
        self.history: list[Event] = []
        self.skipped: list[str] = []
        self.claims: dict[str, tuple[str, float]] = {}  # task id -> (tab, when)
        self.current: dict[str, str] = {}  # tab -> task id it shows
        self.restore: dict[str, list[str]] = {}  # tab -> selection to show again after an undo
        self.log = QueueLog(self.path, catalog, annotator)  # a malformed queue fails at start
        check_writable(self.path)
        self.rescorer = Rescorer(teacher, catalog) if teacher is not None else None
        if self.rescorer is not None:
            self.rescorer.teach(self.answers_so_far())
            self.rescorer.rescore(self.view().pending())

    # -- reading --

    def view(self) -> QueueView:
        """The queue as this annotator sees it (new lines read in)."""
        return self.log.refresh()

    def answers_so_far(self) -> list[tuple[str, Labels]]:
        """(turn, labels) of the answer that counts per turn (latest of anyone's), for the teacher."""
        view = self.view()
        best: dict[str, Any] = {}
        for (tid, _who), line in view.latest.items():
            if tid in view.templates and line.answer in ("accept", "reject") \
                    and (tid not in best or line.when() >= best[tid].when()):
                best[tid] = line
        return [(t, accept_to_labels(line.accept) if line.answer == "accept" else Labels())
                for t, line in sorted(best.items())]

    def pending(self, view: QueueView) -> Iterator[str]:
        """The turn ids this annotator has not answered, in the order they are handed out."""
        if self.rescorer is not None:
            return iter(self.rescorer.ordered(view.pending()))
        return (t for t in view.order if t not in view.done)  # lazy: a 20,000-task queue is not copied

    def _claimed_elsewhere(self, task_id: str, tab: str) -> bool:
        owner = self.claims.get(task_id)
        return bool(owner and owner[0] != tab and self.monotonic() - owner[1] < CLAIM_S)

    def _pick(self, view: QueueView, tab: str) -> str | None:
        mine = self.current.get(tab)
        if mine in view.templates and mine not in view.done:
            return mine
        first_fresh = None
        skipped = set(self.skipped)
        for t in self.pending(view):
            if t in skipped:
                continue
            if not self._claimed_elsewhere(t, tab):
                return t
            first_fresh = first_fresh or t
        if first_fresh is not None:
            return first_fresh
        # Only skipped tasks are left: they come back, oldest skip first.
        return next((t for t in self.skipped if t in view.templates and t not in view.done), None)

    def shown_task(self, view: QueueView, task_id: str) -> dict[str, Any]:
        task = view.tasks[task_id]
        return self.rescorer.task(task) if self.rescorer is not None else task

    def state(self, tab: str, message: str = "") -> dict[str, Any]:
        """What the tab shows now: its task (or none left), progress and a message."""
        with self.lock:
            view = self.view()
            task_id = self._pick(view, tab)
            if task_id is not None:
                self.current[tab] = task_id
                self.claims[task_id] = (tab, self.monotonic())
            else:
                self.current.pop(tab, None)
            out: dict[str, Any] = {
                "annotator": self.annotator,
                "queue": self.path.name,
                "progress": {"done": len(view.done), "total": view.total,
                             "skipped": sum(1 for t in self.skipped if t in view.templates and t not in view.done)},
                "message": message,
                "can_undo": any(e.tab == tab for e in self.history),
                "teaching": self.rescorer is not None,
                "task": None,
            }
            if task_id is not None:
                out["task"] = task_json(self.shown_task(view, task_id), self.restore.pop(tab, None), self.definitions)
            return out

    # -- writing --

    def answer(self, tab: str, task_id: str, answer: str, accept: list[str]) -> dict[str, Any]:
        """Save ``answer`` on ``task_id`` for this annotator; the next state for ``tab``."""
        if answer not in ("accept", "reject"):
            raise ValueError("answer: expected accept or reject")
        with self.lock:
            view = self.view()
            if task_id not in view.templates:
                raise LookupError(f"no task {task_id!r} in {self.path.name}")
            task = self.shown_task(view, task_id)
            ids = {o["id"] for o in task.get("options") or []}
            unknown = [a for a in accept if a not in ids]
            if unknown:
                raise ValueError(f"accept: expected options of task {task_id}, found {unknown[:3]}")
            again = task_id in view.done
            answered = answer_task(task, answer, accept, self.annotator, self.clock())
            saved = save_answer(self.path, answered, self.catalog)
            self.history.append(Event(tab, task_id, "answer", saved, tuple(answered["accept"])))
            self._release(task_id)
            self._teach(task_id, answered)
            meta = task.get("meta") or {}
            msg = f"saved: {describe_answer(answered)} | {meta.get('interview', '?')} turn {meta.get('turn', '?')}"
            if again:
                msg += " (answered again: the latest answer counts)"
            return self.state(tab, msg)

    def _teach(self, task_id: str, answered: dict[str, Any]) -> None:
        if self.rescorer is None:
            return
        labels = accept_to_labels(answered["accept"]) if answered["answer"] == "accept" else Labels()
        self.rescorer.teach([(task_id, labels)])
        self.rescorer.rescore(self.view().pending())

    def _unteach(self, task_id: str) -> None:
        if self.rescorer is None:
            return
        instead = dict(self.answers_so_far()).get(task_id)
        self.rescorer.forget(task_id, instead)
        self.rescorer.rescore(self.view().pending())

    def skip(self, tab: str, task_id: str) -> dict[str, Any]:
        with self.lock:
            view = self.view()
            if task_id not in view.templates:
                raise LookupError(f"no task {task_id!r} in {self.path.name}")
            if task_id in self.skipped:
                self.skipped.remove(task_id)
            self.skipped.append(task_id)
            self.history.append(Event(tab, task_id, "skip"))
            self._release(task_id)
            meta = view.tasks[task_id].get("meta") or {}
            return self.state(tab, f"skipped: {meta.get('interview', '?')} turn {meta.get('turn', '?')} "
                                   "(comes back when the others are done)")

    def undo(self, tab: str) -> dict[str, Any]:
        """Take back this tab's last answer or skip; that task is shown again."""
        with self.lock:
            k = next((k for k in range(len(self.history) - 1, -1, -1) if self.history[k].tab == tab), None)
            if k is None:
                return self.state(tab, "nothing to undo in this tab")
            ev = self.history.pop(k)
            if ev.kind == "answer" and ev.saved is not None:
                if not undo_answer(self.path, ev.saved, self.catalog, clock=self.clock):
                    return self.state(tab, "that answer is no longer in the queue; nothing undone")
                self.restore[tab] = list(ev.accept)
                self._unteach(ev.task_id)
                what = "answer"
            else:
                if ev.task_id in self.skipped:
                    self.skipped.remove(ev.task_id)
                what = "skip"
            self.current[tab] = ev.task_id
            return self.state(tab, f"undone: the {what} is taken back")

    def _release(self, task_id: str) -> None:
        self.claims.pop(task_id, None)
        for tab, t in list(self.current.items()):
            if t == task_id:
                del self.current[tab]


def teacher_turns(view: QueueView) -> list[Turn]:
    """The turns a teacher over this queue reads (``review serve --model``)."""
    return session_turns(view.tasks[t] for t in view.order)
