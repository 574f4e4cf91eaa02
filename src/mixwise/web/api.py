"""The JSON API, ``/api/v1``. Session cookie (+ ``X-CSRF-Token`` on writes) or HTTP Basic."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from mixwise.accounts import AccountError, list_users
from mixwise.mmm.jobs import BadSettings, FitJobs
from mixwise.store.schemas import KINDS
from mixwise.web import attribution, services
from mixwise.web.deps import AdminUser, AnalystUser, CurrentUser, WorkspaceDep
from mixwise.web.schemas import (
    AttributionModelPublic,
    Coverage,
    ImportReportPublic,
    ImportRunPublic,
    MMMFitJobPublic,
    MMMFitRequest,
    TableRows,
    TableSummaryPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
    WorkspaceSettingsPublic,
    WorkspaceSettingsUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["api"])


def _kind_or_404(kind: str) -> str:
    if kind not in KINDS:
        raise HTTPException(404, f"unknown table kind {kind!r}; kinds are: {', '.join(KINDS)}")
    return kind


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, user: CurrentUser) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/me", response_model=UserPublic)
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)


@router.get("/tables", response_model=list[TableSummaryPublic])
def tables(user: CurrentUser, ws: WorkspaceDep) -> list[TableSummaryPublic]:
    return [TableSummaryPublic(**t.as_dict()) for t in ws.tables()]


@router.get("/tables/{kind}", response_model=TableRows)
def table_rows(
    kind: str,
    user: CurrentUser,
    ws: WorkspaceDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> TableRows:
    _kind_or_404(kind)
    total, records = services.table_records(ws, kind, limit)
    return TableRows(kind=kind, total=total, limit=limit, records=records)


@router.post(
    "/imports/{kind}",
    response_model=ImportReportPublic,
    responses={422: {"model": ImportReportPublic, "description": "Rejected; nothing written"}},
)
def import_file(
    kind: str,
    user: AnalystUser,
    ws: WorkspaceDep,
    file: Annotated[UploadFile, File(description="CSV, TSV, Parquet or Excel file")],
    mapping: Annotated[str | None, Form(description="Renames, e.g. `spend=cost, date=day`")] = None,
    wide: Annotated[bool, Form(description="Media in wide form: one column per channel")] = False,
) -> Any:
    _kind_or_404(kind)
    try:
        report = services.import_upload(ws, kind, file, mapping_text=mapping, wide=wide, user=user)
    except services.UploadTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    body = report.as_dict()
    return JSONResponse(body, status_code=200 if report.ok else 422)


@router.get("/imports", response_model=list[ImportRunPublic])
def imports(
    user: CurrentUser, ws: WorkspaceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[ImportRunPublic]:
    return services.import_history(ws, limit)


@router.get("/coverage", response_model=Coverage)
def coverage(
    user: CurrentUser,
    ws: WorkspaceDep,
    freq: Annotated[str, Query(pattern="^(day|week|month)$")] = "week",
) -> Coverage:
    return services.coverage(ws, freq)


@router.get("/attribution/models", response_model=list[AttributionModelPublic])
def attribution_models(user: CurrentUser) -> list[AttributionModelPublic]:
    """The registered attribution models, in the order the page lists them."""
    return [
        AttributionModelPublic(
            name=m.name,
            label=m.label,
            description=m.description,
            needs_timing=m.needs_timing,
            data_driven=m.name in attribution.DATA_DRIVEN,
        )
        for m in attribution.model_catalog()
    ]


@router.get(
    "/attribution",
    responses={
        200: {
            "description": "`AttributionResult.to_dict()`: credits per model, comparison, "
            "disagreements, top paths, path lengths and time to conversion"
        },
        409: {"description": "The workspace has no touchpoints"},
        422: {"description": "A bad parameter; `detail` says which and why"},
    },
)
def attribution_result(
    request: Request,
    user: CurrentUser,
    ws: WorkspaceDep,
    models: Annotated[
        list[str] | None,
        Query(description="Comma-separated or repeated model names; empty → every model"),
    ] = None,
    by: Annotated[str, Query(description="`conversions` or `value`")] = "conversions",
    markov_order: Annotated[str, Query(description="1 to 4")] = "1",
    half_life_days: Annotated[str, Query(description="Time-decay half-life in days")] = "7",
    lookback_days: Annotated[
        str, Query(description="Touches at most this many days before a conversion")
    ] = "",
    start: Annotated[str, Query(description="First day, YYYY-MM-DD")] = "",
    end: Annotated[str, Query(description="Last day, YYYY-MM-DD")] = "",
    granularity: Annotated[str, Query(description="`channel` or `campaign`")] = "channel",
) -> JSONResponse:
    """Every chosen model's credits on the workspace's journeys (cached per data version)."""
    values = {
        "models": models or [],
        "by": [by],
        "markov_order": [markov_order],
        "half_life_days": [half_life_days],
        "lookback_days": [lookback_days],
        "start": [start],
        "end": [end],
        "granularity": [granularity],
    }
    cache: attribution.AttributionCache = request.app.state.attribution_cache
    try:
        query = attribution.parse_query(values)
        result = cache.get(ws, query)
    except attribution.BadQuery as exc:
        raise HTTPException(422, str(exc)) from exc
    except attribution.NoJourneys as exc:
        raise HTTPException(409, str(exc)) from exc
    return JSONResponse(attribution.json_safe(result.to_dict()))


@router.get(
    "/mmm/runs",
    responses={200: {"description": "Stored MMM runs, newest first (`RunInfo.as_dict()`)"}},
)
def mmm_runs(user: CurrentUser, ws: WorkspaceDep) -> JSONResponse:
    """The marketing mix model runs stored in the workspace."""
    from mixwise.mmm.runs import list_runs

    return JSONResponse([r.as_dict() for r in list_runs(ws)])


@router.get(
    "/mmm/runs/{run_id}",
    responses={
        200: {"description": "`{run, summary}`: the run and every estimate with its interval"},
        404: {"description": "No such run"},
    },
)
def mmm_run(run_id: int, user: CurrentUser, ws: WorkspaceDep) -> JSONResponse:
    """One stored MMM run: data range, verdict, diagnostics, ROI, marginal ROI,
    contribution and synergy with 90 % intervals."""
    from mixwise.mmm.runs import RunNotFound, show_run

    try:
        info, summary = show_run(ws, run_id)
    except RunNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return JSONResponse(attribution.json_safe({"run": info.as_dict(), "summary": summary}))


@router.get(
    "/mmm/runs/{run_id}/curves",
    responses={
        200: {
            "description": "Per channel: spend levels per period and the steady-state "
            "contribution's posterior mean and 90 % interval, and today's average spend"
        },
        404: {"description": "No such run"},
        422: {"description": "`points` outside 2 … 200"},
    },
)
def mmm_curves(run_id: int, user: CurrentUser, ws: WorkspaceDep, points: int = 21) -> JSONResponse:
    """Response curves of a stored MMM run (also of a "do not use" run: its verdict is in
    `GET /mmm/runs/{run_id}`)."""
    from mixwise.mmm.response import ResponseModel, response_curves
    from mixwise.mmm.runs import RunNotFound, load_model

    try:
        model = load_model(ws, run_id)
        curves = response_curves(ResponseModel.from_mmm(model, force=True, draws=200), points)
    except RunNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return JSONResponse(attribution.json_safe(curves))


def fit_jobs(request: Request) -> FitJobs:
    jobs: FitJobs = request.app.state.mmm_jobs
    return jobs


@router.post(
    "/mmm/fits",
    response_model=MMMFitJobPublic,
    status_code=202,
    responses={422: {"description": "Bad settings; `detail` says which and why"}},
)
def mmm_fit(
    request: Request,
    response: Response,
    user: AnalystUser,
    ws: WorkspaceDep,
    body: MMMFitRequest,
) -> MMMFitJobPublic:
    """Start fitting a marketing mix model on the workspace's data in the background.

    Fits run one at a time, in submission order; poll `GET /mmm/fits/{job_id}` for the
    phase and progress, and read the stored run (`run_id`) when the job is done. Data that
    cannot be modelled (an unknown channel, too few weeks) fail the job with the message."""
    try:
        job = fit_jobs(request).submit(ws, body.model_dump(mode="json"), user_id=user.id)
    except BadSettings as exc:
        raise HTTPException(422, str(exc)) from exc
    response.headers["Location"] = f"/api/v1/mmm/fits/{job.id}"
    return MMMFitJobPublic(**job.as_dict())


@router.get("/mmm/fits", response_model=list[MMMFitJobPublic])
def mmm_fits(request: Request, user: CurrentUser) -> list[MMMFitJobPublic]:
    """The fit jobs this server remembers (since it started), newest first."""
    return [MMMFitJobPublic(**j.as_dict()) for j in fit_jobs(request).list()]


@router.get(
    "/mmm/fits/{job_id}",
    response_model=MMMFitJobPublic,
    responses={404: {"description": "No such job (or the server restarted since)"}},
)
def mmm_fit_job(job_id: str, request: Request, user: CurrentUser) -> MMMFitJobPublic:
    """One fit job: status, phase, progress, and the run id or the error when finished."""
    job = fit_jobs(request).get(job_id)
    if job is None:
        raise HTTPException(
            404, f"no fit job {job_id!r} (jobs are forgotten when the server restarts)"
        )
    return MMMFitJobPublic(**job.as_dict())


@router.get("/users", response_model=list[UserPublic])
def users(admin: AdminUser, ws: WorkspaceDep) -> list[UserPublic]:
    with ws.state.session() as s:
        return [UserPublic.model_validate(u) for u in list_users(s)]


@router.post("/users", response_model=UserPublic, status_code=201)
def add_user(admin: AdminUser, ws: WorkspaceDep, data: UserCreate) -> UserPublic:
    try:
        user = services.add_user(ws, data, actor=admin.username)
    except services.Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except AccountError as exc:
        raise HTTPException(400, str(exc)) from exc
    return UserPublic.model_validate(user)


@router.patch("/users/{username}", response_model=UserPublic)
def update_user(admin: AdminUser, ws: WorkspaceDep, username: str, data: UserUpdate) -> UserPublic:
    try:
        user = services.update_user(ws, username, data, actor=admin.username)
    except services.Conflict as exc:
        raise HTTPException(409, str(exc)) from exc
    except AccountError as exc:
        raise HTTPException(400, str(exc)) from exc
    if user is None:
        raise HTTPException(404, f"no user named {username!r}")
    return UserPublic.model_validate(user)


@router.get("/settings", response_model=WorkspaceSettingsPublic)
def get_settings(user: CurrentUser, ws: WorkspaceDep) -> WorkspaceSettingsPublic:
    return services.workspace_settings(ws)


@router.put("/settings", response_model=WorkspaceSettingsPublic)
def put_settings(
    admin: AdminUser, ws: WorkspaceDep, data: WorkspaceSettingsUpdate
) -> WorkspaceSettingsPublic:
    try:
        return services.update_settings(ws, data, actor=admin.username)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
