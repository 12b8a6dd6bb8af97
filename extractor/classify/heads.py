"""Linear heads over turn features: one per phase, one for relevance (does the turn report an
issue at all?) and one for ``mitigation``. Categories are scored by the shared catalog scorer
(:mod:`extractor.classify.scorer`), never by per-category heads: over a 384-dim embedding and
4-70 positives each, those learn the training interviews' topics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from extractor.catalog import Catalog
from extractor.classify.config import TrainConfig
from extractor.errors import ModelError
from extractor.types import Turn


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def is_uncoded(t: Turn) -> bool:
    """No study code from any source: the coders may not have read it, a weak negative.
    A reviewed turn was read: its "no label" is a real negative."""
    return t.label_source != "review" and not any(v for v in (t.codes or {}).values())


def build_targets(turns: Sequence[Turn], catalog: Catalog, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Yc`` (n, categories), ``Yh`` (n, phases + relevance + mitigation), per-turn weights."""
    ci = {c: k for k, c in enumerate(catalog.category_ids)}
    pi = {p: k for k, p in enumerate(catalog.phase_ids)}
    npz = len(pi)
    Yc = np.zeros((len(turns), len(ci)), dtype=np.float32)
    Yh = np.zeros((len(turns), npz + 2), dtype=np.float32)
    w = np.ones(len(turns), dtype=np.float32)
    for r, t in enumerate(turns):
        labels = t.labels
        assert labels is not None, "build_targets takes labelled turns only"
        for c in labels.categories:
            Yc[r, ci[c]] = 1
        for p in labels.phases:
            Yh[r, pi[p]] = 1
        Yh[r, npz] = float(Yc[r].any())
        Yh[r, npz + 1] = float(labels.mitigation)
        if t.label_source == "coders":
            w[r] *= cfg.coders_weight
        if is_uncoded(t) and not (Yc[r].any() or Yh[r].any()):
            w[r] *= cfg.weak_negative_weight
    return Yc, Yh, w


@dataclass
class Heads:
    """Jointly trained linear heads over standardised features. Saved as ``heads.safetensors``."""

    FILES = ("heads.safetensors",)

    W: np.ndarray  # (L, d)
    b: np.ndarray  # (L,)
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, w: np.ndarray, *, l2: float, cfg: TrainConfig) -> Heads:
        """Weighted, class-balanced BCE with L2 by full-batch Adam in numpy: deterministic, and
        cheap enough to run once per inner fold and per L2 candidate."""
        n, d = X.shape
        mean = X.mean(axis=0) if n else np.zeros(d, np.float32)
        scale = X.std(axis=0) if n else np.ones(d, np.float32)
        scale = np.where(scale < 1e-6, 1.0, scale).astype(np.float32)
        Xs = ((X - mean) / scale).astype(np.float32)
        pos, neg = Y.sum(axis=0), (1 - Y).sum(axis=0)
        pw = np.clip(np.sqrt(neg / np.maximum(pos, 1)), 1.0, cfg.max_pos_weight).astype(np.float32)
        prior = np.clip((pos + 1) / (n + 2), 1e-3, 1 - 1e-3)
        W = np.zeros((Y.shape[1], d), np.float32)
        b = np.log(prior / (1 - prior)).astype(np.float32)
        coef = (w / max(w.sum(), 1.0))[:, None].astype(np.float32)
        b1, b2, eps = 0.9, 0.999, 1e-8
        mW, vW, mb, vb = np.zeros_like(W), np.zeros_like(W), np.zeros_like(b), np.zeros_like(b)
        for step in range(1, cfg.head_epochs + 1):
            P = sigmoid(Xs @ W.T + b)
            G = coef * (pw * Y * (P - 1) + (1 - Y) * P)
            gW, gb = G.T @ Xs + 2 * l2 * W, G.sum(axis=0)
            mW, vW = b1 * mW + (1 - b1) * gW, b2 * vW + (1 - b2) * gW * gW
            mb, vb = b1 * mb + (1 - b1) * gb, b2 * vb + (1 - b2) * gb * gb
            c1, c2 = 1 - b1 ** step, 1 - b2 ** step
            W -= cfg.head_lr * (mW / c1) / (np.sqrt(vW / c2) + eps)
            b -= cfg.head_lr * (mb / c1) / (np.sqrt(vb / c2) + eps)
        return cls(W=W.astype(np.float32), b=b.astype(np.float32), mean=mean.astype(np.float32), scale=scale)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(((X - self.mean) / self.scale) @ self.W.T + self.b).astype(np.float32)

    def tensors(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "b": self.b, "mean": self.mean, "scale": self.scale}

    def save(self, writer) -> None:
        writer.tensors("heads.safetensors", {k: v.astype(np.float32) for k, v in self.tensors().items()})

    @classmethod
    def load(cls, reader) -> Heads:
        """Rows: phases + relevance + mitigation; columns: the head input of
        :meth:`~extractor.classify.features.Features.head_input`."""
        s = reader.sizes
        dim = reader.tensor("catalog.safetensors", "cat_desc", ("categories", "dim")).shape[1]
        width = 3 * dim + 2 * (s.categories + s.phases) + 2
        name = "heads.safetensors"
        scale = reader.tensor(name, "scale", (width,))
        if (scale <= 0).any():
            raise ModelError(f"{reader.path / name}: tensor 'scale': expected positive values, found others")
        return cls(W=reader.tensor(name, "W", (s.phases + 2, width)), b=reader.tensor(name, "b", (s.phases + 2,)),
                   mean=reader.tensor(name, "mean", (width,)), scale=scale)
