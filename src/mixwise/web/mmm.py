"""What the MMM page shows: a stored run's verdict, estimates, decomposition and response curves,
the "Fit a model" form, and the background fit jobs.

A run's summary (verdict, diagnostics, ROI, contribution...) is in the state store and needs
no JAX (:func:`~mixwise.mmm.runs.show_run`). Its decomposition over time and its response
curves need the posterior: :class:`RunCache` reloads the model once per run
(:func:`~mixwise.mmm.runs.load_model` imports JAX) and keeps what the page draws from it.
Runs never change once stored, so the cache needs no invalidation.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mixwise.mmm.data import infer_kpi_type
from mixwise.mmm.jobs import BOUNDS, DEFAULTS, BadSettings, FitJob, check_settings
from mixwise.mmm.runs import RunInfo
from mixwise.web.attribution import Problem, finite
from mixwise.web.i18n import N_
from mixwise.workspace import Workspace

# What a job's phase is called on the page.
PHASES: dict[str, str] = {
    "queued": N_("Waiting for the fit ahead of it"),
    "preparing": N_("Preparing the data and compiling the model"),
    "fitting": N_("Fitting (fast mode)"),
    "sampling": N_("Sampling the posterior"),
    "summarising": N_("Summarising the estimates"),
    "saving": N_("Saving the run"),
    "done": N_("Done"),
    "failed": N_("Failed"),
}
KPI_LABELS: dict[str, str] = {
    "revenue": N_("Revenue"),
    "conversions": N_("Conversions"),
    "leads": N_("Leads"),
}
METHOD_LABELS: dict[str, str] = {
    "nuts": N_("Full posterior (NUTS)"),
    "map": N_("Fast mode (MAP)"),
}
NUMBER_PROBLEMS: dict[str, str] = {
    "chains": N_("Chains must be a whole number from %(low)s to %(high)s."),
    "draws": N_("Draws must be a whole number from %(low)s to %(high)s."),
    "warmup": N_("Warm-up draws must be a whole number from %(low)s to %(high)s."),
}
CURVE_POINTS = 21
CURVE_DRAWS = 200


def kpi_label(kpi: str, gettext: Callable[[str], str]) -> str:
    return gettext(KPI_LABELS[kpi]) if kpi in KPI_LABELS else kpi


# -- the posterior-based parts of a run, cached --------------------------------------------------
@dataclass(frozen=True, eq=False)
class RunView:
    """What the page draws from a run's posterior."""

    contributions: pd.DataFrame  # per period: kpi, baseline, each channel, holdout
    curves: dict[str, Any]  # response_curves(...)
    max_rhat: float  # the run's thresholds for "usable"
    min_ess: float
    max_divergent_share: float  # of all draws
    extras: dict[Any, Any] = field(default_factory=dict)  # figures per language


def load_view(ws: Workspace, run_id: int) -> RunView:
    """Reload the run's model (imports JAX) and compute its decomposition and curves."""
    from mixwise.mmm.response import ResponseModel, response_curves
    from mixwise.mmm.runs import load_model

    model = load_model(ws, run_id)
    curves = response_curves(
        ResponseModel.from_mmm(model, force=True, draws=CURVE_DRAWS), CURVE_POINTS
    )
    return RunView(
        model.contributions(),
        curves,
        model.max_rhat,
        model.min_ess,
        float(getattr(model, "max_divergent_share", 0.0)),
    )


class RunCache:
    """:class:`RunView` per run (least recently used dropped first); one load at a time."""

    def __init__(self, maxsize: int = 8) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[tuple[str, int, str], RunView] = OrderedDict()
        self._lock = threading.Lock()
        self._compute = threading.Lock()
        self.computed = 0

    def _lookup(self, key: tuple[str, int, str]) -> RunView | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def get(self, ws: Workspace, info: RunInfo) -> RunView:
        key = (str(ws.path), info.id, info.created_at)
        if (hit := self._lookup(key)) is not None:
            return hit
        with self._compute:
            if (hit := self._lookup(key)) is not None:
                return hit
            view = load_view(ws, info.id)
            self.computed += 1
            with self._lock:
                self._data[key] = view
                while len(self._data) > self.maxsize:
                    self._data.popitem(last=False)
            return view

    def figures(
        self, view: RunView, lang: str, make: Callable[[], dict[str, str | None]]
    ) -> dict[str, str | None]:
        """``make()``, kept with ``view`` per language."""
        with self._lock:
            hit: dict[str, str | None] | None = view.extras.get(("figures", lang))
        if hit is None:
            hit = make()
            with self._lock:
                view.extras[("figures", lang)] = hit
        return hit


