"""The data a marketing mix model is fit on: spend, KPI and controls on a regular time grid.

:class:`MMMData` holds the design of one fit — ``T`` periods (days or weeks) × ``G`` geos (one,
``"national"``, unless it is a geo panel) × ``C`` channels and ``K`` controls — as dense
float64 arrays, validated once when built:

- :meth:`MMMData.from_workspace` reads the workspace's daily ``media``, ``outcomes`` and
  ``controls`` tables and aggregates them (weekly: complete Monday-start weeks; spend and KPI
  summed, controls averaged);
- :meth:`MMMData.from_wide_csv` / :meth:`MMMData.from_frame` read one row per period (and geo)
  with one spend column per channel — the layout of PyMC-Marketing's ``mmm_example.csv``
  (``date_week, y, x1, x2, event_1, …``) and Robyn's ``dt_simulated_weekly``
  (``DATE, revenue, tv_S, ooh_S, …``).

Every rejection is an :class:`MMMDataError` that names the source, the data row (1 = the first
row under the header), the column and the form expected, as imports do. Unknown is never 0: a
missing spend or KPI cell is an error, not a zero. A model reads the arrays through
:meth:`MMMData.scaled` (spend and KPI divided by their means, controls standardised), so its
parameters are O(1) whatever the currency.

>>> data = MMMData.from_wide_csv(                                   # doctest: +SKIP
...     "mmm_example.csv", date="date_week", kpi="y", channels=["x1", "x2"],
...     controls=["event_1", "event_2", "t"])
>>> data.n_periods, data.frequency, data.kpi_type                    # doctest: +SKIP
(179, 'W', 'revenue')

This module is NumPy and pandas only; the model itself (JAX) lives elsewhere in ``mmm/``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from mixwise.store.ingest import (
    Issue,
    _cell_text,
    _is_missing,
    _Issues,
    _parse_date,
    _parse_number,
    _show,
    read_source,
)

if TYPE_CHECKING:
    from mixwise.workspace import Workspace

__all__ = [
    "DEFAULT_FOURIER_ORDER",
    "NATIONAL",
    "WEEKDAY_FOURIER_ORDER",
    "MMMData",
    "MMMDataError",
    "ScaledData",
    "from_frame",
    "from_wide_csv",
    "from_workspace",
    "infer_kpi_type",
    "parameter_count",
]

Frequency = Literal["D", "W"]
KpiType = Literal["revenue", "conversions"]
GeoLevel = Literal["national", "geo"]
FloatArray = npt.NDArray[np.float64]

PERIOD_DAYS: dict[str, int] = {"D": 1, "W": 7}
UNITS: dict[str, str] = {"D": "day", "W": "week"}
NATIONAL = "national"
WORKSPACE = "workspace"
DEFAULT_FOURIER_ORDER = 2
WEEKDAY_FOURIER_ORDER = 3
PARAMETERS_PER_CHANNEL = 4
WORKSPACE_KPIS: dict[str, KpiType] = {
    "revenue": "revenue",
    "conversions": "conversions",
    "leads": "conversions",
}
MAX_ERRORS = 100
_CONVERSION_WORDS = ("conv", "order", "sign")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_MONDAY = 4  # day number (days since 1970-01-01) of 1970-01-05, a Monday
_SUNDAY = 3  # 1970-01-04
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class MMMDataError(ValueError):
    """Data that cannot be modelled; ``issues`` lists every problem by row and column."""

    def __init__(self, source: str, issues: Sequence[Issue], count: int | None = None) -> None:
        self.source = source
        self.issues = sorted(issues, key=lambda e: (e.row or 0, e.column or ""))
        self.count = max(count or 0, len(self.issues))
        more = f" (showing the first {len(self.issues)})" if self.count > len(self.issues) else ""
        head = f"{source}: cannot build the model data: {self.count} problem(s){more}"
        super().__init__("\n".join([head, *(e.describe(source) for e in self.issues)]))


def parameter_count(
    n_channels: int,
    n_controls: int,
    fourier_order: int = DEFAULT_FOURIER_ORDER,
    frequency: Frequency = "W",
) -> int:
    """How many parameters a mix model of this size estimates (to check there is data enough).

    - 4 per channel: effect size, carryover (adstock) and two saturation parameters;
    - 1 per control (its coefficient);
    - 2 per order of the yearly Fourier seasonality (a sine and a cosine each);
    - daily data only: 6 for the day-of-week pattern (:data:`WEEKDAY_FOURIER_ORDER` pairs);
    - 2 for the trend, 1 intercept and 1 noise scale.

    The builders reject data with fewer periods than ``min_periods_per_parameter`` times this
    count. A geo panel is counted like one national series: geos share the time dimension and
    their per-geo parameters are pooled, so more geos do not buy fewer periods.

    >>> parameter_count(4, 2, 2, "W")
    26
    """
    if min(n_channels, n_controls, fourier_order) < 0:
        raise ValueError("n_channels, n_controls and fourier_order must be ≥ 0")
    if frequency not in PERIOD_DAYS:
        raise ValueError(f"frequency must be 'D' or 'W', got {frequency!r}")
    weekday = 2 * WEEKDAY_FOURIER_ORDER if frequency == "D" else 0
    return (
        PARAMETERS_PER_CHANNEL * n_channels + n_controls + 2 * fourier_order + weekday + 2 + 1 + 1
    )


@dataclass(frozen=True, eq=False)
class ScaledData:
    """The arrays a model fits: O(1) numbers, and the scales that turn results back.

    ``spend`` is spend divided by its channel's mean (so each channel's mean is 1), ``kpi`` the
    KPI divided by its mean, ``controls`` standardised per control (mean 0, population standard
    deviation 1 over periods and geos).
    """

    spend: FloatArray  # (T, G, C)
    kpi: FloatArray  # (T, G)
    controls: FloatArray  # (T, G, K)
    spend_scale: FloatArray  # (C,)
    kpi_scale: float
    control_mean: FloatArray  # (K,)
    control_sd: FloatArray  # (K,)

    def kpi_to_original(self, values: npt.ArrayLike) -> FloatArray:
        """Scaled KPI values (or contributions) back in the KPI's own unit."""
        return np.asarray(values, dtype=np.float64) * self.kpi_scale

    def spend_to_original(self, values: npt.ArrayLike) -> FloatArray:
        """Scaled spend (last axis = channels) back in money."""
        return np.asarray(values, dtype=np.float64) * self.spend_scale


