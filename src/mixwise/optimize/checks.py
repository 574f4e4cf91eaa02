"""``check_response_model``: the conformance battery every response model passes.

Built-in models (MMM runs, the simulator's truth, user Hill curves and points) and any
user-supplied class are held to the same contract before the optimizer trusts them:

1. it declares its channels, period length, reference spend and KPI name;
2. ``kpi`` and ``media`` take a ``(P, C)`` plan and return ``(draws, P)`` and
   ``(draws, P, C)`` finite arrays, and refuse a plan of the wrong shape with a ValueError;
3. no spend and no carry-over means no media KPI;
4. more spend on a channel never lowers its own contribution (curves rise);
5. it is differentiable: the gradient of the mean KPI is finite and matches a central
   finite difference;
6. it works under ``jax.jit``;
7. carry-over stays within ``carry_periods``: spend in the first period changes nothing
   ``carry_periods`` periods later.

Each check raises ``AssertionError`` naming the model and what failed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixwise.optimize.response import ResponseModel


def check_response_model(rm: Any, periods: int = 4, seed: int = 0) -> None:
    """Run the battery on ``rm`` (see the module docstring)."""
    import jax
    import jax.numpy as jnp

    name = type(rm).__name__
    assert isinstance(rm, ResponseModel), f"{name} lacks the ResponseModel attributes"
    c = len(rm.channels)
    assert c >= 1 and len(set(rm.channels)) == c, f"{name}: channels must be distinct"
    assert int(rm.period_days) >= 1, f"{name}: period_days must be >= 1"
    ref = np.asarray(rm.history_mean, dtype=np.float64)
    assert ref.shape == (c,) and np.all(ref >= 0), f"{name}: history_mean must be (C,) >= 0"
    assert rm.n_draws >= 1 and rm.carry_periods >= 1, f"{name}: n_draws, carry_periods >= 1"
    assert isinstance(rm.kpi_name, str) and rm.kpi_name, f"{name}: kpi_name must be a name"

    rng = np.random.default_rng(seed)
    level = np.where(ref > 0, ref, 1.0)
    plan = jnp.asarray(level * rng.uniform(0.5, 1.5, (periods, c)), dtype=jnp.float32)
    k = np.asarray(rm.kpi(plan))
    m = np.asarray(rm.media(plan))
    assert k.shape == (rm.n_draws, periods), f"{name}: kpi shape {k.shape}"
    assert m.shape == (rm.n_draws, periods, c), f"{name}: media shape {m.shape}"
    assert np.all(np.isfinite(k)) and np.all(np.isfinite(m)), f"{name}: non-finite output"
    for bad in (jnp.zeros((periods, c + 1)), jnp.zeros((c,))):
        try:
            rm.kpi(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"{name}: a plan shaped {bad.shape} must raise ValueError")

    zero = np.asarray(rm.kpi(jnp.zeros((periods, c)), carry_over=False))
    assert np.allclose(zero, 0.0, atol=1e-6 * max(1.0, float(np.abs(k).max()))), (
        f"{name}: no spend without carry-over must give no media KPI"
    )

    for j in range(c):
        more = plan.at[:, j].multiply(1.5)
        own = np.asarray(rm.media(plan))[..., j].sum(axis=1)
        own_more = np.asarray(rm.media(more))[..., j].sum(axis=1)
        tol = 1e-5 * max(1.0, float(np.abs(own).max()))
        assert np.all(own_more >= own - tol), f"{name}: more {rm.channels[j]} lowered its effect"

    def mean_kpi(p: Any) -> Any:
        return rm.kpi(p).sum(axis=1).mean()

    grad = np.asarray(jax.grad(mean_kpi)(plan), dtype=np.float64)
    assert grad.shape == (periods, c) and np.all(np.isfinite(grad)), f"{name}: bad gradient"
    direction = jnp.asarray(rng.uniform(0.0, 1.0, (periods, c)) * level, dtype=jnp.float32)
    h = 1e-2
    numeric = (float(mean_kpi(plan + h * direction)) - float(mean_kpi(plan - h * direction))) / (
        2 * h
    )
    exact = float((grad * np.asarray(direction)).sum())
    assert abs(numeric - exact) <= 2e-2 * max(abs(exact), abs(numeric), 1e-6), (
        f"{name}: gradient {exact:.6g} vs finite difference {numeric:.6g}"
    )

    jitted = np.asarray(jax.jit(lambda p: rm.kpi(p))(plan))
    assert np.allclose(jitted, k, rtol=1e-4, atol=1e-6 * max(1.0, float(np.abs(k).max()))), (
        f"{name}: jit changes the result"
    )

    span = rm.carry_periods
    long = jnp.zeros((span + 1, c))
    pulse = long.at[0].set(jnp.asarray(level, dtype=long.dtype))
    after = np.asarray(rm.kpi(pulse, carry_over=False))[:, span:]
    assert np.allclose(after, 0.0, atol=1e-6 * max(1.0, float(np.abs(k).max()))), (
        f"{name}: spend still works {span} periods later (carry_periods is {span})"
    )
