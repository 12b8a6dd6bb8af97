"""JSONL and file I/O at the pipeline's edges: line-numbered errors, atomic writes."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from extractor.errors import InputError, RecordError
from extractor.jsonio import iter_json_lines
from extractor.safeio import (
    check_writable_kind,
    clean_stale_temps,
    clean_stale_temps_once,
    output_error,
    temp_prefix,
    write_target,
)
from extractor.types import Prediction, Turn, with_ids


def short_repr(text: str, n: int = 60) -> str:
    """``text`` stripped, cut at ``n`` characters, as a one-line ``repr`` for messages."""
    text = text.strip()
    return repr(text if len(text) <= n else text[:n] + "...")


_short = short_repr  # the old private name, still imported by review.py until it takes short_repr


def enumerate_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, obj)`` per non-blank line; a bad line raises :class:`InputError`.

    Lines are read by :func:`extractor.jsonio.iter_json_lines`: capped, strict JSON (no NaN,
    no 5,000-digit integers, no lone surrogates, no key twice, bounded nesting).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "an existing JSONL file", "no such file")
    for n, obj in iter_json_lines(path, what="a JSONL file", expected="one JSON object per line"):
        if not isinstance(obj, dict):
            raise InputError(path, "a JSON object", f"{type(obj).__name__} {short_repr(json.dumps(obj))}", line=n)
        yield n, obj


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-blank line of a JSONL file."""
    return (obj for _, obj in enumerate_lines(path))


_TURN_FIELDS = {"interview": str, "turn": int, "speaker": str, "text": str}


def check_fields(path: str | Path, line: int, obj: Mapping[str, Any], fields: Mapping[str, type], hint: str) -> None:
    """Each of ``fields`` present in ``obj`` with its type (``True`` is not an ``int``), else one
    :class:`InputError` naming ``path:line``."""
    for key, typ in fields.items():
        if not isinstance(obj.get(key), typ) or isinstance(obj.get(key), bool):
            found = "nothing" if key not in obj else f"{type(obj[key]).__name__} {obj[key]!r}"[:80]
            raise InputError(path, f'field "{key}" of type {typ.__name__}', found, line=line, hint=hint)


def read_turns(path: str | Path) -> list[Turn]:
    """Read turns written by ``extractor segment`` or the gold ``turns.jsonl``; fill in ids.

    Strict: wrong types, a ``labels`` object of the wrong shape, the same (interview, turn)
    twice and two different turns sharing one ``id`` are errors naming ``file:line``.
    """
    turns: list[Turn] = []
    lines: list[int] = []
    at: dict[tuple[str, int], int] = {}
    for n, obj in enumerate_lines(path):
        check_fields(path, n, obj, _TURN_FIELDS, "is this a turns file from `extractor segment`?")
        if obj["speaker"] not in ("interviewee", "interviewer"):
            raise InputError(path, 'speaker "interviewee" or "interviewer"', repr(obj["speaker"]), line=n)
        labels = obj.get("labels")
        if labels is not None and not (
            isinstance(labels, dict)
            and all(isinstance(labels.get(k, []), list) and all(isinstance(x, str) for x in labels.get(k, []))
                    for k in ("categories", "phases"))
        ):
            raise InputError(path, '"labels" = {"categories": [ids], "phases": [ids], "mitigation": bool}',
                             repr(labels)[:80], line=n)
        try:
            t = Turn.from_dict(obj)
        except RecordError as e:
            raise e.at(path, n) from None
        place = (t.interview, t.turn)
        if place in at:
            raise InputError(path, "each (interview, turn) once", f"{t.interview!r} turn {t.turn} again "
                             f"(also line {at[place]})", line=n,
                             hint="two transcripts with one interview name, or a file concatenated twice?")
        at[place] = n
        turns.append(t)
        lines.append(n)
    out = list(with_ids(turns))
    first: dict[str, int] = {}
    for t, n in zip(out, lines):
        if t.id in first:
            raise InputError(path, "a unique turn id per turn", f"id {t.id!r} again (also line {first[t.id]})",
                             line=n)
        first[t.id] = n
    return out


