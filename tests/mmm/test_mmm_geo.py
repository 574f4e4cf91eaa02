"""Geo panels: one model over geos of different size, curves shared, ROIs pooled.

The panel below is built so the answer is known: every geo's spend is a fixed share of the
national spend, and its revenue the same share of a national revenue series (plus noise). The
geos differ in size by 8x, so a model that mixed up the geos' scales would give each channel
a different ROI per geo or miss the national one.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mixwise.mmm.data import MMMData
from mixwise.mmm.fit import MMM
from mixwise.mmm.response import ResponseModel

SHARES = np.array([0.1, 0.3, 0.6])  # geo sizes
EFFECT = {"a": 260.0, "b": 200.0}  # national KPI per period at full saturation


def national(
    periods: int, seed: int
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray]:
    """National spend of two channels and the revenue they and a seasonal baseline give,
    from curves of the model's family (geometric carry-over 0.4, Hill with half = the mean
    spend, slope 1)."""
    from mixwise.simulate import geometric_adstock, hill

    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-02", periods=periods, freq="7D")
    x = rng.gamma(2.0, 50.0, size=(periods, 2)) * np.array([1.0, 2.0])
    media = np.column_stack(
        [
            EFFECT[c] * hill(geometric_adstock(x[:, i] / x[:, i].mean(), 0.4), 1.0, 1.0)
            for i, c in enumerate(EFFECT)
        ]
    )
    base = 1000 + 150 * np.sin(2 * np.pi * np.arange(periods) / 52)
    return dates, x, base + media.sum(axis=1), media


def true_roi(periods: int = 104, seed: int = 3) -> dict[str, float]:
    _, x, _, media = national(periods, seed)
    return {c: float(media[:, i].sum() / x[:, i].sum()) for i, c in enumerate(EFFECT)}


def panel(periods: int = 104, seed: int = 3) -> pd.DataFrame:
    """Every geo spends its share of the national spend and sells its share of the national
    revenue, plus its own noise."""
    dates, x, y, _ = national(periods, seed)
    rng = np.random.default_rng(seed + 1)
    rows = []
    for g, share in enumerate(SHARES):
        noise = rng.normal(0, 8 * share, periods)
        rows.append(
            pd.DataFrame(
                {
                    "date": dates,
                    "geo": f"g{g}",
                    "revenue": share * y + noise,
                    "a": share * x[:, 0],
                    "b": share * x[:, 1],
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def geo_fit() -> MMM:
    data = MMMData.from_frame(panel(), date="date", kpi="revenue", channels=["a", "b"], geo="geo")
    assert data.n_geos == 3
    return MMM(chains=2, draws=300, warmup=300, progress=False, seed=2).fit(data)


def test_geo_panel_agrees_with_the_national_fit_and_holds_the_truth(geo_fit: MMM) -> None:
    inputs = geo_fit.inputs_
    assert inputs.spend.shape == (104, 3, 2)
    # Each geo's spend and KPI are scaled by its own means: O(1) whatever the geo's size.
    np.testing.assert_allclose(inputs.spend.mean(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(inputs.kpi_scale / inputs.kpi_scale.sum(), SHARES, rtol=0.02)
    # The same market fitted nationally (the geos summed) must tell the same story: each
    # estimate inside the other's 90 % interval, and the truth inside both.
    summed = panel().groupby("date", as_index=False)[["revenue", "a", "b"]].sum()
    flat = MMMData.from_frame(summed, date="date", kpi="revenue", channels=["a", "b"])
    nat = MMM(chains=2, draws=300, warmup=300, progress=False, seed=2).fit(flat)
    for channel, truth in true_roi().items():
        geo, one = geo_fit.roi_.loc[channel], nat.roi_.loc[channel]
        assert geo["lower"] <= truth <= geo["upper"], (channel, geo.to_dict())
        assert one["lower"] <= truth <= one["upper"], (channel, one.to_dict())
        assert one["lower"] <= geo["mean"] <= one["upper"], (channel, geo.to_dict(), one.to_dict())
        assert geo["lower"] <= one["mean"] <= geo["upper"], (channel, geo.to_dict(), one.to_dict())
    # The geos' ROIs were integrated out with the baseline and drawn afterwards, one per geo
    # and channel per draw; the national ROI is their spend-weighted mean.
    s = geo_fit.samples_
    assert "roi_geo_z" not in s and s["roi_geo"].shape == (600, 3, 2)
    weights = inputs.spend_totals / inputs.spend_totals.sum(axis=0)
    np.testing.assert_allclose(
        geo_fit.roi_["mean"], (s["roi_geo"] * weights).sum(axis=1).mean(axis=0), rtol=1e-4
    )
    # Per geo: one intercept each; the decomposition adds the geos up.
    assert geo_fit.samples_["intercept"].shape[1:] == (3,)
    frame = geo_fit.contributions()
    np.testing.assert_allclose(
        frame["kpi"].to_numpy(), geo_fit.data_.kpi_values.sum(axis=1), rtol=1e-12
    )
    fitted = frame[["baseline", "a", "b"]].sum(axis=1)
    assert np.abs(fitted - frame["kpi"]).mean() / frame["kpi"].mean() < 0.02


def test_a_national_plan_is_spread_over_the_geos_as_the_data_were(geo_fit: MMM) -> None:
    """The national spend replayed as a plan (every geo kept its share) reproduces every
    draw's fitted contributions, summed over geos."""
    rm = ResponseModel.from_mmm(geo_fit, force=True, draws=50)
    np.testing.assert_allclose(rm.geo_share, np.repeat(SHARES[:, None], 2, axis=1), rtol=1e-9)
    national = geo_fit.data_.spend.sum(axis=1)
    got = np.asarray(rm.media(national, carry_over=False))
    take = np.linspace(0, len(geo_fit.samples_["beta"]) - 1, 50).round().astype(int)
    want = geo_fit._channel_contributions()[take]
    np.testing.assert_allclose(got, want, rtol=5e-4, atol=1e-3 * np.abs(want).max())
    assert rm.baseline(4).shape == (50, 4)
    curve = rm.response_curve("a", [0.0, 100.0, 200.0])
    assert (
        curve.shape == (50, 3) and np.all(curve[:, 0] == 0) and np.all(curve[:, 2] >= curve[:, 1])
    )


