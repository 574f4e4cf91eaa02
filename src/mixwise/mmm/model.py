"""The NumPyro model: a KPI explained by a baseline and saturating, carried-over media.

For period ``t`` (data scaled to O(1): the KPI divided by its mean, each channel's spend by its
mean, controls standardised)::

    kpi[t] ~ Normal(mu[t], sigma)
    mu[t]  = intercept + slope * trend[t] + seasonality[t] @ gamma + holidays[t] @ eta
             + controls[t] @ delta
             + trend[t] * (seasonality[t] @ gamma' + holidays[t] @ eta')   (interactions:
             + sum(holidays[t]) * controls[t] @ delta'                     a multiplicative
                                                                           baseline's 1st order)
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

**A geo panel's ROIs are integrated out too** (partial pooling, no lift tests). Each geo's ROI
scatters around the channel's as ``roi_g = roi * (1 + spread * w_g)``, ``w_g ~ Normal(0, 1)``
(a Normal prior, so the geo's contribution stays linear in ``w_g``), and the ``G x C``
deviations join the baseline in the Gaussian that is integrated out
(:func:`_geo_marginal_loglik`, solved by the panel's structure: a small block per geo and a
Schur complement for the shared columns). NUTS then samples only the curves, ROIs, spreads and
``sigma`` (~25 numbers instead of ~225 at 40 geos), and every draw's geo ROIs come afterwards
from their exact conditional posterior (:func:`sample_geo_coefficients`). With 200 sampled
offsets under 5 spreads NUTS needed ~250 leapfrog steps per iteration at 40 geos (a funnel);
``benchmarks/RESULTS.md`` has the before and after. Such a panel samples each channel's log
marginal ROI (``log_mroi``, flat) and derives ``roi = exp(log_mroi) * ratio``, the ratio of
the curve's average to its marginal return over the data
(:func:`_log_average_over_marginal`), with the ROI's LogNormal density as a factor: a shear
with unit Jacobian, so the posterior is the same, but the sampler's coordinates follow what the
data pin (the margin) rather than the extrapolation to no spend, whose spread grows as the
curve's slope falls (a curved ridge in ROI coordinates). A lift test (a likelihood term on one
channel's national contribution) keeps the sampled, non-centred form: ``log roi_g = log roi
+ spread * z_g``.

**Synergy** gains are reported in KPI units: ``kpi_scale * sum_t kappa_ab s[t, a] s[t, b]``,
the joint effect minus the sum of the single effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

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
    """Everything the model function needs, as arrays (scaled units unless said).

    ``G`` geos (1 for national data): each geo's spend of a channel is divided by that geo's
    mean spend of the channel, and its KPI by its mean KPI (``kpi_scale``), so every geo's
    series is O(1) whatever its size and the curves' parameters are shared across geos.
    """

    spend: FloatArray  # (T, G, C)
    trend: FloatArray  # (T,)
    seasonality: FloatArray  # (T, S)
    holidays: FloatArray  # (T, H)
    controls: FloatArray  # (T, G, K), standardised
    spend_totals: FloatArray  # (G, C) total spend of the fitted periods, original units
    kpi_scale: FloatArray  # (G,) each geo's mean KPI
    roi_median: FloatArray  # (C,)
    roi_sigma: FloatArray  # (C,)
    synergy_pairs: npt.NDArray[np.int64]  # (P, 2) channel indices
    lift_channel: npt.NDArray[np.int64]  # (L,)
    lift_mask: FloatArray  # (L, T) 1 inside the test's periods
    lift_measured: FloatArray  # (L,) original KPI units
    lift_se: FloatArray  # (L,) original KPI units
    fit_mask: FloatArray  # (T,) 1 for the periods the likelihood sees (0: holdout)
    spend_scale: FloatArray  # (G, C) money per scaled spend unit
    interactions: bool = False  # add interaction_columns to the baseline (False: runs before)


def media_model(
    inputs: ModelInputs,
    adstock: Adstock,
    saturation: Saturation,
    kpi: FloatArray | None,
    *,
    geo_pooling: str = "partial",
) -> None:
    """The NumPyro model (see the module docstring); ``kpi`` None samples the predictive.

    ``geo_pooling`` (geo panels): ``"partial"`` lets each geo's ROI scatter around the
    channel's; ``"complete"`` gives every geo the channel's ROI."""
    n_periods, n_geos, n_channels = inputs.spend.shape
    spend = jnp.asarray(inputs.spend)

    params = {}
    for name, prior in {**adstock.priors(n_channels), **saturation.priors(n_channels)}.items():
        params[name] = numpyro.sample(name, prior)
    adstock_params = {k: params[k] for k in adstock.param_names}
    saturation_params = {k: params[k] for k in saturation.param_names}
    adstocked = adstock.apply(spend, **adstock_params)
    saturated = saturation.apply(adstocked, **saturation_params)
    numpyro.deterministic("saturated", saturated)  # (T, G, C)

    integrated = integrates_geo_roi(inputs, geo_pooling)
    if integrated:
        # The sampler moves each channel's log marginal ROI; the ROI is the marginal ROI
        # times the curve's ratio of average to marginal return. A shear (unit Jacobian):
        # the factor below is exactly the ROI's LogNormal prior, the model is unchanged.
        log_mroi = numpyro.sample(
            "log_mroi", dist.ImproperUniform(dist.constraints.real, (), (n_channels,))
        )
        log_roi = log_mroi + _log_average_over_marginal(
            inputs, saturation, adstocked, saturated, saturation_params
        )
        prior = dist.Normal(jnp.log(inputs.roi_median), inputs.roi_sigma)
        numpyro.factor("roi_prior", prior.log_prob(log_roi).sum())
        roi = numpyro.deterministic("roi", jnp.exp(log_roi))
    else:
        roi = numpyro.sample(
            "roi", dist.LogNormal(jnp.log(inputs.roi_median), inputs.roi_sigma).to_event(1)
        )
    spread = None
    if n_geos > 1 and geo_pooling == "partial":
        spread = numpyro.sample("roi_geo_sd", dist.HalfNormal(0.3).expand([n_channels]).to_event(1))
    if spread is not None and not integrated:
        # Each geo's ROI scatters around the channel's (non-centred: log roi_g = log roi +
        # spread * z_g), so geos with little data borrow from the others.
        z = numpyro.sample(
            "roi_geo_z", dist.Normal(0.0, 1.0).expand([n_geos, n_channels]).to_event(2)
        )
        roi_geo = roi * jnp.exp(spread * z)
    else:
        # Complete pooling, national data, or geo ROIs integrated out (the likelihood below;
        # ``beta`` here is then every geo at the channel's ROI, the geo ROIs' prior mean, and
        # the fit replaces it with each draw's geo ROIs: :func:`sample_geo_coefficients`).
        roi_geo = roi[None, :]
    kpi_scale = jnp.asarray(inputs.kpi_scale)
    per_roi = per_unit_roi(inputs, saturated)  # (G, C)
    beta = numpyro.deterministic("beta", roi_geo * per_roi)
    media = saturated * beta  # (T, G, C)

    pairs = jnp.asarray(inputs.synergy_pairs)
    if len(inputs.synergy_pairs):
        kappa = numpyro.sample(
            "kappa", dist.Normal(0.0, 0.5).expand([len(inputs.synergy_pairs)]).to_event(1)
        )
        joint = saturated[..., pairs[:, 0]] * saturated[..., pairs[:, 1]] * kappa
        numpyro.deterministic("synergy", joint)  # (T, G, P)
        synergy_total = jnp.sum(joint, axis=2)
    else:
        joint = jnp.zeros((n_periods, n_geos, 0))
        synergy_total = jnp.zeros((n_periods, n_geos))

    sigma = numpyro.sample("sigma", dist.HalfNormal(0.25))
    if kpi is not None:
        design = baseline_prior(inputs)
        rest = jnp.asarray(kpi) - jnp.sum(media, axis=2) - synergy_total
        if integrated:
            assert spread is not None
            deviation = saturated * per_roi * (roi * spread)  # KPI per unit of w, (T, G, C)
            numpyro.factor("kpi", _geo_marginal_loglik(design, rest, deviation, sigma))
        else:
            numpyro.factor("kpi", _marginal_loglik(design, rest.reshape(-1), sigma))

    if len(inputs.lift_channel):
        per_channel = media
        if len(inputs.synergy_pairs):  # a channel's synergies are part of what a test sees
            share = jnp.zeros((joint.shape[2], n_channels))
            share = share.at[jnp.arange(joint.shape[2]), pairs[:, 0]].add(0.5)
            share = share.at[jnp.arange(joint.shape[2]), pairs[:, 1]].add(0.5)
            per_channel = per_channel + joint @ share
        national = jnp.sum(per_channel * kpi_scale[None, :, None], axis=1)  # (T, C), KPI units
        effect = jnp.sum(jnp.asarray(inputs.lift_mask) * national[:, inputs.lift_channel].T, 1)
        numpyro.sample(
            "lift",
            dist.Normal(effect, jnp.asarray(inputs.lift_se)).to_event(1),
            obs=jnp.asarray(inputs.lift_measured),
        )


def _log_average_over_marginal(
    inputs: ModelInputs,
    saturation: Saturation,
    adstocked: jax.Array,
    saturated: jax.Array,
    params: dict[str, jax.Array],
) -> jax.Array:
    """``log(ROI / marginal ROI)`` per channel ``(C,)``: the saturated sum over the fitted
    periods (and geos) over the sum of its elasticity to a proportional change of spend
    (``d s(a (1 + e)) / d e`` at 0, forward mode, for any saturation). For one geo
    ``ROI / ratio`` is the marginal ROI of a proportional increase of every period's spend;
    a panel's sums pool its geos (each O(1) in its own scale)."""
    _, elastic = jax.jvp(lambda a: saturation.apply(a, **params), (adstocked,), (adstocked,))
    mask = jnp.asarray(inputs.fit_mask, dtype=saturated.dtype)[:, None, None]
    average = jnp.sum(saturated * mask, axis=(0, 1))
    marginal = jnp.sum(elastic * mask, axis=(0, 1))
    return jnp.log(jnp.maximum(average, 1e-12)) - jnp.log(jnp.maximum(marginal, 1e-12))


