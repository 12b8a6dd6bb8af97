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


# --- the on-disk cache and the factory -------------------------------------------------


class _Counting(HashingEmbedder):
    def __init__(self):
        super().__init__(dim=16)
        self.calls = []

    def encode(self, texts, **kw):
        self.calls.append(list(texts))
        return super().encode(texts, **kw)


def test_embedding_cache_round_trip_encodes_each_text_once(tmp_path):
    from extractor.embed import CachedEmbedder, EmbeddingCache

    inner = _Counting()
    e = CachedEmbedder(inner, EmbeddingCache(tmp_path, inner.fingerprint))
    a = e.encode(["alpha beta gamma", "delta epsilon", "alpha beta gamma"])
    assert inner.calls == [["alpha beta gamma", "delta epsilon"]]  # duplicates encoded once
    assert np.array_equal(a, HashingEmbedder(dim=16).encode(["alpha beta gamma", "delta epsilon", "alpha beta gamma"]))
    # a new process (new objects) reads the vectors back and never needs the encoder, not even for dim
    inner2 = _Counting()
    e2 = CachedEmbedder(inner2, EmbeddingCache(tmp_path, inner2.fingerprint))
    assert e2.dim == 16
    b = e2.encode(["delta epsilon", "alpha beta gamma", "new words here"])
    assert np.array_equal(b[0], a[1]) and np.array_equal(b[1], a[0])
    assert inner2.calls == [["new words here"]]
    assert (e2.cache.hits, e2.cache.misses) == (2, 1)
    assert e2.encode([]).shape == (0, 16)


def test_embedding_cache_is_keyed_by_encoder_fingerprint(tmp_path):
    from extractor.embed import EmbeddingCache

    a = EmbeddingCache(tmp_path, "encoder-a")
    a.put(["same text"], np.ones((1, 4), np.float32) / 2)
    b = EmbeddingCache(tmp_path, "encoder-b")
    assert b.get(["same text"]) == [None]
    assert np.array_equal(EmbeddingCache(tmp_path, "encoder-a").get(["same text"])[0], np.full(4, 0.5, np.float32))


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 truncated zip", b"not numpy at all"])
def test_a_corrupt_shard_is_ignored_and_rewritten(tmp_path, damage):
    from extractor.embed import CachedEmbedder, EmbeddingCache

    inner = _Counting()
    e = CachedEmbedder(inner, EmbeddingCache(tmp_path, inner.fingerprint))
    good = e.encode(["data drift everywhere"])
    e.encode(["another text entirely"])  # a second shard, left intact
    first, second = sorted(tmp_path.rglob("*.npz"), key=lambda p: p.stat().st_mtime_ns)
    first.write_bytes(damage)  # e.g. a crash mid-write on a filesystem without ordered writes
    inner2 = _Counting()
    e2 = CachedEmbedder(inner2, EmbeddingCache(tmp_path, inner2.fingerprint))
    assert np.array_equal(e2.encode(["data drift everywhere", "another text entirely"])[0], good[0])
    assert inner2.calls == [["data drift everywhere"]]  # only the damaged shard's text is recomputed
    inner3 = _Counting()  # healed: the third run hits everything
    e3 = CachedEmbedder(inner3, EmbeddingCache(tmp_path, inner3.fingerprint))
    assert np.array_equal(e3.encode(["data drift everywhere"]), good) and inner3.calls == []


def test_a_malformed_shard_is_a_miss(tmp_path):
    from extractor.embed import EmbeddingCache

    c = EmbeddingCache(tmp_path, "fp")
    c.put(["a"], np.ones((1, 3), np.float32))
    np.savez(c.dir / "bad.npz", keys=np.array(["x", "y"]), vectors=np.ones((3, 3), np.float32))  # 2 keys, 3 rows
    np.savez(c.dir / "nan.npz", keys=np.array(["z"]), vectors=np.full((1, 3), np.nan, np.float32))
    c2 = EmbeddingCache(tmp_path, "fp")
    assert c2.get(["a"])[0] is not None
    assert not (c.dir / "bad.npz").exists() and not (c.dir / "nan.npz").exists()


def test_many_puts_are_merged_into_one_shard(tmp_path):
    from extractor.embed import EmbeddingCache

    c = EmbeddingCache(tmp_path, "fp")
    c.max_shards = 3
    for i in range(5):
        c.put([f"text {i}"], np.full((1, 2), i, np.float32))
    assert len(list(c.dir.glob("*.npz"))) <= 3
    got = EmbeddingCache(tmp_path, "fp").get([f"text {i}" for i in range(5)])
    assert [float(v[0]) for v in got] == [0, 1, 2, 3, 4]


def test_an_unwritable_cache_never_blocks_the_run(tmp_path, caplog):
    from extractor.embed import CachedEmbedder, EmbeddingCache

    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    inner = _Counting()
    e = CachedEmbedder(inner, EmbeddingCache(blocker, inner.fingerprint))
    with caplog.at_level("WARNING"):
        v = e.encode(["still works"])
        e.encode(["still works too"])
    assert v.shape == (1, 16)
    assert sum("not writable" in r.message for r in caplog.records) == 1


def test_cache_put_checks_lengths(tmp_path):
    from extractor.embed import EmbeddingCache

    with pytest.raises(ValueError, match="2 texts but 1 vectors"):
        EmbeddingCache(tmp_path, "fp").put(["a", "b"], np.ones((1, 3), np.float32))


def test_make_embedder_is_the_one_factory(tmp_path):
    from extractor.embed import CachedEmbedder, SentenceTransformerEmbedder, make_embedder

    assert isinstance(make_embedder("hashing"), HashingEmbedder)
    st = make_embedder(None)
    assert isinstance(st, SentenceTransformerEmbedder) and st._model is None  # loaded lazily
    assert st.fingerprint.startswith("st-") and st.fingerprint == make_embedder("default").fingerprint
    cached = make_embedder("hashing", cache_dir=tmp_path)
    assert isinstance(cached, CachedEmbedder) and cached.fingerprint == HashingEmbedder().fingerprint
    with pytest.raises(ModelError, match="never downloaded"):
        make_embedder("no/such/model")


def test_embedder_fingerprint_needs_a_name(tmp_path):
    from extractor.embed import embedder_fingerprint

    assert embedder_fingerprint(HashingEmbedder(8)) == "hashing-v1-8"

    class Anonymous:
        pass

    with pytest.raises(ModelError, match="expected an embedder with a fingerprint or name"):
        embedder_fingerprint(Anonymous())
