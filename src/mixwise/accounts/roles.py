"""The ordered role vocabulary."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["viewer", "analyst", "budget_owner", "approver", "admin"]
ROLES: tuple[str, ...] = get_args(Role)


def role_at_least(role: str, minimum: str) -> bool:
    """True when ``role`` has at least the rights of ``minimum``."""
    if minimum not in ROLES:
        raise ValueError(f"unknown role {minimum!r}; roles are {', '.join(ROLES)}")
    return role in ROLES and ROLES.index(role) >= ROLES.index(minimum)
