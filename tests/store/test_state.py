from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from mixwise.config import Settings
from mixwise.store.state import StateStore
from mixwise.workspace import Workspace


def test_migrations_are_applied_once_and_reopening_is_harmless(settings: Settings) -> None:
    with Workspace.init(settings.home, settings) as ws:
        ws.set_setting("currency", "EUR")
    with Workspace.open(settings.home, settings) as ws:
        assert ws.currency == "EUR"
        with ws.state.session() as s:
            assert s.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0003"


def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    store.close()


def test_bad_workspace_setting_is_refused(workspace: Workspace) -> None:
    import pytest

    for key, value, msg in [
        ("currency", "usd", "3-letter"),
        ("timezone", "Mars/Base", "unknown"),
        ("colour", "x", "unknown workspace setting"),
    ]:
        with pytest.raises(ValueError, match=msg):
            workspace.set_setting(key, value)
    assert workspace.currency == "CNY"


def test_generated_secret_is_private_and_stable(workspace: Workspace) -> None:
    key = workspace.secret_key()
    assert len(key) >= 32 and workspace.secret_key() == key
    assert (workspace.path / "secret.key").stat().st_mode & 0o077 == 0


def test_placeholder_secret_is_refused(tmp_path: Path) -> None:
    import pytest

    settings = Settings(home=tmp_path / "ws", secret_key="change-me")
    with (
        Workspace.init(settings.home, settings) as ws,
        pytest.raises(ValueError, match="placeholder"),
    ):
        ws.secret_key()


def test_non_workspace_directory_is_refused(tmp_path: Path) -> None:
    import pytest

    from mixwise.workspace import WorkspaceError

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    with pytest.raises(WorkspaceError, match="not empty"):
        Workspace.init(tmp_path / "full")
    with pytest.raises(WorkspaceError, match="mixwise init"):
        Workspace.open(tmp_path / "missing")
