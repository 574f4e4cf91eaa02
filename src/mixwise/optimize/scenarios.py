"""Scenarios: named plans saved in the workspace, compared side by side; the frontier.

A scenario is a plan with its prediction: the optimizer's (``kind="optimized"``), the
current plan's (``"current"``) or a manual what-if (``"manual"``), each evaluated on a
response model. Saved in the state store (table ``scenarios``) with what was asked, the
predicted KPI with its interval, ROI and marginal ROI per channel, and the amounts per
period and channel (:meth:`~mixwise.optimize.allocate.Allocation.to_frame`'s rows, the form a
budget plan is created from). Saving under an existing name replaces that scenario.

:func:`compare` lines scenarios up: spend, predicted KPI with interval, ROI, and per channel
amount and marginal ROI. :func:`frontier` re-optimises at budgets from −50 % to +50 % of a
reference budget: the predicted KPI and the marginal ROI of the last unit at each budget —
where more money stops paying.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from mixwise.store.state import AuditEvent, Scenario

if TYPE_CHECKING:
    from mixwise.optimize.allocate import Allocation
    from mixwise.optimize.response import ResponseModel
    from mixwise.workspace import Workspace

Kind = Literal["optimized", "current", "manual"]
MAX_NAME = 120


class ScenarioNotFound(LookupError):
    """No scenario by that name (or id)."""


@dataclass(frozen=True)
class ScenarioInfo:
    id: int
    name: str
    kind: str
    run_id: int | None
    active: bool
    created_at: str
    updated_at: str
    request: dict[str, Any]
    result: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def spend(self) -> float:
        return float(self.result.get("spend", 0.0))

    @property
    def kpi(self) -> dict[str, float]:
        return dict(self.result.get("kpi", {}))

    def frame(self) -> pd.DataFrame:
        """The amounts: one row per period and channel."""
        return pd.DataFrame(
            self.rows, columns=["scenario", "period", "start", "end", "channel", "amount"]
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "run": self.run_id,
            "active": self.active,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "request": self.request,
            "result": self.result,
            "plan": self.rows,
        }


def _info(row: Scenario) -> ScenarioInfo:
    return ScenarioInfo(
        id=row.id,
        name=row.name,
        kind=row.kind,
        run_id=row.run_id,
        active=bool(row.active),
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
        request=dict(row.request),
        result=dict(row.result),
        rows=list(row.plan.get("rows", [])),
    )


def check_name(name: str | None, *, required: bool = True) -> str | None:
    """A scenario name, stripped; ``ValueError`` when empty (unless not ``required``: then
    None) or longer than ``MAX_NAME``."""
    clean = (name or "").strip()
    if not clean and not required:
        return None
    if not clean or len(clean) > MAX_NAME:
        raise ValueError(f"a scenario name must have 1 … {MAX_NAME} characters, got {name!r}")
    return clean


def save_scenario(
    ws: Workspace,
    name: str,
    result: Allocation,
    *,
    kind: Kind = "optimized",
    run_id: int | None = None,
    user_id: int | None = None,
    actor: str | None = None,
) -> int:
    """Store ``result`` as scenario ``name`` (replacing one of that name); its id."""
    name = str(check_name(name))
    if kind not in ("optimized", "current", "manual"):
        raise ValueError(f"kind must be optimized, current or manual, got {kind!r}")
    payload = result.to_dict()
    request = payload.pop("request", {}) or {}
    rows = result.to_frame(name).to_dict("records")
    now = dt.datetime.now(dt.UTC)
    with ws.state.session() as s:
        row = s.scalar(sa.select(Scenario).where(Scenario.name == name))
        if row is None:
            row = Scenario(name=name, created_at=now, active=False)
            s.add(row)
        row.kind = kind
        row.run_id = run_id
        row.request = _json(request)
        row.result = _json(payload)
        row.plan = {"rows": _json(rows)}
        row.user_id = user_id
        row.updated_at = now
        s.flush()
        s.add(AuditEvent(actor=actor, action="scenario.save", detail={"name": name, "kind": kind}))
        return int(row.id)


def _json(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if np.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def list_scenarios(ws: Workspace) -> list[ScenarioInfo]:
    with ws.state.session() as s:
        rows = s.scalars(sa.select(Scenario).order_by(Scenario.id)).all()
        return [_info(r) for r in rows]


def _row(s: Any, key: str | int) -> Scenario:
    stmt = sa.select(Scenario)
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        row = s.scalar(stmt.where(Scenario.id == int(key)))
    else:
        row = s.scalar(stmt.where(Scenario.name == str(key).strip()))
    if row is None:
        raise ScenarioNotFound(f"no scenario {key!r} in this workspace")
    return row  # type: ignore[no-any-return]


def get_scenario(ws: Workspace, key: str | int) -> ScenarioInfo:
    """A scenario by name or id."""
    with ws.state.session() as s:
        return _info(_row(s, key))


def delete_scenario(ws: Workspace, key: str | int, *, actor: str | None = None) -> None:
    with ws.state.session() as s:
        row = _row(s, key)
        s.add(AuditEvent(actor=actor, action="scenario.delete", detail={"name": row.name}))
        s.delete(row)


def set_active(ws: Workspace, key: str | int, *, actor: str | None = None) -> None:
    """Make a scenario the active plan (the one re-allocation proposals start from)."""
    with ws.state.session() as s:
        row = _row(s, key)
        s.execute(sa.update(Scenario).values(active=False))
        row.active = True
        s.add(AuditEvent(actor=actor, action="scenario.activate", detail={"name": row.name}))


def active_scenario(ws: Workspace) -> ScenarioInfo | None:
    with ws.state.session() as s:
        row = s.scalar(sa.select(Scenario).where(Scenario.active.is_(True)))
        return None if row is None else _info(row)


def compare(scenarios: Sequence[ScenarioInfo]) -> pd.DataFrame:
    """Scenarios side by side (one column each): spend, predicted KPI with its interval,
    ROI, and per channel the amount and the marginal ROI at that plan."""
    if not scenarios:
        raise ValueError("name at least one scenario to compare")
    columns: dict[str, dict[str, Any]] = {}
    for sc in scenarios:
        r = sc.result
        col: dict[str, Any] = {
            "kind": sc.kind,
            "run": sc.run_id,
            "spend": r.get("spend"),
            "kpi": r.get("kpi", {}).get("mean"),
            "kpi_lower": r.get("kpi", {}).get("lower"),
            "kpi_upper": r.get("kpi", {}).get("upper"),
            "roi": r.get("roi"),
        }
        for channel, row in (r.get("channels") or {}).items():
            col[f"{channel}: spend"] = row.get("spend")
            col[f"{channel}: marginal ROI"] = row.get("marginal_roi")
        columns[sc.name] = col
    return pd.DataFrame(columns)


def frontier(
    response_model: ResponseModel,
    budget: float,
    *,
    steps: Sequence[float] = (-0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    on_progress: Any = None,
    **options: Any,
) -> pd.DataFrame:
    """The efficient frontier: the best plan's predicted KPI (mean and 90 % interval) and
    marginal ROI of its last unit (the spend-weighted marginal ROI of the funded channels)
    at ``budget × (1 + step)`` for each step; ``options`` go to
    :func:`~mixwise.optimize.allocate.allocate` (rules, periods, groups, risk …).
    Budgets whose rules cannot hold are left out."""
    from mixwise.optimize.allocate import allocate
    from mixwise.optimize.constraints import InfeasibleError

    if not budget > 0:
        raise ValueError("the frontier needs a budget > 0")
    rows = []
    for i, step in enumerate(steps):
        amount = budget * (1.0 + float(step))
        if amount <= 0:
            continue
        try:
            res = allocate(response_model, amount, **options)
        except InfeasibleError:
            continue
        finally:
            if on_progress is not None:
                on_progress("frontier", (i + 1) / len(steps))
        ch = res.channels
        funded = ch["spend"] > 0
        weights = ch.loc[funded, "spend"]
        marginal = float((ch.loc[funded, "marginal_roi"] * weights).sum() / weights.sum())
        rows.append(
            {
                "step": float(step),
                "budget": amount,
                "spend": res.spend,
                "kpi": res.kpi["mean"],
                "kpi_lower": res.kpi["lower"],
                "kpi_upper": res.kpi["upper"],
                "roi": res.roi,
                "marginal_roi": marginal,
            }
        )
    return pd.DataFrame(rows)


def reallocate(
    ws: Workspace,
    response_model: ResponseModel,
    *,
    max_change: float = 0.2,
    scenario: str | int | None = None,
    **options: Any,
) -> tuple[ScenarioInfo, Allocation]:
    """Changes to the active plan (or ``scenario``) that the newest model supports, for the
    monthly or quarterly review: the same budget, periods and rules, each channel moving at
    most ``max_change`` (a share, 0.2 = ±20 %) from its amount in the plan, every change with
    its reason against that plan."""
    from mixwise.optimize.allocate import Objective, allocate

    base = get_scenario(ws, scenario) if scenario is not None else active_scenario(ws)
    if base is None:
        raise ScenarioNotFound(
            "no active plan: save one (mixwise optimize --save NAME) and activate it "
            "(mixwise scenario activate NAME)"
        )
    if not 0 < max_change <= 10:
        raise ValueError(f"max_change must be a share > 0 (0.2 = 20 %), got {max_change}")
    frame = base.frame()
    channels = list(response_model.channels)
    unknown = sorted(set(frame["channel"]) - set(channels))
    if unknown:
        raise ValueError(f"plan {base.name!r} has channels the model does not know: {unknown}")
    table = frame.pivot_table(index="period", columns="channel", values="amount", sort=False)
    table = table.reindex(columns=channels, fill_value=0.0).fillna(0.0)
    request = base.request
    pct = f"{max_change * 100:g}%"
    rules = list(request.get("constraints") or [])
    rules += [f"{c}<=+{pct}" for c in channels] + [f"{c}>=-{pct}" for c in channels]
    kind = request.get("objective") or "revenue"
    goal = Objective(
        "kpi" if kind == "min_spend" else kind,  # type: ignore[arg-type]  # same money, best use
        margin=request.get("margin"),
        risk=request.get("risk") or "mean",
    )
    result = allocate(
        response_model,
        float(table.to_numpy().sum()),
        rules,
        goal,
        periods=request.get("periods"),
        groups=request.get("groups") or {},
        budget_mode=request.get("budget_mode") or "exact",
        reference=table.to_numpy(),
        **options,
    )
    return base, result
