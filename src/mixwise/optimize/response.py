"""Response models: what a spend plan returns, per posterior draw — the optimizer's input.

Every source of "what would this spend bring?" answers through one protocol,
:class:`ResponseModel`, and passes one conformance battery (:func:`check_response_model` in
``optimize/checks.py``):

- a fitted marketing mix model: :class:`mixwise.mmm.response.ResponseModel` (posterior draws);
- the simulator's truth: :class:`TruthResponse` (one "draw": the true curves; for tests and
  the decision-quality benchmark);
- curves a user supplies: :class:`HillResponse` (Hill parameters per channel, optional
  geometric carry-over) and :class:`PointResponse` (spend → outcome points per channel,
  interpolated), each readable from a CSV (:func:`read_hill_csv`, :func:`read_points_csv`).

A **plan** is a ``(P, C)`` array of spend in money, one row per period of the model's
frequency (``period_days``; 7 for weekly models), channels in :attr:`channels` order, and
starts right after the data the model knows (``next_date``; ``None`` for curves without
dates). ``kpi(plan)`` is the media KPI per draw and period, ``(draws, P)``: what the plan's
spend (and, with ``carry_over``, the spend before it) brings in those periods, synergies
included; ``media(plan)`` is each channel's part, ``(draws, P, C)``, synergies left out.
``history_mean`` is the spend per period of the "current" plan (the reference the optimizer
compares with; for models fitted on data, the average period of the data). ``carry_periods``
is how many periods a period's spend keeps working (1: none after its own period).

Optional: ``thin(n)``, the same model on ``n`` evenly spaced draws; the optimizer explores
its starts on such a copy when a model has it (see ``optimize/allocate.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    import jax

    from mixwise.simulate.market import Market

FloatArray = npt.NDArray[np.float64]


@runtime_checkable
class ResponseModel(Protocol):
    """What the optimizer needs of a response model (see the module docstring). Members are
    read-only, so plain attributes, dataclass fields and properties all conform."""

    @property
    def channels(self) -> tuple[str, ...]: ...

    @property
    def period_days(self) -> int: ...

    @property
    def history_mean(self) -> FloatArray: ...

    @property
    def next_date(self) -> pd.Timestamp | None: ...

    @property
    def kpi_name(self) -> str: ...

    @property
    def usable(self) -> bool: ...

    @property
    def verdict(self) -> str: ...

    @property
    def n_draws(self) -> int: ...

    @property
    def carry_periods(self) -> int: ...

    def kpi(self, plan: Any, *, carry_over: bool = True) -> jax.Array: ...

    def media(self, plan: Any, *, carry_over: bool = True) -> jax.Array: ...


def _check_plan(plan: Any, channels: Sequence[str]) -> Any:
    import jax.numpy as jnp

    x = jnp.asarray(plan)
    if x.ndim != 2 or x.shape[1] != len(channels):
        raise ValueError(
            f"a plan is (periods, {len(channels)}) spend in channel order {list(channels)}; "
            f"got shape {tuple(x.shape)}"
        )
    return x


# -- user-supplied Hill curves -----------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class HillResponse:
    """Per channel ``max_effect * hill(adstock(spend), half, slope)`` KPI per period.

    ``half`` (spend per period reaching half the maximum), ``slope`` (> 1: S-shaped, ≤ 1:
    concave) and ``max_effect`` (KPI per period at saturation) are ``(C,)`` arrays, or
    ``(draws, C)`` to carry uncertainty. ``decay`` (``(C,)``, 0 ≤ decay < 1) gives geometric
    carry-over over ``l_max`` periods with weights summing to one (steady spend keeps its
    level); 0 means none. ``current`` is the spend per period of today's plan (reference).
    """

    channels: tuple[str, ...]
    half: Any
    slope: Any
    max_effect: Any
    decay: Any = None
    current: Any = None
    l_max: int = 8
    period_days: int = 7
    next_date: pd.Timestamp | None = None
    kpi_name: str = "revenue"
    usable: bool = True
    verdict: str = "user-supplied curves"
    history: Any = None  # (L, C) spend of the periods before the plan (carry-over into it)
    history_mean: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        c = len(self.channels)
        if c == 0 or len(set(self.channels)) != c:
            raise ValueError("channels must be distinct and at least one")

        def table(name: str, value: Any, default: float | None) -> FloatArray:
            arr = np.asarray(default if value is None else value, dtype=np.float64)
            arr = np.broadcast_to(arr, (c,)) if arr.ndim == 0 else arr
            arr = arr[None, :] if arr.ndim == 1 else arr
            if arr.ndim != 2 or arr.shape[1] != c:
                raise ValueError(f"{name} must be ({c},) or (draws, {c}); got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite")
            return arr

        half = table("half", self.half, None)
        slope = table("slope", self.slope, None)
        effect = table("max_effect", self.max_effect, None)
        decay = table("decay", self.decay, 0.0)
        if np.any(half <= 0) or np.any(slope <= 0):
            raise ValueError("half and slope must be > 0")
        if np.any(effect < 0):
            raise ValueError("max_effect must be >= 0")
        if np.any(decay < 0) or np.any(decay >= 1):
            raise ValueError("decay must be in [0, 1)")
        draws = {a.shape[0] for a in (half, slope, effect, decay)} - {1}
        if len(draws) > 1:
            raise ValueError(f"parameters disagree on the number of draws: {sorted(draws)}")
        n = draws.pop() if draws else 1
        for name, arr in (("half", half), ("slope", slope), ("max_effect", effect)):
            object.__setattr__(self, name, np.broadcast_to(arr, (n, c)).copy())
        object.__setattr__(self, "decay", np.broadcast_to(decay, (n, c)).copy())
        current = np.zeros(c) if self.current is None else np.asarray(self.current, float)
        if current.shape != (c,) or np.any(current < 0) or not np.all(np.isfinite(current)):
            raise ValueError(f"current must be {c} spend amounts >= 0")
        object.__setattr__(self, "history_mean", current)
        if self.l_max < 1:
            raise ValueError("l_max must be >= 1")
        hist = np.zeros((0, c)) if self.history is None else np.asarray(self.history, float)
        if hist.ndim != 2 or hist.shape[1] != c:
            raise ValueError(f"history must be (periods, {c})")
        object.__setattr__(self, "history", hist[-self.l_max :])

    @property
    def n_draws(self) -> int:
        return int(np.asarray(self.half).shape[0])

    def thin(self, draws: int) -> HillResponse:
        """The same curves on ``draws`` evenly spaced draws (all when there are no more)."""
        from dataclasses import replace

        from mixwise.mmm.response import thin_index

        take = thin_index(self.n_draws, draws)
        return replace(
            self,
            half=self.half[take],
            slope=self.slope[take],
            max_effect=self.max_effect[take],
            decay=self.decay[take],
            current=self.history_mean,
        )

    @property
    def carry_periods(self) -> int:
        return self.l_max if np.any(np.asarray(self.decay) > 0) else 1

    def _weights(self) -> Any:
        """Carry-over weights ``(draws, L, C)``: ``decay**l`` normalised to sum one."""
        import jax.numpy as jnp

        d = jnp.asarray(self.decay, dtype=jnp.float32)[:, None, :]
        lags = jnp.arange(self.l_max, dtype=jnp.float32)[None, :, None]
        w = jnp.where(lags == 0, 1.0, d**lags)
        return w / w.sum(axis=1, keepdims=True)

    def _saturation(self, plan: Any, carry_over: bool) -> Any:
        import jax
        import jax.numpy as jnp

        from mixwise.mmm.transforms import causal_convolve, hill_saturation

        x = _check_plan(plan, self.channels).astype(jnp.float32)
        lead = jnp.asarray(
            np.asarray(self.history) if carry_over else np.zeros_like(self.history),
            dtype=jnp.float32,
        )
        full = jnp.concatenate([lead, x], axis=0)
        half = jnp.asarray(self.half, dtype=jnp.float32)
        slope = jnp.asarray(self.slope, dtype=jnp.float32)

        def one(w: Any, h: Any, s: Any) -> Any:
            return hill_saturation(causal_convolve(full, w), h, s)

        sat = jax.vmap(one)(self._weights(), half, slope)  # (draws, L + P, C)
        return sat[:, lead.shape[0] :]

    def media(self, plan: Any, *, carry_over: bool = True) -> jax.Array:
        import jax.numpy as jnp

        effect = jnp.asarray(self.max_effect, dtype=jnp.float32)
        return self._saturation(plan, carry_over) * effect[:, None, :]

    def kpi(self, plan: Any, *, carry_over: bool = True) -> jax.Array:
        return self.media(plan, carry_over=carry_over).sum(axis=2)


# -- user-supplied points ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PointResponse:
    """Per channel, KPI per period at measured spend levels, interpolated linearly between
    them; 0 at zero spend unless a point says otherwise (it is then the level to subtract);
    flat beyond the highest point (no extrapolation). No carry-over, one draw."""

    channels: tuple[str, ...]
    spend: tuple[FloatArray, ...]  # per channel, increasing spend levels
    outcome: tuple[FloatArray, ...]  # per channel, KPI per period at those levels
    current: Any = None
    period_days: int = 7
    next_date: pd.Timestamp | None = None
    kpi_name: str = "revenue"
    usable: bool = True
    verdict: str = "user-supplied response points"
    history_mean: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        c = len(self.channels)
        if c == 0 or len(set(self.channels)) != c:
            raise ValueError("channels must be distinct and at least one")
        if len(self.spend) != c or len(self.outcome) != c:
            raise ValueError("one spend and one outcome array per channel")
        xs, ys = [], []
        for name, x, y in zip(self.channels, self.spend, self.outcome, strict=True):
            x = np.asarray(x, dtype=np.float64)
            y = np.asarray(y, dtype=np.float64)
            if x.ndim != 1 or x.shape != y.shape or x.size < 1:
                raise ValueError(f"channel {name!r}: spend and outcome must be equal-length lists")
            if np.any(x < 0) or np.any(np.diff(x) <= 0):
                raise ValueError(f"channel {name!r}: spend levels must be >= 0 and increasing")
            if x[0] > 0:  # the curve starts at (0, 0)
                x, y = np.r_[0.0, x], np.r_[0.0, y]
            xs.append(x)
            ys.append(y - y[0])
        # One padded table: a channel with fewer points repeats its last one.
        k = max(len(x) for x in xs)
        pad_x = np.stack([np.r_[x, x[-1] + np.arange(1, k - len(x) + 1)] for x in xs])
        pad_y = np.stack([np.r_[y, np.full(k - len(y), y[-1])] for y in ys])
        object.__setattr__(self, "spend", tuple(xs))
        object.__setattr__(self, "outcome", tuple(ys))
        object.__setattr__(self, "_table", (pad_x, pad_y))
        current = np.zeros(c) if self.current is None else np.asarray(self.current, float)
        if current.shape != (c,) or np.any(current < 0):
            raise ValueError(f"current must be {c} spend amounts >= 0")
        object.__setattr__(self, "history_mean", current)

    @property
    def n_draws(self) -> int:
        return 1

    @property
    def carry_periods(self) -> int:
        return 1

    def media(self, plan: Any, *, carry_over: bool = True) -> jax.Array:
        import jax
        import jax.numpy as jnp

        x = _check_plan(plan, self.channels).astype(jnp.float32)
        px, py = (jnp.asarray(a, dtype=jnp.float32) for a in self._table)  # type: ignore[attr-defined]
        per_channel = jax.vmap(jnp.interp, in_axes=(1, 0, 0), out_axes=1)(x, px, py)
        return per_channel[None]

    def kpi(self, plan: Any, *, carry_over: bool = True) -> jax.Array:
        return self.media(plan, carry_over=carry_over).sum(axis=2)


# -- the simulator's truth ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TruthResponse:
    """The simulated market's true media response at the frequency of ``period_days``.

    Each period's amount is spent at a steady daily rate over its days; the true daily
    adstock (geometric or delayed), Hill curve, effect and synergies of the simulator apply
    (:mod:`mixwise.simulate.world`), on national spend: exact for a national market, and for
    a geo panel up to the small per-geo jitter of the spend shares. The last days of the
    simulated spend carry over into the plan; ``current`` is the average period's spend.
    """

    channels: tuple[str, ...]
    period_days: int
    weights: FloatArray  # (lags, C) daily carry-over weights
    half: FloatArray
    shape: FloatArray
    effect: FloatArray
    synergy: tuple[tuple[int, int, float], ...]  # (target, source, strength)
    history: FloatArray  # (lags, C) national daily spend before the plan
    history_mean: FloatArray
    next_date: pd.Timestamp | None
    kpi_name: str = "revenue"
    usable: bool = True
    verdict: str = "the simulator's true curves"

    @classmethod
    def from_market(cls, market: Market, period_days: int = 7) -> TruthResponse:
        from mixwise.simulate.transforms import delayed_adstock_weights

        world = market._world
        cfg = world.config
        lags = 1
        cols = []
        for spec in cfg.channels:
            if spec.peak > 0:
                w = delayed_adstock_weights(spec.decay, spec.peak, spec.max_lag)
            elif spec.decay > 0:
                n = int(np.ceil(np.log(1e-6) / np.log(spec.decay)))
                w = np.asarray((1 - spec.decay) * spec.decay ** np.arange(n), dtype=np.float64)
            else:
                w = np.ones(1)
            cols.append(w)
            lags = max(lags, len(w))
        weights = np.zeros((lags, len(cols)))
        for c, w in enumerate(cols):
            weights[: len(w), c] = w
        daily = world.sim(world.spend).sum(axis=1).T  # (days, C) national
        index = world.channel_index
        synergy = tuple((index(t), index(s), float(k)) for t, s, k in world.synergy_pairs)
        end = pd.Timestamp(world.dates[-1]) + pd.Timedelta(days=1)
        return cls(
            channels=tuple(world.channels),
            period_days=int(period_days),
            weights=weights,
            half=np.array([s.half for s in cfg.channels], dtype=np.float64),
            shape=np.array([s.shape for s in cfg.channels], dtype=np.float64),
            effect=np.array([s.effect for s in cfg.channels], dtype=np.float64),
            synergy=synergy,
            history=daily[-lags:],
            history_mean=daily.mean(axis=0) * period_days,
            next_date=end,
        )

    @property
    def n_draws(self) -> int:
        return 1

    @property
    def carry_periods(self) -> int:
        return int(np.ceil(len(self.weights) / self.period_days)) + 1

    def _daily(self, plan: Any, carry_over: bool) -> tuple[Any, Any]:
        """Direct effect and saturation per plan day, ``(days, C)`` each."""
        import jax.numpy as jnp

        from mixwise.mmm.transforms import causal_convolve, hill_saturation

        x = _check_plan(plan, self.channels)
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
        days = jnp.repeat(x.astype(dtype) / self.period_days, self.period_days, axis=0)
        lead = jnp.asarray(self.history if carry_over else np.zeros_like(self.history), dtype)
        full = jnp.concatenate([lead, days], axis=0)
        ad = causal_convolve(full, jnp.asarray(self.weights, dtype))[lead.shape[0] :]
        sat = hill_saturation(ad, jnp.asarray(self.half, dtype), jnp.asarray(self.shape, dtype))
        return sat * jnp.asarray(self.effect, dtype), sat

    def _per_period(self, daily: Any) -> Any:
        return daily.reshape(-1, self.period_days, *daily.shape[1:]).sum(axis=1)

    def media(self, plan: Any, *, carry_over: bool = True) -> jax.Array:
        direct, _ = self._daily(plan, carry_over)
        return self._per_period(direct)[None]

    def kpi(self, plan: Any, *, carry_over: bool = True) -> jax.Array:
        direct, sat = self._daily(plan, carry_over)
        total = direct.sum(axis=1)
        for t, s, k in self.synergy:
            total = total + direct[:, t] * k * sat[:, s]
        return self._per_period(total)[None]


# -- reading user curves -----------------------------------------------------------------------
def read_hill_csv(path: str | Path, **options: Any) -> HillResponse:
    """A :class:`HillResponse` from a CSV with one row per channel: ``channel``, ``half``,
    ``slope``, ``max_effect``, optional ``decay`` and ``current_spend``. Errors name the row
    and column."""
    frame = _read_csv(path, ("channel", "half", "slope", "max_effect"))
    p = Path(path)
    for col in ("half", "slope", "max_effect", "decay", "current_spend"):
        if col in frame:
            frame[col] = _numbers(frame, col, p)
    _require(frame, "half", lambda v: v > 0, "a number > 0", p)
    _require(frame, "slope", lambda v: v > 0, "a number > 0", p)
    _require(frame, "max_effect", lambda v: v >= 0, "a number >= 0", p)
    if "decay" in frame:
        _require(frame, "decay", lambda v: (v >= 0) & (v < 1), "a number in [0, 1)", p)
    if "current_spend" in frame:
        _require(frame, "current_spend", lambda v: v >= 0, "a number >= 0", p)
    _unique_channels(frame, p)
    return HillResponse(
        channels=tuple(frame["channel"]),
        half=frame["half"].to_numpy(),
        slope=frame["slope"].to_numpy(),
        max_effect=frame["max_effect"].to_numpy(),
        decay=frame["decay"].to_numpy() if "decay" in frame else None,
        current=frame["current_spend"].to_numpy() if "current_spend" in frame else None,
        **options,
    )


def read_points_csv(path: str | Path, **options: Any) -> PointResponse:
    """A :class:`PointResponse` from a CSV of ``channel``, ``spend``, ``outcome`` rows (KPI
    per period at that spend per period), optional ``current_spend`` (the same on every row
    of a channel). Errors name the row and column."""
    p = Path(path)
    frame = _read_csv(path, ("channel", "spend", "outcome"))
    for col in ("spend", "outcome", "current_spend"):
        if col in frame:
            frame[col] = _numbers(frame, col, p)
    _require(frame, "spend", lambda v: v >= 0, "a number >= 0", p)
    dup = frame.duplicated(["channel", "spend"], keep="first")
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(
            f"{p}: row {row + 2}, column 'spend': channel {frame['channel'].iloc[row]!r} has "
            "this spend level twice; expected one outcome per spend level"
        )
    channels = tuple(dict.fromkeys(frame["channel"]))
    spend, outcome, current = [], [], []
    for name in channels:
        part = frame[frame["channel"] == name].sort_values("spend")
        spend.append(part["spend"].to_numpy())
        outcome.append(part["outcome"].to_numpy())
        if "current_spend" in part:
            values = part["current_spend"].unique()
            if len(values) != 1:
                row = int(part.index[0])
                raise ValueError(
                    f"{p}: row {row + 2}, column 'current_spend': channel {name!r} has "
                    "different values; expected one current spend per channel"
                )
            current.append(float(values[0]))
    return PointResponse(
        channels=channels,
        spend=tuple(spend),
        outcome=tuple(outcome),
        current=np.array(current) if current else None,
        **options,
    )


def _read_csv(path: str | Path, required: Sequence[str]) -> pd.DataFrame:
    p = Path(path)
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ValueError(f"{p}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not a readable CSV file ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{p}: missing column(s) {missing}; expected columns {list(required)} "
            f"(found {list(frame.columns)})"
        )
    if frame.empty:
        raise ValueError(f"{p}: no rows")
    frame["channel"] = frame["channel"].str.strip()
    empty = frame["channel"] == ""
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise ValueError(f"{p}: row {row + 2}, column 'channel': empty; expected a channel name")
    return frame


def _numbers(frame: pd.DataFrame, col: str, path: Path) -> pd.Series:
    values = pd.to_numeric(frame[col].str.strip(), errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{path}: row {row + 2}, column {col!r}: {frame[col].iloc[row]!r} is not a number"
        )
    return values.astype(np.float64)


def _require(frame: pd.DataFrame, col: str, ok: Any, expected: str, path: Path) -> None:
    bad = ~ok(frame[col].to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}: row {row + 2}, column {col!r}: {frame[col].iloc[row]:g}; expected {expected}"
        )


def _unique_channels(frame: pd.DataFrame, path: Path) -> None:
    dup = frame["channel"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(
            f"{path}: row {row + 2}, column 'channel': {frame['channel'].iloc[row]!r} appears "
            "twice; expected one row per channel"
        )
