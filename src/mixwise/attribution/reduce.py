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

How it runs
-----------
A touch is packed into one integer, ``(ticks since the first touch) * radix + token code``
(a tick is one second where every touch time is a whole second, else one µs; codes
follow the sorted token names), so sorting a journey's packed touches orders them by
time then name and ``packed % radix`` gives the token back. Most journeys are *simple*: no
conversion, or one conversion after all their touches; they are one segment each and are
reduced in one pass (touches grouped by journey, unordered lists sorted per journey, joined
to per-journey conversion counts, grouped by path), which also collects the converting
journeys' touches and the ids of the other journeys. Those (several conversions, touches
after a conversion) and everything when a lookback is set take the general path: the
window over the union of touches and conversions (:func:`segment_touches`). Large inputs
are reduced in parts, by ranges of ``journey_id`` (:data:`PARTITION_TOUCHES`), which bounds
the engine's memory, and on DuckDB under a lower ``memory_limit``
(:data:`ENGINE_MEMORY_LIMIT`, restored afterwards, and released before the NumPy work) so
that it does not keep ~1 GB. The parts' paths are merged as one integer key per path. Both
paths give identical results (checked against each other on random journeys with ties,
several conversions, leads and every option), and so do any number of parts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import ibis
import ibis.expr.datatypes as dt_
import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
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
    with _engine_memory(touchpoints) as release:
        return _reduce(touchpoints, conversions, leads, options, release)


def _reduce(
    touchpoints: ir.Table,
    conversions: ir.Table,
    leads: ir.Table | None,
    options: JourneyOptions,
    release: Callable[[], None],
) -> Reduction:
    vocab = _vocabulary(touchpoints, options.granularity)
    marks = _lead_marks(leads)
    path_parts: list[pa.Table] = []
    conv_parts: list[pa.Table] = []
    if vocab is not None:
        complex_ids: pa.Array | None = None
        if options.lookback_days is None:
            id_parts: list[pa.Array] = []
            for paths, convs, ids in _simple_parts(touchpoints, conversions, marks, options, vocab):
                path_parts.append(paths)
                conv_parts.append(convs)
                id_parts.append(ids)
            complex_ids = pa.concat_arrays(id_parts)
        if complex_ids is None or len(complex_ids):
            tp, cv = touchpoints, conversions
            if complex_ids is not None:  # only the journeys the fast path set aside
                ids = ibis.memtable(pa.table({"journey_id": complex_ids}))
                tp = tp.semi_join(ids, tp.journey_id == ids.journey_id)
                cv = cv.semi_join(ids, cv.journey_id == ids.journey_id)
            paths, convs = _segmented(tp, cv, marks, options, vocab)
            path_parts.append(paths)
            conv_parts.append(convs)
    release()  # the engine's cache goes back to the system before the NumPy work below
    path_set = _path_set(path_parts, vocab, touchpoints._find_backend())
    path_parts.clear()
    converting = _converting_touches(conv_parts, vocab, path_set.channels, marks is not None)
    conv_parts.clear()
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
        path_set,
        converting,
        round(float(path_set.conversions.sum() + path_set.nulls.sum())),
        n_total - round(float(path_set.conversions.sum())),
        # Rounded: the difference of two float sums leaves noise like 1e-10 where none is lost.
        round(v_total - float(converting.value.sum()), 6),
        options,
    )


# -- the engine side ------------------------------------------------------------------------
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US_PER_DAY = 86_400_000_000
_MAX_CASES = 64  # up to this many tokens the code is a list lookup, beyond a join
# Touches per part of the fast reduction (see ``_partitions``): a part's per-journey hash
# table needs ~200 MB of engine memory per 4M touches, inside ``ENGINE_MEMORY_LIMIT``.
PARTITION_TOUCHES = 4_000_000
_SAMPLE_ROWS = 100_000  # touches sampled for the part bounds


# DuckDB's memory limit during a reduction, in bytes (None: leave it as it is). DuckDB keeps
# what a query used (table blocks, hash tables), up to its limit (by default 80 % of RAM), for
# the next one: without a lower limit the process holds ~1 GB after the parts at 30M touches.
# At 10M journeys (30M touches, parts of ``PARTITION_TOUCHES``) 450 MiB costs no speed; at
# 320 MiB the engine spills a part's hash table to disk and the reduction takes ~40 % longer.
# A limit the user set lower is kept; a higher one is restored afterwards, to the precision
# DuckDB reports it with ("2.7 GiB").
ENGINE_MEMORY_LIMIT: int | None = 450 * 2**20
_RELEASE_TO = 64 * 2**20  # the limit that ``release()`` passes through
_SIZE_UNITS = {
    "bytes": 1, "kb": 10**3, "kib": 2**10, "mb": 10**6, "mib": 2**20,
    "gb": 10**9, "gib": 2**30, "tb": 10**12, "tib": 2**40,
}  # fmt: skip


