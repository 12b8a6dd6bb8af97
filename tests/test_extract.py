"""Batch extraction: outputs, manifest, cache behaviour, errors, and one real end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from extract_fixtures import KeywordClassifier, write_catalog, write_transcripts

from extractor.cli import main
from extractor.embed import HashingEmbedder
from extractor.errors import ExtractorError, InputError
from extractor.extract import run_extract
from extractor.jsonl import read_jsonl


def _run(tmp_path, clf=None, out="out", fingerprint="m1", **kw):
    cat = write_catalog(tmp_path)
    clf = clf or KeywordClassifier(cat)
    res = run_extract([tmp_path / "t"], tmp_path / out, classifier=clf, catalog=cat,
                      model_info={"fingerprint": fingerprint, "name": "keyword"},
                      **{"embedder": HashingEmbedder(), **kw})
    return clf, res


def test_outputs_and_manifest(tmp_path):
    write_transcripts(tmp_path / "t")
    clf, res = _run(tmp_path)
    out = tmp_path / "out"
    for name in ("turns.jsonl", "predictions.jsonl", "proposals.jsonl", "privacy.jsonl", "coded_segments.csv",
                 "report.html", "report.md", "summary.json", "project.qdpx", "codebook.qdc", "manifest.json",
                 "figures/category_phase_heatmap.svg", "figures/categories_by_interviews.svg"):
        assert (out / name).is_file(), name
    m = json.loads((out / "manifest.json").read_text())
    assert m["model"]["fingerprint"] == "m1" and m["catalog"]["tag"] == "tiny-catalog@3"
    assert [Path(i["path"]).name for i in m["inputs"]] == ["Interview A.txt", "Interview B.txt"]
    assert all(len(i["sha256"]) == 64 and i["turns"] > 0 for i in m["inputs"])
    preds = list(read_jsonl(out / "predictions.jsonl"))
    turns = list(read_jsonl(out / "turns.jsonl"))
    assert m["counts"]["predictions"] == len(preds) == sum(t["speaker"] == "interviewee" for t in turns)
    assert m["counts"]["issue_turns"] == sum(bool(p["categories"]) for p in preds) == 3
    assert m["counts"]["mitigation_turns"] == 1
    assert set(m["timings_s"]) >= {"segment", "predict", "discover", "privacy", "report", "qdpx", "total"}
    assert m["cache"]["predict_misses"] == 2 and clf.calls == [["Interview A", "Interview B"]]
    assert all("start" in t["source"] for t in turns)


def test_rerun_uses_the_cache_and_redoes_only_the_edited_transcript(tmp_path):
    d = write_transcripts(tmp_path / "t")
    _run(tmp_path)
    before = (tmp_path / "out" / "predictions.jsonl").read_text()
    clf, res = _run(tmp_path)
    assert clf.calls == [] and res.manifest["cache"]["predict_hits"] == 2
    assert res.manifest["cache"]["segment_hits"] == 2
    assert (tmp_path / "out" / "predictions.jsonl").read_text() == before
    with open(d / "Interview B.txt", "a", encoding="utf-8") as fh:
        fh.write("\nInterviewer: One more?\n\nInterviewee: The model drift again.\n")
    clf, res = _run(tmp_path)
    assert clf.calls == [["Interview B"]]
    assert [i["cached"] for i in res.manifest["inputs"]] == [True, False]
    assert res.manifest["counts"]["issue_turns"] == 4
    # Another model (fingerprint) invalidates every prediction.
    clf, _ = _run(tmp_path, fingerprint="m2")
    assert clf.calls == [["Interview A", "Interview B"]]


def test_cache_dir_option_and_refusal_to_clobber(tmp_path):
    write_transcripts(tmp_path / "t")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="expected an empty directory or the output of an earlier"):
        _run(tmp_path, out="busy")
    _, res = _run(tmp_path, out="busy", force=True, cache_dir=tmp_path / "cache")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "cache" / "predictions").is_dir() and not (tmp_path / "busy" / ".cache").exists()


def test_bad_files_are_skipped_and_no_input_is_an_error(tmp_path):
    d = write_transcripts(tmp_path / "t")
    (d / "notes.pdf").write_bytes(b"%PDF-1.4")
    _, res = _run(tmp_path)
    assert [Path(s["path"]).name for s in res.manifest["skipped"]] == ["notes.pdf"]
    assert res.manifest["counts"]["interviews"] == 2
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "x.pdf").write_bytes(b"%PDF-1.4")
    cat = write_catalog(tmp_path)
    with pytest.raises(ExtractorError, match="no transcript could be segmented"):
        run_extract([tmp_path / "only"], tmp_path / "o2", classifier=KeywordClassifier(cat), catalog=cat,
                    model_info={"fingerprint": "x"})
    with pytest.raises(InputError, match="expected a transcript file or directory, found nothing"):
        run_extract([tmp_path / "nope"], tmp_path / "o3", classifier=KeywordClassifier(cat), catalog=cat,
                    model_info={"fingerprint": "x"})


def test_discovery_embeddings_are_cached_on_disk_between_runs(tmp_path):
    calls = []

    class Counting(HashingEmbedder):
        def encode(self, texts, **kw):
            calls.append(list(texts))
            return super().encode(texts, **kw)

    write_transcripts(tmp_path / "t")
    _, res = _run(tmp_path, embedder=Counting())
    assert calls and res.manifest["cache"]["embeddings"]["misses"] > 0
    assert any((tmp_path / "out" / ".cache" / "embeddings").rglob("*.npz"))
    calls.clear()
    _, res = _run(tmp_path, embedder=Counting())
    assert calls == [] and res.manifest["cache"]["embeddings"]["misses"] == 0


def test_run_extract_is_a_short_composition_without_globals():
    import inspect

    import extractor.extract as X

    src = inspect.getsource(X.run_extract)
    assert "globals()" not in inspect.getsource(X)
    assert len(src.splitlines()) <= 60


def test_cli_reports_a_missing_model(tmp_path, capsys):
    write_transcripts(tmp_path / "t")
    rc = main(["extract", str(tmp_path / "t"), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "nomodel")])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: ") and "nomodel" in err and len(err.strip().splitlines()) == 1


def test_end_to_end_with_a_real_classifier_and_the_cli(tmp_path, capsys):
    """Real segmenter, a real (hashing-encoder) IssueClassifier saved and loaded, real discovery."""
    from extractor.classify import IssueClassifier, ModelConfig, TrainConfig
    from extractor.segment import segment_file

    cat = write_catalog(tmp_path)
    d = write_transcripts(tmp_path / "t")
    turns = []
    for f in sorted(d.iterdir()):
        for t in segment_file(f).turns:
            if t.is_interviewee:
                low = t.text.lower()
                from dataclasses import replace

                from extractor.types import Labels

                lab = Labels(("drift",) if "drift" in low else (), ("model_maintenance",) if "drift" in low else (),
                             "fixed" in low)
                t = replace(t, labels=lab, label_source="moderated")
            turns.append(t)
    IssueClassifier(cat, ModelConfig(base_model="hashing"), TrainConfig(seed=1, fine_tune=False)).fit(turns).save(tmp_path / "model")
    out = tmp_path / "out"
    assert main(["extract", str(d), "-o", str(out), "--model", str(tmp_path / "model"), "--embedder", "hashing"]) == 0
    err = capsys.readouterr().err
    assert "extracted 2 interviews" in err
    m = json.loads((out / "manifest.json").read_text())
    assert m["model"]["fingerprint"] and m["model"]["card"]["base_model"]
    assert m["counts"]["predictions"] == sum(t.is_interviewee for t in turns)
    coded = {c for r in read_jsonl(out / "predictions.jsonl") for c in r["categories"]}
    assert coded and (out / "report.html").read_text().count('class="category"') == len(coded)
    assert main(["extract", str(d), "-o", str(out), "--model", str(tmp_path / "model"), "--embedder", "hashing"]) == 0
    assert "predicted 0 interviews (2 cached)" in capsys.readouterr().err


def test_duplicate_interview_names_and_a_file_as_output_are_errors(tmp_path):
    d = write_transcripts(tmp_path / "t")
    (d / "Interview A.md").write_text((d / "Interview A.txt").read_text(), encoding="utf-8")
    with pytest.raises(InputError, match="expected a unique interview name .* found 'Interview A' also from"):
        _run(tmp_path)
    (d / "Interview A.md").unlink()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="expected an output directory, found a file"):
        _run(tmp_path, out="file")


def test_privacy_findings_reach_the_outputs(tmp_path):
    d = write_transcripts(tmp_path / "t")
    with open(d / "Interview B.txt", "a", encoding="utf-8") as fh:
        fh.write("\nInterviewee: Mail me at someone@example.org please.\n")
    _, res = _run(tmp_path)
    rows = list(read_jsonl(tmp_path / "out" / "privacy.jsonl"))
    assert [(Path(r["file"]).name, r["kind"], r["text"]) for r in rows] == [("Interview B.txt", "email",
                                                                           "someone@example.org")]
    assert rows[0]["line"] == len((d / "Interview B.txt").read_text().splitlines())
    assert "someone@example.org" in (tmp_path / "out" / "report.html").read_text()
    assert res.manifest["counts"]["privacy_warnings"] == 1


def test_rerun_keeps_reviewers_decisions_and_edits_in_proposals(tmp_path):
    """Issue 12: an `extract` rerun used to wipe what reviewers wrote into OUT/proposals.jsonl."""
    write_transcripts(tmp_path / "t")
    rows = [{"id": "p1", "name": "Auto one", "definition": "", "members": ["a"]},
            {"id": "p2", "name": "Auto two", "definition": "", "members": ["b"]},
            {"id": "p3", "name": "Auto three", "definition": "", "members": ["c"]}]
    _run(tmp_path, discoverer=lambda *a: [dict(r) for r in rows])
    path = tmp_path / "out" / "proposals.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    lines[0].update(decision="accept", name="My better name", definition="What I mean.")
    lines[2].update(decision="reject")
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    # p3 is no longer proposed; p1 and p2 are, with fresh content
    _run(tmp_path, discoverer=lambda *a: [dict(rows[0], members=["a", "z"]), dict(rows[1])])
    got = [json.loads(x) for x in path.read_text().splitlines()]
    assert [g["id"] for g in got] == ["p1", "p2", "p3"]
    assert got[0] == {**rows[0], "members": ["a", "z"], "decision": "accept", "name": "My better name",
                      "definition": "What I mean."}
    assert got[1] == rows[1] and got[2]["decision"] == "reject"
    # a proposals file broken by hand is an error, not overwritten
    path.write_text('{"id": "p1", "decision": "accept"}\n{oops\n')
    with pytest.raises(InputError, match=r"proposals.jsonl:2: expected one JSON object per line.*it may hold "
                                         "review decisions"):
        _run(tmp_path, discoverer=lambda *a: [])
    assert path.read_text().endswith("{oops\n")


def test_a_fifo_among_the_inputs_is_skipped_not_hung(tmp_path):
    import os

    d = write_transcripts(tmp_path / "t")
    os.mkfifo(d / "Interview C.txt")
    _, res = _run(tmp_path)  # a hang here would time the suite out
    assert [s["path"] for s in res.manifest["skipped"]] == [str(d / "Interview C.txt")]
    assert "expected a transcript file, found a FIFO (named pipe)" in res.manifest["skipped"][0]["error"]
    assert res.manifest["counts"]["interviews"] == 2


def test_a_truncated_cache_entry_heals_instead_of_blocking_reruns(tmp_path):
    write_transcripts(tmp_path / "t")
    _run(tmp_path)
    before = (tmp_path / "out" / "predictions.jsonl").read_text()
    for kind in ("segments", "predictions"):
        for entry in (tmp_path / "out" / ".cache" / kind).iterdir():
            entry.write_bytes(entry.read_bytes()[:25])  # cut mid-line, as a full disk might have
    clf, res = _run(tmp_path)
    assert res.manifest["cache"]["predict_misses"] == 2 and (tmp_path / "out" / "predictions.jsonl").read_text() == before
    clf, res = _run(tmp_path)  # and the entries were rewritten whole
    assert clf.calls == [] and res.manifest["cache"]["segment_hits"] == 2


def test_reviewers_labels_win_in_the_outputs(tmp_path):
    from extractor.types import Labels

    write_transcripts(tmp_path / "t")
    _run(tmp_path)
    first = next(read_jsonl(tmp_path / "out" / "predictions.jsonl"))
    _run(tmp_path, out="out2", human={first["id"]: Labels(("explainability",), (), True)})
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "out2" / "predictions.jsonl")}
    assert rows[first["id"]]["categories"] == ["explainability"] and rows[first["id"]]["label_source"] == "human"
    assert rows[first["id"]]["scores"] == first["scores"]
    assert sum(r["label_source"] == "human" for r in rows.values()) == 1


# --- the output folder, links, the folder inside the inputs, warnings once, taught answers ---------


def test_a_folder_holding_someone_elses_manifest_is_refused_even_with_force(tmp_path):
    write_transcripts(tmp_path / "t")
    app = tmp_path / "app"
    app.mkdir()
    (app / "manifest.json").write_text('{"name": "my web app", "icons": []}')
    for force in (False, True):
        with pytest.raises(InputError):
            _run(tmp_path, out="app", force=force)
    assert (app / "manifest.json").read_text() == '{"name": "my web app", "icons": []}'
    assert sorted(p.name for p in app.iterdir()) == ["manifest.json"]


def test_a_killed_first_run_does_not_block_the_plain_rerun(tmp_path, monkeypatch):
    import extractor.extract as X

    write_transcripts(tmp_path / "t")

    def killed(*a, **kw):
        (tmp_path / "out" / "turns.jsonl").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(X, "write_outputs", killed)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path)
    monkeypatch.undo()
    _, res = _run(tmp_path)  # no --force needed: the folder is ours
    assert res.manifest["format"] == "qi-extractor/extract@1" and res.manifest["counts"]["interviews"] == 2


def test_links_out_of_the_input_folder_are_skipped_unless_followed(tmp_path):
    d = write_transcripts(tmp_path / "t")
    secret = tmp_path / "private" / "Interview S.txt"
    secret.parent.mkdir()
    secret.write_text("Interviewer: Hi?\n\nInterviewee: The model drift is our secret.\n")
    (d / "Interview S.txt").symlink_to(secret)
    _, res = _run(tmp_path)
    assert res.manifest["counts"]["interviews"] == 2
    (skip,) = res.manifest["skipped"]
    assert skip["path"] == str(d / "Interview S.txt") and "--follow-links" in skip["error"]
    _, res = _run(tmp_path, out="out2", follow_links=True)
    assert res.manifest["counts"]["interviews"] == 3


def test_an_output_folder_inside_the_input_folder_is_not_read_back(tmp_path):
    d = write_transcripts(tmp_path / "t")
    cat = write_catalog(tmp_path)
    kw = dict(classifier=KeywordClassifier(cat), catalog=cat, model_info={"fingerprint": "m"},
              embedder=HashingEmbedder())
    run_extract([d], d / "out", **kw)
    res = run_extract(sorted(d.iterdir()), d / "out", **kw)  # as a shell glob t/* would name them
    assert res.manifest["counts"]["files"] == 2 and res.manifest["counts"]["interviews"] == 2
    run_extract([d], d, force=True, **kw)  # written beside the transcripts: report.md etc. are not read back
    res = run_extract([d], d, **kw)
    assert res.manifest["counts"]["files"] == 2 and res.manifest["counts"]["interviews"] == 2


def test_each_skipped_file_is_reported_once(tmp_path, capsys, monkeypatch):
    import extractor.embed as E
    import extractor.extract as X

    d = write_transcripts(tmp_path / "t")
    (d / "notes.pdf").write_bytes(b"%PDF-1.4")
    cat = write_catalog(tmp_path)
    monkeypatch.setattr(X, "load_classifier", lambda *a, **kw: (KeywordClassifier(cat), {"fingerprint": "k"}))
    monkeypatch.setattr(E, "make_embedder", lambda *a, **kw: HashingEmbedder())
    assert main(["extract", str(d), "-o", str(tmp_path / "out"), "--no-qdpx"]) == 0
    err = capsys.readouterr().err
    assert err.count("notes.pdf") == 1 and "warning: skipped" in err, err


def test_corrections_are_taught_to_a_classifier_that_takes_them(tmp_path):
    from extractor.types import Labels

    write_transcripts(tmp_path / "t")
    cat = write_catalog(tmp_path)

    class Teachable(KeywordClassifier):
        def predict(self, turns, progress=False, taught=None):
            self.taught = taught
            return super().predict(turns, progress)

    clf = Teachable(cat)
    first = _run(tmp_path)[1].predictions[0]
    human = {first.id: Labels(("explainability",), (), False)}
    _, res = _run(tmp_path, clf=clf, human=human)
    assert clf.taught == human and clf.calls == [["Interview A", "Interview B"]]  # new answers: new cache key
    assert res.predictions[0].label_source == "human" and res.predictions[0].categories == ("explainability",)
    clf2 = Teachable(cat)
    _run(tmp_path, clf=clf2, human=human)
    assert clf2.calls == []  # the same answers: cached


def test_reviewers_answers_say_who_and_when_in_the_outputs(tmp_path):
    from extractor.predict import Answer
    from extractor.types import Labels

    write_transcripts(tmp_path / "t")
    first = _run(tmp_path)[1].predictions[0]
    answer = Answer(Labels(("explainability",)), "ana", "2026-12-03T18:00:00Z")
    _run(tmp_path, out="out2", human={first.id: answer})
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "out2" / "predictions.jsonl")}
    assert (rows[first.id]["reviewer"], rows[first.id]["reviewed_at"]) == ("ana", "2026-12-03T18:00:00Z")
    assert rows[first.id]["label_source"] == "human" and rows[first.id]["categories"] == ["explainability"]


def test_a_truncated_embedding_cache_heals_on_the_rerun(tmp_path):
    write_transcripts(tmp_path / "t")
    _run(tmp_path)
    emb = tmp_path / "out" / ".cache" / "embeddings"
    for f in emb.rglob("*"):
        if f.is_file():
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    _, res = _run(tmp_path)
    assert res.manifest["cache"]["embeddings"]["misses"] > 0
    _, res = _run(tmp_path)
    assert res.manifest["cache"]["embeddings"]["misses"] == 0 and res.manifest["cache"]["embeddings"]["hits"] > 0


def test_the_extract_modules_import_no_private_name_across_modules():
    import ast

    root = Path(__file__).resolve().parents[1] / "extractor"
    for path in [root / "extract.py", root / "stages.py", root / "engine_ray.py", *sorted((root / "cli").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("extractor"):
                assert not [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")], \
                    (path.name, node.module)


def test_damaged_privacy_and_fifo_cache_entries_heal(tmp_path):
    import os

    write_transcripts(tmp_path / "t")
    _, first = _run(tmp_path)
    cache = tmp_path / "out" / ".cache"
    for entry in (cache / "privacy").iterdir():
        entry.write_text('[{"file": "x", "li')  # truncated
    seg = sorted((cache / "segments").iterdir())[0]
    seg.unlink()
    os.mkfifo(seg)  # would hang a reader that opened it
    shards = list((cache / "embeddings").rglob("*.npz"))
    for shard in shards:
        shard.unlink()
        os.mkfifo(shard)
    _, res = _run(tmp_path)  # a hang or an internal error here fails
    assert res.manifest["counts"] == first.manifest["counts"] and res.manifest["cache"]["segment_misses"] == 1
    assert seg.is_file() and all(not s.exists() or s.is_file() for s in shards)
    assert all(e.read_text().startswith("[") and e.read_text().rstrip().endswith("]") for e in (cache / "privacy").iterdir())
