"""``extractor demo``: segment and classify the bundled example, print its issues."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from extractor.cli.common import EXIT_OK, MODEL_HELP, Subparsers

log = logging.getLogger("extractor")


def add_demo(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="segment and classify the bundled example transcript, print its issues")
    p.add_argument("transcript", nargs="?", type=Path, default=None,
                   help="transcript to run on (default: the bundled example interview)")
    p.add_argument("--model", type=Path, default=None, help=MODEL_HELP)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    import textwrap

    from extractor.classify import IssueClassifier
    from extractor.resources import example_transcript, packaged_model
    from extractor.segment import segment_file

    args.transcript = args.transcript or example_transcript()
    result = segment_file(args.transcript)
    model = IssueClassifier.load(args.model or packaged_model(), device=args.device)
    preds = model.predict(result.turns)
    catalog = model.catalog_
    assert catalog is not None  # a loaded model always has its catalog
    flagged = [p for p in preds if p.categories]
    print(f"{args.transcript.name}: {len(result.turns)} turns, {len(preds)} interviewee turns, "
          f"{len(flagged)} with issues (model {model.model_name}, catalog {catalog.tag})\n")
    for p in flagged:
        labels = ", ".join(f"{catalog[c].name} ({p.scores.get(c, 0.0):.2f})" for c in p.categories)
        phases = ", ".join(catalog[ph].name for ph in p.phases) or "-"
        print(f"turn {p.turn:>3}  {labels}")
        print(f"          phases: {phases}{'   [mitigation]' if p.mitigation else ''}")
        for quote in dict.fromkeys(p.evidence.get(c, "") for c in p.categories):  # each sentence once
            if quote:
                print(f"          \"{textwrap.shorten(quote, width=110, placeholder=' ...')}\"")
        print()
    counts: dict[str, int] = {}
    for p in flagged:
        for c in p.categories:
            counts[c] = counts.get(c, 0) + 1
    if counts:
        print("issues in this interview: " + "; ".join(
            f"{catalog[c].name} x{n}" for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))
    else:
        print("no catalog issue found above the model's thresholds")
    return EXIT_OK
