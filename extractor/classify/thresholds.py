"""Per-label decision thresholds, and the part that saves them (``thresholds.json``).

Every threshold is picked on out-of-fold scores of folds that keep whole interviews together
(:mod:`extractor.classify.folds`), so no turn is scored by a model that saw its interview. F1-optimal thresholds on a few dozen positives over-predict rare labels, so each is
also held to a calibration band: on the out-of-fold scores it may flag at most
``max_ratio`` times, and at least ``1 / max_ratio`` times, as many turns as the gold has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from extractor.classify.folds import group_folds
from extractor.errors import ModelError
from extractor.types import MITIGATION

__all__ = ["GRID", "Thresholds", "best_threshold", "calibrate_any", "group_folds", "micro_f1", "tune_thresholds"]

GRID = np.round(np.arange(0.02, 0.96, 0.01), 2)


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


@dataclass
class Thresholds:
    """One decision threshold per label: categories, phases, then ``mitigation``."""

    FILES = ("thresholds.json",)

    values: np.ndarray  # (categories + phases + 1,)
    categories: Sequence[str]
    phases: Sequence[str]

    def save(self, writer) -> None:
        th, nc = self.values, len(self.categories)
        writer.json("thresholds.json", {
            "categories": {c: round(float(th[j]), 4) for j, c in enumerate(self.categories)},
            "phases": {p: round(float(th[nc + j]), 4) for j, p in enumerate(self.phases)},
            MITIGATION: round(float(th[-1]), 4)})

    @classmethod
    def load(cls, reader, categories: Sequence[str], phases: Sequence[str]) -> Thresholds:
        """Every label's threshold, each a finite number in [0, 1]."""
        from extractor.classify.store import check_number

        where = reader.path / "thresholds.json"
        doc: Any = reader.json("thresholds.json")
        values = []
        for space, ids in (("categories", categories), ("phases", phases)):
            got = doc.get(space) if isinstance(doc, dict) else None
            for x in ids:
                if not isinstance(got, dict) or x not in got:
                    raise ModelError(f"{where}: expected a threshold for every label, found none for {x!r}")
                values.append(check_number(f"{where}: {space}.{x}", got[x]))
        if not isinstance(doc, dict) or MITIGATION not in doc:
            raise ModelError(f"{where}: expected a threshold for every label, found none for {MITIGATION!r}")
        values.append(check_number(f"{where}: {MITIGATION}", doc[MITIGATION]))
        return cls(np.array(values, np.float32), list(categories), list(phases))
