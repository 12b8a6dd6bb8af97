"""The turn encoder: a sentence-transformers model (optionally with a LoRA adapter) that gives,
in ONE pass per turn, the turn's embedding and its sentences' embeddings.

It satisfies :class:`extractor.embed.Embedder` (``name``, ``dim``, ``encode``); the classifier
also accepts any other ``Embedder`` (e.g. :class:`~extractor.embed.HashingEmbedder` in tests),
whose sentences are then encoded one by one and which cannot be fine-tuned.

With ``cache_dir`` the vectors also go to an on-disk :class:`~extractor.embed.EmbeddingCache`
keyed by :attr:`TurnEncoder.fingerprint` (a fine-tuned adapter changes it, so a tuned encoder
never reuses the frozen base's vectors): texts under their own key, the pooled vector of a
sentence under ``text + "\x00" + "a:z"`` of its span. Share one encoder across many fits
(``IssueClassifier(embedder=TurnEncoder(cache_dir=...))``) and later runs read every vector back
without loading the model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from extractor.embed import Embedder, EmbeddingCache, SentenceTransformerEmbedder, default_model_path, file_sha256
from extractor.errors import ModelError

Span = tuple[int, int]


def tokenize_batch(st, texts: list[str]) -> dict:
    """sentence-transformers 6 renamed ``tokenize`` to ``preprocess``."""
    return st.preprocess(texts) if hasattr(st, "preprocess") else st.tokenize(texts)


class TurnEncoder:
    """sentence-transformers encoder with an in-memory cache, sentence pooling and LoRA;
    ``cache_dir`` (None = none) adds an on-disk :class:`~extractor.embed.EmbeddingCache`."""

    #: turns pooled between two writes to the disk cache (a crash loses at most this many)
    flush_every = 512

    def __init__(self, base_model: str | None = None, device: str | None = None, max_length: int = 256,
                 cache_dir: str | Path | None = None):
        self.base = SentenceTransformerEmbedder(base_model, device=device, max_seq_length=max_length)
        self.max_length = max_length
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._disk: EmbeddingCache | None = None
        self.adapter_config: dict[str, Any] | None = None
        self._cache: dict[str, np.ndarray] = {}
        self._sent_cache: dict[str, np.ndarray] = {}
        weights = self.base.path / "model.safetensors"
        if not weights.is_file():
            raise ModelError(f"{self.base.path}: expected model.safetensors in the base model directory, found none;"
                             " only safetensors weights are loaded (never pickled .bin files)")
        self._weights = weights
        self._base_sha: str | None = None
        self._adapter_sha = ""

    # -- Embedder protocol --
    @property
    def name(self) -> str:
        return "all-MiniLM-L6-v2" if self.base.path == default_model_path() else str(self.base.path)

    @property
    def dim(self) -> int:
        disk = self.disk_cache()
        if disk is not None and disk.dim is not None:  # a fully cached run never loads the model
            return disk.dim
        return self.base.dim

    def disk_cache(self) -> EmbeddingCache | None:
        """The on-disk cache of the current :attr:`fingerprint` (None without ``cache_dir``)."""
        if self.cache_dir is None:
            return None
        fp = self.fingerprint
        if self._disk is None or self._disk.fingerprint != fp:
            self._disk = EmbeddingCache(self.cache_dir, fp)
        return self._disk

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """L2-normalised embeddings; empty texts get a zero vector; each text is encoded once."""
        todo = sorted({t for t in texts if t and t not in self._cache}, key=len)
        if todo:
            disk = self.disk_cache()
            vecs = (self._encode_st(todo, batch_size) if disk is None
                    else disk.encode(todo, lambda miss: self._encode_st(miss, batch_size)))
            for t, v in zip(todo, vecs):
                self._cache[t] = v
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            if t:
                out[i] = self._cache[t]
        return out

    # -- identity --
    def base_sha256(self) -> str:
        if self._base_sha is None:
            self._base_sha = file_sha256(self._weights)
        return self._base_sha

    @property
    def fingerprint(self) -> str:
        """Changes whenever the encoder's outputs can change (base weights, adapter, length)."""
        return hashlib.sha256(f"{self.base_sha256()}:{self._adapter_sha}:{self.max_length}".encode()).hexdigest()[:16]

    @property
    def st(self):
        return self.base.model

    def transformer(self):
        """The Hugging Face model inside the sentence-transformers pipeline (where LoRA goes)."""
        module = self.st[0]
        return module.model if hasattr(module, "model") else module.auto_model

    # -- adapter --
    def attach_adapter(self, cfg: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> Any:
        """Inject a LoRA adapter (fresh, or with saved weights); only its weights stay trainable."""
        from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict

        model = self.transformer()
        if self.adapter_config is None:
            lcfg = LoraConfig(r=cfg["r"], lora_alpha=cfg["alpha"], lora_dropout=cfg.get("dropout", 0.0),
                              target_modules=list(cfg["target_modules"]), bias="none")
            model = inject_adapter_in_model(lcfg, model)
        for n, p in model.named_parameters():
            p.requires_grad = "lora_" in n
        if state is not None:
            result = set_peft_model_state_dict(model, dict(state))
            unexpected = list(getattr(result, "unexpected_keys", []) or [])
            missing = [k for k in getattr(result, "missing_keys", []) or [] if "lora_" in k]
            if unexpected or missing:
                raise ModelError(f"adapter weights do not fit the base model: {len(unexpected)} unexpected and "
                                 f"{len(missing)} missing tensors, e.g. {(unexpected or missing)[0]}")
        model.eval()
        self.adapter_config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
        self.changed()
        return model

    def adapter_state(self) -> dict[str, Any]:
        from peft import get_peft_model_state_dict

        return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.transformer()).items()}

    def clone(self) -> TurnEncoder:
        """A new encoder of the same base, device, length and cache, with a copy of this one's
        adapter: training the copy leaves this one as it was."""
        other = TurnEncoder(str(self.base.path), self.base.device, self.max_length, self.cache_dir)
        if self.adapter_config is not None:
            other.attach_adapter(self.adapter_config, self.adapter_state())
        return other

    def declared_dim(self) -> int | None:
        """The embedding width the base model's config.json declares (None when it does not say,
        or when a projection layer follows the transformer): known without loading the weights."""
        if any(self.base.path.glob("*_Dense")):
            return None
        try:
            from extractor.classify.store import read_json_file

            v = read_json_file(self.base.path / "config.json", 1 << 20).get("hidden_size")
        except (ModelError, AttributeError):
            return None
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def changed(self) -> None:
        """Forget every cached embedding (the adapter's weights changed)."""
        self._cache.clear()
        self._sent_cache.clear()
        if self.adapter_config is not None:
            h = hashlib.sha256(json.dumps(self.adapter_config, sort_keys=True).encode())
            for k, v in sorted(self.adapter_state().items()):
                h.update(k.encode())
                h.update(v.float().numpy().tobytes())
            self._adapter_sha = h.hexdigest()

    def clear(self) -> None:
        """Bound memory between prediction batches (the disk cache's index stays loaded)."""
        self._cache.clear()
        self._sent_cache.clear()

    # -- encoding --
    def _encode_st(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        st = self.st
        st.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                feats = tokenize_batch(st, texts[i: i + batch_size])
                feats = {k: (v.to(st.device) if hasattr(v, "to") else v) for k, v in feats.items()}
                emb = torch.nn.functional.normalize(st(feats)["sentence_embedding"], dim=-1)
                out.append(emb.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def encode_turns(self, texts: Sequence[str], spans: Sequence[Sequence[Span]], *, batch_size: int = 32,
                     progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """Turn embeddings and, per turn, one embedding per sentence span: the mean of the turn's
        contextual token vectors inside the span (what mean pooling does for the whole turn).
        Sentences past ``max_length`` word pieces are encoded on their own."""
        keys = [hashlib.sha1((t + "\x00" + repr(list(s))).encode()).hexdigest() for t, s in zip(texts, spans)]
        todo, seen = [], set()
        for i in sorted(range(len(texts)), key=lambda i: len(texts[i])):
            if (keys[i] not in self._sent_cache or texts[i] not in self._cache) and keys[i] not in seen:
                seen.add(keys[i])
                todo.append(i)
        disk = self.disk_cache() if todo else None
        if disk is not None:
            todo = [i for i in todo if not self._read_pooled(disk, texts[i], spans[i], keys[i])]
        if todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="encoding turns", unit="turn", disable=not progress, leave=False)
            step = self.flush_every if disk is not None else len(todo)
            for c in range(0, len(todo), step):
                chunk = todo[c: c + step]
                ct, cs, ck = [texts[i] for i in chunk], [spans[i] for i in chunk], [keys[i] for i in chunk]
                self._encode_pooled(ct, cs, ck, batch_size, bar)
                if disk is not None:
                    self._write_pooled(disk, ct, cs, ck)
            bar.close()
        E = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        return E, [self._sent_cache[k] for k in keys]

    @staticmethod
    def _sentence_keys(text: str, spans: Sequence[Span]) -> list[str]:
        """Disk-cache keys of a turn's sentence vectors: they depend on the whole turn (context)."""
        return [f"{text}\x00{a}:{z}" for a, z in spans]

    def _read_pooled(self, disk: EmbeddingCache, text: str, spans: Sequence[Span], key: str) -> bool:
        """Fill the memory caches of one turn from disk; False when any of its vectors is missing."""
        got = disk.get([text, *self._sentence_keys(text, spans)])
        found = [v for v in got if v is not None]
        if len(found) < len(got):
            return False
        self._cache[text] = found[0]
        self._sent_cache[key] = (np.stack(found[1:]) if len(found) > 1
                                 else np.zeros((0, len(found[0])), np.float32))
        return True

    def _write_pooled(self, disk: EmbeddingCache, texts: list[str], spans: list[Sequence[Span]],
                      keys: list[str]) -> None:
        """One put for the turn and sentence vectors of a chunk of turns."""
        names, vecs = [], []
        for t, ss, k in zip(texts, spans, keys):
            names += [t, *self._sentence_keys(t, ss)]
            vecs += [self._cache[t][None], self._sent_cache[k]]
        disk.put(names, np.concatenate(vecs))

    def _encode_pooled(self, texts: list[str], spans: list[Sequence[Span]], keys: list[str], batch_size: int,
                       bar: Any = None) -> None:
        import torch

        st = self.st
        st.eval()
        tok, model = st.tokenizer, self.transformer()
        missing: list[tuple[str, int, str]] = []
        with torch.inference_mode():
            for b in range(0, len(texts), batch_size):
                bt = texts[b: b + batch_size]
                enc = tok(bt, padding=True, truncation=True, max_length=self.max_length,
                          return_offsets_mapping=True, return_tensors="pt")
                offsets = enc.pop("offset_mapping").numpy()
                inputs = {k: v.to(st.device) for k, v in enc.items()
                          if k in ("input_ids", "attention_mask", "token_type_ids")}
                H = model(**inputs).last_hidden_state.float().cpu().numpy()
                mask = enc["attention_mask"].numpy().astype(np.float32)
                for r, text in enumerate(bt):
                    m = mask[r][:, None]
                    v = (H[r] * m).sum(0) / max(m.sum(), 1.0)
                    self._cache[text] = (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)
                    ss = spans[b + r]
                    out = np.zeros((len(ss), H.shape[2]), dtype=np.float32)
                    starts, ends = offsets[r][:, 0], offsets[r][:, 1]
                    real = (mask[r] > 0) & (ends > starts)
                    for j, (a, z) in enumerate(ss):
                        sel = real & (starts >= a) & (ends <= z)
                        if sel.any():
                            v = H[r][sel].mean(0)
                            out[j] = v / (np.linalg.norm(v) or 1.0)
                        else:
                            missing.append((keys[b + r], j, text[a:z]))
                    self._sent_cache[keys[b + r]] = out
                if bar is not None:
                    bar.update(len(bt))
        if missing:
            vecs = self._encode_st([m[2] for m in missing], batch_size)
            for (k, j, _), v in zip(missing, vecs):
                self._sent_cache[k][j] = v


def encode_turns(embedder: Embedder, texts: Sequence[str], spans: Sequence[Sequence[Span]], *, batch_size: int = 32,
                 progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """Turn and sentence embeddings from any :class:`Embedder` (pooled in one pass where the
    embedder supports it)."""
    if isinstance(embedder, TurnEncoder):
        return embedder.encode_turns(texts, spans, batch_size=batch_size, progress=progress)
    E = embedder.encode(list(texts), batch_size=batch_size)
    return E, [embedder.encode([t[a:z] for a, z in ss]) for t, ss in zip(texts, spans)]


def embedder_id(embedder: Embedder) -> str:
    """SHA-256 of the base weights where there are any (a model names the encoder it needs)."""
    return embedder.base_sha256() if isinstance(embedder, TurnEncoder) else f"{embedder.name}-{embedder.dim}"
