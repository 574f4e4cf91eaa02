"""Fitting the marketing mix model, judging the fit, and what it says per channel.

    from mixwise.mmm import MMM, MMMData

    data = MMMData.from_wide_csv("weekly.csv", date="date", kpi="revenue",
                                 channels=["tv", "search", "social"])
    mmm = MMM(chains=4, draws=1000).fit(data)
    mmm.verdict_.usable, mmm.verdict_.message    # "usable" / "do not use: ..."
    mmm.roi_                                    # per channel: mean, median, 5 % and 95 %
    mmm.contributions()                         # per period: baseline and every channel

``method="nuts"`` (default) samples the posterior with NUTS, chains in parallel where the
machine has a core per chain (vectorised otherwise). ``method="map"`` is the **fast mode**:
the posterior mode by optimisation with a Laplace approximation around it — seconds instead
of a minute, fine for exploring, labelled as such in every output, and never "usable" for
the optimizer (it has no convergence diagnostics).

The verdict: a NUTS fit is usable when every R-hat ≤ ``max_rhat`` (1.01), every effective
sample size ≥ ``min_ess`` (400) and at most ``max_divergent_share`` (0.1 %, 4 of 4 × 1000) of
the transitions diverged; otherwise it says what failed and what to try. A usable fit with a
few divergences says how many. Every estimate comes with a 90 % interval (the 5 % and 95 %
posterior quantiles).

Progress: ``fit(data, on_progress=callback)`` calls ``callback(phase, fraction)`` as the fit
goes — ``"preparing"``, ``"sampling"`` (fraction: the share of all chains' warm-up and
sampling iterations done), ``"summarising"``, ``"done"``; the fast mode reports
``"fitting"``, ``"summarising"``, ``"done"``. NumPyro has no progress callback, so while such
a fit runs its progress bars are replaced by counters (see :func:`_reporting_progress`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mixwise.mmm.data import PERIOD_DAYS, MMMData
from mixwise.mmm.devices import request_host_devices
from mixwise.mmm.features import BaselineSpec, baseline_design
from mixwise.mmm.model import ModelInputs
from mixwise.mmm.transforms import Adstock, Saturation, get_adstock, get_saturation

FloatArray = npt.NDArray[np.float64]
Method = Literal["nuts", "map"]
ProgressCallback = Callable[[str, float], None]
_INTERVAL = (0.05, 0.95)
# A channel whose posterior ROI interval is at least this share of its prior's (log widths)
# has learnt little from the data: its ROI is reported with a note that it is mostly prior.
PRIOR_DOMINATED = 0.7


@dataclass(frozen=True)
class LiftTest:
    """An experiment's result: ``channel`` over ``start`` … ``end`` (inclusive period starts)
    caused ``incremental`` KPI units, with standard error ``se``."""

    channel: str
    start: str
    end: str
    incremental: float
    se: float

    def __post_init__(self) -> None:
        if not self.se > 0:
            raise ValueError(f"lift test on {self.channel}: se must be > 0, got {self.se}")


@dataclass(frozen=True)
class Diagnostics:
    max_rhat: float
    min_ess: float
    divergences: int
    draws: int
    chains: int
    worst: str  # the parameter with the highest R-hat


@dataclass(frozen=True)
class Verdict:
    usable: bool
    message: str


@dataclass
class MMM:
    """A Bayesian marketing mix model (configuration only; :meth:`fit` does the work)."""

    adstock: str = "geometric"
    saturation: str = "hill"
    adstock_options: dict[str, Any] = field(default_factory=dict)
    saturation_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"slope_sd": 0.01}
    baseline: BaselineSpec = field(default_factory=BaselineSpec)
    synergies: Sequence[tuple[str, str]] = ()
    roi_prior: dict[str, tuple[float, float]] = field(default_factory=dict)  # median, sigma
    lift_tests: Sequence[LiftTest] = ()
    method: Method = "nuts"
    chains: int = 4
    draws: int = 1000
    warmup: int = 1000
    target_accept: float = 0.95
    max_rhat: float = 1.01
    min_ess: float = 400.0
    max_divergent_share: float = 0.001  # divergent transitions tolerated, share of all draws
    holdout: int = 0  # last periods left out of the likelihood, to measure forecast error
    geo_pooling: Literal["partial", "complete"] = "partial"  # geo panels: ROI per geo or shared
    seed: int = 0
    progress: bool = True

    # -- fitting --------------------------------------------------------------------------
    def fit(self, data: MMMData, *, on_progress: ProgressCallback | None = None) -> MMM:
        """Fit on ``data``; sets ``samples_``, ``diagnostics_``, ``verdict_``, ``roi_``.

        ``on_progress(phase, fraction)``, if given, is told how far the fit is (see the module
        docstring); the terminal progress bar is then off. It may be called from another
        thread (NumPyro's parallel chains report from XLA's callback threads) and should
        return quickly.
        """
        report: ProgressCallback = on_progress or _no_progress
        report("fitting" if self.method == "map" else "preparing", 0.0)
        # One XLA host device per chain, so chains run in parallel threads; this only takes
        # effect before JAX's first computation in the process (later: chains vectorised).
        request_host_devices(max(self.chains, 1))
        import jax

        from mixwise.mmm.model import integrates_geo_roi, media_model

        self.data_ = data
        self.run_id_: int | None = None  # set when stored or reloaded (mmm/runs.py)
        self.adstock_: Adstock = get_adstock(self.adstock, **self._adstock_options(data))
        self.saturation_: Saturation = get_saturation(self.saturation, **self.saturation_options)
        inputs, kpi = self._inputs(data)
        self.inputs_ = inputs

        def model(kpi_obs: Any = None) -> None:
            media_model(
                inputs, self.adstock_, self.saturation_, kpi_obs, geo_pooling=self.geo_pooling
            )

        key = jax.random.PRNGKey(self.seed)
        self.diagnostics_: Diagnostics | None = None
        if self.method == "nuts":
            start = integrates_geo_roi(inputs, self.geo_pooling)  # a panel: start at the mode
            dense = self._dense_block(inputs) if data.n_geos > 1 and not start else None
            self.samples_, self.diagnostics_ = _nuts(
                model, kpi, key, self, on_progress, dense, laplace_start=start
            )
            self.verdict_ = self._verdict(self.diagnostics_)
        elif self.method == "map":
            self.samples_ = _laplace(model, kpi, key, self.draws)
            report("summarising", 1.0)
            self.verdict_ = Verdict(
                False,
                "fast mode (MAP with a Laplace approximation): good for exploring; "
                "fit with NUTS before the optimizer uses it",
            )
        else:
            raise ValueError(f"method must be 'nuts' or 'map', got {self.method!r}")
        self.samples_.update(self._baseline_draws(kpi))
        self._summarise()
        report("done", 1.0)
        return self

    def _baseline_draws(self, kpi: FloatArray) -> dict[str, FloatArray]:
        """The baseline's coefficients per draw (the model integrates them out), and in a
        panel whose geo ROIs were integrated out too, each draw's geo ROIs and ``beta``."""
        from mixwise.mmm.model import integrates_geo_roi, sample_baseline, sample_geo_coefficients

        s = self.samples_
        if integrates_geo_roi(self.inputs_, self.geo_pooling):
            return sample_geo_coefficients(
                self.inputs_,
                kpi,
                np.asarray(s["saturated"]),
                np.asarray(s["roi"]),
                np.asarray(s["roi_geo_sd"]),
                np.asarray(s["synergy"]).sum(axis=3) if "synergy" in s else None,
                np.asarray(s["sigma"]),
                self.seed,
            )
        media = np.einsum(
            "ntgc,ngc->ntg",
            np.asarray(s["saturated"], dtype=np.float64),
            np.asarray(s["beta"], dtype=np.float64),
        )
        if "synergy" in s:
            media = media + np.asarray(s["synergy"], dtype=np.float64).sum(axis=3)
        return sample_baseline(self.inputs_, kpi, media, np.asarray(s["sigma"]), self.seed)

    def _inputs(self, data: MMMData) -> tuple[ModelInputs, FloatArray]:
        scaled = data.scaled()
        # Each geo's spend of a channel by that geo's mean spend of it (the channel's overall
        # mean where a geo never spent on it), each geo's KPI by its mean KPI: every geo's
        # series is O(1), so one curve per channel fits geos of any size. National data are
        # one geo, and these are the plain per-channel and KPI means.
        geo_scale = data.spend.mean(axis=0)
        geo_scale = np.where(geo_scale > 0, geo_scale, data.spend_scale[None, :])
        spend = data.spend / geo_scale
        kpi_scale = data.kpi_values.mean(axis=0)
        empty = [g for g, m in zip(data.geos, kpi_scale, strict=True) if not m > 0]
        if empty:
            raise ValueError(
                f"geo {empty[0]!r} has no {data.kpi} in any period; leave it out of the data"
            )
        kpi = data.kpi_values / kpi_scale
        base = baseline_design(data.dates, data.period_length_days, self.baseline)
        n_periods = data.n_periods
        if not 0 <= self.holdout < n_periods // 2:
            raise ValueError(f"holdout must be 0 … {n_periods // 2 - 1} periods")
        fit_mask = np.ones(n_periods)
        if self.holdout:
            fit_mask[-self.holdout :] = 0.0
        totals = (data.spend * fit_mask[:, None, None]).sum(axis=0)  # (G, C)
        kpi_total = float((data.kpi_values * fit_mask[:, None]).sum())
        # Default ROI prior: 20 % of the KPI, spread over the channels in proportion to spend.
        default = 0.2 * kpi_total / max(float(totals.sum()), 1e-12)
        median = np.array([self.roi_prior.get(c, (default, 1.0))[0] for c in data.channels])
        sigma = np.array([self.roi_prior.get(c, (default, 1.0))[1] for c in data.channels])
        unknown = set(self.roi_prior) - set(data.channels)
        if unknown:
            raise ValueError(f"roi_prior names unknown channels: {sorted(unknown)}")
        pairs = [self._channel_pair(data, a, b) for a, b in self.synergies]
        lift_channel, lift_mask, measured, se = self._lift_arrays(data)
        inputs = ModelInputs(
            spend=spend.astype(np.float32),
            trend=base.trend,
            seasonality=base.seasonality,
            holidays=base.holidays,
            controls=scaled.controls,
            spend_totals=totals,
            kpi_scale=np.asarray(kpi_scale, dtype=np.float64),
            roi_median=median,
            roi_sigma=sigma,
            synergy_pairs=np.array(pairs, dtype=np.int64).reshape(-1, 2),
            lift_channel=lift_channel,
            lift_mask=lift_mask,
            lift_measured=measured,
            lift_se=se,
            fit_mask=fit_mask,
            spend_scale=np.asarray(geo_scale, dtype=np.float64),
            interactions=bool(self.baseline.interactions),
        )
        self.holiday_names_ = base.holiday_names
        return inputs, kpi

    def _dense_block(self, inputs: ModelInputs) -> tuple[str, ...]:
        """The sites whose mass matrix NUTS adapts as one dense block in a geo panel: every
        channel's curve, ROI and synergy, and sigma (the geo ROI offsets stay diagonal).

        In a geo panel a large channel's curve parameters are pinned tightly and correlated
        (ROI, half-saturation, slope and carry-over trade off along a ridge); a diagonal mass
        matrix leaves NUTS ~65-125 leapfrog steps per draw there, and on the 40-geo benchmark
        panel the chains did not converge. With this block: ~31 steps, and they converge
        (benchmarks/RESULTS.md). National fits keep the diagonal matrix: ~35 steps already.
        Panels whose geo ROIs are integrated out start from a Laplace approximation instead
        (:func:`_laplace_start`).
        """
        names = [*self.adstock_.param_names, *self.saturation_.param_names, "roi", "sigma"]
        if len(inputs.synergy_pairs):
            names.append("kappa")
        return tuple(names)

    @staticmethod
    def _channel_pair(data: MMMData, a: str, b: str) -> tuple[int, int]:
        for name in (a, b):
            if name not in data.channels:
                raise ValueError(f"synergy pair names unknown channel {name!r}")
        if a == b:
            raise ValueError(f"a synergy pair needs two channels, got {a!r} twice")
        return data.channels.index(a), data.channels.index(b)

    def _lift_arrays(
        self, data: MMMData
    ) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray, FloatArray]:
        channels, masks, measured, se = [], [], [], []
        for test in self.lift_tests:
            if test.channel not in data.channels:
                raise ValueError(f"lift test names unknown channel {test.channel!r}")
            inside = (data.dates >= pd.Timestamp(test.start)) & (
                data.dates <= pd.Timestamp(test.end)
            )
            if not inside.any():
                raise ValueError(
                    f"lift test on {test.channel} ({test.start} … {test.end}) covers no period "
                    f"of the data ({data.dates[0].date()} … {data.dates[-1].date()})"
                )
            channels.append(data.channels.index(test.channel))
            masks.append(inside.astype(np.float64))
            measured.append(test.incremental)
            se.append(test.se)
        n = data.n_periods
        return (
            np.array(channels, dtype=np.int64),
            np.array(masks, dtype=np.float64).reshape(-1, n),
            np.array(measured, dtype=np.float64),
            np.array(se, dtype=np.float64),
        )

    def _adstock_options(self, data: MMMData) -> dict[str, Any]:
        """``adstock_options`` with what the data decide filled in: a geometric carry-over
        decays per day within each period (``steps`` = days per period, 7 for weekly data)
        unless the options say otherwise."""
        options = dict(self.adstock_options)
        if self.adstock == "geometric":
            options.setdefault("steps", PERIOD_DAYS[data.frequency])
        return options

    def _verdict(self, d: Diagnostics) -> Verdict:
        problems = []
        if not np.isfinite(d.max_rhat):
            problems.append(f"chains did not converge (a chain never moved: {d.worst})")
        elif not d.max_rhat <= self.max_rhat:
            problems.append(
                f"chains did not converge (R-hat {d.max_rhat:.3f} > {self.max_rhat} on {d.worst})"
            )
        if not d.min_ess >= self.min_ess:
            problems.append(f"too few effective draws ({d.min_ess:.0f} < {self.min_ess:.0f})")
        draws = max(d.draws * d.chains, 1)
        tolerated = self.max_divergent_share * draws
        share = f"{d.divergences / draws:.2%} of the draws"
        divergent = f"{d.divergences} divergent transition{'' if d.divergences == 1 else 's'}"
        if d.divergences > tolerated:
            problems.append(f"{divergent} ({share}, more than {self.max_divergent_share:.1%})")
        if not problems:
            if d.divergences:
                return Verdict(
                    True,
                    f"usable ({divergent}, {share}: within the "
                    f"{self.max_divergent_share:.1%} tolerated)",
                )
            return Verdict(True, "usable")
        advice = (
            "try more warmup and draws (--warmup, --draws), a higher target_accept, "
            "fewer channels or controls, or informative ROI priors"
        )
        return Verdict(False, "do not use: " + "; ".join(problems) + f" — {advice}")

    # -- results --------------------------------------------------------------------------
    def _summarise(self) -> None:
        data = self.data_
        s = self.samples_
        inputs = self.inputs_
        mask = inputs.fit_mask
        # Contribution of each channel over the fitted periods, in KPI units (all geos).
        contrib = self._channel_contributions()  # (draws, T, C)
        total = (contrib * mask[None, :, None]).sum(axis=1)
        # ROI = contribution / spend over the fitted periods: the sampled ``roi`` for national
        # data (beta is defined from it), the spend-weighted mean of the geos' ROIs for geos.
        spend = np.asarray(inputs.spend_totals, dtype=np.float64).sum(axis=0)
        self.roi_ = _interval_frame(total / np.maximum(spend, 1e-12)[None, :], data.channels)
        self.roi_.index.name = "channel"
        self.contribution_ = _interval_frame(total, data.channels)
        self.roi_by_geo_ = self._roi_by_geo()
        self.marginal_roi_ = _interval_frame(self._marginal_roi(), data.channels)
        if len(inputs.synergy_pairs):
            syn = np.einsum(
                "ntgp,g->ntp", np.asarray(s["synergy"], dtype=np.float64), inputs.kpi_scale
            )
            names = [f"{data.channels[a]} × {data.channels[b]}" for a, b in inputs.synergy_pairs]
            self.synergy_ = _interval_frame((syn * mask[None, :, None]).sum(axis=1), names)
        else:
            self.synergy_ = pd.DataFrame(columns=["mean", "median", "lower", "upper"])
        self.identification_ = self._identification()
        self.notes_ = _identification_notes(self.identification_)

    def _roi_by_geo(self) -> pd.DataFrame:
        """Each geo's ROI per channel (a panel; empty for national data): its contribution
        over the fitted periods / its spend, with the 90 % interval, and the spend; rows
        ``(geo, channel)``, geos by their total spend, largest first. With partial pooling a
        geo's ROI is its own draw around the channel's; with complete pooling every geo has
        the channel's ROI."""
        data, inputs = self.data_, self.inputs_
        if data.n_geos < 2:
            return pd.DataFrame(
                columns=["mean", "median", "lower", "upper", "spend"],
                index=pd.MultiIndex.from_tuples([], names=["geo", "channel"]),
            )
        s = self.samples_
        mask = np.asarray(inputs.fit_mask, dtype=np.float64)
        sat = np.einsum("ntgc,t->ngc", np.asarray(s["saturated"], dtype=np.float64), mask)
        beta = np.asarray(s["beta"], dtype=np.float64) * inputs.kpi_scale[None, :, None]
        spend = np.asarray(inputs.spend_totals, dtype=np.float64)  # (G, C)
        roi = sat * beta / np.maximum(spend, 1e-12)[None]  # (draws, G, C)
        lower, upper = np.quantile(roi, _INTERVAL, axis=0)
        order = np.argsort(-spend.sum(axis=1), kind="stable")
        rows = [
            (data.geos[g], data.channels[c], roi[:, g, c].mean(), np.median(roi[:, g, c]),
             lower[g, c], upper[g, c], spend[g, c])
            for g in order
            for c in range(len(data.channels))
        ]  # fmt: skip
        frame = pd.DataFrame(
            rows, columns=["geo", "channel", "mean", "median", "lower", "upper", "spend"]
        )
        return frame.set_index(["geo", "channel"])

    def _identification(self) -> pd.DataFrame:
        """Per channel, how much the data say about its ROI.

        ``prior_width_share``: the posterior's 90 % interval of the ROI over the prior's, on the
        log scale (1: the data taught nothing; 0: they pinned it). ``min_spend_share``: the
        lowest national spend of a fitted period over the channel's average; ``off_share``: the
        share of fitted periods it spent under 10 % of its average. A channel that never
        stops has an ROI (return against *no* spend) that the data can only extrapolate.
        """
        from scipy.stats import norm

        inputs = self.inputs_
        z = float(norm.ppf(_INTERVAL[1]) - norm.ppf(_INTERVAL[0]))
        prior = z * np.asarray(inputs.roi_sigma, dtype=np.float64)
        roi = self.roi_
        posterior = np.log(np.maximum(roi["upper"].to_numpy(), 1e-300)) - np.log(
            np.maximum(roi["lower"].to_numpy(), 1e-300)
        )
        fitted = np.asarray(inputs.fit_mask) > 0
        spend = self.data_.spend.sum(axis=1)[fitted]  # (T, C) national money
        mean = np.maximum(spend.mean(axis=0), 1e-300)
        frame = pd.DataFrame(
            {
                "prior_width_share": posterior / np.maximum(prior, 1e-12),
                "min_spend_share": spend.min(axis=0) / mean,
                "off_share": (spend < 0.1 * mean).mean(axis=0),
            },
            index=pd.Index(self.data_.channels, name="channel"),
        )
        frame["measured"] = frame["prior_width_share"] < PRIOR_DOMINATED
        return frame

    def _channel_contributions(self) -> FloatArray:
        """Per draw, period and channel, summed over geos, in KPI units: (draws, T, C)."""
        s = self.samples_
        sat = np.asarray(s["saturated"], dtype=np.float64)  # (N, T, G, C)
        beta = np.asarray(s["beta"], dtype=np.float64) * self.inputs_.kpi_scale[None, :, None]
        return np.einsum("ntgc,ngc->ntc", sat, beta)

    def _marginal_roi(self, step: float = 0.01) -> FloatArray:
        """Extra KPI per extra unit of spend for a 1 % larger spend series (per draw)."""
        import jax
        import jax.numpy as jnp

        s = self.samples_
        a_names, s_names = self.adstock_.param_names, self.saturation_.param_names
        spend = jnp.asarray(self.inputs_.spend)
        mask = jnp.asarray(self.inputs_.fit_mask)

        def media_total(scale: float, *values: jax.Array) -> jax.Array:
            ap = dict(zip(a_names, values[: len(a_names)], strict=True))
            sp = dict(zip(s_names, values[len(a_names) :], strict=True))
            sat = self.saturation_.apply(self.adstock_.apply(spend * scale, **ap), **sp)
            return jnp.sum(sat * mask[:, None, None], axis=0)  # (G, C)

        params = [jnp.asarray(s[n]) for n in (*a_names, *s_names)]
        base = jax.vmap(lambda *v: media_total(1.0, *v))(*params)
        more = jax.vmap(lambda *v: media_total(1.0 + step, *v))(*params)
        beta = np.asarray(s["beta"], dtype=np.float64) * self.inputs_.kpi_scale[None, :, None]
        extra = ((np.asarray(more) - np.asarray(base)) * beta).sum(axis=1)  # (N, C)
        spend_totals = np.asarray(self.inputs_.spend_totals, dtype=np.float64).sum(axis=0)
        return extra / (step * spend_totals[None, :])

    def contributions(self) -> pd.DataFrame:
        """Per period: the KPI, the fitted baseline and each channel's contribution (posterior
        means, KPI units, summed over geos), and whether the period was held out."""
        data = self.data_
        contrib = self._channel_contributions().mean(axis=0)
        base = np.asarray(self.samples_["baseline"], dtype=np.float64).mean(axis=0)  # (T, G)
        frame = pd.DataFrame(contrib, index=data.dates, columns=list(data.channels))
        frame.insert(0, "baseline", base @ self.inputs_.kpi_scale)
        frame.insert(0, "kpi", data.kpi_values.sum(axis=1))
        frame["holdout"] = self.inputs_.fit_mask == 0
        frame.index.name = "date"
        return frame

    def summary(self) -> dict[str, Any]:
        """Everything a report or ``--json`` prints."""
        d = self.diagnostics_
        return {
            "method": self.method,
            "verdict": {"usable": self.verdict_.usable, "message": self.verdict_.message},
            # JSON has no infinity: a chain that never moved reports R-hat and ESS as null
            "diagnostics": None
            if d is None
            else {
                k: None if isinstance(v, float) and not np.isfinite(v) else v
                for k, v in d.__dict__.items()
            },
            "data": {
                "source": self.data_.source,
                "periods": self.data_.n_periods,
                "frequency": self.data_.frequency,
                "start": str(self.data_.dates[0].date()),
                "end": str(self.data_.dates[-1].date()),
                "kpi": self.data_.kpi,
                "currency": self.data_.currency,
            },
            "interval": list(_INTERVAL),
            "roi": _records(self.roi_),
            "marginal_roi": _records(self.marginal_roi_),
            "contribution": _records(self.contribution_),
            "synergy": _records(self.synergy_),
            # a panel: geo -> channel -> ROI with its interval and the geo's spend ({}: national)
            "roi_by_geo": {
                str(geo): _records(part.droplevel("geo"))
                for geo, part in self.roi_by_geo_.groupby(level="geo", sort=False)
            },
            "identification": {
                str(ch): {
                    "prior_width_share": float(row["prior_width_share"]),
                    "min_spend_share": float(row["min_spend_share"]),
                    "off_share": float(row["off_share"]),
                    "measured": bool(row["measured"]),
                }
                for ch, row in self.identification_.iterrows()
            },
            "notes": list(self.notes_),
        }


