"""Safety primitives shared by every command: what input may name, read and make us write.

One rule each, used everywhere (see docs/safety.md):

- :func:`safe_member_path`: a path *named by input* (an archive member, a source's
  ``plainTextPath``) must be relative, without ``..``, and stays inside its archive.
- :func:`safe_filename`: a name from input (interview, source) used as a file name
  becomes one harmless path component.
- :func:`open_regular` / :func:`read_capped`: only regular files are read (never a FIFO,
  ``/dev/zero`` or a device), and never more than a cap, so memory stays bounded.
- :func:`open_zip` / :func:`read_member`: archives whose declared sizes or compression
  ratios are those of a zip bomb are refused before anything is inflated; members are
  inflated in chunks up to the cap.
- :func:`locked`: one writer at a time per file (``filelock``); callers re-read the
  file *under* the lock before they change it, so no concurrent answer is lost.
- :func:`check_output`: nothing is overwritten without ``--force``, an output is never
  one of the inputs, and a bad ``-o`` (a directory, a parent that is a file) is a
  one-line error before any work is done.
- :func:`check_output_dir` / :func:`claim_output_dir`: an output *folder* is ours only
  when our marker (or our own manifest, with our format marker) is in it; ``--force``
  writes beside other people's files but never over them, nor over a foreign manifest.
- :func:`write_target`: writers replace the file a link points to, never the link.
- :func:`clean_stale_temps`: hidden temp files of our own writers that were killed are
  removed on the next run (they may hold transcript text).

The capped JSON reader built on these is :mod:`extractor.jsonio`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from extractor.errors import ExtractorError, InputError

MiB = 2**20
MAX_MEMBER_BYTES = 64 * MiB  # one archive member, inflated
MAX_ARCHIVE_BYTES = 256 * MiB  # all members together, inflated
MAX_MEMBERS = 100_000  # each member's header costs Python memory before anything is inflated
MAX_RATIO = 200  # inflated / compressed; text and XML stay far below, zip bombs far above
_RATIO_FLOOR = 1 * MiB  # tiny members may compress extremely well (runs of spaces): no ratio check below
_CHUNK = 1 * MiB
LOCK_TIMEOUT_S = 60.0
TEMP_TAG = "qi"  # temp files are .{name}.qi{pid}.{random}.tmp
OUTPUT_FORMAT = "qi-extractor/extract@1"  # the "format" of an extract output folder's manifest.json
OWNER_MARK = ".qi-extractor"  # written into an output folder when a run claims it


# --- names from input ------------------------------------------------------------------


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_member_path(ref: str, *, where: str | Path, what: str = "an archive member path") -> str:
    """``ref`` as a normalised relative POSIX path that cannot leave its root; else :class:`InputError`.

    Refused: absolute paths (``/x``, ``C:\\x``, ``\\\\host``), any ``..`` component,
    control characters and empty names. Backslashes count as separators.
    """
    found = repr(ref)[:80]
    if not isinstance(ref, str) or not ref.strip() or _CONTROL.search(ref):
        raise InputError(where, f"{what} (a relative name)", found)
    norm = ref.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise InputError(where, f"{what} inside the archive", f"an absolute path {found}")
    parts = [p for p in PurePosixPath(norm).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise InputError(where, f"{what} inside the archive", f"a path that leaves it {found}")
    return "/".join(parts)


def safe_filename(name: str, *, default: str = "unnamed", max_len: int = 120) -> str:
    """A name from input as one harmless file-name component (no separators, no dot-files)."""
    s = _CONTROL.sub("_", str(name)).replace("/", "_").replace("\\", "_").strip().lstrip(".")
    s = s[:max_len].strip()
    return s or default


# --- reading: regular files only, capped ---------------------------------------------------


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "a special file"


def is_regular(path: str | Path) -> bool:
    """True for a regular file (following symlinks); False for FIFOs, devices, directories, nothing."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def open_regular(path: str | Path, *, what: str = "a regular file"):
    """Open ``path`` for binary reading only if it is a regular file (never blocks on a FIFO)."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(path, what, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, what, "a directory") from None
    except OSError as e:
        raise InputError(path, what, f"an unreadable file ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(path, what, _kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: str | Path, max_bytes: int, *, what: str = "a regular file",
                hint: str | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (0 = no cap); read in chunks, never more."""
    with open_regular(path, what=what) as fh:
        if max_bytes:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise InputError(path, f"{what} of at most {human_size(max_bytes)}", human_size(size), hint=hint)
            data = fh.read(max_bytes + 1)  # +1: a file that grew while we read is still caught
            if len(data) > max_bytes:
                raise InputError(path, f"{what} of at most {human_size(max_bytes)}", "more", hint=hint)
            return data
        return fh.read()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def remove_damaged(entry: Path) -> None:
    """Remove a damaged cache entry that is not a regular file (a FIFO, a link, a folder), so
    the recomputed one can be written in its place; a regular file is simply replaced."""
    import shutil

    if entry.is_file() and not entry.is_symlink():
        return
    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    except OSError:
        pass  # the write that follows reports what is in the way, in one line


