"""Shared fixtures: a workspace on every state backend available.

Every test that touches state takes the ``workspace`` fixture (or ``state_url``) and so runs on
SQLite and, when ``MIXWISE_TEST_POSTGRES_URL`` is set, on PostgreSQL too (one fresh schema per
test, dropped afterwards). The marketing mix model tests share a small weekly market
(``mmm_workspace``) and one tiny fitted model per session (``tiny_mmm``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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


# -- marketing mix model -------------------------------------------------------------------
def weekly_market(weeks: int = 30, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily media (tv, search) and outcomes (revenue) over ``weeks`` whole Monday-start weeks,
    revenue driven by both channels: enough for a small weekly mix model."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=7 * weeks, freq="D")  # a Monday
    tv = 3000 * (1 + 0.5 * np.sin(np.arange(len(days)) / 9)) * rng.gamma(4, 0.25, len(days))
    search = 1500 * rng.gamma(4, 0.25, len(days))
    revenue = 20_000 + 1.5 * tv + 2.0 * search + rng.normal(0, 400, len(days))
    media = pd.DataFrame(
        {
            "date": np.repeat(days.date, 2),
            "channel": np.tile(["tv", "search"], len(days)),
            "spend": np.column_stack([tv, search]).ravel().round(2),
        }
    )
    outcomes = pd.DataFrame({"date": days.date, "revenue": revenue.round(2)})
    return media, outcomes


@pytest.fixture
def mmm_workspace(workspace: Workspace) -> Workspace:
    """The ``workspace`` with :func:`weekly_market`'s media and outcomes."""
    media, outcomes = weekly_market()
    for kind, frame in (("media", media), ("outcomes", outcomes)):
        report = workspace.ingest(kind, frame)
        assert report.ok, report.lines()
    return workspace


@pytest.fixture(scope="session")
def tiny_mmm() -> Any:
    """A tiny NUTS fit (one chain, 30 draws: "do not use") of two channels, fitted once per
    test session; tests store it in their workspace with ``save_run``."""
    from mixwise.mmm.data import MMMData
    from mixwise.mmm.fit import MMM

    rng = np.random.default_rng(5)
    periods = 40
    x = rng.gamma(2.0, 50.0, size=(periods, 2)) * np.array([1.0, 2.0])
    y = 1000 + 300 * x[:, 0] / (x[:, 0] + 100) + 400 * x[:, 1] / (x[:, 1] + 200)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2023-01-02", periods=periods, freq="7D"),
            "revenue": y + rng.normal(0, 20, periods),
            "tv": x[:, 0],
            "search": x[:, 1],
        }
    )
    data = MMMData.from_frame(frame, date="date", kpi="revenue", channels=["tv", "search"])
    return MMM(chains=1, draws=30, warmup=30, progress=False, seed=1).fit(data)


@pytest.fixture(scope="session")
def tiny_geo_mmm() -> Any:
    """A tiny NUTS fit (one chain, 30 draws) of a two-geo panel ("north" spends 30 % of the
    national spend, "south" 70 %), fitted once per test session."""
    from mixwise.mmm.data import MMMData
    from mixwise.mmm.fit import MMM

    rng = np.random.default_rng(6)
    periods = 40
    x = rng.gamma(2.0, 50.0, size=(periods, 2)) * np.array([1.0, 2.0])
    y = 1000 + 300 * x[:, 0] / (x[:, 0] + 100) + 400 * x[:, 1] / (x[:, 1] + 200)
    dates = pd.date_range("2023-01-02", periods=periods, freq="7D")
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "date": dates,
                    "geo": geo,
                    "revenue": share * y + rng.normal(0, 20 * share, periods),
                    "tv": share * x[:, 0],
                    "search": share * x[:, 1],
                }
            )
            for geo, share in (("north", 0.3), ("south", 0.7))
        ],
        ignore_index=True,
    )
    data = MMMData.from_frame(
        frame, date="date", kpi="revenue", channels=["tv", "search"], geo="geo"
    )
    return MMM(chains=1, draws=30, warmup=30, progress=False, seed=1).fit(data)
