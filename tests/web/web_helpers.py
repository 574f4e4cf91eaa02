"""Helpers of the web tests (imported by the test modules; fixtures are in conftest.py)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

with warnings.catch_warnings():
    # Starlette 1.x asks for `httpx2` for its test client and warns when it finds `httpx`.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORDS = {
    "admin": "admin-password-1",
    "analyst": "analyst-password-1",
    "viewer": "viewer-password-1",
}
CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


def page_csrf(client: TestClient, path: str = "/login") -> str:
    """The CSRF token a page hands to this client's session."""
    r = client.get(path)
    match = CSRF_RE.search(r.text)
    assert match, f"no CSRF token on {path} ({r.status_code})"
    return match.group(1)


def login(client: TestClient, username: str, password: str | None = None) -> str:
    """Sign in through the login form; returns the session's new CSRF token."""
    token = page_csrf(client)
    r = client.post(
        "/login",
        data={
            "username": username,
            "password": password or PASSWORDS[username],
            "csrf_token": token,
            "next": "/",
        },
    )
    assert r.status_code == 303, r.text
    return page_csrf(client, "/")


def media_csv(path: Path, rows: int = 20, bad_row: int | None = None) -> Path:
    """A media CSV of ``rows`` data rows; ``bad_row`` (1-based) gets a negative spend."""
    lines = ["date,channel,spend,impressions"]
    for i in range(1, rows + 1):
        day = f"2024-01-{(i - 1) // 2 + 1:02d}"
        channel = "tv" if i % 2 else "search"
        spend = -5 if i == bad_row else 100 * i
        lines.append(f"{day},{channel},{spend},{1000 * i}")
    path.write_text("\n".join(lines) + "\n")
    return path
