"""Local accounts and roles.

Roles are ordered; each includes the rights of those below it:

========== ==============================================================
viewer     reads dashboards, tables and results
analyst    + imports data, runs models and scenarios
budget_owner + edits budget plans and line items for their budgets
approver   + approves or rejects budget changes
admin      + manages users and workspace settings
========== ==============================================================

The same vocabulary guards the CLI, the JSON API and the web pages
(``mixwise.web.deps.require_role``).
"""

from mixwise.accounts.roles import ROLES, Role, role_at_least
from mixwise.accounts.users import (
    AccountError,
    authenticate,
    create_user,
    get_user,
    hash_password,
    list_users,
    set_role,
    verify_password,
)

__all__ = [
    "ROLES",
    "AccountError",
    "Role",
    "authenticate",
    "create_user",
    "get_user",
    "hash_password",
    "list_users",
    "role_at_least",
    "set_role",
    "verify_password",
]
