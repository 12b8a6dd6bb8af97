"""The model folder: its manifest, capped readers and writers that every part saves through.

A part (catalog vectors, heads, scorer, phase stacker, label centroids, label memory,
thresholds, adapter) declares the files it owns (``FILES``) and has ``save(writer)`` /
``load(reader)``, as sentence-transformers' modules do; several parts may share one
safetensors file (the scorer, the phase stacker and the centroids share
``scorer.safetensors``). Every read is checked before the first turn is: the manifest's
SHA-256 of each file (:func:`verify_model_dir`), sizes under caps, only regular files (never
a FIFO or ``/dev/zero``), each tensor's shape and finite values (:meth:`PartReader.tensor`),
each JSON number's range (:func:`check_number`). No pickle anywhere.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from extractor.errors import ExtractorError, ModelError

FORMAT = "qi-classifier@2"
MANIFEST = "manifest.json"
REQUIRED = ("config.json", "card.json", "catalog.yaml", "catalog.safetensors", "heads.safetensors",
            "scorer.safetensors", "memory.safetensors", "thresholds.json")
MiB = 2**20
MAX_MANIFEST_BYTES = 1 * MiB
MAX_JSON_BYTES = 16 * MiB  # config, card, thresholds, catalog snapshot
MAX_TENSOR_BYTES = 2048 * MiB  # the label memory grows with answers: 2 GiB is ~2.7 M turns
#: (rows, columns, ...) a tensor must have; None = any size, a string = the first size seen under that name
Shape = Sequence["int | str | None"]


@dataclass(frozen=True)
class Sizes:
    """What every part's shapes follow from: label counts and the embedding width."""

    categories: int
    phases: int
    dim: int | None = None  # None: taken from the first tensor that names "dim"


class Part(Protocol):
    """A classifier part that saves and loads its own files."""

    FILES: tuple[str, ...]

    def save(self, writer: PartWriter) -> None: ...


def cap_for(name: str) -> int:
    return MAX_TENSOR_BYTES if name.endswith(".safetensors") else MAX_JSON_BYTES


def read_bytes(path: Path, cap: int) -> bytes:
    """A regular file's bytes, at most ``cap`` (a FIFO, a device or a huge file is refused)."""
    from extractor.safeio import read_capped

    try:
        return read_capped(path, cap, what="a regular model file")
    except ExtractorError as e:
        raise ModelError(str(e)) from None


