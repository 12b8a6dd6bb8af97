"""Recall of the privacy check on person names inserted into the corpus transcripts.

Inserts N person names (from the list below, written for this benchmark and independent
of the gazetteer's source) into interviewee turns of copies of the corpus transcripts, in
varied forms ("Ricardo", "Mario Debt", "Ali V", "Dr. Okafor", "Priya's") and positions (mid-
sentence, sentence start, after a comma, in a list), runs ``extractor.privacy.scan_paths``
on the copies and counts the inserted names found on their line. Also counts the name
findings on the untouched transcripts (the corpus is pseudonymised, but not perfectly: a
finding there is a false positive or a name the pseudonymisation missed).

    python scripts/bench_privacy.py --corpus ../shared/corpus/transcripts -n 500 --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extractor.privacy import scan_paths  # noqa: E402

# (given, family): people of many origins, including those the UX walk found missed.
NAMES = [
    ("Ricardo", "Alves"), ("Ali", "Vahidi"), ("Mario", "Debt"), ("Ed", "Norris"), ("Priya", "Raman"),
    ("Wei", "Zhang"), ("Oluwaseun", "Adeyemi"), ("Siobhan", "Kelly"), ("Kenji", "Watanabe"), ("Björn", "Lindqvist"),
    ("Fatima", "Haddad"), ("Mateo", "Rossi"), ("Dmitri", "Volkov"), ("Aisha", "Bello"), ("Hamid", "Karimi"),
    ("Zoe", "Martin"), ("José", "Fernández"), ("Nadia", "Benali"), ("Tomasz", "Nowak"), ("Ingrid", "Hansen"),
    ("Carlos", "Mendoza"), ("Yusuf", "Demir"), ("Elena", "Popescu"), ("Arjun", "Mehta"), ("Chloé", "Dubois"),
    ("Kwame", "Mensah"), ("Hannah", "Schmidt"), ("Luca", "Bianchi"), ("Sofia", "Andersson"), ("Omar", "Farouk"),
    ("Mei", "Chen"), ("Jakub", "Novák"), ("Leila", "Rahimi"), ("Pedro", "Santos"), ("Anna", "Kowalska"),
    ("Samuel", "Okafor"), ("Yuki", "Tanaka"), ("Gabriel", "Lefebvre"), ("Amara", "Nwosu"), ("Diego", "Ramírez"),
    ("Katarina", "Horvat"), ("Hassan", "Ali"), ("Marta", "García"), ("Nikolai", "Petrov"), ("Emma", "Johansson"),
    ("Rahul", "Sharma"), ("Isabel", "Moreno"), ("Jonas", "Weber"), ("Amina", "Diallo"), ("Felipe", "Costa"),
    ("Sara", "Cohen"), ("Viktor", "Horváth"), ("Lucía", "Torres"), ("Ahmed", "Mansour"), ("Julien", "Moreau"),
    ("Olga", "Ivanova"), ("Tariq", "Aziz"), ("Camila", "Rojas"), ("Henrik", "Berg"), ("Anjali", "Gupta"),
    ("Marco", "Ricci"), ("Eva", "Novotná"), ("Kofi", "Boateng"), ("Laura", "Becker"), ("Andrés", "Castro"),
    ("Yasmin", "Saleh"), ("Stefan", "Müller"), ("Noor", "Hussain"), ("Paolo", "Greco"), ("Irina", "Smirnova"),
    ("Thomas", "Lambert"), ("Ayesha", "Siddiqui"), ("Bruno", "Carvalho"), ("Helena", "Lindberg"), ("Mohamed", "Salah"),
    ("Clara", "Vogel"), ("Javier", "Ortiz"), ("Nina", "Jensen"), ("Ibrahim", "Kaya"), ("Alice", "Fontaine"),
    ("Rafael", "Lima"), ("Monika", "Wójcik"), ("Sven", "Olsen"), ("Rosa", "Delgado"), ("Daniel", "Levi"),
    ("Grace", "Owusu"), ("Victor", "Nguyen"), ("Lena", "Fischer"), ("Miguel", "Herrera"), ("Zainab", "Yusuf"),
    ("Patrick", "Murphy"), ("Sakura", "Suzuki"), ("Antoine", "Girard"), ("Beatriz", "Souza"), ("Emil", "Nielsen"),
    ("Farah", "Khalil"), ("Giorgio", "Conti"), ("Hyejin", "Park"), ("Igor", "Kuznetsov"), ("Jana", "Dvořák"),
]
# Where a name goes; {n} is replaced by the name in one of the forms below.
TEMPLATES = [
    " I discussed it with {n} last week.", " So {n} built the first pipeline.", " {n} said the labels were wrong.",
    " My manager, {n}, approved it.", " We asked {n} and the team about the data.", " That was {n}'s idea.",
    " Thanks to {n} we fixed it.", " {n} and I wrote the tests.",
]
FORMS = ["given", "given family", "given initial", "given initial.", "title family", "family, given"]


def name_form(given: str, family: str, form: str) -> tuple[str, str]:
    """``(text inserted, the word that must be inside a finding)``."""
    return {
        "given": (given, given),
        "given family": (f"{given} {family}", given),
        "given initial": (f"{given} {family[0]}", given),
        "given initial.": (f"{given} {family[0]}.", given),
        "title family": (f"Dr. {family}", family),
        "family, given": (f"{given} {family}", family),  # the family name must be inside the finding
    }[form]


def insert_names(corpus: Path, out: Path, n: int, seed: int) -> list[dict]:
    """Copy the transcripts to ``out`` with ``n`` names appended to random interviewee lines."""
    rng = random.Random(seed)
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".txt", ".md"))
    texts = {p.name: p.read_text(encoding="utf-8").split("\n") for p in files}
    slots = [(name, i) for name, lines in texts.items() for i, line in enumerate(lines)
             if line.lstrip("*# ").lower().startswith("interviewee")]
    inserted = []
    for k, (name, i) in enumerate(rng.sample(slots, n)):
        given, family = NAMES[k % len(NAMES)]
        form = FORMS[rng.randrange(len(FORMS))]
        text, key = name_form(given, family, form)
        texts[name][i] = texts[name][i].rstrip() + rng.choice(TEMPLATES).format(n=text)
        inserted.append({"file": name, "line": i + 1, "name": text, "key": key, "form": form})
    for name, lines in texts.items():
        (out / name).write_text("\n".join(lines), encoding="utf-8")
    return inserted


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus/transcripts"))
    ap.add_argument("-n", type=int, default=500, help="names to insert")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    baseline = [f for f in scan_paths(sorted(p for p in args.corpus.iterdir() if p.suffix in (".txt", ".md")))
                if f.kind == "name"]
    with tempfile.TemporaryDirectory() as tmp:
        inserted = insert_names(args.corpus, Path(tmp), args.n, args.seed)
        found = [f for f in scan_paths(sorted(Path(tmp).iterdir())) if f.kind == "name"]
    at: dict[tuple[str, int], list[str]] = {}
    for f in found:
        at.setdefault((Path(f.file).name, f.line), []).append(f.text)
    missed = [x for x in inserted if not any(x["key"] in t for t in at.get((x["file"], x["line"]), []))]
    by_form = Counter(x["form"] for x in inserted)
    missed_by_form = Counter(x["form"] for x in missed)
    figures = {
        "inserted": len(inserted), "found": len(inserted) - len(missed),
        "recall": round(1 - len(missed) / len(inserted), 4),
        "recall_by_form": {f: round(1 - missed_by_form[f] / by_form[f], 3) for f in sorted(by_form)},
        "missed": [x["name"] for x in missed],
        "name_findings_on_untouched_corpus": len(baseline),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
