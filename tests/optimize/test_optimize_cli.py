"""`mixwise optimize`, `mixwise scenario …` and `mixwise reallocate` on a workspace run and on
curves files: JSON with the plan, the interval and the reasons; clear errors; nothing saved on
bad input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from mixwise.cli import main
from mixwise.mmm.runs import save_run
from mixwise.optimize.scenarios import list_scenarios
from mixwise.workspace import Workspace


@pytest.fixture
def ws_with_run(workspace: Workspace, tiny_mmm: Any) -> Workspace:
    save_run(workspace, tiny_mmm)
    return workspace


def env_of(ws: Workspace) -> dict[str, str]:
    """The CLI finds a PostgreSQL-backed workspace's state through MIXWISE_DATABASE_URL."""
    url = ws.state.url
    return {} if url.startswith("sqlite") else {"MIXWISE_DATABASE_URL": url}


def run(ws: Workspace, *args: str) -> Any:
    return CliRunner().invoke(
        main, [*args, "-w", str(ws.path)], env=env_of(ws), catch_exceptions=False
    )


def test_optimize_prints_the_plan_interval_and_reasons_as_json(ws_with_run: Workspace) -> None:
    out = run(ws_with_run, "optimize", "--budget", "400", "--force", "--draws", "30", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    plan = data["plan"]
    (period,) = plan  # one week, spent at a steady rate, and it says so
    assert sum(plan[period].values()) == pytest.approx(400.0, rel=1e-5)
    assert set(plan[period]) == {"tv", "search"}
    k = data["kpi"]
    assert k["lower"] <= k["mean"] <= k["upper"]
    assert data["reasons"] and all(isinstance(r, str) for r in data["reasons"])
    assert "one week" in data["assumptions"][0]
    assert data["run"] == 1 and data["rules"][0] == {"rule": "total budget = 400", "ok": True}


def test_an_unusable_run_is_refused_without_force(ws_with_run: Workspace) -> None:
    out = CliRunner().invoke(
        main, ["optimize", "--budget", "400", "-w", str(ws_with_run.path)], env=env_of(ws_with_run)
    )
    assert out.exit_code == 1 and "not usable" in out.output and "--force" in out.output


def test_text_output_save_export_and_scenarios(ws_with_run: Workspace, tmp_path: Path) -> None:
    export = tmp_path / "plan.csv"
    out = run(
        ws_with_run,
        "optimize",
        "--budget",
        "800",
        "--periods",
        "2",
        "--force",
        "--draws",
        "30",
        "--constraint",
        "tv>=25%",
        "--save",
        "q1",
        "--export",
        str(export),
    )
    assert out.exit_code == 0, out.output
    assert "predicted incremental revenue" in out.output and "rule ok  tv>=25%" in out.output
    assert "saved as scenario 1" in out.output
    frame = pd.read_csv(export)
    assert list(frame.columns) == ["scenario", "period", "start", "end", "channel", "amount"]
    assert len(frame) == 4 and frame["amount"].sum() == pytest.approx(800.0, abs=0.05)
    assert frame.loc[frame.channel == "tv", "amount"].sum() >= 0.25 * 800 - 0.05

    out = run(ws_with_run, "scenario", "what-if", "current", "--periods", "2", "--force")
    assert out.exit_code == 0, out.output
    out = run(
        ws_with_run,
        "scenario",
        "what-if",
        "tv-only",
        "--amount",
        "tv=800",
        "--periods",
        "2",
        "--force",
        "--json",
    )
    assert json.loads(out.output)["spend"] == pytest.approx(800.0)
    assert [s.name for s in list_scenarios(ws_with_run)] == ["q1", "current", "tv-only"]

    out = run(ws_with_run, "scenario", "compare", "q1", "current", "tv-only", "--json")
    table = json.loads(out.output)
    assert set(table) == {"q1", "current", "tv-only"}
    # the optimized plan predicts at least as much as the what-if of the same budget
    assert table["q1"]["kpi"] >= table["tv-only"]["kpi"] - 1e-6

    xlsx = tmp_path / "q1.xlsx"
    assert run(ws_with_run, "scenario", "export", "q1", str(xlsx)).exit_code == 0
    assert pd.read_excel(xlsx)["amount"].sum() == pytest.approx(800.0, abs=0.05)

    assert run(ws_with_run, "scenario", "activate", "q1").exit_code == 0
    out = run(ws_with_run, "reallocate", "--force", "--max-change", "0.1", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["reviewed"] == "q1"
    assert data["reference_spend"] == pytest.approx(800.0, abs=0.05)
    assert data["spend"] == pytest.approx(800.0, abs=0.05)
    for name, row in data["channels"].items():  # every channel within ±10 % of the plan
        assert abs(row["spend"] - row["reference"]) <= 0.1 * row["reference"] + 1e-3, name
    out = run(ws_with_run, "scenario", "list")
    assert "* q1" in out.output
    assert run(ws_with_run, "scenario", "delete", "tv-only").exit_code == 0
    assert [s.name for s in list_scenarios(ws_with_run)] == ["q1", "current"]


def test_frontier(ws_with_run: Workspace) -> None:
    out = run(
        ws_with_run,
        "optimize",
        "--budget",
        "400",
        "--frontier",
        "--force",
        "--draws",
        "20",
        "--starts",
        "2",
        "--json",
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["step"] for r in rows] == pytest.approx(
        [-0.5, -0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4, 0.5]
    )
    kpi = [r["kpi"] for r in rows]
    assert all(
        b >= a - 1e-6 * abs(a) for a, b in itertools.pairwise(kpi)
    )  # more money never less KPI


def test_curves_files_need_no_workspace(tmp_path: Path) -> None:
    curves = tmp_path / "curves.csv"
    curves.write_text(
        "channel,half,slope,max_effect,current_spend\ntv,50,1,300,40\nsearch,20,1,120,20\n"
    )
    out = CliRunner().invoke(
        main, ["optimize", "--budget", "60", "--curves", str(curves), "--json"]
    )
    assert out.exit_code == 0, out.output
    assert sum(json.loads(out.output)["plan"]["period 1"].values()) == pytest.approx(60.0, rel=1e-5)
    # without --budget: what the current plan (40 + 20 a period) spends over the horizon
    out = CliRunner().invoke(
        main, ["optimize", "--curves", str(curves), "--periods", "3", "--json"]
    )
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    assert got["request"]["budget"] == pytest.approx(180.0)
    assert sum(sum(p.values()) for p in got["plan"].values()) == pytest.approx(180.0, rel=1e-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["optimize", "--frontier", "--save", "x"], "--frontier does not take"),
        (["optimize", "--budget", "10", "--group", "brand"], "expected NAME=channel,channel"),
        (["optimize", "--budget", "10", "--objective", "profit"], "needs a margin"),
        (["optimize", "--budget", "10", "--export", "x.txt"], ".csv or .xlsx"),
        (
            ["optimize", "--budget", "10", "--force", "-c", "radio>=5"],
            "'radio' is neither a channel",
        ),
        (
            ["optimize", "--budget", "10", "--force", "-c", "tv>=6", "-c", "search>=6"],
            "cannot all hold: total budget = 10; tv>=6; search>=6",
        ),
        (
            ["optimize", "--budget", "10", "--force", "--periods", "1999-01"],
            "before the model's data end",
        ),
        (["scenario", "show", "nope"], "no scenario 'nope'"),
        (["scenario", "what-if", "x", "--amount", "tv=-3", "--force"], "expected channel=amount"),
        (
            ["scenario", "what-if", "x", "--amount", "radio=3", "--force"],
            "unknown channels ['radio']",
        ),
        (["reallocate", "--force"], "no active plan"),
    ],
)
def test_bad_input_is_named_and_saves_nothing(
    ws_with_run: Workspace, args: list[str], message: str
) -> None:
    out = CliRunner().invoke(main, [*args, "-w", str(ws_with_run.path)], env=env_of(ws_with_run))
    assert out.exit_code != 0 and message in out.output, out.output
    assert list_scenarios(ws_with_run) == []


def test_no_run_says_how_to_get_one(workspace: Workspace) -> None:
    out = CliRunner().invoke(
        main, ["optimize", "--budget", "10", "-w", str(workspace.path)], env=env_of(workspace)
    )
    assert out.exit_code == 1 and "mixwise mmm fit" in out.output
