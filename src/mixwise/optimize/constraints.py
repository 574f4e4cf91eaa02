"""The rules a budget plan must keep, written the way a planner says them.

One rule per string (``parse_constraint``); ``NAME`` is a channel or a group of channels
(``groups={"brand": ("tv", "video")}``), amounts are totals over the plan's horizon:

==============================  =====================================================
``brand>=30%`` / ``brand>=0.3``  the group's (or channel's) share of the total spend
``brand=30%+-5%``               a share within a tolerance (20/50/30 splits: one per group)
``tv>=100000``                  an amount (a share needs % or a fraction such as 0.3)
``tv<=+20%`` / ``tv>=-10%``     change against the reference (current) plan's amount
``tv=current``                  fixed at the reference plan's amount; ``tv=50000`` fixed
``roi>=2`` / ``roi[search]>=2`` overall (or a channel's / group's) KPI per unit of spend
``cpa<=40`` / ``cpa[search]<=40``  overall (or per channel / group) spend per KPI unit
``period<=200000``              every budget period's total spend at most this
``tv/period<=50000``            every budget period's spend on a channel at most this
==============================  =====================================================

The linear rules become rows ``lo <= A @ x <= hi`` over the plan ``x`` (budget periods ×
channels, flattened row by row); ROI and CPA rules depend on the response model and stay
nonlinear. :func:`explain_infeasible` finds a smallest set of linear rules that cannot hold
together (a deletion filter over an LP feasibility problem), so the error names the rules to
relax instead of "no solution".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Op = Literal[">=", "<=", "="]
Kind = Literal["share", "amount", "change", "fixed", "roi", "cpa", "period", "channel_period"]

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(
    r"^\s*(?P<lhs>[^<>=]+?)\s*(?P<op>>=|<=|=)\s*(?P<rhs>.+?)\s*$",
)
_METRIC = re.compile(r"^(?P<metric>roi|cpa)(?:\[(?P<name>[^\]]+)\])?$", re.IGNORECASE)


class ConstraintError(ValueError):
    """A rule that cannot be read, or names something unknown."""


class InfeasibleError(ValueError):
    """The rules cannot all hold; ``conflict`` lists a smallest set of them that clash."""

    def __init__(self, message: str, conflict: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.conflict = list(conflict)


@dataclass(frozen=True)
class Constraint:
    """One parsed rule. ``name``: a channel or group ("" for overall ROI/CPA and period
    caps); ``value``: a share in [0, 1], an amount, a relative change, or a ROI/CPA level;
    ``tolerance``: the ± of a share."""

    kind: Kind
    name: str
    op: Op
    value: float
    tolerance: float = 0.0
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"{self.name}{self.op}{self.value:g}"


def parse_constraint(text: str) -> Constraint:
    """A :class:`Constraint` from one rule string (see the module docstring)."""
    m = _RULE.match(text or "")
    if not m:
        raise ConstraintError(
            f"cannot read constraint {text!r}: expected NAME>=VALUE, NAME<=VALUE or "
            "NAME=VALUE, e.g. 'brand>=30%', 'tv<=+20%', 'roi>=2', 'search=current'"
        )
    lhs, op, rhs = m["lhs"].strip(), m["op"], m["rhs"].strip().replace(" ", "")
    op_t: Op = op  # type: ignore[assignment]
    metric = _METRIC.match(lhs)
    if metric:
        kind: Kind = "roi" if metric["metric"].lower() == "roi" else "cpa"
        if op == "=":
            raise ConstraintError(f"{text!r}: {kind.upper()} takes >= or <=, not =")
        value = _number(rhs, text)
        if value <= 0:
            raise ConstraintError(f"{text!r}: the {kind.upper()} level must be > 0")
        return Constraint(kind, (metric["name"] or "").strip(), op_t, value, text=text)
    if lhs.lower() == "period" or lhs.lower().endswith("/period"):
        if op != "<=":
            raise ConstraintError(f"{text!r}: a period cap takes <=, e.g. 'period<=200000'")
        value = _number(rhs, text)
        if value < 0:
            raise ConstraintError(f"{text!r}: a cap must be >= 0")
        if lhs.lower() == "period":
            return Constraint("period", "", "<=", value, text=text)
        return Constraint("channel_period", lhs[: -len("/period")].strip(), "<=", value, text=text)
    if not re.fullmatch(r"[\w.\- ]+", lhs):
        raise ConstraintError(f"{text!r}: {lhs!r} is not a channel or group name")
    if rhs.lower() == "current":
        if op != "=":
            raise ConstraintError(f"{text!r}: 'current' takes =, e.g. '{lhs}=current'")
        return Constraint("fixed", lhs, "=", float("nan"), text=text)
    tol = re.fullmatch(rf"({_NUMBER})%?(?:\+-|±)({_NUMBER})%?", rhs)
    if tol:
        if op != "=":
            raise ConstraintError(f"{text!r}: a tolerance takes =, e.g. '{lhs}=30%+-5%'")
        share = _share(tol[1], rhs.split("+-")[0].split("±")[0], text)
        width = _share(tol[2], rhs.split("+-")[-1].split("±")[-1], text)
        return Constraint("share", lhs, "=", share, tolerance=width, text=text)
    if rhs[:1] in "+-" and rhs.endswith("%"):
        return Constraint("change", lhs, op_t, _number(rhs[:-1], text) / 100.0, text=text)
    if rhs.endswith("%"):
        return Constraint("share", lhs, op_t, _share(rhs[:-1], rhs, text), text=text)
    value = _number(rhs, text)
    if value < 0:
        raise ConstraintError(f"{text!r}: amounts and shares must be >= 0")
    if value < 1 and "." in rhs and op != "=":
        return Constraint("share", lhs, op_t, value, text=text)
    return Constraint("fixed" if op == "=" else "amount", lhs, op_t, value, text=text)


def parse_groups(lines: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["brand=tv,video", ...]`` as ``{"brand": ("tv", "video")}`` (blank lines skipped);
    ``ValueError`` on a line that is not ``NAME=channel,channel``."""
    out: dict[str, tuple[str, ...]] = {}
    for line in lines:
        text = line.strip()
        if not text:
            continue
        name, sep, channels = text.partition("=")
        names = tuple(n.strip() for n in channels.split(",") if n.strip())
        if not sep or not name.strip() or not names:
            raise ValueError(f"group {text!r}: expected NAME=channel,channel")
        out[name.strip()] = names
    return out


