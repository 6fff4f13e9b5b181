"""The quality evaluation tool: metrics against brute force, baselines, the CLI on a real file."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from jobsim import evaluate as ev


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


def test_precision_at_k_matches_brute_force_on_a_tiny_labelled_set():
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((3, 16))
    labels = rng.integers(0, 3, 40)
    x = centres[labels] + 0.9 * rng.standard_normal((40, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    sets = [frozenset([f"c{v}"]) for v in labels]
    codes, uniq = ev._codes(sets)
    idx = ev.top_neighbours(x, 5, 20, None, 1.0)
    got = ev.precision_at_k(idx, codes, ev.overlap_matrix(uniq), 5)
    assert got == pytest.approx(brute_precision(x, sets, 5), abs=1e-9)
    assert 0.0 < got < 1.0


def test_multi_label_overlap_counts_a_shared_base_category():
    sets = [frozenset({"a"}), frozenset({"a", "b"}), frozenset({"b"}), frozenset({"c"})]
    codes, uniq = ev._codes(sets)
    match = ev.overlap_matrix(uniq)
    neighbours = np.array([[1, 2], [0, 2], [1, 3], [0, -1]])
    # row 0: {a,b} hit, {b} miss; row 1: both hit; row 2: {a,b} hit, {c} miss; row 3: miss, empty
    assert ev.precision_at_k(neighbours, codes, match, 2) == pytest.approx((1 + 2 + 1 + 0) / 4 / 2)


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.sets(st.sampled_from("abcd"), min_size=1, max_size=3), min_size=2, max_size=25))
def test_random_baseline_is_the_exact_pair_average(label_sets):
    sets = [frozenset(s) for s in label_sets]
    codes, uniq = ev._codes(sets)
    assert ev.random_baseline(codes, ev.overlap_matrix(uniq)) == pytest.approx(brute_random(sets))


def test_random_baseline_single_labels_is_the_sum_of_squares_without_self_pairs():
    labels = ["x"] * 50 + ["y"] * 30 + ["z"] * 20
    codes, uniq = ev._codes(labels)
    exact = np.eye(len(uniq), dtype=bool)
    n = len(labels)
    p2 = 0.5**2 + 0.3**2 + 0.2**2
    assert ev.sum_p_squared(labels) == pytest.approx(p2)
    assert ev.random_baseline(codes, exact) == pytest.approx((p2 * n * n - n) / (n * (n - 1)))


def test_concatenated_labels_split_into_the_fewest_base_categories():
    labels = ["Health", "Policy, Research & Analysis", "Legal Affairs",
              "Health Policy, Research & Analysis", "Legal Affairs Health", "Social Services"]
    table = ev.split_concatenated(labels)
    assert table["Health Policy, Research & Analysis"] == {"Health", "Policy, Research & Analysis"}
    assert table["Legal Affairs Health"] == {"Legal Affairs", "Health"}
    assert table["Social Services"] == {"Social Services"}


def test_label_is_not_in_the_embedding_text(tmp_path):
    path = tmp_path / "jobs.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["title", "category"])
        w.writerow(["Nurse", "Zebracategory"])
        w.writerow(["Nurse", "Zebracategory"])  # duplicate text: collapsed
        w.writerow(["Welder", ""])  # no label: dropped
    data = ev.file_dataset(path, "category", ["title"])
    assert len(data.texts) == 1 and "Zebracategory" not in data.texts[0]
    assert data.dropped == {"no label": 1, "no text": 0, "duplicate text": 1}


def test_cli_runs_on_a_small_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    words = {"care": ["nurse", "clinic", "patient", "hospital", "medical"],
             "code": ["python", "backend", "software", "developer", "cloud"],
             "money": ["accountant", "audit", "ledger", "tax", "budget"]}
    path = tmp_path / "labelled.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["title", "description", "label"])
        for i in range(90):
            label = list(words)[i % 3]
            w.writerow([" ".join(rng.choice(words[label], 2)) + f" {i}",
                        " ".join(rng.choice(words[label], 6)), label])
    out = tmp_path / "report.json"
    code = ev.main([str(path), "--label-column", "label", "--embedder", "local", "tfidf",
                    "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["rows"] == 90 and report["labels"] == 3
    assert report["random_overlap"] == pytest.approx((3 * 30 * 29) / (90 * 89))
    for result in report["results"]:  # separable vocabularies: both far above random
        assert result["precision_overlap"] > 0.8
    assert "random" in capsys.readouterr().out


def test_cli_reports_a_missing_column_and_a_missing_file(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text("title,label\nNurse,care\n")
    assert ev.main([str(path), "--label-column", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert ev.main([str(tmp_path / "absent.csv"), "--label-column", "x", "--skip-missing"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_synthetic_dataset_keeps_the_category_out_of_the_text():
    data = ev.synthetic_dataset(80, seed=3)
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
    data = ev.file_dataset(tmp_path / "jobs.parquet", "category", ["title", "tags"])
    assert data.labels == ["Health", "Health", "IT", "IT"]
    assert "patient, care" in data.texts[0] and "Health" not in data.texts[0]
    report = ev.evaluate(data, ["tfidf"], k=1, candidates=3)
    assert report.results[0].precision_overlap == 1.0
