"""``extractor qdpx export|import``: REFI-QDA exchange."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from extractor.cli.common import EXIT_ERROR, EXIT_OK, Subparsers, catalog_for, err, warn
from extractor.errors import ExtractorError

log = logging.getLogger("extractor")


def add_qdpx(sub: Subparsers) -> None:
    p = sub.add_parser("qdpx", help="REFI-QDA exchange: export predictions, import human codings",
                       description="Export turns + predictions as a REFI-QDA project (.qdpx, read by ATLAS.ti, NVivo, "
                                   "MAXQDA, QualCoder) and the catalog as a codebook (.qdc), or import a project coded "
                                   "by humans as a labelled turns file for `extractor train`.")
    qs = p.add_subparsers(dest="qdpx_command", metavar="ACTION", required=True)
    e = qs.add_parser("export", help="write a .qdpx project (and optionally a .qdc codebook)")
    e.add_argument("--turns", required=True, metavar="TURNS.jsonl", help="turns from `extractor segment`")
    e.add_argument("--predictions", required=True, metavar="PREDICTIONS.jsonl", help="from `extractor predict`")
    e.add_argument("--catalog", default=None, metavar="YAML", help="catalog (default: the packaged catalog)")
    e.add_argument("-o", "--output", required=True, metavar="PROJECT.qdpx")
    e.add_argument("--codebook", default=None, metavar="CODEBOOK.qdc", help="also write the codebook here")
    e.add_argument("--sources", default=None, metavar="DIR",
                   help="folder of the original transcripts: a source is embedded only from here, by the file name "
                        "the turns record (default: none is read; sources are written from the turns)")
    e.add_argument("--force", action="store_true", help="overwrite existing -o / --codebook files")
    e.set_defaults(func=run_qdpx_export)
    i = qs.add_parser("import", help="read human codings of a .qdpx as labelled turns (training data)")
    i.add_argument("project", metavar="PROJECT.qdpx")
    i.add_argument("--turns", default=None, metavar="TURNS.jsonl",
                   help="turns of the project's sources (matched by interview name); default: segment the sources")
    i.add_argument("--catalog", default=None, metavar="YAML", help="catalog (default: the packaged catalog)")
    i.add_argument("--no-negatives", action="store_true",
                   help="label only coded turns (default: uncoded interviewee turns of coded sources get empty labels)")
    i.add_argument("-o", "--output", required=True, metavar="LABELLED.jsonl", help="gold-like turns file to write")
    i.add_argument("--force", action="store_true", help="overwrite an existing -o file")
    i.set_defaults(func=run_qdpx_import)


def run_qdpx_export(args: argparse.Namespace) -> int:
    from extractor.jsonl import read_predictions, read_turns
    from extractor.qdpx import export_qdc, export_qdpx
    from extractor.safeio import check_output

    inputs = [args.turns, args.predictions, *([args.catalog] if args.catalog else [])]
    check_output(args.output, force=args.force, inputs=inputs, what="project file")
    check_output(args.codebook, force=args.force, inputs=inputs, what="codebook file")
    if args.codebook and Path(args.codebook).resolve() == Path(args.output).resolve():
        raise ExtractorError(f"{args.codebook}: expected a codebook file other than -o, found the same path")
    catalog = catalog_for(args.catalog, predictions=args.predictions)
    turns = read_turns(args.turns)
    preds = read_predictions(args.predictions)
    stats = export_qdpx(args.output, turns, preds, catalog, sources=[args.sources] if args.sources else ())
    if args.codebook:
        export_qdc(args.codebook, catalog)
    print(f"exported {stats['sources']} sources, {stats['selections']} coded selections, {stats['codings']} codings "
          f"-> {args.output}", file=sys.stderr)
    return EXIT_OK


def run_qdpx_import(args: argparse.Namespace) -> int:
    from extractor.jsonl import read_turns, write_jsonl
    from extractor.qdpx import import_labels, labelled_turns
    from extractor.safeio import check_output

    check_output(args.output, force=args.force, inputs=[args.project, *([args.turns] if args.turns else [])],
                 what="labelled turns file")
    catalog = catalog_for(args.catalog)
    turns = read_turns(args.turns) if args.turns else None
    labels, source_turns, unmatched = import_labels(args.project, catalog, turns, negatives=not args.no_negatives)
    if unmatched:
        warn(f"{len(unmatched)} codes match no catalog entry and were ignored: {', '.join(unmatched[:8])}"
              + (", ..." if len(unmatched) > 8 else ""))
    if not labels:
        err(f"{args.project}: no coded selection could be mapped to a turn and a catalog label")
        return EXIT_ERROR
    rows = labelled_turns(labels, source_turns, label_source=f"qdpx:{Path(args.project).name}")
    write_jsonl(args.output, rows)
    coded = sum(1 for lab in labels.values() if lab.categories or lab.phases or lab.mitigation)
    print(f"imported labels for {len(labels)} interviewee turns ({coded} coded) of {len(source_turns)} sources "
          f"-> {args.output}", file=sys.stderr)
    return EXIT_OK