def integrates_geo_roi(inputs: ModelInputs, geo_pooling: str) -> bool:
    """Whether the model integrates the geos' ROIs out with the baseline (see the module
    docstring): a geo panel with partial pooling and no lift tests."""
    return inputs.spend.shape[1] > 1 and geo_pooling == "partial" and not len(inputs.lift_channel)


def per_unit_roi(inputs: ModelInputs, saturated: jax.Array) -> jax.Array:
    """``beta`` per unit of ROI, ``(..., G, C)``: a channel's coefficient is its ROI times
    this (its spend over its saturated sum, in scaled KPI units; ``saturated`` is
    ``(..., T, G, C)``)."""
    mask = jnp.asarray(inputs.fit_mask, dtype=saturated.dtype)
    sums = jnp.sum(saturated * mask[:, None, None], axis=-3)
    scale = jnp.asarray(inputs.kpi_scale, dtype=saturated.dtype)[:, None]
    return jnp.asarray(inputs.spend_totals, dtype=saturated.dtype) / (
        scale * jnp.maximum(sums, 1e-9)
    )


# -- the baseline, integrated out ----------------------------------------------------------
@dataclass(frozen=True)
class BaselinePrior:
    """The baseline as one linear regression over the (period, geo) rows (period-major):
    ``baseline = X @ b``, ``b ~ Normal(mean, sd)``.

    Columns: one intercept per geo (prior Normal(0.6, 0.5): a geo's KPI is scaled by its
    mean), the trend centred on the fitted periods (Normal(0, 0.5)), seasonality (0.25) and
    holidays (0.5), shared by the geos, then controls (0.25), which differ by geo; with
    ``interactions`` the shared trend × seasonality (0.25) and trend × holidays (0.5) follow
    the holidays and controls × holiday weight (0.25) the controls
    (:func:`interaction_columns`). ``blocks`` names the sample site of each range of columns.
    ``row_mask`` is 0 on held-out rows, which ``masked`` zeroes.
    """

    x: FloatArray  # (T*G, P), every row
    masked: FloatArray  # (T*G, P), held-out rows zero
    row_mask: FloatArray  # (T*G,)
    gram: FloatArray  # (P, P) masked.T @ masked
    mean: FloatArray  # (P,)
    sd: FloatArray  # (P,)
    n_fitted: float
    n_geos: int
    blocks: tuple[tuple[str, int, int], ...]
    # The same columns by structure (what the sampler multiplies by, per gradient): after the
    # G intercepts come the columns every geo shares (trend, seasonality, holidays), then the
    # controls, which differ by geo.
    shared: FloatArray  # (T, S)
    controls: FloatArray  # (T, G, K)

    def xt(self, r: jax.Array) -> jax.Array:
        """``X' r`` for ``r`` shaped (T, G) (held-out rows already zero): ``(P,)``."""
        return jnp.concatenate(
            [
                jnp.sum(r, axis=0),
                jnp.asarray(self.shared, dtype=r.dtype).T @ jnp.sum(r, axis=1),
                jnp.einsum("tgk,tg->k", jnp.asarray(self.controls, dtype=r.dtype), r),
            ]
        )

    def xb(self, b: jax.Array) -> jax.Array:
        """``X b`` shaped (T, G)."""
        g, s = self.n_geos, self.shared.shape[1]
        out = b[None, :g] + (jnp.asarray(self.shared, dtype=b.dtype) @ b[g : g + s])[:, None]
        return out + jnp.asarray(self.controls, dtype=b.dtype) @ b[g + s :]


