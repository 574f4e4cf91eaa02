"""HTML pages (Jinja2 + htmx). Every POST carries the session's CSRF token."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from mixwise.accounts import ROLES, AccountError, authenticate, list_users
from mixwise.mmm.jobs import KPIS, BadSettings, FitJob, FitJobs
from mixwise.mmm.runs import RunNotFound, list_runs, show_run
from mixwise.store.ingest import ImportReport
from mixwise.store.schemas import KINDS
from mixwise.store.state import User
from mixwise.web import attribution, charts, mmm, planner, services
from mixwise.web.deps import (
    AdminUser,
    AnalystUser,
    OptionalUser,
    WorkspaceDep,
    csrf_protect,
    get_limiter,
    require_role,
)
from mixwise.web.i18n import N_, normalize
from mixwise.web.schemas import UserCreate, UserUpdate, WorkspaceSettingsUpdate
from mixwise.web.security import S_LANG, S_LOGIN_AT, S_USER, client_address
from mixwise.web.templating import Templates, flash
from mixwise.workspace import Workspace

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
ViewerUser = Annotated[User, Depends(require_role("viewer"))]


def templates(request: Request) -> Templates:
    t: Templates = request.app.state.templates
    return t


def safe_next(value: str | None) -> str:
    """A local path to go to after login; anything else (other hosts...) becomes ``/``."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def json_script(text: str | None) -> Markup | None:
    """JSON text made safe to embed in a ``<script type="application/json">`` element."""
    if text is None:
        return None
    safe = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(safe)


# -- session -------------------------------------------------------------------------------
@router.get("/login")
def login_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user is not None:
        return redirect(safe_next(next))
    return templates(request).render(request, "login.html", {"next": safe_next(next)})


