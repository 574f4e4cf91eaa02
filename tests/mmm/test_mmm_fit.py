"""Fitting the marketing mix model: verdicts, configuration errors, the CLI, recovery."""

from __future__ import annotations

import base64
import dataclasses
import json
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from mixwise.accounts import create_user
from mixwise.cli import main
from mixwise.config import Settings
from mixwise.mmm.data import MMMData
from mixwise.mmm.features import BaselineSpec
from mixwise.mmm.fit import MMM, Diagnostics, LiftTest
from mixwise.mmm.runs import load_model
from mixwise.mmm.transforms import HillSaturation
from mixwise.web import create_app
from mixwise.workspace import Workspace


def _hill(x: np.ndarray, half: float) -> np.ndarray:
    return x / (x + half)


def _weekly(periods: int = 104, seed: int = 0) -> tuple[pd.DataFrame, dict[str, float]]:
    """Two channels with known saturating effects (no carry-over) on a flat baseline."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-02", periods=periods, freq="7D")
    x = rng.gamma(2.0, 50.0, size=(periods, 2)) * np.array([1.0, 2.0])
    effect_a, effect_b = 300 * _hill(x[:, 0], 100), 400 * _hill(x[:, 1], 200)
    y = 1000 + effect_a + effect_b + rng.normal(0, 20, periods)
    frame = pd.DataFrame({"date": dates, "revenue": y, "a": x[:, 0], "b": x[:, 1]})
    roi = {"a": effect_a.sum() / x[:, 0].sum(), "b": effect_b.sum() / x[:, 1].sum()}
    return frame, roi


def _data(frame: pd.DataFrame) -> MMMData:
    return MMMData.from_frame(frame, date="date", kpi="revenue", channels=["a", "b"])


def test_verdict_names_what_failed() -> None:
    model = MMM()
    good = Diagnostics(max_rhat=1.004, min_ess=812, divergences=0, draws=1000, chains=4, worst="x")
    assert model._verdict(good).usable
    bad = Diagnostics(max_rhat=1.2, min_ess=35, divergences=3, draws=100, chains=2, worst="roi")
    verdict = model._verdict(bad)
    assert not verdict.usable
    assert verdict.message.startswith("do not use: chains did not converge (R-hat 1.200")
    assert "on roi" in verdict.message and "35 < 400" in verdict.message
    assert "3 divergent transitions (1.50% of the draws" in verdict.message
    assert "try more warmup" in verdict.message
    # A few divergences (up to 0.1 % of the draws) are tolerated, and said; one more is not.
    few = Diagnostics(max_rhat=1.004, min_ess=812, divergences=4, draws=1000, chains=4, worst="x")
    assert model._verdict(few).usable
    assert model._verdict(few).message.startswith("usable (4 divergent transitions, 0.10%")
    more = Diagnostics(max_rhat=1.004, min_ess=812, divergences=5, draws=1000, chains=4, worst="x")
    assert not model._verdict(more).usable
    assert "5 divergent transitions (0.12% of the draws, more than 0.1%)" in (
        model._verdict(more).message
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"synergies": [("a", "zz")]}, "unknown channel 'zz'"),
        ({"synergies": [("a", "a")]}, "two channels"),
        ({"roi_prior": {"tv": (2.0, 0.5)}}, "unknown channels: ['tv']"),
        ({"lift_tests": [LiftTest("a", "2030-01-01", "2030-02-01", 100, 10)]}, "covers no period"),
        ({"holdout": 80}, "holdout must be"),
    ],
)
def test_configuration_errors_are_named_before_sampling(options: dict, message: str) -> None:
    frame, _ = _weekly()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        MMM(progress=False, **options).fit(_data(frame))


def test_lift_test_needs_a_positive_standard_error() -> None:
    with pytest.raises(ValueError, match="se must be > 0"):
        LiftTest("a", "2023-01-02", "2023-03-27", 1000.0, 0.0)


def test_cli_rejects_a_bad_file_by_row_and_column(tmp_path: Path) -> None:
    frame, _ = _weekly(periods=60)
    frame.loc[16, "b"] = -5.0  # data row 17
    path = tmp_path / "weekly.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(
        main, ["mmm", "fit", "--csv", str(path), "--channels", "a,b", "--json"]
    )
    assert result.exit_code == 1
    assert "row 17" in result.output and "'b'" in result.output and "≥ 0" in result.output


def test_a_short_fit_does_not_converge_says_do_not_use_and_is_stored(
    tmp_path: Path, state_url: str | None
) -> None:
    """Ten warm-up steps cannot converge: the CLI still prints every estimate with its
    interval, and the verdict says not to use them. The run is stored, listed, shown and
    reloaded with the same estimates."""
    frame, _ = _weekly(periods=60)
    path = tmp_path / "weekly.csv"
    frame.to_csv(path, index=False)
    settings = Settings(home=tmp_path / "ws", database_url=state_url)
    env = {"MIXWISE_HOME": str(settings.home)}
    if state_url:
        env["MIXWISE_DATABASE_URL"] = state_url

    def cli(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=env)

    assert cli("init").exit_code == 0
    args = ["mmm", "fit", "--csv", str(path), "--channels", "a,b", "--json", "--save"]
    result = cli(*args, "--chains", "2", "--draws", "15", "--warmup", "10")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["run"] == 1
    shown = cli("mmm", "show", "--json")
    assert shown.exit_code == 0, shown.output
    stored = json.loads(shown.output)
    assert stored["run"]["id"] == 1 and stored["run"]["usable"] is False
    assert stored["summary"]["roi"] == out["roi"]
    assert [r["id"] for r in stored["runs"]] == [1]
    missing = cli("mmm", "show", "7")
    assert missing.exit_code == 1 and "no MMM run 7" in missing.output
    with Workspace.open(settings.home, settings) as ws:
        model = load_model(ws)
        assert model.run_id_ == 1 and not model.verdict_.usable
        np.testing.assert_allclose(
            model.roi_["mean"].to_numpy(), [out["roi"][c]["mean"] for c in ("a", "b")], rtol=1e-6
        )
        assert model.contributions().shape == (60, 5)
        # The same run through the REST API.
        with ws.state.session() as s:
            create_user(s, "viewer", "viewer-password-1", "viewer")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Starlette's test client prefers httpx2
            from fastapi.testclient import TestClient
        token = base64.b64encode(b"viewer:viewer-password-1").decode()
        client = TestClient(create_app(ws), headers={"Authorization": f"Basic {token}"})
        runs = client.get("/api/v1/mmm/runs").json()
        assert [r["id"] for r in runs] == [1] and runs[0]["channels"] == ["a", "b"]
        one = client.get("/api/v1/mmm/runs/1").json()
        assert one["summary"]["roi"] == out["roi"] and one["run"]["verdict"].startswith("do not")
        assert client.get("/api/v1/mmm/runs/9").status_code == 404
        curves = client.get("/api/v1/mmm/runs/1/curves?points=5").json()
        assert curves["channels"] == ["a", "b"]
        b = curves["curves"]["b"]
        assert len(b["spend"]) == 5 and b["spend"][0] == 0.0 and b["mean"][0] == 0.0
        assert b["spend"][-1] == pytest.approx(2 * frame["b"].max(), rel=1e-5)
        assert b["current_spend"] == pytest.approx(frame["b"].mean(), rel=1e-5)
        assert all(lo <= hi for lo, hi in zip(b["lower"], b["upper"], strict=True))
        assert client.get("/api/v1/mmm/runs/1/curves?points=1").status_code == 422
        assert client.get("/api/v1/mmm/runs/9/curves").status_code == 404
    assert out["verdict"]["usable"] is False
    assert out["verdict"]["message"].startswith("do not use:")
    assert out["diagnostics"]["max_rhat"] > 1.01
    assert set(out["roi"]) == {"a", "b"}
    for row in out["roi"].values():
        assert row["lower"] <= row["median"] <= row["upper"]
    assert out["data"] == {
        "source": str(path),
        "periods": 60,
        "frequency": "W",
        "start": "2023-01-02",
        "end": str((pd.Timestamp("2023-01-02") + pd.Timedelta(weeks=59)).date()),
        "kpi": "revenue",
        "currency": None,
    }


@pytest.mark.slow
def test_recovers_the_true_roi_of_model_generated_data() -> None:
    """The data come from the additive model (flat baseline), so the fit is that model. With
    the default interaction terms (here only trend × seasonality: each holiday occurs twice)
    channel a's ROI is 1.59 instead of 1.55 (truth 1.38; docs/mmm.md, known limits)."""
    frame, roi = _weekly()
    model = MMM(
        chains=2, draws=500, warmup=500, progress=False, baseline=BaselineSpec(interactions=False)
    ).fit(_data(frame))
    assert model.diagnostics_ is not None and model.diagnostics_.max_rhat < 1.05
    for channel, true in roi.items():
        row = model.roi_.loc[channel]
        assert row["lower"] <= true <= row["upper"], (channel, true, row.to_dict())
        assert abs(row["mean"] / true - 1) < 0.15
    # Contributions add up: baseline + channels ≈ the KPI on average.
    parts = model.contributions()
    fitted = parts[["baseline", "a", "b"]].sum(axis=1)
    assert abs(fitted.mean() / parts["kpi"].mean() - 1) < 0.02


