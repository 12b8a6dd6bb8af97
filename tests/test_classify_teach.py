"""extractor.classify.teach: answers re-score the other turns with no retrain (TeachSession and
IssueClassifier.predict(taught=...)), answers speaking for neighbouring turns."""

from __future__ import annotations

import time

import pytest

from extractor.classify import IssueClassifier, ModelConfig, TrainConfig
from extractor.classify.teach import TeachSession
from extractor.errors import ModelError
from extractor.types import Labels, Turn, with_ids
from tests.test_classify import FAST, HASHING, catalog, make, tiny_turns  # noqa: F401 (catalog: a fixture)

GPU = ["The GPU cluster ran out of memory while training the big model.",
       "Training crashed again because the GPUs ran out of memory.",
       "We had out-of-memory errors on the GPUs during every training run."]
OTHER = ["I like hiking on weekends with my family.", "My manager is based in another city.",
         "We moved offices last spring."]


def session_turns() -> list[Turn]:
    """A new interview: GPU-memory turns and small talk (none labelled)."""
    turns = []
    for i, text in enumerate([GPU[0], OTHER[0], GPU[1], OTHER[1], GPU[2], OTHER[2]]):
        q = f"Question {i}: what went wrong?"
        turns += [Turn("Interview N", 2 * i, "interviewer", q), Turn("Interview N", 2 * i + 1, "interviewee", text, q)]
    return list(with_ids(turns))


@pytest.fixture(scope="module")
def real_model(encoder, tmp_path_factory):
    from extractor.catalog import load_catalog
    from tests.test_classify import CATALOG_YAML

    p = tmp_path_factory.mktemp("cat") / "catalog.yaml"
    p.write_text(CATALOG_YAML)
    clf = IssueClassifier(load_catalog(p), ModelConfig(), TrainConfig(**FAST), embedder=encoder)
    return clf.fit(tiny_turns(6))


@pytest.fixture
def hashing_model(catalog):  # noqa: F811
    return make(catalog).fit(tiny_turns())


def ie(turns):
    return [t for t in turns if t.is_interviewee]


def test_taught_none_or_empty_predicts_as_before(hashing_model):
    turns = session_turns()
    base = [p.to_dict() for p in hashing_model.predict(turns)]
    assert [p.to_dict() for p in hashing_model.predict(turns, taught=None)] == base
    assert [p.to_dict() for p in hashing_model.predict(turns, taught={})] == base


def test_taught_turn_carries_the_answer_and_the_model_scores(hashing_model):
    turns = session_turns()
    a = ie(turns)[0]
    base = {p.id: p for p in hashing_model.predict(turns)}
    got = {p.id: p for p in hashing_model.predict(turns, taught={a.id: Labels(("explainability",), (), True)})}
    p = got[a.id]
    assert (p.categories, p.phases, p.mitigation, p.label_source) == (("explainability",), (), True, "human")
    # its own answer is hidden from its own scores: with only that answer they are the model's
    assert p.scores == base[a.id].scores
    assert all(q.label_source == "model" for k, q in got.items() if k != a.id)


def test_a_taught_answer_moves_a_similar_untaught_turn(real_model):
    turns = session_turns()
    gpu = [t for t in ie(turns) if t.text in GPU]
    other = [t for t in ie(turns) if t.text in OTHER]
    s = TeachSession(real_model, turns, neighbour_weights=())  # similarity only, not adjacency
    before = {p.id: p.scores["explainability"] for p in s.predictions()}
    s.teach(gpu[0].id, Labels(("explainability",)))
    after = {p.id: p.scores["explainability"] for p in s.predictions()}
    rise_similar = after[gpu[1].id] - before[gpu[1].id]
    rise_other = max(after[t.id] - before[t.id] for t in other)
    assert rise_similar > 0.01
    assert rise_similar > rise_other


