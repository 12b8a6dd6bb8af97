"""Classify interviewee turns into catalog issue categories, lifecycle phases and a
``mitigation`` flag.

Design (why it looks like this): only ~500 of ~2,000 labelled turns carry an issue and each
category has 4-70 positives, so a classifier that learns per-category weights from the labels
alone learns the training interviews' topics. We therefore

* embed each turn, its interviewer question and its neighbouring turns with a sentence
  encoder (frozen, or adapted with a small LoRA adapter when ``fine_tune=True``);
* train linear heads jointly with a class-weighted BCE (relevance, phases, ``mitigation``,
  and per-category heads kept for ``category_scorer="heads"``); uncoded turns are
  down-weighted negatives;
* score categories with ONE label-aware model shared by all categories
  (:mod:`extractor.catalog_scorer`): how a turn relates to each entry's catalog text
  (description, name, definition, keywords, example utterances) and to the turns labelled
  with it; phases combine their head with the phases the category scores imply;
* pick regularisation and one threshold per label on out-of-fold predictions of
  interview-grouped inner folds (labels with few positives share their space's threshold).

A saved model is a directory of safetensors + JSON files with a SHA-256 manifest checked on
load (no pickle anywhere), a model card and a snapshot of the catalog it was trained with.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from extractor.catalog import Catalog, load_catalog
from extractor.errors import ModelError
from extractor.types import Prediction, Turn

log = logging.getLogger(__name__)

FORMAT = "qi-classifier@1"
MANIFEST = "manifest.json"
HEADS_FILE = "heads.safetensors"
ADAPTER_FILE = "adapter.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "card.json"
CATALOG_FILE = "catalog.yaml"
RELEVANT = "__relevant__"
MITIGATION = "mitigation"


# --- configuration ------------------------------------------------------------------


@dataclass
class ClassifierConfig:
    """Everything that shapes a trained model; saved with it.

    ``base_model``: ``None`` = the bundled all-MiniLM-L6-v2, a local sentence-transformers
    directory, or ``"hashing"`` (model-free hashing embedder, for tests only).
    ``fine_tune=False`` keeps the encoder frozen and trains only the linear heads (seconds
    to a minute); ``True`` first adapts the encoder with a LoRA adapter (minutes).
    """

    base_model: str | None = None
    seed: int = 42
    device: str = "auto"
    fine_tune: bool = False
    # features
    use_question: bool = True
    use_context: bool = True
    use_catalog: bool = True
    context_window: int = 2
    max_length: int = 256
    max_sentences: int = 40
    # categories: "catalog" = one label-aware scorer shared by all categories over
    # (turn, catalog entry) similarity features (extractor.catalog_scorer); "heads" = one
    # linear head per category over the turn features
    category_scorer: str = "catalog"
    pair_c_grid: tuple[float, ...] = (0.001, 0.003, 0.03, 0.3, 3.0)  # inverse L2 of the scorer, picked on inner folds
    # heads
    gate: bool = True
    l2: float = 0.5
    l2_grid: tuple[float, ...] = (0.05, 0.5, 2.0)  # picked per fit on the inner folds; () = use l2
    head_epochs: int = 300
    head_lr: float = 0.01
    max_pos_weight: float = 10.0
    weak_negative_weight: float = 0.5
    coders_weight: float = 1.0
    # thresholds
    threshold_folds: int = 5
    min_threshold_support: int = 8
    # encoder fine-tuning (fine_tune=True)
    epochs: int = 2
    learning_rate: float = 3e-4
    batch_size: int = 16
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    max_train_minutes: float = 12.0
    encode_batch_size: int = 32

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ModelError:
            return ModelError(f"ClassifierConfig.{name}: expected {expected}, found {getattr(self, name)!r}")

        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise bad("seed", "an integer")
        if not isinstance(self.device, str) or not self.device:
            raise bad("device", '"auto", "cpu", "cuda" or "cuda:N"')
        if self.base_model is not None and not isinstance(self.base_model, str):
            self.base_model = str(self.base_model)
        for name in ("max_length", "max_sentences", "head_epochs", "epochs", "batch_size", "lora_r",
                     "lora_alpha", "encode_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad(name, "a positive integer")
        if not isinstance(self.context_window, int) or self.context_window < 0:
            raise bad("context_window", "an integer >= 0")
        if not isinstance(self.threshold_folds, int) or self.threshold_folds < 2:
            raise bad("threshold_folds", "an integer >= 2")
        if not isinstance(self.min_threshold_support, int) or self.min_threshold_support < 1:
            raise bad("min_threshold_support", "a positive integer")
        for name in ("l2", "max_pos_weight", "weak_negative_weight", "coders_weight"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 or not math.isfinite(v):
                raise bad(name, "a finite number >= 0")
        for name in ("head_lr", "learning_rate", "max_train_minutes"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                raise bad(name, "a number > 0")
        grid = self.l2_grid
        if isinstance(grid, (str, bytes)) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      and v >= 0 for v in grid):
            raise bad("l2_grid", "a list of numbers >= 0")
        self.l2_grid = tuple(float(v) for v in grid)
        cgrid = self.pair_c_grid
        if isinstance(cgrid, (str, bytes)) or not cgrid or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in cgrid):
            raise bad("pair_c_grid", "a non-empty list of numbers > 0")
        self.pair_c_grid = tuple(float(v) for v in cgrid)
        if not 0 <= self.lora_dropout < 1:
            raise bad("lora_dropout", "a number in [0, 1)")
        if self.category_scorer not in ("catalog", "heads"):
            raise bad("category_scorer", '"catalog" or "heads"')
        if self.category_scorer == "catalog" and not self.use_catalog:
            raise bad("category_scorer", '"heads" when use_catalog is false (the catalog scorer needs it)')

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ClassifierConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# --- helpers ------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    import sys

    if "torch" in sys.modules:  # the frozen path never needs torch's start-up cost
        sys.modules["torch"].manual_seed(seed)


_NLP = None


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` with spaCy's rule-based sentencizer (no model download)."""
    global _NLP
    if _NLP is None:
        import spacy

        _NLP = spacy.blank("en")
        _NLP.add_pipe("sentencizer")
        _NLP.max_length = 2_000_000
    sents = [s.text.strip() for s in _NLP(text).sents]
    return [s for s in sents if s] or ([text.strip()] if text.strip() else [""])


def _describe(entry) -> str:
    """Catalog text of an entry, skipping placeholder definitions."""
    text = entry.describe()
    return text.replace(" TODO", "").strip() if entry.definition.strip().upper() == "TODO" else text


def _data_hash(turns: Sequence[Turn]) -> str:
    h = hashlib.sha256()
    for t in turns:
        lab = t.labels.to_dict() if t.labels is not None else None
        h.update(json.dumps([t.interview, t.turn, t.speaker, t.text, t.question, lab, t.label_source],
                            ensure_ascii=False, sort_keys=True).encode())
    return h.hexdigest()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


# --- encoder ------------------------------------------------------------------------


