"""The terminal reviewer's commands in words: help, names for options, nearest-match hints."""

from __future__ import annotations

import difflib
from typing import Any

from extractor.review.options import CAT, PHASE

HELP = """commands (then Enter):
  a            accept: the ticked options are the truth for this turn
  r  (or x)    reject: no option applies (the turn reports no issue)
  N [N ...]    toggle options by number, e.g. `3` or `3 12` (the web reviewer's numbers)
  c ID         toggle a category by id or name, e.g. `c drift`
  p ID         toggle a phase by id or name, e.g. `p model_training`
  m            toggle mitigation
  d  /  d N    what the listed options mean / what option N means (the catalog's definitions)
  o            show all options / only the likely ones
  t            print the whole turn (when it is shortened)
  s            skip (comes back next session)
  u            undo the last answer or skip of this session
  q            quit (every answer is already saved)
  ?            this help"""

WORDS = {"accept": "a", "reject": "r", "skip": "s", "undo": "u", "quit": "q", "help": "?", "mitigation": "m",
         "options": "o", "more": "o", "turn": "t", "exit": "q", "define": "d", "definition": "d",
         "category": "c ID", "phase": "p ID"}


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("-", " ").replace("_", " ").split())


def by_name(options: list[dict[str, Any]], prefix: str, typed: str) -> str | None:
    """The option whose id or name is ``typed`` (``noisy labels``, ``Noisy labels``), if one is."""
    key = _norm(typed)
    for o in options:
        if o["id"].startswith(prefix) and key in (_norm(o["id"][len(prefix):]), _norm(o.get("text") or "")):
            return o["id"]
    return None


def toggle_error(oid: str, options: list[dict[str, Any]]) -> str:
    """``no category 'drfit' in this task; did you mean `c drift`?``"""
    prefix = CAT if oid.startswith(CAT) else PHASE if oid.startswith(PHASE) else ""
    kind = {"cat:": "category", "phase:": "phase"}.get(prefix, "option")
    typed = oid[len(prefix):]
    pool = {o["id"][len(prefix):]: o["id"] for o in options if o["id"].startswith(prefix)} if prefix else {}
    pool |= {(o.get("text") or "").lower(): o["id"] for o in options if o["id"].startswith(prefix)}
    near = difflib.get_close_matches(typed.lower(), list(pool), n=1, cutoff=0.5)
    hint = f"; did you mean `{prefix[0]} {pool[near[0]][len(prefix):]}`?" if near and prefix else ""
    return f"no {kind} {typed!r} in this task{hint}"


def suggest_command(cmd: str) -> str:
    """``unknown command 'acept'; did you mean `a` (accept)?``"""
    word = cmd.split()[0].lower() if cmd.split() else cmd
    near = difflib.get_close_matches(word, list(WORDS), n=1, cutoff=0.6)
    hint = f"; did you mean `{WORDS[near[0]]}` ({near[0]})?" if near else "; ? lists the commands"
    if near and WORDS[near[0]] in ("c ID", "p ID"):
        hint = f"; did you mean `{WORDS[near[0]]}`?"
    return f"unknown command {cmd!r}{hint}"
