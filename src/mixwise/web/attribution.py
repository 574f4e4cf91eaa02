"""What the Attribution page and ``/api/v1/attribution`` share: options, catalog and a cache.

Both sides read the same query (``models=first,last&by=conversions&markov_order=1...``) with
:func:`parse_query`, which reports every bad value at once as :class:`BadQuery` (msgids with
params, so the page shows them translated and the API in English). Results come from
:meth:`AttributionCache.get`, keyed on the warehouse's data version and the options: a page
view after the first costs nothing until an import changes the data.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from mixwise.attribution.api import AttributionResult, attribute
from mixwise.attribution.models import MODELS
from mixwise.web.i18n import N_
from mixwise.workspace import Workspace

# The order the page and the API list models in; models registered later follow.
MODEL_ORDER = (
    "first",
    "last",
    "last_non_direct",
    "linear",
    "position",
    "time_decay",
    "w_shaped",
    "custom",
    "markov",
    "shapley",
    "shapley_simplified",
    "shapley_ordered",
)
MODEL_TEXT: dict[str, tuple[str, str]] = {
    "first": (N_("First touch"), N_("All the credit goes to the first touch of the journey.")),
    "last": (N_("Last touch"), N_("All the credit goes to the last touch before conversion.")),
    "last_non_direct": (
        N_("Last non-direct"),
        N_("All the credit goes to the last touch that is not a direct visit."),
    ),
    "linear": (N_("Linear"), N_("Every touch of the journey gets an equal part.")),
    "position": (
        N_("Position-based"),
        N_("U-shaped: the first and the last touch get most of the credit (40/20/40 by default)."),
    ),
    "time_decay": (
        N_("Time decay"),
        N_("Touches closer to the conversion get more; the weight halves every half-life."),
    ),
    "w_shaped": (
        N_("W-shaped"),
        N_(
            "The first touch and the touches that created the lead and the opportunity get "
            "most of the credit (30/30/30, the rest 10)."
        ),
    ),
    "custom": (
        N_("Custom positions"),
        N_("Weights per position from the start and the end of the journey, set in Python."),
    ),
    "markov": (
        N_("Markov chain"),
        N_(
            "Data-driven: how many conversions would be lost if the channel were removed, "
            "solved exactly on the journeys' transition chain."
        ),
    ),
    "shapley": (
        N_("Shapley value"),
        N_("Data-driven: each channel's average contribution over all groups of channels."),
    ),
    "shapley_simplified": (
        N_("Shapley (simplified)"),
        N_("Each conversion is split equally among the distinct channels of its journey."),
    ),
    "shapley_ordered": (
        N_("Shapley (ordered)"),
        N_("The simplified Shapley value, split further by where in the journey a channel came."),
    ),
}
DATA_DRIVEN = ("markov", "shapley")
DISAGREEMENT = 0.05  # share spread (0-1) from which models are said to disagree on a channel
CreditBy = Literal["conversions", "value"]
Granularity = Literal["channel", "campaign"]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    label: str  # msgid (the model's name itself for models the catalog does not know)
    description: str  # msgid (or the class docstring's first line)
    needs_timing: bool
    translated: bool  # whether label and description are catalog msgids


def model_names() -> list[str]:
    """Registered models, in the page's order."""
    known = [m for m in MODEL_ORDER if m in MODELS]
    return known + [m for m in MODELS if m not in MODEL_ORDER]


def model_info(name: str) -> ModelInfo:
    cls = MODELS[name]
    if name in MODEL_TEXT:
        label, description = MODEL_TEXT[name]
        return ModelInfo(name, label, description, cls.needs_timing, True)
    doc = (cls.__doc__ or "").strip().splitlines()
    return ModelInfo(name, name, doc[0] if doc else "", cls.needs_timing, False)


def model_catalog() -> list[ModelInfo]:
    return [model_info(m) for m in model_names()]


def model_label(name: str, gettext: Callable[[str], str]) -> str:
    info = MODEL_TEXT.get(name)
    return gettext(info[0]) if info else name


# -- options -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One bad option: a msgid and its params (``raw``: a domain message, shown as is)."""

    message: str
    params: dict[str, Any] = field(default_factory=dict)
    raw: bool = False

    def english(self) -> str:
        return self.message if self.raw else self.message % self.params