class _Encoder:
    """The sentence encoder: bundled MiniLM (or a local path), optionally with a LoRA
    adapter, or the model-free hashing embedder; remembers what it has encoded."""

    def __init__(self, base_model: str | None, device: str = "auto", max_length: int = 256):
        self.base_model = base_model
        self.device_req = device
        self.max_length = max_length
        self._st = None
        self._hashing = None
        self._cache: dict[str, np.ndarray] = {}
        self.adapter_config: dict[str, Any] | None = None
        if base_model == "hashing":
            from extractor.embed import HashingEmbedder

            self._hashing = HashingEmbedder(dim=64)
            self.path = None
        else:
            from extractor.embed import resolve_model_path

            self.path = resolve_model_path(base_model)

    @property
    def is_hashing(self) -> bool:
        return self._hashing is not None

    @property
    def name(self) -> str:
        if self.is_hashing:
            return "hashing"
        from extractor.embed import default_model_path

        return "all-MiniLM-L6-v2" if self.path == default_model_path() else str(self.path)

    def base_sha256(self) -> str:
        """SHA-256 of the base encoder's weights file (identifies the base model)."""
        if self.is_hashing:
            return "hashing-64"
        from extractor.embed import file_sha256

        for name in ("model.safetensors", "pytorch_model.bin"):
            p = self.path / name
            if p.exists():
                return file_sha256(p)
        raise ModelError(f"{self.path}: expected model.safetensors in the base model directory, found none")

    @property
    def st(self):
        if self._st is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            from extractor.embed import pick_device

            device = pick_device(self.device_req)
            try:
                self._st = SentenceTransformer(str(self.path), device=device, local_files_only=True)
            except Exception as e:  # any loader failure is a broken model directory for the user
                raise ModelError(f"{self.path}: cannot load the base encoder ({type(e).__name__}: {e})") from None
            self._st.max_seq_length = self.max_length
        return self._st

    @property
    def dim(self) -> int:
        return self._hashing.dim if self.is_hashing else int(self.st.get_embedding_dimension())

    def transformer(self):
        """The underlying Hugging Face model (where a LoRA adapter is injected)."""
        module = self.st[0]
        return module.model if hasattr(module, "model") else module.auto_model

    def attach_adapter(self, cfg: dict[str, Any], state: Mapping[str, Any] | None = None, train: bool = False):
        """Inject a LoRA adapter into the transformer in place (fresh, or with saved weights);
        only the adapter's parameters stay trainable."""
        from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict

        model = self.transformer()
        lcfg = LoraConfig(r=cfg["r"], lora_alpha=cfg["alpha"], lora_dropout=cfg["dropout"],
                          target_modules=cfg["target_modules"], bias="none")
        model = inject_adapter_in_model(lcfg, model)
        for name, p in model.named_parameters():
            p.requires_grad = "lora_" in name
        if state is not None:
            result = set_peft_model_state_dict(model, dict(state))
            unexpected = list(getattr(result, "unexpected_keys", []) or [])
            if unexpected:
                raise ModelError(f"adapter weights do not fit the base model: {len(unexpected)} unexpected tensors,"
                                 f" e.g. {unexpected[0]}")
        model.train(train)
        self.adapter_config = dict(cfg)
        self.clear()
        return model

    def clear(self) -> None:
        """Forget the in-memory embeddings (after the encoder changed, or to bound memory)."""
        self._cache.clear()
        self.__dict__.get("_sent_cache", {}).clear()

    def adapter_state(self) -> dict[str, Any]:
        from peft import get_peft_model_state_dict

        return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.transformer()).items()}

    def _disk_cache(self) -> Path | None:
        """``$QI_EMBED_CACHE/<encoder key>``: embeddings of the frozen base encoder, reused across
        runs by benchmarks and repeated training (never used once an adapter is attached)."""
        root = os.environ.get("QI_EMBED_CACHE")
        if not root or self.is_hashing or self.adapter_config is not None:
            return None
        if not hasattr(self, "_cache_key"):
            self._cache_key = f"{self.base_sha256()[:16]}-{self.max_length}"
        return Path(root) / self._cache_key

    def _load_disk_cache(self) -> None:
        base = self._disk_cache()
        if base is None or getattr(self, "_disk_loaded", False):
            return
        self._disk_loaded = True
        try:
            keys = json.loads(base.with_suffix(".json").read_text())
            vecs = np.load(base.with_suffix(".npy"), allow_pickle=False)
        except (OSError, ValueError):
            return
        if len(keys) == len(vecs):
            self._disk = dict(zip(keys, vecs))

    def _save_disk_cache(self) -> None:
        base = self._disk_cache()
        if base is None:
            return
        from extractor.jsonl import atomic_open

        disk = getattr(self, "_disk", {})
        keys = list(disk)
        base.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(base.with_suffix(".npy"), "wb", encoding=None) as fh:
            np.save(fh, np.stack([disk[k] for k in keys]) if keys else np.zeros((0, 1), np.float32),
                    allow_pickle=False)
        with atomic_open(base.with_suffix(".json")) as fh:
            json.dump(keys, fh)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False,
               desc: str = "encoding") -> np.ndarray:
        """L2-normalised embeddings; empty texts get a zero vector; repeated texts are encoded once."""
        todo = sorted({t for t in texts if t and t not in self._cache}, key=len)
        if todo and self._disk_cache() is not None:
            self._load_disk_cache()
            disk = getattr(self, "_disk", {})
            rest = []
            for t in todo:
                k = hashlib.sha1(t.encode()).hexdigest()
                if k in disk:
                    self._cache[t] = disk[k]
                else:
                    rest.append(t)
            todo = rest
        if todo:
            if self.is_hashing:
                vecs = self._hashing.encode(todo)
            else:
                vecs = self._encode_st(todo, batch_size=batch_size, progress=progress, desc=desc)
            for t, v in zip(todo, vecs):
                self._cache[t] = v
            if self._disk_cache() is not None:
                disk = self.__dict__.setdefault("_disk", {})
                for t, v in zip(todo, vecs):
                    disk[hashlib.sha1(t.encode()).hexdigest()] = v
                self._save_disk_cache()
        dim = self.dim
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, t in enumerate(texts):
            if t:
                out[i] = self._cache[t]
        return out

    def encode_turns(self, texts: Sequence[str], sentences: Sequence[Sequence[str]], *, batch_size: int = 32,
                     progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Turn embeddings and, per turn, its sentences' embeddings from ONE encoder pass per
        turn: a sentence's vector is the mean of the turn's contextual token vectors inside
        the sentence (what the model's mean pooling does for the whole turn). This is what
        keeps prediction fast; sentences cut off by ``max_length`` are encoded on their own."""
        if self.is_hashing:
            return self.encode(texts), [self.encode(list(ss)) for ss in sentences]
        keys = [hashlib.sha1(("S\x00" + t + "\x00" + "\x1f".join(ss)).encode()).hexdigest()
                for t, ss in zip(texts, sentences)]
        sc = self.__dict__.setdefault("_sent_cache", {})
        disk = None
        if self._disk_cache() is not None:
            self._load_disk_cache()
            disk = self.__dict__.setdefault("_disk", {})
            for t, k, ss in zip(texts, keys, sentences):
                if k not in sc and k + ":0" in disk and hashlib.sha1(t.encode()).hexdigest() in disk:
                    sc[k] = np.stack([disk[f"{k}:{i}"] for i in range(len(ss))])
                    self._cache.setdefault(t, disk[hashlib.sha1(t.encode()).hexdigest()])
        todo = sorted({i for i, k in enumerate(keys) if k not in sc or texts[i] not in self._cache},
                      key=lambda i: len(texts[i]))
        seen: set[str] = set()
        todo = [i for i in todo if not (keys[i] in seen or seen.add(keys[i]))]
        if todo:
            self._encode_pooled([texts[i] for i in todo], [sentences[i] for i in todo], [keys[i] for i in todo],
                                batch_size=batch_size, progress=progress)
            if disk is not None:
                for i in todo:
                    disk[hashlib.sha1(texts[i].encode()).hexdigest()] = self._cache[texts[i]]
                    for j, v in enumerate(sc[keys[i]]):
                        disk[f"{keys[i]}:{j}"] = v
                self._save_disk_cache()
        E = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return E, [sc[k] for k in keys]

    def _encode_pooled(self, texts: list[str], sentences: list[Sequence[str]], keys: list[str], *,
                       batch_size: int, progress: bool) -> None:
        import torch
        from tqdm.auto import tqdm

        st = self.st
        st.eval()
        tok = st.tokenizer
        model = self.transformer()
        sc = self._sent_cache
        missing: list[tuple[str, int, str]] = []
        bar = tqdm(total=len(texts), desc="encoding turns", unit="turn", disable=not progress, leave=False)
        with torch.inference_mode():
            for b in range(0, len(texts), batch_size):
                bt = texts[b : b + batch_size]
                enc = tok(bt, padding=True, truncation=True, max_length=self.max_length,
                          return_offsets_mapping=True, return_tensors="pt")
                offsets = enc.pop("offset_mapping").numpy()
                inputs = {k: v.to(st.device) for k, v in enc.items() if k in ("input_ids", "attention_mask",
                                                                                "token_type_ids")}
                H = model(**inputs).last_hidden_state.float().cpu().numpy()
                mask = enc["attention_mask"].numpy().astype(np.float32)
                for r, text in enumerate(bt):
                    m = mask[r][:, None]
                    v = (H[r] * m).sum(0) / max(m.sum(), 1.0)
                    self._cache[text] = (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)
                    ss = sentences[b + r]
                    out = np.zeros((len(ss), H.shape[2]), dtype=np.float32)
                    cursor = 0
                    starts, ends = offsets[r][:, 0], offsets[r][:, 1]
                    real = (mask[r] > 0) & (ends > starts)
                    for j, sent in enumerate(ss):
                        a = text.find(sent, cursor)
                        if a < 0:
                            a = cursor
                        z = a + len(sent)
                        cursor = z
                        sel = real & (starts >= a) & (ends <= z)
                        if sel.any():
                            v = H[r][sel].mean(0)
                            out[j] = v / (np.linalg.norm(v) or 1.0)
                        else:
                            missing.append((keys[b + r], j, sent))
                    sc[keys[b + r]] = out
                bar.update(len(bt))
        bar.close()
        if missing:
            vecs = self._encode_st([m[2] for m in missing], batch_size=batch_size, progress=False, desc="")
            for (k, j, _), v in zip(missing, vecs):
                sc[k][j] = v

    def _encode_st(self, texts: list[str], *, batch_size: int, progress: bool, desc: str) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        st = self.st
        st.eval()
        out = []
        bar = tqdm(total=len(texts), desc=desc, unit="text", disable=not progress, leave=False)
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = texts[i : i + batch_size]
                feats = st.preprocess(batch) if hasattr(st, "preprocess") else st.tokenize(batch)
                feats = {k: (v.to(st.device) if hasattr(v, "to") else v) for k, v in feats.items()}
                emb = st(feats)["sentence_embedding"]
                emb = torch.nn.functional.normalize(emb, dim=-1)
                out.append(emb.float().cpu().numpy())
                bar.update(len(batch))
        bar.close()
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


# --- encoder adaptation (fine_tune=True) -------------------------------------------


def adapt_encoder(enc: _Encoder, examples: Sequence[Turn], catalog: Catalog, cfg: ClassifierConfig,
                  *, progress: bool = False) -> None:
    """Attach a LoRA adapter to ``enc`` and train it label-aware: each turn is pulled towards
    the catalog descriptions of its categories (cosine logits, BCE over categories on
    issue-bearing turns) and a relevance head on the turn embedding learns whether it reports
    an issue at all. Pairing turns with *definitions* rather than with free label slots is
    what keeps a 500-positive data set from teaching the encoder interview topics.

    Issue-bearing turns are all used every epoch, with as many sampled issue-free turns;
    training stops early after ``max_train_minutes``.
    """
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    cats = catalog.category_ids
    ci = {c: k for k, c in enumerate(cats)}
    Y = np.zeros((len(examples), len(cats)), dtype=np.float32)
    for r, t in enumerate(examples):
        for c in t.labels.categories:
            if c in ci:
                Y[r, ci[c]] = 1
    rel = Y.any(axis=1)
    pos_idx, neg_idx = np.flatnonzero(rel), np.flatnonzero(~rel)
    texts = [t.text for t in examples]
    desc = [_describe(e) for e in catalog.categories]

    peft_model = enc.attach_adapter({"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout,
                                     "target_modules": ["query", "value"]}, train=True)
    st = enc.st
    st.train()
    dim = enc.dim
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(20.0)))
    cat_bias = torch.nn.Parameter(torch.full((len(cats),), -1.0))
    rel_head = torch.nn.Linear(dim, 1)
    params = [p for p in peft_model.parameters() if p.requires_grad] + [logit_scale, cat_bias, *rel_head.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.01)
    n_pos = max(len(pos_idx), 1)
    pos_weight = torch.tensor(min(cfg.max_pos_weight, len(cats) - 1.0))
    old_len = st.max_seq_length
    st.max_seq_length = min(old_len, 128)  # long turns keep their first 128 word pieces while training

    def embed(batch_texts: list[str]):
        feats = st.preprocess(batch_texts) if hasattr(st, "preprocess") else st.tokenize(batch_texts)
        feats = {k: (v.to(st.device) if hasattr(v, "to") else v) for k, v in feats.items()}
        return torch.nn.functional.normalize(st(feats)["sentence_embedding"], dim=-1)

    deadline = time.time() + cfg.max_train_minutes * 60
    steps_per_epoch = math.ceil((len(pos_idx) + min(len(neg_idx), n_pos)) / cfg.batch_size)
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc="fine-tuning", unit="step", disable=not progress)
    stopped = False
    for epoch in range(cfg.epochs):
        order = np.concatenate([pos_idx, rng.choice(neg_idx, size=min(len(neg_idx), n_pos), replace=False)])
        rng.shuffle(order)
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            e_t = embed([texts[i] for i in idx])
            e_d = embed(desc)
            logits = logit_scale.exp() * e_t @ e_d.T + cat_bias
            y = torch.from_numpy(Y[idx])
            r = torch.from_numpy(rel[idx].astype(np.float32))
            cat_loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, y, pos_weight=pos_weight, reduction="none").sum(dim=1)
            cat_loss = (cat_loss * r).sum() / r.sum().clamp(min=1.0)
            rel_loss = torch.nn.functional.binary_cross_entropy_with_logits(rel_head(e_t).squeeze(-1), r)
            loss = cat_loss + rel_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if time.time() > deadline:
                log.warning("fine-tuning stopped after %.0f min (max_train_minutes) in epoch %d",
                            cfg.max_train_minutes, epoch + 1)
                stopped = True
                break
        if stopped:
            break
    bar.close()
    st.max_seq_length = old_len
    st.eval()
    peft_model.eval()
    enc.clear()


# --- features -----------------------------------------------------------------------


@dataclass
class Features:
    """Per interviewee turn: the feature matrix and what evidence selection needs."""

    X: np.ndarray  # (n, d)
    index: list[int]  # positions of the interviewee turns in the input sequence
    sentences: list[list[str]]
    sent_emb: list[np.ndarray]  # per turn (n_sent, dim)
    layout: dict[str, list[int]] = field(default_factory=dict)  # block name -> [start, stop)
    pairs: np.ndarray | None = None  # (n, n_categories, N_PAIR_FEATURES), see catalog_scorer


def _context_texts(turns: Sequence[Turn], i: int, window: int) -> list[str]:
    """Texts of up to ``window`` turns each side of ``turns[i]`` within the same interview."""
    out = []
    for j in range(max(0, i - window), min(len(turns), i + window + 1)):
        if j != i and turns[j].interview == turns[i].interview:
            out.append(turns[j].text)
    return out


def _neighbour_rows(turns: Sequence[Turn], index: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Row of the previous / next interviewee turn of the same interview (-1 if none)."""
    prev, nxt = np.full(len(index), -1), np.full(len(index), -1)
    for k in range(1, len(index)):
        if turns[index[k - 1]].interview == turns[index[k]].interview:
            prev[k], nxt[k - 1] = k - 1, k
    return prev, nxt


def build_features(encoder: _Encoder, turns: Sequence[Turn], cfg: ClassifierConfig,
                   cat_desc: np.ndarray, phase_desc: np.ndarray, *, cat_protos: Sequence[np.ndarray] | None = None,
                   progress: bool = False) -> Features:
    """Features of every interviewee turn of ``turns`` (all turns are used as context);
    with ``cat_protos`` (per category, its prototype embeddings) also the pair features."""
    index = [i for i, t in enumerate(turns) if t.is_interviewee]
    texts = [turns[i].text for i in index]
    sentences = [split_sentences(t)[: cfg.max_sentences] for t in texts]
    E, sent_emb = encoder.encode_turns(texts, sentences, batch_size=cfg.encode_batch_size, progress=progress)
    need = []
    if cfg.use_question:
        need += [turns[i].question for i in index]
    if cfg.use_context:
        need += [t.text for t in turns]
    encoder.encode(need, batch_size=cfg.encode_batch_size, progress=progress, desc="encoding context")

    blocks: list[tuple[str, np.ndarray]] = []
    blocks.append(("text", E))
    Q = encoder.encode([turns[i].question for i in index]) if cfg.use_question else np.zeros_like(E)
    ctx = np.zeros_like(E)
    if cfg.use_question:
        blocks.append(("question", Q))
    if cfg.use_context:
        for k, i in enumerate(index):
            c = _context_texts(turns, i, cfg.context_window)
            if c:
                v = encoder.encode(c).mean(axis=0)
                n = np.linalg.norm(v)
                ctx[k] = v / n if n > 0 else v
        blocks.append(("context", ctx))
    if cfg.use_catalog:
        for name, D in (("cat_sim", cat_desc), ("phase_sim", phase_desc)):
            turn_sim = E @ D.T
            sent_max = np.stack([(se @ D.T).max(axis=0) if len(se) else np.zeros(len(D)) for se in sent_emb]) \
                if sent_emb else np.zeros((0, len(D)))
            blocks.append((name, np.concatenate([turn_sim, sent_max], axis=1).astype(np.float32)))
    n_words = np.array([len(t.split()) for t in texts], dtype=np.float32)
    n_sents = np.array([len(s) for s in sentences], dtype=np.float32)
    blocks.append(("length", np.stack([np.log1p(n_words), np.log1p(n_sents)], axis=1) if texts
                   else np.zeros((0, 2), dtype=np.float32)))
    layout, start = {}, 0
    for name, b in blocks:
        layout[name] = [start, start + b.shape[1]]
        start += b.shape[1]
    X = np.concatenate([b for _, b in blocks], axis=1).astype(np.float32) if index else \
        np.zeros((0, start), dtype=np.float32)
    pairs = None
    if cat_protos is not None:
        from extractor.catalog_scorer import pair_features

        prev, nxt = _neighbour_rows(turns, index)
        pairs = pair_features(E, sent_emb, Q, ctx, cat_desc, cat_protos, n_words, prev, nxt)
    return Features(X=X, index=index, sentences=sentences, sent_emb=sent_emb, layout=layout, pairs=pairs)


# --- targets ------------------------------------------------------------------------


def _is_uncoded(t: Turn) -> bool:
    """No study code at all from any source: the coders may simply not have read it.
    A reviewed turn (``label_source="review"``) was read: its "no label" is a real negative."""
    return t.label_source != "review" and not any(v for v in (t.codes or {}).values())


def build_targets(turns: Sequence[Turn], catalog: Catalog, cfg: ClassifierConfig
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label matrix ``Y`` (n, L) over ``label_ids``, per-example weights and the label mask.

    Column order: categories, phases, relevance, mitigation. With ``gate``, category
    columns only count on issue-bearing turns (they model P(category | relevant)).
    """
    cats, phases = catalog.category_ids, catalog.phase_ids
    ci = {c: k for k, c in enumerate(cats)}
    pi = {p: k for k, p in enumerate(phases)}
    nc, npz = len(cats), len(phases)
    L = nc + npz + 2
    Y = np.zeros((len(turns), L), dtype=np.float32)
    w = np.ones(len(turns), dtype=np.float32)
    for r, t in enumerate(turns):
        lab = t.labels
        for c in lab.categories:
            if c in ci:
                Y[r, ci[c]] = 1
        for p in lab.phases:
            if p in pi:
                Y[r, nc + pi[p]] = 1
        Y[r, nc + npz] = float(Y[r, :nc].any())
        Y[r, nc + npz + 1] = float(lab.mitigation)
        if t.label_source == "coders":
            w[r] *= cfg.coders_weight
        if _is_uncoded(t) and not Y[r].any():
            w[r] *= cfg.weak_negative_weight
    M = np.ones_like(Y)
    if cfg.gate:
        M[:, :nc] = Y[:, nc + npz][:, None]
    return Y, w, M


# --- heads --------------------------------------------------------------------------


@dataclass
class Heads:
    """Jointly trained linear heads over standardised features."""

    W: np.ndarray  # (L, d)
    b: np.ndarray  # (L,)
    mean: np.ndarray
    scale: np.ndarray

    def logits(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale) @ self.W.T + self.b


def fit_heads(X: np.ndarray, Y: np.ndarray, w: np.ndarray, M: np.ndarray, cfg: ClassifierConfig) -> Heads:
    """Weighted, masked, class-balanced BCE with L2, full-batch Adam in numpy (deterministic,
    no torch start-up cost: this runs once per inner fold)."""
    n, d = X.shape
    mean = X.mean(axis=0) if n else np.zeros(d, dtype=np.float32)
    scale = X.std(axis=0) if n else np.ones(d, dtype=np.float32)
    scale = np.where(scale < 1e-6, 1.0, scale).astype(np.float32)
    Xs = ((X - mean) / scale).astype(np.float32)
    Mw = (M * w[:, None]).astype(np.float32)
    pos = (Y * M).sum(axis=0)
    neg = ((1 - Y) * M).sum(axis=0)
    pw = np.clip(np.sqrt(neg / np.maximum(pos, 1)), 1.0, cfg.max_pos_weight).astype(np.float32)
    prior = np.clip((pos + 1) / (pos + neg + 2), 1e-3, 1 - 1e-3)
    W = np.zeros((Y.shape[1], d), dtype=np.float32)
    b = np.log(prior / (1 - prior)).astype(np.float32)
    denom = np.maximum(Mw.sum(axis=0), 1.0)
    coef = Mw / denom  # per-example, per-label loss weight
    lr, b1, b2, eps = cfg.head_lr, 0.9, 0.999, 1e-8
    mW, vW = np.zeros_like(W), np.zeros_like(W)
    mb, vb = np.zeros_like(b), np.zeros_like(b)
    for step in range(1, cfg.head_epochs + 1):
        P = _sigmoid(Xs @ W.T + b)
        G = coef * (pw * Y * (P - 1) + (1 - Y) * P)  # dLoss/dlogit
        gW = G.T @ Xs + 2 * cfg.l2 * W
        gb = G.sum(axis=0)
        mW = b1 * mW + (1 - b1) * gW
        vW = b2 * vW + (1 - b2) * gW * gW
        mb = b1 * mb + (1 - b1) * gb
        vb = b2 * vb + (1 - b2) * gb * gb
        c1, c2 = 1 - b1 ** step, 1 - b2 ** step
        W -= lr * (mW / c1) / (np.sqrt(vW / c2) + eps)
        b -= lr * (mb / c1) / (np.sqrt(vb / c2) + eps)
    return Heads(W=W.astype(np.float32), b=b.astype(np.float32), mean=mean.astype(np.float32), scale=scale)


def head_probs(heads: Heads, X: np.ndarray, n_cat: int, n_phase: int, gate: bool) -> dict[str, np.ndarray]:
    P = _sigmoid(heads.logits(X))
    cats = P[:, :n_cat]
    rel = P[:, n_cat + n_phase]
    if gate:
        cats = cats * rel[:, None]
    return {"categories": cats, "phases": P[:, n_cat : n_cat + n_phase],
            "mitigation": P[:, n_cat + n_phase + 1], "relevance": rel}


# --- thresholds ---------------------------------------------------------------------

_GRID = np.round(np.arange(0.02, 0.96, 0.01), 2)


def _best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Threshold maximising F1 of one label (or of a flattened label space)."""
    best_t, best_f = 0.5, -1.0
    npos = y.sum()
    for t in _GRID:
        pred = p >= t
        tp = float((pred & (y > 0)).sum())
        f = 2 * tp / (pred.sum() + npos) if (pred.sum() + npos) else 0.0
        if f > best_f + 1e-9:
            best_t, best_f = float(t), f
    return best_t, best_f


def tune_thresholds(Y: np.ndarray, P: np.ndarray, min_support: int) -> np.ndarray:
    """Per-label F1-optimal thresholds; labels with few positives use the space's shared one."""
    shared, _ = _best_threshold(Y.ravel(), P.ravel())
    out = np.full(Y.shape[1], shared, dtype=np.float32)
    for j in range(Y.shape[1]):
        n = Y[:, j].sum()
        if n >= min_support:
            t, _ = _best_threshold(Y[:, j], P[:, j])
            # shrink towards the shared threshold: a per-label optimum on a few dozen positives is noisy
            k = min_support
            out[j] = (n * t + k * shared) / (n + k)
    return out


def _group_folds(groups: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    """Assign whole interviews to ``k`` folds (deterministic, balanced by size)."""
    uniq = sorted(set(groups))
    rng = random.Random(seed)
    rng.shuffle(uniq)
    sizes = {g: 0 for g in uniq}
    for g in groups:
        sizes[g] += 1
    k = min(k, len(uniq))
    load = [0] * k
    assign = {}
    for g in sorted(uniq, key=lambda g: -sizes[g]):
        f = min(range(k), key=lambda i: load[i])
        assign[g] = f
        load[f] += sizes[g]
    garr = np.array([assign[g] for g in groups])
    return [np.flatnonzero(garr == f) for f in range(k)]


# --- the classifier -----------------------------------------------------------------


class IssueClassifier:
    """Multi-label classifier of interviewee turns (scikit-learn shape).

    ``fit(turns)`` takes *all* turns of the training interviews (both speakers, in
    interview order); the examples are the interviewee turns with ``labels``. Labels
    absent from ``catalog`` are ignored.
    """

    def __init__(self, catalog: Catalog | None = None, config: ClassifierConfig | None = None):
        self.catalog = catalog
        self.config = config or ClassifierConfig()
        self._encoder: _Encoder | None = None

    # -- internals --
    def _get_encoder(self) -> _Encoder:
        if self._encoder is None:
            self._encoder = _Encoder(self.config.base_model, self.config.device, self.config.max_length)
        return self._encoder

    def _embed_catalog(self, catalog: Catalog) -> None:
        """Embeddings of the catalog texts: one description per entry (``desc_``) and, for
        the catalog scorer, every prototype of every category (``protos_``)."""
        from extractor.catalog_scorer import prototype_texts

        enc = self._get_encoder()
        self.desc_ = (enc.encode([_describe(e) for e in catalog.categories]),
                      enc.encode([_describe(e) for e in catalog.phases]))
        self.protos_ = [enc.encode(prototype_texts(e)) for e in catalog.categories] \
            if self.config.category_scorer == "catalog" else None

    def _features(self, turns: Sequence[Turn], progress: bool = False) -> Features:
        cat_desc, phase_desc = self.desc_
        return build_features(self._get_encoder(), turns, self.config, cat_desc, phase_desc,
                              cat_protos=getattr(self, "protos_", None), progress=progress)

    def _check_fitted(self) -> None:
        if not hasattr(self, "heads_"):
            raise ModelError("this IssueClassifier is not fitted yet: call fit() or IssueClassifier.load()")

    # -- training --
    def fit(self, turns: Sequence[Turn], progress: bool = False) -> "IssueClassifier":
        """Train on the labelled interviewee turns of ``turns`` (all turns give context)."""
        t0 = time.time()
        cfg = self.config
        _seed_everything(cfg.seed)
        turns = list(turns)
        data_hash = _data_hash(turns)
        # only interviews with labels are encoded (their other turns still give context)
        labelled = {t.interview for t in turns if t.is_interviewee and t.labels is not None}
        turns = [t for t in turns if t.interview in labelled]
        catalog = self.catalog or load_catalog()
        self.catalog_ = catalog
        examples = [i for i, t in enumerate(turns) if t.is_interviewee and t.labels is not None]
        if not examples:
            raise ModelError("no labelled interviewee turns to train on (turns need `labels`)")
        enc = self._get_encoder()
        if cfg.fine_tune and not enc.is_hashing:
            adapt_encoder(enc, [turns[i] for i in examples], catalog, cfg, progress=progress)
        self._embed_catalog(catalog)
        feats = self._features(turns, progress=progress)
        pos = {i: k for k, i in enumerate(feats.index)}
        rows = [pos[i] for i in examples]
        X = feats.X[rows]
        ex_turns = [turns[i] for i in examples]
        Y, w, M = build_targets(ex_turns, catalog, cfg)
        groups = [t.interview for t in ex_turns]
        self.thresholds_ = self._tune(X, Y, w, M, groups, progress=progress)
        from dataclasses import replace

        self.heads_ = fit_heads(X, Y, w, M, replace(cfg, l2=self.l2_))
        if cfg.category_scorer == "catalog":
            from extractor.catalog_scorer import label_centroids, leave_group_out_label_features

            E, Yc = X[:, slice(*feats.layout["text"])], Y[:, : len(catalog.category_ids)]
            issue = Yc.any(axis=1)
            self.centroids_, self.exemplars_, self.exemplar_labels_ = label_centroids(E, Yc), E[issue], Yc[issue]
            F = np.concatenate([feats.pairs[rows], leave_group_out_label_features(E, Yc, groups)], axis=2)
            self._fit_catalog_scorer(X, F, Y, w, groups)
        self.layout_ = feats.layout
        nc, npz = len(catalog.category_ids), len(catalog.phase_ids)
        self.card_ = {
            "format": FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "base_model": enc.name,
            "base_model_sha256": enc.base_sha256(),
            "fine_tuned": bool(cfg.fine_tune and not enc.is_hashing),
            "catalog": catalog.tag,
            "catalog_fingerprint": catalog.fingerprint(),
            "data_sha256": data_hash,
            "training": {
                "interviews": len(set(groups)),
                "examples": len(rows),
                "issue_turns": int(Y[:, nc + npz].sum()),
                "label_sources": sorted({str(t.label_source) for t in ex_turns}),
                "seconds": round(time.time() - t0, 1),
            },
            "seed": cfg.seed,
            "thresholds": self._threshold_dict(),
            "metrics": getattr(self, "_inner_metrics", {}),
        }
        log.info("trained on %d turns of %d interviews in %.0fs", len(rows), len(set(groups)), time.time() - t0)
        return self

    def _tune(self, X, Y, w, M, groups, progress: bool = False) -> np.ndarray:
        """Pick the L2 strength (``l2_grid``) and per-label thresholds from out-of-fold
        probabilities of interview-grouped inner folds of the training data only."""
        from dataclasses import replace

        cfg = self.config
        nc, npz = len(self.catalog_.category_ids), len(self.catalog_.phase_ids)
        L = Y.shape[1]
        self.l2_ = cfg.l2
        if len(set(groups)) < 2:
            log.warning("one training interview only: thresholds default to 0.5")
            self._inner_metrics = {}
            self._oof_heads = None
            return np.full(nc + npz + 1, 0.5, dtype=np.float32)
        folds = _group_folds(groups, cfg.threshold_folds, cfg.seed)
        gold = np.concatenate([Y[:, : nc + npz], Y[:, L - 1 : L]], axis=1)
        from tqdm.auto import tqdm

        best = None
        grid = cfg.l2_grid or (cfg.l2,)
        bar = tqdm(total=len(grid) * len(folds), desc="inner folds", disable=not progress, leave=False)
        for l2 in grid:
            c = replace(cfg, l2=l2)
            oof = np.zeros((len(X), nc + npz + 1), dtype=np.float32)
            for test in folds:
                train = np.setdiff1d(np.arange(len(X)), test)
                h = fit_heads(X[train], Y[train], w[train], M[train], c)
                pr = head_probs(h, X[test], nc, npz, cfg.gate)
                oof[test] = np.concatenate([pr["categories"], pr["phases"], pr["mitigation"][:, None]], axis=1)
                bar.update(1)
            th = np.concatenate([
                tune_thresholds(gold[:, :nc], oof[:, :nc], cfg.min_threshold_support),
                tune_thresholds(gold[:, nc : nc + npz], oof[:, nc : nc + npz], cfg.min_threshold_support),
                tune_thresholds(gold[:, -1:], oof[:, -1:], 1),
            ])
            pred = oof >= th
            m = {"categories": round(_micro_f1(gold[:, :nc], pred[:, :nc]), 4),
                 "phases": round(_micro_f1(gold[:, nc : nc + npz], pred[:, nc : nc + npz]), 4),
                 "mitigation": round(_micro_f1(gold[:, -1:], pred[:, -1:]), 4)}
            log.debug("l2=%s inner micro-F1 %s", l2, m)
            score = m["categories"] + m["phases"]
            if best is None or score > best[0] + 1e-9:
                best = (score, l2, th, m, oof)
        bar.close()
        _, self.l2_, th, m, self._oof_heads = best
        # inner-CV figures for the card (they also picked l2 and the thresholds: optimistic)
        self._inner_metrics = {"inner_cv_micro_f1_optimistic": m, "l2": self.l2_}
        return th

    def _fit_catalog_scorer(self, X: np.ndarray, F: np.ndarray, Y: np.ndarray, w: np.ndarray,
                            groups: Sequence[str]) -> None:
        """Fit the shared pair scorer and the phase stacker; their thresholds come from
        out-of-fold scores of the same interview-grouped inner folds as the heads'."""
        from extractor.catalog_scorer import PairScorer, PhaseStacker, phase_map

        cfg = self.config
        nc, npz = len(self.catalog_.category_ids), len(self.catalog_.phase_ids)
        Yc, Yp = Y[:, :nc], Y[:, nc : nc + npz]
        A = phase_map(self.catalog_)
        if self._oof_heads is None:  # one interview: no folds, keep the 0.5 thresholds
            self.scorer_ = PairScorer.fit(F, Yc, w, C=cfg.pair_c_grid[0], seed=cfg.seed)
            head_phase = head_probs(self.heads_, X, nc, npz, cfg.gate)["phases"]
            self.stacker_ = PhaseStacker.fit(A, self.scorer_.predict_proba(F), head_phase, Yp, w, seed=cfg.seed)
            return
        folds = _group_folds(groups, cfg.threshold_folds, cfg.seed)
        best = None
        for C in cfg.pair_c_grid:
            oof = np.zeros_like(Yc)
            for test in folds:
                train = np.setdiff1d(np.arange(len(F)), test)
                oof[test] = PairScorer.fit(F[train], Yc[train], w[train], C=C, seed=cfg.seed).predict_proba(F[test])
            th = tune_thresholds(Yc, oof, cfg.min_threshold_support)
            score = _micro_f1(Yc, oof >= th)
            log.debug("pair scorer C=%s inner categories micro-F1 %.3f", C, score)
            if best is None or score > best[0] + 1e-9:
                best = (score, C, oof)
        _, C, oof_cat = best
        self.scorer_ = PairScorer.fit(F, Yc, w, C=C, seed=cfg.seed)
        self._inner_metrics["pair_c"] = C
        oof_head_phase = self._oof_heads[:, nc : nc + npz]
        oof_phase = np.zeros_like(Yp)
        for test in folds:
            train = np.setdiff1d(np.arange(len(F)), test)
            st = PhaseStacker.fit(A, oof_cat[train], oof_head_phase[train], Yp[train], w[train], seed=cfg.seed)
            oof_phase[test] = st.predict_proba(oof_cat[test], oof_head_phase[test])
        self.stacker_ = PhaseStacker.fit(A, oof_cat, oof_head_phase, Yp, w, seed=cfg.seed)
        self.thresholds_[:nc] = tune_thresholds(Yc, oof_cat, cfg.min_threshold_support)
        self.thresholds_[nc : nc + npz] = tune_thresholds(Yp, oof_phase, cfg.min_threshold_support)
        m = {"categories": round(_micro_f1(Yc, oof_cat >= self.thresholds_[:nc]), 4),
             "phases": round(_micro_f1(Yp, oof_phase >= self.thresholds_[nc : nc + npz]), 4)}
        self._inner_metrics["inner_cv_micro_f1_optimistic"].update(m)

    def _threshold_dict(self) -> dict[str, float]:
        ids = [*self.catalog_.category_ids, *self.catalog_.phase_ids, MITIGATION]
        return {k: round(float(v), 4) for k, v in zip(ids, self.thresholds_)}

    # -- prediction --
    def _probs_from_features(self, feats: Features) -> dict[str, np.ndarray]:
        nc, npz = len(self.catalog_.category_ids), len(self.catalog_.phase_ids)
        pr = head_probs(self.heads_, feats.X, nc, npz, self.config.gate)
        if self.config.category_scorer == "catalog":
            from extractor.catalog_scorer import label_features

            E = feats.X[:, slice(*self.layout_["text"])]
            F = np.concatenate([feats.pairs, label_features(E, self.centroids_, self.exemplars_,
                                                            self.exemplar_labels_)], axis=2)
            pr["categories"] = self.scorer_.predict_proba(F)
            pr["phases"] = self.stacker_.predict_proba(pr["categories"], pr["phases"])
        return pr

    def predict_proba(self, turns: Sequence[Turn]) -> dict[str, np.ndarray]:
        """Probabilities per interviewee turn of ``turns`` (in order):
        ``categories`` (n, n_cat), ``phases`` (n, n_phase), ``mitigation`` (n,)."""
        self._check_fitted()
        pr = self._probs_from_features(self._features(list(turns)))
        return {k: pr[k] for k in ("categories", "phases", "mitigation")}

    def predict(self, turns: Sequence[Turn], progress: bool = False, evidence: bool = True,
                batch_size: int = 256) -> list[Prediction]:
        """One :class:`Prediction` per interviewee turn, with every label's score and, per
        predicted category, the sentence that supports it most."""
        self._check_fitted()
        turns = list(turns)
        cats, phases = self.catalog_.category_ids, self.catalog_.phase_ids
        nc, npz = len(cats), len(phases)
        th = self.thresholds_
        tag = self.model_name
        out: list[Prediction] = []
        from tqdm.auto import tqdm

        ie = [i for i, t in enumerate(turns) if t.is_interviewee]
        bar = tqdm(total=len(ie), desc="predicting", unit="turn", disable=not progress)
        # batches of interviewee turns, each with the neighbours it needs for context
        w = self.config.context_window
        for s in range(0, len(ie), batch_size):
            chunk = ie[s : s + batch_size]
            lo, hi = max(0, chunk[0] - w), min(len(turns), chunk[-1] + w + 1)
            window = turns[lo:hi]
            feats = self._features(window)
            keep = [k for k, i in enumerate(feats.index) if chunk[0] <= lo + i <= chunk[-1]]
            pr = self._probs_from_features(feats)
            for k in keep:
                t = window[feats.index[k]]
                pc, pp, pm = pr["categories"][k], pr["phases"][k], float(pr["mitigation"][k])
                got = tuple(c for j, c in enumerate(cats) if pc[j] >= th[j])
                got_p = tuple(p for j, p in enumerate(phases) if pp[j] >= th[nc + j])
                scores = {c: round(float(pc[j]), 4) for j, c in enumerate(cats)}
                scores.update({p: round(float(pp[j]), 4) for j, p in enumerate(phases)})
                scores[MITIGATION] = round(pm, 4)
                ev = self._evidence(feats, k, got) if evidence else {}
                out.append(Prediction(interview=t.interview, turn=t.turn, id=t.id, categories=got, phases=got_p,
                                      mitigation=bool(pm >= th[nc + npz]), scores=scores, evidence=ev, text=t.text,
                                      question=t.question, model=tag))
            bar.update(len(keep))
            self._get_encoder().clear()  # bound memory on long inputs
        bar.close()
        return out

    def _evidence(self, feats: Features, k: int, categories: Sequence[str]) -> dict[str, str]:
        """Per category, the sentence that matches its catalog text best (description plus
        best prototype) or, with per-category heads, that its head and description favour."""
        if not categories:
            return {}
        sents, S = feats.sentences[k], feats.sent_emb[k]
        if len(sents) == 1:
            return {c: sents[0] for c in categories}
        a, b = self.layout_["text"]
        heads = self.heads_
        ids = self.catalog_.category_ids
        protos = getattr(self, "protos_", None)
        out = {}
        for c in categories:
            j = ids.index(c)
            if protos is not None:
                score = S @ self.desc_[0][j] + (S @ protos[j].T).max(axis=1)
            else:
                w_text = heads.W[j, a:b] / heads.scale[a:b]
                score = S @ w_text
                score = score / (np.abs(score).max() + 1e-9) + S @ self.desc_[0][j]
            out[c] = sents[int(np.argmax(score))]
        return out

    @property
    def model_name(self) -> str:
        card = getattr(self, "card_", {})
        return f"qi-classifier:{card.get('base_model', '?')}:{card.get('catalog', '?')}:{card.get('data_sha256', '')[:8]}"

    # -- persistence --
    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically (temp dir + rename); refuses to overwrite a
        non-empty directory that is not a model of ours."""
        from safetensors.numpy import save_file

        from extractor.catalog import save_catalog
        from extractor.jsonl import write_json

        self._check_fitted()
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not (path / MANIFEST).exists():
            raise ModelError(f"{path}: expected an empty or model directory to write to, found other files")
        path.parent.mkdir(parents=True, exist_ok=True)
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            h = self.heads_
            tensors = {"W": h.W, "b": h.b, "mean": h.mean, "scale": h.scale, "thresholds": self.thresholds_,
                       "cat_desc": self.desc_[0], "phase_desc": self.desc_[1]}
            if self.config.category_scorer == "catalog":
                sc, st = self.scorer_, self.stacker_
                tensors.update({
                    "protos": np.concatenate(self.protos_), "centroids": self.centroids_,
                    "exemplars": self.exemplars_, "exemplar_labels": self.exemplar_labels_,
                    "proto_owner": np.repeat(np.arange(len(self.protos_)), [len(p) for p in self.protos_]),
                    "pair_coef": sc.coef, "pair_intercept": np.array([sc.intercept]), "pair_mean": sc.mean,
                    "pair_scale": sc.scale, "log_prior": sc.log_prior,
                    "phase_map": st.A, "phase_coef": st.coef, "phase_intercept": st.intercept})
            save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
                      str(tmp / HEADS_FILE), metadata={"format": FORMAT})
            enc = self._get_encoder()
            if enc.adapter_config is not None:
                from safetensors.torch import save_file as save_torch

                save_torch(enc.adapter_state(), str(tmp / ADAPTER_FILE), metadata={"format": FORMAT})
            write_json(tmp / CONFIG_FILE, {"format": FORMAT, "config": self.config.to_dict(),
                                           "layout": self.layout_, "adapter": enc.adapter_config,
                                           "labels": {"categories": self.catalog_.category_ids,
                                                      "phases": self.catalog_.phase_ids}})
            write_json(tmp / CARD_FILE, self.card_)
            save_catalog(self.catalog_, tmp / CATALOG_FILE)
            from extractor.embed import file_sha256

            manifest = {"format": FORMAT, "files": {
                p.name: {"sha256": file_sha256(p), "bytes": p.stat().st_size}
                for p in sorted(tmp.iterdir()) if p.is_file()}}
            write_json(tmp / MANIFEST, manifest)
            if path.exists():
                import shutil

                old = path.with_name(f".{path.name}.old")
                if old.exists():
                    shutil.rmtree(old)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old)
            else:
                os.replace(tmp, path)
            os.chmod(path, 0o755)
            for f in path.iterdir():
                os.chmod(f, 0o644)
        except BaseException:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("saved model to %s", path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "IssueClassifier":
        """Load a model directory written by :meth:`save`; every file is checked against the
        manifest first, so a tampered or truncated file raises :class:`ModelError`."""
        path = Path(path)
        meta = verify_model_dir(path)
        try:
            cfg_doc = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
            card = json.loads((path / CARD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelError(f"{path}: expected readable JSON model files, found {e}") from None
        if cfg_doc.get("format") != FORMAT:
            raise ModelError(f"{path / CONFIG_FILE}: expected format {FORMAT}, found {cfg_doc.get('format')!r}")
        # models written before the catalog scorer existed have per-category heads only
        cfg = ClassifierConfig.from_dict({"category_scorer": "heads", **cfg_doc["config"]})
        if device:
            cfg.device = device
        try:
            catalog = load_catalog(path / CATALOG_FILE)
        except Exception as e:
            raise ModelError(f"{path / CATALOG_FILE}: the model's catalog does not load ({e})") from None
        labels = cfg_doc.get("labels", {})
        if labels.get("categories") != catalog.category_ids or labels.get("phases") != catalog.phase_ids:
            raise ModelError(f"{path}: the model's labels do not match its catalog snapshot")
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            t = load_file(str(path / HEADS_FILE))
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelError(f"{path / HEADS_FILE}: expected a safetensors file, found {e}") from None
        self = cls(catalog=catalog, config=cfg)
        self.catalog_ = catalog
        L = len(catalog.category_ids) + len(catalog.phase_ids) + 2
        self.heads_ = Heads(W=t["W"], b=t["b"], mean=t["mean"], scale=t["scale"])
        if self.heads_.W.shape[0] != L or t["thresholds"].shape[0] != L - 1:
            raise ModelError(f"{path / HEADS_FILE}: expected {L} heads, found {self.heads_.W.shape[0]}")
        self.thresholds_ = t["thresholds"]
        self.desc_ = (t["cat_desc"], t["phase_desc"])
        self.protos_ = None
        if cfg.category_scorer == "catalog":
            from extractor.catalog_scorer import N_LABEL_FEATURES, N_PAIR_FEATURES, PairScorer, PhaseStacker

            try:
                owner = t["proto_owner"].astype(int)
                self.protos_ = [t["protos"][owner == j] for j in range(len(catalog.category_ids))]
                self.centroids_ = t["centroids"]
                self.exemplars_, self.exemplar_labels_ = t["exemplars"], t["exemplar_labels"]
                self.scorer_ = PairScorer(coef=t["pair_coef"], intercept=float(t["pair_intercept"][0]),
                                          mean=t["pair_mean"], scale=t["pair_scale"], log_prior=t["log_prior"])
                self.stacker_ = PhaseStacker(A=t["phase_map"], coef=t["phase_coef"], intercept=t["phase_intercept"])
            except KeyError as e:
                raise ModelError(f"{path / HEADS_FILE}: expected the catalog scorer's tensor {e}, found none") from None
            n_weights = N_PAIR_FEATURES + N_LABEL_FEATURES + 1
            if self.scorer_.coef.shape[0] != n_weights or any(len(p) == 0 for p in self.protos_):
                raise ModelError(f"{path / HEADS_FILE}: expected {n_weights} pair weights and prototypes "
                                 f"for every category, found {self.scorer_.coef.shape[0]} weights")
        self.layout_ = cfg_doc["layout"]
        self.card_ = card
        enc = self._get_encoder()
        want = card.get("base_model_sha256")
        if want and not enc.is_hashing:
            got = enc.base_sha256()
            if got != want:
                raise ModelError(f"{path}: expected base encoder {card.get('base_model')} with SHA-256 {want[:12]}..., "
                                 f"found {got[:12]}... at {enc.path}; install the base model it was trained on")
        if cfg_doc.get("adapter"):
            if ADAPTER_FILE not in meta["files"]:
                raise ModelError(f"{path}: config names a LoRA adapter but {ADAPTER_FILE} is missing")
            from safetensors.torch import load_file as load_torch

            try:
                state = load_torch(str(path / ADAPTER_FILE))
            except (SafetensorError, OSError, ValueError) as e:
                raise ModelError(f"{path / ADAPTER_FILE}: expected a safetensors file, found {e}") from None
            enc.attach_adapter(cfg_doc["adapter"], state, train=False)
        return self


def verify_model_dir(path: Path) -> dict[str, Any]:
    """Check every file of a model directory against its SHA-256 manifest."""
    from extractor.embed import file_sha256

    if not path.is_dir():
        raise ModelError(f"{path}: expected a model directory, found {'a file' if path.exists() else 'nothing'}"
                         "; train one with `extractor train`")
    mpath = path / MANIFEST
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        files = manifest["files"]
        assert isinstance(files, dict)
    except FileNotFoundError:
        raise ModelError(f"{path}: expected {MANIFEST} in the model directory, found none; "
                         "is this a model written by `extractor train`?") from None
    except (ValueError, KeyError, AssertionError, TypeError):
        raise ModelError(f"{mpath}: expected a JSON manifest of the model files, found a damaged file") from None
    for name in (CONFIG_FILE, CARD_FILE, CATALOG_FILE, HEADS_FILE):
        if name not in files:
            raise ModelError(f"{mpath}: expected {name} in the manifest, found it missing")
    for name, info in files.items():
        p = path / name
        if Path(name).name != name:
            raise ModelError(f"{mpath}: expected plain file names, found {name!r}")
        if not p.is_file():
            raise ModelError(f"{p}: expected a model file listed in the manifest, found nothing")
        size = p.stat().st_size
        if size != info.get("bytes"):
            raise ModelError(f"{p}: expected {info.get('bytes')} bytes, found {size}; the file is truncated or "
                             "was modified, retrain or restore the model")
        if file_sha256(p) != info.get("sha256"):
            raise ModelError(f"{p}: expected SHA-256 {str(info.get('sha256'))[:12]}... from the manifest, found "
                             "different content; the file was modified, retrain or restore the model")
    return manifest


def _micro_f1(Y: np.ndarray, P: np.ndarray) -> float:
    Y, P = Y.astype(bool), P.astype(bool)
    tp = (Y & P).sum()
    d = Y.sum() + P.sum()
    return float(2 * tp / d) if d else 0.0


def predictions_summary(preds: Iterable[Prediction]) -> dict[str, int]:
    """How many turns got each category (for logs and reports)."""
    counts: dict[str, int] = {}
    for p in preds:
        for c in p.categories:
            counts[c] = counts.get(c, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
