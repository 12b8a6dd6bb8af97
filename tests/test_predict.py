"""extractor.predict: predict_file teaches the answers of answer files (reviewer and time kept),
apply_human_labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from extractor.types import Labels
from tests.test_classify import catalog, make, tiny_turns  # noqa: F401 (catalog: a fixture)
from tests.test_classify_teach import session_turns


@pytest.fixture
def hashing_model(catalog):  # noqa: F811
    return make(catalog).fit(tiny_turns())


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
