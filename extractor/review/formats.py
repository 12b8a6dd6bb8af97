"""Reading review files line by line: our queues, Prodigy's answers and doccano's exports.

Every line becomes a :class:`Record` (its file, line, exact text and what it asserts) or a
:class:`Problem` (``file:line: expected X, found Y``); a file's problems are all collected,
never just the first. doccano's JSONL export (``{"text", "label": [...], ...}`` with the turn
id in ``meta.id`` or ``turn_id``) is read as ``accept`` answers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog
from extractor.errors import InputError
from extractor.review.options import accept_to_labels, input_hash, option_ids, resolve_label, task_hash
from extractor.review.terminal import printable
from extractor.safeio import open_regular
from extractor.types import Labels

ANSWERS = ("accept", "reject", "ignore")


@dataclass(frozen=True)
class Problem:
    """One problem of one line: printed as ``file:line: expected X, found Y``."""

    path: str
    line: int | None
    expected: str
    found: str

    def __str__(self) -> str:
        return printable(InputError(self.path, self.expected, self.found, line=self.line).message)


@dataclass
class Record:
    """One parsed line of a queue / answers file; ``raw`` is the line's exact text."""

    path: str
    line: int
    raw: str
    obj: dict[str, Any] | None
    turn_id: str = ""
    annotator: str | None = None
    answer: str | None = None
    accept: tuple[str, ...] = ()
    timestamp: float | None = None
    task_hash: int | None = None
    kind: str = "task"  # "task" (ours / Prodigy) or "doccano"
    seq: int = 0

    @property
    def answered(self) -> bool:
        return self.answer in ANSWERS

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def labels(self) -> Labels | None:
        """The corrected labels this answer asserts; ``None`` for ``ignore`` / unanswered."""
        if self.answer == "accept":
            return accept_to_labels(self.accept)
        if self.answer == "reject":
            return Labels()
        return None


class ReviewFileError(InputError):
    """Problems in review files: the first one, and how many more."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        first = self.problems[0]
        more = len(self.problems) - 1
        hint = (f"{more} more problem(s); " if more else "") + "run `extractor review validate` to list them all"
        super().__init__(first.path, first.expected, first.found, line=first.line, hint=hint)


def describe(v: Any) -> str:
    """A value as a problem's ``found``: its type and its start."""
    return "null" if v is None else f"{type(v).__name__} {json.dumps(v, ensure_ascii=False)[:40]}"


def short(text: str, n: int = 60) -> str:
    text = text.strip()
    return repr(text if len(text) <= n else text[:n] + "...")


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_timestamp(v: Any) -> float | None | str:
    """ISO 8601 string or epoch number -> epoch seconds; the string ``"bad"`` when bad.

    Only what every later step can handle passes: finite, within the years 1..9999
    (``merge`` writes timestamps back as ISO strings).
    """
    if v is None or v == "":
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return "bad"
    try:
        if isinstance(v, str):
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
            ts = (dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)).timestamp()
        else:
            ts = float(v)
        if not math.isfinite(ts):
            return "bad"
        datetime.fromtimestamp(ts, timezone.utc)  # the round trip merge does
        return ts
    except (ValueError, OverflowError, OSError):
        return "bad"


class _Checker:
    """The checks of one line; ``bad`` collects its problems."""

    def __init__(self, rec: Record, problems: list[Problem]):
        self.rec, self.problems = rec, problems

    def bad(self, expected: str, found: str) -> None:
        self.problems.append(Problem(self.rec.path, self.rec.line, expected, found))


def _check_meta(c: _Checker, obj: dict[str, Any]) -> None:
    meta = obj.get("meta")
    if not isinstance(meta, dict):
        c.bad('an object "meta" with the turn\'s interview, turn and id', describe(meta))
        meta = {}
    tid = meta.get("id")
    if not isinstance(tid, str) or not tid:
        c.bad('a string "meta.id" (the turn id)', describe(tid))
    else:
        c.rec.turn_id = tid
    if "interview" in meta and not isinstance(meta["interview"], str):
        c.bad('a string "meta.interview"', describe(meta["interview"]))
    if "turn" in meta and (not isinstance(meta["turn"], int) or isinstance(meta["turn"], bool)):
        c.bad('an integer "meta.turn"', describe(meta["turn"]))
    if not isinstance(obj.get("text"), str):
        c.bad('a string "text"', describe(obj.get("text")))


def _check_options(c: _Checker, obj: dict[str, Any], known: set[str]) -> list[str]:
    options = obj.get("options")
    opt_ids: list[str] = []
    if not isinstance(options, list):
        c.bad('a list "options" of {"id", "text"}', describe(options))
        return opt_ids
    for k, o in enumerate(options):
        if not isinstance(o, dict) or not isinstance(o.get("id"), str):
            c.bad(f'options[{k}] as an object with a string "id"', describe(o))
            continue
        if o["id"] not in known:
            c.bad(f"options[{k}].id among the catalog's options (cat:<id>, phase:<id>, mitigation)", repr(o["id"]))
        opt_ids.append(o["id"])
        s = o.get("score")
        if s is not None and (not is_number(s) or not math.isfinite(s)):
            c.bad(f'a finite number or null for options[{k}].score', describe(s))
    if len(set(opt_ids)) != len(opt_ids):
        dup = sorted({x for x in opt_ids if opt_ids.count(x) > 1})
        c.bad("each option once", f"{dup} repeated")
    return opt_ids


