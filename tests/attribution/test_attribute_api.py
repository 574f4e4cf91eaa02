"""attribute(): all models side by side, on a workspace and on a path file; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixwise.attribution.api import attribute
from mixwise.attribution.models import MODELS
from mixwise.cli import main
from mixwise.simulate import MarketConfig, simulate_market
from mixwise.workspace import Workspace

CHANNELS = [f"ch{i:02d}" for i in range(10)]


@pytest.fixture
def path_file(tmp_path: Path) -> Path:
    """A ChannelAttribution-style file over 10 channels."""
    rng = np.random.default_rng(4)
    rows = {}
    while len(rows) < 200:
        n = int(rng.integers(1, 6))
        path = " > ".join(rng.choice(CHANNELS, n))
        rows[path] = (int(rng.integers(0, 20)), int(rng.integers(0, 200)))
    frame = pd.DataFrame(
        [(p, c, c * 37.5, n) for p, (c, n) in rows.items()],
        columns=["path", "total_conversions", "total_conversion_value", "total_null"],
    )
    out = tmp_path / "paths.csv"
    frame.to_csv(out, index=False)
    return out


def test_every_model_on_a_path_file(path_file: Path) -> None:
    result = attribute(path_file)
    assert set(result.skipped) == {m for m, cls in MODELS.items() if cls.needs_timing}
    assert set(result.models) == {m for m, cls in MODELS.items() if not cls.needs_timing}
    total = pd.read_csv(path_file)["total_conversions"].sum()
    for name, credits in result.credits.items():
        assert credits.index.tolist() == CHANNELS, name
        assert credits["conversions"].sum() == pytest.approx(total), name
        assert credits["share"].sum() == pytest.approx(1.0), name
        assert credits["cost"].isna().all() and credits["cpa"].isna().all()
    comp = result.comparison
    assert (comp["spread"] >= 0).all() and np.allclose(comp["max"] - comp["min"], comp["spread"])


def test_timing_model_on_a_path_file_is_an_error(path_file: Path) -> None:
    with pytest.raises(ValueError, match="needs touch timestamps"):
        attribute(path_file, models=["time_decay"])
    with pytest.raises(ValueError, match="unknown model"):
        attribute(path_file, models=["magic"])


@pytest.fixture
def demo_like(workspace: Workspace) -> Workspace:
    market = simulate_market(MarketConfig.small(), seed=11)
    for kind in ("media", "touchpoints", "conversions", "leads"):
        assert workspace.ingest(kind, market.tables()[kind]).ok
    return workspace


def test_workspace_journeys_with_costs(demo_like: Workspace) -> None:
    result = attribute(demo_like, by="value")
    assert not result.skipped and result.currency == "CNY"
    conversions = demo_like.table("conversions")
    for name, credits in result.credits.items():
        assert credits["conversions"].sum() == pytest.approx(len(conversions)), name
        assert credits["value"].sum() == pytest.approx(conversions["value"].sum()), name
    last = result.credits["last"]
    spend = demo_like.table("media").groupby("channel")["spend"].sum()
    assert last.loc["tv", "cost"] == pytest.approx(spend["tv"])
    assert last.loc["tv", "cpa"] == pytest.approx(spend["tv"] / last.loc["tv", "conversions"])
    assert last.loc["tv", "roas"] == pytest.approx(last.loc["tv", "value"] / spend["tv"])
    # direct has no spend: its cost, CPA and ROAS are unknown, not 0 or infinite.
    assert np.isnan(last.loc["direct", ["cost", "cpa", "roas"]].astype(float)).all()
    assert result.disagreements()[0].startswith("models disagree by")
    as_json = json.dumps(result.to_dict())
    assert "NaN" not in as_json and "Infinity" not in as_json


def test_cli_on_a_path_file(path_file: Path) -> None:
    out = CliRunner().invoke(
        main, ["attribute", "--paths", str(path_file), "--model", "all", "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert len(data["models"]["markov"]) == 10
    assert "time_decay" in data["skipped"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("route,conversions,nulls\na,1,2\n", "required column is missing"),
        ('path,conversions,nulls\n"a > b",-1,2\n', "row 1, column 'conversions'"),
        ('path,conversions,nulls\n" > b",1,2\n', "row 1, column 'path'"),
        ("path,conversions,nulls\n", "no paths"),
    ],
)
def test_cli_rejects_bad_path_files(tmp_path: Path, content: str, needle: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    out = CliRunner().invoke(main, ["attribute", "--paths", str(bad)])
    assert out.exit_code == 1
    assert needle in out.output and "bad.csv" in out.output


def test_calibration_beside_every_model(demo_like: Workspace, tmp_path: Path) -> None:
    factors = tmp_path / "lift.csv"
    factors.write_text("channel,factor,lower,upper\ndirect,0,0,0.1\ntv,0.5,0.4,0.6\n")
    result = attribute(demo_like, models=["last", "markov"], incrementality=factors)
    for name in ("last", "markov"):
        cal = result.calibrated[name]
        raw = result.credits[name]
        assert cal.loc["tv", "calibrated_conversions"] == pytest.approx(
            0.5 * raw.loc["tv", "conversions"]
        )
        assert cal.loc["direct", "calibrated_conversions"] == 0
        assert np.isnan(cal.loc["social", "calibrated_conversions"])  # unknown, not 0
    assert "calibrated" in result.to_dict()
    out = CliRunner().invoke(
        main,
        [
            "attribute",
            "--paths",
            str(_small_paths(tmp_path)),
            "--incrementality",
            str(tmp_path / "missing.csv"),
        ],
    )
    assert out.exit_code == 1 and "missing.csv" in out.output


def _small_paths(tmp_path: Path) -> Path:
    out = tmp_path / "small.csv"
    out.write_text('path,conversions,nulls\n"a > b",1,2\n')
    return out


def test_cost_follows_the_journey_sample_rate(demo_like: Workspace) -> None:
    full = attribute(demo_like, models=["last"]).credits["last"]
    demo_like.set_setting("journey_sample_rate", "0.25")
    panel = attribute(demo_like, models=["last"])
    assert panel.options["cost_scale"] == 0.25
    cost = panel.credits["last"]["cost"]
    assert cost["tv"] == pytest.approx(0.25 * full["cost"]["tv"])
    assert panel.credits["last"]["roas"]["tv"] == pytest.approx(4 * full["roas"]["tv"])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        demo_like.set_setting("journey_sample_rate", "0")
