"""Synthetic load for the extraction engines: N transcripts built from the corpus gold turns.

Question/answer exchanges of the gold turns are shuffled across interviews (seeded) and
dealt into N transcripts of ``--turns`` turns each, with a generated pseudonym pair per
transcript: speakers are written ``Name (Interviewer):`` / ``Name (Interviewee):``, the
plain format the segmenter reads, and the corpus' own role placeholders in the text
("Interviewee", "Interviewer1", ...) become the pseudonyms. Texts repeat when N x turns
exceeds the corpus (~3,400 answers): about 3x at 1,000 transcripts of 20 turns.

Write OUTSIDE the repository (the corpus text must never be committed)::

    python scripts/loadgen.py --corpus ../shared/corpus -n 1000 --turns 20 -o /tmp/load1000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

FIRST = ("Ada", "Bo", "Cyra", "Dev", "Elin", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kofi", "Lena", "Mara", "Nils",
         "Oona", "Pim", "Quin", "Rhea", "Sami", "Tove", "Uma", "Vik", "Wren", "Xia", "Yusuf", "Zora")
LAST = ("Abara", "Borg", "Castell", "Dimas", "Eklund", "Fontaine", "Garza", "Holm", "Ilunga", "Jovic", "Kask",
        "Lind", "Moreau", "Nakata", "Ortiz", "Pereira", "Quist", "Rossi", "Sato", "Tamm", "Ueda", "Varga",
        "Weiss", "Yilmaz", "Zeller")
_PLACEHOLDER = re.compile(r"\b(Interviewee|Interviewer)\s*\d*\b")


def exchanges(gold: Path) -> list[tuple[str, str]]:
    """(question, answer) pairs in corpus order; an answer without a question gets ""."""
    rows = [json.loads(line) for line in gold.open(encoding="utf-8") if line.strip()]
    out, q = [], ""
    for r in rows:
        text = " ".join(str(r["text"]).split())
        if r["speaker"] == "interviewer":
            q = text
        elif text:
            out.append((q, text))
            q = ""
    return out


def pseudonym(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def generate(gold: Path, out: Path, n: int, turns: int = 20, seed: int = 0) -> dict[str, int]:
    """Write ``n`` transcripts ``load_00001.txt``... into ``out``; returns counts."""
    rng = random.Random(seed)
    pool = exchanges(gold)
    if not pool:
        raise SystemExit(f"{gold}: expected gold turns with interviewee answers, found none")
    out.mkdir(parents=True, exist_ok=True)
    deck: list[tuple[str, str]] = []
    written = 0
    for i in range(1, n + 1):
        asker, answerer = pseudonym(rng), pseudonym(rng)
        while answerer == asker:
            answerer = pseudonym(rng)
        lines = []
        for _ in range(max(1, turns // 2)):
            if not deck:  # reshuffle the whole pool: every exchange is used before any repeats
                deck = pool[:]
                rng.shuffle(deck)
            q, a = deck.pop()
            sub = {"Interviewee": answerer.split()[0], "Interviewer": asker.split()[0]}
            q, a = (_PLACEHOLDER.sub(lambda m, sub=sub: sub[m[1]], s) for s in (q, a))
            lines.append(f"{asker} (Interviewer): {q or 'Go on.'}\n")
            lines.append(f"{answerer} (Interviewee): {a}\n")
        p = out / f"load_{i:05d}.txt"
        tmp = p.with_suffix(".tmp")
        tmp.write_text("\n".join(lines), encoding="utf-8")
        tmp.replace(p)
        written += len(lines)
    return {"transcripts": n, "turns": written, "pool": len(pool)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"), help="corpus with gold/turns.jsonl")
    ap.add_argument("-n", type=int, default=100, help="transcripts to write (default 100)")
    ap.add_argument("--turns", type=int, default=20, help="turns per transcript (default 20)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, required=True, help="directory to write (outside the repo)")
    a = ap.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    if a.output.resolve().is_relative_to(repo):
        print(f"{a.output}: expected a directory outside the repository, found one inside it "
              "(corpus text must not be committed)", file=sys.stderr)
        return 2
    stats = generate(a.corpus / "gold" / "turns.jsonl", a.output, a.n, a.turns, a.seed)
    print(json.dumps(stats), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