def _check_accept(c: _Checker, obj: dict[str, Any], known: set[str], opt_ids: list[str]) -> None:
    accept = obj.get("accept", [])
    if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
        c.bad('a list of option-id strings for "accept"', describe(accept))
        accept = []
    for a in accept:
        if a not in known:
            c.bad("accept ids among the catalog's options (cat:<id>, phase:<id>, mitigation)", repr(a))
        elif opt_ids and a not in opt_ids:
            c.bad("accept ids among the task's options", repr(a))
    c.rec.accept = tuple(dict.fromkeys(accept))


def _check_answer(c: _Checker, obj: dict[str, Any]) -> None:
    rec = c.rec
    answer = obj.get("answer")
    if answer not in (None, "") and answer not in ANSWERS:
        c.bad('"answer" one of accept, reject, ignore (or null while unanswered)', describe(answer))
    else:
        rec.answer = answer or None
    annotator = obj.get("annotator")
    if annotator is None:
        annotator = obj.get("_annotator_id") or obj.get("_session_id")  # Prodigy's names
    if annotator not in (None, "") and not isinstance(annotator, str):
        c.bad('a string "annotator"', describe(annotator))
        annotator = None
    rec.annotator = annotator or None
    if rec.answered and not rec.annotator:
        c.bad('an "annotator" name on an answered task', describe(annotator))
    raw_ts = obj.get("timestamp")
    if raw_ts is None:
        raw_ts = obj.get("_timestamp")
    ts = parse_timestamp(raw_ts)
    if ts == "bad":
        c.bad('"timestamp" as an ISO 8601 string (or epoch seconds)', describe(raw_ts))
    else:
        rec.timestamp = ts  # type: ignore[assignment]


def _check_hashes(c: _Checker, obj: dict[str, Any], opt_ids: list[str]) -> None:
    rec = c.rec
    for key in ("_input_hash", "_task_hash"):
        v = obj.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            c.bad(f'an integer "{key}"', describe(v))
    if rec.turn_id and isinstance(obj.get("_input_hash"), int) and obj["_input_hash"] != input_hash(rec.turn_id):
        c.bad(f'"_input_hash" {input_hash(rec.turn_id)} (the hash of meta.id)', str(obj["_input_hash"]))
    th = obj.get("_task_hash")
    rec.task_hash = th if isinstance(th, int) and not isinstance(th, bool) else (
        task_hash(rec.turn_id, opt_ids) if rec.turn_id else None)


def check_task(rec: Record, obj: dict[str, Any], known: set[str], problems: list[Problem]) -> None:
    """Check one task line (ours or Prodigy's) and fill ``rec`` from it."""
    c = _Checker(rec, problems)
    _check_meta(c, obj)
    opt_ids = _check_options(c, obj, known)
    _check_accept(c, obj, known, opt_ids)
    _check_answer(c, obj)
    _check_hashes(c, obj, opt_ids)


def check_doccano(rec: Record, obj: dict[str, Any], catalog: Catalog, problems: list[Problem]) -> None:
    """Check one doccano line and fill ``rec`` from it (an ``accept`` answer)."""
    c = _Checker(rec, problems)
    rec.kind = "doccano"
    meta = obj.get("meta")
    tid = (meta if isinstance(meta, dict) else {}).get("id", obj.get("turn_id"))
    if not isinstance(tid, str) or not tid:
        c.bad('the turn id as a string in "meta.id" or "turn_id" (doccano line)', describe(tid))
    else:
        rec.turn_id = tid
    labels = obj.get("label", obj.get("labels"))
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        c.bad('a list of label strings in "label" (doccano line)', describe(labels))
        labels = []
    accept = []
    for name in labels:
        oid = resolve_label(name, catalog)
        if oid is None:
            c.bad("labels among the catalog's categories, phases and mitigation", repr(name))
        else:
            accept.append(oid)
    rec.accept = tuple(dict.fromkeys(accept))
    rec.answer = "accept"
    user = obj.get("annotator", obj.get("user"))
    rec.annotator = str(user) if isinstance(user, (str, int)) and not isinstance(user, bool) and user != "" \
        else f"doccano:{Path(rec.path).stem}"
    ts = parse_timestamp(obj.get("timestamp", obj.get("updated_at")))
    rec.timestamp = None if ts == "bad" else ts  # type: ignore[assignment]


