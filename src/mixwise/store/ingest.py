"""Import a file or a frame into the warehouse, validated against its table kind's contract.

The pipeline is: read (CSV, Parquet, Excel, pandas/polars/pyarrow) → rename (``mapping``,
case-insensitive headers) → reshape (``wide`` media: one spend column per channel) → parse
each column into its declared type → value rules (pandera) and duplicate keys → one upsert
transaction. Any error anywhere rejects the whole input and writes nothing; the report names
every problem (up to ``max_errors``) by data row (1 = the first row under the header), column,
the value found and the form expected.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors as pa_errors

from mixwise.store.schemas import Column, TableKind, get_kind
from mixwise.store.warehouse import Warehouse

ROW = "_mixwise_row"  # 1-based data row of the input each parsed row came from
SRC = "_mixwise_col"  # wide media: the input column a melted spend value came from
FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".xlsm": "excel",
}
STAGES = ("reading", "validating", "writing")
_NUMBER_NOISE = re.compile(r"[,\s¥$€£￥]")
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")


@dataclass(frozen=True)
class Issue:
    """One problem with an input: where it is and what was expected."""

    message: str
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def describe(self, source: str) -> str:
        where = [source]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return ", ".join(where) + ": " + self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "message": self.message,
        }


@dataclass
class ImportReport:
    kind: str
    source: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[Issue] = field(default_factory=list)
    error_count: int = 0
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def status(self) -> str:
        return "accepted" if self.ok else "rejected"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "status": self.status,
            "rows_read": self.rows_read,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "error_count": self.error_count,
            "errors": [e.as_dict() for e in self.errors],
            "ignored_columns": self.ignored_columns,
        }

    def summary(self) -> str:
        if self.ok:
            return (
                f"{self.source}: {self.kind}: {self.rows_read} rows read, {self.inserted} "
                f"inserted, {self.updated} updated, {self.unchanged} unchanged"
            )
        shown = len(self.errors)
        more = f" (showing the first {shown})" if self.error_count > shown else ""
        return (
            f"{self.source}: {self.kind}: REJECTED, nothing written: {self.error_count} "
            f"problem(s) in {self.rejected} of {self.rows_read} rows{more}"
        )

    def lines(self) -> list[str]:
        return [e.describe(self.source) for e in self.errors]


class IngestError(ValueError):
    """Raised by :func:`ingest` with ``raise_on_error=True``; carries the report."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("\n".join([report.summary(), *report.lines()]))
        self.report = report


class _Issues:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[Issue] = []
        self.count = 0
        self.rows: set[int] = set()

    def add(self, issue: Issue) -> None:
        self.count += 1
        if issue.row is not None:
            self.rows.add(issue.row)
        if len(self.items) < self.limit:
            self.items.append(issue)


# -- reading ---------------------------------------------------------------------------------
def read_source(data: Any, *, sheet: str | int | None = None) -> tuple[pd.DataFrame, str]:
    """Read ``data`` (path or frame) into a pandas frame and name it for messages."""
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True).copy(), "<DataFrame>"
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        return data.to_pandas(), "<polars DataFrame>"
    if module == "pyarrow":
        return data.to_pandas(), "<pyarrow Table>"
    if not isinstance(data, str | Path):
        raise TypeError(
            f"cannot import a {type(data).__name__}; pass a file path or a pandas, polars "
            "or pyarrow table"
        )
    path = Path(data)
    name = path.name
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{name}: unknown file type {path.suffix!r}; use .csv, .tsv, .parquet or .xlsx"
        )
    try:
        if fmt in ("csv", "tsv"):
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                sep="\t" if fmt == "tsv" else ",",
                encoding="utf-8-sig",
            )
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_excel(path, sheet_name=sheet or 0, dtype=object)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ValueError(f"{name}: cannot be read as {fmt}: {exc}") from exc
    except Exception as exc:  # parquet/openpyxl raise their own error types
        raise ValueError(f"{name}: cannot be read as {fmt}: {exc}") from exc
    return frame, name


# -- shaping ---------------------------------------------------------------------------------
def _rename(
    frame: pd.DataFrame, kind: TableKind, mapping: Mapping[str, str], issues: _Issues
) -> pd.DataFrame:
    frame = frame.rename(columns={c: str(c).strip() for c in frame.columns})
    renames: dict[str, str] = {}
    for target, source in mapping.items():
        if source not in frame.columns:
            issues.add(
                Issue(
                    f"mapping {target}={source}: the input has no column {source!r} "
                    f"(columns: {', '.join(map(str, frame.columns))})",
                    column=source,
                )
            )
        else:
            renames[source] = target
    frame = frame.rename(columns=renames)
    lower = {c: c.lower() for c in frame.columns if c not in kind.names}
    frame = frame.rename(
        columns={c: low for c, low in lower.items() if low in kind.names and low not in frame}
    )
    return frame


