"""The shared safety primitives (issue 12): names from input, capped reads of regular files,
zip-bomb checks, the writer lock, the overwrite policy and stale temp-file cleanup."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hostile import REPO, zip_bomb_member

from extractor import safeio
from extractor.errors import ExtractorError, InputError
from extractor.jsonl import atomic_open, write_jsonl


@pytest.mark.parametrize("ref, found", [
    ("/etc/passwd", "an absolute path"),
    ("C:\\Windows\\x.txt", "an absolute path"),
    ("\\\\host\\share\\x.txt", "an absolute path"),
    ("../../outside.txt", "a path that leaves it"),
    ("sources/../../outside.txt", "a path that leaves it"),
    ("a\\..\\..\\b.txt", "a path that leaves it"),
    ("", "(a relative name), found ''"),
    ("x\x00.txt", "(a relative name)"),
])
def test_member_paths_that_leave_the_archive_are_refused(ref, found):
    with pytest.raises(InputError, match=f"p.qdpx: expected an archive member path.*{found[:20]}".replace("(", r"\(")
                       .replace(")", r"\)").replace("\\\\", "\\\\\\\\")):
        safeio.safe_member_path(ref, where="p.qdpx")


def test_member_paths_inside_are_normalised():
    assert safeio.safe_member_path("sources/./a.txt", where="p") == "sources/a.txt"
    assert safeio.safe_member_path("sources\\b.txt", where="p") == "sources/b.txt"


def test_safe_filename():
    assert safeio.safe_filename("../../etc/passwd") == "_.._etc_passwd"
    assert safeio.safe_filename("a\x07b/c") == "a_b_c"
    assert safeio.safe_filename("...") == "unnamed"


def test_fifo_and_devices_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="pipe.txt: expected a regular file, found a FIFO"):
        safeio.read_capped(fifo, 100)  # would block forever in a plain open()
    with pytest.raises(InputError, match="/dev/zero: expected a regular file, found a character device"):
        safeio.read_capped("/dev/zero", 100)
    with pytest.raises(InputError, match="expected a regular file, found a directory"):
        safeio.read_capped(tmp_path, 100)


def test_read_capped(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    assert safeio.read_capped(f, 100) == b"x" * 100
    assert safeio.read_capped(f, 0) == b"x" * 100
    with pytest.raises(InputError, match="expected a regular file of at most 99 bytes, found 100 bytes"):
        safeio.read_capped(f, 99)


def test_zip_bomb_is_refused_from_its_headers(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w") as zf:
        zip_bomb_member(zf, "a.txt", 100)
    assert bomb.stat().st_size < 2**20
    with pytest.raises(InputError, match=r"bomb.zip: expected archive members of at most 64 MiB uncompressed, "
                                         r"found 'a.txt' of 100 MiB"):
        safeio.open_zip(bomb)
    with pytest.raises(InputError, match=r"expected a compression ratio of at most 200:1, found 'a.txt' at \d+:1"):
        safeio.open_zip(bomb, max_member=0)


def test_member_inflation_stops_at_the_cap_whatever_the_header_says(tmp_path):
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m.txt", b"y" * 5000)
    with safeio.open_zip(z) as zf:
        assert safeio.read_member(zf, "m.txt", z) == b"y" * 5000
        with pytest.raises(InputError, match="expected archive member 'm.txt' of at most 4.9 KiB uncompressed"):
            safeio.read_member(zf, "m.txt", z, max_bytes=4999)


def test_check_output_policy(tmp_path):
    out = tmp_path / "o.jsonl"
    safeio.check_output(out)  # new file: fine
    safeio.check_output("-")
    out.write_text("keep")
    with pytest.raises(ExtractorError, match="o.jsonl: expected a new output file, found an existing one; pass --force"):
        safeio.check_output(out)
    safeio.check_output(out, force=True)
    with pytest.raises(ExtractorError, match="expected an output file other than the input, found the input itself"):
        safeio.check_output(out, force=True, inputs=[tmp_path / "." / "o.jsonl"])
    with pytest.raises(ExtractorError, match="expected an output file, found a directory"):
        safeio.check_output(tmp_path, force=True)
    with pytest.raises(ExtractorError, match=f"expected a directory above the output file, found the file {out}"):
        safeio.check_output(out / "x.jsonl")


def test_atomic_write_errors_are_one_line_and_leave_nothing(tmp_path, monkeypatch):
    out = tmp_path / "o.jsonl"
    out.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ExtractorError, match="o.jsonl: expected a writable output, found no space left on the "
                                             "device; nothing was written there"):
        write_jsonl(out, [{"a": 1}])
    monkeypatch.undo()
    assert out.read_text() == "old\n" and os.listdir(tmp_path) == ["o.jsonl"]
    with pytest.raises(ExtractorError, match="found a parent that is a file"):
        write_jsonl(out / "x.jsonl", [{"a": 1}])
    with pytest.raises(ExtractorError, match="found a directory in the way"):
        write_jsonl(tmp_path, [{"a": 1}])


def test_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path):
    """A SIGKILLed writer leaves its hidden temp file (transcript text); the next run removes it."""
    target = tmp_path / "turns.jsonl"
    code = ("import sys, time\nfrom extractor.jsonl import atomic_open\n"
            "with atomic_open(sys.argv[1]) as fh:\n"
            "    fh.write('secret transcript text'); fh.flush(); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "writing"
        # another live writer's temp file must survive the cleanup
        live = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(live) == 1
        write_jsonl(tmp_path / "other.jsonl", [{"a": 1}])
        assert live[0].exists()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert live[0].exists() and "secret" in live[0].read_text()  # the leftover the issue describes
    safeio._cleaned_dirs.clear()
    write_jsonl(tmp_path / "other.jsonl", [{"a": 2}])  # any later write into the directory
    assert not live[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.jsonl"]


def test_only_our_temp_files_are_touched(tmp_path):
    mine = tmp_path / ".o.jsonl.qi999999999.abcdefgh.tmp"  # no such pid
    theirs = tmp_path / ".o.jsonl.abcdefgh.tmp"
    for p in (mine, theirs):
        p.write_text("x")
    assert safeio.clean_stale_temps(tmp_path) == [mine]
    assert theirs.exists()


_LOCK_HOLDER = """
import sys, time
from extractor.safeio import locked
with locked(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_lock_excludes_another_process_and_times_out_in_one_line(tmp_path):
    target = tmp_path / "q.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(target)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(ExtractorError, match="q.jsonl: expected to be the only writer, found it locked by "
                                                 "another process"):
            with safeio.locked(target, timeout=0.5):
                pass
    finally:
        proc.kill()
        proc.wait(timeout=10)
    with safeio.locked(target, timeout=5):  # released when its holder died
        pass


