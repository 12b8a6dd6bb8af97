"""Write every report file of a run into its output folder (each atomically)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractor.catalog import Catalog
from extractor.jsonl import atomic_open, write_json
from extractor.report.figures import bar_svg, heatmap_svg
from extractor.report.html import render_html
from extractor.report.markdown import render_markdown
from extractor.report.segments import coded_segments_csv
from extractor.report.summary import ReportInputs, summarize
from extractor.types import Prediction

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack for **kwargs needs Python 3.12


def summary_json(summary: Mapping[str, Any]) -> Any:
    """The figures only: the turns' text is in turns.jsonl and predictions.jsonl already."""
    figures_only = {k: v for k, v in summary.items() if k != "transcripts"}
    figures_only["categories"] = [dict(c, evidence=[{k: v for k, v in ev.items() if k != "evidence"}
                                                    for ev in c["evidence"]])
                                  for c in figures_only["categories"]]
    return json.loads(json.dumps(figures_only, default=str))


def write_report(out_dir: str | Path, predictions: Sequence[Prediction], catalog: Catalog,
                 **inputs: Unpack[ReportInputs]) -> dict[str, Path]:
    """Write ``report.html``, ``report.md``, ``coded_segments.csv``, ``summary.json`` and
    ``figures/*.svg`` into ``out_dir`` (each atomically); return their paths. ``inputs``: the
    turns, proposals, privacy findings and manifest, as :func:`summarize` takes them."""
    out = Path(out_dir)
    summary = summarize(predictions, catalog, **inputs)
    figs = {"heatmap": heatmap_svg(summary), "bars": bar_svg(summary)}
    paths = {"heatmap": out / "figures" / "category_phase_heatmap.svg",
             "bars": out / "figures" / "categories_by_interviews.svg",
             "html": out / "report.html", "markdown": out / "report.md",
             "csv": out / "coded_segments.csv", "summary": out / "summary.json"}
    texts = {**figs, "html": render_html(summary, figs),
             "markdown": render_markdown(summary, {k: str(paths[k].relative_to(out)) for k in ("heatmap", "bars")}),
             "csv": coded_segments_csv(predictions, catalog, inputs.get("turns", ()))}
    for key, text in texts.items():
        with atomic_open(paths[key]) as fh:
            fh.write(text)
    write_json(paths["summary"], summary_json(summary))
    return paths