# -- what the page shows -------------------------------------------------------------------------
def _interval(estimates: Mapping[str, Any] | None) -> dict[str, float | None]:
    e = estimates or {}
    return {k: finite(e.get(k)) for k in ("mean", "median", "lower", "upper")}


def estimate_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per channel: ROI, marginal ROI and contribution with their intervals, the channel's
    share of the media contribution, and whether the data measured its ROI (see
    :meth:`mixwise.mmm.fit.MMM._identification`)."""
    roi = summary.get("roi") or {}
    contribution = summary.get("contribution") or {}
    total = sum(max(finite(v.get("mean")) or 0.0, 0.0) for v in contribution.values())
    ident = summary.get("identification") or {}
    rows = []
    for channel in roi:
        c = _interval(contribution.get(channel))
        info = ident.get(channel, {})
        rows.append(
            {
                "channel": channel,
                "roi": _interval(roi.get(channel)),
                "marginal": _interval((summary.get("marginal_roi") or {}).get(channel)),
                "contribution": c,
                "share": (max(c["mean"] or 0.0, 0.0) / total) if total > 0 else None,
                # False: the ROI is mostly its prior (None: a run stored before this check).
                "measured": info.get("measured"),
                "prior_width_share": finite(info.get("prior_width_share")),
                "min_spend_share": finite(info.get("min_spend_share")),
            }
        )
    return rows


def geo_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A panel's ROI per geo: per geo (in the fit's order, largest spend first) its spend
    and, per channel in the ROI table's order, the ROI with its interval (None where the geo
    has no entry). Empty for national runs and runs stored before per-geo ROIs."""
    by_geo = summary.get("roi_by_geo") or {}
    channels = list(summary.get("roi") or {})
    rows = []
    for geo, per_channel in by_geo.items():
        spend = sum(finite(v.get("spend")) or 0.0 for v in per_channel.values())
        rows.append(
            {
                "geo": geo,
                "spend": spend,
                "cells": [
                    _interval(per_channel[c]) if c in per_channel else None for c in channels
                ],
            }
        )
    return rows


def synergy_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"pair": name, **_interval(values)}
        for name, values in (summary.get("synergy") or {}).items()
    ]


def diagnostic_rows(
    diagnostics: Mapping[str, Any] | None,
    max_rhat: float,
    min_ess: float,
    max_divergent_share: float = 0.0,
) -> list[dict[str, Any]]:
    """Each convergence check with its value, its threshold and whether it passed."""
    if not diagnostics:
        return []
    rhat = finite(diagnostics.get("max_rhat"))
    ess = finite(diagnostics.get("min_ess"))
    divergences = int(diagnostics.get("divergences") or 0)
    draws = int(diagnostics.get("draws") or 0) * int(diagnostics.get("chains") or 0)
    tolerated = max_divergent_share * draws
    return [
        {
            "label": N_("Highest R-hat"),
            "note": N_("at most %(limit)s; parameter %(name)s"),
            "params": {"limit": f"{max_rhat:g}", "name": diagnostics.get("worst", "")},
            "value": "—" if rhat is None else f"{rhat:.3f}",
            "ok": rhat is not None and rhat <= max_rhat,
        },
        {
            "label": N_("Lowest effective sample size"),
            "note": N_("at least %(limit)s"),
            "params": {"limit": f"{min_ess:g}"},
            "value": "—" if ess is None else f"{ess:,.0f}",
            "ok": ess is not None and ess >= min_ess,
        },
        {
            "label": N_("Divergent transitions"),
            "note": N_("at most %(limit)s"),
            "params": {"limit": f"{math.floor(tolerated):,}"},
            "value": str(divergences),
            "ok": divergences <= tolerated,
        },
        {
            "label": N_("Chains × draws"),
            "note": N_("after warm-up"),
            "params": {},
            "value": f"{diagnostics.get('chains', '?')} × {diagnostics.get('draws', '?')}",
            "ok": None,
        },
    ]


