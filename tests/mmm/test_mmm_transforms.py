import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.distributions import constraints
from scipy import stats

from mixwise.mmm.transforms import (
    ADSTOCKS,
    SATURATIONS,
    Adstock,
    GeometricAdstock,
    HillSaturation,
    LogisticSaturation,
    Saturation,
    WeibullAdstock,
    from_dict,
    get_adstock,
    get_saturation,
    hill_saturation,
    register_adstock,
    register_saturation,
    weibull_weights,
)
from mixwise.simulate import geometric_adstock as sim_geometric_adstock
from mixwise.simulate import hill as sim_hill

F32 = {"rtol": 1e-5, "atol": 1e-6}


# -- adstock --------------------------------------------------------------------------------


def test_geometric_impulse_by_hand() -> None:
    x = jnp.array([1.0, 0.0, 0.0, 0.0])
    raw = np.array([1.0, 0.5, 0.25, 0.125])
    np.testing.assert_allclose(GeometricAdstock(l_max=4).apply(x, alpha=0.5), raw / 1.875, **F32)
    unnormalised = GeometricAdstock(l_max=4, normalize=False).apply(x, alpha=0.5)
    np.testing.assert_allclose(unnormalised, raw, **F32)
    # l_max truncates: nothing is carried past lag 1.
    np.testing.assert_allclose(
        GeometricAdstock(l_max=2).apply(x, alpha=0.5), [2 / 3, 1 / 3, 0, 0], **F32
    )


def test_geometric_constant_reaches_the_constant_after_warm_up() -> None:
    out = np.asarray(GeometricAdstock(l_max=4).apply(jnp.full(12, 3.0), alpha=0.5))
    partial = 3.0 * np.cumsum([1.0, 0.5, 0.25]) / 1.875
    np.testing.assert_allclose(out[:3], partial, **F32)
    np.testing.assert_allclose(out[3:], 3.0, **F32)


def test_geometric_per_day_is_the_weekly_total_of_a_daily_carry_over() -> None:
    """steps=7: a weekly series' adstock is, week by week, the total over the week's days of
    the daily geometric filter applied to the week's spend spread evenly over its days
    (computed here day by day with the simulator's infinite filter)."""
    rng = np.random.default_rng(4)
    weekly = rng.gamma(2.0, 0.5, size=40)
    weekly[[5, 6, 7, 20]] = 0.0  # weeks off, as in flights
    for alpha in (0.3, 0.7, 0.95):
        daily = np.repeat(weekly / 7.0, 7)[None, :]
        by_day = sim_geometric_adstock(daily, alpha, normalize=True)[0]
        expected = by_day.reshape(-1, 7).sum(axis=1)
        # 0.95**(7*39) ~ 1e-6: 40 lags hold the whole kernel; normalising changes nothing.
        ours = GeometricAdstock(l_max=40, steps=7).apply(weekly.astype(np.float32), alpha=alpha)
        np.testing.assert_allclose(np.asarray(ours), expected, rtol=2e-5, atol=2e-5)


def test_geometric_per_day_weights_by_hand() -> None:
    from mixwise.mmm.transforms import geometric_weights

    # steps=2, alpha=0.5: g = 1.5; w0 = (2 + 0.5) / 2 = 1.25; w_l = 0.5 * 2.25 / 2 * 0.25**(l-1)
    raw = np.array([1.25, 0.5625, 0.140625])
    got = geometric_weights(0.5, 3, normalize=False, steps=2)
    np.testing.assert_allclose(np.asarray(got), raw, **F32)
    np.testing.assert_allclose(geometric_weights(0.5, 3, steps=2), raw / raw.sum(), **F32)
    # steps=1 is the plain alpha**l, and alpha -> 1 stays finite (no 0/0).
    np.testing.assert_allclose(
        geometric_weights(0.5, 3, normalize=False, steps=1), [1.0, 0.5, 0.25], **F32
    )
    near_one = np.asarray(geometric_weights(jnp.float32(0.99999), 8, steps=7))
    assert np.all(np.isfinite(near_one)) and abs(near_one.sum() - 1) < 1e-5
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        geometric_weights(0.5, 3, steps=0)


