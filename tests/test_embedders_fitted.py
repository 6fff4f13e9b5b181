"""The corpus-fitted embedder: determinism, bytes, versions, boilerplate, no-feature rows."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import zlib
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from jobsim.embedders.fitted import FitParams, FittedEmbedder, FittedModel, fit_model
from jobsim.embedders.fitted_model import FORMAT, LEGACY_PARAMS
from jobsim.text import build_embedding_text

EEO = "We are an equal opportunity employer and value diversity at our company."
SQ_BOILER = "Ne ofrojmë një ambient pune miqësor dhe mundësi për zhvillim profesional."
ROLES = {
    "nurse": ("Registered Nurse", "Care for patients on the ward, give medication, chart vitals."),
    "dev": ("Python Developer", "Build backend services in Python, write tests, review code."),
    "acct": ("Accountant", "Prepare ledgers, reconcile accounts, support the annual audit."),
    "sq": ("Infermiere", "Kujdes për pacientët në spital, administrim i barnave dhe raportim."),
}


def corpus(n: int = 40, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts, companies = [], []
    for i in range(n):
        key = list(ROLES)[i % len(ROLES)]
        title, body = ROLES[key]
        extra = " ".join(rng.choice(["team", "shift", "city", "growth", "remote", "ekip", "qytet"], 3))
        tail = SQ_BOILER if key == "sq" else EEO
        texts.append(build_embedding_text(f"{title} {i % 7}", f"{body} {extra}. {tail}"))
        companies.append(f"company {i % 9}")
    return texts, companies


@pytest.fixture(scope="module")
def model() -> FittedModel:
    texts, companies = corpus()
    return fit_model(texts, 64, companies, seed=0)


def test_fit_is_deterministic_and_the_version_names_the_bytes(model):
    texts, companies = corpus()
    again = fit_model(texts, 64, companies, seed=0)
    assert again.to_bytes() == model.to_bytes()
    assert again.version == model.version
    assert model.version.startswith("jobsim-fitted-v1-") and len(model.version) == len("jobsim-fitted-v1-") + 12


def test_fit_is_deterministic_across_processes(model):
    texts, companies = corpus()
    code = ("import json, sys; from jobsim.embedders.fitted import fit_model; "
            "t, c = json.loads(sys.argv[1]); print(fit_model(t, 64, c, seed=0).version)")
    env = dict(os.environ, PYTHONHASHSEED="4242")
    out = subprocess.run([sys.executable, "-c", code, json.dumps([texts, companies])], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == model.version


def test_bytes_and_pickle_round_trip_give_the_same_model_and_vectors(model):
    texts, _ = corpus(12, seed=5)
    back = FittedModel.from_bytes(model.to_bytes())
    unpickled = pickle.loads(pickle.dumps(model))
    expected = FittedEmbedder(model).embed(texts).vectors
    for other in (back, unpickled):
        assert other.version == model.version and other.to_bytes() == model.to_bytes()
        assert np.array_equal(FittedEmbedder(other).embed(texts).vectors, expected)


def header_and_rest(data: bytes) -> tuple[dict, bytes]:
    payload = zlib.decompress(data)
    size = int.from_bytes(payload[:8], "little")
    return json.loads(payload[8 : 8 + size]), payload[8 + size :]


def with_header(header: dict, rest: bytes) -> bytes:
    blob = json.dumps(header, sort_keys=True).encode()
    return zlib.compress(len(blob).to_bytes(8, "little") + blob + rest, 6)


def test_the_header_holds_every_knob_and_other_formats_are_refused(model):
    header, rest = header_and_rest(model.to_bytes())
    assert header["format"] == FORMAT == 3
    assert header["params"] == asdict(model.params) and set(header["params"]) == set(asdict(FitParams()))
    assert [a[0] for a in header["arrays"]][-1] == "company" and model.company_dims > 0
    with pytest.raises(ValueError, match="unknown fitted model format 4"):
        FittedModel.from_bytes(with_header({**header, "format": 4}, rest))


def test_a_format_1_model_keeps_its_version_bytes_and_vectors():
    """A model as main (format 1) wrote it: format 1, no format 2 knobs in the params (this
    rewrite of a legacy fit gave main's own bytes exactly, on 3,000 LinkedIn + NYC texts)."""
    texts, companies = corpus()
    legacy = fit_model(texts, 64, companies, seed=0, params=FitParams(generic_weight=0.5, **LEGACY_PARAMS))
    header, rest = header_and_rest(legacy.to_bytes())
    for key in LEGACY_PARAMS:
        del header["params"][key]
    old = with_header({**header, "format": 1}, rest)
    loaded = FittedModel.from_bytes(old)
    assert loaded.params == legacy.params
    assert loaded.version == "jobsim-fitted-v1-" + hashlib.sha256(zlib.decompress(old)).hexdigest()[:12]
    assert loaded.version != legacy.version  # the version names the stored bytes, which differ
    for other in (loaded, pickle.loads(pickle.dumps(loaded)), FittedModel.from_bytes(loaded.to_bytes())):
        assert other.to_bytes() == old and other.version == loaded.version
    probe = corpus(12, seed=5)[0] + [build_embedding_text("Senior Engineer Manager", "Lead the team.")]
    expected = FittedEmbedder(legacy).embed(probe).vectors
    assert np.array_equal(FittedEmbedder(loaded).embed(probe).vectors, expected)
    # the current defaults embed differently: the legacy values matter
    assert not np.array_equal(FittedEmbedder(fit_model(texts, 64, companies, seed=0)).embed(probe).vectors, expected)


FORMAT_3_KNOBS = ("company_dims", "company_weight", "company_min_postings")


def test_a_format_2_model_keeps_its_version_bytes_and_vectors():
    """A model as format 2 wrote it: no company array, no format 3 knobs in the params."""
    texts, companies = corpus()
    params = FitParams(**{k: LEGACY_PARAMS[k] for k in FORMAT_3_KNOBS})
    legacy = fit_model(texts, 64, companies, seed=0, params=params)
    assert legacy.company_dims == 0
    header, rest = header_and_rest(legacy.to_bytes())
    assert "company" not in [a[0] for a in header["arrays"]]
    for key in FORMAT_3_KNOBS:
        del header["params"][key]
    old = with_header({**header, "format": 2}, rest)
    loaded = FittedModel.from_bytes(old)
    assert loaded.params == legacy.params and loaded.company_dims == 0
    for other in (loaded, pickle.loads(pickle.dumps(loaded)), FittedModel.from_bytes(loaded.to_bytes())):
        assert other.to_bytes() == old and other.version == loaded.version
    probe = corpus(12, seed=5)[0] + [build_embedding_text("Senior Engineer Manager", "Lead the team.")]
    expected = FittedEmbedder(legacy).embed(probe).vectors
    assert np.array_equal(FittedEmbedder(loaded).embed(probe).vectors, expected)
    current = fit_model(texts, 64, companies, seed=0)
    assert current.company_dims > 0
    assert not np.array_equal(FittedEmbedder(current).embed(probe).vectors, expected)


EMPLOYERS = {
    "health department": ["Epidemiologist", "Biostatistician", "Public Health Nurse", "Sanitarian", "Clerk"],
    "parks department": ["Gardener", "Arborist", "Park Ranger", "Forester", "Clerk"],
}


def employer_corpus() -> tuple[list[str], list[str]]:
    texts, companies = [], []
    for i in range(6):
        for company, titles in EMPLOYERS.items():
            for title in titles:
                texts.append(build_embedding_text(f"{title} {'I' * (1 + i % 3)}", ""))
                companies.append(company)
    return texts, companies


def test_the_company_block_brings_titles_of_the_same_employers_together():
    """Titles sharing no word meet when the same companies post them (the employer block)."""
    texts, companies = employer_corpus()
    probe = [build_embedding_text(t, "") for t in ("Epidemiologist", "Biostatistician", "Arborist")]
    sims = {}
    for dims in (0, 32):
        model = fit_model(texts, 64, companies, seed=0, params=FitParams(company_dims=dims))
        assert model.company_dims == min(dims, 2)  # two companies: their shares, exactly
        v = FittedEmbedder(model).embed(probe).vectors
        sims[dims] = (float(v[0] @ v[1]), float(v[0] @ v[2]))  # same employer, other employer
    # without the block the characters decide ("epidemiolog-ist" ~ "arbor-ist"); with it the employer
    assert sims[0][0] < sims[0][1] and sims[32][0] > sims[32][1] + 0.2
    # profiles are centred: a word both employers post in proportion ("clerk") has a row near 0
    row = {f: model.company[i].astype(float) for i, f in enumerate(model.features[: len(model.company)])}
    assert np.abs(row["clerk"]).max() < 0.01 and np.abs(row["epidemiologist"]).max() > 0.4


def test_no_company_block_without_companies_or_titles():
    texts, companies = employer_corpus()
    assert fit_model(texts, 64, None).company_dims == 0
    assert fit_model(texts, 64, ["one employer"] * len(texts)).company_dims == 0
    bodies = [build_embedding_text("", t) for t in texts]
    model = fit_model(bodies, 64, companies)
    assert model.company_dims == 0
    assert FittedEmbedder(model).embed(bodies[:3]).vectors.shape == (3, 64)


def test_version_changes_when_the_corpus_or_the_seed_changes(model):
    texts, companies = corpus()
    other_corpus = fit_model(texts[:-5] + corpus(5, seed=9)[0], 64, companies, seed=0)
    other_seed = fit_model(texts, 64, companies, seed=1)
    other_dims = fit_model(texts, 32, companies, seed=0)
    versions = {model.version, other_corpus.version, other_seed.version, other_dims.version}
    assert len(versions) == 4


def test_the_model_is_immutable(model):
    for m in (model, pickle.loads(pickle.dumps(model))):
        with pytest.raises(Exception):
            m.dimensions = 3  # type: ignore[misc]
        with pytest.raises(ValueError):
            m.idf[0] = 1.0


def test_embedder_names_the_version_and_returns_unit_float32_rows(model):
    embedder = FittedEmbedder(model)
    assert embedder.model == model.version and embedder.dimensions == 64
    result = embedder.embed(corpus(8, seed=3)[0])
    assert result.vectors.dtype == np.float32 and result.vectors.shape == (8, 64)
    assert result.vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    assert FittedEmbedder(model).embed([]).vectors.shape == (0, 64)


def test_rows_without_features_are_errors(model):
    texts = ["", "!!! ...", "the and of\nthe and of", build_embedding_text("Registered Nurse", "patients")]
    result = FittedEmbedder(model).embed(texts)
    assert result.errors == {0: "text has no features", 1: "text has no features", 2: "text has no features"}
    assert not result.vectors[:3].any() and result.vectors[3].any()


@hsettings(max_examples=25, deadline=None)
@given(st.lists(st.text(alphabet="abcdeëç IT\n.,", max_size=60), min_size=1, max_size=6))
def test_a_vector_depends_on_its_text_only(texts):
    texts_, companies = corpus()
    embedder = FittedEmbedder(fit_model(texts_, 32, companies))
    together = embedder.embed(texts).vectors
    alone = np.vstack([embedder.embed([t]).vectors for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6)


@pytest.mark.parametrize("key,boiler", [("nurse", EEO), ("sq", SQ_BOILER)])
def test_boilerplate_recurring_across_postings_counts_for_nothing(model, key, boiler):
    title, body = ROLES[key]
    plain = build_embedding_text(title, body)
    with_boiler = build_embedding_text(title, f"{body} {boiler}")
    vectors = FittedEmbedder(model).embed([plain, with_boiler]).vectors
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    # without boilerplate suppression the same sentence moves the vector
    texts, companies = corpus()
    no_bp = fit_model(texts, 64, companies, params=FitParams(boilerplate_postings=10**9))
    v = FittedEmbedder(no_bp).embed([plain, with_boiler]).vectors
    assert float(v[0] @ v[1]) < 0.999


def test_same_role_is_nearer_than_another_role(model):
    texts = [build_embedding_text(t, b) for t, b in ROLES.values()]
    v = FittedEmbedder(model).embed(texts + [build_embedding_text("Staff Nurse", ROLES["nurse"][1])]).vectors
    sims = v[-1] @ v[:-1].T
    assert int(np.argmax(sims)) == 0


def test_tiny_dimensions_and_tiny_corpus_still_embed():
    m = fit_model(["Nurse\nNurse\nNurse\nCare for patients."], 8)
    result = FittedEmbedder(m).embed(["Nurse", "Welder\nWelder\nWelder\nWeld steel."])
    assert result.vectors.shape == (2, 8) and not result.errors
