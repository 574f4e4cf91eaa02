"""The :class:`Market`: one synthetic world seen as import tables, plus its ground truth."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mixwise.simulate.config import MarketConfig
from mixwise.simulate.customers import simulate_leads, simulate_orders
from mixwise.simulate.journeys import (
    JourneyChunk,
    JourneyModel,
    baseline_intercept,
    calibrate_hazards,
    combine_paths,
    write_journeys_parquet,
)
from mixwise.simulate.truth import GroundTruth
from mixwise.simulate.world import World

__all__ = ["TABLES", "Market", "simulate_market"]

TABLES = (
    "media",
    "outcomes",
    "controls",
    "touchpoints",
    "conversions",
    "paths",
    "orders",
    "leads",
)


class Market:
    """A simulated market. Build it with :func:`simulate_market`.

    Aggregate tables (``media``, ``outcomes``, ``controls``, ``orders``, ``leads``) are built
    eagerly; the journey tables for ``config.n_journeys`` on first access. Larger journey sets
    come from :meth:`iter_journeys` / :meth:`write_journeys` in bounded-memory chunks.
    """

    def __init__(
        self, config: MarketConfig, seed: int = 0, switch_off: tuple[str, ...] = ()
    ) -> None:
        self.config = config
        self.seed = int(seed)
        self.switch_off = tuple(switch_off)
        self._world = World(config, self.seed)
        for name in self.switch_off:
            self._world.channel_index(name)  # validates
        if self.switch_off:
            self._world.spend = self._world.modified_spend(self.switch_off)
        self.media = self._world.media_frame()
        self.outcomes = self._world.outcomes_frame()
        self.controls = self._world.controls_frame()

        # The user-level model is calibrated on the unmodified market, so a switched-off
        # market is a counterfactual of the same users.
        base_world = World(config, self.seed) if self.switch_off else self._world
        base_truth_contrib = _removal_totals(base_world)
        spec = config.journeys
        b0 = baseline_intercept(spec.baseline_conversion_rate, spec.intent_slope)
        probe = JourneyModel(base_world, np.zeros(len(config.channels)), b0)
        counts, p_base = probe.pilot_counts(spec.pilot_size)
        hazards = calibrate_hazards(counts, p_base, base_truth_contrib, spec.incremental_share)
        self._journeys = JourneyModel(self._world, hazards, b0)

        self.orders, customers = simulate_orders(config, self.seed)
        self.truth = GroundTruth(
            self._world,
            journey_truth=lambda: self.journey_truth,
            journey_targets=pd.Series(
                base_truth_contrib / max(float(base_truth_contrib.sum()), 1e-300),
                index=list(config.channel_names),
                name="target_share",
            ),
            per_touch_probability=pd.Series(
                self._journeys.q[:-1], index=list(config.channel_names), name="q"
            ),
            customers=customers,
        )
        self.leads = self._make_leads()

    def _make_leads(self) -> pd.DataFrame:
        w = self._world
        daily = self.outcomes.groupby("date", sort=True)["leads"].sum().to_numpy()
        organic = w.sim(w.baseline + w.control_effect).sum(axis=0)
        contrib = [
            np.maximum(self.truth.removal_contribution((c,)).sum(axis=0), 0.0) for c in w.channels
        ]
        weights = np.column_stack([organic, *contrib])
        return simulate_leads(self.config, self.seed, daily, weights, ["organic", *w.channels])

    # ------------------------------------------------------------------ journeys
    def iter_journeys(
        self, n_journeys: int | None = None, chunk_size: int = 500_000
    ) -> Iterator[JourneyChunk]:
        """Yield ``(touchpoints, conversions, truth)`` DataFrames for ``n_journeys`` journeys
        (default ``config.n_journeys``) in chunks of at most ``chunk_size`` journeys. Journey
        ``i`` is identical whatever the chunk size or total."""
        n = self.config.n_journeys if n_journeys is None else int(n_journeys)
        for arrays in self._journeys.iter_arrays(n, chunk_size):
            yield self._journeys.frames(arrays)

    def journey_paths(
        self, n_journeys: int | None = None, chunk_size: int = 500_000
    ) -> pd.DataFrame:
        """The ``paths`` aggregate for ``n_journeys`` journeys, built chunk by chunk."""
        n = self.config.n_journeys if n_journeys is None else int(n_journeys)
        parts = [self._journeys.paths(a) for a in self._journeys.iter_arrays(n, chunk_size)]
        return (
            combine_paths(parts) if parts else self._journeys.paths(self._journeys.empty_arrays())
        )

    def write_journeys(
        self,
        directory: str | os.PathLike[str],
        n_journeys: int | None = None,
        chunk_size: int = 500_000,
    ) -> dict[str, list[Path]]:
        """Write journeys to ``directory/{touchpoints,conversions,truth}/part-*.parquet``."""
        return write_journeys_parquet(self.iter_journeys(n_journeys, chunk_size), directory)

    @functools.cached_property
    def _journey_chunk(self) -> JourneyChunk:
        n = self.config.n_journeys
        chunks = list(self.iter_journeys(n, chunk_size=max(n, 1)))
        if chunks:
            return chunks[0]
        return self._journeys.frames(self._journeys.empty_arrays())

    @property
    def touchpoints(self) -> pd.DataFrame:
        return self._journey_chunk.touchpoints

    @property
    def conversions(self) -> pd.DataFrame:
        return self._journey_chunk.conversions

    @property
    def journey_truth(self) -> pd.DataFrame:
        """Per-journey truth: journey_id, intent, converted, incremental, cause."""
        return self._journey_chunk.truth

    @functools.cached_property
    def paths(self) -> pd.DataFrame:
        return self.journey_paths()

    # ------------------------------------------------------------------ counterfactuals
    def counterfactual(
        self,
        switch_off: tuple[str, ...] | list[str] = (),
        scale: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """Outcomes under modified spend with the *same noise draws*: date, geo, revenue
        (observed), expected_revenue (noise-free). Relative to this market's spend."""
        w = self._world
        spend = w.modified_spend(switch_off, scale)
        dates, geos = w._long_index()
        return pd.DataFrame(
            {
                "date": pd.Series(dates, dtype=object),
                "geo": pd.Series(geos, dtype=object),
                "revenue": w.sim(w.observed_revenue(spend)).T.ravel(),
                "expected_revenue": w.sim(w.expected_revenue(spend)).T.ravel(),
            }
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """All eight import tables keyed by kind."""
        return {name: getattr(self, name) for name in TABLES}

    def __repr__(self) -> str:
        off = f", switch_off={self.switch_off}" if self.switch_off else ""
        return (
            f"Market(start={self.config.start_date}, days={self.config.days}, "
            f"channels={len(self.config.channels)}, seed={self.seed}{off})"
        )


def _removal_totals(world: World) -> np.ndarray:
    """Total removal contribution per channel (clipped at 0) of a world's own spend."""
    mu = world.sim(world.expected_revenue()).sum()
    out = []
    for name in world.channels:
        cf = world.sim(world.expected_revenue(world.modified_spend((name,)))).sum()
        out.append(max(float(mu - cf), 0.0))
    return np.asarray(out, dtype=np.float64)


def simulate_market(
    config: MarketConfig | None = None,
    seed: int = 0,
    *,
    switch_off: tuple[str, ...] | list[str] = (),
) -> Market:
    """Simulate a market. ``switch_off`` forces those channels' spend to zero on the whole
    timeline while every random draw stays the same, so outcomes differ from the unmodified
    market's by exactly the channels' (joint) true contribution."""
    return Market(config or MarketConfig(), seed, tuple(switch_off))
