"""The ``mixwise`` command line: thin commands over the Python API.

Every command is documented in ``docs/cli.md``; ``tests/test_docs.py`` fails when a command or
option is missing there.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from mixwise.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


def workspace_option(func: F) -> F:
    return click.option(
        "--workspace",
        "-w",
        "workspace_dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="MIXWISE_HOME",
        default=None,
        help="Workspace directory [env MIXWISE_HOME; default ./mixwise-workspace].",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def _names(text: str | None) -> list[str]:
    """A comma-separated option as a list of names."""
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@contextmanager
def _open_workspace(path: Path | None) -> Iterator[Any]:
    from mixwise.workspace import Workspace, WorkspaceError

    try:
        ws = Workspace.open(path)
    except (WorkspaceError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield ws
    finally:
        ws.close()


@contextmanager
def _stages(
    stages: Sequence[str], label: str, *, quiet: bool = False
) -> Iterator[Callable[[str], None]]:
    """A progress bar over named stages; the callback is told each stage as it starts, and
    ``callback.detail(phase, fraction)`` shows how far the current stage is."""
    if quiet:
        quiet_step: Any = lambda _stage: None  # noqa: E731
        quiet_step.detail = lambda _phase, _fraction: None
        yield quiet_step
        return
    with click.progressbar(
        length=len(stages), label=label, item_show_func=lambda s: s, file=sys.stderr
    ) as bar:
        started = False
        current = ""

        def step(stage: str) -> None:
            nonlocal started, current
            bar.update(1 if started else 0, stage)  # a new stage ends the one before it
            started = True
            current = stage

        def detail(phase: str, fraction: float) -> None:
            bar.update(0, f"{current}: {phase} {fraction:.0%}")

        step.detail = detail  # type: ignore[attr-defined]
        yield step
        bar.update(len(stages) - bar.pos, "done")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mixwise")
def main() -> None:
    """mixwise: what did each channel really return, where should the next budget go, and
    are we spending it as planned?

    \b
    Start with the demo:
      mixwise demo              build ./mixwise-demo and open it in the browser
    Or your own data:
      mixwise init
      mixwise ingest media spend.csv --map spend=cost
      mixwise tables
    """


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@json_option
def init(directory: Path | None, as_json: bool) -> None:
    """Create a workspace in DIRECTORY (default: $MIXWISE_HOME or ./mixwise-workspace).

    \b
    Examples:
      mixwise init
      mixwise init ~/marketing/acme
      MIXWISE_DATABASE_URL=postgresql+psycopg://me@db/mixwise mixwise init team-ws
    """
    from mixwise.workspace import Workspace, WorkspaceError

    try:
        ws = Workspace.init(directory)
    except (WorkspaceError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    with ws:
        info = {"workspace": str(ws.path.resolve()), "state": _redacted(ws.state.url)}
        info["warehouse"] = str(ws.warehouse.path)
    if as_json:
        _emit(info)
    else:
        click.echo(f"Workspace ready at {info['workspace']}")
        click.echo("Next: mixwise user add NAME --role admin, then mixwise ingest KIND FILE")


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-serve", is_flag=True, help="Only build the demo workspace; do not serve.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to serve on.")
@click.option("--seed", default=None, type=int, help="Simulator seed (default: fixed).")
@click.option(
    "--no-mmm",
    is_flag=True,
    help="Skip the marketing mix model fit and the plan (the MMM and Planner pages then "
    "start empty).",
)
@json_option
def demo(
    directory: Path | None,
    no_serve: bool,
    host: str,
    port: int,
    seed: int | None,
    no_mmm: bool,
    as_json: bool,
) -> None:
    """Build (or refresh) a demo workspace from the market simulator and serve it.

    DIRECTORY defaults to ./mixwise-demo. The command prints the URL and the demo logins.
    Building fits the marketing mix model on the demo data (~15 s on two cores;
    only when the workspace has no MMM run yet), so its page has results at once, and
    plans the next quarter's budget on it (the current and the optimized plan, saved as
    scenarios).

    \b
    Examples:
      mixwise demo
      mixwise demo --no-serve
      mixwise demo /tmp/demo --port 8080
      mixwise demo --no-mmm          (seconds: skip the MMM fit)
    """
    from mixwise.demo import DEMO_DIR, DEMO_SEED, DEMO_STEPS, build_demo

    target = directory or Path(DEMO_DIR)
    steps = DEMO_STEPS if not no_mmm else DEMO_STEPS[:-2]
    try:
        with _stages(steps, "Building the demo workspace", quiet=as_json) as step:
            result = build_demo(
                target,
                seed=seed or DEMO_SEED,
                step=step,
                fit_mmm=not no_mmm,
                progress=step.detail,  # type: ignore[attr-defined]
            )
    except Exception as exc:
        raise click.ClickException(str(exc)) from exc
    url = f"http://{host}:{port}/"
    if as_json:
        _emit(
            {
                "workspace": str(result.path.resolve()),
                "rows": result.rows,
                "users": [{"username": u, "role": r} for u, r in result.users],
                "password": result.password,
                "mmm_run": result.mmm_run,
                "scenarios": list(result.scenarios),
                "url": None if no_serve else url,
            }
        )
    else:
        click.echo(f"Demo workspace: {result.path.resolve()}")
        for kind, rows in result.rows.items():
            click.echo(f"  {kind:<12} {rows:>9,} rows")
        users = ", ".join(f"{u} ({r})" for u, r in result.users)
        click.echo(f"Logins: {users}; password: {result.password}")
        if result.scenarios:
            click.echo(f"Planned: {', '.join(result.scenarios)} (mixwise scenario compare)")
    if no_serve:
        return
    _serve(result.path, host, port, demo_login=("demo", result.password))


@main.command()
@click.argument("kind")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@workspace_option
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="TARGET=SOURCE",
    help="Read contract column TARGET from the file's column SOURCE (repeatable).",
)
@click.option("--wide", is_flag=True, help="Media file with one spend column per channel.")
@click.option(
    "--channels",
    default=None,
    help="With --wide: comma-separated spend columns (default: every non-key column).",
)
@click.option("--currency", default=None, help="Currency of spend when the file has none.")
@click.option("--sheet", default=None, help="Excel sheet name (default: the first sheet).")
@json_option
def ingest(
    kind: str,
    file: Path,
    workspace_dir: Path | None,
    mappings: tuple[str, ...],
    wide: bool,
    channels: str | None,
    currency: str | None,
    sheet: str | None,
    as_json: bool,
) -> None:
    """Validate FILE (CSV, TSV, Parquet or Excel) as table KIND and import it.

    KIND is one of: media, outcomes, controls, touchpoints, conversions, paths, orders,
    leads. A file with any problem is rejected whole: every problem is listed by row and
    column, nothing is written and the exit status is 1. Re-importing rows with the same
    key updates them.

    \b
    Examples:
      mixwise ingest media spend.csv
      mixwise ingest media export.xlsx --map spend=Cost --map date=Day
      mixwise ingest media weekly.csv --wide --map date=date_week --channels tv,radio
      mixwise ingest outcomes sales.parquet --json
    """
    from mixwise.store.schemas import KINDS

    if kind not in KINDS:
        raise click.BadParameter(f"choose one of: {', '.join(KINDS)}", param_hint="KIND")
    mapping: dict[str, str] = {}
    for item in mappings:
        target, sep, source = item.partition("=")
        if not sep or not target or not source:
            raise click.BadParameter(f"{item!r}: use TARGET=SOURCE", param_hint="--map")
        mapping[target.strip()] = source.strip()
    channel_list = _names(channels) or None
    from mixwise.store.ingest import STAGES

    with (
        _open_workspace(workspace_dir) as ws,
        _stages(STAGES, f"Importing {file.name}", quiet=as_json) as step,
    ):
        report = ws.ingest(
            kind,
            file,
            mapping=mapping,
            wide=wide,
            channels=channel_list,
            currency=currency,
            sheet=sheet,
            source=file.name,
            step=step,
        )
    if as_json:
        _emit(report.as_dict())
    else:
        click.echo(report.summary(), err=not report.ok)
        for line in report.lines():
            click.echo("  " + line, err=True)
        if report.ignored_columns:
            click.echo(f"  ignored columns: {', '.join(report.ignored_columns)}")
    if not report.ok:
        sys.exit(1)


@main.command()
@workspace_option
@json_option
def tables(workspace_dir: Path | None, as_json: bool) -> None:
    """List every table kind with its rows, date range and channels.

    \b
    Examples:
      mixwise tables
      mixwise tables -w mixwise-demo --json
    """
    with _open_workspace(workspace_dir) as ws:
        summaries = [s.as_dict() for s in ws.tables()]
    if as_json:
        _emit({"tables": summaries})
        return
    click.echo(f"{'kind':<12} {'rows':>10}  {'from':<10}  {'to':<10}  channels")
    for s in summaries:
        chans = ", ".join(s["channels"][:8]) + (" …" if len(s["channels"]) > 8 else "")
        click.echo(
            f"{s['kind']:<12} {s['rows']:>10,}  {s['first'] or '-':<10}  {s['last'] or '-':<10}"
            f"  {chans}"
        )


@main.command()
@workspace_option
@click.option(
    "--model",
    "model_names",
    default="all",
    show_default=True,
    help="Comma-separated models (first, last, last_non_direct, linear, position, custom, "
    "time_decay, w_shaped, markov, shapley, ...) or 'all'.",
)
@click.option(
    "--paths",
    "paths_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A ChannelAttribution-style path file instead of the workspace's journeys.",
)
@click.option(
    "--by",
    type=click.Choice(["conversions", "value"]),
    default="conversions",
    show_default=True,
    help="Credit conversions or conversion value.",
)
@click.option(
    "--lookback-days",
    type=float,
    default=None,
    help="Ignore touches older than this before the conversion.",
)
@click.option(
    "--conversion-window-days",
    type=float,
    default=None,
    help="Conversions later than this after the last touch are unattributed.",
)
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="First conversion day (YYYY-MM-DD).",
)
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Last conversion day (YYYY-MM-DD).",
)
@click.option(
    "--granularity",
    type=click.Choice(["channel", "campaign"]),
    default="channel",
    show_default=True,
    help="Credit channels or campaigns.",
)
@click.option(
    "--markov-order",
    type=click.IntRange(1, 4),
    default=1,
    show_default=True,
    help="Order of the Markov chain model.",
)
@click.option(
    "--half-life-days",
    type=float,
    default=7.0,
    show_default=True,
    help="Half-life of the time-decay model.",
)
@click.option(
    "--direct",
    default="direct",
    show_default=True,
    help="Comma-separated direct-like channels for last_non_direct.",
)
@click.option("--exclude-nulls", is_flag=True, help="Markov: ignore non-converting paths.")
@click.option(
    "--incrementality",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV of channel, factor[, lower, upper]: calibrate credits to incrementality.",
)
@json_option
def attribute(
    workspace_dir: Path | None,
    model_names: str,
    paths_file: Path | None,
    by: str,
    lookback_days: float | None,
    conversion_window_days: float | None,
    start: Any,
    end: Any,
    granularity: str,
    markov_order: int,
    half_life_days: float,
    direct: str,
    exclude_nulls: bool,
    incrementality: Path | None,
    as_json: bool,
) -> None:
    """Attribute conversions to channels with every model, side by side.

    Uses the workspace's touchpoints and conversions (costs from its media spend), or a path
    file in ChannelAttribution's form (path, conversions / total_conversions, nulls /
    total_null, value / total_conversion_value).

    \b
    Examples:
      mixwise attribute -w mixwise-demo
      mixwise attribute --model first,last,markov --markov-order 3 --json
      mixwise attribute --paths paths.csv --model all --json
      mixwise attribute --lookback-days 30 --start 2025-01-01 --end 2025-03-31
      mixwise attribute --incrementality lift_tests.csv
    """
    from mixwise.attribution.api import attribute as run
    from mixwise.attribution.calibration import IncrementalityError
    from mixwise.attribution.inputs import PathFileError

    models: Any = "all" if model_names == "all" else _names(model_names)
    params: dict[str, dict[str, Any]] = {
        "markov": {"order": markov_order, "include_nulls": not exclude_nulls},
        "time_decay": {"half_life_days": half_life_days},
        "last_non_direct": {"direct": _names(direct)},
    }
    options: dict[str, Any] = {
        "by": by,
        "params": params,
        "lookback_days": lookback_days,
        "conversion_window_days": conversion_window_days,
        "start": start.date() if start else None,
        "end": end.date() if end else None,
        "granularity": granularity,
        "incrementality": incrementality,
    }
    try:
        if paths_file is not None:
            result = run(paths_file, models, **options)
        else:
            with _open_workspace(workspace_dir) as ws:
                result = run(ws, models, **options)
    except (PathFileError, IncrementalityError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _emit(result.to_dict())
        return
    _print_attribution(result)


def _print_attribution(result: Any) -> None:
    comp = result.comparison
    click.echo(
        f"{result.total_conversions:,.0f} conversions, value {result.total_value:,.2f}"
        + (f" {result.currency}" if result.currency else "")
        + (
            f"; {result.unattributed:,} conversions had no touch to credit"
            if result.unattributed
            else ""
        )
    )
    if comp.empty:
        click.echo("No converting paths to attribute.")
        return
    models = result.models
    widths = [max(6, len(m)) + 1 for m in models]
    click.echo(f"Share of {result.by} (%) per model:")
    head = "".join(f"{m:>{w}}" for m, w in zip(models, widths, strict=True))
    click.echo(f"  {'channel':<18}{head}{'spread':>8}")
    for channel, row in comp.iterrows():
        cells = "".join(f"{100 * row[m]:>{w}.1f}" for m, w in zip(models, widths, strict=True))
        click.echo(f"  {channel!s:<18}{cells}{100 * row['spread']:>8.1f}")
    for note in result.disagreements():
        click.echo("  * " + note)
    for name, reason in result.skipped.items():
        click.echo(f"  (skipped {name}: {reason})")
    cal = result.calibrated_comparison
    if not cal.empty:
        click.echo("Calibrated (incremental) conversions per model:")
        click.echo(f"  {'channel':<18}{head}")
        for channel, row in cal.iterrows():
            cells = "".join(
                f"{row[m]:>{w},.0f}" if row[m] == row[m] else f"{'?':>{w}}"
                for m, w in zip(models, widths, strict=True)
            )
            click.echo(f"  {channel!s:<18}{cells}")


@main.command()
@workspace_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to serve on.")
def serve(workspace_dir: Path | None, host: str, port: int) -> None:
    """Serve the web app and the REST API (/api/v1) for a workspace.

    \b
    Examples:
      mixwise serve
      mixwise serve -w mixwise-demo --port 8080
      mixwise serve --host 0.0.0.0   # all interfaces; put HTTPS in front
    """
    _serve(workspace_dir, host, port)


def _serve(
    path: Path | None, host: str, port: int, demo_login: tuple[str, str] | None = None
) -> None:
    from mixwise.web import serve as serve_app

    with _open_workspace(path) as ws:
        try:
            ws.secret_key()
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Serving mixwise at http://{host}:{port}/  (Ctrl+C to stop)")
        if demo_login:
            click.echo(f"Log in as {demo_login[0]} / {demo_login[1]}")
        serve_app(ws, host=host, port=port)


@main.group()
def mmm() -> None:
    """Bayesian marketing mix model: fit, then read ROI with intervals."""


@mmm.command("fit")
@workspace_option
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Wide file (CSV, TSV, Parquet, Excel): one row per period, one spend column per "
    "channel. Without it, the workspace's media, outcomes and controls.",
)
@click.option("--date", "date_column", default="date", show_default=True, help="Date column.")
@click.option("--kpi", default="revenue", show_default=True, help="KPI column (revenue, …).")
@click.option(
    "--geo",
    "geo_column",
    default=None,
    help="Geo column of the file: one row per period and geo, fitted as a geo panel.",
)
@click.option(
    "--by-geo",
    is_flag=True,
    help="Fit the workspace's data as a geo panel (one series per outcomes geo).",
)
@click.option("--channels", default=None, help="Spend columns or channels, comma-separated.")
@click.option("--controls", default=None, help="Control columns or names, comma-separated.")
@click.option(
    "--frequency",
    type=click.Choice(["D", "W"]),
    default=None,
    help="Daily or weekly periods (default: from the dates; weekly for a workspace).",
)
@click.option(
    "--method",
    type=click.Choice(["nuts", "map"]),
    default="nuts",
    show_default=True,
    help="nuts: full posterior; map: fast mode (mode + Laplace), not for the optimizer.",
)
@click.option("--chains", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--draws", default=1000, show_default=True, type=click.IntRange(10))
@click.option("--warmup", default=1000, show_default=True, type=click.IntRange(10))
@click.option(
    "--target-accept",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0.5, 0.999),
    help="NUTS target acceptance rate: higher means smaller steps and fewer divergences.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option(
    "--holdout",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Last periods left out of the fit (time-ordered holdout).",
)
@click.option(
    "--save/--no-save",
    default=None,
    help="Store the fitted run in the workspace (default: yes when fitting the workspace's "
    "data, no with --csv).",
)
@json_option
def mmm_fit(
    workspace_dir: Path | None,
    csv_file: Path | None,
    date_column: str,
    kpi: str,
    geo_column: str | None,
    by_geo: bool,
    channels: str | None,
    controls: str | None,
    frequency: str | None,
    method: str,
    chains: int,
    draws: int,
    warmup: int,
    target_accept: float,
    seed: int,
    holdout: int,
    save: bool | None,
    as_json: bool,
) -> None:
    """Fit the marketing mix model; print ROI, marginal ROI and contribution per channel
    with 90 % intervals, the diagnostics and the verdict.

    \b
    Examples:
      mixwise mmm fit --csv weekly.csv --date date --kpi revenue --channels tv,search,social
      mixwise mmm fit --csv robyn.csv --date DATE --kpi revenue --channels tv_S,ooh_S --json
      mixwise mmm fit -w mixwise-demo --channels tv,social,display --method map
      mixwise mmm fit --csv geos.csv --date date --geo region --kpi sales --channels tv,search
    """
    from mixwise.mmm.data import MMMData, MMMDataError

    try:
        if csv_file is not None:
            if not channels:
                raise click.UsageError("--channels is required with --csv")
            data = MMMData.from_wide_csv(
                csv_file,
                date=date_column,
                kpi=kpi,
                channels=_names(channels),
                controls=_names(controls),
                frequency=frequency,  # type: ignore[arg-type]
                geo=geo_column,
            )
        else:
            with _open_workspace(workspace_dir) as ws:
                data = MMMData.from_workspace(
                    ws,
                    kpi=kpi,
                    channels=_names(channels) or None,
                    controls=_names(controls) if controls is not None else None,
                    frequency=frequency or "W",  # type: ignore[arg-type]
                    geo_level="geo" if by_geo else "national",
                )
    except MMMDataError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    from mixwise.mmm.fit import MMM

    model = MMM(
        method=method,  # type: ignore[arg-type]
        chains=chains,
        draws=draws,
        warmup=warmup,
        target_accept=target_accept,
        seed=seed,
        holdout=holdout,
        progress=not as_json,
    )
    try:
        model.fit(data)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    summary = model.summary()
    if save if save is not None else csv_file is None:
        from mixwise.mmm.runs import save_run

        with _open_workspace(workspace_dir) as ws:
            summary["run"] = save_run(ws, model)
    if as_json:
        _emit(summary)
        return
    _print_mmm(summary)
    if "run" in summary:
        click.echo(f"saved as run {summary['run']} (mixwise mmm show {summary['run']})")
    if not model.verdict_.usable:
        sys.exit(2)


@mmm.command("show")
@click.argument("run", required=False, type=int)
@workspace_option
@json_option
def mmm_show(run: int | None, workspace_dir: Path | None, as_json: bool) -> None:
    """List the stored MMM runs and show one (the latest without RUN): its data range,
    settings, verdict, and ROI, marginal ROI and contribution with intervals.

    \b
    Examples:
      mixwise mmm show
      mixwise mmm show 3 --json
    """
    from mixwise.mmm.runs import RunNotFound, list_runs, show_run

    with _open_workspace(workspace_dir) as ws:
        try:
            info, summary = show_run(ws, run)
        except RunNotFound as exc:
            raise click.ClickException(str(exc)) from exc
        runs = list_runs(ws)
    if as_json:
        _emit({"run": info.as_dict(), "summary": summary, "runs": [r.as_dict() for r in runs]})
        return
    click.echo(f"{'run':>4}  {'created':<20}{'data':<25}{'method':<7}verdict")
    for r in runs:
        mark = "*" if r.id == info.id else " "
        click.echo(
            f"{mark}{r.id:>3}  {r.created_at[:19]:<20}{r.data_start + ' … ' + r.data_end:<25}"
            f"{r.method:<7}{'usable' if r.usable else 'do not use'}"
        )
    click.echo("")
    click.echo(f"run {info.id}:")
    _print_mmm(summary)


def _print_mmm(summary: dict[str, Any]) -> None:
    d = summary["data"]
    click.echo(
        f"{d['periods']} periods ({d['frequency']}) {d['start']} … {d['end']}, KPI {d['kpi']}"
        f"{' in ' + d['currency'] if d['currency'] else ''}; method {summary['method']}"
    )
    diag = summary["diagnostics"]
    if diag:
        rhat = "n/a" if diag["max_rhat"] is None else f"{diag['max_rhat']:.3f}"
        ess = "n/a" if diag["min_ess"] is None else f"{diag['min_ess']:.0f}"
        click.echo(
            f"R-hat max {rhat} ({diag['worst']}), ESS min {ess}, "
            f"divergences {diag['divergences']} ({diag['chains']} chains × {diag['draws']} draws)"
        )
    click.echo(f"verdict: {summary['verdict']['message']}")
    click.echo(
        f"{'channel':<20}{'ROI [90 % interval]':>28}{'marginal ROI':>22}{'contribution':>16}"
    )
    for name, roi in summary["roi"].items():
        mroi = summary["marginal_roi"][name]
        contrib = summary["contribution"][name]
        click.echo(
            f"{name:<20}{roi['mean']:>10.2f} [{roi['lower']:.2f}, {roi['upper']:.2f}]"
            f"{'':>4}{mroi['mean']:>12.2f}{'':>10}{contrib['mean']:>16,.0f}"
        )
    for name, syn in summary["synergy"].items():
        click.echo(f"synergy {name}: {syn['mean']:,.0f} [{syn['lower']:,.0f}, {syn['upper']:,.0f}]")
    by_geo = summary.get("roi_by_geo") or {}  # a panel (runs stored before it have none)
    if by_geo:
        channels = list(summary["roi"])
        click.echo("ROI by geo, mean [90 % interval] (geos by spend, largest first):")
        click.echo(f"{'geo':<16}" + "".join(f"{c[:20]:>22}" for c in channels))
        for geo, row in by_geo.items():  # in the fit's order: largest spend first
            cells = [row.get(c) for c in channels]
            click.echo(
                f"{geo[:15]:<16}"
                + "".join(
                    f"{'':>22}"
                    if r is None
                    else f"{r['mean']:>8.2f} [{r['lower']:.2f}, {r['upper']:.2f}]".rjust(22)
                    for r in cells
                )
            )
    for note in summary.get("notes") or []:  # runs stored before notes have none
        click.echo(f"note: {note}")


@main.command()
@click.option(
    "--budget",
    type=float,
    help="Money to allocate over the horizon (a cap with --up-to). Default: what the current "
    "plan spends over the horizon (the same money, split better).",
)
@click.option(
    "--periods",
    help="Horizon: 2026-01..2026-03 (months), 2026-W01..2026-W13, 2026-Q4, 2026-11, 2026, or a "
    "number of model periods. Default: one period of the model's frequency.",
)
@click.option(
    "--constraint",
    "-c",
    "constraints",
    multiple=True,
    help="A rule, repeatable: brand>=30%, brand=30%+-5%, tv>=100000, tv<=+20%, tv=current, "
    "roi>=2, roi[search]>=1.5, cpa<=40, period<=200000, tv/period<=50000.",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="A channel group rules may name, repeatable: brand=tv,video,social.",
)
@click.option(
    "--objective",
    type=click.Choice(["revenue", "conversions", "profit", "min-spend"]),
    default="revenue",
    show_default=True,
    help="Maximise the KPI (revenue or conversions), profit (needs --margin), or find the "
    "least spend reaching --target.",
)
@click.option("--margin", type=float, help="Profit per KPI unit (the profit objective).")
@click.option("--target", type=float, help="Incremental KPI to reach (the min-spend objective).")
@click.option(
    "--risk",
    default="mean",
    show_default=True,
    help="Summary over posterior draws: mean, q10 (10 %% quantile), cvar10 (worst 10 %% mean).",
)
@click.option("--up-to", is_flag=True, help="Spend at most the budget instead of exactly.")
@click.option("--run", type=int, help="MMM run to plan with (default: the latest).")
@click.option(
    "--curves",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Plan with Hill curves from a CSV (channel,half,slope,max_effect[,decay,current_spend]) "
    "instead of an MMM run.",
)
@click.option(
    "--points",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Plan with response points from a CSV (channel,spend,outcome[,current_spend]).",
)
@click.option("--force", is_flag=True, help="Use an MMM run whose verdict is 'do not use'.")
@click.option(
    "--draws",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Posterior draws to plan over (evenly thinned).",
)
@click.option(
    "--starts",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="Optimiser starts (curves are not concave).",
)
@click.option(
    "--frontier",
    is_flag=True,
    help="Instead of one plan: the best plan's predicted KPI and marginal ROI at budgets from "
    "-50 % to +50 % of --budget.",
)
@click.option("--save", "save_as", help="Save the plan as a named scenario in the workspace.")
@click.option(
    "--export",
    "export_to",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the plan (period, channel, amount) to a .csv or .xlsx file.",
)
@workspace_option
@json_option
def optimize(
    budget: float | None,
    periods: str | None,
    constraints: tuple[str, ...],
    groups: tuple[str, ...],
    objective: str,
    margin: float | None,
    target: float | None,
    risk: str,
    up_to: bool,
    run: int | None,
    curves: Path | None,
    points: Path | None,
    force: bool,
    draws: int,
    starts: int,
    frontier: bool,
    save_as: str | None,
    export_to: Path | None,
    workspace_dir: Path | None,
    as_json: bool,
) -> None:
    """Recommend how to split a budget across channels (and periods), with the predicted
    KPI and an interval, every rule checked, and the reason for each change against the
    current plan.

    \b
    Examples:
      mixwise optimize --budget 1000000
      mixwise optimize --budget 12000000 --periods 2026-10..2026-12 \\
          --group brand=tv,video --constraint "brand>=30%" --constraint "tv<=+20%"
      mixwise optimize --objective min-spend --target 5000000 --json
      mixwise optimize --budget 50000 --curves curves.csv
    """
    from mixwise.optimize import Objective, allocate
    from mixwise.optimize.constraints import parse_groups

    if curves and points:
        raise click.UsageError("give --curves or --points, not both")
    if export_to and export_to.suffix.lower() not in (".csv", ".xlsx"):
        raise click.UsageError("--export takes a .csv or .xlsx file name")
    try:
        group_map = parse_groups(groups)
    except ValueError as exc:
        raise click.UsageError(f"--{exc}") from exc
    try:
        goal = Objective(
            "min_spend" if objective == "min-spend" else objective,  # type: ignore[arg-type]
            margin=margin,
            target=target,
            risk=risk,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    if frontier and (objective == "min-spend" or save_as or export_to):
        raise click.UsageError("--frontier does not take --save, --export or min-spend")
    if save_as and (curves or points):
        raise click.UsageError("--save needs a workspace run; plans on curves files are not saved")
    options: dict[str, Any] = {
        "periods": periods,
        "groups": group_map,
        "starts": starts,
        "force": force,
    }
    source: dict[str, Any]
    with contextlib.ExitStack() as stack:
        if curves or points:
            from mixwise.optimize.sources import from_file

            path = curves or points
            rm = _call(from_file, path, "hill" if curves else "points")
            source = {"curves": str(path)}
        else:
            ws = stack.enter_context(_open_workspace(workspace_dir))
            rm, run_id = _response_model(ws, run, force, draws)
            source = {"run": run_id}
        if frontier:
            from mixwise.optimize.allocate import current_spend
            from mixwise.optimize.scenarios import frontier as efficient

            if budget is None:
                budget = _call(current_spend, rm, periods)
            table = _call(
                efficient,
                rm,
                float(budget),
                constraints=list(constraints),
                objective=goal,
                **options,
            )
            if as_json:
                _emit(json.loads(table.to_json(orient="records")))
            else:
                click.echo(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
            return
        result = _call(
            allocate,
            rm,
            budget,
            list(constraints),
            goal,
            budget_mode="up_to" if up_to else "exact",
            **options,
        )
        if save_as:
            from mixwise.optimize.scenarios import save_scenario

            source["scenario"] = _call(save_scenario, ws, save_as, result, run_id=run_id)
    if export_to:
        _write_plan(result.to_frame(save_as or "plan"), export_to)
        source["export"] = str(export_to)
    if as_json:
        _emit({**source, **result.to_dict()})
        return
    _print_allocation(result, source)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A domain call whose refusals (bad input, nothing by that name) become clean errors."""
    try:
        return fn(*args, **kwargs)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


