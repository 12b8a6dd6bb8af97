"""Every numeric command-line setting, declared once: flag, default, accepted range and help.

The commands add their options from :data:`SETTINGS` (``SETTINGS["segment:max_mb"].add_to(p)``);
values are parsed and checked by the rule, so ``--max-mb nan`` or ``--port 70000`` is a
one-line usage error. Settings owned by a validated config dataclass (``TrainConfig``,
``DiscoverConfig``) take their default from that class and leave the range to it (one
line too: ``DiscoverConfig.min_words: expected an integer >= 0, found -1``).
``python -m extractor.cli.settings`` prints the table that docs/extraction.md carries.
"""

from __future__ import annotations

from extractor.config import Int, Num, Opt, Setting, settings_table

TrainConfig, DiscoverConfig = "extractor.classify.config:TrainConfig", "extractor.discover:DiscoverConfig"

ANY_INT, ANY_NUM = Int(None), Num()

SETTINGS: dict[str, Setting] = {
    "segment:max_mb": Setting("--max-mb", Num(0), 64.0, "refuse transcript files larger than this many MiB "
                              "(0 = no limit)", metavar="MB", wording="a size in MiB >= 0"),
    "predict:batch_size": Setting("--batch-size", Int(1), 256, "turns per batch", wording="a positive integer"),
    "review export:limit": Setting("--limit", Opt(Int(0)), None, "add at most N new tasks", metavar="N",
                                     wording="a count >= 0"),
    "review export:seed": Setting("--seed", ANY_INT, 0, "seed of --order random"),
    "review serve:port": Setting("--port", Int(0, 65535), 8765, "port on 127.0.0.1 (0 picks a free one)",
                                    wording="a port number 0-65535"),
    "train:steps": Setting("--steps", ANY_INT, None, "adapter fine-tuning steps (with --from: its warm_steps, 60)",
                           owner=TrainConfig),
    "train:seed": Setting("--seed", ANY_INT, None, "random seed", owner=TrainConfig),
    "evaluate:cv": Setting("--cv", Opt(Int(2)), None, "train and score K models, each holding out a group of "
                           "whole interviews", metavar="K", wording="at least 2 folds"),
    "evaluate:seed": Setting("--seed", ANY_INT, 42, "with --cv: seed of the folds and models"),
    **{f"discover:{name}": Setting("--" + name.replace("_", "-"), rule, None, text, owner=DiscoverConfig)
       for name, rule, text in (
           ("min_words", ANY_INT, "words a substantive turn needs"),
           ("min_cluster_size", ANY_INT, "smallest proposal, in turns"),
           ("min_interviews", ANY_INT, "interviews a proposal must come from"),
           ("score_threshold", ANY_NUM, "classifier score that counts as a match"),
           ("relevance_threshold", ANY_NUM, "classifier relevance (best phase score) a turn needs to count as "
            "problem talk"),
           ("match_threshold", ANY_NUM, "cosine similarity to an entry description that counts as a match"),
           ("cluster_ratio", ANY_NUM, "agglomerative: unmatched turns per cluster"),
           ("theme_ratio", ANY_NUM, "agglomerative: also propose broad themes of about N turns grouping clusters"),
           ("max_proposals", ANY_INT, "keep the strongest N proposals"),
           ("seed", ANY_INT, "random seed"))},
}

if __name__ == "__main__":  # pragma: no cover - the docs' table
    print(settings_table(SETTINGS), end="")
