"""JSONL and file I/O at the pipeline's edges: line-numbered errors, atomic writes."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from extractor.errors import InputError
from extractor.types import Prediction, Turn, with_ids


def _short(text: str, n: int = 60) -> str:
    text = text.strip()
    return repr(text if len(text) <= n else text[:n] + "...")


def enumerate_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, obj)`` per non-blank line; a bad line raises :class:`InputError`."""
    path = Path(path)
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise InputError(path, "an existing JSONL file", "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "a JSONL file", "a directory") from None
    with fh:
        # Decode line by line (not through a text wrapper, which decodes in chunks) so a
        # bad byte is reported with its own line and column.
        for n, raw in enumerate(fh, 1):
            try:
                # utf-8-sig on line 1: files saved by some Windows editors start with a BOM
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise InputError(path, "UTF-8 text", f"undecodable byte 0x{raw[e.start]:02x} at column {e.start + 1}",
                                 line=n) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(path, "one JSON object per line", f"invalid JSON ({e.msg}) in {_short(line)}", line=n) from None
            if not isinstance(obj, dict):
                raise InputError(path, "a JSON object", f"{type(obj).__name__} {_short(line)}", line=n)
            yield n, obj


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-blank line of a JSONL file."""
    return (obj for _, obj in enumerate_lines(path))


_TURN_FIELDS = {"interview": str, "turn": int, "speaker": str, "text": str}


def read_turns(path: str | Path) -> list[Turn]:
    """Read turns written by ``extractor segment`` or the gold ``turns.jsonl``; fill in ids."""
    turns = []
    for n, obj in enumerate_lines(path):
        for key, typ in _TURN_FIELDS.items():
            if not isinstance(obj.get(key), typ) or isinstance(obj.get(key), bool):
                found = "nothing" if key not in obj else f"{type(obj[key]).__name__} {obj[key]!r}"[:80]
                raise InputError(path, f'field "{key}" of type {typ.__name__}', found, line=n,
                                 hint="is this a turns file from `extractor segment`?")
        if obj["speaker"] not in ("interviewee", "interviewer"):
            raise InputError(path, 'speaker "interviewee" or "interviewer"', repr(obj["speaker"]), line=n)
        labels = obj.get("labels")
        # A malformed labels object would otherwise be dropped (or a string split into letters).
        if labels is not None and not (
            isinstance(labels, dict)
            and all(isinstance(labels.get(k, []), list) and all(isinstance(x, str) for x in labels.get(k, []))
                    for k in ("categories", "phases"))
        ):
            raise InputError(path, '"labels" = {"categories": [ids], "phases": [ids], "mitigation": bool}',
                             repr(labels)[:80], line=n)
        turns.append(Turn.from_dict(obj))
    return list(with_ids(turns))


_PREDICTION_FIELDS = {"interview": str, "turn": int, "id": str, "text": str}


def read_predictions(path: str | Path) -> list[Prediction]:
    """Read predictions written by ``extractor predict`` (or ``extract``), validated line by line.

    Each line needs ``interview``, ``turn``, ``id`` and the turn ``text`` (``""`` is fine);
    ``scores``, when present, must be an object ``{label: probability}``.
    """
    out = []
    for n, obj in enumerate_lines(path):
        for key, typ in _PREDICTION_FIELDS.items():
            if not isinstance(obj.get(key), typ) or isinstance(obj.get(key), bool):
                found = "nothing" if key not in obj else f"{type(obj[key]).__name__} {obj[key]!r}"[:80]
                raise InputError(path, f'field "{key}" of type {typ.__name__}', found, line=n,
                                 hint="is this a predictions file from `extractor predict`?")
        if not isinstance(obj.get("scores", {}), Mapping):
            raise InputError(path, '"scores" as an object {label: probability}', repr(obj.get("scores"))[:60],
                             line=n)
        out.append(Prediction.from_dict(obj))
    return out


def _target_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    A crash or kill mid-write leaves the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the result the old file's mode, else the usual 0666 & ~umask.
        os.chmod(tmp, _target_mode(path))
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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
