"""The state store: users, workspace settings, import history and the audit log.

SQLAlchemy 2 typed ORM, schema owned by Alembic (``store/migrations``), applied when a
workspace opens. SQLite by default (one file in the workspace, WAL journal, foreign keys on,
a busy timeout, and every transaction begun with ``BEGIN IMMEDIATE`` so two writers queue
instead of failing half-way); PostgreSQL by URL for teams.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
    }


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str | None] = mapped_column(String(120))
    language: Mapped[str | None] = mapped_column(String(8))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WorkspaceSetting(Base):
    """Key/value settings that belong to the workspace (currency, name, timezone)."""

    __tablename__ = "workspace_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ImportRun(Base):
    """One import into the warehouse, accepted or rejected, for the Data page and audits."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    source: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))  # accepted | rejected
    rows_read: Mapped[int] = mapped_column(default=0)
    inserted: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    errors: Mapped[dict[str, Any] | None] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ModelRun(Base):
    """A fitted model stored in the workspace: what it was fitted on and with, its verdict and
    summary (estimates with intervals); the posterior itself is a file in ``runs/``."""

    __tablename__ = "model_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # "mmm"
    method: Mapped[str] = mapped_column(String(16))
    usable: Mapped[bool] = mapped_column()
    verdict: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(500))
    data_start: Mapped[str] = mapped_column(String(10))
    data_end: Mapped[str] = mapped_column(String(10))
    frequency: Mapped[str] = mapped_column(String(4))
    periods: Mapped[int] = mapped_column()
    settings: Mapped[dict[str, Any]] = mapped_column()
    summary: Mapped[dict[str, Any]] = mapped_column()
    artifact: Mapped[str] = mapped_column(String(500))  # relative to the workspace
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Scenario(Base):
    """A named budget plan (current, optimized or a manual what-if) with what it was asked
    (``request``), its predicted outcome (``result``) and its amounts per period and channel
    (``plan``: rows of period, start, end, channel, amount). One may be the active plan."""

    __tablename__ = "scenarios"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # optimized | current | manual
    run_id: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id", ondelete="SET NULL"))
    request: Mapped[dict[str, Any]] = mapped_column()
    result: Mapped[dict[str, Any]] = mapped_column()
    plan: Mapped[dict[str, Any]] = mapped_column()
    active: Mapped[bool] = mapped_column(default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column()


def make_engine(url: str) -> Engine:
    """Create an engine with the SQLite pragmas and locking discipline described above."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event own transaction start (the documented recipe).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def upgrade(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class StateStore:
    """Engine plus session factory for one workspace's state database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def new_session(self) -> Session:
        """A bare session for request-scoped use (the caller commits and closes)."""
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()
