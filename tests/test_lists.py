"""Final lists (duplicate groups, closed jobs, explanations) against a pair-by-pair reference,
and incremental runs equal to a full pass over random sequences of reposts, edits, expiries."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings as hsettings, strategies as st

from jobsim.corpus import build_corpus
from jobsim.neighbours import rescore
from jobsim.repositories import JobContexts, VectorSet
from jobsim.scoring import pair_bonus
from jobsim.settings import NeighbourSettings, Settings
from jobsim import lists, similarity
from jobsim.similarity import compute_neighbours
from tests.memory_pipeline import MemoryPipeline

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
CITIES, COMPANIES, CATS = ["Tiranë", "Durrës", None], ["Alfa", "Beta", None], ["IT", "Finance"]


def random_corpus(rng: np.random.Generator, n_texts: int, dims: int = 12, ties: bool = False):
    """Texts (some near-duplicates of others), each posted 1-3 times (reposts), some closed.
    ``ties``: vectors of three ±1 entries (cosines of a few values, many equal) and postings
    created at one of two times or unknown, so scores and ages tie often."""
    base = rng.standard_normal((n_texts, dims)).astype(np.float32)
    for t in range(1, n_texts):
        if rng.random() < 0.3:  # a near-duplicate text of an earlier one
            base[t] = base[rng.integers(t)] + 0.05 * rng.standard_normal(dims).astype(np.float32)
    if ties:
        base = np.zeros((n_texts, dims), np.float32)
        for t in range(n_texts):
            base[t, rng.choice(6, 3, replace=False)] = rng.choice([-1.0, 1.0], 3)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    jobs, keys, hashes, vecs = JobContexts(), [], [], []
    for t in range(n_texts):
        for r in range(int(rng.integers(1, 4))):
            key = f"s:j{t:03d}-{r}"
            doc = {"embedding": {"contentHash": f"h{t:03d}"}, "category": CATS[rng.integers(2)],
                   "experienceLevel": ["junior", "mid", "senior"][rng.integers(3)],
                   "location": {"city": CITIES[rng.integers(3)], "remote": bool(rng.random() < 0.2)},
                   "company": COMPANIES[rng.integers(3)], "createdAt": NOW - timedelta(hours=int(rng.integers(1, 500)))}
            if ties:
                doc["createdAt"] = [NOW, NOW - timedelta(hours=1), None][rng.integers(3)]
            jobs.append(key, doc, active=bool(rng.random() < 0.8))
            keys.append(key), hashes.append(f"h{t:03d}"), vecs.append(base[t])
    vectors = VectorSet(np.array(keys, dtype=object), np.array(hashes, dtype=object), np.stack(vecs))
    return build_corpus(vectors, jobs)


def reference_lists(corpus, cfg: NeighbourSettings) -> dict[str, list]:
    """Pair by pair: groups from each row's top candidates, pools of distinct groups, best member."""
    x, base, r = corpus.vectors, corpus.base, corpus.rows
    cos = rescore(x, x[:base], np.tile(np.arange(base), (r, 1)))  # canonical scores, every pair
    order = {u: [v for v in sorted(range(base), key=lambda v: (-cos[u, v], v)) if v != u] for u in range(r)}
    parent = list(range(r))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    jobs_of = [np.flatnonzero(corpus.job_row == u) for u in range(r)]  # every job (active or closed) of each row
    for u in range(r):
        for v in order[u][:cfg.candidates]:
            cu, cv = set(corpus.company[jobs_of[u]]), set(corpus.company[jobs_of[v]])
            if cos[u, v] >= cfg.near_duplicate_cosine and (-1 in cu or -1 in cv or cu & cv):
                parent[find(u)] = find(v)
    group = [find(u) for u in range(r)]
    out = {}
    for j, u in enumerate(corpus.job_row.tolist()):
        pool, seen = [], set()
        for v in order[u]:
            if group[v] == group[u]:
                continue
            pool.append(v)
            seen.add(group[v])
            if len(seen) == cfg.candidates:
                break
        entries = []
        for v in pool:
            members = corpus.members[corpus.member_start[v]:corpus.member_start[v + 1]]
            bonuses, bits = pair_bonus(corpus.context, np.full(len(members), j), members[:, None])
            best = int(np.argmax(bonuses[:, 0]))  # first max: members are newest first
            m = int(members[best])
            score = np.float32(cfg.cosine_weight) * np.float32(min(max(cos[u, v], 0), 1)) \
                + np.float32(1 - cfg.cosine_weight) * bonuses[best, 0]
            if score >= cfg.min_score:
                entries.append((-float(score), -int(corpus.created[m]), v, m, group[v]))
        taken, listed = set(), []
        for entry in sorted(entries):
            if entry[4] not in taken and len(listed) < cfg.k:
                taken.add(entry[4])
                listed.append((str(corpus.job_ids[entry[3]]), round(-entry[0], 2)))
        out[str(corpus.job_ids[j])] = listed
    return out


