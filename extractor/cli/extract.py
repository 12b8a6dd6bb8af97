"""``extractor extract``: the whole pipeline over a directory of transcripts."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from extractor.cli.common import EXIT_OK, MODEL_HELP, Subparsers, catalog_for, warn
from extractor.errors import ExtractorError

log = logging.getLogger("extractor")


def add_extract(sub: Subparsers) -> None:
    p = sub.add_parser(
        "extract", help="segment, predict, discover and report over a directory of transcripts",
        description="Run the whole pipeline over every transcript and write turns.jsonl, predictions.jsonl, "
                    "proposals.jsonl, privacy.jsonl, coded_segments.csv, report.html/.md, figures/, "
                    "project.qdpx + codebook.qdc (REFI-QDA) and manifest.json into OUT. Segments, predictions, "
                    "embeddings and privacy findings are cached (OUT/.cache), so a rerun after editing one "
                    "transcript redoes that one only.")
    p.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="transcript files or directories of them")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory")
    p.add_argument("--model", default=None, metavar="DIR", help=MODEL_HELP)
    p.add_argument("--cache", default=None, metavar="DIR", help="cache directory (default: OUT/.cache)")
    p.add_argument("--interviewer", default=None, metavar="NAMES",
                   help='comma-separated speaker names that are interviewers, e.g. "Alice,Bob"')
    p.add_argument("--embedder", default=None, metavar="NAME_OR_DIR",
                   help='sentence encoder for discovery: the bundled MiniLM (default), a local model directory, '
                        'or "hashing" (model-free, fast, for tests)')
    p.add_argument("--no-discover", action="store_true", help="skip the discovery of uncatalogued issues")
    p.add_argument("--no-privacy", action="store_true", help="skip the personal-data check")
    p.add_argument("--no-qdpx", action="store_true", help="skip the REFI-QDA export")
    p.add_argument("--corrections", nargs="+", default=[], metavar="ANSWERS.jsonl",
                   help="review answers, taught to the classifier: their turns get the reviewers' labels "
                        "(label_source \"human\") and the other turns are re-scored with them")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty OUT beside other files (never over a file extract did not write)")
    p.add_argument("--follow-links", action="store_true",
                   help="read files in an input folder that are links to files outside it (default: skip them)")
    p.add_argument("--device", default=None, help="torch device for the classifier (default: auto)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default): this process; ray: segment and predict on a Ray cluster "
                        "(pip install 'qi-extractor[scale]'; see docs/scale.md)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --engine ray: join the Ray cluster at ADDR (default: start a local Ray)")
    p.set_defaults(func=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    from extractor.embed import make_embedder
    from extractor.extract import OUTPUTS, load_classifier, make_segmenter, run_extract
    from extractor.predict import read_answers_by_turn
    from extractor.safeio import check_output_dir

    # the output folder before anything slow (loading a model, starting Ray)
    check_output_dir(args.output, force=args.force, names=(*OUTPUTS, "figures"),
                     inputs=[*args.paths, *args.corrections, *([args.model] if args.model else [])])
    run, extra = run_extract, {}
    if args.engine == "ray":
        from extractor.engine_ray import check_cluster, import_ray, run_extract_ray

        import_ray()  # the install hint before loading a model
        if args.address:
            check_cluster(args.address)  # and a cluster that is not there
        run, extra = run_extract_ray, {"address": args.address, "device": args.device}
    elif args.address:
        raise ExtractorError("--address: expected --engine ray with it, found --engine local")
    clf, info = load_classifier(args.model, device="cpu" if args.engine == "ray" else args.device)
    human = read_answers_by_turn(args.corrections, getattr(clf, "catalog_", None) or catalog_for(None))
    res = run(args.paths, args.output, classifier=clf, model_info=info, human=human,
              segmenter=make_segmenter(args.interviewer), cache_dir=args.cache,
              embedder=make_embedder(args.embedder, device=args.device),
              discover=not args.no_discover, privacy=not args.no_privacy, qdpx=not args.no_qdpx,
              progress=sys.stderr.isatty(), force=args.force, follow_links=args.follow_links, **extra)
    c, m = res.manifest["counts"], res.manifest
    for s in m["skipped"]:
        warn(f"skipped {s['error']}")
    if c["privacy_warnings"]:
        warn(f"{c['privacy_warnings']} likely unredacted personal data in the transcripts: see "
              f"{Path(args.output) / 'privacy.jsonl'} and the report's privacy section before sharing")
    cache = m["cache"]
    print(f"extracted {c['interviews']} interviews: {c['turns']} turns, {c['interviewee_turns']} interviewee, "
          f"{c['issue_turns']} with issues, {c['mitigation_turns']} mitigations, {c['proposals']} proposals; "
          f"predicted {cache['predict_misses']} interviews ({cache['predict_hits']} cached) in "
          f"{m['timings_s']['total']:.1f}s -> {Path(args.output) / 'report.html'}", file=sys.stderr)
    return EXIT_OK