def human_size(n: int) -> str:
    value, unit = (n / MiB, "MiB") if n >= MiB else (n / 1024, "KiB") if n >= 1024 else (n, "bytes")
    return (f"{value:.1f}".removesuffix(".0") if unit != "bytes" else str(n)) + " " + unit


# --- archives --------------------------------------------------------------------------


def check_zip(zf: zipfile.ZipFile, where: str | Path, *, max_member: int = MAX_MEMBER_BYTES,
              max_total: int = MAX_ARCHIVE_BYTES, max_ratio: float = MAX_RATIO) -> None:
    """Refuse an archive whose declared sizes or ratios are a zip bomb's, before inflating anything.

    ``zipfile`` never inflates a member beyond its declared size (it stops there and
    checks the CRC), so the declared sizes bound what any reader of ``zf`` can inflate.
    """
    total = 0
    for info in zf.infolist():
        size = info.file_size
        total += size
        if max_member and size > max_member:
            raise InputError(where, f"archive members of at most {human_size(max_member)} uncompressed",
                             f"{info.filename!r} of {human_size(size)}", hint="a zip bomb or a damaged archive?")
        if max_ratio and size > _RATIO_FLOOR and size > max_ratio * max(info.compress_size, 1):
            raise InputError(where, f"a compression ratio of at most {max_ratio:g}:1",
                             f"{info.filename!r} at {size / max(info.compress_size, 1):.0f}:1",
                             hint="a zip bomb?")
        if max_total and total > max_total:
            raise InputError(where, f"an archive of at most {human_size(max_total)} uncompressed",
                             f"more than that ({len(zf.infolist())} members)", hint="a zip bomb?")


def open_zip(path: str | Path, *, what: str = "a zip archive", **caps) -> zipfile.ZipFile:
    """Open a regular-file zip archive checked by :func:`check_zip`; bad archives are :class:`InputError`."""
    fh = open_regular(path, what=what)
    try:
        # The member count from the end record, before ZipFile builds one object per member.
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]  # noqa: SLF001 - the stdlib's own reader
        total = zipfile._ECD_ENTRIES_TOTAL  # type: ignore[attr-defined]  # noqa: SLF001
        if end and end[total] > MAX_MEMBERS:
            raise InputError(path, f"an archive of at most {MAX_MEMBERS:,} members",
                             f"{end[total]:,}", hint="a zip bomb?")
        fh.seek(0)
    except InputError:
        fh.close()
        raise
    except Exception:  # noqa: BLE001 - private API moved or a damaged record: ZipFile reports it below
        fh.seek(0)
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        fh.close()
        raise InputError(path, what, f"an unreadable archive ({e})"[:160]) from None
    try:
        check_zip(zf, path, **caps)
    except BaseException:
        zf.close()
        fh.close()
        raise
    # ZipFile does not close a file object it was given; tie it to the archive's close.
    orig_close = zf.close

    def close() -> None:
        try:
            orig_close()
        finally:
            fh.close()

    zf.close = close  # type: ignore[method-assign]
    return zf


def read_member(zf: zipfile.ZipFile, name: str, where: str | Path, *, max_bytes: int = MAX_MEMBER_BYTES) -> bytes:
    """Inflate one member in chunks, refusing it past ``max_bytes`` whatever its header says."""
    chunks: list[bytes] = []
    got = 0
    try:
        with zf.open(name) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    break
                got += len(chunk)
                if max_bytes and got > max_bytes:
                    raise InputError(where, f"archive member {name!r} of at most {human_size(max_bytes)} "
                                     "uncompressed", "more", hint="a zip bomb?")
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        # zlib.error is an Exception subclass we catch below by name to avoid importing zlib here.
        raise InputError(where, f"a readable archive member {name!r}", f"{type(e).__name__}: {e}"[:160]) from None
    except Exception as e:  # zlib.error: corrupt deflate stream
        if type(e).__name__ != "error":
            raise
        raise InputError(where, f"a readable archive member {name!r}", f"corrupt data ({e})"[:160]) from None
    return b"".join(chunks)


