"""The dependency vocabulary shared by the JSON API and the HTML pages.

>>> @router.get("/users")                                   # doctest: +SKIP
... def users(admin: Annotated[User, Depends(require_role("admin"))]): ...

``CurrentUser`` / ``OptionalUser`` / ``require_role(...)`` raise :class:`NotAuthenticated`,
:class:`Forbidden`, :class:`CsrfFailed` or :class:`RateLimited`; the app's exception handlers
answer those as JSON under ``/api/`` (401/403/429) and as pages elsewhere (redirect to the login
page, a 403 page, ...). So a route states *who* may call it once, the same way on both sides.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from mixwise.accounts import authenticate, role_at_least
from mixwise.accounts.roles import Role
from mixwise.store.state import User
from mixwise.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    S_LOGIN_AT,
    S_USER,
    SAFE_METHODS,
    LoginRateLimiter,
    client_address,
    csrf_matches,
)
from mixwise.workspace import Workspace

API_PREFIX = "/api/"


class NotAuthenticated(Exception):
    """No valid session or credentials."""


class Forbidden(Exception):
    """Signed in, but the role is below what the route needs."""

    def __init__(self, needed: str) -> None:
        super().__init__(f"this needs the {needed} role or higher")
        self.needed = needed


class CsrfFailed(Exception):
    """An unsafe request without the session's CSRF token."""


class RateLimited(Exception):
    """Too many failed logins for this username and address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} seconds")
        self.retry_after = retry_after


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def get_workspace(request: Request) -> Workspace:
    ws: Workspace = request.app.state.workspace
    return ws


def get_limiter(request: Request) -> LoginRateLimiter:
    limiter: LoginRateLimiter = request.app.state.login_limiter
    return limiter


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]


def clear_login(request: Request) -> None:
    request.session.pop(S_USER, None)
    request.session.pop(S_LOGIN_AT, None)


def _session_user(request: Request, ws: Workspace) -> User | None:
    uid = request.session.get(S_USER)
    at = request.session.get(S_LOGIN_AT)
    if not isinstance(uid, int) or not isinstance(at, int | float):
        return None
    if time.time() - at > ws.settings.session_max_age:
        clear_login(request)
        return None
    with ws.state.session() as s:
        user = s.get(User, uid)
    if user is None or not user.is_active:
        clear_login(request)
        return None
    return user


def _basic_user(request: Request, ws: Workspace, header: str) -> User:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode()
        username, password = decoded.split(":", 1)
    except (ValueError, IndexError, binascii.Error, UnicodeDecodeError):
        raise NotAuthenticated() from None
    limiter = get_limiter(request)
    key = limiter.key(username, client_address(request))
    wait = limiter.retry_after(key)
    if wait:
        raise RateLimited(wait)
    with ws.state.session() as s:
        user = authenticate(s, username, password)
    if user is None:
        limiter.failed(key)
        raise NotAuthenticated()
    limiter.succeeded(key)
    return user


async def _resolve_user(request: Request) -> User | None:
    """The signed-in user (session cookie; HTTP Basic on the API), cached on the request."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    ws = get_workspace(request)
    header = request.headers.get("authorization", "")
    user: User | None
    if is_api(request) and header.lower().startswith("basic "):
        user = await run_in_threadpool(_basic_user, request, ws, header)
        request.state.auth_via = "basic"
    else:
        user = await run_in_threadpool(_session_user, request, ws)
        request.state.auth_via = "session"
    request.state.user = user
    return user


async def csrf_protect(request: Request) -> None:
    """Refuse an unsafe request that lacks this session's CSRF token.

    Pages accept the hidden form field or the header; the JSON API only the header. Requests
    authenticated by HTTP Basic carry no ambient credentials and need no token.
    """
    if request.method in SAFE_METHODS or getattr(request.state, "auth_via", None) == "basic":
        return
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and not is_api(request):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not csrf_matches(request, presented):
        raise CsrfFailed()


async def get_optional_user(request: Request) -> User | None:
    return await _resolve_user(request)


async def get_current_user(request: Request) -> User:
    user = await _resolve_user(request)
    if user is None:
        raise NotAuthenticated()
    await csrf_protect(request)
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]
CurrentUser = Annotated[User, Depends(get_current_user)]


def require_role(minimum: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency: the current user, if their role is at least ``minimum``."""

    async def dependency(user: CurrentUser) -> User:
        if not role_at_least(user.role, minimum):
            raise Forbidden(minimum)
        return user

    dependency.__name__ = f"require_{minimum}"
    return dependency


AnalystUser = Annotated[User, Depends(require_role("analyst"))]
AdminUser = Annotated[User, Depends(require_role("admin"))]
