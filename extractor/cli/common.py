"""What every command module shares: exit codes, the one-line message printers, shared help."""

from __future__ import annotations

import argparse
import sys
from typing import TypeAlias

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

# what ``ArgumentParser.add_subparsers()`` returns (argparse names its class privately)
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

MODEL_HELP = "classifier directory (default: the model shipped in the package)"


def err(msg: str) -> None:
    """Print ``error: msg`` on standard error."""
    print(f"error: {msg}", file=sys.stderr)


def warn(msg: str) -> None:
    """Print ``warning: msg`` on standard error."""
    print(f"warning: {msg}", file=sys.stderr)