def test_complete_pooling_gives_every_geo_the_channels_roi() -> None:
    data = MMMData.from_frame(
        panel(periods=60), date="date", kpi="revenue", channels=["a", "b"], geo="geo"
    )
    fit = MMM(chains=1, draws=30, warmup=30, progress=False, geo_pooling="complete").fit(data)
    assert "roi_geo_z" not in fit.samples_ and "roi_geo_sd" not in fit.samples_
    # One ROI for all geos: the reported national ROI is the sampled one.
    np.testing.assert_allclose(fit.roi_["mean"], fit.samples_["roi"].mean(axis=0), rtol=1e-4)


def test_a_lift_test_keeps_the_geo_rois_sampled() -> None:
    """A lift test is a likelihood term on a channel's national contribution, so with one the
    geo ROIs are sampled (non-centred offsets) rather than integrated out, and the test's
    channel is pulled to the measured lift."""
    from mixwise.mmm.fit import LiftTest

    data = MMMData.from_frame(
        panel(periods=60), date="date", kpi="revenue", channels=["a", "b"], geo="geo"
    )
    dates = data.dates
    media = national(60, 3)[3]
    measured = float(media[10:20, 0].sum())
    lift = LiftTest("a", str(dates[10].date()), str(dates[19].date()), measured, 0.02 * measured)
    fit = MMM(chains=1, draws=60, warmup=60, progress=False, lift_tests=[lift]).fit(data)
    s = fit.samples_
    assert s["roi_geo_z"].shape == (60, 3, 2) and "roi_geo" not in s
    seen = fit._channel_contributions()[:, 10:20, 0].sum(axis=1).mean()
    assert abs(seen / measured - 1) < 0.1, (seen, measured)


def test_fast_mode_draws_the_integrated_geo_rois_too() -> None:
    """The fast mode (MAP + Laplace) samples the same model: its draws get their geo ROIs and
    baseline from the same conditional posterior, and its national ROI is their spend-weighted
    mean."""
    data = MMMData.from_frame(
        panel(periods=60), date="date", kpi="revenue", channels=["a", "b"], geo="geo"
    )
    fit = MMM(method="map", draws=40, progress=False).fit(data)
    s = fit.samples_
    assert s["roi_geo"].shape == (40, 3, 2) and s["intercept"].shape == (40, 3)
    weights = fit.inputs_.spend_totals / fit.inputs_.spend_totals.sum(axis=0)
    np.testing.assert_allclose(
        fit.roi_["mean"], (s["roi_geo"] * weights).sum(axis=1).mean(axis=0), rtol=1e-4
    )
    assert not fit.verdict_.usable


def test_a_geo_with_no_kpi_is_refused() -> None:
    frame = panel(periods=60)
    frame.loc[frame["geo"] == "g0", "revenue"] = 0.0
    data = MMMData.from_frame(frame, date="date", kpi="revenue", channels=["a", "b"], geo="geo")
    with pytest.raises(ValueError, match="geo 'g0' has no revenue"):
        MMM(chains=1, draws=10, warmup=10, progress=False).fit(data)


