"""The NumPyro model: a KPI explained by a baseline and saturating, carried-over media.

For period ``t`` (data scaled to O(1): the KPI divided by its mean, each channel's spend by its
mean, controls standardised)::

    kpi[t] ~ Normal(mu[t], sigma)
    mu[t]  = intercept + slope * trend[t] + seasonality[t] @ gamma + holidays[t] @ eta
             + controls[t] @ delta
             + sum_c beta_c * s[t, c]                         (media)
             + sum_(a,b) kappa_ab * s[t, a] * s[t, b]         (synergy between chosen pairs)
    s[t, c] = saturation_c(adstock_c(spend[:, c]))[t]

**ROI priors.** ``beta_c`` is not given a prior directly: the channel's return on investment
is. With ``S_c = sum_t s[t, c]`` and total spend ``X_c`` (original units), the channel's
contribution ``kpi_scale * beta_c * S_c`` divided by ``X_c`` is its ROI, so::

    roi_c ~ LogNormal(log(median_c), sigma_c)
    beta_c = roi_c * X_c / (kpi_scale * S_c)

This is the parametrisation Meridian popularised: a marketer can say "search returns about
3 per 1 spent, give or take" and the prior means exactly that whatever the saturation and
adstock parameters do; and an experiment's result lands on the same scale. The default median
spreads 20 % of the KPI over the channels in proportion to spend (a weak, data-scaled prior:
``sigma`` 1.0 on the log scale).

**Lift tests** (calibration). A test of channel ``c`` over periods ``P`` that measured an
incremental KPI ``m`` with standard error ``se`` adds ``m ~ Normal(kpi_scale * sum_{t in P}
(beta_c s[t, c] + synergies involving c), se)`` to the likelihood: the channel's
contribution over the test, as the model sees it, must match the experiment.

**Synergy** gains are reported in KPI units: ``kpi_scale * sum_t kappa_ab s[t, a] s[t, b]``,
the joint effect minus the sum of the single effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import numpyro
import numpyro.distributions as dist

from mixwise.mmm.transforms import Adstock, Saturation

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModelInputs:
    """Everything the model function needs, as arrays (scaled units unless said)."""

    spend: FloatArray  # (T, C), each channel divided by its mean spend
    trend: FloatArray  # (T,)
    seasonality: FloatArray  # (T, S)
    holidays: FloatArray  # (T, H)
    controls: FloatArray  # (T, K), standardised
    spend_totals: FloatArray  # (C,) total spend of the fitted periods, original units
    kpi_scale: float
    roi_median: FloatArray  # (C,)
    roi_sigma: FloatArray  # (C,)
    synergy_pairs: npt.NDArray[np.int64]  # (P, 2) channel indices
    lift_channel: npt.NDArray[np.int64]  # (L,)
    lift_mask: FloatArray  # (L, T) 1 inside the test's periods
    lift_measured: FloatArray  # (L,) original KPI units
    lift_se: FloatArray  # (L,) original KPI units
    fit_mask: FloatArray  # (T,) 1 for the periods the likelihood sees (0: holdout)


def media_model(
    inputs: ModelInputs, adstock: Adstock, saturation: Saturation, kpi: FloatArray | None
) -> None:
    """The NumPyro model (see the module docstring); ``kpi`` None samples the predictive."""
    n_periods, n_channels = inputs.spend.shape
    spend = jnp.asarray(inputs.spend)

    params = {}
    for name, prior in {**adstock.priors(n_channels), **saturation.priors(n_channels)}.items():
        params[name] = numpyro.sample(name, prior)
    adstock_params = {k: params[k] for k in adstock.param_names}
    saturation_params = {k: params[k] for k in saturation.param_names}
    saturated = saturation.apply(adstock.apply(spend, **adstock_params), **saturation_params)
    numpyro.deterministic("saturated", saturated)

    roi = numpyro.sample(
        "roi", dist.LogNormal(jnp.log(inputs.roi_median), inputs.roi_sigma).to_event(1)
    )
    fitted_mask = jnp.asarray(inputs.fit_mask)
    sums = jnp.sum(saturated * fitted_mask[:, None], axis=0)
    beta = numpyro.deterministic(
        "beta", roi * inputs.spend_totals / (inputs.kpi_scale * jnp.maximum(sums, 1e-9))
    )
    media = saturated * beta

    pairs = jnp.asarray(inputs.synergy_pairs)
    if len(inputs.synergy_pairs):
        kappa = numpyro.sample(
            "kappa", dist.Normal(0.0, 0.5).expand([len(inputs.synergy_pairs)]).to_event(1)
        )
        joint = saturated[:, pairs[:, 0]] * saturated[:, pairs[:, 1]] * kappa
        numpyro.deterministic("synergy", joint)
        synergy_total = jnp.sum(joint, axis=1)
    else:
        joint = jnp.zeros((n_periods, 0))
        synergy_total = jnp.zeros(n_periods)

    intercept = numpyro.sample("intercept", dist.Normal(0.6, 0.5))
    slope = numpyro.sample("trend", dist.Normal(0.0, 0.5))
    # The trend is centred on the fitted periods, so the intercept is the mean level and does
    # not trade off against the slope (which made the two the worst-mixing parameters).
    trend = jnp.asarray(inputs.trend)
    centre = jnp.sum(trend * fitted_mask) / jnp.maximum(jnp.sum(fitted_mask), 1.0)
    baseline = intercept + slope * (trend - centre)
    for name, design, scale in (
        ("seasonality", inputs.seasonality, 0.25),
        ("holidays", inputs.holidays, 0.5),
        ("controls", inputs.controls, 0.25),
    ):
        if design.shape[1]:
            coef = numpyro.sample(
                name, dist.Normal(0.0, scale).expand([design.shape[1]]).to_event(1)
            )
            baseline = baseline + jnp.asarray(design) @ coef
    numpyro.deterministic("baseline", baseline)
    mu = baseline + jnp.sum(media, axis=1) + synergy_total
    numpyro.deterministic("mu", mu)
    sigma = numpyro.sample("sigma", dist.HalfNormal(0.25))

    with numpyro.handlers.mask(mask=fitted_mask.astype(bool)):
        numpyro.sample("kpi", dist.Normal(mu, sigma), obs=kpi)

    if len(inputs.lift_channel):
        per_channel = media
        if len(inputs.synergy_pairs):  # a channel's synergies are part of what a test sees
            share = jnp.zeros((joint.shape[1], n_channels))
            share = share.at[jnp.arange(joint.shape[1]), pairs[:, 0]].add(0.5)
            share = share.at[jnp.arange(joint.shape[1]), pairs[:, 1]].add(0.5)
            per_channel = per_channel + joint @ share
        effect = jnp.sum(jnp.asarray(inputs.lift_mask) * per_channel[:, inputs.lift_channel].T, 1)
        numpyro.sample(
            "lift",
            dist.Normal(effect * inputs.kpi_scale, jnp.asarray(inputs.lift_se)).to_event(1),
            obs=jnp.asarray(inputs.lift_measured),
        )
