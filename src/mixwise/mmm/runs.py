"""Fitted models stored in the workspace: saved, listed, shown and reloaded.

A run is a row of the state store's ``model_runs`` (what it was fitted on, its settings, its
verdict and its summary — every estimate with its interval, so listing and showing runs needs
neither the posterior nor JAX) plus one file, ``runs/mmm-<id>.npz``, holding the posterior
draws and the data they were fitted on, from which :func:`load_model` rebuilds the fitted
:class:`~mixwise.mmm.fit.MMM`. Saving is all or nothing: the file is written under a
temporary name and renamed inside the database transaction that records it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import select

from mixwise.store.state import ModelRun

if TYPE_CHECKING:
    from mixwise.mmm.fit import MMM
    from mixwise.workspace import Workspace

KIND = "mmm"
RUNS_DIR = "runs"


class RunNotFound(LookupError):
    """No such run (or none at all) in the workspace."""


@dataclass(frozen=True)
class RunInfo:
    id: int
    created_at: str
    method: str
    usable: bool
    verdict: str
    source: str
    data_start: str
    data_end: str
    frequency: str
    periods: int
    channels: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "channels": list(self.channels)}


def settings_of(model: MMM) -> dict[str, Any]:
    """The model's configuration as JSON-able data (what :func:`load_model` rebuilds)."""
    out = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
    if hasattr(model, "adstock_"):  # fitted: the options it used (e.g. steps from the data)
        out["adstock_options"] = model.adstock_.get_params()
    out["baseline"] = dataclasses.asdict(model.baseline)
    out["baseline"]["windows"] = {k: list(v) for k, v in model.baseline.windows.items()}
    out["lift_tests"] = [dataclasses.asdict(t) for t in model.lift_tests]
    out["synergies"] = [list(p) for p in model.synergies]
    out["roi_prior"] = {k: list(v) for k, v in model.roi_prior.items()}
    return json.loads(json.dumps(out, default=str))


def save_run(ws: Workspace, model: MMM, *, user_id: int | None = None) -> int:
    """Store a fitted model; returns its run id."""
    data = model.data_
    folder = ws.path / RUNS_DIR
    folder.mkdir(exist_ok=True)
    tmp = folder / f".mmm-{os.getpid()}-{id(model)}.npz"
    arrays: dict[str, Any] = {f"sample:{k}": np.asarray(v) for k, v in model.samples_.items()}
    for field in dataclasses.fields(model.inputs_):
        value = getattr(model.inputs_, field.name)
        arrays[f"input:{field.name}"] = np.asarray(value)
    arrays.update(
        {
            "data:dates": np.asarray(data.dates.strftime("%Y-%m-%d"), dtype="U10"),
            "data:spend": data.spend,
            "data:kpi": data.kpi_values,
            "data:controls": data.control_values,
        }
    )
    meta = {
        "frequency": data.frequency,
        "geos": list(data.geos),
        "channels": list(data.channels),
        "controls": list(data.controls),
        "kpi": data.kpi,
        "kpi_type": data.kpi_type,
        "currency": data.currency,
        "source": data.source,
        "diagnostics": None if model.diagnostics_ is None else model.diagnostics_.__dict__,
        "holiday_names": list(model.holiday_names_),
    }
    arrays["meta"] = np.asarray(json.dumps(meta, default=str))
    np.savez_compressed(tmp, **arrays)
    final: Path | None = None
    try:
        with ws.state.session() as s:
            summary = model.summary()
            row = ModelRun(
                kind=KIND,
                method=model.method,
                usable=model.verdict_.usable,
                verdict=model.verdict_.message,
                source=data.source[:500],
                data_start=str(data.dates[0].date()),
                data_end=str(data.dates[-1].date()),
                frequency=data.frequency,
                periods=data.n_periods,
                settings=settings_of(model),
                summary=_json_safe(json.loads(json.dumps(summary, default=str))),
                artifact="",
                user_id=user_id,
            )
            s.add(row)
            s.flush()
            final = folder / f"mmm-{row.id}.npz"
            tmp.replace(final)
            row.artifact = f"{RUNS_DIR}/{final.name}"
            run_id = row.id
    except BaseException:
        tmp.unlink(missing_ok=True)
        if final is not None:
            final.unlink(missing_ok=True)
        raise
    model.run_id_ = run_id
    return run_id


