"""Features of interviewee turns: sentence spans, embeddings of the turn, its sentences, its
interviewer question and its neighbours, and the (turn, catalog entry) pair features the
category scorer reads (:func:`extractor.classify.scorer.pair_features`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from extractor.classify.config import ModelConfig
from extractor.classify.encoder import Span, encode_turns
from extractor.embed import Embedder
from extractor.errors import ModelError
from extractor.types import Turn

# spaCy refuses texts over its max_length; the encoder reads a turn's first 256 word pieces and
# the classifier its first ``max_sentences`` sentences, so only this prefix is split.
MAX_SPLIT_CHARS = 20_000
_NLP = None


def sentence_spans(text: str, limit: int | None = None) -> list[Span]:
    """Character spans of the sentences of ``text`` (spaCy's rule-based sentencizer, no model),
    whitespace trimmed; at least one span for a non-blank text."""
    global _NLP
    if _NLP is None:
        import spacy

        _NLP = spacy.blank("en")
        _NLP.add_pipe("sentencizer")
    spans = []
    for s in _NLP(text[:MAX_SPLIT_CHARS]).sents:
        a, z = s.start_char, s.end_char
        while a < z and text[a].isspace():
            a += 1
        while z > a and text[z - 1].isspace():
            z -= 1
        if z > a:
            spans.append((a, z))
        if limit and len(spans) >= limit:
            break
    return spans or ([(0, len(text))] if text.strip() else [(0, 0)])


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (see :func:`sentence_spans`)."""
    return [text[a:z] for a, z in sentence_spans(text)]


def describe(entry) -> str:
    """Catalog text of an entry, without placeholder definitions."""
    text = entry.describe()
    return text.replace(" TODO", "").strip() if entry.definition.strip().upper() == "TODO" else text


@dataclass
class Features:
    """What the heads, the scorer and evidence selection need, per interviewee turn."""

    index: list[int]  # positions of the interviewee turns in the input sequence
    spans: list[list[Span]]  # sentence spans per turn
    E: np.ndarray  # (n, d) turn embeddings
    sent_emb: list[np.ndarray]  # per turn (n_sent, d)
    Q: np.ndarray  # (n, d) question embeddings (zero rows without)
    C: np.ndarray  # (n, d) mean embedding of the neighbouring turns
    n_words: np.ndarray  # (n,)
    prev: np.ndarray  # row of the previous interviewee turn of the same interview, -1 if none
    nxt: np.ndarray

    def head_input(self, cat_desc: np.ndarray, phase_desc: np.ndarray) -> np.ndarray:
        """Turn-level input of the linear heads: embeddings, similarity to every catalog entry
        (turn and best sentence) and length."""
        blocks = [self.E, self.Q, self.C]
        for D in (cat_desc, phase_desc):
            sent_max = np.stack([(s @ D.T).max(axis=0) for s in self.sent_emb]) if self.sent_emb \
                else np.zeros((0, len(D)), np.float32)
            blocks += [self.E @ D.T, sent_max]
        blocks.append(np.stack([np.log1p(self.n_words), np.log1p([len(s) for s in self.spans])], axis=1)
                      if len(self.E) else np.zeros((0, 2), np.float32))
        return np.concatenate(blocks, axis=1).astype(np.float32)


def build_features(embedder: Embedder, turns: Sequence[Turn], cfg: ModelConfig, *, batch_size: int = 32,
                   progress: bool = False) -> Features:
    """Features of every interviewee turn of ``turns`` (all turns serve as context)."""
    index = [i for i, t in enumerate(turns) if t.is_interviewee]
    texts = [turns[i].text for i in index]
    spans = [sentence_spans(t, cfg.max_sentences) for t in texts]
    E, sent_emb = encode_turns(embedder, texts, spans, batch_size=batch_size, progress=progress)
    dim = E.shape[1] if len(E) else embedder.dim
    Q = embedder.encode([turns[i].question for i in index], batch_size=batch_size) if cfg.use_question \
        else np.zeros((len(index), dim), np.float32)
    C = np.zeros((len(index), dim), np.float32)
    if cfg.use_context:
        w = cfg.context_window
        ctx = [[turns[j].text for j in range(max(0, i - w), min(len(turns), i + w + 1))
                if j != i and turns[j].interview == turns[i].interview and turns[j].text] for i in index]
        uniq = sorted({t for c in ctx for t in c})
        pos = {t: k for k, t in enumerate(uniq)}
        V = embedder.encode(uniq, batch_size=batch_size) if uniq else np.zeros((0, dim), np.float32)
        for k, c in enumerate(ctx):
            if c:
                v = V[[pos[t] for t in c]].mean(axis=0)
                C[k] = v / (np.linalg.norm(v) or 1.0)
    prev, nxt = np.full(len(index), -1), np.full(len(index), -1)
    for k in range(1, len(index)):
        if turns[index[k - 1]].interview == turns[index[k]].interview:
            prev[k], nxt[k - 1] = k - 1, k
    n_words = np.array([len(t.split()) for t in texts], dtype=np.float32)
    return Features(index=index, spans=spans, E=E.astype(np.float32), sent_emb=sent_emb, Q=Q, C=C,
                    n_words=n_words, prev=prev, nxt=nxt)


@dataclass
class CatalogVectors:
    """Embeddings of the catalog's text: one description per category and per phase, and each
    category's prototypes (name, definition, keywords, examples). Saved as ``catalog.safetensors``."""

    FILES = ("catalog.safetensors",)

    cat_desc: np.ndarray  # (categories, dim)
    phase_desc: np.ndarray  # (phases, dim)
    protos: list[np.ndarray]  # per category (n_prototypes, dim)

    @classmethod
    def embed(cls, embedder: Embedder, catalog) -> CatalogVectors:
        from extractor.classify.scorer import prototype_texts

        return cls(cat_desc=embedder.encode([describe(e) for e in catalog.categories]),
                   phase_desc=embedder.encode([describe(e) for e in catalog.phases]),
                   protos=[embedder.encode(prototype_texts(e) or [describe(e)]) for e in catalog.categories])

    def save(self, writer) -> None:
        f32 = np.float32
        writer.tensors("catalog.safetensors", {
            "cat_desc": self.cat_desc.astype(f32), "phase_desc": self.phase_desc.astype(f32),
            "protos": np.concatenate(self.protos).astype(f32),
            "proto_owner": np.repeat(np.arange(len(self.protos)), [len(p) for p in self.protos]).astype(np.int32)})

    @classmethod
    def load(cls, reader) -> CatalogVectors:
        name = "catalog.safetensors"
        cat = reader.tensor(name, "cat_desc", ("categories", "dim"))
        phase = reader.tensor(name, "phase_desc", ("phases", "dim"))
        protos = reader.tensor(name, "protos", ("prototypes", "dim"))
        raw = reader.tensor(name, "proto_owner", ("prototypes",))
        owner = raw.astype(np.int64)
        nc = len(cat)
        if raw.dtype.kind not in "iu" or (owner < 0).any() or (owner >= nc).any() \
                or len(np.unique(owner)) != nc:
            raise ModelError(f"{reader.path / name}: expected tensor 'proto_owner' to give each of the {nc} "
                             "categories its prototypes, found others")
        return cls(cat_desc=cat, phase_desc=phase, protos=[protos[owner == j] for j in range(nc)])
