#!/usr/bin/env python
"""Benchmark `extractor extract`: cold cache, warm rerun with one transcript edited, warm rerun unchanged.

Copies the transcripts to a temporary directory (the originals are never touched), runs
the CLI as a user would (a fresh process each time, wall-clock time including imports
and model loading) and prints one JSON object with the timings and each run's manifest
timings. Example:

    OMP_NUM_THREADS=2 nice -n 5 .venv/bin/python scripts/bench_extract.py \\
        --transcripts ../shared/corpus/transcripts [--model DIR]

Runs the installed ``extractor`` (as a user would), from a scratch directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "extractor", "extract", *args, "-o", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=out.parent, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"extract failed with status {proc.returncode}")
    m = json.loads((out / "manifest.json").read_text())
    res = {"wall_s": round(wall, 1), "stages_s": m["timings_s"], "cache": m["cache"], "counts": m["counts"]}
    print(json.dumps(res), file=sys.stderr, flush=True)  # partial results while the next run goes
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--transcripts", default=str(REPO.parent / "shared" / "corpus" / "transcripts"))
    ap.add_argument("--model", default=None, help="model directory (default: the packaged model)")
    ap.add_argument("--edit", default=None, help="file name of the transcript to edit (default: the first)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = Path(tempfile.mkdtemp(prefix="bench_extract."))
    try:
        src = tmp / "transcripts"
        shutil.copytree(Path(args.transcripts).resolve(), src)
        files = sorted(p for p in src.iterdir() if p.is_file())
        edit = src / args.edit if args.edit else files[0]
        out = tmp / "out"
        common = [str(src), *(["--model", str(Path(args.model).resolve())] if args.model else [])]
        result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}",
                  "files": len(files), "edited": edit.name}
        result["cold"] = _run(common, out)
        # One transcript edited: a changed word in the middle plus one more exchange at the end.
        text = edit.read_text(encoding="utf-8")
        mid = len(text) // 2
        cut = text.find(" the ", mid)
        text = (text[:cut] + " that " + text[cut + 5:]) if cut > 0 else text
        edit.write_text(text + "\n\nInterviewer: One last question?\n\nInterviewee: The data drift again.\n",
                        encoding="utf-8")
        result["warm_one_changed"] = _run(common, out)
        result["warm_unchanged"] = _run(common, out)
        print(json.dumps(result, indent=2))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
