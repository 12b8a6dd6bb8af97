"""Benchmark the segmenter on the shared corpus: speed, and agreement with the gold turns.

    .venv/bin/python scripts/bench_segment.py [--corpus ../shared/corpus] [--repeat 3] [--json OUT] [--big-mb 50]

For each transcript it reports how many gold interviewee turns are recovered with the
same speaker and text (after whitespace normalisation), in order (a longest common
subsequence of the two turn sequences; "near": also turns whose text is >= 90% similar
where the alignment leaves equal-sized gaps), the number of turns each side has, and how
often the ``question`` field agrees on the matched turns. Timing is the best of
``--repeat`` runs over all transcripts (reading and decoding included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from extractor.segment import BatchReport, expand_paths, segment_file, segment_paths  # noqa: E402
from extractor.types import Turn, normalize_text  # noqa: E402


def _key(t: Turn) -> tuple[str, str]:
    return t.speaker, normalize_text(t.text)


def match_turns(gold: list[Turn], pred: list[Turn]) -> list[tuple[int, int]]:
    """Index pairs of an in-order alignment (longest common subsequence) of equal turns."""
    from difflib import SequenceMatcher

    a, b = [_key(t) for t in gold], [_key(t) for t in pred]
    sm = SequenceMatcher(None, a, b, autojunk=False)
    return [(blk.a + k, blk.b + k) for blk in sm.get_matching_blocks() for k in range(blk.size)]


def near_pairs(gold: list[Turn], pred: list[Turn], pairs: list[tuple[int, int]], min_ratio: float = 0.9):
    """Unmatched turns in equal-sized gaps between exact matches, same speaker, text >= min_ratio similar."""
    from difflib import SequenceMatcher

    out = []
    anchors = [(-1, -1), *pairs, (len(gold), len(pred))]
    for (i0, j0), (i1, j1) in zip(anchors, anchors[1:]):
        if i1 - i0 == j1 - j0:
            for i, j in zip(range(i0 + 1, i1), range(j0 + 1, j1)):
                a, b = normalize_text(gold[i].text), normalize_text(pred[j].text)
                if gold[i].speaker == pred[j].speaker and SequenceMatcher(None, a, b, autojunk=False).ratio() >= min_ratio:
                    out.append((i, j))
    return out


def compare(gold: list[Turn], pred: list[Turn]) -> dict:
    """Recall of gold interviewee turns, precision of predicted ones, question agreement."""
    pairs = match_turns(gold, pred)
    ee_pairs = [(i, j) for i, j in pairs if gold[i].is_interviewee]
    ee_near = [(i, j) for i, j in near_pairs(gold, pred, pairs) if gold[i].is_interviewee]
    n_gold_ee = sum(t.is_interviewee for t in gold)
    n_pred_ee = sum(t.is_interviewee for t in pred)
    q_same = sum(normalize_text(gold[i].question) == normalize_text(pred[j].question) for i, j in ee_pairs)
    return {
        "gold_turns": len(gold), "pred_turns": len(pred),
        "gold_interviewee": n_gold_ee, "pred_interviewee": n_pred_ee,
        "matched_interviewee": len(ee_pairs),
        "recall": len(ee_pairs) / n_gold_ee if n_gold_ee else 1.0,
        "recall_near": (len(ee_pairs) + len(ee_near)) / n_gold_ee if n_gold_ee else 1.0,
        "precision": len(ee_pairs) / n_pred_ee if n_pred_ee else 1.0,
        "question_agree": q_same / len(ee_pairs) if ee_pairs else 1.0,
        "ids_equal": sum(gold[i].id == pred[j].id for i, j in ee_pairs),
    }


def bench_big(files: list[Path], mib: float) -> None:
    """Time one big synthetic transcript in a child process (so its peak memory is its own)."""
    import subprocess
    import tempfile

    data = b"\n".join(f.read_bytes() for f in files)
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.txt"
        with big.open("wb") as fh:
            for _ in range(int(mib * 2**20 // len(data)) + 1):
                fh.write(data + b"\n")
        code = (
            "import resource, sys, time\n"
            "from extractor.segment import segment_file\n"
            "t = time.perf_counter(); r = segment_file(sys.argv[1], max_bytes=0); dt = time.perf_counter() - t\n"
            "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
            "print(f'{len(r.turns)} turns in {dt:.1f} s, peak memory {rss:.0f} MiB')\n"
        )
        out = subprocess.run([sys.executable, "-c", code, str(big)], capture_output=True, text=True, check=True)
        print(f"big file: {big.stat().st_size / 2**20:.1f} MiB -> {out.stdout.strip()}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the per-interview figures here")
    ap.add_argument("--big-mb", type=float, default=0,
                    help="also time one file of this many MiB made of the transcripts repeated (e.g. 50)")
    args = ap.parse_args(argv)

    from extractor.jsonl import read_turns

    transcripts = args.corpus / "transcripts"
    files = expand_paths([transcripts])
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        report = BatchReport()
        turns = list(segment_paths(files, report=report))
        times.append(time.perf_counter() - t0)
    gold_by: dict[str, list[Turn]] = defaultdict(list)
    for t in read_turns(args.corpus / "gold" / "turns.jsonl"):
        gold_by[t.interview].append(t)
    pred_by: dict[str, list[Turn]] = defaultdict(list)
    for t in turns:
        pred_by[t.interview].append(t)

    rows = {}
    for iv in sorted(gold_by, key=lambda s: int(s.split()[-1]) if s.split()[-1].isdigit() else 0):
        rows[iv] = compare(gold_by[iv], pred_by.get(iv, []))
    md9 = args.corpus / "markdown" / "Interview 9.md"
    extra = {}
    if md9.exists():
        extra["markdown/Interview 9.md vs transcripts/Interview 9.txt"] = compare(
            segment_file(transcripts / "Interview 9.txt").turns, segment_file(md9).turns)
        extra["markdown/Interview 9.md vs gold"] = compare(gold_by["Interview 9"], segment_file(md9).turns)

    print("| interview | gold turns | our turns | gold interviewee | recovered | recall | recall (>=0.9 similar) "
          "| precision | question agrees |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for iv, r in {**rows, **extra}.items():
        print(f"| {iv} | {r['gold_turns']} | {r['pred_turns']} | {r['gold_interviewee']} | {r['matched_interviewee']} "
              f"| {r['recall']:.1%} | {r['recall_near']:.1%} | {r['precision']:.1%} | {r['question_agree']:.1%} |")
    tot_gold = sum(r["gold_interviewee"] for r in rows.values())
    tot_match = sum(r["matched_interviewee"] for r in rows.values())
    worst = min(rows, key=lambda k: rows[k]["recall"])
    below = [k for k, r in rows.items() if r["recall"] < 0.98]
    print()
    print(f"files: {len(report.results)} read, {len(report.failures)} skipped; turns: {len(turns)} "
          f"({report.interviewee_turns} interviewee); unattributed lines: {report.unattributed}")
    print(f"gold interviewee turns recovered: {tot_match}/{tot_gold} = {tot_match / tot_gold:.2%}; "
          f"worst interview: {worst} {rows[worst]['recall']:.1%}; below 98%: {', '.join(below) or 'none'}")
    print(f"time to segment all {len(files)} transcripts: best {min(times):.3f} s of {args.repeat} "
          f"(runs: {', '.join(f'{t:.3f}' for t in times)})")
    if args.big_mb:
        bench_big(files, args.big_mb)
    if args.json:
        args.json.write_text(json.dumps({"per_interview": rows, **extra, "seconds": times}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
