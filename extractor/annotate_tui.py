"""A terminal reviewer for review queues: one task at a time, one short command per line.

Dependency-free and line-based (plain ``input``-style reads from a stream), so it runs in
any terminal, over ssh, and in tests driven by scripted key presses. Every answer is
saved at once (atomic rewrite of the queue: the task's unanswered line becomes the
answered one, or, when another annotator already answered the turn, the answer is
appended); a new session resumes at the first task this annotator has not answered.
``u`` (undo) reverts the session's own last answer; nothing saved before the session
started is ever touched.
"""

from __future__ import annotations

import json
import logging
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from extractor.catalog import Catalog, load_catalog
from extractor.errors import ExtractorError
from extractor.jsonl import atomic_open
from extractor.review import (CAT, MITIGATION, PHASE, Record, ReviewFileError, now_iso, parse_file)

log = logging.getLogger(__name__)

HELP = """commands (then Enter):
  a            accept: the ticked options are the truth for this turn
  r            reject: no option applies (the turn reports no issue)
  N [N ...]    toggle options by number, e.g. `3` or `3 12`
  c ID         toggle a category by id, e.g. `c drift`
  p ID         toggle a phase by id, e.g. `p model_training`
  m            toggle mitigation
  s            skip (comes back next session)
  u            undo the last answer or skip of this session
  q            quit (every answer is already saved)
  ?            this help"""


@dataclass
class _Event:
    index: int
    kind: str  # "answer" | "skip"
    written: str = ""  # the answered line we wrote
    replaced: str | None = None  # the unanswered line it replaced (None: appended)


@dataclass
class SessionSummary:
    answered: int = 0
    skipped: int = 0
    undone: int = 0
    remaining: int = 0
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _load(path: Path, catalog: Catalog) -> list[Record]:
    records, problems = parse_file(path, catalog)
    if problems:
        raise ReviewFileError(problems)
    return records


def _write(path: Path, lines: list[str]) -> None:
    with atomic_open(path) as fh:
        fh.writelines(line if line.endswith("\n") else line + "\n" for line in lines)


