"""Holiday calendar for the simulated market (and for users' own models).

Built-in events, one row per occurrence:

``spring_festival``
    Chinese New Year's day (lunar calendar), hard-coded for 2018–2032; years outside that range
    are simply skipped.
``618``
    JD.com's mid-year sale, June 18.
``double_11``
    Singles' Day, November 11.
``black_friday``
    The day after the fourth Thursday of November.

User-defined events are added with ``extra``: a mapping ``name -> date or dates`` or an iterable
of ``(date, name)`` pairs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import pandas as pd

__all__ = [
    "BUILTIN_HOLIDAYS",
    "SPRING_FESTIVAL",
    "black_friday",
    "holiday_calendar",
    "to_date",
]

SPRING_FESTIVAL: dict[int, dt.date] = {
    2018: dt.date(2018, 2, 16),
    2019: dt.date(2019, 2, 5),
    2020: dt.date(2020, 1, 25),
    2021: dt.date(2021, 2, 12),
    2022: dt.date(2022, 2, 1),
    2023: dt.date(2023, 1, 22),
    2024: dt.date(2024, 2, 10),
    2025: dt.date(2025, 1, 29),
    2026: dt.date(2026, 2, 17),
    2027: dt.date(2027, 2, 6),
    2028: dt.date(2028, 1, 26),
    2029: dt.date(2029, 2, 13),
    2030: dt.date(2030, 2, 3),
    2031: dt.date(2031, 1, 23),
    2032: dt.date(2032, 2, 11),
}

BUILTIN_HOLIDAYS: tuple[str, ...] = ("spring_festival", "618", "double_11", "black_friday")

DateLike = dt.date | str | pd.Timestamp


def to_date(value: DateLike) -> dt.date:
    """Coerce a date, ISO string or Timestamp to ``datetime.date``."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November."""
    nov1 = dt.date(year, 11, 1)
    first_thursday = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7)
    return first_thursday + dt.timedelta(days=22)


def _builtin(name: str, year: int) -> dt.date | None:
    if name == "spring_festival":
        return SPRING_FESTIVAL.get(year)
    if name == "618":
        return dt.date(year, 6, 18)
    if name == "double_11":
        return dt.date(year, 11, 11)
    if name == "black_friday":
        return black_friday(year)
    raise ValueError(f"unknown built-in holiday {name!r}; known: {BUILTIN_HOLIDAYS}")


def holiday_calendar(
    start: DateLike,
    end: DateLike,
    *,
    include: Iterable[str] = BUILTIN_HOLIDAYS,
    extra: Mapping[str, DateLike | Iterable[DateLike]] | Iterable[tuple[DateLike, str]] = (),
) -> pd.DataFrame:
    """Holidays between ``start`` and ``end`` (both inclusive).

    Returns a DataFrame with columns ``date`` (``datetime.date``) and ``holiday`` (str), sorted by
    date then name.
    """
    lo, hi = to_date(start), to_date(end)
    rows: list[tuple[dt.date, str]] = []
    for name in include:
        for year in range(lo.year, hi.year + 1):
            day = _builtin(name, year)
            if day is not None and lo <= day <= hi:
                rows.append((day, name))
    pairs: list[tuple[dt.date, str]] = []
    if isinstance(extra, Mapping):
        for name, when in extra.items():
            if isinstance(when, dt.date | str | pd.Timestamp):
                pairs.append((to_date(when), str(name)))
            else:
                pairs.extend((to_date(w), str(name)) for w in when)
    else:
        pairs.extend((to_date(d), str(n)) for d, n in extra)
    rows.extend((d, n) for d, n in pairs if lo <= d <= hi)
    rows.sort()
    frame = pd.DataFrame(
        {
            "date": pd.Series([d for d, _ in rows], dtype=object),
            "holiday": pd.Series([n for _, n in rows], dtype="str"),
        }
    )
    return frame
