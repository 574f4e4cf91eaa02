"""Fixtures of the web tests: an app on the ``workspace`` fixture, users of each role, clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from web_helpers import PASSWORDS, TestClient, login

from mixwise.accounts import create_user, users
from mixwise.web.app import create_app
from mixwise.workspace import Workspace


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: the web tests hash and verify passwords in almost every test."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


@pytest.fixture
def app(workspace: Workspace) -> FastAPI:
    with workspace.state.session() as s:
        for name, password in PASSWORDS.items():
            create_user(s, name, password, name)
    return create_app(workspace)


@pytest.fixture
def make_client(app: FastAPI) -> Iterator[Callable[[], TestClient]]:
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(app, follow_redirects=False)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def as_role(make_client: Callable[[], TestClient]) -> Callable[[str], tuple[TestClient, str]]:
    """A client signed in as the user named after ``role``, and its CSRF token."""

    def signed_in(role: str) -> tuple[TestClient, str]:
        client = make_client()
        return client, login(client, role)

    return signed_in
