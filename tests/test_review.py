"""Tests of the annotation loop: queue export, validation, corrections, agreement, terminal reviewer."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from extractor import review
from extractor.catalog import load_catalog
from extractor.cli import main
from extractor.errors import ExtractorError, InputError
from extractor.review.session import numbered_options
from extractor.review.tui import annotate
from extractor.types import Labels, Prediction, Turn, with_ids

CATALOG_YAML = """\
name: tiny
version: 3
phases:
- {id: collect, name: Collection, definition: Getting data.}
- {id: deploy, name: Deployment, definition: Shipping models.}
categories:
- {id: drift, name: Drift, definition: Data changes over time., phases: [deploy]}
- {id: noisy, name: Noisy labels, definition: Wrong labels., phases: [collect]}
- {id: cost, name: Cost, definition: Infrastructure is expensive.}
"""


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG_YAML)
    return load_catalog(path)


def _turns() -> list[Turn]:
    rows = []
    for k in range(6):
        rows.append(Turn("I1", 2 * k, "interviewer", f"question number {k}?"))
        rows.append(Turn("I1", 2 * k + 1, "interviewee", f"answer number {k} about data", question=f"question number {k}?"))
    return list(with_ids(rows))


def _preds(turns, scores_by_k=None) -> list[Prediction]:
    out = []
    for k, t in enumerate(x for x in turns if x.is_interviewee):
        s = (scores_by_k or {}).get(k) or {"drift": 0.1 * k, "noisy": 0.05, "cost": 0.9 - 0.1 * k,
                                           "collect": 0.05, "deploy": 0.9, "mitigation": 0.1}
        out.append(Prediction(t.interview, t.turn, t.id,
                              categories=tuple(c for c in ("drift", "noisy", "cost") if s[c] >= 0.5),
                              phases=tuple(p for p in ("collect", "deploy") if s[p] >= 0.5),
                              mitigation=s["mitigation"] >= 0.5, scores=s, text=t.text, question=t.question,
                              model="m@1"))
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _answer(path: Path, n: int, answer: str, annotator: str, accept=None, ts="2026-01-01T00:00:00Z") -> None:
    """Answer the n-th line of a queue in place, as someone editing JSON by hand would."""
    lines = path.read_text().splitlines(keepends=True)
    obj = json.loads(lines[n])
    obj.update(answer=answer, annotator=annotator, timestamp=ts)
    if accept is not None:
        obj["accept"] = accept
    lines[n] = json.dumps(obj) + "\n"
    path.write_text("".join(lines))


# --- option encoding and ordering -------------------------------------------------------------


def test_option_ids_and_label_roundtrip(catalog):
    assert review.option_ids(catalog) == ["cat:drift", "cat:noisy", "cat:cost", "phase:collect", "phase:deploy",
                                          "mitigation"]
    labels = Labels(("drift",), ("deploy",), True)
    assert review.accept_to_labels(review.labels_to_accept(labels)) == labels


def test_uncertainty_puts_borderline_turns_first(catalog):
    turns = _turns()
    preds = _preds(turns)
    # drift goes 0.0 .. 0.5 and cost 0.9 .. 0.4: turns 4 and 5 sit closest to a decision boundary.
    order = review.rank(preds, catalog, "uncertainty", thresholds={k: 0.5 for k in preds[0].scores})
    assert order == [4, 5, 3, 2, 1, 0]
    # Without thresholds they are read off the predictions: drift and cost flip between 0.4 and 0.5.
    assert set(review.rank(preds, catalog, "uncertainty")[:2]) == {4, 5}


def test_quality_order_uses_cleanlab(catalog):
    pytest.importorskip("cleanlab")
    preds = _preds(_turns())
    pri = review.priorities(preds, catalog, "quality")
    assert pri.shape == (len(preds),)
    assert int(pri.argmin()) in (4, 5)


def test_unknown_order_is_an_error(catalog):
    with pytest.raises(ExtractorError, match="unknown queue order"):
        review.priorities(_preds(_turns()), catalog, "loudest")


# --- export ------------------------------------------------------------------------------------


def test_export_writes_prodigy_style_tasks(tmp_path, catalog):
    turns = _turns()
    q = tmp_path / "queue.jsonl"
    s = review.export_queue(_preds(turns), q, catalog, turns=turns)
    assert s.added == 6
    tasks = _lines(q)
    t = next(x for x in tasks if x["meta"]["turn"] == 3)
    assert t["text"] == "answer number 1 about data"
    assert t["context"]["question"] == "question number 1?"
    assert t["context"]["previous"]["speaker"] == "interviewer"
    assert t["context"]["next"]["text"] == "question number 2?"
    assert [o["id"] for o in t["options"]] == review.option_ids(catalog)
    assert {o["id"]: o["score"] for o in t["options"]}["cat:cost"] == 0.8
    assert t["accept"] == ["cat:cost", "phase:deploy"]
    assert (t["answer"], t["annotator"], t["timestamp"]) == (None, None, None)
    assert t["meta"]["model"] == "m@1" and t["meta"]["catalog"] == "tiny@3"
    assert t["_input_hash"] == review.input_hash(t["meta"]["id"])
    assert isinstance(t["_task_hash"], int) and t["_task_hash"] != t["_input_hash"]
    assert review.validate_files([q], catalog) == []


def test_reexport_with_keep_order_keeps_every_line_and_adds_only_new(tmp_path, catalog):
    turns = _turns()
    preds = _preds(turns)
    q = tmp_path / "queue.jsonl"
    review.export_queue(preds[:3], q, catalog, turns=turns, order="file")
    _answer(q, 0, "accept", "ann", ["cat:drift"])
    before = q.read_text().splitlines(keepends=True)
    newer = [Prediction(**{**p.__dict__, "model": "m@2", "scores": {**p.scores, "drift": 0.99}}) for p in preds]
    s = review.export_queue(newer, q, catalog, turns=turns, order="file", rerank=False)
    after = q.read_text().splitlines(keepends=True)
    assert after[:3] == before  # nothing existing touched
    assert (s.added, s.kept_answered, s.kept_unanswered) == (3, 1, 2)
    assert len(after) == 6
    # --keep-order --refresh updates the unanswered tasks in place
    s = review.export_queue(newer, q, catalog, turns=turns, order="file", rerank=False, refresh=True)
    final = q.read_text().splitlines(keepends=True)
    assert final[0] == before[0]
    assert s.refreshed == 5 and s.added == 0
    assert json.loads(final[1])["meta"]["model"] == "m@2"
    assert [json.loads(x)["meta"]["turn"] for x in final] == [1, 3, 5, 7, 9, 11]


def _gain_preds(turns, cost_by_k) -> list[Prediction]:
    """Predictions whose expected gain grows with the cost score (uncoded: gain = 2 p)."""
    return _preds(turns, {k: {"drift": 0.0, "noisy": 0.0, "cost": c, "collect": 0.0, "deploy": 0.0,
                              "mitigation": 0.0} for k, c in enumerate(cost_by_k)})


def test_reexport_reranks_the_unanswered_tasks_and_keeps_answered_lines_byte_for_byte(tmp_path, catalog):
    turns = _turns()
    q = tmp_path / "queue.jsonl"
    review.export_queue(_gain_preds(turns, [0.45, 0.4, 0.3, 0.2, 0.1, 0.05]), q, catalog, turns=turns, order="gain")
    assert [t["meta"]["turn"] for t in _lines(q)] == [1, 3, 5, 7, 9, 11]
    _answer(q, 1, "reject", "ann")  # turn 3, answered in place by hand
    with q.open("a") as fh:  # and turn 1 answered the way the reviewers do: an appended line
        fh.write(json.dumps({**_lines(q)[0], "answer": "accept", "annotator": "bob", "accept": ["cat:cost"],
                             "timestamp": 1}) + "\n")
    before = q.read_text().splitlines(keepends=True)
    # after `predict --corrections` the last turns look most worth reading
    s = review.export_queue(_gain_preds(turns, [0.45, 0.4, 0.1, 0.2, 0.3, 0.4]), q, catalog, turns=turns,
                            order="gain")
    after = q.read_text().splitlines(keepends=True)
    assert after[:3] == [before[0], before[1], before[6]]  # answered turns' lines: byte for byte, in order
    pending = [json.loads(x) for x in after[3:]]
    assert [t["meta"]["turn"] for t in pending] == [11, 9, 7, 5]  # the new order
    assert pending[0]["options"][2]["score"] == 0.4 and pending[0]["answer"] is None
    assert (s.refreshed, s.added, s.kept_answered, s.kept_unanswered) == (4, 0, 2, 1)
    assert review.validate_files([q], catalog) == []
    # the same predictions again: the same bytes
    review.export_queue(_gain_preds(turns, [0.45, 0.4, 0.1, 0.2, 0.3, 0.4]), q, catalog, turns=turns, order="gain")
    assert q.read_text().splitlines(keepends=True) == after


def test_reexport_ranks_new_turns_with_the_queued_ones_and_keeps_tasks_it_cannot_rank(tmp_path, catalog):
    turns = _turns()
    q = tmp_path / "queue.jsonl"
    preds = _gain_preds(turns, [0.1, 0.2, 0.3, 0.4, 0.45, 0.05])
    review.export_queue(preds[:2], q, catalog, turns=turns, order="gain")
    first = q.read_text().splitlines(keepends=True)
    s = review.export_queue(preds[1:], q, catalog, turns=turns, order="gain", limit=2)
    after = q.read_text().splitlines(keepends=True)
    assert after[0] == first[1]  # turn 1 is not in these predictions: kept as it was, where it was
    assert [json.loads(x)["meta"]["turn"] for x in after] == [1, 9, 7, 3]  # turn 3 ranked with the 2 new ones
    assert (s.added, s.refreshed, s.kept_unanswered) == (2, 1, 1)


def test_export_limit_and_refuses_malformed_queue(tmp_path, catalog):
    turns = _turns()
    q = tmp_path / "queue.jsonl"
    assert review.export_queue(_preds(turns), q, catalog, limit=2).added == 2
    q.write_text(q.read_text() + '{"text": "cut\n')
    old = q.read_bytes()
    with pytest.raises(InputError, match=r"queue.jsonl:3: expected one JSON object per line"):
        review.export_queue(_preds(turns), q, catalog)
    assert q.read_bytes() == old


# --- validation: every problem, with file:line, nothing lost -------------------------------------


def _malformed_queue(tmp_path, catalog) -> Path:
    turns = _turns()
    q = tmp_path / "bad.jsonl"
    review.export_queue(_preds(turns), q, catalog, order="file")
    lines = q.read_text().splitlines(keepends=True)
    t = json.loads(lines[1])
    lines[1] = lines[1][: len(lines[1]) // 2] + "\n"  # truncated JSON
    t2 = json.loads(lines[2])
    t2["accept"] = ["cat:teleportation"]  # unknown category
    lines[2] = json.dumps(t2) + "\n"
    lines.append(lines[3])  # duplicated task
    t4 = json.loads(lines[4])
    t4["accept"] = "cat:drift"  # wrong type
    t4["meta"]["turn"] = "nine"
    lines[4] = json.dumps(t4) + "\n"
    t5 = json.loads(lines[5])
    t5.update(answer="maybe", annotator="ann")
    lines[5] = json.dumps(t5) + "\n"
    lines.append("[1, 2]\n")
    q.write_text("".join(lines))
    del t
    return q


def test_validate_reports_every_problem_with_file_and_line(tmp_path, catalog):
    q = _malformed_queue(tmp_path, catalog)
    old = q.read_bytes()
    msgs = [str(p) for p in review.validate_files([q], catalog)]
    text = "\n".join(msgs)
    assert f"{q}:2: expected one JSON object per line, found invalid JSON" in text
    assert f"{q}:3: expected accept ids among the catalog's options" in text and "teleportation" in text
    assert f"{q}:7: expected each task once, found duplicated task" in text and "also line 4" in text
    assert f"{q}:5: expected a list of option-id strings for \"accept\", found str" in text
    assert f"{q}:5: expected an integer \"meta.turn\", found str" in text
    assert f"{q}:6: expected \"answer\" one of accept, reject, ignore" in text
    assert f"{q}:8: expected a JSON object (one task), found list" in text
    assert q.read_bytes() == old  # validation never changes a file


def test_validate_checks_turn_ids_and_hashes(tmp_path, catalog):
    turns = _turns()
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(turns), q, catalog, order="file")
    lines = q.read_text().splitlines(keepends=True)
    t = json.loads(lines[0])
    t["meta"]["id"] = "0000deadbeef0000"
    lines[0] = json.dumps(t) + "\n"
    q.write_text("".join(lines))
    msgs = "\n".join(map(str, review.validate_files([q], catalog, turn_ids={x.id for x in turns})))
    assert f"{q}:1: expected a turn id present in the turns file, found '0000deadbeef0000'" in msgs
    assert f"{q}:1: expected \"_input_hash\"" in msgs


def test_read_corrections_refuses_malformed_files_and_names_the_line(tmp_path, catalog):
    q = _malformed_queue(tmp_path, catalog)
    with pytest.raises(InputError) as e:
        review.read_corrections([q], catalog)
    assert str(e.value).startswith(f"{q}:2: expected one JSON object per line")
    assert "more problem(s); run `extractor review validate`" in str(e.value)


def test_cli_validate_lists_all_problems_and_fails(tmp_path, catalog, capsys):
    q = _malformed_queue(tmp_path, catalog)
    assert main(["review", "validate", str(q), "--catalog", catalog.path]) == 1
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) >= 7
    assert "nothing was changed" in err


def test_cli_validate_ok(tmp_path, catalog, capsys):
    turns = _turns()
    tf = tmp_path / "turns.jsonl"
    tf.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in turns))
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(turns), q, catalog)
    assert main(["review", "validate", str(q), "--turns", str(tf), "--catalog", catalog.path]) == 0
    assert "ok: 1 file(s)" in capsys.readouterr().err


# --- corrections: latest wins, several annotators kept ---------------------------------------------


def test_read_corrections_semantics(tmp_path, catalog):
    turns = _turns()
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(turns), q, catalog, order="file")
    ids = [t["meta"]["id"] for t in _lines(q)]
    _answer(q, 0, "accept", "ann", ["cat:drift", "phase:deploy", "mitigation"], ts="2026-01-01T10:00:00Z")
    _answer(q, 1, "reject", "ann")
    _answer(q, 2, "ignore", "ann")
    # A later, second answer of the same annotator on turn 0 wins; ignore withdraws on turn 3.
    first = _lines(q)
    extra = [dict(first[0], accept=["cat:noisy"], timestamp="2026-01-02T00:00:00Z"),
             dict(first[3], answer="accept", annotator="bob", accept=["cat:cost"], timestamp="2026-01-01T00:00:00Z"),
             dict(first[3], answer="ignore", annotator="bob", accept=[], timestamp="2026-01-03T00:00:00Z")]
    with q.open("a") as fh:
        fh.writelines(json.dumps(x) + "\n" for x in extra)
    corr = review.read_corrections([q], catalog)
    assert corr == {ids[0]: Labels(("noisy",), (), False), ids[1]: Labels()}


def test_two_annotators_are_both_kept_and_agreement_computed(tmp_path, catalog, capsys):
    turns = _turns()
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(turns), q, catalog, order="file")
    base = _lines(q)
    a_sets = [["cat:drift"], ["cat:drift"], [], ["cat:noisy"], [], ["cat:cost"]]
    b_sets = [["cat:drift"], [], [], ["cat:noisy"], [], ["cat:cost", "cat:drift"]]
    rows = [dict(base[i], answer="accept", annotator=who, accept=sets[i], timestamp="2026-01-01T00:00:00Z")
            for who, sets in (("alice", a_sets), ("bob", b_sets)) for i in range(6)]
    ans = tmp_path / "answers.jsonl"
    ans.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rep = review.agreement([ans], catalog)
    assert rep["annotators"] == ["alice", "bob"] and rep["shared_turns"] == 6
    assert rep["per_label"]["cat:noisy"]["kappa"] == pytest.approx(1.0)
    assert rep["per_label"]["cat:noisy"]["alpha"] == pytest.approx(1.0)
    # drift: alice 1,1,0,0,0,0  bob 1,0,0,0,0,1 -> kappa 0.25
    assert rep["per_label"]["cat:drift"]["kappa"] == pytest.approx(0.25)
    assert rep["per_label"]["cat:drift"]["alpha"] < rep["per_label"]["cat:noisy"]["alpha"]
    assert math.isnan(rep["per_label"]["phase:collect"]["alpha"])  # nobody ever picked it
    assert main(["review", "agreement", str(ans), "--catalog", catalog.path, "--json", str(tmp_path / "a.json")]) == 0
    assert "cat:drift" in capsys.readouterr().out
    assert json.loads((tmp_path / "a.json").read_text())["shared_turns"] == 6


def test_agreement_with_one_annotator_fails_cleanly(tmp_path, catalog, capsys):
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(_turns()), q, catalog)
    _answer(q, 0, "accept", "ann")
    assert main(["review", "agreement", str(q), "--catalog", catalog.path]) == 1
    assert "no turn was answered by two annotators" in capsys.readouterr().err


def test_krippendorff_alpha_matches_hand_computation():
    # 2 coders, 4 items: (1,1) (0,0) (1,0) (0,0): o11=2, o00=4, o01=o10=1; n=8, n1=3, n0=5
    # D_o = 2/8, D_e = 2*3*5/(8*7) -> alpha = 1 - (2/8)/(30/56) = 0.5333...
    alpha = review.krippendorff_alpha_nominal([[1, 1], [0, 0], [1, 0], [0, 0], [1]])
    assert alpha == pytest.approx(1 - (2 / 8) / (30 / 56))
    assert math.isnan(review.krippendorff_alpha_nominal([[1, 1], [1, 1]]))


def test_doccano_lines_are_read_as_accept_answers(tmp_path, catalog):
    turns = _turns()
    tid = turns[1].id
    d = tmp_path / "alice.jsonl"
    d.write_text(json.dumps({"id": 7, "text": "x", "label": ["drift", "deploy", "mitigation"], "meta": {"id": tid}}) + "\n"
                 + json.dumps({"id": 8, "text": "y", "label": ["warp"], "turn_id": turns[3].id}) + "\n")
    probs = review.validate_files([d], catalog)
    assert [str(p) for p in probs] == [f"{d}:2: expected labels among the catalog's categories, phases and "
                                       f"mitigation, found 'warp'"]
    d.write_text(d.read_text().splitlines()[0] + "\n")
    assert review.read_corrections([d], catalog) == {tid: Labels(("drift",), ("deploy",), True)}
    recs = review.read_answers([d], catalog)
    assert recs[0].annotator == "doccano:alice"


def test_merge_is_append_only_and_idempotent(tmp_path, catalog):
    turns = _turns()
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(turns), q, catalog, order="file")
    _answer(q, 0, "accept", "ann", ["cat:drift"])
    _answer(q, 1, "reject", "ann")
    out = tmp_path / "corrections.jsonl"
    assert review.merge_answers([q], out, catalog)["appended"] == 2
    before = out.read_bytes()
    assert review.merge_answers([q], out, catalog)["appended"] == 0
    assert out.read_bytes() == before
    _answer(q, 2, "accept", "ann", [])
    assert review.merge_answers([q], out, catalog)["appended"] == 1
    assert out.read_bytes().startswith(before)
    assert len(review.read_corrections([out], catalog)) == 3


# --- atomic writes -----------------------------------------------------------------------------------


def test_failure_mid_export_leaves_previous_queue_intact(tmp_path, catalog, monkeypatch):
    turns = _turns()
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(turns)[:2], q, catalog)
    _answer(q, 0, "accept", "ann", ["cat:drift"])
    old = q.read_bytes()
    calls = {"n": 0}
    from extractor.review import queue as queue_module

    real = queue_module.dumps

    def exploding(obj):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(obj)

    monkeypatch.setattr(queue_module, "dumps", exploding)
    with pytest.raises(RuntimeError):
        review.export_queue(_preds(turns), q, catalog)
    assert q.read_bytes() == old
    # no temp file (the hidden writer lock, empty, stays)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".q.jsonl")] == [".q.jsonl.lock"]


def test_kill_mid_write_leaves_previous_file_intact(tmp_path):
    target = tmp_path / "q.jsonl"
    target.write_text('{"answer": "accept"}\n')
    old = target.read_bytes()
    code = (
        "import sys, time\n"
        "from extractor.jsonl import atomic_open\n"
        "with atomic_open(sys.argv[1]) as fh:\n"
        "    fh.write('partial'); fh.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert target.read_bytes() == old


# --- terminal reviewer, driven by scripted key presses ---------------------------------------------


def _run_tui(q, catalog, keys: str, annotator="ann"):
    out = io.StringIO()
    ticks = iter(f"2026-01-01T00:00:{s:02d}Z" for s in range(60))
    summary = annotate(q, annotator, catalog, stdin=io.StringIO(keys), stdout=out, clock=lambda: next(ticks))
    return summary, out.getvalue()


def test_tui_accept_toggle_reject_skip_undo_quit_and_resume(tmp_path, catalog):
    turns = _turns()
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(turns), q, catalog, order="file")
    ids = [t["meta"]["id"] for t in _lines(q)]
    pre0 = _lines(q)[0]["accept"]
    keys = "\n".join([
        "?",            # help
        "3",            # toggle cat:drift on task 0 (3rd likely option: cost 0.9, noisy 0.05, drift 0.0)
        "c cost",       # toggle cat:cost (pre-selected) off
        "m",            # mitigation on
        "a",            # accept task 0
        "r",            # reject task 1
        "u",            # undo the reject -> back to task 1
        "xyz",          # unknown command: message, nothing changes
        "p collect",
        "a",            # accept task 1 with collect added
        "s",            # skip task 2
        "q",
    ]) + "\n"
    summary, screen = _run_tui(q, catalog, keys)
    assert "commands (then Enter)" in screen and "unknown command 'xyz'" in screen
    assert summary.answered == 2 and summary.skipped == 1 and summary.undone == 1
    rows = _lines(q)
    assert len(rows) == 8 and all(r["answer"] is None for r in rows[:6])  # answers are appended; the undone one cut
    assert [r["meta"]["id"] for r in rows[6:]] == ids[:2]
    assert rows[6]["answer"] == "accept" and rows[6]["annotator"] == "ann"
    assert set(rows[6]["accept"]) == (set(pre0) ^ {"cat:drift", "cat:cost"}) | {"mitigation"}
    assert rows[7]["answer"] == "accept" and "phase:collect" in rows[7]["accept"]
    assert review.validate_files([q], catalog) == []
    # Resume: a new session starts at the skipped task; EOF quits cleanly.
    summary2, screen2 = _run_tui(q, catalog, "a\n")
    assert "task 3/6" in screen2
    assert _lines(q)[8]["meta"]["id"] == ids[2] and _lines(q)[8]["answer"] == "accept" and summary2.answered == 1
    corr = review.read_corrections([q], catalog)
    assert set(corr) == {ids[0], ids[1], ids[2]}


def test_tui_second_annotator_appends_and_first_answers_stay(tmp_path, catalog):
    turns = _turns()
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(turns)[:2], q, catalog, order="file")
    _run_tui(q, catalog, "a\na\n", annotator="alice")
    before = q.read_bytes()
    summary, _ = _run_tui(q, catalog, "r\nu\nr\nr\n", annotator="bob")
    assert summary.answered == 2
    assert q.read_bytes().startswith(before)  # alice's lines untouched, bob's appended
    rows = _lines(q)
    assert [r["annotator"] for r in rows] == [None, None, "alice", "alice", "bob", "bob"]
    summary, screen = _run_tui(q, catalog, "", annotator="bob")
    assert "nothing to review" in screen


def test_tui_refuses_malformed_queue(tmp_path, catalog):
    q = tmp_path / "q.jsonl"
    q.write_text('{"text": \n')
    with pytest.raises(InputError, match="q.jsonl:1: expected one JSON object per line"):
        _run_tui(q, catalog, "a\n")


# --- CLI export --------------------------------------------------------------------------------------


def test_cli_export_and_errors(tmp_path, catalog, capsys):
    turns = _turns()
    pf = tmp_path / "pred.jsonl"
    pf.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in _preds(turns)))
    q = tmp_path / "queue" / "q.jsonl"
    assert main(["review", "export", str(pf), "-o", str(q), "--limit", "4", "--catalog", catalog.path]) == 0
    assert len(_lines(q)) == 4
    assert "4 task(s) added" in capsys.readouterr().err
    assert main(["review", "export", str(pf), "-o", str(q), "--limit", "-1", "--catalog", catalog.path]) == 2
    assert "--limit: expected a count >= 0" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"interview": "I1", "turn": "3", "id": "x"}\n')
    assert main(["review", "export", str(bad), "-o", str(q), "--catalog", catalog.path]) == 1
    assert f'{bad}:1: expected field "turn" of type int' in capsys.readouterr().err


# --- end to end: export, annotate 50 tasks, validate, retrain, predict again ---------------------------

E2E_INTERVIEWS = ("Interview 7", "Interview 31", "Interview 34", "Interview 40")


def _agreement(preds: dict[str, set[str]], truth: dict[str, set[str]], options: list[str]) -> float:
    """Share of (turn, option) decisions where the model says what the annotator said."""
    hits = sum((o in preds[t]) == (o in truth[t]) for t in truth for o in options)
    return hits / (len(truth) * len(options))


@pytest.fixture
def one_torch_thread():
    """The classifier's tiny full-batch heads train several times faster on one thread on a
    busy 2-core machine (two threads mostly wait for each other)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.corpus
