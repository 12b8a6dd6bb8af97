"""The annotation loop: review queues, validation, corrections, annotator agreement.

A *queue* is a JSONL file of review tasks, one per interviewee turn, laid out the way
Prodigy's ``choice`` interface reads and writes them, so the same file can be annotated
here (``extractor review annotate``), in Prodigy, or by hand::

    {"text": turn text, "meta": {"interview", "turn", "id", "model", "catalog", ...},
     "context": {"question", "previous", "next"},
     "options": [{"id": "cat:drift", "text": "Drift", "score": 0.83}, ...],
     "accept": ["cat:drift", "phase:model_maintenance"],   # pre-selected by the model
     "answer": null, "annotator": null, "timestamp": null,
     "_input_hash": ..., "_task_hash": ..., "_view_id": "choice", "config": {...}}

Option ids encode the three label kinds: ``cat:<category id>``, ``phase:<phase id>`` and
the single option ``mitigation`` (the turn describes a fix).

Answers (``answer``):

- ``accept``: the task's ``accept`` list is the truth for that turn: its categories, its
  phases, and mitigation iff ``mitigation`` is in it. An empty ``accept`` means "no label".
- ``reject``: none of the options applies: the turn reports no issue (no category, no
  phase, no mitigation), whatever ``accept`` holds.
- ``ignore``: no verdict. As an annotator's latest answer on a turn it withdraws that
  annotator's earlier answers on it.

Queues are append-only logs of human work: an answered line is never rewritten (re-export
keeps it byte for byte, merge only appends), every write is atomic, and when answers are
read the latest per (turn, annotator) wins (by ``timestamp``, then by position).
doccano's JSONL export (``{"text", "label": [...], ...}`` with the turn id in
``meta.id`` or ``turn_id``) is read as ``accept`` answers too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from extractor.catalog import Catalog, load_catalog
from extractor.errors import ExtractorError, InputError
from extractor.embed import file_sha256
from extractor.jsonl import _short, atomic_open, read_predictions  # noqa: F401  (one reader, re-exported)
from extractor.safeio import locked, open_regular
from extractor.types import MITIGATION, Labels, Prediction, Turn

log = logging.getLogger(__name__)

ANSWERS = ("accept", "reject", "ignore")
ORDERS = ("uncertainty", "quality", "random", "file")
CAT, PHASE = "cat:", "phase:"


# --- option ids --------------------------------------------------------------


def option_ids(catalog: Catalog) -> list[str]:
    """Every option of a task, in display order: categories, phases, mitigation."""
    return [CAT + c for c in catalog.category_ids] + [PHASE + p for p in catalog.phase_ids] + [MITIGATION]


def label_key(option_id: str) -> str:
    """``cat:drift`` -> ``drift`` (the key of ``Prediction.scores``)."""
    for prefix in (CAT, PHASE):
        if option_id.startswith(prefix):
            return option_id[len(prefix):]
    return option_id


def labels_to_accept(labels: Labels) -> list[str]:
    return ([CAT + c for c in labels.categories] + [PHASE + p for p in labels.phases]
            + ([MITIGATION] if labels.mitigation else []))


def accept_to_labels(accept: Iterable[str]) -> Labels:
    accept = list(accept)
    return Labels(
        categories=tuple(a[len(CAT):] for a in accept if a.startswith(CAT)),
        phases=tuple(a[len(PHASE):] for a in accept if a.startswith(PHASE)),
        mitigation=MITIGATION in accept,
    )


def _hash32(*parts: str) -> int:
    """Signed 32-bit hash, the shape of Prodigy's ``_input_hash`` / ``_task_hash``."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def input_hash(turn_id: str) -> int:
    return _hash32("input", turn_id)


def task_hash(turn_id: str, options: Iterable[str]) -> int:
    return _hash32("task", turn_id, *sorted(options))


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- queue order -------------------------------------------------------------


