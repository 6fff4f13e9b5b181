"""Offline default embedder: hashed word and character n-grams, L2-normalised.

Needs no network and no model download. Deterministic across processes and machines
(scikit-learn's ``HashingVectorizer`` and ``FeatureHasher`` use MurmurHash3 with a fixed
seed), so vectors stay comparable between runs and only changed texts need new vectors.
Each text is embedded on its own: nothing is fitted on a corpus.

Versions are keyed by the model name, because the name is part of every vector's content
hash: a stored v1 vector is never compared with a v2 one, and changing the name re-embeds.

- ``jobsim-hash-ngram-v1``: words (1-2 grams, English + Albanian stop words) at weight 1,
  characters (3-5 grams within words) at weight 0.5.
- ``jobsim-hash-ngram-v2``: characters at weight 1, and seniority/grade words (senior,
  junior, lead, assistant, ii, iii, ...) dropped as stop words. Any name other than the
  three listed here keeps v2's recipe, as before, so vectors stored under it stay valid.
- ``jobsim-hash-ngram-v3`` (the default): words and per-word character 3-5-grams, built
  so that a per-text embedder gets some of what a corpus IDF gives TF-IDF:

  * stop words are short hand-written lists of English and Albanian *function* words
    (scikit-learn's list also drops "system", "fire", "bill", "call", "part", "full", ...);
    "IT" written in capitals is kept (information technology, not the pronoun);
  * **generic post words** count half: the rank (senior, junior, lead, assistant, ...) and
    the kind of post (manager, specialist, analyst, coordinator, officer, ...; with Albanian
    equivalents) name no field of work and recur in every field, which is what a low IDF
    says; v2 dropped the rank words altogether, v3 keeps both groups at weight 0.5;
  * light English stemming (plural -s/-es/-ies, -ing), so "engineering" meets "engineer";
  * sublinear term frequency ``log(1 + count)`` per word; no word bigrams (on long
    descriptions they are mostly shared boilerplate and cost precision);
  * each distinct word spreads its weight over its character n-grams with unit L2 norm
    (weight / √n-grams), so a long word does not outweigh a short one in the character part;
  * words and characters are L2-normalised apart, added at equal weight, normalised again;
    features are hashed with a random sign (``alternate_sign``), which keeps collisions from
    adding a positive bias to every pair (unsigned hashing lost 0.09 p@10 on long descriptions).

Measured with ``python -m jobsim_app.evaluate`` (BENCHMARKS.md, "Quality"): precision@10 on
NYC titles at 512 dimensions v1 0.467, v2 0.486, v3 0.508 (0.511 ± 0.003 over 20 hash
draws), TF-IDF fitted on the evaluated titles 0.508; synthetic v2 0.989, v3 0.997.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction import FeatureHasher
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
V3 = "jobsim-hash-ngram-v3"
RECIPES = {
    V1: Recipe(tuple(STOP_WORDS), WORD_WEIGHT, CHAR_WEIGHT),
    V2: Recipe(tuple(sorted(set(STOP_WORDS) | SENIORITY_WORDS)), 1.0, 1.0),
}

# -- v3 word lists (hand-written; general, not derived from any data set) -------------
# English function words: articles, prepositions, conjunctions, pronouns, auxiliaries.
V3_ENGLISH_FUNCTION_WORDS = frozenset(
    """
    a an the and or but nor so yet if then than as at by for from in into of off on onto out
    over to up upon with within without about above across after against along among amongst
    around before behind below beneath beside besides between beyond down during except inside
    near outside past per since through throughout till toward towards under underneath until
    unto via i me my mine myself we us our ours ourselves you your yours yourself yourselves he
    him his himself she her hers herself it its itself they them their theirs themselves who
    whom whose which what whatever that this these those am is are was were be been being have
    has had having do does did doing will would shall should can could may might must not no
    only own same such too very just also both each either neither every all any some few more
    most other others another here there when where why how whether while because although
    though unless however therefore thus etc eg ie
    """.split()
)
# Albanian function words, with their usual diacritic-less spellings.
V3_ALBANIAN_FUNCTION_WORDS = ALBANIAN_STOP_WORDS | frozenset(
    """
    cilat nën nen pas para gjatë gjate drejt sipas rreth midis ndërmjet ndermjet përmes permes
    kundër kunder jo mund duhet kam ke kishte ishte jam jeni ta së sa edhe apo as ndaj pra më
    shumë shume tjetër tjeter tjera tonë tone jonë jone tuaj juaj tyre ai ajo unë une im ime
    këtu ketu atje kështu keshtu gjithë gjithe gjithashtu çdo cdo nuk etj
    """.split()
)
V3_FUNCTION_WORDS = V3_ENGLISH_FUNCTION_WORDS | V3_ALBANIAN_FUNCTION_WORDS
# The kind of post, not its field (singular forms; plurals meet them through the stemmer).
GENERIC_POST_WORDS = frozenset(
    """
    manager director officer specialist analyst coordinator administrator supervisor consultant
    representative advisor adviser executive worker staff member professional generalist agent
    aide liaison leader president vice expert
    menaxher drejtor drejtues zyrtar specialist analist koordinator administrator mbikëqyrës
    mbikeqyres konsulent përfaqësues perfaqesues këshilltar keshilltar ekspert agjent punonjës
    punonjes anëtar anetar profesionist përgjegjës pergjegjes udhëheqës udheqes oficer
    """.split()
)
# Rank words (v2's list plus Albanian: asistent, ndihmës, praktikant, zëvendës, shef, kryesor,
# i/e lartë = senior, nivel = level).
V3_RANK_WORDS = SENIORITY_WORDS | frozenset(
    "asistent ndihmës ndihmes praktikant zëvendës zevendes shef kryesor lartë larte nivel".split()
)
V3_GENERIC_WORDS = GENERIC_POST_WORDS | V3_RANK_WORDS
V3_GENERIC_WEIGHT = 0.5
V3_CHAR_NGRAMS = (3, 5)
# Albanian definite/case endings, tried only to look a word up in the generic lists
# ("menaxheri" → "menaxher"); the features themselves keep the word as written.
_ALBANIAN_ENDINGS = (
    "it", "in", "ët", "et", "ve", "ës", "së", "në", "të", "ja", "i", "u", "a", "ë", "t",
)
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def stem_english(word: str) -> str:
    """Light English stemming: plural -s/-es/-ies and -ing (stems of at least 4 letters)."""
    n = len(word)
    if n <= 4 or not word.isalpha():
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if word.endswith("ing") and n >= 7:
        return word[:-3]
    return word


def is_generic(word: str, stem: str) -> bool:
    """Rank or kind-of-post word (English, or Albanian with a definite/case ending)."""
    if word in V3_GENERIC_WORDS or stem in V3_GENERIC_WORDS:
        return True
    return any(word.endswith(end) and word[: -len(end)] in V3_GENERIC_WORDS
               for end in _ALBANIAN_ENDINGS)


def v3_words(text: str) -> list[str]:
    """Lower-cased word tokens without function words; "IT" in capitals is kept."""
    return [t.lower() for t in _TOKEN.findall(text)
            if t == "IT" or t.lower() not in V3_FUNCTION_WORDS]


def v3_features(text: str) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(word features, character n-gram features) of one text, with their weights."""
    counts: Counter[str] = Counter()
    generic: dict[str, bool] = {}
    for word in v3_words(text):
        stem = stem_english(word)
        counts[stem] += 1
        if not generic.get(stem, False):
            generic[stem] = is_generic(word, stem)
    words, chars = [], {}
    low, high = V3_CHAR_NGRAMS
    for stem, count in counts.items():
        weight = math.log1p(count) * (V3_GENERIC_WEIGHT if generic[stem] else 1.0)
        words.append((stem, weight))
        padded = f" {stem} "
        grams = [padded[i:i + n] for n in range(low, high + 1) for i in range(len(padded) - n + 1)]
        share = weight / math.sqrt(len(grams))  # every stem has ≥ 2 letters: ≥ 3 grams
        for gram in grams:
            chars[gram] = chars.get(gram, 0.0) + share
    return words, list(chars.items())


