"""Tests of what both reviewers share: the queue as one annotator sees it, likely options, the locked writer."""

from __future__ import annotations

import json
import threading

import pytest

from extractor import review, review_session
from extractor.catalog import load_catalog
from extractor.errors import ExtractorError
from extractor.review_session import (answer_task, describe_answer, likely_options, queue_view, read_queue,
                                      save_answer, undo_answer)
from extractor.types import Prediction

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
    alice = queue_view(read_queue(queue, catalog), "alice")
    assert alice.total == 3 and alice.done == {"t0"} and alice.pending() == ["t1", "t2"]
    bob = queue_view(read_queue(queue, catalog), "bob")
    assert bob.pending() == ["t0", "t1", "t2"]
    assert bob.tasks["t0"]["accept"] == ["cat:privacy"] and bob.tasks["t0"]["answer"] is None  # not alice's


def test_save_replaces_the_unanswered_line_then_appends_and_undo_restores(queue, catalog):
    before = queue.read_bytes()
    task = json.loads(queue.read_text().splitlines()[1])
    a = answer_task(task, "accept", ["phase:train", "cat:drift"], "alice", "2026-01-01T00:00:00Z")
    assert a["accept"] == ["cat:drift", "phase:train"]  # option order
    assert describe_answer(a) == "accept: Drift, Training"
    line, replaced = save_answer(queue, a, catalog)
    assert replaced == before.decode().splitlines(keepends=True)[1] and queue.read_text().splitlines()[1] == line.strip()
    b = answer_task(task, "reject", ["cat:drift"], "bob", "2026-01-01T00:00:01Z")
    assert b["accept"] == [] and describe_answer(b) == "reject (no option applies)"
    line_b, replaced_b = save_answer(queue, b, catalog)
    assert replaced_b is None and queue.read_text().splitlines()[-1] == line_b.strip()
    assert undo_answer(queue, line_b, replaced_b, catalog) and undo_answer(queue, line, replaced, catalog)
    assert queue.read_bytes() == before
    assert not undo_answer(queue, line, replaced, catalog)  # already gone
    with pytest.raises(ExtractorError, match="answer: expected accept, reject or ignore, found 'maybe'"):
        answer_task(task, "maybe", [], "alice", "t")


def test_a_held_lock_is_a_one_line_error_after_the_timeout(queue, catalog, monkeypatch):
    from filelock import FileLock

    monkeypatch.setattr(review_session, "LOCK_TIMEOUT_S", 0.2)
    task = json.loads(queue.read_text().splitlines()[0])
    held = threading.Event()
    release = threading.Event()

    def holder():
        with FileLock(str(review_session.lock_path(queue))):
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
