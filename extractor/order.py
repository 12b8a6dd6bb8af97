"""Review orders that pay back a reviewer's time: predictions in, ordered turn ids out.

``review export``'s ``uncertainty`` order puts first the turns whose least certain label is
nearest its threshold. Most turns carry no code, and a turn the model is unsure about among 36
labels is often one with nothing to code, so a reviewer reads many turns that change nothing.
For the coding as a whole (reviewers' answers on the read turns, the model's codes on the
rest) what matters is how many of the model's errors a reading fixes:

* ``relevance``: turns most likely to carry a code first (the sum of the category scores, the
  expected number of codes if the scores were probabilities);
* ``gain``: the expected number of category errors a reading fixes: per category, a code the
  model gave that is wrong (``1 - p``) or one it missed (``p``); a missed code fixed counts
  ``miss_weight`` times (micro-F1 gains a true positive and loses a false negative, where a
  removed false positive only shrinks the denominator).

Both are pure functions of the predictions; ties keep interview/turn order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from extractor.types import Prediction, natural_key

ORDERS = ("relevance", "gain")


def category_scores(preds: Sequence[Prediction], categories: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, coded): (n, categories) score matrix (a missing score counts as the decision) and
    the model's 0/1 codes."""
    S = np.zeros((len(preds), len(categories)))
    D = np.zeros_like(S, dtype=bool)
    for i, p in enumerate(preds):
        got = set(p.categories)
        for j, c in enumerate(categories):
            D[i, j] = c in got
            S[i, j] = float(p.scores.get(c, float(D[i, j])))
    return S, D


def expected_gain(preds: Sequence[Prediction], categories: Sequence[str], miss_weight: float = 2.0) -> np.ndarray:
    """Per prediction, the expected (weighted) number of category errors its reading fixes."""
    S, D = category_scores(preds, categories)
    return np.where(D, 1.0 - S, miss_weight * S).sum(axis=1)


def order_ids(preds: Sequence[Prediction], categories: Sequence[str], order: str = "gain") -> list[str]:
    """Turn ids of ``preds`` in review order (most worth reading first); ``order`` is one of
    :data:`ORDERS`."""
    if order == "relevance":
        value = category_scores(preds, categories)[0].sum(axis=1)
    elif order == "gain":
        value = expected_gain(preds, categories)
    else:
        raise ValueError(f"order: expected one of {', '.join(ORDERS)}, found {order!r}")
    idx = sorted(range(len(preds)), key=lambda i: (-value[i], natural_key(preds[i].interview), preds[i].turn))
    return [preds[i].id for i in idx]
