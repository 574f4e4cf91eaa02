import datetime as dt

from mixwise.simulate import holidays


def _days(frame, name):
    return set(frame.loc[frame["holiday"] == name, "date"])


def test_known_dates() -> None:
    cal = holidays.holiday_calendar("2018-01-01", "2032-12-31")
    sf = _days(cal, "spring_festival")
    for day in ["2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2020-01-25"]:
        assert dt.date.fromisoformat(day) in sf
    assert len(sf) == 15
    assert dt.date(2025, 6, 18) in _days(cal, "618")
    assert dt.date(2024, 11, 11) in _days(cal, "double_11")
    bf = _days(cal, "black_friday")
    assert {dt.date(2023, 11, 24), dt.date(2024, 11, 29), dt.date(2025, 11, 28)} <= bf
    assert all(d.weekday() == 4 for d in bf)


def test_range_and_contract() -> None:
    cal = holidays.holiday_calendar(dt.date(2024, 6, 18), "2024-11-10")
    assert list(cal.columns) == ["date", "holiday"]
    assert list(cal["holiday"]) == ["618"]
    assert isinstance(cal["date"].iloc[0], dt.date)


def test_extra_events() -> None:
    cal = holidays.holiday_calendar(
        "2024-01-01",
        "2024-12-31",
        include=(),
        extra={"launch": "2024-03-05", "sale": ["2024-05-01", dt.date(2024, 9, 1)]},
    )
    assert list(cal["holiday"]) == ["launch", "sale", "sale"]
    cal2 = holidays.holiday_calendar(
        "2024-01-01", "2024-12-31", include=(), extra=[("2024-07-01", "x")]
    )
    assert cal2["date"].tolist() == [dt.date(2024, 7, 1)]
