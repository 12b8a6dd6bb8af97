"""Answers as corrections: which answer counts for a turn, and what happens when people disagree.

Answers (``answer`` of a task line):

- ``accept``: the task's ``accept`` list is the truth for that turn: its categories, its
  phases, and mitigation iff ``mitigation`` is in it. An empty ``accept`` means "no label".
- ``reject``: none of the options applies: the turn reports no issue.
- ``ignore``: no verdict. As an annotator's latest answer on a turn it withdraws that
  annotator's earlier answers on it (the reviewers' undo writes one).

Per (turn, annotator) the latest answer counts (by ``timestamp``, then by position). When
two annotators' answers on a turn say different things, that is a *conflict*, decided by
one rule (``on_conflict``): ``latest`` (the default) keeps the most recent answer and warns
with the count and the first ``file:line`` pair; ``refuse`` stops with that same line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog, load_catalog
from extractor.embed import file_sha256
from extractor.errors import ExtractorError
from extractor.review.formats import Problem, Record, ReviewFileError, parse_file
from extractor.types import Labels, Turn

log = logging.getLogger(__name__)

ON_CONFLICT = ("latest", "refuse")


def read_answers(paths: Sequence[str | Path], catalog: Catalog) -> list[Record]:
    """All answered records of ``paths`` in file order; any malformed line raises (nothing is skipped)."""
    out: list[Record] = []
    problems: list[Problem] = []
    seq = 0
    for p in paths:
        recs, probs = parse_file(p, catalog, seq_start=seq)
        seq += len(recs) + 1
        problems.extend(probs)
        out.extend(r for r in recs if r.obj is not None and r.answered)
    if problems:
        raise ReviewFileError(problems)
    return out


def order_key(r: Record) -> tuple[float, int]:
    """When an answer was given: its timestamp, then its position (files in the order given)."""
    return (r.timestamp if r.timestamp is not None else float("-inf"), r.seq)


def latest_answers(records: Iterable[Record]) -> dict[tuple[str, str], Record]:
    """The latest answer per (turn id, annotator): by timestamp, then by position."""
    best: dict[tuple[str, str], Record] = {}
    for r in records:
        key = (r.turn_id, r.annotator or "")
        if key not in best or order_key(r) >= order_key(best[key]):
            best[key] = r
    return best


@dataclass(frozen=True)
class Conflict:
    """Two annotators' answers on one turn that say different things; ``kept`` is the later one."""

    turn_id: str
    overruled: Record
    kept: Record

    def __str__(self) -> str:
        a, b = self.overruled, self.kept
        return f"{a.where} ({a.annotator}) vs {b.where} ({b.annotator})"


def resolve_corrections(records: Iterable[Record]) -> tuple[dict[str, Labels], list[Conflict]]:
    """Turn id -> the labels that count, and every conflict met, by the ``latest`` rule.

    Per (turn, annotator) the latest answer counts and ``ignore`` withdraws; across
    annotators the most recent remaining answer wins. Conflicts are in the order of their
    earliest line.
    """
    per_turn: dict[str, list[Record]] = {}
    for r in latest_answers(records).values():
        if r.labels() is not None:
            per_turn.setdefault(r.turn_id, []).append(r)
    labels: dict[str, Labels] = {}
    conflicts: list[Conflict] = []
    for tid, recs in sorted(per_turn.items()):
        recs.sort(key=order_key)
        kept = recs[-1]
        labels[tid] = kept.labels()  # type: ignore[assignment]
        other = next((r for r in recs[:-1] if r.labels() != labels[tid]), None)
        if other is not None:
            conflicts.append(Conflict(tid, other, kept))
    conflicts.sort(key=lambda c: min(c.overruled.seq, c.kept.seq))
    return labels, conflicts


def conflict_message(conflicts: Sequence[Conflict]) -> str:
    """``3 turn(s) answered differently by two annotators; first: a:3 (ann) vs b:7 (bob)``."""
    return (f"{len(conflicts)} turn(s) answered differently by two annotators; first: {conflicts[0]} "
            f"(turn {conflicts[0].turn_id})")


def check_on_conflict(on_conflict: str) -> None:
    if on_conflict not in ON_CONFLICT:
        raise ExtractorError(f"--on-conflict: expected one of {', '.join(ON_CONFLICT)}, found {on_conflict!r}")


def decide(conflicts: Sequence[Conflict], on_conflict: str = "latest") -> None:
    """Apply the one rule: warn (``latest``) or raise (``refuse``) when there are conflicts."""
    check_on_conflict(on_conflict)
    if not conflicts:
        return
    msg = conflict_message(conflicts)
    if on_conflict == "refuse":
        raise ExtractorError(f"{msg}; settle them (`extractor review agreement` lists the figures) "
                             "or pass --on-conflict latest to let the most recent answer count")
    log.warning("%s; the most recent answer counts (--on-conflict latest; `--on-conflict refuse` stops instead)",
                msg)


def check_conflicts(paths: Sequence[str | Path], catalog: Catalog, on_conflict: str = "latest") -> list[Conflict]:
    """The conflicts among the answers of ``paths``, decided by ``on_conflict`` (``review validate``)."""
    check_on_conflict(on_conflict)
    conflicts = resolve_corrections(read_answers(paths, catalog))[1]
    decide(conflicts, on_conflict)
    return conflicts


def read_corrections(paths: Sequence[str | Path], catalog: Catalog | None = None, *,
                     on_conflict: str = "latest") -> dict[str, Labels]:
    """Turn id -> corrected labels, from queue / Prodigy / doccano answer files.

    What ``train``, ``predict --corrections`` and ``extract --corrections`` read. Label ids
    not in ``catalog`` raise, as do malformed lines; disagreements between annotators are
    decided by ``on_conflict`` (see the module docstring).
    """
    check_on_conflict(on_conflict)
    labels, conflicts = resolve_corrections(read_answers(paths, catalog or load_catalog()))
    decide(conflicts, on_conflict)
    return labels


def corrections_card(paths: Sequence[str | Path], catalog: Catalog | None = None) -> dict[str, Any]:
    """What a model card records about corrections: files (with sha256), answers, corrections."""
    catalog = catalog or load_catalog()
    files = []
    for p in paths:
        answers = read_answers([p], catalog)
        files.append({"path": str(p), "sha256": file_sha256(p), "answers": len(answers),
                      "corrections": len(resolve_corrections(answers)[0])})
    total = len(resolve_corrections(read_answers(paths, catalog))[0]) if paths else 0
    return {"files": files, "corrections": total}


def apply_corrections(turns: Iterable[Turn], corrections: Mapping[str, Labels]) -> list[Turn]:
    """Turns with corrected labels replacing gold ones (``label_source="review"``)."""
    return [replace(t, labels=corrections[t.id], label_source="review") if t.id in corrections else t
            for t in turns]
