"""The response model: the fitted MMM as a function of any spend plan, per posterior draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixwise.mmm.data import MMMData
from mixwise.mmm.fit import MMM
from mixwise.mmm.response import ResponseModel, UnusableModelError


@pytest.fixture(scope="module")
def fitted() -> MMM:
    """A short NUTS fit (40 draws: never "usable") with carry-over and a synergy pair."""
    rng = np.random.default_rng(5)
    periods = 80
    dates = pd.date_range("2023-01-02", periods=periods, freq="7D")
    x = rng.gamma(2.0, 50.0, size=(periods, 2)) * np.array([1.0, 2.0])
    y = 1000 + 300 * x[:, 0] / (x[:, 0] + 100) + 400 * x[:, 1] / (x[:, 1] + 200)
    frame = pd.DataFrame(
        {"date": dates, "revenue": y + rng.normal(0, 20, periods), "a": x[:, 0], "b": x[:, 1]}
    )
    data = MMMData.from_frame(frame, date="date", kpi="revenue", channels=["a", "b"])
    return MMM(chains=1, draws=40, warmup=60, synergies=[("a", "b")], progress=False, seed=1).fit(
        data
    )


def test_an_unusable_run_is_refused_unless_forced(fitted: MMM) -> None:
    assert not fitted.verdict_.usable  # 40 draws cannot reach 400 effective ones
    with pytest.raises(UnusableModelError, match=r"not usable \(do not use: .*too few effective"):
        ResponseModel.from_mmm(fitted)
    assert ResponseModel.from_mmm(fitted, force=True).n_draws == 40
    assert ResponseModel.from_mmm(fitted, force=True, draws=10).n_draws == 10


def test_the_data_as_a_plan_gives_back_the_fitted_contributions(fitted: MMM) -> None:
    """Replaying the historical spend (no spend before it, as in the fit) must reproduce
    every draw's contribution of every channel in every period."""
    rm = ResponseModel.from_mmm(fitted, force=True)
    spend = fitted.data_.spend[:, 0, :]
    got = np.asarray(rm.media(spend, carry_over=False))
    want = fitted._channel_contributions()
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-3 * np.abs(want).max())
    total = np.asarray(rm.kpi(spend, carry_over=False))
    synergy = np.asarray(fitted.samples_["synergy"])[:, :, 0, 0] * fitted.inputs_.kpi_scale[0]
    np.testing.assert_allclose(total, want.sum(axis=2) + synergy, rtol=2e-4, atol=1e-2)


def test_incremental_kpi_is_zero_without_spend_and_grows_with_it(fitted: MMM) -> None:
    import jax
    import jax.numpy as jnp

    rm = ResponseModel.from_mmm(fitted, force=True)
    zero = np.zeros((8, 2))
    assert np.allclose(np.asarray(rm.incremental(zero)), 0.0)
    small = np.asarray(rm.incremental(zero + 50.0)).mean()
    large = np.asarray(rm.incremental(zero + 200.0)).mean()
    assert 0 < small < large
    # Diminishing returns: four times the spend buys less than four times the KPI.
    assert large < 4 * small
    grad = jax.grad(lambda p: rm.incremental(p).mean())(jnp.full((8, 2), 100.0))
    assert grad.shape == (8, 2) and bool(jnp.all(jnp.isfinite(grad)))
    assert float(grad[0, 0]) > 0  # more spend in the first week adds KPI
    # Carry-over: history spend adds KPI in the first plan weeks, not counted as the plan's.
    with_history = np.asarray(rm.kpi(zero))[:, 0].mean()
    assert with_history > 0
    assert np.allclose(np.asarray(rm.incremental(zero, carry_over=True)), 0.0)


def test_response_curve_is_zero_at_zero_and_matches_a_constant_plan(fitted: MMM) -> None:
    rm = ResponseModel.from_mmm(fitted, force=True)
    curve = rm.response_curve("b", [0.0, 100.0, 200.0, 400.0])
    assert curve.shape == (40, 4)
    assert np.allclose(curve[:, 0], 0.0)
    mean = curve.mean(axis=0)
    assert np.all(np.diff(mean) > 0)
    # Steady state: a plan holding 200 per week reads the same at its last week.
    plan = np.zeros((30, 2))
    plan[:, 1] = 200.0
    steady = np.asarray(rm.media(plan, carry_over=False))[:, -1, 1]
    np.testing.assert_allclose(curve[:, 2], steady, rtol=1e-4)
    with pytest.raises(ValueError, match="unknown channel 'zz'"):
        rm.response_curve("zz", [1.0])
    with pytest.raises(ValueError, match=">= 0"):
        rm.response_curve("a", [-1.0])


def test_a_plan_of_the_wrong_shape_is_named(fitted: MMM) -> None:
    rm = ResponseModel.from_mmm(fitted, force=True)
    with pytest.raises(ValueError, match=r"plan is \(periods, 2\).*\['a', 'b'\].*\(4, 3\)"):
        rm.kpi(np.zeros((4, 3)))


def test_forecast_continues_the_baseline_after_the_data(fitted: MMM) -> None:
    rm = ResponseModel.from_mmm(fitted, force=True)
    dates = rm.future_dates(3)
    assert dates[0] == fitted.data_.dates[-1] + pd.Timedelta(days=7)
    plan = np.full((3, 2), 100.0)
    forecast = rm.forecast(plan)
    assert forecast.shape == (40, 3)
    np.testing.assert_allclose(forecast, rm.baseline(3) + np.asarray(rm.kpi(plan)), rtol=1e-6)
    # The fitted baseline sits near the simulated 1000 (+ noise); its continuation too.
    assert 800 < float(rm.baseline(3).mean()) < 1200


def test_the_baseline_rebuilt_on_the_fitted_dates_is_the_fitted_baseline(fitted: MMM) -> None:
    """``baseline_at`` rebuilds the baseline from the calendar (trend, seasonality, holidays
    and their interactions with the trend); on the fitted dates of a model without controls it
    must give back every draw's fitted baseline, or forecasts would start from a wrong level."""
    assert fitted.inputs_.interactions  # the default: trend interactions are in the baseline
    assert "holidays_trend" in fitted.samples_ and "seasonality_trend" in fitted.samples_
    rm = ResponseModel.from_mmm(fitted, force=True)
    got = rm.baseline_at(fitted.data_.dates)
    want = np.asarray(fitted.samples_["baseline"])[:, :, 0] * fitted.inputs_.kpi_scale[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
