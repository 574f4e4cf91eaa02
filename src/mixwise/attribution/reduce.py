"""Journeys → the small inputs of the attribution models, reduced inside the warehouse engine.

The raw tables can hold billions of touchpoints; everything heavy happens in the engine as
Ibis expressions (so the same code runs on DuckDB here and on a distributed Ibis backend
later), and only the reduced results come back: the unique paths with their counts
(:class:`~mixwise.attribution.data.PathSet`) and, for the timing-aware models, the touches of
converting journeys (:class:`~mixwise.attribution.data.ConvertingTouches`).

How journeys become paths
-------------------------
Touches and conversions of one ``journey_id`` are merged into one stream ordered by time (a
touch at the same instant as a conversion counts for it). Each conversion closes a *segment*:
the touches since the previous conversion. Touches after the last conversion form a
non-converting segment (a "null" path). So a journey that converts twice yields two
converting paths, and ChannelAttribution's convention is kept.

Options (:class:`JourneyOptions`):

- ``lookback_days``: touches more than this many days before their segment's reference time
  (the conversion, or the last touch of a non-converting segment) are dropped.
- ``conversion_window_days``: a conversion more than this many days after the segment's last
  touch is not attributed to marketing: the segment becomes a non-converting path and the
  conversion is reported as unattributed.
- ``start`` / ``end``: keep segments whose reference day is in the range (inclusive).
- ``granularity``: ``"channel"`` or ``"campaign"`` (the token is ``channel:campaign``, or the
  channel where the campaign is unknown).

Conversions with no touch at all (or none left after the lookback) cannot be attributed and
are counted in :attr:`Reduction.unattributed`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mixwise.attribution.data import (
    FIRST_TOUCH,
    LEAD_CREATION,
    OPPORTUNITY_CREATION,
    ConvertingTouches,
    PathSet,
)

Granularity = Literal["channel", "campaign"]
_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class JourneyOptions:
    lookback_days: float | None = None
    conversion_window_days: float | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    granularity: Granularity = "channel"

    def __post_init__(self) -> None:
        for name in ("lookback_days", "conversion_window_days"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be a positive number of days, got {v}")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.granularity not in ("channel", "campaign"):
            raise ValueError("granularity must be 'channel' or 'campaign'")


@dataclass
class Reduction:
    """What the engine returned: the model inputs plus counts a report should show."""

    paths: PathSet
    touches: ConvertingTouches
    journeys: int  # segments (converting or not) that reached the models
    unattributed: int  # conversions with no touch to credit
    unattributed_value: float
    options: JourneyOptions = field(default_factory=JourneyOptions)


def _token(t: ir.Table, granularity: Granularity) -> ir.StringValue:
    if granularity == "channel":
        return t.channel
    return ibis.ifelse(t.campaign.isnull(), t.channel, t.channel.concat(":", t.campaign))


def segment_touches(
    touchpoints: ir.Table, conversions: ir.Table, options: JourneyOptions
) -> ir.Table:
    """Touches labelled with their segment: ``journey_id, segment, ts, token, converted,
    value, ref_ts``, after the lookback, conversion-window and date filters."""
    touch = touchpoints.select(
        journey_id=touchpoints.journey_id,
        ts=touchpoints.timestamp,
        token=_token(touchpoints, options.granularity),
        is_conv=ibis.literal(0, "int8"),
        value=ibis.null("float64"),
    )
    conv = conversions.select(
        journey_id=conversions.journey_id,
        ts=conversions.timestamp,
        token=ibis.null("string"),
        is_conv=ibis.literal(1, "int8"),
        value=conversions.value.cast("float64"),
    )
    events = touch.union(conv)
    running = ibis.window(group_by="journey_id", order_by=["ts", "is_conv"], rows=(None, 0))
    events = events.mutate(
        segment=events.is_conv.cast("int64").sum().over(running) - events.is_conv
    )
    seg = ibis.window(group_by=["journey_id", "segment"])
    events = events.mutate(
        conv_ts=ibis.ifelse(events.is_conv == 1, events.ts, ibis.null("timestamp")).max().over(seg),
        last_touch=ibis.ifelse(events.is_conv == 0, events.ts, ibis.null("timestamp"))
        .max()
        .over(seg),
        seg_value=events.value.sum().over(seg),
    )
    gap = events.conv_ts.epoch_seconds() - events.last_touch.epoch_seconds()
    converted = events.conv_ts.notnull() & events.last_touch.notnull()
    if options.conversion_window_days is not None:
        converted = converted & (gap <= options.conversion_window_days * _SECONDS_PER_DAY)
    events = events.mutate(converted=converted.cast("int8"))
    events = events.mutate(
        ref_ts=ibis.ifelse(events.converted == 1, events.conv_ts, events.last_touch)
    )
    touches = events.filter(events.is_conv == 0)
    if options.lookback_days is not None:
        age = touches.ref_ts.epoch_seconds() - touches.ts.epoch_seconds()
        touches = touches.filter(age <= options.lookback_days * _SECONDS_PER_DAY)
    if options.start is not None:
        touches = touches.filter(touches.ref_ts.date() >= options.start)
    if options.end is not None:
        touches = touches.filter(touches.ref_ts.date() <= options.end)
    touches = touches.select(
        "journey_id",
        "segment",
        "ts",
        "token",
        "converted",
        value=ibis.ifelse(touches.converted == 1, touches.seg_value, 0.0),
        ref_ts="ref_ts",
    )
    return touches


def reduce_journeys(
    touchpoints: ir.Table,
    conversions: ir.Table,
    leads: ir.Table | None = None,
    options: JourneyOptions | None = None,
) -> Reduction:
    """Reduce raw journeys to the model inputs (see the module docstring)."""
    options = options or JourneyOptions()
    touches = segment_touches(touchpoints, conversions, options).cache()  # used three times
    try:
        paths = _path_set(touches)
        converting = _converting_touches(touches, leads, paths.channels)
        journeys = int(touches.select("journey_id", "segment").distinct().count().execute())
    finally:
        touches.release()
    # Unattributed = conversions in the range that no kept path carries.
    c = conversions
    if options.start is not None:
        c = c.filter(c.timestamp.date() >= options.start)
    if options.end is not None:
        c = c.filter(c.timestamp.date() <= options.end)
    total = c.aggregate(n=c.count(), value=c.value.sum()).to_pyarrow()
    n_total = int(total.column("n")[0].as_py() or 0)
    v_total = float(total.column("value")[0].as_py() or 0.0)
    return Reduction(
        paths,
        converting,
        journeys,
        n_total - round(float(paths.conversions.sum())),
        v_total - float(converting.value.sum()),
        options,
    )


def _path_set(touches: ir.Table) -> PathSet:
    per_segment = touches.group_by(["journey_id", "segment"]).aggregate(
        path=touches.token.collect(order_by=[touches.ts, touches.token]),
        converted=touches.converted.max(),
        value=touches.value.max(),
    )
    grouped = per_segment.group_by("path").aggregate(
        conversions=per_segment.converted.sum().cast("float64"),
        nulls=(1 - per_segment.converted).sum().cast("float64"),
        value=per_segment.value.sum().cast("float64"),
    )
    table = grouped.to_pyarrow().combine_chunks()
    paths = table.column("path").combine_chunks()
    channels, tokens = _encode(paths.flatten())
    offsets = np.asarray(paths.offsets, dtype=np.int64)
    offsets = offsets - offsets[0]
    return PathSet(
        channels,
        offsets,
        tokens,
        _floats(table, "conversions"),
        _floats(table, "nulls"),
        _floats(table, "value"),
    )


def _converting_touches(
    touches: ir.Table, leads: ir.Table | None, channels: tuple[str, ...]
) -> ConvertingTouches:
    t = touches.filter(touches.converted == 1)
    order = ibis.window(group_by=["journey_id", "segment"], order_by=[t.ts, t.token])
    t = t.mutate(rn=ibis.row_number().over(order))
    milestone = ibis.ifelse(t.rn == 0, FIRST_TOUCH, 0)
    has_leads = False
    if leads is not None and int(leads.count().execute()) > 0:
        marks = leads.group_by(journey_id=leads.lead_id).aggregate(
            lead_ts=leads.entered_at.min(where=leads.stage == "lead"),
            opp_ts=leads.entered_at.min(where=leads.stage == "opportunity"),
        )
        t = t.left_join(marks, "journey_id").select(t, marks.lead_ts, marks.opp_ts)
        seg = ibis.window(group_by=["journey_id", "segment"])
        t = t.mutate(
            lead_rn=ibis.ifelse(t.ts <= t.lead_ts, t.rn, ibis.null("int64")).max().over(seg),
            opp_rn=ibis.ifelse(t.ts <= t.opp_ts, t.rn, ibis.null("int64")).max().over(seg),
        )
        milestone = (
            ibis.ifelse(t.rn == 0, FIRST_TOUCH, 0)
            + ibis.ifelse(t.rn == t.lead_rn, LEAD_CREATION, 0).fill_null(0)
            + ibis.ifelse(t.rn == t.opp_rn, OPPORTUNITY_CREATION, 0).fill_null(0)
        )
        linked = marks.join(t.select("journey_id").distinct(), "journey_id")
        has_leads = int(linked.count().execute()) > 0
    age = (t.ref_ts.epoch_seconds() - t.ts.epoch_seconds()) / _SECONDS_PER_DAY
    out = t.select(
        "journey_id",
        "segment",
        token=t.token,
        age=age.cast("float64"),
        milestone=milestone.cast("int8"),
        rn=t.rn,
        value=t.value,
    ).order_by(["journey_id", "segment", "rn"])
    table = out.to_pyarrow().combine_chunks()
    tokens = _codes(table.column("token").to_numpy(zero_copy_only=False), channels)
    rn = table.column("rn").to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.flatnonzero(rn == 0)
    offsets = np.append(starts, len(rn)).astype(np.int64)
    values = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    return ConvertingTouches(
        channels,
        offsets,
        tokens,
        table.column("age").to_numpy(zero_copy_only=False).astype(np.float64),
        table.column("milestone").to_numpy(zero_copy_only=False).astype(np.int8),
        np.nan_to_num(values[starts]),
        has_lead_milestones=has_leads,
    )


def _encode(values: pa.Array) -> tuple[tuple[str, ...], np.ndarray]:
    """Channel names sorted, and each value's index among them."""
    encoded = (
        pc.dictionary_encode(values).combine_chunks()
        if isinstance(values, pa.ChunkedArray)
        else pc.dictionary_encode(values)
    )
    names = encoded.dictionary.to_pylist()
    order = np.argsort(np.array(names, dtype=object), kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    codes = np.asarray(encoded.indices, dtype=np.int64)
    return tuple(names[i] for i in order), rank[codes]


def _codes(values: np.ndarray, channels: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``channels`` (every value must be one of them)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    index = {c: i for i, c in enumerate(channels)}
    uniq, inverse = np.unique(values.astype(str), return_inverse=True)
    return np.array([index[u] for u in uniq], dtype=np.int64)[inverse]


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return np.nan_to_num(table.column(name).to_numpy(zero_copy_only=False).astype(np.float64))