def _melt_wide(
    frame: pd.DataFrame, channels: Sequence[str] | None, issues: _Issues
) -> pd.DataFrame:
    keep = [c for c in ("date", "geo", "campaign", "currency") if c in frame.columns]
    if channels:
        missing = [c for c in channels if c not in frame.columns]
        for c in missing:
            issues.add(
                Issue(f"channel column {c!r} named in --channels is not in the input", column=c)
            )
        spend_cols = [c for c in channels if c in frame.columns]
    else:
        spend_cols = [c for c in frame.columns if c not in keep and c != ROW]
    if not spend_cols:
        issues.add(Issue("wide media input has no spend columns (one column per channel)"))
    long = frame.melt(id_vars=[*keep, ROW], value_vars=spend_cols, var_name=SRC, value_name="spend")
    long["channel"] = long[SRC]
    return long.sort_values([ROW, SRC], kind="stable").reset_index(drop=True)


# -- parsing ---------------------------------------------------------------------------------
def _is_missing(series: pd.Series) -> pd.Series:
    missing = series.isna()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        as_text = series.astype("string").str.strip()
        missing = missing | (as_text == "").fillna(True)
    return missing.astype(bool)


def _parse_number(series: pd.Series, integral: bool) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        out = series.astype("float64")
    else:
        text = series.astype("string").str.replace(_NUMBER_NOISE, "", regex=True)
        out = pd.to_numeric(text, errors="coerce").astype("float64")
    if integral:
        out = out.where(np.isfinite(out) & (out == np.round(out)))
    return out.where(np.isfinite(out))


def _parse_date(series: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = series.dt.tz_localize(None) if series.dt.tz is not None else series
    else:
        values = series.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v)
        text = (
            values.astype("string")
            .str.strip()
            .str.replace(r"^(\d{4})/(\d{1,2})/(\d{1,2})", r"\1-\2-\3", regex=True)
        )
        stamps = pd.to_datetime(text, errors="coerce", format="ISO8601")
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_localize(None)
    # A date column must hold calendar days, not times of day.
    stamps = stamps.where(stamps.isna() | (stamps == stamps.dt.normalize()))
    return stamps.dt.date.astype(object).where(stamps.notna(), None)


def _parse_timestamp(series: pd.Series, tz: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        if series.dt.tz is None:
            return series.dt.tz_localize(tz).dt.tz_convert("UTC")
        return series.dt.tz_convert("UTC")
    values = series.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v)
    text = values.astype("string").str.strip()
    aware = text.str.contains(_TZ_SUFFIX).fillna(False).astype(bool)
    out = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], errors="coerce", utc=True, format="ISO8601")
    naive = ~aware & text.notna()
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        out[naive] = parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").dt.tz_convert(
            "UTC"
        )
    return out


def _parse_text(series: pd.Series, col: Column) -> pd.Series:
    if pd.api.types.is_float_dtype(series):
        # Ids that a spreadsheet or Parquet writer turned into numbers: 1042.0 -> "1042".
        whole = series.notna() & (series == np.floor(series))
        text = series.astype("string")
        text[whole] = series[whole].astype("int64").astype("string")
    elif pd.api.types.is_string_dtype(series) and series.dtype != object:
        text = series.astype("string")
    else:  # mixed objects (Excel, frames): the same rules, one cell at a time
        text = series.map(_cell_text).astype("string")
    text = text.str.strip()
    text = text.where(text != "")
    if col.type == "currency":
        text = text.str.upper()
    elif col.type == "enum":
        text = text.str.lower()
    return text.astype(object).where(text.notna(), None)