def _response_model(ws: Any, run: int | None, force: bool, draws: int = 1000) -> Any:
    """``(response model, run id)`` of a stored MMM run, or a CLI error saying what to do."""
    from mixwise.mmm.response import UnusableModelError
    from mixwise.mmm.runs import RunNotFound
    from mixwise.optimize.sources import from_run

    try:
        return from_run(ws, run, force=force, draws=draws)
    except RunNotFound as exc:
        raise click.ClickException(
            f"{exc}; fit a model first (mixwise mmm fit) or plan with --curves FILE"
        ) from exc
    except UnusableModelError as exc:
        raise click.ClickException(f"{exc} (--force)") from exc


def _write_plan(frame: Any, path: Path) -> None:
    """A plan's rows (scenario, period, start, end, channel, amount) as .csv or .xlsx."""
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_excel(path, index=False, sheet_name="plan")


def _print_allocation(result: Any, source: dict[str, Any]) -> None:
    per = "ROI" if result.kpi_type == "revenue" else "KPI/spend"
    origin = f"run {source['run']}" if "run" in source else source.get("curves", "")
    hz = result.horizon
    click.echo(
        f"plan over {hz.labels[0]}{' … ' + hz.labels[-1] if hz.n_budget > 1 else ''} "
        f"({origin}, {result.solver['draws']} draws), objective {result.objective.kind} "
        f"({result.objective.risk})"
    )
    click.echo(
        f"{'channel':<20}{'current':>14}{'recommended':>14}{'change':>9}{per:>11}{'marginal':>10}"
    )
    for name, row in result.channels.iterrows():
        change = f"{row['change_pct']:+.0f} %" if row["reference"] > 0 else "new"
        roi = f"{row['roi']:.2f}" if row["spend"] > 0 else "–"
        click.echo(
            f"{name!s:<20}{row['reference']:>14,.0f}{row['spend']:>14,.0f}{change:>9}"
            f"{roi:>11}{row['marginal_roi']:>10.2f}"
        )
    click.echo(f"{'total':<20}{result.reference_spend:>14,.0f}{result.spend:>14,.0f}")
    if hz.n_budget > 1:
        click.echo("")
        click.echo(result.plan.round(0).to_string())
    k, ref = result.kpi, result.reference_kpi
    click.echo(
        f"predicted incremental {result.kpi_name}: {k['mean']:,.0f} [{k['lower']:,.0f}, "
        f"{k['upper']:,.0f}] (current plan: {ref['mean']:,.0f} [{ref['lower']:,.0f}, "
        f"{ref['upper']:,.0f}])"
    )
    for rule in result.rules:
        value = f" ({rule['value']:.3g})" if rule.get("value") is not None else ""
        click.echo(f"rule {'ok ' if rule['ok'] else 'NOT'} {rule['rule']}{value}")
    for reason in result.reasons:
        click.echo(f"why: {reason}")
    for text in result.assumptions:
        click.echo(f"assumption: {text}")
    if "scenario" in source:
        click.echo(f"saved as scenario {source['scenario']}")
    if "export" in source:
        click.echo(f"written to {source['export']}")