def test_annotation_loop_end_to_end(tmp_path, corpus, one_torch_thread):
    """A simulated annotator corrects 50 tasks; the retrained model moves toward the corrections.

    The flips are arbitrary (turns about anything become "drift"); the retrained model must
    still predict exactly what the annotator said on at least 90% of the corrected turns."""
    from extractor.jsonl import read_jsonl, read_turns

    turns = [t for t in read_turns(corpus / "gold" / "turns.jsonl") if t.interview in E2E_INTERVIEWS]
    gold = tmp_path / "turns.jsonl"
    gold.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in turns))
    from extractor.classify import ModelConfig, TrainConfig
    from extractor.predict import predict_file
    from extractor.train import train_model

    # Frozen model-free encoder and light heads: the loop is under test here, not the model.
    fast = dict(config=ModelConfig(base_model="hashing"), train_config=TrainConfig(device="cpu", threshold_folds=2))
    train_model([gold], tmp_path / "m0", **fast)
    predict_file(gold, tmp_path / "m0", tmp_path / "p0.jsonl")
    q = tmp_path / "queue.jsonl"
    assert main(["review", "export", str(tmp_path / "p0.jsonl"), "-o", str(q), "--turns", str(gold),
                 "--limit", "60"]) == 0
    tasks = _lines(q)
    assert len(tasks) == 60
    catalog = load_catalog()
    options = review.option_ids(catalog)

    # The annotator: on every other task the model missed "drift" in model maintenance
    # (a flip of its labels); on the others the model was right. Keys as a human types them.
    truth: dict[str, set[str]] = {}
    keys = []
    for k, t in enumerate(tasks[:50]):
        pre = set(t["accept"])
        target = {"cat:drift", "phase:model_maintenance"} if k % 2 == 0 else pre
        truth[t["meta"]["id"]] = target
        numbers = [o["id"] for o in numbered_options(t)]  # the numbers the reviewer shows
        toggles = [str(numbers.index(o) + 1) for o in sorted(pre ^ target)]
        keys += ([" ".join(toggles)] if toggles else []) + ["a"]
    summary, _ = _run_tui(q, catalog, "\n".join(keys + ["q"]) + "\n", annotator="sim")
    assert summary.answered == 50
    assert main(["review", "validate", str(q), "--turns", str(gold)]) == 0
    corrections = review.read_corrections([q], catalog)
    assert {t: review.labels_to_accept(lab) for t, lab in corrections.items()} == \
           {t: [o for o in options if o in s] for t, s in truth.items()}
    frozen = q.read_bytes()

    train_model([gold, q], tmp_path / "m1", **fast)
    card = json.loads((tmp_path / "m1" / "card.json").read_text())
    assert card["corrections"]["files"][0]["path"] == str(q)
    assert card["corrections"]["files"][0]["answers"] == 50
    assert card["corrections"]["corrections"] == 50 and card["corrections"]["applied"] == 50
    predict_file(gold, tmp_path / "m1", tmp_path / "p1.jsonl")

    def picked(path):
        rows = {r["id"]: r for r in read_jsonl(path)}
        return {t: set(review.labels_to_accept(Labels(tuple(rows[t]["categories"]), tuple(rows[t]["phases"]),
                                                       rows[t]["mitigation"]))) for t in truth}

    before, after = picked(tmp_path / "p0.jsonl"), picked(tmp_path / "p1.jsonl")
    assert _agreement(after, truth, options) > _agreement(before, truth, options)
    # corrections stick: the retrained model's own predictions are the corrected labels
    assert sum(after[t] == truth[t] for t in truth) >= 0.9 * len(truth)
    assert q.read_bytes() == frozen  # training and prediction never touch the corrections


