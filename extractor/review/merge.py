"""``extractor review merge``: gather answers from queues, Prodigy and doccano exports in one file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog
from extractor.jsonl import atomic_open
from extractor.review.answers import read_answers
from extractor.review.formats import Record, ReviewFileError, parse_file
from extractor.review.options import input_hash, iso_from_epoch
from extractor.review.queue import write_target
from extractor.safeio import locked


def as_task_line(r: Record) -> dict[str, Any]:
    """A doccano / Prodigy answer as a task line of ours (Prodigy tasks are kept as they are)."""
    ts = None if r.timestamp is None else iso_from_epoch(r.timestamp)
    if r.kind == "task":
        obj = dict(r.obj or {})
        obj.setdefault("annotator", r.annotator)
        if obj.get("timestamp") is None and ts is not None:
            obj["timestamp"] = ts
        return obj
    obj = r.obj or {}
    return {"text": obj.get("text", ""), "meta": {"id": r.turn_id, "source": f"doccano:{Path(r.path).name}"},
            "accept": list(r.accept), "answer": "accept", "annotator": r.annotator, "timestamp": ts,
            "_input_hash": input_hash(r.turn_id)}


def _key(r: Record) -> tuple:
    return (r.turn_id, r.annotator, r.answer, r.accept, r.timestamp)


def merge_answers(inputs: Sequence[str | Path], out: str | Path, catalog: Catalog) -> dict[str, int]:
    """Append the answers of ``inputs`` that ``out`` lacks to ``out`` (append-only, atomic).

    ``out``'s existing lines stay byte for byte; answers already present (same turn,
    annotator, answer, labels, timestamp) are not repeated; unanswered tasks are not copied.
    An ``out`` that is a symbolic link is written through (its target is locked and replaced).
    """
    answers = read_answers(inputs, catalog)  # inputs are only read: outside the lock
    target = write_target(out)
    with locked(target):  # two merges into one file: the second re-reads what the first appended
        existing: list[Record] = []
        if target.exists():
            existing, problems = parse_file(out, catalog)
            if problems:
                raise ReviewFileError(problems)
        have = {_key(r) for r in existing if r.obj is not None and r.answered}
        new = []
        for r in answers:
            if _key(r) not in have:
                have.add(_key(r))
                new.append(json.dumps(as_task_line(r), ensure_ascii=False) + "\n")  # copied as read
        if new or not target.exists():
            with atomic_open(target) as fh:
                for r in existing:
                    fh.write(r.raw if r.raw.endswith("\n") else r.raw + "\n")
                fh.writelines(new)
    return {"existing": sum(1 for r in existing if r.obj is not None), "read": len(answers), "appended": len(new)}