# -- samplers ---------------------------------------------------------------------------------
def _no_progress(phase: str, fraction: float) -> None:
    """The progress callback of a fit nobody watches."""


def _nuts(
    model: Any,
    kpi: FloatArray,
    key: Any,
    cfg: MMM,
    on_progress: ProgressCallback | None = None,
    dense: tuple[str, ...] | None = None,
    *,
    laplace_start: bool = False,
) -> tuple[dict[str, Any], Diagnostics]:
    """NUTS; ``dense`` names sites whose mass matrix is adapted as one dense block.

    ``laplace_start``: every chain starts at a draw from the Laplace approximation at the
    posterior mode, with the approximation's covariance as the initial dense mass matrix
    (adapted from there as usual): see :func:`_laplace_start`."""
    import jax
    from numpyro.diagnostics import summary
    from numpyro.infer import MCMC, NUTS

    parallel = jax.local_device_count() >= cfg.chains
    init_params = None
    kernel_options: dict[str, Any] = {"dense_mass": [dense] if dense else False}
    if laplace_start:
        key, start_key = jax.random.split(key)
        init_params, names, cov = _laplace_start(model, kpi, start_key, cfg.chains)
        kernel_options = {
            "dense_mass": [names],
            "inverse_mass_matrix": {names: cov},
        }
    mcmc = MCMC(
        NUTS(model, target_accept_prob=cfg.target_accept, **kernel_options),
        num_warmup=cfg.warmup,
        num_samples=cfg.draws,
        num_chains=cfg.chains,
        chain_method="parallel" if parallel else "vectorized",
        progress_bar=cfg.progress and on_progress is None,
    )
    if on_progress is None:
        mcmc.run(key, kpi_obs=kpi, extra_fields=("diverging",), init_params=init_params)
    else:
        # NumPyro turns its bars off when $CI is set; the counters need them on.
        mcmc.progress_bar = True
        counter = _Progress(on_progress, cfg.chains * (cfg.warmup + cfg.draws), cfg.chains)
        with _reporting_progress(counter):
            mcmc.run(key, kpi_obs=kpi, extra_fields=("diverging",), init_params=init_params)
            # Parallel chains run asynchronously: wait for their last progress callbacks.
            jax.block_until_ready(mcmc.last_state)
        on_progress("summarising", 1.0)
    grouped = mcmc.get_samples(group_by_chain=True)
    free = [k for k in grouped if k not in _DETERMINISTIC]
    stats = summary({k: grouped[k] for k in free}, group_by_chain=True)
    # A chain that never moved has no variance: its R-hat and ESS are NaN. It did not converge.
    rhat = {k: float(np.nan_to_num(v["r_hat"], nan=np.inf).max()) for k, v in stats.items()}
    ess = {k: float(np.nan_to_num(v["n_eff"], nan=0.0).min()) for k, v in stats.items()}
    worst = max(rhat, key=lambda k: rhat[k])
    diverging = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    diag = Diagnostics(
        max_rhat=rhat[worst],
        min_ess=min(ess.values()),
        divergences=diverging,
        draws=cfg.draws,
        chains=cfg.chains,
        worst=worst,
    )
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}, diag


