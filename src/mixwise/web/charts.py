"""Plotly figures of the overview, attribution, MMM and planner pages, built on the server
and drawn by Plotly.js.

Figures are returned as JSON text (``plotly.io.to_json``) that the page embeds in a
``<script type="application/json">`` block; ``static/app.js`` draws them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from mixwise.web.schemas import Coverage

PALETTE = [
    "#2563eb",
    "#f97316",
    "#10b981",
    "#a855f7",
    "#ef4444",
    "#eab308",
    "#06b6d4",
    "#ec4899",
    "#64748b",
    "#84cc16",
    "#92400e",
    "#0f766e",
]
FONT = "Inter, -apple-system, 'Segoe UI', 'PingFang SC', 'Noto Sans CJK SC', sans-serif"


def _layout(fig: go.Figure, y_title: str) -> None:
    fig.update_layout(
        template="plotly_white",
        height=340,
        margin={"l": 60, "r": 20, "t": 10, "b": 40},
        font={"family": FONT, "size": 12, "color": "#1f2937"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        hovermode="x unified",
        yaxis={"title": {"text": y_title}, "rangemode": "tozero"},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )


def spend_figure(cov: Coverage, gettext: Callable[[str], str]) -> str | None:
    """Stacked area of spend per channel per period; None when there is no media data."""
    if not cov.spend:
        return None
    currencies = {p.currency for p in cov.spend}
    fig = go.Figure()
    series: dict[str, tuple[list[str], list[float]]] = {}
    for p in cov.spend:
        name = p.channel if len(currencies) == 1 else f"{p.channel} ({p.currency})"
        xs, ys = series.setdefault(name, ([], []))
        xs.append(p.period)
        ys.append(p.spend)
    for i, (name, (xs, ys)) in enumerate(sorted(series.items())):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=name,
                mode="lines",
                stackgroup="spend",
                line={"width": 0.5, "color": color},
                hovertemplate="%{y:,.0f}",
            )
        )
    unit = next(iter(currencies)) if len(currencies) == 1 else cov.currency
    _layout(fig, gettext("Spend (%(currency)s)") % {"currency": unit})
    return pio.to_json(fig, validate=False)


def outcomes_figure(cov: Coverage, gettext: Callable[[str], str]) -> str | None:
    """Revenue bars and conversions line per period; None when there are no outcomes."""
    if not cov.outcomes:
        return None
    xs = [p.period for p in cov.outcomes]
    fig = go.Figure()
    revenue = [p.revenue for p in cov.outcomes]
    conversions = [p.conversions for p in cov.outcomes]
    has_revenue = any(v is not None for v in revenue)
    has_conversions = any(v is not None for v in conversions)
    if has_revenue:
        fig.add_trace(
            go.Bar(
                x=xs,
                y=revenue,
                name=gettext("Revenue"),
                marker={"color": "#93c5fd"},
                hovertemplate="%{y:,.0f}",
            )
        )
    if has_conversions:
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=conversions,
                name=gettext("Conversions"),
                mode="lines+markers",
                line={"color": "#f97316", "width": 2},
                marker={"size": 4},
                yaxis="y2" if has_revenue else "y",
                hovertemplate="%{y:,.0f}",
            )
        )
    title = (
        gettext("Revenue (%(currency)s)") % {"currency": cov.currency}
        if has_revenue
        else gettext("Conversions")
    )
    _layout(fig, title)
    if has_revenue and has_conversions:
        fig.update_layout(
            yaxis2={
                "title": {"text": gettext("Conversions")},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
            },
            margin={"r": 60},
        )
    return pio.to_json(fig, validate=False)


def attribution_shares_figure(
    shares: pd.DataFrame, labels: dict[str, str], gettext: Callable[[str], str]
) -> str | None:
    """Grouped bars: each channel's share (%) under each model. ``shares`` is channel × model
    (0-1), rows in the order to show; ``labels`` the models' names for the legend."""
    if shares.empty:
        return None
    fig = go.Figure()
    channels = [str(c) for c in shares.index]
    for i, model in enumerate(shares.columns):
        fig.add_trace(
            go.Bar(
                x=channels,
                y=[None if pd.isna(v) else round(100 * float(v), 2) for v in shares[model]],
                name=labels.get(model, model),
                marker={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate="%{y:.1f}%",
            )
        )
    _layout(fig, gettext("Share of credit (%)"))
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05, height=400)
    if len(channels) > 6 and max(len(c) for c in channels) > 12:  # campaigns: slant the names
        fig.update_layout(xaxis={"tickangle": -30, "automargin": True}, height=460)
    return pio.to_json(fig, validate=False)


