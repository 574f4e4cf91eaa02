"""An augmented-Lagrangian solver for large plans: smooth loss, bounds, a few linear rows
and a few smooth nonlinear inequalities (ROI and CPA rules).

SLSQP (the allocator's solver for small plans) solves a dense least-squares subproblem over
all variables and their bounds at every step, and needs about as many steps as there are
variables: at 20 channels × 13 periods that is seconds per start. Here the linear rows
``lo <= A y <= hi`` (the budget, group shares, period caps) move into the loss as the
augmented Lagrangian (Rockafellar's form for the inequalities), the bounds stay with
L-BFGS-B, whose step costs O(n); the multipliers are updated after each inner solve and the
penalty grows while the rows' violation does not shrink. Each inner solve starts from the
last one and is solved more tightly than the one before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
LossGrad = Callable[[FloatArray], tuple[float, FloatArray]]
# Nonlinear rows g(y) >= 0: their values (k,) and Jacobian (k, n)
RowsJac = Callable[[FloatArray], tuple[FloatArray, FloatArray]]


@dataclass
class Solution:
    y: FloatArray
    loss: float  # the loss (without the Lagrangian terms) at y
    violation: float  # the largest violation of a row at y
    iterations: int  # L-BFGS-B iterations over all inner solves
    evaluations: int


def solve(
    loss: LossGrad,
    A: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    y0: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    *,
    tol: float = 1e-8,
    ftol: float = 1e-7,
    max_outer: int = 20,
    warm: bool = False,
    nonlinear: RowsJac | None = None,
) -> Solution:
    """Minimise ``loss`` (value and gradient) over ``lower <= y <= upper`` and
    ``lo <= A y <= hi`` (equal ``lo`` and ``hi``: an equation; infinite: no side), from
    ``y0``. ``tol``: the rows' violation to reach; ``ftol``: the inner solves' final
    relative tolerance (the loss is float32: 1e-7 is its noise). ``warm``: ``y0`` is near a
    solution already (a polish), so the first inner solve is already at ``ftol``.
    ``nonlinear``: rows ``g(y) >= 0`` (an ROI or CPA rule), their values and Jacobian; they
    join the Lagrangian as inequalities (Rockafellar's form), their multipliers start at
    zero."""
    from scipy.optimize import minimize

    m = A.shape[0]
    k = 0 if nonlinear is None else int(np.asarray(nonlinear(np.asarray(y0))[0]).size)
    eq = np.isfinite(lo) & np.isfinite(hi) & (lo == hi)
    has_lo = np.isfinite(lo) & ~eq
    has_hi = np.isfinite(hi) & ~eq
    lo_ = np.where(np.isfinite(lo), lo, 0.0)
    hi_ = np.where(np.isfinite(hi), hi, 0.0)
    y = np.clip(np.asarray(y0, dtype=np.float64), lower, upper)
    bounds = [
        (float(a), float(b) if np.isfinite(b) else None) for a, b in zip(lower, upper, strict=True)
    ]
    evaluations = 0

    def counted(z: FloatArray) -> tuple[float, FloatArray]:
        nonlocal evaluations
        evaluations += 1
        return loss(z)

    # Multipliers: the equations' from a least-squares fit of the first gradient (the budget
    # row's is the marginal return), the inequalities' from zero.
    lam = np.zeros(m)
    _, g0 = counted(y)
    if eq.any():
        lam[eq] = np.linalg.lstsq(A[eq].T, -g0, rcond=None)[0]
    mu_lo = np.zeros(m)
    mu_hi = np.zeros(m)
    nu = np.zeros(k)  # the nonlinear rows' multipliers
    rho = 10.0 * max(1.0, float(np.abs(g0).max()))

    def curved(z: FloatArray) -> tuple[FloatArray, FloatArray]:
        if nonlinear is None:
            return np.zeros(0), np.zeros((0, z.size))
        g, jac = nonlinear(z)
        return np.asarray(g, dtype=np.float64), np.asarray(jac, dtype=np.float64)

    def rows(r: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Each row's equation residual and its two inequality residuals (<= 0 wanted)."""
        return (
            np.where(eq, r - lo_, 0.0),
            np.where(has_lo, lo_ - r, -np.inf),
            np.where(has_hi, r - hi_, -np.inf),
        )

    def violation(z: FloatArray) -> float:
        ce, cl, ch = rows(A @ z)
        return float(np.max(np.r_[np.abs(ce), cl, ch, -curved(z)[0], 0.0]))

    def lagrangian(
        z: FloatArray,
        lam: FloatArray,
        mu_lo: FloatArray,
        mu_hi: FloatArray,
        nu: FloatArray,
        rho: float,
    ) -> tuple[float, FloatArray]:
        f, g = counted(z)
        ce, cl, ch = rows(A @ z)
        pl = np.maximum(0.0, mu_lo + rho * cl)
        ph = np.maximum(0.0, mu_hi + rho * ch)
        value = (
            f
            + lam @ ce
            + 0.5 * rho * ce @ ce
            + ((pl**2 - mu_lo**2).sum() + (ph**2 - mu_hi**2).sum()) / (2.0 * rho)
        )
        grad = g + A.T @ (lam * eq + rho * ce - pl + ph)
        if k:
            gn, jac = curved(z)
            pn = np.maximum(0.0, nu - rho * gn)  # g >= 0 as -g <= 0
            value += float((pn**2 - nu**2).sum()) / (2.0 * rho)
            grad = grad - jac.T @ pn
        return value, grad

    iterations = 0
    last = violation(y)
    inner = ftol if warm else max(1e-4, ftol)
    for _ in range(max_outer):
        res = minimize(
            lagrangian,
            y,
            args=(lam, mu_lo, mu_hi, nu, rho),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 1000, "ftol": inner, "gtol": 1e-3 * inner, "maxcor": 20},
        )
        iterations += int(res.nit)
        y = np.clip(np.asarray(res.x, dtype=np.float64), lower, upper)
        ce, cl, ch = rows(A @ y)
        lam = lam + rho * ce
        mu_lo = np.maximum(0.0, mu_lo + rho * cl)
        mu_hi = np.maximum(0.0, mu_hi + rho * ch)
        if k:
            nu = np.maximum(0.0, nu - rho * curved(y)[0])
        now = violation(y)
        if now <= tol and inner <= ftol:
            break
        if res.nit == 0 and inner <= ftol:
            break  # no step lowers the loss at its float32 precision: as good as it gets
        if now > 0.25 * last:
            rho *= 10.0
        last = now
        inner = max(inner * 0.1, ftol)
    now = violation(y)
    if now > tol and (not k or float(np.max(np.r_[-curved(y)[0], 0.0])) <= tol):
        # only the linear rows are off: the least change that keeps them (the nonlinear
        # rows, which held, may move by a little; the caller checks every rule)
        y = _nearest_feasible(y, A, lo, hi, lower, upper)
        now = violation(y)
    f, _ = counted(y)
    return Solution(y, float(f), now, iterations, evaluations)


