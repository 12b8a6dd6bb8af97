"""A terminal reviewer for review queues: one task at a time, one short command per line.

Dependency-free and line-based (plain ``input``-style reads from a stream), so it runs in
any terminal, over ssh, and in tests driven by scripted key presses. Each task is drawn in
at most ``height`` lines (40 by default) at ``width`` columns (100), so the turn being
judged, its options and the prompt stay on one screen: the model's likely options come
first, the rest on ``o``; context is shortened before the turn is. Every answer is saved
at once through :mod:`extractor.review_session` (locked, atomic; the same writer the web
reviewer uses) and confirmed with a ``saved: ...`` line; a new session resumes at the first
task this annotator has not answered. ``u`` (undo) reverts the session's own last answer
or skip; nothing saved before the session started is ever touched. A mistyped command or
option id gets the nearest match suggested.
"""

from __future__ import annotations

import difflib
import logging
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from extractor.catalog import Catalog, load_catalog
from extractor.errors import ExtractorError
from extractor.review import CAT, MITIGATION, PHASE, now_iso
from extractor.review_session import (answer_task, describe_answer, likely_options, queue_view, read_queue,
                                      save_answer, undo_answer)

log = logging.getLogger(__name__)

HELP = """commands (then Enter):
  a            accept: the ticked options are the truth for this turn
  r  (or x)    reject: no option applies (the turn reports no issue)
  N [N ...]    toggle options by number, e.g. `3` or `3 12`
  c ID         toggle a category by id, e.g. `c drift`
  p ID         toggle a phase by id, e.g. `p model_training`
  m            toggle mitigation
  o            show all options / only the likely ones
  t            print the whole turn (when it is shortened)
  s            skip (comes back next session)
  u            undo the last answer or skip of this session
  q            quit (every answer is already saved)
  ?            this help"""

FOOTER = "a accept | r reject | N toggle | c/p ID | m mitigation | o all | s skip | u undo | q quit | ? help"
SHORT_FOOTER = "a accept | r reject | N toggle | o all | s skip | u undo | q quit | ? help"
_WORDS = {"accept": "a", "reject": "r", "skip": "s", "undo": "u", "quit": "q", "help": "?", "mitigation": "m",
          "options": "o", "more": "o", "turn": "t", "exit": "q", "category": "c ID", "phase": "p ID"}


@dataclass
class _Event:
    index: int
    kind: str  # "answer" | "skip"
    written: str = ""  # the answered line we wrote
    replaced: str | None = None  # the unanswered line it replaced (None: appended)
    accept: list[str] = field(default_factory=list)
    answer: str = ""


@dataclass
class SessionSummary:
    answered: int = 0
    skipped: int = 0
    undone: int = 0
    remaining: int = 0
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _score(o: dict[str, Any]) -> str:
    s = o.get("score")
    return f"{s:.2f}" if isinstance(s, (int, float)) and not isinstance(s, bool) else "  - "


