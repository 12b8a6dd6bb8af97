"""extractor.classify.thresholds: the grouped splitter, F1 thresholds and the calibration band."""

import numpy as np

from extractor.classify.thresholds import best_threshold, calibrate_any, group_folds, tune_thresholds


def test_group_folds_keep_groups_whole_and_are_deterministic():
    groups = [f"I{i % 7}" for i in range(70)]
    folds = group_folds(groups, 3, seed=1)
    assert sorted(np.concatenate(folds).tolist()) == list(range(70))
    for f in folds:
        inside = {groups[i] for i in f}
        assert all(groups[j] not in inside for g in folds if g is not f for j in g)
    assert [f.tolist() for f in folds] == [f.tolist() for f in group_folds(groups, 3, seed=1)]
    assert len(group_folds(["a", "a"], 5, seed=0)) == 1  # never more folds than groups


def test_tune_thresholds_shared_fallback():
    Y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]] * 5, dtype=float)
    P = np.array([[0.9, 0.2], [0.1, 0.1], [0.8, 0.3], [0.2, 0.05]] * 5)
    th = tune_thresholds(Y, P, min_support=100)  # nobody has 100 positives: all share one threshold
    assert th[0] == th[1]
    assert 0.2 < th[0] <= 0.3


def test_calibration_band_stops_over_flagging():
    # F1 alone flags every turn (a rare label with uninformative scores); the band allows at
    # most 1.5 times the gold count
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.1).astype(float)
    p = rng.random(400) * 0.3 + 0.3
    free = best_threshold(y, p)
    banded = best_threshold(y, p, max_ratio=1.5)
    assert (p >= free).sum() > 1.5 * y.sum()
    assert y.sum() / 1.5 <= (p >= banded).sum() <= 1.5 * y.sum()


def test_calibrate_any_shifts_a_space_into_the_band():
    Y = np.zeros((100, 3))
    Y[:10, 0] = 1
    P = np.full((100, 3), 0.3)
    P[:10, 0] = 0.9
    th = calibrate_any(Y, P, np.full(3, 0.2, np.float32), max_ratio=1.4)
    n = (P >= th).any(axis=1).sum()
    assert 10 / 1.4 <= n <= 14
