"""The MMM page and /api/v1/mmm/fits: background fits, their progress, and a stored run's page."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from web_helpers import TestClient

from mixwise.mmm.fit import MMM, Verdict
from mixwise.mmm.jobs import FitJobs
from mixwise.mmm.runs import list_runs, save_run
from mixwise.workspace import Workspace

SignedIn = Callable[[str], tuple[TestClient, str]]
MakeClient = Callable[[], TestClient]
FIGURE = re.compile(r'<script type="application/json" id="(fig-mmm-[a-z]+)">(.*?)</script>', re.S)
HTMX = {"HX-Request": "true"}


def quick_fitter(model: MMM, gate: threading.Event | None = None) -> Any:
    """A fitter that reports some progress, waits for ``gate`` if given (the job stays
    running until then) and returns an already fitted model."""

    def fitter(ws: Workspace, settings: dict[str, Any], on_progress: Any) -> MMM:
        on_progress("sampling", 0.4)
        if gate is not None:
            assert gate.wait(30)
        on_progress("sampling", 1.0)
        return model

    return fitter


def use_jobs(app: FastAPI, jobs: FitJobs) -> FitJobs:
    app.state.mmm_jobs = jobs
    return jobs


def figures(html: str) -> dict[str, Any]:
    return {name: json.loads(text) for name, text in FIGURE.findall(html)}


# -- API -------------------------------------------------------------------------------------
def test_fit_api_checks_roles_csrf_and_settings(as_role: SignedIn, make_client: MakeClient) -> None:
    assert make_client().post("/api/v1/mmm/fits", json={}).status_code == 401
    viewer, token = as_role("viewer")
    r = viewer.post("/api/v1/mmm/fits", json={}, headers={"X-CSRF-Token": token})
    assert r.status_code == 403 and "analyst" in r.json()["detail"]
    assert viewer.get("/api/v1/mmm/fits").json() == []
    assert viewer.get("/api/v1/mmm/fits/abc").status_code == 404

    analyst, token = as_role("analyst")
    assert analyst.post("/api/v1/mmm/fits", json={}).status_code == 403  # no CSRF token
    csrf = {"X-CSRF-Token": token}
    bad = ({"chains": 0}, {"draws": 5}, {"method": "mcmc"}, {"channels": []}, {"x": 1})
    for body in (*bad, {"geo_level": "city"}):
        r = analyst.post("/api/v1/mmm/fits", json=body, headers=csrf)
        assert r.status_code == 422, body
    r = analyst.post(
        "/api/v1/mmm/fits", json={"start": "2024-03-01", "end": "2024-02-01"}, headers=csrf
    )
    assert r.status_code == 422 and "start 2024-03-01 is after end 2024-02-01" in r.json()["detail"]
    assert analyst.get("/api/v1/mmm/fits").json() == []


def test_fit_api_runs_a_job_to_a_stored_run(
    app: FastAPI, as_role: SignedIn, mmm_workspace: Workspace, tiny_mmm: MMM
) -> None:
    jobs = use_jobs(app, FitJobs(fitter=quick_fitter(tiny_mmm)))
    analyst, token = as_role("analyst")
    r = analyst.post(
        "/api/v1/mmm/fits",
        json={"channels": ["tv", "search"], "method": "map", "draws": 200},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/api/v1/mmm/fits/{job['id']}"
    assert job["status"] in ("queued", "running")
    assert job["settings"]["channels"] == ["tv", "search"] and job["settings"]["chains"] == 4
    jobs.wait(job["id"], timeout=30)
    viewer, _ = as_role("viewer")
    done = viewer.get(f"/api/v1/mmm/fits/{job['id']}").json()
    assert done["status"] == "done" and done["progress"] == 1.0 and done["run_id"] == 1
    assert done["error"] is None and done["finished_at"] and done["user_id"] is not None
    assert [j["id"] for j in viewer.get("/api/v1/mmm/fits").json()] == [job["id"]]
    assert viewer.get("/api/v1/mmm/runs/1").status_code == 200


def test_fit_api_job_with_an_unknown_channel_fails(
    app: FastAPI, as_role: SignedIn, mmm_workspace: Workspace
) -> None:
    """The real fitter: the data are checked before any JAX work, so this is quick."""
    analyst, token = as_role("analyst")
    r = analyst.post(
        "/api/v1/mmm/fits", json={"channels": ["tv", "radio"]}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 202
    jobs: FitJobs = app.state.mmm_jobs
    jobs.wait(r.json()["id"], timeout=30)
    failed = analyst.get(f"/api/v1/mmm/fits/{r.json()['id']}").json()
    assert failed["status"] == "failed" and failed["run_id"] is None
    assert "no media rows for channel 'radio'" in failed["error"]
    assert analyst.get("/api/v1/mmm/runs").json() == []


# -- page ------------------------------------------------------------------------------------
def test_page_without_data_points_to_the_data_page(as_role: SignedIn) -> None:
    viewer, _ = as_role("viewer")
    r = viewer.get("/mmm")
    assert r.status_code == 200
    assert 'href="/mmm"' in r.text  # in the menu
    assert "No model runs and no media data yet." in r.text and 'href="/data"' in r.text
    assert "fit-form" not in r.text


def test_page_form_starts_a_job_that_polls_and_leads_to_its_run(
    app: FastAPI, as_role: SignedIn, mmm_workspace: Workspace, tiny_mmm: MMM
) -> None:
    gate = threading.Event()
    jobs = use_jobs(app, FitJobs(fitter=quick_fitter(tiny_mmm, gate)))
    viewer, viewer_token = as_role("viewer")
    page = viewer.get("/mmm").text
    assert "No model runs yet." in page and "fit-form" not in page
    r = viewer.post("/mmm/fits", data={"csrf_token": viewer_token, "channels": ["tv"]})
    assert r.status_code == 403

    analyst, token = as_role("analyst")
    page = analyst.get("/mmm").text
    assert 'name="channels" value="tv" checked' in page
    assert 'name="channels" value="search" checked' in page
    assert analyst.post("/mmm/fits", data={"channels": ["tv"]}).status_code == 403  # no token

    form = {"csrf_token": token, "kpi": "revenue", "method": "nuts", "controls": "all"}
    r = analyst.post("/mmm/fits", data={**form, "channels": [""]}, headers=HTMX)
    assert r.status_code == 200 and "Tick at least one channel." in r.text
    r = analyst.post("/mmm/fits", data={**form, "channels": ["tv"], "chains": "99"}, headers=HTMX)
    assert "Chains must be a whole number from 1 to 16." in r.text
    assert jobs.list() == []

    r = analyst.post(
        "/mmm/fits",
        data={**form, "channels": ["", "tv", "search"], "chains": "2", "draws": "50"},
        headers=HTMX,
    )
    assert r.status_code == 202, r.text
    job = jobs.list()[0]
    assert job.settings["channels"] == ["tv", "search"] and job.settings["chains"] == 2
    assert job.settings["controls"] is None and job.user_id is not None
    assert f'hx-get="/mmm/fits/{job.id}" hx-trigger="every 1s"' in r.text
    while jobs.get(job.id).progress < 0.4:  # type: ignore[union-attr]
        time.sleep(0.01)
    poll = analyst.get(f"/mmm/fits/{job.id}", headers=HTMX)
    assert poll.status_code == 200 and "HX-Redirect" not in poll.headers
    assert '<progress max="100" value="40">' in poll.text and "Sampling the posterior" in poll.text
    assert "hx-trigger" in viewer.get("/mmm").text  # a running fit shows to everyone
    gate.set()
    jobs.wait(job.id, timeout=30)
    poll = analyst.get(f"/mmm/fits/{job.id}", headers=HTMX)
    assert poll.status_code == 200 and poll.headers["HX-Redirect"] == "/mmm?run=1"
    assert 'href="/mmm?run=1"' in poll.text and "hx-trigger" not in poll.text
    gone = analyst.get("/mmm/fits/nope", headers=HTMX)
    assert gone.status_code == 286 and "no longer known" in gone.text
    assert analyst.get("/mmm/fits/nope").status_code == 404

    # Without htmx: the form post leads to the page, which shows the job.
    r = analyst.post("/mmm/fits", data={**form, "channels": ["tv"], "method": "map"})
    assert r.status_code == 303 and r.headers["location"].startswith("/mmm?job=")
    jobs.wait(r.headers["location"].split("=")[1], timeout=30)
    page = analyst.get(r.headers["location"]).text
    assert "Fit finished" in page and 'href="/mmm?run=2"' in page
    r = analyst.post("/mmm/fits", data={**form, "channels": [""]})
    assert r.status_code == 422 and "Tick at least one channel." in r.text
    assert 'id="chart-mmm-roi"' in r.text  # the latest run still shows
    assert [run.id for run in list_runs(mmm_workspace)] == [2, 1]


def test_page_shows_a_run(
    app: FastAPI, as_role: SignedIn, workspace: Workspace, tiny_mmm: MMM
) -> None:
    run = copy.copy(tiny_mmm)  # search's ROI flagged as mostly prior, tv's measured
    run.identification_ = tiny_mmm.identification_.copy()
    run.identification_["measured"] = [True, False]
    save_run(workspace, run)
    fast = copy.copy(tiny_mmm)
    fast.method = "map"
    fast.diagnostics_ = None
    fast.verdict_ = Verdict(False, "fast mode (MAP with a Laplace approximation): exploring")
    save_run(workspace, fast)
    viewer, token = as_role("viewer")

    r = viewer.get("/mmm?run=1")
    assert r.status_code == 200
    html = r.text
    assert "verdict-bad" in html and "do not use: " in html and "Do not use" in html
    assert "Highest R-hat" in html and "Divergent transitions" in html
    assert '<option value="1" selected>' in html and '<option value="2">' in html
    figs = figures(html)
    assert set(figs) == {"fig-mmm-roi", "fig-mmm-decomposition", "fig-mmm-curves"}
    roi = figs["fig-mmm-roi"]["data"][0]
    assert roi["x"] == ["tv", "search"] and len(roi["error_y"]["array"]) == 2
    assert all(v >= 0 for v in roi["error_y"]["array"] + roi["error_y"]["arrayminus"])
    names = [t["name"] for t in figs["fig-mmm-decomposition"]["data"]]
    assert names == ["Baseline", "tv", "search", "Observed Revenue"]
    assert len(figs["fig-mmm-decomposition"]["data"][0]["x"]) == 40
    assert len(figs["fig-mmm-curves"]["data"]) == 6  # band, mean and today per channel
    assert html.count("<tr>") >= 2 + 4  # estimate rows and diagnostics
    rows = re.findall(r'<th scope="row">(\w+)</th>(.*?)</tr>', html, re.S)
    flagged = [name for name, cells in rows if "mostly prior" in cells]
    assert flagged == ["search"] and 'id="mmm-prior-note"' in html

    latest = viewer.get("/mmm").text  # the latest run: fast mode, labelled
    assert "fast mode" in latest and "The fast mode has no convergence diagnostics." in latest
    assert '<option value="2" selected>' in latest
    assert app.state.mmm_runs.computed == 2
    viewer.get("/mmm?run=1")
    assert app.state.mmm_runs.computed == 2  # a run's posterior is loaded once

    for bad in ("99", "x"):
        r = viewer.get(f"/mmm?run={bad}")
        assert r.status_code == 404 and f"There is no run {bad}." in r.text

    r = viewer.post("/language", data={"lang": "zh_CN", "next": "/mmm", "csrf_token": token})
    assert r.status_code == 303
    html = viewer.get("/mmm?run=1").text
    assert "营销组合模型" in html and "最高 R-hat" in html and "主要来自先验" in html
    assert figures(html)["fig-mmm-decomposition"]["data"][0]["name"] == "基线"


@pytest.fixture(autouse=True)
def _no_leftover_jobs(app: FastAPI) -> Any:
    yield
    app.state.mmm_jobs.shutdown()


def test_page_shows_a_panels_roi_by_geo(
    as_role: SignedIn, workspace: Workspace, tiny_geo_mmm: MMM, tiny_mmm: MMM
) -> None:
    save_run(workspace, tiny_geo_mmm)
    save_run(workspace, tiny_mmm)
    viewer, token = as_role("viewer")
    html = viewer.get("/mmm?run=1").text
    assert 'id="mmm-geo-roi"' in html and "Return on investment by geo" in html
    card = html.split('id="mmm-geo-roi"')[1].split("</section>")[0]
    assert re.findall(r'<th scope="row">(\w+)</th>', card) == ["south", "north"]  # by spend
    mean = tiny_geo_mmm.roi_by_geo_.loc[("north", "search"), "mean"]
    north = card.split('<th scope="row">north</th>')[1].split("</tr>")[0]
    assert f"{mean:.2f}" in north and north.count("<td") == 3  # spend, tv, search
    assert 'id="mmm-geo-roi"' not in viewer.get("/mmm?run=2").text  # national: no card
    viewer.post("/language", data={"lang": "zh_CN", "next": "/mmm", "csrf_token": token})
    assert "各地区投资回报率" in viewer.get("/mmm?run=1").text
