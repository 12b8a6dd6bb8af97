"""Training and batch prediction at the file level (what ``extractor train`` / ``predict`` call).

``load_training_turns`` reads gold/segmented turn files plus review-correction files
(``extractor review`` queues, Prodigy/doccano answers); corrections override the gold
labels of the turns they name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from extractor.catalog import Catalog, load_catalog
from extractor.classify import IssueClassifier, ModelConfig, TrainConfig
from extractor.errors import InputError, ModelError
from extractor.jsonl import enumerate_lines, read_turns, write_jsonl
from extractor.types import Labels, Prediction, Turn

log = logging.getLogger(__name__)


def _is_turns_file(path: Path) -> bool:
    """A turns file (gold or ``extractor segment`` output) has ``speaker`` on its records;
    review/answer files do not."""
    for _, obj in enumerate_lines(path):
        return "speaker" in obj and "interview" in obj
    raise InputError(path, "at least one JSON line", "an empty file")


def split_inputs(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """(turn files, correction files) of ``paths``."""
    turn_files: list[Path] = []
    correction_files: list[Path] = []
    for p in map(Path, paths):
        (turn_files if _is_turns_file(p) else correction_files).append(p)
    return turn_files, correction_files


def read_human_labels(paths: Sequence[str | Path], catalog: Catalog | None = None) -> dict[str, Labels]:
    """Turn id -> the reviewers' labels, from correction files (empty for no files)."""
    if not paths:
        return {}
    from extractor.review import read_corrections

    return read_corrections(list(paths), catalog)


def load_training_turns(paths: Sequence[str | Path], catalog: Catalog | None = None) -> list[Turn]:
    """All turns of the turn files in ``paths`` (in file order), with the labels of the
    correction files in ``paths`` applied on top (corrections win, matched by turn id)."""
    turn_files, correction_files = split_inputs(paths)
    if not turn_files:
        raise InputError(", ".join(map(str, paths)) or "<no files>", "at least one turns JSONL file "
                         "(gold/turns.jsonl or `extractor segment` output)", "only correction files",
                         hint="corrections label turns; pass the turns they refer to as well")
    turns: list[Turn] = []
    seen: set[str] = set()
    from extractor.jsonl import check_label_ids

    catalog = catalog or load_catalog()
    for p in turn_files:
        file_turns = read_turns(p)
        check_label_ids(p, file_turns, catalog)
        for t in file_turns:
            if t.id in seen:
                raise InputError(p, "each turn once across the training files", f"turn {t.id} "
                                 f"({t.interview} #{t.turn}) again", hint="pass each turns file once")
            seen.add(t.id)
            turns.append(t)
    corrections = read_human_labels(correction_files, catalog)
    if corrections:
        from extractor.review import apply_corrections

        unknown = [tid for tid in corrections if tid not in seen]
        if unknown:
            log.warning("%d corrections name turns absent from the turn files (ignored), e.g. %s",
                        len(unknown), unknown[0])
        turns = apply_corrections(turns, corrections)
        log.info("applied %d corrections from %d file(s)", len(corrections) - len(unknown), len(correction_files))
    return turns


def train_model(paths: Sequence[str | Path], out: str | Path, *, config: ModelConfig | None = None,
                train_config: TrainConfig | None = None, catalog: Catalog | str | Path | None = None,
                init: str | Path | None = None, progress: bool = False, force: bool = False,
                cache_dir: str | Path | None = None) -> IssueClassifier:
    """Train an :class:`IssueClassifier` on ``paths`` and save it to ``out``.

    With ``init`` (a model directory, or ``default`` for the packaged model) training continues
    from that model: its settings, catalog and encoder. Unless ``train_config.fine_tune`` asks
    for more adapter steps, only what depends on labels is refitted (scorer, phase stacker,
    heads, label memory, thresholds), on embeddings from ``cache_dir`` where cached: seconds.
    """
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise ModelError(f"{out}: expected a new or empty output directory, found an existing "
                         f"{'directory' if out.is_dir() else 'file'}; pass --force to replace the model")
    if init is not None:
        from extractor.resources import resolve_model

        clf = IssueClassifier.load(resolve_model(init), device=train_config.device if train_config else None,
                                   cache_dir=cache_dir)
        clf.train_config = train_config or replace(clf.train_config, fine_tune=False)
        catalog = clf.catalog_
    else:
        catalog = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
        clf = IssueClassifier(catalog=catalog, config=config, train_config=train_config, cache_dir=cache_dir)
    turns = load_training_turns(paths, catalog)
    if not any(t.is_interviewee and t.labels is not None for t in turns):
        raise InputError(", ".join(map(str, paths)), "labelled interviewee turns (a `labels` field)",
                         "none", hint="train on gold/turns.jsonl or on reviewed corrections")
    clf.fit(turns, progress=progress)
    from extractor.review import corrections_card

    clf.card_["corrections"] = {**corrections_card(split_inputs(paths)[1], catalog),
                                "applied": sum(1 for t in turns if t.label_source == "review")}
    clf.save(out)
    return clf


def apply_human_labels(preds: Sequence[Prediction], human: Mapping[str, Labels]) -> list[Prediction]:
    """Predictions where reviewers' labels replace the model's (``label_source="human"``); the
    model's scores stay, evidence is kept for the categories both agree on."""
    out = []
    for p in preds:
        lab = human.get(p.id)
        if lab is not None:
            keep = set(lab.categories)
            p = replace(p, categories=lab.categories, phases=lab.phases, mitigation=lab.mitigation,
                        evidence={c: e for c, e in p.evidence.items() if c in keep},
                        spans={c: s for c, s in p.spans.items() if c in keep}, label_source="human")
        out.append(p)
    return out


def predict_file(turns_path: str | Path, model: str | Path, out: str | Path, *, device: str | None = None,
                 batch_size: int = 256, evidence: bool = True, progress: bool = False,
                 corrections: Sequence[str | Path] = ()) -> int:
    """Predict every interviewee turn of a turns file; write predictions JSONL atomically.
    Turns named in ``corrections`` keep their reviewers' labels (``label_source: "human"``)."""
    turns = read_turns(turns_path)
    if not any(t.is_interviewee for t in turns):
        raise InputError(turns_path, "interviewee turns", "none", hint="was the interviewer named correctly "
                         "when segmenting (`extractor segment --interviewer`)?")
    clf = IssueClassifier.load(model, device=device)
    human = read_human_labels(corrections, clf.catalog_)
    preds = clf.predict(turns, progress=progress, evidence=evidence, batch_size=batch_size)
    return write_jsonl(out, apply_human_labels(preds, human))

