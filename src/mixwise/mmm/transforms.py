"""Media transforms of the marketing mix model: adstock (carry-over) and saturation.

A channel's contribution is ``beta * saturation(adstock(spend))``. This module holds the two
inner pieces, first as pure, differentiable, jit-able ``jax.numpy`` functions, then as small
registered component classes that a model run stores and reloads by name.

Shapes
    Spend ``x`` is shaped ``(T,)`` (one channel) or ``(T, C)``: time on axis 0, channels in the
    last axis. Parameters are scalars or shaped ``(C,)`` and broadcast against one time slice
    ``x[t]``, so a ``(C,)`` parameter gives every channel its own value. Adstock works along
    axis 0; saturation is elementwise. Dtypes are kept as given (float32 by default in JAX):
    the model scales spend to O(1), where float32 is ample, and nothing here switches on x64.

Adstock (carry-over)
    Spend in period ``t`` keeps working in later periods. Every adstock is a causal, truncated
    convolution with weights ``w[0 .. l_max-1]`` (``w[0]`` is the same period)::

        adstock(x)[t] = sum_{l=0}^{l_max-1} w[l] * x[t-l]        (x[s] = 0 for s < 0)

    **Normalisation.** With weights that sum to one, a steady spend ``x`` gives (after
    ``l_max - 1`` periods of warm-up) a steady adstock equal to ``x``: adstock moves spend in
    time without changing its total, so the saturation's half-saturation point stays in spend
    units and ``beta`` keeps its meaning whatever the carry-over.

    ``geometric`` — weights ``alpha**l`` for ``l = 0 .. l_max-1``, ``0 < alpha < 1``, divided by
    their sum ``(1 - alpha**l_max) / (1 - alpha)`` when ``normalize=True`` (the default). The
    effect is largest in the period of spend and halves every ``log(0.5) / log(alpha)``
    periods. As ``l_max`` grows this is the infinite geometric filter
    ``a[t] = (1 - alpha) * x[t] + alpha * a[t-1]`` of :func:`mixwise.simulate.geometric_adstock`.

    **Decay within the period** (``steps`` > 1, what the model uses for weekly data, with
    ``steps=7``): ``alpha`` is the decay per *step* (per day), and a period's adstock is the sum
    over its steps of that finer geometric filter, with the period's spend spread evenly over
    its steps. That is the weekly total of a daily carry-over, exactly: with ``s = steps`` and
    ``g = 1 + alpha + … + alpha**(s-1)`` the weights (before normalisation, scaled so that
    ``steps=1`` gives ``alpha**l``) are::

        w[0] = (1/s) * sum_{i<s} (s - i) * alpha**i           (the spend's own period)
        w[l] = (alpha * g**2 / s) * alpha**(s*(l-1))           (l >= 1)

    so the share kept in the week of spend and the week-to-week decay (``alpha**s``) are no
    longer tied together as ``1 : alpha : alpha**2``. Why: a daily decay of 0.7 keeps 69 % of
    the effect in the week of spend, 28 % the next week and 2 % the week after; no weekly
    ``alpha**l`` has that shape, and the mismatch went into the small channels whose flights
    overlap (on the benchmark's flighted markets the mean ROI error fell from 11.3 % to 5.6 %,
    ``benchmarks/RESULTS.md``). Written as polynomials in ``alpha``: no cancellation near 1.

    ``weibull`` — a delayed or decaying shape from the Weibull density (as in Robyn and
    PyMC-Marketing). Lag ``l`` is placed at ``u_l = (l + 1) / l_max`` in ``(0, 1]`` (so
    ``scale`` is measured in units of the whole window) and gets weight proportional to the
    Weibull pdf there::

        w[l] ∝ (u_l / scale) ** (shape - 1) * exp(-(u_l / scale) ** shape),   sum_l w[l] = 1

    (the pdf's constant ``shape / scale`` cancels in the normalisation, which is always on).
    ``shape <= 1`` gives weights that only decay; ``shape > 1`` gives a delayed peak at one of
    the two lags around ``l_max * scale * ((shape - 1) / shape) ** (1 / shape) - 1``. Example:
    ``l_max=8``, ``shape=2``, ``scale=0.35`` peaks one period after the spend.

Saturation (diminishing returns), elementwise, 0 at zero spend and increasing towards 1
    ``hill`` — ``x**slope / (x**slope + half**slope) = 1 / (1 + (half / x)**slope)``: ``half``
    is the (adstocked) spend that reaches half of the maximum effect, in the units of ``x``;
    ``slope > 1`` makes an S curve, ``slope <= 1`` a concave one. Computed as
    ``sigmoid(slope * (log x - log half))`` behind a safe ``where``: 0 for ``x <= 0``, no
    overflow for tiny ``x`` and finite gradients at ``x = 0``.

    ``logistic`` — ``(1 - exp(-lam * x)) / (1 + exp(-lam * x)) = tanh(lam * x / 2)``:
    concave from the start; half of the maximum is reached at ``x = log(3) / lam ≈ 1.1 / lam``.

Priors
    ``priors(n_channels)`` returns one NumPyro distribution per parameter with batch shape
    ``(n_channels,)``. The defaults assume the model's scaling: **each channel's spend is
    divided by its mean**, so a value of 1 is an average period's spend. Each choice is
    justified beside it.

Components
    Configuration goes in ``__init__`` (no work, no validation); the class attributes ``name``
    and ``param_names`` say what the registry calls it and what ``apply(x, **params)`` takes.
    ``to_dict()`` gives ``{"name": ..., **constructor arguments}``; :func:`from_dict` rebuilds it.
    A user adds a component with :func:`register_adstock` or :func:`register_saturation`::

        @register_saturation
        class TanhSaturation(Saturation):
            name = "tanh"
            param_names = ("b",)

            def apply(self, x, **params):
                return jnp.tanh(jnp.asarray(x) / self._params(params)["b"])

            def priors(self, n_channels):
                return {"b": dist.Gamma(3.0, 3.0).expand([n_channels])}
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar, TypeVar

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.typing import ArrayLike

__all__ = [
    "ADSTOCKS",
    "SATURATIONS",
    "Adstock",
    "GeometricAdstock",
    "HillSaturation",
    "LogisticSaturation",
    "MediaTransform",
    "Saturation",
    "WeibullAdstock",
    "causal_convolve",
    "from_dict",
    "geometric_adstock",
    "geometric_weights",
    "get_adstock",
    "get_saturation",
    "hill_saturation",
    "logistic_saturation",
    "register_adstock",
    "register_saturation",
    "weibull_adstock",
    "weibull_weights",
]


# -- pure functions -------------------------------------------------------------------------


def _lag_axis(param: jax.Array) -> jax.Array:
    """``param`` with a leading axis of length 1, to broadcast against the lags."""
    return param[None, ...]


@partial(jax.jit, static_argnames=("l_max", "normalize", "steps"))
def geometric_weights(
    alpha: ArrayLike, l_max: int, *, normalize: bool = True, steps: int = 1
) -> jax.Array:
    """Weights ``alpha**l`` for ``l = 0 .. l_max-1``, shaped ``(l_max, *alpha.shape)``; with
    ``steps`` > 1 the period total of a per-step decay ``alpha`` (module docstring)."""
    _check_l_max(l_max)
    _check_steps(steps)
    a = jnp.asarray(alpha)
    if steps == 1:
        lags = jnp.arange(l_max).reshape((l_max,) + (1,) * a.ndim)
        w = _lag_axis(a) ** lags
    else:
        powers = [jnp.ones_like(a)]  # alpha**0 .. alpha**steps by products: cheap, exact
        for _ in range(steps):
            powers.append(powers[-1] * a)
        g = sum(powers[:steps])
        first = sum((steps - i) * powers[i] for i in range(steps)) / steps
        lag = a * g * g / steps
        weights = [first]
        for _ in range(1, l_max):
            weights.append(lag)
            lag = lag * powers[steps]
        w = jnp.stack(weights)
    return w / jnp.sum(w, axis=0) if normalize else w


@partial(jax.jit, static_argnames=("l_max",))
def weibull_weights(shape: ArrayLike, scale: ArrayLike, l_max: int) -> jax.Array:
    """Normalised Weibull-pdf weights at ``u_l = (l+1)/l_max``, shaped ``(l_max, *params)``."""
    _check_l_max(l_max)
    k, lam = jnp.broadcast_arrays(jnp.asarray(shape), jnp.asarray(scale))
    u = (jnp.arange(l_max) + 1.0) / l_max
    z = u.reshape((l_max,) + (1,) * k.ndim) / _lag_axis(lam)
    # log pdf up to a constant, normalised by softmax: no overflow for peaked shapes.
    log_w = (_lag_axis(k) - 1.0) * jnp.log(z) - z ** _lag_axis(k)
    return jax.nn.softmax(log_w, axis=0)


@jax.jit
def causal_convolve(x: ArrayLike, weights: ArrayLike) -> jax.Array:
    """``out[t] = sum_l weights[l] * x[t-l]`` along axis 0, zero before the start.

    ``x`` is ``(T,)``, ``(T, C)`` or ``(T, G, C)`` (geos × channels); ``weights`` is ``(L,)``
    or ``(L, C)`` (one column per channel, shared by the geos). The lagged copies ``x[t-l]``
    are static slices of the zero-padded series, weighted and summed: differentiable,
    jit-able, and an elementwise product (not a matmul) so float32 keeps full precision on
    accelerators.
    """
    xs = jnp.asarray(x)
    w = jnp.asarray(weights)
    if xs.ndim not in (1, 2, 3):
        raise ValueError(f"x must be shaped (T,), (T, C) or (T, G, C), got {xs.shape}")
    if w.ndim > xs.ndim:
        raise ValueError(
            f"per-channel parameters (weights {w.shape}) need x shaped (T, C), got {xs.shape}"
        )
    n_lags, n_t = w.shape[0], xs.shape[0]
    padded = jnp.pad(xs, [(n_lags - 1, 0)] + [(0, 0)] * (xs.ndim - 1))
    # padded[n_lags - 1 + s] == x[s]; the zeros in front stand for x before the start. One
    # static slice per lag (not a gather: its gradient would be a scatter, slow on CPU).
    w = w.reshape((n_lags,) + (1,) * (xs.ndim - w.ndim) + w.shape[1:])
    out = w[0] * padded[n_lags - 1 : n_lags - 1 + n_t]
    for lag in range(1, n_lags):
        out = out + w[lag] * padded[n_lags - 1 - lag : n_lags - 1 - lag + n_t]
    return out


@partial(jax.jit, static_argnames=("l_max", "normalize", "steps"))
def geometric_adstock(
    x: ArrayLike, alpha: ArrayLike, *, l_max: int = 8, normalize: bool = True, steps: int = 1
) -> jax.Array:
    """Geometric carry-over along axis 0 (see the module docstring)."""
    return causal_convolve(x, geometric_weights(alpha, l_max, normalize=normalize, steps=steps))


@partial(jax.jit, static_argnames=("l_max",))
def weibull_adstock(
    x: ArrayLike, shape: ArrayLike, scale: ArrayLike, *, l_max: int = 8
) -> jax.Array:
    """Weibull-pdf carry-over along axis 0, weights normalised to sum 1."""
    return causal_convolve(x, weibull_weights(shape, scale, l_max))


@jax.jit
def hill_saturation(x: ArrayLike, half: ArrayLike, slope: ArrayLike) -> jax.Array:
    """``x**slope / (x**slope + half**slope)``, 0 for ``x <= 0``, finite gradients at 0."""
    xs = jnp.asarray(x)
    positive = xs > 0
    # Evaluate the log at 1 where x <= 0 so neither branch's gradient is NaN there.
    log_x = jnp.log(jnp.where(positive, xs, 1.0))
    value = jax.nn.sigmoid(jnp.asarray(slope) * (log_x - jnp.log(jnp.asarray(half))))
    return jnp.where(positive, value, 0.0)


@jax.jit
def logistic_saturation(x: ArrayLike, lam: ArrayLike) -> jax.Array:
    """``(1 - exp(-lam x)) / (1 + exp(-lam x))``, written as ``tanh(lam x / 2)``."""
    return jnp.tanh(jnp.asarray(lam) * jnp.asarray(x) / 2.0)


def _check_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")


def _check_l_max(l_max: int) -> None:
    if isinstance(l_max, bool) or not isinstance(l_max, int) or l_max < 1:
        raise ValueError(f"l_max must be a positive integer, got {l_max!r}")


# -- components -----------------------------------------------------------------------------


class MediaTransform:
    """Base of adstock and saturation components: parameters, serialisation, equality."""

    #: Registry key; also ``to_dict()["name"]``.
    name: ClassVar[str] = ""
    #: Keyword arguments of :meth:`apply` (and keys of :meth:`priors`).
    param_names: ClassVar[tuple[str, ...]] = ()

    def apply(self, x: ArrayLike, **params: ArrayLike) -> jax.Array:
        raise NotImplementedError

    def priors(self, n_channels: int) -> dict[str, dist.Distribution]:
        """Default prior per parameter, batch shape ``(n_channels,)``."""
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as stored."""
        sig = inspect.signature(type(self).__init__)
        names = [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        return {k: getattr(self, k) for k in names}

    def to_dict(self) -> dict[str, Any]:
        """``{"name": registry key, **constructor arguments}``; inverse of :func:`from_dict`."""
        return {"name": self.name, **self.get_params()}

    def _params(self, params: Mapping[str, ArrayLike]) -> dict[str, ArrayLike]:
        if set(params) != set(self.param_names):
            raise TypeError(
                f"{type(self).__name__}.apply takes parameters {list(self.param_names)}, "
                f"got {sorted(params)}"
            )
        return dict(params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MediaTransform) or type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class Adstock(MediaTransform):
    """Carry-over along axis 0 as a causal convolution over ``l_max`` lags."""

    l_max: int


class Saturation(MediaTransform):
    """Elementwise diminishing returns, 0 at zero spend, increasing towards 1."""


ADSTOCKS: dict[str, type[Adstock]] = {}
SATURATIONS: dict[str, type[Saturation]] = {}

A = TypeVar("A", bound=type[Adstock])
S = TypeVar("S", bound=type[Saturation])


def _register(registry: dict[str, Any], other: Mapping[str, Any], kind: str, cls: Any) -> None:
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute `name`")
    # One namespace for both kinds, so from_dict can rebuild by name alone.
    taken = registry.get(name) or other.get(name)
    if taken is not None and taken is not cls:
        raise ValueError(f"{kind} name {name!r} is already taken by {taken.__name__}")
    registry[name] = cls


def register_adstock(cls: A) -> A:
    """Register an :class:`Adstock` under ``cls.name`` (usable as a class decorator)."""
    _register(ADSTOCKS, SATURATIONS, "adstock", cls)
    return cls


def register_saturation(cls: S) -> S:
    """Register a :class:`Saturation` under ``cls.name`` (usable as a class decorator)."""
    _register(SATURATIONS, ADSTOCKS, "saturation", cls)
    return cls


def get_adstock(name: str, **kwargs: Any) -> Adstock:
    """A new adstock by registry key, e.g. ``get_adstock("geometric", l_max=12)``."""
    if name not in ADSTOCKS:
        raise ValueError(f"unknown adstock {name!r}; known adstocks: {', '.join(sorted(ADSTOCKS))}")
    return ADSTOCKS[name](**kwargs)


def get_saturation(name: str, **kwargs: Any) -> Saturation:
    """A new saturation by registry key, e.g. ``get_saturation("hill")``."""
    if name not in SATURATIONS:
        known = ", ".join(sorted(SATURATIONS))
        raise ValueError(f"unknown saturation {name!r}; known saturations: {known}")
    return SATURATIONS[name](**kwargs)


def from_dict(data: Mapping[str, Any]) -> Adstock | Saturation:
    """Rebuild a component from :meth:`MediaTransform.to_dict` output."""
    kwargs = {k: v for k, v in data.items() if k != "name"}
    name = str(data.get("name", ""))
    if name in ADSTOCKS:
        return get_adstock(name, **kwargs)
    if name in SATURATIONS:
        return get_saturation(name, **kwargs)
    known = ", ".join(sorted([*ADSTOCKS, *SATURATIONS]))
    raise ValueError(f"unknown media transform {name!r}; known transforms: {known}")


@register_adstock
class GeometricAdstock(Adstock):
    """Weights ``alpha**l``, ``0 < alpha < 1``; ``l_max`` 8 suits weekly data.

    ``steps``: decay steps per period (module docstring). :class:`~mixwise.mmm.fit.MMM` sets
    it to the days per period of its data unless told otherwise (7 for weekly data: ``alpha``
    is then the daily decay); 1, the default here and for runs stored before it existed, is
    the plain ``alpha**l``.
    """

    name = "geometric"
    param_names = ("alpha",)

    def __init__(self, l_max: int = 8, normalize: bool = True, steps: int = 1) -> None:
        self.l_max = l_max
        self.normalize = normalize
        self.steps = steps

    def apply(self, x: ArrayLike, **params: ArrayLike) -> jax.Array:
        p = self._params(params)
        return geometric_adstock(
            x, p["alpha"], l_max=self.l_max, normalize=self.normalize, steps=self.steps
        )

    def priors(self, n_channels: int) -> dict[str, dist.Distribution]:
        # Beta(2, 2): centred on a one-step half-life, zero density at 0 and 1 (where alpha is
        # unidentified against the baseline), yet wide enough (95% in 0.09-0.91) for digital
        # (~0.1-0.3) and TV (~0.5-0.8) alike. Per day (steps=7) as per week: daily decays of
        # 0.09-0.91 keep 99 %-30 % of the effect in the week of spend.
        return {"alpha": dist.Beta(2.0, 2.0).expand([n_channels])}


@register_adstock
class WeibullAdstock(Adstock):
    """Weibull-pdf weights: ``shape`` k > 0, ``scale`` λ > 0 in units of the ``l_max`` window."""

    name = "weibull"
    param_names = ("shape", "scale")

    def __init__(self, l_max: int = 8) -> None:
        self.l_max = l_max

    def apply(self, x: ArrayLike, **params: ArrayLike) -> jax.Array:
        p = self._params(params)
        return weibull_adstock(x, p["shape"], p["scale"], l_max=self.l_max)

    def priors(self, n_channels: int) -> dict[str, dist.Distribution]:
        # shape ~ Gamma(4, 2): mean 2, ~85% above 1, so mostly a delayed peak (why one picks
        # Weibull) but a pure decay stays possible. scale ~ Gamma(4, 12): mean 1/3 of the
        # window, i.e. with shape 2 and l_max 8 a peak about one period after the spend.
        return {
            "shape": dist.Gamma(4.0, 2.0).expand([n_channels]),
            "scale": dist.Gamma(4.0, 12.0).expand([n_channels]),
        }


@register_saturation
class HillSaturation(Saturation):
    """``x**slope / (x**slope + half**slope)``; ``half`` in the units of its input."""

    name = "hill"
    param_names = ("half", "slope")

    def __init__(self, slope_sd: float = 0.3) -> None:
        self.slope_sd = slope_sd  # the log slope's prior sd (median slope 1): see priors()

    def apply(self, x: ArrayLike, **params: ArrayLike) -> jax.Array:
        p = self._params(params)
        return hill_saturation(x, p["half"], p["slope"])

    def priors(self, n_channels: int) -> dict[str, dist.Distribution]:
        # half ~ Gamma(3, 3): mean 1 (half effect at an average period's spend), 95% in about
        # 0.2-2.4; the light right tail keeps half from running off where the curve is linear
        # over the data and trades off with beta. slope ~ LogNormal(0, 0.3): median 1, 95% in
        # 0.55-1.8 (concave to a mild S). Spend that barely varies cannot tell the curve's
        # shape, and the wider Gamma(4, 3) (10% above 2.4) let such channels take steep
        # S-curves that act as regime switches, a mode some chains found and others did not
        # (Meridian fixes the slope at 1 for the same reason; benchmarks/RESULTS.md).
        # ``slope_sd`` narrows it: 0.01 holds every curve concave at slope ~1 (Meridian's fixed
        # slope). On the benchmark's markets that costs ROI accuracy (TV's true curve is an S)
        # and gains decisions: where flights show spend only at 0 and at the flight level the
        # curve between is the prior's, and an S there makes the optimizer drop a channel at an
        # average week's spend (benchmarks/RESULTS.md, "Decision quality, 2026-12-01").
        if not self.slope_sd > 0:
            raise ValueError(f"slope_sd must be > 0, got {self.slope_sd!r}")
        return {
            "half": dist.Gamma(3.0, 3.0).expand([n_channels]),
            "slope": dist.LogNormal(0.0, self.slope_sd).expand([n_channels]),
        }


@register_saturation
class LogisticSaturation(Saturation):
    """``(1 - exp(-lam x)) / (1 + exp(-lam x))``, ``lam > 0``."""

    name = "logistic"
    param_names = ("lam",)

    def apply(self, x: ArrayLike, **params: ArrayLike) -> jax.Array:
        return logistic_saturation(x, self._params(params)["lam"])

    def priors(self, n_channels: int) -> dict[str, dist.Distribution]:
        # lam ~ Gamma(3, 3): mean 1, so half of the maximum at ~1.1x an average period's spend.
        # This is PyMC-Marketing's Gamma(3, 1) moved from max-scaled to mean-scaled spend
        # (lam_mean = lam_max * mean / max, with max ≈ 3x mean); Gamma(3, 1) here would put
        # 90% saturation at the average spend.
        return {"lam": dist.Gamma(3.0, 3.0).expand([n_channels])}