def test_special_files_are_never_replaced_by_an_output(tmp_path):
    """Renaming over /dev/full (as root) replaced the device node; a FIFO, likewise."""
    import stat

    f = tmp_path / "out.jsonl"
    os.mkfifo(f)
    with pytest.raises(ExtractorError, match="out.jsonl: expected a regular file to write, found a FIFO"):
        with atomic_open(f) as fh:
            fh.write("x\n")
    assert stat.S_ISFIFO(os.stat(f).st_mode)
    for target in ("/dev/full", "/dev/null"):
        with pytest.raises(ExtractorError, match=f"{target}: expected a regular file to write, found a character"):
            safeio.check_output(target, force=True)
        with pytest.raises(ExtractorError, match="expected a regular file to write"):
            write_jsonl(target, [{"a": 1}])
        with pytest.raises(ExtractorError, match="expected a regular file to write"):
            with safeio.locked(target):
                pass
        assert stat.S_ISCHR(os.stat(target).st_mode)
    assert not Path("/dev/.full.lock").exists() and not Path("/dev/.null.lock").exists()


def test_archive_with_too_many_members_is_refused_before_listing_them(tmp_path, monkeypatch):
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for k in range(50):
            zf.writestr(f"m{k}", b"")
    monkeypatch.setattr(safeio, "MAX_MEMBERS", 49)
    with pytest.raises(InputError, match="many.zip: expected an archive of at most 49 members, found 50"):
        safeio.open_zip(z)
    monkeypatch.setattr(safeio, "MAX_MEMBERS", 50)
    safeio.open_zip(z).close()


