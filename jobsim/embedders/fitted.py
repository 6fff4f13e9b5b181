"""Corpus-fitted offline embedder: document frequencies, boilerplate suppression, LSA.

``fit_model(texts, dimensions, companies, seed)`` learns from the corpus the pipeline serves;
``FittedEmbedder(model).embed(texts)`` embeds with it, deterministically: the vector of a
text depends only on the text and the model, whose ``version`` (a hash of its bytes) is the
embedder's model name, so stored vectors never drift while the version stays the same.

A text is read as the pipeline writes it (:mod:`jobsim.embedders.fitted_text`): the first
line is the title, the other lines the body. Each text gives these sparse parts:

- **body words**: light English stems without function words (English and Albanian), of the
  body's distinct lines weighted by their multiplicity, dropped when they fall inside a
  **boilerplate shingle** (a run of 3 words that recurs in at least max(5, 0.5 %) of the
  fitted postings: equal-opportunity statements, benefit paragraphs, a company's blurb);
  weight ``log(1 + tf) · idf`` (idf fitted, words in fewer than 2 postings dropped), rank and
  kind-of-post words (manager, specialist, …; :data:`jobsim.embedders.local.V3_GENERIC_WORDS`)
  at ``generic_weight`` (0.3; 0.5 in format 1);
- **title words**: the same stems of the title at ``log(1 + tf)`` and the generic weight,
  without idf (titles are short: a rare title word is more often a name than a field); in the
  LSA input the generic title words weigh ``title_lsa_generic_weight`` (1.5, format 2) instead,
  so the LSA block groups kinds of post while the lexical block follows the field;
- **title characters**: 3–5-grams of each title stem sharing its weight (as v3);
- **title bigrams**: adjacent title stems (function words skipped) at ``log(1 + tf)``, mixed
  into the title words at ``title_bigram_weight`` (0.5) of their norm (format 2).

The vector is three blocks side by side, then L2-normalised: an **LSA block** (``lsa_dims`` =
128 columns, at most one per 20 fitted postings in format 2: L2(title words) + L2(body
words) on the 16,384 most frequent features, times the top right singular vectors of a
seeded sample of the fitted postings, L2-normalised), an **employer block** (format 3,
:mod:`jobsim.embedders.fitted_company`: ``company_dims`` = 32 columns at most, weight
``company_weight`` = 2: the title words' fitted company profiles summed, L2-normalised;
empty without companies or titles) and a **lexical block** (the other columns: 2 ·
L2(L2(title words) + 1.5 · L2(title characters)) + 0.25 · L2(body words), each hashed with a
random sign, so words never seen in the corpus still count). The weights are :class:`FitParams` defaults, stored in the
model; BENCHMARKS.md ("Quality") and docs/fitted-embedder-tuning.md have what each part gave. Rows without
any feature come back as errors ("text has no features").

Format 1 models (fitted before ``lsa_postings_per_dim``, ``title_bigram_weight`` and
``title_lsa_generic_weight`` existed) read those three at
:data:`~jobsim.embedders.fitted_model.LEGACY_PARAMS` (no LSA cap, no bigrams, generic title
words at ``generic_weight`` in the LSA input too) and keep their ``generic_weight`` (0.5), so
their version and vectors do not change; format 1 and 2 models read the company knobs there
too (no employer block).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from itertools import repeat

import numpy as np
import scipy.sparse as sp
from sklearn.utils import murmurhash3_32

from jobsim.embedders import EmbeddingResult
from jobsim.embedders.fitted_model import FitParams, FittedModel
from jobsim.embedders.fitted_text import covered, feature_of, shingle_hashes, split_text, tokens

log = logging.getLogger(__name__)
__all__ = ["FitParams", "FittedEmbedder", "FittedModel", "fit_model"]
_CACHE_LIMIT = 500_000


def _title_features(title: str, cache: dict[str, tuple[str, bool] | None]) -> list[tuple[str, bool]]:
    """(stem, rank / kind-of-post word) of each title token that has a feature, in order."""
    out = []
    for token in tokens(title):
        feature = cache.get(token, False)
        if feature is False:
            feature = cache[token] = feature_of(token)
        if feature is not None:
            out.append(feature)
    return out


def title_stems(title: str, cache: dict[str, tuple[str, bool] | None]) -> dict[str, tuple[float, bool]]:
    """stem → (log(1 + tf), rank / kind-of-post word) of a title (no idf, no generic weight)."""
    counts: Counter[str] = Counter()
    generic: dict[str, bool] = {}
    for stem, is_generic in _title_features(title, cache):
        counts[stem] += 1
        generic[stem] = generic.get(stem, False) or is_generic
    return {s: (math.log1p(c), generic[s]) for s, c in counts.items()}


def title_bigrams(title: str, cache: dict[str, tuple[str, bool] | None]) -> dict[str, float]:
    """"a b" → log(1 + tf) of each pair of adjacent title stems (function words skipped)."""
    stems = [stem for stem, _ in _title_features(title, cache)]
    counts = Counter(f"{a} {b}" for a, b in zip(stems, stems[1:]))
    return {g: math.log1p(c) for g, c in counts.items()}


def char_grams(stem: str) -> list[str]:
    """Character 3–5-grams of `` stem `` (padded with spaces, as v3)."""
    padded = f" {stem} "
    return [padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)]


def row_l2(matrix: sp.csr_matrix | np.ndarray) -> sp.csr_matrix | np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    if sp.issparse(matrix):
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        return sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ matrix
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


class FittedEmbedder:
    """Embeds with a :class:`FittedModel`; satisfies :class:`jobsim.embedders.Embedder`."""

    def __init__(self, model: FittedModel) -> None:
        self.fitted = model
        self.model = model.version
        self.dimensions = model.dimensions
        p = model.params
        self._p = p
        self._lex_dims = model.dimensions - model.lsa_dims - model.company_dims
        self._token_id = {t: i for i, t in enumerate(model.tokens)}
        self._feature_id = {f: i for i, f in enumerate(model.features)}
        # token → feature, with a trailing -1 so that raw id -1 (unknown, separator) maps to -1
        self._token_feature = np.append(model.token_feature, -1).astype(np.int64)
        generic = np.where(model.generic, p.generic_weight, 1.0)
        self._body_weight = (generic * model.idf.astype(np.float64) ** p.body_idf_power)
        self._title_idf = model.idf.astype(np.float64) ** p.title_idf_power
        self._title_idf_unseen = float(model.idf.max(initial=1.0)) ** p.title_idf_power
        self._feature_hash = self._hash_matrix(list(model.features))
        self._lsa = model.lsa.astype(np.float32)
        self._company = model.company.astype(np.float32)
        self._cache: dict[str, tuple[str, bool] | None] = {}

    def embed(self, texts: list[str]) -> EmbeddingResult:
        n = len(texts)
        if len(self._cache) > _CACHE_LIMIT:  # title tokens seen: bounded in a long-lived process
            self._cache.clear()
        parts = [split_text(t) for t in texts]
        body = self.body_matrix([p[1] for p in parts])
        title_vocab, title_words, title = self._titles([p[0] for p in parts])
        p = self._p
        lsa = self._lsa_block(row_l2(title_vocab) + row_l2(body))
        if self._lex_dims:
            lexical = p.title_lexical_weight * row_l2(title) \
                + p.body_lexical_weight * row_l2((body @ self._feature_hash).toarray())
        else:
            lexical = np.zeros((n, 0))
        # employer block (format 3): the title words' centred company profiles, summed, ÷ L2(title words)
        # (not normalised by its own norm: words every employer uses in proportion add little)
        company = np.asarray(row_l2(title_words)[:, : self._company.shape[0]] @ self._company, dtype=np.float64)
        dense = np.hstack([p.lsa_weight * row_l2(lsa), p.company_weight * company, lexical])
        vectors = np.ascontiguousarray(row_l2(dense), dtype=np.float32)
        errors = {int(i): "text has no features" for i in np.flatnonzero(~vectors.any(axis=1))}
        return EmbeddingResult(vectors=vectors, errors=errors)

    def _hash_matrix(self, names: list[str]) -> sp.csr_matrix:
        """(names, lexical dims) signed hashing matrix: each name in ``hash_slots`` slots."""
        slots = max(1, self._p.hash_slots)
        lex = max(1, self._lex_dims)
        rows = np.repeat(np.arange(len(names)), slots)
        codes = np.array([murmurhash3_32(name, seed=self._p.hash_seed + j) for name in names for j in range(slots)],
                         dtype=np.int64).reshape(-1)
        values = np.where(codes >= 0, 1.0, -1.0) / math.sqrt(slots)
        return sp.csr_matrix((values, (rows, np.abs(codes) % lex)), shape=(len(names), lex))

    def _char_matrix(self, stems: list[str]) -> sp.csr_matrix:
        """(stems, lexical dims): each stem's character n-grams hashed, sharing weight 1 (÷√n)."""
        index: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, stem in enumerate(stems):
            grams = char_grams(stem)
            share = 1.0 / math.sqrt(len(grams))
            for gram in grams:
                rows.append(i)
                cols.append(index.setdefault(gram, len(index)))
                vals.append(share)
        grams = sp.csr_matrix((vals, (rows, cols)), shape=(len(stems), len(index)))
        return grams @ self._hash_matrix(list(index))

    def word_matrix(self, texts: list[str]) -> sp.csr_matrix:
        """(texts, features) L2(title words) + L2(body words): the input of the LSA block."""
        parts = [split_text(t) for t in texts]
        return row_l2(self._titles([p[0] for p in parts])[0]) + row_l2(self.body_matrix([p[1] for p in parts]))

    def _lsa_block(self, words: sp.csr_matrix) -> np.ndarray:
        if not self.fitted.lsa_dims:
            return np.zeros((words.shape[0], 0))
        rows = self._lsa.shape[0]
        return np.asarray(words[:, :rows] @ self._lsa, dtype=np.float64)

    def _titles(self, titles: list[str]) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """Title words on the vocabulary (LSA input), the same at the lexical block's weights
        (input of the company block), and the title's lexical block:
        L2(words hashed) + char_weight·L2(characters hashed)."""
        index: dict[str, int] = {}
        rows, cols, vals, lsa_vals = [], [], [], []
        gw, lsa_gw = self._p.generic_weight, self._p.title_lsa_generic_weight
        for i, title in enumerate(titles):
            for stem, (tf, generic) in title_stems(title, self._cache).items():
                rows.append(i)
                cols.append(index.setdefault(stem, len(index)))
                vals.append(tf * gw if generic else tf)
                lsa_vals.append(tf * (lsa_gw if lsa_gw >= 0 else gw) if generic else tf)
        stems = list(index)
        weights = sp.csr_matrix((vals, (rows, cols)), shape=(len(titles), len(stems)))
        lsa_weights = weights if lsa_gw < 0 else sp.csr_matrix((lsa_vals, (rows, cols)), shape=weights.shape)
        known = [(u, j) for u, s in enumerate(stems) if (j := self._feature_id.get(s)) is not None]
        to_vocab = sp.csr_matrix(([self._title_idf[j] for _, j in known], ([u for u, _ in known], [j for _, j in known])),
                                 shape=(len(stems), len(self.fitted.features)))
        on_vocab = weights @ sp.csr_matrix((np.ones(len(known)), ([u for u, _ in known], [j for _, j in known])),
                                           shape=to_vocab.shape)
        if not self._lex_dims:
            return lsa_weights @ to_vocab, on_vocab, np.zeros((len(titles), 0))
        # idf of each title stem (unseen stems: the idf of a single posting), ^ title_idf_power
        idf = np.full(len(stems), self._title_idf_unseen)
        idf[[u for u, _ in known]] = [self._title_idf[j] for _, j in known]
        scaled = weights @ sp.diags(idf)
        words = (scaled @ self._hash_matrix(stems)).toarray()
        if self._p.title_bigram_weight > 0:
            words = row_l2(words) + self._p.title_bigram_weight * row_l2(self._bigram_block(titles))
        chars = (scaled @ self._char_matrix(stems)).toarray()
        return lsa_weights @ to_vocab, on_vocab, row_l2(words) + self._p.char_weight * row_l2(chars)

    def _bigram_block(self, titles: list[str]) -> np.ndarray:
        """(titles, lexical dims) hashed title bigrams (no idf)."""
        index: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, title in enumerate(titles):
            for gram, weight in title_bigrams(title, self._cache).items():
                rows.append(i)
                cols.append(index.setdefault(gram, len(index)))
                vals.append(weight)
        grams = sp.csr_matrix((vals, (rows, cols)), shape=(len(titles), len(index)))
        return (grams @ self._hash_matrix(list(index))).toarray()

    def body_matrix(self, bodies: list[list[tuple[str, int]]]) -> sp.csr_matrix:
        """(texts, features) body weights: log(1 + tf)·idf·generic, boilerplate left out."""
        get = self._token_id.get
        ids: list[int] = []
        lengths, mults, docs = [], [], []
        for doc, lines in enumerate(bodies):
            for line, mult in lines:
                toks = tokens(line)
                ids.extend(map(get, toks, repeat(-1)))
                ids.append(-1)
                lengths.append(len(toks) + 1)
                mults.append(mult)
                docs.append(doc)
        shape = (len(bodies), len(self.fitted.features))
        if not ids:
            return sp.csr_matrix(shape)
        raw = np.array(ids, dtype=np.int64)
        weight = np.repeat(np.array(mults, np.float64), lengths)
        doc_of = np.repeat(np.array(docs, np.int64), lengths)
        if len(self.fitted.boilerplate):
            n = self._p.shingle
            starts = np.flatnonzero(np.isin(shingle_hashes(raw, n), self.fitted.boilerplate))
            weight[covered(starts, n, len(raw))] = 0.0
        feature = self._token_feature[raw]
        keep = (feature >= 0) & (weight > 0)
        key = doc_of[keep] * shape[1] + feature[keep]
        uniq, inverse = np.unique(key, return_inverse=True)
        tf = np.bincount(inverse, weights=weight[keep])
        rows, cols = np.divmod(uniq, shape[1])
        return sp.csr_matrix((np.log1p(tf) * self._body_weight[cols], (rows, cols)), shape=shape)


def fit_model(texts: list[str], dimensions: int, companies: list[str | None] | None = None,
              seed: int = 0, params: FitParams | None = None) -> FittedModel:
    """Fit a model on ``texts`` (the pipeline's embedding texts); deterministic given
    ``texts``, ``companies``, ``seed`` and ``params``. See :mod:`jobsim.embedders.fitted_fit`."""
    from jobsim.embedders.fitted_fit import fit

    return fit(texts, dimensions, companies, seed, params or FitParams())
