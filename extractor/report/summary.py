"""Every figure of the report, computed once from the predictions (and turns, proposals, privacy findings).

Renderers only format this summary, so a test can recompute any figure from
``predictions.jsonl``. Codes a person gave (``label_source == "human"``) carry a
``reviewed`` mark (who, when) wherever they appear; model-only runs have no such keys, so
their summary reads exactly as before reviewed codes existed.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from extractor.catalog import Catalog
from extractor.report.quality import model_quality
from extractor.report.words import shorten
from extractor.types import Prediction, Turn, natural_key, normalize_text

log = logging.getLogger(__name__)

NO_PHASE = "(no phase)"
SHORT_EVIDENCE_WORDS = 5  # an evidence sentence shorter than this ("Okay.") says nothing: quote the turn
UNNAMED_REVIEWER = "a reviewer"


def as_dict(obj: Any) -> dict[str, Any]:
    """A record (mapping, dataclass with ``to_dict``, or plain object) as a dict."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(vars(obj))


def dimension_group(dimension: str) -> str:
    # "Data quality: accuracy" and "Data quality: consistency" read best side by side
    return dimension.split(":", 1)[0].strip() or "Other"


def evidence_of(p: Prediction, code: str) -> str:
    """The evidence sentence of ``code`` on ``p``, or "" when too short to say anything."""
    ev = normalize_text(p.evidence.get(code) or "")
    return ev if len(ev.split()) >= SHORT_EVIDENCE_WORDS else ""


def reviewed_mark(p: Prediction) -> dict[str, str] | None:
    """``{"by": reviewer, "at": when}`` for a person's labels, None for the model's."""
    if p.label_source != "human":
        return None
    return {"by": p.reviewer or UNNAMED_REVIEWER, "at": p.reviewed_at}


def marks(p: Prediction, code: str | None = None) -> dict[str, Any]:
    """The keys a code's entry gets only when set: ``reviewed`` and ``untrained``."""
    out: dict[str, Any] = {}
    rev = reviewed_mark(p)
    if rev:
        out["reviewed"] = rev
    if code is not None and code in p.untrained:
        out["untrained"] = True
    return out


def score(p: Prediction, label: str) -> float:
    return round(float(p.scores.get(label, 0.0)), 4)


@dataclass
class Counts:
    """Turn and interview counts per category, per (category, phase) cell, and co-occurrence."""

    cell_turns: Counter = field(default_factory=Counter)
    cell_interviews: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    cat_turns: Counter = field(default_factory=Counter)
    cat_interviews: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_iv: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    co: Counter = field(default_factory=Counter)

    @classmethod
    def of(cls, preds: Sequence[Prediction]) -> Counts:
        k = cls()
        for p in preds:
            for c in p.categories:
                k.cat_turns[c] += 1
                k.cat_interviews[c].add(p.interview)
                k.by_iv[c][p.interview] += 1
                for ph in p.phases or (NO_PHASE,):
                    k.cell_turns[c, ph] += 1
                    k.cell_interviews[c, ph].add(p.interview)
            for a in p.categories:
                for b in p.categories:
                    if a != b:
                        k.co[a, b] += 1
        return k


class Codes:
    """The codes a report shows: catalog entries plus any the predictions use beyond it,
    with their names and colours."""

    def __init__(self, predictions: Sequence[Prediction], catalog: Catalog) -> None:
        from extractor.qdpx import code_colors

        self.catalog = catalog
        self.cat_ids = list(catalog.category_ids)
        extra_cats = sorted({c for p in predictions for c in p.categories} - set(self.cat_ids))
        if extra_cats:
            log.warning("predictions use categories absent from %s: %s", catalog.tag, extra_cats)
        self.cat_ids += extra_cats
        self.phase_ids = list(catalog.phase_ids)
        extra_phases = sorted({ph for p in predictions for ph in p.phases} - set(self.phase_ids))
        self.phase_ids += extra_phases + [NO_PHASE]
        self.colors = code_colors(catalog)
        spare = iter(("#888888", "#666666", "#AAAAAA") * 50)
        for c in extra_cats + extra_phases:
            self.colors.setdefault(c, next(spare))

    def name(self, entry_id: str) -> str:
        if entry_id == "mitigation":
            return "Mitigation"
        return self.catalog[entry_id].name if entry_id in self.catalog else entry_id