def path_length_figure(lengths: pd.DataFrame, gettext: Callable[[str], str]) -> str | None:
    """Journeys by number of touches: converting and not (bars), and the conversion rate."""
    if lengths.empty:
        return None
    xs = [int(v) for v in lengths["length"]]
    conv = [float(v) for v in lengths["conversions"]]
    nulls = [float(v) for v in lengths["nulls"]]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=xs,
            y=conv,
            name=gettext("Converting"),
            marker={"color": "#2563eb"},
            hovertemplate="%{y:,.0f}",
        )
    )
    has_nulls = any(v > 0 for v in nulls)
    if has_nulls:
        fig.add_trace(
            go.Bar(
                x=xs,
                y=nulls,
                name=gettext("Not converting"),
                marker={"color": "#cbd5e1"},
                hovertemplate="%{y:,.0f}",
            )
        )
        rate = [100 * c / (c + n) if c + n > 0 else None for c, n in zip(conv, nulls, strict=True)]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=rate,
                name=gettext("Conversion rate (%)"),
                mode="lines+markers",
                line={"color": "#f97316", "width": 2},
                marker={"size": 5},
                yaxis="y2",
                hovertemplate="%{y:.1f}%",
            )
        )
    _layout(fig, gettext("Journeys"))
    fig.update_layout(
        barmode="stack",
        legend={"traceorder": "normal"},
        height=320,
        xaxis={"title": {"text": gettext("Touches per journey")}, "dtick": 1},
        margin={"b": 50},
    )
    if has_nulls:
        fig.update_layout(
            yaxis2={
                "title": {"text": gettext("Conversion rate (%)")},
                "overlaying": "y",
                "side": "right",
                "range": [0, 105],
                "tickmode": "array",
                "tickvals": [0, 25, 50, 75, 100],
                "showgrid": False,
            },
            margin={"r": 60},
        )
    return pio.to_json(fig, validate=False)


def time_to_conversion_figure(
    frame: pd.DataFrame | None, gettext: Callable[[str], str]
) -> str | None:
    """Conversions by whole days from the first touch; None without timing."""
    if frame is None or frame.empty:
        return None
    fig = go.Figure(
        go.Bar(
            x=[int(v) for v in frame["days"]],
            y=[float(v) for v in frame["conversions"]],
            name=gettext("Conversions"),
            marker={"color": "#10b981"},
            hovertemplate="%{y:,.0f}",
        )
    )
    _layout(fig, gettext("Conversions"))
    fig.update_layout(
        height=320,
        showlegend=False,
        xaxis={"title": {"text": gettext("Days from first touch to conversion")}},
        margin={"b": 50},
    )
    return pio.to_json(fig, validate=False)