def test_series_shorter_than_l_max() -> None:
    out = GeometricAdstock(l_max=8, normalize=False).apply(jnp.array([2.0, 1.0]), alpha=0.5)
    np.testing.assert_allclose(out, [2.0, 1.0 + 0.5 * 2.0], **F32)


def test_two_channels_with_their_own_alpha() -> None:
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 0.5, size=(30, 2)).astype(np.float32)
    adstock = GeometricAdstock(l_max=6)
    both = np.asarray(adstock.apply(x, alpha=jnp.array([0.2, 0.7])))
    assert both.shape == (30, 2)
    for c, alpha in enumerate([0.2, 0.7]):
        np.testing.assert_allclose(both[:, c], adstock.apply(x[:, c], alpha=alpha), **F32)
    # A scalar parameter is shared by every channel.
    shared = np.asarray(adstock.apply(x, alpha=0.2))
    np.testing.assert_allclose(shared[:, 1], adstock.apply(x[:, 1], alpha=0.2), **F32)


def test_geometric_matches_the_simulators_infinite_filter() -> None:
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 0.5, size=(3, 120))  # simulator: time on the last axis
    expected = sim_geometric_adstock(x, 0.6, normalize=True)
    # 0.6**60 ~ 5e-14: truncation at 60 lags is invisible; both start from zero.
    ours = GeometricAdstock(l_max=60).apply(x.T.astype(np.float32), alpha=0.6)
    np.testing.assert_allclose(np.asarray(ours).T, expected, rtol=1e-5, atol=1e-5)


def test_weibull_weights_match_scipy_pdf_and_sum_to_one() -> None:
    u = np.arange(1, 11) / 10
    for k, lam in [(0.7, 0.3), (1.0, 0.5), (2.5, 0.4)]:
        pdf = stats.weibull_min(c=k, scale=lam).pdf(u)
        w = np.asarray(weibull_weights(k, lam, 10))
        np.testing.assert_allclose(w, pdf / pdf.sum(), rtol=1e-5, atol=1e-7)
        assert w.sum() == pytest.approx(1.0, abs=1e-6)


def test_weibull_peak_is_where_the_pdf_peaks() -> None:
    # shape 2: mode at scale / sqrt(2) = 0.4 of the window = u_3 with l_max 10, i.e. lag 3.
    w = np.asarray(weibull_weights(2.0, 0.4 * math.sqrt(2.0), 10))
    assert int(np.argmax(w)) == 3
    assert np.all(np.diff(w[:4]) > 0) and np.all(np.diff(w[3:]) < 0)
    # The docstring's example: l_max 8, shape 2, scale 0.35 peaks one period after spend.
    assert int(np.argmax(weibull_weights(2.0, 0.35, 8))) == 1
    # shape <= 1 only decays.
    assert np.all(np.diff(np.asarray(weibull_weights(0.8, 0.3, 8))) < 0)


def test_weibull_adstock_per_channel_and_steady_state() -> None:
    adstock = WeibullAdstock(l_max=5)
    impulse = jnp.zeros((8, 2)).at[0].set(1.0)
    shape, scale = jnp.array([0.8, 3.0]), jnp.array([0.3, 0.6])
    out = np.asarray(adstock.apply(impulse, shape=shape, scale=scale))
    for c in range(2):
        np.testing.assert_allclose(out[:5, c], weibull_weights(shape[c], scale[c], 5), **F32)
        np.testing.assert_allclose(out[5:, c], 0.0, atol=1e-7)
    steady = adstock.apply(jnp.full((12, 2), 2.0), shape=shape, scale=scale)
    np.testing.assert_allclose(np.asarray(steady)[4:], 2.0, **F32)


def test_adstock_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"x shaped \(T, C\)"):
        GeometricAdstock().apply(jnp.ones(10), alpha=jnp.array([0.3, 0.5]))
    with pytest.raises(ValueError, match=r"\(T,\), \(T, C\) or \(T, G, C\)"):
        GeometricAdstock().apply(jnp.ones((4, 2, 2, 2)), alpha=0.5)


