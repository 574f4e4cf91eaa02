"""The JSON API through the in-process client: auth, roles, CSRF, imports, settings."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from web_helpers import PASSWORDS, TestClient, media_csv

from mixwise.web import api
from mixwise.workspace import Workspace

SignedIn = Callable[[str], tuple[TestClient, str]]


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def api_routes() -> list[tuple[str, str]]:
    out = []
    for route in api.router.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/v1"):
            path = route.path.replace("{kind}", "media").replace("{username}", "admin")
            out += [(method, path) for method in sorted(route.methods or ())]
    return out


def test_anonymous_gets_401_on_every_api_route(app: FastAPI, make_client: Callable) -> None:
    client = make_client()
    routes = api_routes()
    assert ("GET", "/api/v1/openapi.json") in routes and len(routes) >= 12
    for method, path in routes:
        r = client.request(method, path, json={})
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.json() == {"detail": "Not authenticated"}
        assert "www-authenticate" not in r.headers  # no browser Basic prompt, no cached creds


def test_me_and_openapi(as_role: SignedIn) -> None:
    client, _ = as_role("analyst")
    me = client.get("/api/v1/me").json()
    assert me["username"] == "analyst" and me["role"] == "analyst"
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/imports/{kind}" in spec["paths"]
    assert not any(p.startswith("/login") for p in spec["paths"])
    assert client.get("/api/v1/docs").status_code == 404  # would load a CDN


def test_viewer_is_refused_user_and_settings_admin(as_role: SignedIn) -> None:
    client, token = as_role("viewer")
    h = {"X-CSRF-Token": token}
    assert client.get("/api/v1/users").status_code == 403
    new = {"username": "mallory", "password": "long-enough-pw", "role": "admin"}
    r = client.post("/api/v1/users", json=new, headers=h)
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    assert (
        client.patch("/api/v1/users/viewer", json={"role": "admin"}, headers=h).status_code == 403
    )
    assert client.put("/api/v1/settings", json={"currency": "USD"}, headers=h).status_code == 403
    assert client.get("/api/v1/settings").json()["currency"] == "CNY"


def test_admin_manages_users(as_role: SignedIn, workspace: Workspace) -> None:
    client, token = as_role("admin")
    h = {"X-CSRF-Token": token}
    r = client.post(
        "/api/v1/users",
        json={"username": "lin", "password": "lin-password-1", "role": "analyst"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "analyst"
    dup = client.post(
        "/api/v1/users", json={"username": "lin", "password": "lin-password-1"}, headers=h
    )
    assert dup.status_code == 409
    short = client.post("/api/v1/users", json={"username": "x2", "password": "tiny-1"}, headers=h)
    assert short.status_code == 422 and "tiny-1" not in short.text  # input is not echoed
    r = client.patch("/api/v1/users/lin", json={"role": "approver"}, headers=h)
    assert r.status_code == 200 and r.json()["role"] == "approver"
    assert (
        client.patch("/api/v1/users/nobody", json={"role": "viewer"}, headers=h).status_code == 404
    )
    # The last admin cannot demote themself.
    r = client.patch("/api/v1/users/admin", json={"role": "viewer"}, headers=h)
    assert r.status_code == 409
    names = {u["username"]: u["role"] for u in client.get("/api/v1/users").json()}
    assert names == {"admin": "admin", "analyst": "analyst", "viewer": "viewer", "lin": "approver"}


def test_cookie_writes_need_the_csrf_header(as_role: SignedIn) -> None:
    client, token = as_role("admin")
    body = {"currency": "USD"}
    assert client.put("/api/v1/settings", json=body).status_code == 403
    assert (
        client.put("/api/v1/settings", json=body, headers={"X-CSRF-Token": "x"}).status_code == 403
    )
    assert (
        client.put("/api/v1/settings", json=body, headers={"X-CSRF-Token": token}).status_code
        == 200
    )


def test_basic_auth_for_scripts(app: FastAPI, make_client: Callable) -> None:
    client = make_client()
    r = client.get("/api/v1/me", headers=basic("admin", PASSWORDS["admin"]))
    assert r.status_code == 200 and r.json()["username"] == "admin"
    assert client.get("/api/v1/me", headers=basic("admin", "wrong")).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Basic !!"}).status_code == 401
    # No cookie, so no CSRF token needed.
    r = client.put(
        "/api/v1/settings", json={"name": "Acme"}, headers=basic("admin", PASSWORDS["admin"])
    )
    assert r.status_code == 200 and r.json()["name"] == "Acme"
    # Basic is rate-limited like the login form.
    for _ in range(app.state.login_limiter.max_attempts):
        client.get("/api/v1/me", headers=basic("viewer", "wrong"))
    r = client.get("/api/v1/me", headers=basic("viewer", PASSWORDS["viewer"]))
    assert r.status_code == 429 and "Retry-After" in r.headers


def test_upload_good_csv(as_role: SignedIn, workspace: Workspace, tmp_path: Path) -> None:
    client, token = as_role("analyst")
    path = media_csv(tmp_path / "spend.csv", rows=20)
    with path.open("rb") as fh:
        r = client.post(
            "/api/v1/imports/media",
            files={"file": ("spend.csv", fh, "text/csv")},
            headers={"X-CSRF-Token": token},
        )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["status"] == "accepted"
    assert (report["rows_read"], report["inserted"], report["updated"]) == (20, 20, 0)
    assert report["source"] == "spend.csv"
    tables = {t["kind"]: t for t in client.get("/api/v1/tables").json()}
    assert tables["media"]["rows"] == 20 and tables["media"]["channels"] == ["search", "tv"]
    rows = client.get("/api/v1/tables/media?limit=3").json()
    assert rows["total"] == 20 and len(rows["records"]) == 3
    assert rows["records"][0]["date"] == "2024-01-01"
    history = client.get("/api/v1/imports").json()
    assert history[0]["username"] == "analyst" and history[0]["inserted"] == 20
    cov = client.get("/api/v1/coverage?freq=day").json()  # weeks would drop partial edges
    assert sum(p["spend"] for p in cov["spend"]) == sum(100 * i for i in range(1, 21))
    assert client.get("/api/v1/tables/nope").status_code == 404
    assert client.get("/api/v1/coverage?freq=year").status_code == 422


def test_upload_with_mapping(as_role: SignedIn, tmp_path: Path) -> None:
    client, token = as_role("analyst")
    path = tmp_path / "export.csv"
    path.write_text("day,channel,cost\n2024-02-01,tv,10\n2024-02-01,social,5\n")
    with path.open("rb") as fh:
        r = client.post(
            "/api/v1/imports/media",
            files={"file": ("export.csv", fh, "text/csv")},
            data={"mapping": "spend=cost, date=day"},
            headers={"X-CSRF-Token": token},
        )
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 2


def test_upload_bad_csv_names_row_and_column(
    as_role: SignedIn, workspace: Workspace, tmp_path: Path
) -> None:
    client, token = as_role("analyst")
    before = {t["kind"]: t["rows"] for t in client.get("/api/v1/tables").json()}
    path = media_csv(tmp_path / "bad.csv", rows=20, bad_row=17)
    with path.open("rb") as fh:
        r = client.post(
            "/api/v1/imports/media",
            files={"file": ("bad.csv", fh, "text/csv")},
            headers={"X-CSRF-Token": token},
        )
    assert r.status_code == 422
    report = r.json()
    assert report["status"] == "rejected" and report["inserted"] == 0
    assert any(e["row"] == 17 and e["column"] == "spend" for e in report["errors"]), report
    after = {t["kind"]: t["rows"] for t in client.get("/api/v1/tables").json()}
    assert after == before
    assert workspace.warehouse.count("media") == 0


def test_viewer_cannot_import(as_role: SignedIn, tmp_path: Path) -> None:
    client, token = as_role("viewer")
    path = media_csv(tmp_path / "spend.csv")
    with path.open("rb") as fh:
        r = client.post(
            "/api/v1/imports/media",
            files={"file": ("spend.csv", fh, "text/csv")},
            headers={"X-CSRF-Token": token},
        )
    assert r.status_code == 403


def test_admin_changes_currency(as_role: SignedIn, workspace: Workspace) -> None:
    client, token = as_role("admin")
    h = {"X-CSRF-Token": token}
    r = client.put("/api/v1/settings", json={"currency": "usd"}, headers=h)
    assert r.status_code == 200 and r.json()["currency"] == "USD"
    assert workspace.currency == "USD"
    bad = client.put("/api/v1/settings", json={"currency": "US1", "name": "X"}, headers=h)
    assert bad.status_code == 400
    assert workspace.get_setting("name") == "mixwise"  # nothing applied from a refused update
    assert (
        client.put("/api/v1/settings", json={"timezone": "Mars/Base"}, headers=h).status_code == 400
    )


@pytest.mark.parametrize("role", ["admin"])
def test_password_hash_never_in_responses(as_role: SignedIn, role: str) -> None:
    client, token = as_role(role)
    h = {"X-CSRF-Token": token}
    bodies = [
        client.post(
            "/api/v1/users",
            json={"username": "zoe", "password": "zoe-password-1"},
            headers=h,
        ).text,
        client.patch("/api/v1/users/zoe", json={"role": "analyst"}, headers=h).text,
        client.get("/api/v1/users").text,
        client.get("/api/v1/me").text,
        client.get("/api/v1/openapi.json").text,
        client.get("/users").text,
    ]
    for body in bodies:
        assert "$argon2" not in body
        assert "password_hash" not in body
        assert "zoe-password-1" not in body
    users = client.get("/api/v1/users").json()
    assert all(not any(re.search("pass", k) for k in u) for u in users)
