"""A terminal reviewer for review queues: one task at a time, one short command per line.

Dependency-free and line-based (plain ``input``-style reads from a stream), so it runs in
any terminal, over ssh, and in tests driven by scripted key presses. Each task is drawn in
at most ``height`` lines (40 by default) at ``width`` columns (100), so the turn being
judged, its options and the prompt stay on one screen: the likely options first, numbered
as the web reviewer numbers them (key ``3`` ticks the same option in both), the rest on
``o``; ``d`` shows what each code means. Context is shortened before the turn is. Every
answer is saved at once through :mod:`extractor.review.session` (locked, appended) and
confirmed with a ``saved: ...`` line; a new session resumes at the first task this
annotator has not answered. ``u`` (undo) takes back the session's own last answer or skip.
Every printed line has its control characters escaped (:func:`extractor.review.terminal.printable`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from extractor.catalog import Catalog
from extractor.errors import ExtractorError
from extractor.review.log import QueueLog
from extractor.review.options import CAT, PHASE, now_iso, option_definitions
from extractor.review.session import Saved, answer_task, check_writable, describe_answer, save_answer, undo_answer
from extractor.review.terminal import printable
from extractor.review.tui_screen import FOOTER, SHORT_FOOTER, Screen
from extractor.review.tui_words import HELP, by_name, suggest_command, toggle_error
from extractor.types import MITIGATION

__all__ = ["FOOTER", "SHORT_FOOTER", "Reviewer", "SessionSummary", "annotate"]


@dataclass
class Event:
    index: int
    kind: str  # "answer" | "skip"
    saved: Saved | None = None  # where the answer went
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


class Reviewer:
    """State of one annotation session over one queue file."""

    def __init__(self, path: str | Path, annotator: str, catalog: Catalog, *,
                 out: TextIO, clock: Callable[[], str] = now_iso, width: int = 100, height: int = 40):
        if not annotator:
            raise ExtractorError("an annotator name is needed (--annotator NAME)")
        self.path = Path(path)
        self.annotator = annotator
        self.catalog = catalog
        self.out = out
        self.clock = clock
        self.screen = Screen(max(60, width) - 1, max(24, height))  # a full-width line makes some terminals wrap
        self.log = QueueLog(self.path, catalog, annotator)
        check_writable(self.path)
        view = self.log.view
        self.todo: list[str] = view.pending()  # turn ids
        self.total = view.total
        self.done = set(view.done)  # turn ids this annotator has answered (here or elsewhere)
        self.definitions = option_definitions(catalog)
        self.i = 0
        self.selection: list[str] = []
        self.all_options = False
        self.history: list[Event] = []
        self.summary = SessionSummary(total=self.total)
        self._task: tuple[int, dict[str, Any]] | None = None

    @property
    def width(self) -> int:
        return self.screen.width

    def task(self, i: int | None = None) -> dict[str, Any]:
        """The task at position ``i`` of this session (the current one by default)."""
        i = self.i if i is None else i
        if self._task is None or self._task[0] != i:
            self._task = (i, self.log.view.tasks[self.todo[i]])
        return self._task[1]

    # -- display --

    def say(self, text: str = "") -> None:
        """Print lines; transcript text cannot steer the terminal (control characters escaped)."""
        for line in text.split("\n"):
            self.out.write(printable(line) + "\n")

    def block(self) -> list[str]:
        """The current task as at most ``height - 2`` lines."""
        return self.screen.block(self.task(), self.selection, self.all_options, done=len(self.done),
                                 total=self.total, left=len(self.todo) - self.i)

    def show(self) -> None:
        for line in self.block():
            self.say(line)

    def footer(self) -> None:
        self.say(FOOTER if len(FOOTER) <= self.width else SHORT_FOOTER)

    # -- actions --

    def start(self) -> None:
        self.selection = list(self.task().get("accept") or [])

    def toggle(self, oid: str) -> str | None:
        opts = self.task().get("options") or []
        if oid not in [o["id"] for o in opts]:
            return toggle_error(oid, opts)
        if oid in self.selection:
            self.selection.remove(oid)
        else:
            self.selection.append(oid)
        return None

    def numbered(self) -> list[dict[str, Any]]:
        return self.screen.numbered(self.task())

    def toggle_numbers(self, cmd: str) -> str | None:
        opts = self.numbered()
        msg = None
        for tok in cmd.split():
            if 1 <= int(tok) <= len(opts):
                self.toggle(opts[int(tok) - 1]["id"])
            else:
                msg = f"no option number {tok} (1-{len(opts)}; `o` lists them all)"
        return msg

    def toggle_named(self, cmd: str) -> str | None:
        """``c ID`` / ``p ID``: by id or by name (``c noisy labels``), several ids at once."""
        prefix = CAT if cmd[0] == "c" else PHASE
        opts = self.task().get("options") or []
        whole = by_name(opts, prefix, cmd[2:])
        if whole:
            return self.toggle(whole)
        known = {o["id"] for o in opts}
        tokens = cmd[2:].split()
        if len(tokens) > 1 and not all(prefix + t in known for t in tokens):
            return self.toggle(prefix + " ".join(tokens))  # a mistyped name: nothing toggled
        msg = None
        for ident in tokens:
            msg = self.toggle(prefix + ident) or msg
        return msg

    def definitions_of(self, cmd: str) -> str | None:
        """``d``: what the listed options mean; ``d N``: what option N means."""
        opts = self.numbered()
        shown = self.screen.shown(self.task(), self.selection, self.all_options)
        wanted = [int(t) for t in cmd.split()[1:] if t.isdigit()]
        if len(cmd.split()) > 1 and (not wanted or any(not 1 <= k <= len(opts) for k in wanted)):
            return f"d N: expected option numbers 1-{len(opts)}, found {cmd[1:].strip()!r}"
        picks = [(k, opts[k - 1]) for k in wanted] if wanted else shown
        # All listed: two lines each, so the list fits beside the task; `d N`: the whole entry.
        room = None if wanted else 2
        self.say("  definitions (from the catalog):" + ("" if wanted else " `d N` gives one in full"))
        for k, o in picks:
            text = f"{o.get('text') or o['id']}: {self.definitions.get(o['id'], '(no definition)')}"
            for line in self.screen.wrap(text, f"{k:>5}. ", room):
                self.say(line)
        self.footer()
        return None

    def save(self, answer: str) -> str:
        task = self.task()
        answered = answer_task(task, answer, self.selection, self.annotator, self.clock())
        saved = save_answer(self.path, answered, self.catalog)
        self.history.append(Event(self.i, "answer", saved, list(answered["accept"]), answer))
        self.done.add(self.todo[self.i])
        self.summary.answered += 1
        self.summary.counts[answer] = self.summary.counts.get(answer, 0) + 1
        meta = task.get("meta") or {}
        self.i += 1
        return f"saved: {describe_answer(answered)} | {meta.get('interview', '?')} turn {meta.get('turn', '?')}"

    def skip(self) -> str:
        self.history.append(Event(self.i, "skip"))
        self.summary.skipped += 1
        meta = self.task().get("meta") or {}
        self.i += 1
        return f"skipped: {meta.get('interview', '?')} turn {meta.get('turn', '?')} (comes back next session)"

    def undo(self) -> str:
        if not self.history:
            return "nothing to undo in this session"
        ev = self.history.pop()
        meta = self.task(ev.index).get("meta") or {}
        where = f"{meta.get('interview', '?')} turn {meta.get('turn', '?')}"
        if ev.kind == "answer" and ev.saved is not None:
            if not undo_answer(self.path, ev.saved, self.catalog, clock=self.clock):
                return "the last answer is no longer in the file; nothing undone"
            self.reread()
            self.summary.answered -= 1
            self.summary.counts[ev.answer] -= 1
            self.i = ev.index
            self.selection = list(ev.accept) if ev.answer == "accept" else list(self.task().get("accept") or [])
            msg = f"undone: the {ev.answer} of {where} is taken back"
        else:
            self.summary.skipped -= 1
            self.i = ev.index
            self.start()
            msg = f"undone: skip of {where}"
        self.summary.undone += 1
        return msg

    def full_turn(self) -> None:
        self.say("  whole turn:")
        for line in self.screen.wrap(str(self.task().get("text") or ""), "  > "):
            self.say(line)
        self.footer()

    # -- the loop --

    def command(self, cmd: str) -> tuple[str | None, bool]:
        """Do one command: (message, redraw)."""
        if cmd in ("?", "h", "help"):
            self.say(HELP)
            return None, True
        if cmd in ("a", "accept", "r", "x", "reject"):
            msg = self.save("accept" if cmd in ("a", "accept") else "reject")
            self.next()
            return msg, True
        if cmd in ("s", "skip"):
            msg = self.skip()
            self.next()
            return msg, True
        simple: dict[str, Callable[[], str | None]] = {
            "u": self.undo, "undo": self.undo, "m": lambda: self.toggle(MITIGATION),
            "o": self.flip_options, "more": self.flip_options}
        if cmd in simple:
            return simple[cmd](), True
        if cmd in ("t", "turn"):
            self.full_turn()
            return None, False
        if cmd == "d" or cmd.startswith("d "):
            return self.definitions_of(cmd), False
        if cmd[:2] in ("c ", "p ") and cmd[2:].strip():
            return self.toggle_named(cmd), True
        if cmd and all(tok.isdigit() for tok in cmd.split()):
            return self.toggle_numbers(cmd), True
        return (suggest_command(cmd) if cmd else None), True

    def flip_options(self) -> None:
        self.all_options = not self.all_options

    def run(self, read_line: Callable[[], str | None]) -> SessionSummary:
        """Drive the session; ``read_line`` returns the next command or ``None`` at end of input."""
        if not self.todo:
            self.say(f"nothing to review: {self.annotator} has answered all {self.total} tasks of {self.path}")
            return self.summary
        self.start()
        self.show()
        while self.i < len(self.todo):
            cmd = read_line()
            if cmd is None or cmd.strip() in ("q", "quit", "exit"):
                break
            msg, redraw = self.command(cmd.strip())
            if msg:
                self.say(f"  {msg}" if msg.startswith(("saved:", "skipped:", "undone:")) else f"  ! {msg}")
            if redraw and self.i < len(self.todo):
                self.show()
        self.summary.remaining = self.total - len(self.done)
        self.say(f"saved {self.summary.answered} answer(s) this session to {self.path}; "
                 f"{self.summary.remaining} task(s) left for {self.annotator}")
        return self.summary

    def reread(self) -> None:
        self.done = set(self.log.refresh().done)

    def next(self) -> None:
        """Move on past tasks this annotator answered meanwhile elsewhere (a browser tab, another terminal)."""
        if self.i < len(self.todo):
            self.reread()
            jumped = 0
            while self.i < len(self.todo) and self.todo[self.i] in self.done:
                self.i += 1
                jumped += 1
            if jumped:
                self.say(f"  ({jumped} task(s) answered meanwhile elsewhere: passed over)")
        if self.i < len(self.todo):
            self.start()


def annotate(path: str | Path, annotator: str, catalog: Catalog, *,
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