def test_geo_panels_carry_over_each_geo_with_the_channel_parameters() -> None:
    """(T, G, C) spend: every geo's series is carried over with its channel's parameters,
    exactly as that geo's (T, C) slice alone."""
    x = np.random.default_rng(5).gamma(2.0, 0.5, size=(12, 3, 2)).astype(np.float32)
    alpha = jnp.array([0.3, 0.7])
    panel = np.asarray(GeometricAdstock(l_max=4).apply(jnp.asarray(x), alpha=alpha))
    for g in range(3):
        alone = np.asarray(GeometricAdstock(l_max=4).apply(jnp.asarray(x[:, g, :]), alpha=alpha))
        np.testing.assert_allclose(panel[:, g, :], alone, rtol=1e-6)
    with pytest.raises(ValueError, match="l_max"):
        GeometricAdstock(l_max=0).apply(jnp.ones(4), alpha=0.5)


def test_apply_names_its_parameters() -> None:
    with pytest.raises(TypeError, match="alpha"):
        GeometricAdstock().apply(jnp.ones(4), decay=0.5)
    with pytest.raises(TypeError, match="slope"):
        HillSaturation().apply(jnp.ones(4), half=1.0)


def test_adstock_jits_and_differentiates() -> None:
    x = jnp.linspace(0.0, 2.0, 20)
    adstock = WeibullAdstock(l_max=6)

    def total(shape: jax.Array, scale: jax.Array) -> jax.Array:
        return jnp.sum(adstock.apply(x, shape=shape, scale=scale) ** 2)

    value, (g_shape, g_scale) = jax.jit(jax.value_and_grad(total, argnums=(0, 1)))(2.0, 0.4)
    assert float(value) == pytest.approx(float(total(2.0, 0.4)), rel=1e-6)
    h = 1e-2  # central differences in float32
    fd_shape = (total(2.0 + h, 0.4) - total(2.0 - h, 0.4)) / (2 * h)
    fd_scale = (total(2.0, 0.4 + h) - total(2.0, 0.4 - h)) / (2 * h)
    assert float(g_shape) == pytest.approx(float(fd_shape), rel=1e-2)
    assert float(g_scale) == pytest.approx(float(fd_scale), rel=1e-2)
    assert abs(float(g_scale)) > 1e-3
    g_alpha = jax.grad(lambda a: jnp.sum(GeometricAdstock().apply(x, alpha=a) ** 2))(0.5)
    assert np.isfinite(float(g_alpha)) and float(g_alpha) != 0.0


# -- saturation -----------------------------------------------------------------------------


def test_hill_by_hand() -> None:
    hill = HillSaturation()
    np.testing.assert_allclose(
        hill.apply(jnp.array([-1.0, 0.0, 1.0, 2.0, 3.0]), half=1.0, slope=2.0),
        [0.0, 0.0, 0.5, 0.8, 0.9],
        **F32,
    )
    assert float(hill.apply(jnp.array(2.5), half=2.5, slope=0.7)) == pytest.approx(0.5)
    step = np.asarray(hill.apply(jnp.array([0.9, 1.1]), half=1.0, slope=60.0))
    assert step[0] < 0.01 and step[1] > 0.99
    assert float(hill.apply(jnp.array(1e30), half=1.0, slope=3.0)) == 1.0


def test_hill_matches_the_simulator_per_channel() -> None:
    x = np.linspace(0.0, 4.0, 41)[:, None] * np.ones((1, 3))
    half, slope = np.array([0.5, 1.0, 2.0]), np.array([0.8, 1.0, 3.0])
    ours = np.asarray(HillSaturation().apply(x.astype(np.float32), half=half, slope=slope))
    for c in range(3):
        np.testing.assert_allclose(ours[:, c], sim_hill(x[:, c], half[c], slope[c]), **F32)