_DETERMINISTIC = {"saturated", "beta", "synergy"}  # the model's derived sites
LAPLACE_STEPS = 1500  # Adam steps to the posterior mode before a Laplace start
LAPLACE_MIN_CURVATURE = 1e-2  # the Hessian's eigenvalues are clipped here (posterior sd <= 10)


def _laplace_start(
    model: Any, kpi: FloatArray, key: Any, chains: int
) -> tuple[dict[str, Any], tuple[str, ...], Any]:
    """Chains' starting points and a mass matrix from the Laplace approximation at the mode.

    Adam (``LAPLACE_STEPS``, in one compiled loop) finds the mode of the potential on the
    unconstrained space; the Hessian there, its eigenvalues clipped at
    ``LAPLACE_MIN_CURVATURE``, gives the covariance; each chain starts at its own draw from
    that Normal. Returns ``(init_params, site names, covariance)`` (init_params with a
    leading chain axis when ``chains`` > 1),
    the covariance in the order of ``names`` (sorted, as the flattened dict of sites).

    Why: with the geo ROIs integrated out, a geo panel's sampler sees ~25 parameters, some
    pinned to posterior sds of ~0.005 (a large channel's ROI and carry-over, ``sigma``). From
    NumPyro's random start with an identity mass matrix its first adaptation window took
    ~900 leapfrog steps per iteration at 40 geos (~1 s each); from a Laplace draw with the
    Laplace matrix, ~18-35 from the first iteration (``benchmarks/RESULTS.md``). After the
    first window NumPyro re-estimates the matrix from the chain as usual: at 4 × 1000 + 1000
    that mixed a little better than holding the Laplace matrix fixed
    (min ESS 324 vs 289 at 40 geos); in 150-iteration warm-ups the short windows' estimates
    were worse than the Laplace matrix.
    """
    import jax
    import jax.numpy as jnp
    import numpyro.optim
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    init_key, draw_key = jax.random.split(key)
    info = initialize_model(init_key, model, model_kwargs={"kpi_obs": kpi})
    start = dict(sorted(info.param_info.z.items()))
    flat, unravel = ravel_pytree(start)

    def potential(x: Any) -> Any:
        return info.potential_fn(unravel(x))

    adam = numpyro.optim.Adam(0.05)

    @jax.jit
    def find_mode(x: Any) -> Any:
        def step(state: Any, _: Any) -> tuple[Any, None]:
            return adam.update(jax.grad(potential)(adam.get_params(state)), state), None

        state, _ = jax.lax.scan(step, adam.init(x), None, length=LAPLACE_STEPS)
        return adam.get_params(state)

    mode = find_mode(flat)
    hessian = np.asarray(jax.jit(jax.hessian(potential))(mode), dtype=np.float64)
    values, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    if not np.all(np.isfinite(values)):
        raise ValueError("the posterior's curvature at its mode is not finite: check the data")
    values = np.maximum(values, LAPLACE_MIN_CURVATURE)
    cov = (vectors / values) @ vectors.T
    noise = np.asarray(jax.random.normal(draw_key, (chains, len(values))), dtype=np.float64)
    draws = np.asarray(mode, dtype=np.float64)[None, :] + noise @ (vectors / np.sqrt(values)).T
    init = jax.vmap(unravel)(jnp.asarray(draws, dtype=flat.dtype))
    if chains == 1:
        init = {k: v[0] for k, v in init.items()}
    return init, tuple(start), jnp.asarray(cov, dtype=flat.dtype)


