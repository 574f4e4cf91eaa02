"""The Planner page and /api/v1/optimize, /api/v1/scenarios: plans on a stored MMM run, clear
errors (never a 500), scenarios saved, compared and exported.

The tests that optimise share one app on one workspace holding ``tiny_mmm`` (module scope):
the allocator compiles its JAX functions once per response model and horizon shape, and the
app keeps the run's response model, so only the first plan pays for the compilation. They all
plan over two model periods (one shape) with two optimiser starts.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from web_helpers import PASSWORDS, TestClient, login

from mixwise.accounts import create_user, users
from mixwise.config import Settings
from mixwise.mmm.fit import MMM
from mixwise.mmm.response import ResponseModel as MMMResponse
from mixwise.mmm.runs import save_run
from mixwise.web.app import create_app
from mixwise.web.schemas import PlanResultPublic
from mixwise.workspace import Workspace

SignedIn = Callable[[str], tuple[TestClient, str]]
FIGURE = re.compile(r'<script type="application/json" id="(fig-plan-[a-z]+)">(.*?)</script>', re.S)
HTMX = {"HX-Request": "true"}
BUDGET = 400.0
PLAN = {"budget": "400", "periods": "2", "force": "1", "starts": "2"}


def figures(text: str) -> dict[str, Any]:
    return {name: json.loads(body) for name, body in FIGURE.findall(text)}


def strict_json(text: str) -> Any:
    """JSON that must not contain NaN or infinities."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


def plain(text: str) -> str:
    """The page's text with entities decoded (quotes and > are escaped in HTML)."""
    return html.unescape(text)


@pytest.fixture(scope="module")
def planner_app(tmp_path_factory: pytest.TempPathFactory, tiny_mmm: MMM) -> Iterator[FastAPI]:
    home = tmp_path_factory.mktemp("planner") / "ws"
    ws = Workspace.init(home, Settings(home=home))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
        with ws.state.session() as s:
            for name, password in PASSWORDS.items():
                create_user(s, name, password, name)
    save_run(ws, tiny_mmm)
    try:
        yield create_app(ws)
    finally:
        ws.close()


@pytest.fixture
def on_run(planner_app: FastAPI) -> Iterator[Callable[[str], tuple[TestClient, str]]]:
    """A client of the shared app (a workspace with one "do not use" run) signed in as
    ``role``, and its CSRF token."""
    clients: list[TestClient] = []

    def signed_in(role: str) -> tuple[TestClient, str]:
        client = TestClient(planner_app, follow_redirects=False)
        clients.append(client)
        return client, login(client, role)

    yield signed_in
    for c in clients:
        c.close()


# -- without a run ---------------------------------------------------------------------------
def test_page_without_a_run_points_to_the_mmm_page(as_role: SignedIn) -> None:
    viewer, _ = as_role("viewer")
    r = viewer.get("/planner")
    assert r.status_code == 200
    assert 'href="/planner" class="active"' in r.text  # in the menu
    assert "No model run yet." in r.text and 'href="/mmm"' in r.text
    assert "planner-form" not in r.text
    assert "No saved scenarios yet." in r.text

    analyst, token = as_role("analyst")
    assert "planner-form" not in analyst.get("/planner").text  # nothing to plan with
    r = analyst.post("/planner", data={"csrf_token": token, **PLAN})
    assert r.status_code == 409
    assert "There is no model run yet: fit one on the Mix model page first." in r.text
    r = analyst.post("/planner", data={"csrf_token": token, **PLAN}, headers=HTMX)
    assert r.status_code == 200 and "<html" not in r.text and 'href="/mmm"' in r.text


def test_rest_optimize_without_a_run_is_a_conflict(as_role: SignedIn) -> None:
    analyst, token = as_role("analyst")
    csrf = {"X-CSRF-Token": token}
    r = analyst.post("/api/v1/optimize", json={"budget": 400, "force": True}, headers=csrf)
    assert r.status_code == 409 and "no MMM run" in r.json()["detail"]
    r = analyst.post("/api/v1/optimize/frontier", json={"budget": 400}, headers=csrf)
    assert r.status_code == 409
    assert analyst.get("/api/v1/scenarios").json() == []
    assert analyst.get("/api/v1/scenarios/q1").status_code == 404


