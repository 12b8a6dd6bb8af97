"""The order of a review queue: most likely wrong first.

``uncertainty`` ranks by the least confident label decision, ``quality`` by cleanlab's
multi-label label-quality score of the model's own labels, ``random`` by a seeded shuffle,
``file`` keeps the predictions' order. Scores that are missing or not finite count as the
model's decision, so no priority is ever NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from extractor.catalog import Catalog
from extractor.errors import ExtractorError
from extractor.review.options import label_key, labels_to_accept, option_ids
from extractor.types import Labels, Prediction

ORDERS = ("uncertainty", "quality", "random", "file")


def score_matrix(preds: Sequence[Prediction], catalog: Catalog) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(scores, chosen, option ids)``; scores of shape (n, n_options) in [0, 1].

    A missing or non-finite score counts as the decision (1 if picked, else 0).
    """
    opts = option_ids(catalog)
    col = {o: j for j, o in enumerate(opts)}
    keys = [label_key(o) for o in opts]
    chosen = np.zeros((len(preds), len(opts)), dtype=bool)
    for i, p in enumerate(preds):
        for o in labels_to_accept(Labels(p.categories, p.phases, p.mitigation)):
            if o in col:
                chosen[i, col[o]] = True
    nan = float("nan")
    try:  # the common case, fast: numbers (or None) everywhere
        scores = np.array([[p.scores.get(k, nan) for k in keys] for p in preds], dtype=np.float64)
    except (TypeError, ValueError):
        scores = np.array([[_number(p.scores.get(k)) for k in keys] for p in preds], dtype=np.float64)
    scores = scores.reshape(len(preds), len(opts))
    bad = ~np.isfinite(scores)
    scores[bad] = chosen[bad]
    return np.clip(scores, 0.0, 1.0), chosen, opts


def _number(v: object) -> float:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


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
    t = np.clip(np.nan_to_num(thresholds, nan=0.5)[None, :], 1e-6, 1 - 1e-6)
    rel = np.where(scores >= t, (scores - t) / (1 - t), (t - scores) / t)
    return rel.min(axis=1) if rel.size else np.zeros(len(scores))


def quality_scores(scores: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """cleanlab's multi-label label-quality score of the model's own labels (low = suspect).

    With the predicted labels as the "given" labels, the score is low where the
    probabilities argue against the model's own thresholded decisions (cleanlab pools
    per-label self-confidence with an exponential moving average that emphasises the
    worst labels).
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
    """Priority of each prediction for review: lower = more likely wrong = earlier; always finite."""
    if order not in ORDERS:
        raise ExtractorError(f"unknown queue order {order!r}; expected one of {', '.join(ORDERS)}")
    n = len(preds)
    if n == 0:
        return np.zeros(0)
    if order == "file":
        return np.arange(n, dtype=np.float64)
    if order == "random":
        return np.random.default_rng(seed).random(n)
    scores, chosen, opts = score_matrix(preds, catalog)
    if order == "quality":
        pri = quality_scores(scores, chosen)
    else:
        if thresholds:
            t = np.array([_number(thresholds.get(label_key(o), thresholds.get(o, 0.5))) for o in opts])
        else:
            t = estimate_thresholds(scores, chosen)
        pri = uncertainty_scores(scores, t)
    return np.where(np.isfinite(pri), pri, 0.0)  # unknown = unsure: reviewed early


def rank(preds: Sequence[Prediction], catalog: Catalog, order: str = "uncertainty", **kw) -> list[int]:
    """Indices of ``preds`` in queue order (stable: ties keep interview/turn order)."""
    pri = priorities(preds, catalog, order, **kw)
    return sorted(range(len(preds)), key=lambda i: (pri[i], preds[i].interview, preds[i].turn))
