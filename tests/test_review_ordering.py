"""extractor.review.ordering: the review orders (coverage, gain, relevance, ...) and the defaults that use them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from extractor import review
from extractor.catalog import load_catalog
from extractor.cli import build_parser, main
from extractor.cli.review import REVIEW_ORDERS
from extractor.errors import ExtractorError
from extractor.review.ordering import interview_chains, spread_priorities
from extractor.review.teaching import Rescorer
from extractor.types import Prediction

REPO = Path(__file__).resolve().parents[1]
CATALOG_YAML = """\
name: tiny
version: 1
phases:
- {id: collect, name: Collection, definition: Getting data.}
categories:
- {id: a, name: A, definition: First.}
- {id: b, name: B, definition: Second.}
"""


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_YAML)
    return load_catalog(path)


def pred(i: int, scores: dict, cats=(), interview="I") -> Prediction:
    return Prediction(interview, i, f"{interview}{i}", tuple(cats), (), False, scores=scores, text=f"turn {i}")


def ids(preds, catalog, order) -> list[str]:
    return [preds[i].id for i in review.rank(preds, catalog, order)]


def test_gain_counts_likely_wrong_codes_and_likely_missed_ones_of_categories_only(catalog):
    sure_yes = pred(0, {"a": 0.99, "b": 0.0, "collect": 0.5}, cats=("a",))  # nothing to fix; phases don't count
    doubtful_yes = pred(1, {"a": 0.3, "b": 0.0}, cats=("a",))  # 0.7 expected wrong code
    likely_miss = pred(2, {"a": 0.4, "b": 0.0})  # 0.4 missed, counted twice
    preds = [sure_yes, doubtful_yes, likely_miss]
    assert -review.priorities(preds, catalog, "gain") == pytest.approx([0.01, 0.7, 0.8])
    assert ids(preds, catalog, "gain") == ["I2", "I1", "I0"]
    assert review.expected_gain(np.array([[0.3, 0.4]]), np.array([[True, False]])) == pytest.approx([1.5])


def test_relevance_puts_likely_coded_turns_first_ties_in_turn_order(catalog):
    ps = [pred(0, {"a": 0.1, "b": 0.1}), pred(1, {"a": 0.6, "b": 0.3}), pred(2, {"a": 0.25, "b": 0.0}),
          pred(3, {"a": 0.1, "b": 0.1})]
    assert ids(ps, catalog, "relevance") == ["I1", "I2", "I0", "I3"]


def test_a_missing_or_nan_score_counts_as_the_decision(catalog):
    preds = [pred(0, {}, cats=("a",)), pred(1, {"a": float("nan"), "b": 0.0})]
    for order in ("gain", "coverage", "relevance"):
        pri = review.priorities(preds, catalog, order)
        assert np.isfinite(pri).all()
    assert -review.priorities(preds, catalog, "gain") == pytest.approx([0.0, 0.0])


def test_coverage_spreads_early_reads_over_the_interviews(catalog):
    # gains 1.0, 0.95, 0.1 along interview I (turns 1, 3, 5: interviewee turns, neighbours in the chain)
    # and 0.9 alone in J: gain reads I1, I3, J1, I5; coverage reads I3 (its answer teaches both
    # neighbours), then J1 before I1, whose gain the answer on I3 mostly took.
    preds = [pred(1, {"a": 0.5, "b": 0.0}), pred(3, {"a": 0.475, "b": 0.0}), pred(5, {"a": 0.05, "b": 0.0}),
             pred(1, {"a": 0.45, "b": 0.0}, interview="J")]
    assert ids(preds, catalog, "gain") == ["I1", "I3", "J1", "I5"]
    assert ids(preds, catalog, "coverage") == ["I3", "J1", "I1", "I5"]
    pri = review.priorities(preds, catalog, "coverage")
    assert pri[1] == pytest.approx(-(0.95 + 0.65 * (1.0 + 0.1)))  # its own gain + the share it teaches
    assert pri[0] == pytest.approx(-(0.35 + 0.44 * 0.035))  # what is left of I1 after I3's answer


def test_coverage_without_neighbours_is_the_gain_order(catalog):
    rng = np.random.default_rng(0)
    preds = [pred(k, {"a": float(rng.random()), "b": float(rng.random())}, interview=f"I{k}") for k in range(30)]
    assert ids(preds, catalog, "coverage") == ids(preds, catalog, "gain")
    chained = [pred(k, {"a": float(rng.random()), "b": float(rng.random())}) for k in range(30)]
    value = -review.priorities(chained, catalog, "gain")
    flat = spread_priorities(chained, value, weights=(0.0, 0.0))
    assert flat == pytest.approx(-value)
    assert ids(chained, catalog, "coverage") != ids(chained, catalog, "gain")


def test_interview_chains_follow_turn_order_per_interview():
    preds = [pred(5, {}), pred(1, {}, interview="J"), pred(3, {}), pred(1, {})]
    assert interview_chains(preds) == [[3, 2, 0], [1]]


def test_unknown_order_is_refused_in_one_line(catalog):
    with pytest.raises(ExtractorError, match="unknown queue order 'best'; expected one of "
                       "coverage, gain, uncertainty, quality, relevance, random, file"):
        review.priorities([pred(0, {})], catalog, "best")


# --- the defaults: one order everywhere ------------------------------------------------------------


def test_coverage_is_the_default_of_export_the_cli_the_makefile_and_the_web_reviewer(catalog):
    assert review.DEFAULT_ORDER == "coverage" and review.ORDERS[0] == "coverage"
    assert REVIEW_ORDERS == review.ORDERS  # the CLI's choices, spelled out so `extractor --help` stays light
    args = build_parser().parse_args(["review", "export", "p.jsonl", "-o", "q.jsonl"])
    assert args.order == "coverage" and args.rerank is True and args.refresh is False
    assert re.search(r"^REVIEW_ORDER \?= coverage$", (REPO / "Makefile").read_text(), re.M)
    assert Rescorer(object(), catalog).order == "coverage"  # type: ignore[arg-type]
    import inspect

    assert inspect.signature(review.export_queue).parameters["order"].default == "coverage"


def _write_preds(path: Path, a_scores: list[float]) -> None:
    path.write_text("".join(json.dumps(pred(2 * k + 1, {"a": s, "b": 0.0}, interview=f"I{k}").to_dict()) + "\n"
                            for k, s in enumerate(a_scores)))


def test_cli_reexport_reranks_the_unanswered_tasks_answered_lines_byte_for_byte(tmp_path, catalog, capsys):
    pf, q = tmp_path / "pred.jsonl", tmp_path / "q.jsonl"
    _write_preds(pf, [0.4, 0.3, 0.2, 0.1])
    assert main(["review", "export", str(pf), "-o", str(q), "--catalog", catalog.path]) == 0
    lines = q.read_text().splitlines(keepends=True)
    assert [json.loads(x)["meta"]["interview"] for x in lines] == ["I0", "I1", "I2", "I3"]
    answered = json.loads(lines[0]) | {"answer": "accept", "accept": ["cat:a"], "annotator": "ann", "timestamp": 1}
    with q.open("a") as fh:  # an answer as both reviewers write it: appended
        fh.write(json.dumps(answered) + "\n")
    before = q.read_text().splitlines(keepends=True)
    _write_preds(pf, [0.4, 0.1, 0.2, 0.45])  # after `predict --corrections`
    assert main(["review", "export", str(pf), "-o", str(q), "--catalog", catalog.path]) == 0
    assert "3 refreshed (order: coverage)" in capsys.readouterr().err
    after = q.read_text().splitlines(keepends=True)
    assert after[:2] == [before[0], before[4]]
    assert [json.loads(x)["meta"]["interview"] for x in after[2:]] == ["I3", "I2", "I1"]
    # --keep-order: the old way, nothing queued moves
    _write_preds(pf, [0.4, 0.45, 0.2, 0.1])
    assert main(["review", "export", str(pf), "-o", str(q), "--keep-order", "--catalog", catalog.path]) == 0
    assert q.read_text().splitlines(keepends=True) == after


def test_reexport_ranks_only_the_turns_left_to_read(tmp_path, catalog):
    # An answered turn's own gain does not shade its neighbours: its answer already taught them,
    # as in the web reviewer, which ranks the pending tasks only.
    q = tmp_path / "q.jsonl"
    preds = [pred(1, {"a": 0.5, "b": 0.0}), pred(3, {"a": 0.25, "b": 0.0}), pred(1, {"a": 0.225, "b": 0.0}, "", "J")]
    review.export_queue(preds, q, catalog)
    first = json.loads(q.read_text().splitlines()[0])
    assert first["meta"]["id"] == "I1"
    with q.open("a") as fh:
        fh.write(json.dumps(first | {"answer": "reject", "annotator": "ann", "timestamp": 1}) + "\n")
    assert ids([preds[1], preds[2]], catalog, "coverage") == ["I3", "J1"]
    assert ids(preds, catalog, "coverage")[1:] == ["J1", "I3"]  # what ranking the answered turn too would give
    s = review.export_queue(preds, q, catalog)
    assert [json.loads(x)["meta"]["id"] for x in q.read_text().splitlines()] == ["I1", "I1", "I3", "J1"]
    assert (s.skipped_answered, s.refreshed) == (1, 2)