MIN_OCCURRENCES = 3  # a holiday's trend product needs this many occurrences in the data


def occurrences(column: FloatArray) -> int:
    """How many separate runs of non-zero periods a holiday column has (its occurrences)."""
    on = np.asarray(column) != 0
    return int(on[0]) + int(np.sum(on[1:] & ~on[:-1])) if len(on) else 0


def interaction_columns(
    trend: FloatArray,
    seasonality: FloatArray,
    holidays: FloatArray,
    controls: FloatArray,
    fitted: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The baseline's first-order multiplicative terms, shapes (T, S), (T, H) and (T, G, K).

    A multiplicative baseline ``level(t) * (1 + season(t)) * (1 + holiday(t)) * (1 +
    controls(t))`` expands to the additive terms plus their products. With ``trend`` already
    centred, these are the products kept: trend × every seasonality column (seasonal swings
    that grow with the business), trend × every holiday column (holiday peaks that grow with
    it) and every control × the period's total holiday weight (a promotion in a shopping
    festival moves more sales than one in an ordinary week). All are linear in their
    coefficients, so the baseline stays integrated out. The products of season and holidays
    are left out: a holiday falls on the same season every year, so its own column holds that.

    A holiday seen fewer than ``MIN_OCCURRENCES`` times in the ``fitted`` periods (1 = fitted;
    all by default) gets a zero trend product: with two occurrences its column and the product
    would fit both exactly and take the media's effect in those periods. A zero column is not
    estimated (:func:`sample_baseline` gives it a zero coefficient).
    """
    t = np.asarray(trend, dtype=np.float64)[:, None]
    hol = np.asarray(holidays, dtype=np.float64)
    seen = hol if fitted is None else hol * (np.asarray(fitted)[:, None] > 0)
    enough = np.array([occurrences(seen[:, h]) >= MIN_OCCURRENCES for h in range(hol.shape[1])])
    total = hol.sum(axis=1)[:, None, None]
    return (
        t * np.asarray(seasonality, dtype=np.float64),
        t * hol * enough[None, :],
        np.asarray(controls, dtype=np.float64) * total,
    )


def baseline_prior(inputs: ModelInputs) -> BaselinePrior:
    n_periods, n_geos = inputs.spend.shape[:2]
    mask = np.asarray(inputs.fit_mask, dtype=np.float64)
    trend = np.asarray(inputs.trend, dtype=np.float64)
    centre = float((trend * mask).sum() / max(mask.sum(), 1.0))
    controls = np.asarray(inputs.controls, dtype=np.float64).reshape(n_periods, n_geos, -1)

    # (name, design, prior sd): the columns every geo shares, then those that differ by geo.
    shared_parts: list[tuple[str, FloatArray, float]] = [
        ("trend", (trend - centre)[:, None], 0.5),
        ("seasonality", np.asarray(inputs.seasonality, dtype=np.float64), 0.25),
        ("holidays", np.asarray(inputs.holidays, dtype=np.float64), 0.5),
    ]
    geo_parts: list[tuple[str, FloatArray, float]] = [("controls", controls, 0.25)]
    if bool(inputs.interactions):
        season_x, holiday_x, control_x = interaction_columns(
            trend - centre, inputs.seasonality, inputs.holidays, controls, mask
        )
        shared_parts += [("seasonality_trend", season_x, 0.25), ("holidays_trend", holiday_x, 0.5)]
        geo_parts += [("controls_holidays", control_x, 0.25)]
    shared_parts = [p for p in shared_parts if p[1].shape[-1]]
    geo_parts = [p for p in geo_parts if p[1].shape[-1]]

    means, sds = [0.6] * n_geos, [0.5] * n_geos
    blocks = [("intercept", 0, n_geos)]
    start = n_geos
    for name, design, scale in (*shared_parts, *geo_parts):
        width = int(design.shape[-1])
        means += [0.0] * width
        sds += [scale] * width
        blocks.append((name, start, start + width))
        start += width
    shared = np.hstack([d for _, d, _ in shared_parts])  # (T, S'), at least the trend
    per_geo = (
        np.concatenate([d for _, d, _ in geo_parts], axis=2)
        if geo_parts
        else np.zeros((n_periods, n_geos, 0))
    )
    x = np.concatenate(
        [
            np.broadcast_to(np.eye(n_geos), (n_periods, n_geos, n_geos)),
            np.broadcast_to(shared[:, None, :], (n_periods, n_geos, shared.shape[1])),
            per_geo,
        ],
        axis=2,
    ).reshape(n_periods * n_geos, -1)
    row_mask = np.repeat(mask, n_geos)
    masked = x * row_mask[:, None]
    return BaselinePrior(
        shared=shared,
        controls=per_geo,
        x=x,
        masked=masked,
        row_mask=row_mask,
        gram=masked.T @ masked,
        mean=np.array(means),
        sd=np.array(sds),
        n_fitted=float(row_mask.sum()),
        n_geos=n_geos,
        blocks=tuple(blocks),
    )


def _marginal_loglik(design: BaselinePrior, rest: jax.Array, sigma: jax.Array) -> jax.Array:
    """``log p(kpi | media, sigma)`` with the baseline's coefficients integrated out.

    ``rest`` is the KPI minus media and synergy, one value per (period, geo) row. With
    ``r = rest - X mean`` (fitted rows) the KPI is ``Normal(0, s2 I + X S X')``
    (``S = diag(sd^2)``, ``s2 = sigma^2``). With ``A = X'X + s2 S^-1`` and ``b = A^-1 X' r``
    (the regularised least-squares fit)::

        r' C^-1 r = (|r - X b|^2 + s2 |b / sd|^2) / s2          (two positive terms: no
        log |C|   = (n - P) log s2 + sum log sd^2 + log |A|      cancellation in float32)
    """
    s2 = sigma**2
    shape = (-1, design.n_geos)
    mask = jnp.asarray(design.row_mask.reshape(shape), dtype=rest.dtype)
    prior_level = jnp.asarray((design.x @ design.mean).reshape(shape), dtype=rest.dtype)
    r = (rest.reshape(shape) - prior_level) * mask  # (T, G)
    sd = jnp.asarray(design.sd, dtype=rest.dtype)
    a = jnp.asarray(design.gram, dtype=rest.dtype) + jnp.diag(s2 / sd**2)
    chol = jnp.linalg.cholesky(a)
    b = jax.scipy.linalg.cho_solve((chol, True), design.xt(r))
    resid = (r - design.xb(b) * mask).reshape(-1)
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

    ``kpi`` is (T, G) and ``media_total`` (draws, T, G) in scaled KPI units, ``sigma``
    (draws,). Returns the sites the model had before the baseline was integrated out:
    ``intercept`` (per draw, or (draws, G) for geos), ``trend`` (per draw), ``seasonality``,
    ``holidays``, ``controls`` (when they have columns), and ``baseline`` and ``mu``
    (draws, T, G).
    """
    design = baseline_prior(inputs)
    n_periods, n_geos = inputs.spend.shape[:2]
    s2 = np.asarray(sigma, dtype=np.float64).reshape(-1) ** 2
    media = np.asarray(media_total, dtype=np.float64).reshape(len(s2), -1)
    rest = np.asarray(kpi, dtype=np.float64).reshape(1, -1) - media
    r = (rest - design.x @ design.mean) * design.row_mask  # (N, T*G)
    a = design.gram[None] + s2[:, None, None] * np.diag(1.0 / design.sd**2)[None]
    chol = np.linalg.cholesky(a)  # (N, P, P)
    centre = np.linalg.solve(a, (r @ design.masked)[..., None])[..., 0]
    # Cov = s2 A^-1 = (L^-T)(L^-1) s2: draw L^-T z.
    z = np.random.default_rng(seed).standard_normal(centre.shape)
    eye = np.broadcast_to(np.eye(len(design.sd)), chol.shape)
    inv_lower = np.linalg.solve(chol, eye)  # L^-1
    noise = np.einsum("nqp,nq->np", inv_lower, z) * np.sqrt(s2)[:, None]
    coef = design.mean[None, :] + centre + noise
    return _baseline_sites(design, coef, n_periods, media.reshape(len(s2), n_periods, n_geos))


