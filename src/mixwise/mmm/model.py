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

**The baseline is integrated out.** The baseline is linear in its coefficients (intercept,
trend, seasonality, holidays, controls) and their priors are Normal, so given the media
parameters and ``sigma`` the KPI is Normal with the baseline's uncertainty folded into its
covariance (:func:`_marginal_loglik`); NUTS samples only the media parameters and ``sigma``,
and each draw's coefficients are drawn afterwards from their exact conditional posterior
(:func:`sample_baseline`). The joint posterior is the same; the sampler's is much easier: the
intercept and the channels whose spend barely varies trade off along a narrow curved ridge,
which took NUTS ~240 leapfrog steps per draw and left divergences; without the intercept it
takes ~35 (4 × 1000 draws of the benchmark market: 14 s instead of 60, no divergences).

**Synergy** gains are reported in KPI units: ``kpi_scale * sum_t kappa_ab s[t, a] s[t, b]``,
the joint effect minus the sum of the single effects.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
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

    sigma = numpyro.sample("sigma", dist.HalfNormal(0.25))
    if kpi is not None:
        design = baseline_prior(inputs)
        media_total = jnp.sum(media, axis=1) + synergy_total
        numpyro.factor("kpi", _marginal_loglik(design, jnp.asarray(kpi) - media_total, sigma))

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


# -- the baseline, integrated out ----------------------------------------------------------
@dataclass(frozen=True)
class BaselinePrior:
    """The baseline as one linear regression: ``baseline = X @ b``, ``b ~ Normal(mean, sd)``.

    Columns: intercept (prior Normal(0.6, 0.5)), the trend centred on the fitted periods
    (Normal(0, 0.5)), seasonality (0.25), holidays (0.5) and controls (0.25); ``blocks`` names
    the sample site of each range of columns (``intercept`` and ``trend`` are scalars).
    ``fit_mask`` zeroes the held-out rows of ``masked``.
    """

    x: FloatArray  # (T, P), every period
    masked: FloatArray  # (T, P), held-out rows zero
    gram: FloatArray  # (P, P) masked.T @ masked
    mean: FloatArray  # (P,)
    sd: FloatArray  # (P,)
    n_fitted: float
    blocks: tuple[tuple[str, int, int], ...]


def baseline_prior(inputs: ModelInputs) -> BaselinePrior:
    mask = np.asarray(inputs.fit_mask, dtype=np.float64)
    trend = np.asarray(inputs.trend, dtype=np.float64)
    centre = float((trend * mask).sum() / max(mask.sum(), 1.0))
    columns: list[FloatArray] = [np.ones(len(trend))[:, None], (trend - centre)[:, None]]
    means, sds = [0.6, 0.0], [0.5, 0.5]
    blocks = [("intercept", 0, 1), ("trend", 1, 2)]
    start = 2
    for name, design, scale in (
        ("seasonality", inputs.seasonality, 0.25),
        ("holidays", inputs.holidays, 0.5),
        ("controls", inputs.controls, 0.25),
    ):
        width = int(np.shape(design)[1])
        if width:
            columns.append(np.asarray(design, dtype=np.float64))
            means += [0.0] * width
            sds += [scale] * width
            blocks.append((name, start, start + width))
            start += width
    x = np.hstack(columns)
    masked = x * mask[:, None]
    return BaselinePrior(
        x=x,
        masked=masked,
        gram=masked.T @ masked,
        mean=np.array(means),
        sd=np.array(sds),
        n_fitted=float(mask.sum()),
        blocks=tuple(blocks),
    )


def _marginal_loglik(design: BaselinePrior, rest: jax.Array, sigma: jax.Array) -> jax.Array:
    """``log p(kpi | media, sigma)`` with the baseline's coefficients integrated out.

    ``rest`` is the KPI minus media and synergy. With ``r = rest - X mean`` (fitted rows) the
    KPI is ``Normal(0, s2 I + X S X')`` (``S = diag(sd^2)``, ``s2 = sigma^2``). With
    ``A = X'X + s2 S^-1`` and ``b = A^-1 X' r`` (the regularised least-squares fit)::

        r' C^-1 r = (|r - X b|^2 + s2 |b / sd|^2) / s2          (two positive terms: no
        log |C|   = (n - P) log s2 + sum log sd^2 + log |A|      cancellation in float32)
    """
    s2 = sigma**2
    x = jnp.asarray(design.masked, dtype=rest.dtype)
    r = (rest - jnp.asarray(design.x @ design.mean, dtype=rest.dtype)) * jnp.asarray(
        design.masked[:, 0], dtype=rest.dtype
    )
    sd = jnp.asarray(design.sd, dtype=rest.dtype)
    a = jnp.asarray(design.gram, dtype=rest.dtype) + jnp.diag(s2 / sd**2)
    chol = jnp.linalg.cholesky(a)
    b = jax.scipy.linalg.cho_solve((chol, True), x.T @ r)
    resid = r - x @ b
    quad = (resid @ resid + s2 * jnp.sum((b / sd) ** 2)) / s2
    n, p = design.n_fitted, len(design.sd)
    logdet = (n - p) * jnp.log(s2) + jnp.sum(jnp.log(sd**2)) + 2 * jnp.sum(jnp.log(jnp.diag(chol)))
    return -0.5 * (quad + logdet + n * jnp.log(2 * jnp.pi))


def sample_baseline(
    inputs: ModelInputs,
    kpi: FloatArray,
    media_total: FloatArray,
    sigma: FloatArray,
    seed: int,
) -> dict[str, FloatArray]:
    """Per posterior draw, the baseline's coefficients from their conditional posterior
    (Gaussian given media and sigma), and the ``baseline`` and ``mu`` series they give.

    ``media_total`` is (draws, T) in scaled KPI units, ``sigma`` (draws,). Returns the sites
    the model had before the baseline was integrated out: ``intercept``, ``trend`` (scalars
    per draw), ``seasonality``, ``holidays``, ``controls`` (when they have columns),
    ``baseline`` and ``mu`` (draws, T).
    """
    design = baseline_prior(inputs)
    s2 = np.asarray(sigma, dtype=np.float64).reshape(-1) ** 2
    mask = np.asarray(inputs.fit_mask, dtype=np.float64)
    rest = np.asarray(kpi, dtype=np.float64)[None, :] - np.asarray(media_total, dtype=np.float64)
    r = (rest - design.x @ design.mean) * mask  # (N, T)
    a = design.gram[None] + s2[:, None, None] * np.diag(1.0 / design.sd**2)[None]
    chol = np.linalg.cholesky(a)  # (N, P, P)
    rhs = r @ design.masked  # (N, P)
    centre = np.linalg.solve(a, rhs[..., None])[..., 0]
    # Cov = s2 A^-1 = (L^-T)(L^-1) s2: draw L^-T z.
    z = np.random.default_rng(seed).standard_normal(centre.shape)
    eye = np.broadcast_to(np.eye(len(design.sd)), chol.shape)
    inv_lower = np.linalg.solve(chol, eye)  # L^-1
    noise = np.einsum("nqp,nq->np", inv_lower, z) * np.sqrt(s2)[:, None]
    coef = design.mean[None, :] + centre + noise
    out: dict[str, FloatArray] = {}
    for name, lo, hi in design.blocks:
        block = coef[:, lo:hi]
        out[name] = block[:, 0] if name in ("intercept", "trend") else block
    out["baseline"] = coef @ design.x.T
    out["mu"] = out["baseline"] + np.asarray(media_total, dtype=np.float64)
    return out
