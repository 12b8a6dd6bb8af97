"""Evaluation: model vs gold labels, and human coder agreement on the same turns.

Pure functions over label collections and :class:`~extractor.types.Turn` /
:class:`~extractor.types.Prediction` records; the CLI (``extractor evaluate``) does the I/O.

Conventions (sklearn's ``zero_division=0``, with one exception):

* precision / recall / F1 of a label with no gold and no predicted positive is
  undefined (``None``) and left out of the macro average, so a label that never
  occurs does not count as a perfect 1.0 or a spurious 0.0;
* Cohen's kappa is computed on the binary presence of a label across items; it is
  ``None`` when both raters give the same constant answer (chance agreement is 1);
* micro kappa pools every (item, label) decision into one 2x2 table.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from extractor.catalog import Catalog
from extractor.errors import InputError
from extractor.types import Labels, Prediction, Turn
from extractor.types import natural_key as _interview_key

log = logging.getLogger(__name__)

MODERATED = "moderated"


# --- metrics -----------------------------------------------------------------


def _binary_matrix(rows: Sequence[Collection[str]], labels: Sequence[str]) -> np.ndarray:
    index = {label: j for j, label in enumerate(labels)}
    m = np.zeros((len(rows), len(labels)), dtype=bool)
    for i, row in enumerate(rows):
        for label in row:
            j = index.get(label)
            if j is not None:  # labels outside the evaluated set are ignored
                m[i, j] = True
    return m


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    if tp + fp + fn == 0:
        return {"p": None, "r": None, "f1": None}
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn)
    return {"p": p, "r": r, "f1": f1}


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's kappa of two boolean vectors (``None`` when chance agreement is 1)."""
    a = np.asarray(a, dtype=bool).ravel()
    b = np.asarray(b, dtype=bool).ravel()
    n = a.size
    if n == 0:
        return None
    po = float(np.mean(a == b))
    pa, pb = float(a.mean()), float(b.mean())
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe >= 1.0 - 1e-12:
        return None
    return (po - pe) / (1 - pe)


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def binary_report(gold: Sequence[bool], pred: Sequence[bool]) -> dict[str, Any]:
    """P/R/F1/kappa of one yes/no decision (e.g. the ``mitigation`` flag)."""
    g = np.asarray(gold, dtype=bool)
    p = np.asarray(pred, dtype=bool)
    if g.shape != p.shape:
        raise ValueError(f"gold has {g.size} items, pred has {p.size}")
    tp, fp, fn = int((g & p).sum()), int((~g & p).sum()), int((g & ~p).sum())
    return {**_prf(tp, fp, fn), "kappa": cohen_kappa(g, p), "support": int(g.sum()), "predicted": int(p.sum()),
            "n": int(g.size)}