# -- the page with a run -----------------------------------------------------------------------
def test_page_with_a_run(on_run: SignedIn, planner_app: FastAPI, tiny_mmm: MMM) -> None:
    viewer, _ = on_run("viewer")
    r = viewer.get("/planner")
    assert r.status_code == 200
    assert "planner-form" not in r.text and "An analyst can plan budgets" in r.text

    analyst, _ = on_run("analyst")
    page = analyst.get("/planner").text
    assert 'class="form planner-form"' in page and 'name="csrf_token"' in page
    weekly = float(MMMResponse.from_mmm(tiny_mmm, force=True).history_mean.sum())
    # the budget field is empty (the current plan's spend over the horizon) and shows the
    # current weekly spend as its placeholder
    budget = re.search(r'name="budget" value="([^"]*)" placeholder="([^"]*)"', page)
    assert budget and budget.group(1) == ""
    assert float(budget.group(2)) == pytest.approx(weekly, abs=0.5)
    assert '<option value="1">#1 · ' in page and "do not use" in page
    assert "Show the frontier" in page


def test_viewer_cannot_plan(on_run: SignedIn) -> None:
    viewer, token = on_run("viewer")
    for path in ("/planner", "/planner/frontier", "/planner/scenarios/1/delete"):
        r = viewer.post(path, data={"csrf_token": token, **PLAN})
        assert r.status_code == 403, path
    r = viewer.post("/api/v1/optimize", json={"budget": 400}, headers={"X-CSRF-Token": token})
    assert r.status_code == 403


def test_a_plan_sums_to_the_budget_with_reasons_and_assumptions(on_run: SignedIn) -> None:
    analyst, token = on_run("analyst")
    r = analyst.post("/planner", data={"csrf_token": token, **PLAN, "rules": "tv>=25%"})
    assert r.status_code == 200, plain(r.text)
    text = plain(r.text)
    figs = figures(r.text)
    current, recommended = figs["fig-plan-allocation"]["data"]
    assert current["x"] == ["tv", "search"] and sum(recommended["y"]) == pytest.approx(BUDGET)
    assert recommended["y"][0] >= 0.25 * BUDGET - 0.01
    flight = figs["fig-plan-flighting"]["data"]  # two budget periods: stacked per channel
    assert [t["name"] for t in flight] == ["tv", "search"] and len(flight[0]["x"]) == 2
    assert sum(sum(t["y"]) for t in flight) == pytest.approx(BUDGET)
    assert "Predicted incremental Revenue" in text and "With the current plan" in text
    assert "90-percent interval" in text
    reasons = re.search(r'<ul class="planner-reasons">(.*?)</ul>', text, re.S)
    assert reasons and reasons.group(1).count("<li>") >= 1
    assert "at a steady daily rate" in text  # the spend-timing assumption
    assert "total budget = 400" in text and "tv>=25%" in text and "not kept" not in text
    assert 'name="rules"' in text and ">tv>=25%</textarea>" in text  # the form as sent

    r = analyst.post("/planner", data={"csrf_token": token, **PLAN}, headers=HTMX)
    assert r.status_code == 200 and "<html" not in r.text and "fig-plan-allocation" in r.text
    assert 'id="planner-scenarios"' not in r.text  # nothing saved: no out-of-band swap


def test_bad_rules_and_unusable_runs_are_clear_errors(on_run: SignedIn) -> None:
    analyst, token = on_run("analyst")
    form = {"csrf_token": token, **PLAN}
    r = analyst.post("/planner", data={**form, "rules": "tv>=10%\ntv>>80%"})
    assert r.status_code == 422
    assert "cannot read constraint 'tv>>80%'" in plain(r.text)

    r = analyst.post("/planner", data={**form, "rules": "tv>=80%\nsearch>=50%"})
    assert r.status_code == 422
    conflict = re.search(r'<ul class="planner-conflict">(.*?)</ul>', plain(r.text), re.S)
    assert conflict and "tv>=80%" in conflict.group(1) and "search>=50%" in conflict.group(1)

    r = analyst.post("/planner", data={**form, "rules": "radio>=10%"})
    assert r.status_code == 422 and "'radio' is neither a channel" in plain(r.text)
    r = analyst.post("/planner", data={**form, "budget": "lots"})
    assert r.status_code == 422 and "The budget must be a number" in r.text
    r = analyst.post("/planner", data={**form, "groups": "brand"})
    assert r.status_code == 422 and "NAME=channel,channel" in r.text
    r = analyst.post("/planner", data={**form, "periods": "2026-Q9"})
    assert r.status_code == 422
    r = analyst.post("/planner", data={**form, "objective": "profit"})
    assert r.status_code == 422 and "needs a margin" in r.text

    r = analyst.post("/planner", data={**form, "force": ""})
    assert r.status_code == 409 and "not usable" in r.text and "rough guide" in plain(r.text)
    r = analyst.post("/planner", data={**form, "run": "7"})
    assert r.status_code == 404 and "There is no run 7." in r.text
    r = analyst.post("/planner", data={**form, "rules": "tv>>80%"}, headers=HTMX)
    assert r.status_code == 200 and "cannot read constraint" in plain(r.text)


