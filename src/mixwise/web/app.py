"""The web application: pages and the JSON API in one FastAPI app over one workspace."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

import mixwise
from mixwise.mmm.devices import request_host_devices
from mixwise.mmm.jobs import FitJobs
from mixwise.web import api, attribution, mmm, pages
from mixwise.web.deps import CsrfFailed, Forbidden, NotAuthenticated, RateLimited, is_api
from mixwise.web.i18n import N_, load_all
from mixwise.web.security import SESSION_COOKIE, LoginRateLimiter, security_headers
from mixwise.web.templating import Templates
from mixwise.workspace import Workspace

STATIC_DIR = Path(__file__).with_name("static")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

ERROR_TITLES: dict[int, str] = {
    400: N_("Bad request"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Not allowed"),
    413: N_("File too large"),
    422: N_("Bad request"),
}
ERROR_TEXT: dict[int, str] = {
    403: N_("Your role does not allow this page or action. Ask an admin if you need it."),
    404: N_("There is nothing at this address."),
}
CSRF_TEXT = N_("The form expired or did not come from this site. Reload the page and try again.")
HOST_DEVICES = 4  # XLA CPU devices: a server's MMM fits run up to 4 chains in parallel


def create_app(workspace: Workspace) -> FastAPI:
    """The app serving ``workspace``: HTML pages, ``/api/v1`` and the static assets.

    When served (the lifespan runs), the default attribution result is computed in the
    background, so the Attribution page of a fresh server (the demo) opens at once. MMM fits
    run in the background too (``app.state.mmm_jobs``), one at a time; queued ones are
    dropped when the server stops.
    """
    request_host_devices(HOST_DEVICES)  # before anything here can start JAX
    settings = workspace.settings
    cache = attribution.AttributionCache()
    jobs = FitJobs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(
            target=attribution.warm,
            args=(workspace, cache),
            name="mixwise-attribution-warm",
            daemon=True,
        ).start()
        yield
        app.state.mmm_jobs.shutdown()

    app = FastAPI(
        title="mixwise",
        version=mixwise.__version__,
        description="The mixwise JSON API. Authenticate with the session cookie of a signed-in "
        "browser (send the X-CSRF-Token header on writes) or with HTTP Basic.",
        openapi_url=None,  # served by api.openapi, behind sign-in
        docs_url=None,  # Swagger UI and ReDoc load assets from a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.workspace = workspace
    app.state.attribution_cache = cache
    app.state.mmm_jobs = jobs
    app.state.mmm_runs = mmm.RunCache()
    app.state.login_limiter = LoginRateLimiter(
        settings.login_max_attempts, settings.login_window_seconds
    )
    app.state.templates = Templates(load_all(), settings.language)

    app.middleware("http")(security_headers)
    app.add_middleware(
        SessionMiddleware,
        secret_key=workspace.secret_key(),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age,
        same_site="lax",
        https_only=settings.secure_cookies,
    )

    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(
            PLOTLY_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    _install_error_handlers(app)
    return app


def _page_error(
    request: Request, status: int, text: str | None = None, **params: object
) -> Response:
    t: Templates = request.app.state.templates
    ctx = {
        "status": status,
        "title": ERROR_TITLES.get(status, N_("Something went wrong")),
        "text": text if text is not None else ERROR_TEXT.get(status),
        "params": params,
    }
    return t.render(request, "error.html", ctx, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if is_api(request):
            return JSONResponse({"detail": "Not authenticated"}, status_code=401)
        return pages.login_redirect(request)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        if is_api(request):
            return JSONResponse({"detail": f"Forbidden: {exc}"}, status_code=403)
        return _page_error(request, 403)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        if is_api(request):
            return JSONResponse(
                {"detail": "CSRF token missing or invalid (send the X-CSRF-Token header)"},
                status_code=403,
            )
        return _page_error(request, 403, CSRF_TEXT)

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, exc: RateLimited) -> Response:
        return JSONResponse(
            {"detail": str(exc)},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request) or request.url.path.startswith("/static/"):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        return _page_error(request, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if is_api(request):
            errors = [
                {k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()
            ]
            return JSONResponse({"detail": errors}, status_code=422)
        return _page_error(request, 400)
