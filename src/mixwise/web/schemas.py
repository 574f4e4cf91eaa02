"""Request and response models of the JSON API.

Create/Update/Public are separate models: the ``Public`` ones are the only shapes that leave the
server, and none of them has a password or hash field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mixwise.accounts.roles import Role
from mixwise.mmm.jobs import BOUNDS


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    display_name: str | None = None
    language: str | None = None
    is_active: bool
    created_at: dt.datetime


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=80)
    password: str = Field(min_length=8, max_length=1024)
    role: Role = "viewer"
    display_name: str | None = Field(default=None, max_length=120)


class UserUpdate(BaseModel):
    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=120)
    is_active: bool | None = None


class TableSummaryPublic(BaseModel):
    kind: str
    rows: int
    first: str | None
    last: str | None
    channels: list[str]


class TableRows(BaseModel):
    kind: str
    total: int
    limit: int
    records: list[dict[str, Any]]


class IssuePublic(BaseModel):
    row: int | None
    column: str | None
    value: str | None
    message: str


class _ImportCounts(BaseModel):
    kind: str
    source: str
    status: str
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    error_count: int


class ImportReportPublic(_ImportCounts):
    errors: list[IssuePublic]
    ignored_columns: list[str]


class ImportRunPublic(_ImportCounts):
    id: int
    username: str | None
    created_at: dt.datetime


class SpendPoint(BaseModel):
    period: str
    channel: str
    currency: str | None
    spend: float


class OutcomePoint(BaseModel):
    period: str
    revenue: float | None
    conversions: float | None
    leads: float | None


class Coverage(BaseModel):
    freq: str
    currency: str
    spend: list[SpendPoint]
    outcomes: list[OutcomePoint]


class WorkspaceSettingsPublic(BaseModel):
    name: str
    currency: str
    timezone: str
    journey_sample_rate: float = Field(
        description="Share of all users the touchpoints cover; scales cost in attribution"
    )


class WorkspaceSettingsUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    journey_sample_rate: float | None = Field(default=None, gt=0, le=1)


class AttributionModelPublic(BaseModel):
    name: str = Field(description="Registry key, as used in `models=`")
    label: str = Field(description="Name for people")
    description: str
    needs_timing: bool = Field(description="Needs touch timestamps (not available on path files)")
    data_driven: bool


class MMMFitRequest(BaseModel):
    """What to fit: the workspace's data (weekly by default) and the sampler's settings."""

    model_config = ConfigDict(extra="forbid")

    kpi: Literal["revenue", "conversions", "leads"] = Field(
        default="revenue", description="The outcomes column to explain"
    )
    channels: list[str] | None = Field(
        default=None, min_length=1, description="Media channels; none → every channel in media"
    )
    controls: list[str] | None = Field(
        default=None, description="Control names; none → every control, `[]` → no controls"
    )
    frequency: Literal["W", "D"] = Field(default="W", description="Weekly or daily periods")
    geo_level: Literal["national", "geo"] = Field(
        default="national",
        description="`national`: totals over geos; `geo`: one series per geo (a geo panel)",
    )
    start: dt.date | None = Field(default=None, description="First day (default: all data)")
    end: dt.date | None = Field(default=None, description="Last day (default: all data)")
    method: Literal["nuts", "map"] = Field(
        default="nuts", description="`nuts`: full posterior; `map`: fast mode, never usable"
    )
    chains: int = Field(default=4, ge=BOUNDS["chains"][0], le=BOUNDS["chains"][1])
    draws: int = Field(default=1000, ge=BOUNDS["draws"][0], le=BOUNDS["draws"][1])
    warmup: int = Field(default=1000, ge=BOUNDS["warmup"][0], le=BOUNDS["warmup"][1])
    seed: int = Field(default=0, ge=BOUNDS["seed"][0], le=BOUNDS["seed"][1])


class MMMFitJobPublic(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    phase: str = Field(
        description="queued, preparing, fitting, sampling, summarising, saving, done or failed"
    )
    progress: float = Field(description="0 … 1; while sampling, the share of iterations done")
    settings: dict[str, Any]
    user_id: int | None
    submitted_at: str
    started_at: str | None
    finished_at: str | None
    run_id: int | None = Field(description="The stored run, when done")
    error: str | None = Field(description="Why the fit failed, when failed")


# -- planner ---------------------------------------------------------------------------------
ObjectiveName = Literal["revenue", "conversions", "kpi", "profit", "min_spend", "min-spend"]


class OptimizeRequest(BaseModel):
    """A budget to split across channels (and periods) under rules, on a stored MMM run."""

    model_config = ConfigDict(extra="forbid")

    budget: float | None = Field(
        default=None,
        gt=0,
        description="Money over the horizon (a cap with `budget_mode=up_to`); optional only "
        "for `min_spend`",
    )
    periods: str | int | None = Field(
        default=None,
        description="Horizon: `2026-01..2026-03` (months), `2026-W01..2026-W13`, `2026-Q4`, "
        "`2026-11`, `2026`, or a number of model periods; default one model period",
    )
    constraints: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Rules, e.g. `brand>=30%`, `tv<=+20%`, `tv=current`, `roi>=2`, "
        "`cpa[search]<=40`, `period<=200000`, `tv/period<=50000`",
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="Channel groups rules may name: `{brand: [tv, video]}`"
    )
    objective: ObjectiveName = Field(
        default="revenue",
        description="Maximise the incremental KPI, or profit (needs `margin`), or find the "
        "least spend reaching `target` (`min_spend`)",
    )
    margin: float | None = Field(default=None, description="Profit per KPI unit (`profit`)")
    target: float | None = Field(default=None, description="Incremental KPI to reach (`min_spend`)")
    risk: str = Field(
        default="mean",
        max_length=10,
        description="Summary over posterior draws: `mean`, `q10` (10 % quantile), `cvar10` "
        "(mean of the worst 10 %)",
    )
    budget_mode: Literal["exact", "up_to"] = Field(
        default="exact", description="Spend the budget exactly, or at most"
    )
    run: int | None = Field(default=None, ge=1, description="MMM run (default: the latest)")
    force: bool = Field(default=False, description="Use a run whose verdict is 'do not use'")
    starts: int = Field(default=8, ge=1, le=32, description="Optimiser starts")
    save_as: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="Save the plan as this scenario (replacing one of that name)",
    )


class KpiInterval(BaseModel):
    mean: float | None
    lower: float | None = Field(description="5th percentile over the posterior draws")
    upper: float | None = Field(description="95th percentile")


class PlanRulePublic(BaseModel):
    rule: str
    ok: bool
    value: float | None = Field(default=None, description="The plan's ROI or CPA, for those rules")


class PlanResultPublic(BaseModel):
    """`Allocation.to_dict()` with the run it was made on (and the scenario, when saved)."""

    run: int
    scenario: int | None = Field(default=None, description="The saved scenario's id")
    objective: dict[str, Any]
    kpi_name: str
    kpi_type: str = Field(description="`revenue` (ROI) or `conversions` (CPA)")
    spend: float
    reference_spend: float = Field(description="The current plan's spend over the horizon")
    kpi: KpiInterval = Field(description="The plan's predicted incremental KPI")
    reference_kpi: KpiInterval = Field(description="The current plan's")
    roi: float | None
    interval: list[float]
    plan: dict[str, dict[str, float | None]] = Field(description="Budget period → channel → amount")
    reference: dict[str, dict[str, float | None]] = Field(
        description="The current plan, budget period → channel → amount"
    )
    channels: dict[str, dict[str, float | None]] = Field(
        description="Channel → spend, reference, change, change_pct, contribution (and its "
        "interval), roi, marginal_roi, marginal_roi_reference"
    )
    rules: list[PlanRulePublic]
    reasons: list[str]
    assumptions: list[str]
    solver: dict[str, Any]
    request: dict[str, Any]


class FrontierPoint(BaseModel):
    step: float = Field(description="Budget change against the request's (-0.5 … 0.5)")
    budget: float
    spend: float | None
    kpi: float | None
    kpi_lower: float | None
    kpi_upper: float | None
    roi: float | None
    marginal_roi: float | None = Field(
        description="Spend-weighted marginal ROI of the funded channels: what the last unit brings"
    )


class FrontierPublic(BaseModel):
    run: int
    points: list[FrontierPoint] = Field(
        description="One per budget from -50 % to +50 %; budgets whose rules cannot hold are "
        "left out"
    )


class ScenarioSummaryPublic(BaseModel):
    id: int
    name: str
    kind: str = Field(description="`optimized`, `current` or `manual`")
    run: int | None
    active: bool
    created_at: str
    updated_at: str
    request: dict[str, Any]
    kpi_name: str | None = None
    spend: float | None = None
    reference_spend: float | None = None
    kpi: KpiInterval | None = None
    reference_kpi: KpiInterval | None = None
    roi: float | None = None


class ScenarioRowPublic(BaseModel):
    scenario: str
    period: str
    start: str
    end: str = Field(description="Exclusive; empty for periods without dates")
    channel: str
    amount: float


class ScenarioPublic(ScenarioSummaryPublic):
    result: dict[str, Any] = Field(description="`Allocation.to_dict()` without the request")
    plan: list[ScenarioRowPublic]


class ScenarioComparePublic(BaseModel):
    scenarios: list[str]
    metrics: list[str] = Field(
        description="kind, run, spend, kpi, kpi_lower, kpi_upper, roi, then per channel "
        "`CHANNEL: spend` and `CHANNEL: marginal ROI`"
    )
    values: dict[str, dict[str, Any]] = Field(description="Scenario → metric → value")