# -- marketing mix model -----------------------------------------------------------------------
def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def mmm_roi_figure(
    rows: Sequence[Mapping[str, Any]],
    y_title: str,
    gettext: Callable[[str], str],
    *,
    break_even: bool = False,
) -> str | None:
    """ROI per channel: the posterior mean as a point, the 90 % interval as error bars.
    ``rows`` as :func:`mixwise.web.mmm.estimate_rows`; ``break_even`` draws the line ROI = 1
    (for a revenue KPI: each unit of spend pays itself back)."""
    shown = [r for r in rows if r["roi"]["mean"] is not None]
    if not shown:
        return None
    means = [r["roi"]["mean"] for r in shown]
    upper = [(r["roi"]["upper"] or m) - m for r, m in zip(shown, means, strict=True)]
    lower = [m - (r["roi"]["lower"] or m) for r, m in zip(shown, means, strict=True)]
    fig = go.Figure(
        go.Scatter(
            x=[r["channel"] for r in shown],
            y=means,
            mode="markers",
            name=gettext("ROI"),
            marker={"size": 11, "color": [PALETTE[i % len(PALETTE)] for i in range(len(shown))]},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": upper,
                "arrayminus": lower,
                "thickness": 2,
                "width": 8,
                "color": "#475569",
            },
            hovertemplate="%{y:.2f}<extra></extra>",
        )
    )
    _layout(fig, y_title)
    fig.update_layout(showlegend=False, hovermode="closest", height=360)
    if break_even:
        fig.add_hline(
            y=1.0,
            line={"color": "#94a3b8", "dash": "dash", "width": 1},
            annotation_text=gettext("break-even"),
            annotation_position="top left",
        )
    return pio.to_json(fig, validate=False)


def mmm_decomposition_figure(
    frame: pd.DataFrame, channels: Sequence[str], kpi_label: str, gettext: Callable[[str], str]
) -> str | None:
    """The KPI per period split into the baseline and each channel's contribution (stacked
    areas, posterior means), with the observed KPI as a line."""
    if frame.empty:
        return None
    xs = [str(pd.Timestamp(d).date()) for d in frame.index]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[float(v) for v in frame["baseline"]],
            name=gettext("Baseline"),
            mode="lines",
            stackgroup="parts",
            line={"width": 0.5, "color": "#94a3b8"},
            fillcolor=_rgba("#94a3b8", 0.45),
            hovertemplate="%{y:,.0f}",
        )
    )
    for i, channel in enumerate(channels):
        if channel not in frame:
            continue
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[float(v) for v in frame[channel]],
                name=channel,
                mode="lines",
                stackgroup="parts",
                line={"width": 0.5, "color": color},
                hovertemplate="%{y:,.0f}",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[float(v) for v in frame["kpi"]],
            name=gettext("Observed %(kpi)s") % {"kpi": kpi_label},
            mode="lines",
            line={"color": "#111827", "width": 2},
            hovertemplate="%{y:,.0f}",
        )
    )
    _layout(fig, kpi_label)
    fig.update_layout(height=400)
    return pio.to_json(fig, validate=False)


def mmm_curves_figure(
    curves: Mapping[str, Any],
    x_title: str,
    y_title: str,
    gettext: Callable[[str], str],
) -> str | None:
    """Each channel's response curve (steady-state contribution per period against spend per
    period): the posterior mean, its 90 % band, and a marker where the channel runs today."""
    channels = list(curves.get("channels") or [])
    if not channels:
        return None
    fig = go.Figure()
    for i, channel in enumerate(channels):
        c = curves["curves"][channel]
        color = PALETTE[i % len(PALETTE)]
        spend = [float(v) for v in c["spend"]]
        fig.add_trace(
            go.Scatter(
                x=spend + spend[::-1],
                y=[float(v) for v in c["upper"]] + [float(v) for v in c["lower"]][::-1],
                fill="toself",
                fillcolor=_rgba(color, 0.15),
                line={"width": 0},
                hoverinfo="skip",
                legendgroup=channel,
                showlegend=False,
                name=channel,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=spend,
                y=[float(v) for v in c["mean"]],
                mode="lines",
                name=channel,
                legendgroup=channel,
                line={"color": color, "width": 2},
                hovertemplate="%{x:,.0f} → %{y:,.0f}",
            )
        )
        now = float(c["current_spend"])
        fig.add_trace(
            go.Scatter(
                x=[now],
                y=[float(np.interp(now, spend, [float(v) for v in c["mean"]]))],
                mode="markers",
                name=gettext("%(channel)s today") % {"channel": channel},
                legendgroup=channel,
                showlegend=False,
                marker={"color": color, "size": 10, "line": {"color": "#fff", "width": 2}},
                hovertemplate=gettext("today") + ": %{x:,.0f} → %{y:,.0f}<extra></extra>",
            )
        )
    _layout(fig, y_title)
    fig.update_layout(
        height=420,
        hovermode="closest",
        xaxis={"title": {"text": x_title}, "rangemode": "tozero"},
        margin={"b": 50},
    )
    return pio.to_json(fig, validate=False)