# --- locking ---------------------------------------------------------------------------


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextmanager
def locked(path: str | Path, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the writer lock of ``path`` (a hidden ``.NAME.lock`` beside it).

    Every read-modify-write of a shared file (review queues, corrections) happens inside
    it and re-reads the file inside it, so two processes cannot lose each other's lines.
    """
    from filelock import FileLock, Timeout

    path = write_target(path)  # one lock per file, whichever link names it
    check_writable_kind(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ExtractorError(f"{path}: expected a directory above it, found a file") from None
    except OSError as e:
        raise output_error(path, e) from None
    lock = FileLock(str(lock_path(path)), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise ExtractorError(f"{path}: expected to be the only writer, found it locked by another process for "
                             f"{timeout:g}s ({lock_path(path)}); is another `extractor` still running?") from None
    except OSError as e:
        raise output_error(lock_path(path), e) from None
    try:
        yield
    finally:
        lock.release()


# --- writing ---------------------------------------------------------------------------


def os_reason(e: OSError) -> str:
    """A short human reason for an :class:`OSError`."""
    return {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "a read-only file system",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EISDIR: "a directory in the way",
        errno.ENOTDIR: "a parent that is a file, not a directory",
        errno.EEXIST: "a file where a directory should be",
        errno.ENAMETOOLONG: "a name too long for the file system",
    }.get(e.errno or 0, e.strerror or str(e))


def check_writable_kind(path: str | Path) -> None:
    """Outputs are regular files: renaming over a device, FIFO or socket would replace it
    (``-o /dev/full`` as root replaced the device node), so that is refused."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # absent (or unreachable: the write itself reports it)
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise ExtractorError(f"{path}: expected a regular file to write, found {_kind(mode)}; "
                             "write to a file (or '-' for standard output where the command allows it)")


def output_error(path: str | Path, e: OSError) -> ExtractorError:
    """An :class:`OSError` met while writing ``path`` as one line that says what to do."""
    reason = os_reason(e)
    return ExtractorError(f"{path}: expected a writable output, found {reason}; nothing was written there")


def check_output(path: str | Path | None, *, force: bool = False, inputs: Iterable[str | Path] = (),
                 what: str = "output file") -> None:
    """The one overwrite policy: call it for every output before any work is done.

    Refuses an existing file without ``force``, a directory, a parent that is a file,
    and (even with ``force``) an output that is one of ``inputs``.
    """
    if path is None or str(path) == "-":
        return
    p = Path(path)
    a = "an" if what[:1] in "aeiou" else "a"
    check_not_input(p, inputs, what=what)
    if p.is_dir():
        raise ExtractorError(f"{p}: expected {a} {what}, found a directory")
    check_writable_kind(p)
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ExtractorError(f"{p}: expected a directory above the {what}, found the file {parent}")
            break
    if (p.exists() or p.is_symlink()) and not force:
        raise ExtractorError(f"{p}: expected a new {what}, found an existing one; pass --force to overwrite it")


def same_path(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file or folder: links resolved, hard links compared by inode."""
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
        return Path(a).exists() and Path(b).exists() and os.path.samefile(a, b)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False


def check_not_input(path: str | Path, inputs: Iterable[str | Path | None], *, what: str = "output file") -> None:
    """Refuse (even with ``--force``) an output that is one of the command's inputs, through links too:
    corrections, a rejected-proposals memory, a catalog or a model are people's work."""
    a = "an" if what[:1] in "aeiou" else "a"
    for inp in inputs:
        if inp is not None and str(inp) not in ("", "-") and same_path(path, inp):
            shown = "" if str(path) == str(inp) else f" ({inp})"
            raise ExtractorError(f"{path}: expected {a} {what} other than the input, found the input itself{shown}; "
                                 "write to another file")


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``);
    False where the system cannot."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    if ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False  # no such call, or a file system without exchange
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


def replace_dir(new: str | Path, target: str | Path) -> None:
    """Put the complete folder ``new`` at ``target`` in one step and remove what was there.

    Where the system can swap two paths atomically, ``target`` is the old folder or the new
    one at every moment (a kill leaves one of them, never neither). Elsewhere the old folder
    is renamed aside first and put back if the second rename fails.
    """
    import shutil
    import tempfile

    new, target = Path(new), Path(target)
    if not target.exists() and not target.is_symlink():
        os.replace(new, target)
        return
    if exchange_paths(new, target):
        shutil.rmtree(new, ignore_errors=True)  # now the old folder
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent)) / "old"
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside, target)
        shutil.rmtree(aside.parent, ignore_errors=True)
        raise
    shutil.rmtree(aside.parent, ignore_errors=True)


def temp_prefix(path: Path) -> str:
    return f".{path.name}.{TEMP_TAG}{os.getpid()}."


