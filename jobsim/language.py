"""Offline language tag of a posting: ``sq``, ``en``, ``mixed`` or ``unknown``.

A small tested heuristic (measured in tests/test_language.py on 1,000 real English
postings and on Albanian, mixed and other-language samples): count frequent function
words of Albanian (with and without its letters ë/ç, which are often typed as e/c),
of English and of the other languages common in Albanian job ads (Italian, German,
French, Spanish), plus words containing ë/ç as extra Albanian evidence.

- fewer than ``MIN_EVIDENCE`` counted words → ``unknown`` (e.g. a bare title);
- mostly other-language words → ``unknown`` (the tag has no value for them);
- otherwise the Albanian share of Albanian + English evidence: ≥ 0.8 ``sq``,
  ≤ 0.2 ``en``, between them ``mixed`` when each language has ``MIN_EVIDENCE`` words
  (else the larger side).
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
SQ_WORDS = frozenset(
    # function words, with their usual diacritic-less spellings
    "dhe të te në ne për per me nga një nje që qe është eshte janë jane do ose por si nëse "
    "nese ku kur ka kemi kanë kane se deri mbi pa prej tek tij saj ju ata ato kjo këtë kete "
    "këto keto duhet jemi jeni ofrojmë ofrojme kërkojmë kerkojme kërkohet kerkohet ofrohet "
    # job-ad vocabulary
    "punë pune punës punes kompania kompanisë kompanise eksperiencë eksperience përvojë "
    "pervoje njohuri aftësi aftesi kandidati kandidatët kandidatet pozicion pozicioni "
    "pagë page paga gjuhës gjuhes orari orar detyrat".split()
)
EN_WORDS = frozenset(
    "the and of to in for with on is are will be as or at by from an this that you we our "
    "your a it not who all can must can't who which their its if has have about into "
    "experience skills team work role job years looking join including ability".split()
)
# Italian, German, French, Spanish: evidence that the text is none of sq/en.
OTHER_WORDS = frozenset(
    "il la di che con della delle degli nel nella una sono lavoro esperienza siamo "
    "und der die das mit für fur wir sie ist ein eine einen zu von auf bei oder ihre unser "
    "les des et est pour nous vous dans une sur avec votre "
    "el los las y para del que en una con experiencia trabajo".split()
) - SQ_WORDS - EN_WORDS
MIN_EVIDENCE = 3


def detect_language(text: str) -> str:
    """Language tag of ``text`` (use the cleaned title + description)."""
    words = [w.casefold() for w in _WORD.findall(text[:20_000])]
    sq = sum(w in SQ_WORDS for w in words) + sum(("ë" in w or "ç" in w) for w in words)
    en = sum(w in EN_WORDS for w in words)
    other = sum(w in OTHER_WORDS for w in words)
    if sq + en + other < MIN_EVIDENCE:
        return "unknown"
    if other >= sq + en:
        return "unknown"
    share = sq / (sq + en)
    if share >= 0.8:
        return "sq"
    if share <= 0.2:
        return "en"
    if min(sq, en) < MIN_EVIDENCE:  # "mixed" needs real evidence of both languages
        return "sq" if sq > en else "en" if en > sq else "unknown"
    return "mixed"