@hsettings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_texts=st.integers(2, 30), candidates=st.integers(2, 8), ties=st.booleans(),
       chunk=st.sampled_from([3, 8192]))
def test_lists_equal_the_pair_by_pair_reference(seed, n_texts, candidates, ties, chunk):
    rng = np.random.default_rng(seed)
    corpus = random_corpus(rng, n_texts, ties=ties)
    cfg = NeighbourSettings(k=min(5, candidates), candidates=candidates, candidate_margin=2, min_score=0.2,
                            near_duplicate_cosine=0.97, incremental=False)
    with patch.object(similarity, "RERANK_CHUNK", chunk), patch.object(lists, "POOL_CHUNK", chunk):  # a few at a time
        result = compute_neighbours(corpus, cfg)
    expected = reference_lists(corpus, cfg)
    got = {k: [(n.job_id, n.score) for n in v.items] for k, v in result.lists.items()}
    assert got == expected
    active = set(corpus.job_ids[corpus.active].tolist())
    groups = {k: v.group for k, v in result.lists.items()}
    for key, job_list in result.lists.items():
        assert all(n.job_id in active for n in job_list.items)  # closed jobs are never listed
        listed_groups = [groups[n.job_id] or n.job_id for n in job_list.items]
        assert len(set(listed_groups)) == len(listed_groups)  # one posting per group
        assert job_list.group is None or job_list.group not in listed_groups  # never its own reposts
        for n in job_list.items:
            assert abs(n.score - (cfg.cosine_weight * n.cosine + (1 - cfg.cosine_weight) * bonus_of(n.match))) < 0.011


def bonus_of(match: tuple[str, ...]) -> float:
    return sum({"category": 0.4, "level": 0.3, "adjacentLevel": 0.15, "city": 0.3, "remote": 0.15}[m] for m in match)


# -- incremental runs equal a full pass, over random sequences -----------------------------
OPS = st.lists(st.tuples(st.sampled_from(["new", "repost", "repost_city", "edit", "expire", "expire_later", "close",
                                          "delete", "reopen"]), st.integers(0, 10_000)), min_size=1, max_size=6)


def posting(i: int, rng: np.random.Generator) -> dict:
    field = ["Python backend developer", "Accountant with IFRS", "Nurse in the surgery ward",
             "Sales agent for retail", "Chef for an Italian kitchen"][i % 5]
    return {"title": f"{field} {i % 7}", "description": f"We are hiring: {field}. Team {i % 3}, shift {i % 4}. "
            "Good communication and teamwork.", "category": ["IT", "Finance", "Health"][i % 3],
            "company": COMPANIES[i % 3], "experienceLevel": "mid", "status": "active", "isDeleted": False,
            "location": {"city": CITIES[i % 3], "remote": i % 5 == 0}, "createdAt": NOW - timedelta(hours=i),
            "updatedAt": NOW, "embedding": {"status": "pending", "attempts": 0}}


