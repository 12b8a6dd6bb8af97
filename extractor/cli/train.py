"""``extractor train`` and ``extractor predict``."""

from __future__ import annotations

import argparse
import logging
import sys

from extractor.cli.common import EXIT_OK, EXIT_USAGE, MODEL_HELP, Subparsers, err
from extractor.cli.review import add_on_conflict
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
    p.add_argument("--from", dest="init", metavar="MODEL",
                   help="continue from this model directory, or `default` (the packaged model): refits what "
                        "depends on labels on cached embeddings, in seconds; its settings, catalog and encoder stay")
    p.add_argument("--fine-tune", action="store_true",
                   help="with --from: also continue the encoder's LoRA fine-tune (--steps, default 60; minutes)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="embedding cache (default: .cache/embeddings under --state-dir, $QI_STATE_DIR or the working "
                        "directory; 'none': no cache)")
    SETTINGS["train:steps"].add_to(p)
    SETTINGS["train:seed"].add_to(p)
    p.add_argument("--device", default="auto", help="auto (GPU when available), cpu, cuda")
    p.add_argument("--force", action="store_true", help="replace an existing model directory")
    add_on_conflict(p)
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from extractor.classify import ModelConfig, TrainConfig
    from extractor.train import train_model

    if args.init and (args.base_model or args.catalog):
        err("--from: expected alone, found with --base-model/--catalog (a model keeps its encoder and catalog)")
        return EXIT_USAGE
    from extractor.resources import state_dir

    fine_tune = (args.fine_tune and not args.fast) if args.init else not args.fast
    kw = {"device": args.device, "fine_tune": fine_tune, **({"seed": args.seed} if args.seed is not None else {})}
    if args.steps is not None:
        kw["warm_steps" if args.init else "steps"] = args.steps
    cache = None if args.cache_dir == "none" else (args.cache_dir or state_dir(args.state_dir) / ".cache" / "embeddings")
    clf = train_model(args.inputs, args.output, config=ModelConfig(base_model=args.base_model),
                      train_config=TrainConfig(**kw), catalog=args.catalog, init=args.init,
                      progress=sys.stderr.isatty(), force=args.force, cache_dir=cache, on_conflict=args.on_conflict)
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
                   help="review answers: they re-score the other turns at once (no retrain) and their turns get "
                        "the reviewers' labels (label_source \"human\")")
    p.add_argument("--catalog", default=None, metavar="YAML",
                   help="updated catalog: entries the model was never trained on are scored from their text")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=run_predict, what="predictions file")


def run_predict(args: argparse.Namespace) -> int:
    from extractor.predict import predict_file
    from extractor.safeio import check_output

    check_output(args.output, force=args.force, inputs=[args.turns, *args.corrections, args.model, args.catalog],
                 what="predictions file")
    from extractor.resources import packaged_model

    n = predict_file(args.turns, args.model or packaged_model(), args.output, device=args.device,
                     batch_size=args.batch_size, evidence=not args.no_evidence, progress=sys.stderr.isatty(),
                     corrections=args.corrections, catalog=args.catalog)
    print(f"wrote {n} predictions to {args.output}", file=sys.stderr)
    return EXIT_OK
