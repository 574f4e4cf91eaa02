"""Where a response model comes from: a stored MMM run of a workspace, or a curves file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mixwise.optimize.response import ResponseModel
    from mixwise.workspace import Workspace

DEFAULT_DRAWS = 1000  # posterior draws the optimizer uses (evenly thinned)


def from_run(
    ws: Workspace, run: int | None = None, *, force: bool = False, draws: int = DEFAULT_DRAWS
) -> tuple[ResponseModel, int]:
    """The response model of a stored MMM run (the latest without ``run``) and its id.

    Raises :class:`mixwise.mmm.runs.RunNotFound` when there is none, and
    :class:`mixwise.mmm.response.UnusableModelError` for a run whose verdict is "do not use"
    (fast mode included) unless ``force``.
    """
    from mixwise.mmm.response import ResponseModel as MMMResponse
    from mixwise.mmm.runs import load_model

    model = load_model(ws, run)
    rm = MMMResponse.from_mmm(model, force=force, draws=draws)
    return rm, int(model.run_id_ or 0)


def from_file(path: str | Path, kind: Literal["hill", "points"], **options: Any) -> ResponseModel:
    """User curves from a CSV (see :func:`~mixwise.optimize.response.read_hill_csv` and
    :func:`~mixwise.optimize.response.read_points_csv`)."""
    from mixwise.optimize.response import read_hill_csv, read_points_csv

    reader = read_hill_csv if kind == "hill" else read_points_csv
    return reader(path, **options)