def read_json_file(path: Path, cap: int = MAX_JSON_BYTES, what: str = "a JSON model file") -> Any:
    try:
        return json.loads(read_bytes(path, cap).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelError(f"{path}: expected {what}, found a damaged file ({str(e)[:80]})") from None


def check_number(where: str, v: Any, lo: float = 0.0, hi: float = 1.0) -> float:
    """A finite JSON number in ``[lo, hi]`` (never a bool, a string or NaN)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ModelError(f"{where}: expected a number in [{lo:g}, {hi:g}], found {v!r:.40}")
    return float(v)


class PartReader:
    """Reads a verified model folder for the parts; every tensor is checked on the way out."""

    def __init__(self, path: Path, files: Mapping[str, Any], sizes: Sizes):
        self.path, self.files, self.sizes = path, files, sizes
        self._tensors: dict[str, dict[str, np.ndarray]] = {}
        self._named: dict[str, int] = {"categories": sizes.categories, "phases": sizes.phases}
        if sizes.dim is not None:
            self._named["dim"] = sizes.dim

    def has(self, name: str) -> bool:
        return name in self.files

    def json(self, name: str) -> Any:
        return read_json_file(self.path / name)

    def tensors(self, name: str) -> dict[str, np.ndarray]:
        if name not in self._tensors:
            from safetensors import SafetensorError
            from safetensors.numpy import load

            try:
                self._tensors[name] = load(read_bytes(self.path / name, cap_for(name)))
            except (SafetensorError, OSError, ValueError, TypeError) as e:
                raise ModelError(f"{self.path / name}: expected a safetensors file, found {e}") from None
        return self._tensors[name]

    def tensor(self, name: str, key: str, shape: Shape, *, finite: bool = True) -> np.ndarray:
        """Tensor ``key`` of file ``name`` with ``shape`` (see :data:`Shape`) and, unless told
        otherwise, only finite values."""
        t = self.tensors(name)
        where = f"{self.path / name}: tensor {key!r}"
        if key not in t:
            raise ModelError(f"{self.path / name}: expected tensor {key!r}, found none")
        a = t[key]
        want = [self._size(s, a.shape[i] if i < a.ndim else None) for i, s in enumerate(shape)]
        if a.ndim != len(shape) or any(w is not None and w != g for w, g in zip(want, a.shape)):
            shown = tuple("*" if w is None else w for w in want)
            raise ModelError(f"{where}: expected shape {shown}, found {tuple(a.shape)}")
        if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ModelError(f"{where}: expected finite values, found NaN or infinity")
        return a

    def _size(self, s: int | str | None, got: int | None) -> int | None:
        if isinstance(s, str):
            if s not in self._named and got is not None:
                self._named[s] = got
            return self._named.get(s)
        return s


class PartWriter:
    """Collects what the parts save, then writes each file once (tensors grouped by file)."""

    def __init__(self, folder: Path, meta: Mapping[str, str]):
        self.folder, self.meta = folder, dict(meta)
        self._tensors: dict[str, dict[str, np.ndarray]] = {}

    def tensors(self, name: str, d: Mapping[str, np.ndarray]) -> None:
        self._tensors.setdefault(name, {}).update({k: np.ascontiguousarray(v) for k, v in d.items()})

    def json(self, name: str, obj: Any) -> None:
        from extractor.jsonl import write_json

        write_json(self.folder / name, obj)

    def path(self, name: str) -> Path:
        return self.folder / name

    def close(self) -> None:
        from safetensors.numpy import save_file

        for name, d in self._tensors.items():
            save_file(d, str(self.folder / name), metadata=self.meta)


def check_writable(path: Path) -> None:
    """A model goes to a new, empty or model directory: never over someone's files."""
    if path.is_file() or (path.is_dir() and any(path.iterdir()) and not (path / MANIFEST).is_file()):
        raise ModelError(f"{path}: expected a new, empty or model directory to write to, found other files")


def write_model_dir(path: Path, fill: Any) -> Path:
    """Write a model folder atomically: ``fill(tmp)`` writes the files into a temp folder, the
    manifest is added, and the folder takes ``path``'s place in one swap (an interrupted swap
    leaves the old model or the new one, never neither)."""
    from extractor.embed import file_sha256

    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        fill(tmp)
        files = {p.name: {"sha256": file_sha256(p), "bytes": p.stat().st_size}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        from extractor.jsonl import write_json

        write_json(tmp / MANIFEST, {"format": FORMAT, "files": files})
        os.chmod(tmp, 0o755)
        for p in tmp.iterdir():
            os.chmod(p, 0o644)
        from extractor.safeio import replace_dir

        replace_dir(tmp, path)  # one step: the old model or the new one, never neither
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise ModelError(f"{path}: expected a model directory, found {'a file' if path.exists() else 'nothing'}"
                         "; train one with `extractor train`")
    mpath = path / MANIFEST
    if not os.path.lexists(mpath):
        raise ModelError(f"{path}: expected {MANIFEST} in the model directory, found none; "
                         "is this a model written by `extractor train`?")
    manifest = read_json_file(mpath, MAX_MANIFEST_BYTES, "a JSON manifest of the model files")
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise ModelError(f"{mpath}: expected an object \"files\" {{name: {{sha256, bytes}}}}, found {type(files).__name__}")
    for name in REQUIRED:
        if name not in files:
            raise ModelError(f"{mpath}: expected {name} in the manifest, found it missing; retrain the model")
    return manifest


def verify_model_dir(path: Path) -> dict[str, Any]:
    """Check every file of a model directory against its SHA-256 manifest (regular files under
    their caps only, so nothing blocks or fills memory)."""
    from extractor.embed import file_sha256
    from extractor.safeio import human_size, is_regular

    path = Path(path)
    manifest = read_manifest(path)
    mpath = path / MANIFEST
    for name, info in manifest["files"].items():
        if not isinstance(name, str) or Path(name).name != name or name in (".", "..", MANIFEST):
            raise ModelError(f"{mpath}: expected plain file names, found {name!r}")
        if not (isinstance(info, dict) and isinstance(info.get("sha256"), str)
                and isinstance(info.get("bytes"), int) and not isinstance(info.get("bytes"), bool)):
            raise ModelError(f"{mpath}: expected {{\"sha256\": str, \"bytes\": int}} for {name}, found {info!r:.60}")
        p = path / name
        if not os.path.lexists(p):
            raise ModelError(f"{p}: expected a model file listed in the manifest, found nothing")
        if not is_regular(p):
            raise ModelError(f"{p}: expected a regular model file, found a FIFO, device or directory")
        size = p.stat().st_size
        if size > cap_for(name):
            raise ModelError(f"{p}: expected a model file of at most {human_size(cap_for(name))}, "
                             f"found {human_size(size)}")
        if size != info["bytes"]:
            raise ModelError(f"{p}: expected {info['bytes']} bytes, found {size}; the file is truncated or was "
                             "modified, retrain or restore the model")
        if file_sha256(p) != info["sha256"]:
            raise ModelError(f"{p}: expected SHA-256 {info['sha256'][:12]}... from the manifest, found different "
                             "content; the file was modified, retrain or restore the model")
    return manifest


def part_files(parts: Iterable[Any]) -> list[str]:
    """Every file the parts declare (what a saved model holds besides config, card and catalog)."""
    return sorted({f for p in parts for f in p.FILES})