_TEMP_RE = re.compile(rf"^\..+\.{TEMP_TAG}(\d+)\.[A-Za-z0-9_]+\.tmp$")
_cleaned_dirs: set[str] = set()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def clean_stale_temps(directory: str | Path, *, name: str | None = None) -> list[Path]:
    """Remove our hidden temp files in ``directory`` whose writer process is gone.

    Only files named like ours (``.NAME.qi<pid>.<random>.tmp``) are touched, and only when
    that pid no longer runs; with ``name`` only the temps of that output. Returns what was removed.
    """
    directory = Path(directory)
    pattern = f".{name}.{TEMP_TAG}*.tmp" if name else f".*.{TEMP_TAG}*.tmp"
    removed: list[Path] = []
    try:
        candidates = list(directory.glob(pattern))
    except OSError:
        return removed
    for p in candidates:
        m = _TEMP_RE.match(p.name)
        if not m or _alive(int(m.group(1))):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def clean_stale_temps_once(directory: str | Path) -> None:
    """:func:`clean_stale_temps` for a whole directory, at most once per process."""
    key = os.path.abspath(directory)
    if key in _cleaned_dirs:
        return
    _cleaned_dirs.add(key)
    clean_stale_temps(directory)


# --- output folders --------------------------------------------------------------------


def write_target(path: str | Path) -> Path:
    """The file a writer replaces: the target of a symlink (resolved), else ``path`` itself.

    Renaming over a link would replace the link with a private copy while readers and locks
    still follow the link's target."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _small_json(path: Path) -> object:
    try:
        return json.loads(read_capped(path, MiB, what="a manifest"))
    except (InputError, ValueError, UnicodeDecodeError):
        return None


def is_our_output_dir(out: str | Path) -> bool:
    """True when ``out`` holds our claim marker or an extract manifest of ours.

    Ours: ``manifest.json`` whose ``format`` is :data:`OUTPUT_FORMAT` (or, from before the
    marker, whose ``tool`` is ``qi-extractor ...`` beside ``inputs`` and ``counts``).
    A model folder's manifest (format ``qi-classifier@...``) or a web app's is not ours.
    """
    out = Path(out)
    mark = _small_json(out / OWNER_MARK) if is_regular(out / OWNER_MARK) else None
    if isinstance(mark, dict) and mark.get("format") == OUTPUT_FORMAT:
        return True
    m = _small_json(out / "manifest.json") if is_regular(out / "manifest.json") else None
    if not isinstance(m, dict):
        return False
    legacy = str(m.get("tool", "")).startswith("qi-extractor ") and "inputs" in m and "counts" in m
    return m.get("format") == OUTPUT_FORMAT or ("format" not in m and legacy)


def check_output_dir(out: str | Path, *, force: bool = False, names: Iterable[str] = (),
                     inputs: Iterable[str | Path] = ()) -> None:
    """The overwrite rule for an output folder, checked before any work.

    Refused: a file in the way, a folder where an input has a name we write, a
    non-empty folder that is not ours (:func:`is_our_output_dir`) without ``force``, and
    even with ``force`` a foreign folder where one of the ``names`` we write already exists
    (``manifest.json`` included): ``--force`` writes beside other files, never over them.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "an output directory", "a file")
    real, names = out.resolve(), set(names)
    for inp in inputs:  # the folder itself as an input is left out when read; other files in it are kept
        r = Path(inp).resolve()
        if Path(inp).is_file() and real in r.parents and r.relative_to(real).parts[0] in names:
            raise InputError(out, "an output directory whose files are not inputs", f"the input {inp}",
                             hint="pick another -o directory, or move the input")
    if not out.is_dir() or is_our_output_dir(out):
        return
    others = sorted(p.name for p in out.iterdir() if p.name != ".cache")
    if others and not force:
        raise InputError(out, "an empty directory or the output of an earlier `extractor extract`",
                         f"{len(others)} other entries (e.g. {others[0]!r})",
                         hint="pick another -o directory or pass --force to write beside them")
    clash = sorted(set(others) & set(names))
    if clash:
        raise InputError(out, "a directory without files of the names extract writes, or an earlier extract "
                         "output", f"{clash[0]!r} written by someone else",
                         hint="--force never overwrites them; pick another -o directory")


def claim_output_dir(out: str | Path) -> None:
    """Create ``out`` and mark it ours, so that a run killed before its manifest was written
    does not make the plain rerun refuse the folder."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(out, e) from None
    mark = out / OWNER_MARK
    if not is_regular(mark):
        from extractor.jsonl import write_json

        write_json(mark, {"format": OUTPUT_FORMAT})
