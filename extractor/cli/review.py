"""``extractor review ...``: export, validate, agreement, annotate, serve, merge."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from extractor.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Subparsers, catalog_for, err, warn
from extractor.cli.settings import SETTINGS

log = logging.getLogger("extractor")


def add_review(sub: Subparsers) -> None:
    p = sub.add_parser("review", help="annotation loop: export a review queue, validate, annotate, merge, agreement",
                       description="Human review of predictions. Queues are Prodigy-style JSONL tasks; "
                                   "answered lines are never rewritten. See README 'Review loop'.")
    rsub = p.add_subparsers(title="review commands", dest="review_command", metavar="ACTION")

    def bare(args: argparse.Namespace) -> int:
        p.print_help()
        return EXIT_USAGE

    p.set_defaults(func=bare)
    add_export(rsub)
    add_checks(rsub)
    add_reviewers(rsub)
    m = rsub.add_parser("merge", help="append answers from queues / Prodigy / doccano exports to a corrections file")
    m.add_argument("files", type=Path, nargs="+")
    m.add_argument("-o", "--output", type=Path, required=True, help="corrections JSONL (append-only)")
    catalog_arg(m)
    m.set_defaults(func=run_review_merge)


def catalog_arg(q: argparse.ArgumentParser) -> None:
    q.add_argument("--catalog", type=Path, default=None,
                   help="catalog YAML (default: the catalog of the model that predicted, where known, else the "
                        "packaged catalog)")


REVIEW_ORDERS = ("coverage", "gain", "uncertainty", "quality", "relevance", "random", "file")  # review.ORDERS; tested


def add_on_conflict(q: argparse.ArgumentParser) -> None:
    """``--on-conflict``: the one rule for annotators' disagreements (extractor.review.answers)."""
    q.add_argument("--on-conflict", choices=["latest", "refuse"], default="latest",
                   help="when annotators disagree on a turn: latest (default; the most recent answer counts, "
                        "with a warning) or refuse (an error)")


def add_export(rsub: Subparsers) -> None:
    e = rsub.add_parser("export", help="write/extend a review queue from predictions, most worth reading first; "
                                       "a re-export re-ranks the unanswered tasks")
    e.add_argument("predictions", type=Path, help="predictions JSONL from `extractor predict`")
    e.add_argument("-o", "--output", type=Path, required=True, help="queue JSONL (existing answers are kept)")
    e.add_argument("--order", choices=REVIEW_ORDERS, default=REVIEW_ORDERS[0],
                   help="queue order: coverage (default: expected corrections, spread over the interviews as "
                        "answers teach their neighbours), gain, uncertainty, quality (cleanlab), relevance, "
                        "random, file")
    SETTINGS["review export:limit"].add_to(e)
    e.add_argument("--turns", type=Path, default=None,
                   help="turns JSONL the predictions came from: gives the true previous/next turns as context")
    e.add_argument("--keep-order", dest="rerank", action="store_false",
                   help="leave the tasks already queued where and as they are (only add turns the queue lacks); "
                        "by default a re-export re-ranks the unanswered tasks by the new predictions")
    e.add_argument("--refresh", action="store_true",
                   help="with --keep-order: replace unanswered tasks in place by their new predictions")
    SETTINGS["review export:seed"].add_to(e)
    catalog_arg(e)
    e.set_defaults(func=run_review_export)


def add_checks(rsub: Subparsers) -> None:
    v = rsub.add_parser("validate", help="check queue/answer files; list every problem as file:line")
    v.add_argument("files", type=Path, nargs="+")
    v.add_argument("--turns", type=Path, default=None, help="turns JSONL whose ids the tasks must refer to")
    add_on_conflict(v)
    catalog_arg(v)
    v.set_defaults(func=run_review_validate)

    g = rsub.add_parser("agreement", help="annotator-vs-annotator and per-label Cohen's kappa / Krippendorff's alpha")
    g.add_argument("files", type=Path, nargs="+")
    g.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    g.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    catalog_arg(g)
    g.set_defaults(func=run_review_agreement)


def add_reviewers(rsub: Subparsers) -> None:
    a = rsub.add_parser("annotate", help="terminal reviewer: one task at a time, saved after every answer")
    a.add_argument("file", type=Path, help="queue JSONL from `extractor review export`")
    a.add_argument("--annotator", default=None, help="your name (default: $QI_ANNOTATOR or the login name)")
    catalog_arg(a)
    a.set_defaults(func=run_review_annotate)

    w = rsub.add_parser("serve", help="web reviewer on http://127.0.0.1:PORT/: one task at a time, keyboard-driven",
                        description="Serve the web reviewer for QUEUE on the loopback address only (never on the "
                                    "network). Answers are saved as you go, in the queue format `annotate` writes; "
                                    "terminal sessions and other tabs may work on the same queue at once.")
    w.add_argument("file", type=Path, metavar="QUEUE", help="queue JSONL from `extractor review export`")
    SETTINGS["review serve:port"].add_to(w)
    w.add_argument("--model", metavar="DIR",
                   help="a model folder: each answer teaches it, re-scoring and re-ordering the rest")
    w.add_argument("--annotator", default=None, help="your name (default: $QI_ANNOTATOR or the login name)")
    w.add_argument("--proposals", type=Path, default=None, metavar="PROPOSALS.jsonl",
                   help="also review discovery's proposals at /proposals (decisions saved into this file)")
    catalog_arg(w)
    w.set_defaults(func=run_review_serve)


