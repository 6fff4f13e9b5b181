"""Schemathesis fuzzes the OpenAPI spec against the API served by uvicorn on a loopback port.

Every documented operation gets generated valid and invalid requests; the default checks
run (no 5xx, status codes and bodies conform to the spec, invalid input rejected).
Kept small: a few dozen examples per operation, a few seconds in all.
"""

from __future__ import annotations

import threading
import time

import pytest
import schemathesis
import uvicorn
from bson import ObjectId
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from schemathesis import GenerationMode

from api_export.app import create_app
from jobsim_app.localdb import free_port
from tests.test_api import make_job, with_list

# Ids hypothesis likes to generate for a 24-hex pattern, so fuzzing also reaches the 200 paths.
SEEDED_IDS = ["000000000000000000000000", "000000000000000000000001", "aaaaaaaaaaaaaaaaaaaaaaaa",
              "0123456789abcdef01234567"]


STRING_IDS = ["0", "ext-1", "aaaaaaaaaaaaaaaaaaaaaaab"]


def _seed(db, settings) -> None:
    jobs = [make_job(_id=ObjectId(i)) for i in SEEDED_IDS]
    with_list(jobs[0], [(jobs[1], 0.9), (jobs[2], 0.8), (jobs[3], 0.7)])
    for item, match in zip(jobs[0]["similarJobs"], (["city", "level"], [], None)):
        if match is not None:
            item.update(cosine=item["score"] - 0.05, match=match)
    with_list(jobs[1], [(jobs[0], 0.9), ({"_id": ObjectId()}, 0.5)])  # one neighbour gone
    jobs[2]["embedding"] = {"status": "pending"}
    jobs[3].update(status="closed")
    with_list(jobs[3], [(jobs[0], 0.9)])
    strings = [make_job(_id=i) for i in STRING_IDS]
    with_list(strings[0], [(jobs[0], 0.8), (strings[1], 0.7)])
    strings[2]["status"] = "draft"
    extra = [make_job(category="Finance") for _ in range(4)]
    db[settings.mongo.jobs_collection].insert_many(jobs + strings + extra)


@pytest.fixture(params=[False, True], ids=["objectid-ids", "string-ids"])
def live_api(request, settings, db):
    """The API served by a real uvicorn server in a thread; yields its base URL."""
    _seed(db, settings)
    if request.param:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update={"string_ids": True})})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", request.param
    server.should_exit = True
    thread.join(timeout=10)


def _fuzz(operation, mode: GenerationMode, examples: int = 40, **fixed) -> list[int]:
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @hypothesis_settings(max_examples=examples, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def run(case) -> None:
        response = case.call_and_validate()
        statuses.append(response.status_code)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert "Traceback" not in response.text and "mongodb://" not in response.text

    run()
    return statuses


# schemathesis.pytest.from_fixture (schemathesis 4.32) breaks on pytest 9 (it sets the
# private Function._nodeid), so each operation's strategy is driven by hypothesis directly.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_openapi_spec_fuzzed_against_running_api(live_api, mode):
    base, string_ids = live_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/api/jobs/{job_id}/similar", "/health"}
    statuses: dict[str, list[int]] = {}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.path == "/health":
            continue  # no parameters: nothing can be invalid
        statuses[operation.path] = _fuzz(operation, mode)
        if mode is GenerationMode.POSITIVE and "{job_id}" in operation.path:
            # Random ids are almost never stored ones: also fuzz the query of seeded jobs.
            for job_id in SEEDED_IDS + (STRING_IDS if string_ids else []):
                statuses[operation.path] += _fuzz(operation, mode, 10, path_parameters={"job_id": job_id})
    similar = set(statuses["/api/jobs/{job_id}/similar"])
    # The fuzzing reached real answers, not only rejections.
    assert ({200, 404} if mode is GenerationMode.POSITIVE else {400}) <= similar, sorted(similar)
    assert max(max(v) for v in statuses.values()) < 500
