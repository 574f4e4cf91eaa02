"""Shared fixtures: a workspace on every state backend available.

Every test that touches state takes the ``workspace`` fixture (or ``state_url``) and so runs on
SQLite and, when ``MIXWISE_TEST_POSTGRES_URL`` is set, on PostgreSQL too (one fresh schema per
test, dropped afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mixwise.config import Settings
from mixwise.workspace import Workspace

PG_URL = os.environ.get("MIXWISE_TEST_POSTGRES_URL")
BACKENDS = (
    ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)] if PG_URL else ["sqlite"]
)


@pytest.fixture(params=BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None (the workspace's own SQLite file) or a PostgreSQL URL on a fresh schema."""
    if request.param == "sqlite":
        yield None
        return
    assert PG_URL
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(state_url: str | None, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "ws", database_url=state_url)


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = Workspace.init(settings.home, settings)
    try:
        yield ws
    finally:
        ws.close()
