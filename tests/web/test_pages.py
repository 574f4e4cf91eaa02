"""The HTML pages: login, CSRF, rate limiting, role-aware menu, uploads, users, settings, i18n."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from web_helpers import PASSWORDS, TestClient, login, media_csv, page_csrf

from mixwise.web import deps
from mixwise.workspace import Workspace

SignedIn = Callable[[str], tuple[TestClient, str]]
MakeClient = Callable[[], TestClient]


def test_anonymous_pages_redirect_to_login(make_client: MakeClient) -> None:
    client = make_client()
    r = client.get("/data?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/data%3Fx%3D1"
    r = client.get("/users", headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"].startswith("/login?next=/users")
    page = client.get("/login")
    assert page.status_code == 200 and 'name="password"' in page.text


def test_login_success_and_failure(make_client: MakeClient, workspace: Workspace) -> None:
    client = make_client()
    token = page_csrf(client)
    bad = client.post("/login", data={"username": "admin", "password": "nope", "csrf_token": token})
    assert bad.status_code == 401 and "Wrong username or password." in bad.text
    assert client.get("/").status_code == 303
    ok = client.post(
        "/login",
        data={
            "username": "admin",
            "password": PASSWORDS["admin"],
            "csrf_token": token,
            "next": "/data",
        },
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/data"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert "max-age=28800" in cookie
    assert client.get("/data").status_code == 200
    # A new session gets a new CSRF token: the pre-login one no longer works.
    assert page_csrf(client, "/") != token
    # Logging out ends the session.
    r = client.post("/logout", data={"csrf_token": page_csrf(client, "/")})
    assert r.status_code == 303 and client.get("/").status_code == 303


def test_login_does_not_redirect_off_site(make_client: MakeClient) -> None:
    client = make_client()
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        token = page_csrf(client)
        r = client.post(
            "/login",
            data={
                "username": "viewer",
                "password": PASSWORDS["viewer"],
                "csrf_token": token,
                "next": target,
            },
        )
        assert r.headers["location"] == "/"
        client.post("/logout", data={"csrf_token": page_csrf(client, "/")})


def test_sessions_expire(as_role: SignedIn, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = as_role("viewer")
    assert client.get("/api/v1/me").status_code == 200
    later = time.time() + 8 * 3600 + 5
    monkeypatch.setattr(deps.time, "time", lambda: later)
    assert client.get("/api/v1/me").status_code == 401


def test_form_post_without_csrf_is_refused(as_role: SignedIn, workspace: Workspace) -> None:
    anon_client, _ = as_role("viewer")
    client, token = as_role("admin")
    for data in ({}, {"csrf_token": "forged"}):
        r = client.post(
            "/settings", data={**data, "currency": "USD", "name": "x", "timezone": "UTC"}
        )
        assert r.status_code == 403
        assert "did not come from this site" in r.text
    assert workspace.currency == "CNY"
    # The login form is protected too (login CSRF).
    fresh = TestClient(client.app, follow_redirects=False)
    r = fresh.post("/login", data={"username": "admin", "password": PASSWORDS["admin"]})
    assert r.status_code == 403
    # A token from another session does not work either.
    other = page_csrf(anon_client, "/")
    r = client.post(
        "/settings", data={"csrf_token": other, "currency": "USD", "name": "x", "timezone": "UTC"}
    )
    assert r.status_code == 403 and other != token


def test_login_rate_limit(app: FastAPI, make_client: MakeClient) -> None:
    client = make_client()
    limit = app.state.login_limiter.max_attempts
    token = page_csrf(client)

    def attempt(username: str, password: str) -> int:
        data = {"username": username, "password": password, "csrf_token": token}
        r = client.post("/login", data=data)
        return r.status_code

    assert [attempt("analyst", "wrong") for _ in range(limit)] == [401] * limit
    r = client.post(
        "/login",
        data={"username": "Analyst", "password": PASSWORDS["analyst"], "csrf_token": token},
    )
    assert r.status_code == 429
    assert "Too many failed sign-in attempts" in r.text
    # Other usernames from the same address are not locked out; success resets the count.
    assert attempt("viewer", "wrong") == 401
    assert attempt("viewer", PASSWORDS["viewer"]) == 303
    client.cookies.clear()
    token = page_csrf(client)
    assert [attempt("viewer", "wrong") for _ in range(limit - 1)] == [401] * (limit - 1)


def test_menu_follows_role(as_role: SignedIn) -> None:
    viewer, _ = as_role("viewer")
    page = viewer.get("/").text
    assert 'href="/data"' in page
    assert 'href="/users"' not in page and 'href="/settings"' not in page
    r = viewer.get("/users")
    assert r.status_code == 403 and "Your role does not allow" in r.text
    assert viewer.get("/settings").status_code == 403
    assert 'enctype="multipart/form-data"' not in viewer.get("/data").text  # no upload form
    admin, _ = as_role("admin")
    page = admin.get("/").text
    assert 'href="/users"' in page and 'href="/settings"' in page
    assert admin.get("/users").status_code == 200


def test_overview_embeds_charts(as_role: SignedIn, workspace: Workspace, tmp_path: Path) -> None:
    client, _ = as_role("viewer")
    assert "Nothing imported yet." in client.get("/").text
    workspace.ingest("media", media_csv(tmp_path / "m.csv"))
    page = client.get("/").text
    assert 'id="fig-spend"' in page and '"stackgroup":"spend"' in page
    assert '<script src="/vendor/plotly.min.js"' in page
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert client.get("/static/vendor/htmx.min.js").status_code == 200


def test_json_in_pages_cannot_close_the_script(
    as_role: SignedIn, workspace: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "m.csv"
    path.write_text('date,channel,spend\n2024-01-01,"</script><b>x",5\n')
    assert workspace.ingest("media", path).ok
    client, _ = as_role("viewer")
    page = client.get("/").text
    assert "</script><b>" not in page and "\\u003cb\\u003ex" in page


def test_upload_page_shows_errors_row_by_row(
    as_role: SignedIn, workspace: Workspace, tmp_path: Path
) -> None:
    client, token = as_role("analyst")
    bad = media_csv(tmp_path / "bad.csv", rows=20, bad_row=17)
    with bad.open("rb") as fh:
        r = client.post(
            "/data/import",
            data={"kind": "media", "csrf_token": token},
            files={"file": ("bad.csv", fh, "text/csv")},
            headers={"HX-Request": "true"},
        )
    assert r.status_code == 200
    assert "bad.csv was rejected; nothing was written." in r.text
    assert '<td class="num">17</td>' in r.text and "<code>spend</code>" in r.text
    assert "<html" not in r.text and 'hx-swap-oob="true"' in r.text
    good = media_csv(tmp_path / "good.csv", rows=20)
    with good.open("rb") as fh:  # without htmx: the whole page, with the result
        r = client.post(
            "/data/import",
            data={"kind": "media", "csrf_token": token, "mapping": ""},
            files={"file": ("good.csv", fh, "text/csv")},
        )
    assert r.status_code == 200 and "<html" in r.text
    assert "Imported good.csv into Media spend." in r.text
    assert workspace.warehouse.count("media") == 20
    viewer, vtoken = as_role("viewer")
    with good.open("rb") as fh:
        r = viewer.post(
            "/data/import",
            data={"kind": "media", "csrf_token": vtoken},
            files={"file": ("good.csv", fh, "text/csv")},
        )
    assert r.status_code == 403


def test_users_page_adds_user_and_changes_role(as_role: SignedIn) -> None:
    client, token = as_role("admin")
    r = client.post(
        "/users",
        data={
            "csrf_token": token,
            "username": "mei",
            "password": "mei-password-1",
            "role": "analyst",
            "display_name": "Mei",
        },
    )
    assert r.status_code == 303
    page = client.get("/users").text
    assert "User mei added." in page and "<strong>mei</strong>" in page
    r = client.post("/users/mei/role", data={"csrf_token": token, "role": "approver"})
    assert r.status_code == 303
    assert "mei is now approver." in client.get("/users").text
    r = client.post("/users", data={"csrf_token": token, "username": "x", "password": "short"})
    assert "Check the form" in client.get("/users").text
    me = client.get("/api/v1/users").json()
    assert {u["username"]: u["role"] for u in me}["mei"] == "approver"


def test_settings_page_changes_currency(as_role: SignedIn, workspace: Workspace) -> None:
    client, token = as_role("admin")
    r = client.post(
        "/settings",
        data={"csrf_token": token, "currency": "usd", "name": "Acme", "timezone": "Asia/Shanghai"},
    )
    assert r.status_code == 303
    assert "Settings saved." in client.get("/settings").text
    assert (workspace.currency, workspace.get_setting("timezone")) == ("USD", "Asia/Shanghai")
    client.post(
        "/settings", data={"csrf_token": token, "currency": "USD", "name": "A", "timezone": "X/Y"}
    )
    assert "unknown timezone" in client.get("/settings").text


def test_language_switch(as_role: SignedIn, make_client: MakeClient) -> None:
    client, token = as_role("viewer")
    r = client.post("/language", data={"csrf_token": token, "lang": "zh_CN", "next": "/data"})
    assert r.status_code == 303 and r.headers["location"] == "/data"
    page = client.get("/").text
    assert '<html lang="zh-CN">' in page
    assert "概览" in page and "Overview" not in page
    assert "退出登录" in page and "Sign out" not in page
    # Stored on the user: a new session of the same user is in Chinese too.
    other = make_client()
    login(other, "viewer")
    assert "数据" in other.get("/data").text
    # Anonymous visitors keep their choice in the session.
    anon = make_client()
    token = page_csrf(anon)
    anon.post("/language", data={"csrf_token": token, "lang": "zh_CN"})
    assert "用户名" in anon.get("/login").text
    anon.post("/language", data={"csrf_token": token, "lang": "klingon"})
    assert "用户名" in anon.get("/login").text


def test_security_headers(make_client: MakeClient) -> None:
    r = make_client().get("/login")
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp  # nothing from other origins
    assert r.headers["Cache-Control"] == "no-store"


def test_unknown_page_is_a_page(make_client: MakeClient) -> None:
    r = make_client().get("/no/such/page")
    assert r.status_code == 404 and "Page not found" in r.text