# -- progress of a NUTS run ---------------------------------------------------------------------
# NumPyro 0.22 reports MCMC progress only through tqdm: one bar per chain (``tqdm_auto``, fed
# from XLA callbacks) when chains run in parallel, otherwise one Python loop over
# ``tqdm.trange`` whose every step advances all (vectorised) chains. While a fit with
# ``on_progress`` runs, both names in ``numpyro.util`` are replaced by silent bars that count.
_PATCH_LOCK = threading.Lock()  # one patched fit at a time (the patch is process-wide)


class _Progress:
    """Counts a NUTS run's iterations over all chains and reports the fraction done."""

    def __init__(self, callback: ProgressCallback, total: int, loop_weight: int) -> None:
        self.callback = callback
        self.total = max(total, 1)
        self.loop_weight = loop_weight  # iterations one step of the trange loop stands for
        self.owner = threading.get_ident()  # bars made by other threads are not this fit's
        self._lock = threading.Lock()
        self._done = 0
        self._reported: float | None = None

    def add(self, iterations: int) -> None:
        with self._lock:  # chains report from several threads; keep the fractions in order
            self._done += iterations
            fraction = min(self._done / self.total, 1.0)
            if fraction != self._reported:
                self._reported = fraction
                self.callback("sampling", fraction)


