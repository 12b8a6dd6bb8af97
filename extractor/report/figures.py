"""The report's figures as standalone SVG files: category x phase heatmap, categories by interviews.

Positions and colours are computed here; the markup is in ``extractor/data/report/*.svg.j2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extractor.report.templates import render


def shade(v: float) -> str:
    """White (0) to dark blue (1); dark cells get white text."""
    r, g, b = (int(255 - v * (255 - c)) for c in (31, 78, 140))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap_svg(summary: Mapping[str, Any], value: str = "turns") -> str:
    """Category x phase heatmap as a standalone SVG document (counts of ``value``)."""
    rows, cols = summary["matrix"], summary["phases"]
    cw, ch, left, top = 64, 18, 300, 150
    vmax = max([r["cells"][c["id"]][value] for r in rows for c in cols] + [1])
    col_views = [{"x": left + j * cw + cw / 2, "y": top - 6, "name": c["name"]} for j, c in enumerate(cols)]
    row_views = []
    for i, r in enumerate(rows):
        y = top + i * ch
        cells = []
        for j, c in enumerate(cols):
            v = r["cells"][c["id"]][value]
            frac = v / vmax
            cells.append({"x": left + j * cw, "w": cw - 1, "h": ch - 1, "fill": shade(frac), "col": c["name"], "v": v,
                          "cx": left + j * cw + cw / 2, "ink": "#fff" if frac > 0.5 else "#000"})
        row_views.append({"x": left - 6, "y": y + ch - 5, "top": y, "name": r["name"], "cells": cells})
    return render("heatmap.svg.j2", width=left + cw * len(cols) + 10, height=top + ch * len(rows) + 10,
                  value=value, cols=col_views, rows=row_views)


def bar_svg(summary: Mapping[str, Any], value: str = "interviews") -> str:
    """Horizontal bar chart: categories by number of interviews (or turns), largest first."""
    rows = sorted(summary["matrix"], key=lambda r: (-r[value], r["name"]))
    bh, left, plot = 18, 300, 360
    vmax = max([r[value] for r in rows] + [1])
    bars = []
    for i, r in enumerate(rows):
        y = 30 + i * bh
        w = plot * r[value] / vmax
        bars.append({"x": left - 6, "y": y + bh - 5, "top": y, "name": r["name"], "w": f"{w:.1f}", "h": bh - 3,
                     "v": r[value], "end": f"{left + w + 4:.1f}"})
    return render("bars.svg.j2", width=left + plot + 50, height=30 + bh * len(rows) + 10, value=value, left=left,
                  bars=bars)
