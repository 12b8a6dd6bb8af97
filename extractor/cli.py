"""Command line: thin wrappers over the stage functions. ``main(argv) -> exit code``.

Each subcommand has one ``_add_<name>`` function that declares its arguments and a
``_run_<name>`` function that does the I/O and calls the library. Library code logs;
only this module prints, owns progress bars and picks exit codes.

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
from pathlib import Path
from typing import Callable, Sequence

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

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> None:
    from extractor.textsafe import escape_for_terminal  # text from input never drives the terminal

    print(f"error: {escape_for_terminal(msg)}", file=sys.stderr)


def _warn(msg: str) -> None:
    from extractor.textsafe import escape_for_terminal

    print(f"warning: {escape_for_terminal(msg)}", file=sys.stderr)


# --- segment ----------------------------------------------------------------


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


def _add_segment(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--max-mb", type=float, default=64.0, metavar="MB",
                   help="refuse files larger than this many MiB (default 64; 0 = no limit)")
    p.add_argument("--strict", action="store_true", help="exit with status 1 if any file had to be skipped")
    p.add_argument("--force", action="store_true", help="overwrite an existing -o file (never one of the inputs)")
    p.set_defaults(func=_run_segment)


def _run_segment(args: argparse.Namespace) -> int:
    from extractor.jsonl import write_jsonl
    from extractor.safeio import check_output
    from extractor.segment import BatchReport, expand_paths, segment_paths

    if not 0 <= args.max_mb < float("inf"):  # also refuses nan
        _err(f"--max-mb: expected a size in MiB >= 0, found {args.max_mb:g}")
        return EXIT_USAGE
    check_output(args.output, force=args.force, inputs=expand_paths(args.paths), what="turns file")
    names = lambda values: [n.strip() for v in values for n in v.split(",") if n.strip()]  # noqa: E731
    report = BatchReport()
    # Collected before writing so that a batch where every file fails leaves an existing output alone.
    turns = list(segment_paths(args.paths, interviewers=names(args.interviewer), interviewees=names(args.interviewee),
                               max_bytes=int(args.max_mb * 2**20), report=report, progress=sys.stderr.isatty()))
    n_files = len(report.results) + len(report.failures)
    for res in report.results:
        for note in res.notes:
            _warn(f"{res.path}: {note}")
    for path, msg in report.failures:
        _warn(f"skipped {msg}")
    if not report.results:
        _err(f"no transcript could be read ({n_files} file{'s' * (n_files != 1)} skipped)"
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
          f"{'s' * (report.unattributed != 1)} not attributed to a speaker; {len(report.failures)} file"
          f"{'s' * (len(report.failures) != 1)} skipped" + report.losses() + ("" if args.output == "-" else f" -> {args.output}"),
          file=sys.stderr)
    return EXIT_ERROR if args.strict and report.failures else EXIT_OK


# --- demo -------------------------------------------------------------------


MODEL_HELP = "classifier directory (default: the model shipped in the package)"


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="segment and classify the bundled example transcript, print its issues")
    p.add_argument("transcript", nargs="?", type=Path, default=None,
                   help="transcript to run on (default: the bundled example interview)")
    p.add_argument("--model", type=Path, default=None, help=MODEL_HELP)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    import textwrap

    from extractor.classify import IssueClassifier
    from extractor.resources import example_transcript, packaged_model
    from extractor.segment import segment_file

    args.transcript = args.transcript or example_transcript()
    result = segment_file(args.transcript)
    model = IssueClassifier.load(args.model or packaged_model(), device=args.device)
    preds = model.predict(result.turns)
    catalog = model.catalog_
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


# --- review -----------------------------------------------------------------


REVIEW_ORDERS = ("coverage", "gain", "uncertainty", "quality", "relevance", "random", "file")  # review.ORDERS; tested


def _add_review(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="annotation loop: export a review queue, validate, annotate, merge, agreement",
                       description="Human review of predictions. Queues are Prodigy-style JSONL tasks; "
                                   "answered lines are never rewritten. See README 'Review loop'.")
    rsub = p.add_subparsers(title="review commands", dest="review_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), EXIT_USAGE)[1])

    def catalog_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--catalog", type=Path, default=None, help="catalog YAML (default: the packaged catalog)")

    e = rsub.add_parser("export", help="write/extend a review queue from predictions, most worth reading first; "
                                       "a re-export re-ranks the unanswered tasks")
    e.add_argument("predictions", type=Path, help="predictions JSONL from `extractor predict`")
    e.add_argument("-o", "--output", type=Path, required=True, help="queue JSONL (existing answers are kept)")
    e.add_argument("--order", choices=REVIEW_ORDERS, default=REVIEW_ORDERS[0],
                   help="queue order: coverage (default: expected corrections, spread over the interviews as "
                        "answers teach their neighbours), gain, uncertainty, quality (cleanlab), relevance, "
                        "random, file")
    e.add_argument("--limit", type=int, default=None, help="add at most N new tasks")
    e.add_argument("--turns", type=Path, default=None,
                   help="turns JSONL the predictions came from: gives the true previous/next turns as context")
    e.add_argument("--keep-order", dest="rerank", action="store_false",
                   help="leave the tasks already queued where and as they are (only add turns the queue lacks); "
                        "by default a re-export re-ranks the unanswered tasks by the new predictions")
    e.add_argument("--refresh", action="store_true",
                   help="with --keep-order: replace unanswered tasks in place by their new predictions")
    e.add_argument("--seed", type=int, default=0, help="seed of --order random")
    catalog_arg(e)
    e.set_defaults(func=_run_review_export)

    v = rsub.add_parser("validate", help="check queue/answer files; list every problem as file:line")
    v.add_argument("files", type=Path, nargs="+")
    v.add_argument("--turns", type=Path, default=None, help="turns JSONL whose ids the tasks must refer to")
    add_on_conflict(v)
    catalog_arg(v)
    v.set_defaults(func=_run_review_validate)

    g = rsub.add_parser("agreement", help="annotator-vs-annotator and per-label Cohen's kappa / Krippendorff's alpha")
    g.add_argument("files", type=Path, nargs="+")
    g.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    g.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    catalog_arg(g)
    g.set_defaults(func=_run_review_agreement)

    a = rsub.add_parser("annotate", help="terminal reviewer: one task at a time, saved after every answer")
    a.add_argument("file", type=Path, help="queue JSONL from `extractor review export`")
    a.add_argument("--annotator", default=None, help="your name (default: $QI_ANNOTATOR or the login name)")
    catalog_arg(a)
    a.set_defaults(func=_run_review_annotate)

    w = rsub.add_parser("serve", help="web reviewer on http://127.0.0.1:PORT/: one task at a time, keyboard-driven",
                        description="Serve the web reviewer for QUEUE on the loopback address only (never on the "
                                    "network). Answers are saved as you go, in the queue format `annotate` writes; "
                                    "terminal sessions and other tabs may work on the same queue at once.")
    w.add_argument("file", type=Path, metavar="QUEUE", help="queue JSONL from `extractor review export`")
    w.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks a free one)")
    w.add_argument("--model", metavar="DIR", help="a model folder: each answer teaches it, re-scoring and re-ordering the rest")
    w.add_argument("--annotator", default=None, help="your name (default: $QI_ANNOTATOR or the login name)")
    w.add_argument("--proposals", type=Path, default=None, metavar="PROPOSALS.jsonl",
                   help="also review discovery's proposals at /proposals (decisions saved into this file)")
    catalog_arg(w)
    w.set_defaults(func=_run_review_serve)

    m = rsub.add_parser("merge", help="append answers from queues / Prodigy / doccano exports to a corrections file")
    m.add_argument("files", type=Path, nargs="+")
    m.add_argument("-o", "--output", type=Path, required=True, help="corrections JSONL (append-only)")
    catalog_arg(m)
    m.set_defaults(func=_run_review_merge)


def add_on_conflict(q: argparse.ArgumentParser) -> None:
    """``--on-conflict``: the one rule for annotators' disagreements (extractor.review.answers)."""
    q.add_argument("--on-conflict", choices=["latest", "refuse"], default="latest",
                   help="when annotators disagree on a turn: latest (default; the most recent answer counts, "
                        "with a warning) or refuse (an error)")