@main.group()
def scenario() -> None:
    """Named budget plans: list, show, compare side by side, export, activate, delete; the
    current plan and manual what-ifs (plans come from `mixwise optimize --save NAME`)."""


@scenario.command("list")
@workspace_option
@json_option
def scenario_list(workspace_dir: Path | None, as_json: bool) -> None:
    """List the saved scenarios (* marks the active plan).

    \b
    Examples:
      mixwise scenario list --json
    """
    from mixwise.optimize.scenarios import list_scenarios

    with _open_workspace(workspace_dir) as ws:
        items = list_scenarios(ws)
    if as_json:
        _emit([{k: v for k, v in i.as_dict().items() if k != "plan"} for i in items])
        return
    if not items:
        click.echo("no scenarios yet: mixwise optimize --budget AMOUNT --save NAME")
        return
    click.echo(f"  {'name':<24}{'kind':<11}{'spend':>14}{'predicted KPI':>16}  updated")
    for i in items:
        kpi = i.kpi.get("mean")
        click.echo(
            f"{'*' if i.active else ' '} {i.name:<24}{i.kind:<11}{i.spend:>14,.0f}"
            f"{(kpi if kpi is not None else float('nan')):>16,.0f}  {i.updated_at[:16]}"
        )


@scenario.command("show")
@click.argument("name")
@workspace_option
@json_option
def scenario_show(name: str, workspace_dir: Path | None, as_json: bool) -> None:
    """Show a scenario: its request, prediction, amounts per period and channel, reasons.

    \b
    Examples:
      mixwise scenario show q4 --json
    """
    from mixwise.optimize.scenarios import get_scenario

    with _open_workspace(workspace_dir) as ws:
        item = _call(get_scenario, ws, name)
    if as_json:
        _emit(item.as_dict())
        return
    r = item.result
    click.echo(f"scenario {item.name} ({item.kind}{', active' if item.active else ''})")
    k = r.get("kpi") or {}
    click.echo(
        f"spend {r.get('spend', 0):,.0f}; predicted incremental {r.get('kpi_name', 'KPI')} "
        f"{k.get('mean', 0):,.0f} [{k.get('lower', 0):,.0f}, {k.get('upper', 0):,.0f}]"
    )
    frame = item.frame()
    if not frame.empty:
        table = frame.pivot_table(index="period", columns="channel", values="amount", sort=False)
        click.echo(table.round(0).to_string())
    for reason in r.get("reasons") or []:
        click.echo(f"why: {reason}")


