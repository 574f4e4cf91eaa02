"""The data contracts: the eight table kinds mixwise imports, one declaration each.

Each :class:`TableKind` declares its columns (type, required or optional, value rules), its
natural key (re-importing a row with the same key updates it) and how it is documented. The
same declaration drives parsing (``store/ingest.py``), the pandera value checks below, the
warehouse DDL (``store/warehouse.py``) and ``docs/data-formats.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import pandera.pandas as pa

ColumnType = Literal["date", "timestamp", "string", "float", "int", "currency", "enum"]

SQL_TYPES: dict[str, str] = {
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "string": "VARCHAR",
    "float": "DOUBLE",
    "int": "BIGINT",
    "currency": "VARCHAR",
    "enum": "VARCHAR",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str
    required: bool = True
    min: float | None = None
    allowed: tuple[str, ...] | None = None

    @property
    def expected(self) -> str:
        """The expected form, in words, for error messages and docs."""
        if self.type == "date":
            return "a date like 2024-01-31"
        if self.type == "timestamp":
            return "a timestamp like 2024-01-31 13:45:00+08:00"
        if self.type == "currency":
            return "a 3-letter currency code like CNY or USD"
        if self.type == "enum":
            return "one of " + ", ".join(self.allowed or ())
        if self.type in ("float", "int"):
            word = "a whole number" if self.type == "int" else "a number"
            return f"{word} ≥ {self.min:g}" if self.min is not None else word
        return "non-empty text"


@dataclass(frozen=True)
class TableKind:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    # At least one of these columns must be present (e.g. revenue and/or conversions).
    one_of: tuple[str, ...] = ()
    date_column: str | None = None
    example: str = ""
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def pandera_schema(self, present: list[str]) -> pa.DataFrameSchema:
        """Value checks for the columns present in a parsed frame (types already coerced)."""
        cols: dict[str, pa.Column] = {}
        for name in present:
            c = self.column(name)
            checks: list[pa.Check] = []
            if c.min is not None:
                checks.append(pa.Check.ge(c.min))
            if c.allowed is not None:
                checks.append(pa.Check.isin(list(c.allowed)))
            if c.type == "currency":
                checks.append(pa.Check.str_matches(r"^[A-Z]{3}$"))
            if c.type == "string" and c.required:
                checks.append(pa.Check.str_length(min_value=1))
            cols[name] = pa.Column(checks=checks, nullable=not c.required, coerce=False)
        return pa.DataFrameSchema(cols, strict=False)


def _geo() -> Column:
    return Column("geo", "string", "Region, market or DMA; leave out for national data.", False)


def _date(desc: str = "Calendar day.") -> Column:
    return Column("date", "date", desc)


KINDS: dict[str, TableKind] = {
    k.name: k
    for k in (
        TableKind(
            "media",
            "Daily paid-media delivery per channel (and optionally geo and campaign).",
            (
                _date(),
                Column("channel", "string", "Channel name, e.g. tv, brand_search, social."),
                _geo(),
                Column("campaign", "string", "Campaign name within the channel.", False),
                Column("spend", "float", "Money spent that day.", min=0),
                Column("impressions", "float", "Impressions (or GRPs for TV).", False, min=0),
                Column("clicks", "float", "Clicks.", False, min=0),
                Column("currency", "currency", "ISO 4217 code of spend; default: workspace."),
            ),
            key=("date", "channel", "geo", "campaign"),
            date_column="date",
            example="date,channel,spend,impressions,clicks,currency\n"
            "2024-01-01,tv,52000,1200000,,CNY",
        ),
        TableKind(
            "outcomes",
            "Daily business outcomes (the KPI the marketing mix model explains).",
            (
                _date(),
                _geo(),
                Column("revenue", "float", "Revenue that day.", False, min=0),
                Column(
                    "conversions", "float", "Conversions (orders, sign-ups) that day.", False, min=0
                ),
                Column("leads", "float", "New leads that day.", False, min=0),
            ),
            key=("date", "geo"),
            one_of=("revenue", "conversions"),
            date_column="date",
            example="date,revenue,conversions\n2024-01-01,183000,912",
        ),
        TableKind(
            "controls",
            "Daily non-media drivers: price index, promotions, competitor activity...",
            (
                _date(),
                _geo(),
                Column("name", "string", "Control variable name, e.g. price_index."),
                Column("value", "float", "Its value that day."),
            ),
            key=("date", "geo", "name"),
            date_column="date",
            example="date,name,value\n2024-01-01,price_index,1.02",
        ),
        TableKind(
            "touchpoints",
            "User-level marketing touches, one row per touch of a journey.",
            (
                Column("journey_id", "string", "User or journey identifier."),
                Column("timestamp", "timestamp", "When the touch happened."),
                Column("channel", "string", "Channel of the touch."),
                Column("campaign", "string", "Campaign of the touch.", False),
                Column(
                    "interaction",
                    "enum",
                    "Kind of touch.",
                    False,
                    allowed=("impression", "click", "visit"),
                ),
            ),
            key=("journey_id", "timestamp", "channel"),
            date_column="timestamp",
            example="journey_id,timestamp,channel,interaction\n"
            "j0000001,2024-01-03 09:12:00+08:00,social,impression",
        ),
        TableKind(
            "conversions",
            "Conversions of journeys (join to touchpoints on journey_id).",
            (
                Column("journey_id", "string", "Journey that converted."),
                Column("timestamp", "timestamp", "When it converted."),
                Column("value", "float", "Conversion value (revenue).", min=0),
                Column("order_id", "string", "Order identifier.", False),
            ),
            key=("journey_id", "timestamp"),
            date_column="timestamp",
            example="journey_id,timestamp,value,order_id\n"
            "j0000001,2024-01-05 20:01:00+08:00,329.0,o-1001",
        ),
        TableKind(
            "paths",
            "Aggregated paths in ChannelAttribution's form.",
            (
                Column("path", "string", 'Channels in order, joined by " > ".'),
                Column("conversions", "float", "Conversions of journeys with this path.", min=0),
                Column("nulls", "float", "Journeys with this path that did not convert.", min=0),
                Column("value", "float", "Conversion value of this path.", False, min=0),
            ),
            key=("path",),
            example="path,conversions,nulls,value\nsocial > brand_search,12,340,3900",
        ),
        TableKind(
            "orders",
            "Customer orders (for customer lifetime value).",
            (
                Column("customer_id", "string", "Customer identifier."),
                _date("Order day."),
                Column("value", "float", "Order value.", min=0),
                Column(
                    "order_id",
                    "string",
                    "Order identifier; needed when a customer orders twice on one day.",
                    False,
                ),
            ),
            key=("customer_id", "date", "order_id"),
            date_column="date",
            example="customer_id,date,value\nc000042,2024-02-11,129.9",
        ),
        TableKind(
            "leads",
            "Lead stage history: one row per stage a lead entered.",
            (
                Column("lead_id", "string", "Lead identifier."),
                Column(
                    "stage",
                    "enum",
                    "Funnel stage entered.",
                    allowed=("lead", "mql", "sql", "opportunity", "won", "lost"),
                ),
                Column("entered_at", "timestamp", "When the lead entered the stage."),
                Column("source_channel", "string", "Channel that sourced the lead.", False),
            ),
            key=("lead_id", "stage"),
            date_column="entered_at",
            example="lead_id,stage,entered_at,source_channel\n"
            "L-1,mql,2024-01-08 10:00:00+00:00,social",
        ),
    )
}


def get_kind(name: str) -> TableKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown table kind {name!r}; kinds are: {', '.join(KINDS)}") from None


def empty_frame(kind: TableKind) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series(dtype=object) for c in kind.columns})


def render_markdown() -> str:
    """The contract tables for ``docs/data-formats.md`` (a test keeps the doc in sync)."""
    out: list[str] = []
    for kind in KINDS.values():
        out.append(f"### `{kind.name}`\n\n{kind.description}\n")
        out.append(f"Natural key: {', '.join(f'`{k}`' for k in kind.key)}.")
        if kind.one_of:
            out.append(f" At least one of {' / '.join(f'`{c}`' for c in kind.one_of)}.")
        out.append("\n\n| column | required | expected | meaning |\n|---|---|---|---|\n")
        for c in kind.columns:
            req = "yes" if c.required else "no"
            out.append(f"| `{c.name}` | {req} | {c.expected} | {c.description} |\n")
        if kind.example:
            out.append(f"\n```csv\n{kind.example}\n```\n")
        out.append("\n")
    return "".join(out).rstrip() + "\n"