def _nearest_feasible(
    y: FloatArray,
    A: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
) -> FloatArray:
    """The plan nearest ``y`` (least total change, an LP) that keeps every row, or ``y``
    when the LP fails: the Lagrangian can stop a little outside the rows where float32 noise
    ends its progress."""
    from scipy.optimize import linprog

    n = y.size
    # y + up - down, up and down >= 0, least sum(up + down)
    M = np.hstack([A, -A])
    rows = []
    if np.isfinite(hi).any():
        keep = np.isfinite(hi)
        rows.append((M[keep], (hi - A @ y)[keep]))
    if np.isfinite(lo).any():
        keep = np.isfinite(lo)
        rows.append((-M[keep], (A @ y - lo)[keep]))
    A_ub = np.vstack([r[0] for r in rows]) if rows else None
    b_ub = np.concatenate([r[1] for r in rows]) if rows else None
    up = [(0.0, float(u - v) if np.isfinite(u) else None) for u, v in zip(upper, y, strict=True)]
    down = [(0.0, float(v - w)) for v, w in zip(y, lower, strict=True)]
    res = linprog(np.ones(2 * n), A_ub=A_ub, b_ub=b_ub, bounds=up + down, method="highs")
    if res.status != 0:
        return y
    return np.clip(y + res.x[:n] - res.x[n:], lower, upper)