@scenario.command("compare")
@click.argument("names", nargs=-1, required=True)
@workspace_option
@json_option
def scenario_compare(names: tuple[str, ...], workspace_dir: Path | None, as_json: bool) -> None:
    """Scenarios side by side: spend, predicted KPI with interval, ROI, and per channel the
    amount and marginal ROI.

    \b
    Examples:
      mixwise scenario compare current q4 q4-more-tv
    """
    from mixwise.optimize.scenarios import compare, get_scenario

    with _open_workspace(workspace_dir) as ws:
        items = [_call(get_scenario, ws, n) for n in names]
    table = compare(items)
    if as_json:
        _emit(json.loads(table.to_json()))
        return
    click.echo(table.to_string(float_format=lambda v: f"{v:,.2f}"))


@scenario.command("export")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@workspace_option
def scenario_export(name: str, file: Path, workspace_dir: Path | None) -> None:
    """Write a scenario's amounts (scenario, period, start, end, channel, amount) to a .csv
    or .xlsx file.

    \b
    Examples:
      mixwise scenario export q4 q4-plan.xlsx
    """
    from mixwise.optimize.scenarios import get_scenario

    if file.suffix.lower() not in (".csv", ".xlsx"):
        raise click.UsageError("the file must end in .csv or .xlsx")
    with _open_workspace(workspace_dir) as ws:
        item = _call(get_scenario, ws, name)
    frame = item.frame()
    _write_plan(frame, file)
    click.echo(f"written {len(frame)} rows to {file}")


