"""The augmented-Lagrangian solver for large plans, against closed forms and SLSQP."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from mixwise.optimize import lagrangian


def separable(a: np.ndarray, h: np.ndarray):  # type: ignore[no-untyped-def]
    """-sum a y / (y + h): concave returns, its value and gradient in float64."""

    def loss(y: np.ndarray) -> tuple[float, np.ndarray]:
        return float(-(a * y / (y + h)).sum()), -(a * h / (y + h) ** 2)

    return loss


def water_filling(a: np.ndarray, h: np.ndarray, total: float) -> np.ndarray:
    """y = max(0, sqrt(a h / lam) - h) with lam set by bisection so y sums to ``total``."""
    lo, hi = 1e-12, float((a / h).max())
    for _ in range(200):
        lam = np.sqrt(lo * hi)
        lo, hi = (lam, hi) if np.maximum(0, np.sqrt(a * h / lam) - h).sum() > total else (lo, lam)
    return np.maximum(0.0, np.sqrt(a * h / lam) - h)


@pytest.mark.parametrize("n", [10, 120, 400])
def test_a_budget_equation_reaches_the_closed_form_optimum(n: int) -> None:
    rng = np.random.default_rng(n)
    a, h = rng.uniform(1, 3, n), rng.uniform(0.2, 2, n) / n
    loss = separable(a, h)
    got = lagrangian.solve(
        loss,
        np.ones((1, n)),
        np.ones(1),
        np.ones(1),
        np.full(n, 1 / n),
        np.zeros(n),
        np.full(n, np.inf),
        ftol=1e-12,
        tol=1e-10,
    )
    best = water_filling(a, h, 1.0)
    assert got.violation <= 1e-10
    assert abs(got.y.sum() - 1.0) <= 1e-10
    assert got.loss == pytest.approx(loss(best)[0], rel=1e-8)
    np.testing.assert_allclose(got.y, best, atol=1e-4 / n**0.5)


def test_inequality_rows_and_bounds_hold_and_match_slsqp() -> None:
    """Budget 1, the first ten amounts at least 60 % of it (a group share), the last at most
    5 % (a row), every amount at most 0.2 (a bound): the optimum SLSQP finds."""
    n = 30
    rng = np.random.default_rng(1)
    a, h = rng.uniform(1, 3, n), rng.uniform(0.2, 2, n) / n
    a[:10] *= 0.3  # the group is poor: its share rule binds
    loss = separable(a, h)
    A = np.vstack([np.ones(n), np.r_[np.ones(10), np.zeros(n - 10)], np.eye(n)[-1]])
    lo, hi = np.array([1.0, 0.6, -np.inf]), np.array([1.0, np.inf, 0.05])
    upper = np.full(n, 0.2)
    got = lagrangian.solve(loss, A, lo, hi, np.full(n, 1 / n), np.zeros(n), upper, ftol=1e-12)
    ref = minimize(
        loss,
        np.full(n, 1 / n),
        jac=True,
        method="SLSQP",
        bounds=[(0, 0.2)] * n,
        constraints=[
            {"type": "eq", "fun": lambda y: A[:1] @ y - 1.0},
            {"type": "ineq", "fun": lambda y: np.r_[A[1] @ y - 0.6, 0.05 - A[2] @ y]},
        ],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert ref.success
    r = A @ got.y
    assert r[0] == pytest.approx(1.0, abs=1e-8)
    assert r[1] >= 0.6 - 1e-8 and r[2] <= 0.05 + 1e-8
    assert got.y.min() >= 0 and got.y.max() <= 0.2
    assert r[1] == pytest.approx(0.6, abs=1e-6)  # the share rule binds
    assert got.loss == pytest.approx(ref.fun, rel=1e-7)


def test_a_nonlinear_return_rule_binds_at_the_closed_form_optimum() -> None:
    """Up to 1 to spend, and the return ``sum a y / (y + h)`` per unit spent at least 1.5x
    what the best plan without the rule returns (an ROI rule, nonlinear): it binds, and the
    Lagrangian finds the closed-form optimum."""
    n = 40
    rng = np.random.default_rng(2)
    a, h = rng.uniform(1, 3, n), rng.uniform(0.2, 2, n) / n
    loss = separable(a, h)
    A, lo, hi = np.ones((1, n)), np.array([-np.inf]), np.array([1.0])
    free = lagrangian.solve(loss, A, lo, hi, np.full(n, 1 / n), np.zeros(n), np.full(n, np.inf))
    assert free.y.sum() == pytest.approx(1.0, abs=1e-6)  # spends it all
    level = 1.5 * -free.loss / free.y.sum()

    def roi_rule(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, grad = loss(y)
        return np.array([-value - level * y.sum()]), (-grad - level)[None, :]

    got = lagrangian.solve(
        loss, A, lo, hi, np.full(n, 1 / n), np.zeros(n), np.full(n, np.inf),
        ftol=1e-12, tol=1e-10, nonlinear=roi_rule,
    )  # fmt: skip
    # Independently: the best plan spending S is the water-filling split, whose return per
    # unit falls as S grows, so the optimum spends the largest S that still returns `level`.
    lo_s, hi_s = 1e-6, 1.0
    for _ in range(200):
        mid = 0.5 * (lo_s + hi_s)
        ok = -loss(water_filling(a, h, mid))[0] >= level * mid
        lo_s, hi_s = (mid, hi_s) if ok else (lo_s, mid)
    best = water_filling(a, h, lo_s)
    assert got.violation <= 1e-10 and got.y.min() >= 0 and got.y.sum() <= 1 + 1e-10
    assert roi_rule(got.y)[0][0] == pytest.approx(0.0, abs=1e-7)  # binds
    assert got.y.sum() == pytest.approx(lo_s, rel=1e-6)
    assert got.loss == pytest.approx(loss(best)[0], rel=1e-7)


def test_a_plan_a_little_outside_its_rows_is_moved_the_least_to_keep_them() -> None:
    """Where float32 noise stops the Lagrangian just outside a row, the nearest plan that
    keeps every row (least total change) replaces it."""
    y = np.array([0.5, 0.3, 0.2 + 3e-5])  # the budget (sum 1) exceeded by 3e-5
    A = np.vstack([np.ones(3), [1.0, 0.0, 0.0]])
    lo, hi = np.array([1.0, 0.5]), np.array([1.0, np.inf])  # and a share: first >= 0.5
    got = lagrangian._nearest_feasible(y, A, lo, hi, np.zeros(3), np.full(3, np.inf))
    assert got.sum() == pytest.approx(1.0, abs=1e-12)
    assert got[0] >= 0.5 - 1e-12
    assert np.abs(got - y).sum() == pytest.approx(3e-5, rel=1e-6)  # no more change than needed
