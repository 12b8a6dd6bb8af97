"""Helpers for the hostile-input tests (issue 12): run the real CLI in a child process and
measure what it did: exit code, stderr lines, peak memory (MiB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The peak is read from VmHWM (this process image's own high-water mark): ru_maxrss keeps the
# parent's peak across fork + exec, so a child of a large pytest process would report that.
_RUNNER = """
import json, sys
from extractor.cli import main
try:
    rc = main(sys.argv[2:])
finally:
    hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    with open(sys.argv[1], "w") as fh:
        json.dump({"maxrss_mib": hwm / 1024}, fh)
sys.exit(rc)
"""


@dataclass
class Run:
    rc: int
    out: str
    err: str
    peak_mib: float

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(args: list[str], tmp: Path, *, timeout: float = 120, stdin: str = "") -> Run:
    """``extractor ARGS`` in a fresh interpreter (a hang fails through ``timeout``)."""
    stats = tmp / f".rss-{os.getpid()}-{len(list(tmp.iterdir()))}.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-c", _RUNNER, str(stats), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=REPO, env=env, input=stdin)
    peak = json.loads(stats.read_text())["maxrss_mib"] if stats.exists() else float("nan")
    stats.unlink(missing_ok=True)
    return Run(p.returncode, p.stdout, p.stderr, peak)


def assert_one_line_error(run: Run, *fragments: str, rc: int = 1) -> None:
    """Exit code ``rc``, no traceback, and an ``error:`` line holding every fragment."""
    assert run.rc == rc, (run.rc, run.err)
    assert "Traceback" not in run.err, run.err
    errors = [line for line in run.err_lines if line.startswith("error:")]
    assert len(errors) == 1, run.err
    for f in fragments:
        assert f in errors[0], (f, errors[0])


def zip_bomb_member(zf, name: str, mib: int) -> None:
    """Stream ``mib`` MiB of zeros into a deflated member (a ~1000:1 ratio), 1 MiB at a time."""
    import zipfile

    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    block = b"\0" * 2**20
    with zf.open(info, "w", force_zip64=True) as fh:
        for _ in range(mib):
            fh.write(block)
