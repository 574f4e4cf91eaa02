"""The Attribution page and /api/v1/attribution: access, credits, bad options, i18n, caching."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pandas as pd
import pytest
from fastapi import FastAPI
from web_helpers import TestClient

from mixwise.web import attribution
from mixwise.workspace import Workspace

SignedIn = Callable[[str], tuple[TestClient, str]]
MakeClient = Callable[[], TestClient]

# Five journeys over four channels; j4 does not convert; direct has no media spend.
TOUCHES = [
    ("j1", "2024-01-01 09:00", "social"),
    ("j1", "2024-01-02 09:00", "search"),
    ("j2", "2024-01-03 12:00", "tv"),
    ("j3", "2024-01-04 08:00", "social"),
    ("j3", "2024-01-06 20:00", "direct"),
    ("j4", "2024-01-05 10:00", "search"),
    ("j5", "2024-01-02 10:00", "tv"),
    ("j5", "2024-01-04 10:00", "social"),
    ("j5", "2024-01-07 10:00", "direct"),
]
CONVERSIONS = [
    ("j1", "2024-01-03 10:00", 100.0),
    ("j2", "2024-01-05 10:00", 50.0),
    ("j3", "2024-01-07 10:00", 80.0),
    ("j5", "2024-01-08 10:00", 120.0),
]
SPEND = {"social": 400.0, "search": 300.0, "tv": 900.0}
FIGURE = re.compile(r'<script type="application/json" id="(fig-attr-[a-z]+)">(.*?)</script>', re.S)


def add_journeys(ws: Workspace) -> None:
    touches = pd.DataFrame(TOUCHES, columns=["journey_id", "timestamp", "channel"])
    conversions = pd.DataFrame(CONVERSIONS, columns=["journey_id", "timestamp", "value"])
    media = pd.DataFrame(
        [("2024-01-01", channel, spend) for channel, spend in SPEND.items()],
        columns=["date", "channel", "spend"],
    )
    for kind, frame in (("touchpoints", touches), ("conversions", conversions), ("media", media)):
        report = ws.ingest(kind, frame)
        assert report.ok, report.as_dict()


@pytest.fixture
def journeys(workspace: Workspace) -> Workspace:
    add_journeys(workspace)
    return workspace


# -- API -------------------------------------------------------------------------------------
def test_api_needs_sign_in(make_client: MakeClient, journeys: Workspace) -> None:
    client = make_client()
    assert client.get("/api/v1/attribution").status_code == 401
    assert client.get("/api/v1/attribution/models").status_code == 401


def test_api_viewer_gets_every_model_with_credits_summing_to_conversions(
    as_role: SignedIn, journeys: Workspace
) -> None:
    client, _ = as_role("viewer")
    r = client.get("/api/v1/attribution")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total_conversions"] == 4
    assert body["total_value"] == pytest.approx(350.0)
    assert body["currency"] == "CNY"
    assert set(body["models"]) == set(attribution.model_names())
    for model, rows in body["models"].items():
        assert sum(row["conversions"] for row in rows) == pytest.approx(4.0), model
        assert sum(row["share"] for row in rows) == pytest.approx(1.0), model
        direct = next(row for row in rows if row["channel"] == "direct")
        assert direct["cost"] is None and direct["cpa"] is None and direct["roas"] is None
        tv = next(row for row in rows if row["channel"] == "tv")
        assert tv["cost"] == pytest.approx(900.0)
    assert {row["channel"] for row in body["comparison"]} == {"social", "search", "tv", "direct"}
    assert body["top_paths"] and body["path_lengths"] and body["time_to_conversion"]


def test_api_options(as_role: SignedIn, journeys: Workspace) -> None:
    client, _ = as_role("viewer")
    r = client.get(
        "/api/v1/attribution?models=first,last&by=value&markov_order=1&half_life_days=7"
        "&lookback_days=&start=&end=&granularity=channel"
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body["models"]) == ["first", "last"]
    assert body["by"] == "value"
    last = {row["channel"]: row for row in body["models"]["last"]}
    # Last touch: j1 → search (100), j2 → tv (50), j3 and j5 → direct (80 + 120).
    assert last["direct"]["value"] == pytest.approx(200.0)
    assert last["direct"]["share"] == pytest.approx(200 / 350)
    assert last["search"]["conversions"] == pytest.approx(1.0)
    # Repeated parameters work as well as commas; a lookback window drops early touches.
    r = client.get("/api/v1/attribution?models=markov&models=linear&lookback_days=1.5")
    assert r.status_code == 200 and list(r.json()["models"]) == ["linear", "markov"]
    assert r.json()["options"]["lookback_days"] == 1.5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("lookback_days=-3", "lookback window must be a positive number"),
        ("markov_order=9", "Markov order must be a whole number from 1 to 4"),
        ("models=first,nope", "Unknown model nope"),
        ("by=clicks", "by conversions or by value"),
        ("start=2024-02-01&end=2024-01-01", "start date 2024-02-01 is after the end date"),
        ("start=yesterday", "start date must be a date"),
        ("half_life_days=0", "half-life must be a positive number"),
        ("granularity=geo", "Granularity must be channel or campaign"),
    ],
)
def test_api_bad_parameters_are_422_with_a_message(
    as_role: SignedIn, journeys: Workspace, query: str, message: str
) -> None:
    client, _ = as_role("viewer")
    r = client.get(f"/api/v1/attribution?{query}")
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_api_empty_workspace(as_role: SignedIn) -> None:
    client, _ = as_role("viewer")
    r = client.get("/api/v1/attribution")
    assert r.status_code == 409 and "no touchpoints" in r.json()["detail"]


def test_api_models(as_role: SignedIn) -> None:
    client, _ = as_role("viewer")
    r = client.get("/api/v1/attribution/models")
    assert r.status_code == 200
    models = {m["name"]: m for m in r.json()}
    assert list(models) == attribution.model_names()
    assert models["last"]["label"] == "Last touch"
    assert models["time_decay"]["needs_timing"] is True
    assert models["first"]["needs_timing"] is False
    assert models["markov"]["data_driven"] is True
    assert all(m["description"] for m in models.values())


# -- page ------------------------------------------------------------------------------------
def test_page_shows_charts_and_tables(as_role: SignedIn, journeys: Workspace) -> None:
    client, _ = as_role("viewer")
    r = client.get("/attribution")
    assert r.status_code == 200
    html = r.text
    figures = dict(FIGURE.findall(html))
    assert set(figures) == {"fig-attr-shares", "fig-attr-lengths", "fig-attr-ttc"}
    shares = json.loads(figures["fig-attr-shares"])
    assert len(shares["data"]) == len(attribution.model_names())
    assert {t["name"] for t in shares["data"]} >= {"Last touch", "Markov chain"}
    assert '<table class="grid comparison">' in html
    assert '<table class="grid detail">' in html and '<table class="grid paths">' in html
    assert "Models disagree by" in html  # direct: 50 % under last touch, 0 under first
    # Every model is ticked by default; the detail table defaults to the Markov model.
    picker = html.split('id="attr-form"')[1].split("</fieldset>")[0]
    boxes = picker.count('type="checkbox" name="models"')
    assert boxes == len(attribution.model_names()) == picker.count(" checked")
    assert "Detail: Markov chain" in html
    # direct has no spend: its cost, CPA and ROAS are a dash, never 0 or infinity.
    detail = html.split('<table class="grid detail">')[1].split("</table>")[0]
    direct = detail.split('<th scope="row">direct</th>')[1].split("</tr>")[0]
    assert direct.count("—") == 3
    assert "inf" not in detail.lower() and "nan" not in detail.lower()
    assert "CNY" in detail


def test_menu_has_the_entry(as_role: SignedIn) -> None:
    client, _ = as_role("viewer")
    nav = client.get("/").text.split('<nav class="nav"')[1].split("</nav>")[0]
    assert '<a href="/attribution">Attribution</a>' in nav


def test_page_in_chinese(as_role: SignedIn, journeys: Workspace) -> None:
    client, token = as_role("viewer")
    client.post("/language", data={"lang": "zh_CN", "next": "/", "csrf_token": token})
    html = client.get("/attribution?models=first,last,markov").text
    assert 'lang="zh-CN"' in html
    assert ">归因</a>" in html and "最终点击" in html and "马尔可夫链" in html
    assert "各模型在" in html  # the disagreement sentence
    assert "Last touch" not in html


def test_page_form_options_and_detail(as_role: SignedIn, journeys: Workspace) -> None:
    client, _ = as_role("viewer")
    r = client.get(
        "/attribution?models=first&models=last&by=value&markov_order=2&half_life_days=3"
        "&lookback_days=&start=2024-01-01&end=2024-01-31&granularity=channel&detail=last"
    )
    assert r.status_code == 200
    html = r.text
    assert "Detail: Last touch" in html
    assert 'value="first" checked' in html and 'value="linear">' in html
    assert '<option value="value" selected>' in html and 'value="2" selected' in html
    assert 'name="start" value="2024-01-01"' in html


def test_page_bad_values_are_shown_not_500(as_role: SignedIn, journeys: Workspace) -> None:
    client, _ = as_role("viewer")
    url = "/attribution?by=conversions&lookback_days=-3&start=2024-02-01&end=2024-01-01"
    r = client.get(url)
    assert r.status_code == 422
    assert "The lookback window must be a positive number of days, or empty." in r.text
    assert "The start date 2024-02-01 is after the end date 2024-01-01." in r.text
    assert 'name="lookback_days" value="-3"' in r.text  # the form keeps what was typed
    # A submitted form with no model ticked (the form sends an empty `models` field).
    r = client.get("/attribution?models=&by=conversions&markov_order=1")
    assert r.status_code == 422 and "Pick at least one model." in r.text
    assert " checked" not in r.text.split('id="attr-form"')[1].split("</fieldset>")[0]
    # A hand-written URL without `models` means every model.
    r = client.get("/attribution?by=conversions&markov_order=1")
    assert r.status_code == 200
    r = client.get("/attribution?models=&by=conversions&markov_order=1")
    assert r.status_code == 422 and "Pick at least one model." in r.text
    # htmx swaps only 2xx answers: the same message comes back as the results part.
    r = client.get(url, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    assert "The start date 2024-02-01 is after the end date 2024-01-01." in r.text


def test_page_htmx_gets_the_results_part(as_role: SignedIn, journeys: Workspace) -> None:
    client, _ = as_role("viewer")
    part = client.get("/attribution?models=linear", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.text
    assert 'id="fig-attr-shares"' in part.text
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    full = client.get("/attribution?models=linear", headers=restore)
    assert "<html" in full.text and 'id="attr-form"' in full.text


def test_page_empty_workspace_points_to_data(as_role: SignedIn) -> None:
    client, _ = as_role("viewer")
    r = client.get("/attribution")
    assert r.status_code == 200
    assert "No journeys to attribute yet." in r.text and 'href="/data"' in r.text
    assert "fig-attr-shares" not in r.text and 'id="attr-form"' not in r.text


def test_page_no_journeys_in_range(as_role: SignedIn, journeys: Workspace) -> None:
    client, _ = as_role("viewer")
    r = client.get("/attribution?start=2030-01-01")
    assert r.status_code == 200
    assert "No journeys match these options." in r.text


def test_anonymous_page_redirects(make_client: MakeClient) -> None:
    r = make_client().get("/attribution?models=first")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/attribution")


# -- cache -----------------------------------------------------------------------------------
def test_results_are_cached_until_the_data_change(
    app: FastAPI, as_role: SignedIn, journeys: Workspace
) -> None:
    cache: attribution.AttributionCache = app.state.attribution_cache
    query = attribution.parse_query({"models": ["first,last"]})
    first = cache.get(journeys, query)
    assert cache.get(journeys, query) is first
    assert cache.get(journeys, attribution.parse_query({"models": ["last", "first"]})) is first
    computed = cache.computed
    made = cache.derived(first, "probe", object)
    assert cache.derived(first, "probe", object) is made  # kept with the result

    client, _ = as_role("viewer")
    assert client.get("/api/v1/attribution?models=first,last").status_code == 200
    assert client.get("/attribution?models=first&models=last").status_code == 200
    assert cache.computed == computed  # both served from the cache

    extra = pd.DataFrame(
        [("j6", "2024-01-09 10:00", "tv")], columns=["journey_id", "timestamp", "channel"]
    )
    assert journeys.ingest("touchpoints", extra).ok
    conv = pd.DataFrame(
        [("j6", "2024-01-10 10:00", 10.0)], columns=["journey_id", "timestamp", "value"]
    )
    assert journeys.ingest("conversions", conv).ok
    fresh = cache.get(journeys, query)
    assert fresh is not first and fresh.total_conversions == 5
    assert cache.computed == computed + 1
    assert client.get("/api/v1/attribution?models=first,last").json()["total_conversions"] == 5