def multilabel_report(
    gold: Sequence[Collection[str]], pred: Sequence[Collection[str]], labels: Sequence[str]
) -> dict[str, Any]:
    """Micro/macro P/R/F1 and kappa, and per-label P/R/F1/kappa/support.

    ``gold`` and ``pred`` are parallel sequences (one label collection per item); label
    ids outside ``labels`` are ignored.
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items, pred has {len(pred)}")
    labels = list(labels)
    g = _binary_matrix(gold, labels)
    p = _binary_matrix(pred, labels)
    tp = (g & p).sum(axis=0)
    fp = (~g & p).sum(axis=0)
    fn = (g & ~p).sum(axis=0)
    per_label = {}
    for j, label in enumerate(labels):
        per_label[label] = {
            **_prf(int(tp[j]), int(fp[j]), int(fn[j])),
            "kappa": cohen_kappa(g[:, j], p[:, j]),
            "support": int(g[:, j].sum()),
            "predicted": int(p[:, j].sum()),
        }
    micro = _prf(int(tp.sum()), int(fp.sum()), int(fn.sum()))
    micro["kappa"] = cohen_kappa(g, p)
    macro = {k: _mean(v[k] for v in per_label.values()) for k in ("p", "r", "f1", "kappa")}
    macro["labels_averaged"] = sum(v["f1"] is not None for v in per_label.values())
    return {
        "n": len(gold),
        "n_with_gold": int(g.any(axis=1).sum()),
        "n_with_pred": int(p.any(axis=1).sum()),
        "micro": micro,
        "macro": macro,
        "per_label": per_label,
    }


def interview_level_report(
    interviews: Sequence[str],
    gold: Sequence[Collection[str]],
    pred: Sequence[Collection[str]],
    labels: Sequence[str],
) -> dict[str, Any]:
    """Compare the *set* of labels each interview mentions (union over its turns)."""
    if not (len(interviews) == len(gold) == len(pred)):
        raise ValueError("interviews, gold and pred must have the same length")
    keep = set(labels)
    g_sets: dict[str, set[str]] = {}
    p_sets: dict[str, set[str]] = {}
    for iv, g, p in zip(interviews, gold, pred):
        g_sets.setdefault(iv, set()).update(x for x in g if x in keep)
        p_sets.setdefault(iv, set()).update(x for x in p if x in keep)
    order = list(g_sets)
    report = multilabel_report([g_sets[i] for i in order], [p_sets[i] for i in order], labels)
    per_interview = {}
    for iv in order:
        gs, ps = g_sets[iv], p_sets[iv]
        per_interview[iv] = {
            **_prf(len(gs & ps), len(ps - gs), len(gs - ps)),
            "gold": sorted(gs),
            "pred": sorted(ps),
        }
    report["per_interview"] = per_interview
    return report


# --- study codes -> labels ------------------------------------------------------


class CodeMapper:
    """Maps raw study codes to catalog labels through the catalog's ``codes`` lists."""

    def __init__(self, catalog: Catalog):
        self.categories: dict[str, list[str]] = defaultdict(list)
        self.phases: dict[str, list[str]] = defaultdict(list)
        for e in catalog.categories:
            for code in e.codes:
                self.categories[code].append(e.id)
        for e in catalog.phases:
            for code in e.codes:
                self.phases[code].append(e.id)
        self.mitigation = set(catalog.extra.get("mitigation_codes") or ())

    def __call__(self, codes: Iterable[str]) -> Labels:
        cats: dict[str, None] = {}
        phases: dict[str, None] = {}
        mitigation = False
        for code in codes:
            cats.update(dict.fromkeys(self.categories.get(code, ())))
            phases.update(dict.fromkeys(self.phases.get(code, ())))
            mitigation = mitigation or code in self.mitigation
        return Labels(tuple(cats), tuple(phases), mitigation)


def _agreement(
    a: Sequence[Labels], b: Sequence[Labels], catalog: Catalog, interviews: Sequence[str]
) -> dict[str, Any]:
    """Categories/phases/mitigation agreement of ``a`` (rater) against ``b`` (reference)."""
    cats = multilabel_report([x.categories for x in b], [x.categories for x in a], catalog.category_ids)
    phases = multilabel_report([x.phases for x in b], [x.phases for x in a], catalog.phase_ids)
    mit = binary_report([x.mitigation for x in b], [x.mitigation for x in a])
    return {
        "n_turns": len(a),
        "interviews": sorted(set(interviews), key=_interview_key),
        "categories": {"micro": cats["micro"], "macro": cats["macro"]},
        "phases": {"micro": phases["micro"], "macro": phases["macro"]},
        "mitigation": mit,
        "interview_categories": interview_level_report(
            interviews, [x.categories for x in b], [x.categories for x in a], catalog.category_ids)["micro"],
    }


def _codes(t: Turn) -> Mapping[str, Any]:
    return t.codes or {}


def _gold(t: Turn) -> Labels:
    return t.labels or Labels()


def _coded_turns(turns: Iterable[Turn]) -> list[Turn]:
    return [t for t in turns if t.is_interviewee and isinstance(t.codes, Mapping) and t.codes]


def agreement_pairs(turns: Iterable[Turn]) -> list[tuple[str, str]]:
    """The (rater, reference) pairs present: each coder pair, then each coder vs moderated."""
    together: set[tuple[str, str]] = set()
    for t in _coded_turns(turns):
        together.update((a, b) for a, b in combinations(sorted(_codes(t)), 2))
    coders = sorted({s for pair in together for s in pair if s != MODERATED})
    # Only pairs that coded some interview together: the others have nothing to compare.
    pairs = [(a, b) for a, b in combinations(coders, 2) if (a, b) in together]
    pairs += [(c, MODERATED) for c in coders if tuple(sorted((c, MODERATED))) in together]
    return pairs