@router.post("/login")
async def login(
    request: Request,
    ws: WorkspaceDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    limiter = get_limiter(request)
    key = limiter.key(username, client_address(request))
    ctx: dict[str, Any] = {"next": safe_next(next), "username": username}
    t = templates(request)
    wait = limiter.retry_after(key)
    if wait:
        ctx["error"] = N_("Too many failed sign-in attempts. Try again in %(seconds)s seconds.")
        ctx["error_params"] = {"seconds": wait}
        return t.render(request, "login.html", ctx, status_code=429)

    def check() -> User | None:
        with ws.state.session() as s:
            return authenticate(s, username.strip(), password)

    user = await run_in_threadpool(check)
    if user is None:
        limiter.failed(key)
        ctx["error"] = N_("Wrong username or password.")
        return t.render(request, "login.html", ctx, status_code=401)
    limiter.succeeded(key)
    lang = normalize(request.session.get(S_LANG))
    request.session.clear()  # no fixation: a fresh session (and CSRF token) per login
    request.session[S_USER] = user.id
    request.session[S_LOGIN_AT] = int(time.time())
    if lang:
        request.session[S_LANG] = lang
    return redirect(safe_next(next))


@router.post("/logout")
def logout(request: Request) -> Response:
    lang = request.session.get(S_LANG)
    request.session.clear()
    if lang:
        request.session[S_LANG] = lang
    return redirect("/login")


@router.post("/language")
def set_language(
    request: Request,
    ws: WorkspaceDep,
    user: OptionalUser,
    lang: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    chosen = normalize(lang)
    if chosen is not None:
        request.session[S_LANG] = chosen
        if user is not None:
            with ws.state.session() as s:
                row = s.get(User, user.id)
                if row is not None:
                    row.language = chosen
            user.language = chosen
    return redirect(safe_next(next))


# -- overview ------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def overview(request: Request, user: ViewerUser, ws: WorkspaceDep) -> Response:
    t = templates(request)
    gettext = t.gettext(request)
    cov = services.coverage(ws, "week")
    summaries = {s.kind: s for s in ws.tables()}
    channels = sorted({p.channel for p in cov.spend})
    ctx = {
        "media": summaries["media"],
        "outcomes": summaries["outcomes"],
        "channels": channels,
        "total_spend": sum(p.spend for p in cov.spend),
        "total_revenue": sum(p.revenue or 0 for p in cov.outcomes),
        "currency": cov.currency,
        "spend_fig": json_script(charts.spend_figure(cov, gettext)),
        "outcomes_fig": json_script(charts.outcomes_figure(cov, gettext)),
    }
    return t.render(request, "overview.html", ctx)


# -- attribution ---------------------------------------------------------------------------
def attribution_form(values: dict[str, list[str]], query: Any | None) -> dict[str, Any]:
    """The form's fields as the user sent them (defaults where not sent)."""
    q = query or attribution.AttributionQuery(models=())

    def one(name: str, default: object) -> str:
        got = values.get(name)
        if got:
            return got[-1].strip()
        return "" if default is None else str(default)

    if query is not None:
        chosen = set(query.models)
    elif "models" in values:
        chosen = {n.strip() for v in values["models"] for n in v.split(",")}
    else:
        chosen = set(attribution.model_names())
    half_life = q.half_life_days
    return {
        "models": chosen,
        "by": one("by", q.by),
        "markov_order": one("markov_order", q.markov_order),
        "half_life_days": one("half_life_days", f"{half_life:g}"),
        "lookback_days": one(
            "lookback_days", None if q.lookback_days is None else f"{q.lookback_days:g}"
        ),
        "start": one("start", q.start),
        "end": one("end", q.end),
        "granularity": one("granularity", q.granularity),
    }


@router.get("/attribution", response_class=HTMLResponse)
def attribution_page(request: Request, user: ViewerUser, ws: WorkspaceDep) -> Response:
    """Credits of the chosen models side by side; the form is a GET, so URLs can be shared.

    htmx requests (the form, the detail picker) get the results part only.
    """
    t = templates(request)
    gettext = t.gettext(request)
    values = attribution.form_values(request.query_params.multi_items())
    # The form always sends an empty ``models`` (a hidden field), so no box ticked is a mistake
    # to show; without the parameter (a first visit, a hand-written URL) it means every model.
    submitted = "models" in values
    partial = request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )
    summary = ws.warehouse.summary("touchpoints")
    catalog = [
        {
            "name": m.name,
            "label": gettext(m.label) if m.translated else m.label,
            "description": gettext(m.description) if m.translated else m.description,
            "data_driven": m.name in attribution.DATA_DRIVEN,
        }
        for m in attribution.model_catalog()
    ]
    ctx: dict[str, Any] = {"catalog": catalog, "touchpoints": summary, "problems": []}
    status = 200
    query = None
    if summary.rows == 0:
        ctx["empty"] = True
    else:
        try:
            query = attribution.parse_query(values, empty_models_is_all=not submitted)
            cache: attribution.AttributionCache = request.app.state.attribution_cache
            result = cache.get(ws, query)
        except attribution.BadQuery as exc:
            ctx["problems"] = exc.problems
            status = 422
        except attribution.NoJourneys:
            ctx["empty"] = True
        else:
            detail = values["detail"][-1] if values.get("detail") else None
            ctx.update(attribution.page_context(result, query, detail, gettext))
            lang = t.language(request)
            figs = cache.derived(
                result, ("figures", lang), lambda: attribution.figures(result, gettext)
            )
            ctx.update({key: json_script(fig) for key, fig in figs.items()})
    ctx["form"] = attribution_form(values, query)
    if partial:  # htmx swaps only what it is given with a 2xx status
        return t.render(request, "_attribution_results.html", ctx)
    return t.render(request, "attribution.html", ctx, status_code=status)


# -- marketing mix model -------------------------------------------------------------------
def _jobs(request: Request) -> FitJobs:
    jobs: FitJobs = request.app.state.mmm_jobs
    return jobs


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )


def mmm_jobs_context(
    request: Request, extra: FitJob | None = None, problems: list[attribution.Problem] | None = None
) -> dict[str, Any]:
    """The running and queued fits (and ``extra``, a finished one asked for), for the page."""
    shown = [j for j in _jobs(request).list() if j.active]
    if extra is not None and all(j.id != extra.id for j in shown):
        shown.insert(0, extra)
    return {"jobs": [mmm.job_context(j) for j in shown], "fit_problems": problems or []}


@router.get("/mmm", response_class=HTMLResponse)
def mmm_page(
    request: Request,
    user: ViewerUser,
    ws: WorkspaceDep,
    run: str | None = None,
    job: str | None = None,
) -> Response:
    """A stored run (the latest without ``?run=``): verdict, diagnostics, ROI, decomposition,
    response curves; the "Fit a model" form and the fits in progress."""
    return render_mmm_page(request, ws, run=run, job=job)