def parse_constraints(rules: Sequence[str | Constraint]) -> list[Constraint]:
    return [r if isinstance(r, Constraint) else parse_constraint(r) for r in rules]


def _number(text: str, rule: str) -> float:
    if not re.fullmatch(_NUMBER, text):
        raise ConstraintError(f"{rule!r}: {text!r} is not a number")
    return float(text)


def _share(number: str, spelled: str, rule: str) -> float:
    value = _number(number, rule)
    share = value / 100.0 if spelled.endswith("%") or value > 1 else value
    if not 0 <= share <= 1:
        raise ConstraintError(f"{rule!r}: a share must be between 0 and 100 %")
    return share


# -- the linear system -------------------------------------------------------------------------
@dataclass(frozen=True)
class LinearRules:
    """``lo <= A @ x <= hi`` row by row, and ``x >= 0``; ``labels[i]`` is the rule row ``i``
    comes from."""

    A: FloatArray
    lo: FloatArray
    hi: FloatArray
    labels: list[str]


def members(name: str, channels: Sequence[str], groups: Mapping[str, Sequence[str]]) -> list[int]:
    """Channel positions of a channel or group name."""
    if name in channels:
        return [list(channels).index(name)]
    if name in groups:
        unknown = [c for c in groups[name] if c not in channels]
        if unknown:
            raise ConstraintError(f"group {name!r} names unknown channels {unknown}")
        return [list(channels).index(c) for c in groups[name]]
    raise ConstraintError(
        f"{name!r} is neither a channel ({', '.join(channels)}) nor a group"
        + (f" ({', '.join(groups)})" if groups else "; define groups with --group NAME=a,b")
    )


