"""The allocator: the best split of a budget across channels and periods, under the rules.

    from mixwise.optimize import allocate

    result = allocate(rm, 1_000_000, ["brand>=30%", "tv=current"], "revenue",
                      periods="2026-10..2026-12", groups={"brand": ("tv", "video")})
    result.plan            # budget periods × channels, money
    result.kpi             # predicted incremental KPI: mean and 90 % interval
    result.reasons         # each change against the current plan, in words

**What is maximised.** ``objective``: ``"revenue"`` / ``"conversions"`` / ``"kpi"`` — the
incremental KPI the plan brings over the horizon (its carry-over after the horizon included;
against spending nothing in the horizon); ``"profit"`` — ``margin ×`` that KPI ``−`` spend;
``"min_spend"`` — the least spend whose incremental KPI reaches ``target``. Over posterior
draws the value is summarised by ``risk``: ``"mean"``, ``"q10"`` (a lower quantile: the plan
whose bad case is best) or ``"cvar10"`` (the mean of the worst 10 % of draws); ROI and CPA
rules use the same summary.

**How.** The response model is differentiable in JAX, so the objective and the ROI/CPA rules
have exact gradients; SLSQP (scipy) solves the problem with the linear rules (budget, bounds,
group shares, period caps) as constraints. Saturation curves are S-shaped and the problem is
not concave, so it runs from several starts (the reference plan scaled to the budget, an
equal split, a feasible point of the linear rules, and random splits) and keeps the best plan
that keeps every rule. Plans of LARGE_PLAN amounts or more, and the pass with ROI/CPA rules
(its nonlinear rows), use the augmented Lagrangian of :mod:`mixwise.optimize.lagrangian`;
a model with many draws explores its starts on EXPLORE_DRAWS of them and polishes the best
on all. Linear rules that cannot hold
together are reported by name (:func:`~mixwise.optimize.constraints.explain_infeasible`)
before any optimisation.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from mixwise.mmm.response import UnusableModelError
from mixwise.optimize.constraints import (
    Constraint,
    InfeasibleError,
    LinearRules,
    explain_infeasible,
    feasible_point,
    linear_rules,
    members,
    parse_constraints,
)
from mixwise.optimize.periods import Horizon, horizon
from mixwise.optimize.response import ResponseModel

FloatArray = npt.NDArray[np.float64]
ObjectiveKind = Literal["revenue", "conversions", "kpi", "profit", "min_spend"]
# ROI/CPA rules as the solver takes them: (signed level, channel positions or None: overall)
MetricRows = tuple[tuple[float, tuple[int, ...] | None], ...]
_INTERVAL = (0.05, 0.95)
_TOL = 1e-6  # constraint tolerance, relative to the budget
# SLSQP's stopping tolerance on the O(1) loss: float32 arithmetic (JAX's default) resolves
# ~1e-7, and a tighter tolerance only ends in failed line searches.
FTOL = 1e-8
PENALTY = 100.0
RESTARTS = 6  # SLSQP runs at most for each of the POLISH best starts (see _run)
POLISH = 2
EXPLORE_DRAWS = 250  # the starts are solved on this many draws, the best POLISH on all
LARGE_PLAN = 64  # from this many amounts (channels × periods) on, the augmented Lagrangian


@dataclass(frozen=True)
class Objective:
    """What the plan should achieve (see the module docstring)."""

    kind: ObjectiveKind = "revenue"
    margin: float | None = None  # profit: KPI units to money (revenue × margin)
    target: float | None = None  # min_spend: the incremental KPI to reach
    risk: str = "mean"  # mean, qNN (lower quantile, percent), cvarNN (worst NN %)

    def __post_init__(self) -> None:
        if self.kind not in ("revenue", "conversions", "kpi", "profit", "min_spend"):
            raise ValueError(
                f"objective must be revenue, conversions, kpi, profit or min_spend; "
                f"got {self.kind!r}"
            )
        if self.kind == "profit" and not (self.margin is not None and self.margin > 0):
            raise ValueError("the profit objective needs a margin > 0 (profit per KPI unit)")
        if self.kind == "min_spend" and not (self.target is not None and self.target > 0):
            raise ValueError("the min_spend objective needs a KPI target > 0")
        _risk_level(self.risk)


def _risk_level(risk: str) -> tuple[str, float]:
    r = risk.strip().lower()
    if r == "mean":
        return "mean", 0.0
    for prefix in ("cvar", "q"):
        if r.startswith(prefix) and r[len(prefix) :].isdigit():
            level = int(r[len(prefix) :]) / 100.0
            if 0 < level < 1:
                return prefix, level
    raise ValueError(f"risk must be 'mean', 'qNN' or 'cvarNN' (NN in 1 … 99), got {risk!r}")


def summarise(values: Any, risk: str) -> Any:
    """The risk summary of per-draw values (JAX, differentiable)."""
    import jax.numpy as jnp

    kind, level = _risk_level(risk)
    if kind == "mean" or values.shape[0] == 1:
        return values.mean()
    if kind == "q":
        return jnp.quantile(values, level)
    k = max(int(np.ceil(level * values.shape[0])), 1)
    return jnp.sort(values)[:k].mean()


# -- the result --------------------------------------------------------------------------------
@dataclass
class Allocation:
    """A recommended plan with its predicted outcome, the rules' check and the reasons."""

    plan: pd.DataFrame  # budget periods × channels, money
    reference: pd.DataFrame  # the current plan over the same periods
    model_plan: pd.DataFrame  # model periods × channels (the spread the model sees)
    channels: pd.DataFrame  # per channel: spend, reference, change, contribution, ROI, mROI
    kpi: dict[str, float]  # incremental KPI of the plan: mean, lower, upper
    reference_kpi: dict[str, float]
    spend: float
    reference_spend: float
    objective: Objective
    kpi_name: str
    kpi_type: str  # revenue (ROI) or conversions (CPA)
    rules: list[dict[str, Any]]  # each rule: text, value, bound, ok
    reasons: list[str]
    assumptions: list[str]
    solver: dict[str, Any]
    horizon: Horizon = field(repr=False)
    request: dict[str, Any] = field(default_factory=dict)  # what was asked (for scenarios)

    @property
    def roi(self) -> float:
        return self.kpi["mean"] / self.spend if self.spend > 0 else float("nan")

    def to_frame(self, name: str = "plan") -> pd.DataFrame:
        """The plan in long form, one row per budget period and channel: ``scenario``,
        ``period``, ``start``, ``end`` (exclusive; empty for periods without dates),
        ``channel``, ``amount`` — the shape a budget plan is created from."""
        hz = self.horizon
        rows = []
        for b, label in enumerate(self.plan.index):
            start, end = hz.starts[b], hz.ends[b]
            for channel in self.plan.columns:
                rows.append(
                    {
                        "scenario": name,
                        "period": str(label),
                        "start": "" if start is None else start.date().isoformat(),
                        "end": "" if end is None else end.date().isoformat(),
                        "channel": str(channel),
                        "amount": round(float(self.plan.loc[label, channel]), 2),
                    }
                )
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (unknown numbers, such as the ROI of no spend, are None)."""

        def num(v: Any) -> float | None:
            f = float(v)
            return f if np.isfinite(f) else None

        def frame(df: pd.DataFrame) -> dict[str, dict[str, float | None]]:
            return {str(k): {str(c): num(v) for c, v in row.items()} for k, row in df.iterrows()}

        rules = [
            {k: (num(v) if isinstance(v, float) else v) for k, v in rule.items()}
            for rule in self.rules
        ]

        return {
            "objective": {
                "kind": self.objective.kind,
                "risk": self.objective.risk,
                "margin": self.objective.margin,
                "target": self.objective.target,
            },
            "kpi_name": self.kpi_name,
            "kpi_type": self.kpi_type,
            "spend": self.spend,
            "reference_spend": self.reference_spend,
            "kpi": self.kpi,
            "reference_kpi": self.reference_kpi,
            "roi": num(self.roi),
            "interval": list(_INTERVAL),
            "plan": frame(self.plan),
            "reference": frame(self.reference),
            "channels": frame(self.channels),
            "rules": rules,
            "reasons": self.reasons,
            "assumptions": self.assumptions,
            "solver": self.solver,
            "request": self.request,
        }


# -- the problem -------------------------------------------------------------------------------
# The plan's outcome as pure functions, jitted once per response model (static: hashed by
# identity) and problem shape, so repeated optimisations (multi-start, scenarios, the
# frontier, the planner page) reuse the compiled code instead of tracing closures anew.
_STATIC = ("rm", "gap")


def _full(lead: Any, spread: Any, tail: Any, x: Any) -> Any:
    import jax.numpy as jnp

    return jnp.concatenate([lead, spread @ x, tail], axis=0)


def _jit(fn: Any, static: tuple[str, ...] = _STATIC) -> Any:
    import jax

    return jax.jit(fn, static_argnames=static)


def _incremental_fn(rm: Any, gap: int, lead: Any, spread: Any, tail: Any, base: Any, x: Any) -> Any:
    """Incremental KPI per draw ``(draws,)`` over the horizon and its carry-over tail."""
    return rm.kpi(_full(lead, spread, tail, x))[:, gap:].sum(axis=1) - base


def _by_channel_fn(rm: Any, gap: int, lead: Any, spread: Any, tail: Any, base: Any, x: Any) -> Any:
    """Each channel's incremental KPI per draw ``(draws, C)`` (synergies left out)."""
    return rm.media(_full(lead, spread, tail, x))[:, gap:].sum(axis=1) - base


