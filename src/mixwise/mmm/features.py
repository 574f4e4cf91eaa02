"""The baseline's design: trend, Fourier seasonality and holiday windows, per period.

Everything here is plain NumPy on the period start dates of :class:`~mixwise.mmm.data.MMMData`
(daily or weekly), so it can be checked by hand and rebuilt for future periods when the model
predicts a plan:

- **trend**: ``t`` = days since the first period / the fitted span, so 0 … 1 over the data and
  > 1 after it;
- **yearly seasonality**: Fourier pairs ``sin(2πk d/365.25), cos(2πk d/365.25)`` for
  ``k = 1 … order`` with ``d`` the day of the period's middle since a fixed epoch (so the
  same calendar day gets the same value in every year and in forecasts); weekly seasonality
  (period 7 days) only for daily data;
- **holidays**: for each holiday name, how much of its window (``before`` days before to
  ``after`` days after the day) falls in the period. With the default ``holiday_shape="ramp"``
  each window day weighs ``1 - |offset| / (side + 1)`` — 1 on the day, falling linearly to 0
  just outside the window, as pre-sales build up to a shopping festival and fade after it —
  and a period's value is the sum of its days' weights divided by its length (a daily model's
  holiday column is 1 on the day itself). ``"box"`` weighs every window day 1: a weekly period
  that holds the whole window gets 1, a week with two of its days 2/7. The ramp matters: with
  box windows a weekly fit of the demo market could not explain how Double 11 builds up and
  used an always-on channel's spend (which rises with it) as a holiday indicator — a
  steep S-shaped response, chains stuck in different modes (R-hat 2.4); with ramps the same
  fit converged (benchmarks/RESULTS.md).

**Interactions** (``interactions=True``, the default): a real baseline is closer to a product
than a sum — seasonal swings and holiday peaks grow with the business, and a promotion adds a
share of the day's sales, which a holiday multiplies. The model adds the first-order terms of
that product: trend × each seasonality column, trend × each holiday column, and each control ×
the period's total holiday weight (:func:`mixwise.mmm.model.interaction_columns`; a holiday
seen fewer than three times gets no trend product). They are linear in their coefficients, so
the baseline stays integrated out. Runs stored before this
setting existed load with ``interactions=False``.

Holidays come from :func:`mixwise.simulate.holidays.holiday_calendar` (Spring Festival, 618,
Double 11, Black Friday) plus user events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mixwise.simulate.holidays import BUILTIN_HOLIDAYS, DateLike, holiday_calendar

FloatArray = npt.NDArray[np.float64]

# Window (days before, days after) of each built-in holiday's effect: the shopping festivals
# ramp up before the day (618 and Double 11 pre-sales), Spring Festival depresses the week after.
HOLIDAY_WINDOWS: dict[str, tuple[int, int]] = {
    "spring_festival": (3, 7),
    "618": (7, 1),
    "double_11": (10, 1),
    "black_friday": (3, 3),
}
DEFAULT_WINDOW = (1, 1)
HolidayShape = Literal["ramp", "box"]
_EPOCH = pd.Timestamp("2000-01-01")


@dataclass(frozen=True)
class BaselineSpec:
    """What the baseline contains (serialised with a model run)."""

    yearly_order: int = 2
    weekly_order: int = 3  # daily data only
    holidays: tuple[str, ...] = BUILTIN_HOLIDAYS
    events: tuple[tuple[str, str], ...] = ()  # (date ISO, name) user events
    windows: Mapping[str, tuple[int, int]] = field(default_factory=lambda: dict(HOLIDAY_WINDOWS))
    holiday_shape: HolidayShape = "ramp"
    # Seasonal, holiday and control effects that grow with the baseline's level (first-order
    # multiplicative baseline; see mixwise.mmm.model.interaction_columns).
    interactions: bool = True

    def __post_init__(self) -> None:
        if self.yearly_order < 0 or self.weekly_order < 0:
            raise ValueError("Fourier orders must be >= 0")
        if self.holiday_shape not in ("ramp", "box"):
            raise ValueError(f"holiday_shape must be 'ramp' or 'box', got {self.holiday_shape!r}")


@dataclass(frozen=True)
class Baseline:
    """The design matrices of one set of periods."""

    trend: FloatArray  # (T,)
    seasonality: FloatArray  # (T, S)
    seasonality_names: tuple[str, ...]
    holidays: FloatArray  # (T, H)
    holiday_names: tuple[str, ...]


def baseline_design(
    dates: pd.DatetimeIndex,
    period_days: int,
    spec: BaselineSpec,
    *,
    origin: pd.Timestamp | None = None,
    span_days: float | None = None,
    holiday_names: tuple[str, ...] | None = None,
) -> Baseline:
    """The baseline features of the periods starting at ``dates``.

    ``origin`` and ``span_days`` fix the trend's scale (the fitted data's first date and span)
    so that future periods continue it; by default they come from ``dates``. Holidays that
    never fall in ``dates`` are left out, unless ``holiday_names`` fixes the columns (those of
    a fitted model, for its future periods).
    """
    if len(dates) == 0:
        raise ValueError("no periods")
    start = origin if origin is not None else dates[0]
    days = np.asarray((dates - start).days, dtype=np.float64)
    span = span_days if span_days is not None else max(float(days[-1]) + period_days, 1.0)
    trend = days / span

    middle = np.asarray((dates - _EPOCH).days, dtype=np.float64) + (period_days - 1) / 2.0
    columns: list[FloatArray] = []
    names: list[str] = []
    for k in range(1, spec.yearly_order + 1):
        angle = 2 * np.pi * k * middle / 365.25
        columns += [np.sin(angle), np.cos(angle)]
        names += [f"yearly_sin_{k}", f"yearly_cos_{k}"]
    if period_days == 1:
        for k in range(1, spec.weekly_order + 1):
            angle = 2 * np.pi * k * middle / 7.0
            columns += [np.sin(angle), np.cos(angle)]
            names += [f"weekly_sin_{k}", f"weekly_cos_{k}"]
    seasonality = np.column_stack(columns) if columns else np.zeros((len(dates), 0))

    holidays, kept = _holiday_shares(dates, period_days, spec)
    if holiday_names is not None:
        columns = [
            holidays[:, kept.index(n)] if n in kept else np.zeros(len(dates)) for n in holiday_names
        ]
        holidays = np.column_stack(columns) if columns else np.zeros((len(dates), 0))
        kept = tuple(holiday_names)
    return Baseline(trend, seasonality, tuple(names), holidays, kept)


def _holiday_shares(
    dates: pd.DatetimeIndex, period_days: int, spec: BaselineSpec
) -> tuple[FloatArray, tuple[str, ...]]:
    first = dates[0].date() - dt.timedelta(days=30)
    last = dates[-1].date() + dt.timedelta(days=period_days + 30)
    calendar = holiday_calendar(first, last, include=spec.holidays, extra=list(spec.events))
    names = tuple(dict.fromkeys([*spec.holidays, *(n for _, n in spec.events)]))
    period_start = np.asarray((dates - _EPOCH).days, dtype=np.int64)
    shares = np.zeros((len(dates), len(names)))
    for day, name in zip(calendar["date"], calendar["holiday"], strict=True):
        before, after = spec.windows.get(name, DEFAULT_WINDOW)
        center = (pd.Timestamp(day) - _EPOCH).days
        offsets = np.arange(-before, after + 1)
        if spec.holiday_shape == "ramp":
            side = np.where(offsets < 0, before, after).astype(np.float64)
            weight = 1.0 - np.abs(offsets) / (side + 1.0)
        else:
            weight = np.ones(len(offsets))
        # Which period each window day falls in (periods are contiguous, period_days long).
        index = (center + offsets - period_start[0]) // period_days
        inside = (index >= 0) & (index < len(dates))
        np.add.at(shares[:, names.index(name)], index[inside], weight[inside] / period_days)
    # A holiday that never falls in the data cannot be estimated.
    keep: npt.NDArray[np.bool_] = np.asarray(shares.sum(axis=0) > 0)
    kept = [n for i, n in enumerate(names) if bool(keep[i])]
    return shares[:, keep], tuple(kept)


def event_pairs(events: Iterable[tuple[DateLike, str]]) -> tuple[tuple[str, str], ...]:
    """User events as ``(ISO date, name)`` pairs (the serialisable form)."""
    return tuple((pd.Timestamp(d).date().isoformat(), str(n)) for d, n in events)
