"""``extractor train`` and ``extractor predict``."""

from __future__ import annotations

import argparse
import logging
import sys

from extractor.cli.common import EXIT_OK, EXIT_USAGE, MODEL_HELP, Subparsers, err
from extractor.cli.settings import SETTINGS

log = logging.getLogger("extractor")


def add_train(sub: Subparsers) -> None:
    p = sub.add_parser("train", help="train an issue classifier on gold turns and review corrections")
    p.add_argument("inputs", nargs="+", metavar="GOLD_OR_ANNOTATIONS",
                   help="turns JSONL files with labels (gold/turns.jsonl) and review-correction JSONL files")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="model directory to write (models/NAME)")
    p.add_argument("--catalog", metavar="YAML", help="catalog to train for (default: the packaged catalog)")
    p.add_argument("--base-model", metavar="PATH", help="local sentence-transformers model (default: bundled MiniLM)")
    p.add_argument("--fast", action="store_true", help="keep the encoder frozen (no LoRA fine-tune; minutes)")
    p.add_argument("--from", dest="init", metavar="DIR",
                   help="continue from this model (its settings, catalog and adapter): minutes, for corrections")
    SETTINGS["train:steps"].add_to(p)
    SETTINGS["train:seed"].add_to(p)
    p.add_argument("--device", default="auto", help="auto (GPU when available), cpu, cuda")
    p.add_argument("--force", action="store_true", help="replace an existing model directory")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from extractor.classify import ModelConfig, TrainConfig
    from extractor.train import train_model

    if args.init and (args.base_model or args.catalog):
        err("--from: expected alone, found with --base-model/--catalog (a model keeps its encoder and catalog)")
        return EXIT_USAGE
    kw = {"device": args.device, "fine_tune": not args.fast, **({"seed": args.seed} if args.seed is not None else {})}
    if args.steps is not None:
        kw["warm_steps" if args.init else "steps"] = args.steps
    clf = train_model(args.inputs, args.output, config=ModelConfig(base_model=args.base_model),
                      train_config=TrainConfig(**kw), catalog=args.catalog, init=args.init,
                      progress=sys.stderr.isatty(), force=args.force)
    tr = clf.card_["training"]
    print(f"trained on {tr['examples']} turns of {tr['interviews']} interviews in {tr['seconds']:.0f}s -> {args.output}", file=sys.stderr)
    return EXIT_OK


# --- predict ----------------------------------------------------------------


def add_predict(sub: Subparsers) -> None:
    p = sub.add_parser("predict", help="classify the interviewee turns of a turns file")
    p.add_argument("turns", metavar="TURNS.jsonl", help="output of `extractor segment` or a gold turns file")
    p.add_argument("--model", default=None, metavar="DIR", help=MODEL_HELP)
    p.add_argument("-o", "--output", required=True, metavar="PREDICTIONS.jsonl", help="predictions to write")
    p.add_argument("--device", default=None, help="auto, cpu, cuda (default: the model's setting)")
    SETTINGS["predict:batch_size"].add_to(p)
    p.add_argument("--no-evidence", action="store_true", help="skip the evidence passages")
    p.add_argument("--corrections", nargs="+", default=[], metavar="ANSWERS.jsonl",
                   help="review answers: their turns get the reviewers' labels (label_source \"human\")")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=run_predict, what="predictions file")


def run_predict(args: argparse.Namespace) -> int:
    from extractor.safeio import check_output
    from extractor.train import predict_file

    check_output(args.output, force=args.force, inputs=[args.turns, *args.corrections, args.model],
                 what="predictions file")
    from extractor.resources import packaged_model

    n = predict_file(args.turns, args.model or packaged_model(), args.output, device=args.device,
                     batch_size=args.batch_size, evidence=not args.no_evidence, progress=sys.stderr.isatty(),
                     corrections=args.corrections)
    print(f"wrote {n} predictions to {args.output}", file=sys.stderr)
    return EXIT_OK