def test_logistic_by_hand() -> None:
    logistic = LogisticSaturation()
    out = np.asarray(logistic.apply(jnp.array([0.0, 1.0, 50.0]), lam=2.0))
    by_hand = (1 - math.exp(-2.0)) / (1 + math.exp(-2.0))
    np.testing.assert_allclose(out, [0.0, by_hand, 1.0], **F32)
    # half of the maximum at log(3) / lam
    assert float(logistic.apply(jnp.array(math.log(3.0) / 4.0), lam=4.0)) == pytest.approx(0.5)


@pytest.mark.parametrize("slope", [0.5, 2.0])
def test_saturation_gradients_are_finite_at_zero(slope: float) -> None:
    x = jnp.array([0.0, 0.0, 1e-30, 1e-3, 1.0, 10.0])

    def hill_total(x: jax.Array, half: jax.Array, slope: jax.Array) -> jax.Array:
        return jnp.sum(hill_saturation(x, half, slope))

    grads = jax.grad(hill_total, argnums=(0, 1, 2))(x, 1.0, slope)
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))
    assert np.asarray(grads[0])[0] == 0.0
    g_log = jax.grad(lambda x: jnp.sum(LogisticSaturation().apply(x, lam=2.0)))(x)
    np.testing.assert_allclose(np.asarray(g_log)[:2], 1.0, **F32)  # d/dx tanh(x) at 0


# -- registry -------------------------------------------------------------------------------


def test_registries_hold_the_builtins() -> None:
    assert dict(ADSTOCKS) == {"geometric": GeometricAdstock, "weibull": WeibullAdstock}
    assert dict(SATURATIONS) == {"hill": HillSaturation, "logistic": LogisticSaturation}


@pytest.mark.parametrize(
    "component",
    [
        GeometricAdstock(),
        GeometricAdstock(l_max=13, normalize=False),
        WeibullAdstock(l_max=20),
        HillSaturation(),
        LogisticSaturation(),
    ],
    ids=repr,
)
def test_round_trip(component: Adstock | Saturation) -> None:
    data = component.to_dict()
    assert data["name"] == component.name
    rebuilt = from_dict(data)
    assert type(rebuilt) is type(component)
    assert rebuilt == component
    assert rebuilt.to_dict() == data


def test_to_dict_and_lookup_by_name() -> None:
    assert GeometricAdstock(l_max=13, normalize=False).to_dict() == {
        "name": "geometric",
        "l_max": 13,
        "normalize": False,
        "steps": 1,
    }
    assert HillSaturation().to_dict() == {"name": "hill", "slope_sd": 0.3}
    assert get_saturation("hill", slope_sd=0.01) == HillSaturation(slope_sd=0.01)
    assert get_adstock("weibull", l_max=4) == WeibullAdstock(l_max=4)
    assert get_adstock("geometric") != GeometricAdstock(l_max=9)
    assert get_saturation("logistic") == LogisticSaturation()


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known adstocks: geometric, weibull"):
        get_adstock("hill")
    with pytest.raises(ValueError, match="known saturations: hill, logistic"):
        get_saturation("michaelis")
    with pytest.raises(ValueError, match="geometric, hill, logistic, weibull"):
        from_dict({"name": "delayed", "l_max": 4})


def test_register_a_user_component_and_refuse_taken_names() -> None:
    class TanhSaturation(Saturation):
        name = "tanh_test"
        param_names = ("b",)

        def apply(self, x, **params):
            return jnp.tanh(jnp.asarray(x) / self._params(params)["b"])

    class Clash(Adstock):
        name = "hill"  # taken by a saturation: from_dict could not tell them apart

    class Clash2(Saturation):
        name = "logistic"

    try:
        assert register_saturation(TanhSaturation) is TanhSaturation
        rebuilt = from_dict({"name": "tanh_test"})
        assert isinstance(rebuilt, TanhSaturation)
        assert float(rebuilt.apply(jnp.array(2.0), b=2.0)) == pytest.approx(math.tanh(1.0))
        with pytest.raises(ValueError, match="already taken by HillSaturation"):
            register_adstock(Clash)
        with pytest.raises(ValueError, match="already taken by LogisticSaturation"):
            register_saturation(Clash2)
        assert "hill" not in ADSTOCKS and SATURATIONS["logistic"] is LogisticSaturation
    finally:
        SATURATIONS.pop("tanh_test", None)