@dataclass(frozen=True, eq=False, repr=False)
class MMMData:
    """The validated design of one national or geo-panel mix-model fit.

    Build it with :meth:`from_workspace`, :meth:`from_wide_csv` or :meth:`from_frame`; direct
    construction checks shapes and values too. ``dates`` are period starts on a regular grid
    (``frequency`` "D" or "W"); ``geos`` is ``("national",)`` for a national fit. The arrays
    are read-only float64: ``spend`` (T, G, C), ``kpi_values`` (T, G), ``control_values``
    (T, G, K). ``notes`` say what the builder left out (e.g. days of incomplete weeks).
    """

    dates: pd.DatetimeIndex
    frequency: Frequency
    geos: tuple[str, ...]
    channels: tuple[str, ...]
    controls: tuple[str, ...]
    kpi: str
    kpi_type: KpiType
    spend: FloatArray
    kpi_values: FloatArray
    control_values: FloatArray
    currency: str | None = None
    source: str = "<DataFrame>"
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "dates", pd.DatetimeIndex(self.dates))
        for name in ("geos", "channels", "controls", "notes"):
            put(self, name, tuple(str(v) for v in getattr(self, name)))
        for name in ("spend", "kpi_values", "control_values"):
            arr = np.array(getattr(self, name), dtype=np.float64, copy=True)
            arr.setflags(write=False)
            put(self, name, arr)
        shape_issues = self._shape_issues()
        if shape_issues:
            raise MMMDataError(self.source, shape_issues)
        issues = self._value_issues() or self._variation_issues()
        if issues:
            raise MMMDataError(self.source, issues)

    # -- checks ------------------------------------------------------------------------------
    def _shape_issues(self) -> list[Issue]:
        out: list[Issue] = []
        if self.frequency not in PERIOD_DAYS:
            out.append(Issue(f"frequency must be 'D' or 'W', got {self.frequency!r}"))
        if self.kpi_type not in ("revenue", "conversions"):
            out.append(Issue(f"kpi_type must be 'revenue' or 'conversions', not {self.kpi_type!r}"))
        for label, names in (("geos", self.geos), ("channels", self.channels)):
            if not names:
                out.append(Issue(f"needs at least one of {label}"))
        for label, names in (
            ("geos", self.geos),
            ("channels and controls", (*self.channels, *self.controls)),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                out.append(Issue(f"{label} must be unique; named twice: {', '.join(dup)}"))
        if self.dates.tz is not None:
            out.append(Issue("dates must be calendar days without a time zone"))
        elif len(self.dates) and not (self.dates == self.dates.normalize()).all():
            out.append(Issue("dates must be calendar days (midnight), not times of day"))
        elif self.frequency in PERIOD_DAYS and len(self.dates) > 1:
            steps = np.diff(_days(self.dates))
            if not (steps == PERIOD_DAYS[self.frequency]).all():
                out.append(
                    Issue(
                        f"dates must be consecutive period starts "
                        f"{PERIOD_DAYS[self.frequency]} day(s) apart"
                    )
                )
        t, g, c, k = len(self.dates), len(self.geos), len(self.channels), len(self.controls)
        for name, arr, want, axes in (
            ("spend", self.spend, (t, g, c), "(periods, geos, channels)"),
            ("kpi_values", self.kpi_values, (t, g), "(periods, geos)"),
            ("control_values", self.control_values, (t, g, k), "(periods, geos, controls)"),
        ):
            if arr.shape != want:
                out.append(Issue(f"{name} has shape {arr.shape}; expected {axes} = {want}"))
        return out

    def _value_issues(self) -> list[Issue]:
        # Builders report bad cells by row first; this catches directly constructed data.
        out: list[Issue] = []
        checks: list[tuple[str, FloatArray, bool]] = [
            *((c, self.spend[..., i], True) for i, c in enumerate(self.channels)),
            (self.kpi, self.kpi_values, True),
            *((k, self.control_values[..., i], False) for i, k in enumerate(self.controls)),
        ]
        for name, values, nonneg in checks:
            bad = ~np.isfinite(values)
            if nonneg:
                bad |= values < 0
            if bad.any():
                t, g = (int(i) for i in np.argwhere(bad)[0])
                want = "a finite number ≥ 0" if nonneg else "a finite number"
                where = f"{self.dates[t].date()}" + (
                    f", geo {self.geos[g]}" if self.n_geos > 1 else ""
                )
                out.append(
                    Issue(
                        f"expected {want} in every period; {int(bad.sum())} value(s) are not, "
                        f"the first on {where} ({values[t, g]:g})",
                        column=self._column(name),
                    )
                )
        return out

    def _variation_issues(self) -> list[Issue]:
        out: list[Issue] = []
        for i, name in enumerate(self.channels):
            x = self.spend[..., i]
            if x.size and np.ptp(x) == 0:
                out.append(
                    Issue(
                        f"channel {name} has no variation: the model cannot separate its effect "
                        f"(spend is {x.flat[0]:g} in every period); drop the channel or choose "
                        "a date range in which its spend changes",
                        column=self._column(name),
                    )
                )
        for i, name in enumerate(self.controls):
            x = self.control_values[..., i]
            if x.size and np.ptp(x) == 0:
                out.append(
                    Issue(
                        f"control {name} has no variation (it is {x.flat[0]:g} in every "
                        "period): its effect cannot be told apart from the intercept; drop it",
                        column=self._column(name),
                    )
                )
        if self.kpi_values.size and not (self.kpi_values > 0).any():
            out.append(
                Issue(
                    f"the KPI {self.kpi} is 0 in every period: there is nothing to explain",
                    column=self._column(self.kpi),
                )
            )
        return out

    def _column(self, name: str) -> str | None:
        # Frames name channels, controls and the KPI by column; a workspace by value.
        return None if self.source == WORKSPACE else name

    # -- shape and scales --------------------------------------------------------------------
    @property
    def n_periods(self) -> int:
        return len(self.dates)

    @property
    def n_geos(self) -> int:
        return len(self.geos)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def n_controls(self) -> int:
        return len(self.controls)

    @property
    def period_length_days(self) -> int:
        """Days per period: 1 (daily) or 7 (weekly)."""
        return PERIOD_DAYS[self.frequency]

    @property
    def spend_scale(self) -> FloatArray:
        """Per channel, the mean spend over all periods and geos (> 0: no channel is constant)."""
        return np.asarray(self.spend.mean(axis=(0, 1)), dtype=np.float64)

    @property
    def kpi_scale(self) -> float:
        """The mean KPI over all periods and geos (> 0)."""
        return float(self.kpi_values.mean())

    def scaled(self) -> ScaledData:
        """The arrays divided by their scales (see :class:`ScaledData`)."""
        spend_scale = self.spend_scale
        kpi_scale = self.kpi_scale
        mean = np.asarray(self.control_values.mean(axis=(0, 1)), dtype=np.float64)
        sd = np.asarray(self.control_values.std(axis=(0, 1)), dtype=np.float64)
        controls = (self.control_values - mean) / sd if self.n_controls else self.control_values
        return ScaledData(
            spend=self.spend / spend_scale,
            kpi=self.kpi_values / kpi_scale,
            controls=np.asarray(controls, dtype=np.float64),
            spend_scale=spend_scale,
            kpi_scale=kpi_scale,
            control_mean=mean,
            control_sd=sd,
        )

    def to_frame(self) -> pd.DataFrame:
        """Long frame for display: date, geo, role (kpi/spend/control), variable, value."""
        t, g = self.n_periods, self.n_geos
        dates = np.repeat(self.dates.to_numpy(), g)
        geos = np.tile(np.array(self.geos, dtype=object), t)
        series: list[tuple[str, str, FloatArray]] = [
            ("kpi", self.kpi, self.kpi_values),
            *(("spend", c, self.spend[..., i]) for i, c in enumerate(self.channels)),
            *(("control", k, self.control_values[..., i]) for i, k in enumerate(self.controls)),
        ]
        parts = [
            pd.DataFrame(
                {
                    "date": dates,
                    "geo": pd.Series(geos, dtype="str"),
                    "role": pd.Series([role] * (t * g), dtype="str"),
                    "variable": pd.Series([name] * (t * g), dtype="str"),
                    "value": values.reshape(-1),
                }
            )
            for role, name, values in series
        ]
        return pd.concat(parts, ignore_index=True)

    def __repr__(self) -> str:
        unit = UNITS.get(self.frequency, "period")
        span = f"{self.dates[0].date()} … {self.dates[-1].date()}" if self.n_periods else "no dates"
        return (
            f"MMMData({self.n_periods} {unit}s × {self.n_geos} geo(s) × {self.n_channels} "
            f"channels, {self.n_controls} controls, kpi={self.kpi!r}, {span}, "
            f"source={self.source!r})"
        )

    # -- builders ----------------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        frame: Any,
        *,
        date: str,
        kpi: str,
        channels: Sequence[str],
        controls: Sequence[str] = (),
        geo: str | None = None,
        kpi_type: KpiType | None = None,
        frequency: Frequency | None = None,
        currency: str | None = None,
        fourier_order: int | None = None,
        min_periods_per_parameter: float = 1.0,
        source: str | None = None,
    ) -> MMMData:
        """Build from a wide frame: one row per period (and geo), one spend column per channel.

        ``frame`` is a pandas, polars or pyarrow table. ``kpi_type`` is inferred from the KPI
        column's name when not given ("conversions" if it contains conv, order or sign, else
        "revenue"), ``frequency`` from the spacing of the dates (1 day: "D", 7 days: "W").
        With ``geo``, every geo needs a row for every period. ``source`` names the data in
        error messages. Raises :class:`MMMDataError`.
        """
        try:
            raw, name = read_source(frame)
        except (TypeError, ValueError, FileNotFoundError) as exc:
            raise MMMDataError(source or "<input>", [Issue(str(exc))]) from exc
        return _from_frame(
            raw,
            source or name,
            date=date,
            kpi=kpi,
            channels=channels,
            controls=controls,
            geo=geo,
            kpi_type=kpi_type,
            frequency=frequency,
            currency=currency,
            fourier_order=fourier_order,
            min_periods_per_parameter=min_periods_per_parameter,
        )

    @classmethod
    def from_wide_csv(
        cls,
        path: str | Path,
        *,
        date: str,
        kpi: str,
        channels: Sequence[str],
        controls: Sequence[str] = (),
        geo: str | None = None,
        kpi_type: KpiType | None = None,
        frequency: Frequency | None = None,
        currency: str | None = None,
        fourier_order: int | None = None,
        min_periods_per_parameter: float = 1.0,
    ) -> MMMData:
        """Build from a wide file (CSV; .tsv, .parquet and .xlsx by extension), as
        :meth:`from_frame`. Numbers may carry thousands separators and currency signs."""
        return cls.from_frame(
            Path(path),
            date=date,
            kpi=kpi,
            channels=channels,
            controls=controls,
            geo=geo,
            kpi_type=kpi_type,
            frequency=frequency,
            currency=currency,
            fourier_order=fourier_order,
            min_periods_per_parameter=min_periods_per_parameter,
            source=str(path),
        )

    @classmethod
    def from_workspace(
        cls,
        ws: Workspace,
        *,
        kpi: str = "revenue",
        channels: Sequence[str] | None = None,
        controls: Sequence[str] | None = None,
        frequency: Frequency = "W",
        start: Any = None,
        end: Any = None,
        geo_level: GeoLevel = "national",
        fourier_order: int | None = None,
        min_periods_per_parameter: float = 1.0,
    ) -> MMMData:
        """Build from a workspace's daily ``media``, ``outcomes`` and ``controls`` tables.

        ``kpi`` is an outcomes column (revenue, conversions or leads). ``channels`` defaults to
        every channel in media, ``controls`` to every control name (``()`` for none). Spend is
        summed over campaigns; a channel without rows on a day spent nothing that day, but a
        day with no media rows at all, or without outcomes or a control, is a gap and an
        error. National: spend and KPI summed over geos, controls averaged; ``"geo"``: one
        series per outcomes geo (national controls apply to every geo). Weekly periods are
        Monday-start weeks; incomplete first and last weeks are dropped and ``notes`` says
        how many days. The range defaults to the days every table covers.
        """
        return _from_workspace(
            ws,
            kpi=kpi,
            channels=channels,
            controls=controls,
            frequency=frequency,
            start=start,
            end=end,
            geo_level=geo_level,
            fourier_order=fourier_order,
            ratio=min_periods_per_parameter,
        )


