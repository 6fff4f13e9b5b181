"""Text side of the corpus-fitted embedder: split a pipeline text into title and body,
tokenise, hash word shingles. Pure functions, no fitted state.

The pipeline's embedding text (:func:`jobsim.text.build_embedding_text`) is one field per
line: the title three times, then ``Category: …``, the description twice, ``Skills: …``,
``Requirements: …`` (each field cleaned, so no field holds a line break). The first line is
the title; the other lines are the body, each distinct line tokenised once and counted with
its multiplicity (the description's second copy costs nothing). A text without a line break
is a title when it is at most :data:`TITLE_MAX_CHARS` long, else a body.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from jobsim.embedders.local import V3_FUNCTION_WORDS, is_generic, stem_english

TITLE_MAX_CHARS = 200  # the pipeline's title limit
_TOKEN = re.compile(r"\w\w+")  # maximal runs of ≥ 2 word characters
_IT = re.compile(r"\bIT\b")  # "IT" in capitals = information technology, not the pronoun
IT_TOKEN = "infotech"
SEPARATOR = -1  # raw id between lines and texts: no shingle crosses it
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)


def split_text(text: str) -> tuple[str, list[tuple[str, int]]]:
    """(title, [(distinct body line, multiplicity)]) of an embedding text."""
    if "\n" not in text:
        return (text, []) if len(text) <= TITLE_MAX_CHARS else ("", [(text, 1)])
    title, _, rest = text.partition("\n")
    lines = Counter(line for line in rest.split("\n") if line and line != title)
    return title, list(lines.items())


def tokens(line: str) -> list[str]:
    """Lower-cased word tokens of a line (function words included: shingles need them)."""
    if "IT" in line:
        line = _IT.sub(IT_TOKEN, line)
    return _TOKEN.findall(line.lower())


def feature_of(token: str) -> tuple[str, bool] | None:
    """(feature = light English stem, generic?) of a token; None for a function word."""
    if token in V3_FUNCTION_WORDS:
        return None
    stem = stem_english(token)
    return stem, is_generic(token, stem)


def shingle_hashes(raw: np.ndarray, n: int) -> np.ndarray:
    """(len(raw) - n + 1,) uint64 hash of each run of ``n`` raw ids; 0 where a run holds an
    unknown token or a separator (id < 0), so it never matches a stored shingle."""
    m = len(raw) - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64)
    ids = raw.astype(np.int64)
    h = np.zeros(m, np.uint64)
    valid = np.ones(m, bool)
    with np.errstate(over="ignore"):
        for j in range(n):
            part = ids[j : j + m]
            valid &= part >= 0
            h = h * _K1 + (part.astype(np.uint64) + np.uint64(1)) * _K2
    h[~valid] = 0
    h[valid & (h == 0)] = 1  # 0 is reserved for "no shingle"
    return h


def covered(starts: np.ndarray, n: int, length: int) -> np.ndarray:
    """(length,) bool: positions inside any run of ``n`` tokens starting at ``starts``."""
    mark = np.zeros(length + 1, np.int32)
    np.add.at(mark, starts, 1)
    np.add.at(mark, np.minimum(starts + n, length), -1)
    return np.cumsum(mark[:length]) > 0
