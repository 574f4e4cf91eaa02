"""The workspace: the one handle a user holds.

A workspace is a directory with two stores (see ``docs/architecture.md``):

- ``state.db`` — the state database (users, settings, import history, audit log), SQLite by
  default or PostgreSQL via ``MIXWISE_DATABASE_URL``; Alembic migrations run on open;
- ``warehouse.duckdb`` — the fact tables, reached only through ``store/warehouse.py``.

>>> ws = Workspace.open("mixwise-workspace")          # doctest: +SKIP
>>> ws.ingest("media", "spend.csv", mapping={"spend": "cost"})   # doctest: +SKIP
>>> ws.table("media")                                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd
from sqlalchemy import select

from mixwise.config import Settings
from mixwise.store.ingest import ImportReport, ingest
from mixwise.store.schemas import KINDS, get_kind
from mixwise.store.state import AuditEvent, ImportRun, StateStore, WorkspaceSetting
from mixwise.store.warehouse import TableSummary, Warehouse

MARKER = "workspace.json"
FORMAT_VERSION = 1
WORKSPACE_DEFAULTS: dict[str, str] = {
    "currency": "CNY",
    "timezone": "UTC",
    "name": "mixwise",
    "journey_sample_rate": "1",
}


class WorkspaceError(RuntimeError):
    """The workspace cannot be opened or created as asked."""


class Workspace:
    """Both stores of one workspace directory. Use :meth:`open` or :meth:`init`."""

    def __init__(self, path: Path, settings: Settings, state: StateStore, warehouse: Warehouse):
        self.path = path
        self.settings = settings
        self.state = state
        self.warehouse = warehouse

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def init(cls, path: str | Path | None = None, settings: Settings | None = None) -> Workspace:
        """Create the workspace at ``path`` (or open it if it exists)."""
        return cls.open(path, settings, create=True)

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        settings: Settings | None = None,
        *,
        create: bool = False,
        read_only: bool = False,
    ) -> Workspace:
        """Open the workspace at ``path`` (default: ``MIXWISE_HOME`` or ./mixwise-workspace)."""
        settings = settings or Settings()
        root = Path(path) if path is not None else settings.home
        marker = root / MARKER
        if not marker.exists():
            if not create:
                raise WorkspaceError(
                    f"{root} is not a mixwise workspace (no {MARKER}); create one with "
                    f"`mixwise init {root}` or try `mixwise demo`"
                )
            if root.exists() and any(root.iterdir()):
                raise WorkspaceError(
                    f"{root} exists and is not empty; choose a new directory for the workspace"
                )
            root.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"format": FORMAT_VERSION}) + "\n")
        else:
            meta = json.loads(marker.read_text())
            if meta.get("format", 0) > FORMAT_VERSION:
                raise WorkspaceError(
                    f"{root} was written by a newer mixwise (format {meta['format']}); upgrade"
                )
        url = settings.database_url or f"sqlite:///{(root / 'state.db').resolve()}"
        state = StateStore(url)
        try:
            state.migrate()
        except Exception as exc:
            state.close()
            raise WorkspaceError(f"cannot open the state database {_redact(url)}: {exc}") from exc
        wh_path = settings.warehouse_path or root / "warehouse.duckdb"
        try:
            warehouse = Warehouse(wh_path, read_only=read_only)
        except Exception as exc:
            state.close()
            raise WorkspaceError(
                f"cannot open the warehouse {wh_path}: {exc} (is another mixwise process "
                "using this workspace? stop it, or use that process)"
            ) from exc
        ws = cls(root, settings, state, warehouse)
        ws._ensure_defaults()
        return ws

    def close(self) -> None:
        self.warehouse.close()
        self.state.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- settings --------------------------------------------------------------------------
    def _ensure_defaults(self) -> None:
        with self.state.session() as s:
            have = set(s.scalars(select(WorkspaceSetting.key)))
            for key, value in WORKSPACE_DEFAULTS.items():
                if key not in have:
                    s.add(WorkspaceSetting(key=key, value=value))

    def get_setting(self, key: str) -> str:
        with self.state.session() as s:
            row = s.get(WorkspaceSetting, key)
            return row.value if row else WORKSPACE_DEFAULTS[key]

    def set_setting(self, key: str, value: str, *, actor: str | None = None) -> None:
        self.set_settings({key: value}, actor=actor)

    def set_settings(self, changes: Mapping[str, str], *, actor: str | None = None) -> None:
        """Validate every change, then write them all in one transaction (or none)."""
        for key, value in changes.items():
            _validate_setting(key, value)
        with self.state.session() as s:
            for key, value in changes.items():
                row = s.get(WorkspaceSetting, key)
                if row is None:
                    s.add(WorkspaceSetting(key=key, value=value))
                elif row.value != value:
                    row.value = value
                else:
                    continue
                s.add(AuditEvent(actor=actor, action="setting.set", detail={key: value}))

    @property
    def currency(self) -> str:
        return self.get_setting("currency")

    def secret_key(self) -> str:
        """The key that signs sessions: MIXWISE_SECRET_KEY, else one generated per workspace."""
        configured = self.settings.checked_secret()
        if configured:
            return configured
        path = self.path / "secret.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    # -- data ------------------------------------------------------------------------------
    def ingest(
        self,
        kind: str,
        data: Any,
        *,
        mapping: Mapping[str, str] | None = None,
        wide: bool = False,
        channels: Sequence[str] | None = None,
        currency: str | None = None,
        sheet: str | int | None = None,
        source: str | None = None,
        user_id: int | None = None,
        step: Callable[[str], None] | None = None,
    ) -> ImportReport:
        """Validate and import ``data`` (a path or a pandas/polars/pyarrow frame) as ``kind``.

        Returns the :class:`ImportReport`; when ``report.ok`` is false nothing was written.
        """
        get_kind(kind)
        report = ingest(
            self.warehouse,
            kind,
            data,
            mapping=mapping,
            wide=wide,
            channels=channels,
            currency=currency or self.currency,
            timezone=self.get_setting("timezone"),
            sheet=sheet,
            source=source,
            max_errors=self.settings.max_errors,
            step=step,
        )
        with self.state.session() as s:
            s.add(
                ImportRun(
                    kind=report.kind,
                    source=report.source[:500],
                    status=report.status,
                    rows_read=report.rows_read,
                    inserted=report.inserted,
                    updated=report.updated,
                    unchanged=report.unchanged,
                    rejected=report.rejected,
                    errors={
                        "count": report.error_count,
                        "items": [e.as_dict() for e in report.errors],
                    }
                    if report.errors
                    else None,
                    user_id=user_id,
                )
            )
        return report

    def table(self, kind: str) -> pd.DataFrame:
        """All rows of a table kind as a pandas DataFrame."""
        get_kind(kind)
        return self.warehouse.table(kind)

    def tables(self) -> list[TableSummary]:
        """Per kind: rows, date range and channels."""
        return [self.warehouse.summary(k) for k in KINDS]

    def imports(self, limit: int = 50) -> list[ImportRun]:
        with self.state.session() as s:
            q = select(ImportRun).order_by(ImportRun.id.desc()).limit(limit)
            return list(s.scalars(q))


def _validate_setting(key: str, value: str) -> None:
    if key not in WORKSPACE_DEFAULTS:
        raise ValueError(
            f"unknown workspace setting {key!r}; settings are {', '.join(WORKSPACE_DEFAULTS)}"
        )
    if key == "currency" and not (len(value) == 3 and value.isalpha() and value.isupper()):
        raise ValueError("currency must be a 3-letter ISO 4217 code such as CNY or USD")
    if key == "timezone":
        try:
            pd.Timestamp("2024-01-01").tz_localize(value)
        except Exception as exc:
            raise ValueError(f"unknown timezone {value!r} (use e.g. Asia/Shanghai)") from exc
    if key == "name" and not value.strip():
        raise ValueError("the workspace name cannot be empty")
    if key == "journey_sample_rate":
        try:
            rate = float(value)
        except ValueError:
            rate = float("nan")
        if not 0 < rate <= 1:
            raise ValueError(
                "journey_sample_rate must be a number in (0, 1]: the share of all users your "
                "touchpoints cover (1 = every user)"
            )


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