def apply(pipeline: MemoryPipeline, op: str, n: int, at: datetime) -> None:
    docs = pipeline.repos.jobs.docs
    keys = sorted(docs)
    target = docs[keys[n % len(keys)]]
    key = f"s:n{len(docs):04d}"
    if op == "new":
        docs[key] = posting(n, np.random.default_rng(n))
    elif op in ("repost", "repost_city"):
        docs[key] = copy.deepcopy(target) | {"createdAt": at, "updatedAt": at, "status": "active", "isDeleted": False,
                                             "expiresAt": None, "embedding": {"status": "pending", "attempts": 0}}
        if op == "repost_city":
            docs[key]["location"] = {"city": CITIES[(n + 1) % 3], "remote": False}
            docs[key]["description"] = str(target.get("description")) + " Also in another city."
    elif op == "edit":
        target["description"] = f"Completely new duties number {n}: logistics, driving and warehouse work."
    elif op == "expire":
        target["expiresAt"] = at - timedelta(minutes=1)
    elif op == "expire_later":  # expires by itself before the next step: no edit says so
        target["expiresAt"] = at + timedelta(minutes=5)
    elif op in ("close", "delete", "reopen"):
        target.update(status="closed" if op == "close" else "active", isDeleted=op == "delete")
    target["updatedAt"] = at


@hsettings(max_examples=25, deadline=None)
@given(steps=st.lists(OPS, min_size=1, max_size=4))
def test_incremental_runs_equal_a_full_pass_after_reposts_edits_and_expiries(steps):
    settings = Settings(neighbours={"state_dir": "", "min_score": 0.0, "k": 5, "candidates": 6,
                                    "candidate_margin": 3, "incremental_max_churn": 1.0})
    pipeline = MemoryPipeline(settings)
    rng = np.random.default_rng(0)
    for i in range(24):
        pipeline.repos.jobs.docs[f"s:a{i:03d}"] = posting(i, rng)
    at = NOW
    pipeline.run(now=at)
    for ops in steps:
        at += timedelta(minutes=10)
        for op, n in ops:
            apply(pipeline, op, n, at)
        for later in (1, 6):  # then a run with nothing edited since, after "expire_later"'s expiries
            pipeline.run(now=at + timedelta(minutes=later))
            full = copy.deepcopy(pipeline)
            full.state = None
            rerun = full.run("full", now=at + timedelta(minutes=later), refit=False)
            assert rerun["lists_written"] == 0 and full.lists() == pipeline.lists()
            docs = pipeline.repos.jobs.docs
            for key, (items, group) in pipeline.lists().items():
                for other, *_ in items:
                    assert docs[other].get("status") == "active" and not docs[other].get("isDeleted")
                    assert group is None or docs[other].get("duplicateGroup") != group
        if all(op != "expire_later" for op, _ in ops):
            assert pipeline.kept[-1]  # nothing that decides a list changed: the stored lists were kept


@hsettings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 14))
def test_companies_agree_like_sets_of_each_rows_companies(data, n):
    """Rows of several jobs (reposts share a row), jobs without a company, closed jobs."""
    from jobsim.corpus import corpus_from_arrays
    from jobsim.groups import companies_agree
    from jobsim.scoring import Context

    hashes = np.array([f"h{data.draw(st.integers(0, 5))}" for _ in range(n)], dtype=object)
    company = [data.draw(st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))) for _ in range(n)]
    active = np.array([data.draw(st.booleans()) for _ in range(n)])
    ctx = Context(np.zeros(n, np.int32), np.zeros(n, np.int8), np.zeros(n, np.int32), np.zeros(n, bool))
    corpus = corpus_from_arrays(np.array([f"j{i}" for i in range(n)], dtype=object), np.eye(n, 8, dtype=np.float32),
                                ctx, hashes, active, company)
    a, b = (x.ravel() for x in np.meshgrid(np.arange(corpus.rows), np.arange(corpus.rows)))
    jobs_of = [np.flatnonzero(corpus.job_row == u) for u in range(corpus.rows)]
    expected = []
    for u, v in zip(a.tolist(), b.tolist()):
        cu, cv = set(corpus.company[jobs_of[u]].tolist()), set(corpus.company[jobs_of[v]].tolist())
        expected.append(-1 in cu or -1 in cv or bool(cu & cv))
    assert companies_agree(corpus, a, b).tolist() == expected