def test_quality_order_without_cleanlab_says_how_to_install(catalog, monkeypatch):
    monkeypatch.setitem(sys.modules, "cleanlab.multilabel_classification.rank", None)
    with pytest.raises(ExtractorError, match=r"pip install 'qi-extractor\[review\]'"):
        review.priorities(_preds(_turns()), catalog, "quality")


def test_cli_merge_and_bare_review(tmp_path, catalog, capsys):
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(_turns()), q, catalog)
    _answer(q, 0, "accept", "ann", [])
    out = tmp_path / "corr.jsonl"
    assert main(["review", "merge", str(q), "-o", str(out), "--catalog", catalog.path]) == 0
    assert "1 answer(s) appended" in capsys.readouterr().err
    assert main(["review"]) == 2
    assert "export" in capsys.readouterr().out


def test_tui_second_annotator_starts_from_model_preselection_not_first_answer(tmp_path, catalog):
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(_turns())[:1], q, catalog)
    predicted = _lines(q)[0]["accept"]
    _answer(q, 0, "accept", "alice", [])  # alice: no label at all
    _, screen = _run_tui(q, catalog, "a\n", annotator="bob")
    rows = _lines(q)
    assert rows[0]["annotator"] == "alice" and rows[0]["accept"] == []
    assert rows[1]["annotator"] == "bob" and rows[1]["accept"] == predicted


