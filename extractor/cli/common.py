"""What every command module shares: exit codes, the one-line message printers, shared help."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from extractor.errors import ExtractorError

if TYPE_CHECKING:
    from extractor.catalog import Catalog

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

# what ``ArgumentParser.add_subparsers()`` returns (argparse names its class privately)
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

MODEL_HELP = "classifier directory (default: the model shipped in the package)"


def err(msg: str) -> None:
    """Print ``error: msg`` on standard error."""
    from extractor.textsafe import escape_for_terminal  # text from input never drives the terminal

    print(f"error: {escape_for_terminal(msg)}", file=sys.stderr)


def warn(msg: str) -> None:
    """Print ``warning: msg`` on standard error."""
    from extractor.textsafe import escape_for_terminal

    print(f"warning: {escape_for_terminal(msg)}", file=sys.stderr)


def catalog_for(named: str | Path | None, *, predictions: str | Path | None = None) -> Catalog:
    """The catalog a command uses: the one named (``--catalog``), else the catalog of the model
    that made ``predictions`` (recorded by ``extract`` in the manifest beside them, or the
    packaged model's when its name is the one the predictions carry), else the packaged one."""
    from extractor.catalog import load_catalog, resolve_catalog

    if named:
        return resolve_catalog(named)
    model_dir = model_of_predictions(Path(predictions)) if predictions else None
    return resolve_catalog(None, load_catalog(model_dir / "catalog.yaml") if model_dir else None)


def model_of_predictions(predictions: Path) -> Path | None:
    """The model folder that wrote ``predictions``, where it can be told, else None."""
    import json

    from extractor.jsonl import read_jsonl
    from extractor.resources import packaged_model
    from extractor.safeio import is_our_output_dir, is_regular, read_capped

    if is_our_output_dir(predictions.parent) and is_regular(predictions.parent / "manifest.json"):
        try:
            path = json.loads(read_capped(predictions.parent / "manifest.json", 2**24))["model"]["path"]
        except (ValueError, KeyError, TypeError):
            path = None
        if path and (Path(path) / "catalog.yaml").is_file():
            return Path(path)
    try:
        first = next(iter(read_jsonl(predictions)), {})
    except ExtractorError:
        return None  # the command's own reader reports it
    packaged = packaged_model()
    try:
        c = json.loads(read_capped(packaged / "card.json", 2**20))
        name = f"qi-classifier:{c.get('base_model', '?')}:{c.get('catalog', '?')}:{c.get('data_sha256', '')[:8]}"
    except (ExtractorError, ValueError, AttributeError):
        return None
    return packaged if isinstance(first, dict) and first.get("model") == name else None
