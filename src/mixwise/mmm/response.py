"""The fitted model as a response function: KPI for any spend plan, per posterior draw.

This is the interface the budget optimizer (and anything else that asks "what if we spend
this?") uses. A :class:`ResponseModel` holds the posterior draws of the media parameters and
evaluates, in JAX (so it is vectorised over draws, jit-able and differentiable in the plan):

- :meth:`ResponseModel.media` — each channel's contribution per plan period, ``(draws, P, C)``;
- :meth:`ResponseModel.kpi` — the media KPI (channels + synergies) per period, ``(draws, P)``;
- :meth:`ResponseModel.incremental` — what the plan adds over the horizon against spending
  nothing in it, ``(draws,)``;
- :meth:`ResponseModel.forecast` — the whole expected KPI (baseline + media) per period;
- :meth:`ResponseModel.response_curve` — a channel's steady-state contribution per period
  at constant spend levels (the curve a marketer reads diminishing returns from).

A plan is a ``(P, C)`` array of spend in the data's currency, one row per future period of
the data's frequency (weeks for weekly data), channels in :attr:`ResponseModel.channels`
order. **Carry-over:** by default the plan starts right after the fitted data, so the last
``l_max`` periods of historical spend carry over into it (and count in both the plan and its
zero-spend reference, so :meth:`incremental` credits the plan only). **Baseline:** trend and
Fourier seasonality continue; holidays come from the calendar; control variables are held at
their mean over the fitted data (they are unknown in the future).

    rm = ResponseModel.from_mmm(mmm)            # refuses a "do not use" fit unless forced
    plan = np.full((13, len(rm.channels)), 10_000.0)
    rm.incremental(plan).mean()                 # expected extra KPI of the quarter's plan
    jax.grad(lambda p: rm.incremental(p).mean())(plan)   # marginal KPI per unit of spend
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    import jax

    from mixwise.mmm.fit import MMM
    from mixwise.mmm.transforms import Adstock, Saturation

FloatArray = npt.NDArray[np.float64]


class UnusableModelError(ValueError):
    """The fit's verdict is "do not use" and the caller did not force its use."""


def thin_index(total: int, draws: int | None) -> npt.NDArray[np.int64]:
    """Positions of ``draws`` evenly spaced draws out of ``total`` (all of them without
    ``draws`` or when there are no more)."""
    if draws is None or draws >= total:
        return np.arange(total)
    return np.linspace(0, total - 1, max(int(draws), 1)).round().astype(np.int64)