def test_runs_stored_before_geo_panels_still_load(tmp_path, mmm_workspace) -> None:  # type: ignore[no-untyped-def]
    """A national run saved with the old shapes (no geo axis) reloads to the same results."""
    from mixwise.mmm.runs import load_model, save_run

    ws = mmm_workspace
    data = MMMData.from_workspace(ws, controls=())
    model = MMM(chains=1, draws=30, warmup=30, progress=False).fit(data)
    run = save_run(ws, model)
    path = ws.path / "runs" / f"mmm-{run}.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    squeeze = {
        "input:spend": 1, "input:controls": 1, "input:spend_totals": 0, "sample:saturated": 2,
        "sample:beta": 1, "sample:baseline": 2, "sample:mu": 2,
    }  # fmt: skip
    for key, axis in squeeze.items():
        arrays[key] = arrays[key].squeeze(axis=axis)
    arrays["input:kpi_scale"] = np.asarray(float(arrays["input:kpi_scale"][0]))
    del arrays["input:spend_scale"]
    np.savez_compressed(path, **arrays)
    old = load_model(ws, run)
    assert old.inputs_.spend.shape == model.inputs_.spend.shape
    pd.testing.assert_frame_equal(old.roi_, model.roi_, rtol=1e-6)
    pd.testing.assert_frame_equal(
        old.contributions(), model.contributions(), rtol=1e-6, check_freq=False
    )
    assert json.dumps(old.summary()["roi"]) == json.dumps(model.summary()["roi"])