def _objective_fn(
    rm: Any,
    gap: int,
    kind: str,
    risk: str,
    data: tuple[Any, ...],
    scale: Any,
    norm: Any,
    margin: Any,
    y: Any,
) -> Any:
    """The loss SLSQP minimises, in the solver's units (``y = x / scale``)."""
    lead, spread, tail, base, _ = data
    x = y.reshape(spread.shape[1], -1) * scale
    incr = _incremental_fn(rm, gap, lead, spread, tail, base, x)
    if kind == "profit":
        incr = margin * incr - x.sum()
    return -summarise(incr, risk) / norm


def _metrics_fn(
    rm: Any,
    gap: int,
    risk: str,
    rows: MetricRows,
    data: tuple[Any, ...],
    scale: Any,
    y: Any,
) -> Any:
    """Each ROI/CPA rule as ``g(y) >= 0``; ``rows``: (signed level, channel positions or
    None for overall)."""
    import jax.numpy as jnp

    lead, spread, tail, base, base_media = data
    x = y.reshape(spread.shape[1], -1) * scale
    out = []
    incr = None
    for level, idx in rows:
        if idx is None:
            if incr is None:
                incr = summarise(_incremental_fn(rm, gap, lead, spread, tail, base, x), risk)
            value, spend = incr, x.sum()
        else:
            part = _by_channel_fn(rm, gap, lead, spread, tail, base_media, x)[:, list(idx)]
            value, spend = summarise(part.sum(axis=1), risk), x[:, list(idx)].sum()
        sign = 1.0 if level >= 0 else -1.0
        out.append(sign * (value - abs(level) * spend) / scale)
    return jnp.stack(out) if out else jnp.zeros(0)


def _loss_metrics_fn(
    rm: Any,
    gap: int,
    kind: str,
    risk: str,
    rows: MetricRows,
    data: tuple[Any, ...],
    scale: Any,
    norm: Any,
    margin: Any,
    y: Any,
) -> tuple[Any, Any, Any, Any]:
    """The loss, its gradient, the ROI/CPA rules and their Jacobian at ``y``, in one call."""
    import jax

    value, grad = jax.value_and_grad(_objective_fn, argnums=8)(
        rm, gap, kind, risk, data, scale, norm, margin, y
    )

    def metrics(z: Any) -> tuple[Any, Any]:
        out = _metrics_fn(rm, gap, risk, rows, data, scale, z)
        return out, out

    jac, rules = jax.jacrev(metrics, has_aux=True)(y)  # the rules evaluated once
    return value, grad, rules, jac