def _score_matrix(preds: Sequence[Prediction], catalog: Catalog) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(scores, predicted)`` of shape (n, n_options); a missing score counts as the decision."""
    opts = option_ids(catalog)
    scores = np.zeros((len(preds), len(opts)), dtype=np.float64)
    chosen = np.zeros_like(scores, dtype=bool)
    for i, p in enumerate(preds):
        picked = set(labels_to_accept(Labels(p.categories, p.phases, p.mitigation)))
        for j, o in enumerate(opts):
            chosen[i, j] = o in picked
            s = p.scores.get(label_key(o))
            scores[i, j] = float(s) if s is not None else float(chosen[i, j])
    return scores, chosen, opts


def estimate_thresholds(scores: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Per-option decision threshold implied by the predictions themselves.

    Between the highest score the model left out and the lowest it picked; 0.5 where a
    label was never (or always) picked. Saves asking for the model directory.
    """
    t = np.full(scores.shape[1], 0.5)
    for j in range(scores.shape[1]):
        pos, neg = scores[chosen[:, j], j], scores[~chosen[:, j], j]
        if len(pos) and len(neg):
            t[j] = float(np.clip((pos.min() + neg.max()) / 2, 1e-3, 1 - 1e-3))
    return t


def uncertainty_scores(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Confidence of the least confident label decision per row, in [0, 1] (low = unsure).

    Distance of each probability to its threshold, relative to the room on that side
    (``(p - t) / (1 - t)`` above, ``(t - p) / t`` below), so rare labels with low
    thresholds are not always "uncertain"; the minimum over labels.
    """
    t = np.clip(thresholds[None, :], 1e-6, 1 - 1e-6)
    rel = np.where(scores >= t, (scores - t) / (1 - t), (t - scores) / t)
    return rel.min(axis=1) if rel.size else np.zeros(len(scores))


def quality_scores(scores: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """cleanlab's multi-label label-quality score of the model's own labels (low = suspect).

    With the predicted labels as the "given" labels, the score is low where the
    probabilities argue against the model's own thresholded decisions, i.e. a calibrated,
    worst-labels-weighted confidence (cleanlab pools per-label self-confidence with an
    exponential moving average that emphasises the worst labels).
    """
    try:
        from cleanlab.multilabel_classification.rank import get_label_quality_scores
    except ImportError:
        raise ExtractorError(
            "--order quality needs cleanlab; install it with `pip install 'qi-extractor[review]'`"
            " (or `pip install cleanlab`), or use --order uncertainty"
        ) from None
    labels = [list(np.flatnonzero(row)) for row in chosen]
    if not any(labels):  # cleanlab needs at least one positive somewhere
        return uncertainty_scores(scores, np.full(scores.shape[1], 0.5))
    probs = np.clip(scores, 1e-6, 1 - 1e-6)
    return np.asarray(get_label_quality_scores(labels, probs), dtype=np.float64)


def priorities(preds: Sequence[Prediction], catalog: Catalog, order: str = "uncertainty", *,
               thresholds: Mapping[str, float] | None = None, seed: int = 0) -> np.ndarray:
    """Priority of each prediction for review: lower = more likely wrong = earlier in the queue."""
    if order not in ORDERS:
        raise ExtractorError(f"unknown queue order {order!r}; expected one of {', '.join(ORDERS)}")
    n = len(preds)
    if n == 0:
        return np.zeros(0)
    if order == "file":
        return np.arange(n, dtype=np.float64)
    if order == "random":
        return np.random.default_rng(seed).random(n)
    scores, chosen, opts = _score_matrix(preds, catalog)
    if order == "quality":
        return quality_scores(scores, chosen)
    if thresholds:
        t = np.array([float(thresholds.get(label_key(o), thresholds.get(o, 0.5))) for o in opts])
    else:
        t = estimate_thresholds(scores, chosen)
    return uncertainty_scores(scores, t)


def rank(preds: Sequence[Prediction], catalog: Catalog, order: str = "uncertainty", **kw) -> list[int]:
    """Indices of ``preds`` in queue order (stable: ties keep interview/turn order)."""
    pri = priorities(preds, catalog, order, **kw)
    return sorted(range(len(preds)), key=lambda i: (pri[i], preds[i].interview, preds[i].turn))


# --- tasks ------------------------------------------------------------------


def _ctx(t: Turn | Prediction | None) -> dict[str, Any] | None:
    if t is None:
        return None
    speaker = getattr(t, "speaker", "interviewee")
    return {"turn": t.turn, "speaker": speaker, "text": t.text}


def make_task(pred: Prediction, catalog: Catalog, *, previous=None, next=None,
              order: str = "", priority: float | None = None) -> dict[str, Any]:
    """One review task for one prediction (see the module docstring for the layout)."""
    opts = option_ids(catalog)
    names = {CAT + e.id: e.name for e in catalog.categories} | {PHASE + e.id: e.name for e in catalog.phases}
    names[MITIGATION] = "Mitigation (the turn describes a fix)"
    options = []
    for o in opts:
        s = pred.scores.get(label_key(o))
        options.append({"id": o, "text": names[o], "score": None if s is None else round(float(s), 4)})
    accept = labels_to_accept(Labels(pred.categories, pred.phases, pred.mitigation))
    meta: dict[str, Any] = {"interview": pred.interview, "turn": pred.turn, "id": pred.id,
                            "model": pred.model, "catalog": catalog.tag}
    if order:
        meta["order"] = order
    if priority is not None:
        meta["priority"] = round(float(priority), 6)
    return {
        "text": pred.text,
        "meta": meta,
        "context": {"question": pred.question, "previous": _ctx(previous), "next": _ctx(next)},
        "options": options,
        "accept": accept,
        "predicted": list(accept),
        "answer": None,
        "annotator": None,
        "timestamp": None,
        "_input_hash": input_hash(pred.id),
        "_task_hash": task_hash(pred.id, opts),
        "_view_id": "choice",
        "config": {"choice_style": "multiple"},
    }


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


# --- parsing and validation ---------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One problem of one line: printed as ``file:line: expected X, found Y``."""

    path: str
    line: int | None
    expected: str
    found: str

    def __str__(self) -> str:
        return InputError(self.path, self.expected, self.found, line=self.line).message


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

    def labels(self) -> Labels | None:
        """The corrected labels this answer asserts; ``None`` for ``ignore`` / unanswered."""
        if self.answer == "accept":
            return accept_to_labels(self.accept)
        if self.answer == "reject":
            return Labels()
        return None


def _type(v: Any) -> str:
    return "null" if v is None else f"{type(v).__name__} {json.dumps(v, ensure_ascii=False)[:40]}"


def _parse_ts(v: Any) -> float | None | str:
    """ISO 8601 string or epoch number -> epoch seconds; the string ``"bad"`` when bad.

    Only what every later step can handle passes: finite, within the years 1..9999
    (``merge`` writes timestamps back as ISO strings).
    """
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "bad"
    try:
        if isinstance(v, (int, float)):
            ts = float(v)
        elif isinstance(v, str):
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            ts = dt.timestamp()
        else:
            return "bad"
        if not math.isfinite(ts):
            return "bad"
        datetime.fromtimestamp(ts, timezone.utc)  # the round trip merge does
        return ts
    except (ValueError, OverflowError, OSError):
        return "bad"


def _resolve_label(name: str, catalog: Catalog) -> str | None:
    """doccano label -> option id (``cat:x``/``phase:x``/bare id/``mitigation``)."""
    cats, phases = set(catalog.category_ids), set(catalog.phase_ids)
    if name == MITIGATION:
        return MITIGATION
    if name.startswith(CAT) and name[len(CAT):] in cats:
        return name
    if name.startswith(PHASE) and name[len(PHASE):] in phases:
        return name
    if name in cats:
        return CAT + name
    if name in phases:
        return PHASE + name
    return None


def _check_task(rec: Record, obj: dict[str, Any], known: set[str], problems: list[Problem]) -> None:
    def bad(expected: str, found: str) -> None:
        problems.append(Problem(rec.path, rec.line, expected, found))

    meta = obj.get("meta")
    if not isinstance(meta, dict):
        bad('an object "meta" with the turn\'s interview, turn and id', _type(meta))
        meta = {}
    tid = meta.get("id")
    if not isinstance(tid, str) or not tid:
        bad('a string "meta.id" (the turn id)', _type(tid))
    else:
        rec.turn_id = tid
    if "interview" in meta and not isinstance(meta["interview"], str):
        bad('a string "meta.interview"', _type(meta["interview"]))
    if "turn" in meta and (not isinstance(meta["turn"], int) or isinstance(meta["turn"], bool)):
        bad('an integer "meta.turn"', _type(meta["turn"]))
    if not isinstance(obj.get("text"), str):
        bad('a string "text"', _type(obj.get("text")))

    options = obj.get("options")
    opt_ids: list[str] = []
    if not isinstance(options, list):
        bad('a list "options" of {"id", "text"}', _type(options))
    else:
        for k, o in enumerate(options):
            if not isinstance(o, dict) or not isinstance(o.get("id"), str):
                bad(f'options[{k}] as an object with a string "id"', _type(o))
                continue
            if o["id"] not in known:
                bad(f"options[{k}].id among the catalog's options (cat:<id>, phase:<id>, mitigation)",
                    repr(o["id"]))
            opt_ids.append(o["id"])
            if "score" in o and o["score"] is not None and (
                    not isinstance(o["score"], (int, float)) or isinstance(o["score"], bool)):
                bad(f'a number or null for options[{k}].score', _type(o["score"]))
        if len(set(opt_ids)) != len(opt_ids):
            dup = sorted({x for x in opt_ids if opt_ids.count(x) > 1})
            bad("each option once", f"{dup} repeated")

    accept = obj.get("accept", [])
    if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
        bad('a list of option-id strings for "accept"', _type(accept))
        accept = []
    else:
        for a in accept:
            if a not in known:
                bad("accept ids among the catalog's options (cat:<id>, phase:<id>, mitigation)", repr(a))
            elif opt_ids and a not in opt_ids:
                bad("accept ids among the task's options", repr(a))
    rec.accept = tuple(dict.fromkeys(accept))

    answer = obj.get("answer")
    if answer not in (None, "") and answer not in ANSWERS:
        bad('"answer" one of accept, reject, ignore (or null while unanswered)', _type(answer))
    else:
        rec.answer = answer or None

    annotator = obj.get("annotator")
    if annotator is None:
        annotator = obj.get("_annotator_id") or obj.get("_session_id")  # Prodigy's names
    if annotator not in (None, "") and not isinstance(annotator, str):
        bad('a string "annotator"', _type(annotator))
        annotator = None
    rec.annotator = annotator or None
    if rec.answered and not rec.annotator:
        bad('an "annotator" name on an answered task', _type(annotator))

    raw_ts = obj.get("timestamp")
    if raw_ts is None:
        raw_ts = obj.get("_timestamp")
    ts = _parse_ts(raw_ts)
    if ts == "bad":
        bad('"timestamp" as an ISO 8601 string (or epoch seconds)', _type(raw_ts))
    else:
        rec.timestamp = ts  # type: ignore[assignment]

    for key in ("_input_hash", "_task_hash"):
        v = obj.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
            bad(f'an integer "{key}"', _type(v))
    if rec.turn_id and isinstance(obj.get("_input_hash"), int) and obj["_input_hash"] != input_hash(rec.turn_id):
        bad(f'"_input_hash" {input_hash(rec.turn_id)} (the hash of meta.id)', str(obj["_input_hash"]))
    th = obj.get("_task_hash")
    rec.task_hash = th if isinstance(th, int) and not isinstance(th, bool) else (
        task_hash(rec.turn_id, opt_ids) if rec.turn_id else None)


def _check_doccano(rec: Record, obj: dict[str, Any], catalog: Catalog, problems: list[Problem]) -> None:
    def bad(expected: str, found: str) -> None:
        problems.append(Problem(rec.path, rec.line, expected, found))

    rec.kind = "doccano"
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    tid = meta.get("id", obj.get("turn_id"))
    if not isinstance(tid, str) or not tid:
        bad('the turn id as a string in "meta.id" or "turn_id" (doccano line)', _type(tid))
    else:
        rec.turn_id = tid
    labels = obj.get("label", obj.get("labels"))
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        bad('a list of label strings in "label" (doccano line)', _type(labels))
        labels = []
    accept = []
    for name in labels:
        oid = _resolve_label(name, catalog)
        if oid is None:
            bad("labels among the catalog's categories, phases and mitigation", repr(name))
        else:
            accept.append(oid)
    rec.accept = tuple(dict.fromkeys(accept))
    rec.answer = "accept"
    user = obj.get("annotator", obj.get("user"))
    rec.annotator = str(user) if isinstance(user, (str, int)) and not isinstance(user, bool) and user != "" \
        else f"doccano:{Path(rec.path).stem}"
    ts = _parse_ts(obj.get("timestamp", obj.get("updated_at")))
    rec.timestamp = None if ts == "bad" else ts  # type: ignore[assignment]


def parse_file(path: str | Path, catalog: Catalog, *, turn_ids: set[str] | None = None,
               seq_start: int = 0) -> tuple[list[Record], list[Problem]]:
    """Parse every line of a queue/answers file; collect all problems instead of stopping.

    Checks JSON, types, known option ids, answer values, Prodigy hashes, duplicated tasks
    and (with ``turn_ids``) that each turn exists. Blank lines are kept as records with
    ``obj=None`` so a rewrite can preserve the file byte for byte.
    """
    path_s = str(path)
    known = set(option_ids(catalog))
    records: list[Record] = []
    problems: list[Problem] = []
    if not Path(path).exists():
        return [], [Problem(path_s, None, "an existing JSONL file", "no such file")]
    try:
        with open_regular(path, what="a JSONL file") as fh:  # never a FIFO or a device
            data = fh.read()
    except InputError as e:
        return [], [Problem(path_s, None, e.expected, e.found)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return [], [Problem(path_s, None, "UTF-8 text", f"undecodable byte at offset {e.start}")]
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        pass  # a missing final newline is harmless; rewrites add it back
    seen_unanswered: dict[int, int] = {}
    seen_answers: dict[tuple, int] = {}
    for n, raw in enumerate(lines, 1):
        rec = Record(path_s, n, raw, None, seq=seq_start + n)
        records.append(rec)
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            problems.append(Problem(path_s, n, "one JSON object per line",
                                    f"invalid JSON ({e.msg}) in {_short(raw)}"))
            continue
        except RecursionError:
            problems.append(Problem(path_s, n, "a JSON object nested at most a few hundred levels deep",
                                    "deeper nesting"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(path_s, n, "a JSON object (one task)", f"{type(obj).__name__} {_short(raw)}"))
            continue
        rec.obj = obj
        before = len(problems)
        is_doccano = ("label" in obj or "labels" in obj) and "options" not in obj and "answer" not in obj
        if is_doccano:
            _check_doccano(rec, obj, catalog, problems)
        else:
            _check_task(rec, obj, known, problems)
        if turn_ids is not None and rec.turn_id and rec.turn_id not in turn_ids:
            problems.append(Problem(path_s, n, "a turn id present in the turns file", repr(rec.turn_id)))
        if len(problems) > before:
            continue
        if not rec.answered and rec.task_hash is not None:
            if rec.task_hash in seen_unanswered:
                problems.append(Problem(path_s, n, "each task once",
                                        f"duplicated task {rec.turn_id} (also line {seen_unanswered[rec.task_hash]})"))
            else:
                seen_unanswered[rec.task_hash] = n
        elif rec.answered:
            key = (rec.turn_id, rec.annotator, rec.answer, rec.accept, rec.timestamp)
            if key in seen_answers:
                problems.append(Problem(path_s, n, "each answer once",
                                        f"duplicated answer of {rec.annotator} on {rec.turn_id} "
                                        f"(same as line {seen_answers[key]})"))
            else:
                seen_answers[key] = n
    return records, problems


def validate_files(paths: Sequence[str | Path], catalog: Catalog | None = None, *,
                   turn_ids: set[str] | None = None) -> list[Problem]:
    """Every problem of every file (nothing is modified)."""
    catalog = catalog or load_catalog()
    problems: list[Problem] = []
    for p in paths:
        problems.extend(parse_file(p, catalog, turn_ids=turn_ids)[1])
    return problems


class ReviewFileError(InputError):
    """Problems in review files: the first one, and how many more."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        first = self.problems[0]
        more = len(self.problems) - 1
        hint = (f"{more} more problem(s); " if more else "") + "run `extractor review validate` to list them all"
        super().__init__(first.path, first.expected, first.found, line=first.line, hint=hint)


def read_answers(paths: Sequence[str | Path], catalog: Catalog | None = None) -> list[Record]:
    """All answered records of ``paths`` in file order; any malformed line raises (nothing is skipped)."""
    catalog = catalog or load_catalog()
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


def _order_key(r: Record) -> tuple[float, int]:
    return (r.timestamp if r.timestamp is not None else float("-inf"), r.seq)


def latest_answers(records: Iterable[Record]) -> dict[tuple[str, str], Record]:
    """The latest answer per (turn id, annotator): by timestamp, then by position."""
    best: dict[tuple[str, str], Record] = {}
    for r in records:
        key = (r.turn_id, r.annotator or "")
        if key not in best or _order_key(r) >= _order_key(best[key]):
            best[key] = r
    return best


def read_corrections(paths: Sequence[str | Path], catalog: Catalog | None = None) -> dict[str, Labels]:
    """Turn id -> corrected labels, from queue / Prodigy / doccano answer files.

    Per (turn, annotator) the latest answer counts; ``ignore`` withdraws; across annotators
    the most recent remaining answer wins (``extractor review agreement`` shows where
    annotators disagree). Label ids not in ``catalog`` raise, as do malformed lines.
    """
    latest = latest_answers(read_answers(paths, catalog))
    per_turn: dict[str, Record] = {}
    for r in latest.values():
        if r.labels() is None:
            continue
        if r.turn_id not in per_turn or _order_key(r) >= _order_key(per_turn[r.turn_id]):
            per_turn[r.turn_id] = r
    return {tid: r.labels() for tid, r in sorted(per_turn.items())}  # type: ignore[misc]


def corrections_card(paths: Sequence[str | Path], catalog: Catalog | None = None) -> dict[str, Any]:
    """What a model card records about corrections: files (with sha256), answers, corrections."""
    catalog = catalog or load_catalog()
    files = []
    for p in paths:
        answers = read_answers([p], catalog)
        files.append({"path": str(p), "sha256": file_sha256(p), "answers": len(answers),
                      "corrections": len(read_corrections([p], catalog))})
    return {"files": files, "corrections": len(read_corrections(paths, catalog)) if paths else 0}


def apply_corrections(turns: Iterable[Turn], corrections: Mapping[str, Labels]) -> list[Turn]:
    """Turns with corrected labels replacing gold ones (``label_source="review"``)."""
    from dataclasses import replace

    return [replace(t, labels=corrections[t.id], label_source="review") if t.id in corrections else t
            for t in turns]


# --- export -----------------------------------------------------------------


@dataclass
class ExportSummary:
    kept_answered: int = 0
    kept_unanswered: int = 0
    refreshed: int = 0
    added: int = 0
    skipped_answered: int = 0
    path: str = ""
    order: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _neighbours(preds: Sequence[Prediction], turns: Sequence[Turn] | None):
    """(previous, next) context record per prediction: real neighbours when turns are given."""
    if turns:
        by_pos = {(t.interview, t.turn): i for i, t in enumerate(turns)}
        by_id = {t.id: i for i, t in enumerate(turns)}
        out = []
        for p in preds:
            i = by_id.get(p.id, by_pos.get((p.interview, p.turn)))
            if i is None:
                out.append((None, None))
                continue
            prev = turns[i - 1] if i > 0 and turns[i - 1].interview == p.interview else None
            nxt = turns[i + 1] if i + 1 < len(turns) and turns[i + 1].interview == p.interview else None
            out.append((prev, nxt))
        return out
    order = sorted(range(len(preds)), key=lambda i: (preds[i].interview, preds[i].turn))
    ctx: list[tuple[Any, Any]] = [(None, None)] * len(preds)
    for k, i in enumerate(order):
        prev = preds[order[k - 1]] if k > 0 and preds[order[k - 1]].interview == preds[i].interview else None
        nxt = preds[order[k + 1]] if k + 1 < len(order) and preds[order[k + 1]].interview == preds[i].interview \
            else None
        ctx[i] = (prev, nxt)
    return ctx


def export_queue(predictions: Sequence[Prediction], out: str | Path, catalog: Catalog | None = None, *,
                 turns: Sequence[Turn] | None = None, order: str = "uncertainty", limit: int | None = None,
                 refresh: bool = False, seed: int = 0,
                 thresholds: Mapping[str, float] | None = None) -> ExportSummary:
    """Write (or extend) the review queue ``out`` from predictions, most-likely-wrong first.

    An existing queue is merged, never clobbered: every existing line is kept byte for byte
    (``refresh`` replaces only *unanswered* tasks by their new version), tasks are added only
    for turns the queue does not hold yet, up to ``limit`` new tasks. A malformed existing
    queue raises before anything is written.
    """
    catalog = catalog or load_catalog()
    out = Path(out)
    with locked(out):  # re-read and rewrite as one step: answers saved meanwhile are not lost
        return _export_locked(predictions, out, catalog, turns=turns, order=order, limit=limit, refresh=refresh,
                              seed=seed, thresholds=thresholds)


def _export_locked(predictions, out: Path, catalog: Catalog, *, turns, order, limit, refresh, seed,
                   thresholds) -> ExportSummary:
    summary = ExportSummary(path=str(out), order=order)
    records: list[Record] = []
    if out.exists():
        records, problems = parse_file(out, catalog)
        if problems:
            raise ReviewFileError(problems)
    preds = list(predictions)
    idx = rank(preds, catalog, order, thresholds=thresholds, seed=seed)
    pri = priorities(preds, catalog, order, thresholds=thresholds, seed=seed)
    ctx = _neighbours(preds, turns)

    answered_turns = {r.turn_id for r in records if r.obj is not None and r.answered}
    queued_turns = {r.turn_id for r in records if r.obj is not None}
    fresh: dict[str, dict[str, Any]] = {}
    new_lines: list[str] = []
    for i in idx:
        p = preds[i]
        if p.id in answered_turns:
            summary.skipped_answered += 1
        task = make_task(p, catalog, previous=ctx[i][0], next=ctx[i][1], order=order, priority=pri[i])
        if p.id in queued_turns:
            fresh[p.id] = task
            continue
        if limit is not None and summary.added >= limit:
            continue
        new_lines.append(_dumps(task))
        summary.added += 1
        queued_turns.add(p.id)

    lines: list[str] = []
    for r in records:
        raw = r.raw if r.raw.endswith("\n") else r.raw + "\n"
        if r.obj is None:
            lines.append(raw)
        elif r.answered:
            summary.kept_answered += 1
            lines.append(raw)
        elif refresh and r.turn_id in fresh and r.turn_id not in answered_turns:
            lines.append(_dumps(fresh.pop(r.turn_id)))
            summary.refreshed += 1
        else:
            summary.kept_unanswered += 1
            lines.append(raw)
    with atomic_open(out) as fh:
        fh.writelines(lines)
        fh.writelines(new_lines)
    log.debug("queue %s: %d answered kept, %d unanswered kept, %d refreshed, %d added (order: %s)",
             out, summary.kept_answered, summary.kept_unanswered, summary.refreshed, summary.added, order)
    return summary


# --- merge ------------------------------------------------------------------


def _normalise(r: Record) -> dict[str, Any]:
    """A doccano / Prodigy answer as a task line of ours (Prodigy tasks are kept as they are)."""
    if r.kind == "task":
        obj = dict(r.obj or {})
        obj.setdefault("annotator", r.annotator)
        if obj.get("timestamp") is None and r.timestamp is not None:
            obj["timestamp"] = datetime.fromtimestamp(r.timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return obj
    obj = r.obj or {}
    return {"text": obj.get("text", ""), "meta": {"id": r.turn_id, "source": f"doccano:{Path(r.path).name}"},
            "accept": list(r.accept), "answer": "accept", "annotator": r.annotator,
            "timestamp": None if r.timestamp is None else
            datetime.fromtimestamp(r.timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "_input_hash": input_hash(r.turn_id)}


def merge_answers(inputs: Sequence[str | Path], out: str | Path, catalog: Catalog | None = None) -> dict[str, int]:
    """Append the answers of ``inputs`` that ``out`` lacks to ``out`` (append-only, atomic).

    ``out``'s existing lines stay byte for byte; answers already present (same turn,
    annotator, answer, labels, timestamp) are not repeated; unanswered tasks are not copied.
    """
    catalog = catalog or load_catalog()
    out = Path(out)
    answers = read_answers(inputs, catalog)  # inputs are only read: outside the lock

    def key(r: Record) -> tuple:
        return (r.turn_id, r.annotator, r.answer, r.accept, r.timestamp)

    with locked(out):  # two merges into one file: the second re-reads what the first appended
        existing: list[Record] = []
        if out.exists():
            existing, problems = parse_file(out, catalog)
            if problems:
                raise ReviewFileError(problems)
        have = {key(r) for r in existing if r.obj is not None and r.answered}
        new = []
        for r in answers:
            if key(r) not in have:
                have.add(key(r))
                new.append(_dumps(_normalise(r)))
        if new or not out.exists():
            with atomic_open(out) as fh:
                for r in existing:
                    fh.write(r.raw if r.raw.endswith("\n") else r.raw + "\n")
                fh.writelines(new)
    return {"existing": sum(1 for r in existing if r.obj is not None), "read": len(answers), "appended": len(new)}


# --- agreement --------------------------------------------------------------


def krippendorff_alpha_nominal(units: Sequence[Sequence[Any]]) -> float:
    """Krippendorff's alpha for nominal data; ``units`` = the values coders gave each item.

    Items with fewer than two values are not pairable and are dropped. ``nan`` when
    nothing is pairable or every value is the same (no variation to explain).
    """
    from collections import Counter

    o: Counter = Counter()  # coincidence matrix
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, nc in counts.items():
            for k, nk in counts.items():
                o[(c, k)] += (nc * (nk - (1 if c == k else 0))) / (m - 1)
    n_c: Counter = Counter()
    for (c, _k), v in o.items():
        n_c[c] += v
    n = sum(n_c.values())
    if n <= 1 or len(n_c) < 2:
        return float("nan")
    d_o = sum(v for (c, k), v in o.items() if c != k) / n
    d_e = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k) / (n * (n - 1))
    return float(1 - d_o / d_e) if d_e > 0 else float("nan")


def agreement(paths: Sequence[str | Path], catalog: Catalog | None = None) -> dict[str, Any]:
    """Per-label agreement between annotators on the turns two or more of them answered.

    Uses each annotator's latest ``accept``/``reject`` answer per turn. Per option: Cohen's
    kappa (:func:`extractor.evaluate.cohen_kappa`, ``None`` where undefined; mean over
    annotator pairs, each pair over the turns both answered) and
    Krippendorff's alpha (nominal, all annotators at once, missing answers allowed).
    """
    from itertools import combinations

    from extractor.evaluate import cohen_kappa

    catalog = catalog or load_catalog()
    latest = latest_answers(read_answers(paths, catalog))
    by_turn: dict[str, dict[str, set[str]]] = {}
    for (tid, ann), r in latest.items():
        labels = r.labels()
        if labels is not None:
            by_turn.setdefault(tid, {})[ann] = set(labels_to_accept(labels))
    shared = {t: a for t, a in by_turn.items() if len(a) >= 2}
    annotators = sorted({a for v in by_turn.values() for a in v})
    pairs = list(combinations(annotators, 2))
    per_label: dict[str, dict[str, Any]] = {}
    for o in option_ids(catalog):
        kappas = []
        for a, b in pairs:
            both = [v for v in shared.values() if a in v and b in v]
            if not both:
                continue
            k = cohen_kappa([o in v[a] for v in both], [o in v[b] for v in both])
            if k is not None:  # None: both always said the same single value
                kappas.append(k)
        units = [[int(o in s) for s in v.values()] for v in shared.values()]
        per_label[o] = {
            "kappa": float(np.mean(kappas)) if kappas else None,
            "alpha": krippendorff_alpha_nominal(units),
            "items": len(units),
            "positives": int(sum(sum(u) for u in units)),
        }
    # Pooled over labels: every (turn, option) is one binary item.
    pooled = [[int(o in s) for s in v.values()] for v in shared.values() for o in option_ids(catalog)]
    return {"annotators": annotators, "turns": len(by_turn), "shared_turns": len(shared),
            "alpha_pooled": krippendorff_alpha_nominal(pooled), "per_label": per_label}