def test_cli_fits_a_geo_file_and_names_a_missing_geo_column(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from mixwise.cli import main

    csv = tmp_path / "geos.csv"
    panel(periods=60).to_csv(csv, index=False)
    args = ["mmm", "fit", "--csv", str(csv), "--kpi", "revenue", "--channels", "a,b"]
    quick = ["--chains", "1", "--draws", "20", "--warmup", "20", "--json"]
    out = CliRunner().invoke(main, [*args, "--geo", "geo", *quick])
    assert out.exit_code == 0, out.output  # --json prints even an unusable fit
    summary = json.loads(out.output)
    assert summary["data"]["periods"] == 60 and set(summary["roi"]) == {"a", "b"}
    bad = CliRunner().invoke(main, [*args, "--geo", "region", *quick])
    assert bad.exit_code == 1 and "region" in bad.output


@pytest.mark.parametrize("interactions", [True, False])
def test_the_baselines_structured_products_equal_the_dense_ones(
    geo_fit: MMM, interactions: bool
) -> None:
    """The sampler multiplies by the baseline's columns by structure (per-geo intercepts,
    columns shared by the geos, per-geo controls); it must equal the dense design matrix,
    with and without the interaction columns (trend × seasonality and holidays, controls ×
    holiday weight)."""
    import dataclasses

    import jax.numpy as jnp

    from mixwise.mmm.model import baseline_prior

    rng = np.random.default_rng(0)
    t, g = geo_fit.inputs_.spend.shape[:2]
    mask = np.ones(t)
    mask[-5:] = 0.0  # a holdout
    inputs = dataclasses.replace(
        geo_fit.inputs_,
        fit_mask=mask,
        controls=rng.normal(size=(t, g, 2)),
        interactions=interactions,
    )
    design = baseline_prior(inputs)
    names = [name for name, _, _ in design.blocks]
    extra = ["seasonality_trend", "holidays_trend", "controls_holidays"]
    assert all((n in names) == interactions for n in extra)
    r = rng.normal(size=(t, g)) * mask[:, None]
    b = rng.normal(size=len(design.sd))
    np.testing.assert_allclose(
        np.asarray(design.xt(jnp.asarray(r))), design.masked.T @ r.reshape(-1), rtol=1e-4
    )
    np.testing.assert_allclose(
        np.asarray(design.xb(jnp.asarray(b))).reshape(-1), design.x @ b, rtol=1e-4, atol=1e-4
    )


def _dense_geo_posterior(
    design, r: np.ndarray, dev: np.ndarray, s2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reference for the integrated geo ROIs, dense in float64: the full design ``Z`` (the
    baseline's columns, then one column per geo and channel: ``dev`` in that geo's rows), its
    prior sds, the exact posterior mean and covariance of the coefficients given ``r``."""
    t, g, c = dev.shape
    local = np.zeros((t, g, g, c))
    local[:, np.arange(g), np.arange(g), :] = dev
    z = np.concatenate([design.x, local.reshape(t * g, g * c)], axis=1)
    z = z * design.row_mask[:, None]
    sd = np.concatenate([design.sd, np.ones(g * c)])
    a = z.T @ z + s2 * np.diag(1 / sd**2)
    mean = np.linalg.solve(a, z.T @ r.reshape(-1))
    return z, sd, mean, s2 * np.linalg.inv(a)


def _geo_case(geo_fit: MMM) -> tuple:  # type: ignore[type-arg]
    import dataclasses

    from mixwise.mmm.model import baseline_prior

    rng = np.random.default_rng(5)
    t, g, c = geo_fit.inputs_.spend.shape
    mask = np.ones(t)
    mask[-4:] = 0.0  # a holdout
    inputs = dataclasses.replace(
        geo_fit.inputs_, fit_mask=mask, controls=rng.normal(size=(t, g, 2)), interactions=True
    )
    design = baseline_prior(inputs)
    dev = rng.gamma(2.0, 0.05, size=(t, g, c))
    return inputs, design, dev, rng.normal(size=(t, g)) * 0.1


def test_integrated_geo_rois_give_the_dense_marginal_likelihood(geo_fit: MMM) -> None:
    """With the geos' ROI deviations integrated out beside the baseline, the structured
    likelihood (local blocks per geo, a Schur complement) equals the Normal density of the
    KPI with the dense covariance ``s2 I + Z D Z'`` (float64, by hand)."""
    import jax.numpy as jnp
    from scipy.stats import multivariate_normal

    from mixwise.mmm.model import _geo_marginal_loglik

    _, design, dev, rest = _geo_case(geo_fit)
    sigma = 0.07
    got = float(
        _geo_marginal_loglik(design, jnp.asarray(rest), jnp.asarray(dev), jnp.asarray(sigma))
    )
    z, sd, _, _ = _dense_geo_posterior(design, rest, dev, sigma**2)
    fitted = design.row_mask > 0
    zf = z[fitted]
    cov = sigma**2 * np.eye(len(zf)) + zf @ np.diag(sd**2) @ zf.T
    prior_level = (design.x @ design.mean)[fitted]
    want = multivariate_normal(prior_level, cov).logpdf(rest.reshape(-1)[fitted])
    assert abs(got - want) < 1e-4 * abs(want), (got, want)


def test_geo_roi_draws_follow_their_exact_conditional_posterior(geo_fit: MMM) -> None:
    """One posterior draw of the curves repeated 4000 times: the drawn baseline coefficients
    and geo ROIs have the dense posterior's mean and sd (Monte Carlo tolerance), and the
    ``beta`` they give is each geo's ROI times the channel's beta per unit ROI."""
    from mixwise.mmm.model import per_unit_roi, sample_geo_coefficients

    inputs, design, _, _ = _geo_case(geo_fit)
    n = 4000
    s = geo_fit.samples_
    sat = np.repeat(s["saturated"][:1].astype(np.float32), n, axis=0)
    roi, spread = s["roi"][:1], np.array([[0.3, 0.2]])
    sigma = float(s["sigma"][0])
    kpi = geo_fit.data_.kpi_values / inputs.kpi_scale
    out = sample_geo_coefficients(
        inputs, kpi, sat, np.repeat(roi, n, 0), np.repeat(spread, n, 0), None,
        np.full(n, sigma), seed=1,
    )  # fmt: skip
    unit = np.asarray(per_unit_roi(inputs, sat[0])).astype(np.float64)  # (G, C)
    media = np.einsum("tgc,gc->tg", sat[0].astype(np.float64), unit * roi)
    rest = kpi - media
    r = (rest - (design.x @ design.mean).reshape(rest.shape)) * design.row_mask.reshape(rest.shape)
    dev = sat[0].astype(np.float64) * unit * (roi * spread)
    _, _, mean, cov = _dense_geo_posterior(design, r, dev, sigma**2)
    sd = np.sqrt(np.diag(cov))
    p = len(design.sd)
    w = (out["roi_geo"] / roi[:, None, :] - 1.0) / spread[:, None, :]  # (n, G, C)
    coef = np.full((n, p), np.nan)
    for name, lo, hi in design.blocks:
        coef[:, lo:hi] = np.asarray(out[name]).reshape(n, -1)
    coef -= design.mean[None, :]
    live = np.concatenate([np.any(design.masked != 0, axis=0), np.ones(w[0].size, dtype=bool)])
    drawn = np.concatenate([coef, w.reshape(n, -1)], axis=1)[:, live]
    want_mean, want_sd = mean[live], sd[live]
    np.testing.assert_allclose(drawn.mean(axis=0), want_mean, atol=5 * want_sd.max() / np.sqrt(n))
    np.testing.assert_allclose(drawn.std(axis=0), want_sd, rtol=0.08)
    np.testing.assert_allclose(out["beta"], out["roi_geo"] * unit[None], rtol=1e-5)


def test_a_panel_samples_the_marginal_roi_and_keeps_the_roi_prior(geo_fit: MMM) -> None:
    """A panel's sampler moves the log marginal ROI: each draw's ROI is it times the Hill
    curve's average over marginal return, ``sum s / sum slope s (1 - s)`` (the elasticity of
    a Hill curve, by hand), and the ROI's prior is still its LogNormal (the factor is its
    density in log coordinates, by scipy)."""
    from numpyro import handlers
    from scipy.stats import norm

    from mixwise.mmm.model import media_model

    s = geo_fit.samples_
    sat = s["saturated"].astype(np.float64)  # (N, T, G, C)
    slope = s["slope"].astype(np.float64)[:, None, None, :]
    ratio = sat.sum(axis=(1, 2)) / (slope * sat * (1 - sat)).sum(axis=(1, 2))
    np.testing.assert_allclose(s["roi"], np.exp(s["log_mroi"]) * ratio, rtol=1e-4)
    assert np.all(ratio > 1)  # a concave-at-the-data curve returns less at the margin

    inputs = geo_fit.inputs_
    point = {k: s[k][0] for k in ("alpha", "half", "slope", "log_mroi", "roi_geo_sd", "sigma")}
    kpi = geo_fit.data_.kpi_values / inputs.kpi_scale
    with handlers.trace() as tr, handlers.substitute(data=point), handlers.seed(rng_seed=0):
        media_model(inputs, geo_fit.adstock_, geo_fit.saturation_, kpi)
    site = tr["log_mroi"]
    assert float(site["fn"].log_prob(site["value"]).sum()) == 0.0  # flat: the factor is all
    roi = np.asarray(tr["roi"]["value"], dtype=np.float64)
    want = norm(np.log(inputs.roi_median), inputs.roi_sigma).logpdf(np.log(roi)).sum()
    got = float(tr["roi_prior"]["fn"].log_prob(tr["roi_prior"]["value"]))
    assert got == pytest.approx(want, rel=1e-5)


def test_roi_by_geo_is_each_geos_return_and_adds_up_to_the_national(
    geo_fit: MMM, tiny_mmm: MMM
) -> None:
    """Each geo's ROI is its contribution over its spend: the mean of its drawn geo ROIs; the
    geos' ROIs weighted by their spend give the national ROI; geos come largest first."""
    frame = geo_fit.roi_by_geo_
    assert list(frame.index.get_level_values("geo").unique()) == ["g2", "g1", "g0"]
    s = geo_fit.samples_
    for g, geo in enumerate(geo_fit.data_.geos):
        for c, channel in enumerate(geo_fit.data_.channels):
            row = frame.loc[(geo, channel)]
            assert row["mean"] == pytest.approx(s["roi_geo"][:, g, c].mean(), rel=1e-4)
            assert row["lower"] < row["mean"] < row["upper"]
            assert row["spend"] == pytest.approx(geo_fit.data_.spend[:, g, c].sum(), rel=1e-9)
    weighted = (frame["mean"] * frame["spend"]).groupby(level="channel").sum()
    spend = frame["spend"].groupby(level="channel").sum()
    national = geo_fit.roi_["mean"]
    np.testing.assert_allclose((weighted / spend)[national.index], national, rtol=1e-5)
    by_geo = geo_fit.summary()["roi_by_geo"]
    assert list(by_geo) == ["g2", "g1", "g0"] and set(by_geo["g0"]) == {"a", "b"}
    assert tiny_mmm.summary()["roi_by_geo"] == {}  # national: nothing by geo


def test_mmm_show_prints_a_panels_roi_by_geo(workspace, tiny_geo_mmm: MMM) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from mixwise.cli import main
    from mixwise.mmm.runs import save_run

    save_run(workspace, tiny_geo_mmm)
    env = {"MIXWISE_DATABASE_URL": workspace.state.url}
    out = CliRunner().invoke(main, ["mmm", "show", "-w", str(workspace.path)], env=env)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("ROI by geo"))
    assert lines[head + 1].split() == ["geo", "tv", "search"]
    assert [line.split()[0] for line in lines[head + 2 : head + 4]] == ["south", "north"]
    mean = tiny_geo_mmm.roi_by_geo_.loc[("north", "tv"), "mean"]
    assert f"{mean:.2f}" in lines[head + 3]
