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
