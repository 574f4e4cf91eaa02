"""Import: contracts, every kind and format, bad input rejected whole, idempotent upserts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from mixwise.store.schemas import KINDS
from mixwise.workspace import Workspace


def good(kind: str, n: int = 20) -> pd.DataFrame:
    """A valid input of ``kind`` with ``n`` rows, as strings (what a CSV export holds)."""
    days = [(dt.date(2024, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(n)]
    stamps = [f"{d} 10:{i % 60:02d}:00+08:00" for i, d in enumerate(days)]
    frames = {
        "media": {
            "date": days,
            "channel": ["tv"] * n,
            "spend": [str(100 + i) for i in range(n)],
            "impressions": [str(1000 * i) for i in range(n)],
            "currency": ["CNY"] * n,
        },
        "outcomes": {
            "date": days,
            "revenue": [str(5000 + i) for i in range(n)],
            "conversions": [str(50 + i) for i in range(n)],
        },
        "controls": {"date": days, "name": ["price_index"] * n, "value": ["1.01"] * n},
        "touchpoints": {
            "journey_id": [f"j{i}" for i in range(n)],
            "timestamp": stamps,
            "channel": ["social"] * n,
            "interaction": ["click"] * n,
        },
        "conversions": {
            "journey_id": [f"j{i}" for i in range(n)],
            "timestamp": stamps,
            "value": ["99.5"] * n,
            "order_id": [f"o{i}" for i in range(n)],
        },
        "paths": {
            "path": [f"social > c{i}" for i in range(n)],
            "conversions": ["3"] * n,
            "nulls": ["40"] * n,
            "value": ["300"] * n,
        },
        "orders": {
            "customer_id": [f"c{i}" for i in range(n)],
            "date": days,
            "value": ["129.9"] * n,
        },
        "leads": {
            "lead_id": [f"L{i}" for i in range(n)],
            "stage": ["mql"] * n,
            "entered_at": stamps,
            "source_channel": ["email"] * n,
        },
    }
    return pd.DataFrame(frames[kind])


# One bad cell per kind, placed in data row 17 (index 16): (column, bad value).
BAD_CELL = {
    "media": ("spend", "-5"),
    "outcomes": ("revenue", "lots"),
    "controls": ("date", "2024-02-30"),
    "touchpoints": ("interaction", "hover"),
    "conversions": ("value", "-1"),
    "paths": ("nulls", "many"),
    "orders": ("date", "yesterday"),
    "leads": ("stage", "prospect"),
}


def counts(ws: Workspace) -> dict[str, int]:
    return {s.kind: s.rows for s in ws.tables()}


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_excel(path, index=False)
    return path


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_imports_and_reimport_is_idempotent(
    workspace: Workspace, tmp_path: Path, kind: str
) -> None:
    path = write(good(kind), tmp_path / f"{kind}.csv")
    first = workspace.ingest(kind, path)
    assert first.ok, first.lines()
    assert (first.rows_read, first.inserted, first.updated) == (20, 20, 0)
    again = workspace.ingest(kind, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 20)
    assert len(workspace.table(kind)) == 20


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_rejects_a_bad_cell_and_writes_nothing(
    workspace: Workspace, tmp_path: Path, kind: str
) -> None:
    workspace.ingest(kind, good(kind, 5))
    before = counts(workspace)
    frame = good(kind)
    column, value = BAD_CELL[kind]
    frame.loc[16, column] = value
    report = workspace.ingest(kind, write(frame, tmp_path / f"{kind}.csv"))
    assert not report.ok
    assert [(e.row, e.column) for e in report.errors] == [(17, column)]
    assert value in report.errors[0].message
    assert "expected" in report.errors[0].message
    assert report.rejected == 1
    assert counts(workspace) == before


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".xlsx"])
def test_negative_spend_in_row_17_is_named_in_every_format(
    workspace: Workspace, tmp_path: Path, suffix: str
) -> None:
    frame = good("media")
    if suffix in (".parquet", ".xlsx"):
        frame["spend"] = frame["spend"].astype(float)
        frame["impressions"] = frame["impressions"].astype(float)
    frame.loc[16, "spend"] = -5 if suffix in (".parquet", ".xlsx") else "-5"
    report = workspace.ingest("media", write(frame, tmp_path / f"media{suffix}"))
    assert not report.ok
    assert (report.errors[0].row, report.errors[0].column) == (17, "spend")
    line = report.lines()[0]
    assert f"media{suffix}" in line and "row 17" in line and "'spend'" in line
    assert counts(workspace)["media"] == 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_good_file_in_every_format(workspace: Workspace, tmp_path: Path, suffix: str) -> None:
    report = workspace.ingest("outcomes", write(good("outcomes"), tmp_path / f"o{suffix}"))
    assert report.ok, report.lines()
    assert workspace.table("outcomes")["revenue"].sum() == sum(5000 + i for i in range(20))


@pytest.mark.parametrize("convert", [lambda f: f, pl.from_pandas, pa.Table.from_pandas])
def test_frames_from_pandas_polars_pyarrow(workspace: Workspace, convert: object) -> None:
    frame = good("media")
    frame["spend"] = frame["spend"].astype(float)
    report = workspace.ingest("media", convert(frame))  # type: ignore[operator]
    assert report.ok, report.lines()
    assert report.inserted == 20


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("garbage.parquet", b"not a parquet file", "cannot be read as parquet"),
        ("garbage.xlsx", b"PK\x03\x04 broken zip", "cannot be read as excel"),
        ("notes.pdf", b"%PDF-1.4", "unknown file type"),
        (
            "latin1.csv",
            "date,channel,spend\n2024-01-01,télé,1\n".encode("latin-1"),
            "cannot be read as csv",
        ),
    ],
)
def test_unreadable_files_are_rejected_with_the_file_named(
    workspace: Workspace, tmp_path: Path, name: str, content: bytes, needle: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    report = workspace.ingest("media", path)
    assert not report.ok
    assert needle in report.lines()[0] and name in report.lines()[0]
    assert counts(workspace)["media"] == 0


def test_missing_file(workspace: Workspace, tmp_path: Path) -> None:
    report = workspace.ingest("media", tmp_path / "nope.csv")
    assert not report.ok and "no such file" in report.lines()[0]


def test_all_errors_are_reported_up_to_the_limit(workspace: Workspace) -> None:
    frame = good("media", 300)
    frame["spend"] = "-1"
    report = workspace.ingest("media", frame)
    assert report.error_count == 300
    assert len(report.errors) == workspace.settings.max_errors == 100
    assert report.rejected == 300
    assert [e.row for e in report.errors[:3]] == [1, 2, 3]


def test_missing_required_column_suggests_a_mapping(workspace: Workspace) -> None:
    frame = good("media").rename(columns={"spend": "Spend_CNY"})
    report = workspace.ingest("media", frame)
    assert not report.ok
    assert report.errors[0].column == "spend"
    assert "--map spend=Spend_CNY" in report.errors[0].message


def test_mapping_and_case_insensitive_headers(workspace: Workspace) -> None:
    frame = good("media").rename(columns={"spend": "Cost", "date": "Date", "channel": "CHANNEL"})
    report = workspace.ingest("media", frame, mapping={"spend": "Cost"})
    assert report.ok, report.lines()
    bad = workspace.ingest("media", frame, mapping={"spend": "Kosten"})
    assert not bad.ok and "no column 'Kosten'" in bad.lines()[0]


def test_restated_spend_updates_the_row(workspace: Workspace) -> None:
    workspace.ingest("media", good("media"))
    restated = good("media").iloc[:3].copy()
    restated["spend"] = ["1", "2", "3"]
    report = workspace.ingest("media", restated)
    assert (report.inserted, report.updated, report.unchanged) == (0, 3, 0)
    table = workspace.table("media")
    assert table["spend"].iloc[:3].tolist() == [1.0, 2.0, 3.0]
    assert len(table) == 20


def test_duplicate_keys_in_one_file_are_rejected(workspace: Workspace) -> None:
    frame = pd.concat([good("media", 3), good("media", 1)], ignore_index=True)
    report = workspace.ingest("media", frame)
    assert not report.ok
    assert report.errors[0].row == 4 and "same key" in report.errors[0].message
    assert "row 1" in report.errors[0].message


def test_wide_media_like_the_peers_example_data(workspace: Workspace) -> None:
    wide = pd.DataFrame(
        {
            "date_week": ["2024-01-01", "2024-01-08"],
            "tv_S": ["100", "200"],
            "search_S": ["1,000", "¥2,000"],
            "competitor_sales": ["5", "6"],
        }
    )
    report = workspace.ingest(
        "media",
        wide,
        wide=True,
        mapping={"date": "date_week"},
        channels=["tv_S", "search_S"],
        currency="USD",
    )
    assert report.ok, report.lines()
    table = workspace.table("media")
    assert sorted(table["channel"].unique()) == ["search_S", "tv_S"]
    assert table["spend"].sum() == 3300
    assert set(table["currency"]) == {"USD"}
    wide.loc[1, "tv_S"] = "-3"
    bad = workspace.ingest(
        "media", wide, wide=True, mapping={"date": "date_week"}, channels=["tv_S", "search_S"]
    )
    assert [(e.row, e.column) for e in bad.errors] == [(2, "tv_S")]


def test_outcomes_need_revenue_or_conversions(workspace: Workspace) -> None:
    frame = good("outcomes")[["date"]].assign(leads="3")
    report = workspace.ingest("outcomes", frame)
    assert not report.ok and "revenue or conversions" in report.lines()[0]
    frame = good("outcomes")
    frame.loc[4, ["revenue", "conversions"]] = ""
    report = workspace.ingest("outcomes", frame)
    assert [e.row for e in report.errors] == [5]


def test_unknown_kind_is_a_clear_error(workspace: Workspace) -> None:
    with pytest.raises(ValueError, match="unknown table kind 'spend'"):
        workspace.ingest("spend", good("media"))


def test_timestamps_keep_their_zone_and_naive_ones_use_the_workspace_zone(
    workspace: Workspace,
) -> None:
    workspace.set_setting("timezone", "Asia/Shanghai")
    frame = pd.DataFrame(
        {
            "journey_id": ["a", "b"],
            "channel": ["tv", "tv"],
            "timestamp": ["2024-01-01 08:00:00+00:00", "2024-01-01 08:00:00"],
        }
    )
    assert workspace.ingest("touchpoints", frame).ok
    stamps = workspace.table("touchpoints").set_index("journey_id")["timestamp"]
    assert str(stamps["a"]) == "2024-01-01 08:00:00+00:00"
    assert str(stamps["b"]) == "2024-01-01 00:00:00+00:00"


def test_unknown_is_null_not_zero(workspace: Workspace) -> None:
    frame = good("media")
    frame.loc[0, "impressions"] = ""
    assert workspace.ingest("media", frame).ok
    assert pd.isna(workspace.table("media")["impressions"].iloc[0])


def test_ids_that_became_numbers_are_read_back_as_text(workspace: Workspace) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [1042.0, 7.0],
            "date": ["2024-01-01"] * 2,
            "value": [1.0, 2.0],
            "order_id": [" A1 ", None],
        }
    )
    assert workspace.ingest("orders", frame).ok
    mixed = pd.DataFrame(
        {"customer_id": [3.0, "c9"], "date": ["2024-01-02"] * 2, "value": [1.0, 2.0]}, dtype=object
    )
    assert workspace.ingest("orders", mixed).ok
    table = workspace.table("orders")
    assert sorted(table["customer_id"]) == ["1042", "3", "7", "c9"]
    assert table.set_index("customer_id")["order_id"].get("1042") == "A1"
