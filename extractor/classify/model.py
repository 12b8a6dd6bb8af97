"""The issue classifier: ``fit / predict_proba / predict / save / load``.

Parts (each its own module, each its own file in a saved model):

* encoder (``adapter.safetensors``): the packaged MiniLM with a LoRA adapter fine-tuned for a
  fixed number of steps against catalog text (:mod:`.adapter`), or frozen (``--fast``);
* heads (``heads.safetensors``): phases, relevance, ``mitigation`` (:mod:`.heads`);
* scorer (``scorer.safetensors``): one label-aware scorer shared by all categories, and phases
  stacked on the category scores (:mod:`.scorer`);
* memory (``memory.safetensors``): embeddings and labels of the labelled turns (:mod:`.scorer`);
* thresholds (``thresholds.json``): per label, tuned on interview-grouped inner folds and held
  to a calibration band (:mod:`.thresholds`);
* ``catalog.safetensors`` (catalog text embeddings), ``catalog.yaml`` (the catalog snapshot),
  ``config.json`` (:class:`ModelConfig`), ``card.json`` (training settings, data hash, figures),
  ``manifest.json`` (SHA-256 of every file, checked before anything is read). No pickle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from extractor.catalog import Catalog, load_catalog
from extractor.classify.config import ModelConfig, TrainConfig
from extractor.classify.encoder import TurnEncoder, embedder_id
from extractor.classify.evidence import evidence
from extractor.classify.features import Features, build_features, describe
from extractor.classify.heads import Heads, build_targets
from extractor.classify.scorer import (LabelMemory, PairScorer, PhaseStacker, label_centroids, label_features,
                                       leave_group_out_label_features, pair_features, phase_map, prototype_texts)
from extractor.classify.thresholds import best_threshold, calibrate_any, group_folds, micro_f1, tune_thresholds
from extractor.embed import Embedder, HashingEmbedder
from extractor.errors import ModelError
from extractor.types import MITIGATION, Prediction, Turn

log = logging.getLogger(__name__)

FORMAT = "qi-classifier@2"
MANIFEST = "manifest.json"
REQUIRED = ("config.json", "card.json", "catalog.yaml", "catalog.safetensors", "heads.safetensors",
            "scorer.safetensors", "memory.safetensors", "thresholds.json")


def data_hash(turns: Sequence[Turn]) -> str:
    """SHA-256 of the training turns and their labels (the card records it)."""
    h = hashlib.sha256()
    for t in turns:
        lab = t.labels.to_dict() if t.labels is not None else None
        h.update(json.dumps([t.interview, t.turn, t.speaker, t.text, t.question, lab, t.label_source],
                            ensure_ascii=False, sort_keys=True).encode())
    return h.hexdigest()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    import sys

    if "torch" in sys.modules:  # a frozen hashing model never needs torch's start-up cost
        sys.modules["torch"].manual_seed(seed)


class IssueClassifier:
    """Multi-label classifier of interviewee turns into catalog categories, phases and a
    ``mitigation`` flag.

    ``fit(turns)`` takes *all* turns of the training interviews (both speakers, in interview
    order: neighbours and questions are features); the examples are the interviewee turns
    with ``labels``. ``embedder`` is any :class:`~extractor.embed.Embedder`; by default the
    encoder named by ``config.base_model``. Only a :class:`TurnEncoder` can be fine-tuned.
    """

    def __init__(self, catalog: Catalog | None = None, config: ModelConfig | None = None,
                 train_config: TrainConfig | None = None, embedder: Embedder | None = None):
        self.catalog = catalog
        self.config = config or ModelConfig()
        self.train_config = train_config or TrainConfig()
        self.embedder = embedder
        # learned state (set by fit or load)
        self.catalog_: Catalog | None = None
        self.cat_desc_: np.ndarray | None = None
        self.phase_desc_: np.ndarray | None = None
        self.protos_: list[np.ndarray] | None = None
        self.heads_: Heads | None = None
        self.scorer_: PairScorer | None = None
        self.stacker_: PhaseStacker | None = None
        self.centroids_: np.ndarray | None = None
        self.memory_: LabelMemory | None = None
        self.thresholds_: np.ndarray | None = None  # categories, phases, mitigation
        self.card_: dict[str, Any] = {}

    # -- parts --
    def get_embedder(self) -> Embedder:
        if self.embedder is None:
            if self.config.base_model == "hashing":
                self.embedder = HashingEmbedder(dim=64)
            else:
                from extractor.embed import pick_device

                self.embedder = TurnEncoder(self.config.base_model, pick_device(self.train_config.device),
                                            self.config.max_length)
        return self.embedder

    def _embed_catalog(self, catalog: Catalog) -> None:
        enc = self.get_embedder()
        self.cat_desc_ = enc.encode([describe(e) for e in catalog.categories])
        self.phase_desc_ = enc.encode([describe(e) for e in catalog.phases])
        self.protos_ = [enc.encode(prototype_texts(e) or [describe(e)]) for e in catalog.categories]

    def _features(self, turns: Sequence[Turn], progress: bool = False) -> Features:
        return build_features(self.get_embedder(), turns, self.config,
                              batch_size=self.train_config.encode_batch_size, progress=progress)

    def _pairs(self, f: Features) -> np.ndarray:
        return pair_features(f.E, f.sent_emb, f.Q, f.C, self.cat_desc_, self.protos_, f.n_words, f.prev, f.nxt)

    @property
    def _sizes(self) -> tuple[int, int]:
        return len(self.catalog_.category_ids), len(self.catalog_.phase_ids)

    def _check_fitted(self) -> None:
        if self.thresholds_ is None:
            raise ModelError("this IssueClassifier is not fitted yet: call fit() or IssueClassifier.load()")

    # -- training --
    def fit(self, turns: Sequence[Turn], progress: bool = False) -> "IssueClassifier":
        """Train on the labelled interviewee turns of ``turns``. On a fitted model (e.g. one
        from :meth:`load`) the adapter continues from its weights for ``warm_steps`` steps."""
        t0 = time.time()
        cfg = self.train_config
        _seed_everything(cfg.seed)
        warm = self.thresholds_ is not None
        catalog = self.catalog_ if warm else (self.catalog or load_catalog())
        turns = list(turns)
        dhash = data_hash(turns)
        labelled = {t.interview for t in turns if t.is_interviewee and t.labels is not None}
        turns = [t for t in turns if t.interview in labelled]  # other interviews give no example
        examples = [i for i, t in enumerate(turns) if t.is_interviewee and t.labels is not None]
        if not examples:
            raise ModelError("no labelled interviewee turns to train on (turns need `labels`)")
        _check_labels([turns[i] for i in examples], catalog)
        self.catalog_ = catalog
        enc = self.get_embedder()
        steps = cfg.warm_steps if warm else cfg.steps
        tuned = cfg.fine_tune and isinstance(enc, TurnEncoder) and steps > 0
        if tuned:
            from extractor.classify.adapter import fine_tune

            fine_tune(enc, [turns[i] for i in examples], catalog, self.config, cfg, steps=steps, progress=progress)
        elif cfg.fine_tune and not isinstance(enc, TurnEncoder):
            log.warning("%s cannot be fine-tuned: training the heads on a frozen encoder", enc.name)
        self._embed_catalog(catalog)
        feats = self._features(turns, progress=progress)
        pos = {i: k for k, i in enumerate(feats.index)}
        rows = np.array([pos[i] for i in examples])
        ex = [turns[i] for i in examples]
        Yc, Yh, w = build_targets(ex, catalog, cfg)
        groups = [t.interview for t in ex]
        Xh = feats.head_input(self.cat_desc_, self.phase_desc_)[rows]
        E = feats.E[rows]
        F = np.concatenate([self._pairs(feats)[rows], leave_group_out_label_features(E, Yc, groups)], axis=2)
        metrics = self._fit_parts(Xh, F, Yc, Yh, w, groups, progress)
        self.centroids_ = label_centroids(E, Yc)
        nc, npz = self._sizes
        # stored as float16: round now so that a loaded model predicts exactly as this one
        self.memory_ = LabelMemory(E=E.astype(np.float16).astype(np.float32),
                                   Y=np.concatenate([Yc, Yh[:, :npz], Yh[:, npz + 1:]], axis=1),
                                   floor=self.config.memory_floor)
        self.card_ = {
            "format": FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "base_model": enc.name,
            "base_model_sha256": embedder_id(enc),
            "fine_tuned": bool(tuned or self.card_.get("fine_tuned")),
            "warm_start_from": self.card_.get("data_sha256") if warm else None,
            "catalog": catalog.tag,
            "catalog_fingerprint": catalog.fingerprint(),
            "data_sha256": dhash,
            "train_config": cfg.to_dict(),
            "training": {"interviews": len(set(groups)), "examples": len(ex), "issue_turns": int(Yc.any(1).sum()),
                         "label_sources": sorted({str(t.label_source) for t in ex}),
                         "adapter_steps": steps if tuned else 0, "seconds": round(time.time() - t0, 1)},
            "metrics": metrics,
            **({"evaluation": self.card_["evaluation"]} if warm and "evaluation" in self.card_ else {}),
        }
        log.info("trained on %d turns of %d interviews in %.0fs", len(ex), len(set(groups)), time.time() - t0)
        return self

    def _fit_parts(self, Xh, F, Yc, Yh, w, groups, progress) -> dict[str, Any]:
        """Pick the heads' L2 and the scorer's C, and every threshold, on out-of-fold scores of
        interview-grouped inner folds; then fit every part on all rows."""
        from tqdm.auto import tqdm

        cfg = self.train_config
        nc, npz = self._sizes
        A = phase_map(self.catalog_)
        Yp, Ym = Yh[:, :npz], Yh[:, npz + 1:]
        if len(set(groups)) < 2:
            log.warning("one training interview only: no inner folds, thresholds default to 0.5")
            self.heads_ = Heads.fit(Xh, Yh, w, l2=cfg.l2_grid[0], cfg=cfg)
            self.scorer_ = PairScorer.fit(F, Yc, w, C=cfg.pair_c_grid[0], seed=cfg.seed)
            self.stacker_ = PhaseStacker.fit(A, self.scorer_.predict_proba(F), self.heads_.predict_proba(Xh)[:, :npz],
                                             Yp, w, seed=cfg.seed)
            self.thresholds_ = np.full(nc + npz + 1, 0.5, np.float32)
            return {}
        folds = group_folds(groups, cfg.threshold_folds, cfg.seed)
        bar = tqdm(total=(len(cfg.l2_grid) + len(cfg.pair_c_grid)) * len(folds), desc="inner folds",
                   disable=not progress, leave=False)

        def oof(fit_predict, width):
            out = np.zeros((len(Yc), width), np.float32)
            for test in folds:
                train = np.setdiff1d(np.arange(len(Yc)), test)
                out[test] = fit_predict(train, test)
                bar.update(1)
            return out

        best_h = None  # the heads are judged on what is used of them: phases and mitigation
        for l2 in cfg.l2_grid:
            P = oof(lambda tr, te: Heads.fit(Xh[tr], Yh[tr], w[tr], l2=l2, cfg=cfg).predict_proba(Xh[te]), Yh.shape[1])
            s = (micro_f1(Yp, P[:, :npz] >= tune_thresholds(Yp, P[:, :npz], cfg.min_threshold_support))
                 + micro_f1(Ym, P[:, npz + 1:] >= best_threshold(Ym, P[:, npz + 1:])))
            if best_h is None or s > best_h[0] + 1e-9:
                best_h = (s, l2, P)
        best_c = None
        for C in cfg.pair_c_grid:
            P = oof(lambda tr, te: PairScorer.fit(F[tr], Yc[tr], w[tr], C=C, seed=cfg.seed).predict_proba(F[te]), nc)
            s = micro_f1(Yc, P >= tune_thresholds(Yc, P, cfg.min_threshold_support))
            if best_c is None or s > best_c[0] + 1e-9:
                best_c = (s, C, P)
        bar.close()
        _, l2, oof_h = best_h
        _, C, oof_c = best_c
        oof_p = np.zeros_like(Yp)
        for test in folds:
            train = np.setdiff1d(np.arange(len(Yc)), test)
            st = PhaseStacker.fit(A, oof_c[train], oof_h[train, :npz], Yp[train], w[train], seed=cfg.seed)
            oof_p[test] = st.predict_proba(oof_c[test], oof_h[test, :npz])
        r = cfg.max_share_ratio
        th_c = calibrate_any(Yc, oof_c, tune_thresholds(Yc, oof_c, cfg.min_threshold_support, r), r)
        th_p = tune_thresholds(Yp, oof_p, cfg.min_threshold_support, r)
        th_m = np.array([best_threshold(Ym, oof_h[:, npz + 1:], r)], np.float32)
        self.thresholds_ = np.concatenate([th_c, th_p, th_m]).astype(np.float32)
        self.heads_ = Heads.fit(Xh, Yh, w, l2=l2, cfg=cfg)
        self.scorer_ = PairScorer.fit(F, Yc, w, C=C, seed=cfg.seed)
        self.stacker_ = PhaseStacker.fit(A, oof_c, oof_h[:, :npz], Yp, w, seed=cfg.seed)
        pc, pp, pm = oof_c >= th_c, oof_p >= th_p, oof_h[:, npz + 1:] >= th_m
        return {"inner_cv": {"categories_f1": round(micro_f1(Yc, pc), 4), "phases_f1": round(micro_f1(Yp, pp), 4),
                             "mitigation_f1": round(micro_f1(Ym, pm), 4),
                             "share_any_category": [round(float(pc.any(1).mean()), 4), round(float(Yc.any(1).mean()), 4)],
                             "note": "out-of-fold on the training data; the same folds picked l2, C and thresholds"},
                "l2": l2, "pair_c": C}

    # -- prediction --
    def _probs(self, f: Features) -> np.ndarray:
        """(n, categories + phases + 1) probabilities of the interviewee turns of ``f``."""
        nc, npz = self._sizes
        Ph = self.heads_.predict_proba(f.head_input(self.cat_desc_, self.phase_desc_))
        mem = self.memory_
        issue = mem.Y[:, :nc].any(axis=1)
        F = np.concatenate([self._pairs(f), label_features(f.E, self.centroids_, mem.E[issue], mem.Y[issue, :nc])],
                           axis=2)
        pc = self.scorer_.predict_proba(F)
        pp = self.stacker_.predict_proba(pc, Ph[:, :npz])
        P, _ = mem.blend(f.E, np.concatenate([pc, pp, Ph[:, npz + 1:]], axis=1))
        return P

    def predict_proba(self, turns: Sequence[Turn]) -> dict[str, np.ndarray]:
        """Per interviewee turn of ``turns`` (in order): ``categories`` (n, n_cat), ``phases``
        (n, n_phase) and ``mitigation`` (n,) probabilities."""
        self._check_fitted()
        nc, npz = self._sizes
        P = self._probs(self._features(list(turns)))
        return {"categories": P[:, :nc], "phases": P[:, nc: nc + npz], "mitigation": P[:, -1]}

    def predict(self, turns: Sequence[Turn], progress: bool = False, evidence: bool = True,
                batch_size: int = 256) -> list[Prediction]:
        """One :class:`Prediction` per interviewee turn: labels above their thresholds, every
        label's score and, per predicted category, the passage supporting it (offsets too)."""
        from tqdm.auto import tqdm

        self._check_fitted()
        turns = list(turns)
        cats, phases = self.catalog_.category_ids, self.catalog_.phase_ids
        nc, npz = len(cats), len(phases)
        th, tag, w = self.thresholds_, self.model_name, self.config.context_window
        ie = [i for i, t in enumerate(turns) if t.is_interviewee]
        out: list[Prediction] = []
        bar = tqdm(total=len(ie), desc="predicting", unit="turn", disable=not progress)
        for s in range(0, len(ie), batch_size):
            chunk = ie[s: s + batch_size]
            lo, hi = max(0, chunk[0] - w), min(len(turns), chunk[-1] + w + 1)
            window = turns[lo:hi]
            f = self._features(window)
            P = self._probs(f)
            for k, i in enumerate(f.index):
                if not chunk[0] <= lo + i <= chunk[-1]:
                    continue
                t, p = window[i], P[k]
                got = tuple(c for j, c in enumerate(cats) if p[j] >= th[j])
                scores = {c: round(float(v), 4) for c, v in zip(cats + phases, p[: nc + npz])}
                scores[MITIGATION] = round(float(p[-1]), 4)
                spans = self._evidence(t.text, f, k, got) if evidence else {}
                out.append(Prediction(
                    interview=t.interview, turn=t.turn, id=t.id, categories=got,
                    phases=tuple(ph for j, ph in enumerate(phases) if p[nc + j] >= th[nc + j]),
                    mitigation=bool(p[-1] >= th[-1]), scores=scores,
                    evidence={c: t.text[a:z] for c, (a, z) in spans.items()}, spans=spans,
                    text=t.text, question=t.question, model=tag))
            bar.update(len(chunk))
            if isinstance(self.embedder, TurnEncoder):
                self.embedder.clear()  # bound memory on long inputs
        bar.close()
        return out

    def _evidence(self, text: str, f: Features, k: int, categories: Sequence[str]) -> dict[str, tuple[int, int]]:
        ids = self.catalog_.category_ids
        targets = {c: np.concatenate([self.cat_desc_[ids.index(c)][None], self.protos_[ids.index(c)]])
                   for c in categories}
        return evidence(text, f.spans[k], f.sent_emb[k], targets)

    @property
    def model_name(self) -> str:
        c = self.card_
        return f"qi-classifier:{c.get('base_model', '?')}:{c.get('catalog', '?')}:{c.get('data_sha256', '')[:8]}"

    # -- persistence --
    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically (temp dir + rename); refuses to replace a
        non-empty directory that is not a model."""
        from safetensors.numpy import save_file

        from extractor.catalog import save_catalog
        from extractor.embed import file_sha256
        from extractor.jsonl import write_json

        self._check_fitted()
        path = Path(path)
        if path.is_file() or (path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).is_file()):
            raise ModelError(f"{path}: expected a new, empty or model directory to write to, found other files")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        meta = {"format": FORMAT}

        def tensors(name: str, d: Mapping[str, np.ndarray]) -> None:
            save_file({k: np.ascontiguousarray(v) for k, v in d.items()}, str(tmp / name), metadata=meta)

        try:
            nc, npz = self._sizes
            cats, phases = self.catalog_.category_ids, self.catalog_.phase_ids
            f32 = np.float32
            tensors("catalog.safetensors", {
                "cat_desc": self.cat_desc_.astype(f32), "phase_desc": self.phase_desc_.astype(f32),
                "protos": np.concatenate(self.protos_).astype(f32),
                "proto_owner": np.repeat(np.arange(nc), [len(p) for p in self.protos_]).astype(np.int32)})
            tensors("heads.safetensors", {k: v.astype(f32) for k, v in self.heads_.tensors().items()})
            sc, st = self.scorer_, self.stacker_
            tensors("scorer.safetensors", {
                "pair_coef": sc.coef.astype(f32), "pair_intercept": np.array([sc.intercept], f32),
                "pair_mean": sc.mean.astype(f32), "pair_scale": sc.scale.astype(f32),
                "log_prior": sc.log_prior.astype(f32), "centroids": self.centroids_.astype(f32),
                "phase_map": st.A.astype(f32), "phase_coef": st.coef.astype(f32),
                "phase_intercept": st.intercept.astype(f32)})
            tensors("memory.safetensors", {"embeddings": self.memory_.E.astype(np.float16),
                                           "labels": self.memory_.Y.astype(np.uint8)})
            th = self.thresholds_
            write_json(tmp / "thresholds.json", {
                "categories": {c: round(float(th[j]), 4) for j, c in enumerate(cats)},
                "phases": {p: round(float(th[nc + j]), 4) for j, p in enumerate(phases)},
                MITIGATION: round(float(th[-1]), 4)})
            enc = self.get_embedder()
            adapter = enc.adapter_config if isinstance(enc, TurnEncoder) else None
            if adapter is not None:
                from safetensors.torch import save_file as save_torch

                save_torch(enc.adapter_state(), str(tmp / "adapter.safetensors"), metadata=meta)
            write_json(tmp / "config.json", {"format": FORMAT, "model": self.config.to_dict(), "adapter": adapter,
                                             "labels": {"categories": cats, "phases": phases}})
            write_json(tmp / "card.json", self.card_)
            save_catalog(self.catalog_, tmp / "catalog.yaml", snapshot=True)
            write_json(tmp / MANIFEST, {"format": FORMAT, "files": {
                p.name: {"sha256": file_sha256(p), "bytes": p.stat().st_size}
                for p in sorted(tmp.iterdir()) if p.is_file()}})
            os.chmod(tmp, 0o755)
            for p in tmp.iterdir():
                os.chmod(p, 0o644)
            from extractor.safeio import replace_dir

            replace_dir(tmp, path)  # one step: the old model or the new one, never neither
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("saved model to %s", path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, embedder: Embedder | None = None) -> "IssueClassifier":
        """Load a model directory written by :meth:`save`; every file is checked against the
        manifest first, so a tampered or truncated file raises :class:`ModelError`."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        files = verify_model_dir(path)["files"]

        def read_json(name: str) -> Any:
            try:
                return json.loads((path / name).read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise ModelError(f"{path / name}: expected a JSON model file, found {e}") from None

        def read_tensors(name: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
            try:
                t = load_file(str(path / name))
            except (SafetensorError, OSError, ValueError) as e:
                raise ModelError(f"{path / name}: expected a safetensors file, found {e}") from None
            missing = [k for k in keys if k not in t]
            if missing:
                raise ModelError(f"{path / name}: expected tensor {missing[0]!r}, found none")
            return t

        doc, card = read_json("config.json"), read_json("card.json")
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise ModelError(f"{path / 'config.json'}: expected format {FORMAT}, found {found!r}; "
                             "retrain the model with this version (`extractor train`)")
        config = ModelConfig.from_dict(doc.get("model", {}), where=str(path / "config.json"))
        train = TrainConfig.from_dict({**card.get("train_config", {}), **({"device": device} if device else {})},
                                      where=str(path / "card.json"))
        try:
            catalog = load_catalog(path / "catalog.yaml")
        except Exception as e:  # any catalog problem is a broken model for the user
            raise ModelError(f"{path / 'catalog.yaml'}: the model's catalog does not load ({e})") from None
        labels = doc.get("labels") or {}
        if labels.get("categories") != catalog.category_ids or labels.get("phases") != catalog.phase_ids:
            raise ModelError(f"{path}: expected the model's labels to match its catalog snapshot, found others")
        self = cls(catalog=catalog, config=config, train_config=train, embedder=embedder)
        self.catalog_ = catalog
        nc, npz = self._sizes
        c = read_tensors("catalog.safetensors", ("cat_desc", "phase_desc", "protos", "proto_owner"))
        h = read_tensors("heads.safetensors", ("W", "b", "mean", "scale"))
        s = read_tensors("scorer.safetensors", ("pair_coef", "pair_intercept", "pair_mean", "pair_scale", "log_prior",
                                                "centroids", "phase_map", "phase_coef", "phase_intercept"))
        m = read_tensors("memory.safetensors", ("embeddings", "labels"))
        th = read_json("thresholds.json")
        try:
            self.thresholds_ = np.array([th["categories"][x] for x in catalog.category_ids]
                                        + [th["phases"][x] for x in catalog.phase_ids] + [th[MITIGATION]], np.float32)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{path / 'thresholds.json'}: expected a threshold for every label, found none for {e}") \
                from None
        self.cat_desc_, self.phase_desc_ = c["cat_desc"], c["phase_desc"]
        owner = c["proto_owner"].astype(int)
        self.protos_ = [c["protos"][owner == j] for j in range(nc)]
        self.heads_ = Heads(W=h["W"], b=h["b"], mean=h["mean"], scale=h["scale"])
        self.scorer_ = PairScorer(coef=s["pair_coef"], intercept=float(s["pair_intercept"][0]), mean=s["pair_mean"],
                                  scale=s["pair_scale"], log_prior=s["log_prior"])
        self.stacker_ = PhaseStacker(A=s["phase_map"], coef=s["phase_coef"], intercept=s["phase_intercept"])
        self.centroids_ = s["centroids"]
        self.memory_ = LabelMemory(E=m["embeddings"].astype(np.float32), Y=m["labels"].astype(np.float32),
                                   floor=config.memory_floor)
        shapes_ok = (len(self.cat_desc_) == nc and self.heads_.W.shape[0] == npz + 2 and len(self.centroids_) == nc
                     and self.memory_.Y.shape[1] == nc + npz + 1 and all(len(p) for p in self.protos_))
        if not shapes_ok:
            raise ModelError(f"{path}: expected tensors for {nc} categories and {npz} phases, found other shapes")
        self.card_ = card
        enc = self.get_embedder()
        want, got = card.get("base_model_sha256"), embedder_id(enc)
        if want != got:
            raise ModelError(f"{path}: expected base encoder {card.get('base_model')} ({str(want)[:12]}...), found "
                             f"{enc.name} ({got[:12]}...); install the base model it was trained on")
        if doc.get("adapter"):
            if "adapter.safetensors" not in files or not isinstance(enc, TurnEncoder):
                raise ModelError(f"{path}: expected adapter.safetensors and a transformer encoder for the LoRA "
                                 "adapter named in config.json, found neither")
            from safetensors.torch import load_file as load_torch

            try:
                state = load_torch(str(path / "adapter.safetensors"))
            except (SafetensorError, OSError, ValueError) as e:
                raise ModelError(f"{path / 'adapter.safetensors'}: expected a safetensors file, found {e}") from None
            enc.attach_adapter(doc["adapter"], state)
        return self


def _check_labels(turns: Iterable[Turn], catalog: Catalog) -> None:
    """Every training label must be a catalog id: a silently dropped label is lost data."""
    known = {"categories": ("category", set(catalog.category_ids)), "phases": ("phase", set(catalog.phase_ids))}
    for t in turns:
        for space, (what, ok) in known.items():
            for x in getattr(t.labels, space):
                if x not in ok:
                    raise ModelError(f"turn {t.id or t.turn} of {t.interview}: expected a {what} id of catalog "
                                     f"{catalog.tag}, found {x!r}")


def verify_model_dir(path: Path) -> dict[str, Any]:
    """Check every file of a model directory against its SHA-256 manifest."""
    from extractor.embed import file_sha256

    if not path.is_dir():
        raise ModelError(f"{path}: expected a model directory, found {'a file' if path.exists() else 'nothing'}"
                         "; train one with `extractor train`")
    mpath = path / MANIFEST
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: expected {MANIFEST} in the model directory, found none; "
                         "is this a model written by `extractor train`?") from None
    except (OSError, ValueError, RecursionError):
        raise ModelError(f"{mpath}: expected a JSON manifest of the model files, found a damaged file") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise ModelError(f"{mpath}: expected an object \"files\" {{name: {{sha256, bytes}}}}, found {type(files).__name__}")
    for name in REQUIRED:
        if name not in files:
            raise ModelError(f"{mpath}: expected {name} in the manifest, found it missing; retrain the model")
    for name, info in files.items():
        if not isinstance(name, str) or Path(name).name != name or name in (".", ".."):
            raise ModelError(f"{mpath}: expected plain file names, found {name!r}")
        if not (isinstance(info, dict) and isinstance(info.get("sha256"), str)
                and isinstance(info.get("bytes"), int) and not isinstance(info.get("bytes"), bool)):
            raise ModelError(f"{mpath}: expected {{\"sha256\": str, \"bytes\": int}} for {name}, found {info!r:.60}")
        p = path / name
        if not p.is_file():
            raise ModelError(f"{p}: expected a model file listed in the manifest, found nothing")
        size = p.stat().st_size
        if size != info["bytes"]:
            raise ModelError(f"{p}: expected {info['bytes']} bytes, found {size}; the file is truncated or was "
                             "modified, retrain or restore the model")
        if file_sha256(p) != info["sha256"]:
            raise ModelError(f"{p}: expected SHA-256 {info['sha256'][:12]}... from the manifest, found different "
                             "content; the file was modified, retrain or restore the model")
    return manifest


def predictions_summary(preds: Iterable[Prediction]) -> dict[str, int]:
    """How many turns got each category (for logs and reports)."""
    counts: dict[str, int] = {}
    for p in preds:
        for c in p.categories:
            counts[c] = counts.get(c, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
