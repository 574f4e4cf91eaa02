from __future__ import annotations

import datetime as dt

import pandas as pd

from mixwise.workspace import Workspace


def test_coverage_drops_partial_edge_periods(workspace: Workspace) -> None:
    # Wednesday 2024-01-03 .. Sunday 2024-01-21: the first week (from Monday 01-01) is partial,
    # the weeks of 01-08 and 01-15 are complete.
    days = pd.date_range("2024-01-03", "2024-01-21")
    media = pd.DataFrame({"date": days.date, "channel": "tv", "spend": 1.0, "currency": "CNY"})
    outcomes = pd.DataFrame({"date": days.date, "revenue": 10.0})
    assert workspace.ingest("media", media).ok
    assert workspace.ingest("outcomes", outcomes).ok
    spend = workspace.warehouse.spend_by_channel("week")
    assert [p.date() for p in pd.to_datetime(spend["period"])] == [
        dt.date(2024, 1, 8),
        dt.date(2024, 1, 15),
    ]
    assert spend["spend"].tolist() == [7.0, 7.0]
    everything = workspace.warehouse.outcomes_by_period("week", complete=False)
    assert everything["revenue"].sum() == 10.0 * len(days)
    # Less than one whole month: the partial month is shown rather than nothing.
    assert len(workspace.warehouse.outcomes_by_period("month")) == 1


def test_version_changes_on_every_write(workspace: Workspace) -> None:
    before = workspace.warehouse.version
    frame = pd.DataFrame({"date": ["2024-01-01"], "revenue": [1.0]})
    assert workspace.ingest("outcomes", frame).ok
    assert workspace.warehouse.version == before + 1
    assert not workspace.ingest("outcomes", frame.assign(revenue=-1.0)).ok
    assert workspace.warehouse.version == before + 1  # a rejected import writes nothing