from_frame = MMMData.from_frame
from_wide_csv = MMMData.from_wide_csv
from_workspace = MMMData.from_workspace


# -- shared helpers ----------------------------------------------------------------------------
def _days(values: Any) -> npt.NDArray[np.int64]:
    """Day numbers (days since 1970-01-01) of dates, datetimes or date strings."""
    stamps = pd.to_datetime(pd.Series(values)).to_numpy()
    return np.asarray(stamps.astype("datetime64[D]").astype(np.int64), dtype=np.int64)


def _day(day: int | np.integer[Any]) -> str:
    return str(np.datetime64(int(day), "D"))


def _index(first: int, periods: int, frequency: str) -> pd.DatetimeIndex:
    return pd.date_range(_day(first), periods=periods, freq=f"{PERIOD_DAYS[frequency]}D")


def _listing(days: Sequence[int] | npt.NDArray[np.int64], limit: int = 5) -> str:
    shown = ", ".join(_day(d) for d in list(days)[:limit])
    return shown if len(days) <= limit else f"{shown} … ({len(days)} in all)"


def _span(first: int, last: int) -> str:
    """'3 days (2025-03-17 … 2025-03-19)' or '1 day (2024-09-01)'."""
    n = last - first + 1
    days = _day(first) if n == 1 else f"{_day(first)} … {_day(last)}"
    return f"{n} day{'s' if n > 1 else ''} ({days})"


