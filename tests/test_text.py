from hypothesis import given
from hypothesis import strategies as st

from jobsim.text import build_embedding_text, clean_text, content_hash, truncate_at_word


def test_clean_text_drops_emoji_control_and_format_characters():
    raw = "🚀 Zhvillues\x07 Python\u200b në  Tiranë!\x1b[31m ✅\ufe0f\n\n"
    assert clean_text(raw) == "Zhvillues Python në Tiranë! [31m"


def test_clean_text_strips_html_and_collapses_whitespace():
    assert clean_text("<p>Senior\t\tDeveloper</p>\r\n<br/>Durrës") == "Senior Developer Durrës"


def test_clean_text_keeps_albanian_letters_and_punctuation():
    assert clean_text("Përvojë 3+ vjet; njohuri të mira (ç, ë)") == "Përvojë 3+ vjet; njohuri të mira (ç, ë)"


def test_clean_text_drops_lone_surrogates():
    assert clean_text("abc\ud800def") == "abc def"


@given(st.text())
def test_clean_text_is_idempotent_and_has_no_control_characters(raw):
    cleaned = clean_text(raw)
    assert clean_text(cleaned) == cleaned
    assert not any(ord(ch) < 32 for ch in cleaned)
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned


def test_embedding_text_follows_the_seed_layout():
    text = build_embedding_text("Kontabilist", "Mbajtja e librave kontabël.", "Finance",
                                ("Excel", "IFRS"), ("3 vjet përvojë",))
    assert text.split("\n") == [
        "Kontabilist", "Kontabilist", "Kontabilist", "Category: Finance",
        "Mbajtja e librave kontabël.", "Mbajtja e librave kontabël.",
        "Skills: Excel, IFRS", "Requirements: 3 vjet përvojë",
    ]


def test_embedding_text_omits_empty_optional_parts():
    assert build_embedding_text("Chef", "Cook Italian food daily.") == (
        "Chef\nChef\nChef\nCook Italian food daily.\nCook Italian food daily."
    )


def test_truncate_at_word_boundary():
    text = "word " * 100
    cut = truncate_at_word(text, 52)
    assert len(cut) <= 52 and cut.endswith("word") and text.startswith(cut)


def test_content_hash_depends_on_text_model_and_dims():
    base = content_hash("a", "m", 512)
    assert base == content_hash("a", "m", 512)
    assert len({base, content_hash("b", "m", 512), content_hash("a", "n", 512),
                content_hash("a", "m", 256)}) == 4
