"""Calibrating attribution credits to incrementality.

Attribution shares out *all* conversions, including those that would have happened anyway.
An **incrementality factor** per channel says which share of the conversions attributed to it is
truly incremental — from the marketing mix model, from a lift experiment, or typed in:

======================  ========================================================================
``channel``             channel name, as in the credits
``factor``              incremental share of the channel's attributed conversions (≥ 0; usually
                        ≤ 1, but a value above 1 — the channel drives more than attribution
                        sees — is accepted as is)
``lower``, ``upper``    optional interval for the factor (unknown when absent)
``source``              optional free text: "mmm 2025-06", "geo test", "analyst"
======================  ========================================================================

:func:`calibrate` multiplies credits by the factor and the interval bounds (credits × lower,
credits × upper) and puts the results beside the uncalibrated columns. Unknown stays unknown:

- a channel without a factor gets ``NaN`` calibrated credits (never 0 — not knowing is not the
  same as "not incremental");
- without a cost (``NaN`` or not given), CPA and ROAS are ``NaN``; a credit of 0 makes CPA
  ``NaN``; a cost of 0 makes ROAS ``NaN``. Nothing is ever ``inf``.

CPA = cost / conversions, ROAS = value / cost. The calibrated CPA interval uses the *upper*
credits for its lower bound (more incremental conversions, cheaper each) and vice versa.

:func:`read_incrementality` reads the factors from a CSV file or a DataFrame and names the row and
column of anything wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED = ("channel", "factor")
OPTIONAL = ("lower", "upper", "source")
COLUMNS = REQUIRED + OPTIONAL


class IncrementalityError(ValueError):
    """Bad incrementality input; the message names the row and column."""


def read_incrementality(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and validate incrementality factors from a CSV path or a DataFrame.

    Returns a DataFrame indexed by ``channel`` with float columns ``factor``, ``lower``,
    ``upper`` (NaN where not given) and a text column ``source``. Rows are numbered from 1 (the
    first data row; in a CSV file that is line 2).
    """
    where = "incrementality"
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        where = str(source)
        try:
            frame = pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise IncrementalityError(f"{where}: cannot read as CSV: {exc}") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    unknown = [c for c in frame.columns if c not in COLUMNS]
    if unknown:
        raise IncrementalityError(
            f"{where}: unknown column(s) {unknown}; expected {list(REQUIRED)} and optionally "
            f"{list(OPTIONAL)}"
        )
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise IncrementalityError(f"{where}: missing required column(s) {missing}")

    channels: list[str] = []
    numbers: dict[str, list[float]] = {"factor": [], "lower": [], "upper": []}
    sources: list[str] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(frame.to_dict("records"), start=1):
        at = f"{where}: row {i}"
        channel = _text(row.get("channel"))
        if not channel:
            raise IncrementalityError(f"{at}, column 'channel': empty channel name")
        if channel in seen:
            raise IncrementalityError(
                f"{at}, column 'channel': channel {channel!r} repeats row {seen[channel]}"
            )
        seen[channel] = i
        values = {}
        for col in ("factor", "lower", "upper"):
            values[col] = _number(row.get(col), f"{at}, column '{col}'", required=col == "factor")
        lo, f, hi = values["lower"], values["factor"], values["upper"]
        if not math.isnan(lo) and lo > f:
            raise IncrementalityError(f"{at}, column 'lower': {lo} is above the factor {f}")
        if not math.isnan(hi) and hi < f:
            raise IncrementalityError(f"{at}, column 'upper': {hi} is below the factor {f}")
        channels.append(channel)
        for col in numbers:
            numbers[col].append(values[col])
        sources.append(_text(row.get("source")))
    return pd.DataFrame(
        {**{k: np.asarray(v, dtype=float) for k, v in numbers.items()}, "source": sources},
        index=pd.Index(channels, name="channel", dtype=object),
    )


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _number(value: object, at: str, *, required: bool) -> float:
    text = _text(value)
    if not text:
        if required:
            raise IncrementalityError(f"{at}: a number is required")
        return math.nan
    try:
        number = float(text)
    except ValueError:
        raise IncrementalityError(f"{at}: {text!r} is not a number") from None
    if not math.isfinite(number):
        raise IncrementalityError(f"{at}: {text!r} is not a finite number")
    if number < 0:
        raise IncrementalityError(
            f"{at}: {number} is negative; an incrementality factor is a share of conversions "
            "and must be >= 0"
        )
    return number


