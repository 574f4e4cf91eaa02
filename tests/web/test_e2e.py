"""The real app under uvicorn, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import datetime as dt
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from web_helpers import PASSWORDS, media_csv

from mixwise.accounts import create_user
from mixwise.mmm.fit import MMM
from mixwise.mmm.jobs import FitJobs
from mixwise.mmm.runs import save_run
from mixwise.web.app import create_app
from mixwise.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium (/usr/bin/chromium) "
        "is not installed; apt-get install chromium to run the browser tests",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server(workspace: Workspace, tmp_path: Path) -> Iterator[str]:
    with workspace.state.session() as s:
        create_user(s, "admin", PASSWORDS["admin"], "admin")
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(84)]
    rows = ["date,channel,spend"]
    out = ["date,revenue,conversions"]
    for i, day in enumerate(days):
        wave = 1 + 0.3 * math.sin(i / 6)
        for j, channel in enumerate(("tv", "search", "social")):
            rows.append(f"{day},{channel},{round((3 - j) * 1500 * wave + i * 10)}")
        out.append(f"{day},{round(30000 * wave + i * 150)},{round(120 * wave) + i}")
    (tmp_path / "media.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "outcomes.csv").write_text("\n".join(out) + "\n")
    assert workspace.ingest("media", tmp_path / "media.csv").ok
    assert workspace.ingest("outcomes", tmp_path / "outcomes.csv").ok

    with serve(create_app(workspace)) as url:
        yield url


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """``app`` under uvicorn in a thread; its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def watch(page: Any, server: str) -> list[str]:
    """Collect console errors and warnings, page errors and any request off this server."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "request",
        lambda r: (
            problems.append(f"external request {r.url}")
            if not r.url.startswith((server, "data:", "blob:"))
            else None
        ),
    )
    return problems


def test_browser_login_chart_and_upload(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    bad = media_csv(tmp_path / "bad-spend.csv", rows=20, bad_row=17)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = watch(page, server)
            page.goto(server + "/")
            assert "/login" in page.url
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORDS["admin"])
            page.click("button.primary")
            page.wait_for_selector("#chart-spend.js-plotly-plot svg.main-svg", timeout=20_000)
            page.wait_for_selector("#chart-outcomes.js-plotly-plot svg.main-svg")
            assert page.locator("#chart-spend .trace").count() >= 3
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

            page.click("nav a[href='/data']")
            page.set_input_files("input[name=file]", str(bad))
            page.click("form.upload-form button.primary")
            page.wait_for_selector("#import-result .result-bad")
            row = page.locator("#import-result table.errors tbody tr").first
            assert row.locator("td").nth(0).inner_text() == "17"
            assert row.locator("td").nth(1).inner_text() == "spend"
            assert "bad-spend.csv" in page.locator("#history").inner_text()  # swapped in
            page.screenshot(path=str(tmp_path / "data.png"), full_page=True)

            page.click(".lang-switch button[value=zh_CN]")
            page.wait_for_selector("html[lang=zh-CN]")
            assert "数据" in page.locator("nav").inner_text()
        finally:
            browser.close()
    assert not problems, problems
    assert (tmp_path / "overview.png").stat().st_size > 10_000


def test_browser_attribution_page(server: str, workspace: Workspace, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright
    from test_attribution_web import add_journeys

    add_journeys(workspace)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = watch(page, server)
            page.goto(server + "/attribution")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORDS["admin"])
            page.click("button.primary")
            page.wait_for_selector("#chart-attr-shares.js-plotly-plot svg.main-svg", timeout=20_000)
            page.wait_for_selector("#chart-attr-lengths.js-plotly-plot svg.main-svg")
            page.wait_for_selector("#chart-attr-ttc.js-plotly-plot svg.main-svg")
            models = page.locator("input[type=checkbox][name=models]").count()
            assert models >= 10
            assert page.locator("#chart-attr-shares .trace.bars").count() == models
            page.screenshot(path=str(tmp_path / "attribution.png"), full_page=True)

            # Untick all but two models: htmx swaps the results and the URL can be shared.
            for box in page.locator("input[type=checkbox][name=models]").all()[2:]:
                box.uncheck()
            page.click("#attr-form button.primary")
            expect(page.locator("#chart-attr-shares .trace.bars")).to_have_count(2)
            page.wait_for_url("**models=first&models=last&by=**")
            assert page.locator("table.comparison thead th").count() == 4  # channel, 2, spread

            page.select_option("select[name=detail]", "first")
            page.wait_for_selector("text=Detail: First touch")
            page.wait_for_url("**detail=first**")

            page.fill("input[name=lookback_days]", "-3")
            page.click("#attr-form button.primary")
            page.wait_for_selector(".attr-problems")
            assert "positive number of days" in page.locator(".attr-problems").inner_text()
        finally:
            browser.close()
    assert not problems, problems


FIT_GATE = threading.Event()  # the stand-in fit finishes once the test has seen its progress


@pytest.fixture
def mmm_server(mmm_workspace: Workspace, tiny_mmm: MMM) -> Iterator[str]:
    """A workspace with weekly media and one stored run; a stand-in fitter reports progress,
    waits for ``FIT_GATE`` (set by the test once the page shows the job's progress: without
    the wait a slow browser could miss it) and returns ``tiny_mmm``."""
    with mmm_workspace.state.session() as s:
        create_user(s, "admin", PASSWORDS["admin"], "admin")
    save_run(mmm_workspace, tiny_mmm)
    FIT_GATE.clear()

    def fitter(ws: Workspace, settings: dict[str, Any], on_progress: Any) -> MMM:
        on_progress("sampling", 0.25)
        FIT_GATE.wait(30)
        for step in range(2, 5):
            on_progress("sampling", step / 4)
            time.sleep(0.1)
        return tiny_mmm

    app = create_app(mmm_workspace)
    app.state.mmm_jobs = FitJobs(fitter=fitter)
    with serve(app) as url:
        yield url
    app.state.mmm_jobs.shutdown()


def test_browser_mmm_page_charts_and_a_fit(mmm_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = watch(page, mmm_server)
            page.goto(mmm_server + "/mmm")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORDS["admin"])
            page.click("button.primary")
            page.wait_for_selector("#chart-mmm-roi.js-plotly-plot svg.main-svg", timeout=20_000)
            page.wait_for_selector("#chart-mmm-decomposition.js-plotly-plot svg.main-svg")
            page.wait_for_selector("#chart-mmm-curves.js-plotly-plot svg.main-svg")
            assert page.locator("#chart-mmm-roi .point").count() == 2  # tv and search
            assert page.locator("#chart-mmm-roi .errorbar").count() == 2
            assert page.locator("table.estimates tbody tr").count() == 2
            assert "Do not use" in page.locator(".verdict").inner_text()
            page.screenshot(path=str(tmp_path / "mmm.png"), full_page=True)

            # Fit a model: the job's progress shows, then the page moves to the new run.
            page.click(".fit-card summary")
            page.uncheck("input[name=channels][value=search]")
            page.select_option("select[name=method]", "map")
            page.click(".fit-form button.primary")
            expect(page.locator(".mmm-job progress")).to_be_visible()
            FIT_GATE.set()
            page.wait_for_url("**/mmm?run=2", timeout=20_000)
            page.wait_for_selector("#chart-mmm-roi.js-plotly-plot svg.main-svg")
            expect(page.locator("select[name=run] option[selected]")).to_have_attribute(
                "value", "2"
            )
        finally:
            browser.close()
    assert not problems, problems
