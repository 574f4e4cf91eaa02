"""Calibration to incrementality: unknown stays unknown, bad input is named by row and column."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from mixwise.attribution.calibration import IncrementalityError, calibrate, read_incrementality
from mixwise.attribution.models import credits_frame


@pytest.fixture
def credits() -> pd.DataFrame:
    return credits_frame(
        ["search", "social", "direct", "tv"],
        conversions=[100.0, 40.0, 60.0, 0.0],
        value=[5000.0, 1200.0, 3000.0, 0.0],
    )


@pytest.fixture
def factors() -> pd.DataFrame:
    return read_incrementality(
        pd.DataFrame(
            {
                "channel": ["search", "social", "tv"],
                "factor": [0.5, 1.2, 0.3],
                "lower": [0.4, None, None],
                "upper": [0.6, None, None],
                "source": ["mmm", "geo test", ""],
            }
        )
    )


def test_calibrated_credits_cpa_and_roas(credits: pd.DataFrame, factors: pd.DataFrame) -> None:
    out = calibrate(credits, factors, cost={"search": 2000.0, "direct": 600.0, "tv": 900.0})
    s = out.loc["search"]
    assert (s.conversions, s.calibrated_conversions) == (100, 50)
    assert (s.calibrated_conversions_lower, s.calibrated_conversions_upper) == pytest.approx(
        (40, 60)
    )
    assert s.calibrated_value == pytest.approx(2500)
    assert (s.cpa, s.calibrated_cpa) == pytest.approx((20, 40))
    # The CPA interval: cheaper with the upper credits, dearer with the lower ones.
    assert (s.calibrated_cpa_lower, s.calibrated_cpa_upper) == pytest.approx((2000 / 60, 50))
    assert (s.roas, s.calibrated_roas) == pytest.approx((2.5, 1.25))
    assert (s.calibrated_roas_lower, s.calibrated_roas_upper) == pytest.approx((1.0, 1.5))

    # A factor above 1 is accepted as is; no interval given -> interval unknown.
    social = out.loc["social"]
    assert social.calibrated_conversions == pytest.approx(48)
    assert math.isnan(social.calibrated_conversions_lower)
    # No cost for social -> CPA and ROAS unknown, never inf.
    assert math.isnan(social.cost) and math.isnan(social.cpa) and math.isnan(social.roas)

    # No factor for direct -> calibrated credits unknown (NaN), not 0; uncalibrated CPA known.
    d = out.loc["direct"]
    assert math.isnan(d.factor) and math.isnan(d.calibrated_conversions)
    assert d.cpa == pytest.approx(10) and math.isnan(d.calibrated_cpa)

    # Zero credit -> CPA unknown; ROAS 0/900 = 0.
    tv = out.loc["tv"]
    assert math.isnan(tv.cpa) and math.isnan(tv.calibrated_cpa)
    assert tv.roas == 0

    assert not out.isin([math.inf, -math.inf]).any().any()


def test_zero_cost_gives_unknown_roas(credits: pd.DataFrame, factors: pd.DataFrame) -> None:
    out = calibrate(credits, factors, cost=pd.Series({"search": 0.0}))
    assert out.at["search", "cpa"] == 0
    assert math.isnan(out.at["search", "roas"])


def test_negative_cost_is_refused(credits: pd.DataFrame, factors: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="cost must be >= 0"):
        calibrate(credits, factors, cost={"search": -1.0})


def test_reader_reads_csv(tmp_path: Path) -> None:
    path = tmp_path / "inc.csv"
    path.write_text("channel,factor,lower,upper,source\nsearch,0.5,0.4,0.6,mmm\ntv, 0.2 ,,,\n")
    frame = read_incrementality(path)
    assert list(frame.index) == ["search", "tv"]
    assert frame.at["tv", "factor"] == 0.2
    assert math.isnan(frame.at["tv", "lower"])
    assert frame.at["search", "source"] == "mmm"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("channel,factor\nsearch,0.5\ntv,-0.1\n", "row 2, column 'factor': -0.1 is negative"),
        ("channel,factor\nsearch,abc\n", "row 1, column 'factor': 'abc' is not a number"),
        ("channel,factor\nsearch,\n", "row 1, column 'factor': a number is required"),
        ("channel,factor,lower\nsearch,0.5,0.7\n", "row 1, column 'lower'"),
        ("channel,factor,upper\nsearch,0.5,0.2\n", "row 1, column 'upper'"),
        ("channel,factor\n,0.5\n", "row 1, column 'channel'"),
        ("channel,factor\nsearch,0.5\nsearch,0.6\n", "row 2, column 'channel'.*repeats row 1"),
        ("channel,factor,weight\nsearch,0.5,1\n", "unknown column"),
        ("channel,lower\nsearch,0.5\n", "missing required column"),
    ],
)
def test_reader_names_row_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "inc.csv"
    path.write_text(text)
    with pytest.raises(IncrementalityError, match=message) as info:
        read_incrementality(path)
    assert str(path) in str(info.value)