def _json_safe(value: Any) -> Any:
    """NaN and infinities as None: strict JSON (PostgreSQL's JSON refuses NaN)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _info(row: ModelRun) -> RunInfo:
    return RunInfo(
        id=row.id,
        created_at=row.created_at.isoformat(timespec="seconds"),
        method=row.method,
        usable=row.usable,
        verdict=row.verdict,
        source=row.source,
        data_start=row.data_start,
        data_end=row.data_end,
        frequency=row.frequency,
        periods=row.periods,
        channels=tuple(row.summary.get("roi", {})),
    )


def list_runs(ws: Workspace) -> list[RunInfo]:
    """Every stored MMM run, newest first."""
    with ws.state.session() as s:
        rows = s.scalars(select(ModelRun).where(ModelRun.kind == KIND).order_by(ModelRun.id.desc()))
        return [_info(r) for r in rows]


def _row(ws: Workspace, run_id: int | None) -> ModelRun:
    with ws.state.session() as s:
        q = select(ModelRun).where(ModelRun.kind == KIND)
        q = q.where(ModelRun.id == run_id) if run_id is not None else q.order_by(ModelRun.id.desc())
        row = s.scalars(q.limit(1)).first()
    if row is None:
        raise RunNotFound(
            f"no MMM run {run_id} in this workspace; `mixwise mmm show` lists them"
            if run_id is not None
            else "no MMM run in this workspace yet; fit one with `mixwise mmm fit`"
        )
    return row


def show_run(ws: Workspace, run_id: int | None = None) -> tuple[RunInfo, dict[str, Any]]:
    """A run's record and its summary (the latest run without ``run_id``); no JAX needed."""
    row = _row(ws, run_id)
    return _info(row), dict(row.summary)


def load_model(ws: Workspace, run_id: int | None = None) -> MMM:
    """Rebuild the fitted model of a run (the latest without ``run_id``)."""
    from mixwise.mmm.data import MMMData
    from mixwise.mmm.features import BaselineSpec
    from mixwise.mmm.fit import MMM, Diagnostics, LiftTest, Verdict
    from mixwise.mmm.model import ModelInputs
    from mixwise.mmm.transforms import get_adstock, get_saturation

    row = _row(ws, run_id)
    with np.load(ws.path / row.artifact, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    settings = dict(row.settings)
    baseline = dict(settings.pop("baseline"))
    baseline["holidays"] = tuple(baseline["holidays"])
    baseline["events"] = tuple(tuple(e) for e in baseline["events"])
    baseline["windows"] = {k: tuple(v) for k, v in baseline["windows"].items()}
    baseline.setdefault("holiday_shape", "box")  # runs stored before ramps were the default
    baseline.setdefault("interactions", False)  # runs stored before interactions existed
    settings["baseline"] = BaselineSpec(**baseline)
    settings["lift_tests"] = [LiftTest(**t) for t in settings["lift_tests"]]
    settings["synergies"] = [tuple(p) for p in settings["synergies"]]
    settings["roi_prior"] = {k: tuple(v) for k, v in settings["roi_prior"].items()}
    model = MMM(**settings)
    model.data_ = MMMData(
        dates=pd.DatetimeIndex(pd.to_datetime(arrays["data:dates"])),
        frequency=meta["frequency"],
        geos=tuple(meta["geos"]),
        channels=tuple(meta["channels"]),
        controls=tuple(meta["controls"]),
        kpi=meta["kpi"],
        kpi_type=meta["kpi_type"],
        spend=arrays["data:spend"],
        kpi_values=arrays["data:kpi"],
        control_values=arrays["data:controls"],
        currency=meta["currency"],
        source=meta["source"],
    )
    inputs = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("input:")}
    samples = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("sample:")}
    if np.ndim(inputs["spend"]) == 2:  # stored before geo panels: one geo, no geo axis
        _add_geo_axis(inputs, samples, model.data_.spend_scale)
    model.inputs_ = ModelInputs(**inputs)
    model.samples_ = samples
    model.adstock_ = get_adstock(model.adstock, **model.adstock_options)
    model.saturation_ = get_saturation(model.saturation, **model.saturation_options)
    model.holiday_names_ = tuple(meta["holiday_names"])
    diag: Mapping[str, Any] | None = meta["diagnostics"]
    model.diagnostics_ = None if diag is None else Diagnostics(**diag)
    model.verdict_ = Verdict(row.usable, row.verdict)
    model._summarise()
    model.run_id_ = row.id
    return model


def _add_geo_axis(
    inputs: dict[str, Any], samples: dict[str, Any], spend_scale: npt.NDArray[np.float64]
) -> None:
    """A national run stored before geo panels, in today's shapes (a geo axis of length 1)."""
    inputs["spend"] = inputs["spend"][:, None, :]
    inputs["controls"] = inputs["controls"][:, None, :]
    inputs["spend_totals"] = inputs["spend_totals"][None, :]
    inputs["kpi_scale"] = np.atleast_1d(np.asarray(inputs["kpi_scale"], dtype=np.float64))
    inputs["spend_scale"] = np.asarray(spend_scale, dtype=np.float64)[None, :]
    samples["saturated"] = samples["saturated"][:, :, None, :]
    samples["beta"] = samples["beta"][:, None, :]
    if "synergy" in samples:
        samples["synergy"] = samples["synergy"][:, :, None, :]
    for name in ("baseline", "mu"):
        if name in samples:
            samples[name] = samples[name][:, :, None]
