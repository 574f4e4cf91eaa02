"""MMM input data: weekly sums equal the daily tables, scales are O(1), and every bad input is
named by row, column and the form expected."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mixwise.mmm.data import MMMData, MMMDataError, parameter_count
from mixwise.simulate import MarketConfig, simulate_market
from mixwise.simulate.market import Market
from mixwise.workspace import Workspace

CHANNELS = ("tv", "brand_search", "social")
CONTROLS = ("price_index", "promotion", "competitor_activity")


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def market() -> Market:
    """200 days from Sunday 2024-09-01 to Wednesday 2025-03-19, two geos: 28 complete
    Monday-start weeks."""
    config = MarketConfig.small().replace(days=200, geos=("north", "south"))
    return simulate_market(config, seed=4)


@pytest.fixture
def market_ws(workspace: Workspace, market: Market) -> Workspace:
    for kind in ("media", "outcomes", "controls"):
        report = workspace.ingest(kind, getattr(market, kind))
        assert report.ok, report.lines()
    return workspace


def wide(n: int = 40) -> pd.DataFrame:
    """A Robyn-style weekly frame: DATE (Mondays), revenue, three spend columns, two controls."""
    rng = np.random.default_rng(7)
    dates = pd.date_range("2024-01-01", periods=n, freq="7D")
    spend = rng.gamma(2.0, 500.0, (n, 3)).round(2)
    return pd.DataFrame(
        {
            "DATE": dates.strftime("%Y-%m-%d"),
            "revenue": (20_000 + spend @ np.array([2.0, 3.0, 1.5]) + rng.normal(0, 500, n)).round(
                2
            ),
            "tv_S": spend[:, 0],
            "search_S": spend[:, 1],
            "facebook_S": spend[:, 2],
            "competitor_sales_B": rng.normal(100_000, 5_000, n).round(0),
            "event": (np.arange(n) % 9 == 0).astype(int),
        }
    )


WIDE_ARGS: dict[str, Any] = {
    "date": "DATE",
    "kpi": "revenue",
    "channels": ["tv_S", "search_S", "facebook_S"],
    "controls": ["competitor_sales_B", "event"],
}


def write(frame: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "dt_simulated_weekly.csv"
    frame.to_csv(path, index=False)
    return path


def rejected(call: Callable[[], object]) -> str:
    with pytest.raises(MMMDataError) as info:
        call()
    return str(info.value)


# -- parameter count ---------------------------------------------------------------------------
def test_parameter_count_is_documented_arithmetic() -> None:
    # 4 per channel + 1 per control + 2 per Fourier order + trend 2 + intercept + noise
    assert parameter_count(3, 2, 2, "W") == 12 + 2 + 4 + 4
    assert parameter_count(1, 0, 0, "W") == 8
    # Daily data also estimates a day-of-week pattern (3 Fourier pairs).
    assert parameter_count(3, 2, 2, "D") == parameter_count(3, 2, 2, "W") + 6
    with pytest.raises(ValueError):
        parameter_count(-1, 0, 2, "W")


# -- from a workspace (the simulator's daily tables) -------------------------------------------
def test_weekly_national_equals_daily_sums_by_hand(market_ws: Workspace, market: Market) -> None:
    data = MMMData.from_workspace(market_ws, channels=CHANNELS)
    assert data.frequency == "W" and data.period_length_days == 7
    assert data.geos == ("national",) and data.channels == CHANNELS
    assert data.controls == tuple(sorted(CONTROLS))
    assert data.kpi == "revenue" and data.kpi_type == "revenue" and data.currency == "CNY"
    # Sunday 2024-09-01 and Monday to Wednesday 2025-03-17..19 are incomplete weeks.
    assert data.n_periods == 28
    assert data.dates[0] == pd.Timestamp("2024-09-02")
    assert data.dates[-1] == pd.Timestamp("2025-03-10")
    assert (data.dates.dayofweek == 0).all()
    assert len(data.notes) == 2
    assert data.notes[0].startswith("dropped 1 day (2024-09-01): the first week")
    assert data.notes[1].startswith("dropped 3 days (2025-03-17 … 2025-03-19): the last week")
    assert data.source == "workspace"

    week = 5
    first = data.dates[week].date()
    days = {first + dt.timedelta(days=i) for i in range(7)}
    media = market.media[market.media["date"].isin(days)]
    for c, name in enumerate(CHANNELS):
        by_hand = media.loc[media["channel"] == name, "spend"].sum()  # over geos and campaigns
        assert data.spend[week, 0, c] == pytest.approx(by_hand, rel=1e-12)
    out = market.outcomes[market.outcomes["date"].isin(days)]
    assert data.kpi_values[week, 0] == pytest.approx(out["revenue"].sum(), rel=1e-12)
    ctl = market.controls[market.controls["date"].isin(days)]
    for k, name in enumerate(data.controls):  # controls: mean over days and geos
        by_hand = ctl.loc[ctl["name"] == name, "value"].mean()
        assert data.control_values[week, 0, k] == pytest.approx(by_hand, rel=1e-12)


def test_geo_panel_sums_to_national(market_ws: Workspace, market: Market) -> None:
    national = MMMData.from_workspace(market_ws, channels=CHANNELS, controls=())
    panel = MMMData.from_workspace(market_ws, channels=CHANNELS, controls=(), geo_level="geo")
    assert panel.geos == ("north", "south")
    assert panel.spend.shape == (28, 2, 3) and panel.kpi_values.shape == (28, 2)
    np.testing.assert_allclose(panel.kpi_values.sum(axis=1), national.kpi_values[:, 0])
    np.testing.assert_allclose(panel.spend.sum(axis=1), national.spend[:, 0, :])
    # One geo's week by hand.
    days = {panel.dates[0].date() + dt.timedelta(days=i) for i in range(7)}
    out = market.outcomes
    south = out[out["date"].isin(days) & (out["geo"] == "south")]["revenue"].sum()
    assert panel.kpi_values[0, 1] == pytest.approx(south, rel=1e-12)


def test_daily_range_and_conversions(market_ws: Workspace, market: Market) -> None:
    data = MMMData.from_workspace(
        market_ws,
        kpi="conversions",
        channels=["social"],
        controls=["price_index"],
        frequency="D",
        start="2024-10-01",
        end="2024-11-15",
    )
    assert data.frequency == "D" and data.kpi_type == "conversions"
    assert data.n_periods == 46 and data.notes == ()
    assert data.dates[0] == pd.Timestamp("2024-10-01")
    assert data.dates[-1] == pd.Timestamp("2024-11-15")
    out = market.outcomes
    day = out[out["date"] == dt.date(2024, 10, 3)]
    assert data.kpi_values[2, 0] == day["conversions"].sum()


def test_default_design_needs_more_weeks(market_ws: Workspace) -> None:
    # 8 channels and 3 controls: 4·8 + 3 + 2·2 + 2 + 1 + 1 = 43 parameters for 28 weeks.
    message = rejected(lambda: MMMData.from_workspace(market_ws))
    assert "workspace: 28 weeks for 43 parameters: need at least 43 weeks" in message
    # The ratio is a knob: 0.75 weeks per parameter needs 33; 0.5 needs 22, and passes.
    message = rejected(lambda: MMMData.from_workspace(market_ws, min_periods_per_parameter=0.75))
    assert "need at least 33 weeks" in message
    assert MMMData.from_workspace(market_ws, min_periods_per_parameter=0.5).n_channels == 8


def test_scaled_data_is_order_one(market_ws: Workspace) -> None:
    data = MMMData.from_workspace(market_ws, channels=CHANNELS)
    s = data.scaled()
    np.testing.assert_allclose(s.spend.mean(axis=(0, 1)), np.ones(3))
    assert s.kpi.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(s.controls.mean(axis=(0, 1)), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.controls.std(axis=(0, 1)), 1.0)
    np.testing.assert_allclose(s.kpi_to_original(s.kpi), data.kpi_values)
    np.testing.assert_allclose(s.spend_to_original(s.spend), data.spend)
    np.testing.assert_allclose(s.spend_scale, data.spend.mean(axis=(0, 1)))
    assert s.kpi_scale == pytest.approx(data.kpi_values.mean())
    assert not data.spend.flags.writeable  # frozen all the way down

    frame = data.to_frame()
    assert list(frame.columns) == ["date", "geo", "role", "variable", "value"]
    assert len(frame) == 28 * (1 + 3 + 3)
    tv = frame[(frame["variable"] == "tv")]["value"].to_numpy()
    np.testing.assert_array_equal(tv, data.spend[:, 0, 0])


def hand_tables(days: int = 119) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily spend for two channels (Monday 2024-01-01 on) and revenue that varies."""
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(days)]
    rows = [
        {"date": d, "channel": c, "spend": float(10 + (i % 5) * (j + 1)), "currency": "CNY"}
        for i, d in enumerate(dates)
        for j, c in enumerate(("search", "social"))
    ]
    media = pd.DataFrame(rows)
    outcomes = pd.DataFrame({"date": dates, "revenue": [1000.0 + i for i in range(days)]})
    return media, outcomes


