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

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from extractor.catalog import Catalog, load_catalog
from extractor.classify.config import ModelConfig, TrainConfig
from extractor.classify.encoder import TurnEncoder, embedder_id
from extractor.classify.evidence import evidence
from extractor.classify.features import CatalogVectors, Features, build_features
from extractor.classify.heads import Heads
from extractor.classify.scorer import LabelCentroids, LabelMemory, PairScorer, PhaseStacker, label_features, pair_features
from extractor.classify.store import (
    FORMAT,
    MANIFEST,
    REQUIRED,
    PartReader,
    PartWriter,
    Sizes,
    read_json_file,
    verify_model_dir,
    write_model_dir,
)
from extractor.classify.thresholds import Thresholds
from extractor.classify.trainer import data_hash
from extractor.embed import Embedder, HashingEmbedder
from extractor.errors import ModelError
from extractor.types import MITIGATION, Labels, Prediction, Turn

log = logging.getLogger(__name__)

T = TypeVar("T")
NOT_FITTED = "this IssueClassifier is not fitted yet: call fit() or IssueClassifier.load()"


def need(value: T | None) -> T:
    """``value``, a learned attribute; raises :class:`ModelError` when the model is not fitted."""
    if value is None:
        raise ModelError(NOT_FITTED)
    return value


__all__ = ["FORMAT", "MANIFEST", "REQUIRED", "IssueClassifier", "data_hash", "predictions_summary", "verify_model_dir"]