def _compiled() -> dict[str, Any]:
    import jax

    if not _CACHE:
        _CACHE["incremental"] = _jit(_incremental_fn)
        _CACHE["by_channel"] = _jit(_by_channel_fn)
        _CACHE["grad_mean"] = _jit(
            jax.grad(lambda rm, gap, *a: _incremental_fn(rm, gap, *a).mean(), argnums=6)
        )
        obj_static = ("rm", "gap", "kind", "risk")
        _CACHE["loss"] = _jit(jax.value_and_grad(_objective_fn, argnums=8), obj_static)
        _CACHE["loss_metrics"] = _jit(_loss_metrics_fn, ("rm", "gap", "kind", "risk", "rows"))
    return _CACHE


_CACHE: dict[str, Any] = {}


def _to_jnp(x: Any) -> Any:
    """A plan as the jitted functions take it: float32 (a NumPy array: converting on the
    host costs microseconds, a JAX conversion op a tenth of a millisecond per call)."""
    return np.asarray(x, dtype=np.float32)


_THINNED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _thinned(rm: ResponseModel) -> ResponseModel | None:
    """``rm`` on EXPLORE_DRAWS draws, kept while ``rm`` lives (the compiled functions are
    keyed by the model object), or None when it has no more draws or cannot thin."""
    thin = getattr(rm, "thin", None)
    if thin is None or rm.n_draws < 2 * EXPLORE_DRAWS:
        return None
    try:
        return _THINNED[rm]  # type: ignore[no-any-return]
    except (KeyError, TypeError):
        pass
    small = thin(EXPLORE_DRAWS)
    with contextlib.suppress(TypeError):  # not weak-referenceable: thinned each time
        _THINNED[rm] = small
    return small  # type: ignore[no-any-return]


class _Problem:
    """A response model over a horizon: the data the pure functions above take.
    ``explore``: the same on a thinned model (see :data:`EXPLORE_DRAWS`), or None."""

    def __init__(self, rm: ResponseModel, hz: Horizon, explore: bool = True) -> None:
        import jax.numpy as jnp

        small = _thinned(rm) if explore else None
        self.explore = _Problem(small, hz, explore=False) if small is not None else None
        self.rm = rm
        self.hz = hz
        c = len(rm.channels)
        ref = np.asarray(rm.history_mean, dtype=np.float64)
        self.gap = hz.gap
        lead = jnp.asarray(np.tile(ref, (hz.gap, 1)), dtype=jnp.float32).reshape(hz.gap, c)
        spread = jnp.asarray(hz.spread, dtype=jnp.float32)
        tail = jnp.zeros((hz.tail, c), dtype=jnp.float32)
        zero = _full(lead, spread, tail, jnp.zeros((hz.n_budget, c), dtype=jnp.float32))
        base = rm.kpi(zero)[:, hz.gap :].sum(axis=1)
        base_media = rm.media(zero)[:, hz.gap :].sum(axis=1)
        self.data = (lead, spread, tail, base, base_media)
        self.fns = _compiled()

    def incremental(self, x: Any) -> Any:
        lead, spread, tail, base, _ = self.data
        return self.fns["incremental"](self.rm, self.gap, lead, spread, tail, base, x)

    def by_channel(self, x: Any) -> Any:
        lead, spread, tail, _, base_media = self.data
        return self.fns["by_channel"](self.rm, self.gap, lead, spread, tail, base_media, x)

    def grad_mean(self, x: Any) -> Any:
        lead, spread, tail, base, _ = self.data
        return self.fns["grad_mean"](self.rm, self.gap, lead, spread, tail, base, x)


def allocate(
    response_model: ResponseModel,
    budget: float | None,
    constraints: Sequence[str | Constraint] = (),
    objective: ObjectiveKind | Objective = "revenue",
    *,
    periods: str | int | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    budget_mode: Literal["exact", "up_to"] = "exact",
    reference: Any = None,
    starts: int = 8,
    seed: int = 0,
    force: bool = False,
) -> Allocation:
    """The best plan for ``budget`` (money over the horizon; None: what the reference plan
    spends over it) under ``constraints``.

    ``periods``: the horizon (:func:`mixwise.optimize.periods.horizon`; default one period of
    the model's frequency). ``groups``: channel groups that rules may name. ``budget_mode``:
    spend the budget exactly or up to it. ``reference``: the current plan, as spend per model
    period and channel (default the model's ``history_mean``) or as a (budget periods ×
    channels) plan; changes and ± % rules are against it. ``starts``: optimiser starts.
    A model whose fit is not usable is refused unless ``force``.
    """
    t0 = time.perf_counter()
    rm = response_model
    obj = objective if isinstance(objective, Objective) else Objective(objective)
    _check_usable(rm, force)
    if obj.kind == "min_spend":
        if budget is not None and not budget > 0:
            raise ValueError("the budget cap must be > 0")
    elif budget is not None and (not np.isfinite(budget) or budget <= 0):
        raise ValueError(f"the budget must be a positive amount, got {budget!r}")
    groups = {str(k): tuple(v) for k, v in (groups or {}).items()}
    clash = set(groups) & set(rm.channels)
    if clash:
        raise ValueError(f"group names must differ from channel names: {sorted(clash)}")
    rules = parse_constraints(constraints)
    channels = list(rm.channels)
    for rule in rules:
        if rule.name:
            members(rule.name, channels, groups)  # validates the name
    hz = horizon(periods, rm.period_days, rm.next_date, rm.carry_periods)
    c, b = len(channels), hz.n_budget
    if reference is not None:
        given = np.asarray(reference, dtype=np.float64)
        if given.shape not in ((c,), (b, c)) or np.any(given < 0) or not np.all(np.isfinite(given)):
            raise ValueError(
                f"reference must be {c} amounts per model period ({channels}) or a "
                f"{b} x {c} plan, all >= 0"
            )
    if reference is not None and given.shape == (b, c):
        ref_plan = given  # a plan over the same budget periods (e.g. the active scenario)
    else:
        ref_plan = hz.reference_plan(given if reference is not None else rm.history_mean)
    ref_total = ref_plan.sum(axis=0)
    if budget is None and obj.kind != "min_spend":
        budget = float(ref_plan.sum())  # the same money as the current plan, split better
        if not budget > 0:
            raise ValueError("the current plan spends nothing over the horizon: give a budget")
    mode = budget_mode if obj.kind != "min_spend" else "up_to"  # a spend target: a cap at most
    lin = linear_rules(rules, channels, groups, b, budget, mode, ref_total)
    conflict = explain_infeasible(lin)
    if conflict:
        raise InfeasibleError(
            "these rules cannot all hold: " + "; ".join(conflict) + ". Relax one of them.",
            conflict,
        )

    problem = _Problem(rm, hz)
    kpi_type = "conversions" if obj.kind == "conversions" else _kpi_type(rm.kpi_name)
    scale = float(budget) if budget else max(float(ref_plan.sum()), 1.0)
    if obj.kind == "min_spend":
        solved, lin = _min_spend(
            problem, rules, obj, channels, groups, budget, ref_plan, starts, seed
        )
    else:
        solved = _solve(problem, lin, rules, obj, channels, groups, scale, ref_plan, starts, seed)
    # Solver dust is no spend: amounts under the rules' tolerance (a plan of a few cents
    # keeps an ROI rule within it whatever its ROI, and would be reported as breaking it).
    x = np.where(solved["x"] > _TOL * scale, solved["x"], 0.0)
    result = _describe(problem, x, ref_plan, rules, lin, obj, channels, groups, kpi_type)
    metric = [str(r) for r in rules if r.kind in ("roi", "cpa")]
    if metric and not x.sum() > 0:
        result.reasons.insert(
            0,
            f"no plan that spends keeps {' and '.join(metric)}: the response model's returns "
            "stay below the target at every spend the rules allow, so the plan spends "
            "nothing; lower the target to spend",
        )
    result.solver.update(
        {k: v for k, v in solved.items() if k != "x"}, seconds=time.perf_counter() - t0
    )
    result.request = {
        "budget": budget,
        "budget_mode": budget_mode,
        "periods": periods,
        "constraints": [str(r) for r in rules],
        "groups": {k: list(v) for k, v in groups.items()},
        "objective": obj.kind,
        "margin": obj.margin,
        "target": obj.target,
        "risk": obj.risk,
    }
    return result


