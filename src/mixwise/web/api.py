"""The JSON API, ``/api/v1``. Session cookie (+ ``X-CSRF-Token`` on writes) or HTTP Basic."""

from __future__ import annotations

import io
import re
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from mixwise.accounts import AccountError, list_users
from mixwise.mmm.jobs import BadSettings, FitJobs
from mixwise.store.schemas import KINDS
from mixwise.web import attribution, planner, services
from mixwise.web.deps import AdminUser, AnalystUser, CurrentUser, WorkspaceDep
from mixwise.web.schemas import (
    AttributionModelPublic,
    Coverage,
    FrontierPublic,
    ImportReportPublic,
    ImportRunPublic,
    MMMFitJobPublic,
    MMMFitRequest,
    OptimizeRequest,
    PlanResultPublic,
    ScenarioComparePublic,
    ScenarioPublic,
    ScenarioSummaryPublic,
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


# -- planner: optimisation and scenarios -------------------------------------------------------
PLAN_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such run"},
    409: {"description": "No MMM run yet, or the run is 'do not use' and `force` is not set"},
    422: {
        "description": "Bad input (a rule that cannot be read, an unknown channel, a bad "
        "horizon...) or rules that cannot all hold: `detail` says why, `conflict` lists a "
        "smallest set of clashing rules"
    },
}
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def plan_request(body: OptimizeRequest) -> planner.PlanRequest:
    return planner.PlanRequest(
        budget=body.budget,
        periods=body.periods,
        constraints=tuple(body.constraints),
        groups={k: tuple(v) for k, v in body.groups.items()},
        objective=body.objective,
        margin=body.margin,
        target=body.target,
        risk=body.risk,
        budget_mode=body.budget_mode,
        run=body.run,
        force=body.force,
        starts=body.starts,
        save_as=body.save_as,
    )


def plan_error(exc: planner.PlanError) -> JSONResponse:
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.status == 422:
        body["conflict"] = exc.conflict
    return JSONResponse(body, status_code=exc.status)


@router.post("/optimize", response_model=PlanResultPublic, responses=PLAN_ERRORS)
def optimize(request: Request, user: AnalystUser, ws: WorkspaceDep, body: OptimizeRequest) -> Any:
    """The best split of a budget across channels (and budget periods) under the rules, on a
    stored MMM run: the plan, its predicted incremental KPI with a 90 % interval against the
    current plan's, every rule checked, the reason for each change and the assumptions.
    With `save_as`, the plan is saved as a scenario. Takes about a second (more on the first
    call for a run)."""
    cache = planner.response_cache(request.app.state)
    try:
        outcome = planner.run_plan(
            ws, cache, plan_request(body), user_id=user.id, actor=user.username
        )
    except planner.PlanError as exc:
        return plan_error(exc)
    data: dict[str, Any] = {"run": outcome.run_id, **outcome.result.to_dict()}
    if outcome.scenario_id is not None:
        data["scenario"] = outcome.scenario_id
    return JSONResponse(attribution.json_safe(data))


@router.post("/optimize/frontier", response_model=FrontierPublic, responses=PLAN_ERRORS)
def optimize_frontier(
    request: Request, user: AnalystUser, ws: WorkspaceDep, body: OptimizeRequest
) -> Any:
    """The efficient frontier around `budget`: the best plan's predicted KPI (with its
    interval) and the marginal ROI of its last unit at budgets from -50 % to +50 %, under the
    same rules — where more money stops paying. `save_as` is ignored."""
    cache = planner.response_cache(request.app.state)
    try:
        table, run_id = planner.run_frontier(ws, cache, plan_request(body))
    except planner.PlanError as exc:
        return plan_error(exc)
    points = attribution.json_safe(table.to_dict("records"))
    return JSONResponse({"run": run_id, "points": points})


def _scenario_summary(item: Any) -> ScenarioSummaryPublic:
    r = item.result
    return ScenarioSummaryPublic(
        id=item.id,
        name=item.name,
        kind=item.kind,
        run=item.run_id,
        active=item.active,
        created_at=item.created_at,
        updated_at=item.updated_at,
        request=attribution.json_safe(item.request),
        kpi_name=r.get("kpi_name"),
        spend=attribution.finite(r.get("spend")),
        reference_spend=attribution.finite(r.get("reference_spend")),
        kpi=attribution.json_safe(r.get("kpi")),
        reference_kpi=attribution.json_safe(r.get("reference_kpi")),
        roi=attribution.finite(r.get("roi")),
    )