def _baseline_sites(
    design: BaselinePrior, coef: FloatArray, n_periods: int, media: FloatArray
) -> dict[str, FloatArray]:
    """The baseline's sites from its coefficients per draw ``coef`` (draws, P), and ``mu``
    with ``media`` (draws, T, G) added."""
    # A column that is zero in every fitted row (a holiday's trend product left out) is not
    # estimated: zero, not a draw from its prior, so forecasts do not inherit the prior's noise.
    coef = np.array(coef, dtype=np.float64)
    coef[:, ~np.any(design.masked != 0, axis=0)] = 0.0
    out: dict[str, FloatArray] = {}
    for name, lo, hi in design.blocks:
        block = coef[:, lo:hi]
        scalar = name == "trend" or (name == "intercept" and design.n_geos == 1)
        out[name] = block[:, 0] if scalar else block
    shape = (len(coef), n_periods, design.n_geos)
    out["baseline"] = (coef @ design.x.T).reshape(shape)
    out["mu"] = out["baseline"] + media
    return out


# -- a geo panel's ROIs, integrated out with the baseline ------------------------------------
class _GeoSolve(NamedTuple):
    """What :func:`_geo_solve` leaves: the coefficients, the factors the likelihood's log
    determinant and the conditional draws need, and the fit."""

    coef_local: jax.Array  # (G, 1+C): each geo's intercept and ROI deviations
    coef_global: jax.Array  # (Q,): the shared and control columns
    chol_local: jax.Array  # (G, 1+C, 1+C): Cholesky factors of the local blocks L_g
    chol_schur: jax.Array  # (Q, Q): Cholesky factor of the Schur complement
    linv_cross: jax.Array  # (G, 1+C, Q): L_g^-1 B_g
    linv_rhs: jax.Array  # (G, 1+C): L_g^-1 (Z'r)_g
    fitted: jax.Array  # (T, G)


