"""``coded_segments.csv``: one row per coded turn and category, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from extractor.catalog import Catalog
from extractor.types import Prediction, Turn

CSV_FIELDS = ("interview", "turn", "id", "category", "category_name", "score", "phases", "mitigation",
              "start", "end", "file", "evidence", "text", "source")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
UNNAMED_REVIEWER = "reviewer"


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: a leading ``= + - @``, tab or CR gets a ``'``
    in front (OWASP's advice for CSV injection). Numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def code_source(p: Prediction) -> str:
    """Who coded: ``model``, or the reviewer's name for a person's labels."""
    if p.label_source != "human":
        return "model"
    return p.reviewer or UNNAMED_REVIEWER


def coded_segments_csv(predictions: Sequence[Prediction], catalog: Catalog,
                       turns: Sequence[Turn] = ()) -> str:
    """One row per (turn, predicted category): the coded segments, with character ranges
    when known and who coded them (``source``: ``model`` or the reviewer's name)."""
    src = {t.id: t.source for t in turns if t.source}
    buf = io.StringIO()
    # CRLF rows (RFC 4180): a lone CR or LF inside a cell then forces quoting, so it cannot split a row
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_FIELDS)
    for p in predictions:
        s = src.get(p.id) or {}
        for c in p.categories:
            w.writerow([csv_cell(v) for v in (
                p.interview, p.turn, p.id, c, catalog[c].name if c in catalog else c,
                f"{float(p.scores.get(c, 0.0)):.4f}", ";".join(p.phases), int(p.mitigation),
                s.get("start", ""), s.get("end", ""), str(s.get("file", "")), p.evidence.get(c, ""), p.text,
                code_source(p))])
    return buf.getvalue()
