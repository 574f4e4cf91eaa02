"""The warehouse: fact tables (spend, outcomes, touchpoints...) in DuckDB, reached through Ibis.

This is the only module that imports ``ibis`` or ``duckdb``. Reads are Ibis expressions, so
the heavy reductions later capabilities need (path counts, transition counts) are written
once and can run on another Ibis backend. Writes are one transaction per import: an upsert
on the table kind's natural key, so a re-import is idempotent and a restated value updates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import duckdb
import ibis
import pandas as pd

from mixwise.store.schemas import KINDS, SQL_TYPES, TableKind


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class TableSummary:
    kind: str
    rows: int
    first: dt.date | None
    last: dt.date | None
    channels: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rows": self.rows,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "channels": self.channels,
        }


P = ParamSpec("P")
R = TypeVar("R")


def _locked(method: Callable[P, R]) -> Callable[P, R]:
    """Serialise use of the one DuckDB connection (the web server calls from threads)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with args[0]._lock:  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return wrapper


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Warehouse:
    """One DuckDB file, its tables created from the data contracts."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        # Bumped on every write; results derived from the data (attribution on a page) can be
        # cached against it. One process holds the file, so a counter in memory suffices.
        self.version = 0
        self.con = ibis.duckdb.connect(str(self.path), read_only=read_only)
        self._raw: duckdb.DuckDBPyConnection = self.con.con
        self._raw.execute("SET TimeZone='UTC'")
        self._configure()
        if not read_only:
            self.ensure_tables()

    def _configure(self) -> None:
        """Connection settings for the engine-side reductions (attribution paths)."""
        raw = self._raw
        raw.execute("SET enable_progress_bar = false")
        # Ibis compiles ``ArrayValue.map`` to the ``x -> ...`` lambda that DuckDB 2 only
        # accepts with this setting (older versions do not know it and need nothing).
        with contextlib.suppress(duckdb.Error):
            raw.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")

    def close(self) -> None:
        self.con.disconnect()

    def locked(self) -> threading.RLock:
        """The connection's lock, for callers that run several Ibis expressions as one piece
        of work (``with warehouse.locked(): ...``); re-entrant, like the methods' own use."""
        return self._lock

    @_locked
    def ensure_tables(self) -> None:
        for kind in KINDS.values():
            cols = ", ".join(f"{_q(c.name)} {SQL_TYPES[c.type]}" for c in kind.columns)
            self._raw.execute(f"CREATE TABLE IF NOT EXISTS {_q(kind.name)} ({cols})")

    # -- reads -----------------------------------------------------------------------------
    def expr(self, kind: str) -> ibis.Table:
        """The Ibis table expression of a kind (for engine-side reductions)."""
        return self.con.table(KINDS[kind].name)

    @_locked
    def table(self, kind: str) -> pd.DataFrame:
        k = KINDS[kind]
        order = [c for c in k.key if c in k.names]
        df = self.expr(kind).order_by(order).to_pandas()
        return df[list(k.names)]

    @_locked
    def count(self, kind: str) -> int:
        return int(self.expr(kind).count().execute())

    @_locked
    def summary(self, kind: str) -> TableSummary:
        k = KINDS[kind]
        t = self.expr(kind)
        rows = int(t.count().execute())
        first = last = None
        if rows and k.date_column:
            col = t[k.date_column]
            if k.column(k.date_column).type == "timestamp":
                col = col.date()
            agg = t.aggregate(first=col.min(), last=col.max()).to_pandas().iloc[0]
            first, last = _as_date(agg["first"]), _as_date(agg["last"])
        channels: list[str] = []
        if rows and "channel" in k.names:
            channels = sorted(t.select("channel").distinct().to_pandas()["channel"].tolist())
        elif rows and "source_channel" in k.names:
            s = t.filter(t.source_channel.notnull()).select("source_channel").distinct()
            channels = sorted(s.to_pandas()["source_channel"].tolist())
        return TableSummary(kind, rows, first, last, channels)

    @_locked
    def spend_by_channel(self, freq: str = "week", *, complete: bool = True) -> pd.DataFrame:
        """Spend per channel per period (``day``, ``week`` or ``month``), long form.

        With ``complete`` (the default) a first or last period that the data cover only in
        part is left out, so a chart does not show a false drop at its edges.
        """
        t = self.expr("media")
        period = t.date.truncate(_UNIT[freq])
        out = t.group_by(period=period, channel=t.channel, currency=t.currency).aggregate(
            spend=t.spend.sum()
        )
        frame = out.order_by(["period", "channel"]).to_pandas()
        return _complete_periods(frame, freq, t) if complete else frame

    @_locked
    def outcomes_by_period(self, freq: str = "week", *, complete: bool = True) -> pd.DataFrame:
        """Revenue, conversions and leads per period; edges as in :meth:`spend_by_channel`."""
        t = self.expr("outcomes")
        period = t.date.truncate(_UNIT[freq])
        out = t.group_by(period=period).aggregate(
            revenue=t.revenue.sum(), conversions=t.conversions.sum(), leads=t.leads.sum()
        )
        frame = out.order_by("period").to_pandas()
        return _complete_periods(frame, freq, t) if complete else frame

    @_locked
    def spend_totals(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        by_campaign: bool = False,
    ) -> dict[str, float]:
        """Total spend per channel (or ``channel:campaign``) over an optional date range."""
        t = self.expr("media")
        if start is not None:
            t = t.filter(t.date >= start)
        if end is not None:
            t = t.filter(t.date <= end)
        key = t.channel
        if by_campaign:
            key = ibis.ifelse(t.campaign.isnull(), t.channel, t.channel.concat(":", t.campaign))
        out = t.group_by(key=key).aggregate(spend=t.spend.sum()).to_pyarrow()
        return dict(
            zip(out.column("key").to_pylist(), out.column("spend").to_pylist(), strict=True)
        )

    # -- writes ----------------------------------------------------------------------------
    @_locked
    def upsert(self, kind: TableKind, frame: pd.DataFrame) -> UpsertCounts:
        """Insert new keys, update changed rows, in one transaction; returns the counts."""
        target = _q(kind.name)
        cols = list(kind.names)
        frame = frame[cols]
        key_eq = " AND ".join(f"t.{_q(c)} IS NOT DISTINCT FROM s.{_q(c)}" for c in kind.key)
        values = [c for c in cols if c not in kind.key]
        differs = " OR ".join(f"t.{_q(c)} IS DISTINCT FROM s.{_q(c)}" for c in values) or "FALSE"
        raw = self._raw
        raw.register("_mixwise_incoming", frame)
        try:
            raw.execute("BEGIN TRANSACTION")
            try:
                select_cols = ", ".join(
                    f"CAST({_q(c)} AS {SQL_TYPES[kind.column(c).type]}) AS {_q(c)}" for c in cols
                )
                raw.execute(
                    f"CREATE OR REPLACE TEMP TABLE _mixwise_stage AS "
                    f"SELECT {select_cols} FROM _mixwise_incoming"
                )
                matched = raw.execute(
                    f"SELECT count(*), count(*) FILTER (WHERE {differs}) "
                    f"FROM _mixwise_stage s JOIN {target} t ON {key_eq}"
                ).fetchone()
                assert matched is not None
                n_matched, n_changed = int(matched[0]), int(matched[1])
                total_row = raw.execute("SELECT count(*) FROM _mixwise_stage").fetchone()
                assert total_row is not None
                total = int(total_row[0])
                if n_matched:
                    raw.execute(f"DELETE FROM {target} t USING _mixwise_stage s WHERE {key_eq}")
                raw.execute(f"INSERT INTO {target} SELECT * FROM _mixwise_stage")
                raw.execute("DROP TABLE _mixwise_stage")
                raw.execute("COMMIT")
                self.version += 1
            except BaseException:
                raw.execute("ROLLBACK")
                raise
        finally:
            raw.unregister("_mixwise_incoming")
        return UpsertCounts(total - n_matched, n_changed, n_matched - n_changed)

    @_locked
    def replace_all(self, frames: dict[str, pd.DataFrame]) -> None:
        """Replace whole tables in one transaction (the demo refresh)."""
        raw = self._raw
        raw.execute("BEGIN TRANSACTION")
        try:
            for name, frame in frames.items():
                kind = KINDS[name]
                raw.register("_mixwise_incoming", frame[list(kind.names)])
                cols = ", ".join(f"CAST({_q(c.name)} AS {SQL_TYPES[c.type]})" for c in kind.columns)
                raw.execute(f"DELETE FROM {_q(name)}")
                raw.execute(f"INSERT INTO {_q(name)} SELECT {cols} FROM _mixwise_incoming")
                raw.unregister("_mixwise_incoming")
            raw.execute("COMMIT")
            self.version += 1
        except BaseException:
            raw.execute("ROLLBACK")
            raise


_UNIT = {"day": "D", "week": "W", "month": "M"}
_PERIOD = {
    "day": pd.DateOffset(days=1),
    "week": pd.DateOffset(weeks=1),
    "month": pd.DateOffset(months=1),
}


def _complete_periods(frame: pd.DataFrame, freq: str, t: ibis.Table) -> pd.DataFrame:
    """Drop periods that start before the first day or end after the last day of data.

    Data shorter than one whole period are returned as they are.
    """
    if frame.empty:
        return frame
    span = t.aggregate(first=t.date.min(), last=t.date.max()).to_pandas().iloc[0]
    first, last = pd.Timestamp(span["first"]), pd.Timestamp(span["last"])
    start = pd.to_datetime(frame["period"])
    end = start + _PERIOD[freq] - pd.Timedelta(days=1)
    kept = frame[(start >= first) & (end <= last)].reset_index(drop=True)
    return kept if not kept.empty else frame  # less than one whole period: show what there is


def _as_date(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()
