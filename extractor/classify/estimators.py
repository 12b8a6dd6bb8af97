"""The heads and the category scorer behind scikit-learn's estimator interface, so the
:class:`~extractor.classify.trainer.Trainer` can run ``cross_val_predict`` over them (imported
only when training: predicting never loads scikit-learn's model-selection machinery)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from extractor.classify.config import TrainConfig
from extractor.classify.heads import Heads
from extractor.classify.scorer import PairScorer


class HeadsEstimator(BaseEstimator):
    """:class:`Heads` behind scikit-learn's estimator interface (for ``cross_val_predict``)."""

    model_: Any

    def __init__(self, l2: float = 0.5, cfg: TrainConfig | None = None):
        self.l2, self.cfg = l2, cfg

    def fit(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray) -> HeadsEstimator:
        self.model_ = Heads.fit(X, Y.astype(np.float32), sample_weight, l2=self.l2, cfg=self.cfg or TrainConfig())
        self.classes_ = np.arange(Y.shape[1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X) >= 0.5


class ScorerEstimator(HeadsEstimator):
    """:class:`PairScorer` behind scikit-learn's estimator interface (``l2`` is its C)."""

    def fit(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray) -> ScorerEstimator:
        seed = self.cfg.seed if self.cfg else 0
        self.model_ = PairScorer.fit(X, Y.astype(np.float32), sample_weight, C=self.l2, seed=seed)
        self.classes_ = np.arange(Y.shape[1])
        return self
