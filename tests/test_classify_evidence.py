"""extractor.classify.evidence: passages of 1-3 sentences, at least 8 words, never a filler."""

import numpy as np

from extractor.classify.evidence import best_span, is_filler, words
from extractor.classify.features import sentence_spans

TURN = ("Okay. Yeah. So the labels from the vendor were wrong for half of the images. "
        "We relabelled them by hand. Uh, quality issue.")


def test_fillers():
    assert is_filler("Okay.") and is_filler("Uh, quality issue.") and is_filler("Yes, I think so.")
    assert not is_filler("The labels from the vendor were wrong.")


def test_span_skips_a_filler_that_scores_best_and_has_offsets():
    spans = sentence_spans(TURN)
    scores = np.array([0.9, 0.9, 0.5, 0.4, 0.95])  # the fillers match the category text best
    a, z = best_span(TURN, spans, scores)
    assert TURN[a:z] == "So the labels from the vendor were wrong for half of the images."
    assert words(TURN[a:z]) >= 8


def test_span_grows_to_eight_words_towards_the_better_neighbour():
    text = "We had drift. The sensors aged, so readings moved. Nobody noticed for months."
    spans = sentence_spans(text)
    a, z = best_span(text, spans, np.array([0.9, 0.2, 0.6]))
    assert text[a:z] == "We had drift. The sensors aged, so readings moved."
    assert 8 <= words(text[a:z])


def test_short_turn_is_its_own_evidence():
    text = "Data drift, mostly."
    assert best_span(text, sentence_spans(text), np.array([0.1])) == (0, len(text))
