"""What the API routes and the pages both do, kept out of the route functions."""

from __future__ import annotations

import datetime as dt
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import UploadFile
from sqlalchemy import func, select

from mixwise.accounts import create_user, get_user, list_users, set_role
from mixwise.store.ingest import FORMATS, ImportReport, Issue
from mixwise.store.schemas import get_kind
from mixwise.store.state import User
from mixwise.web.schemas import (
    Coverage,
    ImportRunPublic,
    OutcomePoint,
    SpendPoint,
    UserCreate,
    UserUpdate,
    WorkspaceSettingsPublic,
    WorkspaceSettingsUpdate,
)
from mixwise.workspace import Workspace

FREQS = ("day", "week", "month")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CHUNK = 1024 * 1024


class UploadTooLarge(ValueError):
    """The uploaded file is over ``max_upload_mb``."""


class Conflict(ValueError):
    """The request conflicts with the current state (duplicate user, last admin...)."""


# -- imports ---------------------------------------------------------------------------------
def parse_mapping(text: str | None) -> dict[str, str]:
    """``"spend=cost, date=day"`` (commas, semicolons or new lines) → ``{"spend": "cost", ...}``."""
    mapping: dict[str, str] = {}
    for part in re.split(r"[,;\n]+", text or ""):
        part = part.strip()
        if not part:
            continue
        target, sep, source = part.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise ValueError(
                f"mapping {part!r} is not of the form column=your_column, e.g. spend=cost"
            )
        mapping[target.strip()] = source.strip()
    return mapping


def safe_filename(name: str | None) -> str:
    base = Path(name or "upload.csv").name
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _SAFE_NAME.sub("_", stem).strip("._")[:100] or "upload"
    suffix = _SAFE_NAME.sub("", suffix)[:10]
    return f"{stem}.{suffix}" if suffix else stem


def rejected(kind: str, source: str, message: str, column: str | None = None) -> ImportReport:
    report = ImportReport(kind, source)
    report.errors = [Issue(message, column=column)]
    report.error_count = 1
    return report


def import_upload(
    ws: Workspace,
    kind: str,
    upload: UploadFile,
    *,
    mapping_text: str | None,
    wide: bool,
    user: User,
) -> ImportReport:
    """Save the upload under its own name in a temporary folder and import it."""
    get_kind(kind)
    name = safe_filename(upload.filename)
    try:
        mapping = parse_mapping(mapping_text)
    except ValueError as exc:
        return rejected(kind, name, str(exc))
    if Path(name).suffix.lower() not in FORMATS:
        return rejected(kind, name, f"{name}: unknown file type; use .csv, .tsv, .parquet or .xlsx")
    limit = ws.settings.max_upload_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="mixwise-upload-") as tmp:
        path = Path(tmp) / name
        size = 0
        with path.open("wb") as out:
            upload.file.seek(0)
            while chunk := upload.file.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(
                        f"{name} is larger than the {ws.settings.max_upload_mb} MB upload limit"
                    )
                out.write(chunk)
        return ws.ingest(
            kind, path, mapping=mapping or None, wide=wide, source=name, user_id=user.id
        )


def import_history(ws: Workspace, limit: int = 50) -> list[ImportRunPublic]:
    runs = ws.imports(limit)
    with ws.state.session() as s:
        names = {u.id: u.username for u in list_users(s)}
    return [
        ImportRunPublic(
            id=r.id,
            kind=r.kind,
            source=r.source,
            status=r.status,
            rows_read=r.rows_read,
            inserted=r.inserted,
            updated=r.updated,
            unchanged=r.unchanged,
            rejected=r.rejected,
            error_count=int((r.errors or {}).get("count", 0)),
            username=names.get(r.user_id) if r.user_id is not None else None,
            created_at=r.created_at,
        )
        for r in runs
    ]


# -- reads -----------------------------------------------------------------------------------
def _json_value(value: Any) -> Any:
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    return value


