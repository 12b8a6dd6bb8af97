"""Fitting an :class:`~extractor.classify.model.IssueClassifier`: the :class:`Trainer`.

``Trainer(config).fit(model, turns)`` (what ``IssueClassifier.fit`` calls):

1. the encoder: a copy of the model's encoder gets the LoRA fine-tune (``steps``, or
   ``warm_steps`` when continuing a fitted model), so an encoder the caller passed is never
   changed; with ``fine_tune=False`` the encoder is used as it is (frozen, or the loaded
   model's tuned one: ``extractor train --from``);
2. features of every labelled interviewee turn (through the encoder's embedding cache);
3. the grid search: the heads' L2 and the scorer's C are each picked on out-of-fold scores of
   interview-grouped inner folds (scikit-learn's ``cross_val_predict`` over
   :class:`~extractor.classify.folds.InterviewKFold`, one candidate of ``ParameterGrid`` at a
   time: the score is F1 of the pooled out-of-fold scores at tuned thresholds, which
   ``GridSearchCV``'s per-fold scores cannot express), then the thresholds on the same folds;
4. every part fitted on all rows, and the card.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from extractor.catalog import Catalog, load_catalog
from extractor.classify.config import TrainConfig
from extractor.classify.encoder import TurnEncoder, embedder_id
from extractor.classify.features import CatalogVectors, build_features
from extractor.classify.folds import InterviewKFold
from extractor.classify.heads import Heads, build_targets
from extractor.classify.scorer import (
    LabelMemory,
    PairScorer,
    PhaseStacker,
    label_centroids,
    leave_group_out_label_features,
    pair_features,
    phase_map,
)
from extractor.classify.store import FORMAT
from extractor.classify.thresholds import best_threshold, calibrate_any, micro_f1, tune_thresholds
from extractor.errors import ModelError
from extractor.types import Turn

log = logging.getLogger(__name__)


def data_hash(turns: Sequence[Turn]) -> str:
    """SHA-256 of the training turns and their labels (the card records it)."""
    h = hashlib.sha256()
    for t in turns:
        lab = t.labels.to_dict() if t.labels is not None else None
        h.update(json.dumps([t.interview, t.turn, t.speaker, t.text, t.question, lab, t.label_source],
                            ensure_ascii=False, sort_keys=True).encode())
    return h.hexdigest()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:  # a frozen hashing model never needs torch's start-up cost
        sys.modules["torch"].manual_seed(seed)


def check_labels(turns: Iterable[Turn], catalog: Catalog) -> None:
    """Every training label must be a catalog id: a silently dropped label is lost data."""
    known = {"categories": ("category", set(catalog.category_ids)), "phases": ("phase", set(catalog.phase_ids))}
    for t in turns:
        for space, (what, ok) in known.items():
            for x in getattr(t.labels, space):
                if x not in ok:
                    raise ModelError(f"turn {t.id or t.turn} of {t.interview}: expected a {what} id of catalog "
                                     f"{catalog.tag}, found {x!r}")


#: a refit (``train --from`` without fine-tuning) on fewer labelled interviews than this keeps
#: the parent's tuned parts and only adds the new turns to its label memory
MIN_REFIT_INTERVIEWS = 3


@dataclass
class Design:
    """The training rows: head input, pair (+ label) features, targets, weights, interviews."""

    examples: list[Turn]
    Xh: np.ndarray
    F: np.ndarray
    E: np.ndarray
    Yc: np.ndarray
    Yh: np.ndarray
    w: np.ndarray
    groups: list[str]


class Trainer:
    """Fits every part of an :class:`~extractor.classify.model.IssueClassifier` (see the module)."""

    def __init__(self, config: TrainConfig | None = None):
        self.config = config or TrainConfig()

    def fit(self, model: Any, turns: Sequence[Turn], progress: bool = False) -> Any:
        """Train ``model`` on the labelled interviewee turns of ``turns``; returns ``model``."""
        t0, cfg = time.time(), self.config
        seed_everything(cfg.seed)
        warm = model.thresholds_ is not None
        catalog = model.catalog_ if warm else (model.catalog or load_catalog())
        turns = list(turns)
        dhash = data_hash(turns)
        labelled = {t.interview for t in turns if t.is_interviewee and t.labels is not None}
        turns = [t for t in turns if t.interview in labelled]  # other interviews give no example
        examples = [t for t in turns if t.is_interviewee and t.labels is not None]
        if not examples:
            raise ModelError("no labelled interviewee turns to train on (turns need `labels`)")
        check_labels(examples, catalog)
        model.catalog_ = catalog
        steps = self.adapt_encoder(model, examples, catalog, warm, progress)
        model.set_catalog_vectors(CatalogVectors.embed(model.embedder, catalog))
        d = self.design(model, turns, catalog, progress)
        if warm and not steps and len(set(d.groups)) < MIN_REFIT_INTERVIEWS:
            return self.add_to_memory(model, d, catalog, dhash, t0)
        grids = self.grids(model.card_ if warm and not steps else {})
        # the heads and the scorer multiply thin matrices (9 x 1,224): a second BLAS thread
        # costs more than it gives (2.0 vs 0.7 CPU seconds per heads fit on a busy 2-core machine)
        with threadpool_limits(limits=1, user_api="blas"):
            metrics = self.fit_parts(model, d, grids, progress)
        if metrics and grids != (cfg.l2_grid, cfg.pair_c_grid):
            metrics["search"] = "l2 and C kept from the model this one refits"
        model.centroids_ = label_centroids(d.E, d.Yc)
        npz = len(catalog.phase_ids)
        # stored as float16: round now so that a loaded model predicts exactly as this one
        model.memory_ = LabelMemory(E=d.E.astype(np.float16).astype(np.float32),
                                    Y=np.concatenate([d.Yc, d.Yh[:, :npz], d.Yh[:, npz + 1:]], axis=1),
                                    floor=model.config.memory_floor)
        model.card_ = self.card(model, d, catalog, dhash, warm, steps, metrics, time.time() - t0)
        log.info("trained on %d turns of %d interviews in %.0fs", len(d.examples), len(set(d.groups)),
                 time.time() - t0)
        return model

    def add_to_memory(self, model: Any, d: Design, catalog: Catalog, dhash: str, t0: float) -> Any:
        """A refit on too few interviews to tune anything: the parent's heads, scorer and
        thresholds stay, and the new labelled turns join its label memory and centroids (they
        replace the parent's labels of the same texts), so they are predicted as labelled and
        teach their look-alikes."""
        log.warning("%d labelled interview(s): too few to refit the scorer and thresholds (%d needed); "
                    "kept the model's and added the %d labelled turns to its label memory",
                    len(set(d.groups)), MIN_REFIT_INTERVIEWS, len(d.examples))
        npz = len(catalog.phase_ids)
        E = d.E.astype(np.float16).astype(np.float32)  # as stored: a loaded model predicts the same
        Y = np.concatenate([d.Yc, d.Yh[:, :npz], d.Yh[:, npz + 1:]], axis=1).astype(np.float32)
        old = model.memory_
        keep = (old.E @ E.T).max(axis=1) < 0.999  # the same text: the new answer replaces the old label
        model.memory_ = LabelMemory(E=np.concatenate([old.E[keep], E]), Y=np.concatenate([old.Y[keep], Y]),
                                    floor=model.config.memory_floor)
        model.centroids_ = label_centroids(model.memory_.E, model.memory_.Y[:, : len(catalog.category_ids)])
        metrics = {"refit": "memory only: the parent's heads, scorer and thresholds were kept"}
        model.card_ = self.card(model, d, catalog, dhash, True, 0, metrics, time.time() - t0)
        return model

    def adapt_encoder(self, model: Any, examples: Sequence[Turn], catalog: Catalog, warm: bool,
                      progress: bool) -> int:
        """Fine-tune a copy of the model's encoder (never the caller's object); returns the
        adapter steps taken (0 when the encoder stays as it is)."""
        cfg = self.config
        enc = model.get_embedder()
        steps = cfg.warm_steps if warm else cfg.steps
        if not (cfg.fine_tune and isinstance(enc, TurnEncoder) and steps > 0):
            if cfg.fine_tune and not isinstance(enc, TurnEncoder):
                log.warning("%s cannot be fine-tuned: training the heads on a frozen encoder", enc.name)
            return 0
        from extractor.classify.adapter import fine_tune

        own = enc.clone()
        fine_tune(own, examples, catalog, model.config, cfg, steps=steps, progress=progress)
        model.embedder = own
        return steps

    def design(self, model: Any, turns: Sequence[Turn], catalog: Catalog, progress: bool) -> Design:
        cfg = self.config
        feats = build_features(model.embedder, turns, model.config, batch_size=cfg.encode_batch_size,
                               progress=progress)
        pos = {i: k for k, i in enumerate(feats.index)}
        idx = [i for i, t in enumerate(turns) if t.is_interviewee and t.labels is not None]
        rows = np.array([pos[i] for i in idx])
        ex = [turns[i] for i in idx]
        Yc, Yh, w = build_targets(ex, catalog, cfg)
        groups = [t.interview for t in ex]
        Xh = feats.head_input(model.cat_desc_, model.phase_desc_)[rows]
        E = feats.E[rows]
        P = pair_features(feats.E, feats.sent_emb, feats.Q, feats.C, model.cat_desc_, model.protos_, feats.n_words,
                          feats.prev, feats.nxt)
        F = np.concatenate([P[rows], leave_group_out_label_features(E, Yc, groups)], axis=2)
        return Design(ex, Xh, F, E, Yc, Yh, w, groups)

    def search(self, make: Callable[[float], Any], grid: Sequence[float], X: np.ndarray, Y: np.ndarray,
               d: Design, score: Callable[[np.ndarray], float], bar: Any) -> tuple[float, np.ndarray]:
        """The grid value whose out-of-fold scores ``score`` best (the first on ties), and those scores."""
        from sklearn.model_selection import ParameterGrid, cross_val_predict

        best: tuple[float, float, np.ndarray] | None = None
        cv = InterviewKFold(self.config.threshold_folds, self.config.seed)
        for params in ParameterGrid({"value": list(grid)}):
            P = cross_val_predict(make(params["value"]), X, Y, groups=d.groups, cv=cv, method="predict_proba",
                                  params={"sample_weight": d.w}).astype(np.float32)
            s = score(P)
            if best is None or s > best[0] + 1e-9:
                best = (s, params["value"], P)
            bar.update(1)
        assert best is not None
        return best[1], best[2]

    def grids(self, parent_card: dict[str, Any]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The heads' L2 and the scorer's C candidates. A refit of a fitted model on its own
        encoder (``train --from`` without ``--fine-tune``) keeps the values that model picked:
        they are settings of the model, and the search is most of a refit's time."""
        m = parent_card.get("metrics") or {}
        picked = [float(v) for v in (m.get("l2"), m.get("pair_c"))
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1e6]
        if len(picked) == 2:
            return (picked[0],), (picked[1],)
        return self.config.l2_grid, self.config.pair_c_grid

    def fit_parts(self, model: Any, d: Design, grids: tuple[Sequence[float], Sequence[float]],
                  progress: bool) -> dict[str, Any]:
        """Pick the heads' L2 and the scorer's C among ``grids``, and every threshold, on
        out-of-fold scores of interview-grouped inner folds; then fit every part on all rows."""
        from tqdm.auto import tqdm

        cfg = self.config
        l2_grid, c_grid = grids
        nc, npz = len(model.catalog_.category_ids), len(model.catalog_.phase_ids)
        A = phase_map(model.catalog_)
        Yp, Ym = d.Yh[:, :npz], d.Yh[:, npz + 1:]
        if len(set(d.groups)) < 2:
            log.warning("one training interview only: no inner folds, thresholds default to 0.5")
            model.heads_ = Heads.fit(d.Xh, d.Yh, d.w, l2=l2_grid[0], cfg=cfg)
            model.scorer_ = PairScorer.fit(d.F, d.Yc, d.w, C=c_grid[0], seed=cfg.seed)
            model.stacker_ = PhaseStacker.fit(A, model.scorer_.predict_proba(d.F),
                                              model.heads_.predict_proba(d.Xh)[:, :npz], Yp, d.w, seed=cfg.seed)
            model.thresholds_ = np.full(nc + npz + 1, 0.5, np.float32)
            return {}
        bar = tqdm(total=len(l2_grid) + len(c_grid), desc="inner folds", disable=not progress,
                   leave=False)

        def heads_score(P: np.ndarray) -> float:  # the heads are judged on what is used of them
            return (micro_f1(Yp, P[:, :npz] >= tune_thresholds(Yp, P[:, :npz], cfg.min_threshold_support))
                    + micro_f1(Ym, P[:, npz + 1:] >= best_threshold(Ym, P[:, npz + 1:])))

        from extractor.classify.estimators import HeadsEstimator, ScorerEstimator

        l2, oof_h = self.search(lambda v: HeadsEstimator(v, cfg), l2_grid, d.Xh, d.Yh, d, heads_score, bar)
        C, oof_c = self.search(lambda v: ScorerEstimator(v, cfg), c_grid, d.F, d.Yc, d,
                               lambda P: micro_f1(d.Yc, P >= tune_thresholds(d.Yc, P, cfg.min_threshold_support)),
                               bar)
        bar.close()
        oof_p = np.zeros_like(Yp)
        for train, test in InterviewKFold(cfg.threshold_folds, cfg.seed).split(groups=d.groups):
            st = PhaseStacker.fit(A, oof_c[train], oof_h[train, :npz], Yp[train], d.w[train], seed=cfg.seed)
            oof_p[test] = st.predict_proba(oof_c[test], oof_h[test, :npz])
        r = cfg.max_share_ratio
        th_c = calibrate_any(d.Yc, oof_c, tune_thresholds(d.Yc, oof_c, cfg.min_threshold_support, r), r)
        th_p = tune_thresholds(Yp, oof_p, cfg.min_threshold_support, r)
        th_m = np.array([best_threshold(Ym, oof_h[:, npz + 1:], r)], np.float32)
        model.thresholds_ = np.concatenate([th_c, th_p, th_m]).astype(np.float32)
        model.heads_ = Heads.fit(d.Xh, d.Yh, d.w, l2=l2, cfg=cfg)
        model.scorer_ = PairScorer.fit(d.F, d.Yc, d.w, C=C, seed=cfg.seed)
        model.stacker_ = PhaseStacker.fit(A, oof_c, oof_h[:, :npz], Yp, d.w, seed=cfg.seed)
        pc, pp, pm = oof_c >= th_c, oof_p >= th_p, oof_h[:, npz + 1:] >= th_m
        return {"inner_cv": {"categories_f1": round(micro_f1(d.Yc, pc), 4), "phases_f1": round(micro_f1(Yp, pp), 4),
                             "mitigation_f1": round(micro_f1(Ym, pm), 4),
                             "share_any_category": [round(float(pc.any(1).mean()), 4),
                                                    round(float(d.Yc.any(1).mean()), 4)],
                             "note": "out-of-fold on the training data; the same folds picked l2, C and thresholds"},
                "l2": l2, "pair_c": C}

    def card(self, model: Any, d: Design, catalog: Catalog, dhash: str, warm: bool, steps: int,
             metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
        """What the model card says about this fit. A warm start keeps none of the previous
        card's held-out figures: they were measured on another model."""
        enc, old = model.embedder, model.card_
        return {
            "format": FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "base_model": enc.name,
            "base_model_sha256": embedder_id(enc),
            "fine_tuned": bool(steps or old.get("fine_tuned")),
            "warm_start_from": old.get("data_sha256") if warm else None,
            "catalog": catalog.tag,
            "catalog_fingerprint": catalog.fingerprint(),
            "data_sha256": dhash,
            "train_config": self.config.to_dict(),
            "training": {"interviews": len(set(d.groups)), "examples": len(d.examples),
                         "issue_turns": int(d.Yc.any(1).sum()),
                         "label_sources": sorted({str(t.label_source) for t in d.examples}),
                         "adapter_steps": steps, "seconds": round(seconds, 1)},
            "metrics": metrics,
        }