@pytest.mark.slow
def test_a_lift_test_moves_roi_toward_truth_and_narrows_it() -> None:
    frame, roi = _weekly(periods=80, seed=3)
    data = _data(frame)
    plain = MMM(chains=2, draws=400, warmup=400, progress=False).fit(data)
    # A precise experiment on channel a over the first half of the data.
    start, end = data.dates[0], data.dates[39]
    x = frame["a"].to_numpy()[:40]
    measured = float((300 * _hill(x, 100)).sum())
    test = LiftTest("a", str(start.date()), str(end.date()), measured, 0.03 * measured)
    calibrated = MMM(chains=2, draws=400, warmup=400, progress=False, lift_tests=[test]).fit(data)
    width = lambda m: m.roi_.loc["a", "upper"] - m.roi_.loc["a", "lower"]  # noqa: E731
    assert width(calibrated) < width(plain)
    assert (
        abs(calibrated.roi_.loc["a", "mean"] - roi["a"])
        <= abs(plain.roi_.loc["a", "mean"] - roi["a"]) + 0.02 * roi["a"]
    )


@pytest.mark.slow
def test_fast_mode_is_labelled_and_never_usable() -> None:
    frame, roi = _weekly(periods=80, seed=4)
    model = MMM(method="map", draws=300, synergies=[("a", "b")], progress=False)
    model.fit(_data(frame))
    assert model.diagnostics_ is None
    assert not model.verdict_.usable and model.verdict_.message.startswith("fast mode")
    assert list(model.synergy_.index) == ["a × b"]
    for channel, true in roi.items():
        row = model.roi_.loc[channel]
        assert row["lower"] < row["median"] < row["upper"]
        assert abs(row["mean"] / true - 1) < 0.5  # a mode and a Laplace approximation


