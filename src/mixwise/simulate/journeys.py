"""User-level journeys in the same world as the aggregate view.

Generative process per journey (one user, one decision), all vectorised over blocks of journeys:

1. **Intent.** ``z ~ N(0, 1)``. It drives everything that confounds attribution.
2. **Touches.** ``1 + Poisson(mean_touches * exp(s z - s²/2))`` touches (capped), separated by
   exponential gaps and placed inside the simulated date range. Each touch picks a channel with
   probability ``∝ touch_weight_c * spend_c[day] / mean_spend_c * exp(intent_tilt_c * z)``: a
   channel is met more on days it spends more (TV not at all between flights), and high-intent
   users meet brand search, email and ``direct`` (no spend, constant weight) more.
3. **Baseline conversion.** With probability ``expit(b0 + intent_slope * z)`` the user buys
   anyway (``b0`` set so the mean is ``baseline_conversion_rate``). These conversions are *not*
   incremental to any channel, yet they come from high-intent users, whose paths are full of
   brand search, email and direct: last-touch over-credits those channels.
4. **Incremental conversion.** Each touch of a paid channel ``c`` independently "fires" with
   probability ``q_c``; a user who would not have bought anyway converts if any touch fires, and
   the true cause is the channel of the first firing touch. ``direct`` never fires: its true
   incremental effect is zero.
5. **Closing touch.** A converter who decided to buy often navigates back through ``direct``
   (or brand search) just before the order: a visit that comes *after* the decision and has no
   effect, but is the last touch.

**Link to the aggregate world.** Per-touch hazards ``λ_c = -log(1 - q_c)`` are calibrated on a
pilot sample so that (a) the expected share of each paid channel among incremental conversions
equals its share of the aggregate world's total removal contribution (``GroundTruth.
contribution_total``, negatives clipped to 0) and (b) incremental conversions are
``incremental_share`` of all conversions. The per-channel split uses the hazard share of each
channel in a journey, an approximation of "first firing touch", so realised shares match the
targets only approximately; ``truth`` per journey is exact.

**Chunks and determinism.** Journeys are generated in fixed blocks of ``BLOCK_SIZE`` journeys;
block ``b`` uses random streams keyed by ``(seed, b)``, one stream per variable, and a block cut
short (the last one) yields exactly a prefix of the full block. So journey ``i`` is the same
whatever ``n_journeys`` or ``chunk_size`` is; chunks are re-cut from blocks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.optimize import brentq
from scipy.special import expit

from mixwise.simulate.config import MarketConfig
from mixwise.simulate.world import _JOURNEY, _PILOT, FloatArray, IntArray, World, rng_for

__all__ = [
    "BLOCK_SIZE",
    "JourneyChunk",
    "JourneyModel",
    "combine_paths",
    "paths_from_journeys",
    "write_journeys_parquet",
]

BLOCK_SIZE = 1 << 16
IMPRESSION, CLICK, VISIT = 0, 1, 2
INTERACTIONS = np.array(["impression", "click", "visit"], dtype=object)
CAUSE_NONE, CAUSE_BASELINE = -2, -1
_DAY = 86_400


class JourneyChunk(NamedTuple):
    """One chunk of journeys: the two import tables plus the per-journey truth."""

    touchpoints: pd.DataFrame
    conversions: pd.DataFrame
    truth: pd.DataFrame


@dataclass
class JourneyArrays:
    """Columnar journeys. Journey arrays are indexed by journey, touch arrays by touch, touches
    grouped by journey in time order. Times are seconds since the start date (UTC midnight)."""

    journey: IntArray
    intent: FloatArray
    converted: npt.NDArray[np.bool_]
    cause: npt.NDArray[np.int16]
    conv_time: IntArray
    value: FloatArray
    t_journey: IntArray
    t_time: IntArray
    t_channel: npt.NDArray[np.int16]
    t_campaign: npt.NDArray[np.int16]
    t_interaction: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.journey)

    def slice(self, lo: int, hi: int) -> JourneyArrays:
        """Journeys at positions ``lo:hi`` (and their touches)."""
        hi = min(hi, len(self))
        if hi <= lo:
            return _empty_like(self)
        jlo, jhi = self.journey[lo], self.journey[hi - 1]
        tlo = int(np.searchsorted(self.t_journey, jlo, "left"))
        thi = int(np.searchsorted(self.t_journey, jhi, "right"))
        return JourneyArrays(
            self.journey[lo:hi],
            self.intent[lo:hi],
            self.converted[lo:hi],
            self.cause[lo:hi],
            self.conv_time[lo:hi],
            self.value[lo:hi],
            self.t_journey[tlo:thi],
            self.t_time[tlo:thi],
            self.t_channel[tlo:thi],
            self.t_campaign[tlo:thi],
            self.t_interaction[tlo:thi],
        )

    @staticmethod
    def concat(parts: list[JourneyArrays]) -> JourneyArrays:
        if len(parts) == 1:
            return parts[0]
        return JourneyArrays(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS)  # type: ignore[arg-type]
        )


_FIELDS = (
    "journey",
    "intent",
    "converted",
    "cause",
    "conv_time",
    "value",
    "t_journey",
    "t_time",
    "t_channel",
    "t_campaign",
    "t_interaction",
)


def _empty_like(a: JourneyArrays) -> JourneyArrays:
    return JourneyArrays(*(getattr(a, f)[:0] for f in _FIELDS))  # type: ignore[arg-type]


def _within_journey_position(counts: IntArray) -> IntArray:
    """0, 1, ..., k-1 for each journey's k touches, concatenated."""
    starts = np.cumsum(counts) - counts
    total = int(counts.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def baseline_intercept(rate: float, slope: float) -> float:
    """``b0`` with ``E[expit(b0 + slope z)] = rate`` for ``z ~ N(0, 1)`` (Gauss–Hermite)."""
    x, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()

    def gap(b0: float) -> float:
        return float(np.sum(w * expit(b0 + slope * x))) - rate

    return float(brentq(gap, -30.0, 30.0))


def calibrate_hazards(
    counts: FloatArray, p_base: FloatArray, target: FloatArray, share: float, iters: int = 8
) -> FloatArray:
    """Per-touch hazards ``λ_c`` hitting per-channel target shares and the incremental share.

    ``counts`` is a pilot (journeys × paid channels) matrix of touch counts, ``p_base`` the
    pilot's baseline conversion probabilities, ``target`` the desired channel shares (sum 1).
    """
    target = np.where(target > 0, target, 0.0)
    if share <= 0 or target.sum() <= 0:
        return np.zeros_like(target)
    target = target / target.sum()
    freq = counts.mean(axis=0)
    lam = np.where((target > 0) & (freq > 0), target / np.maximum(freq, 1e-12), 0.0)
    base = float(p_base.mean())

    def scaled(lam_: FloatArray) -> FloatArray:
        def gap(log_k: float) -> float:
            h = counts @ (lam_ * math.exp(log_k))
            inc = float(np.mean((1 - p_base) * -np.expm1(-h)))
            return inc / (inc + base) - share

        if gap(30.0) < 0:
            raise ValueError(f"incremental_share {share} is unreachable for this market")
        return lam_ * math.exp(brentq(gap, -30.0, 30.0, xtol=1e-10))

    for _ in range(iters):
        lam = scaled(lam)
        h_uc = counts * lam[None, :]
        h = h_uc.sum(axis=1)
        p_inc = (1 - p_base) * -np.expm1(-h)
        weight = np.divide(p_inc, h, out=np.zeros_like(h), where=h > 0)
        realised = (h_uc * weight[:, None]).sum(axis=0)
        realised = realised / max(float(realised.sum()), 1e-300)
        ratio = np.divide(target, realised, out=np.zeros_like(target), where=realised > 0)
        lam = lam * ratio
    return scaled(lam)


def _strictly_increasing(journey: IntArray, seconds: IntArray) -> IntArray:
    """Nudge touch times forward so they strictly increase within each journey.

    Touch times are whole seconds, so two touches of one journey (a closing visit right after
    the last touch, or touches clamped at the end of the range) can share a second; the
    import contract keys touches on (journey_id, timestamp, channel). ``journey`` must be
    sorted with times non-decreasing within a journey. A touch moves by at most a few seconds.
    """
    if len(seconds) == 0:
        return seconds
    starts = np.flatnonzero(np.r_[True, journey[1:] != journey[:-1]])
    pos = np.arange(len(seconds)) - np.repeat(starts, np.diff(np.r_[starts, len(seconds)]))
    # Within a journey, t_k' = k + max_{i<=k}(t_i - i); the journey offset keeps the running
    # maximum from crossing journeys (blocks hold at most 2**16 journeys, times < 2**36 s).
    offset = journey.astype(np.int64) << 40
    shifted = np.maximum.accumulate(seconds - pos + offset)
    return (shifted - offset + pos).astype(np.int64)


class JourneyModel:
    """Calibrated user-level model for one market.

    ``world`` gives the day-level channel weights (its spend, possibly switched off);
    ``hazards`` (per paid channel) and ``b0`` come from the *unmodified* market so that a
    switched-off market is a true counterfactual of the user-level world too.
    """

    def __init__(self, world: World, hazards: FloatArray, b0: float) -> None:
        cfg = world.config
        self.config: MarketConfig = cfg
        self.spec = cfg.journeys
        self.seed = world.seed
        self.n_paid = len(cfg.channels)
        self.direct = self.n_paid  # channel code of `direct`
        self.channel_names = np.array([*cfg.channel_names, "direct"], dtype=object)
        self.hazards = np.asarray(hazards, dtype=np.float64)
        self.q = np.append(-np.expm1(-self.hazards), 0.0)
        self.b0 = b0
        self.range_s = cfg.days * _DAY
        self.start_epoch_s = int(
            (pd.Timestamp(cfg.start_date) - pd.Timestamp("1970-01-01")).total_seconds()
        )
        national = world.sim(world.spend.sum(axis=1))  # (C, T)
        mean = national.mean(axis=1, keepdims=True)
        rel = np.divide(national, mean, out=np.zeros_like(national), where=mean > 0)
        tw = np.array([c.touch_weight for c in cfg.channels])[:, None]
        direct_row = np.full((1, cfg.days), self.spec.direct_touch_weight)
        self.day_weights = np.vstack([rel * tw, direct_row]).T.copy()  # (T, C+1)
        self.tilt = np.array([*(c.intent_tilt for c in cfg.channels), self.spec.direct_intent_tilt])
        click = np.array([c.click_prob for c in cfg.channels])
        self.click_prob = click
        # Campaign tables: cumulative shares per channel (direct has one campaign).
        shares = [list(c.campaign_shares) for c in cfg.channels] + [[1.0]]
        kmax = max(len(s) for s in shares)
        cum = np.full((len(shares), kmax), 1.0 + 1e-12)  # never below a uniform draw
        for i, s in enumerate(shares):
            cum[i, : len(s) - 1] = np.cumsum(s)[:-1]
        self.campaign_cum = cum
        self.campaign_offset = np.cumsum([0] + [len(s) for s in shares])[:-1]
        self.campaign_names = np.array(
            [c for spec in cfg.channels for c in spec.campaigns] + ["direct"], dtype=object
        )
        names = list(cfg.channel_names)
        self.closing_alt = names.index("brand_search") if "brand_search" in names else self.direct

    # ------------------------------------------------------------------ generation
    def _stage1(
        self, key: tuple[int, ...], n: int
    ) -> tuple[FloatArray, IntArray, IntArray, IntArray, npt.NDArray[np.int16]]:
        """Intent, touch counts, touch times, journey ids and channels for ``n`` journeys."""
        spec = self.spec

        def rng(var: int) -> np.random.Generator:
            return rng_for(self.seed, *key, var)

        z = rng(0).standard_normal(n)
        s = spec.touches_intent_slope
        lam = max(spec.mean_touches - 1.0, 0.0) * np.exp(s * z - s * s / 2)
        counts = np.minimum(1 + rng(1).poisson(lam), spec.max_touches - 1).astype(np.int64)
        total = int(counts.sum())
        jloc = np.repeat(np.arange(n, dtype=np.int64), counts)
        pos = _within_journey_position(counts)
        gaps = rng(3).exponential(spec.mean_gap_hours * 3600.0, total)
        gaps[pos == 0] = 0.0
        cum = np.cumsum(gaps)
        starts = np.cumsum(counts) - counts
        offset = cum - np.repeat(cum[starts], counts)
        duration = offset[starts + counts - 1]
        room = np.maximum(self.range_s - 3600.0 - duration, 0.0)
        t0 = rng(2).random(n) * room
        times = np.minimum(np.repeat(t0, counts) + offset, self.range_s - 3600.0).astype(np.int64)
        day = np.minimum(times // _DAY, self.config.days - 1)
        w = self.day_weights[day] * np.exp(self.tilt[None, :] * z[jloc, None])
        cw = np.cumsum(w, axis=1)
        u = rng(4).random(total) * cw[:, -1]
        channel = (cw < u[:, None]).sum(axis=1).astype(np.int16)
        return z, counts, times, jloc, channel

    def _block(self, block: int, n: int) -> JourneyArrays:
        spec = self.spec
        key = (_JOURNEY, block)
        first = block * BLOCK_SIZE

        def rng(var: int) -> np.random.Generator:
            return rng_for(self.seed, *key, var)

        z, counts, times, jloc, channel = self._stage1(key, n)
        total = len(times)
        # Campaign and interaction
        ucamp = rng(5).random(total)
        local = (self.campaign_cum[channel] < ucamp[:, None]).sum(axis=1)
        campaign = (self.campaign_offset[channel] + local).astype(np.int16)
        uint = rng(6).random(total)
        paid = channel < self.n_paid
        cp = np.where(paid, self.click_prob[np.minimum(channel, self.n_paid - 1)], 0.0)
        interaction = np.where(paid, np.where(uint < cp, CLICK, IMPRESSION), VISIT).astype(np.int8)
        # Causal process
        fire = rng(7).random(total) < self.q[channel]
        baseline = rng(8).random(n) < expit(self.b0 + spec.intent_slope * z)
        fired_touch = np.flatnonzero(fire)
        fj, first_idx = np.unique(jloc[fired_touch], return_index=True)
        cause = np.full(n, CAUSE_NONE, dtype=np.int16)
        cause[fj] = channel[fired_touch[first_idx]]
        cause[baseline] = CAUSE_BASELINE
        converted = cause != CAUSE_NONE
        last = times[np.cumsum(counts) - 1]
        delay = rng(9).exponential(spec.conversion_delay_hours * 3600.0, n)
        conv_time = np.minimum(last + delay, self.range_s - 1).astype(np.int64)
        value = self.config.aov * rng(13).gamma(spec.value_shape, 1.0 / spec.value_shape, n)
        # Closing touches (after the decision, no effect)
        uclose = rng(10).random(n)
        closing = converted & (uclose < spec.closing_touch_prob)
        cj = np.flatnonzero(closing)
        use_direct = rng(11).random(n)[cj] < spec.closing_direct_share
        c_channel = np.where(use_direct, self.direct, self.closing_alt).astype(np.int16)
        back = rng(12).random(n)[cj] * np.minimum(1800, conv_time[cj] - last[cj])
        c_time = (conv_time[cj] - back).astype(np.int64)
        c_campaign = self.campaign_offset[c_channel].astype(np.int16)
        c_inter = np.where(c_channel == self.direct, VISIT, CLICK).astype(np.int8)
        all_j = np.concatenate([jloc, cj])
        order = np.argsort(all_j, kind="stable")
        t_journey = all_j[order]
        t_time = _strictly_increasing(t_journey, np.concatenate([times, c_time])[order])
        # A closing touch nudged by a second must still precede its conversion.
        ends = np.cumsum(np.bincount(t_journey, minlength=n)) - 1
        conv_time = np.where(converted, np.maximum(conv_time, t_time[ends]), conv_time)
        return JourneyArrays(
            journey=np.arange(first, first + n, dtype=np.int64),
            intent=z,
            converted=converted,
            cause=cause,
            conv_time=conv_time,
            value=np.where(converted, value, 0.0),
            t_journey=t_journey + first,
            t_time=t_time,
            t_channel=np.concatenate([channel, c_channel])[order],
            t_campaign=np.concatenate([campaign, c_campaign])[order],
            t_interaction=np.concatenate([interaction, c_inter])[order],
        )

    def pilot_counts(self, n: int) -> tuple[FloatArray, FloatArray]:
        """Touch counts per paid channel and baseline probabilities for a pilot sample."""
        z, _, _, jloc, channel = self._stage1((_PILOT,), n)
        paid = channel < self.n_paid
        flat = jloc[paid] * self.n_paid + channel[paid]
        counts = np.bincount(flat, minlength=n * self.n_paid).reshape(n, self.n_paid)
        p_base = expit(self.b0 + self.spec.intent_slope * z)
        return counts.astype(np.float64), np.asarray(p_base, dtype=np.float64)

    def empty_arrays(self) -> JourneyArrays:
        i64, f64 = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return JourneyArrays(
            i64,
            f64,
            np.zeros(0, bool),
            np.zeros(0, np.int16),
            i64,
            f64,
            i64,
            i64,
            np.zeros(0, np.int16),
            np.zeros(0, np.int16),
            np.zeros(0, np.int8),
        )

    def iter_arrays(self, n_journeys: int, chunk_size: int) -> Iterator[JourneyArrays]:
        """Columnar chunks of at most ``chunk_size`` journeys (deterministic by journey)."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        n_blocks = -(-n_journeys // BLOCK_SIZE)
        buf: list[JourneyArrays] = []
        buffered = 0
        for b in range(n_blocks):
            size = min(BLOCK_SIZE, n_journeys - b * BLOCK_SIZE)
            buf.append(self._block(b, size))
            buffered += size
            while buffered >= chunk_size:
                merged = JourneyArrays.concat(buf)
                yield merged.slice(0, chunk_size)
                rest = merged.slice(chunk_size, len(merged))
                buf = [rest] if len(rest) else []
                buffered = len(rest)
        if buffered:
            yield JourneyArrays.concat(buf)

    # ------------------------------------------------------------------ frames
    def _ids(self, prefix: str, index: IntArray) -> pa.Array:
        digits = pc.cast(pa.array(index + 1), pa.string())
        return pc.binary_join_element_wise(prefix, pc.utf8_lpad(digits, 7, "0"), "")

    def _timestamps(self, seconds: IntArray) -> pd.Series:
        values = (seconds + self.start_epoch_s).astype("datetime64[s]").astype("datetime64[us]")
        return pd.Series(pd.DatetimeIndex(values).tz_localize("UTC"))

    def frames(self, arrays: JourneyArrays) -> JourneyChunk:
        """Build the touchpoints, conversions and truth DataFrames of a chunk."""
        str_dtype = pd.StringDtype("pyarrow", na_value=np.nan)
        jids = self._ids("j", arrays.journey)
        pos = arrays.t_journey - (arrays.journey[0] if len(arrays) else 0)
        touch_ids = pc.take(jids, pa.array(pos))
        touchpoints = pd.DataFrame(
            {
                "journey_id": pd.Series(pd.array(touch_ids, dtype=str_dtype)),
                "timestamp": self._timestamps(arrays.t_time),
                "channel": pd.Series(self.channel_names[arrays.t_channel], dtype="str"),
                "campaign": pd.Series(self.campaign_names[arrays.t_campaign], dtype="str"),
                "interaction": pd.Series(INTERACTIONS[arrays.t_interaction], dtype="str"),
            }
        )
        conv = np.flatnonzero(arrays.converted)
        conversions = pd.DataFrame(
            {
                "journey_id": pd.Series(pd.array(pc.take(jids, pa.array(conv)), dtype=str_dtype)),
                "timestamp": self._timestamps(arrays.conv_time[conv]),
                "value": arrays.value[conv].astype(np.float64),
                "order_id": pd.Series(
                    pd.array(self._ids("o", arrays.journey[conv]), dtype=str_dtype)
                ),
            }
        )
        cause_names = np.empty(len(arrays), dtype=object)
        cause_names[:] = None
        cause_names[arrays.cause == CAUSE_BASELINE] = "baseline"
        inc = arrays.cause >= 0
        cause_names[inc] = self.channel_names[arrays.cause[inc]]
        truth = pd.DataFrame(
            {
                "journey_id": pd.Series(pd.array(jids, dtype=str_dtype)),
                "intent": arrays.intent.astype(np.float64),
                "converted": arrays.converted.astype(bool),
                "incremental": inc,
                "cause": pd.Series(cause_names, dtype="str"),
            }
        )
        return JourneyChunk(touchpoints, conversions, truth)

    def paths(self, arrays: JourneyArrays) -> pd.DataFrame:
        """ChannelAttribution-style path aggregate of a chunk, straight from the arrays."""
        pos = arrays.t_journey - (arrays.journey[0] if len(arrays) else 0)
        counts = np.bincount(pos, minlength=len(arrays)).astype(np.int64)
        return _aggregate_paths(
            arrays.t_channel.astype(np.int64),
            counts,
            arrays.converted,
            arrays.value,
            list(self.channel_names),
        )


# ---------------------------------------------------------------------- paths
def _aggregate_paths(
    codes: IntArray,
    counts: IntArray,
    converted: npt.NDArray[np.bool_],
    value: FloatArray,
    names: list[str],
) -> pd.DataFrame:
    """Group journeys by their channel sequence. ``codes`` are touch channel codes grouped by
    journey in time order, ``counts`` touches per journey (journeys with none are skipped)."""
    keep = counts > 0
    base = len(names) + 1
    max_len = int(counts.max()) if len(counts) else 0
    if max_len and max_len * math.log2(base) < 62:
        pos_rev = np.repeat(counts, counts) - 1 - _within_journey_position(counts)
        contrib = (codes + 1) * np.power(base, pos_rev, dtype=np.int64)
        starts = (np.cumsum(counts) - counts)[keep]
        key = np.add.reduceat(contrib, starts) if len(starts) else contrib[:0]
        uniq, inverse = np.unique(key, return_inverse=True)
        labels = []
        for k in uniq.tolist():
            seq = []
            while k:
                k, d = divmod(k, base)
                seq.append(names[d - 1])
            labels.append(" > ".join(reversed(seq)))
    else:  # very long paths or many channels: fall back to string joins
        name_arr = np.array(names, dtype=object)
        jidx = np.repeat(np.arange(len(counts)), counts)
        joined = pd.Series(name_arr[codes]).groupby(jidx, sort=True).agg(" > ".join)
        cat = pd.Categorical(joined.to_numpy())
        labels = [str(c) for c in cat.categories]
        inverse = cat.codes.astype(np.int64)
    conv = converted[keep]
    k = len(labels)
    out = pd.DataFrame(
        {
            "path": pd.Series(labels, dtype="str"),
            "conversions": np.bincount(inverse, weights=conv, minlength=k).astype(np.int64),
            "nulls": np.bincount(inverse, weights=~conv, minlength=k).astype(np.int64),
            "value": np.bincount(
                inverse, weights=np.where(conv, value[keep], 0.0), minlength=k
            ).astype(np.float64),
        }
    )
    return out.sort_values(
        ["conversions", "nulls", "path"], ascending=[False, False, True], ignore_index=True
    )


def paths_from_journeys(touchpoints: pd.DataFrame, conversions: pd.DataFrame) -> pd.DataFrame:
    """Aggregate journeys to ``path, conversions, nulls, value`` (R ChannelAttribution form).

    A journey's path is its touch channels in time order joined by ``" > "``; it counts as a
    conversion if it has at least one row in ``conversions`` (values summed), otherwise as a null.
    """
    tp = touchpoints.sort_values(["journey_id", "timestamp"], kind="stable")
    jcodes, journeys = pd.factorize(tp["journey_id"], sort=False)
    ccodes, channels = pd.factorize(tp["channel"], sort=True)
    counts = np.bincount(jcodes, minlength=len(journeys)).astype(np.int64)
    value_by = conversions.groupby("journey_id", sort=False)["value"].sum()
    value = value_by.reindex(pd.Index(journeys)).to_numpy(dtype=np.float64, na_value=np.nan)
    converted = ~np.isnan(value)
    return _aggregate_paths(
        ccodes.astype(np.int64),
        counts,
        converted,
        np.nan_to_num(value),
        [str(c) for c in channels],
    )


def combine_paths(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Sum path aggregates (e.g. one per chunk) into one."""
    merged = pd.concat(list(frames), ignore_index=True)
    out = merged.groupby("path", sort=False, as_index=False)[
        ["conversions", "nulls", "value"]
    ].sum()
    return out.sort_values(
        ["conversions", "nulls", "path"], ascending=[False, False, True], ignore_index=True
    )


def write_journeys_parquet(
    chunks: Iterable[JourneyChunk], directory: str | os.PathLike[str]
) -> dict[str, list[Path]]:
    """Write each chunk as ``<dir>/{touchpoints,conversions,truth}/part-00000.parquet`` ..."""
    import pyarrow.parquet as pq

    root = Path(directory)
    written: dict[str, list[Path]] = {"touchpoints": [], "conversions": [], "truth": []}
    for i, chunk in enumerate(chunks):
        for name, frame in zip(("touchpoints", "conversions", "truth"), chunk, strict=True):
            folder = root / name
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"part-{i:05d}.parquet"
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
            written[name].append(path)
    return written
