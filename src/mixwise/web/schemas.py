"""Request and response models of the JSON API.

Create/Update/Public are separate models: the ``Public`` ones are the only shapes that leave the
server, and none of them has a password or hash field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mixwise.accounts.roles import Role


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
