"""extractor.classify.teach: answers re-score the other turns with no retrain (TeachSession and
IssueClassifier.predict(taught=...)); extractor.predict: predict_file with answer files."""

from __future__ import annotations

import json
import time

import numpy as np
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
    before = {p.id: p.scores["explainability"] for p in real_model.predict(turns)}
    after = {p.id: p.scores["explainability"]
             for p in real_model.predict(turns, taught={gpu[0].id: Labels(("explainability",))})}
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


def test_predict_file_teaches_answers_with_reviewer_and_time(hashing_model, tmp_path):
    from extractor.jsonl import read_predictions, write_jsonl
    from extractor.predict import predict_file
    from extractor.review import export_queue

    turns = session_turns()
    write_jsonl(tmp_path / "turns.jsonl", turns)
    hashing_model.save(tmp_path / "m")
    predict_file(tmp_path / "turns.jsonl", tmp_path / "m", tmp_path / "p0.jsonl")
    p0 = read_predictions(tmp_path / "p0.jsonl")
    export_queue(p0, tmp_path / "q.jsonl", hashing_model.catalog_, order="file")
    lines = [json.loads(x) for x in (tmp_path / "q.jsonl").read_text().splitlines()]
    lines[0].update(answer="accept", annotator="ana", accept=["cat:drift"], timestamp="2026-01-02T03:04:05Z")
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    predict_file(tmp_path / "turns.jsonl", tmp_path / "m", tmp_path / "p1.jsonl", corrections=[tmp_path / "q.jsonl"])
    p1 = read_predictions(tmp_path / "p1.jsonl")
    assert (p1[0].categories, p1[0].label_source, p1[0].reviewer, p1[0].reviewed_at) == \
        (("drift",), "human", "ana", "2026-01-02T03:04:05Z")
    assert p1[0].scores == p0[0].scores
    assert [p.to_dict() for p in p1[1:]] != [p.to_dict() for p in p0[1:]] or \
        all(p.label_source == "model" and not p.reviewer for p in p1[1:])
    # without answers the file is what it was
    predict_file(tmp_path / "turns.jsonl", tmp_path / "m", tmp_path / "p2.jsonl")
    assert (tmp_path / "p2.jsonl").read_bytes() == (tmp_path / "p0.jsonl").read_bytes()


def test_apply_human_labels_keeps_reviewer(hashing_model):
    from extractor.predict import Answer, apply_human_labels

    preds = hashing_model.predict(session_turns())
    out = apply_human_labels(preds, {preds[0].id: Answer(Labels(("drift",)), "bo", "2026-01-01T00:00:00Z")})
    assert (out[0].reviewer, out[0].reviewed_at, out[0].label_source) == ("bo", "2026-01-01T00:00:00Z", "human")
    assert out[1:] == preds[1:]
    assert np.isclose(out[0].scores["drift"], preds[0].scores["drift"])
