"""``extractor segment``: transcripts -> turns JSONL."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from extractor.cli.common import EXIT_ERROR, EXIT_OK, Subparsers, err, warn
from extractor.cli.settings import SETTINGS

log = logging.getLogger("extractor")


_SEGMENT_EPILOG = """\
formats: plain text / Markdown (.txt, .md: 'Interviewer 1: ...' lines, '## Interviewee'
or '**Interviewer 1**' headings, misspelt or numbered labels, unlabelled continuation
lines, timestamps), WebVTT/SRT captions (.vtt, .srt: '<v Name>' or 'Name:'), Word (.docx).
Encodings: UTF-8 (with or without BOM), UTF-16/32 with BOM; anything else is read as
cp1252/Latin-1 with a warning. A directory means the visible files directly inside it.

speaker roles: labels like Interviewer/Interviewee (also 'Interviewer 2', 'interviewr',
'Interviewee1', Q/A, I/R, Moderator, Participant, P1) carry their role. When speakers are
people's names, the names given with --interviewer are interviewers and everyone else an
interviewee (or the reverse with --interviewee); with neither option, the named speaker
who speaks the most words is the interviewee and the others are interviewers.

Each output line is one turn: interview (file name without suffix), turn, speaker,
speaker_raw, text, question (nearest interviewer turn at most 4 turns back), id, source.
Bad files are reported and skipped; the exit status is 1 when no file could be read
(or, with --strict, when any file was skipped)."""


def add_segment(sub: Subparsers) -> None:
    p = sub.add_parser("segment", help="split transcripts into speaker turns (JSONL)",
                       description="Split interview transcripts into speaker turns, one JSON object per line.",
                       epilog=_SEGMENT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="transcript files or directories of them")
    p.add_argument("-o", "--output", default="-", metavar="TURNS.jsonl",
                   help="turns file to write (atomically); '-' or omitted = standard output")
    p.add_argument("--interviewer", action="append", default=[], metavar="NAMES",
                   help='comma-separated speaker names that are interviewers, e.g. "Alice,Bob" (repeatable)')
    p.add_argument("--interviewee", action="append", default=[], metavar="NAMES",
                   help="comma-separated speaker names that are interviewees (repeatable)")
    SETTINGS["segment:max_mb"].add_to(p)
    p.add_argument("--strict", action="store_true", help="exit with status 1 if any file had to be skipped")
    p.add_argument("--force", action="store_true", help="overwrite an existing -o file (never one of the inputs)")
    p.add_argument("--follow-links", action="store_true",
                   help="read files in an input folder that are links to files outside it (default: skip them)")
    p.set_defaults(func=run_segment, what="turns file")


def run_segment(args: argparse.Namespace) -> int:
    from extractor.jsonl import write_jsonl
    from extractor.safeio import check_output
    from extractor.segment import BatchReport, expand_paths, segment_paths

    check_output(args.output, force=args.force, inputs=expand_paths(args.paths), what="turns file")
    names = lambda values: [n.strip() for v in values for n in v.split(",") if n.strip()]  # noqa: E731
    report = BatchReport()
    paths, linked = inputs_inside(args.paths, follow_links=args.follow_links)
    # Collected before writing so that a batch where every file fails leaves an existing output alone.
    turns = list(segment_paths(paths, interviewers=names(args.interviewer), interviewees=names(args.interviewee),
                               max_bytes=int(args.max_mb * 2**20), report=report, progress=sys.stderr.isatty()))
    n_files = len(report.results) + len(report.failures) + len(linked)
    for s in linked:
        warn(f"skipped {s['error']}")
    for res in report.results:
        for note in res.notes:
            warn(f"{res.path}: {note}")
    for _, msg in report.failures:
        warn(f"skipped {msg}")
    if not report.results:
        err(f"no transcript could be read ({n_files} file{'s' * (n_files != 1)} skipped)"
             if n_files else "no files found in " + ", ".join(args.paths))
        return EXIT_ERROR
    if args.output == "-":
        import json

        for t in turns:
            sys.stdout.write(json.dumps(t.to_dict(), ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        write_jsonl(args.output, turns)
    n_ee = report.interviewee_turns
    print(f"segmented {len(report.results)} file{'s' * (len(report.results) != 1)}: {len(turns)} turns "
          f"({n_ee} interviewee, {len(turns) - n_ee} interviewer); {report.unattributed} line"
          f"{'s' * (report.unattributed != 1)} not attributed to a speaker; {n_files - len(report.results)} file"
          f"{'s' * (n_files - len(report.results) != 1)} skipped" + report.losses() + ("" if args.output == "-" else f" -> {args.output}"),
          file=sys.stderr)
    return EXIT_ERROR if args.strict and (report.failures or linked) else EXIT_OK


def inputs_inside(paths: list[str], *, follow_links: bool) -> tuple[list[str | Path], list[dict[str, str]]]:
    """The paths to segment, directories expanded without the files that are links out of them
    (unless ``follow_links``), and those left out with their reason."""
    from extractor.extract import expand_inputs

    files: list[str | Path] = []
    skipped: list[dict[str, str]] = []
    for p in paths:
        if Path(p).is_dir():
            found, left_out = expand_inputs([p], follow_links=follow_links)
            files.extend(found)
            skipped.extend(left_out)
        else:
            files.append(p)
    return files, skipped
