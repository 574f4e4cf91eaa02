"""The aggregate (daily) world: spend, controls, baseline and the noise-free outcome process.

Generative process, for geo ``g`` (one pseudo-geo when national) and day ``t``:

1. **Spend.** Each channel gets a national daily series with a pattern (TV in flights, search
   always-on with a weekly rhythm, social/video in bursts, email in weekly pulses), holiday ramps
   and noise, scaled to the channel's mean daily spend. Geo spend is the national spend split by
   population weight times a small geo jitter (renormalised, so geo spend sums to national).
   ``burn_in`` days before ``start`` are simulated too so adstock is warm on day one.
2. **Baseline.** ``b[g,t] = level * w_g * growth(t) * (1 + weekly[dow]) * (1 + yearly(t)) *
   holiday(t)`` — no media in it.
3. **Controls.** ``price_index`` (around 1), ``promotion`` (0/1) and ``competitor_activity``
   (standardised, per geo) add ``b * (price_coef * (price - 1) + promotion_coef * promotion +
   competitor_coef * competitor)``.
4. **Media.** Channel ``c`` adds ``effect_c * w_g * hill(adstock(spend_c[g]) / w_g)``; a synergy
   multiplies its target's effect by ``1 + strength * mean_s(hill_s)`` over its sources.
5. **Noise.** ``revenue = mu + noise_sd * b * eps`` with ``eps ~ N(0, 1)``. The noise does not
   depend on media, so two worlds that differ only in spend (same seed) differ in revenue by
   exactly the difference of their noise-free ``mu``.

Every random draw comes from its own stream keyed by the seed and a stable key (channel name,
purpose), so forcing a channel's spend to zero leaves every other draw unchanged.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from mixwise.simulate.config import ChannelSpec, MarketConfig
from mixwise.simulate.holidays import holiday_calendar
from mixwise.simulate.transforms import adstock, hill

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Stream purposes (part of the seed key; changing them changes every market).
_SPEND, _GEO, _MEDIA, _CAMPAIGN, _CONTROL, _NOISE, _CONV, _LEADS = range(1, 9)
_JOURNEY, _CUSTOMER, _LEAD_TABLE, _PILOT = range(20, 24)


def stable_key(text: str) -> int:
    """A stable 32-bit key for a name (``zlib.crc32``), used to key random streams."""
    return zlib.crc32(text.encode("utf-8"))


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for ``seed`` and a tuple of integer keys."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=keys)))


def _ar1(rng: np.random.Generator, n: int, phi: float, size: tuple[int, ...] = ()) -> FloatArray:
    """Stationary AR(1) with unit marginal variance along the last axis."""
    eps = rng.standard_normal((*size, n))
    out = np.empty_like(eps)
    out[..., 0] = eps[..., 0]
    scale = np.sqrt(1.0 - phi**2)
    for t in range(1, n):
        out[..., t] = phi * out[..., t - 1] + scale * eps[..., t]
    return out


def _ramp_profile(offsets: IntArray, before: int, after: int) -> FloatArray:
    """Linear ramp: 1 at offset 0, falling to 0 just outside ``[-before, after]``."""
    span = np.where(offsets < 0, before, after).astype(np.float64)
    prof = 1.0 - np.abs(offsets) / (span + 1.0)
    return np.where((offsets >= -before) & (offsets <= after), np.maximum(prof, 0.0), 0.0)


def holiday_profiles(
    config: MarketConfig, dates: list[dt.date]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Revenue multiplier, spend lift and promotion-window indicator per day."""
    n = len(dates)
    day0 = dates[0]
    cal = holiday_calendar(
        day0 - dt.timedelta(days=40),
        dates[-1] + dt.timedelta(days=40),
        extra=tuple(config.extra_holidays),
    )
    effects = {e.name: e for e in config.holiday_effects}
    rev = np.ones(n)
    spend_lift = np.zeros(n)
    promo = np.zeros(n)
    idx = np.arange(n, dtype=np.int64)
    for day, name in zip(cal["date"], cal["holiday"], strict=True):
        eff = effects.get(str(name))
        if eff is None:
            continue
        offsets = idx - (day - day0).days
        prof = _ramp_profile(offsets, eff.before, eff.after)
        rev += eff.revenue_lift * prof
        spend_lift += eff.spend_lift * prof
        if eff.revenue_lift > 0:
            promo = np.maximum(promo, ((offsets >= -eff.before) & (offsets <= 0)).astype(float))
    return np.maximum(rev, 0.05), spend_lift, promo


