"""The plan's horizon: budget periods (what a planner allocates) over model periods (what the
response model sees), and the explicit assumption of how spend is timed within a period.

A budget period's amount is spent **at a steady daily rate over its days**; a model period
(a week for a weekly model) gets the part of each budget period that falls on its days. So a
month's budget reaches the weeks it overlaps in proportion to the overlap, and one budget
period of the model's own frequency is simply that period's spend.

Horizons, as :func:`horizon` reads them:

- ``None`` — one period of the model's frequency right after the data (one week for a weekly
  model);
- an integer ``n`` — ``n`` such periods;
- ``"2026-01..2026-03"`` (months), ``"2026-W01..2026-W13"`` (ISO weeks), ``"2026-Q4"``,
  ``"2026-11"``, ``"2026"`` (a year, by month) — calendar periods.

The model periods between the end of the data and the start of the horizon are assumed to be
spent like the reference (current) plan: their carry-over reaches into the horizon in the
plan and in its no-spend comparison alike. After the horizon, spend stops; the periods its
carry-over still reaches are counted, so a plan is credited with all it brings.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]


class PeriodError(ValueError):
    """A horizon that cannot be read, or that does not fit the response model."""


@dataclass(frozen=True)
class Horizon:
    """``labels`` and ``[starts, ends)`` of the budget periods; ``spread`` ``(P, B)``: the
    share of budget period ``b``'s amount spent in model period ``p`` (columns sum to one);
    ``gap`` model periods (reference spend) come before them, ``tail`` after (no spend)."""

    labels: list[str]
    starts: list[pd.Timestamp | None]
    ends: list[pd.Timestamp | None]
    spread: FloatArray
    gap: int
    tail: int
    model_starts: list[pd.Timestamp | None]
    period_days: int

    @property
    def n_budget(self) -> int:
        return len(self.labels)

    @property
    def n_model(self) -> int:
        return int(self.spread.shape[0])

    def days(self, b: int) -> float:
        start, end = self.starts[b], self.ends[b]
        if start is None or end is None:
            return float(self.period_days)
        return float((end - start).days)

    def reference_plan(self, rate: npt.ArrayLike) -> FloatArray:
        """A plan spending ``rate`` per model period (channels last) in every budget period,
        ``(budget periods, channels)``: each period gets the rate times its length."""
        per_period = np.asarray(rate, dtype=np.float64)
        return np.array(
            [per_period * self.days(b) / self.period_days for b in range(self.n_budget)]
        )

    def assumption(self) -> str:
        unit = "week" if self.period_days == 7 else f"{self.period_days}-day period"
        if self.n_budget == 1 and self.n_model == 1 and self.gap == 0:
            return (
                f"The budget is for one {unit} (the model's frequency), spent at a steady "
                "daily rate; its carry-over into later periods is counted."
            )
        text = (
            f"Each period's amount is spent at a steady daily rate over its days; the model "
            f"sees it per {unit}. Spend stops after the last period; the carry-over it still "
            f"brings over the next {self.tail} {unit}(s) is counted."
        )
        if self.gap:
            text += (
                f" The {self.gap} {unit}(s) between the end of the data and the first period "
                "are assumed spent like the current plan."
            )
        return text


def _calendar(spec: str) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """(label, start, end) of the calendar periods a spec names."""
    s = spec.strip()

    def month(text: str) -> pd.Timestamp:
        return pd.Timestamp(dt.date(int(text[:4]), int(text[5:7]), 1))

    def week(text: str) -> pd.Timestamp:
        return pd.Timestamp(dt.date.fromisocalendar(int(text[:4]), int(text[6:8]), 1))

    months = re.fullmatch(r"(\d{4}-\d{2})(?:\.\.(\d{4}-\d{2}))?", s)
    weeks = re.fullmatch(r"(\d{4}-W\d{2})(?:\.\.(\d{4}-W\d{2}))?", s, re.IGNORECASE)
    quarter = re.fullmatch(r"(\d{4})-Q([1-4])", s, re.IGNORECASE)
    year = re.fullmatch(r"\d{4}", s)
    try:
        if months:
            first = month(months[1])
            last = month(months[2] or months[1])
            starts = pd.date_range(first, last, freq="MS")
            step = pd.DateOffset(months=1)
            return [(d.strftime("%Y-%m"), d, d + step) for d in starts]
        if weeks:
            first = week(weeks[1].upper())
            last = week((weeks[2] or weeks[1]).upper())
            starts = pd.date_range(first, last, freq="7D")
            return [
                (f"{d.isocalendar().year}-W{d.isocalendar().week:02d}", d, d + pd.Timedelta(days=7))
                for d in starts
            ]
        if quarter:
            first = pd.Timestamp(dt.date(int(quarter[1]), 3 * int(quarter[2]) - 2, 1))
            starts = pd.date_range(first, periods=3, freq="MS")
            return [(d.strftime("%Y-%m"), d, d + pd.DateOffset(months=1)) for d in starts]
        if year:
            starts = pd.date_range(f"{s}-01-01", periods=12, freq="MS")
            return [(d.strftime("%Y-%m"), d, d + pd.DateOffset(months=1)) for d in starts]
    except ValueError as exc:
        raise PeriodError(f"periods {spec!r}: {exc}") from None
    raise PeriodError(
        f"cannot read periods {spec!r}: expected months '2026-01..2026-03', ISO weeks "
        "'2026-W01..2026-W13', a quarter '2026-Q4', a month '2026-11', a year '2026', or a "
        "number of the model's periods"
    )


def horizon(
    spec: str | int | None,
    period_days: int,
    next_date: pd.Timestamp | None,
    carry_periods: int,
) -> Horizon:
    """The :class:`Horizon` of a spec for a model of ``period_days`` whose data end the day
    before ``next_date`` (``None``: a model without dates, only counts are possible)."""
    tail = max(int(carry_periods) - 1, 0)
    count = isinstance(spec, str) and spec.isdigit() and len(spec) < 4  # "2026" is a year
    if spec is None or isinstance(spec, int) or count:
        n = 1 if spec is None else int(spec)
        if not 1 <= n <= 520:
            raise PeriodError(f"the number of periods must be 1 … 520, got {n}")
        if next_date is None:
            starts: list[pd.Timestamp | None] = [None] * n
            ends: list[pd.Timestamp | None] = [None] * n
        else:
            dates = pd.date_range(next_date, periods=n, freq=f"{period_days}D")
            starts = list(dates)
            ends = [d + pd.Timedelta(days=period_days) for d in dates]
        labels = [
            f"period {i + 1}" if s is None else s.strftime("%Y-%m-%d") for i, s in enumerate(starts)
        ]
        return Horizon(labels, starts, ends, np.eye(n), 0, tail, starts, period_days)
    if next_date is None:
        raise PeriodError(
            "these response curves have no dates: give the horizon as a number of periods"
        )
    periods = _calendar(str(spec))
    first, last = periods[0][1], periods[-1][2]
    if first < next_date - pd.Timedelta(days=period_days - 1):
        raise PeriodError(
            f"periods {spec!r} start on {first.date()}, before the model's data end "
            f"({(next_date - pd.Timedelta(days=1)).date()}); plan periods must lie after it"
        )
    step = pd.Timedelta(days=period_days)
    gap = max(int((first - next_date) // step), 0)
    model_first = next_date + gap * step
    n_model = int(np.ceil((last - model_first) / step))
    if n_model > 520:
        raise PeriodError(f"periods {spec!r} span {n_model} model periods; at most 520")
    model_starts = [model_first + i * step for i in range(n_model)]
    spread = np.zeros((n_model, len(periods)))
    for b, (_, start, end) in enumerate(periods):
        days = (end - start).days
        for p, ms in enumerate(model_starts):
            # Days of the horizon before the first model period (the data's last period
            # overlaps them) are spent in the first model period.
            begin = min(ms, first) if p == 0 else ms
            overlap = (min(ms + step, end) - max(begin, start)).days
            if overlap > 0:
                spread[p, b] = overlap / days
    return Horizon(
        [p[0] for p in periods],
        [p[1] for p in periods],
        [p[2] for p in periods],
        spread,
        gap,
        tail,
        list(model_starts),
        period_days,
    )
