"""Tests of what both reviewers share: the queue as one annotator sees it, likely options, the locked writer."""

from __future__ import annotations

import json
import threading

import pytest

from extractor import review
from extractor.catalog import load_catalog
from extractor.errors import ExtractorError, InputError
from extractor.review import read_corrections, session
from extractor.review.log import QueueLog
from extractor.review.session import answer_task, describe_answer, likely_options, numbered_options, save_answer, undo_answer
from extractor.types import Labels, Prediction

CATALOG_YAML = """\
name: tiny
version: 1
phases:
- {id: collect, name: Collection, definition: Getting data.}
- {id: train, name: Training, definition: Fitting models.}
- {id: deploy, name: Deployment, definition: Shipping models.}
categories:
- {id: drift, name: Drift, definition: Data changes over time.}
- {id: noisy, name: Noisy labels, definition: Wrong labels.}
- {id: cost, name: Cost, definition: Infrastructure is expensive.}
- {id: privacy, name: Privacy, definition: Personal data.}
- {id: slow, name: Slow pipelines, definition: Pipelines take long.}
"""


@pytest.fixture
def catalog(tmp_path):
    (tmp_path / "c.yaml").write_text(CATALOG_YAML)
    return load_catalog(tmp_path / "c.yaml")


@pytest.fixture
def queue(tmp_path, catalog):
    preds = [Prediction("I1", 2 * k + 1, f"t{k}", categories=("privacy",), phases=(), mitigation=False,
                        scores={"drift": 0.9, "noisy": 0.2, "cost": 0.5, "privacy": 0.01, "slow": 0.3,
                                "collect": 0.1, "train": 0.6, "deploy": 0.4, "mitigation": 0.05},
                        text=f"answer {k}", question="q?", model="m@1") for k in range(3)]
    q = tmp_path / "q.jsonl"
    review.export_queue(preds, q, catalog, order="file")
    return q


def test_likely_options_are_the_picks_and_the_top_scores_by_kind(queue, catalog):
    task = json.loads(queue.read_text().splitlines()[0])
    # privacy is the model's pick despite its low score; then the top three categories, two phases.
    assert likely_options(task) == ["cat:drift", "cat:cost", "cat:slow", "cat:privacy", "phase:train",
                                    "phase:deploy", "mitigation"]
    assert likely_options(task, categories=1, phases=0) == ["cat:drift", "cat:privacy", "mitigation"]
    assert likely_options({"options": [{"id": "cat:drift", "score": None}, "junk"]}) == ["cat:drift"]


def test_queue_view_per_annotator_and_other_annotators_verdicts_are_not_shown(queue, catalog):
    task = json.loads(queue.read_text().splitlines()[0])
    save_answer(queue, answer_task(task, "accept", ["cat:cost"], "alice", "2026-01-01T00:00:00Z"), catalog)
    alice = QueueLog(queue, catalog, "alice").view
    assert alice.total == 3 and alice.done == {"t0"} and alice.pending() == ["t1", "t2"]
    bob = QueueLog(queue, catalog, "bob").view
    assert bob.pending() == ["t0", "t1", "t2"]
    assert bob.tasks["t0"]["accept"] == ["cat:privacy"] and bob.tasks["t0"]["answer"] is None  # not alice's


def test_numbered_options_are_the_likely_ones_then_the_rest_in_catalog_order(queue, catalog):
    task = json.loads(queue.read_text().splitlines()[0])
    ids = [o["id"] for o in numbered_options(task)]
    assert ids[:7] == likely_options(task)
    assert ids[7:] == ["cat:noisy", "phase:collect"]  # the others, in catalog order
    assert sorted(ids) == sorted(o["id"] for o in task["options"])