def test_saved_scenarios_are_listed_compared_exported_and_managed(on_run: SignedIn) -> None:
    analyst, token = on_run("analyst")
    form = {"csrf_token": token, **PLAN}
    r = analyst.post("/planner", data={**form, "save_as": "Q1 base"}, headers=HTMX)
    assert r.status_code == 200 and "Saved as scenario Q1 base." in r.text
    assert 'id="planner-scenarios" hx-swap-oob="true"' in r.text  # the table, refreshed
    r = analyst.post("/planner", data={**form, "budget": "500", "save_as": "Q1 more"})
    assert r.status_code == 200
    assert '<th scope="row">Q1 more' in r.text and '<th scope="row">Q1 base' in r.text

    listed = {s["name"]: s for s in analyst.get("/api/v1/scenarios").json()}
    base = listed["Q1 base"]
    assert base["kind"] == "optimized" and base["run"] == 1 and not base["active"]
    assert base["spend"] == pytest.approx(BUDGET) and "plan" not in base
    assert base["kpi"]["lower"] <= base["kpi"]["mean"] <= base["kpi"]["upper"]
    full = analyst.get("/api/v1/scenarios/Q1 base").json()
    assert len(full["plan"]) == 4 and full["request"]["budget"] == BUDGET

    viewer, _ = on_run("viewer")
    page = viewer.get("/planner", params={"compare": ["Q1 base", "Q1 more"]}).text
    side = re.search(r'<table class="grid planner-compare">(.*?)</table>', page, re.S)
    assert side and "tv: spend" in side.group(1) and "search: marginal ROI" in side.group(1)
    assert "Make active" not in page  # a viewer compares and exports only
    r = viewer.get("/planner/scenarios", params={"compare": ["Q1 base", "nope"]}, headers=HTMX)
    assert r.status_code == 200 and "no scenario &#39;nope&#39;" in r.text
    cmp = viewer.get("/api/v1/scenarios/compare", params={"names": ["Q1 base", "Q1 more"]})
    data = strict_json(cmp.text)
    assert data["scenarios"] == ["Q1 base", "Q1 more"]
    assert data["values"]["Q1 more"]["spend"] == pytest.approx(500.0)
    assert viewer.get("/api/v1/scenarios/compare").status_code == 422

    r = viewer.get("/api/v1/scenarios/Q1 base/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="Q1-base.csv"' in r.headers["content-disposition"]
    frame = pd.read_csv(io.StringIO(r.text))
    assert list(frame.columns) == ["scenario", "period", "start", "end", "channel", "amount"]
    assert frame["amount"].sum() == pytest.approx(BUDGET, abs=0.05)
    assert set(frame["channel"]) == {"tv", "search"} and frame["period"].nunique() == 2
    r = viewer.get("/api/v1/scenarios/Q1 base/export", params={"format": "xlsx"})
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    sheet = pd.read_excel(io.BytesIO(r.content))
    assert sheet["amount"].sum() == pytest.approx(BUDGET, abs=0.05)
    assert viewer.get("/api/v1/scenarios/x/export").status_code == 404
    assert viewer.delete("/api/v1/scenarios/Q1 base").status_code == 403

    sid = base["id"]
    r = analyst.post(f"/planner/scenarios/{sid}/activate", data={"csrf_token": token})
    assert r.status_code == 303
    page = analyst.get("/planner").text
    assert "Q1 base is now the active plan." in page and 'class="planner-active"' in page
    assert [s["name"] for s in analyst.get("/api/v1/scenarios").json() if s["active"]] == [
        "Q1 base"
    ]
    csrf = {"X-CSRF-Token": token}
    r = analyst.post("/api/v1/scenarios/Q1 more/activate", headers=csrf)
    assert r.status_code == 200 and r.json()["active"]
    r = analyst.post(f"/planner/scenarios/{sid}/delete", data={"csrf_token": token}, headers=HTMX)
    assert r.status_code == 200 and "Scenario Q1 base deleted." in r.text
    assert analyst.delete("/api/v1/scenarios/Q1 more", headers=csrf).status_code == 204
    assert analyst.delete("/api/v1/scenarios/Q1 more", headers=csrf).status_code == 404
    assert analyst.get("/api/v1/scenarios").json() == []


def test_the_frontier_on_the_page(on_run: SignedIn) -> None:
    analyst, token = on_run("analyst")
    r = analyst.post("/planner/frontier", data={"csrf_token": token, **PLAN}, headers=HTMX)
    assert r.status_code == 200 and "<html" not in r.text
    fig = figures(r.text)["fig-plan-frontier"]
    band, kpi, marginal = fig["data"]
    assert [kpi["x"][0], kpi["x"][-1]] == pytest.approx([0.5 * BUDGET, 1.5 * BUDGET])
    assert kpi["y"] == sorted(kpi["y"]) and marginal["yaxis"] == "y2"
    assert len(band["x"]) == 2 * len(kpi["x"])
    least = {"objective": "min-spend", "target": "100"}
    r = analyst.post("/planner/frontier", data={"csrf_token": token, **PLAN, **least})
    assert r.status_code == 422 and "The frontier needs a budget" in r.text


# -- REST ----------------------------------------------------------------------------------------
def test_rest_optimize(on_run: SignedIn, tiny_mmm: Any) -> None:
    analyst, token = on_run("analyst")
    csrf = {"X-CSRF-Token": token}
    body = {"budget": BUDGET, "periods": 2, "force": True, "starts": 2, "constraints": []}
    r = analyst.post("/api/v1/optimize", json=body, headers=csrf)
    assert r.status_code == 200, r.text
    data = strict_json(r.text)
    PlanResultPublic.model_validate(data)  # the documented shape
    assert data["run"] == 1 and "scenario" not in data
    total = sum(sum(v for v in period.values()) for period in data["plan"].values())
    assert total == pytest.approx(BUDGET) and len(data["plan"]) == 2
    assert data["reasons"] and "steady daily rate" in data["assumptions"][0]
    assert data["rules"][0] == {"rule": "total budget = 400", "ok": True}

    # no budget: what the current plan spends over the horizon (two weeks of it)
    weekly = float(MMMResponse.from_mmm(tiny_mmm, force=True).history_mean.sum())
    no_budget = {k: v for k, v in body.items() if k != "budget"}
    r = analyst.post("/api/v1/optimize", json=no_budget, headers=csrf)
    assert r.status_code == 200, r.text
    assert r.json()["request"]["budget"] == pytest.approx(2 * weekly, rel=1e-6)
    assert r.json()["spend"] == pytest.approx(2 * weekly, rel=1e-5)

    r = analyst.post("/api/v1/optimize", json={**body, "save_as": "api plan"}, headers=csrf)
    assert r.status_code == 200 and isinstance(r.json()["scenario"], int)
    assert analyst.delete("/api/v1/scenarios/api plan", headers=csrf).status_code == 204

    r = analyst.post(
        "/api/v1/optimize", json={**body, "constraints": ["tv>=80%", "search>=50%"]}, headers=csrf
    )
    assert r.status_code == 422
    assert r.json()["conflict"] == ["total budget = 400", "tv>=80%", "search>=50%"]
    r = analyst.post("/api/v1/optimize", json={**body, "constraints": ["tv>>1"]}, headers=csrf)
    assert r.status_code == 422 and "cannot read constraint 'tv>>1'" in r.json()["detail"]
    r = analyst.post("/api/v1/optimize", json={**body, "force": False}, headers=csrf)
    assert r.status_code == 409 and "not usable" in r.json()["detail"]
    r = analyst.post("/api/v1/optimize", json={**body, "run": 9}, headers=csrf)
    assert r.status_code == 404
    r = analyst.post("/api/v1/optimize", json={**body, "budget": -1}, headers=csrf)
    assert r.status_code == 422

    r = analyst.post("/api/v1/optimize/frontier", json={**body, "starts": 1}, headers=csrf)
    assert r.status_code == 200, r.text
    frontier = strict_json(r.text)
    assert frontier["run"] == 1 and len(frontier["points"]) == 11
    assert frontier["points"][5]["budget"] == pytest.approx(BUDGET)

    spec = analyst.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/optimize", "/api/v1/scenarios/{name}/export", "/api/v1/scenarios"):
        assert path in spec["paths"], path
    assert "OptimizeRequest" in spec["components"]["schemas"]


# -- languages -------------------------------------------------------------------------------------
def test_the_page_in_chinese(on_run: SignedIn) -> None:
    analyst, token = on_run("analyst")

    def choose(lang: str) -> None:  # kept on the user too: the app is shared
        r = analyst.post("/language", data={"csrf_token": token, "lang": lang, "next": "/"})
        assert r.status_code == 303

    choose("zh_CN")
    try:
        page = analyst.get("/planner").text
        assert "<title>预算规划" in page and "<h1>预算规划</h1>" in page
        assert "显示效率前沿" in page  # Show the frontier
        r = analyst.post("/planner", data={"csrf_token": token, **PLAN}, headers=HTMX)
        assert r.status_code == 200 and "推荐方案" in r.text  # Recommended plan
        assert "90％ 区间" in r.text
    finally:
        choose("en")


def test_saved_plans_need_a_short_name(on_run: SignedIn) -> None:
    analyst, token = on_run("analyst")
    r = analyst.post("/planner", data={"csrf_token": token, **PLAN, "save_as": "x" * 121})
    assert r.status_code == 422 and "at most 120 characters" in r.text
