"""What the terminal and the web reviewer share: the options they number, answering, saving.

Both reviewers read a queue through :class:`extractor.review.log.QueueLog` and save each
answer the same way: under the queue's lock (``.<queue>.lock`` beside its target, the
``filelock`` package) the answered task is *appended* as one line and synced, so a terminal
session, a web server with several tabs and an export can work on one queue at once without
losing an answer, and an answer costs the same in a queue of 20 or 20,000 tasks. A queue
that is a symbolic link is written through: the target is locked and appended to.

Undo takes the session's own line back: it cuts the file back when that line is still the
last one, else appends a withdrawal (an ``ignore`` answer by the same annotator).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog
from extractor.errors import ExtractorError
from extractor.review.formats import LineParser, ReviewFileError, is_number
from extractor.review.options import option_kind
from extractor.review.queue import dumps, write_target
from extractor.safeio import locked, output_error

LOCK_TIMEOUT_S = 30.0
# Prodigy's per-session keys; dropped when a copied line becomes our answer.
PRODIGY_SESSION_KEYS = ("_annotator_id", "_session_id", "_timestamp")


def score_of(o: dict[str, Any]) -> float | None:
    """An option's score, or ``None`` when it has none."""
    s = o.get("score")
    return float(s) if is_number(s) else None  # type: ignore[arg-type]


def likely_options(task: dict[str, Any], *, categories: int = 3, phases: int = 2) -> list[str]:
    """The options worth showing first: the model's picks, its top categories and phases, mitigation.

    Ordered categories, phases, mitigation; within a kind by score, highest first. The
    other options stay one key away in both reviewers.
    """
    opts = [o for o in task.get("options") or [] if isinstance(o, dict) and isinstance(o.get("id"), str)]
    picked = set(task.get("accept") or []) | set(task.get("predicted") or [])

    def score(o: dict[str, Any]) -> float:
        s = score_of(o)
        return -1.0 if s is None else s

    keep: list[str] = []
    for kind, top in (("category", categories), ("phase", phases), ("mitigation", 1)):
        ranked = sorted((o for o in opts if option_kind(o["id"]) == kind), key=lambda o: -score(o))
        chosen = {o["id"] for o in ranked[:top]} | {o["id"] for o in ranked if o["id"] in picked}
        keep.extend(o["id"] for o in ranked if o["id"] in chosen)
    return keep


def numbered_options(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's options in the order both reviewers number them (1, 2, ...).

    The likely options first (:func:`likely_options`), then the others in catalog order:
    key ``3`` in the browser and ``3`` in the terminal tick the same option.
    """
    opts = [o for o in task.get("options") or [] if isinstance(o, dict) and isinstance(o.get("id"), str)]
    rank = {oid: k for k, oid in enumerate(likely_options(task))}
    return sorted(opts, key=lambda o: rank.get(o["id"], len(rank)))  # stable: the rest keep catalog order


def answer_task(task: dict[str, Any], answer: str, selection: Sequence[str], annotator: str,
                timestamp: str) -> dict[str, Any]:
    """The answered version of ``task``: ``accept`` keeps the ticked options (in option order)."""
    if answer not in ("accept", "reject", "ignore"):
        raise ExtractorError(f"answer: expected accept, reject or ignore, found {answer!r}")
    out = {k: v for k, v in task.items() if k not in PRODIGY_SESSION_KEYS}
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


@dataclass(frozen=True)
class Saved:
    """Where :func:`save_answer` put an answer: its line and its bytes ``[start, end)``."""

    line: str
    start: int
    end: int


def _append(target: Path, data: bytes) -> int:
    """Append ``data`` as whole lines (closing an unterminated last line first), synced; the new size."""
    try:
        fd = os.open(target, os.O_RDWR | os.O_APPEND)
    except OSError as e:
        raise output_error(target, e) from None
    size = None
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        return size + len(data)
    except OSError as e:
        if size is not None:  # a full disk mid-line: the file goes back to what it was
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
        raise output_error(target, e) from None
    finally:
        os.close(fd)


def check_writable(path: str | Path) -> None:
    """Take the queue's lock once, at a reviewer's start: a queue nobody can write to (or a lock
    directory that cannot be made) fails before the first answer, not at it."""
    with locked(write_target(path), timeout=LOCK_TIMEOUT_S):
        pass


def save_answer(path: str | Path, answered: dict[str, Any], catalog: Catalog) -> Saved:
    """Append one answered task to the queue, under its lock; returns where it went."""
    line = dumps(answered)
    _rec, problems = LineParser(path, catalog).parse(1, line)  # never write a line validate would refuse
    if problems:
        raise ReviewFileError(problems)
    target = write_target(path)
    data = line.encode("utf-8")
    with locked(target, timeout=LOCK_TIMEOUT_S):
        end = _append(target, data)
    return Saved(line, end - len(data), end)


def undo_answer(path: str | Path, saved: Saved, catalog: Catalog, *, clock: Callable[[], str]) -> bool:
    """Take back an answer :func:`save_answer` wrote; False when it is gone or was answered again since.

    The file is cut back when the answer is still its last line; else a withdrawal (an
    ``ignore`` answer of the same annotator on the same turn) is appended.
    """
    target = write_target(path)
    data = saved.line.encode("utf-8")
    with locked(target, timeout=LOCK_TIMEOUT_S):
        with open(target, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, saved.start))
            if size == saved.end and fh.read(len(data)) == data:
                os.truncate(target, saved.start)
                return True
            fh.seek(0)
            whole = fh.read()  # rare: lines came after ours (other tabs, other annotators)
        at = whole.rfind(data)
        if at < 0 or _answered_again(whole[at + len(data):], json.loads(saved.line)):
            return False
        withdrawal = answer_task(json.loads(saved.line), "ignore", [], json.loads(saved.line)["annotator"], clock())
        line = dumps(withdrawal)
        if LineParser(path, catalog).parse(1, line)[1]:
            return False
        _append(target, line.encode("utf-8"))
    return True


def _answered_again(tail: bytes, answered: dict[str, Any]) -> bool:
    """Whether ``tail`` holds a later answer of the same annotator on the same turn."""
    tid, who = (answered.get("meta") or {}).get("id"), answered.get("annotator")
    for raw in tail.splitlines():
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict) and obj.get("annotator") == who and obj.get("answer") \
                and isinstance(obj.get("meta"), dict) and obj["meta"].get("id") == tid:
            return True
    return False
