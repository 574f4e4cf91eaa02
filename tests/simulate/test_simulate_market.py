import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mixwise.simulate import TABLES, HolidayEffect, Market, MarketConfig, simulate_market

CONTRACTS = {
    "media": ["date", "channel", "geo", "campaign", "spend", "impressions", "clicks", "currency"],
    "outcomes": ["date", "geo", "revenue", "conversions", "leads"],
    "controls": ["date", "geo", "name", "value"],
    "touchpoints": ["journey_id", "timestamp", "channel", "campaign", "interaction"],
    "conversions": ["journey_id", "timestamp", "value", "order_id"],
    "paths": ["path", "conversions", "nulls", "value"],
    "orders": ["customer_id", "date", "value", "order_id"],
    "leads": ["lead_id", "stage", "entered_at", "source_channel"],
}
STRINGS = {
    "media": ["channel", "campaign", "currency"],
    "controls": ["name"],
    "touchpoints": ["journey_id", "channel", "campaign", "interaction"],
    "conversions": ["journey_id", "order_id"],
    "paths": ["path"],
    "orders": ["customer_id"],
    "leads": ["lead_id", "stage", "source_channel"],
}
FLOATS = {
    "media": ["spend"],
    "outcomes": ["revenue"],
    "controls": ["value"],
    "conversions": ["value"],
    "paths": ["value"],
    "orders": ["value"],
}
INTS = {
    "media": ["impressions", "clicks"],
    "outcomes": ["conversions", "leads"],
    "paths": ["conversions", "nulls"],
}
DATES = {"media", "outcomes", "controls", "orders"}
TIMESTAMPS = {"touchpoints": "timestamp", "conversions": "timestamp", "leads": "entered_at"}


def test_contracts(small_market: Market) -> None:
    tables = small_market.tables()
    assert tuple(tables) == TABLES
    for name, frame in tables.items():
        assert list(frame.columns) == CONTRACTS[name], name
        assert len(frame) > 0, name
        for col in STRINGS.get(name, []):
            assert pd.api.types.is_string_dtype(frame[col]), (name, col)
            assert frame[col].notna().all(), (name, col)
        for col in FLOATS.get(name, []):
            assert frame[col].dtype == np.float64, (name, col)
        for col in INTS.get(name, []):
            assert pd.api.types.is_integer_dtype(frame[col]), (name, col)
        if name in DATES:
            assert all(type(d) is dt.date for d in frame["date"]), name
        if name in TIMESTAMPS:
            col = frame[TIMESTAMPS[name]]
            assert isinstance(col.dtype, pd.DatetimeTZDtype) and str(col.dt.tz) == "UTC"
    assert tables["media"]["geo"].isna().all()
    assert tables["outcomes"]["geo"].map(lambda g: g is None).all()
    assert set(tables["media"]["currency"]) == {"CNY"}
    assert set(tables["touchpoints"]["interaction"]) <= {"impression", "click", "visit"}


def test_keys_and_ranges(small_market: Market) -> None:
    cfg = small_market.config
    media = small_market.media
    assert not media.duplicated(["date", "channel", "geo", "campaign"]).any()
    assert (media["spend"] >= 0).all() and (media["impressions"] >= 0).all()
    assert media["spend"].sum() > 0
    assert set(media["date"]) == {cfg.start_date + dt.timedelta(days=i) for i in range(cfg.days)}
    lo = pd.Timestamp(cfg.start_date, tz="UTC")
    hi = pd.Timestamp(cfg.end_date + dt.timedelta(days=1), tz="UTC")
    for frame, col in [
        (small_market.touchpoints, "timestamp"),
        (small_market.conversions, "timestamp"),
        (small_market.leads, "entered_at"),
    ]:
        assert (frame[col] >= lo).all() and (frame[col] < hi).all()
    assert small_market.touchpoints["journey_id"].iloc[0] == "j0000001"
    orders = small_market.orders
    assert (orders["value"] > 0).all()
    assert orders["date"].min() >= cfg.start_date and orders["date"].max() <= cfg.end_date
    assert orders["customer_id"].nunique() < len(orders)  # repeat customers


def test_leads_funnel(small_market: Market) -> None:
    leads = small_market.leads
    order = {"lead": 0, "mql": 1, "sql": 2, "opportunity": 3, "won": 4, "lost": 4}
    assert set(leads["stage"]) <= set(order)
    ranks = leads["stage"].map(order)
    for _, g in leads.assign(rank=ranks).groupby("lead_id"):
        assert list(g["rank"]) == list(range(len(g)))
        assert g["entered_at"].is_monotonic_increasing
    n_leads = (leads["stage"] == "lead").sum()
    assert n_leads == small_market.outcomes["leads"].sum()
    assert set(leads["source_channel"]) <= {"organic", *small_market.config.channel_names}


def test_determinism() -> None:
    a = simulate_market(MarketConfig.small(), seed=5)
    b = simulate_market(MarketConfig.small(), seed=5)
    c = simulate_market(MarketConfig.small(), seed=6)
    for name in TABLES:
        pd.testing.assert_frame_equal(a.tables()[name], b.tables()[name])
    assert not np.allclose(a.outcomes["revenue"], c.outcomes["revenue"])


