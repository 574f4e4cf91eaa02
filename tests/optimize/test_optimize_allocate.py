"""The allocator: known optima, every rule kept, clashes explained, risk attitudes, truth."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixwise.mmm.response import UnusableModelError
from mixwise.optimize import HillResponse, InfeasibleError, Objective, TruthResponse, allocate
from mixwise.optimize.constraints import feasible_point, linear_rules, parse_constraint
from mixwise.simulate import MarketConfig, simulate_market

CHANNELS = ("tv", "video", "search", "social", "display")
GROUPS = {"brand": ("tv", "video"), "performance": ("search", "social", "display")}


def concave(budget_scale: float = 1.0) -> HillResponse:
    """Hill slope 1 (x / (x + h)), no carry-over: concave, with a closed-form optimum."""
    return HillResponse(
        channels=CHANNELS,
        half=np.array([80.0, 40.0, 20.0, 30.0, 10.0]) * budget_scale,
        slope=np.ones(5),
        max_effect=np.array([400.0, 180.0, 150.0, 120.0, 30.0]) * budget_scale,
        current=np.array([40.0, 20.0, 20.0, 10.0, 10.0]) * budget_scale,
    )


def s_shaped() -> HillResponse:
    return HillResponse(
        channels=CHANNELS,
        half=[80.0, 40.0, 20.0, 30.0, 10.0],
        slope=[2.5, 2.0, 1.5, 3.0, 1.2],
        max_effect=[400.0, 180.0, 150.0, 120.0, 30.0],
        current=[40.0, 20.0, 20.0, 10.0, 10.0],
    )


def water_filling(effect: np.ndarray, half: np.ndarray, budget: float) -> np.ndarray:
    """Independent optimum of sum E h... : E x/(x+h) has marginal E h/(x+h)^2 = lam, so
    x = max(0, sqrt(E h / lam) - h); bisection on lam until the budget is spent."""
    lo, hi = 1e-12, float((effect / half).max())
    for _ in range(200):
        lam = np.sqrt(lo * hi)
        x = np.maximum(0.0, np.sqrt(effect * half / lam) - half)
        lo, hi = (lam, hi) if x.sum() > budget else (lo, lam)
    return np.maximum(0.0, np.sqrt(effect * half / lam) - half)


def value(rm: HillResponse, x: np.ndarray) -> float:
    """The KPI of one period's spend, in float64 (not the allocator's JAX code)."""
    e, h, s = (np.asarray(a, dtype=np.float64)[0] for a in (rm.max_effect, rm.half, rm.slope))
    return float((e * x**s / (x**s + h**s)).sum())


@pytest.mark.parametrize("budget", [30.0, 100.0, 400.0])
def test_concave_curves_reach_the_closed_form_optimum(budget: float) -> None:
    rm = concave()
    best = water_filling(np.asarray(rm.max_effect)[0], np.asarray(rm.half)[0], budget)
    got = allocate(rm, budget)
    x = got.plan.to_numpy()[0]
    assert x.sum() == pytest.approx(budget, rel=1e-6)
    assert value(rm, x) == pytest.approx(value(rm, best), rel=1e-6)
    np.testing.assert_allclose(x, best, atol=2e-3 * budget)
    # at the optimum the funded channels' marginal ROI are equal
    funded = got.channels["spend"] > 1e-3 * budget
    m = got.channels.loc[funded, "marginal_roi"]
    assert m.max() - m.min() <= 1e-2 * m.max()


def test_s_shaped_curves_beat_the_best_of_100_random_plans() -> None:
    rm = s_shaped()
    budget = 150.0
    got = allocate(rm, budget)
    rng = np.random.default_rng(1)
    random_best = max(value(rm, w * budget) for w in rng.dirichlet(np.ones(5), 100))
    x = got.plan.to_numpy()[0]
    assert x.sum() == pytest.approx(budget, rel=1e-6)
    assert value(rm, x) >= random_best
    assert value(rm, x) >= value(rm, np.asarray(rm.history_mean) * budget / 100)


RULES = st.lists(
    st.one_of(
        st.builds(lambda c, v: f"{c}>={v}", st.sampled_from(CHANNELS), st.integers(0, 60)),
        st.builds(lambda c, v: f"{c}<={v}", st.sampled_from(CHANNELS), st.integers(0, 80)),
        st.builds(lambda g, v: f"{g}>={v}%", st.sampled_from(list(GROUPS)), st.integers(0, 90)),
        st.builds(lambda g, v: f"{g}<={v}%", st.sampled_from(list(GROUPS)), st.integers(5, 100)),
        st.builds(
            lambda g, v, t: f"{g}={v}%+-{t}%",
            st.sampled_from(list(GROUPS)),
            st.integers(10, 90),
            st.integers(1, 10),
        ),
        st.builds(lambda c, v: f"{c}<=+{v}%", st.sampled_from(CHANNELS), st.integers(0, 200)),
        st.builds(lambda c, v: f"{c}>=-{v}%", st.sampled_from(CHANNELS), st.integers(0, 100)),
        st.builds(lambda c: f"{c}=current", st.sampled_from(CHANNELS)),
        st.builds(lambda v: f"period<={v}", st.integers(20, 120)),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=RULES, periods=st.sampled_from([1, 2]), mode=st.sampled_from(["exact", "up_to"]))
def test_every_plan_keeps_every_rule_or_the_clash_is_named(
    rules: list[str], periods: int, mode: str
) -> None:
    rm = s_shaped()
    budget = 100.0 * periods
    ref = np.asarray(rm.history_mean) * periods
    lin = linear_rules(
        [parse_constraint(r) for r in rules], CHANNELS, GROUPS, periods, budget, mode, ref
    )  # type: ignore[arg-type]
    try:
        got = allocate(
            rm, budget, rules, periods=periods, groups=GROUPS, budget_mode=mode, starts=3
        )  # type: ignore[arg-type]
    except InfeasibleError as exc:
        assert feasible_point(lin) is None  # really infeasible
        assert exc.conflict and set(exc.conflict) <= set(lin.labels)
        return
    x = got.plan.to_numpy().ravel()
    assert np.all(x >= -1e-6)
    r = lin.A @ x
    tol = 1e-5 * budget
    assert np.all(r >= lin.lo - tol) and np.all(r <= lin.hi + tol), (rules, x)
    assert all(check["ok"] for check in got.rules)
    # never worse than the best feasible plan the LP gives
    start = feasible_point(lin)
    assert start is not None
    mine = float(np.asarray(got.kpi["mean"]))
    assert mine >= float(np.asarray(rm.kpi(start.reshape(periods, 5))).sum()) - 1e-3 * abs(mine)


def test_roi_and_cpa_rules_hold_with_an_up_to_budget() -> None:
    rm = s_shaped()
    free = allocate(rm, 200.0)
    assert free.roi < 3
    got = allocate(rm, 200.0, ["roi>=3"], budget_mode="up_to")
    assert got.roi >= 3 * (1 - 1e-4) and got.spend < 200.0
    assert [c["ok"] for c in got.rules] == [True, True]
    # the best such plan: no random plan of up to 200 with ROI >= 3 brings more
    rng = np.random.default_rng(2)
    plans = rng.dirichlet(np.full(5, 0.2), 5000) * rng.uniform(0, 200, (5000, 1))
    ok = [value(rm, p) for p in plans if value(rm, p) >= 3 * p.sum()]
    assert len(ok) > 10 and got.kpi["mean"] >= max(ok)
    conv = HillResponse(
        CHANNELS, half=rm.half, slope=rm.slope, max_effect=rm.max_effect, kpi_name="conversions"
    )
    cpa = allocate(conv, 200.0, ["cpa<=0.4"], budget_mode="up_to")
    assert cpa.spend / cpa.kpi["mean"] <= 0.4 * (1 + 1e-4)
    assert cpa.kpi_type == "conversions"
    per = allocate(rm, 200.0, ["roi[search]>=4"])
    row = per.channels.loc["search"]
    assert row["spend"] == 0 or row["contribution"] / row["spend"] >= 4 * (1 - 1e-4)
    with pytest.raises(InfeasibleError, match="no plan keeps roi>=50"):
        allocate(rm, 200.0, ["roi>=50"])
    # Up to a budget, spending nothing keeps any ROI target: the plan is no spend at all
    # (not a few cents of solver dust reported as breaking the rule), and says why.
    none = allocate(rm, 200.0, ["roi>=50"], budget_mode="up_to")
    assert none.spend == 0 and not none.plan.to_numpy().any()
    assert all(r["ok"] for r in none.rules), none.rules
    assert none.reasons[0].startswith("no plan that spends keeps roi>=50")


def test_a_plan_that_cannot_keep_an_roi_target_spends_nothing_not_dust() -> None:
    """Eight noisy S-shaped and concave curves (200 draws) whose best ROI stays under 2: up to
    the budget, the only plan that keeps ``roi>=2`` spends nothing. SLSQP stops a few cents
    from zero there (within the rule's tolerance, relative to the budget); those cents are
    solver dust, not a plan that breaks the rule."""
    rng = np.random.default_rng(11)
    c, draws = 8, 200
    current = rng.uniform(10_000.0, 100_000.0, c)
    rm = HillResponse(
        channels=tuple(f"ch{i}" for i in range(c)),
        half=current * rng.uniform(0.5, 2.0, c) * rng.lognormal(0.0, 0.3, (draws, c)),
        slope=rng.uniform(0.8, 2.5, c) * rng.lognormal(0.0, 0.1, (draws, c)),
        max_effect=current * rng.uniform(1.5, 4.0, c) * rng.lognormal(0.0, 0.2, (draws, c)),
        current=current,
    )
    got = allocate(rm, float(current.sum()), ["roi>=2"], budget_mode="up_to")
    assert got.spend == 0 and all(r["ok"] for r in got.rules), (got.spend, got.rules)
    assert got.reasons[0].startswith("no plan that spends keeps roi>=2")


def test_min_spend_reaches_the_target_with_less_than_the_optimum_of_a_larger_budget() -> None:
    rm = concave()
    rich = allocate(rm, 200.0)
    target = 0.8 * rich.kpi["mean"]
    got = allocate(rm, None, objective=Objective("min_spend", target=target))
    assert got.kpi["mean"] >= target * (1 - 1e-4)
    assert got.spend < 200.0
    # the least spend: the concave optimum at that spend reaches the target, a bit less does not
    x = water_filling(np.asarray(rm.max_effect)[0], np.asarray(rm.half)[0], got.spend * 0.99)
    assert value(rm, x) < target


def test_profit_stops_where_the_margin_no_longer_pays() -> None:
    rm = concave()
    got = allocate(rm, 1000.0, objective=Objective("profit", margin=0.5), budget_mode="up_to")
    funded = got.channels["spend"] > 1.0
    # spending stops where a unit returns one unit of profit: margin * marginal ROI = 1
    np.testing.assert_allclose(0.5 * got.channels.loc[funded, "marginal_roi"], 1.0, atol=0.02)
    assert got.spend < 1000.0


def test_risk_averse_plans_have_a_higher_lower_quantile() -> None:
    rng = np.random.default_rng(3)
    draws = 400
    # tv: higher mean, very uncertain; search: a little lower, nearly certain
    effect = np.column_stack([rng.lognormal(np.log(200), 0.8, draws), np.full(draws, 190.0)])
    rm = HillResponse(("tv", "search"), half=[50.0, 50.0], slope=[1.0, 1.0], max_effect=effect)
    mean = allocate(rm, 100.0)
    careful = allocate(rm, 100.0, objective=Objective("revenue", risk="q10"))
    cvar = allocate(rm, 100.0, objective=Objective("revenue", risk="cvar10"))

    def q10(plan: Any) -> float:
        return float(np.quantile(np.asarray(rm.kpi(plan.to_numpy())).sum(axis=1), 0.1))

    assert q10(careful.plan) > q10(mean.plan)
    assert q10(cvar.plan) > q10(mean.plan)
    assert mean.kpi["mean"] >= careful.kpi["mean"]
    assert careful.plan["search"].iloc[0] > mean.plan["search"].iloc[0]


def test_an_unusable_model_is_refused_unless_forced() -> None:
    rm = HillResponse(
        ("a",),
        half=[1.0],
        slope=[1.0],
        max_effect=[1.0],
        usable=False,
        verdict="do not use: chains did not converge",
    )
    with pytest.raises(UnusableModelError, match="chains did not converge"):
        allocate(rm, 10.0)
    assert allocate(rm, 10.0, force=True).spend == pytest.approx(10.0)


def test_without_a_budget_the_plan_spends_what_the_current_plan_does() -> None:
    rm = concave()
    got = allocate(rm, None, periods=4)
    assert got.spend == pytest.approx(4 * 100.0, rel=1e-6)  # current: 100 a period
    assert got.request["budget"] == pytest.approx(400.0)
    idle = HillResponse(CHANNELS, half=rm.half, slope=rm.slope, max_effect=rm.max_effect)
    with pytest.raises(ValueError, match="spends nothing over the horizon: give a budget"):
        allocate(idle, None)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: allocate(concave(), -5.0), "budget must be a positive amount"),
        (lambda: Objective("margin"), "objective must be"),  # type: ignore[arg-type]
        (lambda: Objective("revenue", risk="q200"), "risk must be"),
        (lambda: Objective("profit"), "needs a margin > 0"),
        (lambda: Objective("min_spend"), "needs a KPI target > 0"),
        (lambda: allocate(concave(), 10.0, ["radio>=5"]), "'radio' is neither a channel"),
        (lambda: allocate(concave(), 10.0, groups={"tv": ("tv",)}), "group names must differ"),
        (lambda: allocate(concave(), 10.0, periods="2026-01"), "no dates"),
        (lambda: allocate(concave(), 10.0, reference=[1.0, 2.0]), "reference must be 5 amounts"),
    ],
)
def test_bad_requests_get_clear_errors(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_flighting_counts_the_carry_over_after_the_horizon() -> None:
    """A 4-period plan spends the budget exactly; its predicted KPI is what the model gives
    for the plan followed by the periods its carry-over still reaches; it beats an even
    spread and the best of 100 random flightings."""
    rm = HillResponse(
        ("tv", "search"),
        half=[50.0, 20.0],
        slope=[2.0, 1.0],
        max_effect=[300.0, 100.0],
        decay=[0.6, 0.0],
        current=[30.0, 10.0],
    )
    got = allocate(rm, 160.0, periods=4)
    plan = got.plan.to_numpy()
    assert plan.sum() == pytest.approx(160.0, rel=1e-6)
    assert got.horizon.tail == 7

    def total(p: np.ndarray) -> float:
        full = np.vstack([p, np.zeros((7, 2))])
        return float(np.asarray(rm.kpi(full)).sum())

    assert got.kpi["mean"] == pytest.approx(total(plan), rel=1e-5)
    even = np.tile(got.plan.sum(axis=0).to_numpy() / 4, (4, 1))
    assert total(plan) >= total(even) - 1e-4
    rng = np.random.default_rng(0)
    best = max(total(rng.dirichlet(np.ones(8)).reshape(4, 2) * 160.0) for _ in range(100))
    assert total(plan) >= best


@pytest.fixture(scope="module")
def market() -> Any:
    return simulate_market(MarketConfig.small(), seed=3)


def test_the_optimum_on_the_true_curves_beats_the_historical_plan(market: Any) -> None:
    rm = TruthResponse.from_market(market)
    budget = float(np.asarray(rm.history_mean).sum())
    got = allocate(rm, budget)
    assert got.kpi["mean"] > got.reference_kpi["mean"] * 1.01
    assert got.spend == pytest.approx(budget, rel=1e-6)
    assert any("move" in r for r in got.reasons)


def test_kinked_curves_are_solved_to_equal_marginal_returns() -> None:
    """Hill slopes below 1 rise infinitely steeply at zero spend: SLSQP's quasi-Newton model
    stopped early there (a real MMM run left channels at zero whose marginal ROI was above
    the plan's). Every channel must be funded and the marginal ROIs equal."""
    rm = HillResponse(
        channels=CHANNELS,
        half=[500.0, 100.0, 20.0, 5.0, 200.0],
        slope=[0.9, 0.5, 0.4, 0.7, 0.6],
        max_effect=[900.0, 150.0, 60.0, 20.0, 200.0],
        decay=[0.6, 0.3, 0.0, 0.0, 0.2],
        current=[300.0, 50.0, 40.0, 10.0, 100.0],
        history=np.tile([300.0, 50.0, 40.0, 10.0, 100.0], (8, 1)),
    )
    got = allocate(rm, 500.0)
    m = got.channels["marginal_roi"]
    assert (got.channels["spend"] > 0.5).all(), got.channels["spend"]
    assert m.max() - m.min() <= 0.01 * m.max(), m


def test_a_large_flighting_plan_reaches_the_closed_form_optimum() -> None:
    """13 weeks × 5 channels (65 amounts: the augmented-Lagrangian solver) on concave curves
    without carry-over: every week is the one-week water-filling optimum of a 13th."""
    rm = concave()
    weekly = 100.0
    got = allocate(rm, 13 * weekly, periods=13)
    assert got.solver["method"].startswith("augmented Lagrangian")
    plan = got.plan.to_numpy()
    assert plan.shape == (13, 5)
    assert plan.sum() == pytest.approx(13 * weekly, rel=1e-6)
    best = water_filling(np.asarray(rm.max_effect)[0], np.asarray(rm.half)[0], weekly)
    total = sum(value(rm, row) for row in plan)
    assert total == pytest.approx(13 * value(rm, best), rel=1e-6)
    np.testing.assert_allclose(plan.sum(axis=0) / 13, best, atol=2e-3 * weekly)


def test_a_large_plan_keeps_its_rules() -> None:
    """The large-plan solver keeps shares, bounds and period caps like SLSQP does."""
    rm = s_shaped()
    rules = ["brand>=60%", "display<=5", "tv>=100", "period<=150"]
    got = allocate(rm, 13 * 100.0, rules, periods=13, groups=GROUPS)
    assert got.solver["method"].startswith("augmented Lagrangian")
    plan = got.plan.to_numpy()
    assert plan.min() >= 0
    assert plan.sum() == pytest.approx(1300.0, rel=1e-6)
    assert plan[:, :2].sum() >= 0.6 * 1300.0 * (1 - 1e-6)
    assert all(r["ok"] for r in got.rules)
    assert plan.sum(axis=1).max() <= 150.0 * (1 + 1e-6)
    assert plan[:, 4].sum() <= 5 * (1 + 1e-6)


def test_a_large_plan_keeps_an_roi_rule_at_the_closed_form_optimum() -> None:
    """13 weeks × 5 channels with ``roi>=4`` and up to 100 a week: the augmented Lagrangian
    takes the ROI rule as a nonlinear row. On concave curves without carry-over the best
    such plan spends, every week, the largest amount S whose water-filling split still
    returns 4 (the split's ROI falls as S grows): bisection on S, independently."""
    rm = concave()
    e, h = np.asarray(rm.max_effect)[0], np.asarray(rm.half)[0]
    lo, hi = 1.0, 100.0  # ROI of the best split: 4.6 at 25 a week, 3.2 at 100
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if value(rm, water_filling(e, h, mid)) >= 4 * mid else (lo, mid)
    weekly = water_filling(e, h, lo)
    got = allocate(rm, 13 * 100.0, ["roi>=4"], periods=13, budget_mode="up_to")
    assert got.solver["method"].startswith("augmented Lagrangian")
    assert all(r["ok"] for r in got.rules), got.rules
    plan = got.plan.to_numpy()
    total = sum(value(rm, row) for row in plan)
    assert total >= 4 * plan.sum() * (1 - 1e-5)  # the rule, in float64
    assert total == pytest.approx(13 * value(rm, weekly), rel=1e-4)
    assert plan.sum() == pytest.approx(13 * lo, rel=1e-4)
    np.testing.assert_allclose(plan.sum(axis=0) / 13, weekly, atol=1e-2 * lo)


def test_starts_explored_on_fewer_draws_find_the_plan_of_all_draws() -> None:
    """A model with many draws explores its starts on a thinned copy, then polishes on all
    draws: the plan is as good (on all draws) as exploring on all of them."""

    rng = np.random.default_rng(4)
    draws = 800
    rm = HillResponse(
        channels=CHANNELS,
        half=np.array([80.0, 40.0, 20.0, 30.0, 10.0]) * rng.lognormal(0, 0.3, (draws, 5)),
        slope=np.array([2.5, 2.0, 1.5, 3.0, 1.2]) * rng.lognormal(0, 0.1, (draws, 5)),
        max_effect=np.array([400.0, 180.0, 150.0, 120.0, 30.0]) * rng.lognormal(0, 0.2, (draws, 5)),
        current=[40.0, 20.0, 20.0, 10.0, 10.0],
    )
    got = allocate(rm, 150.0)
    assert got.solver["explore_draws"] == 250
    module = importlib.import_module("mixwise.optimize.allocate")
    saved = module.EXPLORE_DRAWS
    module.EXPLORE_DRAWS = 10_000  # no thinning
    try:
        full = allocate(rm, 150.0)
    finally:
        module.EXPLORE_DRAWS = saved
    assert full.solver["explore_draws"] is None
    assert got.kpi["mean"] >= full.kpi["mean"] * (1 - 1e-5)