def test_save_appends_and_undo_cuts_it_back_or_withdraws(queue, catalog):
    before = queue.read_bytes()
    task = json.loads(queue.read_text().splitlines()[1])
    a = answer_task(task, "accept", ["phase:train", "cat:drift"], "alice", "2026-01-01T00:00:00Z")
    assert a["accept"] == ["cat:drift", "phase:train"]  # option order
    assert describe_answer(a) == "accept: Drift, Training"
    saved_a = save_answer(queue, a, catalog)
    assert queue.read_bytes() == before + saved_a.line.encode() and saved_a.end == len(queue.read_bytes())
    b = answer_task(task, "reject", ["cat:drift"], "bob", "2026-01-01T00:00:01Z")
    assert b["accept"] == [] and describe_answer(b) == "reject (no option applies)"
    saved_b = save_answer(queue, b, catalog)
    log = QueueLog(queue, catalog, "alice")
    assert log.view.done == {"t1"}
    # alice's answer is no longer the last line: her undo appends a withdrawal (an ignore answer)
    assert undo_answer(queue, saved_a, catalog, clock=lambda: "2026-01-01T00:00:02Z")
    assert json.loads(queue.read_text().splitlines()[-1])["answer"] == "ignore"
    assert log.refresh().done == set() and log.view.pending() == ["t0", "t1", "t2"]
    assert read_corrections([queue], catalog) == {"t1": Labels()}  # bob's reject still counts
    assert not undo_answer(queue, saved_a, catalog, clock=lambda: "2026-01-01T00:00:03Z")  # already withdrawn
    # bob's line is the last but one now: withdrawn too; then a last line is simply cut back
    assert undo_answer(queue, saved_b, catalog, clock=lambda: "2026-01-01T00:00:04Z")
    size = len(queue.read_bytes())
    c = save_answer(queue, answer_task(task, "reject", [], "carol", "2026-01-01T00:00:05Z"), catalog)
    assert undo_answer(queue, c, catalog, clock=lambda: "t") and len(queue.read_bytes()) == size
    assert read_corrections([queue], catalog) == {}
    with pytest.raises(ExtractorError, match="answer: expected accept, reject or ignore, found 'maybe'"):
        answer_task(task, "maybe", [], "alice", "t")


def test_a_queue_log_reads_only_what_grew_and_notices_a_replaced_file(queue, catalog):
    log = QueueLog(queue, catalog, "alice")
    offset = log.offset
    task = json.loads(queue.read_text().splitlines()[0])
    save_answer(queue, answer_task(task, "reject", [], "alice", "2026-01-01T00:00:00Z"), catalog)
    assert log.refresh().done == {"t0"} and log.offset > offset and log.count == 4
    queue.write_text(queue.read_text().splitlines(keepends=True)[0])  # rewritten in place: shorter
    assert log.refresh().total == 1 and log.view.done == set()
    replaced = queue.with_suffix(".new")
    replaced.write_text(queue.read_text() + "not json\n")
    replaced.replace(queue)  # another inode: read again from the start
    with pytest.raises(InputError, match=r"q.jsonl:2: expected one JSON object per line"):
        log.refresh()


def test_a_held_lock_is_a_one_line_error_after_the_timeout(queue, catalog, monkeypatch):
    from filelock import FileLock

    from extractor.safeio import lock_path

    monkeypatch.setattr(session, "LOCK_TIMEOUT_S", 0.2)
    task = json.loads(queue.read_text().splitlines()[0])
    held = threading.Event()
    release = threading.Event()

    def holder():
        with FileLock(str(lock_path(queue))):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    try:
        held.wait(5)
        with pytest.raises(ExtractorError, match=r"q.jsonl: expected to be the only writer, found it locked by another "
                                                 r"process for 0.2s \(.*/\.q.jsonl\.lock\)"):
            save_answer(queue, answer_task(task, "reject", [], "a", "2026-01-01T00:00:00Z"), catalog)
    finally:
        release.set()
        t.join()
    assert all(json.loads(x)["answer"] is None for x in queue.read_text().splitlines())


def test_an_answer_appends_one_line_and_the_reviewer_reads_only_that_line(queue, catalog, monkeypatch):
    from extractor.review import formats

    log = QueueLog(queue, catalog, "alice")
    inode, before = queue.stat().st_ino, queue.read_bytes()
    parsed: list[int] = []
    real = formats.LineParser.parse
    monkeypatch.setattr(formats.LineParser, "parse", lambda self, n, raw: (parsed.append(n), real(self, n, raw))[1])
    task = json.loads(before.decode().splitlines()[2])
    saved = save_answer(queue, answer_task(task, "accept", ["cat:cost"], "alice", "2026-01-01T00:00:00Z"), catalog)
    assert queue.stat().st_ino == inode and queue.read_bytes() == before + saved.line.encode()  # not rewritten
    parsed.clear()
    assert log.refresh().done == {"t2"} and parsed == [4]  # the new line only, not the whole queue
