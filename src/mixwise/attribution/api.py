"""``attribute(...)``: every attribution model on one input, side by side, with costs.

>>> from mixwise.attribution import attribute                      # doctest: +SKIP
>>> result = attribute(ws)                         # a workspace's journeys, every model
>>> result = attribute("paths.csv", models=["first", "markov"])   # a ChannelAttribution file
>>> result.comparison                              # channel × model shares, and their spread
>>> result.disagreements()                         # "models disagree by 31 points on direct"

A model that needs touch timing (time decay, W-shaped) cannot run on a path file; with
``models="all"`` it is skipped and the reason is kept in ``result.skipped``; asked for by name
it is an error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mixwise.attribution.calibration import calibrate, read_incrementality
from mixwise.attribution.data import ConvertingTouches, PathSet
from mixwise.attribution.inputs import load_paths
from mixwise.attribution.models import MODELS, get_model
from mixwise.attribution.reduce import Granularity, JourneyOptions, reduce_journeys

if TYPE_CHECKING:
    from mixwise.workspace import Workspace

CreditBy = Literal["conversions", "value"]


@dataclass
class AttributionResult:
    """Credits of every model that ran, with the context needed to read them."""

    credits: dict[str, pd.DataFrame]  # model -> channel-indexed frame (see ``credit_table``)
    by: CreditBy
    total_conversions: float
    total_value: float
    journeys: int | None
    unattributed: int
    unattributed_value: float
    paths: PathSet
    touches: ConvertingTouches | None
    currency: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    # model -> calibrated credits (see calibration.calibrate), when incrementality was given
    calibrated: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(self.credits)

    @property
    def comparison(self) -> pd.DataFrame:
        """Share (0-1) of the credited quantity per channel (rows) and model (columns), with
        the lowest, highest and spread across models."""
        shares = pd.DataFrame({m: f["share"] for m, f in self.credits.items()})
        if shares.empty:
            return shares
        out = shares.copy()
        out["min"] = shares.min(axis=1)
        out["max"] = shares.max(axis=1)
        out["spread"] = out["max"] - out["min"]
        return out

    @property
    def calibrated_comparison(self) -> pd.DataFrame:
        """Calibrated (incremental) conversions per channel and model; empty if uncalibrated."""
        return pd.DataFrame({m: f["calibrated_conversions"] for m, f in self.calibrated.items()})

    def disagreements(self, threshold: float = 0.05) -> list[str]:
        """Plain-language notes on channels whose share differs across models."""
        comp = self.comparison
        if comp.empty or len(self.credits) < 2:
            return []
        notes = []
        for channel, row in comp.sort_values("spread", ascending=False).iterrows():
            if row["spread"] < threshold:
                break
            shares = row[self.models]
            notes.append(
                f"models disagree by {100 * row['spread']:.0f} points on {channel}: "
                f"{shares.idxmin()} gives {100 * row['min']:.0f} %, "
                f"{shares.idxmax()} gives {100 * row['max']:.0f} %"
            )
        return notes

    def top_paths(self, n: int = 20) -> pd.DataFrame:
        frame = self.paths.to_frame()
        frame["length"] = self.paths.lengths
        total = frame["conversions"] + frame["nulls"]
        frame["conversion_rate"] = np.where(
            total > 0, frame["conversions"] / total.where(total > 0, 1), np.nan
        )
        return (
            frame.sort_values(["conversions", "value"], ascending=False)
            .head(n)
            .reset_index(drop=True)
        )

    def path_lengths(self) -> pd.DataFrame:
        """Converting and non-converting journeys by number of touches."""
        frame = pd.DataFrame(
            {
                "length": self.paths.lengths,
                "conversions": self.paths.conversions,
                "nulls": self.paths.nulls,
            }
        )
        return frame.groupby("length", as_index=False).sum()

    def time_to_conversion(self) -> pd.DataFrame | None:
        """Conversions by whole days from the first touch to the conversion (needs timing)."""
        t = self.touches
        if t is None or t.n_conversions == 0:
            return None
        first_age = t.age_days[t.offsets[:-1]]
        days = np.floor(first_age).astype(np.int64)
        counts = np.bincount(days)
        out = pd.DataFrame({"days": np.arange(len(counts)), "conversions": counts})
        return out[out["conversions"] > 0].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (credits, comparison, disagreements, distributions)."""

        def records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
            if frame is None:
                return None
            clean = frame.replace({np.nan: None})
            return [{str(k): v for k, v in r.items()} for r in clean.to_dict("records")]

        ttc = self.time_to_conversion()
        return {
            "by": self.by,
            "currency": self.currency,
            "total_conversions": self.total_conversions,
            "total_value": self.total_value,
            "journeys": self.journeys,
            "unattributed_conversions": self.unattributed,
            "unattributed_value": self.unattributed_value,
            "options": self.options,
            "models": {m: records(f.reset_index(names="channel")) for m, f in self.credits.items()},
            "comparison": records(self.comparison.reset_index(names="channel")),
            "disagreements": self.disagreements(),
            "skipped": self.skipped,
            "calibrated": {
                m: records(f.reset_index(names="channel")) for m, f in self.calibrated.items()
            },
            "top_paths": records(self.top_paths()),
            "path_lengths": records(self.path_lengths()),
            "time_to_conversion": records(ttc),
        }


