"""Where things live: data shipped inside the package, and the user's state outside it.

Read-only data travels in the wheel under ``extractor/data/`` and is found with
:mod:`importlib.resources`, so it resolves the same from a checkout, an editable install
or a ``pip install``:

- :func:`packaged_model` -- the default classifier (``extractor/data/model/``), also named
  ``default`` wherever a model is named (:func:`resolve_model`);
- :func:`packaged_catalog` -- the issue catalog (``extractor/data/catalog.yaml``);
- :func:`example_transcript` -- the interview ``extractor demo`` runs on.

Anything a run *writes* goes under an explicit path: outputs and caches under the output
directory, the discovery reject memory beside the proposals file
(:func:`extractor.proposals.default_rejected_path`), review queues and a catalog with
accepted proposals under the state directory (:func:`state_dir`: ``--state-dir``, else
``$QI_STATE_DIR``, else the working directory). Nothing is ever written into the install directory; writing a file
under :func:`package_data_dir` raises :class:`~extractor.errors.InputError`.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from extractor.errors import InputError, ModelError

STATE_ENV = "QI_STATE_DIR"


def package_data_dir() -> Path:
    """``extractor/data`` of the installed package, as a real directory."""
    root = resources.files("extractor").joinpath("data")
    if not isinstance(root, Path):  # pragma: no cover - zipped installs are not supported
        raise ModelError(f"{root}: expected the package installed as files, found a zip archive; "
                         "install qi-extractor with pip (not as a zipapp/egg)")
    return root


def packaged_model() -> Path:
    """The default classifier directory shipped in the package."""
    path = package_data_dir() / "model"
    if not (path / "manifest.json").is_file():
        raise ModelError(f"{path}: expected the packaged default model, found "
                         f"{'an incomplete directory' if path.exists() else 'nothing'}; reinstall qi-extractor")
    return path


#: names that mean the packaged model wherever a model is named (``train --from default``)
PACKAGED_MODEL_NAMES = ("default", "packaged")


def resolve_model(ref: str | Path) -> Path:
    """A model directory named by the user: ``default`` (or ``packaged``, or the checkout path
    ``extractor/data/model`` run from elsewhere) is the packaged model, found from any working
    directory; anything else is a path, checked to be a directory."""
    text = str(ref)
    if text in PACKAGED_MODEL_NAMES:
        return packaged_model()
    path = Path(ref)
    if not path.exists() and path.parts[-3:] == ("extractor", "data", "model"):
        return packaged_model()  # the README's checkout path, from outside the checkout
    if not path.is_dir():
        raise ModelError(f"{path}: expected a model directory or `default` (the packaged model), found "
                         f"{'a file' if path.exists() else 'nothing'}; pass a folder written by `extractor train` "
                         "or `default`")
    return path


def packaged_catalog() -> Path:
    """The issue catalog shipped in the package (read-only)."""
    return package_data_dir() / "catalog.yaml"


def example_transcript() -> Path:
    """The bundled example interview (plain text)."""
    return package_data_dir() / "examples" / "interview_example.txt"


def state_dir(path: str | Path | None = None) -> Path:
    """The directory user state goes into: ``path``, else ``$QI_STATE_DIR``, else the working directory."""
    return Path(path or os.environ.get(STATE_ENV) or ".")


def default_user_catalog(state: str | Path | None = None) -> Path:
    """The editable catalog accepted proposals are added to: ``STATE/annotations/catalog.yaml``."""
    return state_dir(state) / "annotations" / "catalog.yaml"


def is_packaged(path: str | Path) -> bool:
    """True when ``path`` lies inside the package's data directory."""
    try:
        Path(path).resolve().relative_to(package_data_dir().resolve())
    except ValueError:
        return False
    return True


def refuse_packaged(path: str | Path, what: str = "file") -> None:
    """Raise when a write would land inside the installed package."""
    if is_packaged(path):
        raise InputError(path, f"a writable {what} outside the installed package", "the packaged copy",
                         hint="pass a path of your own (e.g. --catalog annotations/catalog.yaml)")
