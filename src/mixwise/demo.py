"""The demo workspace: the simulator's market loaded into a workspace, with demo logins.

``mixwise demo`` calls :func:`build_demo`. The data are validated against the same contracts
as any import (so the demo proves the simulator speaks them), then replace the workspace's
tables in one transaction, so building twice refreshes instead of duplicating. Then the
marketing mix model is fitted on the demo's weekly data (NUTS, :data:`DEMO_MMM`; ~15 s on
two cores) and stored as a run, so the MMM page and ``mixwise mmm show`` have
results at once; a refresh fits again only when the workspace has no MMM run yet.
Last, the budget of the quarter after the data is planned on that run (:func:`_plan`): the
current plan and the optimizer's, under a brand/performance rule, saved as scenarios (the
optimized one active), so the Planner page, ``mixwise scenario …`` and
``mixwise reallocate`` have a plan at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mixwise.accounts import AccountError, create_user, get_user
from mixwise.accounts.users import set_password, set_role
from mixwise.config import Settings
from mixwise.store.ingest import parse_frame
from mixwise.store.schemas import KINDS
from mixwise.workspace import MARKER, Workspace, WorkspaceError

DEMO_DIR = "mixwise-demo"
DEMO_PASSWORD = "mixwise-demo"
DEMO_USERS = (("demo", "admin"), ("analyst", "analyst"), ("viewer", "viewer"))
DEMO_SEED = 20261123
DEMO_STEPS = (
    "simulating the market",
    "validating the tables",
    "loading the warehouse",
    "creating demo logins",
    "fitting the marketing mix model",
    "planning the next quarter's budget",
)
# The demo's MMM fit: the CLI's defaults (4 chains x 1000 draws after 1000 warm-up draws).
DEMO_MMM: dict[str, Any] = {"chains": 4, "draws": 1000, "warmup": 1000, "seed": 0}

# The demo's plan: channel groups and the rules a brand/performance split would impose.
DEMO_GROUPS: dict[str, tuple[str, ...]] = {
    "brand": ("tv", "video", "social"),
    "performance": ("brand_search", "nonbrand_search", "display", "affiliate", "email"),
}
DEMO_RULES = ("brand>=40%", "performance>=30%")

Step = Callable[[str], None]
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class DemoResult:
    path: Path
    rows: dict[str, int]
    users: tuple[tuple[str, str], ...]
    password: str
    mmm_run: int | None = None  # the MMM run fitted by this build (None: skipped or kept)
    scenarios: tuple[str, ...] = ()  # the scenarios this build saved


def build_demo(
    path: str | Path = DEMO_DIR,
    *,
    settings: Settings | None = None,
    seed: int = DEMO_SEED,
    step: Step | None = None,
    fit_mmm: bool = True,
    progress: Progress | None = None,
) -> DemoResult:
    """Create or refresh the demo workspace at ``path``.

    ``fit_mmm``: fit and store the marketing mix model when the workspace has no MMM run yet
    (``progress(phase, fraction)`` follows the fit)."""
    from mixwise.simulate import MarketConfig, simulate_market

    say = step or (lambda _msg: None)
    root = Path(path)
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise WorkspaceError(f"{root} exists and is not a mixwise workspace; choose another path")
    say(DEMO_STEPS[0])
    config = MarketConfig.demo()
    market = simulate_market(config, seed=seed)
    frames = market.tables()
    say(DEMO_STEPS[1])
    clean: dict[str, pd.DataFrame] = {}
    for name, kind in KINDS.items():
        parsed, issues, _ = parse_frame(frames[name], kind, max_errors=5)
        if issues.count:
            detail = "; ".join(i.describe(name) for i in issues.items)
            raise RuntimeError(f"simulated {name} broke its contract: {detail}")
        clean[name] = parsed
    say(DEMO_STEPS[2])
    with Workspace.init(root, settings) as ws:
        ws.warehouse.replace_all(clean)
        ws.set_setting("currency", config.currency, actor="demo")
        ws.set_setting("name", "mixwise demo", actor="demo")
        # The demo's journeys are a user panel of the simulated market: tell attribution which
        # share of users they cover, so its CPA and ROAS use the panel's share of the spend.
        panel = len(clean["conversions"]) / max(float(clean["outcomes"]["conversions"].sum()), 1.0)
        ws.set_setting("journey_sample_rate", f"{min(panel, 1.0):.6g}", actor="demo")
        say(DEMO_STEPS[3])
        with ws.state.session() as s:
            for username, role in DEMO_USERS:
                if get_user(s, username) is None:
                    try:
                        create_user(s, username, DEMO_PASSWORD, role, actor="demo")
                    except AccountError as exc:  # pragma: no cover - constants are valid
                        raise RuntimeError(str(exc)) from exc
                else:
                    set_password(s, username, DEMO_PASSWORD)
                    set_role(s, username, role, actor="demo")
        rows = {s.kind: s.rows for s in ws.tables()}
        run_id = None
        planned: tuple[str, ...] = ()
        if fit_mmm:
            say(DEMO_STEPS[4])
            run_id = _fit_mmm(ws, progress)
            say(DEMO_STEPS[5])
            planned = _plan(ws)
    return DemoResult(root, rows, DEMO_USERS, DEMO_PASSWORD, run_id, planned)


def _fit_mmm(ws: Workspace, progress: Progress | None) -> int | None:
    """Fit the demo's MMM (weekly revenue on every channel and control) unless a run exists."""
    from mixwise.mmm.data import MMMData
    from mixwise.mmm.fit import MMM
    from mixwise.mmm.runs import list_runs, save_run

    if list_runs(ws):
        return None
    data = MMMData.from_workspace(ws)
    model = MMM(progress=False, **DEMO_MMM).fit(data, on_progress=progress)
    return save_run(ws, model)


