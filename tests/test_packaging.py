"""The wheel carries what a user needs outside the repo: catalog, default model, examples."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _setuptools_major() -> int:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("setuptools").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return 0


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # Build with the environment's setuptools when it is new enough (the dev extra installs it:
    # no index needed), else in pip's isolated build environment.
    isolation = [] if _setuptools_major() >= 77 else ["--use-pep517"]
    no_iso = ["--no-build-isolation"] if not isolation else []
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *no_iso, *isolation,
                        "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("qi_extractor-*.whl")
    return zipfile.ZipFile(whl)


def test_wheel_holds_catalog_model_and_examples(wheel):
    names = set(wheel.namelist())
    model = {p.relative_to(REPO).as_posix() for p in (REPO / "extractor" / "data" / "model").iterdir()}
    assert model >= {"extractor/data/model/manifest.json", "extractor/data/model/heads.safetensors"}
    expected = model | {"extractor/data/catalog.yaml", "extractor/data/examples/interview_example.txt",
                        "extractor/cli/__init__.py", "extractor/resources.py",
                        # the report's templates, style and script (package data, not Python strings)
                        "extractor/data/report/report.html.j2", "extractor/data/report/parts.html.j2",
                        "extractor/data/report/report.css", "extractor/data/report/report.js",
                        "extractor/data/report/marks.css", "extractor/data/report/heatmap.svg.j2",
                        "extractor/report/html.py", "extractor/qdpx/xmlsafe.py"}
    assert expected <= names, sorted(expected - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "extractor = extractor.cli:main" in wheel.read(entry_points).decode()


def test_wheel_holds_no_repo_state(wheel):
    names = wheel.namelist()
    assert not [n for n in names if n.startswith(("annotations/", "models/", "tests/", "scripts/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_packaged_data_matches_the_checkout(wheel):
    for rel in ("extractor/data/catalog.yaml", "extractor/data/model/manifest.json"):
        assert wheel.read(rel) == (REPO / rel).read_bytes()
