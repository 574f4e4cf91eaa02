"""The web app: HTML pages (Jinja2 + htmx + Plotly.js) and the JSON API (``/api/v1``).

>>> from mixwise.web import create_app, serve        # doctest: +SKIP
>>> serve(Workspace.open("mixwise-workspace"))        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mixwise.workspace import Workspace


def create_app(workspace: Workspace) -> FastAPI:
    """The FastAPI app serving ``workspace`` (see :func:`mixwise.web.app.create_app`)."""
    from mixwise.web.app import create_app as _create_app

    return _create_app(workspace)


def serve(
    workspace: Workspace, host: str = "127.0.0.1", port: int = 8000, **uvicorn_options: Any
) -> None:
    """Serve ``workspace`` with uvicorn until interrupted (one process: DuckDB is single-writer)."""
    import uvicorn

    uvicorn.run(create_app(workspace), host=host, port=port, workers=1, **uvicorn_options)


__all__ = ["create_app", "serve"]