class BadQuery(ValueError):
    """Options that cannot be used; ``problems`` says what is wrong with each."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.english() for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class AttributionQuery:
    """Validated options of one attribution run (hashable: part of the cache key)."""

    models: tuple[str, ...]
    by: CreditBy = "conversions"
    markov_order: int = 1
    half_life_days: float = 7.0
    lookback_days: float | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    granularity: Granularity = "channel"

    def params(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if "markov" in self.models:
            out["markov"] = {"order": self.markov_order}
        if "time_decay" in self.models:
            out["time_decay"] = {"half_life_days": self.half_life_days}
        return out


def form_values(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Query items (``request.query_params.multi_items()``) grouped by name."""
    out: dict[str, list[str]] = {}
    for key, value in items:
        out.setdefault(key, []).append(value)
    return out


def _one(values: Mapping[str, list[str]], name: str) -> str:
    got = values.get(name) or [""]
    return got[-1].strip()


def _positive(text: str, problem: Problem, problems: list[Problem]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        problems.append(problem)
        return None
    if not math.isfinite(value) or value <= 0:
        problems.append(problem)
        return None
    return value


def _date(text: str, problem: Problem, problems: list[Problem]) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(problem)
        return None


def parse_query(
    values: Mapping[str, list[str]], *, empty_models_is_all: bool = True
) -> AttributionQuery:
    """Read and check the options; raises :class:`BadQuery` listing every problem.

    ``models`` may repeat or be comma-separated; missing → every model, unless
    ``empty_models_is_all`` is false (a submitted form with no box ticked).
    """
    problems: list[Problem] = []
    names = [n.strip() for v in values.get("models", []) for n in v.split(",") if n.strip()]
    models: tuple[str, ...] = ()
    if not names:
        if empty_models_is_all:
            models = tuple(model_names())
        else:
            problems.append(Problem(N_("Pick at least one model.")))
    else:
        unknown = [n for n in dict.fromkeys(names) if n not in MODELS]
        for n in unknown:
            problems.append(
                Problem(
                    N_("Unknown model %(name)s; the models are: %(known)s."),
                    {"name": n, "known": ", ".join(model_names())},
                )
            )
        chosen = set(names)
        models = tuple(m for m in model_names() if m in chosen)

    by = _one(values, "by") or "conversions"
    if by not in ("conversions", "value"):
        problems.append(Problem(N_("Credit must be given by conversions or by value.")))
        by = "conversions"

    order_text = _one(values, "markov_order") or "1"
    order = 1
    if order_text.isdigit() and 1 <= int(order_text) <= 4:
        order = int(order_text)
    else:
        problems.append(Problem(N_("The Markov order must be a whole number from 1 to 4.")))

    half_life = 7.0
    if text := _one(values, "half_life_days"):
        bad = Problem(N_("The time-decay half-life must be a positive number of days."))
        half_life = _positive(text, bad, problems) or half_life

    lookback = None
    if text := _one(values, "lookback_days"):
        bad = Problem(N_("The lookback window must be a positive number of days, or empty."))
        lookback = _positive(text, bad, problems)

    start = _date(
        _one(values, "start"),
        Problem(N_("The start date must be a date such as 2024-01-31.")),
        problems,
    )
    end = _date(
        _one(values, "end"),
        Problem(N_("The end date must be a date such as 2024-12-31.")),
        problems,
    )
    if start and end and start > end:
        problems.append(
            Problem(
                N_("The start date %(start)s is after the end date %(end)s."),
                {"start": start.isoformat(), "end": end.isoformat()},
            )
        )

    granularity = _one(values, "granularity") or "channel"
    if granularity not in ("channel", "campaign"):
        problems.append(Problem(N_("Granularity must be channel or campaign.")))
        granularity = "channel"

    if problems:
        raise BadQuery(problems)
    return AttributionQuery(
        models=models,
        by=by,  # type: ignore[arg-type]
        markov_order=order,
        half_life_days=half_life,
        lookback_days=lookback,
        start=start,
        end=end,
        granularity=granularity,  # type: ignore[arg-type]
    )


# -- running and caching ---------------------------------------------------------------------
class NoJourneys(LookupError):
    """The workspace has no touchpoints to attribute."""


def journey_rows(ws: Workspace) -> int:
    return ws.warehouse.summary("touchpoints").rows


def run(ws: Workspace, query: AttributionQuery) -> AttributionResult:
    """``attribute(...)`` with the query's options; domain errors become :class:`BadQuery`."""
    if journey_rows(ws) == 0:
        raise NoJourneys("the workspace has no touchpoints; import touchpoints and conversions")
    try:
        return attribute(
            ws,
            list(query.models),
            by=query.by,
            params=query.params(),
            lookback_days=query.lookback_days,
            start=query.start,
            end=query.end,
            granularity=query.granularity,
        )
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise BadQuery([Problem(str(message), raw=True)]) from exc


CacheKey = tuple[int, str, AttributionQuery]
T = TypeVar("T")


class AttributionCache:
    """Results per (data version, currency, options), least recently used dropped first.

    One computation runs at a time: a second request for the same options waits for the first
    and then finds its result, instead of computing it again.
    """

    def __init__(self, maxsize: int = 16) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[CacheKey, AttributionResult] = OrderedDict()
        self._lock = threading.Lock()
        self._compute = threading.Lock()
        self._extras: dict[int, dict[Any, Any]] = {}  # id(result) -> things derived from it
        self.computed = 0  # how many results were computed (not served from the cache)

    @staticmethod
    def key(ws: Workspace, query: AttributionQuery) -> CacheKey:
        return (ws.warehouse.version, ws.currency, query)

    def _lookup(self, key: CacheKey) -> AttributionResult | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def get(self, ws: Workspace, query: AttributionQuery) -> AttributionResult:
        key = self.key(ws, query)
        if (hit := self._lookup(key)) is not None:
            return hit
        with self._compute:
            if (hit := self._lookup(key)) is not None:
                return hit
            result = run(ws, query)
            self.computed += 1
            with self._lock:
                version = key[0]
                for old in [k for k in self._data if k[0] != version]:
                    self._forget(old)  # older data: never asked for again
                self._data[key] = result
                self._extras[id(result)] = {}
                while len(self._data) > self.maxsize:
                    self._forget(next(iter(self._data)))
            return result

    def _forget(self, key: CacheKey) -> None:
        result = self._data.pop(key)
        self._extras.pop(id(result), None)

    def derived(self, result: AttributionResult, name: Any, make: Callable[[], T]) -> T:
        """``make()``, kept with ``result`` while it is cached (figures per language...)."""
        with self._lock:
            extras = self._extras.get(id(result))
            if extras is not None and name in extras:
                value: T = extras[name]
                return value
        value = make()
        with self._lock:
            extras = self._extras.get(id(result))
            if extras is not None:
                extras[name] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._extras.clear()


def warm(ws: Workspace, cache: AttributionCache) -> None:
    """Compute the default result (every model), so the page's first view is instant."""
    try:
        if journey_rows(ws):
            cache.get(ws, parse_query({}))
    except Exception:  # pragma: no cover - a failure shows on the page when it is opened
        pass


# -- JSON ------------------------------------------------------------------------------------
def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf as None and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- what the page shows ---------------------------------------------------------------------
def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, not a number or not finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def channel_order(result: AttributionResult) -> list[str]:
    """Channels by their mean share across models, largest first."""
    comp = result.comparison
    if comp.empty:
        return []
    mean = comp[result.models].mean(axis=1).fillna(0.0)
    return [str(c) for c in mean.sort_values(ascending=False, kind="stable").index]


def comparison_rows(result: AttributionResult, channels: list[str]) -> list[dict[str, Any]]:
    """Channel × model shares with each row's lowest and highest cell marked, and the rows
    where models disagree most flagged (``hot``; ``hottest`` for the largest spread)."""
    comp = result.comparison
    if comp.empty:
        return []
    models = result.models
    top = float(comp["spread"].max()) if len(models) > 1 else 0.0
    rows = []
    for channel in channels:
        row = comp.loc[channel]
        spread = finite(row["spread"]) or 0.0
        lo, hi = finite(row["min"]), finite(row["max"])
        cells = []
        for m in models:
            share = finite(row[m])
            mark = ""
            if len(models) > 1 and share is not None and spread >= DISAGREEMENT:
                mark = "hi" if share == hi else "lo" if share == lo else ""
            cells.append({"model": m, "share": share, "mark": mark})
        rows.append(
            {
                "channel": channel,
                "cells": cells,
                "spread": spread,
                "hot": len(models) > 1 and spread >= DISAGREEMENT,
                "hottest": len(models) > 1 and spread >= DISAGREEMENT and spread == top,
            }
        )
    return rows


def disagreements(result: AttributionResult, gettext: Callable[[str], str]) -> list[dict[str, Any]]:
    """The params of one sentence per channel on which models disagree, largest spread first
    (as :meth:`AttributionResult.disagreements`, with model labels for the reader)."""
    comp = result.comparison
    if comp.empty or len(result.models) < 2:
        return []
    out = []
    for channel, row in comp.sort_values("spread", ascending=False, kind="stable").iterrows():
        if not row["spread"] >= DISAGREEMENT:
            break
        shares = row[result.models].astype(float)
        out.append(
            {
                "points": f"{100 * row['spread']:.0f}",
                "channel": str(channel),
                "low_model": model_label(str(shares.idxmin()), gettext),
                "low": f"{100 * row['min']:.0f}%",
                "high_model": model_label(str(shares.idxmax()), gettext),
                "high": f"{100 * row['max']:.0f}%",
            }
        )
    return out


def detail_rows(
    result: AttributionResult, model: str, channels: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per channel: conversions, value, share, cost, CPA, ROAS (None where unknown); and the
    totals (cost over the channels whose cost is known)."""
    frame = result.credits[model]
    rows: list[dict[str, Any]] = []
    for channel in channels:
        if channel not in frame.index:
            continue
        r = frame.loc[channel]
        rows.append(
            {
                "channel": channel,
                "conversions": finite(r["conversions"]),
                "value": finite(r["value"]),
                "share": finite(r["share"]),
                "cost": finite(r["cost"]),
                "cpa": finite(r["cpa"]),
                "roas": finite(r["roas"]),
            }
        )
    known = [r for r in rows if r["cost"] is not None]
    cost = sum(r["cost"] for r in known) if known else None
    conv = sum(r["conversions"] or 0.0 for r in known)
    value = sum(r["value"] or 0.0 for r in known)
    total = {
        "conversions": sum(r["conversions"] or 0.0 for r in rows),
        "value": sum(r["value"] or 0.0 for r in rows),
        "share": 1.0 if rows and any(r["share"] for r in rows) else None,
        "cost": cost,
        "cpa": cost / conv if cost is not None and conv > 0 else None,
        "roas": value / cost if cost else None,
    }
    return rows, total


def top_paths(result: AttributionResult, n: int = 15) -> list[dict[str, Any]]:
    frame = result.top_paths(n)
    return [
        {
            "path": str(r["path"]),
            "steps": str(r["path"]).split(" > "),
            "length": int(r["length"]),
            "conversions": finite(r["conversions"]),
            "nulls": finite(r["nulls"]),
            "value": finite(r["value"]),
            "rate": finite(r["conversion_rate"]),
        }
        for r in frame.to_dict("records")
        if (finite(r["conversions"]) or 0) > 0
    ]


def default_detail(models: list[str]) -> str | None:
    for m in ("markov", "shapley"):
        if m in models:
            return m
    return models[0] if models else None


def page_context(
    result: AttributionResult,
    query: AttributionQuery,
    detail: str | None,
    gettext: Callable[[str], str],
) -> dict[str, Any]:
    """The results part of the Attribution page, but for the figures (see :func:`figures`)."""
    models = result.models
    labels = {m: model_label(m, gettext) for m in models}
    infos = {m: model_info(m) for m in models}
    channels = channel_order(result)
    if detail not in models:
        detail = default_detail(models)
    rows, total = detail_rows(result, detail, channels) if detail else ([], {})

    def describe(m: str) -> str:
        info = infos[m]
        return gettext(info.description) if info.translated else info.description

    return {
        "result": result,
        "query": query,
        "has_journeys": result.total_conversions > 0 or bool(result.journeys),
        "models_run": [{"name": m, "label": labels[m], "description": describe(m)} for m in models],
        "skipped": [
            {"label": model_label(m, gettext), "reason": reason}
            for m, reason in result.skipped.items()
        ],
        "channels": channels,
        "comparison": comparison_rows(result, channels),
        "disagreements": disagreements(result, gettext),
        "detail": detail,
        "detail_label": labels.get(detail or "", ""),
        "detail_description": describe(detail) if detail else "",
        "detail_rows": rows,
        "detail_total": total,
        "paths": top_paths(result),
    }


def figures(result: AttributionResult, gettext: Callable[[str], str]) -> dict[str, str | None]:
    """The page's Plotly figures as JSON text (None where there is nothing to draw)."""
    from mixwise.web import charts

    models = result.models
    labels = {m: model_label(m, gettext) for m in models}
    comp = result.comparison
    shares = comp.loc[channel_order(result), models] if not comp.empty else comp
    return {
        "shares_fig": charts.attribution_shares_figure(shares, labels, gettext),
        "lengths_fig": charts.path_length_figure(result.path_lengths(), gettext),
        "ttc_fig": charts.time_to_conversion_figure(result.time_to_conversion(), gettext),
    }