def run_review_export(args: argparse.Namespace) -> int:
    from extractor.jsonl import read_predictions, read_turns
    from extractor.review import export_queue

    catalog = catalog_for(args.catalog, predictions=args.predictions)
    preds = read_predictions(args.predictions)
    if not preds:
        err(f"{args.predictions}: no predictions to review")
        return EXIT_ERROR
    turns = read_turns(args.turns) if args.turns else None
    if turns is None:
        warn("no --turns given: context shows neighbouring interviewee turns only")
    s = export_queue(preds, args.output, catalog, turns=turns, order=args.order, limit=args.limit,
                     rerank=args.rerank, refresh=args.refresh, seed=args.seed)
    print(f"{s.path}: {s.added} task(s) added, {s.kept_answered} answered kept, "
          f"{s.kept_unanswered} unanswered kept, {s.refreshed} refreshed (order: {s.order})", file=sys.stderr)
    return EXIT_OK


def run_review_validate(args: argparse.Namespace) -> int:
    from extractor.jsonl import read_turns
    from extractor.review import check_conflicts, validate_files

    catalog = catalog_for(args.catalog)
    turn_ids = {t.id for t in read_turns(args.turns)} if args.turns else None
    problems = validate_files(args.files, catalog, turn_ids=turn_ids)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in {len({p.path for p in problems})} file(s); nothing was changed",
              file=sys.stderr)
        return EXIT_ERROR
    check_conflicts(args.files, catalog, args.on_conflict)
    print(f"ok: {len(args.files)} file(s)" + ("" if turn_ids is not None else " (turn ids not checked: no --turns)"),
          file=sys.stderr)
    return EXIT_OK


def run_review_agreement(args: argparse.Namespace) -> int:
    import math

    from extractor.jsonl import write_json
    from extractor.review import agreement
    from extractor.safeio import check_output

    check_output(args.json, force=args.force, inputs=args.files, what="JSON report")
    rep = agreement(args.files, catalog_for(args.catalog))
    if args.json:
        write_json(args.json, rep)
    if rep["shared_turns"] == 0:
        err(f"no turn was answered by two annotators ({len(rep['annotators'])} annotator(s), "
             f"{rep['turns']} turn(s)); nothing to compare")
        return EXIT_ERROR

    def f(x: float | None) -> str:
        return "   -" if x is None or math.isnan(x) else f"{x:+.2f}"

    print(f"annotators: {', '.join(rep['annotators'])}; turns answered by 2+: {rep['shared_turns']}; "
          f"pooled alpha {f(rep['alpha_pooled'])}; turns where the answers that count differ: {rep['conflicts']}"
          + (f" (first: {rep['first_conflict']})" if rep["first_conflict"] else ""))
    print(f"{'annotator pair':34} {'turns':>5} {'same':>6} {'kappa':>6}")
    for pr in rep["pairs"]:
        same = "   -" if pr["same_labels"] is None else f"{pr['same_labels']:6.0%}"
        print(f"{' vs '.join(pr['annotators']):34} {pr['turns']:>5} {same:>6} {f(pr['kappa']):>6}")
    print(f"{'label':34} {'items':>5} {'pos':>4} {'kappa':>6} {'alpha':>6}")
    for label, r in rep["per_label"].items():
        print(f"{label:34} {r['items']:>5} {r['positives']:>4} {f(r['kappa']):>6} {f(r['alpha']):>6}")
    return EXIT_OK


def run_review_annotate(args: argparse.Namespace) -> int:
    import getpass

    from extractor.review.tui import annotate

    annotator = args.annotator or os.environ.get("QI_ANNOTATOR") or getpass.getuser()
    annotate(args.file, annotator, catalog_for(args.catalog), stdin=sys.stdin, stdout=sys.stdout)
    return EXIT_OK


def run_review_serve(args: argparse.Namespace) -> int:
    import getpass

    from extractor.review.web import serve

    annotator = args.annotator or os.environ.get("QI_ANNOTATOR") or getpass.getuser()
    serve(args.file, annotator, catalog_for(args.catalog), port=args.port, model=args.model,
          proposals=args.proposals)
    return EXIT_OK


def run_review_merge(args: argparse.Namespace) -> int:
    from extractor.review import merge_answers

    r = merge_answers(args.files, args.output, catalog_for(args.catalog))
    print(f"{args.output}: {r['appended']} answer(s) appended ({r['read']} read, "
          f"{r['existing']} line(s) kept as they were)", file=sys.stderr)
    return EXIT_OK