def attribute(
    source: Workspace | PathSet | str | Path | pd.DataFrame,
    models: str | Sequence[str] = "all",
    *,
    by: CreditBy = "conversions",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    lookback_days: float | None = None,
    conversion_window_days: float | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    granularity: Granularity = "channel",
    costs: Mapping[str, float] | None = None,
    incrementality: pd.DataFrame | str | Path | None = None,
) -> AttributionResult:
    """Run attribution models on ``source`` and return their credits side by side.

    ``source`` is a :class:`~mixwise.Workspace` (its ``touchpoints``/``conversions`` tables;
    costs from its ``media`` spend), a :class:`PathSet`, or a ChannelAttribution-style path
    file or frame. ``models`` is ``"all"`` or a list of registered names (see
    ``mixwise.attribution.models.MODELS``); ``params`` gives per-model settings, e.g.
    ``{"markov": {"order": 3}, "time_decay": {"half_life_days": 3}}``.

    ``incrementality`` (a frame or CSV with ``channel, factor[, lower, upper, source]``: the
    share of a channel's attributed conversions that is truly incremental, from an experiment
    or the marketing mix model) adds calibrated credits, CPA and ROAS with intervals beside
    every model's (``result.calibrated``).
    """
    if by not in ("conversions", "value"):
        raise ValueError("by must be 'conversions' or 'value'")
    params = dict(params or {})
    names = _model_names(models)
    unknown = [m for m in params if m not in MODELS]
    if unknown:
        raise ValueError(f"params for unknown model(s): {', '.join(unknown)}")
    touches: ConvertingTouches | None = None
    journeys: int | None = None
    unattributed, unattributed_value = 0, 0.0
    currency: str | None = None
    opts = JourneyOptions(lookback_days, conversion_window_days, start, end, granularity)
    cost_scale = 1.0
    if isinstance(source, PathSet):
        paths = source
    elif isinstance(source, str | Path | pd.DataFrame):
        paths = load_paths(source)
    else:
        ws = source
        w = ws.warehouse
        with w.locked():  # one piece of work on the shared connection (web threads)
            reduction = reduce_journeys(
                w.expr("touchpoints"), w.expr("conversions"), w.expr("leads"), opts
            )
        paths, touches = reduction.paths, reduction.touches
        journeys = reduction.journeys
        unattributed, unattributed_value = reduction.unattributed, reduction.unattributed_value
        currency = ws.currency
        if costs is None:
            # Journeys may cover a sample of users (a panel); spend covers everyone, so cost is
            # scaled to the sample for CPA and ROAS to compare like with like.
            cost_scale = float(ws.get_setting("journey_sample_rate"))
            costs = {k: v * cost_scale for k, v in media_costs(ws, start, end, granularity).items()}
    factors = read_incrementality(incrementality) if incrementality is not None else None
    credits: dict[str, pd.DataFrame] = {}
    calibrated: dict[str, pd.DataFrame] = {}
    skipped: dict[str, str] = {}
    for name in names:
        model = get_model(name, **dict(params.get(name, {})))
        if model.needs_timing and touches is None:
            reason = "needs touch timestamps; a path file has none"
            if models == "all":
                skipped[name] = reason
                continue
            raise ValueError(f"model {name!r} {reason}")
        fitted = model.fit(paths, touches)
        credits[name] = credit_table(fitted.credits_, by, costs)
        if factors is not None:
            calibrated[name] = calibrate(fitted.credits_, factors, costs)
    return AttributionResult(
        credits=credits,
        by=by,
        total_conversions=float(paths.conversions.sum()),
        total_value=float(paths.value.sum()),
        journeys=journeys,
        unattributed=unattributed,
        unattributed_value=unattributed_value,
        paths=paths,
        touches=touches,
        currency=currency,
        skipped=skipped,
        calibrated=calibrated,
        options={
            "lookback_days": lookback_days,
            "conversion_window_days": conversion_window_days,
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
            "granularity": granularity,
            "cost_scale": cost_scale,
            "params": {k: dict(v) for k, v in params.items()},
        },
    )


def credit_table(
    credits: pd.DataFrame, by: CreditBy, costs: Mapping[str, float] | None
) -> pd.DataFrame:
    """Credits with share, cost, CPA and ROAS. Unknown cost → CPA and ROAS unknown (NaN)."""
    out = credits[["conversions", "value"]].astype("float64").copy()
    total = out[by].sum()
    out["share"] = out[by] / total if total > 0 else np.nan
    cost = pd.Series({c: (costs or {}).get(c, np.nan) for c in out.index}, dtype="float64")
    out["cost"] = cost
    out["cpa"] = (cost / out["conversions"]).where(out["conversions"] > 0)
    out["roas"] = (out["value"] / cost).where(cost > 0)
    return out


def media_costs(
    ws: Workspace, start: dt.date | None, end: dt.date | None, granularity: Granularity
) -> dict[str, float]:
    """Spend per channel (or ``channel:campaign``) from the workspace's media table."""
    return ws.warehouse.spend_totals(start, end, by_campaign=granularity == "campaign")


def _model_names(models: str | Sequence[str]) -> list[str]:
    if models == "all":
        return list(MODELS)
    names = [models] if isinstance(models, str) else list(models)
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; models are: {', '.join(MODELS)}")
    return names