# --- the overwrite rule: every input, links resolved; output folders; link targets; model swaps ---


def test_an_output_that_is_an_input_through_a_link_is_refused_even_with_force(tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"id": "x"}\n')
    link = tmp_path / "link.jsonl"
    link.symlink_to(answers)
    with pytest.raises(ExtractorError, match="expected an output file other than the input, found the input itself"):
        safeio.check_output(link, force=True, inputs=[answers])
    with pytest.raises(ExtractorError, match="other than the input"):  # a new name inside a linked folder
        (tmp_path / "d").symlink_to(tmp_path, target_is_directory=True)
        safeio.check_not_input(tmp_path / "d" / "answers.jsonl", [answers])
    safeio.check_not_input(tmp_path / "other.jsonl", [answers, None, "-"])  # no error


def test_writers_replace_the_target_of_a_link_never_the_link(tmp_path):
    target = tmp_path / "real" / "queue.jsonl"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "queue.jsonl"
    link.symlink_to(target)
    write_jsonl(link, [{"a": 1}])
    assert link.is_symlink() and target.read_text() == '{"a": 1}\n'
    with safeio.locked(link):
        assert safeio.lock_path(target).exists() and not safeio.lock_path(link).exists()


def _model_like(d: Path) -> Path:
    d.mkdir()
    (d / "manifest.json").write_text('{"format": "qi-classifier@2", "files": {}}')
    return d


def test_an_output_folder_is_ours_only_with_our_marker_or_manifest(tmp_path):
    model = _model_like(tmp_path / "model")
    names = ("report.md", "manifest.json")
    for force in (False, True):  # someone else's manifest.json is never overwritten
        with pytest.raises(InputError, match="manifest.json"):
            safeio.check_output_dir(model, force=force, names=names)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="pass --force to write beside them"):
        safeio.check_output_dir(other, names=names)
    safeio.check_output_dir(other, force=True, names=names)  # beside other files: allowed
    (other / "report.md").write_text("my report")
    with pytest.raises(InputError, match="'report.md' written by someone else.*--force never overwrites"):
        safeio.check_output_dir(other, force=True, names=names)
    safeio.claim_output_dir(tmp_path / "ours")
    (tmp_path / "ours" / "report.md").write_text("half-written by a killed run")
    safeio.check_output_dir(tmp_path / "ours", names=names)  # ours: the plain rerun proceeds
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "manifest.json").write_text('{"tool": "qi-extractor 0.1.0", "inputs": [], "counts": {}}')
    safeio.check_output_dir(legacy, names=names)
    with pytest.raises(InputError, match="an output directory whose files are not inputs"):
        safeio.check_output_dir(tmp_path / "ours", names=names, inputs=[tmp_path / "ours" / "report.md"])
    (tmp_path / "ours" / "answers.jsonl").write_text("{}\n")  # an input of another name may live there
    safeio.check_output_dir(tmp_path / "ours", names=names, inputs=[tmp_path / "ours" / "answers.jsonl"])


def test_replace_dir_swaps_a_complete_folder_in(tmp_path, monkeypatch):
    for atomic in (True, False):
        d = tmp_path / f"m{atomic}"
        d.mkdir()
        (d / "weights").write_text("old")
        new = tmp_path / f"new{atomic}"
        new.mkdir()
        (new / "weights").write_text("new")
        if not atomic:
            monkeypatch.setattr(safeio, "exchange_paths", lambda a, b: False)
        safeio.replace_dir(new, d)
        assert (d / "weights").read_text() == "new" and not new.exists()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_replace_dir_puts_the_old_folder_back_when_the_new_one_cannot_go_in(tmp_path, monkeypatch):
    d = tmp_path / "m"
    d.mkdir()
    (d / "weights").write_text("old")
    monkeypatch.setattr(safeio, "exchange_paths", lambda a, b: False)
    with pytest.raises(FileNotFoundError):
        safeio.replace_dir(tmp_path / "missing", d)
    assert (d / "weights").read_text() == "old"