def test_workspace_gaps_currencies_and_names(workspace: Workspace) -> None:
    media, outcomes = hand_tables()
    # A channel without a row on a day spent 0 that day; not a gap.
    media = media.drop(index=media.index[(media["channel"] == "social")][:1])
    media.loc[media.index[-1], "currency"] = "USD"
    outcomes = outcomes[outcomes["date"] != dt.date(2024, 2, 14)]
    assert workspace.ingest("media", media).ok
    assert workspace.ingest("outcomes", outcomes).ok
    message = rejected(lambda: MMMData.from_workspace(workspace))
    assert message.startswith("workspace: cannot build the model data: 2 problem(s)")
    assert "column 'currency': spend is in several currencies (CNY, USD)" in message
    assert "column 'date': outcomes have no row on 2024-02-14" in message

    message = rejected(lambda: MMMData.from_workspace(workspace, channels=["tv"]))
    assert "no media rows for channel 'tv'; channels in media: search, social" in message
    message = rejected(lambda: MMMData.from_workspace(workspace, kpi="profit"))
    assert "column 'profit'" in message and "revenue, conversions, leads" in message

    # Fixed: the first social day counts as 0 spend.
    assert workspace.ingest("outcomes", hand_tables()[1]).ok
    media.loc[media.index[-1], "currency"] = "CNY"
    assert workspace.ingest("media", media).ok
    data = MMMData.from_workspace(workspace, frequency="D")
    assert data.spend[0, 0, 1] == 0.0 and data.spend[0, 0, 0] == 10.0
    assert data.n_periods == 119 and data.controls == ()


