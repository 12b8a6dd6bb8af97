"""`extract --engine ray`: same outputs as the local engine, the cache, joining a cluster, errors.

The Ray runs use a tiny classifier fitted on the hashing encoder (a real model directory the
actors load) and three tiny invented transcripts; they are skipped (with the reason) only
where Ray is not installed or cannot start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from extract_fixtures import KeywordClassifier, write_catalog, write_transcripts

from extractor.cli import main
from extractor.errors import ExtractorError
from extractor.extract import load_classifier, run_extract

REPO = Path(__file__).resolve().parents[1]
THIRD = """\
Interviewer: How do you monitor the model?

Interviewee: We do not, honestly. The drift shows up in complaints first and then we retrain.

Interviewer: Thanks.
"""


def _inputs(d: Path) -> Path:
    write_transcripts(d)
    (d / "Interview C.txt").write_text(THIRD, encoding="utf-8")
    return d


def _preds(out: Path) -> list[tuple]:
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text("utf-8").splitlines()]
    return [(r["id"], tuple(r["categories"]), tuple(r["phases"]), r["mitigation"], r["scores"]) for r in rows]


@pytest.fixture(scope="module")
def ray_mod():
    return pytest.importorskip("ray", reason="ray is not installed (pip install 'qi-extractor[scale]')")


DRIFT = ["The distribution shifted last month and accuracy dropped.", "Our data drifts every season.",
         "After deployment the inputs changed and predictions got worse over time."]
LABELS = ["Our annotators produce wrong label values.", "Half of the labels were noisy.",
          "The crowd workers mislabel many images."]
OTHER = ["I work at a bank as a data scientist.", "We use Python mostly.", "Yes.", "Our team has five people."]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny classifier on the hashing encoder (no download, seconds to fit), saved as a model
    directory that the Ray actors load like any other."""
    from extractor.classify import IssueClassifier, ModelConfig, TrainConfig
    from extractor.types import Labels, Turn, with_ids

    tmp = tmp_path_factory.mktemp("model")
    cat = write_catalog(tmp)
    turns = []
    for k in range(4):
        rows = [(DRIFT[k % 3], ("drift",), ("model_maintenance",), k % 2 == 0),
                (LABELS[k % 3], ("noisy_labels",), ("data_collection",), False),
                (OTHER[k % 4], (), (), False), (OTHER[(k + 2) % 4], (), (), False)]
        for i, (text, cats, phases, mit) in enumerate(rows):
            q = f"Question {i} of interview {k}?"
            turns.append(Turn(f"Train {k}", 2 * i, "interviewer", q))
            turns.append(Turn(f"Train {k}", 2 * i + 1, "interviewee", f"{text} Interview {k}.", question=q,
                              labels=Labels(cats, phases, mit), label_source="moderated"))
    clf = IssueClassifier(cat, ModelConfig(base_model="hashing"),
                          TrainConfig(head_epochs=150, threshold_folds=2, min_threshold_support=2, fine_tune=False))
    path = clf.fit(list(with_ids(turns))).save(tmp / "m")
    return load_classifier(path, device="cpu")


@pytest.fixture(scope="module")
def both(ray_mod, model, tmp_path_factory):
    """The three transcripts through the local engine and through a local Ray."""
    from extractor.engine_ray import run_extract_ray

    tmp = tmp_path_factory.mktemp("both")
    inputs = _inputs(tmp / "t")
    clf, info = model
    kw = dict(classifier=clf, model_info=info, embedder=_hashing(), created="2026-01-01T00:00:00Z")
    local = run_extract([inputs], tmp / "local", **kw)
    try:
        ray = run_extract_ray([inputs], tmp / "ray", num_cpus=2, **kw)
    except ExtractorError as e:
        pytest.skip(f"Ray cannot start here: {e}")
    return tmp, local, ray


def _hashing():
    from extractor.embed import HashingEmbedder

    return HashingEmbedder()


def test_ray_gives_the_local_engines_predictions_and_outputs(both):
    tmp, local, ray = both
    assert _preds(tmp / "ray") == _preds(tmp / "local") and len(_preds(tmp / "local")) == 6
    for name in ("turns.jsonl", "predictions.jsonl", "proposals.jsonl", "privacy.jsonl", "coded_segments.csv",
                 "report.md", "codebook.qdc"):
        assert (tmp / "ray" / name).read_bytes() == (tmp / "local" / name).read_bytes(), name
    assert sorted(ray.manifest["outputs"]) == sorted(local.manifest["outputs"])


