"""Tests for extractor.cli: help, exit codes, one-line errors."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from extractor import cli
from extractor.errors import InputError


def test_help_lists_every_registered_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert len(sub.choices) == len(cli.COMMANDS)
    for name in sub.choices:
        assert name in out
    for name in ("segment", "evaluate"):
        assert name in sub.choices


def test_each_subcommand_has_help(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        with pytest.raises(SystemExit) as e:
            cli.main([name, "--help"])
        assert e.value.code == 0, name
        assert "usage: extractor " + name in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == cli.EXIT_USAGE == 2
    assert "commands" in capsys.readouterr().out


def test_unknown_command_and_bad_option_exit_2(capsys):
    for argv in (["frobnicate"], ["evaluate", "--no-such-option"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
    capsys.readouterr()


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("qi-extractor ")


REGISTERED = list(cli.COMMANDS)


def _fake_command(monkeypatch, run):
    def add(sub):
        p = sub.add_parser("fake", help="a test command")
        p.set_defaults(func=run)

    monkeypatch.setattr(cli, "COMMANDS", [*REGISTERED, add])


def test_extractor_error_becomes_one_line_and_exit_1(monkeypatch, capsys):
    def run(args):
        raise InputError("in.jsonl", "a JSON object", "list", line=3, hint="check the file")

    _fake_command(monkeypatch, run)
    assert cli.main(["fake"]) == cli.EXIT_ERROR == 1
    err = capsys.readouterr().err
    assert err == "error: in.jsonl:3: expected a JSON object, found list; check the file\n"


def test_other_exceptions_are_one_line_not_a_traceback(monkeypatch, capsys):
    def run(args):
        raise RuntimeError("a bug\nsecond line")

    _fake_command(monkeypatch, run)
    assert cli.main(["fake"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: internal error: RuntimeError: a bug (at test_cli.py:")
    assert err.endswith("; run with -v for the traceback; please report it)\n") and len(err.splitlines()) == 1
    assert cli.main(["-v", "fake"]) == 1
    assert "Traceback" in capsys.readouterr().err  # the traceback only when asked for


def test_exit_codes_pass_through_and_none_is_ok(monkeypatch):
    _fake_command(monkeypatch, lambda args: None)
    assert cli.main(["fake"]) == 0
    _fake_command(monkeypatch, lambda args: 3)
    assert cli.main(["fake"]) == 3


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def run(args):
        raise KeyboardInterrupt

    _fake_command(monkeypatch, run)
    assert cli.main(["fake"]) == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def test_python_dash_m_entry_point_and_real_input_error(tmp_path):
    """End to end through a subprocess: a missing input file gives exit 1 and one stderr line."""
    gold = tmp_path / "missing.jsonl"
    r = subprocess.run([sys.executable, "-m", "extractor", "evaluate", str(gold), "--predictions", str(gold)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: {gold}: expected an existing JSONL file, found no such file"
    assert r.stdout == ""


def test_import_extractor_is_light():
    code = "import sys, extractor, extractor.cli; print(any(m in sys.modules for m in ('torch', 'sentence_transformers', 'spacy')))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr


# --- packaged defaults, user state, quiet runs ---------------------------------------------


def _run_cli(args, cwd, timeout=300, env=None):
    import os
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo, **(env or {})}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    env.pop("TRANSFORMERS_VERBOSITY", None)
    return subprocess.run([sys.executable, "-m", "extractor", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_demo_runs_from_any_directory_with_the_packaged_model_and_is_quiet(tmp_path):
    r = _run_cli(["demo"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "issues in this interview:" in r.stdout and "interview_example.txt" in r.stdout
    # no library logging, no "Loading weights" bar, no warning box
    assert r.stderr == "", r.stderr
    assert list(tmp_path.iterdir()) == []  # the demo writes nothing


def test_verbose_turns_on_debug_logging(monkeypatch, capsys):
    import logging

    def run(args):
        logging.getLogger("extractor.test").debug("a debug line")
        return 0

    _fake_command(monkeypatch, run)
    assert cli.main(["fake"]) == 0
    assert "a debug line" not in capsys.readouterr().err
    assert cli.main(["-v", "fake"]) == 0
    assert "a debug line" in capsys.readouterr().err
    cli.main(["fake"])  # leave logging quiet for the other tests


def test_model_defaults_are_the_packaged_model(capsys):
    from extractor.resources import packaged_model

    parser = cli.build_parser()
    for argv in (["demo"], ["predict", "t.jsonl", "-o", "p.jsonl"], ["extract", "d", "-o", "o"]):
        assert parser.parse_args(argv).model is None  # resolved to packaged_model() when run
    assert (packaged_model() / "manifest.json").is_file()
    assert "models/default" not in " ".join(a.help or "" for a in parser._actions)


def test_discover_review_writes_user_state_under_the_state_dir(tmp_path, capsys):
    import json

    from extractor.catalog import load_catalog
    from extractor.resources import packaged_catalog

    before = packaged_catalog().read_bytes()
    proposals = tmp_path / "proposals.jsonl"
    rows = [{"id": "p1", "name": "Coffee machine trouble", "keywords": ["coffee"], "members": ["a", "b"],
             "decision": "accept", "definition": "The office coffee machine breaks."},
            {"id": "p2", "name": "Weather", "keywords": ["rain"], "members": ["c"], "decision": "reject"}]
    proposals.write_text("".join(json.dumps(r) + "\n" for r in rows))
    state = tmp_path / "state"
    assert cli.main(["--state-dir", str(state), "discover-review", str(proposals)]) == 0
    err = capsys.readouterr().err
    assert "1 accepted" in err and "1 rejected" in err and "created" in err
    cat = load_catalog(state / "annotations" / "catalog.yaml")
    assert cat.categories[-1].name == "Coffee machine trouble"
    assert (tmp_path / "rejected_proposals.jsonl").read_text().count("\n") == 1  # beside the proposals
    assert packaged_catalog().read_bytes() == before


def test_the_packaged_catalog_is_never_written(tmp_path):
    from extractor.catalog import Entry, add_category
    from extractor.resources import packaged_catalog

    before = packaged_catalog().read_bytes()
    with pytest.raises(InputError, match="expected a writable catalog outside the installed package"):
        add_category(packaged_catalog(), Entry("x_new", "X", "d"))
    assert packaged_catalog().read_bytes() == before


def test_state_dir_defaults_to_env_then_working_directory(tmp_path, monkeypatch):
    from pathlib import Path

    from extractor.resources import default_user_catalog, state_dir

    monkeypatch.delenv("QI_STATE_DIR", raising=False)
    assert state_dir() == Path(".")
    monkeypatch.setenv("QI_STATE_DIR", str(tmp_path))
    assert default_user_catalog() == tmp_path / "annotations" / "catalog.yaml"
    assert state_dir(tmp_path / "x") == tmp_path / "x"


# --- the overwrite policy and one-line errors for every command (issue 12) ---------------------------


TINY_CATALOG = """\
name: tiny
version: 1
phases:
- {id: deploy, name: Deployment, definition: Shipping models.}
categories:
- {id: drift, name: Drift, definition: Data changes over time., phases: [deploy]}
"""


def _files(tmp_path):
    import json

    (tmp_path / "catalog.yaml").write_text(TINY_CATALOG)
    (tmp_path / "gold.jsonl").write_text(json.dumps({"interview": "I", "turn": 0, "speaker": "interviewee",
                                                     "text": "data drift", "labels": {"categories": ["drift"],
                                                                                      "phases": []}}) + "\n")
    (tmp_path / "existing.json").write_text("precious\n")
    return tmp_path / "catalog.yaml"


@pytest.mark.parametrize("argv", [
    ["review", "agreement", "{d}/gold.jsonl", "--json", "{d}/existing.json", "--catalog", "{d}/catalog.yaml"],
    ["evaluate", "{d}/gold.jsonl", "--cv", "2", "--save-predictions", "{d}/existing.json"],
    ["evaluate", "{d}/gold.jsonl", "--predictions", "{d}/gold.jsonl", "--json", "{d}/existing.json"],
    ["predict", "{d}/gold.jsonl", "-o", "{d}/existing.json"],
    ["segment", "{d}/gold.jsonl", "-o", "{d}/existing.json"],
    ["qdpx", "import", "{d}/gold.jsonl", "-o", "{d}/existing.json"],
    ["qdpx", "export", "--turns", "{d}/gold.jsonl", "--predictions", "{d}/gold.jsonl", "-o", "{d}/existing.json"],
    ["qdpx", "export", "--turns", "{d}/gold.jsonl", "--predictions", "{d}/gold.jsonl", "-o", "{d}/new.qdpx",
     "--codebook", "{d}/existing.json"],
])
def test_no_command_overwrites_without_force(tmp_path, capsys, argv):
    _files(tmp_path)
    argv = [a.format(d=tmp_path) for a in argv]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "existing.json: expected a new " in err and err.endswith("pass --force to overwrite it\n")
    assert err.count("\n") == 1
    assert (tmp_path / "existing.json").read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.yaml", "existing.json", "gold.jsonl"]


def test_force_overwrites_agreement_json(tmp_path, capsys):
    cat = _files(tmp_path)
    (tmp_path / "answers.jsonl").write_text("")
    argv = ["review", "agreement", str(tmp_path / "answers.jsonl"), "--json", str(tmp_path / "existing.json"),
            "--catalog", str(cat), "--force"]
    cli.main(argv)  # nothing to compare (exit 1) but the report is written
    assert (tmp_path / "existing.json").read_text().startswith("{")


@pytest.mark.parametrize("errno_name, found", [("EROFS", "a read-only file system"),
                                               ("EACCES", "permission denied"),
                                               ("ENOSPC", "no space left on the device")])
def test_unwritable_outputs_are_one_line(tmp_path, capsys, monkeypatch, errno_name, found):
    import errno
    import tempfile

    (tmp_path / "t.txt").write_text("Interviewer: Hi?\nInterviewee: Our data drifts.\n")

    def refuse(*a, **k):
        raise OSError(getattr(errno, errno_name), "refused")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert cli.main(["segment", str(tmp_path / "t.txt"), "-o", str(tmp_path / "out.jsonl")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"error: {tmp_path / 'out.jsonl'}: expected a writable output, found {found}; nothing was " \
                      "written there"
    assert "Traceback" not in "\n".join(err)


def test_read_only_directory_for_real(tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    (tmp_path / "t.txt").write_text("Interviewer: Hi?\nInterviewee: Our data drifts.\n")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    try:
        assert cli.main(["segment", str(tmp_path / "t.txt"), "-o", str(ro / "out.jsonl")]) == 1
        assert "found permission denied" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_annotate_on_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import errno
    import io
    import json
    import os

    from extractor import review
    from extractor.catalog import load_catalog
    from extractor.types import Prediction

    cat = _files(tmp_path)
    q = tmp_path / "q.jsonl"
    review.export_queue([Prediction("I", 0, "t0", ("drift",), (), False, {"drift": 0.9}, text="x")], q,
                        load_catalog(cat))
    before = q.read_text()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a\n"))
    assert cli.main(["review", "annotate", str(q), "--annotator", "ann", "--catalog", str(cat)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"error: {q}: expected a writable output, found no space left on the device; " \
                                   "nothing was written there"
    assert q.read_text() == before and json.loads(before)["answer"] is None


# --- the overwrite rule covers every input; settings; one-line usage errors -----------------------


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_predict_never_writes_over_its_corrections_even_with_force(tmp_path, capsys):
    answers = tmp_path / "A.jsonl"
    answers.write_text('{"id": "I1#1", "accept": ["drift"]}\n')
    before = answers.read_bytes()
    turns = tmp_path / "turns.jsonl"
    turns.write_text("")
    for out in (answers, tmp_path / "link.jsonl"):
        if out.name == "link.jsonl":
            out.symlink_to(answers)
        assert cli.main(["predict", str(turns), "-o", str(out), "--corrections", str(answers), "--force"]) == 1
        assert "other than the input, found the input itself" in _one_error_line(capsys)
    assert answers.read_bytes() == before


def test_discover_never_writes_over_its_rejected_memory_even_with_force(tmp_path, capsys):
    memory = tmp_path / "R.jsonl"
    memory.write_text('{"id": "p1"}\n')
    preds = tmp_path / "p.jsonl"
    preds.write_text("")
    assert cli.main(["discover", str(preds), "-o", str(memory), "--rejected", str(memory), "--force"]) == 1
    assert "other than the input" in _one_error_line(capsys)
    default = tmp_path / "rejected_proposals.jsonl"  # the default memory beside -o is an input too
    default.write_text('{"id": "p1"}\n')
    assert cli.main(["discover", str(preds), "-o", str(default), "--force"]) == 1
    assert "other than the input" in _one_error_line(capsys)
    assert memory.read_text() == default.read_text() == '{"id": "p1"}\n'
    proposals = tmp_path / "proposals.jsonl"
    proposals.write_text('{"id": "p1", "decision": "reject"}\n')
    assert cli.main(["discover-review", str(proposals), "--rejected", str(proposals)]) == 1
    assert "other than the input" in _one_error_line(capsys)


def test_numeric_options_refuse_nan_inf_and_out_of_range_in_one_line(tmp_path, capsys):
    for argv, msg in ((["segment", "x", "--max-mb", "nan"], "--max-mb: expected a size in MiB >= 0, found nan"),
                      (["predict", "t", "-o", "p", "--batch-size", "inf"], "--batch-size: expected a positive"),
                      (["review", "serve", "q", "--port", "70000"], "--port: expected a port number 0-65535"),
                      (["discover", "p", "-o", "o", "--score-threshold", "nan"], "--score-threshold: expected a "
                                                                                  "finite number, found nan"),
                      (["evaluate", "g", "--cv", "1"], "--cv: expected at least 2 folds, found 1")):
        assert cli.main(argv) == cli.EXIT_USAGE
        assert msg in _one_error_line(capsys)


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["segment", "x", "--no-such-option"])
    assert e.value.code == 2
    assert "unrecognized arguments: --no-such-option" in _one_error_line(capsys)


def test_review_export_without_catalog_uses_the_catalog_of_the_model_that_predicted(tmp_path):
    import json

    from extract_fixtures import write_catalog

    from extractor.cli.common import catalog_for
    from extractor.safeio import claim_output_dir

    model = tmp_path / "model"
    model.mkdir()
    tiny = write_catalog(model)  # model/catalog.yaml
    out = tmp_path / "out"
    claim_output_dir(out)
    (out / "manifest.json").write_text(json.dumps({"format": "qi-extractor/extract@1", "model": {"path": str(model)}}))
    (out / "predictions.jsonl").write_text("")
    assert catalog_for(None, predictions=out / "predictions.jsonl").tag == tiny.tag
    assert catalog_for(None, predictions=tmp_path / "elsewhere.jsonl").tag != tiny.tag  # the packaged one
    assert catalog_for(str(model / "catalog.yaml")).tag == tiny.tag


def test_segment_skips_links_out_of_an_input_folder_unless_followed(tmp_path, capsys):
    d = tmp_path / "t"
    d.mkdir()
    (d / "Interview 1.txt").write_text("Interviewer: Hi?\nInterviewee: Our data drifts every week.\n")
    private = tmp_path / "private.txt"
    private.write_text("Interviewer: Hi?\nInterviewee: A secret from elsewhere.\n")
    (d / "Interview 2.txt").symlink_to(private)
    out = tmp_path / "turns.jsonl"
    assert cli.main(["segment", str(d), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("Interview 2.txt") == 1 and "--follow-links" in err and "1 file skipped" in err
    assert "secret" not in out.read_text()
    assert cli.main(["segment", str(d), "-o", str(out), "--force", "--follow-links"]) == 0
    assert "secret" in out.read_text()
