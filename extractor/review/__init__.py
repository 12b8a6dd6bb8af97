"""The annotation loop: review queues, reviewers, validation, corrections, annotator agreement.

One module per job:

- :mod:`~extractor.review.options`: option ids (``cat:<id>``, ``phase:<id>``, ``mitigation``), hashes;
- :mod:`~extractor.review.formats`: reading queues, Prodigy answers and doccano exports line by line;
- :mod:`~extractor.review.ordering`: queue order (coverage, gain, uncertainty, cleanlab quality, relevance, random, file);
- :mod:`~extractor.review.queue`: tasks and ``review export``;
- :mod:`~extractor.review.answers`: which answer counts; conflicts between annotators;
- :mod:`~extractor.review.merge`, :mod:`~extractor.review.agreement`: ``review merge`` / ``agreement``;
- :mod:`~extractor.review.log`, :mod:`~extractor.review.session`: the queue as a reviewer reads and
  appends to it; :mod:`~extractor.review.tui` (``review annotate``) and :mod:`~extractor.review.web`
  (``review serve``, its logic in :mod:`~extractor.review.web_state`, re-scoring in
  :mod:`~extractor.review.teaching`).

The names below are the package's public surface (``from extractor import review``).
"""

from extractor.jsonl import read_predictions
from extractor.review.agreement import agreement, kappa, krippendorff_alpha_nominal
from extractor.review.answers import (
    ON_CONFLICT,
    Conflict,
    apply_corrections,
    check_conflicts,
    corrections_card,
    latest_answers,
    read_answers,
    read_corrections,
    resolve_corrections,
)
from extractor.review.formats import ANSWERS, Problem, Record, ReviewFileError, parse_file, validate_files
from extractor.review.merge import merge_answers
from extractor.review.options import (
    CAT,
    PHASE,
    accept_to_labels,
    input_hash,
    label_key,
    labels_to_accept,
    now_iso,
    option_ids,
    task_hash,
)
from extractor.review.ordering import (
    DEFAULT_ORDER,
    ORDERS,
    estimate_thresholds,
    expected_gain,
    priorities,
    quality_scores,
    rank,
    uncertainty_scores,
)
from extractor.review.queue import ExportSummary, export_queue, make_task

__all__ = ["ANSWERS", "CAT", "DEFAULT_ORDER", "ON_CONFLICT", "ORDERS", "PHASE", "Conflict", "ExportSummary", "Problem", "Record",
           "ReviewFileError", "accept_to_labels", "agreement", "apply_corrections", "check_conflicts",
           "corrections_card",
           "estimate_thresholds", "expected_gain", "export_queue", "input_hash", "kappa", "krippendorff_alpha_nominal", "label_key",
           "labels_to_accept", "latest_answers", "make_task", "merge_answers", "now_iso", "option_ids", "parse_file",
           "priorities", "quality_scores", "rank", "read_answers", "read_corrections", "read_predictions",
           "resolve_corrections", "task_hash", "uncertainty_scores", "validate_files"]
