"""Offline default embedder: hashed word and character n-grams, L2-normalised.

Needs no network and no model download. Deterministic across processes and machines
(scikit-learn's ``HashingVectorizer`` uses MurmurHash3 with a fixed seed), so vectors
stay comparable between runs and only changed texts need new vectors.

Versions are keyed by the model name, because the name is part of every vector's content
hash: a stored v1 vector is never compared with a v2 one, and changing the name re-embeds.

- ``jobsim-hash-ngram-v1``: words (1-2 grams, English + Albanian stop words) at weight 1,
  characters (3-5 grams within words) at weight 0.5.
- ``jobsim-hash-ngram-v2`` (the default for any other name): characters at weight 1, and
  seniority/grade words (senior, junior, lead, assistant, ii, iii, ...) dropped as stop
  words: the experience level is scored by the context bonus, so the text vector should
  match jobs on what the work is. Measured with ``python -m jobsim.evaluate`` (BENCHMARKS.md,
  "Quality"): precision@10 on NYC titles 0.468 → 0.486 at 512 dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, HashingVectorizer

from jobsim.embedders import EmbeddingResult

# Frequent Albanian function words (articles, prepositions, conjunctions, pronouns).
ALBANIAN_STOP_WORDS = frozenset(
    """
    dhe e të te në ne për per me nga një nje që qe i është eshte jemi janë jane do
    ose por si nëse nese ku kur ka kemi kanë kane u se deri mbi pa prej tek tij saj
    ju ne ata ato ky kjo këtë kete këto keto atë ate cili cila cilët të_tjerë
    """.split()
)
# Seniority and grade words (English; Albanian titles carry no such prefix in practice).
SENIORITY_WORDS = frozenset(
    "senior junior lead head chief assistant associate deputy principal intern trainee level "
    "ii iii iv".split()
)
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | ALBANIAN_STOP_WORDS)
WORD_WEIGHT = 1.0
CHAR_WEIGHT = 0.5  # v1


@dataclass(frozen=True)
class Recipe:
    stop_words: tuple[str, ...]
    word_weight: float
    char_weight: float


V1 = "jobsim-hash-ngram-v1"
V2 = "jobsim-hash-ngram-v2"
RECIPES = {
    V1: Recipe(tuple(STOP_WORDS), WORD_WEIGHT, CHAR_WEIGHT),
    V2: Recipe(tuple(sorted(set(STOP_WORDS) | SENIORITY_WORDS)), 1.0, 1.0),
}


class LocalEmbedder:
    """Hashed TF features of words (1-2 grams) and characters (3-5 grams within words)."""

    def __init__(self, model: str = V2, dimensions: int = 512) -> None:
        self.model = model
        self.dimensions = dimensions
        recipe = RECIPES.get(model, RECIPES[V2])
        self._word_weight, self._char_weight = recipe.word_weight, recipe.char_weight
        common = dict(n_features=dimensions, alternate_sign=True, norm=None, lowercase=True)
        self._words = HashingVectorizer(
            analyzer="word", ngram_range=(1, 2), stop_words=list(recipe.stop_words),
            token_pattern=r"(?u)\b\w\w+\b", **common,
        )
        self._chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), **common)

    def embed(self, texts: list[str]) -> EmbeddingResult:
        words = self._words.transform(texts)
        chars = self._chars.transform(texts)
        for matrix in (words, chars):  # sublinear term frequency, sign kept
            matrix.data = np.sign(matrix.data) * np.log1p(np.abs(matrix.data))
        dense = self._word_weight * _l2(words.toarray()) + self._char_weight * _l2(chars.toarray())
        vectors = np.ascontiguousarray(_l2(dense), dtype=np.float32)
        errors = {i: "text has no features" for i in np.flatnonzero(~vectors.any(axis=1))}
        return EmbeddingResult(vectors=vectors, errors=errors)


def _l2(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
