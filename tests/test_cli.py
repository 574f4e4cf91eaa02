"""The command line, end to end through Click's runner, on every state backend."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from mixwise.cli import main


@pytest.fixture
def run(state_url: str | None, tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {"MIXWISE_HOME": str(tmp_path / "ws")}
    if state_url:
        env["MIXWISE_DATABASE_URL"] = state_url

    def invoke(*args: str, input: str | None = None) -> object:
        return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    assert invoke("init").exit_code == 0  # type: ignore[attr-defined]
    return invoke


def _media(path: Path, n: int = 20, bad_row: int | None = None) -> Path:
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=n).strftime("%Y-%m-%d"),
            "channel": "tv",
            "cost": [float(100 + i) for i in range(n)],
        }
    )
    if bad_row is not None:
        frame.loc[bad_row - 1, "cost"] = -5.0
    frame.to_csv(path, index=False)
    return path


def _rows(run) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out = run("tables", "--json")
    assert out.exit_code == 0
    return {t["kind"]: t["rows"] for t in json.loads(out.output)["tables"]}


def test_tables_json_lists_all_eight_kinds(run) -> None:  # type: ignore[no-untyped-def]
    assert set(_rows(run)) == {
        "media",
        "outcomes",
        "controls",
        "touchpoints",
        "conversions",
        "paths",
        "orders",
        "leads",
    }


def test_ingest_good_twice_then_bad_row_17(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = _media(tmp_path / "spend.csv")
    first = run("ingest", "media", str(good), "--map", "spend=cost", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["inserted"] == 20
    second = run("ingest", "media", str(good), "--map", "spend=cost")
    assert second.exit_code == 0
    assert "0 inserted, 0 updated, 20 unchanged" in second.output
    before = _rows(run)
    bad = _media(tmp_path / "bad.csv", bad_row=17)
    out = run("ingest", "media", str(bad), "--map", "spend=cost")
    assert out.exit_code == 1
    assert "bad.csv, row 17, column 'spend': expected a number ≥ 0, got '-5.0'" in out.output
    assert "REJECTED, nothing written" in out.output
    assert _rows(run) == before


def test_ingest_rejects_bad_usage(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = _media(tmp_path / "spend.csv")
    assert run("ingest", "spend", str(good)).exit_code == 2
    out = run("ingest", "media", str(good), "--map", "spend")
    assert out.exit_code == 2 and "TARGET=SOURCE" in out.output


def test_users(run) -> None:  # type: ignore[no-untyped-def]
    out = run("user", "add", "alice", "--role", "admin", input="s3cret-pass\ns3cret-pass\n")
    assert out.exit_code == 0, out.output
    assert run("user", "add", "alice", "--password", "another-pass").exit_code == 1
    assert "at least 8" in run("user", "add", "bob", "--password", "short").output
    assert run("user", "add", "bob", "--password", "long-enough").exit_code == 0
    assert run("user", "set-role", "bob", "approver").exit_code == 0
    assert run("user", "set-role", "nobody", "viewer").exit_code == 1
    users = json.loads(run("user", "list", "--json").output)["users"]
    assert [(u["username"], u["role"]) for u in users] == [("alice", "admin"), ("bob", "approver")]
    assert "hash" not in run("user", "list", "--json").output


def test_settings(run) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(run("settings", "--json").output)["currency"] == "CNY"
    assert run("settings", "currency", "USD").exit_code == 0
    assert "currency = USD" in run("settings", "currency").output
    assert run("settings", "currency", "dollars").exit_code == 1
    assert run("settings", "colour", "blue").exit_code == 2


def test_opening_a_directory_that_is_not_a_workspace(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["tables", "-w", str(tmp_path / "nowhere")])
    assert out.exit_code == 1 and "mixwise init" in out.output


def test_every_command_has_help() -> None:
    for args in (["--help"], ["demo", "--help"], ["ingest", "--help"], ["user", "add", "--help"]):
        out = CliRunner().invoke(main, args)
        assert out.exit_code == 0 and "Usage:" in out.output
