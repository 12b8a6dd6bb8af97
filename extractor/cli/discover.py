"""``extractor discover`` and ``extractor discover-review``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from extractor.cli.common import EXIT_OK, Subparsers, catalog_for, warn
from extractor.cli.settings import SETTINGS

log = logging.getLogger("extractor")


def add_discover(sub: Subparsers) -> None:
    p = sub.add_parser("discover", help="propose new catalog entries from turns no entry matches")
    p.add_argument("predictions", metavar="PREDICTIONS.jsonl", help="output of `extractor predict`")
    p.add_argument("-o", "--output", required=True, metavar="PROPOSALS.jsonl", help="proposals to write (one per line)")
    p.add_argument("--report", metavar="PROPOSALS.md", help="also write a Markdown report for people")
    p.add_argument("--catalog", metavar="YAML", help="catalog to match against (default: the packaged catalog)")
    p.add_argument("--rejected", metavar="JSONL",
                   help="memory of rejected proposals to leave out (default rejected_proposals.jsonl beside -o)")
    p.add_argument("--encoder", metavar="DIR", help="sentence-transformers directory (default: bundled MiniLM)")
    SETTINGS["discover:min_words"].add_to(p)
    SETTINGS["discover:min_cluster_size"].add_to(p)
    SETTINGS["discover:min_interviews"].add_to(p)
    SETTINGS["discover:score_threshold"].add_to(p)
    SETTINGS["discover:relevance_threshold"].add_to(p)
    SETTINGS["discover:match_threshold"].add_to(p)
    p.add_argument("--no-zero-shot", action="store_true", help="skip the similarity-to-catalog matching step")
    p.add_argument("--method", choices=["agglomerative", "hdbscan"], help="clustering (default agglomerative)")
    SETTINGS["discover:cluster_ratio"].add_to(p)
    SETTINGS["discover:theme_ratio"].add_to(p)
    p.add_argument("--no-themes", action="store_true", help="propose clusters only, no broad themes")
    p.add_argument("--no-question", action="store_true", help="embed turns without the interviewer's question")
    SETTINGS["discover:max_proposals"].add_to(p)
    p.add_argument("--small-talk", choices=["mark", "drop", "keep"],
                   help="introductions and small-talk groups: drop them (default), mark them and list them last, or keep")
    SETTINGS["discover:seed"].add_to(p)
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=run_discover)


def run_discover(args: argparse.Namespace) -> int:
    from extractor import discover as D
    from extractor.jsonl import atomic_open, write_jsonl
    from extractor.proposals import default_rejected_path, load_rejected
    from extractor.safeio import check_output

    rejected_path = args.rejected or default_rejected_path(args.output)
    inputs = [args.predictions, rejected_path, *([args.catalog] if args.catalog else [])]
    check_output(args.output, force=args.force, inputs=inputs, what="proposals file")
    check_output(args.report, force=args.force, inputs=[*inputs, args.output], what="report file")
    config = D.config_from_kwargs(
        min_words=args.min_words, min_cluster_size=args.min_cluster_size, min_interviews=args.min_interviews,
        score_threshold=args.score_threshold, match_threshold=args.match_threshold, method=args.method,
        relevance_threshold=args.relevance_threshold,
        cluster_ratio=args.cluster_ratio, theme_ratio=args.theme_ratio, max_proposals=args.max_proposals,
        seed=args.seed, question_weight=0.0 if args.no_question else None, small_talk=args.small_talk)
    from dataclasses import replace

    if args.no_zero_shot:
        config = replace(config, match_threshold=None)
    if args.no_themes:
        config = replace(config, theme_ratio=None)
    from extractor.jsonl import read_predictions

    preds = read_predictions(args.predictions)
    catalog = catalog_for(args.catalog, predictions=args.predictions)
    rejected = load_rejected(rejected_path)
    embedder = D.cli_embedder(args.encoder)
    log.debug("encoder %s, dimension %d (loaded before discovery starts)", embedder.name, embedder.dim)
    result = D.run_discovery(preds, None, catalog, embedder, config, rejected=rejected,
                             progress=sys.stderr.isatty())
    for w in result.warnings:
        warn(w)
    if result.message:
        warn(result.message)
    n = write_jsonl(args.output, result.proposals)
    if args.report:
        with atomic_open(args.report) as fh:
            fh.write(D.render_report(result, source=str(args.predictions)))
    s = result.stats
    print(f"{s.get('turns', 0)} turns, {s.get('unmatched', 0)} unmatched -> wrote {n} proposals to {args.output}"
          + (f" and {args.report}" if args.report else "")
          + (f" (discovery {s['seconds']:.1f}s, encoder loading excluded)" if "seconds" in s else ""), file=sys.stderr)
    return EXIT_OK


def add_discover_review(sub: Subparsers) -> None:
    p = sub.add_parser("discover-review",
                       help='apply "decision": "accept"/"reject" set on lines of a proposals file')
    p.add_argument("proposals", metavar="PROPOSALS.jsonl", help="proposals file with reviewers' decisions")
    p.add_argument("--catalog", metavar="YAML",
                   help="catalog to add accepted entries to (default STATE/annotations/catalog.yaml, "
                        "created from the packaged catalog on first use)")
    p.add_argument("--rejected", metavar="JSONL",
                   help="memory of rejected proposals, appended to (default rejected_proposals.jsonl beside the "
                        "proposals file)")
    # both are written (appended to): neither may be the proposals file
    p.set_defaults(func=run_discover_review, writes=("catalog", "rejected"))


def run_discover_review(args: argparse.Namespace) -> int:
    from extractor.proposals import apply_decisions
    from extractor.resources import default_user_catalog

    catalog = Path(args.catalog) if args.catalog else default_user_catalog(args.state_dir)
    if not catalog.exists() and not args.catalog:
        import shutil

        from extractor.catalog import default_catalog_path

        catalog.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(default_catalog_path(), catalog)
        warn(f"created {catalog} from the packaged catalog; train with `--catalog {catalog}` to use its new entries")
    done = apply_decisions(args.proposals, catalog, args.rejected)
    print(f"{len(done['accepted'])} accepted ({', '.join(done['accepted']) or '-'}), {len(done['rejected'])} rejected, "
          f"{len(done['undecided'])} undecided, {len(done['skipped'])} already applied", file=sys.stderr)
    return EXIT_OK
