"""Vector sanity: degenerate vectors become errors with a reason, good ones are normalised once."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jobsim.embedders import EmbeddingResult, make_embedder
from jobsim.embedders.local import LocalEmbedder
from jobsim.embedders.openai.transport import decode_vector
from jobsim.embedders.sanity import MAX_NORM, MIN_NORM, sanitize
from jobsim.errors import EmbeddingError
from jobsim.settings import EmbeddingSettings
from tests.embedding_server import EmbeddingServer

DEGENERATE = [0.0, -0.0, np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-30, 1e-45, 1e6, 1e-7]
values = st.one_of(st.floats(width=32, allow_nan=True, allow_infinity=True),
                   st.sampled_from(DEGENERATE))


@st.composite
def results(draw: st.DrawFn) -> EmbeddingResult:
    """A matrix of rows that are random, constant-degenerate or mixed, some already failed."""
    n = draw(st.integers(0, 12))
    dims = draw(st.integers(1, 24))
    matrix = draw(hnp.arrays(np.float32, (n, dims), elements=values))
    for row in range(n):  # whole degenerate rows too, not only single odd entries
        fill = draw(st.one_of(st.none(), st.sampled_from(DEGENERATE)))
        if fill is not None:
            matrix[row] = fill
    failed = draw(st.sets(st.integers(0, max(0, n - 1)), max_size=n)) if n else set()
    transient = {r for r in failed if draw(st.booleans())}
    return EmbeddingResult(vectors=matrix, errors={r: f"earlier failure {r}" for r in failed},
                           requests=3, tokens=7, transient=transient, unavailable=None)


def reference_norm(row: np.ndarray) -> float:
    """The row's L2 norm in plain Python float64 (independent of numpy's routine)."""
    return math.sqrt(math.fsum(float(x) * float(x) for x in row))


@settings(max_examples=300, deadline=None)
@given(results())
def test_sanitize_rejects_every_degenerate_row_and_normalises_the_rest(result):
    before = result.vectors.copy()
    out = sanitize(result, result.vectors.shape[1])
    np.testing.assert_array_equal(result.vectors, before)  # the argument is left alone
    assert out.vectors.dtype == np.float32 and out.vectors.flags.c_contiguous
    assert out.vectors.shape == before.shape
    assert out.transient == result.transient and out.requests == 3 and out.tokens == 7
    for row in range(len(before)):
        if row in result.errors:
            assert out.errors[row] == result.errors[row]
            assert not out.vectors[row].any()
            continue
        finite = bool(np.isfinite(before[row]).all())
        norm = reference_norm(before[row]) if finite else math.nan
        near_bound = finite and any(abs(norm - b) <= 1e-9 * b for b in (MIN_NORM, MAX_NORM))
        if near_bound:
            continue  # the two norm computations may round to either side of a bound
        if not finite or not MIN_NORM <= norm <= MAX_NORM:
            assert out.errors[row].startswith("invalid vector: "), out.errors.get(row)
            assert row not in out.transient and not out.vectors[row].any()
        else:
            assert row not in out.errors
            v = out.vectors[row].astype(np.float64)
            assert abs(np.linalg.norm(v) - 1) < 1e-6
            cosine = float(v @ before[row].astype(np.float64)) / norm
            assert cosine > 1 - 1e-6  # same direction


@settings(max_examples=100, deadline=None)
@given(results())
def test_sanitize_is_idempotent(result):
    once = sanitize(result, result.vectors.shape[1])
    twice = sanitize(once, once.vectors.shape[1])
    assert twice.errors == once.errors
    np.testing.assert_allclose(twice.vectors, once.vectors, rtol=0, atol=1e-6)


@pytest.mark.parametrize("value, reason", [
    (0.0, "all zeros"), (np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"),
    (3e38, "above 1e+06"), (1e-30, "below 1e-06"), (1e-45, "below 1e-06"),
])
def test_sanitize_reasons(value, reason):
    vectors = np.ones((3, 8), np.float32)
    vectors[1] = value
    out = sanitize(EmbeddingResult(vectors=vectors), 8)
    assert list(out.errors) == [1] and reason in out.errors[1]
    np.testing.assert_allclose(out.vectors[[0, 2]], np.full((2, 8), 8 ** -0.5), rtol=1e-6)


def test_sanitize_refuses_a_matrix_of_the_wrong_width():
    with pytest.raises(EmbeddingError, match=r"shape \(2, 8\), expected \(n, 16\)"):
        sanitize(EmbeddingResult(vectors=np.ones((2, 8), np.float32)), 16)


def test_local_embedder_output_passes_unchanged():
    embedder = LocalEmbedder("jobsim-hash-ngram-v3", 64)
    result = embedder.embed(["Python developer in Tiranë", "Kontabilist në Durrës", "", "Chef"])
    out = sanitize(result, 64)
    assert out.errors == result.errors
    np.testing.assert_allclose(out.vectors, result.vectors, rtol=0, atol=1e-6)


# -- the decoder handles the wrong dimension and the undecodable -------------------------
@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.integers(0, 40), elements=values), st.integers(1, 40))
def test_decode_vector_rejects_wrong_dimension_and_non_finite(vector, dims):
    encoded = base64.b64encode(vector.astype("<f4").tobytes()).decode()
    if len(vector) != dims:
        with pytest.raises(ValueError, match=f"dimension {len(vector)}, expected {dims}"):
            decode_vector(encoded, dims)
    elif not np.isfinite(vector).all():
        with pytest.raises(ValueError, match="non-finite"):
            decode_vector(encoded, dims)
    else:
        np.testing.assert_array_equal(decode_vector(encoded, dims), vector)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64).filter(lambda b: len(b) % 4))
def test_decode_vector_rejects_partial_floats(raw):
    with pytest.raises(ValueError, match="undecodable"):
        decode_vector(base64.b64encode(raw).decode(), max(1, len(raw) // 4))


# -- end to end: a provider that returns degenerate vectors --------------------------------
@pytest.mark.parametrize("kind, reason", [("zero", "all zeros"), ("huge", "above 1e+06"),
                                          ("tiny", "below 1e-06")])
def test_degenerate_vectors_from_the_provider_are_rejected(kind, reason):
    with EmbeddingServer(dimensions=32) as srv:
        srv.add_fault(kind, rows=2)
        settings_ = EmbeddingSettings(provider="openai", base_url=srv.url, api_key="k",
                                      dimensions=32)
        result = make_embedder(settings_).embed([f"Driver {i} in Fier" for i in range(5)])
    assert not result.errors  # finite and of the right size: the decoder lets them through
    out = sanitize(result, 32)
    assert sorted(out.errors) == [0, 1] and all(reason in r for r in out.errors.values())
    assert not out.transient
    np.testing.assert_allclose(np.linalg.norm(out.vectors[2:], axis=1), 1, atol=1e-6)


def test_sanitize_across_row_blocks():
    # more rows than one float64 block: bad rows on the block edges, good rows everywhere
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((5000, 16)).astype(np.float32) * 7
    bad = {0: 0.0, 2047: np.nan, 2048: 3e38, 4095: 1e-30, 4999: np.inf}
    for row, value in bad.items():
        vectors[row] = value
    out = sanitize(EmbeddingResult(vectors=vectors, errors={10: "earlier"}), 16)
    assert set(out.errors) == set(bad) | {10}
    good = np.setdiff1d(np.arange(5000), list(out.errors))
    np.testing.assert_allclose(np.linalg.norm(out.vectors[good], axis=1), 1, atol=1e-6)
    expected = vectors[good] / np.linalg.norm(vectors[good].astype(np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(out.vectors[good], expected, rtol=0, atol=1e-6)
    assert not out.vectors[list(out.errors)].any()