def test_manifest_records_the_engine_and_what_ray_did(both):
    tmp, local, ray = both
    lm = json.loads((tmp / "local" / "manifest.json").read_text())
    rm = json.loads((tmp / "ray" / "manifest.json").read_text())
    assert lm["engine"] == "local" and rm["engine"] == "ray"
    assert rm["ray"]["transcripts_sent"] == rm["ray"]["transcripts_done"] == 3
    assert rm["ray"]["actors"] >= 1 and rm["ray"]["actor_gpus"] == 0
    assert rm["cache"]["predict_misses"] == 3 and not any(i["cached"] for i in rm["inputs"])
    assert rm["counts"] == lm["counts"]


def test_rerun_after_a_kill_redoes_only_the_unfinished_transcripts(both, model):
    """Transcripts whose predictions were never written (killed mid-run) or are damaged are the
    only ones sent to Ray again; the local engine reads the Ray engine's cache entries as its own."""
    from extractor.engine_ray import run_extract_ray

    tmp, _, _ = both
    clf, info = model
    cache = tmp / "ray" / ".cache"
    entries = sorted((cache / "predictions").iterdir())
    entries[-1].unlink()  # killed before its predictions were written
    entries[0].write_text('{"interview": "Interview A", "tu', encoding="utf-8")  # damaged by hand
    res = run_extract_ray([tmp / "t"], tmp / "ray", classifier=clf, model_info=info, embedder=_hashing(),
                          created="2026-01-01T00:00:00Z", num_cpus=2)
    assert res.manifest["ray"]["transcripts_sent"] == 2 and res.manifest["cache"]["predict_hits"] == 1
    assert _preds(tmp / "ray") == _preds(tmp / "local")
    # nothing left: no Ray at all, and the local engine finds every transcript in the cache
    res = run_extract_ray([tmp / "t"], tmp / "ray", classifier=clf, model_info=info, embedder=_hashing())
    assert res.manifest["ray"]["transcripts_sent"] == 0 and "actors" not in res.manifest["ray"]
    kw = KeywordClassifier(clf.catalog_)
    run_extract([tmp / "t"], tmp / "ray", classifier=kw, catalog=clf.catalog_, model_info=info,
                embedder=_hashing())
    assert kw.calls == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_joins_a_running_cluster_with_address(ray_mod, model, tmp_path, capsys):
    """`ray start --head` on this machine (1 CPU), then the CLI with --address."""
    port = _free_port()
    ray_bin = Path(sys.executable).parent / "ray"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    # --block keeps the head's processes children of this one, so the test stops exactly them
    head = subprocess.Popen([str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=1",
                             "--include-dashboard=false", "--disable-usage-stats", "--block"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        addr = f"127.0.0.1:{port}"
        for _ in range(60):
            if head.poll() is not None:
                pytest.skip(f"`ray start --head` cannot run here: {head.stderr.read().decode()[-300:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        inputs = _inputs(tmp_path / "t")
        rc = main(["extract", str(inputs), "-o", str(tmp_path / "out"), "--engine", "ray", "--address", addr,
                   "--model", model[1]["path"],
                   "--embedder", "hashing", "--no-qdpx"])
        assert rc == 0, capsys.readouterr().err
        m = json.loads((tmp_path / "out" / "manifest.json").read_text())
        assert m["engine"] == "ray" and m["ray"]["address"] == addr and m["ray"]["cluster"]["CPU"] == 1.0
        assert m["ray"]["transcripts_done"] == 3 and m["counts"]["predictions"] == 6
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)


def test_a_cluster_that_is_not_there_is_a_one_line_error(ray_mod, model, tmp_path, capsys):
    inputs = _inputs(tmp_path / "t")
    rc = main(["extract", str(inputs), "-o", str(tmp_path / "out"), "--engine", "ray", "--model", model[1]["path"],
               "--address", f"127.0.0.1:{_free_port()}", "--embedder", "hashing"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert "expected a running Ray cluster at 127.0.0.1:" in err


# --- without ray ------------------------------------------------------------------------------


def test_engine_ray_without_ray_installed_is_one_line_with_the_install_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    rc = main(["extract", str(_inputs(tmp_path / "t")), "-o", str(tmp_path / "out"), "--engine", "ray"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert "expected the ray package, found none" in err and "pip install 'qi-extractor[scale]'" in err
    assert not (tmp_path / "out").exists()


def test_address_needs_the_ray_engine(tmp_path, capsys):
    rc = main(["extract", str(tmp_path), "-o", str(tmp_path / "out"), "--address", "127.0.0.1:6379"])
    assert rc == 1 and "--address: expected --engine ray with it" in capsys.readouterr().err


def test_the_local_engine_never_imports_ray(tmp_path):
    write_transcripts(tmp_path / "t")
    code = f"""
import sys
sys.path.insert(0, {str(REPO / 'tests')!r})
from extract_fixtures import KeywordClassifier, write_catalog
from extractor.embed import HashingEmbedder
import extractor.cli
from extractor.extract import run_extract
from pathlib import Path
cat = write_catalog(Path({str(tmp_path)!r}))
res = run_extract([Path({str(tmp_path / 't')!r})], Path({str(tmp_path / 'out')!r}), classifier=KeywordClassifier(cat),
                  catalog=cat, model_info={{"fingerprint": "m"}}, embedder=HashingEmbedder(), qdpx=False)
assert res.manifest["engine"] == "local"
print("ray" in sys.modules)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "False"


def test_plan_uses_gpus_when_the_cluster_has_them():
    from extractor.engine_ray import Plan

    gpu = Plan.for_cluster({"CPU": 16.0, "GPU": 2.0})
    assert (gpu.actors, gpu.actor_gpus, gpu.device) == (2, 1, "cuda")
    cpu = Plan.for_cluster({"CPU": 16.0})
    assert (cpu.actors, cpu.actor_cpus, cpu.threads, cpu.actor_gpus, cpu.device) == (7, 2.0, 2, 0, "cpu")
    one = Plan.for_cluster({"CPU": 1.0})  # room left for the segmentation tasks
    assert one.actors == 1 and one.actor_cpus + one.segment_cpus <= 1.0
    assert Plan.for_cluster({"CPU": 16.0, "GPU": 2.0}, device="cpu").actor_gpus == 0


def test_a_model_the_actors_cannot_load_is_a_one_line_error(ray_mod, model, tmp_path):
    """E.g. the model directory is not on the worker nodes' storage."""
    from functools import partial

    from extractor.engine_ray import load_model, run_extract_ray

    clf, info = model
    with pytest.raises(ExtractorError) as ei:
        run_extract_ray([_inputs(tmp_path / "t")], tmp_path / "out", classifier=clf, model_info=info, num_cpus=2,
                        classifier_factory=partial(load_model, str(tmp_path / "no-model"), "cpu"),
                        embedder=_hashing())
    msg = str(ei.value)
    assert len(msg.splitlines()) == 1, msg
    assert msg.startswith("--engine ray: expected the actors to load the model and predict, found ")
    assert "no-model" in msg and "0 of 3 transcripts written" in msg


def test_address_auto_with_a_stale_cluster_is_one_line_within_the_timeout(ray_mod, model, tmp_path, capsys,
                                                                            monkeypatch):
    """`ray start` left a cluster file (or $RAY_ADDRESS) naming a head that is gone."""
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_free_port()}")
    t0 = time.monotonic()
    rc = main(["extract", str(_inputs(tmp_path / "t")), "-o", str(tmp_path / "out"), "--engine", "ray",
               "--address", "auto", "--model", model[1]["path"], "--embedder", "hashing"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1, err
    assert "expected a running Ray cluster at auto" in err and time.monotonic() - t0 < 25


def test_the_auto_address_comes_from_the_environment_or_the_cluster_file(tmp_path, monkeypatch):
    import tempfile

    from extractor.engine_ray import cluster_address

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ConnectionError, match="no running cluster"):
        cluster_address("auto")
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.0.0.9:6379\n")
    assert cluster_address("auto") == "10.0.0.9:6379"
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1234")
    assert cluster_address("auto") == "127.0.0.1:1234" and cluster_address("h:1") == "h:1"


def test_a_ray_init_that_hangs_is_cut_off():
    from extractor.engine_ray import call_with_timeout

    with pytest.raises(TimeoutError, match="no answer after 0.2s joining"):
        call_with_timeout(lambda: time.sleep(5), 0.2, "joining the cluster")
    assert call_with_timeout(lambda: 7, 1, "x") == 7


def test_the_ray_engine_holds_no_copy_of_a_stage_and_no_private_import():
    import ast
    import inspect

    import extractor.engine_ray as R

    src = inspect.getsource(R)
    assert "t.speaker, t.question" not in src and "cache_key(" not in src  # the stages' own keys only
    assert "this is a bug" not in src and "write_json(" not in src  # no guard, no second manifest writer
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("extractor"):
            assert not [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")], node.module


def test_what_ray_prints_on_fd_2_goes_to_the_log_not_the_terminal(tmp_path, capfd):
    from extractor.engine_ray import stderr_to

    with stderr_to(tmp_path / "ray.log"):
        os.write(2, b"[2026 E core_worker.cc] noise\n")
        print("our own line", file=sys.stderr)
    err = capfd.readouterr().err
    assert "noise" not in err and "our own line" in err
    assert "noise" in (tmp_path / "ray.log").read_text()
    os.write(2, b"after\n")
    assert "after" in capfd.readouterr().err
