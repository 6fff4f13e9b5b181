"""Each contract rule (jobsim/contract.py) and its MongoDB translation (storage/queries.py)
select the same documents on the real server, over edge cases of every field they read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import product

import pytest
from bson import ObjectId

from jobsim.contract import is_active, needs_check
from storage.jobs import JobsRepository
from storage.queries import active_filter, pull_indexes, pull_queries

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
MISSING = object()


def docs_from(**fields: list) -> list[dict]:
    """Every combination of the given field values (MISSING = field absent)."""
    out = []
    for values in product(*fields.values()):
        doc = {"_id": ObjectId()}
        for name, value in zip(fields, values):
            if value is not MISSING:
                doc[name] = value
        out.append(doc)
    return out


def selected(coll, query) -> set:
    return {d["_id"] for d in coll.find(query, {"_id": 1})}


def test_active_rule_equals_its_query(db, settings):
    docs = docs_from(
        status=["active", "closed", "draft", "Active", None, 1, MISSING],
        isDeleted=[True, False, None, 1, "true", MISSING],
        expiresAt=[NOW - timedelta(seconds=1), NOW, NOW + timedelta(seconds=30), None, "2999-01-01", 5,
                   {"$date": 1}, MISSING],
    )
    coll = db[settings.mongo.jobs_collection]
    coll.insert_many(docs)
    by_rule = {d["_id"] for d in coll.find({}) if is_active(d, NOW)}
    assert by_rule == selected(coll, active_filter(NOW)) and 0 < len(by_rule) < len(docs)


@pytest.mark.parametrize("since", [None, NOW - timedelta(hours=1)])
def test_needs_check_rule_equals_its_query(db, settings, since):
    states = [MISSING, None, "garbage", 7, [], {}, {"status": "completed"}, {"status": "pending"},
              {"status": "processing"}, {"status": "failed", "attempts": 1},
              {"status": "failed", "attempts": 3}, {"status": "failed", "attempts": 2.5},
              {"status": "failed", "attempts": -1}, {"status": "failed", "attempts": float("nan")},
              {"status": "failed", "attempts": True}, {"status": "failed", "attempts": "1"},
              {"status": "failed"}, {"status": "failed", "attempts": 0, "rejected": True},
              {"status": "failed", "attempts": 0, "rejected": "yes"}, {"status": None}, {"status": 5},
              [{}], [{"status": "completed"}], [7]]
    docs = docs_from(
        updatedAt=[NOW - timedelta(days=1), NOW, "2026-12-01", None, MISSING],
        embedding=states,
        status=["active", "closed", MISSING],
        isDeleted=[True, False, MISSING],
        expiresAt=[NOW - timedelta(days=1), NOW + timedelta(days=1), MISSING],
    )
    coll = db[settings.mongo.jobs_collection]
    coll.insert_many(docs)
    by_rule = {d["_id"] for d in coll.find({}) if needs_check(d, since, 3, NOW)}
    changed, by_state = pull_queries(since)
    by_queries = set().union(*(selected(coll, q) for q in changed + ([by_state] if by_state else [])))
    assert by_rule <= by_queries  # the reader keeps what the rule selects
    assert 0 < len(by_rule) <= len(docs)
    assert {k["_id"] for k in JobsRepository(db, coll.name).changed_since(since, 3, NOW)} == {str(i) for i in by_rule}


def test_each_pull_query_is_answered_from_an_index(db, settings):
    """The pull costs what changed: every query is an index scan on the server."""
    coll = db[settings.mongo.jobs_collection]
    coll.insert_many(docs_from(updatedAt=[NOW, "x"], embedding=[{"status": "completed"}, MISSING]))
    for field in pull_indexes():
        coll.create_index(field)
    plans = {}
    changed, by_state = pull_queries(NOW - timedelta(hours=1))
    for query in [*changed, by_state]:
        plan = db.command("explain", {"find": coll.name, "filter": query})["queryPlanner"]["winningPlan"]
        plans[repr(query)[:60]] = repr(plan)
    assert len(plans) == 3 and all("IXSCAN" in plan and "COLLSCAN" not in plan for plan in plans.values()), plans
