"""Training and batch prediction at the file level (what ``extractor train`` / ``predict`` call).

``load_training_turns`` reads gold/segmented turn files plus review-correction files
(``extractor review`` queues, Prodigy/doccano answers); corrections override the gold
labels of the turns they name.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from extractor.catalog import Catalog, load_catalog
from extractor.classify import ClassifierConfig, IssueClassifier
from extractor.errors import InputError, ModelError
from extractor.jsonl import enumerate_lines, read_turns, write_jsonl
from extractor.types import Turn

log = logging.getLogger(__name__)


def _is_turns_file(path: Path) -> bool:
    """A turns file (gold or ``extractor segment`` output) has ``speaker`` on its records;
    review/answer files do not."""
    for _, obj in enumerate_lines(path):
        return "speaker" in obj and "interview" in obj
    raise InputError(path, "at least one JSON line", "an empty file")


def load_training_turns(paths: Sequence[str | Path], catalog: Catalog | None = None) -> list[Turn]:
    """All turns of the turn files in ``paths`` (in file order), with the labels of the
    correction files in ``paths`` applied on top (corrections win, matched by turn id)."""
    turn_files, correction_files = [], []
    for p in map(Path, paths):
        (turn_files if _is_turns_file(p) else correction_files).append(p)
    if not turn_files:
        raise InputError(", ".join(map(str, paths)) or "<no files>", "at least one turns JSONL file "
                         "(gold/turns.jsonl or `extractor segment` output)", "only correction files",
                         hint="corrections label turns; pass the turns they refer to as well")
    turns: list[Turn] = []
    seen: set[str] = set()
    for p in turn_files:
        for t in read_turns(p):
            if t.id in seen:
                raise InputError(p, "each turn once across the training files", f"turn {t.id} "
                                 f"({t.interview} #{t.turn}) again", hint="pass each turns file once")
            seen.add(t.id)
            turns.append(t)
    if correction_files:
        from extractor.review import apply_corrections, read_corrections

        corrections = read_corrections(correction_files, catalog)
        unknown = [tid for tid in corrections if tid not in seen]
        if unknown:
            log.warning("%d corrections name turns absent from the turn files (ignored), e.g. %s",
                        len(unknown), unknown[0])
        turns = apply_corrections(turns, corrections)
        log.info("applied %d corrections from %d file(s)", len(corrections) - len(unknown), len(correction_files))
    return turns


def train_model(paths: Sequence[str | Path], out: str | Path, *, config: ClassifierConfig | None = None,
                catalog: Catalog | str | Path | None = None, progress: bool = False,
                force: bool = False) -> IssueClassifier:
    """Train an :class:`IssueClassifier` on ``paths`` and save it to ``out``."""
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise ModelError(f"{out}: expected a new or empty output directory, found an existing "
                         f"{'directory' if out.is_dir() else 'file'}; pass --force to replace the model")
    if not isinstance(catalog, Catalog):
        catalog = load_catalog(catalog)
    turns = load_training_turns(paths, catalog)
    n = sum(1 for t in turns if t.is_interviewee and t.labels is not None)
    if n == 0:
        raise InputError(", ".join(map(str, paths)), "labelled interviewee turns (a `labels` field)",
                         "none", hint="train on gold/turns.jsonl or on reviewed corrections")
    clf = IssueClassifier(catalog=catalog, config=config).fit(turns, progress=progress)
    # The card says which review files went in (with their sha256) and how many corrections applied.
    from extractor.review import corrections_card

    clf.card_["corrections"] = {**corrections_card([p for p in map(Path, paths) if not _is_turns_file(p)], catalog),
                                "applied": sum(1 for t in turns if t.label_source == "review")}
    if out.exists() and out.is_file():
        out.unlink()
    clf.save(out)
    return clf


def predict_file(turns_path: str | Path, model: str | Path, out: str | Path, *, device: str | None = None,
                 batch_size: int = 256, evidence: bool = True, progress: bool = False) -> int:
    """Predict every interviewee turn of a turns file; write predictions JSONL atomically."""
    turns = read_turns(turns_path)
    if not any(t.is_interviewee for t in turns):
        raise InputError(turns_path, "interviewee turns", "none", hint="was the interviewer named correctly "
                         "when segmenting (`extractor segment --interviewer`)?")
    clf = IssueClassifier.load(model, device=device)
    preds = clf.predict(turns, progress=progress, evidence=evidence, batch_size=batch_size)
    return write_jsonl(out, preds)