# --- concurrent writers and hostile answer files (issue 12) ------------------------------------

_WORKER = """
import json, sys
from extractor.catalog import load_catalog
from extractor.review.session import save_answer
catalog_path, queue, annotator, start = sys.argv[1:5]
catalog = load_catalog(catalog_path)
tasks = [json.loads(l) for l in open(queue) if l.strip()]
print("ready", flush=True)
sys.stdin.readline()  # both processes start writing together
for k, task in enumerate(tasks):
    task.update(answer="accept", annotator=annotator, timestamp=f"2026-01-01T00:{k // 60:02d}:{k % 60:02d}Z",
                accept=["cat:drift"] if annotator == "a" else ["cat:cost"])
    save_answer(queue, task, catalog)  # what `review annotate` and the web reviewer call per answer
"""


def _many_turns(n: int) -> list[Turn]:
    return list(with_ids(Turn("I1", k, "interviewee", f"answer number {k} about data") for k in range(n)))


def _two_processes(code: str, args_a: list[str], args_b: list[str]) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    procs = [subprocess.Popen([sys.executable, "-c", code, *a], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=root, env=env) for a in (args_a, args_b)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err


def test_two_annotators_saving_at_once_lose_no_answer(tmp_path, catalog):
    """Two real processes answer every task of one queue at the same time (issue 12, class 2)."""
    q = tmp_path / "q.jsonl"
    turns = _many_turns(40)
    review.export_queue(_preds(turns, {k: {"drift": 0.2, "noisy": 0.1, "cost": 0.7, "collect": 0.1, "deploy": 0.8,
                                           "mitigation": 0.1} for k in range(40)}), q, catalog, order="file")
    cat = str(tmp_path / "catalog.yaml")
    _two_processes(_WORKER, [cat, str(q), "a", "0"], [cat, str(q), "b", "0"])
    recs, problems = review.parse_file(q, catalog)
    assert problems == []
    got = {(r.turn_id, r.annotator) for r in recs if r.obj is not None and r.answered}
    assert got == {(t.id, a) for t in turns for a in ("a", "b")}  # 80 answers, none lost
    assert sum(1 for r in recs if r.obj is not None and not r.answered) == 40  # answers are appended


def test_two_merges_into_one_file_lose_no_answer(tmp_path, catalog):
    """Two real `extractor review merge` processes append into one corrections file at once."""
    turns = _many_turns(60)
    preds = _preds(turns, {k: {"drift": 0.2, "noisy": 0.1, "cost": 0.7, "collect": 0.1, "deploy": 0.8,
                               "mitigation": 0.1} for k in range(60)})
    files = []
    for ann in ("a", "b"):
        q = tmp_path / f"q_{ann}.jsonl"
        review.export_queue(preds, q, catalog, order="file")
        lines = q.read_text().splitlines()
        out = []
        for k, line in enumerate(lines):
            obj = json.loads(line)
            obj.update(answer="accept", annotator=ann, timestamp=f"2026-01-01T00:00:{k:02d}Z")
            out.append(json.dumps(obj))
        q.write_text("\n".join(out) + "\n")
        files.append(q)
    corr = tmp_path / "corrections.jsonl"
    code = ("import sys\nprint('ready', flush=True)\nsys.stdin.readline()\n"
            "from extractor.cli import main\nsys.exit(main(['review', 'merge', sys.argv[1], '-o', sys.argv[2], "
            "'--catalog', sys.argv[3]]))\n")
    cat = str(tmp_path / "catalog.yaml")
    for _ in range(3):  # several rounds: the race needs the two to overlap
        corr.unlink(missing_ok=True)
        _two_processes(code, [str(files[0]), str(corr), cat], [str(files[1]), str(corr), cat])
        got = {(r.turn_id, r.annotator) for r in review.read_answers([corr], catalog)}
        assert got == {(t.id, a) for t in turns for a in ("a", "b")}


def test_timestamp_validate_accepts_is_one_merge_can_write(tmp_path, catalog):
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(_turns())[:2], q, catalog)
    for ts, n in ((1e300, 0), ("9999-12-31T23:59:59-05:00", 1)):
        lines = q.read_text().splitlines(keepends=True)
        obj = json.loads(lines[n])
        obj.update(answer="accept", annotator="ann", timestamp=ts)
        lines[n] = json.dumps(obj) + "\n"
        q.write_text("".join(lines))
    problems = review.validate_files([q], catalog)
    assert [p.line for p in problems] == [1, 2]
    assert all('"timestamp" as an ISO 8601 string' in str(p) for p in problems)
    cat = str(tmp_path / "catalog.yaml")
    assert main(["review", "merge", str(q), "-o", str(tmp_path / "c.jsonl"), "--catalog", cat]) == 1
    assert not (tmp_path / "c.jsonl").exists()