def _size_bytes(text: str) -> float | None:
    number, _, unit = text.strip().partition(" ")
    try:
        return float(number) * _SIZE_UNITS[unit.strip().lower() or "bytes"]
    except (KeyError, ValueError):
        return None


@contextlib.contextmanager
def _engine_memory(table: ir.Table) -> Iterator[Callable[[], None]]:
    """Lower DuckDB's ``memory_limit`` to :data:`ENGINE_MEMORY_LIMIT` (never raise it) for
    the duration, then restore it; other backends are left alone. Yields ``release()``,
    which hands the engine's cached memory back to the system (DuckDB evicts down to a lower
    limit at once) before the Python side builds its arrays."""
    backend = table._find_backend()
    if ENGINE_MEMORY_LIMIT is None or backend.name != "duckdb":
        yield lambda: None
        return
    con = backend.con  # type: ignore[attr-defined]
    setting = "SELECT current_setting('memory_limit')"
    before = str(con.execute(setting).fetchall()[0][0])
    current = _size_bytes(before)
    if current is None or current <= ENGINE_MEMORY_LIMIT:
        yield lambda: None
        return

    def release() -> None:
        con.execute(f"SET memory_limit = '{_RELEASE_TO}B'")
        con.execute(f"SET memory_limit = '{ENGINE_MEMORY_LIMIT}B'")

    con.execute(f"SET memory_limit = '{ENGINE_MEMORY_LIMIT}B'")
    try:
        yield release
    finally:
        # The setting reads back rounded ("18.8 GiB"): restore the default exactly if it was
        # the default.
        con.execute("RESET memory_limit")
        if str(con.execute(setting).fetchall()[0][0]) != before:
            con.execute("SET memory_limit = ?", [before])


@ibis.udf.scalar.builtin(name="epoch_us", signature=((dt_.Timestamp(timezone="UTC"),), dt_.int64))
def _epoch_us(ts: ir.TimestampValue) -> ir.IntegerValue:  # type: ignore[empty-body]
    """µs since the Unix epoch: DuckDB's builtin. ``TimestampValue.delta`` compiles to a
    calendar-aware ``DATE_DIFF`` that is ~100x slower on ``TIMESTAMPTZ``, and
    ``epoch_seconds`` to a double; another backend needs its own name for this function
    (``UNIX_MICROS`` on BigQuery, for one)."""


@ibis.udf.scalar.builtin(name="divide", signature=((dt_.int64, dt_.int64), dt_.int64))
def _divide(a: ir.IntegerValue, b: ir.IntegerValue) -> ir.IntegerValue:  # type: ignore[empty-body]
    """Integer division, truncated (DuckDB's builtin behind ``//``); Ibis compiles ``//`` to
    ``FLOOR`` of a float division, a third of the cost of a part's scan."""


@ibis.udf.scalar.builtin(
    name="list_position", signature=((dt_.Array(dt_.string), dt_.string), dt_.int32)
)
def _list_position(names: ir.ArrayValue, token: ir.StringValue) -> ir.IntegerValue:  # type: ignore[empty-body]
    """1-based index of ``token`` in ``names``, NULL where absent (DuckDB's builtin; Ibis's
    ``ArrayValue.index`` adds a CASE around it). About 3x cheaper than a CASE over the names."""


