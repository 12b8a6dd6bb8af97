"""Tests of extractor.discover and extractor.proposals: filter, clustering, naming, merging, small talk,
degenerate cases, review loop, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from extractor import discover as D
from extractor import proposals as P
from extractor.catalog import load_catalog, save_catalog
from extractor.embed import HashingEmbedder
from extractor.errors import ExtractorError
from extractor.types import Prediction

# Three invented themes, voiced in several interviews, that the toy catalog does not cover.
THEMES = {
    "gpu": "the problem is our gpu cluster quota queue scheduling blocks training jobs for days waiting cluster quota gpu {i}",
    "legal": "the legal team contract licence review delays dataset licence approval contract lawyers {i}",
    "docs": "nobody writes documentation wiki pages onboarding newcomers documentation wiki outdated {i}",
}
FILLER = "and then we moved on to other parts of the project with the rest of the team in that period"


def make_preds(n_per_theme: int = 6, interviews: int = 3, matched: int = 4) -> list[Prediction]:
    preds = []
    turn = 0
    for k in range(n_per_theme):
        for theme, text in THEMES.items():
            iv = f"Interview {k % interviews + 1}"
            preds.append(Prediction(interview=iv, turn=turn, id=f"{theme}-{k}", categories=(), phases=("data_collection",),
                                    mitigation=False, scores={"drift": 0.1}, text=text.format(i=k) + " " + FILLER))
            turn += 1
    for k in range(matched):  # covered by the catalog: never clustered
        preds.append(Prediction(interview="Interview 1", turn=turn, id=f"m-{k}", categories=("drift",), phases=(),
                                mitigation=False, scores={"drift": 0.9}, text="the data distribution drifted " * 5))
        turn += 1
    preds.append(Prediction(interview="Interview 1", turn=turn, id="hello", categories=(), phases=(), mitigation=False,
                            scores={}, text="Thank you, nice to meet you too."))
    return preds


@pytest.fixture()
def catalog():
    return load_catalog()


@pytest.fixture()
def cfg():
    return D.DiscoverConfig(min_words=5, min_cluster_size=3, cluster_ratio=6, pca_dim=8, match_threshold=None)


def test_substantive_filter_rule():
    c = D.DiscoverConfig(min_words=5)
    assert not D.is_substantive("Yes, exactly.", c)
    assert not D.is_substantive("Thank you so much, it was a pleasure to talk.", c)
    assert not D.is_substantive("Can you hear me now, is the recording on?", c)
    assert not D.is_substantive("Do you mean the data we collect for the model?", c)
    assert D.is_substantive("The labels from the vendor were wrong for a third of the images.", c)
    # a long answer that starts with thanks is still substantive
    long = "Thanks, good question. " + "We lost two weeks because the upstream schema changed without notice. " * 3
    assert D.is_substantive(long, c)


def test_config_validation_messages():
    with pytest.raises(ExtractorError, match="min_cluster_size"):
        D.DiscoverConfig(min_cluster_size=1)
    with pytest.raises(ExtractorError, match='method.*"agglomerative" or "hdbscan"'):
        D.DiscoverConfig(method="kmeans")
    with pytest.raises(ExtractorError, match="score_threshold"):
        D.DiscoverConfig(score_threshold=1.5)


def test_discover_finds_the_three_themes(catalog, cfg):
    preds = make_preds()
    res = D.run_discovery(preds, None, catalog, HashingEmbedder(), cfg)
    assert not res.message
    assert res.stats["matched_by_classifier"] == 4
    assert "hello" not in res.unmatched  # filtered as procedure talk
    groups = [{m.split("-")[0] for m in p.members} for p in res.proposals]
    assert sorted(g.pop() for g in groups if len(g) == 1) == ["docs", "gpu", "legal"]
    gpu = next(p for p in res.proposals if p.members[0].startswith("gpu"))
    assert gpu.size == 6 and gpu.n_interviews == 3
    assert {"gpu", "quota"} & set(gpu.keywords[:4])
    assert 3 <= len(gpu.quotes) <= 5 and len({q.interview for q in gpu.quotes}) == 3
    assert gpu.nearest and gpu.nearest[0]["id"] in catalog.category_ids
    assert gpu.suggestion in ("new", "variant")
    assert gpu.phases == ("data_collection",)
    assert gpu.id == D.proposal_id(gpu.members)


def test_deterministic_and_order_independent(catalog, cfg):
    preds = make_preds()
    a = [p.to_dict() for p in D.discover(preds, None, catalog, HashingEmbedder(), cfg)]
    b = [p.to_dict() for p in D.discover(list(reversed(preds)), None, catalog, HashingEmbedder(), cfg)]
    assert a and a == b


def test_proposal_roundtrip(catalog, cfg):
    p = D.discover(make_preds(), None, catalog, HashingEmbedder(), cfg)[0]
    q = D.Proposal.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q == p


def test_ctfidf_prefers_cluster_specific_terms():
    docs = ["gpu quota gpu cluster", "gpu quota waiting", "legal contract review", "legal contract lawyers",
            "team project meeting", "team project people"]
    kw = D.ctfidf_keywords(docs, [0, 0, 1, 1, -1, -1], n=3)
    assert kw[0][0][0] in ("gpu", "gpu quota") and kw[1][0][0] in ("legal", "legal contract")
    assert all(not k.startswith("team") for k, _ in kw[0] + kw[1])


def test_candidate_phrases_are_noun_phrase_like_spans():
    got = D.phrases_of("We had label drift between annotators, and it was really hard to fix the labels.")
    assert {"label drift", "label drift between annotators", "annotators", "labels"} <= got
    # no span starts or ends with a function word, a pronoun, a verb or an adverb
    assert not {"drift between", "we had", "really hard", "fix", "hard"} & got


def test_names_are_phrases_the_members_use_and_differ(catalog, cfg):
    res = D.run_discovery(make_preds(), None, catalog, HashingEmbedder(), cfg)
    texts = {p.id: p.text for p in make_preds()}
    for prop in res.proposals:
        words = " ".join(texts[m] for m in prop.members).lower()
        assert all(w in words.split() for w in prop.name.lower().split()), prop.name
    assert len({p.name for p in res.proposals}) == len(res.proposals)
    gpu = next(p for p in res.proposals if p.members[0].startswith("gpu"))
    assert {"gpu", "quota"} & set(gpu.name.lower().split())


def test_each_proposal_has_definition_quotes_and_why_not_the_nearest_entry(catalog, cfg):
    for prop in D.discover(make_preds(), None, catalog, HashingEmbedder(), cfg):
        assert prop.definition.startswith("Practitioners report problems with ") and "\u201c" in prop.definition
        assert 3 <= len(prop.quotes) <= 5
        near = prop.nearest_entry
        assert near and prop.why_not and near["name"] in prop.why_not


def test_choose_names_gives_two_like_groups_different_names():
    import numpy as np

    from extractor.discover.naming import Group

    enc = HashingEmbedder()
    texts = ("the gpu quota blocks training", "gpu quota again blocks us", "a gpu quota and the training queue")
    c = enc.encode([" ".join(texts)])[0]
    g = Group(texts, ("Interview 1", "Interview 2", "Interview 3"), c)
    names = D.choose_names([g, g], ["unrelated words here"] * 5, enc, diversity=0.5)
    assert names[0] and names[1] and names[0] != names[1]
    assert D.choose_names([Group(("uh", "um"), ("Interview 1", "Interview 2"), np.zeros(64))], [], enc) == [""]


# --- degenerate cases -------------------------------------------------------------------


def test_no_unmatched_turns(catalog, cfg):
    preds = [p for p in make_preds() if p.id.startswith("m-")]
    res = D.run_discovery(preds, None, catalog, HashingEmbedder(), cfg)
    assert res.proposals == [] and "no unmatched turns" in res.message


def test_fewer_turns_than_min_cluster_size(catalog):
    preds = make_preds(n_per_theme=1)
    res = D.run_discovery(preds, None, catalog, HashingEmbedder(), D.DiscoverConfig(min_words=5, min_cluster_size=5))
    assert res.proposals == [] and "fewer than the minimum cluster size 5" in res.message


def test_one_interview_only_warns_and_still_proposes(catalog, cfg):
    preds = make_preds(interviews=1)
    res = D.run_discovery(preds, None, catalog, HashingEmbedder(), cfg)
    assert res.proposals and all(p.n_interviews == 1 for p in res.proposals)
    assert any("one interview only" in w for w in res.warnings)


def test_empty_input(catalog, cfg):
    res = D.run_discovery([], None, catalog, HashingEmbedder(), cfg)
    assert res.proposals == [] and "no interviewee turns" in res.message


def test_single_interview_themes_dropped_when_several_interviews(catalog, cfg):
    preds = make_preds(interviews=3)
    # a theme voiced only in Interview 9
    extra = [Prediction(interview="Interview 9", turn=100 + k, id=f"solo-{k}", categories=(), phases=(), mitigation=False,
                        scores={}, text="my favourite espresso machine brews coffee beans grinder espresso " * 2)
             for k in range(4)]
    res = D.run_discovery(preds + extra, None, catalog, HashingEmbedder(), cfg)
    assert not any(m.startswith("solo") for p in res.proposals for m in p.members)
    assert res.stats["dropped_few_interviews"] >= 1


# --- review loop ------------------------------------------------------------------------


def test_accept_adds_entry_with_new_version(tmp_path, catalog, cfg):
    path = tmp_path / "catalog.yaml"
    save_catalog(catalog, path)
    p = D.discover(make_preds(), None, catalog, HashingEmbedder(), cfg)[0]
    new = P.accept_proposal(p, path, name="GPU quota waits", definition="Training blocked by shared GPU quotas.")
    assert new.version == catalog.version + 1
    e = new["gpu-quota-waits"]
    assert e.added_from == f"discover:{p.id}" and e.keywords == p.keywords
    with pytest.raises(ExtractorError, match="already entry 'gpu-quota-waits'"):
        P.accept_proposal(p, path)
    # once accepted, discovery does not propose it again
    again = D.discover(make_preds(), None, load_catalog(path), HashingEmbedder(), cfg)
    assert p.id not in {q.id for q in again}


def test_rejected_is_remembered_and_not_proposed_again(tmp_path, catalog, cfg):
    mem = tmp_path / "rejected.jsonl"
    props = D.discover(make_preds(), None, catalog, HashingEmbedder(), cfg)
    P.reject_proposal(props[0], mem, reason="not an issue")
    P.reject_proposal(props[1], mem)
    rows = P.load_rejected(mem)
    assert [r["id"] for r in rows] == [props[0].id, props[1].id] and rows[0]["reason"] == "not an issue"
    res = D.run_discovery(make_preds(), None, catalog, HashingEmbedder(), cfg, rejected=rows)
    assert {p.id for p in res.proposals}.isdisjoint({props[0].id, props[1].id})
    assert res.stats["previously_rejected"] == 2
    # a cluster that comes back with a member more is still recognised (overlap, not only id)
    bigger = replace(props[0], members=props[0].members + ("new-turn",), id="p-other")
    assert P.is_rejected(bigger, rows)


def test_apply_decisions_from_reviewed_jsonl(tmp_path, catalog, cfg):
    cat_path, mem, reviewed = tmp_path / "catalog.yaml", tmp_path / "rejected.jsonl", tmp_path / "proposals.jsonl"
    save_catalog(catalog, cat_path)
    props = D.discover(make_preds(), None, catalog, HashingEmbedder(), cfg)
    rows = [p.to_dict() for p in props]
    rows[0]["decision"], rows[0]["name"] = "accept", "Shared GPU quota"
    rows[1]["decision"] = "reject"
    reviewed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = P.apply_decisions(reviewed, cat_path, mem)
    assert done["accepted"] == ["shared-gpu-quota"] and done["rejected"] == [props[1].id]
    assert done["undecided"] == [p.id for p in props[2:]]
    assert load_catalog(cat_path).version == catalog.version + 1
    # applying the same file twice changes nothing
    again = P.apply_decisions(reviewed, cat_path, mem)
    assert again["accepted"] == [] and sorted(again["skipped"]) == sorted([props[0].id, props[1].id])
    assert len(P.load_rejected(mem)) == 1


def test_bad_decision_is_reported_with_line(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"id": "p-1", "name": "x", "members": ["a"], "decision": "maybe"}) + "\n")
    with pytest.raises(ExtractorError, match=r"p.jsonl:1: expected decision \"accept\", \"reject\", \"merge\", \"subtype\" or null, found 'maybe'"):
        P.read_proposals(f)
    f.write_text(json.dumps({"interview": "Interview 1", "turn": 0}) + "\n")
    with pytest.raises(ExtractorError, match=r"p.jsonl:1: expected a proposal with a string \"id\".*extractor discover"):
        P.read_proposals(f)


def test_report_has_table_quotes_and_nearest(catalog, cfg):
    res = D.run_discovery(make_preds(), None, catalog, HashingEmbedder(), cfg)
    md = D.render_report(res, source="preds.jsonl")
    assert "| # | Possible new code | Heard in | Closest existing code | Distinctive words |" in md
    assert md.count("\n## ") == len(res.proposals)
    assert "> — Interview 1, turn" in md and "the existing code" in md
    for jargon in ("cohesion", "level", "p-", "suggestion"):
        assert jargon not in md.lower(), jargon
    empty = D.render_report(D.run_discovery([], None, catalog, HashingEmbedder(), cfg))
    assert "No proposals" in empty


def _proposal(pid, members, *, level="cluster", parent="", name="X", keywords=("alpha", "beta", "gamma")):
    return P.Proposal(id=pid, name=name, keywords=tuple(keywords), quotes=(), size=len(members), n_interviews=2,
                      interviews=("Interview 1", "Interview 2"), members=tuple(members), level=level, parent=parent)


def test_near_duplicates_are_merged():
    cfg = D.DiscoverConfig()
    a = _proposal("p-a", [f"t{i}" for i in range(10)], name="Labels and vendors")
    b = _proposal("p-b", [f"t{i}" for i in range(1, 10)], name="Labels and vendors")  # Jaccard 0.9
    c = _proposal("p-c", [f"u{i}" for i in range(6)], name="Gpu quota")
    kept, merged = D.merge_near_duplicates([b, c, a], cfg)
    assert merged == 1 and {p.id for p in kept} == {"p-a", "p-c"}
    # a cluster that is nearly all of its theme repeats it; the theme's other cluster stays, under the theme
    theme = _proposal("p-t", [f"t{i}" for i in range(12)], level="theme", name="Labels")
    big = _proposal("p-big", [f"t{i}" for i in range(10)], parent="p-t", name="Vendors")
    small = _proposal("p-small", ["t10", "t11"], parent="p-t", name="Audits")
    kept, merged = D.merge_near_duplicates([theme, big, small], cfg)
    assert merged == 1 and {p.id: p.parent for p in kept} == {"p-t": "", "p-small": "p-t"}
    # two different proposals with one name are told apart by their next distinctive word
    x = _proposal("p-x", ["a1", "a2", "a3"], name="Data quality", keywords=("data quality", "sensors"))
    y = _proposal("p-y", ["b1", "b2", "b3"], name="Data quality", keywords=("data quality", "surveys"))
    kept, _ = D.merge_near_duplicates([x, y], cfg)
    assert sorted(p.name for p in kept) == ["Data quality (sensors)", "Data quality (surveys)"]


INTROS = ["So my role is lead engineer here, I joined the firm years ago after my phd and my background is physics {i}",
          "Well my role is lead engineer, I joined years ago after my phd, my background is physics and maths {i}",
          "My role is lead engineer and I joined years ago right after my phd, with a background in physics {i}"]


def test_background_is_never_clustered(catalog, cfg):
    preds = make_preds()
    for k in range(6):  # self-introductions at the start of three interviews
        preds.append(Prediction(interview=f"Interview {k % 3 + 1}", turn=-10 + k, id=f"intro-{k}", categories=(),
                                phases=(), mitigation=False, scores={}, text=INTROS[k % 3].format(i=k)))
    res = D.run_discovery(preds, None, catalog, HashingEmbedder(), cfg)
    assert all(res.stage[f"intro-{k}"] == "background" for k in range(6))
    assert res.stats["background"] >= 6
    assert not any(m.startswith("intro") for p in res.proposals for m in p.members)
    assert "about the speaker's background" in D.render_report(res)
    assert D.set_aside_kind(INTROS, [0.5] * 3, cfg) == "introductions"
    assert D.set_aside_kind(["Thank you, can you hear me? The recording is on."] * 3, [0.5] * 3, cfg) == "small talk"
    assert D.set_aside_kind(["The vendor labels were wrong for a third of the images."] * 3, [0.5] * 3, cfg) == ""


def test_evidence_keeps_the_problem_sentences_of_a_rambling_turn():
    text = ("My role is lead engineer and I joined the company after my PhD. We build models for retail. "
            "The real problem was that the labels from the vendor were wrong for a third of the images. "
            "It took weeks of manual checks to fix them. Anyway, that was the project.")
    got = D.evidence_window(text, 3)
    assert "labels from the vendor were wrong" in got and "manual checks" in got
    assert "My role" not in got
    assert D.evidence_window("My role is lead engineer. I joined the company after my PhD.", 3) == ""
    assert "My role" not in D.evidence_window(text, 0) and "We build models" in D.evidence_window(text, 0)


def test_turns_the_classifier_finds_no_problem_in_are_left_out(catalog, cfg):
    phase = catalog.phase_ids[0]
    preds = [replace(p, scores={**p.scores, phase: 0.05 if p.id.startswith("docs") else 0.9}) for p in make_preds()]
    res = D.run_discovery(preds, None, catalog, HashingEmbedder(), replace(cfg, relevance_threshold=0.3))
    assert all(res.stage[p.id] == "not_a_problem" for p in preds if p.id.startswith("docs"))
    assert not any(m.startswith("docs") for p in res.proposals for m in p.members)
    assert res.stats["not_a_problem"] == 6
    assert D.relevance(preds[0], catalog.phase_ids) == 0.9 and D.relevance(preds[0], ()) is None


def test_reject_memory_lives_beside_the_proposals_not_in_the_package(tmp_path, catalog, cfg):
    import extractor

    reviewed = tmp_path / "out" / "proposals.jsonl"
    reviewed.parent.mkdir()
    props = D.discover(make_preds(), None, catalog, HashingEmbedder(), cfg)
    rows = [p.to_dict() for p in props]
    rows[0]["decision"] = "reject"
    reviewed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    P.apply_decisions(reviewed, tmp_path / "unused-catalog.yaml")
    mem = P.default_rejected_path(reviewed)
    assert mem == tmp_path / "out" / "rejected_proposals.jsonl" and [r["id"] for r in P.load_rejected(mem)] == [props[0].id]
    assert P.default_rejected_path(tmp_path / "out") == mem
    assert not list(Path(extractor.__file__).resolve().parents[1].glob("**/rejected_proposals.jsonl"))
    assert not hasattr(D, "DEFAULT_REJECTED") and not hasattr(P, "DEFAULT_REJECTED")


def test_extract_leaves_out_what_was_rejected_beside_its_proposals(tmp_path, catalog):
    from extractor import extract

    preds = make_preds(n_per_theme=10)
    first, _ = extract.discover_stage(preds, None, catalog, HashingEmbedder(), tmp_path / "cache",
                                      rejected_path=P.default_rejected_path(tmp_path))
    assert first
    P.reject_proposal(first[0], P.default_rejected_path(tmp_path))
    again, _ = extract.discover_stage(preds, None, catalog, HashingEmbedder(), tmp_path / "cache",
                                      rejected_path=P.default_rejected_path(tmp_path))
    assert first[0].id not in {p.id for p in again} and len(again) < len(first)


def test_config_checks_the_new_knobs():
    with pytest.raises(ExtractorError, match='DiscoverConfig.small_talk: expected "mark", "drop" or "keep", found \'hide\''):
        D.DiscoverConfig(small_talk="hide")
    with pytest.raises(ExtractorError, match="DiscoverConfig.duplicate_overlap: expected a number in \\[0, 1\\], found 2"):
        D.DiscoverConfig(duplicate_overlap=2)


# --- CLI ----------------------------------------------------------------------------------


def _write_preds(path: Path, preds) -> None:
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in preds))


def test_cli_discover_and_review(tmp_path, monkeypatch, capsys):
    from extractor import cli

    monkeypatch.setattr(D, "cli_embedder", lambda name: HashingEmbedder())
    preds, out, report = tmp_path / "preds.jsonl", tmp_path / "proposals.jsonl", tmp_path / "proposals.md"
    _write_preds(preds, make_preds())
    cat_path, mem = tmp_path / "catalog.yaml", tmp_path / "rejected.jsonl"
    save_catalog(load_catalog(), cat_path)
    rc = cli.main(["discover", str(preds), "-o", str(out), "--report", str(report), "--catalog", str(cat_path),
                   "--rejected", str(mem), "--min-words", "5", "--min-cluster-size", "3", "--cluster-ratio", "6",
                   "--no-zero-shot"])
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) >= 3 and all(r["decision"] is None for r in rows)
    assert "Possible new code" in report.read_text()
    rows[0]["decision"] = "reject"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["discover-review", str(out), "--catalog", str(cat_path), "--rejected", str(mem)]) == 0
    assert "1 rejected" in capsys.readouterr().err
    # the rejected one is not proposed again
    out2 = tmp_path / "again.jsonl"
    assert cli.main(["discover", str(preds), "-o", str(out2), "--catalog", str(cat_path), "--rejected", str(mem),
                     "--min-words", "5", "--min-cluster-size", "3", "--cluster-ratio", "6", "--no-zero-shot"]) == 0
    assert rows[0]["id"] not in out2.read_text()


def test_cli_degenerate_case_warns_and_writes_empty_output(tmp_path, monkeypatch, capsys):
    from extractor import cli

    monkeypatch.setattr(D, "cli_embedder", lambda name: HashingEmbedder())
    preds, out = tmp_path / "preds.jsonl", tmp_path / "proposals.jsonl"
    _write_preds(preds, make_preds(n_per_theme=1))
    rc = cli.main(["discover", str(preds), "-o", str(out), "--min-words", "5", "--no-zero-shot",
                   "--rejected", str(tmp_path / "r.jsonl")])
    assert rc == 0 and out.read_text() == ""
    assert "fewer than the minimum cluster size" in capsys.readouterr().err


def test_cli_refuses_to_overwrite_and_rejects_bad_input(tmp_path, monkeypatch, capsys):
    from extractor import cli

    monkeypatch.setattr(D, "cli_embedder", lambda name: HashingEmbedder())
    preds, out = tmp_path / "preds.jsonl", tmp_path / "proposals.jsonl"
    preds.write_text(json.dumps({"interview": "Interview 1", "turn": 0}) + "\n")
    assert cli.main(["discover", str(preds), "-o", str(out)]) == 1
    assert 'preds.jsonl:1: expected field "id" of type str, found nothing' in capsys.readouterr().err
    _write_preds(preds, make_preds())
    out.write_text("keep me\n")
    assert cli.main(["discover", str(preds), "-o", str(out)]) == 1
    assert "found an existing one" in capsys.readouterr().err and out.read_text() == "keep me\n"


def test_real_encoder_groups_paraphrases(encoder, catalog):
    """The real MiniLM puts paraphrases of one invented theme together."""
    texts = {
        "a": ["Our annotators in two time zones never agreed on a shared labelling calendar, so handoffs slipped.",
              "Scheduling the labelling shifts across time zones was a constant headache for the annotation vendor.",
              "The annotation team worked in different time zones and the shift handover between labellers broke."],
        "b": ["The mobile app froze because the on-device model used too much battery and memory on old phones.",
              "On older phones the embedded model drained the battery and the app ran out of memory.",
              "Battery drain and memory pressure from the on-device model made the phone app crash."],
    }
    preds = [Prediction(interview=f"Interview {k + 1}", turn=10 * j + k, id=f"{g}{k}", categories=(), phases=(),
                        mitigation=False, scores={}, text=t)
             for j, (g, ts) in enumerate(texts.items()) for k, t in enumerate(ts)]
    c = D.DiscoverConfig(min_words=5, min_cluster_size=3, cluster_ratio=3, pca_dim=0, match_threshold=None)
    props = D.discover(preds, None, catalog, encoder, c)
    assert sorted(tuple(sorted(p.members)) for p in props) == [("a0", "a1", "a2"), ("b0", "b1", "b2")]


def test_real_end_to_end_on_uncoded_corpus_interviews(corpus, encoder, catalog):
    """The first 50 answers of two uncoded interviews -> (no classifier: empty scores) ->
    discover with the real encoder (kept small: the slow part is encoding)."""
    from extractor.jsonl import read_turns

    turns = [t for t in read_turns(corpus / "gold" / "turns.jsonl")
             if t.interview in ("Interview 16", "Interview 17") and t.is_interviewee]
    turns = [t for t in turns if t.interview == "Interview 16"][:50] + [t for t in turns if t.interview == "Interview 17"][:50]
    preds = [Prediction(interview=t.interview, turn=t.turn, id=t.id, categories=(), phases=(), mitigation=False,
                        scores={}, text=t.text, question=t.question) for t in turns]
    res = D.run_discovery(preds, None, catalog, encoder, D.DiscoverConfig())
    assert res.stats["substantive"] < len(turns)
    assert res.proposals and all(p.n_interviews >= 2 for p in res.proposals)
    assert all(3 <= len(p.quotes) <= 5 and p.keywords for p in res.proposals)


def test_themes_group_clusters_of_the_same_tree(catalog):
    c = D.DiscoverConfig(min_words=5, min_cluster_size=3, cluster_ratio=3, theme_ratio=9, pca_dim=8,
                         match_threshold=None)
    res = D.run_discovery(make_preds(), None, catalog, HashingEmbedder(), c)
    themes = [p for p in res.proposals if p.level == "theme"]
    clusters = [p for p in res.proposals if p.level == "cluster"]
    assert themes and res.stats["themes"] == len(themes)
    for t in themes:
        children = [p for p in clusters if p.parent == t.id]
        assert len(children) >= 2 and set(t.members) >= {m for p in children for m in p.members}
    assert all(p.parent in {t.id for t in themes} for p in clusters if p.parent)
    assert "(broad theme)" in D.render_report(res) and "Part of the broad theme" in D.render_report(res)
    off = D.run_discovery(make_preds(), None, catalog, HashingEmbedder(), replace(c, theme_ratio=None))
    assert {p.level for p in off.proposals} == {"cluster"} and not any(p.parent for p in off.proposals)


def test_theme_ratio_must_exceed_cluster_ratio():
    with pytest.raises(ExtractorError, match=r"DiscoverConfig.theme_ratio: expected None or a number > 12, found 5"):
        D.DiscoverConfig(cluster_ratio=12, theme_ratio=5)


def test_groups_that_are_not_about_a_problem_on_average_are_dropped(catalog, cfg):
    phase = catalog.phase_ids[0]
    # every turn passes the per-turn bar (0.2) but the docs turns sit just above it
    preds = [replace(p, scores={**p.scores, phase: 0.2 if p.id.startswith("docs") else 0.9}) for p in make_preds()]
    c = replace(cfg, relevance_threshold=0.15, group_relevance=0.25)
    res = D.run_discovery(preds, None, catalog, HashingEmbedder(), c)
    assert not any(m.startswith("docs") for p in res.proposals for m in p.members)
    assert res.stats["dropped_not_problem"] >= 1
    kept = D.run_discovery(preds, None, catalog, HashingEmbedder(), replace(c, group_relevance=None))
    assert any(m.startswith("docs") for p in kept.proposals for m in p.members)


def test_score_profiles_can_join_the_embedding(catalog, cfg):
    res = D.run_discovery(make_preds(), None, catalog, HashingEmbedder(), replace(cfg, score_weight=0.5))
    groups = [{m.split("-")[0] for m in p.members} for p in res.proposals]
    assert sorted(g.pop() for g in groups if len(g) == 1) == ["docs", "gpu", "legal"]
    with pytest.raises(ExtractorError, match=r"DiscoverConfig.score_weight: expected a number in \[0, 5\], found 9"):
        D.DiscoverConfig(score_weight=9)
    with pytest.raises(ExtractorError, match=r"DiscoverConfig.group_relevance: expected None or a number in \[0, 1\]"):
        D.DiscoverConfig(group_relevance=2.0)
