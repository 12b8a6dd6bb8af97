"""Interview-grouped folds: the project's one splitter.

Whole interviews go to one fold each, folds are balanced by rows, and the assignment depends
only on the seed and the interviews (ties between equal-sized interviews are broken by a seeded
shuffle). :class:`InterviewKFold` is the same split behind scikit-learn's splitter interface,
so ``cross_val_predict`` and the search tools can use it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


def group_folds(groups: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """Row indices of ``k`` folds; each group (interview) lies in exactly one fold, folds are
    balanced by rows, and the assignment depends only on ``seed`` and the groups."""
    uniq = sorted(set(groups))
    random.Random(seed).shuffle(uniq)
    sizes = {g: 0 for g in uniq}
    for g in groups:
        sizes[g] += 1
    k = max(1, min(k, len(uniq)))
    load = [0] * k
    assign = {}
    for g in sorted(uniq, key=lambda g: -sizes[g]):  # stable: ties keep the shuffled order
        f = min(range(k), key=lambda i: load[i])
        assign[g] = f
        load[f] += sizes[g]
    garr = np.array([assign[g] for g in groups])
    return [np.flatnonzero(garr == f) for f in range(k)]


class InterviewKFold:
    """scikit-learn splitter over :func:`group_folds` (``split(X, y, groups)``)."""

    def __init__(self, n_splits: int = 5, seed: int = 0):
        self.n_splits, self.seed = n_splits, seed

    def folds(self, groups: Sequence[Any]) -> list[np.ndarray]:
        return group_folds(list(groups), self.n_splits, self.seed)

    def split(self, X: Any = None, y: Any = None, groups: Sequence[Any] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if groups is None:
            raise ValueError("InterviewKFold.split: expected groups (one interview per row), found None")
        n = len(groups)
        for test in self.folds(groups):
            yield np.setdiff1d(np.arange(n), test), test

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Sequence[Any] | None = None) -> int:
        return self.n_splits if groups is None else len(self.folds(groups))
