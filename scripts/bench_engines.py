"""Local vs Ray engine of `extractor extract` on synthetic load (scripts/loadgen.py).

For each size N and engine, a fresh process runs ``extractor extract LOAD_N -o OUT`` with a
cold cache and reports wall time, turns/s and its own peak RSS (the driver; Ray's workers
are other processes). A line fitted to wall time over N gives the fixed cost (startup,
model load) and the cost per transcript; the predictions of both engines are compared.

    python scripts/bench_engines.py --corpus ../shared/corpus --sizes 100 300 1000 \\
        --work /tmp/qi-bench --json /tmp/qi-bench/results.json

Discovery uses the model-free hashing embedder by default (``--embedder``): it runs on the
driver in both engines and would otherwise dominate the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def one(engine: str, load: Path, out: Path, embedder: str) -> dict:
    """Run in the child: one extract, then its own wall time and peak RSS."""
    from extractor.cli import main

    t0 = time.perf_counter()
    rc = main(["extract", str(load), "-o", str(out), "--engine", engine, "--embedder", embedder, "--force"])
    wall = time.perf_counter() - t0
    m = json.loads((out / "manifest.json").read_text()) if rc == 0 else {}
    return {"rc": rc, "wall_s": round(wall, 2), "driver_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "turns": m.get("counts", {}).get("turns"), "interviewee_turns": m.get("counts", {}).get("interviewee_turns"),
            "timings_s": m.get("timings_s"), "ray": m.get("ray")}


def run_case(engine: str, load: Path, out: Path, embedder: str) -> dict:
    if out.exists():
        shutil.rmtree(out)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = subprocess.run([sys.executable, __file__, "--one", engine, str(load), str(out), "--embedder", embedder],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{engine} on {load}: failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare(a: Path, b: Path) -> dict:
    """Per turn: are categories, phases and mitigation equal; the largest score difference."""
    ra = [json.loads(x) for x in a.read_text("utf-8").splitlines()]
    rb = [json.loads(x) for x in b.read_text("utf-8").splitlines()]
    keys = ("id", "categories", "phases", "mitigation", "evidence")
    labels = len(ra) == len(rb) and all(all(x[k] == y[k] for k in keys) for x, y in zip(ra, rb))
    diffs = [max((abs(x["scores"][k] - y["scores"].get(k, 9)) for k in x["scores"]), default=0.0)
             for x, y in zip(ra, rb)]
    return {"labels_same": labels, "scores_differing": sum(d > 0 for d in diffs),
            "max_score_diff": round(max(diffs, default=0.0), 6)}


def fit(rows: list[dict]) -> dict:
    import numpy as np

    n = np.array([r["n"] for r in rows], float)
    t = np.array([r["wall_s"] for r in rows], float)
    if len(rows) < 2:
        return {}
    slope, icpt = np.polyfit(n, t, 1)
    pred = slope * n + icpt
    r2 = 1 - ((t - pred) ** 2).sum() / max(((t - t.mean()) ** 2).sum(), 1e-9)
    return {"s_per_transcript": round(float(slope), 4), "fixed_s": round(float(icpt), 1), "r2": round(float(r2), 4)}


def markdown(res: dict) -> str:
    lines = ["| engine | transcripts | turns (interviewee) | wall s | turns/s | interviewee turns/s | s/transcript "
             "| driver peak RSS MB | labels as local | scores differing (max) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in res["runs"]:
        lines.append(f"| {r['engine']} | {r['n']} | {r['turns']} ({r['interviewee_turns']}) | {r['wall_s']:.1f} | "
                     f"{r['turns'] / r['wall_s']:.1f} | {r['interviewee_turns'] / r['wall_s']:.1f} | "
                     f"{r['wall_s'] / r['n']:.3f} | {r['driver_peak_mb']:.0f} | {r.get('labels_same', '')} | "
                     + (f"{r['scores_differing']} ({r['max_score_diff']}) |" if "scores_differing" in r else " |"))
    lines.append("")
    for e, f in res["fit"].items():
        if f:
            lines.append(f"- {e}: wall ≈ {f['fixed_s']} s + {f['s_per_transcript']} s × N (R² {f['r2']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--one", nargs=3, metavar=("ENGINE", "LOAD", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    ap.add_argument("--turns", type=int, default=20, help="turns per synthetic transcript (default 20)")
    ap.add_argument("--embedder", default="hashing", help="discovery embedder for both engines (default hashing)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/qi-bench"), help="load and outputs (outside the repo)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--table", type=Path, nargs="+", default=None,
                    help="print the table of earlier --json files (runs merged) and exit")
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(one(a.one[0], Path(a.one[1]), Path(a.one[2]), a.embedder)))
        return 0

    if a.table:
        docs = [json.loads(p.read_text()) for p in a.table]
        res = {**docs[0], "runs": sorted((r for d in docs for r in d["runs"]), key=lambda r: (r["engine"], r["n"]))}
        for r in res["runs"]:
            if r["engine"] != "local" and (a.work / f"out_local_{r['n']}" / "predictions.jsonl").is_file():
                r.update(compare(a.work / f"out_local_{r['n']}" / "predictions.jsonl",
                                 a.work / f"out_{r['engine']}_{r['n']}" / "predictions.jsonl"))
        res["fit"] = {e: fit([r for r in res["runs"] if r["engine"] == e]) for e in {r["engine"] for r in res["runs"]}}
        print(markdown(res))
        return 0
    sys.path.insert(0, str(HERE))
    from loadgen import generate

    res = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, no GPU",
           "command": "python scripts/bench_engines.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "runs": [], "fit": {}}
    for n in a.sizes:
        load = a.work / f"load_{n}"
        if not load.is_dir():
            generate(a.corpus / "gold" / "turns.jsonl", load, n, a.turns, seed=0)
        for engine in a.engines:
            r = {"engine": engine, "n": n, **run_case(engine, load, a.work / f"out_{engine}_{n}", a.embedder)}
            if engine != "local" and (a.work / f"out_local_{n}" / "predictions.jsonl").is_file():
                r.update(compare(a.work / f"out_local_{n}" / "predictions.jsonl",
                                 a.work / f"out_{engine}_{n}" / "predictions.jsonl"))
            res["runs"].append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
            if a.json:
                a.json.parent.mkdir(parents=True, exist_ok=True)
                a.json.write_text(json.dumps(res, indent=1))
    for engine in a.engines:
        res["fit"][engine] = fit([r for r in res["runs"] if r["engine"] == engine])
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
