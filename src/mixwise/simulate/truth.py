"""Ground truth of a simulated market, exposed as data.

Definitions (all noise-free, on the simulated period, burn-in excluded):

* **Contribution** of channel ``c`` on day ``t`` (per geo): ``E[revenue | all spend] -
  E[revenue | spend_c = 0 on the whole timeline]``. Because the noise does not depend on media,
  this is also exactly the change in *observed* revenue when the simulator is re-run with the
  same seed and ``switch_off=(c,)``.
* **Synergy.** With a synergy ``target × (1 + strength * mean_s hill_s)``, removal contributions
  do not add up: the sum over channels of contributions exceeds the total media effect
  (``E[revenue | all] - E[revenue | no media]``) by exactly the synergy term, which is counted
  once in the target's and once in the source's contribution. The synergy term of each
  (target, source) pair is exposed separately (``synergy``); for a pair,
  ``contribution(target) + contribution(source) - joint_contribution(target, source)`` equals it.
* **ROI** ``= sum contribution / sum spend``; **marginal ROI** ``= d revenue / d spend`` for a
  small proportional change of the channel's whole spend series (central difference).
* **Response curve** of ``c``: steady daily spend ``x`` → steady-state expected incremental
  revenue per day ``F(x_c = x) - F(x_c = 0)``, where ``F`` is the steady-state media revenue
  (normalised adstock ⇒ steady adstock = spend) with every other channel at its historical mean
  daily spend, so synergy partners are included.
* **Optimal allocation** maximises ``F`` over all channels jointly (synergy included) subject to
  ``sum x = budget``, ``x >= 0``.
* **User level**: ``incremental_conversions`` counts journeys whose true cause is each channel
  (``direct`` is always 0); ``journey_targets`` are the shares the user-level model was
  calibrated to (see :mod:`mixwise.simulate.journeys`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize

from mixwise.simulate.config import LeadFunnel
from mixwise.simulate.transforms import hill
from mixwise.simulate.world import FloatArray, World

__all__ = ["Allocation", "GroundTruth"]


@dataclass(frozen=True)
class Allocation:
    """Result of :meth:`GroundTruth.optimal_allocation` (per-day amounts)."""

    budget: float
    spend: pd.Series
    expected_revenue: float
    historical_spend: pd.Series
    historical_revenue: float

    @property
    def uplift(self) -> float:
        """Expected extra incremental revenue per day versus the historical mix."""
        return self.expected_revenue - self.historical_revenue


class GroundTruth:
    """The true effects of one simulated market (see module docstring for definitions)."""

    def __init__(
        self,
        world: World,
        *,
        journey_truth: Callable[[], pd.DataFrame],
        journey_targets: pd.Series,
        per_touch_probability: pd.Series,
        customers: pd.DataFrame,
    ) -> None:
        self._world = world
        self._journey_truth = journey_truth
        self.channels: tuple[str, ...] = world.channels
        self.journey_targets = journey_targets
        self.per_touch_probability = per_touch_probability
        self.customers = customers
        cfg = world.config
        self.control_coefficients: dict[str, float] = {
            "price_index": cfg.price_coef,
            "promotion": cfg.promotion_coef,
            "competitor_activity": cfg.competitor_coef,
        }
        self.lead_funnel: LeadFunnel = cfg.leads

    # ------------------------------------------------------------------ helpers
    def _long(
        self, arr: FloatArray, *, trimmed: bool = False
    ) -> tuple[list[object], list[object], FloatArray]:
        """Date, geo and value columns of a (G, N) array (``trimmed``: burn-in already cut)."""
        w = self._world
        dates, geos = w._long_index()
        return list(dates), list(geos), (arr if trimmed else w.sim(arr)).T.ravel()

    def _total_mu(self, spend: FloatArray) -> float:
        return float(self._world.sim(self._world.expected_revenue(spend)).sum())

    def removal_contribution(self, channels: Sequence[str]) -> FloatArray:
        """Noise-free ``E[rev | all] - E[rev | channels off]`` (G, T) for a set of channels."""
        w = self._world
        return w.sim(w.expected_revenue() - w.expected_revenue(w.modified_spend(tuple(channels))))

    # ------------------------------------------------------------------ aggregate truth
    @functools.cached_property
    def spend_total(self) -> pd.Series:
        w = self._world
        return pd.Series(w.sim(w.spend).sum(axis=(1, 2)), index=list(self.channels), name="spend")

    @functools.cached_property
    def contribution(self) -> pd.DataFrame:
        """Long frame: date, geo, channel, contribution (removal definition)."""
        frames = []
        for name in self.channels:
            dates, geos, values = self._long(self.removal_contribution((name,)), trimmed=True)
            frames.append(
                pd.DataFrame(
                    {
                        "date": pd.Series(dates, dtype=object),
                        "geo": pd.Series(geos, dtype=object),
                        "channel": pd.Series([name] * len(values), dtype="str"),
                        "contribution": values,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    @functools.cached_property
    def contribution_total(self) -> pd.Series:
        """Total contribution per channel over the period."""
        s = self.contribution.groupby("channel", sort=False)["contribution"].sum()
        return pd.Series(s.reindex(list(self.channels)).to_numpy(), index=list(self.channels))

    @functools.cached_property
    def synergy(self) -> pd.DataFrame:
        """Long frame: date, geo, target, source, effect (the synergy term of each pair)."""
        w = self._world
        parts = w.media_parts(w.spend)
        frames = []
        for k, (target, source, _) in enumerate(w.synergy_pairs):
            dates, geos, values = self._long(parts.synergy[k])
            frames.append(
                pd.DataFrame(
                    {
                        "date": pd.Series(dates, dtype=object),
                        "geo": pd.Series(geos, dtype=object),
                        "target": pd.Series([target] * len(values), dtype="str"),
                        "source": pd.Series([source] * len(values), dtype="str"),
                        "effect": values,
                    }
                )
            )
        if not frames:
            return pd.DataFrame(
                {
                    "date": pd.Series([], dtype=object),
                    "geo": pd.Series([], dtype=object),
                    "target": pd.Series([], dtype="str"),
                    "source": pd.Series([], dtype="str"),
                    "effect": pd.Series([], dtype=np.float64),
                }
            )
        return pd.concat(frames, ignore_index=True)

    @property
    def synergy_total(self) -> float:
        return float(self.synergy["effect"].sum())

    @functools.cached_property
    def expected(self) -> pd.DataFrame:
        """Noise-free decomposition: date, geo, baseline, controls, media, expected_revenue.

        ``baseline`` includes trend, seasonality and holidays; ``media`` is all channels'
        effect including synergy (``E[rev | all] - E[rev | no media]``)."""
        w = self._world
        media = w.media_parts(w.spend).total
        dates, geos, base = self._long(w.baseline)
        return pd.DataFrame(
            {
                "date": pd.Series(dates, dtype=object),
                "geo": pd.Series(geos, dtype=object),
                "baseline": base,
                "controls": self._long(w.control_effect)[2],
                "media": self._long(media)[2],
                "expected_revenue": self._long(w.expected_revenue())[2],
            }
        )

    @property
    def incremental_revenue(self) -> float:
        """Total media effect over the period (synergy counted once)."""
        return float(self.expected["media"].sum())

    @functools.cached_property
    def roi(self) -> pd.Series:
        """Total contribution / total spend per channel (NaN where nothing was spent)."""
        spend = self.spend_total.replace(0.0, np.nan)
        return (self.contribution_total / spend).rename("roi")

    @functools.cached_property
    def marginal_roi(self) -> pd.Series:
        """d revenue / d spend for a proportional change of each channel's spend series."""
        w = self._world
        eps = 1e-4
        out = {}
        for name in self.channels:
            up = self._total_mu(w.modified_spend(scale={name: 1 + eps}))
            down = self._total_mu(w.modified_spend(scale={name: 1 - eps}))
            denom = 2 * eps * float(self.spend_total[name])
            out[name] = (up - down) / denom if denom > 0 else np.nan
        return pd.Series(out, name="marginal_roi")

    def summary(self) -> pd.DataFrame:
        """One row per channel: spend, contribution, roi, marginal_roi."""
        return pd.DataFrame(
            {
                "spend": self.spend_total,
                "contribution": self.contribution_total,
                "roi": self.roi,
                "marginal_roi": self.marginal_roi,
            }
        )

    # ------------------------------------------------------------------ steady state
    @functools.cached_property
    def historical_daily_spend(self) -> pd.Series:
        """Mean national daily spend per channel over the period."""
        return self.spend_total / self._world.config.days

    def _steady(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Steady-state media revenue per day; ``x`` has channels on the last axis."""
        cfg = self._world.config
        x = np.asarray(x, dtype=np.float64)
        sat = np.stack(
            [hill(x[..., i], c.half, c.shape) for i, c in enumerate(cfg.channels)], axis=-1
        )
        effects = np.array([c.effect for c in cfg.channels])
        direct = sat * effects
        total = direct.sum(axis=-1)
        for target, source, strength in self._world.synergy_pairs:
            ti, si = self._world.channel_index(target), self._world.channel_index(source)
            total = total + direct[..., ti] * strength * sat[..., si]
        return np.asarray(total, dtype=np.float64)

    def steady_state_revenue(self, spend_per_day: Mapping[str, float]) -> float:
        """Expected media revenue per day at a steady daily spend (missing channels = 0)."""
        x = np.array([float(spend_per_day.get(c, 0.0)) for c in self.channels])
        return float(self._steady(x))

    def response_curve(self, channel: str) -> Callable[[npt.ArrayLike], FloatArray]:
        """Steady daily spend (array) → expected incremental revenue per day, others at their
        historical mean daily spend."""
        ci = self._world.channel_index(channel)
        others = self.historical_daily_spend.to_numpy(dtype=np.float64).copy()

        def curve(spend: npt.ArrayLike) -> FloatArray:
            s = np.asarray(spend, dtype=np.float64)
            x = np.broadcast_to(others, (*s.shape, len(others))).copy()
            x[..., ci] = s
            x0 = x.copy()
            x0[..., ci] = 0.0
            return np.asarray(self._steady(x) - self._steady(x0), dtype=np.float64)

        return curve

    def optimal_allocation(self, budget_per_day: float, n_starts: int = 8) -> Allocation:
        """Daily spend per channel maximising steady-state expected media revenue."""
        if budget_per_day <= 0:
            raise ValueError("budget_per_day must be positive")
        b = float(budget_per_day)
        c = len(self.channels)
        hist = self.historical_daily_spend.to_numpy(dtype=np.float64)
        hist_mix = hist / hist.sum() if hist.sum() > 0 else np.full(c, 1.0 / c)
        scale = max(float(self._steady(hist_mix * b)), 1.0)

        def objective(y: npt.NDArray[np.float64]) -> float:
            return -float(self._steady(np.maximum(y, 0.0) * b)) / scale

        rng = np.random.default_rng(0)
        starts = [hist_mix, np.full(c, 1.0 / c), *rng.dirichlet(np.ones(c), n_starts)]
        cons = ({"type": "eq", "fun": lambda y: float(np.sum(y) - 1.0)},)
        best_y, best_val = hist_mix, objective(hist_mix)
        for y0 in starts:
            res = minimize(
                objective,
                y0,
                method="SLSQP",
                bounds=[(0.0, 1.0)] * c,
                constraints=cons,
                options={"maxiter": 500, "ftol": 1e-12},
            )
            y = np.clip(res.x, 0.0, None)
            y = y / y.sum()
            val = objective(y)
            if val < best_val:
                best_y, best_val = y, val
        names = list(self.channels)
        return Allocation(
            budget=b,
            spend=pd.Series(best_y * b, index=names, name="spend"),
            expected_revenue=-best_val * scale,
            historical_spend=pd.Series(hist_mix * b, index=names, name="spend"),
            historical_revenue=float(self._steady(hist_mix * b)),
        )

    # ------------------------------------------------------------------ user level
    @property
    def journeys(self) -> pd.DataFrame:
        """Per-journey truth of the market's configured journeys (journey_id, intent,
        converted, incremental, cause)."""
        return self._journey_truth()

    @functools.cached_property
    def incremental_conversions(self) -> pd.Series:
        """Journeys caused by each channel (``direct`` included, always 0)."""
        return incremental_conversions(self.journeys, [*self.channels, "direct"])


def incremental_conversions(truth: pd.DataFrame, channels: Sequence[str]) -> pd.Series:
    """Count journeys by true incremental cause (from a journeys ``truth`` frame)."""
    counts = truth.loc[truth["incremental"], "cause"].value_counts()
    return pd.Series(
        [int(counts.get(c, 0)) for c in channels],
        index=list(channels),
        name="incremental_conversions",
        dtype=np.int64,
    )
