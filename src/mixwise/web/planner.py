"""What the Planner page and ``/api/v1/optimize`` share: the request, the response models of
stored runs (cached), running the allocator and the frontier, and what the page shows.

Both sides describe a plan with a :class:`PlanRequest` (the page reads it from its form with
:func:`parse_form`, the API from :class:`~mixwise.web.schemas.OptimizeRequest`) and run it
with :func:`run_plan` / :func:`run_frontier`, which turn every domain error into a
:class:`PlanError`: its HTTP status (409 no run or an unusable one without ``force``, 404 an
unknown run, 422 bad input or rules that cannot hold, with the clashing rules), its English
text (the API's ``detail``) and a :class:`~mixwise.web.attribution.Problem` for the page.

A run's response model is loaded once (:class:`ResponseCache`): the allocator compiles its
JAX functions per response model, so reusing the model makes every plan after the first on a
run take a fraction of a second instead of several seconds. Runs never change once stored.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mixwise.mmm.response import UnusableModelError
from mixwise.mmm.runs import RunNotFound, show_run
from mixwise.optimize.constraints import InfeasibleError, parse_groups
from mixwise.optimize.scenarios import MAX_NAME, ScenarioInfo, check_name
from mixwise.web.attribution import Problem, finite
from mixwise.web.i18n import N_
from mixwise.web.mmm import kpi_label
from mixwise.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

    from mixwise.optimize.allocate import Allocation, Objective
    from mixwise.optimize.response import ResponseModel

# The objectives the page offers (form value → label); the API also takes ``kpi`` and
# ``min_spend``.
OBJECTIVES: dict[str, str] = {
    "revenue": N_("Revenue"),
    "conversions": N_("Conversions"),
    "profit": N_("Profit (needs a margin)"),
    "min-spend": N_("Least spend reaching a target"),
}
RISKS: dict[str, str] = {
    "mean": N_("Mean: the expected outcome"),
    "q10": N_("q10: a bad case (10th percentile)"),
    "cvar10": N_("cvar10: the mean of the worst tenth of outcomes"),
}
KIND_LABELS: dict[str, str] = {
    "optimized": N_("optimized"),
    "current": N_("current"),
    "manual": N_("manual"),
}
COMPARE_LABELS: dict[str, str] = {
    "kind": N_("Kind"),
    "run": N_("Model run"),
    "spend": N_("Spend"),
    "kpi": N_("Predicted KPI"),
    "roi": N_("ROI"),
}
NUMBER_PROBLEMS: dict[str, str] = {
    "budget": N_("The budget must be a number, such as 250000."),
    "margin": N_("The margin must be a number, such as 0.3."),
    "target": N_("The target must be a number, such as 5000."),
}
STARTS = (1, 32)  # optimiser starts a request may ask for
DEFAULT_STARTS = 8
FRONTIER_STARTS = 3  # the page's frontier: 11 optimisations, kept quick
MAX_RULES = 200


# -- the request ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanRequest:
    """One plan to compute (see :func:`mixwise.optimize.allocate.allocate`)."""

    budget: float | None
    periods: str | int | None = None
    constraints: tuple[str, ...] = ()
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    objective: str = "revenue"  # revenue, conversions, kpi, profit, min_spend
    margin: float | None = None
    target: float | None = None
    risk: str = "mean"
    budget_mode: Literal["exact", "up_to"] = "exact"
    run: int | None = None
    force: bool = False
    starts: int = DEFAULT_STARTS
    save_as: str | None = None

    def goal(self) -> Objective:
        """The objective (raises ``ValueError`` for an unknown kind or a missing margin)."""
        from mixwise.optimize.allocate import Objective

        kind = "min_spend" if self.objective == "min-spend" else self.objective
        return Objective(
            kind,  # type: ignore[arg-type]  # Objective checks it
            margin=self.margin,
            target=self.target,
            risk=self.risk,
        )


class PlanError(Exception):
    """A plan that cannot be made: ``status`` for HTTP, ``detail`` in English (the API),
    ``problem`` for the page, ``conflict`` the rules that clash (if that is the reason)."""

    def __init__(
        self,
        status: int,
        detail: str,
        problem: Problem | None = None,
        conflict: Sequence[str] = (),
        *,
        kind: str = "bad_input",
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problem = problem or Problem(detail, raw=True)
        self.conflict = list(conflict)
        self.kind = kind  # no_run, missing_run, unusable, infeasible, bad_input


class FormProblems(ValueError):
    """The form cannot be read; ``problems`` says what is wrong, ``form`` is what was sent."""

    def __init__(self, problems: list[Problem], form: dict[str, Any]) -> None:
        super().__init__("; ".join(p.english() for p in problems))
        self.problems = problems
        self.form = form


def _number(text: str) -> float | None:
    """A number as people type it ("250,000", "1 000 000", "2.5e5"); None when empty;
    ``ValueError`` when it is not one."""
    clean = text.replace(",", "").replace("_", "").replace(" ", "").replace("\u00a0", "")
    if not clean:
        return None
    value = float(clean)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def default_form(budget: float | None = None) -> dict[str, Any]:
    """The form's defaults; ``budget``: the current spend per model period (the budget
    field's placeholder: empty, the plan spends what the current plan does)."""
    return {
        "budget": "",
        "budget_hint": "" if budget is None else budget_text(budget),
        "periods": "",
        "objective": "revenue",
        "margin": "",
        "target": "",
        "risk": "mean",
        "up_to": False,
        "groups": "",
        "rules": "",
        "force": False,
        "run": "",
        "starts": str(DEFAULT_STARTS),
        "save_as": "",
    }


