"""Command line: thin wrappers over the stage functions. ``main(argv) -> exit code``.

Each subcommand has one ``_add_<name>`` function that declares its arguments and a
``_run_<name>`` function that does the I/O and calls the library. Library code logs;
only this module prints, owns progress bars and picks exit codes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from extractor import __version__
from extractor.errors import ExtractorError

# Model weights must never be fetched at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger("extractor")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


# --- segment ----------------------------------------------------------------


def _add_segment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="split transcripts into speaker turns (JSONL)")
    p.set_defaults(func=_run_segment)


def _run_segment(args: argparse.Namespace) -> int:
    raise NotImplementedError("segment")


# --- demo -------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the pipeline on the bundled example transcript")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    raise NotImplementedError("demo")


# --- registry ---------------------------------------------------------------

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_segment,
    _add_demo,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extractor",
        description="qi-extractor: find quality issues of ML systems in interview transcripts.",
    )
    parser.add_argument("--version", action="version", version=f"qi-extractor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or EXIT_OK)
    except ExtractorError as e:
        _err(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
