"""The language tag on real English postings and on Albanian, mixed and other-language samples.

The Albanian and mixed samples below were written for these tests in the style of Albanian
job ads (with and without ë/ç, as both are common); the English ones are 1,000 real LinkedIn
postings from ../shared/data (skipped when that folder is absent).
"""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from jobsim.language import detect_language
from jobsim.text import clean_text
from tests.conftest import shared_file

SQ = [
    "Kërkojmë një zhvillues Python me përvojë për ekipin tonë në Tiranë. Kandidati duhet të ketë "
    "njohuri të mira në Django dhe baza të dhënash. Ofrojmë pagë konkurruese dhe mundësi trajnimi.",
    "Kompania jonë po kërkon një kontabilist/e me të paktën 3 vjet eksperiencë. Detyrat përfshijnë "
    "mbajtjen e librave kontabël, deklaratat tatimore dhe raportimin mujor.",
    "Kerkojme shites/e per dyqanin tone ne Durres. Kandidati duhet te jete i komunikueshem dhe te "
    "kete deshire per te punuar ne ekip. Orari i punes eshte me turne.",
    "Pozicioni: Infermier/e. Spitali privat ne Vlore kerkon infermiere me licence. Paga sipas "
    "eksperiences, kontrate e rregullt pune dhe sigurime shoqerore.",
    "Operator/e call center me gjuhen italiane. Nuk kërkohet eksperiencë, trajnimi ofrohet nga "
    "kompania. Paga fillestare 500 euro plus bonuse mujore.",
    "Shofer kategoria C për shpërndarje mallrash në qytetin e Shkodrës dhe rrethinat. Kërkohet "
    "patentë e vlefshme dhe të paktën 2 vite përvojë pune.",
    "Mësues/e i gjuhës angleze për një shkollë jopublike në Elbasan. Diplomë universitare në gjuhë "
    "angleze, aftësi të mira komunikimi dhe pasion për mësimdhënien.",
    "Kuzhinier me pervoje per restorant ne Sarande gjate sezonit veror. Ofrohet akomodim dhe "
    "ushqim. Per me shume informacion na kontaktoni ne numrin e telefonit.",
    "Inxhinier ndërtimi. Përgjegjës për mbikëqyrjen e punimeve në kantier, hartimin e "
    "preventivave dhe koordinimin me nënkontraktorët.",
    "Recepsioniste per hotel ne Golem. Njohja e gjuhes angleze eshte e detyrueshme, njohja e "
    "gjuhes italiane perben avantazh.",
]
EN = [
    "We are looking for a senior Python developer to join our team in Tirana. You will build APIs "
    "with Django and PostgreSQL.",
    "Registered nurse needed for a private clinic. Flexible shifts, competitive pay and health "
    "insurance.",
]
MIXED = [
    "Kërkojmë Software Engineer për ekipin tonë në Tiranë. Kandidati duhet të ketë përvojë me Java. "
    "Responsibilities: design and build scalable services, work with the product team, review code "
    "and mentor junior developers. Requirements: 3+ years of experience with Spring Boot and a good "
    "knowledge of SQL.",
    "Customer Support Agent (English speaking). We are hiring agents for our office in Tirana with "
    "good English and customer service skills. Kandidatët duhet të kenë njohuri të mira të gjuhës "
    "angleze, orar fleksibël dhe pagë shumë të mirë.",
]
OTHER = [
    "Cerchiamo un operatore call center per la nostra sede di Tirana. Il candidato ideale ha "
    "ottime capacità di comunicazione e conoscenza della lingua italiana. Offriamo contratto a "
    "tempo indeterminato.",
    "Wir suchen einen erfahrenen Softwareentwickler für unser Team in Berlin. Sie arbeiten an "
    "spannenden Projekten mit modernen Technologien und einem motivierten Team.",
    "Nous recherchons un développeur pour notre équipe à Paris. Vous travaillerez avec les équipes "
    "produit et design sur des projets variés.",
]


@pytest.mark.parametrize("text", SQ)
def test_albanian(text):
    assert detect_language(text) == "sq"


@pytest.mark.parametrize("text", EN)
def test_english(text):
    assert detect_language(text) == "en"


@pytest.mark.parametrize("text", MIXED)
def test_mixed(text):
    assert detect_language(text) == "mixed"


@pytest.mark.parametrize("text", OTHER)
def test_other_languages_are_unknown_not_english(text):
    assert detect_language(text) == "unknown"


@pytest.mark.parametrize("text", ["", "Python", "Shofer", "Data analyst", "12345 !!!"])
def test_too_little_evidence(text):
    assert detect_language(text) == "unknown"


def test_albanian_without_diacritics_matches_with():
    with_marks = SQ[0]
    plain = with_marks.replace("ë", "e").replace("ç", "c").replace("Ë", "E")
    assert detect_language(plain) == detect_language(with_marks) == "sq"


def test_real_english_postings():
    with shared_file("linkedin_postings_2023_sample.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    tags = Counter(detect_language(clean_text(f"{r['title']} {r['description']}")) for r in rows)
    assert len(rows) == 1000
    assert tags["en"] >= 995 and tags["sq"] == 0 and tags["mixed"] == 0, tags


def test_real_short_english_rows_are_not_mixed():
    with shared_file("nyc_jobs_2019.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    tags = Counter(detect_language(clean_text(" ".join(r.values()))) for r in rows)
    assert tags["sq"] == 0 and tags["mixed"] == 0, tags
    assert tags["en"] > 500