def test_session_matches_predict_and_is_fast(real_model):
    turns = session_turns()
    s = TeachSession(real_model, turns)
    assert [p.to_dict() for p in s.predictions()] == [p.to_dict() for p in real_model.predict(turns)]
    answers = {ie(turns)[0].id: Labels(("drift",), ("model_maintenance",)), ie(turns)[3].id: Labels()}
    for tid, lab in answers.items():
        s.teach(tid, lab)
    t0 = time.perf_counter()
    got = s.predictions()
    assert time.perf_counter() - t0 < 1.0
    assert [p.to_dict() for p in got] == [p.to_dict() for p in real_model.predict(turns, taught=answers)]
    s.forget(ie(turns)[0].id)
    assert got[0].label_source == "human" and s.predictions()[0].label_source == "model"


def test_session_refuses_an_unknown_turn_and_an_unfitted_model(hashing_model, catalog):  # noqa: F811
    s = TeachSession(hashing_model, session_turns())
    with pytest.raises(ModelError, match="expected an interviewee turn of this teach session"):
        s.teach("nope", Labels())
    with pytest.raises(ModelError, match="not fitted"):
        TeachSession(IssueClassifier(catalog, HASHING), session_turns())


def test_taught_labels_outside_the_catalog_are_not_scored(hashing_model):
    turns = session_turns()
    a = ie(turns)[1]
    p = hashing_model.predict(turns, taught={a.id: Labels(("not-in-catalog",))})[1]
    assert p.categories == ("not-in-catalog",) and p.label_source == "human" and p.evidence == {}


def test_an_answer_speaks_for_its_neighbours(hashing_model):
    turns = session_turns()
    rows = ie(turns)

    def scores(weights):
        s = TeachSession(hashing_model, turns, neighbour_weights=weights)
        s.teach(rows[2].id, Labels(("explainability",)))
        return {p.id: p.scores["explainability"] for p in s.predictions()}

    plain, near = scores(()), scores((0.65, 0.44))
    # the next turn gets 0.65 of the answer, two turns away 0.44; three away nothing from it
    assert near[rows[3].id] == pytest.approx(0.35 * plain[rows[3].id] + 0.65, abs=2e-4)
    assert near[rows[4].id] == pytest.approx(0.56 * plain[rows[4].id] + 0.44, abs=2e-4)
    assert near[rows[5].id] == plain[rows[5].id]
    assert near[rows[1].id] > plain[rows[1].id] + 0.3
    # the default weights are those, and predict(taught=...) uses them
    taught = hashing_model.predict(turns, taught={rows[2].id: Labels(("explainability",))})
    assert taught[3].scores["explainability"] == near[rows[3].id]


def test_neighbour_weights_are_measured_on_labelled_turns():
    from extractor.classify.teach import estimate_neighbour_weights

    def turn(i, cats):
        return Turn("I", i, "interviewee", f"t{i}", labels=Labels(cats))

    ts = [turn(0, ("a",)), turn(1, ("a",)), turn(2, ("b",)), turn(3, ()), Turn("I", 4, "interviewer", "q")]
    # distance 1: coded turns 0, 1, 2 -> next shares with 0 only: 1/3; distance 2: 0->2 no, 1->3 no
    assert estimate_neighbour_weights(ts) == (0.333, 0.0)


def test_an_answer_does_not_speak_across_interviews(hashing_model):
    from dataclasses import replace

    a, b = session_turns(), [replace(t, interview="Interview M") for t in session_turns()]
    turns = list(with_ids(a + [replace(t, id="") for t in b]))
    last_a, first_b = ie(turns)[5], ie(turns)[6]
    assert (last_a.interview, first_b.interview) == ("Interview N", "Interview M")

    def scores(weights):
        s = TeachSession(hashing_model, turns, neighbour_weights=weights)
        s.teach(last_a.id, Labels(("explainability",)))
        return {p.id: p.scores["explainability"] for p in s.predictions()}

    assert scores((0.65, 0.44))[first_b.id] == scores(())[first_b.id]
    assert scores((0.65, 0.44))[ie(turns)[4].id] > scores(())[ie(turns)[4].id]


def test_answers_speak_across_predict_batches(hashing_model):
    turns = session_turns()
    answers = {ie(turns)[2].id: Labels(("drift",))}
    s = TeachSession(hashing_model, turns)
    s.teach(ie(turns)[2].id, Labels(("drift",)))
    small = hashing_model.predict(turns, taught=answers, batch_size=1)  # neighbours in other batches
    assert [p.scores for p in small] == [p.scores for p in s.predictions()]