def test_workspace_day_without_media_is_a_gap(workspace: Workspace) -> None:
    media, outcomes = hand_tables()
    media = media[media["date"] != dt.date(2024, 3, 5)]
    assert workspace.ingest("media", media).ok and workspace.ingest("outcomes", outcomes).ok
    message = rejected(lambda: MMMData.from_workspace(workspace))
    assert "media has no rows on 2024-03-05" in message
    assert "rows with spend 0 are fine" in message


# -- from a wide file --------------------------------------------------------------------------
def test_wide_csv_reads_robyn_layout(tmp_path: Path) -> None:
    frame = wide()
    data = MMMData.from_wide_csv(write(frame, tmp_path), **WIDE_ARGS)
    assert data.frequency == "W" and data.kpi_type == "revenue" and data.n_periods == 40
    assert data.geos == ("national",) and data.currency is None
    assert data.source.endswith("dt_simulated_weekly.csv")
    assert data.dates[0] == pd.Timestamp("2024-01-01")
    np.testing.assert_allclose(data.spend[:, 0, 1], frame["search_S"])
    np.testing.assert_allclose(data.kpi_values[:, 0], frame["revenue"])
    np.testing.assert_allclose(data.control_values[:, 0, 1], frame["event"])


def test_frame_sorts_panel_and_infers_conversions() -> None:
    frame = wide(30).rename(columns={"revenue": "orders"})
    frame["geo"] = "east"
    other = frame.assign(geo="west", tv_S=frame["tv_S"] * 2)
    panel = pd.concat([other, frame]).sample(frac=1.0, random_state=1)  # any row order
    args = {**WIDE_ARGS, "kpi": "orders", "geo": "geo", "fourier_order": 1}
    data = MMMData.from_frame(panel, **args)
    assert data.kpi_type == "conversions" and data.geos == ("east", "west")
    np.testing.assert_allclose(data.spend[:, 1, 0], 2 * data.spend[:, 0, 0])
    np.testing.assert_allclose(data.spend[:, 0, 0], frame["tv_S"])


