"""Horizons: calendar periods over the model's periods, with the timing assumption."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixwise.optimize.periods import PeriodError, horizon

NEXT = pd.Timestamp("2026-01-05")  # a Monday: weekly model data end on Sunday 2026-01-04


def test_no_periods_is_one_model_period_spent_at_a_steady_rate() -> None:
    hz = horizon(None, 7, NEXT, carry_periods=8)
    assert hz.labels == ["2026-01-05"] and hz.spread.tolist() == [[1.0]]
    assert (hz.gap, hz.tail) == (0, 7)
    assert "one week" in hz.assumption() and "steady daily rate" in hz.assumption()


def test_months_reach_the_weeks_they_overlap_in_proportion_to_the_days() -> None:
    hz = horizon("2026-02..2026-03", 7, NEXT, carry_periods=1)
    assert hz.labels == ["2026-02", "2026-03"]
    # Weeks from 2026-01-05: the first week touching February starts 2026-01-26.
    assert hz.gap == 3 and hz.model_starts[0] == pd.Timestamp("2026-01-26")
    np.testing.assert_allclose(hz.spread.sum(axis=0), [1.0, 1.0])
    # The week of 2026-01-26 holds 1 February day (Feb 1) of February's 28.
    assert hz.spread[0, 0] == pytest.approx(1 / 28)
    # The week of 2026-02-23 holds 6 February days (23-28) and 1 March day (1).
    week = hz.model_starts.index(pd.Timestamp("2026-02-23"))
    assert hz.spread[week, 0] == pytest.approx(6 / 28)
    assert hz.spread[week, 1] == pytest.approx(1 / 31)
    assert "spent like the current plan" in hz.assumption()


@pytest.mark.parametrize(
    ("spec", "labels"),
    [
        ("2026-Q1", ["2026-01", "2026-02", "2026-03"]),
        ("2026-03", ["2026-03"]),
        ("2026-W03..2026-W05", ["2026-W03", "2026-W04", "2026-W05"]),
        ("2027", [f"2027-{m:02d}" for m in range(1, 13)]),
        (3, ["2026-01-05", "2026-01-12", "2026-01-19"]),
    ],
)
def test_calendar_specs(spec: str | int, labels: list[str]) -> None:
    hz = horizon(spec, 7, NEXT, carry_periods=4)
    assert hz.labels == labels
    np.testing.assert_allclose(hz.spread.sum(axis=0), 1.0)


@pytest.mark.parametrize(
    ("spec", "next_date", "message"),
    [
        ("2025-12", NEXT, "before the model's data end"),
        ("2026-13", NEXT, "periods '2026-13'"),
        ("next quarter", NEXT, "cannot read periods"),
        (0, NEXT, "1 … 520"),
        ("2026-01", None, "no dates"),
    ],
)
def test_bad_horizons_say_what_is_expected(spec, next_date, message: str) -> None:
    with pytest.raises(PeriodError, match=message):
        horizon(spec, 7, next_date, carry_periods=1)
