"""A queue as the reviewers see it, read once and then only where it grew.

Answers are appended to a queue (:mod:`extractor.review.session`), so after the first read a
reviewer parses only the new lines: answering the 20,000th task of a queue costs what
answering the first does. What is kept per line is small (turn, annotator, answer, where the
line is); a task's full text is read back from the file when it is shown. A queue replaced
by another writer (``review export`` rewrites it atomically) is read again from the start;
one cut back at a line boundary (an undo) drops the lines past the cut.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog
from extractor.errors import InputError
from extractor.review.formats import LineParser, Problem, Record, ReviewFileError, iter_lines
from extractor.review.queue import write_target
from extractor.safeio import open_regular


@dataclass(slots=True)
class Line:
    """What a reviewer keeps of one queue line."""

    turn_id: str
    offset: int
    length: int
    seq: int
    annotator: str | None
    answer: str | None
    accept: tuple[str, ...]
    timestamp: float | None
    is_task: bool  # a task with options (not a doccano line)

    @property
    def answered(self) -> bool:
        return self.answer is not None

    def when(self) -> tuple[float, int]:
        return (self.timestamp if self.timestamp is not None else float("-inf"), self.seq)


class Tasks(Mapping):
    """Turn id -> the task to show, read from the queue file when asked for."""

    def __init__(self, view: QueueView):
        self.view = view

    def __getitem__(self, turn_id: str) -> dict[str, Any]:
        line = self.view.templates[turn_id]
        task = self.view.read(line)
        if line.answered:  # only other annotators' answers left: their verdict is not shown
            task.update(accept=list(task.get("predicted") or []), answer=None, annotator=None, timestamp=None)
        return task

    def __iter__(self) -> Iterator[str]:
        return iter(self.view.order)

    def __len__(self) -> int:
        return len(self.view.order)


@dataclass
class QueueView:
    """The queue as one annotator sees it."""

    path: Path
    annotator: str
    order: list[str] = field(default_factory=list)  # turn ids, in queue order, each once
    templates: dict[str, Line] = field(default_factory=dict)  # turn id -> the line its task is read from
    latest: dict[tuple[str, str], Line] = field(default_factory=dict)  # (turn, annotator) -> latest answer
    done: set[str] = field(default_factory=set)  # turn ids whose latest answer by this annotator is a verdict

    @property
    def total(self) -> int:
        return len(self.order)

    @property
    def tasks(self) -> Tasks:
        return Tasks(self)

    def pending(self) -> list[str]:
        return [t for t in self.order if t not in self.done]

    def add(self, line: Line) -> None:
        tid = line.turn_id
        if line.is_task:
            if tid not in self.templates:
                self.order.append(tid)
                self.templates[tid] = line
            elif self.templates[tid].answered and not line.answered:
                self.templates[tid] = line
        if line.answered and line.annotator:
            key = (tid, line.annotator)
            if key not in self.latest or line.when() >= self.latest[key].when():
                self.latest[key] = line
                if line.annotator == self.annotator:
                    (self.done.discard if line.answer == "ignore" else self.done.add)(tid)

    def read(self, line: Line) -> dict[str, Any]:
        """The task on ``line``, read back from the file (checked: still that turn's task)."""
        with open_regular(self.path, what="a JSONL file") as fh:
            fh.seek(line.offset)
            data = fh.read(line.length)
        try:
            task = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError):
            task = None
        if not isinstance(task, dict) or (task.get("meta") or {}).get("id") != line.turn_id:
            raise InputError(self.path, f"the task of turn {line.turn_id} at line {line.seq}",
                             "other text (the file changed meanwhile)", hint="try again: it is read anew")
        return task


class QueueLog:
    """A queue file and what of it has been read; :meth:`refresh` reads what is new."""

    def __init__(self, path: str | Path, catalog: Catalog, annotator: str):
        self.path = Path(path)
        self.catalog = catalog
        self.annotator = annotator
        self.lines: list[Line] = []
        self._reset()
        self.refresh()

    def _reset(self) -> None:
        self.identity: tuple[int, int] | None = None
        self.offset = 0  # bytes read
        self.count = 0  # lines read
        self.open_line = False  # the last line read had no newline yet
        self.parser = LineParser(self.path, self.catalog)
        self.lines = []
        self.view = QueueView(write_target(self.path), self.annotator)

    def refresh(self) -> QueueView:
        """Read what changed since the last call; a malformed new line raises (nothing is taken in)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise InputError(self.path, "an existing JSONL file", "no such file") from None
        identity = (st.st_dev, st.st_ino)
        if identity != self.identity:
            self._reset()
            self.identity = identity
        elif st.st_size < self.offset:
            self._cut(st.st_size)
        if st.st_size > self.offset:
            self._read_from(self.offset, whole=self.offset == 0)
        return self.view

    def _cut(self, size: int) -> None:
        """The file was cut back (an undo): keep the lines before ``size``, rebuild the view."""
        keep = [line for line in self.lines if line.offset + line.length <= size]
        if keep and keep[-1].offset + keep[-1].length != size:
            self._reset()  # not at a line boundary: someone rewrote it in place; start over
            return
        self.lines, self.offset, self.count, self.open_line = keep, size, keep[-1].seq if keep else 0, False
        self.view = QueueView(self.view.path, self.annotator)
        self.parser = LineParser(self.path, self.catalog)
        for line in keep:
            self.view.add(line)

    def _read_from(self, start: int, *, whole: bool) -> None:
        # Only the slim Line of each record is kept, even before the batch is taken in: the
        # first read of a 20,000-task queue must not hold 20,000 parsed tasks at once.
        new: list[tuple[Line | None, int, int, bool]] = []
        problems: list[Problem] = []
        try:
            for n, offset, raw in iter_lines(self.path, start=start, first_line=self.count + 1):
                if self.open_line and offset == start and raw == "\n":
                    continue  # the newline a writer added to close our last line
                if not raw.endswith("\n") and not whole:
                    break  # a line still being written: next time
                rec, probs = self.parser.parse(n, raw)
                problems.extend(probs)
                length = len(raw.encode("utf-8"))
                new.append((slim(rec, offset, length), offset, length, raw.endswith("\n")))
        except InputError as e:
            problems.append(Problem(str(self.path), e.line, e.expected, e.found))
        if problems:
            self.parser = LineParser(self.path, self.catalog)  # its memory of repeats is off now
            self.identity = None  # read again from the start next time
            raise ReviewFileError(problems)
        self._take(new)

    def _take(self, new: list[tuple[Line | None, int, int, bool]]) -> None:
        for line, offset, length, closed in new:
            self.count += 1
            self.offset = offset + length
            self.open_line = not closed
            if line is not None:
                self.lines.append(line)
                self.view.add(line)


def slim(rec: Record, offset: int, length: int) -> Line | None:
    """What a reviewer keeps of a parsed line (``None`` for a blank one)."""
    if rec.obj is None:
        return None
    return Line(rec.turn_id, offset, length, rec.seq, rec.annotator, rec.answer, rec.accept, rec.timestamp,
                rec.kind == "task" and isinstance(rec.obj.get("options"), list))
