"""Tests for extractor.jsonl: every error message, turn reading, atomic writes."""

from __future__ import annotations

import json
import os

import pytest

from extractor.errors import InputError
from extractor.jsonl import atomic_open, enumerate_lines, read_jsonl, read_turns, write_json, write_jsonl
from extractor.types import Turn


def _write(tmp_path, text, name="f.jsonl", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_enumerate_lines_skips_blank_lines_and_numbers_from_one(tmp_path):
    path = _write(tmp_path, '{"a": 1}\n\n  \n{"a": 2}\n')
    assert list(enumerate_lines(path)) == [(1, {"a": 1}), (4, {"a": 2})]
    assert list(read_jsonl(path)) == [{"a": 1}, {"a": 2}]


def test_utf8_bom_is_accepted(tmp_path):
    path = _write(tmp_path, b'\xef\xbb\xbf{"a": 1}\n', mode="wb")
    assert list(read_jsonl(path)) == [{"a": 1}]


def test_invalid_json_names_the_line(tmp_path):
    path = _write(tmp_path, '{"a": 1}\n{"a": \n')
    with pytest.raises(InputError) as e:
        list(read_jsonl(path))
    assert str(e.value).startswith(f"{path}:2: expected one JSON object per line, found invalid JSON")
    assert e.value.line == 2


def test_non_object_line(tmp_path):
    path = _write(tmp_path, '[1, 2]\n')
    with pytest.raises(InputError, match=r":1: expected a JSON object, found list"):
        list(read_jsonl(path))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="expected an existing JSONL file, found no such file"):
        list(read_jsonl(tmp_path / "nope.jsonl"))
    with pytest.raises(InputError, match="expected a JSONL file, found a directory"):
        list(read_jsonl(tmp_path))


def test_non_utf8_names_line_and_column(tmp_path):
    # many good lines first: a chunked text decoder would report a wrong place
    path = _write(tmp_path, b'{"a": 1}\n' * 3000 + b'{"a": "\xff"}\n', mode="wb")
    with pytest.raises(InputError) as e:
        list(read_jsonl(path))
    assert str(e.value) == f"{path}:3001: expected UTF-8 text, found undecodable byte 0xff at column 8"


def test_error_is_one_line(tmp_path):
    path = _write(tmp_path, '{"a":\n')
    with pytest.raises(InputError) as e:
        list(read_jsonl(path))
    assert "\n" not in str(e.value)


# --- read_turns -------------------------------------------------------------------


def _turn(**kw):
    d = {"interview": "I", "turn": 0, "speaker": "interviewee", "text": "hello"}
    d.update(kw)
    return json.dumps(d)


def test_read_turns_fills_ids_and_labels(tmp_path):
    path = _write(tmp_path, "\n".join([
        _turn(),
        _turn(turn=1, speaker="interviewer", text="q?"),
        _turn(turn=2, labels={"categories": ["drift"], "phases": [], "mitigation": True}, label_source="moderated"),
        _turn(turn=3, text="hello"),
    ]) + "\n")
    turns = read_turns(path)
    assert [t.turn for t in turns] == [0, 1, 2, 3]
    assert all(t.id for t in turns) and len({t.id for t in turns}) == 4
    assert turns[2].labels.categories == ("drift",) and turns[2].labels.mitigation
    assert turns[0].labels is None