@scenario.command("activate")
@click.argument("name")
@workspace_option
def scenario_activate(name: str, workspace_dir: Path | None) -> None:
    """Make a scenario the active plan (the one `mixwise reallocate` reviews).

    \b
    Examples:
      mixwise scenario activate q4
    """
    from mixwise.optimize.scenarios import set_active

    with _open_workspace(workspace_dir) as ws:
        _call(set_active, ws, name, actor="cli")
    click.echo(f"{name} is the active plan")


@scenario.command("delete")
@click.argument("name")
@workspace_option
def scenario_delete(name: str, workspace_dir: Path | None) -> None:
    """Delete a scenario.

    \b
    Examples:
      mixwise scenario delete q4-draft
    """
    from mixwise.optimize.scenarios import delete_scenario

    with _open_workspace(workspace_dir) as ws:
        _call(delete_scenario, ws, name, actor="cli")
    click.echo(f"deleted {name}")


@scenario.command("what-if")
@click.argument("name")
@click.option(
    "--amount",
    "amounts",
    multiple=True,
    help="channel=amount over the horizon, repeatable (channels left out get nothing); "
    "without any, the current plan (the data's average spend rate).",
)
@click.option("--periods", help="Horizon, as for `mixwise optimize` (default one period).")
@click.option("--run", type=int, help="MMM run (default: the latest).")
@click.option("--force", is_flag=True, help="Use an MMM run whose verdict is 'do not use'.")
@workspace_option
@json_option
def scenario_what_if(
    name: str,
    amounts: tuple[str, ...],
    periods: str | None,
    run: int | None,
    force: bool,
    workspace_dir: Path | None,
    as_json: bool,
) -> None:
    """Predict a plan you write (or the current plan) and save it as scenario NAME.

    \b
    Examples:
      mixwise scenario what-if current
      mixwise scenario what-if more-tv --amount tv=400000 --amount search=150000
    """
    from mixwise.optimize.allocate import evaluate_plan
    from mixwise.optimize.scenarios import save_scenario

    plan: dict[str, float] = {}
    for text in amounts:
        channel, sep, value = text.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or not channel.strip() or not amount >= 0:
            raise click.UsageError(f"--amount {text!r}: expected channel=amount (>= 0)")
        plan[channel.strip()] = amount
    with _open_workspace(workspace_dir) as ws:
        rm, run_id = _response_model(ws, run, force)
        # No amounts: the current plan (the data's average spend rate).
        result = _call(evaluate_plan, rm, plan or None, periods=periods, force=force)
        kind = "manual" if plan else "current"
        scenario_id = _call(save_scenario, ws, name, result, kind=kind, run_id=run_id)
    if as_json:
        _emit({"scenario": scenario_id, "run": run_id, **result.to_dict()})
        return
    _print_allocation(result, {"run": run_id, "scenario": scenario_id})