class LineParser:
    """Parses the lines of one file in order, keeping what spans lines (repeated tasks and answers)."""

    def __init__(self, path: str | Path, catalog: Catalog, *, turn_ids: set[str] | None = None, seq_start: int = 0):
        self.path = str(path)
        self.catalog = catalog
        self.known = set(option_ids(catalog))
        self.turn_ids = turn_ids
        self.seq_start = seq_start
        self.seen_unanswered: dict[tuple[str, int], int] = {}
        self.seen_answers: dict[tuple, int] = {}

    def parse(self, n: int, raw: str) -> tuple[Record, list[Problem]]:
        """Line ``n`` (1-based, its exact text ``raw``) -> its record and its problems."""
        rec = Record(self.path, n, raw, None, seq=self.seq_start + n)
        problems: list[Problem] = []
        if not raw.strip():
            return rec, problems
        obj = self._load(n, raw, problems)
        if obj is None:
            return rec, problems
        rec.obj = obj
        if ("label" in obj or "labels" in obj) and "options" not in obj and "answer" not in obj:
            check_doccano(rec, obj, self.catalog, problems)
        else:
            check_task(rec, obj, self.known, problems)
        if self.turn_ids is not None and rec.turn_id and rec.turn_id not in self.turn_ids:
            problems.append(Problem(self.path, n, "a turn id present in the turns file", repr(rec.turn_id)))
        if not problems:
            self._check_repeats(rec, problems)
        return rec, problems

    def _load(self, n: int, raw: str, problems: list[Problem]) -> dict[str, Any] | None:
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            problems.append(Problem(self.path, n, "one JSON object per line", f"invalid JSON ({e.msg}) in {short(raw)}"))
            return None
        except RecursionError:
            problems.append(Problem(self.path, n, "a JSON object nested at most a few hundred levels deep",
                                    "deeper nesting"))
            return None
        if not isinstance(obj, dict):
            problems.append(Problem(self.path, n, "a JSON object (one task)", f"{type(obj).__name__} {short(raw)}"))
            return None
        return obj

    def _check_repeats(self, rec: Record, problems: list[Problem]) -> None:
        n = rec.line
        if not rec.answered and rec.task_hash is not None:
            key = (rec.turn_id, rec.task_hash)  # the turn id too: 32-bit hashes of 20,000 tasks collide
            if key in self.seen_unanswered:
                problems.append(Problem(self.path, n, "each task once",
                                        f"duplicated task {rec.turn_id} (also line {self.seen_unanswered[key]})"))
            else:
                self.seen_unanswered[key] = n
        elif rec.answered:
            akey = (rec.turn_id, rec.annotator, rec.answer, rec.accept, rec.timestamp)
            if akey in self.seen_answers:
                problems.append(Problem(self.path, n, "each answer once",
                                        f"duplicated answer of {rec.annotator} on {rec.turn_id} "
                                        f"(same as line {self.seen_answers[akey]})"))
            else:
                self.seen_answers[akey] = n


def iter_lines(path: str | Path, *, start: int = 0, first_line: int = 1) -> Iterator[tuple[int, int, str]]:
    """``(line number, byte offset, text)`` of each complete line of ``path`` from byte ``start``.

    Streamed (a 100 MB queue is never held whole); a missing file, a FIFO or a device, and
    bytes that are not UTF-8 raise :class:`InputError`. A last line without its newline is
    yielded too.
    """
    if not Path(path).exists():
        raise InputError(path, "an existing JSONL file", "no such file")
    with open_regular(path, what="a JSONL file") as fh:  # never a FIFO or a device
        fh.seek(start)
        offset = start
        for n, data in enumerate(fh, first_line):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(path, "UTF-8 text", f"undecodable byte at offset {offset + e.start}", line=n) from None
            yield n, offset, text
            offset += len(data)


def parse_file(path: str | Path, catalog: Catalog, *, turn_ids: set[str] | None = None,
               seq_start: int = 0) -> tuple[list[Record], list[Problem]]:
    """Parse every line of a queue/answers file; collect all problems instead of stopping.

    Checks JSON, types, known option ids, answer values, Prodigy hashes, repeated tasks and
    answers and (with ``turn_ids``) that each turn exists. Blank lines are kept as records
    with ``obj=None`` so a rewrite can preserve the file byte for byte.
    """
    parser = LineParser(path, catalog, turn_ids=turn_ids, seq_start=seq_start)
    records: list[Record] = []
    problems: list[Problem] = []
    try:
        for n, _offset, raw in iter_lines(path):
            rec, probs = parser.parse(n, raw)
            records.append(rec)
            problems.extend(probs)
    except InputError as e:
        problems.append(Problem(str(path), e.line, e.expected, e.found))
    return records, problems


def read_queue(path: str | Path, catalog: Catalog) -> list[Record]:
    """Every line of a queue; a malformed line raises (first problem + how many more)."""
    records, problems = parse_file(path, catalog)
    if problems:
        raise ReviewFileError(problems)
    return records


def validate_files(paths: Sequence[str | Path], catalog: Catalog, *,
                   turn_ids: set[str] | None = None) -> list[Problem]:
    """Every problem of every file (nothing is modified)."""
    problems: list[Problem] = []
    for p in paths:
        problems.extend(parse_file(p, catalog, turn_ids=turn_ids)[1])
    return problems
