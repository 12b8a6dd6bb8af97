"""Measure issue 14's report bars on the output directory of one `extractor extract` run.

Prints: the share of coded turns and of interviewee turns shown in full in the report's
transcripts (outside any collapsed block), the model F1 and human agreement the header
states, the size of the co-occurrence matrix, and the colours and confidences of the
``.qdpx`` export. Reads only OUT; writes nothing.

Usage (from the repo root)::

    extractor extract "../shared/corpus/transcripts/Interview 3.txt" "../shared/corpus/transcripts/Interview 13.txt" -o /tmp/out
    .venv/bin/python scripts/measure_report.py /tmp/out
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from pathlib import Path


class _Visible(HTMLParser):
    """Text outside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.skip, self.chunks = 0, []

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self.skip:
            self.chunks.append(data)


def measure(out: Path) -> dict:
    page = (out / "report.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="transcripts"'):page.index('<section id="mitigations"')]
    parser = _Visible()
    parser.feed(section)
    visible = " ".join(" ".join(parser.chunks).split())
    preds = [json.loads(line) for line in (out / "predictions.jsonl").open(encoding="utf-8")]
    shown = [" ".join(p["text"].split()) in visible for p in preds]
    coded = [s for s, p in zip(shown, preds) if p["categories"]]
    ns = "{urn:QDA-XML:project:1.0}"
    with zipfile.ZipFile(out / "project.qdpx") as zf:
        root = ET.fromstring(zf.read("project.qde"))
    colours = [c.get("color") for c in root.iter(ns + "Code") if c.get("isCodable") == "true"]
    selections = list(root.iter(ns + "PlainTextSelection"))
    return {
        "transcripts_collapsed": "<details" in section,
        "coded_turns_in_full": [sum(coded), len(coded)],
        "interviewee_turns_in_full": [sum(shown), len(shown)],
        "model_f1": re.findall(r'data-model-f1="([^"]*)"', page),
        "human_f1": re.findall(r'data-human-f1="([^"]*)"', page),
        "cooccurrence_cells": page.count("data-pair="),
        "qdpx_codes": len(colours), "qdpx_distinct_colours": len(set(colours)),
        "qdpx_selections_with_confidence": [sum((s.findtext(ns + "Description") or "").startswith("confidence ")
                                                for s in selections), len(selections)],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output directory of `extractor extract`")
    args = ap.parse_args(argv)
    print(json.dumps(measure(args.out), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