def current_spend(response_model: ResponseModel, periods: str | int | None = None) -> float:
    """What the current plan (the model's ``history_mean`` per period) spends over the
    horizon ``periods``: the budget ``allocate`` plans without one."""
    rm = response_model
    hz = horizon(periods, rm.period_days, rm.next_date, rm.carry_periods)
    return float(hz.reference_plan(rm.history_mean).sum())


def evaluate_plan(
    response_model: ResponseModel,
    plan: Any,
    *,
    periods: str | int | None = None,
    reference: Any = None,
    risk: str = "mean",
    force: bool = False,
) -> Allocation:
    """The predicted outcome of a given plan (a manual what-if, or the current plan), in the
    same form as :func:`allocate`'s, without optimising.

    ``plan``: a ``(budget periods, channels)`` array or DataFrame (columns = channels), a
    mapping channel → amount over the horizon (spread over the periods by their days;
    channels left out get nothing), or None for the current plan (the model's
    ``history_mean`` rate).
    """
    rm = response_model
    _check_usable(rm, force)
    hz = horizon(periods, rm.period_days, rm.next_date, rm.carry_periods)
    channels = list(rm.channels)
    b = hz.n_budget
    days = np.array([hz.days(i) for i in range(b)])
    if plan is None:
        x = hz.reference_plan(rm.history_mean)
    elif isinstance(plan, Mapping):
        unknown = sorted(set(plan) - set(channels))
        if unknown:
            raise ValueError(f"the plan names unknown channels {unknown}; channels: {channels}")
        totals = np.array([float(plan.get(c, 0.0)) for c in channels])
        x = np.outer(days / days.sum(), totals)
    elif isinstance(plan, pd.DataFrame):
        unknown = sorted(set(map(str, plan.columns)) - set(channels))
        if unknown:
            raise ValueError(f"the plan names unknown channels {unknown}; channels: {channels}")
        x = plan.reindex(columns=channels, fill_value=0.0).to_numpy(dtype=np.float64)
    else:
        x = np.asarray(plan, dtype=np.float64)
    if x.shape != (b, len(channels)):
        raise ValueError(
            f"the plan must be {b} period(s) x {len(channels)} channels, got {x.shape}"
        )
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("plan amounts must be finite and >= 0")
    x_ref = hz.reference_plan(rm.history_mean if reference is None else reference)
    lin = linear_rules([], channels, {}, b, None, "exact", x_ref.sum(axis=0))
    obj = Objective("kpi", risk=risk)
    problem = _Problem(rm, hz, explore=False)
    kpi_type = _kpi_type(rm.kpi_name)
    result = _describe(problem, x, x_ref, [], lin, obj, channels, {}, kpi_type)
    result.request = {
        "periods": periods,
        "plan": "current" if plan is None else "given",
        "risk": risk,
    }
    return result


def _check_usable(rm: ResponseModel, force: bool) -> None:
    if not rm.usable and not force:
        raise UnusableModelError(
            f"the response model is not usable ({rm.verdict}); refit the model, or force its use"
        )


def _kpi_type(name: str) -> str:
    from mixwise.mmm.data import infer_kpi_type

    return str(infer_kpi_type(name))


