"""The offline local embedder: v1/v2 vectors frozen, v3 against a hand-built reference."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from sklearn.utils import murmurhash3_32

from jobsim.embedders import local
from jobsim.embedders.local import V1, V2, V3, LocalEmbedder
from jobsim.settings import EmbeddingSettings
from jobsim_app.evaluate.datasets import Dataset
from jobsim_app.evaluate.methods import embed as evaluate_embed

FROZEN_TEXTS = ["Senior Data Analyst", "Infermier në spital", "Python developer II"]
# Non-zero entries (index: value) of the 512-d vectors of FROZEN_TEXTS, printed by the v1/v2
# code as it was before v3 was added: stored vectors must keep matching what the code makes.
FROZEN = {
    "jobsim-hash-ngram-v1": [
        {0: 0.071913, 17: 0.071913, 39: 0.388659, 58: 0.071913, 134: -0.071913, 143: -0.388659,
         153: -0.113979, 162: 0.071913, 163: 0.071913, 165: 0.071913, 166: -0.071913,
         173: 0.071913, 209: -0.071913, 211: 0.460572, 213: -0.071913, 230: -0.071913,
         231: 0.388659, 235: -0.071913, 252: -0.071913, 276: 0.071913, 297: 0.071913,
         331: -0.071913, 340: -0.071913, 355: 0.071913, 375: -0.071913, 390: 0.388659,
         392: -0.071913, 402: -0.071913, 408: 0.071913, 409: 0.071913, 439: 0.071913,
         444: -0.071913, 463: 0.071913, 468: 0.071913, 470: -0.071913, 485: -0.071913,
         486: 0.071913, 488: -0.071913, 495: 0.071913},
        {19: -0.071605, 26: 0.071605, 31: 0.071605, 51: -0.071605, 58: -0.071605, 66: -0.071605,
         72: 0.071605, 94: 0.071605, 95: -0.071605, 97: -0.071605, 98: -0.071605, 99: 0.071605,
         156: -0.071605, 163: -0.071605, 175: 0.071605, 178: 0.071605, 185: -0.071605,
         194: -0.071605, 199: 0.071605, 218: -0.535845, 245: -0.071605, 247: -0.071605,
         251: 0.071605, 275: 0.071605, 280: -0.071605, 283: 0.071605, 291: -0.071605,
         296: -0.071605, 341: 0.071605, 350: -0.071605, 356: -0.071605, 366: -0.071605,
         376: 0.071605, 392: 0.535845, 419: 0.071605, 423: 0.071605, 446: -0.071605, 462: 0.071605,
         463: -0.071605, 482: -0.071605, 484: -0.464240, 505: 0.071605, 508: 0.071605,
         509: 0.071605},
        {1: 0.070994, 4: 0.070994, 11: 0.070994, 13: -0.340526, 32: 0.070994, 45: 0.070994,
         60: -0.411520, 76: 0.070994, 95: -0.070994, 134: -0.070994, 138: 0.070994, 146: -0.070994,
         157: 0.070994, 162: -0.070994, 174: -0.070994, 175: -0.070994, 193: 0.070994,
         195: -0.411520, 217: -0.070994, 218: 0.411520, 220: 0.070994, 225: 0.070994,
         244: 0.070994, 246: -0.070994, 257: 0.070994, 260: 0.070994, 267: -0.070994,
         271: 0.070994, 275: 0.070994, 290: 0.070994, 301: 0.411520, 303: 0.070994, 306: 0.070994,
         309: 0.070994, 340: -0.070994, 347: -0.070994, 353: 0.070994, 368: 0.070994,
         397: -0.070994, 400: -0.070994, 452: -0.070994, 468: -0.070994, 482: 0.070994,
         487: 0.070994, 490: 0.070994, 509: 0.070994},
    ],
    "jobsim-hash-ngram-v2": [
        {0: 0.111802, 17: 0.111802, 39: 0.390040, 58: 0.111802, 134: -0.111802, 153: -0.177203,
         162: 0.111802, 163: 0.111802, 165: 0.111802, 166: -0.111802, 173: 0.111802,
         209: -0.111802, 211: 0.501842, 213: -0.111802, 230: -0.111802, 231: 0.390040,
         235: -0.111802, 252: -0.111802, 276: 0.111802, 297: 0.111802, 331: -0.111802,
         340: -0.111802, 355: 0.111802, 375: -0.111802, 392: -0.111802, 402: -0.111802,
         408: 0.111802, 409: 0.111802, 439: 0.111802, 444: -0.111802, 463: 0.111802, 468: 0.111802,
         470: -0.111802, 485: -0.111802, 486: 0.111802, 488: -0.111802, 495: 0.111802},
        {19: -0.114320, 26: 0.114320, 31: 0.114320, 51: -0.114320, 58: -0.114320, 66: -0.114320,
         72: 0.114320, 94: 0.114320, 95: -0.114320, 97: -0.114320, 98: -0.114320, 99: 0.114320,
         156: -0.114320, 163: -0.114320, 175: 0.114320, 178: 0.114320, 185: -0.114320,
         194: -0.114320, 199: 0.114320, 218: -0.427746, 245: -0.114320, 247: -0.114320,
         251: 0.114320, 275: 0.114320, 280: -0.114320, 283: 0.114320, 291: -0.114320,
         296: -0.114320, 341: 0.114320, 350: -0.114320, 356: -0.114320, 366: -0.114320,
         376: 0.114320, 392: 0.427746, 419: 0.114320, 423: 0.114320, 446: -0.114320, 462: 0.114320,
         463: -0.114320, 482: -0.114320, 484: -0.313426, 505: 0.114320, 508: 0.114320,
         509: 0.114320},
        {1: 0.114320, 4: 0.114320, 11: 0.114320, 13: -0.313426, 32: 0.114320, 45: 0.114320,
         76: 0.114320, 95: -0.114320, 134: -0.114320, 138: 0.114320, 146: -0.114320, 157: 0.114320,
         162: -0.114320, 174: -0.114320, 175: -0.114320, 193: 0.114320, 217: -0.114320,
         218: 0.427746, 220: 0.114320, 225: 0.114320, 244: 0.114320, 246: -0.114320, 257: 0.114320,
         260: 0.114320, 267: -0.114320, 271: 0.114320, 275: 0.114320, 290: 0.114320, 301: 0.427746,
         303: 0.114320, 306: 0.114320, 309: 0.114320, 340: -0.114320, 347: -0.114320,
         353: 0.114320, 368: 0.114320, 397: -0.114320, 400: -0.114320, 452: -0.114320,
         468: -0.114320, 482: 0.114320, 487: 0.114320, 490: 0.114320, 509: 0.114320},
    ],
}


@pytest.mark.parametrize("model", [V1, V2])
def test_v1_and_v2_vectors_are_unchanged(model):
    vectors = LocalEmbedder(model, 512).embed(FROZEN_TEXTS).vectors
    for row, expected in zip(vectors, FROZEN[model]):
        want = np.zeros(512)
        want[list(expected)] = list(expected.values())
        np.testing.assert_allclose(row, want, atol=2e-6)


def test_an_unknown_model_name_keeps_the_v2_recipe():
    a = LocalEmbedder("some-old-name", 64).embed(FROZEN_TEXTS).vectors
    b = LocalEmbedder(V2, 64).embed(FROZEN_TEXTS).vectors
    assert np.array_equal(a, b)


def test_the_fitted_embedder_is_the_default_local_model_and_v3_the_corpus_blind_one():
    from jobsim.embedders import is_fitted, make_embedder
    from jobsim.errors import ConfigError

    assert EmbeddingSettings().model == "jobsim-fitted-v1" and is_fitted(EmbeddingSettings())
    assert EmbeddingSettings(provider="openai").model == "text-embedding-3-small"
    assert LocalEmbedder().model == V3 and make_embedder(EmbeddingSettings(model=V3)).model == V3
    with pytest.raises(ConfigError, match="needs its fitted model"):
        make_embedder(EmbeddingSettings())  # the run fits or loads it first


def reference_v3(text: str, dims: int) -> np.ndarray:
    """v3 by hand: MurmurHash3 (seed 0) index and sign per feature, blocks L2-normalised."""
    blocks = []
    for features in local.v3_features(text):
        block = np.zeros(dims)
        for key, value in features:
            h = murmurhash3_32(key, seed=0, positive=False)
            block[abs(h) % dims] += value if h >= 0 else -value
        norm = np.linalg.norm(block)
        blocks.append(block / norm if norm else block)
    total = blocks[0] + blocks[1]
    norm = np.linalg.norm(total)
    return total / norm if norm else total


@pytest.mark.parametrize("dims", [16, 512])
def test_v3_matches_the_hand_built_reference(dims):
    texts = [*FROZEN_TEXTS, "Zhvilluesi i softuerit dhe menaxheri", "IT Help Desk Technicians", "x"]
    vectors = LocalEmbedder(V3, dims).embed(texts).vectors
    for text, row in zip(texts, vectors):
        np.testing.assert_allclose(row, reference_v3(text, dims), atol=1e-6)


def test_v3_features_weights():
    words, chars = local.v3_features("Data Manager data")
    weights = dict(words)
    assert weights == pytest.approx({"data": math.log1p(2), "manager": 0.5 * math.log1p(1)})
    # each word spreads its weight over its character n-grams with unit L2 norm
    grams = [g for g, _ in chars if g.strip() and g in " manager "]
    assert sum(v * v for g, v in chars if g in grams) == pytest.approx(weights["manager"] ** 2)


def test_v3_stop_words_generic_words_and_it():
    words = lambda text: dict(local.v3_features(text)[0])  # noqa: E731
    assert words("Head of the IT department") == pytest.approx(
        {"head": 0.5 * math.log(2), "it": math.log(2), "department": math.log(2)})
    assert "it" not in words("make it work")  # the pronoun is a function word
    assert "system" in words("Fire System Inspector") and "fire" in words("Fire System Inspector")
    # Albanian: function words dropped, a generic word with a definite ending counts half
    assert words("Menaxheri i shitjeve në Tiranë") == pytest.approx(
        {"menaxheri": 0.5 * math.log(2), "shitjeve": math.log(2), "tiranë": math.log(2)})


@pytest.mark.parametrize("word, stem", [
    ("engineers", "engineer"), ("engineering", "engineer"), ("services", "service"),
    ("companies", "company"), ("boxes", "box"), ("business", "business"), ("analysis", "analysis"),
    ("status", "status"), ("data", "data"), ("sing", "sing"), ("it", "it"), ("ops2s", "ops2s"),
])
def test_light_english_stemming(word, stem):
    assert local.stem_english(word) == stem


def test_v3_vectors_are_unit_or_reported():
    texts = ["Registered Nurse", "", "the of and", "!!! ???", "Mësues Matematike", "IT"]
    result = LocalEmbedder(V3, 512).embed(texts)
    assert result.vectors.dtype == np.float32 and result.vectors.flags.c_contiguous
    assert sorted(result.errors) == [1, 2, 3]
    norms = np.linalg.norm(result.vectors, axis=1)
    np.testing.assert_allclose(norms[[0, 4, 5]], 1.0, atol=1e-6)
    assert not result.vectors[[1, 2, 3]].any()
    assert LocalEmbedder(V3, 512).embed([]).vectors.shape == (0, 512)


def test_v3_albanian_and_english_neighbours():
    texts = ["Zhvillues Softueri", "Zhvilluesi i softuerit në Tiranë", "Infermiere në spital",
             "Senior Software Engineers", "Software Engineering Lead", "Registered Nurse"]
    v = LocalEmbedder(V3, 512).embed(texts).vectors
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] and sim[1, 0] > sim[1, 2]
    assert sim[3, 4] > sim[3, 5] and sim[4, 3] > sim[4, 5]
    # function words change nothing
    a, b = LocalEmbedder(V3, 512).embed(["Infermier në spital", "Infermier spital"]).vectors
    assert np.array_equal(a, b)


@hsettings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=60), min_size=1, max_size=6))
def test_v3_is_per_text(texts):
    together = LocalEmbedder(V3, 64).embed(texts).vectors
    alone = np.vstack([LocalEmbedder(V3, 64).embed([t]).vectors for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-7)
    norms = np.linalg.norm(together, axis=1)
    assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))


def test_v3_is_deterministic_across_processes():
    code = ("import json, sys; from jobsim.embedders.local import LocalEmbedder, V3; "
            "print(json.dumps(LocalEmbedder(V3, 512).embed(json.loads(sys.argv[1])).vectors.tolist()))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(FROZEN_TEXTS)], env=env,
                         capture_output=True, text=True, check=True).stdout
    here = LocalEmbedder(V3, 512).embed(FROZEN_TEXTS).vectors
    assert np.array_equal(np.array(json.loads(out), dtype=np.float32), here)


def test_evaluate_offers_each_local_version():
    texts = FROZEN_TEXTS
    data = Dataset("frozen", list(texts), ["x"] * len(texts), [frozenset("x")] * len(texts))
    for kind, model in (("local-v1", V1), ("local-v2", V2), ("local-v3", V3)):
        vectors, missing = evaluate_embed(data, kind, 64)
        assert missing == 0
        assert np.array_equal(vectors, LocalEmbedder(model, 64).embed(texts).vectors)
    assert np.array_equal(evaluate_embed(data, "local", 64)[0], evaluate_embed(data, "fitted", 64)[0])  # the default
