"""Browser checks in headless Chromium: the Prefect UI (real `prefect server start`) shows a
deployment run that went through the worker, with its report artifact and the score plot;
the read side's API docs (`/docs`) render with the network blocked."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# one stack for the session, shared by the ops and browser modules
pytest_plugins = ["tests.ops_stack"]

pytestmark = pytest.mark.slow

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,3400", "--virtual-time-budget=15000"]


# Offline: every host name fails to resolve and everything not on loopback goes to a closed
# proxy port, so only the server under test (an IP literal on 127.0.0.1) can answer.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
           "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI (scripts/test.sh installs it with apt-get)")
        pytest.skip("chromium not installed (apt-get install chromium; scripts/test.sh does it)")
    return path


def render(url: str, profile: Path, *extra: str, want: tuple[str, ...] = ()) -> str:
    """The DOM after the page's scripts ran; retried while the SPA is still loading."""
    dom = ""
    for _ in range(8):  # a loaded machine renders the SPA slowly
        result = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, "--dump-dom", url],
                                capture_output=True, text=True, timeout=90)
        dom = result.stdout
        if all(w in dom for w in want):
            break
        time.sleep(3)
    return dom


def test_run_page_and_its_artifact_render_in_chromium(stack, tmp_path):
    from tests.test_ops_stack import import_file, runs_for_import, wait_for_runs

    # the stack may be fresh (this test can run first): give the run postings to list
    import_id, _ = import_file(stack, tmp_path, n=60, seed=17)
    (triggered,) = wait_for_runs(lambda: runs_for_import(stack, import_id), 1)
    stack.wait_finished([triggered["id"]])
    dep = stack.deployment("similarity-refresh", "on-demand")
    run = stack.post(f"/deployments/{dep['id']}/create_flow_run", {"parameters": {"mode": "full"}})
    (done,) = stack.wait_finished([run["id"]])
    assert done["state_type"] == "COMPLETED", done["state"]
    report = next(a for a in stack.artifacts_of(done["id"]) if a["key"] == "jobsim-run-report")

    run_dom = render(f"{stack.ui}/runs/flow-run/{done['id']}", tmp_path / "profile",
                     want=(done["name"], "jobsim-run-report"))
    for text in (done["name"], "Completed", "on-demand", "jobsim-run-report", "jobsim-run-counts"):
        assert text in run_dom, f"{text!r} not on the run page"

    art_url = f"{stack.ui}/artifacts/artifact/{report['id']}"
    art_dom = render(art_url, tmp_path / "profile", want=("Score distribution", 'src="data:image/svg+xml;base64,'))
    (tmp_path / "artifact.html").write_text(art_dom)  # kept for a look when this fails
    for text in ("similarity refresh", "full", "Counts", "cost (USD)", "lists written", "Timings",
                 "Score distribution", 'src="data:image/svg+xml;base64,', done["name"]):
        assert text in art_dom, f"{text!r} not on the artifact page"

    shot = tmp_path / "artifact.png"
    subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    art_url], capture_output=True, timeout=90, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


@contextmanager
def served(app) -> Iterator[str]:
    """``app`` on a real uvicorn server in a thread on a free loopback port; yields its URL."""
    import uvicorn

    from jobsim_app.localdb import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


ENDPOINT = 'data-path="/api/jobs/{job_id}/similar"'
SUMMARY = "Similar jobs of one posting"


def test_api_docs_render_offline_in_chromium(settings, db, tmp_path):
    from fastapi import FastAPI

    from api_export.app import create_app

    browser = chromium()  # skips (or fails in CI) before any server starts
    with served(create_app(settings)) as base:
        dom = render(f"{base}/docs", tmp_path / "profile", *OFFLINE, want=(ENDPOINT, SUMMARY))
        shot = tmp_path / "docs.png"
        subprocess.run([browser, *FLAGS, *OFFLINE, f"--user-data-dir={tmp_path / 'profile'}",
                        f"--screenshot={shot}", f"{base}/docs"], capture_output=True, timeout=90, check=True)
    (tmp_path / "docs.html").write_text(dom)  # kept for a look when this fails
    for text in (ENDPOINT, SUMMARY, 'data-path="/health"', "jobsim read side", "/static-offline-docs/"):
        assert text in dom, f"{text!r} not on the offline /docs page"
    assert "cdn.jsdelivr.net" not in dom
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Control: FastAPI's stock docs page loads Swagger UI from a CDN, so with the same
    # blocking it shows no endpoint — the blocking works and the check above can fail.
    stock = FastAPI(title="stock")

    @stock.get("/api/jobs/{job_id}/similar", summary=SUMMARY)
    def similar(job_id: str) -> dict:
        return {}

    with served(stock) as base:
        stock_dom = render(f"{base}/docs", tmp_path / "profile-stock", *OFFLINE)
    assert "cdn.jsdelivr.net" in stock_dom and ENDPOINT not in stock_dom