# -- priors ---------------------------------------------------------------------------------

COMPONENTS = [GeometricAdstock(), WeibullAdstock(), HillSaturation(), LogisticSaturation()]
SUPPORT = {
    "alpha": (0.0, 1.0),
    "shape": (0.0, np.inf),
    "scale": (0.0, np.inf),
    "half": (0.0, np.inf),
    "slope": (0.0, np.inf),
    "lam": (0.0, np.inf),
}


@pytest.fixture(scope="module")
def prior_draws() -> dict[str, dict[str, np.ndarray]]:
    """4000 draws of every default prior for 3 channels (one sampler compile per family)."""
    key = jax.random.PRNGKey(0)
    draws: dict[str, dict[str, np.ndarray]] = {}
    for i, component in enumerate(COMPONENTS):
        priors = component.priors(3)
        assert tuple(priors) == component.param_names
        assert all(prior.batch_shape == (3,) for prior in priors.values())
        draws[component.name] = {
            name: np.asarray(prior.sample(jax.random.fold_in(key, 10 * i + j), (4000,)))
            for j, (name, prior) in enumerate(priors.items())
        }
    return draws


@pytest.mark.parametrize("component", COMPONENTS, ids=repr)
def test_priors_respect_the_constraints(
    component: Adstock | Saturation, prior_draws: dict[str, dict[str, np.ndarray]]
) -> None:
    for name, prior in component.priors(2).items():
        expected = constraints.unit_interval if name == "alpha" else constraints.positive
        assert prior.support is expected, name
        assert prior.batch_shape == (2,)
    draws = prior_draws[component.name]
    for name, sample in draws.items():
        assert sample.shape == (4000, 3)
        low, high = SUPPORT[name]
        assert np.all(sample > low) and np.all(sample < high), name
    # Every prior draw gives a finite transform of mean-one spend.
    x = jnp.asarray(np.random.default_rng(2).gamma(2.0, 0.5, size=(20, 3)), dtype=jnp.float32)
    out = jax.vmap(lambda p: component.apply(x, **p))({k: v[:64] for k, v in draws.items()})
    assert out.shape == (64, 20, 3) and np.all(np.isfinite(np.asarray(out)))


def test_prior_defaults_sit_where_documented(
    prior_draws: dict[str, dict[str, np.ndarray]],
) -> None:
    half, slope = prior_draws["hill"]["half"], prior_draws["hill"]["slope"]
    assert 0.95 < half.mean() < 1.05
    # LogNormal(0, 0.3): median 1, 95 % between exp(±1.96 · 0.3) = 0.56 and 1.80.
    assert 0.98 < np.median(slope) < 1.02
    assert 0.94 < np.mean((slope > 0.56) & (slope < 1.80)) < 0.96
    assert 0.48 < prior_draws["geometric"]["alpha"].mean() < 0.52
    assert 0.82 < np.mean(prior_draws["weibull"]["shape"] > 1.0) < 0.89
    # Half of the logistic's maximum at log(3)/lam: around an average period's spend.
    assert 1.0 < np.median(math.log(3.0) / prior_draws["logistic"]["lam"]) < 1.4


def test_hill_slope_prior_can_be_narrowed_to_hold_curves_concave() -> None:
    """``slope_sd`` is the log slope's prior sd: 0.01 keeps every draw within ~3 % of 1."""
    narrow = HillSaturation(slope_sd=0.01).priors(3)["slope"]
    draws = np.asarray(narrow.sample(jax.random.PRNGKey(0), (2000,)))
    assert draws.shape == (2000, 3) and np.all(np.abs(draws - 1) < 0.05)
    assert np.std(np.log(draws)) == pytest.approx(0.01, rel=0.1)
    default = np.asarray(HillSaturation().priors(1)["slope"].sample(jax.random.PRNGKey(1), (4000,)))
    assert np.std(np.log(default)) == pytest.approx(0.3, rel=0.1)
    with pytest.raises(ValueError, match="slope_sd must be > 0"):
        HillSaturation(slope_sd=0.0).priors(1)