def calibrate(
    credits: pd.DataFrame,
    incrementality: pd.DataFrame,
    cost: pd.Series | Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Calibrated credits, CPA and ROAS beside the uncalibrated ones.

    Parameters
    ----------
    credits:
        A model's ``credits_`` (index channel; columns ``conversions`` and ``value``).
    incrementality:
        As returned by :func:`read_incrementality` (or any frame it accepts).
    cost:
        Cost per channel (e.g. media spend over the same period); missing channels and NaN
        are unknown.

    Returns
    -------
    DataFrame indexed like ``credits`` with ``conversions``, ``value``, ``factor``,
    ``factor_lower``, ``factor_upper``, ``calibrated_conversions`` (``_lower``, ``_upper``),
    ``calibrated_value`` (``_lower``, ``_upper``), ``cost``, ``cpa``, ``roas``,
    ``calibrated_cpa`` (``_lower``, ``_upper``) and ``calibrated_roas`` (``_lower``,
    ``_upper``).
    """
    factors = read_incrementality(
        incrementality.reset_index() if incrementality.index.name == "channel" else incrementality
    )
    missing_cols = [c for c in ("conversions", "value") if c not in credits.columns]
    if missing_cols:
        raise ValueError(f"credits need columns {missing_cols}")
    out = credits[["conversions", "value"]].astype(float).copy()
    f = factors.reindex(out.index)
    out["factor"] = f["factor"].to_numpy(float)
    out["factor_lower"] = f["lower"].to_numpy(float)
    out["factor_upper"] = f["upper"].to_numpy(float)
    for what in ("conversions", "value"):
        base = out[what].to_numpy(float)
        out[f"calibrated_{what}"] = base * out["factor"].to_numpy(float)
        out[f"calibrated_{what}_lower"] = base * out["factor_lower"].to_numpy(float)
        out[f"calibrated_{what}_upper"] = base * out["factor_upper"].to_numpy(float)

    cost_series = pd.Series(dict(cost) if cost is not None else {}, dtype=float)
    if (cost_series < 0).any():
        bad = list(cost_series[cost_series < 0].index)
        raise ValueError(f"cost must be >= 0; negative for {bad}")
    c = cost_series.reindex(out.index).to_numpy(float)
    out["cost"] = c
    out["cpa"] = _ratio(c, out["conversions"].to_numpy(float))
    out["roas"] = _ratio(out["value"].to_numpy(float), c)
    out["calibrated_cpa"] = _ratio(c, out["calibrated_conversions"].to_numpy(float))
    out["calibrated_cpa_lower"] = _ratio(c, out["calibrated_conversions_upper"].to_numpy(float))
    out["calibrated_cpa_upper"] = _ratio(c, out["calibrated_conversions_lower"].to_numpy(float))
    out["calibrated_roas"] = _ratio(out["calibrated_value"].to_numpy(float), c)
    out["calibrated_roas_lower"] = _ratio(out["calibrated_value_lower"].to_numpy(float), c)
    out["calibrated_roas_upper"] = _ratio(out["calibrated_value_upper"].to_numpy(float), c)
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where either is unknown or ``den`` is 0 (never ``inf``)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    ok = np.isfinite(num) & np.isfinite(den) & (den != 0)
    np.divide(num, den, out=out, where=ok)
    return out
