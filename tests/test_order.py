"""extractor.order: review orders from predictions (relevance, expected gain)."""

from __future__ import annotations

import pytest

from extractor.order import expected_gain, order_ids
from extractor.types import Prediction

CATS = ["a", "b"]


def pred(i: int, scores: dict, cats=()) -> Prediction:
    return Prediction("I", i, f"t{i}", tuple(cats), (), False, scores=scores)


def test_relevance_puts_likely_coded_turns_first_ties_in_turn_order():
    ps = [pred(0, {"a": 0.1, "b": 0.1}), pred(1, {"a": 0.6, "b": 0.3}), pred(2, {"a": 0.25}),
          pred(3, {"a": 0.1, "b": 0.1})]
    assert order_ids(ps, CATS, "relevance") == ["t1", "t2", "t0", "t3"]


def test_gain_counts_likely_wrong_codes_and_likely_missed_ones():
    sure_yes = pred(0, {"a": 0.99, "b": 0.0}, cats=("a",))  # nothing to fix
    doubtful_yes = pred(1, {"a": 0.3, "b": 0.0}, cats=("a",))  # 0.7 expected wrong code
    likely_miss = pred(2, {"a": 0.4, "b": 0.0})  # 0.4 missed, counted twice
    assert expected_gain([sure_yes, doubtful_yes, likely_miss], CATS) == pytest.approx([0.01, 0.7, 0.8])
    assert order_ids([sure_yes, doubtful_yes, likely_miss], CATS) == ["t2", "t1", "t0"]


def test_a_missing_score_counts_as_the_decision_and_unknown_order_is_refused():
    assert expected_gain([pred(0, {}, cats=("a",))], CATS) == pytest.approx([0.0])
    with pytest.raises(ValueError, match="order: expected one of relevance, gain, found 'nope'"):
        order_ids([], CATS, "nope")