def _pair_turns(turns: Sequence[Turn], a: str, b: str) -> list[Turn]:
    # A missing key = that source coded nothing in the whole interview: not a comparison.
    return [t for t in turns if a in _codes(t) and b in _codes(t)]


def coder_agreement(turns: Iterable[Turn], catalog: Catalog) -> dict[str, Any]:
    """Human agreement from the gold file's raw ``codes``, mapped through the catalog.

    Compares each pair of coders, and each coder against the ``moderated`` consensus
    (the reference), on the interviewee turns where both sources exist. ``pooled``
    concatenates the turns of all coder-vs-coder pairs and of all coder-vs-moderated
    pairs.
    """
    coded = _coded_turns(turns)
    mapper = CodeMapper(catalog)
    pairs: dict[str, Any] = {}
    pooled: dict[str, tuple[list[Labels], list[Labels], list[str]]] = {
        "coder_vs_coder": ([], [], []),
        "coder_vs_moderated": ([], [], []),
    }
    for a, b in agreement_pairs(coded):
        sel = _pair_turns(coded, a, b)
        la = [mapper(_codes(t)[a]) for t in sel]
        lb = [mapper(_codes(t)[b]) for t in sel]
        ivs = [t.interview for t in sel]
        pairs[f"{a} vs {b}"] = {"rater": a, "reference": b, **_agreement(la, lb, catalog, ivs)}
        kind = "coder_vs_moderated" if b == MODERATED else "coder_vs_coder"
        pooled[kind][0].extend(la)
        pooled[kind][1].extend(lb)
        pooled[kind][2].extend(ivs)
    return {
        "pairs": pairs,
        "pooled": {k: _agreement(*v[:2], catalog, v[2]) for k, v in pooled.items()},
    }


# --- model vs gold ---------------------------------------------------------------


def _match(turns: Sequence[Turn], predictions: Iterable[Prediction]) -> tuple[list[Turn], list[Prediction], int]:
    by_id = {p.id: p for p in predictions}
    kept_t, kept_p, missing = [], [], 0
    for t in turns:
        p = by_id.get(t.id)
        if p is None:
            missing += 1
            continue
        kept_t.append(t)
        kept_p.append(p)
    return kept_t, kept_p, missing


def _labelled(turns: list[Turn], moderated_only: bool, interviews: Collection[str] | None,
              gold_path: str | None) -> tuple[list[Turn], str]:
    """The labelled interviewee turns to score, and the name of that subset."""
    labelled = [t for t in turns if t.is_interviewee and t.labels is not None]
    if moderated_only:
        labelled = [t for t in labelled if t.label_source == MODERATED]
    if interviews is not None:
        wanted = set(interviews)
        unknown = wanted - {t.interview for t in turns}
        if unknown:
            raise InputError(gold_path, "interviews present in the gold file", ", ".join(sorted(unknown)))
        labelled = [t for t in labelled if t.interview in wanted]
    subset = "moderated turns" if moderated_only else "all labelled turns (moderated + coders' union)"
    if not labelled:
        raise InputError(gold_path, "labelled interviewee turns", f"none ({subset})",
                         hint="is this the gold turns.jsonl?")
    return labelled, subset


def _check_ids(predictions: Sequence[Prediction], catalog: Catalog) -> None:
    """A predicted id the catalog lacks would be scored as a plain error (or ignored): refuse it."""
    from extractor.jsonl import unknown_label_ids

    for p in predictions:
        bad = unknown_label_ids(p.categories, p.phases, catalog)
        if bad:
            raise InputError("predictions", f"category and phase ids of the catalog {catalog.tag}",
                             f"unknown {bad[0]!r} in prediction {p.id!r}",
                             hint="predicted with another catalog? pass it with --catalog")