@main.command()
@click.option(
    "--max-change",
    default=0.2,
    show_default=True,
    type=float,
    help="The most a channel may move from the plan, as a share (0.2 = ±20 %).",
)
@click.option("--scenario", "scenario_name", help="Plan to review (default: the active one).")
@click.option("--run", type=int, help="MMM run (default: the latest).")
@click.option("--force", is_flag=True, help="Use an MMM run whose verdict is 'do not use'.")
@click.option("--save", "save_as", help="Save the proposal as a scenario.")
@workspace_option
@json_option
def reallocate(
    max_change: float,
    scenario_name: str | None,
    run: int | None,
    force: bool,
    save_as: str | None,
    workspace_dir: Path | None,
    as_json: bool,
) -> None:
    """Propose changes to the active plan from the newest model run, each with its reason
    (for the monthly or quarterly review): same budget, periods and rules, every channel
    within ±MAX-CHANGE of its amount in the plan.

    \b
    Examples:
      mixwise reallocate
      mixwise reallocate --max-change 0.1 --save q4-review
    """
    from mixwise.optimize.scenarios import reallocate as propose
    from mixwise.optimize.scenarios import save_scenario

    with _open_workspace(workspace_dir) as ws:
        rm, run_id = _response_model(ws, run, force)
        base, result = _call(
            propose, ws, rm, max_change=max_change, scenario=scenario_name, force=force
        )
        source: dict[str, Any] = {"run": run_id, "reviewed": base.name}
        if save_as:
            source["scenario"] = _call(save_scenario, ws, save_as, result, run_id=run_id)
    if as_json:
        _emit({**source, **result.to_dict()})
        return
    click.echo(f"review of plan {base.name} with run {run_id}:")
    _print_allocation(result, source)