def render_mmm_page(
    request: Request,
    ws: Workspace,
    *,
    run: str | None = None,
    job: str | None = None,
    fit_problems: list[attribution.Problem] | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    t = templates(request)
    gettext = t.gettext(request)
    runs = list_runs(ws)
    media = ws.warehouse.summary("media")
    ctx: dict[str, Any] = {
        "runs": runs,
        "media": media,
        "kpis": [{"name": k, "label": mmm.kpi_label(k, gettext)} for k in KPIS],
        "methods": mmm.METHOD_LABELS,
        "form": form or mmm.default_form(media.channels),
        "problems": [],
        **mmm_jobs_context(request, _jobs(request).get(job) if job else None, fit_problems),
    }
    status = 422 if fit_problems else 200
    missing = [attribution.Problem(N_("There is no run %(run)s."), {"run": run})]
    if run and not run.isdigit():
        ctx["problems"], status = missing, 404
    elif runs:
        try:
            info, summary = show_run(ws, int(run) if run else None)
        except RunNotFound:
            ctx["problems"], status = missing, 404
        else:
            cache: mmm.RunCache = request.app.state.mmm_runs
            view: mmm.RunView | None
            try:
                view = cache.get(ws, info)
            except (OSError, KeyError, ValueError) as exc:
                view = None
                ctx["problems"] = [
                    attribution.Problem(
                        N_("The run's posterior cannot be read: %(error)s"), {"error": str(exc)}
                    )
                ]
            ctx.update(mmm.page_context(info, summary, view, ws.currency, gettext))
            if view is not None:
                lang = t.language(request)
                figs = cache.figures(view, lang, lambda: mmm.figures(ctx, view, gettext))
                ctx.update({key: json_script(fig) for key, fig in figs.items()})
    return t.render(request, "mmm.html", ctx, status_code=status)


@router.post("/mmm/fits", response_class=HTMLResponse)
async def mmm_fit(request: Request, user: AnalystUser, ws: WorkspaceDep) -> Response:
    """Start a fit from the page's form: htmx gets the fits in progress (the new one first),
    a plain form post is sent to the page showing the job."""
    t = templates(request)
    form = await request.form()
    values = attribution.form_values((k, v) for k, v in form.multi_items() if isinstance(v, str))
    sent: dict[str, Any] | None = None
    try:
        settings, sent = mmm.parse_fit_form(values)
        new = _jobs(request).submit(ws, settings, user_id=user.id)
    except mmm.FormProblems as exc:
        problems, sent = exc.problems, exc.form
    except BadSettings as exc:
        problems = [attribution.Problem(p, raw=True) for p in exc.problems]
    else:
        if not _is_htmx(request):
            return redirect(f"/mmm?job={new.id}")
        ctx = mmm_jobs_context(request, new)
        return t.render(request, "_mmm_jobs.html", ctx, status_code=202)
    if _is_htmx(request):  # htmx swaps only a 2xx answer
        return t.render(request, "_mmm_jobs.html", mmm_jobs_context(request, problems=problems))
    return await run_in_threadpool(render_mmm_page, request, ws, fit_problems=problems, form=sent)


@router.get("/mmm/fits/{job_id}", response_class=HTMLResponse)
def mmm_fit_status(request: Request, user: ViewerUser, job_id: str) -> Response:
    """One fit's status (the page polls it every second while the fit runs). A finished fit
    sends the page to its run; an unknown one (the server restarted) stops the polling."""
    t = templates(request)
    job = _jobs(request).get(job_id)
    if job is None:
        # 286 tells htmx to stop polling; the fragment says why.
        status = 286 if _is_htmx(request) else 404
        return t.render(request, "_mmm_job.html", {"j": None}, status_code=status)
    response = t.render(request, "_mmm_job.html", {"j": mmm.job_context(job)})
    if job.status == "done" and _is_htmx(request):
        response.headers["HX-Redirect"] = f"/mmm?run={job.run_id}"
    return response


# -- planner -------------------------------------------------------------------------------
def planner_scenarios_context(
    ws: Workspace, gettext: Any, compare: list[str] | None = None
) -> dict[str, Any]:
    """The saved scenarios and, when ``compare`` names some, their comparison."""
    from mixwise.optimize.scenarios import ScenarioNotFound, get_scenario, list_scenarios

    ctx: dict[str, Any] = {
        "scenarios": planner.scenario_rows(list_scenarios(ws)),
        "compare_selected": set(compare or []),
        "compare_problems": [],
    }
    if compare:
        try:
            items = [get_scenario(ws, name) for name in compare]
        except ScenarioNotFound as exc:
            ctx["compare_problems"] = [attribution.Problem(str(exc), raw=True)]
        else:
            ctx.update(planner.compare_context(items, gettext))
    return ctx


def render_planner_page(
    request: Request,
    ws: Workspace,
    *,
    form: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    compare: list[str] | None = None,
    status: int = 200,
) -> Response:
    """The whole Planner page: the form (filled as sent, or with the defaults), the result
    or frontier of a plain form post (``extra``), and the scenarios."""
    t = templates(request)
    gettext = t.gettext(request)
    runs = list_runs(ws)
    budget = planner.default_budget(ws, planner.response_cache(request.app.state)) if runs else None
    form = {**planner.default_form(budget), **(form or {})}
    if budget is not None:
        form["budget_hint"] = planner.budget_text(budget)
    ctx: dict[str, Any] = {
        "runs": runs,
        "form": form,
        "objectives": planner.OBJECTIVES,
        "risks": planner.RISKS,
        "methods": mmm.METHOD_LABELS,
        "currency": ws.currency,
        "problems": [],
        **planner_scenarios_context(ws, gettext, compare),
        **(extra or {}),
    }
    return t.render(request, "planner.html", ctx, status_code=status)


async def _planner_form(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    return attribution.form_values((k, v) for k, v in form.multi_items() if isinstance(v, str))


def _with_figures(ctx: dict[str, Any]) -> dict[str, Any]:
    """``ctx`` with its figures (``*_fig``, JSON text) safe to embed in a script element."""
    return {k: json_script(v) if k.endswith("_fig") else v for k, v in ctx.items()}


def _planner_problem(exc: planner.PlanError) -> dict[str, Any]:
    return {"problems": [exc.problem], "conflict": exc.conflict, "problem_kind": exc.kind}


@router.get("/planner", response_class=HTMLResponse)
def planner_page(
    request: Request,
    user: ViewerUser,
    ws: WorkspaceDep,
    compare: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """The budget planner: the constraints form, the saved scenarios (``?compare=a&compare=b``
    lines them up) and, after a run, the recommended plan."""
    return render_planner_page(request, ws, compare=[c for c in compare or [] if c.strip()])


@router.post("/planner", response_class=HTMLResponse)
async def planner_run(request: Request, user: AnalystUser, ws: WorkspaceDep) -> Response:
    """Optimise the form's plan (and save it when it is named). htmx gets the result region
    (and the scenarios, out of band, after a save), always with 200 since htmx swaps only a
    2xx answer; a plain form post gets the whole page, with 422/409/404 on a problem."""
    t = templates(request)
    gettext = t.gettext(request)
    htmx = _is_htmx(request)
    values = await _planner_form(request)
    sent: dict[str, Any] | None = None
    extra: dict[str, Any]
    status = 200
    try:
        req, sent = planner.parse_form(values)
        cache = planner.response_cache(request.app.state)
        outcome = await run_in_threadpool(
            planner.run_plan, ws, cache, req, user_id=user.id, actor=user.username
        )
    except planner.FormProblems as exc:
        sent, status = exc.form, 422
        extra = {"problems": exc.problems}
    except planner.PlanError as exc:
        extra, status = _planner_problem(exc), exc.status
    else:
        extra = _with_figures(
            await run_in_threadpool(planner.result_context, outcome, ws.currency, gettext)
        )
        if req.save_as:
            extra["saved_as"] = req.save_as
    if htmx:
        ctx = dict(extra)
        if extra.get("saved_as"):
            ctx.update(oob=True, **planner_scenarios_context(ws, gettext))
        return t.render(request, "_planner_result.html", ctx)
    return await run_in_threadpool(
        render_planner_page, request, ws, form=sent, extra=extra, status=status
    )


@router.post("/planner/frontier", response_class=HTMLResponse)
async def planner_frontier(request: Request, user: AnalystUser, ws: WorkspaceDep) -> Response:
    """The efficient frontier for the form's settings (htmx: the frontier region)."""
    t = templates(request)
    gettext = t.gettext(request)
    values = await _planner_form(request)
    sent: dict[str, Any] | None = None
    status = 200
    extra: dict[str, Any]
    try:
        req, sent = planner.parse_form(values)
        cache = planner.response_cache(request.app.state)
        table, run_id = await run_in_threadpool(
            planner.run_frontier, ws, cache, req, starts=planner.FRONTIER_STARTS
        )
        rm, _ = await run_in_threadpool(cache.get, ws, run_id, force=True)
    except planner.FormProblems as exc:
        sent, status = exc.form, 422
        extra = {"frontier_problems": exc.problems}
    except planner.PlanError as exc:
        status = exc.status
        extra = {"frontier_problems": [exc.problem], "frontier_conflict": exc.conflict}
    else:
        extra = _with_figures(
            planner.frontier_context(table, run_id, rm.kpi_name, ws.currency, gettext)
        )
        extra["frontier_shown"] = True
    if _is_htmx(request):
        return t.render(request, "_planner_frontier.html", extra)
    return await run_in_threadpool(
        render_planner_page, request, ws, form=sent, extra=extra, status=status
    )


@router.get("/planner/scenarios", response_class=HTMLResponse)
def planner_scenarios(
    request: Request,
    user: ViewerUser,
    ws: WorkspaceDep,
    compare: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """The scenarios region (htmx), with the comparison of the ticked ones; a plain request
    goes to the page."""
    names = [c for c in compare or [] if c.strip()]
    if not _is_htmx(request):
        query = "&".join(f"compare={quote(n, safe='')}" for n in names)
        return redirect("/planner" + (f"?{query}" if query else ""))
    t = templates(request)
    ctx = planner_scenarios_context(ws, t.gettext(request), names)
    return t.render(request, "_planner_scenarios.html", ctx)


def _scenario_action(
    request: Request, ws: Workspace, action: str, scenario_id: int, user: User
) -> Response:
    """Activate or delete a scenario: htmx gets the scenarios region with a note, a plain
    form post goes back to the page with a flash message."""
    from mixwise.optimize.scenarios import (
        ScenarioNotFound,
        delete_scenario,
        get_scenario,
        set_active,
    )

    level = "success"
    try:
        name = get_scenario(ws, scenario_id).name
        if action == "activate":
            set_active(ws, scenario_id, actor=user.username)
            msg = N_("%(name)s is now the active plan.")
        else:
            delete_scenario(ws, scenario_id, actor=user.username)
            msg = N_("Scenario %(name)s deleted.")
    except ScenarioNotFound:
        name, level = str(scenario_id), "error"
        msg = N_("There is no scenario %(name)s.")
    if _is_htmx(request):
        t = templates(request)
        ctx = planner_scenarios_context(ws, t.gettext(request))
        ctx["scenario_notice"] = {"msg": msg, "params": {"name": name}, "level": level}
        return t.render(request, "_planner_scenarios.html", ctx)
    flash(request, msg, level, name=name)
    return redirect("/planner")


@router.post("/planner/scenarios/{scenario_id}/activate", response_class=HTMLResponse)
def planner_activate(
    request: Request, user: AnalystUser, ws: WorkspaceDep, scenario_id: int
) -> Response:
    """Make a scenario the active plan."""
    return _scenario_action(request, ws, "activate", scenario_id, user)


@router.post("/planner/scenarios/{scenario_id}/delete", response_class=HTMLResponse)
def planner_delete(
    request: Request, user: AnalystUser, ws: WorkspaceDep, scenario_id: int
) -> Response:
    """Delete a scenario."""
    return _scenario_action(request, ws, "delete", scenario_id, user)


# -- data ----------------------------------------------------------------------------------


def data_context(ws: Any) -> dict[str, Any]:
    return {
        "tables": ws.tables(),
        "history": services.import_history(ws, 20),
        "kinds": list(KINDS),
    }


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, user: ViewerUser, ws: WorkspaceDep) -> Response:
    return templates(request).render(request, "data.html", data_context(ws))


@router.post("/data/import", response_class=HTMLResponse)
def data_import(
    request: Request,
    user: AnalystUser,
    ws: WorkspaceDep,
    kind: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
    mapping: Annotated[str | None, Form(max_length=2000)] = None,
    wide: Annotated[bool, Form()] = False,
) -> Response:
    t = templates(request)
    name = services.safe_filename(file.filename)
    report: ImportReport
    if kind not in KINDS:
        report = services.rejected(kind, name, f"unknown table kind {kind!r}")
    else:
        try:
            report = services.import_upload(
                ws, kind, file, mapping_text=mapping, wide=wide, user=user
            )
        except services.UploadTooLarge as exc:
            report = services.rejected(kind, name, str(exc))
    ctx = data_context(ws)
    ctx.update(report=report, form={"kind": kind, "mapping": mapping or "", "wide": wide})
    if request.headers.get("HX-Request") == "true":
        return t.render(request, "_import_result.html", {**ctx, "oob": True})
    return t.render(request, "data.html", ctx, status_code=200 if report.ok else 422)


# -- users ---------------------------------------------------------------------------------
@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, admin: AdminUser, ws: WorkspaceDep) -> Response:
    with ws.state.session() as s:
        users = list_users(s)
    return templates(request).render(request, "users.html", {"users": users, "roles": ROLES})


@router.post("/users")
def users_add(
    request: Request,
    admin: AdminUser,
    ws: WorkspaceDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()] = "viewer",
    display_name: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = UserCreate.model_validate(
            {
                "username": username.strip(),
                "password": password,
                "role": role,
                "display_name": display_name.strip() or None,
            }
        )
        services.add_user(ws, data, actor=admin.username)
    except ValidationError:
        flash(
            request,
            N_("Check the form: the username needs 2-80 characters and the password at least 8."),
            "error",
        )
    except (AccountError, services.Conflict) as exc:
        flash(request, str(exc), "error", raw=True)
    else:
        flash(request, N_("User %(name)s added."), name=data.username)
    return redirect("/users")


@router.post("/users/{username}/role")
def users_set_role(
    request: Request,
    admin: AdminUser,
    ws: WorkspaceDep,
    username: str,
    role: Annotated[str, Form()],
) -> Response:
    if role not in ROLES:
        flash(request, N_("Unknown role."), "error")
        return redirect("/users")
    try:
        user = services.update_user(
            ws,
            username,
            UserUpdate.model_validate({"role": role}),
            actor=admin.username,
        )
    except (AccountError, services.Conflict) as exc:
        flash(request, str(exc), "error", raw=True)
    else:
        if user is None:
            flash(request, N_("No such user."), "error")
        else:
            flash(request, N_("%(name)s is now %(role)s."), name=username, role=role)
    return redirect("/users")


# -- settings ------------------------------------------------------------------------------
@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, admin: AdminUser, ws: WorkspaceDep) -> Response:
    ctx = {"settings": services.workspace_settings(ws)}
    return templates(request).render(request, "settings.html", ctx)


@router.post("/settings")
def settings_save(
    request: Request,
    admin: AdminUser,
    ws: WorkspaceDep,
    currency: Annotated[str, Form()],
    name: Annotated[str, Form()],
    timezone: Annotated[str, Form()],
    journey_sample_rate: Annotated[float, Form()] = 1.0,
) -> Response:
    try:
        update = WorkspaceSettingsUpdate(
            currency=currency.strip().upper(),
            name=name.strip(),
            timezone=timezone.strip(),
            journey_sample_rate=journey_sample_rate,
        )
        services.update_settings(ws, update, actor=admin.username)
    except ValidationError:
        flash(
            request,
            N_(
                "Check the form: the currency is a 3-letter code such as CNY and the journey "
                "sample rate a number above 0 and at most 1."
            ),
            "error",
        )
    except ValueError as exc:
        flash(request, str(exc), "error", raw=True)
    else:
        flash(request, N_("Settings saved."))
    return redirect("/settings")


def login_redirect(request: Request) -> Response:
    """Where an anonymous page request goes (htmx requests are told to navigate)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = "/login?next=" + quote(target, safe="/")
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return redirect(url)