class Reviewer:
    """State of one annotation session over one queue file."""

    def __init__(self, path: str | Path, annotator: str, catalog: Catalog | None = None, *,
                 out: TextIO, clock: Callable[[], str] = now_iso, width: int = 100):
        if not annotator:
            raise ExtractorError("an annotator name is needed (--annotator NAME)")
        self.path = Path(path)
        self.annotator = annotator
        self.catalog = catalog or load_catalog()
        self.out = out
        self.clock = clock
        self.width = width
        records = _load(self.path, self.catalog)
        tasks = [r for r in records if r.obj is not None and r.kind == "task" and isinstance(r.obj.get("options"), list)]
        done = {r.turn_id for r in tasks if r.answered and r.annotator == annotator}
        templates: dict[str, Record] = {}
        for r in tasks:
            # Prefer the unanswered line of a turn as the template; else any line of it.
            if r.turn_id not in templates or (templates[r.turn_id].answered and not r.answered):
                templates[r.turn_id] = r
        seen: list[str] = []
        for r in tasks:
            if r.turn_id not in seen:
                seen.append(r.turn_id)
        self.todo: list[dict[str, Any]] = []
        for t in seen:
            if t in done:
                continue
            task = dict(templates[t].obj or {})
            if templates[t].answered:
                # Only someone else's answer is left: start from the model's pre-selection,
                # not from their verdict.
                task.update(accept=list(task.get("predicted") or []), answer=None, annotator=None, timestamp=None)
            self.todo.append(task)
        self.total = len(seen)
        self.already = len(done)
        self.i = 0
        self.selection: list[str] = []
        self.history: list[_Event] = []
        self.summary = SessionSummary(total=self.total)

    # -- display --

    def _p(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def _wrap(self, text: str, indent: str = "    ") -> str:
        return textwrap.fill(" ".join(text.split()), self.width, initial_indent=indent, subsequent_indent=indent)

    def show(self) -> None:
        task = self.todo[self.i]
        meta = task.get("meta") or {}
        ctx = task.get("context") or {}
        left = len(self.todo) - self.i
        self._p("")
        self._p(f"=== task {self.already + self.summary.answered + 1}/{self.total} "
                f"({left} left to review) | {meta.get('interview', '?')} turn {meta.get('turn', '?')} "
                f"| model {meta.get('model') or '?'} ===")
        prev = ctx.get("previous")
        if prev and prev.get("text") and prev.get("text") != ctx.get("question"):
            self._p(f"  previous ({prev.get('speaker', '?')}):")
            self._p(self._wrap(prev["text"]))
        if ctx.get("question"):
            self._p("  question:")
            self._p(self._wrap(ctx["question"]))
        self._p("  TURN:")
        self._p(self._wrap(task.get("text", ""), "  > "))
        nxt = ctx.get("next")
        if nxt and nxt.get("text"):
            self._p(f"  next ({nxt.get('speaker', '?')}):")
            self._p(self._wrap(nxt["text"]))
        self._p("  options ([x] = selected, score = model probability):")
        for k, o in enumerate(task.get("options") or [], 1):
            mark = "x" if o["id"] in self.selection else " "
            score = o.get("score")
            s = f"{score:.2f}" if isinstance(score, (int, float)) else "  - "
            name = o.get("text") or ""
            self._p(f"   {k:>2}. [{mark}] {s}  {o['id']:<30} {name if name != o['id'] else ''}".rstrip())
        self._p("  a accept | r reject | N toggle | c/p ID | m | s skip | u undo | q quit | ? help")

    # -- actions --

    def _start(self) -> None:
        task = self.todo[self.i]
        self.selection = list(task.get("accept") or [])

    def _toggle(self, oid: str) -> str | None:
        ids = [o["id"] for o in self.todo[self.i].get("options") or []]
        if oid not in ids:
            return f"no option {oid!r} in this task"
        if oid in self.selection:
            self.selection.remove(oid)
        else:
            self.selection.append(oid)
        return None

    def _answer(self, answer: str) -> None:
        task = dict(self.todo[self.i])
        for key in ("_annotator_id", "_session_id", "_timestamp"):  # Prodigy's, from a copied line
            task.pop(key, None)
        ids = [o["id"] for o in task.get("options") or []]
        task["accept"] = [o for o in ids if o in self.selection] if answer == "accept" else []
        task["answer"] = answer
        task["annotator"] = self.annotator
        task["timestamp"] = self.clock()
        line = json.dumps(task, ensure_ascii=False) + "\n"
        # Re-read: someone (Prodigy import, another session) may have added lines meanwhile.
        records = _load(self.path, self.catalog)
        lines = [r.raw for r in records]
        tid = (task.get("meta") or {}).get("id")
        replaced = None
        for k, r in enumerate(records):
            if r.obj is not None and not r.answered and r.turn_id == tid:
                replaced = r.raw
                lines[k] = line
                break
        else:
            lines.append(line)
        _write(self.path, lines)
        self.history.append(_Event(self.i, "answer", line, replaced))
        self.summary.answered += 1
        self.summary.counts[answer] = self.summary.counts.get(answer, 0) + 1
        self.i += 1

    def _undo(self) -> str | None:
        if not self.history:
            return "nothing to undo in this session"
        ev = self.history.pop()
        if ev.kind == "answer":
            records = _load(self.path, self.catalog)
            lines = [r.raw if r.raw.endswith("\n") else r.raw + "\n" for r in records]
            try:
                k = len(lines) - 1 - lines[::-1].index(ev.written)
            except ValueError:
                return "the last answer is no longer in the file; nothing undone"
            if ev.replaced is None:
                del lines[k]
            else:
                lines[k] = ev.replaced
            _write(self.path, lines)
            self.summary.answered -= 1
            answer = json.loads(ev.written)["answer"]
            self.summary.counts[answer] -= 1
            self.i = ev.index
            if answer == "accept":
                self.selection = list(json.loads(ev.written).get("accept") or [])
            else:
                self._start()
        else:
            self.summary.skipped -= 1
            self.i = ev.index
            self._start()
        self.summary.undone += 1
        return None

    def run(self, read_line: Callable[[], str | None]) -> SessionSummary:
        """Drive the session; ``read_line`` returns the next command or ``None`` at end of input."""
        if not self.todo:
            self._p(f"nothing to review: {self.annotator} has answered all {self.total} tasks of {self.path}")
            return self.summary
        self._start()
        self.show()
        while self.i < len(self.todo):
            cmd = read_line()
            if cmd is None:
                break
            cmd = cmd.strip()
            msg = None
            advanced = True
            if cmd in ("q", "quit"):
                break
            elif cmd in ("?", "h", "help"):
                self._p(HELP)
                advanced = False
            elif cmd == "a":
                self._answer("accept")
            elif cmd == "r":
                self._answer("reject")
            elif cmd == "s":
                self.history.append(_Event(self.i, "skip"))
                self.summary.skipped += 1
                self.i += 1
            elif cmd == "u":
                msg = self._undo()
                advanced = msg is None
            elif cmd == "m":
                msg = self._toggle(MITIGATION)
            elif cmd[:2] in ("c ", "p "):
                prefix = CAT if cmd[0] == "c" else PHASE
                for ident in cmd[2:].split():
                    msg = self._toggle(prefix + ident) or msg
            elif cmd and all(tok.isdigit() for tok in cmd.split()):
                opts = self.todo[self.i].get("options") or []
                for tok in cmd.split():
                    if 1 <= int(tok) <= len(opts):
                        self._toggle(opts[int(tok) - 1]["id"])
                    else:
                        msg = f"no option number {tok} (1-{len(opts)})"
            else:
                msg = f"unknown command {cmd!r}; ? lists the commands"
                advanced = False
            if msg:
                self._p(f"  ! {msg}")
            if self.i < len(self.todo) and (advanced or msg is None):
                if cmd in ("a", "r", "s"):
                    self._start()
                self.show()
        self.summary.remaining = len(self.todo) - self.summary.answered
        self._p(f"saved {self.summary.answered} answer(s) this session to {self.path}; "
                f"{self.summary.remaining} task(s) left for {self.annotator}")
        return self.summary


def annotate(path: str | Path, annotator: str, catalog: Catalog | None = None, *,
             stdin: TextIO, stdout: TextIO, clock: Callable[[], str] = now_iso) -> SessionSummary:
    """Review the tasks of ``path`` that ``annotator`` has not answered, reading commands from ``stdin``."""
    reviewer = Reviewer(path, annotator, catalog, out=stdout, clock=clock)

    def read_line() -> str | None:
        stdout.write("> ")
        stdout.flush()
        line = stdin.readline()
        return None if line == "" else line

    return reviewer.run(read_line)
