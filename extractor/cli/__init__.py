"""Command line: thin wrappers over the stage functions. ``main(argv) -> exit code``.

One module per command (``extractor/cli/<command>.py``) with an ``add_<name>`` function
that declares its arguments and a ``run_<name>`` function that does the I/O and calls the
library. Library code logs; only this package prints, owns progress bars and picks exit
codes; :func:`main` turns every error into one line.

Quiet by default: libraries log at WARNING (``-v``: extractor at DEBUG, libraries at
INFO), the transformers/huggingface "Loading weights" bars are off, and each command
ends with one summary line on standard error. Defaults that name packaged data
(``--model``, the catalog, the demo transcript) resolve inside the installed package;
user state goes under explicit paths: outputs under ``-o``, the discovery reject memory
beside the proposals file, review queues and a catalog with accepted proposals under
``--state-dir`` (default ``$QI_STATE_DIR`` or the working directory).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from extractor import __version__
from extractor.errors import ExtractorError

# Model weights must never be fetched at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Read by huggingface_hub/transformers when first imported: no "Loading weights" bar.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

log = logging.getLogger("extractor")

from extractor.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Subparsers, err  # noqa: E402
from extractor.cli.demo import add_demo  # noqa: E402
from extractor.cli.discover import add_discover, add_discover_review  # noqa: E402
from extractor.cli.evaluate import add_evaluate  # noqa: E402
from extractor.cli.extract import add_extract  # noqa: E402
from extractor.cli.qdpx import add_qdpx  # noqa: E402
from extractor.cli.review import add_review  # noqa: E402
from extractor.cli.segment import add_segment  # noqa: E402
from extractor.cli.train import add_predict, add_train  # noqa: E402

__all__ = ["COMMANDS", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


# --- registry ---------------------------------------------------------------

COMMANDS: list[Callable[[Subparsers], None]] = [
    add_segment,
    add_demo,
    add_review,
    add_train,
    add_predict,
    add_evaluate,
    add_discover,
    add_discover_review,
    add_extract,
    add_qdpx,
]


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="extractor",
        description="qi-extractor: find quality issues of ML systems in interview transcripts.",
    )
    parser.add_argument("--version", action="version", version=f"qi-extractor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages (default: warnings and one summary line per command)")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="where user state goes: annotations/ (review queues, a catalog with accepted "
                             "proposals); default $QI_STATE_DIR or the working directory")
    sub: Subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")  # type: ignore[assignment]
    for add in COMMANDS:
        add(sub)
    return parser


class _QuietFormatter(logging.Formatter):
    """``warning: message``, like the CLI's own messages."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


_VerboseFormatter = logging.Formatter


def _configure_logging(verbose: bool) -> None:
    """WARNING for everything by default; ``-v``: extractor DEBUG, libraries INFO."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_VerboseFormatter("%(levelname)s %(name)s: %(message)s") if verbose else _QuietFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:
        for name in ("sentence_transformers", "transformers", "huggingface_hub", "torch"):
            logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    from extractor.config import SettingError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SettingError as e:
        err(str(e))
        return EXIT_USAGE
    _configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        guard_outputs(args)
        return int(args.func(args) or EXIT_OK)
    except ExtractorError as e:
        err(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    # Whatever else escapes is still one line (the traceback only with -v): never a traceback
    # for bad input, a full disk or a path that cannot be written.
    except OSError as e:
        from extractor.safeio import os_reason

        err(f"{e.filename}: {os_reason(e)}" if e.filename else os_reason(e))
        _traceback(args)
        return EXIT_ERROR
    except RecursionError:
        err("expected input nested at most a few hundred levels deep, found deeper nesting")
        _traceback(args)
        return EXIT_ERROR
    except MemoryError:
        err("out of memory; try a smaller input")
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - the last line of defence, reported in one line
        err(f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            + f" ({where(e)}run with -v for the traceback; please report it)")
        _traceback(args)
        return EXIT_ERROR


OUTPUT_ARGS = ("output", "json", "save_predictions", "report", "codebook")


def guard_outputs(args: argparse.Namespace) -> None:
    """The overwrite rule's first half for every command, before any work: no output (``-o``,
    ``--json``, ...; a command's ``writes``) is one of its inputs (any other path it was given:
    corrections, rejected-proposals memory, catalogs, models), links resolved, ``--force`` or not."""
    from extractor.safeio import check_not_input

    writes = getattr(args, "writes", OUTPUT_ARGS)
    skip = {*writes, "func", "writes", "what", "command", "state_dir"}
    inputs = [x for k, v in vars(args).items() if k not in skip
              for x in (v if isinstance(v, (list, tuple)) else [v]) if isinstance(x, (str, Path))]
    for name in writes:
        out = getattr(args, name, None)
        if isinstance(out, (str, Path)) and str(out) != "-":
            what = (getattr(args, "what", None) if name == "output" else None) or "output"
            check_not_input(out, inputs, what=what)


def where(e: BaseException) -> str:
    """``file:line: `` of the innermost frame that raised ``e``, or ``""``."""
    import traceback

    frames = traceback.extract_tb(e.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"at {Path(last.filename).name}:{last.lineno}; "


def _traceback(args: argparse.Namespace) -> None:
    if getattr(args, "verbose", False):
        import traceback

        traceback.print_exc()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