@pytest.mark.parametrize("line, expected", [
    (_turn(turn="3"), 'expected field "turn" of type int, found str'),
    (_turn(turn=True), 'expected field "turn" of type int, found bool'),
    (json.dumps({"turn": 0, "speaker": "interviewee", "text": "x"}), 'expected field "interview" of type str, found nothing'),
    (_turn(text=None), 'expected field "text" of type str, found NoneType'),
    (_turn(speaker="Alice"), "expected speaker \"interviewee\" or \"interviewer\", found 'Alice'"),
    (_turn(labels=["drift"]), 'expected "labels" = {"categories"'),
    (_turn(labels={"categories": "drift"}), 'expected "labels" = {"categories"'),
])
def test_read_turns_bad_fields(tmp_path, line, expected):
    path = _write(tmp_path, _turn() + "\n" + line + "\n")
    with pytest.raises(InputError) as e:
        read_turns(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:2: ") and expected in msg, msg


def test_read_turns_hint_for_wrong_file(tmp_path):
    path = _write(tmp_path, '{"id": "x", "categories": []}\n')
    with pytest.raises(InputError, match="is this a turns file"):
        read_turns(path)


def test_turns_round_trip_through_write_jsonl(tmp_path):
    turns = [Turn("I", 0, "interviewee", "a", id="x1"), Turn("I", 1, "interviewer", "b", id="x2")]
    assert write_jsonl(tmp_path / "t.jsonl", turns) == 2
    assert read_turns(tmp_path / "t.jsonl") == turns


# --- atomic writes ----------------------------------------------------------------


def test_atomic_write_keeps_old_file_when_writer_raises(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl(path, rows())
    assert list(read_jsonl(path)) == [{"a": 1}]
    assert os.listdir(tmp_path) == ["out.jsonl"]  # no temp file left behind


def test_atomic_open_creates_parents_and_keeps_mode(tmp_path):
    path = tmp_path / "a" / "b" / "doc.json"
    write_json(path, {"x": [1, 2]})
    assert json.loads(path.read_text()) == {"x": [1, 2]}
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    os.chmod(path, 0o640)
    write_json(path, {})
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_atomic_open_binary(tmp_path):
    with atomic_open(tmp_path / "b.bin", "wb") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


# --- strict reading (issue 12) ---------------------------------------------------------------------


def test_the_same_turn_twice_is_an_error(tmp_path):
    path = _write(tmp_path, _turn(turn=1) + "\n" + _turn(turn=2, text="other") + "\n" + _turn(turn=1) + "\n")
    with pytest.raises(InputError, match=r"f.jsonl:3: expected each \(interview, turn\) once, found 'I' turn 1 "
                                         r"again \(also line 1\); two transcripts with one interview name"):
        read_turns(path)


def test_two_different_turns_with_one_id_are_an_error(tmp_path):
    path = _write(tmp_path, _turn(turn=1, id="abc") + "\n" + _turn(turn=2, text="other", id="abc") + "\n")
    with pytest.raises(InputError, match=r"f.jsonl:2: expected a unique turn id per turn, found id 'abc' again "
                                         r"\(also line 1\)"):
        read_turns(path)


@pytest.mark.parametrize("labels, found", [
    ({"categories": ["drift"], "mitigation": "no"}, 'expected "mitigation" as true or false, found str \'no\''),
    ({"categories": ["drift"], "mitigation": 2}, 'expected "mitigation" as true or false, found int 2'),
])
def test_mitigation_no_is_not_true(tmp_path, labels, found):
    path = _write(tmp_path, _turn(labels=labels) + "\n")
    with pytest.raises(InputError, match=f"f.jsonl:1: {found}"):
        read_turns(path)


def test_wrong_optional_field_types_name_the_line(tmp_path):
    path = _write(tmp_path, _turn() + "\n" + _turn(turn=1, question=["a list"]) + "\n")
    with pytest.raises(InputError, match="f.jsonl:2: expected \"question\" of type str, found list"):
        read_turns(path)


def test_deeply_nested_json_is_one_line(tmp_path):
    path = _write(tmp_path, '{"a": ' + "[" * 100000 + "]" * 100000 + "}\n")
    with pytest.raises(InputError, match="f.jsonl:1: expected JSON nested at most 200 levels deep, found deeper "
                                         "nesting"):
        list(read_jsonl(path))


def test_a_fifo_is_not_opened_for_reading(tmp_path):
    fifo = tmp_path / "f.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="f.jsonl: expected a JSONL file, found a FIFO"):
        list(read_jsonl(fifo))


def test_unknown_label_ids_name_file_and_line(tmp_path):
    from extractor.jsonl import check_label_ids

    class Cat:
        category_ids, phase_ids, tag = ["drift"], ["deploy"], "tiny@1"

    path = _write(tmp_path, _turn(labels={"categories": ["drift"], "phases": []}) + "\n\n"
                  + _turn(turn=1, text="b", labels={"categories": ["drfit"], "phases": ["deploy"]}) + "\n")
    turns = read_turns(path)
    with pytest.raises(InputError, match=r"f.jsonl:3: expected label ids of the catalog tiny@1, found unknown "
                                         r"'drfit' on 'I' turn 1; fix the label or pass the catalog"):
        check_label_ids(path, turns, Cat())
    check_label_ids(path, turns[:1], Cat())  # known ids pass


def test_read_predictions_is_the_one_strict_reader(tmp_path):
    from extractor import discover, review
    from extractor.jsonl import read_predictions

    assert review.read_predictions is read_predictions is discover.read_predictions
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"interview": "I", "turn": 1, "id": "x", "text": 7}) + "\n")
    with pytest.raises(InputError, match=r'p.jsonl:1: expected the turn "text" as a string, found 7'):
        read_predictions(p)
    p.write_text(json.dumps({"interview": "I", "turn": 1, "id": "x", "scores": [0.5]}) + "\n")
    with pytest.raises(InputError, match=r'p.jsonl:1: expected "scores" as an object'):
        read_predictions(p)
    p.write_text(json.dumps({"interview": "I", "turn": 1, "id": "x"}) + "\n")
    assert read_predictions(p)[0].text == ""


@pytest.mark.parametrize("line, found", [
    ('{"interview": "\\ud800", "turn": 1}', r"expected text without lone surrogates, found \\ud800"),
    ('{"interview": "a", "turn": ' + "9" * 5000 + "}", "expected an integer of at most 30 digits, found one of 5000"),
    ('{"interview": "a", "turn": 1, "score": NaN}', "expected a finite number .JSON has no NaN or Infinity., found NaN"),
    ('{"interview": "a", "turn": -Infinity}', "found -Infinity"),
    ('{"interview": "a", "turn": 1e999}', "expected a finite number, found 1e999"),
    ('{"interview": "a", "interview": "b"}', "expected each key once in an object, found 'interview' twice"),
    ('{"a": ' + "[" * 1000 + "]" * 1000 + "}", "expected JSON nested at most 200 levels deep"),
])
def test_any_json_value_is_one_line_never_an_internal_error(tmp_path, line, found):
    path = _write(tmp_path, '{"ok": 1}\n' + line + "\n")
    with pytest.raises(InputError, match="f.jsonl:2: .*" + found) as e:
        list(read_jsonl(path))
    assert "\n" not in str(e.value)


def test_a_line_over_the_cap_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    from extractor import jsonio

    path = _write(tmp_path, '{"a": 1}\n{"b": "' + "x" * 5000 + '"}\n')
    assert [n for n, _ in jsonio.iter_json_lines(path)] == [1, 2]
    with pytest.raises(InputError, match="f.jsonl:2: expected JSON lines of at most 1 KiB, found a longer line"):
        list(jsonio.iter_json_lines(path, max_line_bytes=1024))


def test_paired_surrogate_escapes_are_text():
    from extractor.jsonio import parse_json

    assert parse_json('{"t": "\\ud83d\\ude00"}', "x") == {"t": "\U0001f600"}
