"""Write every report file of a run into its output folder (each atomically)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from extractor.catalog import Catalog
from extractor.jsonl import atomic_open, write_json
from extractor.report.figures import bar_svg, heatmap_svg
from extractor.report.html import render_html
from extractor.report.markdown import render_markdown
from extractor.report.segments import coded_segments_csv
from extractor.report.summary import summarize
from extractor.types import Prediction, Turn


def summary_json(summary: Mapping[str, Any]) -> Any:
    """The figures only: the turns' text is in turns.jsonl and predictions.jsonl already."""
    figures_only = {k: v for k, v in summary.items() if k != "transcripts"}
    figures_only["categories"] = [dict(c, evidence=[{k: v for k, v in ev.items() if k != "evidence"}
                                                    for ev in c["evidence"]])
                                  for c in figures_only["categories"]]
    return json.loads(json.dumps(figures_only, default=str))


def write_report(
    out_dir: str | Path,
    predictions: Sequence[Prediction],
    catalog: Catalog,
    *,
    turns: Sequence[Turn] = (),
    proposals: Sequence[Any] = (),
    privacy: Sequence[Any] = (),
    manifest: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``report.html``, ``report.md``, ``coded_segments.csv``, ``summary.json`` and
    ``figures/*.svg`` into ``out_dir`` (each atomically); return their paths."""
    out = Path(out_dir)
    summary = summarize(predictions, catalog, turns=turns, proposals=proposals, privacy=privacy, manifest=manifest)
    figs = {"heatmap": heatmap_svg(summary), "bars": bar_svg(summary)}
    paths = {"heatmap": out / "figures" / "category_phase_heatmap.svg",
             "bars": out / "figures" / "categories_by_interviews.svg",
             "html": out / "report.html", "markdown": out / "report.md",
             "csv": out / "coded_segments.csv", "summary": out / "summary.json"}
    texts = {**figs, "html": render_html(summary, figs),
             "markdown": render_markdown(summary, {k: str(paths[k].relative_to(out)) for k in ("heatmap", "bars")}),
             "csv": coded_segments_csv(predictions, catalog, turns)}
    for key, text in texts.items():
        with atomic_open(paths[key]) as fh:
            fh.write(text)
    write_json(paths["summary"], summary_json(summary))
    return paths