def matrix_rows(codes: Codes, k: Counts) -> list[dict[str, Any]]:
    """Category x phase cells: turns and distinct interviews."""
    return [
        {
            "category": c,
            "name": codes.name(c),
            "cells": {ph: {"turns": k.cell_turns[c, ph], "interviews": len(k.cell_interviews[c, ph])}
                      for ph in codes.phase_ids},
            "turns": k.cat_turns[c],
            "interviews": len(k.cat_interviews[c]),
        }
        for c in codes.cat_ids
    ]


def interview_rows(preds: Sequence[Prediction], turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Per interview: predictions give the interviewee turns; turns (if given) the totals."""
    all_turns = Counter(t.interview for t in turns)
    per: dict[str, dict[str, Any]] = {}
    cats: dict[str, Counter] = defaultdict(Counter)
    empty = {"turns": 0, "interviewee_turns": 0, "issue_turns": 0, "mitigation_turns": 0}
    for p in preds:
        row = per.setdefault(p.interview, {"interview": p.interview, **empty})
        row["interviewee_turns"] += 1
        row["issue_turns"] += bool(p.categories)
        row["mitigation_turns"] += bool(p.mitigation)
        cats[p.interview].update(p.categories)
    for iv, n in all_turns.items():
        per.setdefault(iv, {"interview": iv, **empty})["turns"] = n
    rows = []
    for iv in sorted(per, key=natural_key):
        row = per[iv]
        row["turns"] = row["turns"] or row["interviewee_turns"]
        row["categories"] = len(cats[iv])
        row["top_categories"] = [c for c, _ in sorted(cats[iv].items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
        rows.append(row)
    return rows


def evidence_rows(preds: Sequence[Prediction], c: str) -> list[dict[str, Any]]:
    """Every turn coded with ``c``, most confident first."""
    hits = [p for p in preds if c in p.categories]
    hits.sort(key=lambda p: (-float(p.scores.get(c, 0.0)), natural_key(p.interview), p.turn))
    return [{"interview": p.interview, "turn": p.turn, "id": p.id, "score": score(p, c),
             "quote": shorten(evidence_of(p, c) or p.text), "evidence": evidence_of(p, c), **marks(p, c)}
            for p in hits]


def category_rows(preds: Sequence[Prediction], codes: Codes, k: Counts, iv_names: Sequence[str]) -> list[dict]:
    out = []
    for c in codes.cat_ids:
        entry = codes.catalog[c] if c in codes.catalog else None
        out.append({
            "id": c,
            "name": codes.name(c),
            "color": codes.colors.get(c, "#888888"),
            "definition": entry.definition if entry else "",
            "dimension": entry.dimension if entry else "",
            "group": dimension_group(entry.dimension if entry else ""),
            "turns": k.cat_turns[c],
            "interviews": len(k.cat_interviews[c]),
            "by_interview": {iv: k.by_iv[c][iv] for iv in iv_names if k.by_iv[c][iv]},
            "evidence": evidence_rows(preds, c),
        })
    return out


def dimension_rows(categories: Sequence[Mapping[str, Any]], k: Counts) -> list[dict[str, Any]]:
    groups: dict[str, list[str]] = {}
    for c in categories:
        groups.setdefault(c["group"], []).append(c["id"])
    return [{"name": g, "categories": ids} for g, ids in
            sorted(groups.items(), key=lambda kv: (kv[0] == "Other", -sum(k.cat_turns[c] for c in kv[1]), kv[0]))]


def transcript_row(t: Turn, p: Prediction | None) -> dict[str, Any]:
    """One turn in full with its codes (when predicted)."""
    row: dict[str, Any] = {"turn": t.turn, "id": t.id, "speaker": t.speaker,
                           "who": t.speaker_raw or t.speaker.capitalize(), "text": normalize_text(t.text),
                           "question": normalize_text(t.question or (p.question if p else ""))}
    if p is not None:
        row["codes"] = [{"id": c, "score": score(p, c), "evidence": evidence_of(p, c), **marks(p, c)}
                        for c in sorted(p.categories, key=lambda c: -float(p.scores.get(c, 0.0)))]
        row["phases"] = [{"id": ph, "score": score(p, ph)} for ph in p.phases]
        row["mitigation"] = score(p, "mitigation") if p.mitigation else None
        row.update(marks(p))
    return row


def transcript_rows(preds: Sequence[Prediction], turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Every turn in full, with its codes: the transcript view and the quotes' context."""
    pred_by_id = {p.id: p for p in preds}
    source = list(turns) or [Turn(p.interview, p.turn, "interviewee", p.text, question=p.question, id=p.id)
                             for p in preds]
    by_interview: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in sorted(source, key=lambda t: (natural_key(t.interview), t.turn)):
        by_interview[t.interview].append(transcript_row(t, pred_by_id.get(t.id)))
    return [{"interview": iv, "turns": by_interview[iv]} for iv in sorted(by_interview, key=natural_key)]


def review_totals(preds: Sequence[Prediction]) -> dict[str, Any]:
    """How many codes came from reviewers, and which codes the model was never trained on:
    ``{}`` for a model-only run (so its summary stays as it was)."""
    out: dict[str, Any] = {}
    human = [p for p in preds if p.label_source == "human"]
    if human:
        out["reviewed"] = {"turns": len(human), "codes": sum(len(p.categories) for p in human),
                           "of_codes": sum(len(p.categories) for p in preds),
                           "reviewers": sorted({p.reviewer or UNNAMED_REVIEWER for p in human})}
    untrained = sorted({c for p in preds for c in p.untrained if c in p.categories})
    if untrained:
        out["untrained"] = untrained
    return out


class ReportInputs(TypedDict, total=False):
    """What a report reads beside the predictions and the catalog, each optional (the keyword
    arguments of :func:`summarize`, passed on unchanged by ``write_report``)."""

    turns: Sequence[Turn]
    proposals: Sequence[Any]
    privacy: Sequence[Any]
    manifest: Mapping[str, Any] | None


def summarize(
    predictions: Sequence[Prediction],
    catalog: Catalog,
    *,
    turns: Sequence[Turn] = (),
    proposals: Sequence[Any] = (),
    privacy: Sequence[Any] = (),
    manifest: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every figure of the report, as plain JSON-able data.

    Matrix cells count turns (and distinct interviews) predicted with a category and a
    phase; a turn with a category but no phase counts in the ``(no phase)`` column.
    ``transcripts`` hold every turn in full with its codes (from ``turns``; interviewee
    turns only when no turns are given).
    """
    codes = Codes(predictions, catalog)
    preds = sorted(predictions, key=lambda p: (natural_key(p.interview), p.turn))
    k = Counts.of(preds)
    interviews = interview_rows(preds, turns)
    categories = category_rows(preds, codes, k, [r["interview"] for r in interviews])
    found = sorted((c for c in codes.cat_ids if k.cat_turns[c]), key=lambda c: (-k.cat_turns[c], codes.name(c)))
    man = dict(manifest or {})
    return {
        "catalog": catalog.tag,
        "model": model_quality(man.get("model")),
        "totals": totals(preds, turns, len(found), len(codes.cat_ids), len(proposals), len(privacy)),
        **review_totals(preds),
        "colors": dict(codes.colors),
        "names": {c: codes.name(c) for c in [*codes.cat_ids, *codes.phase_ids[:-1], "mitigation"]},
        "phases": [{"id": ph, "name": codes.name(ph) if ph != NO_PHASE else NO_PHASE} for ph in codes.phase_ids],
        "matrix": matrix_rows(codes, k),
        "dimensions": dimension_rows(categories, k),
        "interviews": interviews,
        "categories": categories,
        "cooccurrence": {"categories": found, "pairs": {a: {b: k.co[a, b] for b in found if k.co[a, b]}
                                                        for a in found}},
        "mitigations": [{"interview": p.interview, "turn": p.turn, "id": p.id, "score": score(p, "mitigation"),
                         "categories": list(p.categories), "quote": shorten(p.text, 200), **marks(p)}
                        for p in preds if p.mitigation],
        "transcripts": transcript_rows(preds, turns),
        "proposals": [as_dict(p) for p in proposals],
        "privacy": [as_dict(f) for f in privacy],
        "manifest": {k: v for k, v in man.items() if k in ("created", "tool", "catalog")},
    }


def totals(preds: Sequence[Prediction], turns: Sequence[Turn], found: int, n_cats: int, n_props: int,
           n_privacy: int) -> dict[str, int]:
    return {
        "interviews": len({p.interview for p in preds} | {t.interview for t in turns}),
        "turns": len(turns) or len(preds),
        "interviewee_turns": len(preds),
        "issue_turns": sum(bool(p.categories) for p in preds),
        "mitigation_turns": sum(bool(p.mitigation) for p in preds),
        "category_labels": sum(len(p.categories) for p in preds),
        "categories_found": found,
        "categories": n_cats,
        "proposals": n_props,
        "privacy_warnings": n_privacy,
    }