def _multiplicative(periods: int = 156, seed: int = 1) -> tuple[pd.DataFrame, float]:
    """A baseline that is a product: it grows 60 % over the data, and its seasonal swing and
    Double 11 / 618 peaks grow with it; one channel runs in 5-week flights."""
    from mixwise.mmm.features import baseline_design

    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-02", periods=periods, freq="7D")
    holidays = baseline_design(dates, 7, BaselineSpec(holidays=("double_11", "618"))).holidays
    growth = 1 + 0.6 * np.arange(periods) / periods
    season = 1 + 0.2 * np.sin(2 * np.pi * np.arange(periods) / 52.18)
    base = 1000 * growth * season * (1 + 1.5 * holidays[:, 0] + 0.8 * holidays[:, 1])
    x = np.where((np.arange(periods) // 5) % 2 == 0, rng.gamma(4.0, 25.0, periods), 0.0)
    effect = 250 * _hill(x, 100)
    frame = pd.DataFrame({"date": dates, "revenue": base + effect + rng.normal(0, 15, periods)})
    frame["a"] = x
    return frame, float(effect.sum() / x.sum())


@pytest.mark.slow
def test_interactions_recover_the_roi_under_a_multiplicative_baseline() -> None:
    """With the baseline's interaction terms (the default) the ROI is recovered; the purely
    additive baseline leaves the growing holiday peaks in the residual and misses it."""
    frame, roi = _multiplicative()
    data = MMMData.from_frame(frame, date="date", kpi="revenue", channels=["a"])
    fits = {
        on: MMM(
            chains=2, draws=300, warmup=300, progress=False, baseline=BaselineSpec(interactions=on)
        )
        .fit(data)
        .roi_.loc["a"]
        for on in (True, False)
    }
    with_terms, additive = fits[True], fits[False]
    assert with_terms["lower"] <= roi <= with_terms["upper"], (roi, with_terms.to_dict())
    assert abs(with_terms["mean"] / roi - 1) < 0.05
    assert abs(additive["mean"] / roi - 1) > 2 * abs(with_terms["mean"] / roi - 1)
    width = {on: fits[on]["upper"] - fits[on]["lower"] for on in fits}
    assert width[True] < width[False]


def test_a_channel_that_never_stops_has_its_roi_flagged_as_mostly_prior() -> None:
    """Channel a runs in flights with weeks off: its ROI is measured. Channel b always spends
    about the same: what no spend would give is an extrapolation, so its ROI interval stays
    nearly as wide as the prior's, and the run says so (summary, notes, CLI text)."""
    rng = np.random.default_rng(11)
    periods = 104
    dates = pd.date_range("2023-01-02", periods=periods, freq="7D")
    a = np.where((np.arange(periods) // 4) % 2 == 0, rng.gamma(4.0, 25.0, periods), 0.0)
    b = 100 * rng.lognormal(0.0, 0.05, periods)
    y = 1000 + 300 * _hill(a, 100) + 100 * _hill(b, 100) + rng.normal(0, 15, periods)
    frame = pd.DataFrame({"date": dates, "revenue": y, "a": a, "b": b})
    model = MMM(chains=1, draws=300, warmup=300, progress=False, seed=2).fit(_data(frame))
    ident = model.identification_
    assert ident.loc["a", "measured"] and ident.loc["a", "prior_width_share"] < 0.3
    assert ident.loc["a", "off_share"] == pytest.approx(0.5, abs=0.02)
    assert not ident.loc["b", "measured"]
    assert ident.loc["b", "min_spend_share"] > 0.8
    summary = model.summary()
    assert summary["identification"]["b"]["measured"] is False
    (note,) = summary["notes"]
    assert note.startswith("b: ROI mostly from the prior") and "never fell below" in note


def test_identification_notes_say_why() -> None:
    from mixwise.mmm.fit import _identification_notes

    frame = pd.DataFrame(
        {
            "prior_width_share": [0.2, 0.9, 0.85],
            "min_spend_share": [0.0, 0.62, 0.0],
            "off_share": [0.5, 0.0, 0.3],
            "measured": [True, False, False],
        },
        index=["tv", "search", "email"],
    )
    notes = _identification_notes(frame)
    assert len(notes) == 2
    assert notes[0].startswith("search: ROI mostly from the prior (its 90 % interval is 90 %")
    assert "never fell below 62 % of its average" in notes[0]
    assert notes[1].startswith("email:") and "too small" in notes[1]


def test_a_chain_that_never_moved_is_not_converged() -> None:
    """NumPyro's R-hat and ESS are NaN when a chain never moves (no variance): that is no
    convergence, said plainly, not a NaN the verdict would let through."""
    stuck = Diagnostics(
        max_rhat=float("inf"), min_ess=0.0, divergences=0, draws=20, chains=1, worst="alpha"
    )
    verdict = MMM()._verdict(stuck)
    assert not verdict.usable
    assert verdict.message.startswith("do not use: chains did not converge (a chain never moved")


def test_weekly_fits_decay_per_day_and_stored_runs_keep_their_carry_over(
    workspace: Any, tiny_mmm: MMM
) -> None:
    """A weekly fit's geometric carry-over decays per day (steps 7); the run stores the
    options it used, and a run stored before steps existed reloads with the weekly decay."""
    from sqlalchemy import select

    from mixwise.mmm.runs import save_run, settings_of
    from mixwise.store.state import ModelRun

    assert tiny_mmm.adstock_options == {}  # the user's options: nothing said
    assert tiny_mmm.adstock_.to_dict() == {
        "name": "geometric", "l_max": 8, "normalize": True, "steps": 7
    }  # fmt: skip
    assert settings_of(tiny_mmm)["adstock_options"] == {"l_max": 8, "normalize": True, "steps": 7}
    run = save_run(workspace, tiny_mmm)
    assert load_model(workspace, run).adstock_.steps == 7
    with workspace.state.session() as s:
        row = s.scalars(select(ModelRun).where(ModelRun.id == run)).one()
        row.settings = {**row.settings, "adstock_options": {}}
        s.commit()
    assert load_model(workspace, run).adstock_.steps == 1
    # The saturation's options are stored and rebuilt the same way (none: the defaults).
    assert settings_of(tiny_mmm)["saturation_options"] == {}
    with workspace.state.session() as s:
        row = s.scalars(select(ModelRun).where(ModelRun.id == run)).one()
        row.settings = {**row.settings, "saturation_options": {"slope_sd": 0.01}}
        s.commit()
    assert load_model(workspace, run).saturation_ == HillSaturation(slope_sd=0.01)
    daily = SimpleNamespace(frequency="D")  # only the frequency decides
    assert MMM(adstock_options={"l_max": 4})._adstock_options(daily) == {"l_max": 4, "steps": 1}  # type: ignore[arg-type]
    assert MMM(adstock_options={"steps": 1})._adstock_options(tiny_mmm.data_) == {"steps": 1}
    assert MMM(adstock="weibull")._adstock_options(tiny_mmm.data_) == {}


def _synergy_market(strength: float) -> tuple[MMMData, float]:
    """The simulator's tv, brand_search, social and video, every channel in flights, 156
    weeks; social amplifies brand_search by ``1 + strength * hill(social)`` (0: no synergy).
    Returns the weekly data and the true synergy gain over its weeks (the joint effect minus
    the two single effects, which for this product form is the synergy term's total)."""
    from mixwise.simulate import MarketConfig, simulate_market
    from mixwise.simulate.config import SynergySpec, default_channels

    names = ("tv", "brand_search", "social", "video")
    chans = tuple(
        dataclasses.replace(c, pattern="flighted") for c in default_channels() if c.name in names
    )
    synergies = (SynergySpec("brand_search", ("social",), strength),) if strength else ()
    cfg = MarketConfig(days=156 * 7, channels=chans, synergies=synergies, n_journeys=1000)
    market = simulate_market(cfg, seed=3)
    daily = market.media.groupby(["date", "channel"]).spend.sum().unstack()
    daily = daily.join(market.outcomes.groupby("date").revenue.sum())
    daily.index = pd.to_datetime(daily.index)
    weeks = daily.resample("W-MON", label="left", closed="left")
    frame = weeks.sum()[weeks.size() == 7].reset_index()  # whole weeks only
    truth = 0.0
    if strength:
        syn = market.truth.synergy
        day = pd.to_datetime(syn["date"])
        start = frame["date"].iloc[0]
        end = frame["date"].iloc[-1] + pd.Timedelta(days=7)
        truth = float(syn.loc[(day >= start) & (day < end), "effect"].sum())
    return MMMData.from_frame(frame, date="date", kpi="revenue", channels=list(names)), truth


@pytest.mark.slow
def test_synergy_is_recovered_and_not_found_where_there_is_none() -> None:
    """The issue's synergy target: the simulator's synergy gain lies inside the fit's 90 %
    interval, and on the same market without synergy the interval holds zero (no synergy is
    reported as found). Measured (2 chains × 500): truth 7.3 M inside [2.6 M, 27 M]; without
    synergy [-6.2 M, 18.5 M]."""
    fits = {}
    for strength in (0.6, 0.0):
        data, truth = _synergy_market(strength)
        model = MMM(
            chains=2, draws=500, warmup=500, progress=False, synergies=[("brand_search", "social")]
        ).fit(data)
        assert model.verdict_.usable, model.verdict_.message
        fits[strength] = (model.synergy_.loc["brand_search × social"], truth)
    row, truth = fits[0.6]
    assert truth > 5e6  # the market has a synergy to find
    assert row["lower"] <= truth <= row["upper"], (truth, row.to_dict())
    assert row["lower"] > 0  # found
    none, _ = fits[0.0]
    assert none["lower"] <= 0.0 <= none["upper"], none.to_dict()  # not found