def _cell_text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _parse_column(series: pd.Series, col: Column, tz: str) -> pd.Series:
    if col.type in ("float", "int"):
        return _parse_number(series, col.type == "int")
    if col.type == "date":
        return _parse_date(series)
    if col.type == "timestamp":
        return _parse_timestamp(series, tz)
    return _parse_text(series, col)


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_frame(
    raw: pd.DataFrame,
    kind: TableKind,
    *,
    mapping: Mapping[str, str] | None = None,
    wide: bool = False,
    channels: Sequence[str] | None = None,
    currency: str | None = None,
    timezone: str = "UTC",
    max_errors: int = 100,
) -> tuple[pd.DataFrame, _Issues, list[str]]:
    """Turn a raw input frame into a frame of the kind's contract, collecting every problem."""
    issues = _Issues(max_errors)
    frame = _rename(raw, kind, mapping or {}, issues)
    frame[ROW] = np.arange(1, len(frame) + 1)
    if wide:
        if kind.name != "media":
            issues.add(Issue("--wide applies to media files only"))
        else:
            frame = _melt_wide(frame, channels, issues)
    if "currency" in kind.names and "currency" not in frame.columns and currency:
        frame["currency"] = currency
    ignored = [c for c in frame.columns if c not in kind.names and c not in (ROW, SRC)]

    # Header-level problems first: a missing required column makes row checks meaningless.
    for name in kind.required:
        if name not in frame.columns:
            hint = difflib.get_close_matches(name, ignored, n=1, cutoff=0.5)
            source = hint[0] if hint else "<column in your file>"
            issues.add(
                Issue(
                    f"required column is missing (expected {kind.column(name).expected}); "
                    f"columns found: {', '.join(ignored) or 'none'}; map one with "
                    f"--map {name}={source}",
                    column=name,
                )
            )
    if kind.one_of and not any(c in frame.columns for c in kind.one_of):
        issues.add(Issue(f"needs at least one of the columns {' or '.join(kind.one_of)}"))
    if issues.count:
        return frame, issues, ignored

    present = [c for c in kind.names if c in frame.columns]
    rows = frame[ROW].to_numpy()
    where = frame[SRC].to_numpy() if SRC in frame.columns else None
    parsed = pd.DataFrame(index=frame.index)
    for name in present:
        col = kind.column(name)
        raw_col = frame[name]
        missing = _is_missing(raw_col)
        values = _parse_column(raw_col.where(~missing, None), col, timezone)
        bad = (~missing & values.isna()).to_numpy()
        for i in np.flatnonzero(bad):
            column = str(where[i]) if where is not None and name == "spend" else name
            issues.add(
                Issue(
                    f"expected {col.expected}, got {_show(raw_col.iloc[i])!r}",
                    int(rows[i]),
                    column,
                    _show(raw_col.iloc[i]),
                )
            )
        if col.required:
            for i in np.flatnonzero(missing.to_numpy()):
                column = str(where[i]) if where is not None and name == "spend" else name
                issues.add(Issue(f"missing value; expected {col.expected}", int(rows[i]), column))
        parsed[name] = values

    # Value rules (pandera), on cells that parsed.
    schema = kind.pandera_schema(present)
    try:
        schema.validate(parsed, lazy=True)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        for _, case in cases.iterrows():
            pos = int(case["index"])  # frames carry a RangeIndex, so labels are positions
            name = str(case["column"])
            if bool(parsed[name].isna().iloc[pos]):
                continue  # already reported as missing or unparseable
            column = str(where[pos]) if where is not None and name == "spend" else name
            col = kind.column(name)
            given = _show(frame[name].iloc[pos])
            issues.add(
                Issue(f"expected {col.expected}, got {given!r}", int(rows[pos]), column, given)
            )

    if kind.one_of:
        have = [c for c in kind.one_of if c in parsed.columns]
        none_set = parsed[have].isna().all(axis=1).to_numpy()
        for i in np.flatnonzero(none_set):
            issues.add(Issue(f"needs a value in {' or '.join(have)}", int(rows[i])))

    for name in kind.names:
        if name not in parsed.columns:
            parsed[name] = None
    key = list(kind.key)
    dup = parsed.duplicated(subset=key, keep=False).to_numpy()
    if dup.any():
        dups = parsed.loc[dup, key].copy()
        dups[ROW] = rows[dup]
        for _, grp in dups.groupby(key, dropna=False, sort=False)[ROW]:
            first, *others = grp.tolist()
            for r in others:
                issues.add(
                    Issue(
                        f"same key ({', '.join(key)}) as row {first}; each key may appear "
                        "once per import",
                        int(r),
                    )
                )
    return parsed[list(kind.names)], issues, ignored


def ingest(
    warehouse: Warehouse,
    kind_name: str,
    data: Any,
    *,
    mapping: Mapping[str, str] | None = None,
    wide: bool = False,
    channels: Sequence[str] | None = None,
    currency: str | None = None,
    timezone: str = "UTC",
    sheet: str | int | None = None,
    source: str | None = None,
    max_errors: int = 100,
    step: Callable[[str], None] | None = None,
) -> ImportReport:
    """Validate ``data`` as ``kind_name`` and upsert it; the report says what happened.

    ``step`` is called with the name of each stage (one of :data:`STAGES`) as it starts, for
    progress display.
    """
    say = step or (lambda _stage: None)
    kind = get_kind(kind_name)
    say(STAGES[0])
    try:
        raw, name = read_source(data, sheet=sheet)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        report = ImportReport(kind.name, source or str(data))
        report.errors = [Issue(str(exc))]
        report.error_count = 1
        return report
    report = ImportReport(kind.name, source or name, rows_read=len(raw))
    say(STAGES[1])
    frame, issues, ignored = parse_frame(
        raw,
        kind,
        mapping=mapping,
        wide=wide,
        channels=channels,
        currency=currency,
        timezone=timezone,
        max_errors=max_errors,
    )
    report.ignored_columns = ignored
    if issues.count:
        issues.items.sort(key=lambda e: (e.row or 0, e.column or ""))
        report.errors = issues.items
        report.error_count = issues.count
        report.rejected = len(issues.rows)
        return report
    say(STAGES[2])
    counts = warehouse.upsert(kind, frame)
    report.inserted, report.updated, report.unchanged = (
        counts.inserted,
        counts.updated,
        counts.unchanged,
    )
    return report