class IssueClassifier:
    """Multi-label classifier of interviewee turns into catalog categories, phases and a
    ``mitigation`` flag.

    ``fit(turns)`` takes *all* turns of the training interviews (both speakers, in interview
    order: neighbours and questions are features); the examples are the interviewee turns
    with ``labels``. ``embedder`` is any :class:`~extractor.embed.Embedder`; by default the
    encoder named by ``config.base_model``. Only a :class:`TurnEncoder` can be fine-tuned.
    """

    def __init__(self, catalog: Catalog | None = None, config: ModelConfig | None = None,
                 train_config: TrainConfig | None = None, embedder: Embedder | None = None,
                 cache_dir: str | Path | None = None):
        self.catalog = catalog
        self.config = config or ModelConfig()
        self.train_config = train_config or TrainConfig()
        self.embedder = embedder
        self.cache_dir = cache_dir  # on-disk embedding cache of the encoder built by get_embedder
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
        self.untrained_: tuple[str, ...] = ()  # categories scored from their text only (.extend)
        self.card_: dict[str, Any] = {}

    # -- parts --
    def get_embedder(self) -> Embedder:
        if self.embedder is None:
            if self.config.base_model == "hashing":
                self.embedder = HashingEmbedder(dim=64)
            else:
                from extractor.embed import pick_device

                self.embedder = TurnEncoder(self.config.base_model, pick_device(self.train_config.device),
                                            self.config.max_length, cache_dir=self.cache_dir)
        return self.embedder

    @property
    def fitted_catalog(self) -> Catalog:
        """The catalog the model was fitted on (or loaded with); :class:`ModelError` if unfitted."""
        return need(self.catalog_)

    def set_catalog_vectors(self, v: CatalogVectors) -> None:
        self.cat_desc_, self.phase_desc_, self.protos_ = v.cat_desc, v.phase_desc, v.protos

    def parts(self) -> list[Any]:
        """The parts a saved model is made of, each saving its own files."""
        self._check_fitted()
        catalog = self.fitted_catalog
        parts: list[Any] = [
            CatalogVectors(need(self.cat_desc_), need(self.phase_desc_), need(self.protos_)), self.heads_,
            self.scorer_, self.stacker_, LabelCentroids(need(self.centroids_)), self.memory_,
            Thresholds(need(self.thresholds_), catalog.category_ids, catalog.phase_ids)]
        enc = self.get_embedder()
        if isinstance(enc, TurnEncoder) and enc.adapter_config is not None:
            from extractor.classify.adapter import Adapter

            parts.append(Adapter(enc))
        return parts

    def features(self, turns: Sequence[Turn], progress: bool = False) -> Features:
        """Features of the interviewee turns of ``turns`` (all turns serve as context)."""
        return build_features(self.get_embedder(), turns, self.config,
                              batch_size=self.train_config.encode_batch_size, progress=progress)

    _features = features

    def pairs(self, f: Features) -> np.ndarray:
        """(turn, category) pair features of ``f`` against this model's catalog vectors."""
        return pair_features(f.E, f.sent_emb, f.Q, f.C, need(self.cat_desc_), need(self.protos_), f.n_words,
                             f.prev, f.nxt)

    _pairs = pairs

    @property
    def _sizes(self) -> tuple[int, int]:
        return len(self.fitted_catalog.category_ids), len(self.fitted_catalog.phase_ids)

    def _check_fitted(self) -> None:
        need(self.thresholds_)

    # -- training --
    def fit(self, turns: Sequence[Turn], progress: bool = False) -> IssueClassifier:
        """Train on the labelled interviewee turns of ``turns`` (see
        :class:`~extractor.classify.trainer.Trainer`). On a fitted model (e.g. one from
        :meth:`load`) the adapter continues from its weights for ``warm_steps`` steps (none with
        ``fine_tune=False``: only the parts that depend on labels are refitted). An encoder
        passed by the caller is never changed: the fine-tune trains a copy."""
        from extractor.classify.trainer import Trainer

        return Trainer(self.train_config).fit(self, turns, progress=progress)

    # -- prediction --
    def _probs(self, f: Features) -> np.ndarray:
        """(n, categories + phases + 1) probabilities of the interviewee turns of ``f``."""
        nc, npz = self._sizes
        Ph = need(self.heads_).predict_proba(f.head_input(need(self.cat_desc_), need(self.phase_desc_)))
        mem = need(self.memory_)
        issue = mem.Y[:, :nc].any(axis=1)
        F = np.concatenate([self._pairs(f), label_features(f.E, need(self.centroids_), mem.E[issue],
                                                           mem.Y[issue, :nc])], axis=2)
        pc = need(self.scorer_).predict_proba(F)
        pp = need(self.stacker_).predict_proba(pc, Ph[:, :npz])
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
                batch_size: int = 256, taught: Mapping[str, Labels] | None = None) -> list[Prediction]:
        """One :class:`Prediction` per interviewee turn: labels above their thresholds, every
        label's score and, per predicted category, the passage supporting it (offsets too).

        ``taught``: reviewers' labels by turn id. Those turns are labelled examples that re-score
        every other turn with no retrain (:mod:`.teach`); their own predictions carry the
        reviewers' labels (``label_source: "human"``) and the model's scores."""
        from tqdm.auto import tqdm

        self._check_fitted()
        turns = list(turns)
        w = self.config.context_window
        ie = [i for i, t in enumerate(turns) if t.is_interviewee]
        teach = None
        if taught or self.untrained_:
            from extractor.classify.teach import taught_scorer

            teach = taught_scorer(self, turns, taught or {})
        out: list[Prediction] = []
        bar = tqdm(total=len(ie), desc="predicting", unit="turn", disable=not progress)
        for s in range(0, len(ie), batch_size):
            chunk = ie[s: s + batch_size]
            lo, hi = max(0, chunk[0] - w), min(len(turns), chunk[-1] + w + 1)
            window = turns[lo:hi]
            f = self.features(window)
            P, base = (self._probs(f),) * 2 if teach is None else teach(f, [window[i].id for i in f.index])
            for k, i in enumerate(f.index):
                if chunk[0] <= lo + i <= chunk[-1]:
                    t = window[i]
                    human = taught.get(t.id) if taught else None
                    out.append(self.make_prediction(t, P[k] if human is None else base[k], f, k,
                                                    evidence=evidence, human=human))
            bar.update(len(chunk))
            if isinstance(self.embedder, TurnEncoder):
                self.embedder.clear()  # bound memory on long inputs
        bar.close()
        return out

    def make_prediction(self, t: Turn, p: np.ndarray, f: Features, k: int, *, evidence: bool = True,
                        human: Labels | None = None) -> Prediction:
        """The prediction of turn ``t`` from its probabilities ``p`` (row ``k`` of ``f``); with
        ``human`` labels, those are its codes (``label_source: "human"``), scores stay ``p``."""
        cats, phases, th = self.fitted_catalog.category_ids, self.fitted_catalog.phase_ids, need(self.thresholds_)
        nc, npz = len(cats), len(phases)
        if human is None:
            got = tuple(c for j, c in enumerate(cats) if p[j] >= th[j])
            ph = tuple(x for j, x in enumerate(phases) if p[nc + j] >= th[nc + j])
            mit, source = bool(p[-1] >= th[-1]), "model"
        else:
            got, ph, mit, source = human.categories, human.phases, human.mitigation, "human"
        scores = {c: round(float(v), 4) for c, v in zip(cats + phases, p[: nc + npz])}
        scores[MITIGATION] = round(float(p[-1]), 4)
        spans = self._evidence(t.text, f, k, [c for c in got if c in cats]) if evidence else {}
        return Prediction(interview=t.interview, turn=t.turn, id=t.id, categories=got, phases=ph, mitigation=mit,
                          scores=scores, evidence={c: t.text[a:z] for c, (a, z) in spans.items()}, spans=spans,
                          text=t.text, question=t.question, model=self.model_name, label_source=source,
                          untrained=tuple(c for c in got if c in self.untrained_))

    def _evidence(self, text: str, f: Features, k: int, categories: Sequence[str]) -> dict[str, tuple[int, int]]:
        ids = self.fitted_catalog.category_ids
        cat_desc, protos = need(self.cat_desc_), need(self.protos_)
        targets = {c: np.concatenate([cat_desc[ids.index(c)][None], protos[ids.index(c)]]) for c in categories}
        return evidence(text, f.spans[k], f.sent_emb[k], targets)

    @property
    def model_name(self) -> str:
        c = self.card_
        return f"qi-classifier:{c.get('base_model', '?')}:{c.get('catalog', '?')}:{c.get('data_sha256', '')[:8]}"

    # -- persistence --
    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically (temp dir + rename); refuses to replace a
        non-empty directory that is not a model. Each part writes its own files."""
        from extractor.catalog import save_catalog

        parts = self.parts()
        catalog = self.fitted_catalog
        enc = self.get_embedder()
        adapter = enc.adapter_config if isinstance(enc, TurnEncoder) else None

        def fill(tmp: Path) -> None:
            writer = PartWriter(tmp, {"format": FORMAT})
            for part in parts:
                part.save(writer)
            writer.close()
            writer.json("config.json", {"format": FORMAT, "model": self.config.to_dict(), "adapter": adapter,
                                        "labels": {"categories": catalog.category_ids,
                                                   "phases": catalog.phase_ids}})
            writer.json("card.json", self.card_)
            save_catalog(catalog, tmp / "catalog.yaml", snapshot=True)

        write_model_dir(Path(path), fill)
        log.info("saved model to %s", path)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, embedder: Embedder | None = None,
             cache_dir: str | Path | None = None) -> IssueClassifier:
        """Load a model directory written by :meth:`save`. Every file is checked against the
        manifest, then each part checks its own (shapes, finite values, ranges), all before the
        first turn is read: a tampered or truncated model raises a one-line :class:`ModelError`."""
        path = Path(path)
        files = verify_model_dir(path)["files"]
        doc, card = read_json_file(path / "config.json"), read_json_file(path / "card.json")
        config, train = read_configs(path, doc, card, device)
        catalog = read_catalog_snapshot(path, doc)
        self = cls(catalog=catalog, config=config, train_config=train, embedder=embedder, cache_dir=cache_dir)
        self.catalog_, self.card_ = catalog, card
        enc = self.get_embedder()
        want, got = card.get("base_model_sha256"), embedder_id(enc)
        if want != got:
            raise ModelError(f"{path}: expected base encoder {card.get('base_model')} ({str(want)[:12]}...), found "
                             f"{enc.name} ({got[:12]}...); install the base model it was trained on")
        dim = enc.declared_dim() if isinstance(enc, TurnEncoder) else enc.dim
        reader = PartReader(path, files, Sizes(len(catalog.category_ids), len(catalog.phase_ids), dim))
        self.set_catalog_vectors(CatalogVectors.load(reader))
        self.heads_, self.scorer_, self.stacker_ = Heads.load(reader), PairScorer.load(reader), PhaseStacker.load(reader)
        self.centroids_ = LabelCentroids.load(reader).C
        self.memory_ = LabelMemory.load(reader, floor=config.memory_floor)
        self.thresholds_ = Thresholds.load(reader, catalog.category_ids, catalog.phase_ids).values
        if doc.get("adapter"):
            from extractor.classify.adapter import ADAPTER_FILE, Adapter

            if ADAPTER_FILE not in files or not isinstance(enc, TurnEncoder):
                raise ModelError(f"{path}: expected adapter.safetensors and a transformer encoder for the LoRA "
                                 "adapter named in config.json, found neither")
            Adapter.load(reader, enc, doc["adapter"])
        return self


def read_configs(path: Path, doc: Any, card: Any, device: str | None) -> tuple[ModelConfig, TrainConfig]:
    """The model's settings (``config.json``) and training settings (``card.json``), validated."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ModelError(f"{path / 'config.json'}: expected format {FORMAT}, found {found!r}; "
                         "retrain the model with this version (`extractor train`)")
    if not isinstance(card, dict):
        raise ModelError(f"{path / 'card.json'}: expected a JSON object (the model card), found {type(card).__name__}")
    config = ModelConfig.from_dict(doc.get("model", {}), where=str(path / "config.json"))
    train = TrainConfig.from_dict({**(card.get("train_config") or {}), **({"device": device} if device else {})},
                                  where=str(path / "card.json"))
    return config, train


def read_catalog_snapshot(path: Path, doc: dict[str, Any]) -> Catalog:
    """The catalog the model predicts with; its labels must be those of ``config.json``."""
    from extractor.classify.store import MAX_JSON_BYTES
    from extractor.safeio import human_size

    where = path / "catalog.yaml"
    if where.stat().st_size > MAX_JSON_BYTES:
        raise ModelError(f"{where}: expected a catalog of at most {human_size(MAX_JSON_BYTES)}, found more")
    try:
        catalog = load_catalog(where)
    except Exception as e:  # any catalog problem is a broken model for the user
        raise ModelError(f"{where}: the model's catalog does not load ({e})") from None
    labels = doc.get("labels") or {}
    if not isinstance(labels, dict) or labels.get("categories") != catalog.category_ids \
            or labels.get("phases") != catalog.phase_ids:
        raise ModelError(f"{path}: expected the model's labels to match its catalog snapshot, found others")
    return catalog


def predictions_summary(preds: Iterable[Prediction]) -> dict[str, int]:
    """How many turns got each category (for logs and reports)."""
    counts: dict[str, int] = {}
    for p in preds:
        for c in p.categories:
            counts[c] = counts.get(c, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