def check_label_ids(path: str | Path, turns: Iterable[Turn], catalog: Any) -> None:
    """Every label id of ``turns`` must be in ``catalog``; else ``file:line`` of the first unknown one.

    ``turns`` are those :func:`read_turns` returned for ``path`` (blank lines skipped, so
    the line is looked up again from the file).
    """
    cats, phases = set(catalog.category_ids), set(catalog.phase_ids)
    for t in turns:
        if t.labels is None:
            continue
        bad = [c for c in t.labels.categories if c not in cats] + [p for p in t.labels.phases if p not in phases]
        if bad:
            line = next((n for n, obj in enumerate_lines(path)
                         if obj.get("interview") == t.interview and obj.get("turn") == t.turn), None)
            raise InputError(path, f"label ids of the catalog {getattr(catalog, 'tag', '')}".rstrip(),
                             f"unknown {bad[0]!r} on {t.interview!r} turn {t.turn}", line=line,
                             hint="fix the label or pass the catalog it belongs to (--catalog)")


_PREDICTION_FIELDS = {"interview": str, "turn": int, "id": str}


def read_predictions(path: str | Path, catalog: Any = None) -> list[Prediction]:
    """Read predictions written by ``extractor predict`` (or ``extract``), validated line by line.

    Each line needs ``interview``, ``turn`` and ``id``; ``text`` (the turn, which discovery
    clusters), when present, must be a string and ``scores`` an object ``{label: probability}``.
    Strict: wrong types
    (``categories`` as a string, ``mitigation: "no"``) and the same prediction id twice are
    errors, never guessed or "last one wins". With a ``catalog``, a category or phase id it
    lacks is an error naming the line (scoring would otherwise count it silently as wrong).
    """
    out = []
    first: dict[str, int] = {}
    for n, obj in enumerate_lines(path):
        check_fields(path, n, obj, _PREDICTION_FIELDS, "is this a predictions file from `extractor predict`?")
        if not isinstance(obj.get("text", ""), str):
            raise InputError(path, 'the turn "text" as a string', repr(obj.get("text"))[:60], line=n)
        if not isinstance(obj.get("scores", {}), Mapping):
            raise InputError(path, '"scores" as an object {label: probability}', repr(obj.get("scores"))[:60],
                             line=n)
        try:
            p = Prediction.from_dict(obj)
        except RecordError as e:
            raise e.at(path, n) from None
        if p.id in first:
            raise InputError(path, "each prediction id once", f"id {p.id!r} again (also line {first[p.id]})", line=n,
                             hint="predictions concatenated twice?")
        first[p.id] = n
        if catalog is not None:
            _check_prediction_ids(path, n, p, catalog)
        out.append(p)
    return out


def unknown_label_ids(categories: Iterable[str], phases: Iterable[str], catalog: Any) -> list[str]:
    """The category and phase ids that ``catalog`` lacks, in order (categories first)."""
    cats, phase_ids = set(catalog.category_ids), set(catalog.phase_ids)
    return [c for c in categories if c not in cats] + [p for p in phases if p not in phase_ids]


def _check_prediction_ids(path: str | Path, line: int, p: Prediction, catalog: Any) -> None:
    bad = unknown_label_ids(p.categories, p.phases, catalog)
    if bad:
        raise InputError(path, f"category and phase ids of the catalog {getattr(catalog, 'tag', '')}".rstrip(),
                         f"unknown {bad[0]!r} in prediction {p.id!r}", line=line,
                         hint="predicted with another catalog? pass it with --catalog")


def _target_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    A crash or kill mid-write leaves the previous file intact; the hidden temp file of a
    killed writer is removed by the next write into that directory
    (:func:`extractor.safeio.clean_stale_temps`). A full disk, a read-only place or a parent
    that is a file is one :class:`ExtractorError` line, and nothing is left behind.
    """
    path = write_target(path)  # through a link: replace its target, never the link
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file where a parent directory should be
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path.parent)) from None
        clean_stale_temps(path.parent, name=path.name)
        clean_stale_temps_once(path.parent)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        check_writable_kind(path)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise output_error(path, e) from None
    try:
        # mkstemp creates 0600; give the result the old file's mode, else the usual 0666 & ~umask.
        os.chmod(tmp, _target_mode(path))
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and (e.errno in _WRITE_ERRNOS or e.filename in (None, tmp, str(path))):
            raise output_error(path, e) from None
        raise


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any] | Any]) -> int:
    """Atomically write rows (dicts or records with ``to_dict``) as JSONL; return the count."""
    count = 0
    with atomic_open(path) as fh:
        for row in rows:
            obj = row.to_dict() if hasattr(row, "to_dict") else row
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write one JSON document (indented, for humans and diffs)."""
    with atomic_open(path) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2, sort_keys=False)
        fh.write("\n")