def page_context(
    info: RunInfo,
    summary: Mapping[str, Any],
    view: RunView | None,
    currency: str,
    gettext: Callable[[str], str],
) -> dict[str, Any]:
    data = summary.get("data") or {}
    kpi = str(data.get("kpi") or "")
    return {
        "run": info,
        "summary": summary,
        "fast_mode": info.method == "map",
        "kpi": kpi,
        "kpi_label": kpi_label(kpi, gettext),
        "currency": data.get("currency") or currency,
        "revenue_kpi": infer_kpi_type(kpi) == "revenue",
        "diagnostics": diagnostic_rows(
            summary.get("diagnostics"),
            view.max_rhat if view else 1.01,
            view.min_ess if view else 400.0,
            view.max_divergent_share if view else 0.0,
        ),
        "estimates": estimate_rows(summary),
        "synergies": synergy_rows(summary),
        "geo_rois": geo_rows(summary),
    }


def figures(
    ctx: Mapping[str, Any], view: RunView, gettext: Callable[[str], str]
) -> dict[str, str | None]:
    """The page's Plotly figures as JSON text (None where there is nothing to draw)."""
    from mixwise.web import charts

    label, currency = ctx["kpi_label"], ctx["currency"]
    channels = list(ctx["run"].channels)
    return {
        "roi_fig": charts.mmm_roi_figure(
            ctx["estimates"],
            gettext("ROI (%(kpi)s per %(currency)s)") % {"kpi": label, "currency": currency},
            gettext,
            break_even=ctx["revenue_kpi"],
        ),
        "decomposition_fig": charts.mmm_decomposition_figure(
            view.contributions, channels, label, gettext
        ),
        "curves_fig": charts.mmm_curves_figure(
            view.curves,
            gettext("Spend per period (%(currency)s)") % {"currency": currency},
            gettext("%(kpi)s per period") % {"kpi": label},
            gettext,
        ),
    }


# -- the form ----------------------------------------------------------------------------------
def default_form(channels: list[str]) -> dict[str, Any]:
    return {
        "kpi": DEFAULTS["kpi"],
        "channels": set(channels),
        "controls": True,
        "method": DEFAULTS["method"],
        "chains": str(DEFAULTS["chains"]),
        "draws": str(DEFAULTS["draws"]),
        "warmup": str(DEFAULTS["warmup"]),
    }


def parse_fit_form(values: Mapping[str, list[str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings for :meth:`FitJobs.submit`, the form as sent); raises :class:`FormProblems`.

    The form always sends an empty ``channels`` (a hidden field), so no box ticked is a
    mistake to show rather than "every channel".
    """

    def one(name: str) -> str:
        got = values.get(name) or [""]
        return got[-1].strip()

    problems: list[Problem] = []
    channels = [v.strip() for v in values.get("channels", []) if v.strip()]
    form: dict[str, Any] = {
        "kpi": one("kpi") or DEFAULTS["kpi"],
        "channels": set(channels),
        "controls": one("controls") == "all",
        "method": one("method") or DEFAULTS["method"],
        **{k: one(k) for k in ("chains", "draws", "warmup")},
    }
    if not channels:
        problems.append(Problem(N_("Tick at least one channel.")))
    settings: dict[str, Any] = {
        "kpi": form["kpi"],
        "channels": channels or None,
        "controls": None if form["controls"] else [],
        "method": form["method"],
    }
    for name in ("chains", "draws", "warmup"):
        text = form[name]
        if not text:
            continue
        lo, hi = BOUNDS[name]
        if text.isdigit() and lo <= int(text) <= hi:
            settings[name] = int(text)
        else:
            problems.append(Problem(NUMBER_PROBLEMS[name], {"low": lo, "high": hi}))
    if not problems:
        try:
            settings = check_settings(settings)
        except BadSettings as exc:
            problems.extend(Problem(p, raw=True) for p in exc.problems)
    if problems:
        raise FormProblems(problems, form)
    return settings, form


class FormProblems(ValueError):
    def __init__(self, problems: list[Problem], form: dict[str, Any]) -> None:
        super().__init__("; ".join(p.english() for p in problems))
        self.problems = problems
        self.form = form


def job_context(job: FitJob) -> dict[str, Any]:
    return {
        "job": job,
        "phase": PHASES.get(job.phase, job.phase),
        "percent": round(100 * job.progress),
        "method": METHOD_LABELS.get(str(job.settings.get("method")), ""),
    }
