"""Reports over a batch of predictions: a self-contained HTML page, Markdown, CSV, SVG figures.

- :mod:`~extractor.report.summary` computes every figure the report shows from the
  predictions (plus turns for the transcripts and per-interview totals), so a test can
  recompute them from ``predictions.jsonl``;
- :mod:`~extractor.report.html` (templates in ``extractor/data/report/``),
  :mod:`~extractor.report.markdown`, :mod:`~extractor.report.figures` and
  :mod:`~extractor.report.segments` (``coded_segments.csv``) only format that summary, and
  every text from input is escaped for its format;
- :func:`write_report` writes them all.

The HTML page reads top to bottom as a researcher works: what the codes are and how far to
trust them (who coded them: the model, or a reviewer), the privacy check, codes grouped by
quality dimension with every quote, the code x interview table, the co-occurrence matrix,
codes by lifecycle phase, each interview as a transcript with its codes in the margin,
mitigations and proposed new codes.
"""

from extractor.report.figures import bar_svg, heatmap_svg
from extractor.report.html import SECTIONS, render_html
from extractor.report.markdown import md_escape, render_markdown
from extractor.report.quality import HUMAN_AGREEMENT_FALLBACK, model_quality
from extractor.report.segments import CSV_FIELDS, coded_segments_csv, csv_cell
from extractor.report.summary import NO_PHASE, summarize
from extractor.report.words import plural, proposal_view
from extractor.report.write import write_report

__all__ = ["CSV_FIELDS", "HUMAN_AGREEMENT_FALLBACK", "NO_PHASE", "SECTIONS", "bar_svg", "coded_segments_csv",
           "csv_cell", "heatmap_svg", "md_escape", "model_quality", "plural", "proposal_view", "render_html",
           "render_markdown", "summarize", "write_report"]
