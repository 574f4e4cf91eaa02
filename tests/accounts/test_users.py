from __future__ import annotations

import pytest

from mixwise.accounts import (
    ROLES,
    AccountError,
    authenticate,
    create_user,
    list_users,
    role_at_least,
    set_role,
)
from mixwise.store.state import AuditEvent
from mixwise.workspace import Workspace


def test_role_order() -> None:
    assert ROLES == ("viewer", "analyst", "budget_owner", "approver", "admin")
    assert role_at_least("admin", "viewer") and role_at_least("approver", "budget_owner")
    assert not role_at_least("viewer", "analyst") and not role_at_least("nobody", "viewer")
    with pytest.raises(ValueError, match="unknown role"):
        role_at_least("admin", "root")


def test_create_authenticate_and_audit(workspace: Workspace) -> None:
    with workspace.state.session() as s:
        user = create_user(s, "alice", "correct horse", "analyst", actor="test")
        assert user.password_hash.startswith("$argon2")
        assert "correct horse" not in user.password_hash
    with workspace.state.session() as s:
        assert authenticate(s, "alice", "correct horse") is not None
        assert authenticate(s, "alice", "wrong horse") is None
        assert authenticate(s, "mallory", "correct horse") is None
        set_role(s, "alice", "approver", actor="test")
    with workspace.state.session() as s:
        assert [(u.username, u.role) for u in list_users(s)] == [("alice", "approver")]
        actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.id)]
        assert actions[-2:] == ["user.create", "user.set_role"]


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        ("a", "long enough", "viewer", "username"),
        ("bob smith", "long enough", "viewer", "username"),
        ("bob", "short", "viewer", "at least 8"),
        ("bob", "long enough", "root", "unknown role"),
    ],
)
def test_bad_accounts_are_refused(
    workspace: Workspace, username: str, password: str, role: str, message: str
) -> None:
    with pytest.raises(AccountError, match=message), workspace.state.session() as s:
        create_user(s, username, password, role)
    with workspace.state.session() as s:
        assert list_users(s) == []


def test_duplicate_user_is_refused_and_nothing_half_written(workspace: Workspace) -> None:
    with workspace.state.session() as s:
        create_user(s, "alice", "long enough")
    with pytest.raises(AccountError, match="already exists"), workspace.state.session() as s:
        create_user(s, "alice", "other password")
    with workspace.state.session() as s:
        assert len(list_users(s)) == 1