def spend_pattern(
    spec: ChannelSpec, dow: IntArray, spend_lift: FloatArray, rng: np.random.Generator
) -> FloatArray:
    """National daily spend of one channel (mean ``spec.spend``, strictly >= 0)."""
    n = len(dow)
    noise = np.exp(0.08 * _ar1(rng, n, 0.7) - 0.08**2 / 2)
    if spec.pattern == "always_on":
        level = np.where(dow >= 5, 0.85, 1.06)
    elif spec.pattern == "pulsed":
        level = np.where((dow == 1) | (dow == 3), 3.0, 0.5)
    elif spec.pattern == "bursty":
        level = np.full(n, 0.6)
        t = int(rng.integers(0, 20))
        while t < n:
            length = int(rng.integers(7, 15))
            level[t : t + length] = rng.uniform(1.8, 2.6)
            t += length + int(rng.integers(14, 36))
    else:  # flighted
        level = np.zeros(n)
        on = bool(rng.integers(0, 2))
        t = 0
        while t < n:
            if on:
                length = int(rng.integers(21, 43))
                level[t : t + length] = rng.lognormal(0.0, 0.15)
            else:
                length = int(rng.integers(14, 36))
            t += length
            on = not on
        if level.sum() == 0:
            level[:] = 1.0
    lift = np.maximum(1.0 + spec.holiday_sensitivity * spend_lift, 0.1)
    x = np.maximum(level * lift * noise, 0.0)
    return np.asarray(x * (spec.spend / max(float(x.mean()), 1e-12)), dtype=np.float64)


@dataclass
class MediaParts:
    """Noise-free media effects: per channel (C, G, N) and per synergy source pair (P, G, N)."""

    direct: FloatArray
    synergy: FloatArray

    @property
    def total(self) -> FloatArray:
        return np.asarray(self.direct.sum(axis=0) + self.synergy.sum(axis=0), dtype=np.float64)


