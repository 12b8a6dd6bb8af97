"""TurnEncoder's on-disk embedding cache (the real packaged MiniLM, tiny inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from extractor.classify.encoder import TurnEncoder
from extractor.classify.features import sentence_spans

TURNS = ["We had label noise in the training data. Fixing it took weeks.", "The model drifted after deployment."]
QUESTIONS = ["What went wrong with the data?", "And then?"]


def _refuse(*args, **kwargs):
    raise AssertionError("recomputed a vector that the disk cache holds")


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """An encoder that computed every vector once, with its cache directory."""
    root = tmp_path_factory.mktemp("emb")
    enc = TurnEncoder(device="cpu", cache_dir=root)
    spans = [sentence_spans(t) for t in TURNS]
    E, S = enc.encode_turns(TURNS, spans)
    Q = enc.encode(QUESTIONS)
    return root, enc, spans, E, S, Q


def test_no_cache_dir_writes_nothing(tmp_path):
    enc = TurnEncoder(device="cpu")
    assert enc.cache_dir is None and enc.disk_cache() is None


def test_second_encoder_reads_vectors_back_without_the_model(first, monkeypatch):
    root, enc, spans, E, S, Q = first
    assert len(S[0]) == 2 and len(S[1]) == 1
    again = TurnEncoder(device="cpu", cache_dir=root)
    monkeypatch.setattr(again, "_encode_st", _refuse)
    monkeypatch.setattr(again, "_encode_pooled", _refuse)
    E2, S2 = again.encode_turns(TURNS, spans)
    Q2 = again.encode(QUESTIONS)
    assert np.array_equal(E, E2) and np.array_equal(Q, Q2)
    assert all(np.array_equal(a, b) for a, b in zip(S, S2))
    assert again.base._model is None  # the dimension came from the cache's meta.json
    assert again.disk_cache().hits == (2 + 3) + 2 and again.disk_cache().misses == 0


def test_sentence_vectors_are_keyed_by_span(first, monkeypatch):
    """Other spans of the same turn are other vectors: they are computed, not read back."""
    root, enc, spans, E, S, Q = first
    again = TurnEncoder(device="cpu", cache_dir=root)
    calls = []
    real = again._encode_pooled
    monkeypatch.setattr(again, "_encode_pooled", lambda texts, *a, **k: (calls.append(texts), real(texts, *a, **k)))
    whole = [[(0, len(TURNS[0]))]]
    _, S2 = again.encode_turns(TURNS[:1], whole)
    assert calls == [TURNS[:1]] and S2[0].shape == (1, 384)
    assert not np.allclose(S2[0][0], S[0][0])


def test_encode_of_a_new_text_computes_only_that_text(first, monkeypatch):
    root, enc, spans, E, S, Q = first
    again = TurnEncoder(device="cpu", cache_dir=root)
    asked = []
    real = again._encode_st
    monkeypatch.setattr(again, "_encode_st", lambda texts, bs: (asked.append(list(texts)), real(texts, bs))[1])
    V = again.encode([QUESTIONS[0], "A brand new question?", ""])
    assert asked == [["A brand new question?"]]
    assert np.array_equal(V[0], Q[0]) and not V[2].any()


def test_damaged_shard_heals(first, monkeypatch):
    root, enc, spans, E, S, Q = first
    shards = sorted(enc.disk_cache().dir.glob("*.npz"))
    assert shards
    for p in shards:
        p.write_bytes(p.read_bytes()[:40])  # a crash mid-write
    again = TurnEncoder(device="cpu", cache_dir=root)
    E2, S2 = again.encode_turns(TURNS, spans)  # recomputed, rewritten
    assert np.allclose(E, E2, atol=1e-5)
    for p in again.disk_cache().dir.glob("*.npz"):  # damaged shards deleted or rewritten whole
        with np.load(p, allow_pickle=False) as z:
            assert len(z["keys"]) == len(z["vectors"]) > 0
    assert not all(p.exists() for p in shards)  # the questions' shard is gone (nothing rewrote it)
    third = TurnEncoder(device="cpu", cache_dir=root)
    monkeypatch.setattr(third, "_encode_pooled", _refuse)
    E3, _ = third.encode_turns(TURNS, spans)
    assert np.array_equal(E2, E3)


def test_an_adapter_changes_the_cache_key(first, monkeypatch):
    """A fine-tuned encoder never reuses the frozen base's vectors."""
    root, enc, spans, E, S, Q = first
    tuned = TurnEncoder(device="cpu", cache_dir=root)
    base_dir = tuned.disk_cache().dir
    tuned.attach_adapter({"r": 2, "alpha": 4, "target_modules": ["query", "value"]})
    assert tuned.disk_cache().dir != base_dir
    asked = []
    real = tuned._encode_st
    monkeypatch.setattr(tuned, "_encode_st", lambda texts, bs: (asked.append(list(texts)), real(texts, bs))[1])
    tuned.encode(QUESTIONS)
    assert sorted(asked[0]) == sorted(QUESTIONS)


def test_writes_are_batched(tmp_path):
    """One shard per ``flush_every`` turns (turn and sentence vectors together), not one per text."""
    enc = TurnEncoder(device="cpu", cache_dir=tmp_path)
    enc.encode_turns(TURNS, [sentence_spans(t) for t in TURNS])
    assert len(list(enc.disk_cache().dir.glob("*.npz"))) == 1
    enc2 = TurnEncoder(device="cpu", cache_dir=tmp_path / "small")
    enc2.flush_every = 1
    enc2.encode_turns(TURNS, [[(0, 5)], [(0, 5)]])
    assert len(list(enc2.disk_cache().dir.glob("*.npz"))) == 2