class LocalEmbedder:
    """Hashed features of words and characters; the recipe is chosen by the model name."""

    def __init__(self, model: str = V3, dimensions: int = 512) -> None:
        self.model = model
        self.dimensions = dimensions
        self._v3 = model == V3
        if self._v3:
            self._hasher = FeatureHasher(n_features=dimensions, input_type="pair", alternate_sign=True)
            return
        recipe = RECIPES.get(model, RECIPES[V2])
        self._word_weight, self._char_weight = recipe.word_weight, recipe.char_weight
        common = dict(n_features=dimensions, alternate_sign=True, norm=None, lowercase=True)
        self._words = HashingVectorizer(
            analyzer="word", ngram_range=(1, 2), stop_words=list(recipe.stop_words),
            token_pattern=r"(?u)\b\w\w+\b", **common,
        )
        self._chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), **common)

    def embed(self, texts: list[str]) -> EmbeddingResult:
        if self._v3:
            dense = self._embed_v3(texts)
        else:
            words = self._words.transform(texts)
            chars = self._chars.transform(texts)
            for matrix in (words, chars):  # sublinear term frequency, sign kept
                matrix.data = np.sign(matrix.data) * np.log1p(np.abs(matrix.data))
            dense = self._word_weight * _l2(words.toarray()) + self._char_weight * _l2(chars.toarray())
        vectors = np.ascontiguousarray(_l2(dense), dtype=np.float32)
        errors = {i: "text has no features" for i in np.flatnonzero(~vectors.any(axis=1))}
        return EmbeddingResult(vectors=vectors, errors=errors)

    def _embed_v3(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions))
        features = [v3_features(text) for text in texts]
        words = self._hasher.transform(f[0] for f in features).toarray()
        chars = self._hasher.transform(f[1] for f in features).toarray()
        return _l2(words) + _l2(chars)


def _l2(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