def _names(values: Sequence[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):  # a lone name, not a sequence of letters
        return (values,)
    return tuple(str(v) for v in values)


def _common_args(
    issues: _Issues,
    fourier_order: int | None,
    ratio: float,
    frequency: object,
    optional_frequency: bool,
) -> int:
    order = DEFAULT_FOURIER_ORDER if fourier_order is None else fourier_order
    if not isinstance(order, int) or isinstance(order, bool) or order < 0:
        issues.add(Issue(f"fourier_order must be a whole number ≥ 0, got {fourier_order!r}"))
        order = DEFAULT_FOURIER_ORDER
    if not (isinstance(ratio, int | float) and math.isfinite(ratio) and ratio > 0):
        issues.add(Issue(f"min_periods_per_parameter must be a number > 0, got {ratio!r}"))
    if not (frequency in PERIOD_DAYS or (optional_frequency and frequency is None)):
        issues.add(Issue(f"frequency must be 'D' (daily) or 'W' (weekly), got {frequency!r}"))
    return order


def _raise(src: str, issues: _Issues) -> None:
    if issues.count:
        raise MMMDataError(src, issues.items, issues.count)


def _check_size(data: MMMData, fourier_order: int, ratio: float) -> MMMData:
    p = parameter_count(data.n_channels, data.n_controls, fourier_order, data.frequency)
    need = max(1, math.ceil(p * ratio - 1e-9))
    if data.n_periods < need:
        unit = UNITS[data.frequency]
        raise MMMDataError(
            data.source,
            [
                Issue(
                    f"{data.n_periods} {unit}s for {p} parameters: need at least {need} {unit}s "
                    f"({data.n_channels} channels × {PARAMETERS_PER_CHANNEL}, "
                    f"{data.n_controls} controls, Fourier order {fourier_order}, trend, "
                    "intercept and noise); use fewer channels or controls, a lower "
                    "fourier_order or a longer history"
                )
            ],
        )
    return data


# -- wide frames -------------------------------------------------------------------------------
def infer_kpi_type(kpi: str) -> KpiType:
    """ "conversions" when the KPI's name mentions conversions, orders or sign-ups."""
    low = kpi.lower()
    return "conversions" if any(w in low for w in _CONVERSION_WORDS) else "revenue"


def _from_frame(
    raw: pd.DataFrame,
    src: str,
    *,
    date: str,
    kpi: str,
    channels: Sequence[str],
    controls: Sequence[str],
    geo: str | None,
    kpi_type: KpiType | None,
    frequency: Frequency | None,
    currency: str | None,
    fourier_order: int | None,
    min_periods_per_parameter: float,
) -> MMMData:
    issues = _Issues(MAX_ERRORS)
    order = _common_args(
        issues, fourier_order, min_periods_per_parameter, frequency, optional_frequency=True
    )
    chans = _names(channels) or ()
    ctrls = _names(controls) or ()
    if not chans:
        issues.add(Issue("name at least one channel (a spend column) in channels"))
    if kpi_type not in (None, "revenue", "conversions"):
        issues.add(Issue(f"kpi_type must be 'revenue' or 'conversions', got {kpi_type!r}"))
    if currency is not None and not _CURRENCY.match(str(currency)):
        issues.add(Issue(f"currency must be a 3-letter code like CNY or USD, got {currency!r}"))

    frame = raw.rename(columns=lambda c: str(c).strip())
    columns = [str(c) for c in frame.columns]
    roles: list[tuple[str, str]] = [
        ("date", date),
        ("KPI", kpi),
        *(("channel", c) for c in chans),
        *(("control", c) for c in ctrls),
        *((("geo", geo),) if geo is not None else ()),
    ]
    seen: dict[str, str] = {}
    for role, col in roles:
        if col in seen:
            issues.add(Issue(f"named twice: as the {seen[col]} and as a {role}", column=col))
            continue
        seen[col] = role
        if col not in columns:
            hint = difflib.get_close_matches(col, columns, n=1, cutoff=0.6)
            mean = f"; did you mean {hint[0]!r}?" if hint else ""
            issues.add(
                Issue(
                    f"no such column (named as the {role}); the columns are: "
                    f"{', '.join(columns) or 'none'}{mean}",
                    column=col,
                )
            )
    _raise(src, issues)
    n = len(frame)
    if n == 0:
        issues.add(Issue("the data has no rows"))
        _raise(src, issues)
    rows = np.arange(1, n + 1)

    # Cells: every problem by row and column, all at once.
    day_of = _date_cells(frame[date], date, rows, issues)
    geo_of = _geo_cells(frame[geo], geo, rows, issues) if geo is not None else None
    spend_cols = [_number_cells(frame[c], c, rows, issues, "spend") for c in chans]
    kpi_col = _number_cells(frame[kpi], kpi, rows, issues, "KPI value")
    control_cols = [_number_cells(frame[c], c, rows, issues, None) for c in ctrls]
    _raise(src, issues)

    days = np.asarray(day_of, dtype=np.int64)
    labels = np.asarray(geo_of if geo_of is not None else [NATIONAL] * n, dtype=object)
    geos = tuple(sorted(set(labels.tolist())))
    _duplicate_dates(days, labels, rows, date, geo is not None, issues)
    _raise(src, issues)

    freq = _frequency(days, labels, geos, frequency, date, issues)
    _raise(src, issues)
    assert freq is not None
    step = PERIOD_DAYS[freq]
    first, last = int(days.min()), int(days.max())
    off = (days - first) % step != 0
    for i in np.flatnonzero(off):
        issues.add(
            Issue(
                f"{_day(days[i])} is not on the weekly grid that starts {_day(first)} (a "
                f"{_WEEKDAYS[(first - _MONDAY) % 7]}): expected a date a whole number of weeks "
                "later",
                int(rows[i]),
                date,
                _day(days[i]),
            )
        )
    _raise(src, issues)
    grid = np.arange(first, last + 1, step, dtype=np.int64)
    unit = UNITS[freq]
    for g in geos:
        missing = np.setdiff1d(grid, days[labels == g])
        if missing.size:
            where = f"geo {g}: " if geo is not None else ""
            plural = "s" if missing.size > 1 else ""
            issues.add(
                Issue(
                    f"{where}missing {unit}{plural}: {_listing(missing)}; every {unit} from "
                    f"{_day(first)} to {_day(last)} needs a row (a {unit} without spend "
                    "needs 0s, not a gap)",
                    column=date,
                )
            )
    _raise(src, issues)

    t_idx = (days - first) // step
    g_idx = np.searchsorted(np.asarray(geos, dtype=object), labels)
    shape = (grid.size, len(geos))
    spend = np.zeros((*shape, len(chans)))
    kpi_values = np.zeros(shape)
    control_values = np.zeros((*shape, len(ctrls)))
    if chans:
        spend[t_idx, g_idx, :] = np.column_stack(spend_cols)
    kpi_values[t_idx, g_idx] = kpi_col
    if ctrls:
        control_values[t_idx, g_idx, :] = np.column_stack(control_cols)
    data = MMMData(
        dates=_index(first, grid.size, freq),
        frequency=freq,
        geos=geos,
        channels=chans,
        controls=ctrls,
        kpi=kpi,
        kpi_type=kpi_type or infer_kpi_type(kpi),
        spend=spend,
        kpi_values=kpi_values,
        control_values=control_values,
        currency=currency,
        source=src,
    )
    return _check_size(data, order, min_periods_per_parameter)


def _date_cells(
    series: pd.Series, column: str, rows: npt.NDArray[np.int64], issues: _Issues
) -> list[int]:
    missing = _is_missing(series)
    parsed = _parse_date(series.where(~missing, None))
    out: list[int] = []
    expected = "a date like 2024-01-31"
    for i, (gone, value) in enumerate(zip(missing.to_numpy(), parsed.tolist(), strict=True)):
        if gone:
            issues.add(Issue(f"missing date; expected {expected}", int(rows[i]), column))
        elif value is None:
            given = _show(series.iloc[i])
            issues.add(Issue(f"expected {expected}, got {given!r}", int(rows[i]), column, given))
        else:
            out.append(value.toordinal() - _EPOCH_ORDINAL)
    return out


def _geo_cells(
    series: pd.Series, column: str, rows: npt.NDArray[np.int64], issues: _Issues
) -> list[str]:
    out: list[str] = []
    for i, value in enumerate(series.tolist()):
        text = _cell_text(value)
        text = text.strip() if text is not None else ""
        if not text:
            issues.add(
                Issue("missing geo: every row of a geo panel names its geo", int(rows[i]), column)
            )
        out.append(text)
    return out


def _number_cells(
    series: pd.Series,
    column: str,
    rows: npt.NDArray[np.int64],
    issues: _Issues,
    what: str | None,
) -> FloatArray:
    """Parse a numeric column; ``what`` names a non-negative quantity (None: a control)."""
    if pd.api.types.is_bool_dtype(series):
        series = series.astype("float64")
    missing = _is_missing(series)
    values = _parse_number(series.where(~missing, None), False).to_numpy(dtype=np.float64)
    expected = "a number ≥ 0" if what else "a number"
    for i in np.flatnonzero(missing.to_numpy()):
        issues.add(
            Issue(
                f"missing {what or 'control value'}: unknown is not 0; fill it or drop the period",
                int(rows[i]),
                column,
            )
        )
    bad = ~missing.to_numpy() & np.isnan(values)
    for i in np.flatnonzero(bad):
        given = _show(series.iloc[i])
        issues.add(Issue(f"expected {expected}, got {given!r}", int(rows[i]), column, given))
    if what:
        for i in np.flatnonzero(values < 0):
            issues.add(
                Issue(
                    f"expected {what} ≥ 0, got {values[i]:g}",
                    int(rows[i]),
                    column,
                    f"{values[i]:g}",
                )
            )
    return values


def _duplicate_dates(
    days: npt.NDArray[np.int64],
    labels: npt.NDArray[Any],
    rows: npt.NDArray[np.int64],
    column: str,
    panel: bool,
    issues: _Issues,
) -> None:
    key = pd.DataFrame({"geo": labels, "day": days, "row": rows})
    dup = key.duplicated(subset=["geo", "day"], keep=False)
    if not dup.any():
        return
    for (g, d), grp in key[dup].groupby(["geo", "day"], sort=True)["row"]:
        first, *others = sorted(int(r) for r in grp)
        where = f" in geo {g}" if panel else ""
        for r in others:
            issues.add(
                Issue(
                    f"date {_day(cast(int, d))}{where} is also on row {first}: each period "
                    f"appears once{' per geo' if panel else ''}; drop or merge one of rows "
                    f"{first} and {r}",
                    r,
                    column,
                    _day(cast(int, d)),
                )
            )


def _frequency(
    days: npt.NDArray[np.int64],
    labels: npt.NDArray[Any],
    geos: tuple[str, ...],
    given: Frequency | None,
    column: str,
    issues: _Issues,
) -> Frequency | None:
    steps = np.concatenate([np.diff(np.sort(days[labels == g])) for g in geos])
    mode = None
    if steps.size:
        values, counts = np.unique(steps, return_counts=True)
        mode = int(values[np.argmax(counts)])
    if given is not None:
        if mode is not None and mode % PERIOD_DAYS[given] != 0:
            issues.add(
                Issue(
                    f"dates are mostly {mode} day(s) apart, which does not fit "
                    f"frequency={given!r} (periods {PERIOD_DAYS[given]} day(s) apart)",
                    column=column,
                )
            )
        return given
    if mode is None:
        issues.add(
            Issue(
                "cannot tell daily from weekly data with a single date; pass frequency='D' or 'W'",
                column=column,
            )
        )
        return None
    if mode == 1:
        return "D"
    if mode == 7:
        return "W"
    issues.add(
        Issue(
            f"dates are mostly {mode} days apart; expected daily (1 day apart) or weekly "
            "(7 days apart) periods",
            column=column,
        )
    )
    return None


# -- workspace ---------------------------------------------------------------------------------
def _to_day(value: Any, name: str, issues: _Issues) -> int | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
        valid = not pd.isna(stamp) and stamp == stamp.normalize()
    except (TypeError, ValueError):
        valid = False
    if not valid:
        issues.add(Issue(f"{name} must be a date like 2024-01-31, got {value!r}"))
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return int((stamp - pd.Timestamp("1970-01-01")).days)


def _geo_labels(series: pd.Series) -> npt.NDArray[Any]:
    """Geo per row; national rows (no geo) as None."""
    return np.asarray([None if pd.isna(v) else str(v) for v in series.tolist()], dtype=object)


def _rows_of(geo: npt.NDArray[Any], label: str | None) -> npt.NDArray[np.bool_]:
    """Rows of one geo label (None: the national rows)."""
    return np.fromiter((g == label for g in geo.tolist()), dtype=bool, count=len(geo))


def _from_workspace(
    ws: Workspace,
    *,
    kpi: str,
    channels: Sequence[str] | None,
    controls: Sequence[str] | None,
    frequency: Frequency,
    start: Any,
    end: Any,
    geo_level: GeoLevel,
    fourier_order: int | None,
    ratio: float,
) -> MMMData:
    src = WORKSPACE
    issues = _Issues(MAX_ERRORS)
    order = _common_args(issues, fourier_order, ratio, frequency, optional_frequency=False)
    if kpi not in WORKSPACE_KPIS:
        issues.add(
            Issue(f"the KPI must be an outcomes column: {', '.join(WORKSPACE_KPIS)}", column=kpi)
        )
    if geo_level not in ("national", "geo"):
        issues.add(Issue(f"geo_level must be 'national' or 'geo', got {geo_level!r}"))
    lo_arg, hi_arg = _to_day(start, "start", issues), _to_day(end, "end", issues)
    _raise(src, issues)

    media = ws.table("media")
    outcomes = ws.table("outcomes")
    chans_arg = _names(channels)
    ctrls_arg = _names(controls)
    control_table = ws.table("controls") if ctrls_arg is None or ctrls_arg else None
    if media.empty:
        issues.add(Issue("the workspace has no media rows: import daily spend first (media)"))
    if outcomes.empty:
        issues.add(Issue("the workspace has no outcomes rows: import the daily KPI first"))
    _raise(src, issues)

    known = sorted(set(media["channel"].astype(str)))
    chans = tuple(known) if chans_arg is None else chans_arg
    if not chans:
        issues.add(Issue("name at least one channel"))
    for c in chans:
        if c not in known:
            issues.add(
                Issue(
                    f"no media rows for channel {c!r}; channels in media: {', '.join(known)}",
                    column="channel",
                )
            )
    names_known = (
        sorted(set(control_table["name"].astype(str))) if control_table is not None else []
    )
    ctrls = tuple(names_known) if ctrls_arg is None else ctrls_arg
    for k in ctrls:
        if k not in names_known:
            issues.add(
                Issue(
                    f"no controls named {k!r}; names in controls: "
                    f"{', '.join(names_known) or 'none'}",
                    column="name",
                )
            )
    _raise(src, issues)

    media_days = _days(media["date"])  # of every channel: a day without any row is a gap
    media = media[media["channel"].astype(str).isin(chans)]
    m_days = _days(media["date"])
    m_geo = _geo_labels(media["geo"])
    o_days = _days(outcomes["date"])
    o_geo = _geo_labels(outcomes["geo"])
    o_named = sorted({g for g in o_geo.tolist() if g is not None})
    o_national = bool(_rows_of(o_geo, None).any())
    if o_named and o_national:
        issues.add(
            Issue(
                "outcomes mix national rows (no geo) with geo rows; keep one or the other, or "
                "the national rows would be counted with the geos",
                column="geo",
            )
        )
    if geo_level == "geo":
        if not o_named:
            issues.add(
                Issue("geo_level='geo' needs outcomes per geo; every outcomes row is national")
            )
        m_national = sorted({str(c) for c in media["channel"][_rows_of(m_geo, None)]})
        if m_national:
            issues.add(
                Issue(
                    f"media rows without a geo for channel(s) {', '.join(m_national)}: a geo "
                    "model needs spend per geo",
                    column="geo",
                )
            )
        stray = sorted({g for g in m_geo.tolist() if g is not None} - set(o_named))
        if stray:
            issues.add(
                Issue(
                    f"media has spend in geo(s) without outcomes: {', '.join(stray)}",
                    column="geo",
                )
            )
    _raise(src, issues)
    geos = tuple(o_named) if geo_level == "geo" else (NATIONAL,)

    c_table = None
    c_days = np.zeros(0, dtype=np.int64)
    if control_table is not None and ctrls:
        c_table = control_table[control_table["name"].astype(str).isin(ctrls)]
        c_days = _days(c_table["date"])

    # The range every table covers, then (weekly) its complete Monday-start weeks.
    spans = [(m_days.min(), m_days.max()), (o_days.min(), o_days.max())]
    if c_days.size:
        spans.append((c_days.min(), c_days.max()))
    lo = lo_arg if lo_arg is not None else int(max(s[0] for s in spans))
    hi = hi_arg if hi_arg is not None else int(min(s[1] for s in spans))
    notes: list[str] = []
    if frequency == "W":
        first = lo + (_MONDAY - lo) % 7
        last = hi - (hi - _SUNDAY) % 7
        if first > last:
            issues.add(Issue(f"no complete Monday-start week between {_day(lo)} and {_day(hi)}"))
            _raise(src, issues)
        if first > lo:
            notes.append(
                f"dropped {_span(lo, first - 1)}: the first week was incomplete (weekly "
                "periods are complete Monday-start weeks)"
            )
        if last < hi:
            notes.append(f"dropped {_span(last + 1, hi)}: the last week was incomplete")
        lo, hi = first, last
    elif lo > hi:
        issues.add(Issue(f"no days to model: {_day(lo)} is after {_day(hi)}"))
        _raise(src, issues)
    n_days = hi - lo + 1
    grid = np.arange(lo, hi + 1, dtype=np.int64)

    # Outcomes: every day of every outcomes geo, with a KPI value.
    keep = (o_days >= lo) & (o_days <= hi)
    o_days, o_geo, o_rows = o_days[keep], o_geo[keep], outcomes[keep]
    kpi_cells = o_rows[kpi].to_numpy(dtype=np.float64, na_value=np.nan)
    unknown = np.isnan(kpi_cells)
    if unknown.any():
        issues.add(
            Issue(
                f"{kpi} is empty on {_listing(np.unique(o_days[unknown]))}: unknown is not 0; "
                "import it, or choose start/end around those days",
                column=kpi,
            )
        )
    o_labels: list[str | None] = list(o_named) if o_named else [None]
    for label in o_labels:
        have = o_days[_rows_of(o_geo, label)]
        missing = np.setdiff1d(grid, have)
        if missing.size:
            where = f" for geo {label}" if label is not None else ""
            issues.add(
                Issue(
                    f"outcomes have no row{where} on {_listing(missing)}: every day from "
                    f"{_day(lo)} to {_day(hi)} needs its outcomes",
                    column="date",
                )
            )

    # Media: a day with no rows at all is a gap; a channel without rows on a day spent 0.
    keep = (m_days >= lo) & (m_days <= hi)
    m_days, m_geo, m_rows = m_days[keep], m_geo[keep], media[keep]
    silent = np.setdiff1d(grid, media_days)
    if silent.size:
        issues.add(
            Issue(
                f"media has no rows on {_listing(silent)}: import those days' spend (rows with "
                "spend 0 are fine), or choose start/end around them",
                column="date",
            )
        )
    currencies = sorted({str(c) for c in m_rows["currency"].dropna()})
    if len(currencies) > 1:
        issues.add(
            Issue(
                f"spend is in several currencies ({', '.join(currencies)}); convert it to one "
                "currency before modelling",
                column="currency",
            )
        )

    # Controls: every day (and geo) each chosen control covers.
    control_daily = np.zeros((n_days, len(geos), len(ctrls)))
    if c_table is not None:
        keep = (c_days >= lo) & (c_days <= hi)
        c_rows, c_days = c_table[keep], c_days[keep]
        c_geo = _geo_labels(c_rows["geo"])
        c_names = c_rows["name"].astype(str).to_numpy()
        c_values = c_rows["value"].to_numpy(dtype=np.float64)
        for ki, cname in enumerate(ctrls):
            sel = c_names == cname
            control_daily[..., ki] = _control_series(
                cname, c_days[sel], c_geo[sel], c_values[sel], grid, geos, geo_level, issues
            )
    _raise(src, issues)

    # Cubes (days × geos), then weeks.
    g_pos = {g: i for i, g in enumerate(geos)}
    spend_daily = np.zeros((n_days, len(geos), len(chans)))
    c_pos = {c: i for i, c in enumerate(chans)}
    m_g = (
        np.array([g_pos[g] for g in m_geo.tolist()], dtype=np.int64)
        if geo_level == "geo"
        else np.zeros(len(m_days), dtype=np.int64)
    )
    m_c = np.array([c_pos[str(c)] for c in m_rows["channel"].tolist()], dtype=np.int64)
    np.add.at(spend_daily, (m_days - lo, m_g, m_c), m_rows["spend"].to_numpy(dtype=np.float64))
    kpi_daily = np.zeros((n_days, len(geos)))
    o_g = (
        np.array([g_pos[str(g)] for g in o_geo.tolist()], dtype=np.int64)
        if geo_level == "geo"
        else np.zeros(len(o_days), dtype=np.int64)
    )
    np.add.at(kpi_daily, (o_days - lo, o_g), kpi_cells)

    step = PERIOD_DAYS[frequency]
    n_periods = n_days // step
    spend_p = spend_daily.reshape(n_periods, step, *spend_daily.shape[1:]).sum(axis=1)
    kpi_p = kpi_daily.reshape(n_periods, step, len(geos)).sum(axis=1)
    control_p = control_daily.reshape(n_periods, step, *control_daily.shape[1:]).mean(axis=1)
    data = MMMData(
        dates=_index(lo, n_periods, frequency),
        frequency=frequency,
        geos=geos,
        channels=chans,
        controls=ctrls,
        kpi=kpi,
        kpi_type=WORKSPACE_KPIS[kpi],
        spend=spend_p,
        kpi_values=kpi_p,
        control_values=control_p,
        currency=currencies[0] if currencies else ws.currency,
        source=src,
        notes=tuple(notes),
    )
    return _check_size(data, order, ratio)


def _control_series(
    name: str,
    days: npt.NDArray[np.int64],
    geo: npt.NDArray[Any],
    values: FloatArray,
    grid: npt.NDArray[np.int64],
    geos: tuple[str, ...],
    geo_level: GeoLevel,
    issues: _Issues,
) -> FloatArray:
    """One control as (days, model geos): national = mean over its geos; geo = per geo, or a
    national control repeated for every geo."""
    lo, n_days = int(grid[0]), grid.size
    out = np.zeros((n_days, len(geos)))
    named = sorted({g for g in geo.tolist() if g is not None})
    national = bool(_rows_of(geo, None).any())
    if named and national:
        issues.add(
            Issue(f"control {name} mixes national rows (no geo) with geo rows", column="geo")
        )
        return out
    labels: list[str | None] = list(named) if named else [None]
    per_label = np.zeros((n_days, len(labels)))
    for j, label in enumerate(labels):
        sel = _rows_of(geo, label)
        missing = np.setdiff1d(grid, days[sel])
        if missing.size:
            where = f" in geo {label}" if label is not None else ""
            issues.add(
                Issue(
                    f"control {name} has no value{where} on {_listing(missing)}: unknown is "
                    "not 0; import it, or choose start/end around those days",
                    column="value",
                )
            )
            continue
        per_label[days[sel] - lo, j] = values[sel]
    if geo_level == "national":
        out[:, 0] = per_label.mean(axis=1)
    elif not named:
        out[:] = per_label[:, [0]]
    else:
        absent = [g for g in geos if g not in named]
        if absent:
            issues.add(
                Issue(f"control {name} has no values for geo(s) {', '.join(absent)}", column="geo")
            )
            return out
        out[:] = per_label[:, [named.index(g) for g in geos]]
    return out