def linear_rules(
    rules: Sequence[Constraint],
    channels: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    n_periods: int,
    budget: float | None,
    budget_mode: Literal["exact", "up_to"],
    reference: FloatArray,
) -> LinearRules:
    """The linear rules over ``x`` (``n_periods`` × channels, row-major), the budget first
    (``None``: no budget row, as when minimising spend). ``reference`` is the reference
    plan's amount per channel over the horizon."""
    c = len(channels)
    n = n_periods * c
    rows: list[FloatArray] = []
    lo: list[float] = []
    hi: list[float] = []
    labels: list[str] = []

    def channel_row(idx: Sequence[int]) -> FloatArray:
        row = np.zeros((n_periods, c))
        row[:, list(idx)] = 1.0
        return row.ravel()

    total = np.ones(n)
    if budget is not None:
        rows.append(total)
        lo.append(budget if budget_mode == "exact" else 0.0)
        hi.append(budget)
        labels.append(f"total budget {'=' if budget_mode == 'exact' else '<='} {budget:,.0f}")
    for rule in rules:
        label = str(rule)
        if rule.kind in ("roi", "cpa"):
            continue
        if rule.kind == "period":
            for b in range(n_periods):
                row = np.zeros((n_periods, c))
                row[b] = 1.0
                rows.append(row.ravel())
                lo.append(-np.inf)
                hi.append(rule.value)
                labels.append(label)
            continue
        idx = members(rule.name, channels, groups)
        if rule.kind == "channel_period":
            for b in range(n_periods):
                for i in idx:
                    cell = np.zeros(n)
                    cell[b * c + i] = 1.0
                    rows.append(cell)
                    lo.append(-np.inf)
                    hi.append(rule.value)
                    labels.append(label)
            continue
        row = channel_row(idx)
        ref = float(reference[idx].sum())
        if rule.kind == "share":
            # sum_G x - s * sum x  (>=, <=, or within ±tol of) 0
            share_lo = rule.value - rule.tolerance if rule.op in (">=", "=") else -np.inf
            share_hi = rule.value + rule.tolerance if rule.op in ("<=", "=") else np.inf
            if np.isfinite(share_lo):
                rows.append(row - share_lo * total)
                lo.append(0.0)
                hi.append(np.inf)
                labels.append(label)
            if np.isfinite(share_hi):
                rows.append(row - share_hi * total)
                lo.append(-np.inf)
                hi.append(0.0)
                labels.append(label)
            continue
        if rule.kind == "change":
            amount = ref * (1.0 + rule.value)
        elif rule.kind == "fixed":
            amount = ref if np.isnan(rule.value) else rule.value
        else:
            amount = rule.value
        rows.append(row)
        lo.append(amount if rule.op in (">=", "=") else -np.inf)
        hi.append(amount if rule.op in ("<=", "=") else np.inf)
        labels.append(label)
    A = np.array(rows, dtype=np.float64).reshape(len(rows), n)
    return LinearRules(A, np.array(lo, float), np.array(hi, float), labels)


def feasible_point(lin: LinearRules, keep: Sequence[int] | None = None) -> FloatArray | None:
    """A point satisfying the rows ``keep`` (all by default) and the bounds, or None."""
    from scipy.optimize import linprog

    rows = list(range(len(lin.labels))) if keep is None else list(keep)
    A = lin.A[rows]
    lo, hi = lin.lo[rows], lin.hi[rows]
    eq = np.isfinite(lo) & np.isfinite(hi) & (lo == hi)
    ub_rows, ub_vals = [], []
    for i in np.flatnonzero(~eq):
        if np.isfinite(hi[i]):
            ub_rows.append(A[i])
            ub_vals.append(hi[i])
        if np.isfinite(lo[i]):
            ub_rows.append(-A[i])
            ub_vals.append(-lo[i])
    n = lin.A.shape[1]
    res = linprog(
        np.zeros(n),
        A_ub=np.array(ub_rows).reshape(-1, n) if ub_rows else None,
        b_ub=np.array(ub_vals) if ub_vals else None,
        A_eq=A[eq] if eq.any() else None,
        b_eq=lo[eq] if eq.any() else None,
        bounds=[(0.0, None)] * n,
        method="highs",
    )
    return np.asarray(res.x, dtype=np.float64) if res.status == 0 else None


def explain_infeasible(lin: LinearRules) -> list[str]:
    """A smallest set of rules (by label) that cannot hold together (empty if feasible).

    Deletion filter: drop each rule in turn (all its rows) and keep it dropped while the rest
    stays infeasible; what remains is irreducible — relaxing any one of them helps.
    """
    if feasible_point(lin) is not None:
        return []
    names = list(dict.fromkeys(lin.labels))
    kept = list(names)
    for name in names:
        trial = [k for k in kept if k != name]
        rows = [i for i, lab in enumerate(lin.labels) if lab in trial]
        if feasible_point(lin, rows) is None:
            kept = trial
    return kept