@dataclass(frozen=True, eq=False)
class ResponseModel:
    channels: tuple[str, ...]
    period_days: int
    spend_scale: FloatArray  # (G, C) spend per scaled unit, per geo and channel
    kpi_scale: FloatArray  # (G,) KPI per scaled unit, per geo
    geo_share: FloatArray  # (G, C) each geo's share of a channel's spend in the data
    history: FloatArray  # (L, G, C) scaled spend of the last l_max fitted periods
    history_mean: FloatArray  # (C,) mean spend per period over the data (all geos, money)
    history_max: FloatArray  # (C,) highest spend of a period (all geos, money)
    adstock: Adstock
    saturation: Saturation
    params: dict[str, Any]  # media parameters, each (draws, C); "beta" (draws, G, C)
    kappa: Any  # (draws, pairs) synergy coefficients
    pairs: npt.NDArray[np.int64]  # (pairs, 2)
    baseline_draws: dict[str, Any]  # intercept, trend, seasonality, holidays (per draw)
    trend_centre: float
    next_date: pd.Timestamp  # the first period after the data
    origin: pd.Timestamp
    span_days: float
    baseline_spec: Any
    holiday_names: tuple[str, ...]
    usable: bool
    verdict: str
    kpi_name: str = "revenue"

    @classmethod
    def from_mmm(cls, mmm: MMM, *, force: bool = False, draws: int | None = None) -> ResponseModel:
        """The response model of a fitted (or reloaded) :class:`~mixwise.mmm.fit.MMM`.

        Raises :class:`UnusableModelError` if the fit's verdict is not "usable" (fast mode
        included), unless ``force``. ``draws`` thins the posterior to that many draws (evenly
        spaced) for speed.
        """
        import jax.numpy as jnp

        verdict = mmm.verdict_
        if not verdict.usable and not force:
            raise UnusableModelError(
                f"this model run is not usable ({verdict.message}); refit it, or force its use"
            )
        s = mmm.samples_
        n = len(np.asarray(s["beta"]))
        take = thin_index(n, draws)
        names = (*mmm.adstock_.param_names, *mmm.saturation_.param_names, "beta")
        params = {k: jnp.asarray(np.asarray(s[k], dtype=np.float32)[take]) for k in names}
        inputs = mmm.inputs_
        pairs = np.asarray(inputs.synergy_pairs, dtype=np.int64).reshape(-1, 2)
        kappa = (
            jnp.asarray(np.asarray(s["kappa"], dtype=np.float32)[take])
            if len(pairs)
            else jnp.zeros((len(take), 0))
        )
        base_names = (
            "intercept",
            "trend",
            "seasonality",
            "holidays",
            "seasonality_trend",
            "holidays_trend",
        )
        baseline = {k: np.asarray(s[k], dtype=np.float64)[take] for k in base_names if k in s}
        data = mmm.data_
        l_max = int(getattr(mmm.adstock_, "l_max", 1))
        spend_scale = np.asarray(inputs.spend_scale, dtype=np.float64)
        history = np.asarray(data.spend[-l_max:] / spend_scale, dtype=np.float64)
        national = data.spend.sum(axis=1)  # (T, C) money
        totals = data.spend.sum(axis=0)  # (G, C)
        # A national plan is spread over the geos as the data spread each channel (equally
        # where a channel never spent).
        share = np.where(
            totals.sum(axis=0) > 0,
            totals / np.maximum(totals.sum(axis=0), 1e-300),
            1.0 / data.n_geos,
        )
        fit_mask = np.asarray(inputs.fit_mask, dtype=np.float64)
        centre = float((inputs.trend * fit_mask).sum() / max(fit_mask.sum(), 1.0))
        period = data.period_length_days
        span = float((data.dates[-1] - data.dates[0]).days + period)
        return cls(
            channels=tuple(data.channels),
            period_days=period,
            spend_scale=spend_scale,
            kpi_scale=np.asarray(inputs.kpi_scale, dtype=np.float64),
            geo_share=share,
            history=history,
            history_mean=national.mean(axis=0),
            history_max=national.max(axis=0),
            adstock=mmm.adstock_,
            saturation=mmm.saturation_,
            params=params,
            kappa=kappa,
            pairs=pairs,
            baseline_draws=baseline,
            trend_centre=centre,
            next_date=data.dates[-1] + pd.Timedelta(days=period),
            origin=data.dates[0],
            span_days=span,
            baseline_spec=mmm.baseline,
            holiday_names=tuple(mmm.holiday_names_),
            usable=bool(verdict.usable),
            verdict=verdict.message,
            kpi_name=str(data.kpi),
        )

    def thin(self, draws: int) -> ResponseModel:
        """The same model on ``draws`` evenly spaced posterior draws (all when there are no
        more): the optimizer explores its starts on a thinned model and polishes on this one."""
        take = thin_index(self.n_draws, draws)
        return replace(
            self,
            params={k: v[take] for k, v in self.params.items()},
            kappa=self.kappa[take],
            baseline_draws={k: v[take] for k, v in self.baseline_draws.items()},
        )

    @property
    def n_draws(self) -> int:
        return int(self.params["beta"].shape[0])

    @property
    def carry_periods(self) -> int:
        """How many periods a period's spend keeps working (its own included)."""
        return int(getattr(self.adstock, "l_max", 1))

    # -- media --------------------------------------------------------------------------------
    def _saturated(self, plan: Any, carry_over: bool) -> jax.Array:
        """Saturated adstocked spend of the plan periods, ``(draws, P, G, C)`` (scaled units):
        the national plan spread over the geos by :attr:`geo_share`."""
        import jax
        import jax.numpy as jnp

        x = jnp.asarray(plan)
        if x.ndim != 2 or x.shape[1] != len(self.channels):
            raise ValueError(
                f"a plan is (periods, {len(self.channels)}) spend in channel order "
                f"{list(self.channels)}; got shape {tuple(x.shape)}"
            )
        per_geo = jnp.asarray(self.geo_share / self.spend_scale, dtype=jnp.float32)
        x = x[:, None, :] * per_geo[None, :, :]
        lead = self.history if carry_over else np.zeros_like(self.history)
        full = jnp.concatenate([jnp.asarray(lead, dtype=x.dtype), x], axis=0)
        n_t, n_g, n_c = full.shape
        # Geos and channels as one axis (T, G*C), each channel's parameters repeated per geo:
        # the same values as on (T, G, C), but XLA's gradient of adstock-then-saturation over a
        # (draws, T, G, C) array is ~15x slower than over (draws, T, G*C) (also at one geo).
        flat = full.reshape(n_t, n_g * n_c)
        a_names, s_names = self.adstock.param_names, self.saturation.param_names

        def one(*values: jax.Array) -> jax.Array:
            per = [jnp.tile(v, n_g) for v in values]
            ap = dict(zip(a_names, per[: len(a_names)], strict=True))
            sp = dict(zip(s_names, per[len(a_names) :], strict=True))
            return self.saturation.apply(self.adstock.apply(flat, **ap), **sp)

        sat = jax.vmap(one)(*(self.params[k] for k in (*a_names, *s_names)))
        return sat[:, len(lead) :].reshape(-1, n_t - len(lead), n_g, n_c)

    def _kpi_beta(self) -> jax.Array:
        """``beta`` in KPI units per geo: (draws, G, C)."""
        import jax.numpy as jnp

        return self.params["beta"] * jnp.asarray(self.kpi_scale, dtype=jnp.float32)[None, :, None]

    def media(self, plan: Any, *, carry_over: bool = True) -> jax.Array:
        """Each channel's contribution per plan period in KPI units (all geos),
        ``(draws, P, C)`` (synergies not included: see :meth:`kpi`)."""
        import jax.numpy as jnp

        sat = self._saturated(plan, carry_over)
        return jnp.einsum("npgc,ngc->npc", sat, self._kpi_beta())

    def kpi(self, plan: Any, *, carry_over: bool = True) -> jax.Array:
        """Media KPI per plan period (channels and synergies), KPI units, ``(draws, P)``."""
        import jax.numpy as jnp

        sat = self._saturated(plan, carry_over)
        total = jnp.einsum("npgc,ngc->npg", sat, self.params["beta"])
        if len(self.pairs):
            joint = sat[..., self.pairs[:, 0]] * sat[..., self.pairs[:, 1]]
            total = total + jnp.sum(joint * self.kappa[:, None, None, :], axis=3)
        return total @ jnp.asarray(self.kpi_scale, dtype=jnp.float32)

    def incremental(self, plan: Any, *, carry_over: bool = True) -> jax.Array:
        """Extra KPI over the plan's periods against no spend in them, per draw ``(draws,)``."""
        import jax.numpy as jnp

        plan = jnp.asarray(plan, dtype=jnp.float32)
        with_plan = self.kpi(plan, carry_over=carry_over).sum(axis=1)
        without = self.kpi(jnp.zeros_like(plan), carry_over=carry_over).sum(axis=1)
        return with_plan - without

    def response_curve(self, channel: str, spend: npt.ArrayLike) -> FloatArray:
        """Steady-state contribution per period of ``channel`` at each constant spend level
        per period (KPI units), ``(draws, len(spend))``: the spend held for long enough that
        the carry-over has built up (normalised adstock keeps the level), synergies left out."""
        import jax.numpy as jnp

        if channel not in self.channels:
            raise ValueError(f"unknown channel {channel!r}; channels: {list(self.channels)}")
        c = self.channels.index(channel)
        levels = np.asarray(spend, dtype=np.float64).reshape(-1)
        if np.any(levels < 0) or not np.all(np.isfinite(levels)):
            raise ValueError("spend levels must be finite and >= 0")
        import jax

        l_max = int(getattr(self.adstock, "l_max", 1))
        # One constant series per level, read at its last period; all levels in one call.
        plans = np.zeros((len(levels), l_max + 1, len(self.channels)), dtype=np.float32)
        plans[:, :, c] = levels[:, None]
        sat = jax.vmap(lambda p: self._saturated(p, carry_over=False))(jnp.asarray(plans))
        last = np.asarray(sat[:, :, -1, :, c], dtype=np.float64)  # (levels, draws, G)
        beta = np.asarray(self._kpi_beta()[:, :, c], dtype=np.float64)  # (draws, G)
        return (last * beta[None, :, :]).sum(axis=2).T

    # -- the whole KPI ------------------------------------------------------------------------
    def future_dates(self, periods: int) -> pd.DatetimeIndex:
        """The start dates of the ``periods`` periods after the data."""
        return pd.date_range(self.next_date, periods=periods, freq=f"{self.period_days}D")

    def baseline(self, periods: int) -> FloatArray:
        """Expected baseline KPI of the ``periods`` periods after the data, ``(draws, P)``:
        trend and seasonality continued, holidays from the calendar, controls at their mean."""
        return self.baseline_at(self.future_dates(periods))

    def baseline_at(self, dates: pd.DatetimeIndex) -> FloatArray:
        """Expected baseline KPI of the periods starting at ``dates`` (any, the fitted ones
        included), ``(draws, P)``, KPI units, with controls at their mean."""
        from mixwise.mmm.features import baseline_design

        design = baseline_design(
            dates,
            self.period_days,
            self.baseline_spec,
            origin=self.origin,
            span_days=self.span_days,
            holiday_names=self.holiday_names,
        )
        b = self.baseline_draws
        # Every geo's level (draws, P, G) in its own scaled units, then KPI units summed.
        intercept = np.asarray(b["intercept"], dtype=np.float64).reshape(len(b["trend"]), -1)
        trend = design.trend - self.trend_centre
        shared = b["trend"][:, None] * trend
        if "seasonality" in b and design.seasonality.shape[1]:
            shared = shared + b["seasonality"] @ design.seasonality.T
        if "holidays" in b and design.holidays.shape[1]:
            shared = shared + b["holidays"] @ design.holidays.T
        # Interactions (runs that have them); controls sit at their mean, 0 once standardised,
        # so their products with the holidays add nothing. Not interaction_columns: its rule
        # for rare holidays is about the fitted data (those columns have zero coefficients,
        # see sample_baseline), and would wrongly apply to these few periods.
        if "seasonality_trend" in b and design.seasonality.shape[1]:
            shared = shared + b["seasonality_trend"] @ (trend[:, None] * design.seasonality).T
        if "holidays_trend" in b and design.holidays.shape[1]:
            shared = shared + b["holidays_trend"] @ (trend[:, None] * design.holidays).T
        level = intercept[:, None, :] + shared[:, :, None]
        return np.asarray(level @ self.kpi_scale, dtype=np.float64)

    def forecast(self, plan: Any) -> FloatArray:
        """Expected KPI (baseline + media) per period of a plan that starts right after the
        data, ``(draws, P)``, KPI units."""
        media = np.asarray(self.kpi(plan), dtype=np.float64)
        return self.baseline(media.shape[1]) + media


def response_curves(rm: ResponseModel, points: int = 21, reach: float = 2.0) -> dict[str, Any]:
    """Every channel's response curve for display: spend per period from 0 to ``reach`` times
    the channel's highest historical spend per period, in ``points`` steps, with the posterior
    mean and 90 % interval of the steady-state contribution per period, and the channel's
    average historical spend per period (where it runs today)."""
    if not 2 <= points <= 200:
        raise ValueError(f"points must be 2 … 200, got {points}")
    if not 0 < reach <= 10:
        raise ValueError(f"reach must be > 0 and ≤ 10, got {reach}")
    curves: dict[str, Any] = {}
    for c, channel in enumerate(rm.channels):
        top = max(float(rm.history_max[c]), 1e-12)
        levels = np.linspace(0.0, reach * top, points)
        draws = rm.response_curve(channel, levels)
        lower, upper = np.quantile(draws, (0.05, 0.95), axis=0)
        curves[channel] = {
            "spend": levels.tolist(),
            "mean": draws.mean(axis=0).tolist(),
            "lower": lower.tolist(),
            "upper": upper.tolist(),
            "current_spend": float(rm.history_mean[c]),
        }
    return {"channels": list(rm.channels), "interval": [0.05, 0.95], "curves": curves}
