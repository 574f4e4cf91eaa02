"""`mixwise demo --no-serve` builds a workspace holding all eight kinds and a fitted MMM run,
and refreshes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mixwise import demo as demo_module
from mixwise.cli import main
from mixwise.store.schemas import KINDS


def test_demo_builds_then_refreshes_without_duplicating(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    runner = CliRunner()
    out = runner.invoke(
        main, ["demo", str(target), "--no-serve", "--no-mmm", "--json"], catch_exceptions=False
    )
    assert out.exit_code == 0, out.output
    built = json.loads(out.output)
    assert built["url"] is None and built["mmm_run"] is None
    assert {u["username"] for u in built["users"]} == {"demo", "analyst", "viewer"}

    tables = runner.invoke(main, ["tables", "-w", str(target), "--json"])
    rows = {t["kind"]: t["rows"] for t in json.loads(tables.output)["tables"]}
    assert set(rows) == set(KINDS)
    assert all(n > 0 for n in rows.values()), rows
    media = next(t for t in json.loads(tables.output)["tables"] if t["kind"] == "media")
    assert len(media["channels"]) >= 8

    again = runner.invoke(
        main, ["demo", str(target), "--no-serve", "--no-mmm"], catch_exceptions=False
    )
    assert again.exit_code == 0, again.output
    assert "password: mixwise-demo" in again.output
    tables = runner.invoke(main, ["tables", "-w", str(target), "--json"])
    assert {t["kind"]: t["rows"] for t in json.loads(tables.output)["tables"]} == rows

    users = runner.invoke(main, ["user", "list", "-w", str(target), "--json"])
    assert len(json.loads(users.output)["users"]) == 3


def test_demo_refuses_a_directory_that_is_not_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    out = CliRunner().invoke(main, ["demo", str(tmp_path), "--no-serve"])
    assert out.exit_code == 1 and "not a mixwise workspace" in out.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_demo_fits_the_mmm_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build stores an MMM run (the real fit with fewer draws, to stay fast) that
    `mmm show` reads; a refresh keeps it instead of fitting again."""
    monkeypatch.setitem(demo_module.DEMO_MMM, "draws", 40)
    monkeypatch.setitem(demo_module.DEMO_MMM, "warmup", 40)
    monkeypatch.setitem(demo_module.DEMO_MMM, "chains", 1)
    target = tmp_path / "demo"
    runner = CliRunner()
    out = runner.invoke(main, ["demo", str(target), "--no-serve", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    run = json.loads(out.output)["mmm_run"]
    assert isinstance(run, int)

    shown = runner.invoke(main, ["mmm", "show", "-w", str(target), "--json"])
    assert shown.exit_code == 0, shown.output
    shown_json = json.loads(shown.output)
    assert shown_json["run"]["id"] == run
    summary = shown_json["summary"]
    assert summary["method"] == "nuts" and summary["data"]["source"] == "workspace"
    assert len(summary["roi"]) == 8  # every demo channel, each with an interval
    assert all(r["lower"] <= r["median"] <= r["upper"] for r in summary["roi"].values())

    again = runner.invoke(main, ["demo", str(target), "--no-serve", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["mmm_run"] is None
    runs = runner.invoke(main, ["mmm", "show", "-w", str(target), "--json"])
    assert [r["id"] for r in json.loads(runs.output)["runs"]] == [run]


@pytest.mark.parametrize(
    ("day", "quarter"),
    [
        ("2025-12-29", "2026-Q1"),
        ("2026-01-01", "2026-Q1"),
        ("2026-01-05", "2026-Q2"),
        ("2026-09-30", "2026-Q4"),
    ],
)
def test_the_demo_plans_the_first_quarter_after_the_data(day: str, quarter: str) -> None:
    import pandas as pd

    assert demo_module.quarter_after(pd.Timestamp(day)) == quarter


def test_the_demo_plan_saves_the_current_and_the_optimized_scenario(
    workspace: object, tiny_mmm: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a usable run (the tiny fit, forced), the plan saves both scenarios for the same
    money, the optimized one active and predicting at least as much; a second call keeps them."""
    from mixwise.mmm.runs import save_run
    from mixwise.optimize import sources
    from mixwise.optimize.scenarios import list_scenarios

    save_run(workspace, tiny_mmm)  # type: ignore[arg-type]
    original = sources.from_run
    monkeypatch.setattr(
        sources, "from_run", lambda ws, run=None: original(ws, run, force=True, draws=30)
    )
    monkeypatch.setattr(demo_module, "DEMO_GROUPS", {"brand": ("tv",), "performance": ("search",)})
    monkeypatch.setattr(demo_module, "DEMO_RULES", ("brand>=20%",))
    names = demo_module._plan(workspace)  # type: ignore[arg-type]
    assert names == ("current 2024-Q1", "optimized 2024-Q1")  # tiny_mmm ends in October 2023
    current, best = list_scenarios(workspace)  # type: ignore[arg-type]
    assert (current.kind, best.kind, best.active) == ("current", "optimized", True)
    assert best.spend == pytest.approx(current.spend, rel=1e-5)
    assert best.kpi["mean"] >= current.kpi["mean"] * (1 - 1e-6)
    assert demo_module._plan(workspace) == ()  # type: ignore[arg-type]