def quarter_after(day: pd.Timestamp) -> str:
    """The first calendar quarter that starts on or after ``day`` (e.g. ``"2026-Q1"``)."""
    q = (day.month - 1) // 3 + 1
    start = pd.Timestamp(year=day.year, month=3 * q - 2, day=1)
    if start < day.normalize():
        q, year = (1, day.year + 1) if q == 4 else (q + 1, day.year)
    else:
        year = day.year
    return f"{year}-Q{q}"


def _plan(ws: Workspace) -> tuple[str, ...]:
    """Plan the quarter after the data on the latest MMM run, unless scenarios exist or the
    run is not usable: the current plan (the data's spend rate) and the optimizer's plan for
    the same money under :data:`DEMO_RULES`, saved as scenarios; the optimized one active."""
    from mixwise.mmm.response import UnusableModelError
    from mixwise.mmm.runs import RunNotFound
    from mixwise.optimize.allocate import allocate, evaluate_plan
    from mixwise.optimize.scenarios import list_scenarios, save_scenario, set_active
    from mixwise.optimize.sources import from_run

    if list_scenarios(ws):
        return ()
    try:
        rm, run_id = from_run(ws)
    except (RunNotFound, UnusableModelError):
        return ()
    if rm.next_date is None:  # pragma: no cover - MMM runs always have dates
        return ()
    quarter = quarter_after(rm.next_date)
    # from_run has refused an unusable run already; force only skips the second check.
    now = evaluate_plan(rm, None, periods=quarter, force=True)
    best = allocate(
        rm, now.spend, list(DEMO_RULES), periods=quarter, groups=DEMO_GROUPS, force=True
    )
    names = (f"current {quarter}", f"optimized {quarter}")
    save_scenario(ws, names[0], now, kind="current", run_id=run_id, actor="demo")
    save_scenario(ws, names[1], best, kind="optimized", run_id=run_id, actor="demo")
    set_active(ws, names[1], actor="demo")
    return names