@main.group()
def user() -> None:
    """Manage local user accounts (roles: viewer < analyst < budget_owner < approver < admin)."""


@user.command("add")
@click.argument("username")
@workspace_option
@click.option(
    "--role",
    type=click.Choice(["viewer", "analyst", "budget_owner", "approver", "admin"]),
    default="viewer",
    show_default=True,
    help="Role of the new user.",
)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="MIXWISE_NEW_PASSWORD",
    help="Password (prompted when omitted; or env MIXWISE_NEW_PASSWORD).",
)
@json_option
def user_add(
    username: str, workspace_dir: Path | None, role: str, password: str, as_json: bool
) -> None:
    """Add a user.

    \b
    Examples:
      mixwise user add alice --role admin
      MIXWISE_NEW_PASSWORD=... mixwise user add bob --role analyst
    """
    from mixwise.accounts import AccountError, create_user

    with _open_workspace(workspace_dir) as ws:
        try:
            with ws.state.session() as s:
                u = create_user(s, username, password, role, actor="cli")
                out = {"username": u.username, "role": u.role}
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        _emit(out)
    else:
        click.echo(f"Added {out['username']} ({out['role']})")


@user.command("list")
@workspace_option
@json_option
def user_list(workspace_dir: Path | None, as_json: bool) -> None:
    """List users and their roles.

    \b
    Examples:
      mixwise user list
      mixwise user list --json
    """
    from mixwise.accounts import list_users

    with _open_workspace(workspace_dir) as ws, ws.state.session() as s:
        rows = [
            {
                "username": u.username,
                "role": u.role,
                "active": u.is_active,
                "created_at": u.created_at.isoformat(),
            }
            for u in list_users(s)
        ]
    if as_json:
        _emit({"users": rows})
        return
    for r in rows:
        click.echo(f"{r['username']:<24} {r['role']:<14} {'active' if r['active'] else 'disabled'}")


