"""The quality evaluation tool: metrics against brute force, duplicates, the list hook, the CLI."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from jobsim_app.evaluate import metrics as m
from jobsim_app.evaluate.cli import main
from jobsim_app.evaluate.datasets import Dataset, file_dataset, synthetic_dataset
from jobsim_app.evaluate.lists import ListRequest, default_list_builder, duplicate_groups, unknown_context
from jobsim_app.evaluate.real import real_dataset, title_head
from jobsim_app.evaluate.report import evaluate
from tests.conftest import shared_file


def brute_precision(vectors: np.ndarray, sets: list[frozenset[str]], k: int) -> float:
    """Reference: full cosine sort per row (self excluded by index, ties by index)."""
    n = len(vectors)
    total = 0.0
    for i in range(n):
        sims = [(-float(vectors[i] @ vectors[j]), j) for j in range(n) if j != i]
        top = [j for _, j in sorted(sims)[:k]]
        total += sum(bool(sets[i] & sets[j]) for j in top) / k
    return total / n


def brute_random(sets: list[frozenset[str]]) -> float:
    n = len(sets)
    hits = sum(bool(sets[i] & sets[j]) for i, j in itertools.permutations(range(n), 2))
    return hits / (n * (n - 1))


def lists_of(x: np.ndarray, k: int, depth: int, groups: np.ndarray | None = None) -> np.ndarray:
    n = len(x)
    groups = np.arange(n) if groups is None else groups
    return default_list_builder(ListRequest(x, k, depth, unknown_context(n), 1.0, groups))


def test_precision_at_k_matches_brute_force_on_a_tiny_labelled_set():
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((3, 16))
    labels = rng.integers(0, 3, 40)
    x = centres[labels] + 0.9 * rng.standard_normal((40, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    sets = [frozenset([f"c{v}"]) for v in labels]
    codes, uniq = m.codes_of(sets)
    got = m.precision_at_k(lists_of(x, 5, 20), codes, m.overlap_matrix(uniq), 5)
    assert got == pytest.approx(brute_precision(x, sets, 5), abs=1e-9)
    assert 0.0 < got < 1.0


def test_multi_label_overlap_counts_a_shared_base_category():
    sets = [frozenset({"a"}), frozenset({"a", "b"}), frozenset({"b"}), frozenset({"c"})]
    codes, uniq = m.codes_of(sets)
    neighbours = np.array([[1, 2], [0, 2], [1, 3], [0, -1]])
    # row 0: {a,b} hit, {b} miss; row 1: both hit; row 2: {a,b} hit, {c} miss; row 3: miss, empty
    assert m.precision_at_k(neighbours, codes, m.overlap_matrix(uniq), 2) == pytest.approx((1 + 2 + 1 + 0) / 4 / 2)


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.sets(st.sampled_from("abcd"), min_size=1, max_size=3), min_size=2, max_size=25))
def test_random_baseline_is_the_exact_pair_average(label_sets):
    sets = [frozenset(s) for s in label_sets]
    codes, uniq = m.codes_of(sets)
    assert m.random_baseline(codes, m.overlap_matrix(uniq)) == pytest.approx(brute_random(sets))


@hsettings(max_examples=80, deadline=None)
@given(st.integers(2, 14).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 4), min_size=n, max_size=n),
    st.lists(st.lists(st.integers(0, n - 1), max_size=6), min_size=n, max_size=n))))
def test_duplicate_exclusion_and_shares_match_a_plain_reading(case):
    groups_list, ranked = case
    groups = np.array(groups_list)
    nb = np.array([row + [-1] * (6 - len(row)) for row in ranked])  # lists padded with -1
    k = 3
    dedup = m.exclude_duplicates(nb, groups, k)
    subj = other = total = 0
    for i, row in enumerate(ranked):
        want, seen = [], {groups[i]}  # first of each group, never the subject's, refilled
        for j in row:
            if groups[j] not in seen:
                seen.add(groups[j])
                want.append(j)
        assert list(dedup[i][dedup[i] >= 0]) == want[:k]
        shown = row[:k]
        total += len(shown)
        for c, j in enumerate(shown):
            if groups[j] == groups[i]:
                subj += 1
            elif any(groups[e] == groups[j] for e in shown[:c]):
                other += 1
    got_subj, got_other = m.duplicate_shares(nb, groups, k)
    assert got_subj == pytest.approx(subj / total if total else 0.0)
    assert got_other == pytest.approx(other / total if total else 0.0)


def test_duplicate_groups_same_text_always_near_text_only_within_a_company():
    texts = ["Nurse", "Nurse", "Welder", "Welder pipe", "Pipe welder", "Accountant"]
    companies = ["a", "b", "c", "c", "d", None]
    # reference rows: 0/1 identical texts (orthogonal vectors on purpose: the hash decides),
    # 2, 3, 4 at cosine 0.98 with each other, 5 far from all
    ref = np.zeros((6, 8))
    ref[0, 0] = ref[1, 1] = ref[5, 7] = 1.0
    ref[2, 2] = 1.0
    ref[3, 2], ref[3, 3] = 0.99, np.sqrt(1 - 0.99**2)
    ref[4, 2], ref[4, 4] = 0.99, np.sqrt(1 - 0.99**2)
    groups = duplicate_groups(texts, ref, companies)
    assert groups[0] == groups[1]  # same text, other companies: duplicates
    assert groups[2] == groups[3] != groups[4]  # near and same company / near, other company
    assert len(set(groups.tolist())) == 4
    no_company = duplicate_groups(texts, ref, None)
    assert no_company[2] == no_company[3] == no_company[4]
    missing = duplicate_groups(texts, ref, ["a", "b", "c", None, "d", None])
    assert missing[2] == missing[3] == missing[4]  # a row without company: cosine decides
    assert len(set(duplicate_groups(texts, ref, companies, threshold=0.999).tolist())) == 5


def test_a_deduplicating_list_builder_plugs_in(tmp_path):
    data = labelled_rows(tmp_path, repeats=3)

    def dedup_builder(request: ListRequest) -> np.ndarray:
        ranked = default_list_builder(ListRequest(request.vectors, request.k, request.depth,
                                                  request.context, request.cosine_weight, request.groups))
        return m.exclude_duplicates(ranked, request.groups, request.k)

    plain = evaluate(data, ["local"], k=5, candidates=30)
    deduped = evaluate(data, ["local"], k=5, candidates=30, list_builder=dedup_builder)
    assert plain.duplicate_rows > 0 and plain.results[0].duplicates_of_subject > 0
    r = deduped.results[0]
    assert r.duplicates_of_subject == 0 and r.duplicates_of_each_other == 0
    assert r.precision_overlap == pytest.approx(r.precision_overlap_dedup)
    assert r.precision_overlap_dedup == pytest.approx(plain.results[0].precision_overlap_dedup)


def test_random_baseline_single_labels_is_the_sum_of_squares_without_self_pairs():
    labels = ["x"] * 50 + ["y"] * 30 + ["z"] * 20
    codes, uniq = m.codes_of(labels)
    n = len(labels)
    p2 = 0.5**2 + 0.3**2 + 0.2**2
    assert m.sum_p_squared(labels) == pytest.approx(p2)
    assert m.random_baseline(codes, np.eye(len(uniq), dtype=bool)) == pytest.approx((p2 * n * n - n) / (n * (n - 1)))


def test_concatenated_labels_split_into_the_fewest_base_categories():
    from jobsim_app.evaluate.datasets import split_concatenated

    labels = ["Health", "Policy, Research & Analysis", "Legal Affairs",
              "Health Policy, Research & Analysis", "Legal Affairs Health", "Social Services"]
    table = split_concatenated(labels)
    assert table["Health Policy, Research & Analysis"] == {"Health", "Policy, Research & Analysis"}
    assert table["Legal Affairs Health"] == {"Legal Affairs", "Health"}
    assert table["Social Services"] == {"Social Services"}


def test_label_is_not_in_the_embedding_text_and_duplicates_are_kept_unless_collapsed(tmp_path):
    path = tmp_path / "jobs.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["title", "category"])
        w.writerow(["Nurse", "Zebracategory"])
        w.writerow(["Nurse", "Zebracategory"])  # repost: kept (collapsed on request)
        w.writerow(["Welder", ""])  # no label: dropped from the rows, kept in the fit corpus
    data = file_dataset(path, "category", ["title"])
    assert len(data.texts) == 2 and not any("Zebracategory" in t for t in data.texts)
    assert data.dropped == {"no label": 1, "no text": 0, "duplicate text": 0}
    assert len(data.corpus()[0]) == 3
    collapsed = file_dataset(path, "category", ["title"], collapse_duplicates=True)
    assert len(collapsed.texts) == 1 and collapsed.dropped["duplicate text"] == 1


def labelled_rows(tmp_path, repeats: int = 1) -> Dataset:
    rng = np.random.default_rng(0)
    words = {"care": ["nurse", "clinic", "patient", "hospital", "medical"],
             "code": ["python", "backend", "software", "developer", "cloud"],
             "money": ["accountant", "audit", "ledger", "tax", "budget"]}
    path = tmp_path / "labelled.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["title", "description", "label", "company"])
        for i in range(90):
            label = list(words)[i % 3]
            row = [" ".join(rng.choice(words[label], 2)) + f" {i}", " ".join(rng.choice(words[label], 6)),
                   label, f"c{i % 4}"]
            for _ in range(repeats if i % 10 == 0 else 1):
                w.writerow(row)
    return file_dataset(path, "label", ["title", "description"], company_column="company")


def test_cli_runs_on_a_small_csv(tmp_path, capsys):
    labelled_rows(tmp_path)
    out = tmp_path / "report.json"
    code = main([str(tmp_path / "labelled.csv"), "--label-column", "label", "--company-column", "company",
                 "--embedder", "fitted", "local", "tfidf", "--json", str(out),
                 "--list-builder", "jobsim_app.evaluate.lists:default_list_builder"])
    assert code == 0
    (report,) = json.loads(out.read_text())
    assert report["rows"] == 90 and report["labels"] == 3
    assert report["random_overlap"] == pytest.approx((3 * 30 * 29) / (90 * 89))
    for result in report["results"]:  # separable vocabularies: far above random
        assert result["precision_overlap_dedup"] > 0.8
        assert set(result["per_category"]) == {"care", "code", "money"}
    printed = capsys.readouterr().out
    assert "random" in printed and "per category" in printed


def test_cli_reports_a_missing_column_a_missing_file_and_absent_shared_data(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text("title,label\nNurse,care\n")
    assert main([str(path), "--label-column", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main([str(tmp_path / "absent.csv"), "--label-column", "x", "--skip-missing"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert main([str(path), "--label-column", "label", "--list-builder", "jobsim_app.evaluate.lists:nope"]) == 2
    assert "--list-builder" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "--embedder", "local"]) == 0
    assert capsys.readouterr().out.count("skipped") == 4


def test_synthetic_dataset_keeps_the_category_out_of_the_text():
    data = synthetic_dataset(80, seed=3)
    assert len(data.texts) > 40 and len(set(data.labels)) > 3
    assert not any("Category:" in t for t in data.texts)
    assert data.context is not None and len(data.context.city) == len(data.texts)
    assert (data.context.category == -1).all()


def test_parquet_with_list_columns_reads_like_csv(tmp_path):
    import polars as pl

    frame = pl.DataFrame({
        "title": ["Nurse", "Clinic nurse", "Python developer", "Backend developer"],
        "tags": [["patient", "care"], ["care"], ["python"], ["python", "sql"]],
        "category": ["Health", "Health", "IT", "IT"],
    })
    frame.write_parquet(tmp_path / "jobs.parquet")
    data = file_dataset(tmp_path / "jobs.parquet", "category", ["title", "tags"])
    assert data.labels == ["Health", "Health", "IT", "IT"]
    assert "patient, care" in data.texts[0] and "Health" not in data.texts[0]
    report = evaluate(data, ["tfidf"], k=1, candidates=3)
    assert report.results[0].precision_overlap == 1.0


def test_title_head_labels():
    assert title_head("Senior Software Engineer, Backend") == "engineer"
    assert title_head("Nurse (Night) - ICU") == "nurse"
    assert title_head("123") == ""


def test_fitted_beats_tfidf_on_linkedin_descriptions():
    shared_file("linkedin_postings_2023_sample.csv")
    report = evaluate(real_dataset("linkedin-field"), ["fitted", "tfidf"])
    fitted, tfidf = report.results
    assert fitted.precision_overlap_dedup >= tfidf.precision_overlap_dedup + 0.02