# -- planner -----------------------------------------------------------------------------------
def planner_allocation_figure(
    channels: Sequence[str],
    current: Sequence[float],
    recommended: Sequence[float],
    y_title: str,
    gettext: Callable[[str], str],
) -> str | None:
    """Grouped bars per channel: the current plan's spend next to the recommended one's."""
    if not channels:
        return None
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=list(channels),
            y=[float(v) for v in current],
            name=gettext("Current plan"),
            marker={"color": "#cbd5e1"},
            hovertemplate="%{y:,.0f}",
        )
    )
    fig.add_trace(
        go.Bar(
            x=list(channels),
            y=[float(v) for v in recommended],
            name=gettext("Recommended"),
            marker={"color": PALETTE[0]},
            hovertemplate="%{y:,.0f}",
        )
    )
    _layout(fig, y_title)
    fig.update_layout(barmode="group", bargap=0.25, bargroupgap=0.05)
    return pio.to_json(fig, validate=False)


def planner_flighting_figure(
    plan: pd.DataFrame, y_title: str, gettext: Callable[[str], str]
) -> str | None:
    """Stacked bars per budget period: each channel's recommended amount (``plan``: budget
    periods × channels)."""
    if plan.empty:
        return None
    periods = [str(p) for p in plan.index]
    fig = go.Figure()
    for i, channel in enumerate(plan.columns):
        fig.add_trace(
            go.Bar(
                x=periods,
                y=[float(v) for v in plan[channel]],
                name=str(channel),
                marker={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate="%{y:,.0f}",
            )
        )
    _layout(fig, y_title)
    fig.update_layout(
        barmode="stack", bargap=0.3, xaxis={"type": "category"}, legend={"traceorder": "normal"}
    )
    return pio.to_json(fig, validate=False)


def planner_frontier_figure(
    frame: pd.DataFrame,
    x_title: str,
    y_title: str,
    y2_title: str,
    gettext: Callable[[str], str],
) -> str | None:
    """The efficient frontier: the best plan's predicted KPI at each budget (line, with its
    90 % interval as a band) and the marginal ROI of its last unit (second y axis)."""
    if frame.empty:
        return None

    def values(column: str) -> list[float | None]:
        return [None if pd.isna(v) else float(v) for v in frame[column]]

    budget = [float(v) for v in frame["budget"]]
    color = PALETTE[0]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=budget + budget[::-1],
            y=values("kpi_upper") + values("kpi_lower")[::-1],
            fill="toself",
            fillcolor=_rgba(color, 0.15),
            line={"width": 0},
            hoverinfo="skip",
            name=gettext("90-percent interval"),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=budget,
            y=values("kpi"),
            mode="lines+markers",
            name=y_title,
            line={"color": color, "width": 2},
            marker={"size": 6},
            hovertemplate="%{y:,.0f}",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=budget,
            y=values("marginal_roi"),
            mode="lines+markers",
            name=y2_title,
            line={"color": PALETTE[1], "width": 2, "dash": "dot"},
            marker={"size": 5},
            yaxis="y2",
            hovertemplate="%{y:.2f}",
        )
    )
    _layout(fig, y_title)
    fig.update_layout(
        height=380,
        xaxis={"title": {"text": x_title}},
        yaxis2={
            "title": {"text": y2_title},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
        margin={"r": 60, "b": 50},
    )
    return pio.to_json(fig, validate=False)