class Reviewer:
    """State of one annotation session over one queue file."""

    def __init__(self, path: str | Path, annotator: str, catalog: Catalog | None = None, *,
                 out: TextIO, clock: Callable[[], str] = now_iso, width: int = 100, height: int = 40):
        if not annotator:
            raise ExtractorError("an annotator name is needed (--annotator NAME)")
        self.path = Path(path)
        self.annotator = annotator
        self.catalog = catalog or load_catalog()
        self.out = out
        self.clock = clock
        self.width = max(60, width) - 1  # a full-width line makes some terminals wrap
        self.height = max(24, height)
        view = queue_view(read_queue(self.path, self.catalog), annotator)
        self.todo: list[dict[str, Any]] = [view.tasks[t] for t in view.pending()]
        self.total = view.total
        self.done = set(view.done)  # turn ids this annotator has answered (here or elsewhere)
        self.i = 0
        self.selection: list[str] = []
        self.all_options = False
        self.history: list[_Event] = []
        self.summary = SessionSummary(total=self.total)

    # -- display --

    def _p(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def _wrap(self, text: str, indent: str = "    ", max_lines: int | None = None) -> list[str]:
        text = " ".join(str(text).split())
        if not text:
            return []
        return textwrap.wrap(text, self.width, initial_indent=indent, subsequent_indent=" " * len(indent),
                             max_lines=max_lines, placeholder=" [...]")

    def _option_line(self, k: int, o: dict[str, Any]) -> str:
        mark = "x" if o["id"] in self.selection else " "
        return f"{k:>3}. [{mark}] {_score(o)}  {o.get('text') or o['id']}  ({o['id']})"

    def _option_lines(self, task: dict[str, Any]) -> list[str]:
        opts = task.get("options") or []
        likely = set(likely_options(task))
        shown = [(k, o) for k, o in enumerate(opts, 1) if o["id"] in likely or o["id"] in self.selection]
        # One line per option while that is short; else (many ticked) the packed view of them all.
        if not self.all_options and len(shown) <= max(6, self.height // 3):
            shown.sort(key=lambda ko: (not ko[1]["id"].startswith(CAT), not ko[1]["id"].startswith(PHASE),
                                       -(ko[1].get("score") or 0)))
            lines = ["  likely options ([x] = ticked; score = model probability):"]
            lines += [self._option_line(k, o) for k, o in shown]
            more = len(opts) - len(shown)
            if more:
                lines.append(f"       ... {more} more: `o` lists all {len(opts)}; `c ID` / `p ID` / a number ticks one")
            return lines
        # Every option, three columns; numbers stay the task's option numbers.
        col = self.width // 3
        cells = []
        for k, o in enumerate(opts, 1):
            mark = "x" if o["id"] in self.selection else " "
            cell = f"{k:>2} [{mark}] {_score(o).replace('0.', '.', 1):>4} {o.get('text') or o['id']}"
            cells.append(cell.ljust(col - 1) if len(cell) <= col - 1 else cell[:col - 2] + "~")
        rows = (len(cells) + 2) // 3
        lines = [f"  all {len(opts)} options (`o` shows the likely ones only):"]
        for r in range(rows):
            lines.append(" " + " ".join(cells[r + c * rows] for c in range(3) if r + c * rows < len(cells)).rstrip())
        return lines

    def _block(self) -> list[str]:
        """The task as at most ``height - 2`` lines (a message line and the prompt go around it)."""
        task = self.todo[self.i]
        meta = task.get("meta") or {}
        ctx = task.get("context") or {}
        left = len(self.todo) - self.i
        head = [f"=== task {len(self.done) + 1}/{self.total} ({left} left) | "
                f"{meta.get('interview', '?')} turn {meta.get('turn', '?')} | model {meta.get('model') or '?'} ==="]
        opts = self._option_lines(task)
        room = self.height - 2 - len(head) - len(opts) - 1  # 1: the footer
        question = ctx.get("question") or ""
        prev = ctx.get("previous") or {}
        nxt = ctx.get("next") or {}
        prev_text = prev.get("text") if prev.get("text") and prev.get("text") != question else ""
        turn = self._wrap(task.get("text", ""), "  > ")
        # Context shrinks first (previous, next, then the question), the turn last.
        for b_prev, b_q, b_next in ((2, 3, 2), (1, 2, 1), (1, 2, 0), (0, 2, 0), (0, 1, 0)):
            # The question was asked before the previous turn (or is it): it goes first.
            above = (self._wrap(question, "  question: ", b_q) if b_q else []) \
                + (self._wrap(prev_text, f"  before ({prev.get('speaker', '?')}): ", b_prev) if b_prev else [])
            below = self._wrap(nxt.get("text") or "", f"  after ({nxt.get('speaker', '?')}): ", b_next) \
                if b_next else []
            if len(above) + len(below) + 1 + len(turn) <= room:
                break
        turn_room = max(3, room - len(above) - len(below) - 1)  # many ticked options: `o` packs them
        if len(turn) > turn_room:
            hidden = len(turn) - (turn_room - 1)
            turn = turn[:turn_room - 1] + [f"  > [... {hidden} more line(s): `t` prints the whole turn]"]
        footer = FOOTER if len(FOOTER) <= self.width else SHORT_FOOTER
        # No line may wrap, or the block would outgrow the screen (long model ids, option names).
        return [line if len(line) <= self.width else line[:self.width - 1] + "~"
                for line in head + above + ["  TURN (interviewee):"] + turn + below + opts + [footer]]

    def show(self) -> None:
        for line in self._block():
            self._p(line)

    # -- actions --

    def _start(self) -> None:
        self.selection = list(self.todo[self.i].get("accept") or [])

    def _by_name(self, prefix: str, typed: str) -> str | None:
        """The option whose id or name is ``typed`` (``noisy labels``, ``Noisy labels``), if one is."""
        key = " ".join(typed.lower().replace("-", " ").replace("_", " ").split())
        for o in self.todo[self.i].get("options") or []:
            if not o["id"].startswith(prefix):
                continue
            names = (o["id"][len(prefix):], o.get("text") or "")
            if key in (" ".join(n.lower().replace("-", " ").replace("_", " ").split()) for n in names):
                return o["id"]
        return None

    def _toggle(self, oid: str) -> str | None:
        opts = self.todo[self.i].get("options") or []
        ids = [o["id"] for o in opts]
        if oid not in ids:
            prefix = CAT if oid.startswith(CAT) else PHASE if oid.startswith(PHASE) else ""
            kind = {"cat:": "category", "phase:": "phase"}.get(prefix, "option")
            typed = oid[len(prefix):]
            pool = {o["id"][len(prefix):]: o["id"] for o in opts if o["id"].startswith(prefix)} if prefix else {}
            pool |= {(o.get("text") or "").lower(): o["id"] for o in opts if o["id"].startswith(prefix)}
            near = difflib.get_close_matches(typed.lower(), list(pool), n=1, cutoff=0.5)
            hint = f"; did you mean `{prefix[0]} {pool[near[0]][len(prefix):]}`?" if near and prefix else ""
            return f"no {kind} {typed!r} in this task{hint}"
        if oid in self.selection:
            self.selection.remove(oid)
        else:
            self.selection.append(oid)
        return None

    def _answer(self, answer: str) -> str:
        task = self.todo[self.i]
        answered = answer_task(task, answer, self.selection, self.annotator, self.clock())
        written, replaced = save_answer(self.path, answered, self.catalog)
        self.history.append(_Event(self.i, "answer", written, replaced, list(answered["accept"]), answer))
        self.done.add((task.get("meta") or {}).get("id"))
        self.summary.answered += 1
        self.summary.counts[answer] = self.summary.counts.get(answer, 0) + 1
        meta = task.get("meta") or {}
        self.i += 1
        return f"saved: {describe_answer(answered)} | {meta.get('interview', '?')} turn {meta.get('turn', '?')}"

    def _undo(self) -> tuple[bool, str]:
        if not self.history:
            return False, "nothing to undo in this session"
        ev = self.history.pop()
        meta = self.todo[ev.index].get("meta") or {}
        where = f"{meta.get('interview', '?')} turn {meta.get('turn', '?')}"
        if ev.kind == "answer":
            if not undo_answer(self.path, ev.written, ev.replaced, self.catalog):
                return False, "the last answer is no longer in the file; nothing undone"
            self._reread()
            self.summary.answered -= 1
            self.summary.counts[ev.answer] -= 1
            self.i = ev.index
            if ev.answer == "accept":
                self.selection = list(ev.accept)
            else:
                self._start()
            msg = f"undone: the {ev.answer} of {where} is taken back"
        else:
            self.summary.skipped -= 1
            self.i = ev.index
            self._start()
            msg = f"undone: skip of {where}"
        self.summary.undone += 1
        return True, msg

    def _suggest(self, cmd: str) -> str:
        """``unknown command 'acept'; did you mean `a` (accept)?``"""
        word = cmd.split()[0].lower() if cmd.split() else cmd
        near = difflib.get_close_matches(word, list(_WORDS), n=1, cutoff=0.6)
        hint = f"; did you mean `{_WORDS[near[0]]}` ({near[0]})?" if near else "; ? lists the commands"
        if near and _WORDS[near[0]] in ("c ID", "p ID"):
            hint = f"; did you mean `{_WORDS[near[0]]}`?"
        return f"unknown command {cmd!r}{hint}"

    def _full_turn(self) -> None:
        task = self.todo[self.i]
        self._p("  whole turn:")
        for line in self._wrap(task.get("text", ""), "  > "):
            self._p(line)

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
            redraw = True
            if cmd in ("q", "quit", "exit"):
                break
            elif cmd in ("?", "h", "help"):
                self._p(HELP)
            elif cmd in ("a", "accept"):
                msg = self._answer("accept")
                self._next()
            elif cmd in ("r", "x", "reject"):
                msg = self._answer("reject")
                self._next()
            elif cmd in ("s", "skip"):
                self.history.append(_Event(self.i, "skip"))
                self.summary.skipped += 1
                meta = self.todo[self.i].get("meta") or {}
                msg = f"skipped: {meta.get('interview', '?')} turn {meta.get('turn', '?')} (comes back next session)"
                self.i += 1
                self._next()
            elif cmd in ("u", "undo"):
                _ok, msg = self._undo()
            elif cmd in ("m",):
                msg = self._toggle(MITIGATION)
            elif cmd in ("o", "more"):
                self.all_options = not self.all_options
            elif cmd in ("t", "turn"):
                self._full_turn()
                redraw = False
                self._p(FOOTER if len(FOOTER) <= self.width else SHORT_FOOTER)
            elif cmd[:2] in ("c ", "p ") and cmd[2:].strip():
                prefix = CAT if cmd[0] == "c" else PHASE
                whole = self._by_name(prefix, cmd[2:])
                if whole:
                    msg = self._toggle(whole)
                else:
                    known = {o["id"] for o in self.todo[self.i].get("options") or []}
                    tokens = cmd[2:].split()
                    if len(tokens) > 1 and not all(prefix + t in known for t in tokens):
                        msg = self._toggle(prefix + " ".join(tokens))  # a mistyped name: nothing toggled
                    else:
                        for ident in tokens:
                            msg = self._toggle(prefix + ident) or msg
            elif cmd and all(tok.isdigit() for tok in cmd.split()):
                opts = self.todo[self.i].get("options") or []
                for tok in cmd.split():
                    if 1 <= int(tok) <= len(opts):
                        self._toggle(opts[int(tok) - 1]["id"])
                    else:
                        msg = f"no option number {tok} (1-{len(opts)}; `o` lists them all)"
            elif not cmd:
                pass
            else:
                msg = self._suggest(cmd)
            if msg:
                self._p(f"  {msg}" if msg.startswith(("saved:", "skipped:", "undone:")) else f"  ! {msg}")
            if redraw and self.i < len(self.todo):
                self.show()
        self.summary.remaining = self.total - len(self.done)
        self._p(f"saved {self.summary.answered} answer(s) this session to {self.path}; "
                f"{self.summary.remaining} task(s) left for {self.annotator}")
        return self.summary

    def _reread(self) -> None:
        self.done = queue_view(read_queue(self.path, self.catalog), self.annotator).done

    def _next(self) -> None:
        """Move on past tasks this annotator answered meanwhile elsewhere (a browser tab, another terminal)."""
        if self.i < len(self.todo):
            self._reread()
            jumped = 0
            while self.i < len(self.todo) and (self.todo[self.i].get("meta") or {}).get("id") in self.done:
                self.i += 1
                jumped += 1
            if jumped:
                self._p(f"  ({jumped} task(s) answered meanwhile elsewhere: passed over)")
        if self.i < len(self.todo):
            self._start()


def annotate(path: str | Path, annotator: str, catalog: Catalog | None = None, *,
             stdin: TextIO, stdout: TextIO, clock: Callable[[], str] = now_iso,
             width: int = 100, height: int = 40) -> SessionSummary:
    """Review the tasks of ``path`` that ``annotator`` has not answered, reading commands from ``stdin``.

    On a terminal the screen's own size counts (at most 100 columns are used: longer lines
    read badly); otherwise ``width`` x ``height``.
    """
    if hasattr(stdout, "isatty") and stdout.isatty():
        cols, rows = shutil.get_terminal_size((width, height))
        width, height = min(cols, 100), rows
    reviewer = Reviewer(path, annotator, catalog, out=stdout, clock=clock, width=width, height=height)

    def read_line() -> str | None:
        stdout.write("> ")
        stdout.flush()
        line = stdin.readline()
        return None if line == "" else line

    return reviewer.run(read_line)
