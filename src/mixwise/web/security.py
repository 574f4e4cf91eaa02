"""Session keys, CSRF tokens, login rate limiting and security headers.

- The session is Starlette's signed cookie (itsdangerous, keyed by ``Workspace.secret_key()``):
  HttpOnly, SameSite=Lax, Secure when ``secure_cookies``. It holds the user id, the time of
  login (sessions end ``session_max_age`` seconds after login, however active), the CSRF token
  and, for anonymous visitors, the chosen language.
- CSRF: one random token per session. HTML forms carry it in the hidden field ``csrf_token``;
  htmx and JSON clients send it as the ``X-CSRF-Token`` header. Compared in constant time.
- Login rate limit: failed attempts per (username, client address) in a sliding window, kept
  in memory; a success clears the key's failures.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "mixwise_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# Session keys.
S_USER = "uid"
S_LOGIN_AT = "at"
S_CSRF = "csrf"
S_LANG = "lang"
S_FLASH = "flash"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # Plotly.js and htmx set element styles from script.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get(S_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[S_CSRF] = token
    return token


def csrf_matches(request: Request, presented: str | None) -> bool:
    expected = request.session.get(S_CSRF)
    if not isinstance(expected, str) or not expected or not presented:
        return False
    return secrets.compare_digest(expected.encode(), presented.encode())


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class LoginRateLimiter:
    """At most ``max_attempts`` failures per key within ``window`` seconds (in memory)."""

    def __init__(
        self, max_attempts: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_attempts = max_attempts
        self.window = window
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(username: str, address: str) -> tuple[str, str]:
        return (username.strip().lower(), address)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, key: tuple[str, str]) -> int:
        """Seconds until another attempt is allowed; 0 when one is allowed now."""
        with self._lock:
            now = self._clock()
            q = self._recent(key, now)
            if len(q) < self.max_attempts:
                return 0
            return max(1, int(q[0] + self.window - now + 0.999))

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            now = self._clock()
            self._recent(key, now)
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
}


async def security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """HTTP middleware: add the security headers; never cache pages or API answers."""
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.url.path.startswith(("/static/", "/vendor/")):
        response.headers.setdefault("Cache-Control", "no-store")
    return response