def _metric_rows(
    rules: Sequence[Constraint], channels: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> list[tuple[Constraint, list[int] | None]]:
    return [
        (r, members(r.name, channels, groups) if r.name else None)
        for r in rules
        if r.kind in ("roi", "cpa")
    ]


def _solve(
    problem: _Problem,
    lin: LinearRules,
    rules: Sequence[Constraint],
    obj: Objective,
    channels: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    scale: float,
    x_ref: FloatArray,
    n_starts: int,
    seed: int,
) -> dict[str, Any]:
    """The best plan found; two phases when there are ROI/CPA rules.

    Phase 1 optimises under the linear rules only. If its plan keeps the ROI/CPA rules too it
    is the answer (the full problem only has fewer plans to choose from). Otherwise phase 2
    adds those rules, starting from phase 1's plan and from it scaled down (less spend often
    restores an ROI), as well as from the usual starts.
    """
    metric = _metric_rows(rules, channels, groups)
    rows = tuple(
        # ROI >= r: value - r spend >= 0; CPA <= a: value - spend / a >= 0; the reverse
        # rules flip the sign (a negative level).
        (
            (r.value if r.kind == "roi" else 1.0 / r.value)
            * (1.0 if (r.kind == "roi") == (r.op == ">=") else -1.0),
            tuple(idx) if idx is not None else None,
        )
        for r, idx in metric
    )
    starts = _starts(lin, x_ref, scale, n_starts, seed)
    first = _run(problem, lin, obj, (), scale, x_ref, starts)
    stats = {k: v for k, v in first.items() if k != "y"}
    with_rules = False  # whether the plan came from the solve with the ROI/CPA rules
    if not rows or first["y"] is None:
        best = first["y"]
    else:
        y1 = first["y"]
        check = _run(problem, lin, obj, rows, scale, x_ref, [], evaluate=[y1])
        if check["y"] is not None:
            best = y1
        else:
            extra = [y1 * t for t in (0.75, 0.5, 0.25)]
            second = _run(problem, lin, obj, rows, scale, x_ref, [y1, *extra, *starts])
            best, with_rules = second["y"], True
            stats["starts"] += second["starts"]
            stats["feasible_starts"] = second["feasible_starts"]
            stats["iterations"] += second["iterations"]
    if best is None:
        raise InfeasibleError(_metric_failure(metric))
    return {
        "x": best.reshape(x_ref.shape) * scale,
        **stats,
        "method": _method(problem, x_ref.size, with_rules),
        "explore_draws": problem.explore.rm.n_draws if problem.explore is not None else None,
    }


def _method(problem: _Problem, n: int, metric_rules: bool) -> str:
    """The solver in words, for the result's ``solver`` block."""
    if n >= LARGE_PLAN or metric_rules:
        why = "a large plan" if n >= LARGE_PLAN else "ROI/CPA rules"
        how = f"augmented Lagrangian with L-BFGS-B ({why})"
    else:
        how = "SLSQP"
    explore = (
        f", starts explored on {problem.explore.rm.n_draws} of the draws"
        if problem.explore is not None
        else ""
    )
    return f"{how} with JAX gradients, multi-start{explore}"


def _min_spend(
    problem: _Problem,
    rules: Sequence[Constraint],
    obj: Objective,
    channels: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    cap: float | None,
    x_ref: FloatArray,
    n_starts: int,
    seed: int,
) -> tuple[dict[str, Any], LinearRules]:
    """The least spend whose best plan reaches the KPI target: bisection on the budget.

    The best KPI for a budget of up to ``B`` never falls as ``B`` grows (curves rise), so the
    least such ``B`` is found by bisection (to 0.01 %), each step a full allocation.
    """
    target = float(obj.target or 0.0)
    best_kpi = Objective("kpi", risk=obj.risk)
    ref_total = x_ref.sum(axis=0)
    periods = x_ref.shape[0]
    tries = {"starts": 0, "iterations": 0, "steps": 0}

    def best_at(budget: float) -> tuple[FloatArray, float, LinearRules] | None:
        lin = linear_rules(rules, channels, groups, periods, budget, "up_to", ref_total)
        if explain_infeasible(lin):
            return None
        try:
            out = _solve(
                problem, lin, rules, best_kpi, channels, groups, budget, x_ref, n_starts, seed
            )
        except InfeasibleError:
            return None
        tries["starts"] += out["starts"]
        tries["iterations"] += out["iterations"]
        tries["steps"] += 1
        value = float(summarise(problem.incremental(_to_jnp(out["x"])), obj.risk))
        return out["x"], value, lin

    high = float(cap) if cap else max(float(x_ref.sum()), 1.0)
    found = best_at(high)
    grow = 0
    while cap is None and (found is None or found[1] < target) and grow < 40:
        high *= 2.0
        grow += 1
        found = best_at(high)
    if found is None or found[1] < target:
        best = "nothing" if found is None else f"{found[1]:,.4g}"
        raise InfeasibleError(
            f"no plan reaches the KPI target {target:,.4g}"
            + (f" within the budget cap {cap:,.0f}: the best plan brings {best}" if cap else "")
            + ". Lower the target"
            + (" or raise the cap." if cap else ".")
        )
    low = 0.0
    while high - low > 1e-4 * high:
        mid = 0.5 * (low + high)
        trial = best_at(mid)
        if trial is not None and trial[1] >= target:
            high, found = mid, trial
        else:
            low = mid
    x, _, lin = found
    return {"x": x, **tries, "feasible_starts": tries["steps"]}, lin


def _starts(
    lin: LinearRules, x_ref: FloatArray, scale: float, n_starts: int, seed: int
) -> list[FloatArray]:
    """Starting plans in solver units: the reference scaled to the budget, an even split, a
    feasible point of the linear rules, then random splits, ``n_starts`` in all."""
    n = x_ref.size
    rng = np.random.default_rng(seed)
    budget_row = bool(lin.labels) and lin.labels[0].startswith("total budget")
    total = float(lin.hi[0]) / scale if budget_row else 1.0
    points = []
    ref_y = x_ref.ravel() / scale
    if ref_y.sum() > 0:
        points.append(ref_y * (total / ref_y.sum()))
    points.append(np.full(n, total / n))
    point = feasible_point(lin)
    if point is not None and point.sum() > 0:
        points.append(point / scale)
    while len(points) < max(n_starts, 1):
        points.append(rng.dirichlet(np.ones(n)) * total)
    return points[: max(n_starts, 1)]


class _Loss:
    """One problem in the solver's units (``y = x / scale``): the loss, the ROI/CPA rules as
    elastic constraints, the linear rules, and the two solvers."""

    def __init__(
        self,
        problem: _Problem,
        lin: LinearRules,
        obj: Objective,
        rows: MetricRows,
        scale: float,
        x_ref: FloatArray,
    ) -> None:
        self.n = n = x_ref.size
        self.k = k = len(rows)
        fns = problem.fns
        rm, gap, data = problem.rm, problem.gap, problem.data
        margin = float(obj.margin or 0.0)
        kind, risk = obj.kind, obj.risk
        # The loss's unit: the objective's size at the reference plan, or at an even split
        # of the budget when the reference brings nothing, so the solver works on O(1).
        norm = 1.0
        for y in (x_ref.ravel() / scale, np.full(n, 1.0 / n)):
            v0, _ = fns["loss"](rm, gap, kind, risk, data, scale, 1.0, margin, _to_jnp(y))
            if abs(float(v0)) > 1e-9:
                norm = abs(float(v0))
                break

        def loss(y: FloatArray) -> tuple[float, FloatArray]:
            if k:
                v, g, _, _ = both(y)
                return v, g
            v, g = fns["loss"](rm, gap, kind, risk, data, scale, norm, margin, _to_jnp(y))
            return float(v), np.asarray(g, dtype=np.float64)

        def metric_f(y: Any) -> FloatArray:
            return both(y)[2]

        def metric_j(y: Any) -> FloatArray:
            return both(y)[3]

        # With ROI/CPA rules the solvers ask for the loss and the rules at the same plan: one
        # compiled call gives all four (the model's forward pass shared), kept for that plan.
        seen: bytes | None = None
        kept: tuple[float, FloatArray, FloatArray, FloatArray] | None = None

        def both(y: Any) -> tuple[float, FloatArray, FloatArray, FloatArray]:
            nonlocal seen, kept
            y32 = _to_jnp(y)
            if kept is None or y32.tobytes() != seen:
                v, g, f, j = fns["loss_metrics"](
                    rm, gap, kind, risk, rows, data, scale, norm, margin, y32
                )
                seen = y32.tobytes()
                kept = (
                    float(v),
                    np.asarray(g, dtype=np.float64),
                    np.asarray(f, dtype=np.float64),
                    np.asarray(j, dtype=np.float64).reshape(-1, n),
                )
            return kept

        self.loss, self.metric_f, self.metric_j = loss, metric_f, metric_j
        self.lin, self.lo, self.hi = lin, lin.lo / scale, lin.hi / scale
        # SLSQP's constraints: the linear rules (SLSQP serves plans without ROI/CPA rules;
        # those go to the augmented Lagrangian, see solve). A plan is still measured with a
        # slack s >= 0 per such rule (g(y) + s >= 0, costing PENALTY per unit in ``fun``), so
        # plans that break a rule rank last.
        A = lin.A
        lo, hi = self.lo, self.hi
        eq = np.isfinite(lo) & np.isfinite(hi) & (lo == hi)
        ineq = [(A[i], lo[i]) for i in np.flatnonzero(~eq) if np.isfinite(lo[i])]
        ineq += [(-A[i], -hi[i]) for i in np.flatnonzero(~eq) if np.isfinite(hi[i])]
        cons: list[dict[str, Any]] = []
        if eq.any():
            A_eq, b_eq = A[eq], lo[eq]
            cons.append({"type": "eq", "fun": lambda z: A_eq @ z - b_eq, "jac": lambda z: A_eq})
        if ineq:
            A_in = np.array([r[0] for r in ineq])
            b_in = np.array([r[1] for r in ineq])
            cons.append({"type": "ineq", "fun": lambda z: A_in @ z - b_in, "jac": lambda z: A_in})
        self.cons = cons

    def fun(self, z: FloatArray) -> tuple[float, FloatArray]:
        """The loss plus the slacks' penalty, over plan and slacks."""
        n = self.n
        v, g = self.loss(z[:n])
        return v + PENALTY * float(z[n:].sum()), np.r_[g, np.full(self.k, PENALTY)]

    def start(self, y: FloatArray) -> FloatArray:
        """A plan with the slacks that make its ROI/CPA rules hold."""
        return np.r_[y, np.maximum(-self.metric_f(y), 0.0) if self.k else np.zeros(0)]

    def violation(self, y: FloatArray) -> float:
        r = self.lin.A @ y
        worst = float(np.max(np.r_[self.lo - r, r - self.hi, -y, 0.0]))
        if self.k:
            worst = max(worst, float(np.max(np.r_[-self.metric_f(y), 0.0])))
        return worst

    def solve(
        self, z: FloatArray, runs: int, coarse: bool = False, warm: bool = False
    ) -> tuple[FloatArray, float, int]:
        """From ``z``: the augmented Lagrangian for large plans and for any plan with ROI/CPA
        rules (its nonlinear rows, no slacks), else up to ``runs`` SLSQP runs. Returns the
        point (with the slacks its ROI/CPA rules need), its loss and the iterations.
        ``coarse``: to 1e-5 (the Lagrangian; enough to rank the starts before a polish);
        ``warm``: ``z`` is a solution of a nearby problem (the same on fewer draws)."""
        if self.n >= LARGE_PLAN or self.k:
            from mixwise.optimize import lagrangian

            out = lagrangian.solve(
                self.loss,
                self.lin.A,
                self.lo,
                self.hi,
                z[: self.n],
                np.zeros(self.n),
                np.full(self.n, np.inf),
                nonlinear=self.metric_rows if self.k else None,
                **({"ftol": 1e-5, "tol": 1e-6} if coarse else {"warm": warm}),
            )
            point = self.start(out.y)
            return point, self.fun(point)[0], out.iterations
        return self.slsqp(z, runs)

    def metric_rows(self, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The ROI/CPA rules as ``g(y) >= 0`` with their Jacobian (the Lagrangian's rows)."""
        return self.metric_f(y), self.metric_j(y)

    def slsqp(self, z: FloatArray, runs: int) -> tuple[FloatArray, float, int]:
        """(Plans without ROI/CPA rules.) Up to ``runs`` SLSQP runs, each from where the one
        before stopped, while that still lowers the loss: SLSQP stops when one step changes
        the loss by less than FTOL, which a poor quasi-Newton model (a curve with a kink near
        zero spend) causes long before the optimum; a restart gives it a fresh model."""
        from scipy.optimize import minimize

        its = 0
        last = np.inf
        value = np.inf
        for _ in range(runs):
            res = minimize(
                self.fun,
                z,
                jac=True,
                method="SLSQP",
                bounds=[(0.0, None)] * self.n,
                constraints=self.cons,
                options={"maxiter": 300, "ftol": FTOL},
            )
            its += int(res.nit)
            z = np.maximum(np.asarray(res.x, dtype=np.float64), 0.0)
            value = float(res.fun)
            if not last - value > 1e3 * FTOL * max(abs(value), 1.0):
                break
            last = value
        return z, min(value, last), its


def _run(
    problem: _Problem,
    lin: LinearRules,
    obj: Objective,
    rows: MetricRows,
    scale: float,
    x_ref: FloatArray,
    starts: Sequence[FloatArray],
    evaluate: Sequence[FloatArray] = (),
) -> dict[str, Any]:
    """The best plan (solver units) that keeps every rule, or None. Every start is solved
    once on the explore problem (the model on fewer draws, when it has one); the POLISH best
    are solved again on all draws, with SLSQP restarts. ``evaluate``: plans only checked."""
    n = x_ref.size
    full = _Loss(problem, lin, obj, rows, scale, x_ref)
    quick = (
        _Loss(problem.explore, lin, obj, rows, scale, x_ref)
        if problem.explore is not None and starts
        else full
    )
    iterations = 0
    runs: list[tuple[float, FloatArray]] = []
    for y0 in starts:
        z, value, its = quick.solve(quick.start(y0), 1, coarse=quick is not full)
        iterations += its
        runs.append((value, z))
    runs.sort(key=lambda r: r[0])
    points = []
    polished: list[FloatArray] = []
    for _, z in runs:
        # the POLISH best distinct plans (starts that ended in the same plan are one)
        if len(polished) < POLISH and all(np.abs(z[:n] - p).max() > 1e-3 for p in polished):
            polished.append(z[:n])
            z0 = full.start(z[:n]) if quick is not full else z
            again = quick is not full
            z, _, its = full.solve(z0, RESTARTS if again else RESTARTS - 1, warm=again)
            iterations += its
        points.append(z[:n])
    best: tuple[float, FloatArray] | None = None
    feasible = 0
    for y in [*points, *evaluate]:
        if full.violation(y) > _TOL:
            continue
        feasible += 1
        f = full.fun(np.r_[y, np.zeros(full.k)])[0]
        if best is None or f < best[0]:
            best = (f, y)
    return {
        "y": None if best is None else best[1],
        "starts": len(starts),
        "feasible_starts": feasible,
        "iterations": iterations,
    }


def _metric_failure(metric: Sequence[tuple[Constraint, list[int] | None]]) -> str:
    if not metric:
        return "no plan found that keeps every rule (the optimiser did not converge)"
    return (
        "no plan keeps " + "; ".join(str(r) for r, _ in metric) + ". The response model "
        "cannot reach these levels with the allowed spend: lower the targets, or allow "
        "spending less (ROI targets rise as spend falls: use an 'up to' budget)."
    )


# -- describing a plan -------------------------------------------------------------------------
def _interval(draws: FloatArray) -> dict[str, float]:
    lower, upper = np.quantile(draws, _INTERVAL) if draws.size > 1 else (draws[0], draws[0])
    return {"mean": float(draws.mean()), "lower": float(lower), "upper": float(upper)}


def marginal_roi(problem: _Problem, x: FloatArray) -> FloatArray:
    """d E[incremental KPI] / d spend per channel at plan ``x``: one more unit of a channel's
    spend, timed like the plan's spend on it (or spread like the horizon if it has none)."""
    grad = np.asarray(problem.grad_mean(_to_jnp(x)), dtype=np.float64)  # (B, C)
    days = np.array([problem.hz.days(i) for i in range(problem.hz.n_budget)])
    out = np.empty(x.shape[1])
    for j in range(x.shape[1]):
        col = x[:, j]
        timing = col / col.sum() if col.sum() > 0 else days / days.sum()
        out[j] = float(grad[:, j] @ timing)
    return out


def _describe(
    problem: _Problem,
    x: FloatArray,
    x_ref: FloatArray,
    rules: Sequence[Constraint],
    lin: LinearRules,
    obj: Objective,
    channels: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    kpi_type: str,
) -> Allocation:
    hz = problem.hz
    incr = np.asarray(problem.incremental(_to_jnp(x)), dtype=np.float64)
    incr_ref = np.asarray(problem.incremental(_to_jnp(x_ref)), dtype=np.float64)
    contrib = np.asarray(problem.by_channel(_to_jnp(x)), dtype=np.float64)
    contrib_ref = np.asarray(problem.by_channel(_to_jnp(x_ref)), dtype=np.float64).mean(axis=0)
    m_plan = marginal_roi(problem, x)
    m_ref = marginal_roi(problem, x_ref)
    spend_c = x.sum(axis=0)
    ref_c = x_ref.sum(axis=0)
    lower, upper = (
        np.quantile(contrib, _INTERVAL, axis=0) if contrib.shape[0] > 1 else (contrib[0],) * 2
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {
                "spend": spend_c,
                "reference": ref_c,
                "change": spend_c - ref_c,
                "change_pct": np.where(ref_c > 0, (spend_c - ref_c) / ref_c * 100, np.nan),
                "contribution": contrib.mean(axis=0),
                "contribution_lower": lower,
                "contribution_upper": upper,
                "contribution_reference": contrib_ref,
                "roi": np.where(spend_c > 0, contrib.mean(axis=0) / spend_c, np.nan),
                "marginal_roi": m_plan,
                "marginal_roi_reference": m_ref,
            },
            index=list(channels),
        )
    table.index.name = "channel"
    plan = pd.DataFrame(x, index=hz.labels, columns=list(channels))
    reference = pd.DataFrame(x_ref, index=hz.labels, columns=list(channels))
    model_labels = [
        f"period {i + 1}" if s is None else s.strftime("%Y-%m-%d")
        for i, s in enumerate(hz.model_starts)
    ]
    model_plan = pd.DataFrame(hz.spread @ x, index=model_labels, columns=list(channels))
    checks = _check_rules(problem, x, rules, lin, obj, channels, groups)
    kpi = _interval(incr)
    ref_kpi = _interval(incr_ref)
    reasons = explain_changes(table, kpi_type, float(x.sum()), float(x_ref.sum()))
    per = "ROI" if kpi_type == "revenue" else f"{problem.rm.kpi_name} per unit of spend"
    assumptions = [
        hz.assumption(),
        f"Predicted {problem.rm.kpi_name} is incremental: what the plan adds against "
        "spending nothing in its periods, with a 90 % interval over the model's draws.",
        f"Marginal {per}: what one more unit of a channel's spend would add, timed like the "
        "plan's spend on it.",
    ]
    return Allocation(
        plan=plan,
        reference=reference,
        model_plan=model_plan,
        channels=table,
        kpi=kpi,
        reference_kpi=ref_kpi,
        spend=float(x.sum()),
        reference_spend=float(x_ref.sum()),
        objective=obj,
        kpi_name=problem.rm.kpi_name,
        kpi_type=kpi_type,
        rules=checks,
        reasons=reasons,
        assumptions=assumptions,
        solver={"draws": int(incr.size)},
        horizon=hz,
    )


def _check_rules(
    problem: _Problem,
    x: FloatArray,
    rules: Sequence[Constraint],
    lin: LinearRules,
    obj: Objective,
    channels: Sequence[str],
    groups: Mapping[str, Sequence[str]],
) -> list[dict[str, Any]]:
    """Each rule with the plan's value and whether it holds (within a small tolerance)."""
    out: list[dict[str, Any]] = []
    values = lin.A @ x.ravel()
    scale = max(float(x.sum()), 1.0)
    for label in dict.fromkeys(lin.labels):
        rows = [i for i, lab in enumerate(lin.labels) if lab == label]
        ok = all(lin.lo[i] - _TOL * scale <= values[i] <= lin.hi[i] + _TOL * scale for i in rows)
        out.append({"rule": label, "ok": bool(ok)})
    for rule, idx in _metric_rows(rules, channels, groups):
        if idx is None:
            incr = float(summarise(problem.incremental(_to_jnp(x)), obj.risk))
            spend = float(x.sum())
        else:
            by = problem.by_channel(_to_jnp(x))[:, idx].sum(axis=1)
            incr = float(summarise(by, obj.risk))
            spend = float(x[:, idx].sum())
        if spend == 0:
            level = float("nan")  # no spend: the rule has nothing to judge
        else:
            level = incr / spend if rule.kind == "roi" else spend / max(incr, 1e-12)
        ok = (
            spend == 0
            or (rule.op == ">=" and level >= rule.value * (1 - 1e-4))
            or (rule.op == "<=" and level <= rule.value * (1 + 1e-4))
        )
        out.append({"rule": str(rule), "value": level, "ok": bool(ok)})
    return out


def explain_changes(
    table: pd.DataFrame, kpi_type: str, spend: float, reference_spend: float
) -> list[str]:
    """Each change against the reference plan in words, largest first, with its reason.

    The reason is the return of the money moved: what the amount taken from a channel was
    bringing per unit, what the amount added to a channel brings per unit (its change in
    contribution over its change in spend; with S-shaped curves this differs from the
    marginal return at either plan), and the marginal return where the new plan ends.
    """
    per = "ROI" if kpi_type == "revenue" else "KPI per unit of spend"
    reasons: list[str] = []
    if reference_spend > 0 and abs(spend - reference_spend) > 0.005 * reference_spend:
        delta = (spend - reference_spend) / reference_spend * 100
        reasons.append(
            f"total spend {'+' if delta > 0 else ''}{delta:.0f} % against the current plan "
            f"({reference_spend:,.0f} → {spend:,.0f})"
        )
    base = max(spend, reference_spend, 1e-12)
    moved = table[table["change"].abs() > 0.01 * base]
    if moved.empty:
        reasons.append("keep the current mix: no channel changes by more than 1 % of the budget")
        return reasons
    change = moved["change"]
    arc = ((moved["contribution"] - moved["contribution_reference"]) / change).to_dict()
    downs = moved[change < 0].sort_values("change")
    ups = moved[change > 0].sort_values("change", ascending=False)
    for name, row in downs.iterrows():
        pct = f" ({row['change_pct']:+.0f} %)" if np.isfinite(row["change_pct"]) else ""
        to = ", ".join(str(p) for p in ups.index[:2])
        text = f"move {abs(row['change']) / base * 100:.0f} % of the budget from {name}{pct}"
        text += f" to {to}" if to else ""
        text += f": the money taken out was returning {arc[name]:.2f} per unit ({per})"
        if not ups.empty:
            text += f", the money added to {ups.index[0]} returns {arc[ups.index[0]]:.2f}"
        reasons.append(text)
    for name, row in ups.iterrows():
        pct = f" ({row['change_pct']:+.0f} %)" if np.isfinite(row["change_pct"]) else " (new)"
        reasons.append(
            f"add {row['change'] / base * 100:.0f} % of the budget to {name}{pct}: the added "
            f"money returns {arc[name]:.2f} per unit ({per}); marginal {per} "
            f"{row['marginal_roi_reference']:.2f} at the current plan, "
            f"{row['marginal_roi']:.2f} at the new one"
        )
    funded = table[table["spend"] > 0.01 * max(spend, 1e-12)]["marginal_roi"]
    if len(funded) > 1:
        reasons.append(
            f"at the new plan the funded channels' marginal {per} range "
            f"{funded.min():.2f} … {funded.max():.2f}"
            + (
                " (about equal: moving money between them would add little)"
                if funded.max() - funded.min() <= 0.05 * max(abs(funded.max()), 1e-12)
                else " (rules or S-shaped curves keep them apart)"
            )
        )
    return reasons
