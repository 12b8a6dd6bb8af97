"""Tests for extractor.types: ids, round trips, normalisation."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from extractor.errors import RecordError
from extractor.types import Labels, Prediction, Turn, normalize_text, turn_id, with_ids


def test_normalize_text_collapses_whitespace():
    assert normalize_text("  a \n\t b  c ") == "a b c"
    assert normalize_text("") == ""
    assert normalize_text("a\u00a0\u2003b\u3000") == "a b"  # Unicode spaces too


def test_normalize_text_agrees_with_the_regex_definition():
    """Ids hash the normalised text: it must stay ``re.sub(r"\\s+", " ", t).strip()``."""
    import re

    sample = "".join(chr(c) for c in range(0x3100)) + " x \x1c y \u2028 z "
    assert normalize_text(sample) == re.sub(r"\s+", " ", sample).strip()


def test_turn_id_is_stable_and_ignores_whitespace_and_position():
    a = turn_id("Interview 1", "interviewee", "We had drift.")
    assert a == turn_id("Interview 1", "interviewee", "  We had\n drift. ")
    assert len(a) == 16 and int(a, 16) >= 0
    # a known value: ids are persisted in correction files, so the scheme must not change silently
    assert a == turn_id("Interview 1", "interviewee", "We had drift.", 0)
    assert a != turn_id("Interview 2", "interviewee", "We had drift.")
    assert a != turn_id("Interview 1", "interviewer", "We had drift.")
    assert a != turn_id("Interview 1", "interviewee", "We had drift.", 1)
    assert a != turn_id("Interview 1", "interviewee", "We had Drift.")


def test_turn_id_known_value():
    import hashlib

    key = "\x1f".join(["I", "interviewee", "hello world", "0"])
    assert turn_id("I", "interviewee", "hello  world") == hashlib.sha1(key.encode()).hexdigest()[:16]


def test_with_ids_unique_with_repeated_texts_and_keeps_existing():
    turns = [
        Turn("I", 0, "interviewee", "Yeah."),
        Turn("I", 1, "interviewer", "Yeah."),
        Turn("I", 2, "interviewee", "Yeah."),
        Turn("I", 3, "interviewee", "Yeah. "),
        Turn("J", 0, "interviewee", "Yeah."),
        Turn("I", 4, "interviewee", "Other.", id="given"),
    ]
    out = list(with_ids(turns))
    ids = [t.id for t in out]
    assert len(set(ids)) == len(ids)
    assert ids[-1] == "given"
    assert ids[2] == turn_id("I", "interviewee", "Yeah.", 1) and ids[3] == turn_id("I", "interviewee", "Yeah.", 2)
    # the same interview re-segmented with an extra turn in front keeps the ids of the others
    again = list(with_ids([Turn("I", 0, "interviewer", "Hello."), *[dataclasses.replace(t, id="") for t in turns[:5]]]))
    assert [t.id for t in again[1:]] == ids[:5]


def test_turn_round_trip_through_json():
    t = Turn("I", 3, "interviewee", "text", question="q?", speaker_raw="P1", id="abc",
             source={"file": "f.txt", "start": 1, "end": 5}, labels=Labels(("drift",), ("model_maintenance",), True),
             label_source="moderated", codes={"PO": ["MM-drift"], "moderated": []})
    d = json.loads(json.dumps(t.to_dict()))
    assert Turn.from_dict(d) == t
    assert d["labels"] == {"categories": ["drift"], "phases": ["model_maintenance"], "mitigation": True}


def test_turn_to_dict_omits_missing_optionals():
    d = Turn("I", 0, "interviewer", "q").to_dict()
    assert "labels" not in d and "codes" not in d and "source" not in d
    t = Turn.from_dict(d)
    assert t.labels is None and t.question == "" and not t.is_interviewee


def test_labels_from_dict_defaults():
    assert Labels.from_dict({}) == Labels()
    assert Labels.from_dict({"categories": None, "mitigation": 1}) == Labels((), (), True)


def test_prediction_round_trip():
    p = Prediction("I", 2, "abc", ("drift",), ("model_maintenance",), False, scores={"drift": 0.9},
                   evidence={"drift": "a sentence"}, text="t", question="q", model="m")
    d = json.loads(json.dumps(p.to_dict()))
    assert Prediction.from_dict(d) == p


def test_records_are_frozen():
    t = Turn("I", 0, "interviewee", "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.text = "y"  # type: ignore[misc]


# --- strict parsing (issue 12) ---------------------------------------------------------------------


@pytest.mark.parametrize("d, message", [
    ({"categories": "drift"}, 'expected "categories" as a list of id strings, found str \'drift\''),
    ({"phases": ["a", 3]}, 'expected "phases" as a list of id strings, found list'),
    ({"mitigation": "no"}, 'expected "mitigation" as true or false, found str \'no\''),
    ({"mitigation": "false"}, 'expected "mitigation" as true or false'),
])
def test_labels_are_parsed_strictly(d, message):
    from extractor.errors import RecordError

    with pytest.raises(RecordError, match=re.escape(message)):
        Labels.from_dict(d)


def test_prediction_from_dict_is_strict():
    from extractor.errors import RecordError

    base = {"interview": "I", "turn": 1, "id": "x"}
    assert Prediction.from_dict(base).categories == ()
    for bad, message in (({"categories": "drift"}, '"categories" as a list'), ({"turn": "1"}, '"turn" of type int'),
                         ({"scores": {"drift": "high"}}, '"scores" as an object'),
                         ({"mitigation": "yes"}, '"mitigation" as true or false')):
        with pytest.raises(RecordError, match=message):
            Prediction.from_dict(base | bad)
    err = RecordError('"x" of type int', "str 'a'")
    assert str(err.at("p.jsonl", 4)) == "p.jsonl:4: expected \"x\" of type int, found str 'a'"


@pytest.mark.parametrize("scores", [{"c1": float("nan")}, {"c1": 1.5}, {"c1": -0.1}, {"c1": float("inf")}])
def test_prediction_scores_must_be_probabilities(scores):
    with pytest.raises(RecordError, match="expected scores between 0 and 1"):
        Prediction.from_dict({"interview": "a", "turn": 1, "id": "x", "scores": scores})


@pytest.mark.parametrize("turn", [-1, 2**60])
def test_turn_numbers_are_whole_numbers_in_range(turn):
    with pytest.raises(RecordError, match='expected "turn" as a whole number'):
        Turn.from_dict({"interview": "a", "turn": turn, "speaker": "interviewee", "text": "t"})
