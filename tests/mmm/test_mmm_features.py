"""The baseline's design: holiday windows, trend and seasonality, checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixwise.mmm.features import BaselineSpec, baseline_design


def test_double_11_window_spreads_over_the_weeks_it_touches() -> None:
    # Double 11 2024 (a Monday) ramps from Nov 1 (10 days before) to Nov 12 (1 day after).
    dates = pd.date_range("2024-10-21", periods=5, freq="7D")  # Mondays
    box = baseline_design(dates, 7, BaselineSpec(holidays=("double_11",), holiday_shape="box"))
    assert box.holiday_names == ("double_11",)
    # Oct 28 – Nov 3 holds Nov 1–3; Nov 4–10 seven window days; Nov 11–17 holds Nov 11–12.
    np.testing.assert_allclose(box.holidays[:, 0], [0, 3 / 7, 1, 2 / 7, 0])
    # The default ramp weighs day offset -k (k = 1 … 10) by 1 - k/11, the day by 1 and the
    # day after by 1 - 1/2: Nov 1–3 = (1+2+3)/11, Nov 4–10 = (4+…+10)/11, Nov 11–12 = 1.5.
    ramp = baseline_design(dates, 7, BaselineSpec(holidays=("double_11",)))
    np.testing.assert_allclose(ramp.holidays[:, 0], [0, 6 / 77, 7 / 11, 1.5 / 7, 0])
    daily = baseline_design(pd.date_range("2024-11-09", periods=5), 1, BaselineSpec())
    # Nov 9 … 13: offsets -2, -1, 0, +1, +2.
    np.testing.assert_allclose(daily.holidays[:, 0], [9 / 11, 10 / 11, 1, 0.5, 0])
    with pytest.raises(ValueError, match="holiday_shape"):
        BaselineSpec(holiday_shape="bell")  # type: ignore[arg-type]


def test_user_events_and_holidays_outside_the_data() -> None:
    dates = pd.date_range("2024-03-04", periods=8, freq="7D")
    spec = BaselineSpec(events=(("2024-03-20", "store_opening"),))
    base = baseline_design(dates, 7, spec)
    # No built-in holiday falls in March–April 2024: only the event is kept (window ±1 day).
    assert base.holiday_names == ("store_opening",)
    # The ramp weighs Mar 19, 20, 21 by 1/2, 1, 1/2; all three fall in the week of Mar 18–24.
    assert base.holidays.sum() * 7 == pytest.approx(2)
    assert base.holidays[2, 0] == pytest.approx(2 / 7)

    # A fitted model's columns, for periods where only the event falls: the absent holiday
    # gets a zero column, in the fitted order.
    fixed = baseline_design(dates, 7, spec, holiday_names=("double_11", "store_opening"))
    assert fixed.holiday_names == ("double_11", "store_opening")
    np.testing.assert_allclose(fixed.holidays[:, 0], 0.0)
    np.testing.assert_allclose(fixed.holidays[:, 1], base.holidays[:, 0])


def test_trend_continues_into_the_future_and_weekly_terms_only_for_days() -> None:
    weeks = pd.date_range("2024-01-01", periods=10, freq="7D")
    fitted = baseline_design(weeks, 7, BaselineSpec(yearly_order=2))
    assert fitted.trend[0] == 0 and fitted.trend[-1] == pytest.approx(63 / 70)
    names = ("yearly_sin_1", "yearly_cos_1", "yearly_sin_2", "yearly_cos_2")
    assert fitted.seasonality_names == names
    future = pd.date_range("2024-03-11", periods=2, freq="7D")
    ahead = baseline_design(future, 7, BaselineSpec(), origin=weeks[0], span_days=70)
    assert ahead.trend.tolist() == pytest.approx([70 / 70, 77 / 70])
    days = pd.date_range("2024-01-01", periods=21, freq="D")
    daily = baseline_design(days, 1, BaselineSpec(yearly_order=1, weekly_order=2))
    assert daily.seasonality.shape == (21, 2 + 4)
    # The weekly terms repeat every 7 days; the yearly ones do not.
    np.testing.assert_allclose(daily.seasonality[7:, 2:], daily.seasonality[:-7, 2:], atol=1e-9)
    assert not np.allclose(daily.seasonality[7:, :2], daily.seasonality[:-7, :2])


def test_interaction_columns_by_hand() -> None:
    """trend × seasonality, trend × holidays and controls × the total holiday weight."""
    from mixwise.mmm.model import interaction_columns

    trend = np.array([-0.5, 0.0, 0.5])
    seasonality = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    holidays = np.array([[0.0, 0.0], [0.5, 0.25], [1.0, 0.0]])
    controls = np.arange(6, dtype=float).reshape(3, 2, 1)  # (T, G, K): two geos, one control
    season_x, holiday_x, control_x = interaction_columns(trend, seasonality, holidays, controls)
    np.testing.assert_allclose(season_x, [[-0.5, -1.0], [0.0, 0.0], [2.5, 3.0]])
    # Each holiday occurs once here (fewer than three times): no trend product (next test).
    np.testing.assert_allclose(holiday_x, np.zeros((3, 2)))
    np.testing.assert_allclose(control_x[:, :, 0], [[0.0, 0.0], [1.5, 2.25], [4.0, 5.0]])
    assert BaselineSpec().interactions  # on by default


def test_a_holiday_seen_fewer_than_three_times_gets_no_trend_product() -> None:
    from mixwise.mmm.model import interaction_columns, occurrences

    # Holiday 0 occurs three times (one run of two periods), holiday 1 twice.
    holidays = np.zeros((12, 2))
    holidays[[1, 2, 5, 9], 0] = 0.5
    holidays[[3, 10], 1] = 1.0
    assert [occurrences(holidays[:, h]) for h in range(2)] == [3, 2]
    trend = np.linspace(-0.5, 0.5, 12)
    none, no_controls = np.zeros((12, 0)), np.zeros((12, 1, 0))
    _, holiday_x, _ = interaction_columns(trend, none, holidays, no_controls)
    np.testing.assert_allclose(holiday_x[:, 0], trend * holidays[:, 0])
    assert not holiday_x[:, 1].any()
    # Only the fitted periods count: with the last three held out, holiday 0 occurs twice.
    fitted = np.r_[np.ones(9), np.zeros(3)]
    _, held, _ = interaction_columns(trend, none, holidays, no_controls, fitted)
    assert not held.any()