def _geo_solve(design: BaselinePrior, r: jax.Array, dev: jax.Array, s2: jax.Array) -> _GeoSolve:
    """The regularised least-squares fit of ``r`` (T, G; held-out rows zero) on the baseline's
    columns and the geo ROI deviations' columns ``dev`` (T, G, C), using the panel's structure.

    The unknowns split into G local blocks (geo g's intercept and its C ROI deviations, which
    touch only geo g's rows) and one global block (the shared and control columns, Q). With
    ``A = Z'Z + s2 D^-1`` in that order, ``A = [[L, B], [B', E]]``, ``L`` block-diagonal:
    eliminate the local blocks (G Cholesky factorisations of (1 + C)²), solve the Schur
    complement ``E - B' L^-1 B`` (Q²), substitute back. ``log |A| = sum log |L_g| + log
    |Schur|``.
    """
    g = design.n_geos
    n_periods, _, n_channels = dev.shape
    dtype = r.dtype
    mask = jnp.asarray(design.row_mask.reshape(n_periods, g), dtype=dtype)
    glob = jnp.asarray(design.x.reshape(n_periods, g, -1)[:, :, g:], dtype=dtype)  # (T, G, Q)
    gram = jnp.asarray(design.gram, dtype=dtype)
    sd = jnp.asarray(design.sd, dtype=dtype)
    dev_m = dev * mask[:, :, None]
    sums = jnp.sum(dev_m, axis=0)  # (G, C)
    head = jnp.concatenate([(jnp.diag(gram)[:g] + s2 / sd[:g] ** 2)[:, None], sums], axis=1)
    body = jnp.concatenate(
        [sums[:, :, None], jnp.einsum("tgc,tgd->gcd", dev_m, dev_m) + s2 * jnp.eye(n_channels)],
        axis=2,
    )
    local = jnp.concatenate([head[:, None, :], body], axis=1)  # (G, 1+C, 1+C)
    cross = jnp.concatenate(
        [gram[:g, g:][:, None, :], jnp.einsum("tgc,tgq->gcq", dev_m, glob)], axis=1
    )  # (G, 1+C, Q)
    rhs_local = jnp.concatenate(
        [jnp.sum(r, axis=0)[:, None], jnp.einsum("tgc,tg->gc", dev_m, r)], axis=1
    )
    rhs_global = jnp.einsum("tgq,tg->q", glob, r)
    chol_l = jnp.linalg.cholesky(local)
    solve = jax.vmap(lambda c, b: jax.scipy.linalg.cho_solve((c, True), b))
    linv_b = solve(chol_l, cross)
    linv_r = solve(chol_l, rhs_local[:, :, None])[:, :, 0]
    schur = gram[g:, g:] + jnp.diag(s2 / sd[g:] ** 2) - jnp.einsum("gkq,gkp->qp", cross, linv_b)
    chol_s = jnp.linalg.cholesky(0.5 * (schur + schur.T))
    coef_global = jax.scipy.linalg.cho_solve(
        (chol_s, True), rhs_global - jnp.einsum("gkq,gk->q", cross, linv_r)
    )
    coef_local = linv_r - jnp.einsum("gkq,q->gk", linv_b, coef_global)
    fitted = (
        coef_local[None, :, 0]
        + jnp.einsum("tgc,gc->tg", dev, coef_local[:, 1:])
        + glob @ coef_global
    )
    return _GeoSolve(coef_local, coef_global, chol_l, chol_s, linv_b, linv_r, fitted)