class World:
    """All draws of one aggregate market. Spend is an input to the outcome functions, so
    counterfactual spend reuses every other draw."""

    def __init__(self, config: MarketConfig, seed: int) -> None:
        self.config = config
        self.seed = int(seed)
        cfg = config
        self.burn_in = cfg.burn_in
        n = cfg.burn_in + cfg.days
        self.n = n
        first = cfg.start_date - dt.timedelta(days=cfg.burn_in)
        self.all_dates = [first + dt.timedelta(days=i) for i in range(n)]
        self.dates = self.all_dates[cfg.burn_in :]
        self.channels = cfg.channel_names
        self.geo_labels: tuple[str | None, ...] = cfg.geos if cfg.geos is not None else (None,)
        g = len(self.geo_labels)
        w = np.asarray(cfg.geo_weights if cfg.geo_weights is not None else [1.0] * g, dtype=float)
        self.geo_weights = w / w.sum()

        dow = np.array([d.weekday() for d in self.all_dates], dtype=np.int64)
        doy = np.array([d.timetuple().tm_yday for d in self.all_dates], dtype=np.float64)
        rev_mult, spend_lift, promo_window = holiday_profiles(cfg, self.all_dates)
        self.holiday_multiplier = rev_mult

        # 1. Spend (C, G, N)
        national = np.stack(
            [
                spend_pattern(spec, dow, spend_lift, rng_for(seed, _SPEND, stable_key(spec.name)))
                for spec in cfg.channels
            ]
        )
        cube = np.empty((len(cfg.channels), g, n))
        for ci, spec in enumerate(cfg.channels):
            jitter = rng_for(seed, _GEO, stable_key(spec.name)).lognormal(0.0, 0.08, (g, n))
            share = self.geo_weights[:, None] * jitter
            cube[ci] = national[ci][None, :] * share / share.sum(axis=0, keepdims=True)
        self.spend = cube

        # 2. Baseline (G, N)
        t_years = (np.arange(n) - cfg.burn_in) / 365.0
        growth = (1.0 + cfg.trend) ** t_years
        weekly = 1.0 + np.asarray(cfg.weekly)[dow]
        yearly = 1.0 + cfg.yearly_amplitude * np.cos(
            2 * np.pi * (doy - cfg.yearly_peak_day) / 365.25
        )
        national_base = cfg.baseline_revenue * growth * weekly * yearly * rev_mult
        self.baseline = self.geo_weights[:, None] * national_base[None, :]

        # 3. Controls
        crng = rng_for(seed, _CONTROL)
        starts = crng.random(n) < 1.0 / 30.0
        random_promo = np.convolve(starts.astype(float), np.ones(3))[:n] > 0
        self.promotion = np.maximum(promo_window, random_promo.astype(float))
        self.price_index = 1.0 + 0.02 * _ar1(crng, n, 0.97) - 0.05 * self.promotion
        self.competitor = _ar1(crng, n, 0.95, (g,))
        self.control_effect = self.baseline * (
            cfg.price_coef * (self.price_index - 1.0)[None, :]
            + cfg.promotion_coef * self.promotion[None, :]
            + cfg.competitor_coef * self.competitor
        )

        # 5. Noise draws (G, N), independent of spend
        self.eps = rng_for(seed, _NOISE).standard_normal((g, n))
        self.conv_noise = rng_for(seed, _CONV).lognormal(0.0, 0.05, (g, n))
        self.leads_uniform = rng_for(seed, _LEADS).random((g, n))

        # Synergy pairs (target, source) in a fixed order.
        self.synergy_pairs: list[tuple[str, str, float]] = [
            (s.target, src, s.strength / len(s.sources)) for s in cfg.synergies for src in s.sources
        ]
        self._index = {name: i for i, name in enumerate(self.channels)}

    # ------------------------------------------------------------------ spend manipulation
    def channel_index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown channel {name!r}; known: {self.channels}") from None

    def modified_spend(
        self,
        switch_off: tuple[str, ...] | list[str] = (),
        scale: Mapping[str, float] | None = None,
    ) -> FloatArray:
        """A copy of the spend cube with channels zeroed and/or scaled (whole timeline)."""
        cube = self.spend.copy()
        for name in switch_off:
            cube[self.channel_index(name)] = 0.0
        for name, factor in (scale or {}).items():
            if factor < 0:
                raise ValueError("spend scale factors must be >= 0")
            cube[self.channel_index(name)] *= factor
        return cube

    # ------------------------------------------------------------------ outcome process
    def saturation(self, spend: FloatArray) -> FloatArray:
        """``hill(adstock(spend) / w_g)`` per channel, geo and day (C, G, N), in [0, 1)."""
        out = np.empty_like(spend)
        w = self.geo_weights[:, None]
        for ci, spec in enumerate(self.config.channels):
            ad = adstock(spend[ci], spec.decay, spec.peak, spec.max_lag)
            out[ci] = hill(ad / w, spec.half, spec.shape)
        return out

    def media_parts(self, spend: FloatArray) -> MediaParts:
        sat = self.saturation(spend)
        w = self.geo_weights[None, :, None]
        effects = np.array([c.effect for c in self.config.channels])[:, None, None]
        direct = effects * w * sat
        syn = np.zeros((len(self.synergy_pairs), *spend.shape[1:]))
        for k, (target, source, strength) in enumerate(self.synergy_pairs):
            ti, si = self.channel_index(target), self.channel_index(source)
            syn[k] = direct[ti] * strength * sat[si]
        return MediaParts(direct=direct, synergy=syn)

    def expected_revenue(self, spend: FloatArray | None = None) -> FloatArray:
        """Noise-free revenue ``mu`` (G, N) over the whole timeline, burn-in included."""
        parts = self.media_parts(self.spend if spend is None else spend)
        return np.asarray(self.baseline + self.control_effect + parts.total, dtype=np.float64)

    def observed_revenue(self, spend: FloatArray | None = None) -> FloatArray:
        mu = self.expected_revenue(spend)
        return np.asarray(mu + self.config.noise_sd * self.baseline * self.eps, dtype=np.float64)

    # ------------------------------------------------------------------ frames
    def _long_index(self) -> tuple[list[dt.date], list[str | None]]:
        """Date and geo columns for a (G, T) array flattened date-major."""
        g = len(self.geo_labels)
        dates = [d for d in self.dates for _ in range(g)]
        geos = list(self.geo_labels) * len(self.dates)
        return dates, geos

    def sim(self, arr: npt.NDArray[np.float64]) -> FloatArray:
        """Drop the burn-in along the last axis."""
        return np.asarray(arr[..., self.burn_in :], dtype=np.float64)

    def outcomes_frame(self, spend: FloatArray | None = None) -> pd.DataFrame:
        cfg = self.config
        mu = self.expected_revenue(spend)
        revenue = mu + cfg.noise_sd * self.baseline * self.eps
        conversions = np.maximum(np.rint(revenue / (cfg.aov * self.conv_noise)), 0)
        national_mu = mu.sum(axis=0)
        lam = cfg.leads.leads_per_day * mu / max(float(self.sim(national_mu).mean()), 1e-12)
        leads = _poisson_from_uniform(self.sim(lam), self.sim(self.leads_uniform))
        dates, geos = self._long_index()
        return pd.DataFrame(
            {
                "date": pd.Series(dates, dtype=object),
                "geo": pd.Series(geos, dtype=object),
                "revenue": self.sim(revenue).T.ravel(),
                "conversions": self.sim(conversions).T.ravel().astype(np.int64),
                "leads": leads.T.ravel().astype(np.int64),
            }
        )

    def controls_frame(self) -> pd.DataFrame:
        g = len(self.geo_labels)
        t = self.config.days
        values = {
            "price_index": np.broadcast_to(self.sim(self.price_index), (g, t)),
            "promotion": np.broadcast_to(self.sim(self.promotion), (g, t)),
            "competitor_activity": self.sim(self.competitor),
        }
        dates, geos = self._long_index()
        frames = [
            pd.DataFrame(
                {
                    "date": pd.Series(dates, dtype=object),
                    "geo": pd.Series(geos, dtype=object),
                    "name": pd.Series([name] * (g * t), dtype="str"),
                    "value": np.asarray(v, dtype=np.float64).T.ravel(),
                }
            )
            for name, v in values.items()
        ]
        out = pd.concat(frames, ignore_index=True)
        return out.sort_values(["date", "name"], kind="stable", ignore_index=True)

    def media_frame(self, spend: FloatArray | None = None) -> pd.DataFrame:
        """Long media table: one row per (date, channel, geo, campaign), zero-spend rows kept."""
        cube = self.spend if spend is None else spend
        cfg = self.config
        g, t = len(self.geo_labels), cfg.days
        parts: dict[str, list[npt.NDArray[np.generic]]] = {
            k: [] for k in ("channel", "geo", "campaign", "spend", "impressions", "clicks", "t")
        }
        tt = np.broadcast_to(np.arange(t), (g, t))
        gg = np.broadcast_to(np.arange(g)[:, None], (g, t))
        for ci, spec in enumerate(cfg.channels):
            x = self.sim(cube[ci])  # (G, T)
            k = len(spec.campaigns)
            crng = rng_for(self.seed, _CAMPAIGN, stable_key(spec.name))
            raw = np.asarray(spec.campaign_shares)[:, None, None] * crng.lognormal(
                0.0, 0.1, (k, g, t)
            )
            shares = raw / raw.sum(axis=0, keepdims=True)
            mrng = rng_for(self.seed, _MEDIA, stable_key(spec.name))
            imp_noise = mrng.lognormal(0.0, 0.1, (k, g, t))
            ctr_noise = mrng.lognormal(0.0, 0.1, (k, g, t))
            spend_k = x[None] * shares
            impressions = np.rint(spend_k / spec.cpm * 1000.0 * imp_noise)
            clicks = mrng.poisson(impressions * spec.ctr * ctr_noise)
            for ki in range(k):
                parts["channel"].append(np.full(g * t, ci))
                parts["campaign"].append(np.full(g * t, ki))
                parts["geo"].append(gg.ravel())
                parts["t"].append(tt.ravel())
                parts["spend"].append(spend_k[ki].ravel())
                parts["impressions"].append(impressions[ki].ravel())
                parts["clicks"].append(clicks[ki].ravel())
        cols = {k: np.concatenate(v) for k, v in parts.items()}
        order = np.lexsort((cols["campaign"], cols["geo"], cols["channel"], cols["t"]))
        cols = {k: v[order] for k, v in cols.items()}
        offsets = np.cumsum([0] + [len(s.campaigns) for s in cfg.channels])[:-1]
        camp_idx = offsets[cols["channel"]] + cols["campaign"]
        camp_labels = np.array([c for s in cfg.channels for c in s.campaigns], dtype=object)
        dates_arr = np.array(self.dates, dtype=object)
        geo_arr = np.array(self.geo_labels, dtype=object)
        chan_arr = np.array(self.channels, dtype=object)
        date_col = dates_arr[cols["t"]]
        return pd.DataFrame(
            {
                "date": pd.Series(date_col, dtype=object),
                "channel": pd.Series(chan_arr[cols["channel"]], dtype="str"),
                "geo": pd.Series(geo_arr[cols["geo"]], dtype=object),
                "campaign": pd.Series(camp_labels[camp_idx], dtype="str"),
                "spend": cols["spend"].astype(np.float64),
                "impressions": cols["impressions"].astype(np.int64),
                "clicks": cols["clicks"].astype(np.int64),
                "currency": pd.Series([cfg.currency] * len(date_col), dtype="str"),
            }
        )


def _poisson_from_uniform(lam: FloatArray, u: FloatArray) -> IntArray:
    """Poisson quantile of fixed uniforms (so the draws are shared across counterfactuals)."""
    from scipy.stats import poisson

    return np.asarray(poisson.ppf(u, np.maximum(lam, 0.0)), dtype=np.float64).astype(np.int64)
