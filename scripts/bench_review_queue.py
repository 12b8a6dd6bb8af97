#!/usr/bin/env python
"""What an answer costs in a big review queue, and what re-scoring costs in the web reviewer.

1. ``answer``: a queue of ``--tasks`` tasks (the packaged catalog's 36 options each) is
   written once; then, in a fresh process, the web reviewer's state is built (the queue read
   once, streamed) and ``--answers`` answers are given through it, each timed (append under
   the lock + reading the new line + the next task). Peak resident memory of that process
   is reported (``ru_maxrss``), start-up included.
2. ``teach``: a queue of 1,000 tasks served with a teacher implementing the TeachSession
   contract (a numpy fake: a taught category raises that score on every turn) — the time
   per answer, re-scoring and re-ordering of the 999 pending tasks included.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/bench_review_queue.py [--tasks 20000] [--answers 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_queue(path: Path, n: int) -> None:
    """``n`` tasks written as export writes them (without the ordering, to be quick)."""
    from extractor.catalog import load_catalog
    from extractor.review.queue import dumps, make_task
    from extractor.types import Prediction

    catalog = load_catalog()
    keys = catalog.category_ids + catalog.phase_ids + ["mitigation"]
    with path.open("w", encoding="utf-8") as fh:
        for k in range(n):
            scores = {c: ((k * 7 + j * 13) % 100) / 100 for j, c in enumerate(keys)}
            pred = Prediction(f"Interview {k // 50}", k, f"t{k:07d}", categories=("drift",), phases=(),
                              mitigation=False, scores=scores, text="We retrained the model every week. " * 12,
                              question="How did you notice it?", model="bench@1")
            fh.write(dumps(make_task(pred, catalog, order="file", priority=k)))
        fh.flush()
        os.fsync(fh.fileno())  # on disk before the timing, as a queue exported earlier is


def answer(queue: Path, answers: int) -> dict:
    """In this process: start the web reviewer's state, answer ``answers`` tasks, time each."""
    from extractor.catalog import load_catalog
    from extractor.review.web_state import ReviewState

    catalog = load_catalog()
    t0 = time.perf_counter()
    state = ReviewState(queue, "bench", catalog)
    task = state.state("tab")["task"]
    start_s = time.perf_counter() - t0
    took = []
    for _ in range(answers):
        t = time.perf_counter()
        task = state.answer("tab", task["id"], "accept", ["cat:drift"])["task"]
        took.append(time.perf_counter() - t)
    tui = terminal(queue, answers)
    return {"start_s": round(start_s, 2), "answer_ms_median": round(1000 * statistics.median(took), 1),
            "answer_ms_first": round(1000 * took[0], 1), "answer_ms_max_after_first": round(1000 * max(took[1:]), 1),
            "terminal_answer_ms_median": round(1000 * statistics.median(tui), 1),
            "terminal_answer_ms_max": round(1000 * max(tui), 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def terminal(queue: Path, answers: int) -> list[float]:
    """The terminal reviewer on the same queue: seconds from each `a` to the next prompt."""
    import io

    from extractor.catalog import load_catalog
    from extractor.review.tui import Reviewer

    reviewer = Reviewer(queue, "bench-terminal", load_catalog(), out=io.StringIO())
    took: list[float] = []
    marks = iter(range(answers + 1))

    def read_line() -> str | None:
        now = time.perf_counter()
        if took or reviewer.summary.answered:
            took[-1] = now - took[-1]
        if next(marks) == answers:
            return None
        took.append(now)
        return "a"

    reviewer.run(read_line)
    return took


def teach(tmp: Path, n: int = 1000, answers: int = 10) -> dict:
    import numpy as np

    from extractor.catalog import load_catalog
    from extractor.review.log import QueueLog
    from extractor.review.web_state import ReviewState, teacher_turns
    from extractor.types import Prediction

    catalog = load_catalog()
    queue = tmp / "teach.jsonl"
    make_queue(queue, n)
    turns = [t for t in teacher_turns(QueueLog(queue, catalog, "bench").view) if t.speaker == "interviewee"]
    keys = catalog.category_ids + catalog.phase_ids + ["mitigation"]
    base = np.random.default_rng(0).random((len(turns), len(keys))) * 0.6

    cats = set(catalog.category_ids)

    class Teacher:  # the TeachSession contract, vectorised
        taught: list = []

        def teach(self, turn_id, labels):
            self.taught.append(labels)

        def predictions(self):
            boost = np.array([any(k in lab.categories for lab in self.taught) for k in keys]) * 0.3
            s = np.minimum(1.0, base + boost)
            return [Prediction(t.interview, t.turn, t.id, categories=tuple(k for k, v in zip(keys, row) if v >= 0.5
                                                                           and k in cats),
                               phases=(), mitigation=False, scores=dict(zip(keys, row.tolist())))
                    for t, row in zip(turns, s)]

    teacher = Teacher()
    state = ReviewState(queue, "bench", catalog, teacher=teacher)
    task = state.state("tab")["task"]
    took = []
    for _ in range(answers):
        t = time.perf_counter()
        task = state.answer("tab", task["id"], "accept", ["cat:drift"])["task"]
        took.append(time.perf_counter() - t)
    t = time.perf_counter()
    teacher.predictions()
    fake_s = time.perf_counter() - t
    return {"tasks": n, "answer_ms_median": round(1000 * statistics.median(took), 1),
            "answer_ms_max": round(1000 * max(took), 1), "of_which_fake_predictions_ms": round(1000 * fake_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--answers", type=int, default=20)
    ap.add_argument("--answer-only", type=Path, help=argparse.SUPPRESS)  # the measured child process
    args = ap.parse_args()
    if args.answer_only:
        print(json.dumps(answer(args.answer_only, args.answers)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        queue = Path(tmp) / "queue.jsonl"
        make_queue(queue, args.tasks)
        size_mb = queue.stat().st_size / 1e6
        child = subprocess.run([sys.executable, __file__, "--answer-only", str(queue), "--answers", str(args.answers)],
                               capture_output=True, text=True, check=True, cwd=REPO)
        big = json.loads(child.stdout)
        print(json.dumps({"answer": {"tasks": args.tasks, "queue_mb": round(size_mb, 1), **big},
                          "teach": teach(Path(tmp))}, indent=2))


if __name__ == "__main__":
    main()
