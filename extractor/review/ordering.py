"""The order of a review queue: the turns whose reading fixes most of the coding first.

``coverage`` (the default) is ``gain`` with teaching anticipated: an answer is taught to the
interviewee turns one and two places away in the same interview (docs/teach.md), so a turn is
worth its own expected gain plus the share of its neighbours' that its answer brings, and once
it is queued its neighbours' gain shrinks by that share (:func:`spread_priorities`). Early
reads spread over the interviews' coded passages instead of piling up in one.
``gain`` ranks by the expected number of category errors a reading fixes: per
category, a code the model gave that is wrong (``1 - p``) or one it missed (``p``), a missed
code counted ``MISS_WEIGHT`` times (micro-F1 gains a true positive and loses a false negative
where a removed false positive only shrinks the denominator). Most turns carry no code, and a
turn the model is unsure about among 36 labels is often one with nothing to code, so the
older ``uncertainty`` order (the least confident label decision first) makes a reviewer read
many turns that change nothing (BENCHMARKS.md, "Loop payoff"). ``relevance`` puts the turns
most likely to carry a code first (the sum of the category scores), ``quality`` ranks by
cleanlab's multi-label label-quality score of the model's own labels, ``random`` by a seeded
shuffle, ``file`` keeps the predictions' order. Scores that are missing or not finite count
as the model's decision, so no priority is ever NaN; ties keep interview/turn order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from extractor.catalog import Catalog
from extractor.errors import ExtractorError
from extractor.review.options import CAT, label_key, labels_to_accept, option_ids
from extractor.types import Labels, Prediction

ORDERS = ("coverage", "gain", "uncertainty", "quality", "relevance", "random", "file")
DEFAULT_ORDER = "coverage"
MISS_WEIGHT = 2.0


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


def category_columns(opts: Sequence[str]) -> np.ndarray:
    """Indices of the category options among ``opts`` (gain and relevance count categories only)."""
    return np.array([j for j, o in enumerate(opts) if o.startswith(CAT)], dtype=int)


def expected_gain(scores: np.ndarray, chosen: np.ndarray, miss_weight: float = MISS_WEIGHT) -> np.ndarray:
    """Per row, the expected (weighted) number of errors its reading fixes: ``1 - p`` for each
    label the model picked, ``miss_weight * p`` for each it left out."""
    return np.where(chosen, 1.0 - scores, miss_weight * scores).sum(axis=1)


def priorities(preds: Sequence[Prediction], catalog: Catalog, order: str = DEFAULT_ORDER, *,
               thresholds: Mapping[str, float] | None = None, seed: int = 0) -> np.ndarray:
    """Priority of each prediction for review: lower = more worth reading = earlier; always finite."""
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
    if order in ("coverage", "gain", "relevance"):
        cats = category_columns(opts)
        if order == "relevance":
            return -scores[:, cats].sum(axis=1)
        gain = expected_gain(scores[:, cats], chosen[:, cats])
        return spread_priorities(preds, gain, cover=True) if order == "coverage" else -gain
    if order == "quality":
        pri = quality_scores(scores, chosen)
    else:
        if thresholds:
            t = np.array([_number(thresholds.get(label_key(o), thresholds.get(o, 0.5))) for o in opts])
        else:
            t = estimate_thresholds(scores, chosen)
        pri = uncertainty_scores(scores, t)
    return np.where(np.isfinite(pri), pri, 0.0)  # unknown = unsure: reviewed early


def rank(preds: Sequence[Prediction], catalog: Catalog, order: str = DEFAULT_ORDER, **kw) -> list[int]:
    """Indices of ``preds`` in queue order (stable: ties keep interview/turn order)."""
    pri = priorities(preds, catalog, order, **kw)
    return sorted(range(len(preds)), key=lambda i: (pri[i], preds[i].interview, preds[i].turn))


NEIGHBOUR_WEIGHTS = (0.65, 0.44)  # how much an answer speaks for the interviewee turns 1 and 2 away (docs/teach.md)


def interview_chains(preds: Sequence[Prediction]) -> list[list[int]]:
    """Indices of ``preds`` per interview, in turn order: the chains an answer teaches along."""
    by_iv: dict[str, list[int]] = {}
    for i, p in enumerate(preds):
        by_iv.setdefault(p.interview, []).append(i)
    return [sorted(ix, key=lambda i: preds[i].turn) for _, ix in sorted(by_iv.items())]


def spread_priorities(preds: Sequence[Prediction], value: np.ndarray, *, cover: bool = False,
                      weights: Sequence[float] = NEIGHBOUR_WEIGHTS, strength: float = 1.0) -> np.ndarray:
    """Priorities (lower = earlier) of a greedy order that anticipates teaching.

    Once a turn is read, its answer is taught to the turns ``d`` places away in the same
    interview with weight ``weights[d - 1]``, so part of their expected gain is gone: it is
    scaled by ``1 - strength * w``. With ``cover`` a turn's value also counts the gain its
    answer is expected to bring its neighbours (``w`` times their remaining gain). Lazy
    greedy: values only fall, so the priority is minus the value at the time of picking.
    """
    import heapq

    n = len(preds)
    left = np.asarray(value, dtype=np.float64).copy()
    near: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for chain in interview_chains(preds):
        for k, i in enumerate(chain):
            for d, w in enumerate(weights, start=1):
                for kk in (k - d, k + d):
                    if 0 <= kk < len(chain):
                        near[i].append((chain[kk], min(1.0, strength * w)))

    def worth(i: int) -> float:
        return float(left[i] + (sum(w * left[j] for j, w in near[i]) if cover else 0.0))

    heap = [(-worth(i), preds[i].interview, preds[i].turn, i) for i in range(n)]
    heapq.heapify(heap)
    out = np.zeros(n)
    picked = np.zeros(n, dtype=bool)
    while heap:
        neg, iv, turn, i = heapq.heappop(heap)
        if picked[i]:
            continue
        now = worth(i)
        if now < -neg - 1e-12:  # stale: its neighbours were read meanwhile
            heapq.heappush(heap, (-now, iv, turn, i))
            continue
        picked[i], out[i], left[i] = True, -now, 0.0
        for j, w in near[i]:
            left[j] *= 1.0 - w
    return out
