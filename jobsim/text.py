"""Embedding text preparation: cleaning, the seed's text layout, the content hash.

Pure functions: no I/O, no prefect, pymongo or openai.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Categories dropped from text: control (Cc), format (Cf: zero-width joiners, BOM,
# bidi marks), surrogates (Cs), private use (Co), unassigned (Cn) and "other symbols"
# (So: emoji, pictographs, dingbats). Variation selectors are nonspacing marks (Mn).
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "So", "Sk"})
_VARIATION_SELECTORS = frozenset(chr(c) for c in range(0xFE00, 0xFE10))
_WHITESPACE = re.compile(r"\s+")
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TAG = re.compile(r"<[^>]{0,200}>")

MAX_DESCRIPTION_CHARS = 8000


def _keep(ch: str) -> bool:
    if ch in _VARIATION_SELECTORS:
        return False
    return unicodedata.category(ch) not in _DROP_CATEGORIES or ch.isspace()


def clean_text(value: str) -> str:
    """Drop emoji, control and format characters and HTML tags; collapse whitespace."""
    if not value:
        return ""
    text = _TAG.sub(" ", value)
    if text.isascii():
        text = _ASCII_CONTROL.sub(" ", text)
    else:
        text = unicodedata.normalize("NFC", text)
        text = "".join(ch if _keep(ch) else " " for ch in text)
    return _WHITESPACE.sub(" ", text).strip()


def truncate_at_word(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, at a word boundary when one is near."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return cut[:space] if space > max_chars * 0.8 else cut


def build_embedding_text(
    title: str,
    description: str,
    category: str = "",
    tags: tuple[str, ...] | list[str] = (),
    requirements: tuple[str, ...] | list[str] = (),
) -> str:
    """The seed's layout: title ×3, ``Category: …``, description ×2, skills, requirements.

    Inputs must already be cleaned (see :func:`clean_text`).
    """
    description = truncate_at_word(description, MAX_DESCRIPTION_CHARS)
    parts = [title, title, title]
    if category:
        parts.append(f"Category: {category}")
    parts += [description, description]
    if tags:
        parts.append("Skills: " + ", ".join(tags))
    if requirements:
        parts.append("Requirements: " + "; ".join(requirements))
    return "\n".join(parts)


def content_hash(text: str, model: str, dimensions: int) -> str:
    """Identity of a vector: prepared text + model + dimension."""
    digest = hashlib.sha256()
    digest.update(f"{model}\x1f{dimensions}\x1f".encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
