"""Discovery's settings and result record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from extractor.proposals import Proposal


@dataclass(frozen=True)
class DiscoverConfig:
    """Knobs of :func:`extractor.discover.run_discovery`.

    Defaults were chosen on the benchmark's *dev* categories (``scripts/bench_discover.py
    --split dev``), never on the categories it reports as held out.

    Which turns are clustered (:mod:`extractor.discover.passages`):

    - ``min_words``: a passage needs this many words; ``procedure_max_words``: greeting /
      thanks / procedure phrases only disqualify turns shorter than this;
      ``question_max_words``: a turn ending in "?" shorter than this is a question back.
    - ``relevance_threshold``: a turn describes a problem when the classifier's relevance
      signal (its best lifecycle-phase score: phases are coded on issue talk only) reaches
      it; ``None`` keeps every turn (predictions without phase scores always pass).
    - ``score_threshold``: a turn whose best category score reaches it matches the catalog;
      ``match_threshold``: cosine similarity of a passage to an entry's description that
      counts as a match (``None`` = no zero-shot step).
    - ``passage_sentences``: what is clustered of a turn: 0 = the whole turn without its
      background sentences (the default: on the dev categories it recovered more than windows),
      N = the window of N consecutive sentences with the most problem words. Quotes and the
      draft definition always show such a 3-sentence window.

    How they are grouped and described (:mod:`extractor.discover.grouping`, ``naming``):

    - ``question_weight``: a passage is represented by ``emb(passage) + question_weight *
      emb(question)``, renormalised.
    - ``score_weight``: the classifier's scores of the turn (every category and phase left in
      the catalog, L2-normalised) are appended to its embedding with this weight before
      clustering: turns about one uncatalogued issue tend to resemble the same known ones.
    - ``method``: ``"agglomerative"`` (Ward on PCA-reduced embeddings, cut at
      ``n_passages / cluster_ratio`` clusters) or ``"hdbscan"`` (scikit-learn's).
    - ``theme_ratio``: (agglomerative only) also cut the tree at ``n / theme_ratio`` and
      propose themes that unite several clusters; ``None`` (default) = clusters only.
    - ``min_cluster_size``, ``min_interviews``: smaller groups, or groups voiced by fewer
      interviews, are dropped (``min_interviews`` is lowered to 1, with a warning, when the
      input has one interview only).
    - ``variant_threshold``: a group at least this similar to an entry is a ``variant``.
    - ``duplicate_overlap``: two proposals sharing this share of their turns are one.
    - ``small_talk``: groups of introductions or small talk are ``"mark"``-ed (kept, last),
      ``"drop"``-ped (default) or ``"keep"``-t; ``intro_position``: the opening share of an
      interview where introductions are.
    - ``name_diversity``: MMR trade-off between a name candidate's fit to its group (1) and
      its difference from the names already given (0).
    """

    min_words: int = 12
    procedure_max_words: int = 30
    question_max_words: int = 30
    relevance_threshold: float | None = 0.15
    group_relevance: float | None = 0.25
    score_threshold: float = 0.5
    match_threshold: float | None = 0.6
    passage_sentences: int = 0
    question_weight: float = 0.0
    score_weight: float = 0.0
    method: str = "agglomerative"
    cluster_ratio: float = 5.0
    theme_ratio: float | None = None
    min_cluster_size: int = 4
    min_samples: int | None = None
    min_interviews: int = 2
    pca_dim: int = 32
    variant_threshold: float = 0.5
    n_keywords: int = 8
    n_quotes: int = 5
    quote_chars: int = 400
    max_proposals: int | None = None
    reject_overlap: float = 0.5
    duplicate_overlap: float = 0.6
    small_talk: str = "drop"
    intro_position: float = 0.12
    name_diversity: float = 0.7
    seed: int = 42

    def __post_init__(self) -> None:
        from extractor.config import Int, Num, OneOf, Opt, check_fields

        ratio = float(self.cluster_ratio) if isinstance(self.cluster_ratio, (int, float)) else 1.0
        check_fields(self, {
            **dict.fromkeys(("min_words", "procedure_max_words", "question_max_words", "pca_dim",
                             "passage_sentences"), Int(0)),
            **dict.fromkeys(("min_interviews", "n_keywords", "quote_chars"), Int(1)),
            "min_cluster_size": Int(2), "n_quotes": Int(1, 20),
            "min_samples": Opt(Int(1)), "max_proposals": Opt(Int(1)),
            **dict.fromkeys(("score_threshold", "variant_threshold", "reject_overlap", "duplicate_overlap",
                             "intro_position", "name_diversity"), Num(0, 1)),
            "relevance_threshold": Opt(Num(0, 1)), "group_relevance": Opt(Num(0, 1)),
            "match_threshold": Opt(Num(-1, 1)), "small_talk": OneOf(("mark", "drop", "keep")),
            "method": OneOf(("agglomerative", "hdbscan")),
            "question_weight": Num(0, 2), "score_weight": Num(0, 5), "cluster_ratio": Num(1), "seed": Int(None),
            "theme_ratio": Opt(Num(ratio, lo_open=True)),
        })


@dataclass
class DiscoveryResult:
    """What :func:`~extractor.discover.run_discovery` found, with counts of every filter and a
    message for the degenerate cases (``message`` is "" when proposals could be made)."""

    proposals: list[Proposal]
    stats: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # ids of the clustered turns
    # where each turn left the pipeline: "short_or_procedure", "background", "not_a_problem",
    # "classifier", "zero_shot", "unmatched"
    stage: dict[str, str] = field(default_factory=dict)


def config_from_kwargs(**kwargs: Any) -> DiscoverConfig:
    """A config from keyword arguments, ignoring ``None`` values (CLI options not given)."""
    from extractor.config import from_mapping

    return from_mapping(DiscoverConfig, kwargs, skip_none=True)