def _geo_marginal_loglik(
    design: BaselinePrior, rest: jax.Array, dev: jax.Array, sigma: jax.Array
) -> jax.Array:
    """``log p(kpi | media, sigma)`` of a geo panel with the baseline's coefficients **and**
    the geos' ROI deviations integrated out.

    A geo's ROI is ``roi_g = roi * (1 + spread * w_g)``, ``w_g ~ Normal(0, 1)``, so its
    contribution is the channel's at the national ROI plus ``w_g`` times ``dev`` (the
    channel's saturated series times ``beta`` per unit ROI, times ``roi * spread``): linear
    in ``w`` with a Normal prior, like the baseline. ``rest`` (T, G) is the KPI minus media at
    the channels' ROIs and synergy. Same algebra as :func:`_marginal_loglik`, with the
    structured solve of :func:`_geo_solve`.
    """
    g = design.n_geos
    s2 = sigma**2
    shape = rest.shape
    mask = jnp.asarray(design.row_mask.reshape(shape), dtype=rest.dtype)
    prior_level = jnp.asarray((design.x @ design.mean).reshape(shape), dtype=rest.dtype)
    r = (rest - prior_level) * mask
    fit = _geo_solve(design, r, dev, s2)
    sd = jnp.asarray(design.sd, dtype=rest.dtype)
    resid = r - fit.fitted * mask
    penalty = (
        jnp.sum((fit.coef_local[:, 0] / sd[:g]) ** 2)
        + jnp.sum(fit.coef_local[:, 1:] ** 2)
        + jnp.sum((fit.coef_global / sd[g:]) ** 2)
    )
    quad = (jnp.sum(resid**2) + s2 * penalty) / s2
    n, p = design.n_fitted, len(design.sd) + dev.shape[1] * dev.shape[2]
    logdet = (
        (n - p) * jnp.log(s2)
        + jnp.sum(jnp.log(sd**2))
        + 2 * jnp.sum(jnp.log(jnp.diagonal(fit.chol_local, axis1=1, axis2=2)))
        + 2 * jnp.sum(jnp.log(jnp.diag(fit.chol_schur)))
    )
    return -0.5 * (quad + logdet + n * jnp.log(2 * jnp.pi))


