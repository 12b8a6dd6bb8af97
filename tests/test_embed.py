"""Tests for extractor.embed: the hashing fake, the real MiniLM, model paths."""

from __future__ import annotations

import numpy as np
import pytest

from extractor.embed import HashingEmbedder, default_model_path, file_sha256, pick_device, resolve_model_path
from extractor.errors import ModelError


def test_hashing_embedder_is_deterministic_and_normalised():
    texts = ["Data drift hurt our model.", "Data drift hurt our model.", "Totally different words here", ""]
    a = HashingEmbedder(dim=32).encode(texts)
    b = HashingEmbedder(dim=32).encode(texts)
    assert a.shape == (4, 32) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a[:3], axis=1), 1.0)
    assert np.all(a[3] == 0)  # nothing to hash: zero vector, not NaN
    assert a[0] @ a[1] == pytest.approx(1.0)


def test_hashing_embedder_similarity_follows_shared_words():
    e = HashingEmbedder(dim=256)
    v = e.encode(["missing values in the data", "the data has missing values", "kubernetes deployment latency"])
    assert v[0] @ v[1] > v[0] @ v[2]
    assert e.encode([]).shape == (0, 256)


def test_resolve_model_path_default_aliases():
    for alias in (None, "", "default", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        assert resolve_model_path(alias) == default_model_path()
    assert (default_model_path() / "config.json").exists()


def test_resolve_model_path_errors(tmp_path):
    with pytest.raises(ModelError, match="expected a local model directory, found nothing; models are never downloaded"):
        resolve_model_path(tmp_path / "nope")
    f = tmp_path / "file.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match="found a file"):
        resolve_model_path(f)
    # a hub name is not fetched: it is just a missing local path
    with pytest.raises(ModelError, match="never downloaded"):
        resolve_model_path("bert-base-uncased")
    assert resolve_model_path(tmp_path) == tmp_path


def test_pick_device_passes_explicit_choice():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") in ("cpu", "cuda")


def test_file_sha256(tmp_path):
    import hashlib

    p = tmp_path / "x"
    p.write_bytes(b"abc" * 1000)
    assert file_sha256(p, chunk=7) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_real_minilm_encodes_two_sentences(encoder):
    v = encoder.encode(["Our model drifted after COVID.", "We retrain every week to handle drift."])
    assert v.shape == (2, 384) and encoder.dim == 384
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert 0.2 < float(v[0] @ v[1]) < 0.99  # related but not identical
    assert encoder.name == "all-MiniLM-L6-v2"
    assert encoder.encode([]).shape == (0, 384)
