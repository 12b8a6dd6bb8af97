"""extractor.classify.features: sentence spans and turn features."""

import time

import numpy as np

from extractor.classify import ModelConfig
from extractor.classify.features import build_features, sentence_spans, split_sentences
from extractor.embed import HashingEmbedder
from extractor.types import Turn


def test_split_sentences_and_spans():
    text = "  One thing. Another thing!  A third?"
    assert split_sentences(text) == ["One thing.", "Another thing!", "A third?"]
    assert [text[a:z] for a, z in sentence_spans(text)] == split_sentences(text)
    assert split_sentences("") == [""]
    assert sentence_spans("One. Two. Three. Four.", limit=2) == [(0, 4), (5, 9)]


def test_a_turn_longer_than_spacys_limit_is_split_quickly():
    text = "The data was noisy. " * 120_000  # 2.4 million characters
    t0 = time.time()
    spans = sentence_spans(text, limit=40)
    assert len(spans) == 40 and time.time() - t0 < 10


def test_features_use_questions_and_neighbours_of_the_same_interview():
    turns = [Turn("A", 0, "interviewer", "What went wrong?"), Turn("A", 1, "interviewee", "Labels were noisy.",
             question="What went wrong?"), Turn("B", 0, "interviewee", "Nothing much.")]
    f = build_features(HashingEmbedder(16), turns, ModelConfig(base_model="hashing"))
    assert f.index == [1, 2]
    assert np.abs(f.Q[0]).sum() > 0 and np.abs(f.Q[1]).sum() == 0
    assert f.prev.tolist() == [-1, -1] and f.nxt.tolist() == [-1, -1]  # different interviews
    assert f.head_input(np.eye(2, 16), np.eye(1, 16)).shape[0] == 2
