"""Marketing mix model fits in the background: submitted, queued, run one at a time, stored.

A fit takes from seconds (fast mode) to minutes (NUTS) and keeps every core busy, so a server
does not fit inside a request: it submits a :class:`FitJob` to its :class:`FitJobs` registry,
answers at once, and the page or API client polls the job's state::

    jobs = FitJobs()
    job = jobs.submit(ws, {"channels": ["tv", "search"], "method": "map"}, user_id=3)
    jobs.get(job.id).status, jobs.get(job.id).progress   # "running", 0.42
    jobs.wait(job.id).run_id                             # the stored run (mmm/runs.py)

One worker thread runs the jobs in submission order (fits are CPU-heavy: two at once would
each take twice as long). A job builds :meth:`MMMData.from_workspace` from its settings, fits
:class:`~mixwise.mmm.fit.MMM` with ``on_progress`` feeding the job's phase and progress, and
stores the run with :func:`~mixwise.mmm.runs.save_run`. Settings are checked when submitted
(:func:`check_settings` raises :class:`BadSettings`); what only the data can tell (an unknown
channel, too few weeks) fails the job with the readable message and stores nothing.

Jobs live in memory, per process: a restart forgets them (the runs they stored stay).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mixwise.mmm.data import WORKSPACE_KPIS

if TYPE_CHECKING:
    from mixwise.mmm.fit import MMM
    from mixwise.workspace import Workspace

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed"]
KPIS = tuple(WORKSPACE_KPIS)  # the outcomes columns a workspace fit can model
METHODS = ("nuts", "map")
FREQUENCIES = ("W", "D")
GEO_LEVELS = ("national", "geo")
# name: (lowest, highest) allowed
BOUNDS: dict[str, tuple[int, int]] = {
    "chains": (1, 16),
    "draws": (10, 20_000),
    "warmup": (10, 20_000),
    "seed": (0, 2**31 - 1),
}
DEFAULTS: dict[str, Any] = {
    "kpi": "revenue",
    "channels": None,  # every channel in media
    "controls": None,  # every control name in the workspace; [] for none
    "frequency": "W",
    "geo_level": "national",  # or "geo": one series per outcomes geo (a geo panel)
    "start": None,
    "end": None,
    "method": "nuts",
    "chains": 4,
    "draws": 1000,
    "warmup": 1000,
    "seed": 0,
}

ProgressCallback = Callable[[str, float], None]
# (workspace, checked settings, progress callback) -> the fitted model, not yet stored
Fitter = Callable[["Workspace", dict[str, Any], ProgressCallback], "MMM"]


class BadSettings(ValueError):
    """Settings that cannot start a fit; ``problems`` lists each one."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def _names(value: Any, key: str, problems: list[str]) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        problems.append(f"{key} must be a list of names")
        return None
    names = [v.strip() for v in value if v.strip()]
    if len(set(names)) != len(names):
        problems.append(f"{key}: a name is given twice")
    return names


def _date(value: Any, key: str, problems: list[str]) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        problems.append(f"{key} must be a date such as 2024-01-31, got {value!r}")
        return None


