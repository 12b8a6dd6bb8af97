"""``extractor review agreement``: how far annotators agree, per label and per pair of annotators.

Cohen's kappa comes from scikit-learn (``cohen_kappa_score``); scikit-learn has no
Krippendorff's alpha, so the nominal alpha (all annotators at once, missing answers
allowed) is computed here, in this one place.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from extractor.catalog import Catalog
from extractor.review.answers import latest_answers, read_answers, resolve_corrections
from extractor.review.options import labels_to_accept, option_ids


def kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two yes/no vectors (scikit-learn); ``None`` where it is undefined
    (both always said the same single value)."""
    from sklearn.metrics import cohen_kappa_score

    a_, b_ = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a_.size == 0 or (len(set(a_.tolist())) == 1 and set(a_.tolist()) == set(b_.tolist())):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = float(cohen_kappa_score(a_, b_, labels=[False, True]))
    return None if np.isnan(k) else k


def krippendorff_alpha_nominal(units: Sequence[Sequence[Any]]) -> float:
    """Krippendorff's alpha for nominal data; ``units`` = the values coders gave each item.

    Items with fewer than two values are not pairable and are dropped. ``nan`` when
    nothing is pairable or every value is the same (no variation to explain).
    """
    o: dict[tuple[Any, Any], float] = defaultdict(float)  # coincidence matrix
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, nc in counts.items():
            for k, nk in counts.items():
                o[(c, k)] += (nc * (nk - (1 if c == k else 0))) / (m - 1)
    n_c: dict[Any, float] = defaultdict(float)
    for (c, _k), v in o.items():
        n_c[c] += v
    n = sum(n_c.values())
    if n <= 1 or len(n_c) < 2:
        return float("nan")
    d_o = sum(v for (c, k), v in o.items() if c != k) / n
    d_e = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k) / (n * (n - 1))
    return float(1 - d_o / d_e) if d_e > 0 else float("nan")


def _pair_figures(a: str, b: str, shared: dict[str, dict[str, set[str]]], options: list[str]) -> dict[str, Any]:
    """Annotator ``a`` against annotator ``b`` on the turns both answered."""
    both = [v for v in shared.values() if a in v and b in v]
    items_a = [o in v[a] for v in both for o in options]
    items_b = [o in v[b] for v in both for o in options]
    return {"annotators": [a, b], "turns": len(both),
            "same_labels": (sum(v[a] == v[b] for v in both) / len(both)) if both else None,
            "kappa": kappa(items_a, items_b)}


def _label_figures(o: str, pairs: list[tuple[str, str]], shared: dict[str, dict[str, set[str]]]) -> dict[str, Any]:
    kappas = []
    for a, b in pairs:
        both = [v for v in shared.values() if a in v and b in v]
        k = kappa([o in v[a] for v in both], [o in v[b] for v in both]) if both else None
        if k is not None:
            kappas.append(k)
    units = [[int(o in s) for s in v.values()] for v in shared.values()]
    return {"kappa": float(np.mean(kappas)) if kappas else None, "alpha": krippendorff_alpha_nominal(units),
            "items": len(units), "positives": int(sum(sum(u) for u in units))}


def agreement(paths: Sequence[str | Path], catalog: Catalog) -> dict[str, Any]:
    """Agreement between annotators on the turns two or more of them answered.

    Uses each annotator's latest ``accept``/``reject`` answer per turn. ``pairs``: each
    pair of annotators on the turns both answered (turns, share with the same label set,
    Cohen's kappa pooled over every (turn, option) decision). ``per_label``: Cohen's kappa
    (mean over annotator pairs) and Krippendorff's alpha (all annotators at once).
    ``conflicts``: turns where the answers that count differ.
    """
    records = read_answers(paths, catalog)
    by_turn: dict[str, dict[str, set[str]]] = {}
    for (tid, ann), r in latest_answers(records).items():
        labels = r.labels()
        if labels is not None:
            by_turn.setdefault(tid, {})[ann] = set(labels_to_accept(labels))
    shared = {t: a for t, a in by_turn.items() if len(a) >= 2}
    annotators = sorted({a for v in by_turn.values() for a in v})
    pairs = list(combinations(annotators, 2))
    options = option_ids(catalog)
    pooled = [[int(o in s) for s in v.values()] for v in shared.values() for o in options]
    conflicts = resolve_corrections(records)[1]
    return {"annotators": annotators, "turns": len(by_turn), "shared_turns": len(shared),
            "conflicts": len(conflicts), "first_conflict": str(conflicts[0]) if conflicts else None,
            "alpha_pooled": krippendorff_alpha_nominal(pooled),
            "pairs": [_pair_figures(a, b, shared, options) for a, b in pairs],
            "per_label": {o: _label_figures(o, pairs, shared) for o in options}}
