"""Interview-grouped folds and per-label decision thresholds.

Every threshold is picked on out-of-fold scores of folds that keep whole interviews together
(:func:`group_folds`, the project's one splitter), so no turn is scored by a model that saw its
interview. F1-optimal thresholds on a few dozen positives over-predict rare labels, so each is
also held to a calibration band: on the out-of-fold scores it may flag at most
``max_ratio`` times, and at least ``1 / max_ratio`` times, as many turns as the gold has.
"""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np

GRID = np.round(np.arange(0.02, 0.96, 0.01), 2)


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


def micro_f1(Y: np.ndarray, P: np.ndarray) -> float:
    Y, P = Y.astype(bool), P.astype(bool)
    d = Y.sum() + P.sum()
    return float(2 * (Y & P).sum() / d) if d else 0.0


def best_threshold(y: np.ndarray, p: np.ndarray, max_ratio: float = np.inf) -> float:
    """Threshold maximising F1 of one label (or of a flattened label space) among those that
    flag between ``1/max_ratio`` and ``max_ratio`` times the gold count; when none does, the
    one whose count is closest to the gold's."""
    y = y.ravel() > 0
    p = p.ravel()
    npos = int(y.sum())
    counts = np.array([(p >= t).sum() for t in GRID])
    tps = np.array([((p >= t) & y).sum() for t in GRID])
    f1 = np.where(counts + npos > 0, 2 * tps / np.maximum(counts + npos, 1), 0.0)
    if npos and np.isfinite(max_ratio):
        ok = (counts <= max_ratio * npos) & (counts >= npos / max_ratio)
        if not ok.any():
            return float(GRID[int(np.argmin(np.abs(np.log((counts + 0.5) / npos))))])
        f1 = np.where(ok, f1, -1.0)
    return float(GRID[int(np.argmax(f1))])  # first maximum: the lowest such threshold


def tune_thresholds(Y: np.ndarray, P: np.ndarray, min_support: int, max_ratio: float = np.inf) -> np.ndarray:
    """Per-label thresholds. Labels with fewer than ``min_support`` positives use the space's
    shared threshold; the others are shrunk towards it (an optimum on a few dozen positives
    is noisy)."""
    shared = best_threshold(Y, P, max_ratio)
    out = np.full(Y.shape[1], shared, dtype=np.float32)
    for j in range(Y.shape[1]):
        n = float(Y[:, j].sum())
        if n >= min_support:
            t = best_threshold(Y[:, j], P[:, j], max_ratio)
            out[j] = (n * t + min_support * shared) / (n + min_support)
    return out


def calibrate_any(Y: np.ndarray, P: np.ndarray, th: np.ndarray, max_ratio: float) -> np.ndarray:
    """Shift all of a space's thresholds together until the share of rows with at least one
    label is inside the calibration band (it is what a reader sees first: how many turns
    are coded at all)."""
    gold = float(Y.any(axis=1).sum())
    if not gold or not np.isfinite(max_ratio):
        return th
    for _ in range(60):
        n = float((P >= th).any(axis=1).sum())
        if n > max_ratio * gold:
            th = np.minimum(th * 1.03, 0.99)
        elif n < gold / max_ratio:
            th = th / 1.03
        else:
            break
    return th.astype(np.float32)