def evaluate(
    turns: Iterable[Turn],
    predictions: Iterable[Prediction],
    catalog: Catalog,
    *,
    moderated_only: bool = False,
    interviews: Collection[str] | None = None,
    gold_path: str | None = None,
) -> dict[str, Any]:
    """Model vs gold labels, with the human figures on the same turns side by side.

    Evaluated turns: labelled interviewee turns (only ``label_source == "moderated"``
    ones when ``moderated_only``; only the given ``interviews`` when set) that have a
    prediction (matched by turn id). Labelled turns without a prediction are counted
    in ``missing_predictions``; none matching at all is an error. ``gold_path`` only
    names the gold file in error messages.
    """
    labelled, subset = _labelled(list(turns), moderated_only, interviews, gold_path)
    predictions = list(predictions)
    _check_ids(predictions, catalog)
    ev_turns, preds, missing = _match(labelled, predictions)
    if not ev_turns:
        raise InputError(gold_path, "predictions for the labelled turns (matched by turn id)",
                         f"none of {len(labelled)} labelled turns", hint="were they predicted from this gold file?")
    if missing:
        log.warning("%d of %d labelled turns have no prediction; evaluating the other %d",
                    missing, len(labelled), len(ev_turns))

    gold_c = [_gold(t).categories for t in ev_turns]
    pred_c = [p.categories for p in preds]
    ivs = [t.interview for t in ev_turns]
    model = {
        "categories": multilabel_report(gold_c, pred_c, catalog.category_ids),
        "phases": multilabel_report([_gold(t).phases for t in ev_turns], [p.phases for p in preds],
                                    catalog.phase_ids),
        "mitigation": binary_report([_gold(t).mitigation for t in ev_turns], [p.mitigation for p in preds]),
    }
    interview_level = interview_level_report(ivs, gold_c, pred_c, catalog.category_ids)
    human = coder_agreement(ev_turns, catalog)
    return {
        "catalog": catalog.tag,
        "subset": subset,
        "moderated_only": moderated_only,
        "n_turns": len(ev_turns),
        "n_interviews": len(set(ivs)),
        "interviews": sorted(set(ivs), key=_interview_key),
        "label_sources": {s: sum(t.label_source == s for t in ev_turns) for s in sorted({str(t.label_source) for t in ev_turns})},
        "missing_predictions": missing,
        "model": model,
        "interview_level": interview_level,
        "human": human,
        "side_by_side": side_by_side(ev_turns, preds, catalog),
        "models": sorted({p.model for p in preds if p.model}),
    }


def side_by_side(turns: Sequence[Turn], predictions: Sequence[Prediction], catalog: Catalog) -> list[dict[str, Any]]:
    """One row per human comparison: human agreement vs the model's, on exactly its turns.

    * ``coder vs moderated``: the coder's and the model's agreement with the moderated
      codes on the turns where both the coder and the moderator coded the interview;
    * ``coder A vs coder B``: the coders' agreement, vs the mean of the model's
      agreement with A and with B on the same turns;
    * two ``pooled`` rows concatenate the turns of each kind of comparison.
    """
    mapper = CodeMapper(catalog)
    pred_of = {t.id: p for t, p in zip(turns, predictions)}
    coded = _coded_turns(turns)
    rows = []
    pooled: dict[str, tuple[list[Labels], list[Labels], list[Labels], list[str]]] = {
        "coder vs coder (pooled)": ([], [], [], []),
        "coder vs moderated (pooled)": ([], [], [], []),
    }
    for a, b in agreement_pairs(coded):
        sel = _pair_turns(coded, a, b)
        la = [mapper(_codes(t)[a]) for t in sel]
        lb = [mapper(_codes(t)[b]) for t in sel]
        lm = [Labels(pred_of[t.id].categories, pred_of[t.id].phases, pred_of[t.id].mitigation) for t in sel]
        ivs = [t.interview for t in sel]
        rows.append(_side_row(f"{a} vs {b}", la, lb, lm, ivs, b == MODERATED, catalog))
        acc = pooled["coder vs moderated (pooled)" if b == MODERATED else "coder vs coder (pooled)"]
        acc[0].extend(la)
        acc[1].extend(lb)
        acc[2].extend(lm)
        acc[3].extend(ivs)
    for name, (la, lb, lm, ivs) in pooled.items():
        if la:
            rows.append(_side_row(name, la, lb, lm, ivs, "moderated" in name, catalog))
    return rows