def _run_review_export(args: argparse.Namespace) -> int:
    from extractor.catalog import load_catalog
    from extractor.jsonl import read_turns
    from extractor.jsonl import read_predictions
    from extractor.review import export_queue

    if args.limit is not None and args.limit < 0:
        raise ExtractorError(f"--limit: expected a count >= 0, found {args.limit}")
    catalog = load_catalog(args.catalog)
    preds = read_predictions(args.predictions)
    if not preds:
        _err(f"{args.predictions}: no predictions to review")
        return EXIT_ERROR
    turns = read_turns(args.turns) if args.turns else None
    if turns is None:
        _warn("no --turns given: context shows neighbouring interviewee turns only")
    s = export_queue(preds, args.output, catalog, turns=turns, order=args.order, limit=args.limit,
                     rerank=args.rerank, refresh=args.refresh, seed=args.seed)
    print(f"{s.path}: {s.added} task(s) added, {s.kept_answered} answered kept, "
          f"{s.kept_unanswered} unanswered kept, {s.refreshed} refreshed (order: {s.order})", file=sys.stderr)
    return EXIT_OK


def _run_review_validate(args: argparse.Namespace) -> int:
    from extractor.catalog import load_catalog
    from extractor.jsonl import read_turns
    from extractor.review import check_conflicts, validate_files

    catalog = load_catalog(args.catalog)
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


