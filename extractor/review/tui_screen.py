"""How the terminal reviewer draws a task: at most ``height`` lines of at most ``width`` columns."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from extractor.review.session import likely_options, numbered_options, score_of

FOOTER = "a accept | r reject | N toggle | c/p ID | d define | o all | s skip | u undo | q quit | ? help"
SHORT_FOOTER = "a accept | r reject | N tick | d define | o all | s skip | u undo | q quit | ?"


def score_text(o: dict[str, Any]) -> str:
    s = score_of(o)
    return "  - " if s is None else f"{s:.2f}"


@dataclass
class Screen:
    width: int
    height: int

    def wrap(self, text: str, indent: str = "    ", max_lines: int | None = None) -> list[str]:
        text = " ".join(str(text).split())
        if not text:
            return []
        return textwrap.wrap(text, self.width, initial_indent=indent, subsequent_indent=" " * len(indent),
                             max_lines=max_lines, placeholder=" [...]")

    @staticmethod
    def numbered(task: dict[str, Any]) -> list[dict[str, Any]]:
        return numbered_options(task)

    def shown(self, task: dict[str, Any], selection: list[str], all_options: bool) -> list[tuple[int, dict[str, Any]]]:
        """(number, option) of the options on screen: the likely and the ticked ones, or all."""
        numbered = list(enumerate(numbered_options(task), 1))
        if all_options:
            return numbered
        likely = set(likely_options(task))
        return [(k, o) for k, o in numbered if o["id"] in likely or o["id"] in selection]

    def option_lines(self, task: dict[str, Any], selection: list[str], all_options: bool) -> list[str]:
        opts = numbered_options(task)
        shown = self.shown(task, selection, False)
        # One line per option while that is short; else (many ticked) the packed view of them all.
        if not all_options and len(shown) <= max(6, self.height // 3):
            lines = ["  likely options ([x] = ticked; score = model probability; `d` says what they mean):"]
            for k, o in shown:
                mark = "x" if o["id"] in selection else " "
                lines.append(f"{k:>3}. [{mark}] {score_text(o)}  {o.get('text') or o['id']}  ({o['id']})")
            more = len(opts) - len(shown)
            if more:
                lines.append(f"       ... {more} more: `o` lists all {len(opts)}; `c ID` / `p ID` / a number ticks one")
            return lines
        return self.packed(opts, selection)

    def packed(self, opts: list[dict[str, Any]], selection: list[str]) -> list[str]:
        """Every option, three columns; the numbers stay the same as in the short list."""
        col = self.width // 3
        cells = []
        for k, o in enumerate(opts, 1):
            mark = "x" if o["id"] in selection else " "
            cell = f"{k:>2} [{mark}] {score_text(o).replace('0.', '.', 1):>4} {o.get('text') or o['id']}"
            cells.append(cell.ljust(col - 1) if len(cell) <= col - 1 else cell[:col - 2] + "~")
        rows = (len(cells) + 2) // 3
        lines = [f"  all {len(opts)} options (`o` shows the likely ones only):"]
        for r in range(rows):
            lines.append(" " + " ".join(cells[r + c * rows] for c in range(3) if r + c * rows < len(cells)).rstrip())
        return lines

    def context(self, task: dict[str, Any], room: int, turn: list[str]) -> tuple[list[str], list[str]]:
        """(lines above the turn, lines below it): shortened first, the turn last."""
        ctx = task.get("context") or {}
        question = ctx.get("question") or ""
        prev = ctx.get("previous") or {}
        nxt = ctx.get("next") or {}
        prev_text = str(prev.get("text") or "") if prev.get("text") != question else ""
        above: list[str] = []
        below: list[str] = []
        for b_prev, b_q, b_next in ((2, 3, 2), (1, 2, 1), (1, 2, 0), (0, 2, 0), (0, 1, 0)):
            # The question was asked before the previous turn (or is it): it goes first.
            above = (self.wrap(question, "  question: ", b_q) if b_q else []) \
                + (self.wrap(prev_text, f"  before ({prev.get('speaker', '?')}): ", b_prev) if b_prev else [])
            below = self.wrap(nxt.get("text") or "", f"  after ({nxt.get('speaker', '?')}): ", b_next) \
                if b_next else []
            if len(above) + len(below) + 1 + len(turn) <= room:
                break
        return above, below

    def block(self, task: dict[str, Any], selection: list[str], all_options: bool, *, done: int, total: int,
              left: int) -> list[str]:
        """The task as at most ``height - 2`` lines (a message line and the prompt go around it)."""
        meta = task.get("meta") or {}
        head = [f"=== task {done + 1}/{total} ({left} left) | "
                f"{meta.get('interview', '?')} turn {meta.get('turn', '?')} | model {meta.get('model') or '?'} ==="]
        opts = self.option_lines(task, selection, all_options)
        room = self.height - 2 - len(head) - len(opts) - 1  # 1: the footer
        turn = self.wrap(str(task.get("text") or ""), "  > ")
        above, below = self.context(task, room, turn)
        turn_room = max(3, room - len(above) - len(below) - 1)  # many ticked options: `o` packs them
        if len(turn) > turn_room:
            hidden = len(turn) - (turn_room - 1)
            turn = turn[:turn_room - 1] + [f"  > [... {hidden} more line(s): `t` prints the whole turn]"]
        footer = FOOTER if len(FOOTER) <= self.width else SHORT_FOOTER
        # No line may wrap, or the block would outgrow the screen (long model ids, option names).
        return [line if len(line) <= self.width else line[:self.width - 1] + "~"
                for line in head + above + ["  TURN (interviewee):"] + turn + below + opts + [footer]]
