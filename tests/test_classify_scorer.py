"""Pair features, the shared pair scorer and the phase stacker on tiny synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from extractor.catalog import Entry
from extractor.classify.scorer import N_PAIR_FEATURES, PairScorer, PhaseStacker, pair_features, prototype_texts


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_prototype_texts_skip_empty_and_todo():
    e = Entry("drift", "Drift", "TODO", include="", keywords=("shift", " "), examples=("It changed.",))
    assert prototype_texts(e) == ["Drift", "shift", "It changed."]


def test_pair_features_shape_and_neighbours():
    desc = np.stack([_unit([1, 0, 0]), _unit([0, 1, 0])])
    protos = [desc[:1], np.stack([_unit([0, 1, 0]), _unit([0, 0, 1])])]
    E = np.stack([_unit([1, 0, 0]), _unit([0, 0, 1]), _unit([0, 1, 0])])
    sents = [E[i : i + 1] for i in range(3)]
    zero = np.zeros_like(E)
    prev, nxt = np.array([-1, 0, -1]), np.array([1, -1, -1])  # turn 2 starts a new interview
    F = pair_features(E, sents, zero, zero, desc, protos, np.array([3, 10, 1]), prev, nxt)
    assert F.shape == (3, 2, N_PAIR_FEATURES)
    assert F[0, 0, 0] == 1.0 and F[0, 1, 0] == 0.0  # turn-description cosine
    assert F[1, 1, 8] == 1.0  # turn 1 equals the second prototype of entry 1
    assert np.allclose(F[:, :, 15], np.log1p([3, 10, 1])[:, None])  # length
    # neighbour block: previous turn's best-prototype similarity; none across interviews
    assert F[1, 0, 16] == 1.0 and F[0, 0, 16] == 0.0 and F[2, :, 16].tolist() == [0.0, 0.0]
    assert pair_features(E[:0], [], zero[:0], zero[:0], desc, protos, np.array([]), prev[:0], nxt[:0]).shape == \
        (0, 2, N_PAIR_FEATURES)


def test_pair_scorer_learns_a_shared_signal_and_ranks_an_unseen_entry():
    rng = np.random.default_rng(0)
    n, k = 300, 4
    F = rng.normal(size=(n, k, N_PAIR_FEATURES)).astype(np.float32)
    Y = (F[:, :, 0] > 1.0).astype(np.float32)
    Y[:, 3] = 0  # entry 3 has no positive example at all
    scorer = PairScorer.fit(F, Y, np.ones(n, np.float32))
    F_new = np.zeros((2, k, N_PAIR_FEATURES), np.float32)
    F_new[0, 3, 0] = 3.0  # a strong match of the unseen entry
    P = scorer.predict_proba(F_new)
    assert P.shape == (2, k)
    assert P[0, 3] > P[1, 3]  # the shared weight transfers to an entry without examples


def test_pair_scorer_degenerate_labels_give_a_constant():
    F = np.ones((5, 2, N_PAIR_FEATURES), np.float32)
    P = PairScorer.fit(F, np.zeros((5, 2)), np.ones(5)).predict_proba(F)
    assert np.allclose(P, P[0, 0]) and P[0, 0] < 0.01


def test_phase_stacker_follows_the_implied_phase():
    rng = np.random.default_rng(1)
    A = np.array([[1, 0], [0, 1]], np.float32)  # category 0 -> phase 0, category 1 -> phase 1
    P_cat = rng.uniform(0.01, 0.99, size=(400, 2))
    Y = (P_cat > 0.6).astype(np.float32)  # phases follow the categories
    P_phase = np.full((400, 2), 0.3)  # an uninformative phase head
    st = PhaseStacker.fit(A, P_cat, P_phase, Y, np.ones(400))
    out = st.predict_proba(np.array([[0.95, 0.02], [0.02, 0.95]]), np.full((2, 2), 0.3))
    assert out[0, 0] > 0.5 > out[0, 1] and out[1, 1] > 0.5 > out[1, 0]


def test_label_features_leave_the_turns_own_interview_out():
    from extractor.classify.scorer import label_centroids, label_features, leave_group_out_label_features

    E = np.stack([_unit([1, 0]), _unit([1, 0.1]), _unit([0, 1])])
    Y = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
    C = label_centroids(E, Y)
    assert np.allclose(np.linalg.norm(C, axis=1), 1.0)
    F = label_features(E, C, E, Y)
    assert F.shape == (3, 2, 3) and F[2, 1, 2] == pytest.approx(1.0)  # a labelled turn is its own neighbour
    loo = leave_group_out_label_features(E, Y, ["a", "b", "b"])
    assert loo[0, 0, 0] == pytest.approx(E[0] @ E[1])  # turn 0 sees only interview b's positive
    assert loo[1, 0, 0] == pytest.approx(E[1] @ E[0]) and loo[1, 0, 2] == pytest.approx(E[1] @ E[0])
    assert loo[1, 1, 0] == 0.0 and loo[1, 1, 2] == 0.0  # entry 1's only positive is in the turn's own interview


def test_label_memory_speaks_for_the_same_text_only():
    from extractor.classify.scorer import LabelMemory

    rng = np.random.default_rng(0)
    M = rng.normal(size=(5, 8)).astype(np.float32)
    M /= np.linalg.norm(M, axis=1, keepdims=True)
    Y = np.eye(5, 3, dtype=np.float32)
    mem = LabelMemory(E=M, Y=Y, floor=0.97)
    other = rng.normal(size=(1, 8)).astype(np.float32)
    other /= np.linalg.norm(other)
    P = np.full((3, 3), 0.2, np.float32)
    out, a = mem.blend(np.concatenate([M[:2], other]), P)
    np.testing.assert_allclose(out[:2], Y[:2], atol=1e-5)  # the same text: its labels
    assert a[2] == 0 and np.allclose(out[2], 0.2)  # an unrelated turn: the model's own scores
    empty = LabelMemory(E=np.zeros((0, 8), np.float32), Y=np.zeros((0, 3), np.float32), floor=0.97)
    assert np.array_equal(empty.blend(M[:1], P[:1])[0], P[:1])