def _scenario(ws: Any, name: str) -> Any:
    from mixwise.optimize.scenarios import ScenarioNotFound, get_scenario

    try:
        return get_scenario(ws, name)
    except ScenarioNotFound as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/scenarios", response_model=list[ScenarioSummaryPublic])
def scenarios(user: CurrentUser, ws: WorkspaceDep) -> list[ScenarioSummaryPublic]:
    """The saved scenarios (oldest first), with their predictions, without the plan rows."""
    from mixwise.optimize.scenarios import list_scenarios

    return [_scenario_summary(s) for s in list_scenarios(ws)]


@router.get(
    "/scenarios/compare",
    response_model=ScenarioComparePublic,
    responses={
        404: {"description": "No scenario by one of the names"},
        422: {"description": "No names"},
    },
)
def scenarios_compare(
    user: CurrentUser,
    ws: WorkspaceDep,
    names: Annotated[
        list[str] | None, Query(description="Scenario names (or ids), repeated")
    ] = None,
) -> Any:
    """Scenarios side by side: spend, predicted KPI with its interval, ROI, and per channel
    the amount and the marginal ROI."""
    if not names:
        raise HTTPException(422, "name at least one scenario to compare (?names=a&names=b)")
    items = [_scenario(ws, n) for n in names]
    return JSONResponse(attribution.json_safe(planner.compare_json(items)))


@router.get(
    "/scenarios/{name}",
    response_model=ScenarioPublic,
    responses={404: {"description": "No such scenario"}},
)
def scenario(name: str, user: CurrentUser, ws: WorkspaceDep) -> ScenarioPublic:
    """One scenario (by name or id): what was asked, the prediction, and the amounts per
    period and channel."""
    item = _scenario(ws, name)
    return ScenarioPublic(
        **_scenario_summary(item).model_dump(),
        result=attribution.json_safe(item.result),
        plan=attribution.json_safe(item.rows),
    )


@router.delete(
    "/scenarios/{name}", status_code=204, responses={404: {"description": "No such scenario"}}
)
def scenario_delete(name: str, user: AnalystUser, ws: WorkspaceDep) -> Response:
    from mixwise.optimize.scenarios import ScenarioNotFound, delete_scenario

    try:
        delete_scenario(ws, name, actor=user.username)
    except ScenarioNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return Response(status_code=204)


@router.post(
    "/scenarios/{name}/activate",
    response_model=ScenarioSummaryPublic,
    responses={404: {"description": "No such scenario"}},
)
def scenario_activate(name: str, user: AnalystUser, ws: WorkspaceDep) -> ScenarioSummaryPublic:
    """Make a scenario the active plan (the one re-allocation reviews start from)."""
    from mixwise.optimize.scenarios import ScenarioNotFound, set_active

    try:
        set_active(ws, name, actor=user.username)
    except ScenarioNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    return _scenario_summary(_scenario(ws, name))


def download_name(name: str, suffix: str) -> str:
    """A Content-Disposition value: an ASCII file name and the UTF-8 one (RFC 6266)."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "scenario"
    utf8 = quote(f"{name}.{suffix}", safe="")
    return f"attachment; filename=\"{ascii_name}.{suffix}\"; filename*=UTF-8''{utf8}"


@router.get(
    "/scenarios/{name}/export",
    responses={
        200: {
            "description": "The amounts, one row per period and channel: scenario, period, "
            "start, end (exclusive), channel, amount",
            "content": {"text/csv": {}, EXPORT_TYPES["xlsx"]: {}},
        },
        404: {"description": "No such scenario"},
    },
)
def scenario_export(
    name: str,
    user: CurrentUser,
    ws: WorkspaceDep,
    fmt: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
) -> Response:
    """A scenario's plan as a CSV or Excel file (the shape a budget plan is created from)."""
    item = _scenario(ws, name)
    frame = item.frame()
    if fmt == "csv":
        content = frame.to_csv(index=False).encode("utf-8")
    else:
        buf = io.BytesIO()
        frame.to_excel(buf, index=False, sheet_name="plan")
        content = buf.getvalue()
    return Response(
        content,
        media_type=EXPORT_TYPES[fmt],
        headers={"Content-Disposition": download_name(item.name, fmt)},
    )


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