@pytest.mark.parametrize("channel", ["tv", "social", "brand_search"])
def test_switch_off_changes_outcomes_by_contribution(small_market: Market, channel: str) -> None:
    off = simulate_market(small_market.config, seed=small_market.seed, switch_off=(channel,))
    diff = small_market.outcomes["revenue"].to_numpy() - off.outcomes["revenue"].to_numpy()
    contrib = small_market.truth.contribution
    expected = contrib.loc[contrib["channel"] == channel, "contribution"].to_numpy()
    assert expected.sum() > 0
    np.testing.assert_allclose(diff, expected, rtol=1e-9, atol=1e-6)
    assert (off.media.loc[off.media["channel"] == channel, "spend"] == 0).all()
    # same noise => counterfactual API agrees
    cf = small_market.counterfactual(switch_off=(channel,))
    np.testing.assert_allclose(cf["revenue"], off.outcomes["revenue"], rtol=1e-12)


def test_switch_off_with_geos(geo_market: Market) -> None:
    off = simulate_market(geo_market.config, seed=geo_market.seed, switch_off=("video",))
    diff = geo_market.outcomes["revenue"].to_numpy() - off.outcomes["revenue"].to_numpy()
    contrib = geo_market.truth.contribution
    sel = contrib[contrib["channel"] == "video"]
    assert list(sel["geo"]) == list(geo_market.outcomes["geo"])
    np.testing.assert_allclose(diff, sel["contribution"].to_numpy(), rtol=1e-9, atol=1e-6)
    national = geo_market.media.groupby("date")["spend"].sum().mean()
    assert national == pytest.approx(sum(c.spend for c in geo_market.config.channels), rel=0.15)


def test_synergy_truth(small_market: Market) -> None:
    truth = small_market.truth
    syn = truth.synergy
    assert truth.synergy_total > 0
    pair = syn[(syn["target"] == "brand_search") & (syn["source"] == "social")]
    joint = truth.removal_contribution(("brand_search", "social")).sum()
    singles = truth.contribution_total["brand_search"] + truth.contribution_total["social"]
    assert singles - joint == pytest.approx(pair["effect"].sum(), rel=1e-9)
    # removal contributions double-count the synergy exactly once
    media_total = truth.incremental_revenue
    assert truth.contribution_total.sum() - truth.synergy_total == pytest.approx(media_total)


def test_roi_and_marginal_roi(small_market: Market) -> None:
    truth = small_market.truth
    summary = truth.summary()
    spend = small_market.media.groupby("channel")["spend"].sum()
    np.testing.assert_allclose(summary["spend"], spend.reindex(summary.index), rtol=1e-9)
    np.testing.assert_allclose(summary["roi"], summary["contribution"] / summary["spend"])
    assert (summary["marginal_roi"] > 0).all()
    # concave-ish media at these spend levels: marginal below average for most channels
    assert (summary["marginal_roi"] < summary["roi"]).sum() >= 6


def test_response_curve(small_market: Market) -> None:
    truth = small_market.truth
    for spec in small_market.config.channels:
        curve = truth.response_curve(spec.name)
        x = np.linspace(0.0, 6 * spec.half, 400)
        y = curve(x)
        assert y[0] == 0.0
        assert np.all(np.diff(y) > 0)
        after = x >= spec.half
        assert np.all(np.diff(y[after], 2) < 1e-9)
    bs = truth.response_curve("brand_search")(np.array([15_000.0]))[0]
    spec = small_market.config.channel("brand_search")
    plain = spec.effect * (1.25**1.2 / (1 + 1.25**1.2))
    assert bs > plain  # synergy partners at their mean lift brand search


def test_optimal_allocation(small_market: Market) -> None:
    truth = small_market.truth
    budget = float(truth.historical_daily_spend.sum())
    alloc = truth.optimal_allocation(budget)
    assert alloc.spend.sum() == pytest.approx(budget, rel=1e-6)
    assert (alloc.spend >= 0).all()
    assert alloc.expected_revenue >= alloc.historical_revenue
    assert alloc.expected_revenue == pytest.approx(truth.steady_state_revenue(alloc.spend))
    hist = truth.steady_state_revenue(truth.historical_daily_spend)
    assert alloc.historical_revenue == pytest.approx(hist)
    assert alloc.uplift > 0.005 * hist


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        MarketConfig(days=5)
    with pytest.raises(ValueError):
        MarketConfig(geos=("a", "b"), geo_weights=(1.0,))
    with pytest.raises(KeyError):
        simulate_market(MarketConfig.small(), switch_off=("radio",))


def test_user_defined_holiday_and_empty_journeys() -> None:
    cfg = MarketConfig.small().replace(
        n_journeys=0,
        extra_holidays=(("2024-10-01", "national_day"),),
        holiday_effects=(HolidayEffect("national_day", 0.5, before=2, after=3),),
    )
    market = simulate_market(cfg, seed=1)
    base = market.truth.expected.set_index("date")["baseline"]
    day = dt.date(2024, 10, 1)
    assert base[day] > 1.15 * base[day - dt.timedelta(days=7)]
    assert len(market.touchpoints) == 0 and len(market.paths) == 0
    assert market.paths["value"].dtype == np.float64
    assert list(market.paths.columns) == CONTRACTS["paths"]


def test_geo_contract(geo_market: Market) -> None:
    geos = set(geo_market.config.geos or ())
    for name in ("media", "outcomes", "controls"):
        frame = geo_market.tables()[name]
        assert set(frame["geo"]) == geos
    assert len(geo_market.outcomes) == 4 * geo_market.config.days
