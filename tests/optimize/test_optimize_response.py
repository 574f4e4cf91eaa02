"""Response models: every kind passes the conformance battery; user curves read from CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mixwise.mmm.response import ResponseModel as MMMResponse
from mixwise.optimize.checks import check_response_model
from mixwise.optimize.response import (
    HillResponse,
    PointResponse,
    TruthResponse,
    read_hill_csv,
    read_points_csv,
)
from mixwise.simulate import MarketConfig, simulate_market


@pytest.fixture(scope="module")
def market() -> Any:
    return simulate_market(MarketConfig.small(), seed=3)


def hill_model(draws: int = 1) -> HillResponse:
    rng = np.random.default_rng(0)
    noise = rng.lognormal(0, 0.1, (draws, 3)) if draws > 1 else np.ones((1, 3))
    return HillResponse(
        channels=("tv", "search", "social"),
        half=[50.0, 20.0, 30.0],
        slope=[2.0, 0.8, 1.2],
        max_effect=np.array([300.0, 120.0, 150.0]) * noise,
        decay=[0.5, 0.0, 0.2],
        current=[40.0, 20.0, 20.0],
    )


def test_the_battery_passes_every_built_in_kind(market: Any, tiny_mmm: Any) -> None:
    check_response_model(hill_model())
    check_response_model(hill_model(draws=50))
    check_response_model(
        PointResponse(
            channels=("a", "b"),
            spend=(np.array([0.0, 10, 20]), np.array([5.0, 50])),
            outcome=(np.array([0.0, 15, 20]), np.array([10.0, 40])),
            current=[10.0, 5.0],
        )
    )
    check_response_model(TruthResponse.from_market(market))
    check_response_model(MMMResponse.from_mmm(tiny_mmm, force=True))


def test_the_battery_catches_a_model_that_breaks_the_contract() -> None:
    class Falling(HillResponse):
        def media(self, plan: Any, *, carry_over: bool = True) -> Any:
            return -super().media(plan, carry_over=carry_over)

    with pytest.raises(AssertionError, match="more tv lowered its effect"):
        check_response_model(Falling(("tv",), half=[1.0], slope=[1.0], max_effect=[1.0]))

    class Lingering(HillResponse):
        @property
        def carry_periods(self) -> int:
            return 1  # but decay 0.5 keeps spend working for 8 periods

    with pytest.raises(AssertionError, match="still works 1 periods later"):
        check_response_model(
            Lingering(("tv",), half=[1.0], slope=[1.0], max_effect=[1.0], decay=[0.5])
        )


def test_hill_curves_by_hand() -> None:
    rm = HillResponse(("a", "b"), half=[10.0, 4.0], slope=[1.0, 2.0], max_effect=[100.0, 50.0])
    kpi = np.asarray(rm.media(np.array([[10.0, 2.0]])))[0, 0]
    assert kpi == pytest.approx([100 * 10 / 20, 50 * 4 / (4 + 16)], rel=1e-6)
    # geometric carry-over over l_max periods, weights decay**l normalised: steady spend keeps
    # its level, a pulse spreads as the weights
    carry = HillResponse(("a",), half=[1e9], slope=[1.0], max_effect=[1e9], decay=[0.5], l_max=3)
    pulse = np.asarray(carry.media(np.array([[7.0], [0.0], [0.0], [0.0]])))[0, :, 0]
    assert pulse == pytest.approx([4.0, 2.0, 1.0, 0.0], rel=1e-4)


def test_points_are_interpolated_and_flat_beyond_the_last() -> None:
    rm = PointResponse(
        channels=("a",), spend=(np.array([10.0, 20.0]),), outcome=(np.array([30.0, 40.0]),)
    )
    out = np.asarray(rm.media(np.array([[5.0], [15.0], [40.0]])))[0, :, 0]
    assert out == pytest.approx([15.0, 35.0, 40.0])


def test_truth_steady_state_is_the_simulators(market: Any) -> None:
    truth = market.truth
    rm = TruthResponse.from_market(market, period_days=1)
    daily = {c: float(v) for c, v in truth.historical_daily_spend.items()}
    days = len(rm.weights) + 5
    plan = np.tile([daily[c] for c in rm.channels], (days, 1))
    last_day = float(np.asarray(rm.kpi(plan, carry_over=False))[0, -1])
    assert last_day == pytest.approx(truth.steady_state_revenue(daily), rel=1e-4)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "curves.csv"
    path.write_text(text)
    return path


def test_hill_csv(tmp_path: Path) -> None:
    rm = read_hill_csv(
        write(
            tmp_path,
            "channel,half,slope,max_effect,decay,current_spend\n"
            "tv,50,2,300,0.5,40\nsearch,20,0.8,120,0,20\n",
        )
    )
    assert rm.channels == ("tv", "search") and rm.history_mean.tolist() == [40.0, 20.0]
    check_response_model(rm)


def test_points_csv(tmp_path: Path) -> None:
    rm = read_points_csv(
        write(tmp_path, "channel,spend,outcome\ntv,20,40\ntv,10,30\nsearch,5,10\n")
    )
    assert rm.channels == ("tv", "search")
    assert np.asarray(rm.spend[0]).tolist() == [0.0, 10.0, 20.0]  # sorted, from (0, 0)


@pytest.mark.parametrize(
    ("reader", "text", "message"),
    [
        (read_hill_csv, "channel,half,slope\ntv,1,1\n", r"missing column\(s\) \['max_effect'\]"),
        (
            read_hill_csv,
            "channel,half,slope,max_effect\ntv,abc,1,1\n",
            "row 2, column 'half': 'abc' is not a number",
        ),
        (
            read_hill_csv,
            "channel,half,slope,max_effect\ntv,1,1,1\nsearch,0,1,1\n",
            "row 3, column 'half': 0; expected a number > 0",
        ),
        (
            read_hill_csv,
            "channel,half,slope,max_effect,decay\ntv,1,1,1,1.2\n",
            r"column 'decay': 1.2; expected a number in \[0, 1\)",
        ),
        (
            read_hill_csv,
            "channel,half,slope,max_effect\ntv,1,1,1\ntv,2,1,1\n",
            "row 3, column 'channel': 'tv' appears twice",
        ),
        (
            read_hill_csv,
            "channel,half,slope,max_effect\n,1,1,1\n",
            "row 2, column 'channel': empty",
        ),
        (
            read_points_csv,
            "channel,spend,outcome\ntv,-1,3\n",
            "row 2, column 'spend': -1; expected a number >= 0",
        ),
        (
            read_points_csv,
            "channel,spend,outcome\ntv,1,3\ntv,1,4\n",
            "row 3, column 'spend': channel 'tv' has this spend level twice",
        ),
        (
            read_points_csv,
            "channel,spend,outcome,current_spend\ntv,1,3,5\ntv,2,4,6\n",
            "different values",
        ),
        (read_points_csv, "", "not a readable CSV"),
    ],
)
def test_bad_curve_files_name_row_column_and_expected_form(
    tmp_path: Path, reader: Any, text: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        reader(write(tmp_path, text))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        read_hill_csv(tmp_path / "nope.csv")


def test_a_thinned_model_is_the_same_model_on_fewer_draws(tiny_mmm: Any) -> None:
    """``thin`` keeps evenly spaced draws: the thinned model's KPI is the full model's KPI on
    those draws (the optimizer explores on it)."""
    plan = np.array([[40.0, 20.0, 25.0], [10.0, 30.0, 0.0]])
    rm = hill_model(draws=50)
    small = rm.thin(5)
    take = np.linspace(0, 49, 5).round().astype(int)
    np.testing.assert_allclose(small.kpi(plan), np.asarray(rm.kpi(plan))[take], rtol=1e-6)
    assert small.channels == rm.channels and small.n_draws == 5
    np.testing.assert_array_equal(small.history_mean, rm.history_mean)
    assert rm.thin(500).n_draws == 50  # no more draws than there are

    mmm = MMMResponse.from_mmm(tiny_mmm, force=True)
    few = mmm.thin(7)
    take = np.linspace(0, mmm.n_draws - 1, 7).round().astype(int)
    spend = np.full((3, len(mmm.channels)), 100.0)
    np.testing.assert_allclose(few.kpi(spend), np.asarray(mmm.kpi(spend))[take], rtol=1e-6)
    np.testing.assert_allclose(few.baseline(3), mmm.baseline(3)[take], rtol=1e-6)
