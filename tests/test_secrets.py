"""Secrets (a Mongo URI with a password, the OpenAI API key) never reach logs, state or errors."""

from __future__ import annotations

import asyncio
import logging

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
    state = similarity_refresh(return_state=True)
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
