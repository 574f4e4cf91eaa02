"""Background fits: progress from a NUTS run, the job lifecycle, failures that store nothing."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpyro.util
import pytest
import tqdm
import tqdm.auto

from mixwise.mmm import fit as fit_module
from mixwise.mmm.fit import MMM
from mixwise.mmm.jobs import BadSettings, FitJobs, check_settings, fit_from_settings
from mixwise.mmm.runs import list_runs, show_run
from mixwise.workspace import Workspace

TINY = {"channels": ["tv", "search"], "controls": [], "chains": 1, "draws": 30, "warmup": 30}


@pytest.fixture
def state_url() -> None:
    """SQLite only: these tests fit models; storing runs on PostgreSQL is tested elsewhere."""
    return None


MakeJobs = Callable[..., FitJobs]


@pytest.fixture
def make_jobs() -> Iterator[MakeJobs]:
    """``FitJobs(...)``, shut down after the test (so its worker thread ends)."""
    made: list[FitJobs] = []

    def make(**kwargs: Any) -> FitJobs:
        made.append(FitJobs(**kwargs))
        return made[-1]

    yield make
    for jobs in made:
        jobs.shutdown()


def recording(calls: list[tuple[str, float]]) -> Any:
    """The real fitter, with every progress report also appended to ``calls``."""

    def fitter(ws: Workspace, settings: dict[str, Any], on_progress: Any) -> MMM:
        def both(phase: str, fraction: float) -> None:
            calls.append((phase, fraction))
            on_progress(phase, fraction)

        return fit_from_settings(ws, settings, both)

    return fitter


def test_settings_get_defaults_and_every_problem_is_named(make_jobs: MakeJobs) -> None:
    settings = check_settings({"channels": "tv, search", "method": "map", "start": "2024-01-01"})
    assert settings["channels"] == ["tv", "search"] and settings["chains"] == 4
    assert settings["controls"] is None and settings["start"] == "2024-01-01"
    with pytest.raises(BadSettings) as info:
        check_settings(
            {"method": "mcmc", "chains": 0, "draws": "many", "start": "2024-02-30", "x": 1}
        )
    text = str(info.value)
    assert len(info.value.problems) == 5
    for part in (
        "unknown settings: x",
        "method must be",
        "chains must be a whole number from 1",
        "draws must be",
        "start must be a date",
    ):
        assert part in text, part
    assert settings["geo_level"] == "national"
    with pytest.raises(BadSettings, match="geo_level must be 'national' or 'geo', got 'city'"):
        check_settings({"geo_level": "city"})
    with pytest.raises(BadSettings, match="is after end"):
        check_settings({"start": "2024-03-01", "end": "2024-02-01"})
    jobs = make_jobs()
    with pytest.raises(BadSettings, match="name at least one channel"):
        jobs.submit(None, {"channels": []})  # type: ignore[arg-type]
    assert jobs.list() == []


def test_counting_bars_report_fractions_and_are_always_restored() -> None:
    calls: list[tuple[str, float]] = []
    progress = fit_module._Progress(lambda p, f: calls.append((p, f)), total=40, loop_weight=2)
    others: list[Any] = []
    with fit_module._reporting_progress(progress):
        # Parallel chains: one bar per chain, fed in steps (from XLA's callback threads).
        bars = [numpyro.util.tqdm_auto(range(10), position=c) for c in range(2)]
        for bar in bars:
            bar.set_description("Compiling.. ", refresh=True)
            bar.update(0)
            bar.update(5)
        # Vectorised chains: a Python loop, each step advancing both chains.
        with numpyro.util.tqdm.trange(10, miniters=1) as loop:
            for _ in loop:
                loop.set_description("warmup", refresh=False)
        thread = threading.Thread(
            target=lambda: others.append(numpyro.util.tqdm_auto(range(3), file=io.StringIO()))
        )
        thread.start()
        thread.join()
        for bar in bars:
            bar.update(5)  # what numpyro's last callback does: the remainder, then close
            bar.close()
    fractions = [f for _, f in calls]
    assert {p for p, _ in calls} == {"sampling"}
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions[:3] == [0.0, 0.125, 0.25]  # 5 of 40, then 10 of 40
    assert not isinstance(others[0], type(bars[0]))  # another thread's bar is left alone
    others[0].close()
    assert numpyro.util.tqdm_auto is tqdm.auto.tqdm and numpyro.util.tqdm is tqdm
    with pytest.raises(RuntimeError), fit_module._reporting_progress(progress):
        raise RuntimeError("boom")
    assert numpyro.util.tqdm_auto is tqdm.auto.tqdm and numpyro.util.tqdm is tqdm


def test_a_nuts_job_reports_progress_and_stores_its_run(
    mmm_workspace: Workspace, make_jobs: MakeJobs
) -> None:
    calls: list[tuple[str, float]] = []
    jobs = make_jobs(fitter=recording(calls))
    job = jobs.submit(mmm_workspace, {**TINY, "seed": 3}, user_id=None)
    assert job.status == "queued" and job.settings["draws"] == 30
    done = jobs.wait(job.id, timeout=240)
    assert done.status == "done", done.error
    assert done.progress == 1.0 and done.phase == "done" and done.run_id is not None
    assert done.started_at and done.finished_at and done.error is None
    info, summary = show_run(mmm_workspace, done.run_id)
    assert info.channels == ("tv", "search") and info.method == "nuts" and not info.usable
    assert summary["diagnostics"]["draws"] == 30
    assert [j.id for j in jobs.list()] == [job.id]

    phases = [p for p, _ in calls]
    assert phases[0] == "preparing" and phases[-2:] == ["summarising", "done"]
    sampling = [f for p, f in calls if p == "sampling"]
    assert len(sampling) >= 5 and sampling[-1] == 1.0
    assert sampling == sorted(sampling) and len(set(sampling)) == len(sampling)
    first, last = phases.index("sampling"), len(phases) - 1 - phases[::-1].index("sampling")
    assert set(phases[first : last + 1]) == {"sampling"}
    assert numpyro.util.tqdm_auto is tqdm.auto.tqdm and numpyro.util.tqdm is tqdm


def test_jobs_with_bad_data_fail_readably_and_store_nothing(
    mmm_workspace: Workspace, make_jobs: MakeJobs
) -> None:
    jobs = make_jobs()
    unknown = jobs.submit(mmm_workspace, {**TINY, "channels": ["tv", "radio"]})
    short = jobs.submit(mmm_workspace, {**TINY, "start": "2024-01-01", "end": "2024-02-11"})
    failed = jobs.wait(unknown.id, timeout=60)
    assert failed.status == "failed" and failed.phase == "failed" and failed.run_id is None
    assert "no media rows for channel 'radio'; channels in media: search, tv" in failed.error
    assert failed.finished_at is not None
    too_short = jobs.wait(short.id, timeout=60)  # the worker carried on after the failure
    assert too_short.status == "failed" and "6 weeks for 16 parameters" in too_short.error
    assert list_runs(mmm_workspace) == []


def test_fast_mode_job_reports_fitting_then_done(
    mmm_workspace: Workspace, monkeypatch: pytest.MonkeyPatch, make_jobs: MakeJobs
) -> None:
    """The MAP optimisation (tens of seconds; the slow suite fits it for real) replaced by
    prior draws of the same model: what is tested is the job and its progress."""

    def prior_draws(model: Any, kpi: Any, key: Any, draws: int) -> dict[str, Any]:
        from numpyro.infer import Predictive

        out = Predictive(model, num_samples=draws)(key, kpi_obs=None)
        return {k: np.asarray(v) for k, v in out.items()}

    monkeypatch.setattr(fit_module, "_laplace", prior_draws)
    calls: list[tuple[str, float]] = []
    jobs = make_jobs(fitter=recording(calls))
    job = jobs.submit(mmm_workspace, {**TINY, "method": "map", "draws": 50}, user_id=None)
    done = jobs.wait(job.id, timeout=120)
    assert done.status == "done", done.error
    assert calls == [("fitting", 0.0), ("summarising", 1.0), ("done", 1.0)]
    info, _ = show_run(mmm_workspace, done.run_id)
    assert info.method == "map" and info.verdict.startswith("fast mode")


def test_shutdown_fails_the_queued_jobs(make_jobs: MakeJobs) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow(ws: Any, settings: dict[str, Any], on_progress: Any) -> Any:
        on_progress("sampling", 0.5)
        started.set()
        release.wait(10)
        raise ValueError("no data in this test")

    jobs = make_jobs(fitter=slow)
    first = jobs.submit(object(), {"method": "map"})  # type: ignore[arg-type]
    second = jobs.submit(object(), {"method": "map"})  # type: ignore[arg-type]
    assert started.wait(10)
    running = jobs.get(first.id)
    assert running is not None and running.status == "running" and running.progress == 0.5
    assert running.phase == "sampling" and jobs.get(second.id).status == "queued"  # type: ignore[union-attr]
    jobs.shutdown()
    stopped = jobs.get(second.id)
    assert stopped is not None and stopped.status == "failed"
    assert "server stopped" in (stopped.error or "")
    release.set()
    assert jobs.wait(first.id, timeout=10).error == "no data in this test"
    with pytest.raises(RuntimeError, match="shut down"):
        jobs.submit(object(), {})  # type: ignore[arg-type]
    assert jobs.get("nope") is None


@pytest.mark.slow
# On this small market the Hessian at the mode is singular (NumPyro warns and its Laplace
# draws are all the mode); the job is what is tested here, not the fast mode's quality.
@pytest.mark.filterwarnings("ignore:Hessian of log posterior:UserWarning")
def test_a_real_fast_mode_job(mmm_workspace: Workspace, make_jobs: MakeJobs) -> None:
    jobs = make_jobs()
    job = jobs.submit(mmm_workspace, {**TINY, "method": "map", "draws": 200})
    done = jobs.wait(job.id, timeout=600)
    assert done.status == "done", done.error
    assert show_run(mmm_workspace, done.run_id)[0].method == "map"
