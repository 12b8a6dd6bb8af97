"""What the terminal and the web reviewer share: the tasks left, the likely options, saving.

Both reviewers read a queue (``extractor review export``) and save each answer at once in the
same way: the task's unanswered line becomes the answered one, or, when the turn has no
unanswered line left (another annotator answered it first), the answer is appended. Every
save re-reads the queue under a file lock (``.<queue>.lock``, the ``filelock`` package) and
rewrites it atomically, so a terminal session, a web server with several tabs and an export
can work on one queue at once without losing an answer.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from extractor.catalog import Catalog
from extractor.errors import ExtractorError
from extractor.jsonl import atomic_open
from extractor.safeio import lock_path, locked
from extractor.review import CAT, PHASE, Record, ReviewFileError, parse_file

LOCK_TIMEOUT_S = 30.0
# Prodigy's per-session keys; dropped when a copied line becomes our answer.
_PRODIGY_SESSION_KEYS = ("_annotator_id", "_session_id", "_timestamp")


def read_queue(path: str | Path, catalog: Catalog) -> list[Record]:
    """Every line of a queue; a malformed line raises (first problem + how many more)."""
    records, problems = parse_file(path, catalog)
    if problems:
        raise ReviewFileError(problems)
    return records


@dataclass
class QueueView:
    """The queue as one annotator sees it."""

    order: list[str] = field(default_factory=list)  # turn ids, in queue order, each once
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # turn id -> task to show
    done: set[str] = field(default_factory=set)  # turn ids this annotator has answered

    @property
    def total(self) -> int:
        return len(self.order)

    def pending(self) -> list[str]:
        return [t for t in self.order if t not in self.done]


def queue_view(records: Iterable[Record], annotator: str) -> QueueView:
    """Turn order, the task to show per turn, and what ``annotator`` has answered already.

    The task shown is the turn's unanswered line; when only other annotators' answers are
    left, a copy of one with the model's pre-selection restored (not their verdict).
    """
    view = QueueView()
    templates: dict[str, Record] = {}
    for r in records:
        if r.obj is None or r.kind != "task" or not isinstance(r.obj.get("options"), list):
            continue
        if r.turn_id not in templates:
            view.order.append(r.turn_id)
            templates[r.turn_id] = r
        elif templates[r.turn_id].answered and not r.answered:
            templates[r.turn_id] = r
        if r.answered and r.annotator == annotator:
            view.done.add(r.turn_id)
    for tid, r in templates.items():
        task = dict(r.obj or {})
        if r.answered:
            task.update(accept=list(task.get("predicted") or []), answer=None, annotator=None, timestamp=None)
        view.tasks[tid] = task
    return view


def option_kind(option_id: str) -> str:
    return "category" if option_id.startswith(CAT) else "phase" if option_id.startswith(PHASE) else "mitigation"


def likely_options(task: dict[str, Any], *, categories: int = 3, phases: int = 2) -> list[str]:
    """The options worth showing first: the model's picks, its top categories and phases, mitigation.

    Ordered categories, phases, mitigation; within a kind by score, highest first. The
    other options stay one key away in both reviewers.
    """
    opts = [o for o in task.get("options") or [] if isinstance(o, dict) and isinstance(o.get("id"), str)]
    picked = set(task.get("accept") or []) | set(task.get("predicted") or [])

    def score(o: dict[str, Any]) -> float:
        s = o.get("score")
        return float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else -1.0

    keep: list[str] = []
    for kind, top in (("category", categories), ("phase", phases), ("mitigation", 1)):
        ranked = sorted((o for o in opts if option_kind(o["id"]) == kind), key=lambda o: -score(o))
        chosen = {o["id"] for o in ranked[:top]} | {o["id"] for o in ranked if o["id"] in picked}
        keep.extend(o["id"] for o in ranked if o["id"] in chosen)
    return keep


def answer_task(task: dict[str, Any], answer: str, selection: Sequence[str], annotator: str,
                timestamp: str) -> dict[str, Any]:
    """The answered version of ``task``: ``accept`` keeps the ticked options (in option order)."""
    if answer not in ("accept", "reject", "ignore"):
        raise ExtractorError(f"answer: expected accept, reject or ignore, found {answer!r}")
    out = {k: v for k, v in task.items() if k not in _PRODIGY_SESSION_KEYS}
    ids = [o["id"] for o in task.get("options") or []]
    chosen = set(selection)
    out["accept"] = [o for o in ids if o in chosen] if answer == "accept" else []
    out["answer"] = answer
    out["annotator"] = annotator
    out["timestamp"] = timestamp
    return out


def describe_answer(task: dict[str, Any]) -> str:
    """``accept: Drift, Model training`` / ``reject (no option applies)``, for confirmations."""
    if task.get("answer") != "accept":
        return "reject (no option applies)" if task.get("answer") == "reject" else str(task.get("answer"))
    names = {o["id"]: o.get("text") or o["id"] for o in task.get("options") or []}
    picked = [names.get(a, a) for a in task.get("accept") or []]
    return "accept: " + (", ".join(picked) if picked else "no label")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the queue's writer lock (:func:`extractor.safeio.locked`, shared with export and merge)
    while it is re-read and rewritten."""
    with locked(path, timeout=LOCK_TIMEOUT_S):
        yield


def _write(path: Path, lines: list[str]) -> None:
    with atomic_open(path) as fh:
        fh.writelines(line if line.endswith("\n") else line + "\n" for line in lines)


def save_answer(path: str | Path, answered: dict[str, Any], catalog: Catalog) -> tuple[str, str | None]:
    """Save one answered task; returns ``(written line, the unanswered line it replaced or None)``.

    Under the queue's lock: re-read, turn the turn's unanswered line into this answer (or
    append it when none is left), rewrite atomically. Lines written by others meanwhile stay.
    """
    path = Path(path)
    line = json.dumps(answered, ensure_ascii=False) + "\n"
    tid = (answered.get("meta") or {}).get("id")
    with _locked(path):
        records = read_queue(path, catalog)
        lines = [r.raw for r in records]
        replaced = None
        for k, r in enumerate(records):
            if r.obj is not None and not r.answered and r.turn_id == tid:
                replaced, lines[k] = r.raw, line
                break
        else:
            lines.append(line)
        _write(path, lines)
    return line, replaced


def undo_answer(path: str | Path, written: str, replaced: str | None, catalog: Catalog) -> bool:
    """Take back an answer ``save_answer`` wrote (the unanswered line comes back); False if it is gone."""
    path = Path(path)
    with _locked(path):
        records = read_queue(path, catalog)
        lines = [r.raw if r.raw.endswith("\n") else r.raw + "\n" for r in records]
        try:
            k = len(lines) - 1 - lines[::-1].index(written)
        except ValueError:
            return False
        if replaced is None:
            del lines[k]
        else:
            lines[k] = replaced
        _write(path, lines)
    return True


__all__ = ["LOCK_TIMEOUT_S", "QueueView", "answer_task", "describe_answer", "likely_options", "lock_path",
           "option_kind", "queue_view", "read_queue", "save_answer", "undo_answer"]