def test_pymc_example_layout_daily_and_weekly() -> None:
    n = 60
    x = np.linspace(0, 6, n)
    frame = pd.DataFrame(
        {
            "date_week": pd.date_range("2018-04-02", periods=n, freq="D"),
            "y": 5000 + 100 * np.sin(x),
            "x1": np.abs(np.cos(x)) * 10,
            "x2": np.where(np.arange(n) % 4 == 0, 3.0, 0.0),
            "t": np.arange(n),
        }
    )
    data = MMMData.from_frame(frame, date="date_week", kpi="y", channels=["x1", "x2"])
    assert data.frequency == "D" and data.source == "<DataFrame>"
    with pytest.raises(MMMDataError, match="does not fit frequency='W'"):
        MMMData.from_frame(frame, date="date_week", kpi="y", channels=["x1", "x2"], frequency="W")


# -- bad wide inputs: each named by row, column and the form expected --------------------------
def _cell(row: int, column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype(object)
        frame.loc[row - 1, column] = value
        return frame

    return edit


BAD: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], list[str]]] = {
    "unparseable date": (
        _cell(3, "DATE", "Jan 15th"),
        ["row 3, column 'DATE': expected a date like 2024-01-31, got 'Jan 15th'"],
    ),
    "missing date": (_cell(4, "DATE", ""), ["row 4, column 'DATE': missing date"]),
    "duplicated date": (
        _cell(5, "DATE", "2024-01-15"),
        ["row 5, column 'DATE': date 2024-01-15 is also on row 3", "rows 3 and 5"],
    ),
    "gap": (
        lambda f: f.drop(index=[10, 11]),
        ["column 'DATE': missing weeks: 2024-03-11, 2024-03-18;", "needs a row"],
    ),
    "negative spend": (
        _cell(7, "tv_S", -5),
        ["row 7, column 'tv_S': expected spend ≥ 0, got -5"],
    ),
    "empty spend": (
        _cell(8, "search_S", ""),
        ["row 8, column 'search_S': missing spend: unknown is not 0; fill it or drop the period"],
    ),
    "text spend": (
        _cell(9, "facebook_S", "n/a"),
        ["row 9, column 'facebook_S': expected a number ≥ 0, got 'n/a'"],
    ),
    "empty kpi": (
        _cell(2, "revenue", ""),
        ["row 2, column 'revenue': missing KPI value: unknown is not 0; fill it"],
    ),
    "negative kpi": (_cell(2, "revenue", -1), ["row 2, column 'revenue': expected KPI value ≥ 0"]),
    "empty control": (
        _cell(6, "event", ""),
        ["row 6, column 'event': missing control value: unknown is not 0"],
    ),
    "constant channel": (
        lambda f: f.assign(tv_S=0.0),
        ["column 'tv_S': channel tv_S has no variation: the model cannot separate its effect"],
    ),
    "constant control": (
        lambda f: f.assign(event=1),
        ["column 'event': control event has no variation"],
    ),
    "kpi all zero": (
        lambda f: f.assign(revenue=0.0),
        ["column 'revenue': the KPI revenue is 0 in every period"],
    ),
    "too few periods": (
        lambda f: f.head(20),
        ["20 weeks for 22 parameters: need at least 22 weeks"],
    ),
    "three-day spacing": (
        lambda f: f.assign(DATE=pd.date_range("2024-01-01", periods=len(f), freq="3D")),
        ["column 'DATE': dates are mostly 3 days apart; expected daily (1 day apart) or weekly"],
    ),
    "off the weekly grid": (
        _cell(12, "DATE", "2024-03-19"),
        [
            "row 12, column 'DATE': 2024-03-19 is not on the weekly grid that starts 2024-01-01 (a "
            "Monday)"
        ],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_wide_input_is_named(case: str, tmp_path: Path) -> None:
    edit, expected = BAD[case]
    path = write(edit(wide()), tmp_path)
    message = rejected(lambda: MMMData.from_wide_csv(path, **WIDE_ARGS))
    assert message.startswith(f"{path}: cannot build the model data")
    for text in expected:
        assert text in message, message


def test_unknown_columns_list_the_columns(tmp_path: Path) -> None:
    path = write(wide(), tmp_path)
    args = {**WIDE_ARGS, "channels": ["tv_s", "radio_S"], "controls": ["tv_S"]}
    message = rejected(lambda: MMMData.from_wide_csv(path, **args))
    assert (
        "column 'radio_S': no such column (named as the channel); the columns are: DATE, "
        "revenue, tv_S, search_S, facebook_S, competitor_sales_B, event" in message
    )
    assert "column 'tv_s'" in message and "did you mean 'tv_S'?" in message
    message = rejected(
        lambda: MMMData.from_wide_csv(path, date="DATE", kpi="revenue", channels=["revenue"])
    )
    assert "column 'revenue': named twice: as the KPI and as a channel" in message
    message = rejected(lambda: MMMData.from_wide_csv(tmp_path / "nope.csv", **WIDE_ARGS))
    assert "no such file" in message


def test_every_cell_problem_is_reported_at_once(tmp_path: Path) -> None:
    frame = _cell(3, "tv_S", -1)(_cell(5, "revenue", "")(_cell(9, "DATE", "x")(wide())))
    message = rejected(lambda: MMMData.from_wide_csv(write(frame, tmp_path), **WIDE_ARGS))
    assert "3 problem(s)" in message
    lines = message.splitlines()[1:]
    assert [line.split(", ")[1] for line in lines] == ["row 3", "row 5", "row 9"]


def test_direct_construction_is_checked() -> None:
    dates = pd.date_range("2024-01-01", periods=3, freq="7D")
    good = {
        "dates": dates,
        "frequency": "W",
        "geos": ("national",),
        "channels": ("tv",),
        "controls": (),
        "kpi": "revenue",
        "kpi_type": "revenue",
        "spend": np.array([[[1.0]], [[2.0]], [[3.0]]]),
        "kpi_values": np.array([[5.0], [6.0], [7.0]]),
        "control_values": np.zeros((3, 1, 0)),
    }
    assert MMMData(**good).spend_scale.tolist() == [2.0]
    bad = {**good, "spend": np.ones((3, 1, 2))}
    with pytest.raises(MMMDataError, match=r"spend has shape \(3, 1, 2\)"):
        MMMData(**bad)
    bad = {**good, "spend": np.array([[[1.0]], [[np.nan]], [[3.0]]])}
    with pytest.raises(MMMDataError, match="the first on 2024-01-08"):
        MMMData(**bad)
