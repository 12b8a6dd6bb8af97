"""Tiny invented transcripts, catalog and a keyword stand-in classifier for the
extract/report/qdpx tests (no corpus text)."""

from __future__ import annotations

from pathlib import Path

from extractor.catalog import load_catalog
from extractor.types import Prediction, Turn, with_ids

CATALOG_YAML = """\
name: tiny-catalog
version: 3
mitigation_codes: [Drift-fix]
phases:
- {id: data_collection, name: Data collection, definition: Gathering data., codes: [Data-noisy-labels]}
- {id: model_maintenance, name: Model maintenance, definition: Keeping a model healthy., codes: [MM-drift]}
categories:
- {id: drift, name: Drift, definition: The data changes over time & the model degrades., phases: [model_maintenance], codes: [MM-drift]}
- {id: noisy_labels, name: Noisy labels, definition: "Labels are wrong <sometimes>.", phases: [data_collection], codes: [Data-noisy-labels]}
- {id: explainability, name: Explainability, definition: Hard to explain outputs.}
"""

TRANSCRIPT_A = """\
Interviewer: Welcome, can you describe your role?

Interviewee: I build models for a retail shop. Mostly forecasting.

Interviewer: What problems did you see after deployment?

Interviewee: The data drift was terrible after the holidays. We fixed it by retraining weekly.

Interviewer: And the labels?

Interviewee: Our annotators produced a lot of wrong label values. It hurt training.
"""

TRANSCRIPT_B = """\
Interviewer: Tell me about your stakeholders.

Interviewee: They always ask us to explain each prediction, which is hard with deep nets.

Interviewer: Anything else?

Interviewee: No, that is all. Thanks.
"""


def write_catalog(tmp: Path):
    p = tmp / "catalog.yaml"
    p.write_text(CATALOG_YAML, encoding="utf-8")
    return load_catalog(p)


def write_transcripts(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "Interview A.txt").write_text(TRANSCRIPT_A, encoding="utf-8")
    (d / "Interview B.txt").write_text(TRANSCRIPT_B, encoding="utf-8")
    return d


RULES = {"drift": ("drift", "model_maintenance"), "label": ("noisy_labels", "data_collection"),
         "explain": ("explainability", None)}


class KeywordClassifier:
    """Stand-in for IssueClassifier: keyword rules, records what it was asked to predict."""

    def __init__(self, catalog):
        self.catalog_ = catalog
        self.calls: list[list[str]] = []

    def predict(self, turns, progress=False, taught=None):
        turns = list(turns)
        self.calls.append(sorted({t.interview for t in turns}))
        out = []
        for t in turns:
            if not t.is_interviewee:
                continue
            low = t.text.lower()
            cats = tuple(c for k, (c, _) in RULES.items() if k in low)
            phases = tuple(sorted({p for k, (_, p) in RULES.items() if k in low and p}))
            scores = {c: (0.9 if c in cats else 0.1) for c in self.catalog_.category_ids}
            scores.update({p: (0.8 if p in phases else 0.2) for p in self.catalog_.phase_ids})
            mit = "fixed" in low
            scores["mitigation"] = 0.7 if mit else 0.05
            out.append(Prediction(t.interview, t.turn, t.id, cats, phases, mit, scores,
                                  {c: t.text.split(".")[0] + "." for c in cats}, t.text, t.question, "keyword"))
        return out


def make_turns() -> list[Turn]:
    """Turns of both transcripts without source offsets (as in the gold file)."""
    rows = []
    for name, text in (("Interview A", TRANSCRIPT_A), ("Interview B", TRANSCRIPT_B)):
        for k, para in enumerate(p for p in text.split("\n\n") if p.strip()):
            spk, body = para.split(":", 1)
            rows.append(Turn(name, k, spk.strip().lower(), body.strip(), speaker_raw=spk.strip()))
    return list(with_ids(rows))