def test_deeply_nested_json_is_a_problem_not_a_crash(tmp_path, catalog):
    q = tmp_path / "q.jsonl"
    q.write_text('{"meta": ' + "[" * 100000 + "]" * 100000 + "}\n")
    problems = review.validate_files([q], catalog)
    assert [str(p) for p in problems] == [f"{q}:1: expected a JSON object nested at most a few hundred levels deep, "
                                          "found deeper nesting"]


def test_queue_that_is_a_fifo_is_refused_without_hanging(tmp_path, catalog):
    fifo = tmp_path / "q.jsonl"
    os.mkfifo(fifo)
    problems = review.validate_files([fifo], catalog)
    assert [str(p) for p in problems] == [f"{fifo}: expected a JSONL file, found a FIFO (named pipe)"]


@pytest.mark.parametrize("field, value, expected", [
    ("categories", "drift", 'expected "categories" as a list of id strings, found str'),
    ("mitigation", "no", 'expected "mitigation" as true or false, found str'),
])
def test_predictions_are_read_strictly(tmp_path, field, value, expected):
    p = tmp_path / "p.jsonl"
    row = {"interview": "I", "turn": 1, "id": "x", "categories": [], "phases": [], "mitigation": False}
    p.write_text(json.dumps(row | {"id": "y"}) + "\n" + json.dumps(row | {field: value}) + "\n")
    with pytest.raises(InputError, match=f"p.jsonl:2: {expected}"):
        review.read_predictions(p)