def _side_row(name: str, la: list[Labels], lb: list[Labels], lm: list[Labels], ivs: list[str],
              b_is_reference: bool, catalog: Catalog) -> dict[str, Any]:
    row: dict[str, Any] = {"comparison": name, "n_turns": len(la), "n_interviews": len(set(ivs))}
    refs = [lb] if b_is_reference else [la, lb]
    ids = catalog.category_ids
    human = interview_level_report(ivs, [x.categories for x in lb], [x.categories for x in la], ids)
    model = [interview_level_report(ivs, [x.categories for x in ref], [x.categories for x in lm], ids) for ref in refs]
    row["interview_categories"] = {"human_f1": human["micro"]["f1"], "model_f1": _mean(r["micro"]["f1"] for r in model)}
    for field, ids in (("categories", catalog.category_ids), ("phases", catalog.phase_ids)):
        human = multilabel_report([getattr(x, field) for x in lb], [getattr(x, field) for x in la], ids)
        # Against a moderated reference the model takes the coder's place; between two
        # coders neither is the truth, so the model is scored against each in turn.
        model = [multilabel_report([getattr(x, field) for x in ref], [getattr(x, field) for x in lm], ids)
                 for ref in refs]
        row[field] = {
            "human_f1": human["micro"]["f1"],
            "human_kappa": human["micro"]["kappa"],
            "model_f1": _mean(r["micro"]["f1"] for r in model),
            "model_kappa": _mean(r["micro"]["kappa"] for r in model),
        }
    return row


# --- cross-validation -------------------------------------------------------------


def grouped_folds(turns: Iterable[Turn], k: int, seed: int = 42) -> list[list[str]]:
    """Split the labelled interviews into ``k`` folds of similar size (in labelled turns).

    Whole interviews only: one interview's turns never sit on both sides of a split.
    Deterministic for a given ``seed``.
    """
    from extractor.classify.thresholds import group_folds

    rows = [t.interview for t in turns if t.is_interviewee and t.labels is not None]
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"expected at least 2 folds, found {k!r}")
    if len(set(rows)) < k:
        raise InputError(None, f"at least {k} labelled interviews for {k}-fold cross-validation", str(len(set(rows))))
    return [sorted({rows[i] for i in f}, key=_interview_key) for f in group_folds(rows, k, seed)]


def cross_validate(
    turns: Sequence[Turn],
    *,
    folds: int = 5,
    catalog: Catalog | None = None,
    config: Any = None,
    model_config: Any = None,
    progress: bool = False,
) -> tuple[list[Prediction], list[list[str]]]:
    """Out-of-fold predictions for every labelled interview, grouped by interview.

    Each fold's model (:class:`~extractor.classify.IssueClassifier`, trained with the
    :class:`~extractor.classify.TrainConfig` ``config``) is trained on all turns of the other
    labelled interviews and predicts the held-out ones; its thresholds are tuned on its own
    inner folds, never on the held-out interviews. Returns the predictions and the folds.
    """
    from extractor.classify import IssueClassifier, TrainConfig

    config = config or TrainConfig()
    turns = list(turns)
    split = grouped_folds(turns, folds, seed=config.seed)
    labelled = {name for fold in split for name in fold}
    preds: list[Prediction] = []
    for i, held_out in enumerate(split):
        test = set(held_out)
        train = [t for t in turns if t.interview in labelled and t.interview not in test]
        clf = IssueClassifier(catalog=catalog, config=model_config, train_config=config)
        log.info("fold %d/%d: training on %d turns, holding out %s", i + 1, len(split), len(train), ", ".join(held_out))
        clf.fit(train, progress=progress)
        preds += clf.predict([t for t in turns if t.interview in test], progress=progress, evidence=False)
    return preds, split


# --- tables --------------------------------------------------------------------


def _fmt(x: float | None, width: int = 6) -> str:
    return f"{x:{width}.3f}" if isinstance(x, (int, float)) else f"{'-':>{width}}"


