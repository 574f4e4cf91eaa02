"""User accounts in the state store, with argon2 password hashes."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mixwise.accounts.roles import ROLES
from mixwise.store.state import AuditEvent, User

_hasher = PasswordHasher()
# Computed once so that a login for an unknown user costs as much as one for a known user.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{2,80}$")
MIN_PASSWORD = 8


class AccountError(ValueError):
    """A user-facing problem with an account request."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")


def get_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str = "viewer",
    *,
    display_name: str | None = None,
    actor: str | None = None,
) -> User:
    """Create a user; raises :class:`AccountError` with a readable reason when refused."""
    if not USERNAME_RE.match(username):
        raise AccountError(
            "username must be 2-80 characters of letters, digits, '_', '.', '@' or '-'"
        )
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
    _check_role(role)
    if get_user(session, username) is not None:
        raise AccountError(f"user {username!r} already exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        display_name=display_name,
        is_active=True,
    )
    session.add(user)
    session.add(
        AuditEvent(actor=actor, action="user.create", detail={"user": username, "role": role})
    )
    session.flush()
    return user


def set_role(session: Session, username: str, role: str, *, actor: str | None = None) -> User:
    _check_role(role)
    user = get_user(session, username)
    if user is None:
        raise AccountError(f"no user named {username!r}")
    old = user.role
    user.role = role
    session.add(
        AuditEvent(
            actor=actor, action="user.set_role", detail={"user": username, "from": old, "to": role}
        )
    )
    return user


def set_password(session: Session, username: str, password: str) -> User:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
    user = get_user(session, username)
    if user is None:
        raise AccountError(f"no user named {username!r}")
    user.password_hash = hash_password(password)
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (constant work either way)."""
    user = get_user(session, username)
    if user is None or not user.is_active:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user