@user.command("set-role")
@click.argument("username")
@click.argument(
    "role", type=click.Choice(["viewer", "analyst", "budget_owner", "approver", "admin"])
)
@workspace_option
@json_option
def user_set_role(username: str, role: str, workspace_dir: Path | None, as_json: bool) -> None:
    """Change a user's role.

    \b
    Examples:
      mixwise user set-role bob approver
    """
    from mixwise.accounts import AccountError, set_role

    with _open_workspace(workspace_dir) as ws:
        try:
            with ws.state.session() as s:
                u = set_role(s, username, role, actor="cli")
                out = {"username": u.username, "role": u.role}
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        _emit(out)
    else:
        click.echo(f"{out['username']} is now {out['role']}")


@main.command("settings")
@click.argument("key", required=False)
@click.argument("value", required=False)
@workspace_option
@json_option
def settings_cmd(
    key: str | None, value: str | None, workspace_dir: Path | None, as_json: bool
) -> None:
    """Show or change workspace settings (currency, timezone, name).

    \b
    Examples:
      mixwise settings
      mixwise settings currency USD
      mixwise settings timezone Asia/Shanghai
    """
    from mixwise.workspace import WORKSPACE_DEFAULTS

    with _open_workspace(workspace_dir) as ws:
        if key is not None and key not in WORKSPACE_DEFAULTS:
            raise click.BadParameter(
                f"choose one of: {', '.join(WORKSPACE_DEFAULTS)}", param_hint="KEY"
            )
        if key and value is not None:
            try:
                ws.set_setting(key, value, actor="cli")
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
        keys = [key] if key else list(WORKSPACE_DEFAULTS)
        out = {k: ws.get_setting(k) for k in keys}
    if as_json:
        _emit(out)
    else:
        for k, v in out.items():
            click.echo(f"{k} = {v}")


def _redacted(url: str) -> str:
    from mixwise.workspace import _redact

    return _redact(url)


# Settings is imported so the docs test can find every environment setting from here.
__all__ = ["Settings", "main"]