def test_duplicate_prediction_ids_are_an_error(tmp_path):
    p = tmp_path / "p.jsonl"
    row = {"interview": "I", "turn": 1, "id": "x", "categories": [], "phases": [], "mitigation": False}
    p.write_text(json.dumps(row) + "\n\n" + json.dumps(row | {"turn": 3}) + "\n")
    with pytest.raises(InputError, match=r"p.jsonl:3: expected each prediction id once, found id 'x' again "
                                         r"\(also line 1\)"):
        review.read_predictions(p)


# --- disagreements between annotators (issue 18, item 4) ----------------------------------------------


def _two_annotators(tmp_path, catalog) -> tuple[Path, list[str]]:
    """alice and bob answer the same three turns; they disagree on turns 0 and 2."""
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(_turns()), q, catalog, order="file")
    base = _lines(q)
    rows = [dict(base[0], answer="accept", annotator="alice", accept=["cat:drift"], timestamp="2026-01-01T00:00:00Z"),
            dict(base[1], answer="reject", annotator="alice", accept=[], timestamp="2026-01-01T00:00:01Z"),
            dict(base[2], answer="accept", annotator="alice", accept=["cat:cost"], timestamp="2026-01-01T00:00:02Z"),
            dict(base[0], answer="accept", annotator="bob", accept=["cat:noisy"], timestamp="2026-01-02T00:00:00Z"),
            dict(base[1], answer="reject", annotator="bob", accept=[], timestamp="2026-01-02T00:00:01Z"),
            dict(base[2], answer="reject", annotator="bob", accept=[], timestamp="2026-01-02T00:00:02Z")]
    with q.open("a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return q, [b["meta"]["id"] for b in base]


def test_conflicts_are_counted_and_the_latest_answer_counts_with_a_warning(tmp_path, catalog, caplog):
    q, ids = _two_annotators(tmp_path, catalog)
    labels, conflicts = review.resolve_corrections(review.read_answers([q], catalog))
    assert labels[ids[0]] == Labels(("noisy",)) and labels[ids[2]] == Labels() and labels[ids[1]] == Labels()
    assert [c.turn_id for c in conflicts] == [ids[0], ids[2]]
    assert str(conflicts[0]) == f"{q}:7 (alice) vs {q}:10 (bob)"
    with caplog.at_level("WARNING"):
        assert review.read_corrections([q], catalog) == labels
    assert f"2 turn(s) answered differently by two annotators; first: {q}:7 (alice) vs {q}:10 (bob)" in caplog.text
    assert "the most recent answer counts (--on-conflict latest" in caplog.text
    with pytest.raises(ExtractorError, match=r"2 turn\(s\) answered differently .* pass --on-conflict latest"):
        review.read_corrections([q], catalog, on_conflict="refuse")
    with pytest.raises(ExtractorError, match="--on-conflict: expected one of latest, refuse, found 'first'"):
        review.read_corrections([q], catalog, on_conflict="first")
    # One annotator changing their mind is no conflict.
    assert review.resolve_corrections(r for r in review.read_answers([q], catalog) if r.annotator == "alice")[1] == []


def test_cli_validate_and_train_report_conflicts_and_refuse_on_request(tmp_path, catalog, capsys):
    q, _ids = _two_annotators(tmp_path, catalog)
    assert main(["review", "validate", str(q), "--catalog", catalog.path]) == 0
    err = capsys.readouterr().err
    assert f"warning: 2 turn(s) answered differently by two annotators; first: {q}:7 (alice) vs {q}:10 (bob)" in err
    assert "ok: 1 file(s)" in err
    assert main(["review", "validate", str(q), "--catalog", catalog.path, "--on-conflict", "refuse"]) == 1
    assert f"error: 2 turn(s) answered differently by two annotators; first: {q}:7 (alice)" in capsys.readouterr().err
    gold = tmp_path / "turns.jsonl"
    gold.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in _turns()))
    out = tmp_path / "model"
    assert main(["train", str(gold), str(q), "-o", str(out), "--catalog", catalog.path, "--fast",
                 "--on-conflict", "refuse"]) == 1
    assert f"error: 2 turn(s) answered differently by two annotators; first: {q}:7" in capsys.readouterr().err
    assert not out.exists()  # refused before any training


