"""``extractor evaluate``: score a model or predictions against gold labels."""

from __future__ import annotations

import argparse
import logging
import sys

from extractor.cli.common import EXIT_OK, EXIT_USAGE, Subparsers, catalog_for, err, warn
from extractor.cli.settings import SETTINGS

log = logging.getLogger("extractor")


def add_evaluate(sub: Subparsers) -> None:
    p = sub.add_parser("evaluate", help="score a model (or predictions) against gold labels, beside human agreement")
    p.add_argument("gold", metavar="GOLD.jsonl", help="gold turns file with labels and codes (gold/turns.jsonl)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="DIR",
                     help="model directory to predict the gold turns with (default: the packaged model)")
    src.add_argument("--predictions", metavar="PRED.jsonl", help="existing predictions (`extractor predict`) instead")
    SETTINGS["evaluate:cv"].add_to(src)
    p.add_argument("--fast", action="store_true", help="with --cv: frozen encoder + linear heads only")
    SETTINGS["evaluate:seed"].add_to(p)
    p.add_argument("--save-predictions", metavar="PRED.jsonl", help="with --cv: also write the out-of-fold predictions")
    p.add_argument("--json", metavar="OUT", help="write the full report as JSON (atomically)")
    p.add_argument("--moderated-only", action="store_true",
                   help="only turns whose gold labels are the moderated consensus (default: all labelled turns)")
    p.add_argument("--interviews", metavar="LIST",
                   help='comma-separated interviews to evaluate on, e.g. "Interview 3,Interview 9" (default: all)')
    p.add_argument("--catalog", metavar="YAML",
                   help="catalog mapping labels and study codes (default: the model's, else the packaged catalog)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda (with --model or --cv)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json / --save-predictions file")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from extractor.evaluate import evaluate, format_tables
    from extractor.jsonl import read_turns, write_json
    from extractor.safeio import check_output

    for out, what in ((args.json, "JSON report"), (args.save_predictions, "predictions file")):
        check_output(out, force=args.force, inputs=[p for p in (args.gold, args.predictions) if p], what=what)
    if args.cv is None and (args.fast or args.save_predictions):
        err("--fast and --save-predictions: expected together with --cv K, found without it")
        return EXIT_USAGE
    interviews = [s.strip() for s in args.interviews.split(",") if s.strip()] if args.interviews else None
    if not (args.model or args.predictions or args.cv is not None):
        from extractor.resources import packaged_model

        args.model = str(packaged_model())
    turns = read_turns(args.gold)
    if args.model:
        preds, catalog, source = _model_predictions(args, turns, interviews)
    elif args.cv is not None:
        preds, catalog, source = _cv_predictions(args, turns)
    else:
        from extractor.jsonl import read_predictions

        catalog = catalog_for(args.catalog, predictions=args.predictions)
        preds = read_predictions(args.predictions, catalog=catalog)
        source = {"predictions": args.predictions}
    result = evaluate(turns, preds, catalog, moderated_only=args.moderated_only, interviews=interviews,
                      gold_path=args.gold)
    result["gold"] = str(args.gold)
    result["source"] = source
    if result["missing_predictions"]:
        warn(f"{result['missing_predictions']} labelled turns have no prediction and were skipped")
    print(format_tables(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}", file=sys.stderr)
    return EXIT_OK


def _model_predictions(args: argparse.Namespace, turns: list, interviews: list[str] | None) -> tuple:
    """Predictions of ``--model`` on the interviews to be scored, its catalog, the report's source."""
    from extractor.catalog import resolve_catalog
    from extractor.classify import IssueClassifier, data_hash

    clf = IssueClassifier.load(args.model, device=args.device)
    catalog = resolve_catalog(args.catalog, clf.catalog_)
    if clf.card_.get("data_sha256") == data_hash(turns):
        warn(f"{args.model} was trained on {args.gold}: these are training-set figures, not an estimate "
             "of accuracy on new interviews; use --cv K for held-out figures")
    keep = set(interviews) if interviews else {t.interview for t in turns if t.labels is not None}
    # Predict only the interviews that will be scored (whole interviews: context needs neighbours).
    preds = clf.predict([t for t in turns if t.interview in keep], progress=sys.stderr.isatty(), evidence=False)
    return preds, catalog, {"model": args.model}


def _cv_predictions(args: argparse.Namespace, turns: list) -> tuple:
    """Out-of-fold predictions of ``--cv K`` models (written with ``--save-predictions``)."""
    from extractor.classify import TrainConfig
    from extractor.evaluate import cross_validate

    catalog = catalog_for(args.catalog)
    config = TrainConfig(seed=args.seed, device=args.device or "auto", fine_tune=not args.fast)
    preds, folds = cross_validate(turns, folds=args.cv, catalog=catalog, config=config,
                                  progress=sys.stderr.isatty())
    if args.save_predictions:
        from extractor.jsonl import write_jsonl

        write_jsonl(args.save_predictions, preds)
    return preds, catalog, {"cv": {"folds": folds, "seed": args.seed, "config": config.to_dict()}}