@hsettings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(0, 6), w=st.integers(0, 300), high=st.sampled_from([2, 50, 10**12]))
def test_first_in_row_marks_each_values_first_valid_entry(data, n, w, high):
    from jobsim.lists import first_in_row

    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    values = rng.integers(-high, high, (n, w))
    valid = rng.random((n, w)) < 0.8
    expected = np.zeros((n, w), dtype=bool)
    for i in range(n):
        seen = set()
        for j in range(w):
            if valid[i, j] and values[i, j] not in seen:
                seen.add(values[i, j])
                expected[i, j] = True
    assert (first_in_row(values, valid) == expected).all()


def test_pair_bonus_sums_the_bonuses_that_apply():
    """The bonus looked up by its bits equals the bonuses summed pair by pair."""
    from jobsim.scoring import Context

    rng = np.random.default_rng(3)
    n = 400
    ctx = Context(category=rng.integers(-1, 3, n).astype(np.int32), level=rng.integers(-1, 5, n).astype(np.int8),
                  city=rng.integers(-1, 3, n).astype(np.int32), remote=rng.random(n) < 0.3)
    subjects, cand = rng.integers(0, n, 50), rng.integers(-1, n, (50, 40))
    bonus, bits = pair_bonus(ctx, subjects, cand)
    for i, q in enumerate(subjects.tolist()):
        for j, c in enumerate(cand[i].tolist()):
            applies = {"category": c >= 0 and ctx.category[q] >= 0 and ctx.category[q] == ctx.category[c],
                       "level": c >= 0 and min(ctx.level[q], ctx.level[c]) >= 0 and ctx.level[q] == ctx.level[c],
                       "adjacentLevel": c >= 0 and min(ctx.level[q], ctx.level[c]) >= 0
                       and abs(int(ctx.level[q]) - int(ctx.level[c])) == 1,
                       "city": c >= 0 and ctx.city[q] >= 0 and ctx.city[q] == ctx.city[c]}
            applies["remote"] = c >= 0 and not applies["city"] and bool(ctx.remote[c])
            match = tuple(m for m, on in applies.items() if on)
            assert bonus[i, j] == np.float32(bonus_of(match)) and bits[i, j] == sum(
                {"category": 1, "level": 2, "adjacentLevel": 4, "city": 8, "remote": 16}[m] for m in match)


@hsettings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), w=st.integers(1, 120))
def test_list_order_is_score_then_newest_then_row_where_scores_and_ages_tie(seed, n, w):
    """Against a three-key lexsort, on scores and creation times drawn from a few values
    (ties everywhere, wide rows: an unstable sort would reorder them); -inf entries, never
    kept, may fall anywhere after the others."""
    from jobsim.lists import _list_order

    rng = np.random.default_rng(seed)
    blended = rng.choice(np.array([-np.inf, 0.3, 0.55, 0.7], np.float32), (n, w))
    created = rng.choice([0, 10**15, 10**15 + 1], 50)
    chosen = rng.integers(-1, 50, (n, w))
    blended[chosen < 0] = -np.inf
    row_key = np.array([rng.permutation(w) for _ in range(n)], dtype=np.int64)
    age_rank = np.unique(-created, return_inverse=True)[1]
    order = _list_order(blended, age_rank, chosen, row_key) - (np.arange(n) * w)[:, None]
    age = np.where(chosen >= 0, -created[np.maximum(chosen, 0)], 0)
    expected = np.lexsort((row_key, age, -blended), axis=1)
    finite = np.isfinite(blended).sum(axis=1)
    for i in range(n):
        assert order[i, :finite[i]].tolist() == expected[i, :finite[i]].tolist()
        assert sorted(order[i].tolist()) == list(range(w))
