"""Grouping passages: embeddings, clustering (scikit-learn's Ward or HDBSCAN), c-TF-IDF terms."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from extractor.discover.config import DiscoverConfig

# Words of spoken transcripts that carry no topic; added to sklearn's English stop words.
FILLER_WORDS = frozenset(
    """
    uh um umm uhm hmm mm mhm ah oh okay ok yeah yep yes yup no nope like know mean right
    really actually basically kind sort stuff thing things lot lots just maybe pretty
    think guess say said saying going gonna wanna got get gets getting want wanted
    good great sure well way ve ll don didn doesn isn aren wasn weren won wouldn couldn
    shouldn let make makes made use used using need needs does did doing done time times
    also much many something someone somebody anything everything whatever sometimes
    usually probably definitely exactly obviously honestly course able bit little
    interesting question questions mentioned talk talking talked told tell
    dunno kinda sorta gotta cetera etc whatnot ones stuff alright guys
    """.split()
)


@functools.lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words and spoken fillers."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | FILLER_WORDS


def encode_unique(embedder: Any, texts: Sequence[str], progress: bool = False) -> np.ndarray:
    """Encode each distinct text once (questions repeat across answers); "" -> zero vector."""
    uniq = sorted({t for t in texts if t})
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    if uniq:
        vecs = np.asarray(embedder.encode(uniq, progress=progress), dtype=np.float32)
        pos = {t: i for i, t in enumerate(uniq)}
        for i, t in enumerate(texts):
            if t:
                out[i] = vecs[pos[t]]
    return out


def normalize_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms == 0, 1.0, norms)


def embed_texts(embedder: Any, texts: Sequence[str], questions: Sequence[str], config: DiscoverConfig,
                progress: bool = False) -> np.ndarray:
    """L2-normalised ``emb(text) + question_weight * emb(question)`` per passage."""
    X = encode_unique(embedder, texts, progress=progress)
    if config.question_weight > 0:
        X = X + config.question_weight * encode_unique(embedder, questions)
    return normalize_rows(X)


def cluster(X: np.ndarray, config: DiscoverConfig, ratio: float | None = None) -> np.ndarray:
    """Cluster labels (-1 = noise) for L2-normalised rows of ``X``, numbered by first
    occurrence; ``ratio`` overrides ``cluster_ratio`` (Ward cuts of one tree are nested)."""
    from sklearn.decomposition import PCA

    n = X.shape[0]
    Z = X
    if config.pca_dim and min(n, X.shape[1]) > config.pca_dim:
        Z = PCA(n_components=config.pca_dim, svd_solver="covariance_eigh", random_state=config.seed).fit_transform(X)
    if config.method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        labels = HDBSCAN(min_cluster_size=config.min_cluster_size, min_samples=config.min_samples,
                         copy=True).fit_predict(Z)
    else:
        from sklearn.cluster import AgglomerativeClustering

        k = max(1, min(n // config.min_cluster_size, int(round(n / (ratio or config.cluster_ratio)))))
        labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(Z) if k > 1 else np.zeros(n, int)
    mapping: dict[int, int] = {}
    for lab in np.asarray(labels, dtype=int):
        if lab >= 0 and lab not in mapping:
            mapping[int(lab)] = len(mapping)
    return np.array([mapping.get(int(lab), -1) for lab in labels], dtype=int)


def class_term_weights(docs: Sequence[str], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """c-TF-IDF (BERTopic): ``(vocabulary, weights per class, member counts per class)`` with
    classes ``sorted(set(labels))``; ``None`` when the texts hold only stop words."""
    from sklearn.feature_extraction.text import CountVectorizer

    classes = sorted(set(int(c) for c in labels))
    vec = CountVectorizer(stop_words=sorted(stop_words()), ngram_range=(1, 2),
                          token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z\-]{2,}\b", lowercase=True)
    try:
        X = vec.fit_transform(docs)
    except ValueError:  # only stop words
        return None
    binary = (X > 0).astype(np.int32)
    tf = np.vstack([np.asarray(X[labels == c].sum(axis=0)).ravel() for c in classes]).astype(float)
    df = np.vstack([np.asarray(binary[labels == c].sum(axis=0)).ravel() for c in classes])
    sizes = tf.sum(axis=1, keepdims=True)
    avg = float(sizes.mean()) or 1.0
    idf = np.log(1.0 + avg / np.maximum(tf.sum(axis=0), 1.0))
    return np.asarray(vec.get_feature_names_out()), tf / np.maximum(sizes, 1.0) * idf, df


def ctfidf_keywords(docs: Sequence[str], labels: Sequence[int] | np.ndarray, n: int = 8,
                    min_docs: int = 2) -> dict[int, list[tuple[str, float]]]:
    """The top ``n`` c-TF-IDF terms of each cluster label >= 0 (-1 = background, which only
    enters the IDF). A term must occur in ``min_docs`` member texts, so one long passage cannot
    name a cluster alone; a unigram inside a picked bigram is skipped."""
    labels_a = np.asarray(labels)
    classes = sorted(set(int(c) for c in labels_a))
    if not docs or not any(c >= 0 for c in classes):
        return {}
    got = class_term_weights(docs, labels_a)
    if got is None:
        return {c: [] for c in classes if c >= 0}
    vocab, weights, df = got
    out: dict[int, list[tuple[str, float]]] = {}
    for row, c in enumerate(classes):
        if c < 0:
            continue
        w = np.where(df[row] >= min(min_docs, int((labels_a == c).sum())), weights[row], 0.0)
        order = sorted(np.flatnonzero(w > 0), key=lambda j: (-round(float(w[j]), 12), -str(vocab[j]).count(" "), str(vocab[j])))
        picked: list[tuple[str, float]] = []
        for j in order:
            term = str(vocab[j])
            if " " not in term and any(term in p.split() for p, _ in picked if " " in p):
                continue
            picked.append((term, float(w[j])))
            if len(picked) == n:
                break
        out[c] = picked
    return out
