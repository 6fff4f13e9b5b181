"""Offline language tag of a posting: ``sq``, ``en``, ``mixed`` or ``unknown``.

A small tested heuristic: share of Albanian vs English function words, with the
Albanian letters ë/ç as extra evidence.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
SQ_WORDS = frozenset(
    "dhe të në për me nga një që është janë do ose por si nëse ku kur ka kemi kanë "
    "se deri mbi pa prej tek tij saj ju ata ato kjo këtë këto punë pune kompania "
    "eksperiencë përvojë njohuri aftësi kandidati pozicion ofrojmë kërkojmë".split()
)
EN_WORDS = frozenset(
    "the and of to in for with on is are will be as or at by from an this that you "
    "we our your experience skills team work role job about have has".split()
)
MIN_EVIDENCE = 3


def detect_language(text: str) -> str:
    """Language tag of ``text`` (use the cleaned title + description)."""
    words = [w.casefold() for w in _WORD.findall(text[:20_000])]
    sq = sum(w in SQ_WORDS for w in words) + sum(("ë" in w or "ç" in w) for w in words)
    en = sum(w in EN_WORDS for w in words)
    if sq + en < MIN_EVIDENCE:
        return "unknown"
    share = sq / (sq + en)
    if share >= 0.8:
        return "sq"
    if share <= 0.2:
        return "en"
    return "mixed"
