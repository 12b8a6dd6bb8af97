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
    assert err == "error: internal error: RuntimeError: a bug (run with -v for the traceback; please report it)\n"
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