def test_train_reads_corrections_with_the_latest_rule_by_default(tmp_path, catalog, caplog):
    from extractor.train import load_training_turns

    q, ids = _two_annotators(tmp_path, catalog)
    gold = tmp_path / "turns.jsonl"
    gold.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in _turns()))
    with caplog.at_level("WARNING"):
        turns = {t.id: t for t in load_training_turns([gold, q], catalog)}
    assert turns[ids[0]].labels == Labels(("noisy",)) and turns[ids[0]].label_source == "review"
    assert "2 turn(s) answered differently by two annotators" in caplog.text
    with pytest.raises(ExtractorError, match="answered differently"):
        load_training_turns([gold, q], catalog, on_conflict="refuse")


def test_agreement_reports_each_pair_of_annotators(tmp_path, catalog, capsys):
    q, _ids = _two_annotators(tmp_path, catalog)
    rep = review.agreement([q], catalog)
    assert rep["conflicts"] == 2 and rep["first_conflict"] == f"{q}:7 (alice) vs {q}:10 (bob)"
    (pair,) = rep["pairs"]
    assert pair["annotators"] == ["alice", "bob"] and pair["turns"] == 3
    assert pair["same_labels"] == pytest.approx(1 / 3)
    # 3 turns x 6 options: alice drift+cost, bob noisy; they agree on 14 of 18 "no"s, never on a "yes".
    assert pair["kappa"] == pytest.approx(review.kappa([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
                                                       [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
    assert main(["review", "agreement", str(q), "--catalog", catalog.path]) == 0
    out = capsys.readouterr().out
    assert "alice vs bob" in out and "turns where the answers that count differ: 2" in out


def test_kappa_comes_from_scikit_learn_and_is_none_where_undefined():
    from sklearn.metrics import cohen_kappa_score

    a, b = [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 1]
    assert review.kappa(a, b) == pytest.approx(cohen_kappa_score(a, b)) == pytest.approx(0.25)
    assert review.kappa([0, 0, 0], [0, 0, 0]) is None and review.kappa([], []) is None


# --- hostile cases (issue 20): symlinked queues, NaN scores, hash collisions --------------------------


def test_annotate_and_merge_on_a_symlinked_queue_write_its_target_and_lock_it(tmp_path, catalog):
    real_dir, link_dir = tmp_path / "shared", tmp_path / "mine"
    real_dir.mkdir()
    link_dir.mkdir()
    target = real_dir / "q.jsonl"
    review.export_queue(_preds(_turns()), target, catalog, order="file")
    link = link_dir / "q.jsonl"
    link.symlink_to(target)
    _run_tui(link, catalog, "a\nr\nu\nq\n")
    assert link.is_symlink() and link.resolve() == target
    assert [r["answer"] for r in _lines(target)].count("accept") == 1  # the answer went to the target
    assert (real_dir / ".q.jsonl.lock").exists() and not (link_dir / ".q.jsonl.lock").exists()
    # merge into a corrections file that is a link: through it, the link stays
    corr_target = real_dir / "corrections.jsonl"
    corr_target.write_text("")
    corr_link = link_dir / "corrections.jsonl"
    corr_link.symlink_to(corr_target)
    assert review.merge_answers([target], corr_link, catalog)["appended"] == 1
    assert corr_link.is_symlink() and len(_lines(corr_target)) == 1
    assert (real_dir / ".corrections.jsonl.lock").exists()
    # export through a link: the same
    review.export_queue(_preds(_turns()), link, catalog, order="file", refresh=True)
    assert link.is_symlink() and len(_lines(target)) == 7


def test_nan_scores_never_make_nan_priorities_or_invalid_json(tmp_path, catalog):
    nan = float("nan")
    preds = _preds(_turns(), {0: {"drift": nan, "noisy": 0.05, "cost": nan, "collect": 0.05, "deploy": 0.9,
                                  "mitigation": float("inf")}})
    for order in ("uncertainty", "quality", "random", "file"):
        pri = review.priorities(preds, catalog, order)
        assert np.isfinite(pri).all(), order
    assert np.isfinite(review.priorities(preds, catalog, "uncertainty", thresholds={"drift": nan})).all()
    q = tmp_path / "q.jsonl"
    review.export_queue(preds, q, catalog)
    text = q.read_text()
    assert "NaN" not in text and "Infinity" not in text
    task = next(t for t in _lines(q) if t["meta"]["turn"] == 1)
    assert {o["id"]: o["score"] for o in task["options"]}["cat:drift"] is None
    assert review.validate_files([q], catalog) == []
    # A NaN score written by another tool is a problem of that line, not a crash.
    rows = text.splitlines()
    rows[0] = rows[0].replace('"score": 0.05', '"score": NaN', 1)
    q.write_text("\n".join(rows) + "\n")
    assert [p.line for p in review.validate_files([q], catalog)] == [1]
    assert "a finite number or null for options[" in str(review.validate_files([q], catalog)[0])


def test_two_tasks_whose_32_bit_hashes_collide_are_not_duplicates(tmp_path, catalog):
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(_turns())[:2], q, catalog, order="file")
    rows = _lines(q)
    rows[1]["_task_hash"] = rows[0]["_task_hash"]  # what 20,000 tasks' Prodigy-style hashes do by chance
    q.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert review.validate_files([q], catalog) == []


def test_validate_prints_problems_with_control_characters_escaped(tmp_path, catalog, capsys):
    q = tmp_path / "q.jsonl"
    review.export_queue(_preds(_turns())[:1], q, catalog)
    row = _lines(q)[0]
    row["accept"] = ["cat:\x1b]0;pwned\x07\x9b"]
    q.write_text(json.dumps(row, ensure_ascii=False) + "\n")
    assert main(["review", "validate", str(q), "--catalog", catalog.path]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\\x1b]0;pwned\\x07\\x9b" in out
