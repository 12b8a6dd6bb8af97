"""Retrain from a model, and "corrections stick" (issue #18).

Simulated reviewers answer N interviewee turns of the corpus interviews that carry no gold
labels (the packaged model never trained on them), each answer a label set drawn from the gold
turns (a quarter "no issue"), seeded. Then:

1. ``extractor train GOLD ANSWERS -o M --from default --cache-dir CACHE`` is timed (wall
   seconds of the command, cold cache and warm cache);
2. optionally (``--scratch``) the same data trains a model from scratch (``--fast``: frozen
   encoder; the full LoRA train takes 5-17 min on 2 cores);
3. each model predicts the answered interviews (no ``--corrections``): the share of the first
   ``--stick`` answered turns, and of all, predicted exactly as answered (categories, phases and
   mitigation; and categories only).

    python scripts/bench_retrain.py --corpus ../shared/corpus --answers 500 --stick 40 --work /tmp/retrain [--scratch]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extractor.classify import IssueClassifier  # noqa: E402
from extractor.jsonl import read_turns, write_jsonl  # noqa: E402
from extractor.review import labels_to_accept  # noqa: E402
from extractor.types import Labels  # noqa: E402


def simulate_answers(gold: Path, n: int, seed: int) -> tuple[list, list[dict], dict[str, Labels]]:
    """(turns of the answered interviews, answer lines, turn id -> answered labels)."""
    turns = read_turns(gold)
    labelled = {t.interview for t in turns if t.labels is not None}
    seen: dict[str, int] = {}
    for t in turns:
        seen[t.text] = seen.get(t.text, 0) + 1
    pool = [t for t in turns if t.interview not in labelled and t.is_interviewee and len(t.text.split()) >= 8
            and seen[t.text] == 1]
    donors = [t.labels for t in turns if t.labels is not None and t.is_interviewee]
    issues = [lab for lab in donors if lab.categories]
    rng = random.Random(seed)
    chosen = rng.sample(pool, min(n, len(pool)))
    answers, want = [], {}
    for k, t in enumerate(chosen):
        lab = Labels((), (), False) if k % 4 == 3 else rng.choice(issues)
        want[t.id] = lab
        accept = labels_to_accept(lab)
        answers.append({"text": t.text, "meta": {"id": t.id, "interview": t.interview, "turn": t.turn},
                        "options": [{"id": a, "text": a} for a in accept], "accept": accept, "answer": "accept",
                        "annotator": "sim", "timestamp": "2026-12-03T00:00:00Z"})
    keep = {t.interview for t in chosen}
    return [t for t in turns if t.interview in keep], answers, want


def train(args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall and CPU seconds of one ``extractor train`` command (CPU time says what the command
    costs when other jobs share the cores)."""
    import resource

    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-m", "extractor", "train", *args], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"train failed: {r.stderr.strip().splitlines()[-1]}")
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 1)}


def stick(model: Path, turns: list, want: dict[str, Labels], first: int, cache: Path) -> dict[str, float]:
    preds = {p.id: p for p in IssueClassifier.load(model, cache_dir=cache).predict(turns, evidence=False)}
    ids = list(want)

    def share(sel: list[str], strict: bool) -> float:
        ok = [set(preds[i].categories) == set(want[i].categories)
              and (not strict or (set(preds[i].phases) == set(want[i].phases)
                                  and preds[i].mitigation == want[i].mitigation)) for i in sel]
        return round(sum(ok) / max(len(ok), 1), 3)

    return {f"first{first}_exact": share(ids[:first], True), f"first{first}_categories": share(ids[:first], False),
            "all_exact": share(ids, True), "all_categories": share(ids, False), "answered": len(ids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--answers", type=int, default=500)
    ap.add_argument("--stick", type=int, default=40)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scratch", action="store_true", help="also train from scratch (--fast) and measure it")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--cache", type=Path, help="embedding cache (default: WORK/cache; a filled one skips the cold run)")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    gold, cache = a.corpus / "gold" / "turns.jsonl", a.cache or a.work / "cache"
    turns, answers, want = simulate_answers(gold, a.answers, a.seed)
    write_jsonl(a.work / "answers.jsonl", answers)
    env = {**os.environ, "OMP_NUM_THREADS": a.threads, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    common = [str(gold), str(a.work / "answers.jsonl"), "--cache-dir", str(cache), "--force"]
    out: dict = {"answers": len(answers), "threads": a.threads, "date": time.strftime("%Y-%m-%d")}
    out["from_default_first_run"] = train([*common, "-o", str(a.work / "m_from"), "--from", "default"], env)
    out["from_default_cached"] = train([*common, "-o", str(a.work / "m_from"), "--from", "default"], env)
    out["from_default"] = stick(a.work / "m_from", turns, want, a.stick, cache)
    if a.scratch:
        out["scratch_fast_time"] = train([*common, "-o", str(a.work / "m_scratch"), "--fast"], env)
        out["scratch_fast"] = stick(a.work / "m_scratch", turns, want, a.stick, cache)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