def sample_geo_coefficients(
    inputs: ModelInputs,
    kpi: FloatArray,
    saturated: FloatArray,
    roi: FloatArray,
    spread: FloatArray,
    synergy_total: FloatArray | None,
    sigma: FloatArray,
    seed: int,
    chunk: int = 250,
) -> dict[str, FloatArray]:
    """Per posterior draw of a geo panel whose ROIs were integrated out: the baseline's
    coefficients and the geos' ROIs from their joint conditional posterior (Gaussian given
    the media curves, ``roi``, ``spread`` and ``sigma``).

    ``saturated`` is (draws, T, G, C), ``roi`` and ``spread`` (draws, C), ``synergy_total``
    (draws, T, G) or None. Returns :func:`sample_baseline`'s sites plus ``roi_geo`` (draws,
    G, C) and ``beta`` (draws, G, C), the geos' coefficients that replace the sampler's.
    The global block is drawn from its marginal (the Schur complement), then each geo's block
    from its conditional given it: an exact draw, with G small factorisations per draw.
    """
    design = baseline_prior(inputs)
    g = design.n_geos
    n_draws, n_periods = saturated.shape[:2]
    prior_level = (design.x @ design.mean).reshape(n_periods, g)
    mask = design.row_mask.reshape(n_periods, g)
    kpi_j = jnp.asarray(kpi, dtype=jnp.float32)

    def one(
        sat: jax.Array,
        r_roi: jax.Array,
        r_sd: jax.Array,
        syn: jax.Array,
        sig: jax.Array,
        key: jax.Array,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        per_roi = per_unit_roi(inputs, sat)
        rest = kpi_j - jnp.sum(sat * per_roi * r_roi, axis=2) - syn
        r = (rest - prior_level) * mask
        dev = sat * per_roi * (r_roi * r_sd)
        s2 = sig**2
        fit = _geo_solve(design, r, dev, s2)
        k1, k2 = jax.random.split(key)
        z_global = jax.random.normal(k1, fit.coef_global.shape)
        glob = fit.coef_global + sig * jax.scipy.linalg.solve_triangular(
            fit.chol_schur.T, z_global, lower=False
        )
        centre = fit.linv_rhs - jnp.einsum("gkq,q->gk", fit.linv_cross, glob)
        z_local = jax.random.normal(k2, centre.shape)
        noise = jax.vmap(lambda c, z: jax.scipy.linalg.solve_triangular(c.T, z, lower=False))(
            fit.chol_local, z_local
        )
        local = centre + sig * noise
        return local, glob, per_roi

    draw = jax.jit(jax.vmap(one))
    keys = jax.random.split(jax.random.PRNGKey(seed), n_draws)
    syn_all = (
        np.zeros((n_draws, n_periods, g), dtype=np.float32)
        if synergy_total is None
        else np.asarray(synergy_total, dtype=np.float32)
    )
    locals_: list[FloatArray] = []
    globals_: list[FloatArray] = []
    per_rois: list[FloatArray] = []
    for lo in range(0, n_draws, chunk):
        hi = min(lo + chunk, n_draws)
        out = draw(
            jnp.asarray(saturated[lo:hi], dtype=jnp.float32),
            jnp.asarray(roi[lo:hi], dtype=jnp.float32),
            jnp.asarray(spread[lo:hi], dtype=jnp.float32),
            jnp.asarray(syn_all[lo:hi]),
            jnp.asarray(sigma[lo:hi], dtype=jnp.float32),
            keys[lo:hi],
        )
        for store, value in zip((locals_, globals_, per_rois), out, strict=True):
            store.append(np.asarray(value, dtype=np.float64))
    local = np.concatenate(locals_)  # (N, G, 1+C)
    coef = design.mean[None, :] + np.concatenate([local[:, :, 0], np.concatenate(globals_)], 1)
    roi64 = np.asarray(roi, dtype=np.float64)[:, None, :]
    roi_geo = roi64 * (1.0 + np.asarray(spread, dtype=np.float64)[:, None, :] * local[:, :, 1:])
    beta = roi_geo * np.concatenate(per_rois)
    media = np.einsum("ntgc,ngc->ntg", np.asarray(saturated, dtype=np.float64), beta)
    out = _baseline_sites(design, coef, n_periods, media + syn_all.astype(np.float64))
    out["roi_geo"] = roi_geo
    out["beta"] = beta
    return out