@dataclass(frozen=True)
class _Vocab:
    """Every token of the touches, sorted, and how a touch is packed into one integer.

    A touch becomes ``(ticks since the first touch) * radix + code``, where ``code`` is the
    token's index in ``names`` and a tick is ``tick_us`` µs: one second where every touch
    time is a whole second and the packed values then fit 32 bits (a 4-byte list element
    makes the per-journey aggregation ~12 % cheaper), else one µs in 64 bits. Either way the
    order is exact: sorting packed touches sorts them by time, then by token name (the tie
    rule of the module docstring), and ``packed % radix`` gives the token back.
    """

    names: tuple[str, ...]
    radix: int
    min_us: int  # µs since the Unix epoch of the first touch
    touches: int
    tick_us: int = 1

    def micros(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        return _epoch_us(ts) - self.min_us

    def micros_of_day(self, day: dt.date) -> int:
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        return (midnight - _EPOCH) // dt.timedelta(microseconds=1) - self.min_us

    def pack(self, us: ir.IntegerValue, code: ir.IntegerValue) -> ir.IntegerValue:
        """The packed touch from its µs since the first touch and its token code."""
        if self.tick_us == 1:
            return us * self.radix + code
        # ``us`` >= 0 (the first touch is 0), so truncation is the floor.
        return (_divide(us, ibis.literal(self.tick_us, "int64")) * self.radix + code).cast("int32")

    def touch_us(self, packed: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """µs since the first touch of packed touches (NumPy, on the results)."""
        # ``radix`` is a power of two and packed touches are >= 0: a shift, not a division.
        return (packed >> (self.radix.bit_length() - 1)) * self.tick_us


def _vocabulary(touchpoints: ir.Table, granularity: Granularity) -> _Vocab | None:
    """Tokens and time span of the touches (one small query); ``None`` without touches."""
    t = touchpoints.select(token=_token(touchpoints, granularity), us=touchpoints.timestamp)
    t = t.mutate(us=_epoch_us(t.us))
    out = (
        t.group_by("token")
        .aggregate(lo=t.us.min(), hi=t.us.max(), n=t.count(), sub_second=(t.us % 1_000_000).max())
        .to_pyarrow()
    )
    names = sorted(n for n in out.column("token").to_pylist() if n is not None)
    if not names:
        return None
    lo = int(pc.min(out.column("lo")).as_py())
    hi = int(pc.max(out.column("hi")).as_py())
    n = int(pc.sum(out.column("n")).as_py())
    radix = 1 << max(1, (len(names) - 1).bit_length())
    whole_seconds = int(pc.max(out.column("sub_second")).as_py() or 0) == 0
    if whole_seconds and ((hi - lo) // 1_000_000 + 1) * radix < 2**31:
        return _Vocab(tuple(names), radix, lo, n, tick_us=1_000_000)
    if (hi - lo + 1) * radix >= 2**62:  # keeps packed touches and their sums exact in int64
        raise ValueError(
            f"{len(names)} tokens over {(hi - lo) / _US_PER_DAY:.0f} days are too many to "
            "pack; use a shorter date range or channel granularity"
        )
    return _Vocab(tuple(names), radix, lo, n)


def _partitions(touchpoints: ir.Table, n_touches: int) -> Iterator[tuple[str | None, str | None]]:
    """The journeys in parts of about :data:`PARTITION_TOUCHES` touches, as ranges
    ``lo <= journey_id < hi`` of ``journey_id`` (bounds from a sample; ``None`` is an open
    end), so the per-journey hash table of one query stays small: peak memory is bounded
    without the engine spilling to disk. A range filter is cheap, and where the table is
    stored roughly in journey order (as an import of a journey file is) the engine skips the
    row groups outside the range by their min/max statistics; a filter on a hash of the id
    costs a hash of every touch per part."""
    parts = max(1, -(-n_touches // PARTITION_TOUCHES))
    bounds = _range_bounds(touchpoints, n_touches, parts) if parts > 1 else []
    edges: list[str | None] = [None, *bounds, None]
    yield from itertools.pairwise(edges)


def _range_bounds(touchpoints: ir.Table, n_touches: int, parts: int) -> list[str]:
    """Up to ``parts - 1`` increasing ``journey_id`` bounds that split the touches into
    parts of about equal size (quantiles of a row sample of ~:data:`_SAMPLE_ROWS` touches)."""
    fraction = min(1.0, _SAMPLE_ROWS / max(n_touches, 1))
    ids = touchpoints.select("journey_id")
    if fraction < 1.0:
        ids = ids.sample(fraction, method="row")
    sample = ids.to_pyarrow().column("journey_id").drop_null()
    if len(sample) == 0:
        return []
    ordered = pc.sort_indices(sample)
    picks = [ordered[len(sample) * k // parts].as_py() for k in range(1, parts)]
    values = sample.take(pa.array(picks, pa.int64())).to_pylist()
    return sorted(set(values))


def _in_range(table: ir.Table, lo: str | None, hi: str | None) -> ir.Table:
    """Rows with ``lo <= journey_id < hi`` (an open end where ``None``)."""
    if lo is not None:
        table = table.filter(table.journey_id >= lo)
    if hi is not None:
        table = table.filter(table.journey_id < hi)
    return table


def _coded(table: ir.Table, token: ir.StringValue, vocab: _Vocab) -> ir.Table:
    """``table`` with an int ``code`` column: the index of ``token`` in ``vocab.names``."""
    if len(vocab.names) <= _MAX_CASES:
        names = ibis.literal(list(vocab.names), type="array<string>")
        return table.mutate(code=(_list_position(names, token) - 1).cast("int64"))
    codes = ibis.memtable(
        pa.table(
            {
                "_token": pa.array(vocab.names, pa.string()),
                "code": pa.array(np.arange(len(vocab.names)), pa.int64()),
            }
        )
    )
    tagged = table.mutate(_token=token)
    return tagged.join(codes, tagged._token == codes._token).drop("_token")


def _touches(touchpoints: ir.Table, options: JourneyOptions, vocab: _Vocab) -> ir.Table:
    """``journey_id, us, packed`` of every touch (a touch without a time or a channel has
    no place in a path; the engine drops this filter where the columns hold no NULL)."""
    touchpoints = touchpoints.filter(
        touchpoints.timestamp.notnull() & touchpoints.channel.notnull()
    )
    t = _coded(touchpoints, _token(touchpoints, options.granularity), vocab)
    us = vocab.micros(t.timestamp)
    return t.select("journey_id", us=us, packed=vocab.pack(us, t.code))


def _per_journey_conversions(conversions: ir.Table, vocab: _Vocab) -> ir.Table:
    c = conversions.select("journey_id", us=vocab.micros(conversions.timestamp), value="value")
    return c.group_by("journey_id").aggregate(
        n_conv=c.count(), conv_us=c.us.max(), conv_value=c.value.cast("float64").sum()
    )


def _codes_of(events: ir.ArrayValue, vocab: _Vocab) -> ir.ArrayValue:
    """The path: packed touches, sorted (by time, then token), reduced to their codes."""
    radix = vocab.radix
    return events.map(lambda x: (x % radix).cast("int32"))


def _keep(ref_us: ir.IntegerValue, options: JourneyOptions, vocab: _Vocab) -> ir.BooleanValue:
    keep = ibis.literal(True)
    if options.start is not None:
        keep = keep & (ref_us >= vocab.micros_of_day(options.start))
    if options.end is not None:
        keep = keep & (ref_us < vocab.micros_of_day(options.end + dt.timedelta(days=1)))
    return keep


def _simple_query(
    touchpoints: ir.Table,
    conversions: ir.Table,
    marks: ir.Table | None,
    options: JourneyOptions,
    vocab: _Vocab,
) -> ir.Table:
    """The *simple* journeys — no conversion, or one conversion after every touch — are one
    segment each. One pass over the touches groups them by journey, then by path, and
    returns: the paths with their counts, the kept conversions with their sorted touches
    (collected per path), and the ids of the other journeys (several conversions, or touches
    after one), which :func:`_segmented` reduces.

    The cost is the hash aggregation of every touch by ``journey_id`` (one short string key,
    which DuckDB hashes as an integer). An ordered list aggregate (``collect(order_by=...)``)
    costs about twice as much, and an ASOF join of touches to the next conversion, or the
    window over the union of touches and conversions (the general path), several times as
    much; hence packed touches collected unordered, each small list sorted afterwards. The
    paths, the converting journeys and the ids of the complex ones come back as the rows of
    one union, so the engine computes the per-journey table once (DuckDB materialises a
    subquery used three times): collecting the converting rows inside the path aggregation
    costs ~30 % of the query, a list of structs several times more, and a second query
    (a semi-join, or a cached journey table) about as much.
    """
    j = _simple_journeys(touchpoints, conversions, options, vocab)
    j = j.filter(j.complex_ | _keep(j.ref_us, options, vocab))
    j = _with_marks(j, marks, vocab)
    # Three kinds of rows in one result (the engine computes ``j`` once for all three).
    none = {
        "path": ibis.null("array<int32>"),
        "conversions": ibis.null("int64"),
        "nulls": ibis.null("int64"),
        "value": ibis.null("float64"),
        "journey_id": ibis.null("string"),
        "ref_us": ibis.null("int64"),
        "events": ibis.null(j.events.type()),
        "lead_us": ibis.null("int64"),
        "opp_us": ibis.null("int64"),
        "marked": ibis.null("boolean"),
    }

    def rows(kind: int, table: ir.Table, **values: ir.Value) -> ir.Table:
        return table.select(kind=ibis.literal(kind, "int8"), **{**none, **values})

    simple = j.filter(~j.complex_)
    paths = simple.group_by(path=_codes_of(simple.events, vocab)).aggregate(
        conversions=simple.converted.cast("int64").sum(),
        nulls=(~simple.converted).cast("int64").sum(),
        value=ibis.ifelse(simple.converted, simple.conv_value, 0.0).sum(),
    )
    conv = j.filter(j.converted)
    complex_ = j.filter(j.complex_)
    table = (
        rows(_PATH_ROW, paths, **{c: paths[c] for c in ("path", "conversions", "nulls", "value")})
        .union(
            rows(
                _CONVERTING_ROW,
                conv,
                journey_id=conv.journey_id,
                ref_us=conv.conv_us,
                value=conv.conv_value,
                events=conv.events,
                lead_us=conv.lead_us,
                opp_us=conv.opp_us,
                marked=conv.marked,
            )
        )
        .union(rows(_COMPLEX_ROW, complex_, journey_id=complex_.journey_id))
        # In journey order, so the converting rows of the parts (ranges of journey_id, in
        # order) need no sort in Python.
        .order_by(["kind", "journey_id", "ref_us"])
    )
    return table


def _split_simple(table: pa.Table) -> tuple[pa.Table, pa.Table, pa.Array]:
    """The three kinds of rows of :func:`_simple_query`'s result: paths, converting rows,
    ids of the complex journeys, in our types (the engine's own result has its sums as
    128-bit decimals and its own list field names)."""
    # The query orders its rows by kind, so each kind is a slice (zero-copy, where a filter
    # would copy every list).
    kind = table.column("kind").to_numpy()
    ends = np.searchsorted(kind, [_PATH_ROW, _CONVERTING_ROW, _COMPLEX_ROW], side="right")
    starts = [0, *ends[:2].tolist()]
    paths_out, convs, complex_ = (
        table.slice(a, b - a) for a, b in zip(starts, ends.tolist(), strict=True)
    )
    ids = complex_.column("journey_id").combine_chunks()
    convs = convs.select(_CONV_SCHEMA.names)
    convs = convs.cast(_conv_schema(convs))
    paths_out = paths_out.select(["path", "conversions", "nulls", "value"]).cast(_PATHS_SCHEMA)
    return paths_out, convs, ids


_PATH_ROW, _CONVERTING_ROW, _COMPLEX_ROW = 0, 1, 2
_LO, _HI = "__mixwise_part_lo__", "__mixwise_part_hi__"


def _simple_parts(
    touchpoints: ir.Table,
    conversions: ir.Table,
    marks: ir.Table | None,
    options: JourneyOptions,
    vocab: _Vocab,
) -> Iterator[tuple[pa.Table, pa.Table, pa.Array]]:
    """:func:`_simple_query` over each part of :func:`_partitions`, split by kind of row.

    On DuckDB the query is built and compiled once, with placeholder bounds that each part
    replaces by its own (quoted) bounds: building and compiling the Ibis expression costs
    ~0.2 s, about a sixth of a part's run at 10M journeys. Elsewhere each part is an Ibis
    expression of its own."""
    bounds = list(_partitions(touchpoints, vocab.touches))
    backend = touchpoints._find_backend()
    if len(bounds) == 1 or backend.name != "duckdb":
        yield from _ibis_parts(touchpoints, conversions, marks, options, vocab, bounds)
        return
    templates: dict[bool, str] = {}
    for lo, hi in bounds:
        bounded = hi is not None
        if bounded not in templates:
            top = _HI if bounded else None
            query = _simple_query(
                _in_range(touchpoints, _LO, top),
                _in_range(conversions, _LO, top),
                marks,
                options,
                vocab,
            )
            if query.op().find(ops.InMemoryTable):
                # Ibis registers in-memory tables (token codes beyond 64 tokens) when it runs
                # an expression; raw SQL would not find them.
                yield from _ibis_parts(touchpoints, conversions, marks, options, vocab, bounds)
                return
            templates[bounded] = str(ibis.to_sql(query, dialect="duckdb"))
        sql = templates[bounded].replace(f"'{_LO}'", _quoted(lo or ""))
        if hi is not None:
            sql = sql.replace(f"'{_HI}'", _quoted(hi))
        yield _split_simple(backend.con.sql(sql).to_arrow_table())  # type: ignore[attr-defined]


def _ibis_parts(
    touchpoints: ir.Table,
    conversions: ir.Table,
    marks: ir.Table | None,
    options: JourneyOptions,
    vocab: _Vocab,
    bounds: list[tuple[str | None, str | None]],
) -> Iterator[tuple[pa.Table, pa.Table, pa.Array]]:
    """Each part as an Ibis expression of its own (any backend)."""
    for lo, hi in bounds:
        query = _simple_query(
            _in_range(touchpoints, lo, hi), _in_range(conversions, lo, hi), marks, options, vocab
        )
        yield _split_simple(query.to_pyarrow())


def _quoted(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _simple_journeys(
    touchpoints: ir.Table, conversions: ir.Table, options: JourneyOptions, vocab: _Vocab
) -> ir.Table:
    """One row per journey: its packed touches (sorted), ``last_us``, its conversions
    (``n_conv``, ``conv_us``, ``conv_value``), whether it is ``complex_`` or ``converted``,
    and the reference time ``ref_us`` of its segment."""
    t = _touches(touchpoints, options, vocab)
    per_j = t.group_by("journey_id").aggregate(
        # ``include_null``: no NULL is left (see ``_touches``), and a FILTER costs ~5 %.
        events=t.packed.collect(include_null=True),
        last_us=t.us.max(),
    )
    cj = _per_journey_conversions(conversions, vocab)
    # Sorted here, so the engine sorts each journey's list once for every use of ``j``.
    j = per_j.left_join(cj, per_j.journey_id == cj.journey_id).select(
        per_j.journey_id,
        per_j.events.sort().name("events"),
        per_j.last_us,
        cj.n_conv,
        cj.conv_us,
        cj.conv_value,
    )
    n = j.n_conv.fill_null(0)
    complex_ = (n >= 2) | ((n == 1) & (j.last_us > j.conv_us))
    converted = (n == 1) & (j.last_us <= j.conv_us)
    if options.conversion_window_days is not None:
        window = round(options.conversion_window_days * _US_PER_DAY)
        converted = converted & (j.conv_us - j.last_us <= window)
    j = j.mutate(complex_=complex_, converted=converted)
    return j.mutate(ref_us=ibis.ifelse(j.converted, j.conv_us, j.last_us))


def _lead_marks(leads: ir.Table | None) -> ir.Table | None:
    """Per journey (``lead_id``): when it became a lead and an opportunity (W-shaped)."""
    if leads is None or int(leads.count().execute()) == 0:
        return None
    return leads.group_by(journey_id=leads.lead_id).aggregate(
        lead_ts=leads.entered_at.min(where=leads.stage == "lead"),
        opp_ts=leads.entered_at.min(where=leads.stage == "opportunity"),
    )


def _with_marks(table: ir.Table, marks: ir.Table | None, vocab: _Vocab) -> ir.Table:
    """Add ``lead_us``, ``opp_us`` and ``marked`` (the journey has a leads row)."""
    if marks is None:
        return table.mutate(
            lead_us=ibis.null("int64"), opp_us=ibis.null("int64"), marked=ibis.literal(False)
        )
    m = marks.mutate(marked=ibis.literal(True))
    out = table.left_join(m, table.journey_id == m.journey_id)
    return out.select(
        table,
        lead_us=vocab.micros(m.lead_ts),
        opp_us=vocab.micros(m.opp_ts),
        marked=m.marked.fill_null(False),
    )


def _segmented(
    touchpoints: ir.Table,
    conversions: ir.Table,
    marks: ir.Table | None,
    options: JourneyOptions,
    vocab: _Vocab,
) -> tuple[pa.Table, pa.Table]:
    """The general reduction (any number of conversions per journey, lookback): touches
    segmented by a window over the union of touches and conversions (see
    :func:`segment_touches`). Slower; the fast path only sends it the journeys it cannot do."""
    seg = segment_touches(touchpoints, conversions, options)
    seg = _coded(seg, seg.token, vocab)
    seg = seg.select(
        "journey_id",
        "segment",
        "converted",
        "value",
        packed=vocab.pack(vocab.micros(seg.ts), seg.code),
        ref_us=vocab.micros(seg.ref_ts),
    ).cache()
    try:
        per_seg = seg.group_by(["journey_id", "segment"]).aggregate(
            events=seg.packed.collect(),
            converted=seg.converted.max(),
            value=seg.value.max(),
            ref_us=seg.ref_us.max(),
        )
        path = _codes_of(per_seg.events.sort(), vocab)
        paths = (
            per_seg.group_by(path=path)
            .aggregate(
                conversions=per_seg.converted.cast("int64").sum(),
                nulls=(1 - per_seg.converted).cast("int64").sum(),
                value=per_seg.value.sum(),
            )
            .to_pyarrow()
        )
        conv = per_seg.filter(per_seg.converted == 1)
        conv = conv.select("journey_id", ref_us="ref_us", value="value", events=conv.events.sort())
        convs = _with_marks(conv, marks, vocab).to_pyarrow()
    finally:
        seg.release()
    return paths, convs


# -- the small results, in Python ------------------------------------------------------------
def _path_set(parts: list[pa.Table], vocab: _Vocab | None, backend: Any) -> PathSet:
    """Merge the path tables (the same path comes from several parts and from both
    reductions), keep the tokens that occur, and build the CSR :class:`PathSet`, sorted by
    path length, then by the paths' codes.

    Each path becomes one integer, its codes + 1 as the digits of ``radix + 1`` (so a
    shorter path is a smaller number), part by part; NumPy merges the integers and decodes
    the unique ones. Paths too long for 63 bits (more than 15 touches at 9 to 16 tokens;
    rare) are merged by the engine and follow the others.
    """
    empty = np.zeros(0, dtype=np.float64)
    columns = ["path", "conversions", "nulls", "value"]
    parts = [p.select(columns).cast(_PATHS_SCHEMA) for p in parts if p.num_rows]
    if vocab is None or not parts:
        return PathSet((), np.zeros(1, dtype=np.int64), np.zeros(0, np.int64), empty, empty, empty)
    base = vocab.radix + 1
    longest = _key_digits(base)
    keys: list[npt.NDArray[np.uint64]] = []
    counts: list[npt.NDArray[np.float64]] = []
    long_parts: list[pa.Table] = []
    for part in parts:
        offsets, codes = _csr(part.column("path").cast(_PATH_TYPE).combine_chunks())
        lengths = np.diff(offsets)
        short = lengths <= longest
        part_counts = np.column_stack([_floats(part, c) for c in ("conversions", "nulls", "value")])
        if not short.all():
            long_parts.append(part.filter(pa.array(~short)))
            offsets, codes = _take_rows(offsets, codes, np.flatnonzero(short))
            part_counts = part_counts[short]
        keys.append(_path_keys(offsets, codes, base))
        counts.append(part_counts)
    parts.clear()
    merged = [_merge_keys(np.concatenate(keys), np.concatenate(counts), base)]
    if long_parts:
        merged.append(_merge_in_engine(pa.concat_tables(long_parts), backend))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate([np.diff(m[0]) for m in merged]))])
    codes = np.concatenate([m[1] for m in merged])
    sums = np.concatenate([m[2] for m in merged])
    used = np.flatnonzero(np.bincount(codes, minlength=len(vocab.names)))
    channels = tuple(vocab.names[i] for i in used)
    remap = np.full(len(vocab.names), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return PathSet(
        channels, offsets.astype(np.int64), remap[codes], sums[:, 0], sums[:, 1], sums[:, 2]
    )


_Merged = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]


def _csr(array: pa.ListArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Offsets and flat values of a list array of integers (the values zero-copy)."""
    offsets = np.asarray(array.offsets).astype(np.int64)
    values = np.asarray(array.values)[offsets[0] : offsets[-1]]
    return offsets - offsets[0], values


def _take_rows(
    offsets: npt.NDArray[np.int64], values: npt.NDArray[Any], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """The CSR rows ``rows``, in that order."""
    lengths = np.diff(offsets)[rows]
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    shift = np.repeat(offsets[:-1][rows] - new_offsets[:-1], lengths)
    return new_offsets, values[shift + np.arange(new_offsets[-1])]


def _key_digits(base: int) -> int:
    """The most digits of ``base`` (each 1..base-1) whose number stays below 2**63."""
    digits = 0
    while base ** (digits + 1) < 2**63:
        digits += 1
    return digits


def _path_keys(
    offsets: npt.NDArray[np.int64], codes: npt.NDArray[Any], base: int
) -> npt.NDArray[np.uint64]:
    """One integer per path (see :func:`_path_set`), built a position at a time on arrays
    of one entry per path: fewer and smaller temporaries than one entry per touch."""
    lengths = np.diff(offsets)
    starts = offsets[:-1]
    keys = np.zeros(len(lengths), dtype=np.uint64)
    for k in range(int(lengths.max()) if len(lengths) else 0):
        rows = np.flatnonzero(lengths > k)
        keys[rows] = keys[rows] * np.uint64(base) + (codes[starts[rows] + k] + 1).astype(np.uint64)
    return keys


def _merge_keys(
    keys: npt.NDArray[np.uint64], counts: npt.NDArray[np.float64], base: int
) -> _Merged:
    """Unique path keys with their counts added, decoded to CSR paths (key order)."""
    unique, inverse = np.unique(keys, return_inverse=True)
    sums: npt.NDArray[np.float64] = np.column_stack(
        [np.bincount(inverse, weights=counts[:, k], minlength=len(unique)) for k in range(3)]
    )
    digits: list[npt.NDArray[np.int64]] = []  # the last digit of every key first
    rest = unique.copy()
    lengths = np.zeros(len(unique), dtype=np.int64)
    while np.any(rest):
        digits.append((rest % np.uint64(base)).astype(np.int64) - 1)
        rest //= np.uint64(base)
        lengths += digits[-1] >= 0
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    codes = np.empty(offsets[-1], dtype=np.int64)
    for back, column in enumerate(digits):  # ``back`` places from the end of each path
        rows = np.flatnonzero(lengths > back)
        codes[offsets[rows + 1] - 1 - back] = column[rows]
    return offsets, codes, sums


def _merge_in_engine(table: pa.Table, backend: Any) -> _Merged:
    """Identical paths merged by the engine (any length), sorted by length, then code."""
    rows = ibis.memtable(table.cast(_PATHS_SCHEMA))
    merged = (
        rows.group_by("path")
        .aggregate(
            conversions=rows.conversions.sum(), nulls=rows.nulls.sum(), value=rows.value.sum()
        )
        .order_by([ibis._.path.length(), "path"])
    )
    frame = backend.to_pyarrow(merged).combine_chunks()
    sums = np.column_stack([_floats(frame, c) for c in ("conversions", "nulls", "value")])
    offsets, codes = _csr(frame.column("path").chunk(0))
    return offsets, codes.astype(np.int64), sums


_PATH_TYPE = pa.list_(pa.int32())
_PATHS_SCHEMA = pa.schema(
    [
        ("path", _PATH_TYPE),
        ("conversions", pa.float64()),
        ("nulls", pa.float64()),
        ("value", pa.float64()),
    ]
)
_CONV_SCHEMA = pa.schema(
    [
        ("journey_id", pa.string()),
        ("ref_us", pa.int64()),
        ("value", pa.float64()),
        ("events", pa.list_(pa.int64())),
        ("lead_us", pa.int64()),
        ("opp_us", pa.int64()),
        ("marked", pa.bool_()),
    ]
)


def _conv_schema(table: pa.Table) -> pa.Schema:
    """:data:`_CONV_SCHEMA` with the packed type of ``table``'s events (int32 or int64) kept:
    casting it would copy every touch."""
    events = pa.list_(table.schema.field("events").type.value_type)
    return _CONV_SCHEMA.set(_CONV_SCHEMA.get_field_index("events"), pa.field("events", events))


def _converting_touches(
    parts: list[pa.Table], vocab: _Vocab | None, channels: tuple[str, ...], has_marks: bool
) -> ConvertingTouches:
    """Touches of every kept conversion, conversions ordered by journey then time."""
    parts = [p for p in parts if p.num_rows]
    if parts:
        schema = _conv_schema(parts[0])
        parts = [p.select(schema.names).cast(schema) for p in parts]
    if vocab is None or not parts:
        return ConvertingTouches(
            channels,
            np.zeros(1, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0),
            np.zeros(0, dtype=np.int8),
            np.zeros(0),
        )
    table = pa.concat_tables(parts)
    parts.clear()
    keys = [("journey_id", "ascending"), ("ref_us", "ascending")]
    order = pc.sort_indices(table.select(["journey_id", "ref_us"]), keys)
    if np.any(np.diff(order.to_numpy()) != 1):  # the engine's parts come in order
        table = table.take(order)
    table = table.combine_chunks()
    offsets, packed32 = _csr(table.column("events").chunk(0))
    packed = packed32.astype(np.int64)
    lengths = np.diff(offsets)
    codes = packed & (vocab.radix - 1)  # ``radix`` is a power of two
    touch_us = vocab.touch_us(packed)
    ref_us = np.asarray(table.column("ref_us").to_numpy(zero_copy_only=False), dtype=np.int64)
    age = (np.repeat(ref_us, lengths) - touch_us) / _US_PER_DAY
    position = np.arange(len(packed), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    milestone = np.where(position == 0, FIRST_TOUCH, 0).astype(np.int8)
    linked = bool(has_marks and pc.any(table.column("marked")).as_py())
    if linked:
        for column, flag in (("lead_us", LEAD_CREATION), ("opp_us", OPPORTUNITY_CREATION)):
            # Touches are sorted by time, so those at or before the milestone are a prefix;
            # the milestone touch is the last of them.
            at = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
            before = touch_us <= np.repeat(np.nan_to_num(at, nan=-np.inf), lengths)
            counts: npt.NDArray[np.int64] = np.zeros(len(lengths), dtype=np.int64)
            if len(packed):
                counts = np.add.reduceat(before.astype(np.int64), offsets[:-1]) * (lengths > 0)
            hit = np.flatnonzero(counts > 0)
            milestone[offsets[hit] + counts[hit] - 1] |= np.int8(flag)
    index = {name: i for i, name in enumerate(channels)}
    remap = np.array([index.get(name, -1) for name in vocab.names], dtype=np.int64)
    values = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    return ConvertingTouches(
        channels,
        offsets,
        remap[codes],
        age.astype(np.float64),
        milestone,
        np.nan_to_num(values),
        has_lead_milestones=linked,
    )


def _floats(table: pa.Table, name: str) -> np.ndarray:
    values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return np.nan_to_num(values, copy=not values.flags.writeable)