def budget_text(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"


def parse_form(values: Mapping[str, list[str]]) -> tuple[PlanRequest, dict[str, Any]]:
    """(the request, the form as sent) from the page's form; raises :class:`FormProblems`
    for values that are not numbers (the allocator checks everything else)."""

    def one(name: str) -> str:
        got = values.get(name) or [""]
        return got[-1].strip()

    form = default_form()
    form.update({k: one(k) for k in ("budget", "periods", "margin", "target", "run", "save_as")})
    form["objective"] = one("objective") or "revenue"
    form["risk"] = one("risk") or "mean"
    form["starts"] = one("starts") or str(DEFAULT_STARTS)
    form["groups"] = (values.get("groups") or [""])[-1]
    form["rules"] = (values.get("rules") or [""])[-1]
    form["up_to"] = bool(one("up_to"))
    form["force"] = bool(one("force"))

    problems: list[Problem] = []
    numbers: dict[str, float | None] = {}
    for name in ("budget", "margin", "target"):
        try:
            numbers[name] = _number(form[name])
        except ValueError:
            problems.append(Problem(NUMBER_PROBLEMS[name]))
    starts = DEFAULT_STARTS
    lo, hi = STARTS
    if form["starts"].isdigit() and lo <= int(form["starts"]) <= hi:
        starts = int(form["starts"])
    else:
        problems.append(
            Problem(
                N_("Optimiser starts must be a whole number from %(low)s to %(high)s."),
                {"low": lo, "high": hi},
            )
        )
    run: int | None = None
    if form["run"]:
        if form["run"].isdigit():
            run = int(form["run"])
        else:
            problems.append(Problem(N_("There is no run %(run)s."), {"run": form["run"]}))
    groups: dict[str, tuple[str, ...]] = {}
    for line in form["groups"].splitlines():
        try:
            groups.update(parse_groups([line]))
        except ValueError:
            problems.append(
                Problem(
                    N_("Group %(line)s: write one group per line as NAME=channel,channel."),
                    {"line": line.strip()},
                )
            )
    rules = tuple(r.strip() for r in form["rules"].splitlines() if r.strip())
    if len(rules) > MAX_RULES:
        problems.append(Problem(N_("At most %(count)s rules."), {"count": MAX_RULES}))
    try:
        save_as = check_name(form["save_as"], required=False)
    except ValueError:
        save_as = None
        problems.append(
            Problem(N_("A scenario name has at most %(count)s characters."), {"count": MAX_NAME})
        )
    if problems:
        raise FormProblems(problems, form)
    periods: str | int | None = form["periods"] or None
    if isinstance(periods, str) and periods.isdigit():
        periods = int(periods)
    request = PlanRequest(
        budget=numbers["budget"],
        periods=periods,
        constraints=rules,
        groups=groups,
        objective=form["objective"],
        margin=numbers["margin"],
        target=numbers["target"],
        risk=form["risk"],
        budget_mode="up_to" if form["up_to"] else "exact",
        run=run,
        force=form["force"],
        starts=starts,
        save_as=save_as,
    )
    return request, form


# -- response models of stored runs ------------------------------------------------------------
class ResponseCache:
    """The response model of each run (least recently used dropped first); one load at a
    time. Models are loaded with ``force`` and the verdict is checked on each use, so a
    forced and an unforced request share one model (and its compiled functions)."""

    def __init__(self, maxsize: int = 4) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[tuple[str, int, str], ResponseModel] = OrderedDict()
        self._lock = threading.Lock()
        self._load = threading.Lock()
        self.loaded = 0

    def _lookup(self, key: tuple[str, int, str]) -> ResponseModel | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def get(
        self, ws: Workspace, run: int | None = None, *, force: bool = False
    ) -> tuple[ResponseModel, int]:
        """``(response model, run id)`` of ``run`` (the latest without it). Raises
        :class:`~mixwise.mmm.runs.RunNotFound`, and
        :class:`~mixwise.mmm.response.UnusableModelError` for a "do not use" run unless
        ``force`` (as :func:`~mixwise.optimize.sources.from_run` does)."""
        from mixwise.optimize.sources import from_run

        info, _ = show_run(ws, run)
        if not info.usable and not force:
            raise UnusableModelError(
                f"this model run is not usable ({info.verdict}); refit it, or force its use"
            )
        key = (str(ws.path), info.id, info.created_at)
        if (hit := self._lookup(key)) is not None:
            return hit, info.id
        with self._load:
            if (hit := self._lookup(key)) is not None:
                return hit, info.id
            rm, run_id = from_run(ws, info.id, force=True)
            self.loaded += 1
            with self._lock:
                self._data[key] = rm
                while len(self._data) > self.maxsize:
                    self._data.popitem(last=False)
        return rm, run_id


_CACHE_LOCK = threading.Lock()


def response_cache(state: Any) -> ResponseCache:
    """The app's :class:`ResponseCache` (``app.state.planner_models``), made on first use."""
    with _CACHE_LOCK:
        cache: ResponseCache | None = getattr(state, "planner_models", None)
        if cache is None:
            cache = ResponseCache()
            state.planner_models = cache
        return cache


def default_budget(ws: Workspace, cache: ResponseCache) -> float | None:
    """The latest run's current spend per model period (all channels), or None."""
    try:
        rm, _ = cache.get(ws, None, force=True)
    except (RunNotFound, OSError, KeyError, ValueError):
        return None
    total = finite(float(rm.history_mean.sum()))
    return total if total and total > 0 else None


# -- running -------------------------------------------------------------------------------------
def _model(ws: Workspace, cache: ResponseCache, req: PlanRequest) -> tuple[ResponseModel, int]:
    try:
        return cache.get(ws, req.run, force=req.force)
    except RunNotFound as exc:
        if req.run is not None:
            raise PlanError(
                404,
                str(exc),
                Problem(N_("There is no run %(run)s."), {"run": req.run}),
                kind="missing_run",
            ) from exc
        raise PlanError(
            409,
            "no MMM run in this workspace yet; fit one on the Mix model page (/mmm) or with "
            "`mixwise mmm fit`",
            Problem(N_("There is no model run yet: fit one on the Mix model page first.")),
            kind="no_run",
        ) from exc
    except UnusableModelError as exc:
        raise PlanError(
            409,
            f"{exc} (set force to plan with it anyway)",
            Problem(str(exc), raw=True),
            kind="unusable",
        ) from exc
    except (OSError, KeyError) as exc:
        raise PlanError(
            409,
            f"the run's posterior cannot be read: {exc}",
            Problem(N_("The run's posterior cannot be read: %(error)s"), {"error": str(exc)}),
            kind="unusable",
        ) from exc


def _domain_error(exc: ValueError) -> PlanError:
    if isinstance(exc, UnusableModelError):
        return PlanError(409, f"{exc} (set force to plan with it anyway)", kind="unusable")
    if isinstance(exc, InfeasibleError):
        return PlanError(422, str(exc), conflict=exc.conflict, kind="infeasible")
    return PlanError(422, str(exc))


@dataclass
class PlanOutcome:
    result: Allocation
    run_id: int
    scenario_id: int | None = None


def run_plan(
    ws: Workspace,
    cache: ResponseCache,
    req: PlanRequest,
    *,
    user_id: int | None = None,
    actor: str | None = None,
) -> PlanOutcome:
    """Optimise ``req`` on its run (and save it when ``req.save_as``); raises
    :class:`PlanError`. Slow (JAX): call it from a worker thread."""
    from mixwise.optimize.allocate import allocate
    from mixwise.optimize.scenarios import save_scenario

    try:
        name = check_name(req.save_as, required=False)
        goal = req.goal()
    except ValueError as exc:
        raise _domain_error(exc) from exc
    rm, run_id = _model(ws, cache, req)
    try:
        result = allocate(
            rm,
            req.budget,
            list(req.constraints),
            goal,
            periods=req.periods,
            groups=dict(req.groups),
            budget_mode=req.budget_mode,
            starts=req.starts,
            force=req.force,
        )
    except ValueError as exc:
        raise _domain_error(exc) from exc
    scenario = None
    if name:
        scenario = save_scenario(ws, name, result, run_id=run_id, user_id=user_id, actor=actor)
    return PlanOutcome(result, run_id, scenario)


def run_frontier(
    ws: Workspace, cache: ResponseCache, req: PlanRequest, *, starts: int | None = None
) -> tuple[pd.DataFrame, int]:
    """The efficient frontier around ``req.budget`` (:func:`~mixwise.optimize.scenarios.
    frontier`) and the run id; raises :class:`PlanError`."""
    from mixwise.optimize.allocate import current_spend
    from mixwise.optimize.scenarios import frontier

    try:
        goal = req.goal()
    except ValueError as exc:
        raise _domain_error(exc) from exc
    if goal.kind == "min_spend":
        raise PlanError(
            422,
            "the frontier needs a budget: choose an objective other than min-spend",
            Problem(
                N_("The frontier needs a budget: choose an objective other than the least spend.")
            ),
        )
    rm, run_id = _model(ws, cache, req)
    try:
        budget = current_spend(rm, req.periods) if req.budget is None else req.budget
    except ValueError as exc:
        raise _domain_error(exc) from exc
    if not budget > 0:
        raise PlanError(
            422,
            "the frontier needs a budget > 0",
            Problem(N_("The frontier needs a budget above zero.")),
        )
    try:
        table = frontier(
            rm,
            float(budget),
            constraints=list(req.constraints),
            objective=goal,
            periods=req.periods,
            groups=dict(req.groups),
            budget_mode=req.budget_mode,
            starts=starts or req.starts,
            force=req.force,
        )
    except ValueError as exc:
        raise _domain_error(exc) from exc
    return table, run_id


# -- what the page shows -------------------------------------------------------------------------
def result_context(
    outcome: PlanOutcome, currency: str, gettext: Callable[[str], str]
) -> dict[str, Any]:
    """The result region's context: prediction, per-channel table, rules, reasons,
    assumptions and the figures (JSON text)."""
    from mixwise.web import charts

    result = outcome.result
    label = kpi_label(result.kpi_name, gettext)
    rows: list[dict[str, Any]] = []
    for channel, row in result.channels.iterrows():
        pct = finite(row["change_pct"])
        rows.append(
            {
                "channel": str(channel),
                "reference": finite(row["reference"]),
                "spend": finite(row["spend"]),
                "change": finite(row["change"]),
                "change_pct": None if pct is None else pct / 100.0,
                "contribution": finite(row["contribution"]),
                "roi": finite(row["roi"]),
                "marginal_roi": finite(row["marginal_roi"]),
            }
        )
    money = gettext("Spend (%(currency)s)") % {"currency": currency}
    hz = result.horizon
    return {
        "result": result,
        "run_id": outcome.run_id,
        "scenario_id": outcome.scenario_id,
        "kpi_label": label,
        "currency": currency,
        "kpi": {k: finite(v) for k, v in result.kpi.items()},
        "reference_kpi": {k: finite(v) for k, v in result.reference_kpi.items()},
        "roi": finite(result.roi),
        "channel_rows": rows,
        "totals": {
            "reference": result.reference_spend,
            "spend": result.spend,
            "change_pct": (result.spend - result.reference_spend) / result.reference_spend
            if result.reference_spend > 0
            else None,
        },
        "rules": [
            {"rule": r["rule"], "ok": bool(r["ok"]), "value": finite(r.get("value"))}
            for r in result.rules
        ],
        "reasons": list(result.reasons),
        "assumptions": list(result.assumptions),
        "period_labels": list(hz.labels),
        "allocation_fig": charts.planner_allocation_figure(
            [r["channel"] for r in rows],
            [r["reference"] or 0.0 for r in rows],
            [r["spend"] or 0.0 for r in rows],
            money,
            gettext,
        ),
        "flighting_fig": (
            charts.planner_flighting_figure(result.plan, money, gettext)
            if hz.n_budget > 1
            else None
        ),
    }


def frontier_context(
    table: pd.DataFrame,
    run_id: int,
    kpi_name: str,
    currency: str,
    gettext: Callable[[str], str],
) -> dict[str, Any]:
    from mixwise.web import charts

    label = kpi_label(kpi_name, gettext)
    rows = [{k: finite(v) for k, v in rec.items()} for rec in table.to_dict("records")]
    return {
        "frontier_rows": rows,
        "frontier_run": run_id,
        "frontier_kpi_label": label,
        "frontier_fig": charts.planner_frontier_figure(
            table,
            gettext("Budget (%(currency)s)") % {"currency": currency},
            gettext("Predicted incremental %(kpi)s") % {"kpi": label},
            gettext("Marginal ROI"),
            gettext,
        ),
    }


def scenario_rows(items: Sequence[ScenarioInfo]) -> list[dict[str, Any]]:
    rows = []
    for sc in items:
        kpi = sc.kpi
        rows.append(
            {
                "id": sc.id,
                "name": sc.name,
                "kind": sc.kind,
                "kind_label": KIND_LABELS.get(sc.kind, sc.kind),
                "run": sc.run_id,
                "active": sc.active,
                "spend": finite(sc.result.get("spend")),
                "kpi_name": sc.result.get("kpi_name") or "",
                "kpi": {k: finite(kpi.get(k)) for k in ("mean", "lower", "upper")},
                "roi": finite(sc.result.get("roi")),
                "updated_at": sc.updated_at[:16].replace("T", " "),
            }
        )
    return rows


def compare_context(items: Sequence[ScenarioInfo], gettext: Callable[[str], str]) -> dict[str, Any]:
    """Scenarios side by side (:func:`~mixwise.optimize.scenarios.compare`) as table rows:
    ``label`` and one formatted cell per scenario (``kind``: how to format the values)."""
    from mixwise.optimize.scenarios import compare

    table = compare(items)
    names = [str(c) for c in table.columns]
    rows: list[dict[str, Any]] = []
    cells: list[Any]

    def values(index: str) -> list[Any]:
        return [table.loc[index, n] for n in names]

    for index in table.index:
        key = str(index)
        if key in ("kpi_lower", "kpi_upper"):
            continue
        if key == "kind":
            cells = [gettext(KIND_LABELS.get(str(v), str(v))) for v in values(key)]
            rows.append({"label": gettext(COMPARE_LABELS[key]), "kind": "text", "cells": cells})
        elif key == "run":
            cells = ["" if finite(v) is None else f"#{int(v)}" for v in values(key)]
            rows.append({"label": gettext(COMPARE_LABELS[key]), "kind": "text", "cells": cells})
        elif key == "kpi":
            lower, upper = values("kpi_lower"), values("kpi_upper")
            rows.append(
                {
                    "label": gettext(COMPARE_LABELS[key]),
                    "kind": "interval",
                    "cells": [
                        {"mean": finite(m), "lower": finite(lo), "upper": finite(up)}
                        for m, lo, up in zip(values(key), lower, upper, strict=True)
                    ],
                }
            )
        elif key in COMPARE_LABELS:
            kind = "ratio" if key == "roi" else "money"
            cells = [finite(v) for v in values(key)]
            rows.append({"label": gettext(COMPARE_LABELS[key]), "kind": kind, "cells": cells})
        elif key.endswith(": spend"):
            channel = key[: -len(": spend")]
            rows.append(
                {
                    "label": gettext("%(channel)s: spend") % {"channel": channel},
                    "kind": "money",
                    "cells": [finite(v) for v in values(key)],
                }
            )
        elif key.endswith(": marginal ROI"):
            channel = key[: -len(": marginal ROI")]
            rows.append(
                {
                    "label": gettext("%(channel)s: marginal ROI") % {"channel": channel},
                    "kind": "ratio",
                    "cells": [finite(v) for v in values(key)],
                }
            )
        else:
            rows.append({"label": key, "kind": "text", "cells": [str(v) for v in values(key)]})
    return {"compare_names": names, "compare_rows": rows}


def compare_json(items: Sequence[ScenarioInfo]) -> dict[str, Any]:
    """The API's comparison: the metrics in order and each scenario's value of each."""
    from mixwise.optimize.scenarios import compare

    table = compare(items)
    return {
        "scenarios": [str(c) for c in table.columns],
        "metrics": [str(i) for i in table.index],
        "values": {str(c): {str(i): table.loc[i, c] for i in table.index} for c in table.columns},
    }
