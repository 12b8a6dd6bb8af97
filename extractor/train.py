"""Training and batch prediction at the file level (what ``extractor train`` / ``predict`` call).

``load_training_turns`` reads gold/segmented turn files plus review-correction files
(``extractor review`` queues, Prodigy/doccano answers); corrections override the gold
labels of the turns they name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from extractor.catalog import Catalog, load_catalog
from extractor.classify import IssueClassifier, ModelConfig, TrainConfig
from extractor.errors import InputError, ModelError
from extractor.jsonl import enumerate_lines, read_turns
from extractor.types import Labels, Turn

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


def read_human_labels(paths: Sequence[str | Path], catalog: Catalog | None = None, *,
                      on_conflict: str = "latest") -> dict[str, Labels]:
    """Turn id -> the reviewers' labels, from correction files (empty for no files); annotators'
    disagreements are decided by ``on_conflict`` (:func:`extractor.review.read_corrections`)."""
    if not paths:
        return {}
    from extractor.review import read_corrections

    return read_corrections(list(paths), catalog, on_conflict=on_conflict)


def load_training_turns(paths: Sequence[str | Path], catalog: Catalog | None = None, *,
                        on_conflict: str = "latest") -> list[Turn]:
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
    corrections = read_human_labels(correction_files, catalog, on_conflict=on_conflict)
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
                cache_dir: str | Path | None = None, on_conflict: str = "latest") -> IssueClassifier:
    """Train an :class:`IssueClassifier` on ``paths`` and save it to ``out``.

    With ``init`` (a model directory, or ``default`` for the packaged model) training continues
    from that model: its settings, catalog and encoder. Unless ``train_config.fine_tune`` asks
    for more adapter steps, only what depends on labels is refitted (scorer, phase stacker,
    heads, label memory, thresholds), on embeddings from ``cache_dir`` where cached: seconds.
    Annotators who disagree on a turn are resolved by ``on_conflict`` (``latest`` or ``refuse``).
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
    turns = load_training_turns(paths, catalog, on_conflict=on_conflict)
    if not any(t.is_interviewee and t.labels is not None for t in turns):
        raise InputError(", ".join(map(str, paths)), "labelled interviewee turns (a `labels` field)",
                         "none", hint="train on gold/turns.jsonl or on reviewed corrections")
    clf.fit(turns, progress=progress)
    from extractor.review import corrections_card

    clf.card_["corrections"] = {**corrections_card(split_inputs(paths)[1], catalog),
                                "applied": sum(1 for t in turns if t.label_source == "review")}
    clf.save(out)
    return clf