def format_label_table(report: Mapping[str, Any], title: str) -> str:
    """Per-label P/R/F1/kappa/support table with micro and macro rows."""
    per = report["per_label"]
    w = max([len(title), 5, *(len(k) for k in per)])
    lines = [f"{title:<{w}}  {'P':>6} {'R':>6} {'F1':>6} {'kappa':>6} {'gold':>5} {'pred':>5}"]
    for label, m in per.items():
        lines.append(f"{label:<{w}}  {_fmt(m['p'])} {_fmt(m['r'])} {_fmt(m['f1'])} {_fmt(m['kappa'])}"
                     f" {m['support']:>5} {m['predicted']:>5}")
    lines.append("-" * len(lines[0]))
    for avg in ("micro", "macro"):
        m = report[avg]
        lines.append(f"{avg:<{w}}  {_fmt(m['p'])} {_fmt(m['r'])} {_fmt(m['f1'])} {_fmt(m['kappa'])}")
    return "\n".join(lines)


def format_tables(result: Mapping[str, Any]) -> str:
    """Human-readable summary of :func:`evaluate`'s result."""
    out = [
        f"Evaluated {result['n_turns']} interviewee turns of {result['n_interviews']} interviews "
        f"({result['subset']}; catalog {result['catalog']})."
    ]
    if result.get("missing_predictions"):
        out.append(f"warning: {result['missing_predictions']} labelled turns had no prediction and were skipped.")
    model = result["model"]
    out.append("")
    out.append("Turn level: " + _summary("categories", model["categories"]) + "; "
               + _summary("phases", model["phases"]) + "; mitigation F1 " + _fmt(model["mitigation"]["f1"], 0)
               + " kappa " + _fmt(model["mitigation"]["kappa"], 0))
    il = result["interview_level"]
    out.append("Interview level (categories each interview mentions): " + _summary("categories", il))
    out += ["", format_label_table(model["categories"], "category"), "", format_label_table(model["phases"], "phase")]
    out += ["", "Humans vs model on the same turns (micro-F1, rater vs reference; kappas in --json):"]
    rows = result["side_by_side"]
    if not rows:
        out.append("  (no turn of the evaluated set has codes from two sources)")
    else:
        w = max(len("comparison"), *(len(r["comparison"]) for r in rows))
        out.append(f"  {'comparison':<{w}} {'turns':>5}  {'cat human':>9} {'cat model':>9}  {'phase human':>11}"
                   f" {'phase model':>11}  {'interviews':>10} {'iv human':>8} {'iv model':>8}")
        for r in rows:
            c, p, iv = r["categories"], r["phases"], r["interview_categories"]
            out.append(f"  {r['comparison']:<{w}} {r['n_turns']:>5}  {_fmt(c['human_f1'], 9)} {_fmt(c['model_f1'], 9)}"
                       f"  {_fmt(p['human_f1'], 11)} {_fmt(p['model_f1'], 11)}  {r['n_interviews']:>10}"
                       f" {_fmt(iv['human_f1'], 8)} {_fmt(iv['model_f1'], 8)}")
        out.append("  (iv = categories each interview mentions; model column of coder-vs-coder rows ="
                   " mean of model vs each coder)")
    pooled = result["human"]["pooled"]
    out.append("Pooled human agreement: " + "; ".join(
        f"{k.replace('_', ' ')} ({v['n_turns']} turns) categories F1 {_fmt(v['categories']['micro']['f1'], 0)}"
        f" kappa {_fmt(v['categories']['micro']['kappa'], 0)}, phases F1 {_fmt(v['phases']['micro']['f1'], 0)}"
        f" kappa {_fmt(v['phases']['micro']['kappa'], 0)}"
        for k, v in pooled.items()))
    return "\n".join(out)


def _summary(name: str, report: Mapping[str, Any]) -> str:
    return (f"{name} micro-F1 {_fmt(report['micro']['f1'], 0)}, macro-F1 {_fmt(report['macro']['f1'], 0)},"
            f" kappa {_fmt(report['micro']['kappa'], 0)}")