def _counting_bar(progress: _Progress, weight: int) -> type[Any]:
    from tqdm.std import tqdm as std_tqdm

    class CountingBar(std_tqdm):  # type: ignore[misc, type-arg]
        """A tqdm bar that prints nothing and forwards its counts to ``progress``."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            progress.add(int(n or 0) * weight)
            return None

        def __iter__(self) -> Iterator[Any]:
            for item in self.iterable:
                yield item
                progress.add(weight)  # the loop body ran for this item

    return CountingBar


@contextmanager
def _reporting_progress(progress: _Progress) -> Iterator[None]:
    """Within: NumPyro's bars made by this thread count into ``progress`` instead of
    printing; bars of other threads stay ordinary tqdm bars. Always restored."""
    import numpyro.util as nutil
    import tqdm as tqdm_module
    from tqdm.auto import tqdm as tqdm_auto

    bar = _counting_bar(progress, 1)
    loop_bar = _counting_bar(progress, progress.loop_weight)

    def chain_bar(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == progress.owner:
            return bar(*args, **kwargs)
        return tqdm_auto(*args, **kwargs)

    def trange(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == progress.owner:
            return loop_bar(range(*args), **kwargs)
        return tqdm_module.trange(*args, **kwargs)

    class TqdmShim:
        """Stands in for the ``tqdm`` module inside ``numpyro.util`` (only ``trange`` is used)."""

        def __getattr__(self, name: str) -> Any:
            return trange if name == "trange" else getattr(tqdm_module, name)

    with _PATCH_LOCK:
        saved = nutil.tqdm_auto, nutil.tqdm
        nutil.tqdm_auto = chain_bar  # type: ignore[assignment]
        nutil.tqdm = TqdmShim()  # type: ignore[assignment]
        try:
            yield
        finally:
            nutil.tqdm_auto, nutil.tqdm = saved


def _laplace(model: Any, kpi: FloatArray, key: Any, draws: int) -> dict[str, Any]:
    import jax
    from numpyro.infer import SVI, Predictive, Trace_ELBO
    from numpyro.infer.autoguide import AutoLaplaceApproximation
    from numpyro.optim import Adam

    guide = AutoLaplaceApproximation(model)
    svi = SVI(model, guide, Adam(0.02), Trace_ELBO())
    fit_key, draw_key = jax.random.split(key)
    result = svi.run(fit_key, 3000, kpi_obs=kpi, progress_bar=False)
    posterior = guide.sample_posterior(draw_key, result.params, sample_shape=(draws,))
    sites = sorted(_DETERMINISTIC | {"roi"})  # a panel's ROI is derived (model.py)
    predictive = Predictive(model, posterior_samples=posterior, return_sites=sites)
    derived = predictive(draw_key, kpi_obs=None)
    return {k: np.asarray(v) for k, v in {**posterior, **derived}.items()}


# -- helpers ----------------------------------------------------------------------------------
def _identification_notes(frame: pd.DataFrame) -> list[str]:
    """A sentence for every channel whose ROI is mostly its prior, saying why and what helps."""
    notes = []
    for channel, row in frame.iterrows():
        if row["measured"]:
            continue
        share = float(row["prior_width_share"])
        head = (
            f"{channel}: ROI mostly from the prior (its 90 % interval is {100 * share:.0f} % "
            "as wide as the prior's)"
        )
        if row["min_spend_share"] >= 0.2:
            notes.append(
                f"{head}; its spend never fell below {100 * row['min_spend_share']:.0f} % of its "
                "average, so the data cannot tell what no spend would give. Its marginal ROI "
                "is better measured; a lift test, or a few weeks with little or no spend, "
                "would pin the ROI."
            )
        else:
            notes.append(
                f"{head}; its effect is too small, or moves too closely with other channels "
                "or the season, to measure. A lift test would pin it."
            )
    return notes


def _interval_frame(draws: FloatArray, names: Sequence[str]) -> pd.DataFrame:
    lower, upper = np.quantile(draws, _INTERVAL, axis=0)
    return pd.DataFrame(
        {
            "mean": draws.mean(axis=0),
            "median": np.median(draws, axis=0),
            "lower": lower,
            "upper": upper,
        },
        index=pd.Index(list(names)),
    )


def _records(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {
        str(name): {str(k): float(v) for k, v in row.to_dict().items()}
        for name, row in frame.iterrows()
    }