def check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a fit with defaults filled in (JSON-able), or :class:`BadSettings`.

    Keys: ``kpi`` (revenue, conversions or leads), ``channels`` and ``controls`` (lists of
    names; None: every one in the workspace), ``frequency`` (W or D), ``geo_level``
    (national totals, or ``geo``: a geo panel), ``start`` and ``end``
    (dates or None), ``method`` (nuts or map), ``chains``, ``draws``, ``warmup``, ``seed``
    (whole numbers within :data:`BOUNDS`).
    """
    problems: list[str] = []
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        problems.append(f"unknown settings: {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    given = {k: v for k, v in settings.items() if k in DEFAULTS and v is not None}
    out = {**DEFAULTS, **given}
    if out["kpi"] not in KPIS:
        problems.append(f"kpi must be one of {', '.join(KPIS)}, got {out['kpi']!r}")
    if out["method"] not in METHODS:
        problems.append(f"method must be 'nuts' or 'map', got {out['method']!r}")
    if out["frequency"] not in FREQUENCIES:
        problems.append(f"frequency must be 'W' or 'D', got {out['frequency']!r}")
    if out["geo_level"] not in GEO_LEVELS:
        problems.append(f"geo_level must be 'national' or 'geo', got {out['geo_level']!r}")
    out["channels"] = _names(out["channels"], "channels", problems)
    if out["channels"] is not None and not out["channels"]:
        problems.append("channels: name at least one channel (or none for every channel)")
    out["controls"] = _names(out["controls"], "controls", problems)
    for key, (lo, hi) in BOUNDS.items():
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            problems.append(f"{key} must be a whole number from {lo} to {hi}, got {value!r}")
    out["start"] = _date(out["start"], "start", problems)
    out["end"] = _date(out["end"], "end", problems)
    if out["start"] and out["end"] and out["start"] > out["end"]:
        problems.append(f"start {out['start']} is after end {out['end']}")
    if problems:
        raise BadSettings(problems)
    return out


def fit_from_settings(
    ws: Workspace, settings: dict[str, Any], on_progress: ProgressCallback
) -> MMM:
    """The default :data:`Fitter`: the workspace's data, fitted as ``settings`` say."""
    from mixwise.mmm.data import MMMData
    from mixwise.mmm.fit import MMM

    data = MMMData.from_workspace(
        ws,
        kpi=settings["kpi"],
        channels=settings["channels"],
        controls=settings["controls"],
        frequency=settings["frequency"],
        start=settings["start"],
        end=settings["end"],
        geo_level=settings["geo_level"],
    )
    model = MMM(
        method=settings["method"],
        chains=settings["chains"],
        draws=settings["draws"],
        warmup=settings["warmup"],
        seed=settings["seed"],
        progress=False,
    )
    return model.fit(data, on_progress=on_progress)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class FitJob:
    """One background fit. ``progress`` is 0 … 1; ``phase`` says what runs now (queued,
    preparing, fitting, sampling, summarising, saving, done, failed)."""

    id: str
    settings: dict[str, Any]
    user_id: int | None = None
    status: JobStatus = "queued"
    phase: str = "queued"
    progress: float = 0.0
    submitted_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    run_id: int | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FitJobs:
    """The registry of a process's fit jobs, with the one worker thread that runs them.

    ``keep`` finished jobs are remembered (the oldest are forgotten first); ``fitter`` is the
    function that fits (tests pass a quick one).
    """

    def __init__(self, *, keep: int = 100, fitter: Fitter | None = None) -> None:
        self.keep = keep
        self.fitter: Fitter = fitter or fit_from_settings
        self._jobs: OrderedDict[str, FitJob] = OrderedDict()
        self._workspaces: dict[str, Workspace] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._closed = False

    # -- asking --------------------------------------------------------------------------
    def submit(
        self, ws: Workspace, settings: Mapping[str, Any], *, user_id: int | None = None
    ) -> FitJob:
        """Queue a fit of ``ws``'s data; raises :class:`BadSettings` at once for bad settings."""
        checked = check_settings(settings)
        job = FitJob(id=uuid.uuid4().hex[:12], settings=checked, user_id=user_id)
        with self._lock:
            if self._closed:
                raise RuntimeError("the fit jobs are shut down")
            self._jobs[job.id] = job
            self._workspaces[job.id] = ws
            self._forget_old()
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="mixwise-mmm-fits", daemon=True
                )
                self._worker.start()
            snapshot = dataclasses.replace(job)
        self._queue.put(job.id)
        return snapshot

    def get(self, job_id: str) -> FitJob | None:
        """A snapshot of the job (None if unknown)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else dataclasses.replace(job)

    def list(self) -> list[FitJob]:
        """Snapshots of every remembered job, newest first."""
        with self._lock:
            return [dataclasses.replace(j) for j in reversed(self._jobs.values())]

    def wait(self, job_id: str, timeout: float | None = None) -> FitJob:
        """Block until the job is done or failed (or ``timeout`` seconds passed); its snapshot."""
        with self._changed:
            job = self._jobs.get(job_id)
            if job is None:
                raise KeyError(job_id)
            self._changed.wait_for(lambda: not job.active, timeout)
            return dataclasses.replace(job)

    def shutdown(self) -> None:
        """Fail the queued jobs and stop the worker after the running one (not waited for)."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                if job.status == "queued":
                    self._finish(job, error="the server stopped before this fit started")
        self._queue.put(None)

    # -- working -------------------------------------------------------------------------
    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if not j.active]
        for key in finished[: max(len(finished) - self.keep, 0)]:
            del self._jobs[key]

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._changed:
            job = self._jobs.get(job_id)
            if job is not None:
                for name, value in changes.items():
                    setattr(job, name, value)
                self._changed.notify_all()

    def _finish(self, job: FitJob, *, run_id: int | None = None, error: str | None = None) -> None:
        """Mark ``job`` done or failed (the lock is held)."""
        job.finished_at = _now()
        if error is None:
            job.status, job.phase, job.progress, job.run_id = "done", "done", 1.0, run_id
        else:
            job.status, job.phase, job.error = "failed", "failed", error
        self._workspaces.pop(job.id, None)
        self._changed.notify_all()

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                ws = self._workspaces.get(job_id)
                if job is None or ws is None or job.status != "queued":
                    continue
                job.status, job.phase, job.started_at = "running", "preparing", _now()
                settings = dict(job.settings)
                user_id = job.user_id
            run_id, error = self._run(job_id, ws, settings, user_id)
            with self._lock:
                if job_id in self._jobs:
                    self._finish(self._jobs[job_id], run_id=run_id, error=error)

    def _run(
        self, job_id: str, ws: Workspace, settings: dict[str, Any], user_id: int | None
    ) -> tuple[int | None, str | None]:
        """Fit and store; (run id, None) or (None, the message). Never raises."""
        from mixwise.mmm.runs import save_run

        def on_progress(phase: str, fraction: float) -> None:
            self._update(job_id, phase=phase, progress=max(0.0, min(float(fraction), 1.0)))

        try:
            model = self.fitter(ws, settings, on_progress)
            self._update(job_id, phase="saving")
            return save_run(ws, model, user_id=user_id), None
        except ValueError as exc:  # MMMDataError, configuration errors: the user can act
            return None, str(exc)
        except Exception as exc:
            log.exception("MMM fit job %s failed", job_id)
            return None, f"the fit failed unexpectedly ({type(exc).__name__}: {exc})"