def _run_review_agreement(args: argparse.Namespace) -> int:
    import math

    from extractor.catalog import load_catalog
    from extractor.jsonl import write_json
    from extractor.review import agreement
    from extractor.safeio import check_output

    check_output(args.json, force=args.force, inputs=args.files, what="JSON report")
    rep = agreement(args.files, load_catalog(args.catalog))
    if args.json:
        write_json(args.json, rep)
    if rep["shared_turns"] == 0:
        _err(f"no turn was answered by two annotators ({len(rep['annotators'])} annotator(s), "
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


def _run_review_annotate(args: argparse.Namespace) -> int:
    import getpass

    from extractor.catalog import load_catalog
    from extractor.review.tui import annotate

    annotator = args.annotator or os.environ.get("QI_ANNOTATOR") or getpass.getuser()
    annotate(args.file, annotator, load_catalog(args.catalog), stdin=sys.stdin, stdout=sys.stdout)
    return EXIT_OK


def _run_review_serve(args: argparse.Namespace) -> int:
    import getpass

    from extractor.catalog import load_catalog
    from extractor.review.web import serve

    if not 0 <= args.port <= 65535:
        raise ExtractorError(f"--port: expected a port number 0-65535, found {args.port}")
    annotator = args.annotator or os.environ.get("QI_ANNOTATOR") or getpass.getuser()
    serve(args.file, annotator, load_catalog(args.catalog), port=args.port, model=args.model,
          proposals=args.proposals)
    return EXIT_OK


def _run_review_merge(args: argparse.Namespace) -> int:
    from extractor.catalog import load_catalog
    from extractor.review import merge_answers

    r = merge_answers(args.files, args.output, load_catalog(args.catalog))
    print(f"{args.output}: {r['appended']} answer(s) appended ({r['read']} read, "
          f"{r['existing']} line(s) kept as they were)", file=sys.stderr)
    return EXIT_OK


# --- train ------------------------------------------------------------------


def _add_train(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--steps", type=int, help="adapter fine-tuning steps (default 200; 60 with --from --fine-tune)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--device", default="auto", help="auto (GPU when available), cpu, cuda")
    p.add_argument("--force", action="store_true", help="replace an existing model directory")
    add_on_conflict(p)
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from extractor.classify import ModelConfig, TrainConfig
    from extractor.train import train_model

    if args.init and (args.base_model or args.catalog):
        _err("--from: expected alone, found with --base-model/--catalog (a model keeps its encoder and catalog)")
        return EXIT_USAGE
    from extractor.resources import state_dir

    kw = {"seed": args.seed, "device": args.device,
          "fine_tune": (args.fine_tune and not args.fast) if args.init else not args.fast}
    if args.steps is not None:
        kw["warm_steps" if args.init else "steps"] = args.steps
    cache = None if args.cache_dir == "none" else (args.cache_dir or state_dir(args.state_dir) / ".cache" / "embeddings")
    clf = train_model(args.inputs, args.output, config=ModelConfig(base_model=args.base_model),
                      train_config=TrainConfig(**kw), catalog=args.catalog, init=args.init,
                      progress=sys.stderr.isatty(), force=args.force, cache_dir=cache,
                      on_conflict=args.on_conflict)
    tr = clf.card_["training"]
    print(f"trained on {tr['examples']} turns of {tr['interviews']} interviews in {tr['seconds']:.0f}s -> {args.output}", file=sys.stderr)
    return EXIT_OK


# --- predict ----------------------------------------------------------------


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify the interviewee turns of a turns file")
    p.add_argument("turns", metavar="TURNS.jsonl", help="output of `extractor segment` or a gold turns file")
    p.add_argument("--model", default=None, metavar="DIR", help=MODEL_HELP)
    p.add_argument("-o", "--output", required=True, metavar="PREDICTIONS.jsonl", help="predictions to write")
    p.add_argument("--device", default=None, help="auto, cpu, cuda (default: the model's setting)")
    p.add_argument("--batch-size", type=int, default=256, help="turns per batch (default 256)")
    p.add_argument("--no-evidence", action="store_true", help="skip the evidence passages")
    p.add_argument("--corrections", nargs="+", default=[], metavar="ANSWERS.jsonl",
                   help="review answers: they re-score the other turns at once (no retrain) and their turns get "
                        "the reviewers' labels (label_source \"human\")")
    p.add_argument("--catalog", default=None, metavar="YAML",
                   help="updated catalog: entries the model was never trained on are scored from their text")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from extractor.predict import predict_file

    from extractor.safeio import check_output

    check_output(args.output, force=args.force, inputs=[args.turns], what="predictions file")
    if args.batch_size < 1:
        _err(f"--batch-size: expected a positive integer, found {args.batch_size}")
        return EXIT_USAGE
    from extractor.resources import packaged_model

    n = predict_file(args.turns, args.model or packaged_model(), args.output, device=args.device,
                     batch_size=args.batch_size, evidence=not args.no_evidence, progress=sys.stderr.isatty(),
                     corrections=args.corrections, catalog=args.catalog)
    print(f"wrote {n} predictions to {args.output}", file=sys.stderr)
    return EXIT_OK


# --- evaluate ---------------------------------------------------------------


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a model (or predictions) against gold labels, beside human agreement")
    p.add_argument("gold", metavar="GOLD.jsonl", help="gold turns file with labels and codes (gold/turns.jsonl)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="DIR",
                     help="model directory to predict the gold turns with (default: the packaged model)")
    src.add_argument("--predictions", metavar="PRED.jsonl", help="existing predictions (`extractor predict`) instead")
    src.add_argument("--cv", type=int, metavar="K",
                     help="train and score K models, each holding out a group of whole interviews")
    p.add_argument("--fast", action="store_true", help="with --cv: frozen encoder + linear heads only")
    p.add_argument("--seed", type=int, default=42, help="with --cv: seed of the folds and models (default 42)")
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
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from extractor.catalog import load_catalog
    from extractor.evaluate import evaluate, format_tables
    from extractor.jsonl import read_turns, write_json

    from extractor.safeio import check_output

    for out, what in ((args.json, "JSON report"), (args.save_predictions, "predictions file")):
        check_output(out, force=args.force, inputs=[p for p in (args.gold, args.predictions) if p], what=what)
    if args.cv is None and (args.fast or args.save_predictions):
        _err("--fast and --save-predictions: expected together with --cv K, found without it")
        return EXIT_USAGE
    interviews = [s.strip() for s in args.interviews.split(",") if s.strip()] if args.interviews else None
    if not (args.model or args.predictions or args.cv is not None):
        from extractor.resources import packaged_model

        args.model = str(packaged_model())
    turns = read_turns(args.gold)
    if args.model:
        from extractor.classify import IssueClassifier

        clf = IssueClassifier.load(args.model, device=args.device)
        catalog = load_catalog(args.catalog) if args.catalog else clf.catalog_
        from extractor.classify import data_hash

        if clf.card_.get("data_sha256") == data_hash(turns):
            _warn(f"{args.model} was trained on {args.gold}: these are training-set figures, not an estimate "
                  "of accuracy on new interviews; use --cv K for held-out figures")
        keep = set(interviews) if interviews else {t.interview for t in turns if t.labels is not None}
        # Predict only the interviews that will be scored (whole interviews: context needs neighbours).
        preds = clf.predict([t for t in turns if t.interview in keep], progress=sys.stderr.isatty(), evidence=False)
    elif args.cv is not None:
        from extractor.classify import TrainConfig
        from extractor.evaluate import cross_validate

        if args.cv < 2:
            _err(f"--cv: expected at least 2 folds, found {args.cv}")
            return EXIT_USAGE
        catalog = load_catalog(args.catalog)
        config = TrainConfig(seed=args.seed, device=args.device or "auto", fine_tune=not args.fast)
        preds, folds = cross_validate(turns, folds=args.cv, catalog=catalog, config=config,
                                      progress=sys.stderr.isatty())
        if args.save_predictions:
            from extractor.jsonl import write_jsonl

            write_jsonl(args.save_predictions, preds)
    else:
        from extractor.jsonl import read_predictions

        catalog = load_catalog(args.catalog)
        preds = read_predictions(args.predictions, catalog=catalog)
    result = evaluate(turns, preds, catalog, moderated_only=args.moderated_only, interviews=interviews,
                      gold_path=args.gold)
    result["gold"] = str(args.gold)
    if args.model:
        result["source"] = {"model": args.model}
    elif args.cv is not None:
        result["source"] = {"cv": {"folds": folds, "seed": args.seed, "config": config.to_dict()}}
    else:
        result["source"] = {"predictions": args.predictions}
    if result["missing_predictions"]:
        _warn(f"{result['missing_predictions']} labelled turns have no prediction and were skipped")
    print(format_tables(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}", file=sys.stderr)
    return EXIT_OK


# --- discover ---------------------------------------------------------------


def _add_discover(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("discover", help="propose new catalog entries from turns no entry matches")
    p.add_argument("predictions", metavar="PREDICTIONS.jsonl", help="output of `extractor predict`")
    p.add_argument("-o", "--output", required=True, metavar="PROPOSALS.jsonl", help="proposals to write (one per line)")
    p.add_argument("--report", metavar="PROPOSALS.md", help="also write a Markdown report for people")
    p.add_argument("--catalog", metavar="YAML", help="catalog to match against (default: the packaged catalog)")
    p.add_argument("--rejected", metavar="JSONL",
                   help="memory of rejected proposals to leave out (default rejected_proposals.jsonl beside -o)")
    p.add_argument("--encoder", metavar="DIR", help="sentence-transformers directory (default: bundled MiniLM)")
    p.add_argument("--min-words", type=int, help="words a substantive turn needs (default 12)")
    p.add_argument("--min-cluster-size", type=int, help="smallest proposal, in turns (default 4)")
    p.add_argument("--min-interviews", type=int, help="interviews a proposal must come from (default 2)")
    p.add_argument("--score-threshold", type=float, help="classifier score that counts as a match (default 0.5)")
    p.add_argument("--relevance-threshold", type=float,
                   help="classifier relevance (best phase score) a turn needs to count as problem talk (default 0.15)")
    p.add_argument("--match-threshold", type=float,
                   help="cosine similarity to an entry description that counts as a match (default 0.6)")
    p.add_argument("--no-zero-shot", action="store_true", help="skip the similarity-to-catalog matching step")
    p.add_argument("--method", choices=["agglomerative", "hdbscan"], help="clustering (default agglomerative)")
    p.add_argument("--cluster-ratio", type=float, help="agglomerative: unmatched turns per cluster (default 5)")
    p.add_argument("--theme-ratio", type=float,
                   help="agglomerative: also propose broad themes of about N turns grouping clusters (default: none)")
    p.add_argument("--no-themes", action="store_true", help="propose clusters only, no broad themes")
    p.add_argument("--no-question", action="store_true", help="embed turns without the interviewer's question")
    p.add_argument("--max-proposals", type=int, help="keep the strongest N proposals")
    p.add_argument("--small-talk", choices=["mark", "drop", "keep"],
                   help="introductions and small-talk groups: drop them (default), mark them and list them last, or keep")
    p.add_argument("--seed", type=int, help="random seed (default 42)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=_run_discover)


def _run_discover(args: argparse.Namespace) -> int:
    from extractor import discover as D
    from extractor.catalog import load_catalog
    from extractor.jsonl import atomic_open, write_jsonl

    for out in (args.output, args.report):
        if out and Path(out).exists() and not args.force:
            _err(f"{out}: expected a new output file, found an existing one (it may hold review decisions); "
                 "pass --force to overwrite it")
            return EXIT_ERROR
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
    catalog = load_catalog(args.catalog)
    from extractor.proposals import default_rejected_path, load_rejected

    rejected = load_rejected(args.rejected or default_rejected_path(args.output))
    embedder = D.cli_embedder(args.encoder)
    log.debug("encoder %s, dimension %d (loaded before discovery starts)", embedder.name, embedder.dim)
    result = D.run_discovery(preds, None, catalog, embedder, config, rejected=rejected,
                             progress=sys.stderr.isatty())
    for w in result.warnings:
        _warn(w)
    if result.message:
        _warn(result.message)
    n = write_jsonl(args.output, result.proposals)
    if args.report:
        with atomic_open(args.report) as fh:
            fh.write(D.render_report(result, source=str(args.predictions)))
    s = result.stats
    print(f"{s.get('turns', 0)} turns, {s.get('unmatched', 0)} unmatched -> wrote {n} proposals to {args.output}"
          + (f" and {args.report}" if args.report else "")
          + (f" (discovery {s['seconds']:.1f}s, encoder loading excluded)" if "seconds" in s else ""), file=sys.stderr)
    return EXIT_OK


def _add_discover_review(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("discover-review",
                       help='apply "decision": "accept"/"reject" set on lines of a proposals file')
    p.add_argument("proposals", metavar="PROPOSALS.jsonl", help="proposals file with reviewers' decisions")
    p.add_argument("--catalog", metavar="YAML",
                   help="catalog to add accepted entries to (default STATE/annotations/catalog.yaml, "
                        "created from the packaged catalog on first use)")
    p.add_argument("--rejected", metavar="JSONL",
                   help="memory of rejected proposals, appended to (default rejected_proposals.jsonl beside the "
                        "proposals file)")
    p.set_defaults(func=_run_discover_review)


def _run_discover_review(args: argparse.Namespace) -> int:
    from extractor.proposals import apply_decisions
    from extractor.resources import default_user_catalog

    catalog = Path(args.catalog) if args.catalog else default_user_catalog(args.state_dir)
    if not catalog.exists() and not args.catalog:
        import shutil

        from extractor.catalog import default_catalog_path

        catalog.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(default_catalog_path(), catalog)
        _warn(f"created {catalog} from the packaged catalog; train with `--catalog {catalog}` to use its new entries")
    done = apply_decisions(args.proposals, catalog, args.rejected)
    print(f"{len(done['accepted'])} accepted ({', '.join(done['accepted']) or '-'}), {len(done['rejected'])} rejected, "
          f"{len(done['undecided'])} undecided, {len(done['skipped'])} already applied", file=sys.stderr)
    return EXIT_OK


# --- extract ----------------------------------------------------------------


def _add_extract(sub: argparse._SubParsersAction) -> None:
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
                   help="review answers: their turns get the reviewers' labels (label_source \"human\")")
    p.add_argument("--force", action="store_true", help="write into a non-empty OUT that holds other files")
    p.add_argument("--device", default=None, help="torch device for the classifier (default: auto)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default): this process; ray: segment and predict on a Ray cluster "
                        "(pip install 'qi-extractor[scale]'; see docs/scale.md)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --engine ray: join the Ray cluster at ADDR (default: start a local Ray)")
    p.set_defaults(func=_run_extract)


def _run_extract(args: argparse.Namespace) -> int:
    from extractor.embed import make_embedder
    from extractor.extract import load_classifier, make_segmenter, run_extract

    from extractor.train import read_human_labels

    run, extra = run_extract, {}
    if args.engine == "ray":
        from extractor.engine_ray import import_ray, run_extract_ray

        import_ray()  # the install hint before loading a model
        run, extra = run_extract_ray, {"address": args.address, "device": args.device}
    elif args.address:
        raise ExtractorError("--address: expected --engine ray with it, found --engine local")
    clf, info = load_classifier(args.model, device="cpu" if args.engine == "ray" else args.device)
    human = read_human_labels(args.corrections, getattr(clf, "catalog_", None))
    res = run(args.paths, args.output, classifier=clf, model_info=info, human=human,
              segmenter=make_segmenter(args.interviewer), cache_dir=args.cache,
              embedder=make_embedder(args.embedder, device=args.device),
              discover=not args.no_discover, privacy=not args.no_privacy, qdpx=not args.no_qdpx,
              progress=sys.stderr.isatty(), force=args.force, **extra)
    c, m = res.manifest["counts"], res.manifest
    for s in m["skipped"]:
        _warn(f"skipped {s['error']}")
    if c["privacy_warnings"]:
        _warn(f"{c['privacy_warnings']} likely unredacted personal data in the transcripts: see "
              f"{Path(args.output) / 'privacy.jsonl'} and the report's privacy section before sharing")
    cache = m["cache"]
    print(f"extracted {c['interviews']} interviews: {c['turns']} turns, {c['interviewee_turns']} interviewee, "
          f"{c['issue_turns']} with issues, {c['mitigation_turns']} mitigations, {c['proposals']} proposals; "
          f"predicted {cache['predict_misses']} interviews ({cache['predict_hits']} cached) in "
          f"{m['timings_s']['total']:.1f}s -> {Path(args.output) / 'report.html'}", file=sys.stderr)
    return EXIT_OK


# --- qdpx -------------------------------------------------------------------


def _add_qdpx(sub: argparse._SubParsersAction) -> None:
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
    e.set_defaults(func=_run_qdpx_export)
    i = qs.add_parser("import", help="read human codings of a .qdpx as labelled turns (training data)")
    i.add_argument("project", metavar="PROJECT.qdpx")
    i.add_argument("--turns", default=None, metavar="TURNS.jsonl",
                   help="turns of the project's sources (matched by interview name); default: segment the sources")
    i.add_argument("--catalog", default=None, metavar="YAML", help="catalog (default: the packaged catalog)")
    i.add_argument("--no-negatives", action="store_true",
                   help="label only coded turns (default: uncoded interviewee turns of coded sources get empty labels)")
    i.add_argument("-o", "--output", required=True, metavar="LABELLED.jsonl", help="gold-like turns file to write")
    i.add_argument("--force", action="store_true", help="overwrite an existing -o file")
    i.set_defaults(func=_run_qdpx_import)


def _run_qdpx_export(args: argparse.Namespace) -> int:
    from extractor.catalog import load_catalog
    from extractor.jsonl import read_predictions, read_turns
    from extractor.qdpx import export_qdc, export_qdpx
    from extractor.safeio import check_output

    inputs = [args.turns, args.predictions, *([args.catalog] if args.catalog else [])]
    check_output(args.output, force=args.force, inputs=inputs, what="project file")
    check_output(args.codebook, force=args.force, inputs=inputs, what="codebook file")
    if args.codebook and Path(args.codebook).resolve() == Path(args.output).resolve():
        raise ExtractorError(f"{args.codebook}: expected a codebook file other than -o, found the same path")
    catalog = load_catalog(args.catalog)
    turns = read_turns(args.turns)
    preds = read_predictions(args.predictions)
    stats = export_qdpx(args.output, turns, preds, catalog, sources=[args.sources] if args.sources else ())
    if args.codebook:
        export_qdc(args.codebook, catalog)
    print(f"exported {stats['sources']} sources, {stats['selections']} coded selections, {stats['codings']} codings "
          f"-> {args.output}", file=sys.stderr)
    return EXIT_OK


def _run_qdpx_import(args: argparse.Namespace) -> int:
    from extractor.catalog import load_catalog
    from extractor.jsonl import read_turns, write_jsonl
    from extractor.qdpx import import_labels, labelled_turns
    from extractor.safeio import check_output

    check_output(args.output, force=args.force, inputs=[args.project, *([args.turns] if args.turns else [])],
                 what="labelled turns file")
    catalog = load_catalog(args.catalog)
    turns = read_turns(args.turns) if args.turns else None
    labels, source_turns, unmatched = import_labels(args.project, catalog, turns, negatives=not args.no_negatives)
    if unmatched:
        _warn(f"{len(unmatched)} codes match no catalog entry and were ignored: {', '.join(unmatched[:8])}"
              + (", ..." if len(unmatched) > 8 else ""))
    if not labels:
        _err(f"{args.project}: no coded selection could be mapped to a turn and a catalog label")
        return EXIT_ERROR
    rows = labelled_turns(labels, source_turns, label_source=f"qdpx:{Path(args.project).name}")
    write_jsonl(args.output, rows)
    coded = sum(1 for lab in labels.values() if lab.categories or lab.phases or lab.mitigation)
    print(f"imported labels for {len(labels)} interviewee turns ({coded} coded) of {len(source_turns)} sources "
          f"-> {args.output}", file=sys.stderr)
    return EXIT_OK


# --- registry ---------------------------------------------------------------

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_segment,
    _add_demo,
    _add_review,
    _add_train,
    _add_predict,
    _add_evaluate,
    _add_discover,
    _add_discover_review,
    _add_extract,
    _add_qdpx,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extractor",
        description="qi-extractor: find quality issues of ML systems in interview transcripts.",
    )
    parser.add_argument("--version", action="version", version=f"qi-extractor {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages (default: warnings and one summary line per command)")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="where user state goes: annotations/ (review queues, a catalog with accepted "
                             "proposals); default $QI_STATE_DIR or the working directory")
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
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
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or EXIT_OK)
    except ExtractorError as e:
        _err(str(e))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    # Whatever else escapes is still one line (the traceback only with -v): never a traceback
    # for bad input, a full disk or a path that cannot be written.
    except OSError as e:
        from extractor.safeio import os_reason

        _err(f"{e.filename}: {os_reason(e)}" if e.filename else os_reason(e))
        _traceback(args)
        return EXIT_ERROR
    except RecursionError:
        _err("expected input nested at most a few hundred levels deep, found deeper nesting")
        _traceback(args)
        return EXIT_ERROR
    except MemoryError:
        _err("out of memory; try a smaller input")
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - the last line of defence, reported in one line
        _err(f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
             + " (run with -v for the traceback; please report it)")
        _traceback(args)
        return EXIT_ERROR


def _traceback(args: argparse.Namespace) -> None:
    if getattr(args, "verbose", False):
        import traceback

        traceback.print_exc()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