def table_records(ws: Workspace, kind: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    k = get_kind(kind)
    frame = ws.table(kind)
    total = len(frame)
    head = frame.head(limit)
    records: list[dict[str, Any]] = []
    for row in head.itertuples(index=False, name=None):
        rec = {}
        for col, value in zip(head.columns, row, strict=True):
            if k.column(col).type == "date" and isinstance(value, dt.datetime):
                rec[col] = value.date().isoformat()
            else:
                rec[col] = _json_value(value)
        records.append(rec)
    return total, records


def _period(value: Any) -> str:
    return pd.Timestamp(value).date().isoformat()


def _num(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return str(value)


def coverage(ws: Workspace, freq: str = "week") -> Coverage:
    if freq not in FREQS:
        raise ValueError(f"freq must be one of {', '.join(FREQS)}")
    spend = ws.warehouse.spend_by_channel(freq)
    outcomes = ws.warehouse.outcomes_by_period(freq)
    return Coverage(
        freq=freq,
        currency=ws.currency,
        spend=[
            SpendPoint(
                period=_period(r.period),
                channel=str(r.channel),
                currency=_text(r.currency),
                spend=_num(r.spend) or 0.0,
            )
            for r in spend.itertuples(index=False)
        ],
        outcomes=[
            OutcomePoint(
                period=_period(r.period),
                revenue=_num(r.revenue),
                conversions=_num(r.conversions),
                leads=_num(r.leads),
            )
            for r in outcomes.itertuples(index=False)
        ],
    )


# -- settings --------------------------------------------------------------------------------
def workspace_settings(ws: Workspace) -> WorkspaceSettingsPublic:
    return WorkspaceSettingsPublic(
        name=ws.get_setting("name"),
        currency=ws.get_setting("currency"),
        timezone=ws.get_setting("timezone"),
        journey_sample_rate=float(ws.get_setting("journey_sample_rate")),
    )


def update_settings(
    ws: Workspace, update: WorkspaceSettingsUpdate, *, actor: str
) -> WorkspaceSettingsPublic:
    """Apply the given fields; raises ValueError (nothing changed) when one is invalid."""
    changes = update.model_dump(exclude_none=True)
    if "currency" in changes:
        changes["currency"] = changes["currency"].strip().upper()
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    if "journey_sample_rate" in changes:
        changes["journey_sample_rate"] = f"{changes['journey_sample_rate']:.6g}"
    ws.set_settings(changes, actor=actor)  # validates every field before writing any
    return workspace_settings(ws)


# -- users -----------------------------------------------------------------------------------
def add_user(ws: Workspace, data: UserCreate, *, actor: str) -> User:
    with ws.state.session() as s:
        if get_user(s, data.username) is not None:
            raise Conflict(f"user {data.username!r} already exists")
        return create_user(
            s,
            data.username,
            data.password,
            data.role,
            display_name=data.display_name,
            actor=actor,
        )


def _active_admins(s: Any) -> int:
    q = select(func.count()).select_from(User).where(User.role == "admin", User.is_active)
    return int(s.scalar(q) or 0)


def update_user(ws: Workspace, username: str, data: UserUpdate, *, actor: str) -> User | None:
    """Apply the given fields; None when there is no such user.

    Refuses (:class:`Conflict`) to demote or deactivate the last active admin, so a workspace
    cannot lock itself out of user management.
    """
    with ws.state.session() as s:
        user = get_user(s, username)
        if user is None:
            return None
        loses_admin = (
            user.role == "admin"
            and user.is_active
            and ((data.role is not None and data.role != "admin") or data.is_active is False)
        )
        if loses_admin and _active_admins(s) <= 1:
            raise Conflict(f"{username} is the last active admin; make another admin first")
        if data.role is not None and data.role != user.role:
            set_role(s, username, data.role, actor=actor)
        if data.display_name is not None:
            user.display_name = data.display_name or None
        if data.is_active is not None:
            user.is_active = data.is_active
        s.flush()
        return user
