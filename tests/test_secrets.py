"""Secrets (a Mongo URI with a password, the OpenAI API key) never reach logs, state or errors."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import pytest

pytestmark = pytest.mark.usefixtures("prefect_harness")
PASSWORD = "Pw-7f3c9e1b-never-log-me"


def flow_run_logs(flow_run_id) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read() -> str:
        async with get_client() as client:
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            run = await client.read_flow_run(flow_run_id)
            return "\n".join(log.message for log in logs) + "\n" + repr(run.state) + repr(run.parameters)

    return asyncio.run(read())


def test_mongo_password_never_appears(settings, monkeypatch, caplog, capfd):
    from flows.refresh import similarity_refresh

    host = settings.mongo.uri.get_secret_value().split("//", 1)[1]
    monkeypatch.setenv("JOBSIM_MONGO__URI", f"mongodb://jobsim:{PASSWORD}@{host}&authSource=admin")
    monkeypatch.setenv("JOBSIM_MONGO__TIMEOUT_MS", "2000")
    caplog.set_level(logging.DEBUG)
    state = asyncio.run(similarity_refresh(return_state=True))
    assert state.is_failed()
    with pytest.raises(Exception) as failure:
        state.result()
    out, err = capfd.readouterr()
    captured = "\n".join([str(failure.value), repr(failure.value), caplog.text, out, err,
                          flow_run_logs(state.state_details.flow_run_id)])
    assert "authentication failed" in captured.lower()  # the failure itself is explained
    assert PASSWORD not in captured


def test_settings_repr_hides_secrets(monkeypatch):
    from jobsim.settings import Settings

    monkeypatch.setenv("JOBSIM_MONGO__URI", f"mongodb://u:{PASSWORD}@h:1")
    monkeypatch.setenv("JOBSIM_EMBEDDING__API_KEY", PASSWORD)
    s = Settings()
    assert PASSWORD not in repr(s) and PASSWORD not in str(s.model_dump())


def test_api_key_never_appears_in_logs_state_or_errors(settings, db, monkeypatch, caplog, capfd):
    """A run that embeds, then one whose key is refused: the key is nowhere in what they leave."""
    from flows.refresh import similarity_refresh
    from tests.embedding_server import EmbeddingServer
    from tests.helpers import seed_jobs

    caplog.set_level(logging.DEBUG)
    with EmbeddingServer(dimensions=64) as server:
        monkeypatch.setenv("JOBSIM_EMBEDDING__PROVIDER", "openai")
        monkeypatch.setenv("JOBSIM_EMBEDDING__BASE_URL", server.url)
        monkeypatch.setenv("JOBSIM_EMBEDDING__API_KEY", PASSWORD)
        monkeypatch.setenv("JOBSIM_EMBEDDING__DIMENSIONS", "64")
        seed_jobs(settings, 30, seed=2)
        ok = asyncio.run(similarity_refresh(return_state=True))
        assert ok.is_completed() and ok.result()["embedded"] > 0
        db.jobs.update_many({}, {"$set": {"title": "Changed title to re-embed",
                                          "updatedAt": datetime.now(timezone.utc)}})
        server.add_fault("401", times=0)
        refused = asyncio.run(similarity_refresh(return_state=True))
        assert refused.is_failed()
        with pytest.raises(Exception) as failure:
            refused.result()
    out, err = capfd.readouterr()
    stored = repr(list(db.pipeline_state.find({}))) + repr(list(db.jobs.find({}, {"embedding": 1})))
    captured = "\n".join([str(failure.value), repr(failure.value), caplog.text, out, err, stored,
                          flow_run_logs(ok.state_details.flow_run_id),
                          flow_run_logs(refused.state_details.flow_run_id)])
    assert "401" in captured  # the failure itself is explained
    assert PASSWORD not in captured
