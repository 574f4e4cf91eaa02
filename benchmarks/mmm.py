"""MMM benchmark: mixwise's Bayesian MMM against PyMC-Marketing on simulator data.

The simulator's national daily tables (``MarketConfig``, 156 weeks, 5 or 8 channels, seed 3)
are aggregated to Monday-start weeks and written once to a wide CSV under ``--data-dir``
(``mmm-weekly-<k>ch-seed3.csv`` + ``.truth.json``, the true ROI per channel), so every tool
reads the same file. Each step then runs in its own subprocess (wall time measured inside the
step and around the process, peak memory = the child's VmHWM sampled every 50 ms):

- ``mixwise``: ``MMMData.from_wide_csv`` → ``MMM(chains, draws, warmup).fit`` (NumPyro NUTS);
- ``pymc_marketing``: PyMC-Marketing's ``MMM`` (geometric adstock, logistic saturation,
  yearly seasonality 2, the same controls) with the same chains / draws / tune, run by a
  standalone script (no mixwise import) with the interpreter of ``--peer-python``: a separate
  virtual environment, since PyMC-Marketing pins its own pandas / numpy;
- ``meridian``: Google's Meridian (its default ``ModelSpec``; spend given as exposure and spend)
  with the same chains / draws and the warm-up split into its adaptation and burn-in, run by
  a standalone script with the interpreter of ``--meridian-python`` (a venv with
  ``google-meridian``: TensorFlow, ~1 GB here).

``--geos N``: a geo panel instead (``MarketConfig(geos=..., geo_weights=...)``, N geos of
unequal population share), aggregated to (week, geo) rows in one long CSV
(``mmm-weekly-<k>ch-seed3-geo<N>.csv``; the truth adds each geo's spend and ROI); mixwise
reads it with ``from_wide_csv(..., geo="geo")``, PyMC-Marketing fits ``MMM(dims=("geo",))``,
and the ROI compared with the truth is national (contributions summed over weeks and geos ÷
total spend). A mixwise that fits national data only is reported as "not supported".

Per tool: max R-hat, min ESS (bulk), divergences, the ROI per channel (posterior mean and
90 % interval: 5 % and 95 % quantiles) against the simulator's true ROI, and the mean absolute
ROI error in % (mean over channels of ``|roi / true - 1|``). Output: a Markdown table on
stdout and ``<data-dir>/mmm-report-<tag>.md``, everything in
``<data-dir>/results-mmm-<tag>.json`` (tag: ``5ch-seed3``, ``-varied`` / ``-flighted``,
``-geo<N>``).

Spend patterns: the default market keeps the simulator's patterns (TV in flights, search and
display always on, social and video in bursts); ``--varied-spend`` gives the always-on channels
bursts; ``--flighted`` runs every channel in flights with weeks off. A channel that never stops
spending has an ROI (return against *no* spend) that the data cannot measure, only extrapolate:
the flighted market is the one where an ROI error is a fair score. ``--data-seed`` picks
another simulated market.

    python benchmarks/mmm.py --quick           # 2 chains x 200 draws, a smoke test
    python benchmarks/mmm.py                   # 4 chains x 1000 draws (+1000 warm-up)
    python benchmarks/mmm.py --channels 8 --skip-peers
    python benchmarks/mmm.py --flighted         # every channel in flights: ROI measurable
    python benchmarks/mmm.py --geos 40         # the geo benchmark: 156 weeks x 5 ch x 40 geos
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _proc import run_child  # noqa: E402
from _proc import versions as _versions  # noqa: E402

DEFAULT_PEER = Path("/tmp/peers-mmm/bin/python")
SEED = 3
WEEKS = 156
CHANNELS_5 = ("tv", "nonbrand_search", "social", "display", "video")
GEO_WEIGHT_SEED = 40  # the geo panel's population shares (``geo_weights``)
MEMORY_GUARD_MB = 12_000
DEFAULT_MERIDIAN = Path("/tmp/peers-meridian/bin/python")
PEERS = {"pymc_marketing": "PyMC-Marketing", "meridian": "Meridian"}


# ---------------------------------------------------------------------------------- data
def geo_weights(n_geos: int) -> list[float]:
    """Population shares of ``n_geos`` geos: a fixed lognormal draw (sd 0.8, seed
    ``GEO_WEIGHT_SEED``), normalised, so geos differ in size (largest / smallest ~22x at 40)."""
    import numpy as np

    w = np.random.default_rng(GEO_WEIGHT_SEED).lognormal(0.0, 0.8, n_geos)
    return [float(x) for x in w / w.sum()]


def _channel_specs(n_channels: int, spend: str) -> tuple[Any, ...]:
    """The simulator's channels; ``spend`` "varied": always-on channels get bursts instead;
    "flighted": every channel runs in flights (on 3–6 weeks, off 2–5), as TV does by default."""
    from mixwise.simulate.config import default_channels

    chans = [c for c in default_channels() if n_channels == 8 or c.name in CHANNELS_5]
    if spend == "varied":
        chans = [
            dataclasses.replace(c, pattern="bursty") if c.pattern == "always_on" else c
            for c in chans
        ]
    elif spend == "flighted":
        chans = [dataclasses.replace(c, pattern="flighted") for c in chans]
    return tuple(chans)


def data_tag(n_channels: int, spend: str, geos: int, seed: int) -> str:
    """The stem shared by a market's CSV, work folder, report and results."""
    suffix = "" if spend == "default" else f"-{spend}"
    return f"{n_channels}ch-seed{seed}{suffix}" + (f"-geo{geos}" if geos else "")


def prepare(
    data_dir: Path,
    n_channels: int,
    spend: str = "default",
    geos: int = 0,
    seed: int = SEED,
    daily: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Write (once) the weekly wide CSV and its truth; return the CSV path and the meta.
    ``daily``: the same market day by day instead (every simulated day, spend and revenue
    summed, controls averaged over the geos), ``mmm-daily-…``; its meta adds ``days``.

    ``spend`` (:func:`_channel_specs`): "varied" gives every always-on channel (search,
    display) bursts, so that each channel's spend varies enough for its effect to be told apart
    from the baseline (in the default market their weekly spend varies by ~12 %); "flighted"
    runs every channel in flights with weeks off, so its ROI is measured, not extrapolated.
    ``geos`` > 0: a geo panel instead (:func:`prepare_geo`)."""
    if geos:
        return prepare_geo(data_dir, n_channels, geos, spend, seed)
    frequency = "daily" if daily else "weekly"
    csv = data_dir / f"mmm-{frequency}-{data_tag(n_channels, spend, 0, seed)}.csv"
    meta_path = csv.with_suffix(".truth.json")
    if csv.exists() and meta_path.exists():
        return csv, json.loads(meta_path.read_text())
    import pandas as pd

    from mixwise.simulate import MarketConfig, simulate_market

    chans = _channel_specs(n_channels, spend)
    cfg = MarketConfig(days=WEEKS * 7, channels=chans, synergies=(), n_journeys=1000)
    market = simulate_market(cfg, seed=seed)
    media = market.media.groupby(["date", "channel"]).spend.sum().unstack()
    out = market.outcomes.groupby("date").revenue.sum()
    ctrl = market.controls.groupby(["date", "name"]).value.mean().unstack()
    frame_daily = media.join(out).join(ctrl)
    frame_daily.index = pd.to_datetime(frame_daily.index)
    channels = [c.name for c in chans]
    controls = list(ctrl.columns)
    if daily:
        frame = frame_daily.copy()
    else:
        weekly = frame_daily.resample("W-MON", label="left", closed="left")
        days = weekly.size()
        frame = weekly[[*channels, "revenue"]].sum().join(weekly[controls].mean())
        frame = frame[days == 7]  # incomplete first / last weeks dropped
    frame.index.name = "date"
    frame = frame.reset_index()
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    data_dir.mkdir(parents=True, exist_ok=True)
    frame[["date", "revenue", *channels, *controls]].to_csv(csv, index=False)
    truth = market.truth.roi
    meta = {
        "channels": channels,
        "controls": controls,
        "weeks": len(frame) // 7 if daily else len(frame),
        **({"days": len(frame)} if daily else {}),
        "seed": seed,
        "spend_pattern": spend,
        "true_roi": {str(k): float(v) for k, v in truth.items()},
        "spend": {c: float(frame[c].sum()) for c in channels},
        "revenue": float(frame["revenue"].sum()),
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    return csv, meta


def prepare_geo(
    data_dir: Path, n_channels: int, n_geos: int, spend: str = "default", seed: int = SEED
) -> tuple[Path, dict[str, Any]]:
    """Write (once) the weekly **long** CSV of a geo panel and its truth.

    ``MarketConfig(geos=geo_00…, geo_weights=geo_weights(n))``: the simulator splits the
    national spend of each channel and day over the geos by population share times a small
    per-geo, per-day jitter (so geo spend still sums to the national spend), and the baseline
    by population share. Rows: (Monday week, geo) with revenue, spend per channel (sums) and
    the controls (means; ``competitor_activity`` is per geo, ``price_index`` and ``promotion``
    are national and repeated in every geo). Truth: the national ROI per channel (the
    simulator's ``truth.roi`` sums contributions and spend over the geos), each geo's spend
    per channel, and each geo's own true ROI."""
    csv = data_dir / f"mmm-weekly-{data_tag(n_channels, spend, n_geos, seed)}.csv"
    meta_path = csv.with_suffix(".truth.json")
    if csv.exists() and meta_path.exists():
        return csv, json.loads(meta_path.read_text())
    import pandas as pd

    from mixwise.simulate import MarketConfig, simulate_market

    chans = _channel_specs(n_channels, spend)
    names = tuple(f"geo_{i:02d}" for i in range(n_geos))
    weights = geo_weights(n_geos)
    cfg = MarketConfig(
        days=WEEKS * 7,
        channels=chans,
        synergies=(),
        n_journeys=1000,
        geos=names,
        geo_weights=tuple(weights),
    )
    market = simulate_market(cfg, seed=SEED)
    channels = [c.name for c in chans]
    media = market.media.groupby(["date", "geo", "channel"]).spend.sum().unstack("channel")
    out = market.outcomes.groupby(["date", "geo"]).revenue.sum()
    ctrl_long = market.controls
    national = ctrl_long[ctrl_long["geo"].isna()]  # national controls: the same in every geo
    by_geo = ctrl_long[ctrl_long["geo"].notna()]
    daily = media[channels].join(out)
    controls: list[str] = []
    if len(by_geo):
        ctrl = by_geo.groupby(["date", "geo", "name"]).value.mean().unstack("name")
        daily = daily.join(ctrl)
        controls += list(ctrl.columns)
    if len(national):
        nat = national.groupby(["date", "name"]).value.mean().unstack("name")
        nat = nat[[c for c in nat.columns if c not in controls]]
        daily = daily.join(nat, on="date")
        controls += list(nat.columns)
    daily = daily.reset_index()
    daily["date"] = pd.to_datetime(daily["date"])
    # Monday-start weeks, as resample("W-MON", label="left", closed="left") in national mode
    daily["week"] = daily["date"] - pd.to_timedelta(daily["date"].dt.day_of_week, unit="D")
    grouped = daily.groupby(["week", "geo"])
    frame = grouped[[*channels, "revenue"]].sum().join(grouped[controls].mean())
    frame = frame[grouped.size() == 7]  # incomplete first / last weeks dropped
    frame = frame.reset_index().rename(columns={"week": "date"})
    frame = frame.sort_values(["date", "geo"], ignore_index=True)
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    data_dir.mkdir(parents=True, exist_ok=True)
    frame[["date", "geo", "revenue", *channels, *controls]].to_csv(csv, index=False)
    truth = market.truth
    contrib = truth.contribution.groupby(["geo", "channel"]).contribution.sum()
    daily_spend = market.media.groupby(["geo", "channel"]).spend.sum()
    geo_spend = frame.groupby("geo")[channels].sum()
    meta = {
        "channels": channels,
        "controls": controls,
        "weeks": int(frame["date"].nunique()),
        "geos": list(names),
        "geo_weights": dict(zip(names, weights, strict=True)),
        "seed": seed,
        "spend_pattern": spend,
        "geo_weight_seed": GEO_WEIGHT_SEED,
        "true_roi": {str(k): float(v) for k, v in truth.roi.items()},
        "true_roi_by_geo": {
            g: {c: float(contrib[g, c] / daily_spend[g, c]) for c in channels} for g in names
        },
        "spend": {c: float(frame[c].sum()) for c in channels},
        "spend_by_geo": {g: {c: float(geo_spend.loc[g, c]) for c in channels} for g in names},
        "revenue": float(frame["revenue"].sum()),
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    return csv, meta


# ------------------------------------------------------------------------------ steps (child)
@contextlib.contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start


def step_mixwise(cfg: dict[str, Any]) -> dict[str, Any]:
    timings: dict[str, float] = {}
    with timed(timings, "import"):
        from mixwise.mmm.data import MMMData
        from mixwise.mmm.fit import MMM
    geo = cfg.get("geo")  # the geo column of a panel, None for national data
    try:
        with timed(timings, "load"):
            data = MMMData.from_wide_csv(
                cfg["csv"],
                date="date",
                kpi="revenue",
                channels=cfg["channels"],
                controls=cfg["controls"],
                geo=geo,
            )
        model = MMM(
            chains=cfg["chains"],
            draws=cfg["draws"],
            warmup=cfg["warmup"],
            seed=cfg["seed"],
            progress=False,
        )
        with timed(timings, "fit"):
            model.fit(data)
    except ValueError as exc:
        if geo is None:
            raise
        # a version of mixwise without the geo model refuses panels: report why
        return {"timings": timings, "unsupported": str(exc)}
    d = model.diagnostics_
    roi = {
        str(ch): {k: float(row[k]) for k in ("mean", "median", "lower", "upper")}
        for ch, row in model.roi_.iterrows()
    }
    return {
        "timings": timings,
        "max_rhat": float(d.max_rhat),
        "min_ess": float(d.min_ess),
        "divergences": int(d.divergences),
        "verdict": model.verdict_.message,
        "roi": roi,
    }


# What every peer step begins with: its config, the timings, the ROI summary and the results
# file. Each step runs in its own interpreter (no mixwise import), so this is text too.
_PEER_PRELUDE = r"""
import json
import os
import sys
import time

cfg = json.loads(open(sys.argv[1]).read())
timings = {}


def roi_summary(draws):
    # one channel's ROI draws: mean, median and the 90 % interval
    return {
        "mean": float(draws.mean()),
        "median": float(np.median(draws)),
        "lower": float(np.quantile(draws, 0.05)),
        "upper": float(np.quantile(draws, 0.95)),
    }


def write_results(packages, **fields):
    # the step's results (timings, the fields, the packages' versions) to cfg["out"]
    from importlib import metadata

    vers = {}
    for pkg in packages:
        try:
            vers[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            vers[pkg] = "not installed"
    vers["python"] = sys.version.split()[0]
    out = {"timings": timings, **fields, "versions": vers}
    open(cfg["out"], "w").write(json.dumps(out))
    return out


t = time.perf_counter()
"""

# PyMC-Marketing, run with the peer interpreter: must not import mixwise.
PEER_SCRIPT = (
    '''"""PyMC-Marketing MMM step of benchmarks/mmm.py (written there; do not edit)."""'''
    + _PEER_PRELUDE
    + r"""import arviz as az
import numpy as np
import pandas as pd
from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

timings["import"] = time.perf_counter() - t

t = time.perf_counter()
df = pd.read_csv(cfg["csv"], parse_dates=["date"])
channels, controls = cfg["channels"], cfg["controls"]
geo = cfg.get("geo")  # a panel's geo column: one series per geo, dims=(geo,)
X = df[["date", *([geo] if geo else []), *channels, *controls]]
y = df["revenue"]
timings["load"] = time.perf_counter() - t

mmm = MMM(
    adstock=GeometricAdstock(l_max=8),
    saturation=LogisticSaturation(),
    date_column="date",
    target_column="revenue",
    channel_columns=channels,
    control_columns=controls or None,
    yearly_seasonality=2,
    dims=(geo,) if geo else None,
)
t = time.perf_counter()
mmm.build_model(X, y)
mmm.add_original_scale_contribution_variable(var=["channel_contribution"])
mmm.fit(
    X,
    y,
    chains=cfg["chains"],
    draws=cfg["draws"],
    tune=cfg["warmup"],
    cores=min(cfg["chains"], os.cpu_count() or 1),  # chains in parallel, as mixwise's
    target_accept=0.9,  # mixwise's default too
    random_seed=cfg["seed"],
    progressbar=False,
)
timings["fit"] = time.perf_counter() - t

t = time.perf_counter()
posterior = mmm.idata["posterior"]
# (chain, draw, date[, geo], channel) in the target's units: with dims=(geo,) the target is
# scaled per geo (its max), and *_original_scale multiplies back by each geo's scale
contrib = posterior["channel_contribution_original_scale"]
total = contrib.sum([d for d in contrib.dims if d not in ("chain", "draw", "channel")])
roi = {}
for ch in channels:
    spend = float(df[ch].sum())  # over the weeks (and the geos)
    roi[ch] = roi_summary(np.asarray(total.sel(channel=ch)).ravel() / spend)
free = [v.name for v in mmm.model.free_RVs]
rhat = az.rhat(mmm.idata, var_names=free)
ess = az.ess(mmm.idata, var_names=free, method="bulk")
max_rhat = max(float(rhat[v].max()) for v in free)
min_ess = min(float(ess[v].min()) for v in free)
divergences = int(mmm.idata["sample_stats"]["diverging"].sum())
timings["roi"] = time.perf_counter() - t

out = write_results(
    ("pymc-marketing", "pymc", "pytensor", "arviz", "pandas", "numpy"),
    max_rhat=max_rhat,
    min_ess=min_ess,
    divergences=divergences,
    roi=roi,
)
"""
)


# Meridian, run with its own interpreter (TensorFlow): must not import mixwise.
MERIDIAN_SCRIPT = (
    "# Meridian MMM step of benchmarks/mmm.py (written there; do not edit)."
    + _PEER_PRELUDE
    + r"""import arviz as az
import numpy as np
import pandas as pd
from meridian.analysis import analyzer
from meridian.data import load
from meridian.model import model, spec

timings["import"] = time.perf_counter() - t

t = time.perf_counter()
df = pd.read_csv(cfg["csv"])
channels, controls, geo = cfg["channels"], cfg["controls"], cfg.get("geo")
# Meridian wants exposure (impressions) and spend; the CSV has spend only: spend is both.
for c in channels:
    df[f"{c}__spend"] = df[c]
where = {}
if geo:  # a panel: each geo's population (the simulator's shares)
    df["population"] = df[geo].map(cfg["population"])
    where = {"geo": geo, "population": "population"}
    # Meridian's panel has a parameter per week (n_knots = weeks): it refuses controls that
    # do not vary across geos (collinear with those); drop them, as its message advises.
    controls = [c for c in controls if df.groupby("date")[c].nunique().max() > 1]
columns = load.CoordToColumns(
    time="date",
    kpi="revenue",
    controls=controls,
    media=channels,
    media_spend=[f"{c}__spend" for c in channels],
    **where,
)
data = load.DataFrameDataLoader(
    df=df,
    coord_to_columns=columns,
    kpi_type="revenue",
    media_to_channel={c: c for c in channels},
    media_spend_to_channel={f"{c}__spend": c for c in channels},
).load()
timings["load"] = time.perf_counter() - t

t = time.perf_counter()
mmm = model.Meridian(input_data=data, model_spec=spec.ModelSpec())  # its defaults
n_adapt = cfg["warmup"] // 2
mmm.sample_posterior(
    n_chains=cfg["chains"],
    n_adapt=n_adapt,
    n_burnin=cfg["warmup"] - n_adapt,
    n_keep=cfg["draws"],
    seed=cfg["seed"],
)
timings["fit"] = time.perf_counter() - t

t = time.perf_counter()
an = analyzer.Analyzer(mmm)
draws = np.asarray(an.roi())  # (chains, draws, channels), national (geos aggregated)
draws = draws.reshape(-1, draws.shape[-1])
names = [str(c) for c in mmm.input_data.media_channel.values]
roi = {}
for i, ch in enumerate(names):
    roi[ch] = roi_summary(draws[:, i])
rhat = an.get_rhat()
max_rhat = max(float(np.nanmax(np.asarray(v))) for v in rhat.values())
post = mmm.inference_data.posterior
ess = az.ess(post, var_names=[k for k in rhat if k in post], method="bulk")
min_ess = min(float(ess[v].min()) for v in ess.data_vars)
stats = mmm.inference_data.sample_stats
divergences = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else -1
timings["roi"] = time.perf_counter() - t

out = write_results(
    ("google-meridian", "tensorflow", "tensorflow-probability", "tfp-nightly", "numpy"),
    max_rhat=max_rhat,
    min_ess=min_ess,
    divergences=divergences,
    roi=roi,
)
"""
)


# --------------------------------------------------------------------------- parent side
def run_step(cmd: list[str], out: Path, log: Path, timeout: float) -> dict[str, Any]:
    """Run one step in a child process; add its wall time and peak RSS (MB)."""
    return run_child(cmd, out, timeout, MEMORY_GUARD_MB, log)


def peer_check(peer: Path | None, module: str = "pymc_marketing.mmm") -> str | None:
    """None when the peer interpreter imports ``module``, else the reason to skip."""
    if peer is None or not peer.exists():
        return f"peer python not found ({peer}); see benchmarks/README.md for the venv"
    proc = subprocess.run(
        [str(peer), "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"import {module} failed with {peer}: {last}"
    return None


def evaluate(res: dict[str, Any], true_roi: dict[str, float]) -> dict[str, Any]:
    roi = res.get("roi")
    if not roi:
        return {}
    err = {c: 100 * abs(roi[c]["mean"] / true_roi[c] - 1) for c in true_roi if c in roi}
    covered = [c for c in err if roi[c]["lower"] <= true_roi[c] <= roi[c]["upper"]]
    return {
        "roi_mape": sum(err.values()) / len(err),
        "roi_error_pct": err,
        "covered": len(covered),
    }


def report(
    meta: dict[str, Any],
    settings: dict[str, Any],
    results: dict[str, dict[str, Any]],
    skipped: dict[str, str],
) -> str:
    channels = meta["channels"]
    true_roi = meta["true_roi"]
    geos = meta.get("geos") or []
    shape = f"{meta['weeks']} weeks x {len(channels)} channels"
    if geos:
        shape += f" x {len(geos)} geos"
    lines = [
        f"## MMM: {shape}, {meta.get('spend_pattern', 'default')} spend (simulator seed "
        f"{meta.get('seed', SEED)}; "
        f"controls: {', '.join(settings['controls']) or 'none'})",
        "",
        f"{settings['chains']} chains x {settings['draws']} draws "
        f"(+{settings['warmup']} warm-up), {os.cpu_count()} CPUs",
        "",
    ]
    if geos:
        shares = sorted(meta["geo_weights"].values())
        lines += [
            f"Geo panel: one row per week and geo (long CSV); population shares "
            f"{100 * shares[0]:.2f} % to {100 * shares[-1]:.2f} % (lognormal, seed "
            f"{meta['geo_weight_seed']}); ROI and its truth are national (all geos).",
            "",
        ]
    lines += [
        "| tool | fit wall s (in-process) | process wall s | peak RSS MB | max R-hat "
        "| min ESS | divergences | ROI error % (mean abs) | truth in 90 % interval |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tool, res in results.items():
        if "error" in res:
            lines.append(
                f"| {tool} (failed: {res['error'][:160]}) | | {res['process_wall']:.1f} "
                f"| {res['peak_mb']:.0f} | | | | | |"
            )
            continue
        if "unsupported" in res:
            lines.append(
                f"| {tool} (not supported: {res['unsupported'][:160]}) | "
                f"| {res['process_wall']:.1f} | {res['peak_mb']:.0f} | | | | | |"
            )
            continue
        ev = res["evaluation"]
        lines.append(
            f"| {tool} | {res['timings']['fit']:.1f} | {res['process_wall']:.1f} "
            f"| {res['peak_mb']:.0f} | {res['max_rhat']:.3f} | {res['min_ess']:.0f} "
            f"| {res['divergences']} | {ev['roi_mape']:.1f} "
            f"| {ev['covered']}/{len(channels)} |"
        )
    for tool, why in skipped.items():
        lines.append(f"| {tool} ({why}) | | | | | | | | |")
    ok = [t for t, r in results.items() if "error" not in r and "unsupported" not in r]
    lines += ["", "ROI per channel: posterior mean [5 %, 95 %] (error vs truth)", ""]
    lines.append("| channel | true ROI | " + " | ".join(ok) + " |")
    lines.append("|---|---:|" + "---:|" * len(ok))
    for c in channels:
        cells = []
        for tool in ok:
            r = results[tool]["roi"].get(c)
            e = results[tool]["evaluation"]["roi_error_pct"].get(c)
            cells.append(
                f"{r['mean']:.2f} [{r['lower']:.2f}, {r['upper']:.2f}] ({e:.0f} %)" if r else "-"
            )
        lines.append(f"| {c} | {true_roi[c]:.2f} | " + " | ".join(cells) + " |")
    lines.append("")
    mix = results.get("mixwise", {})
    for key, name in PEERS.items():
        peer = results.get(key, {})
        if "fit" in mix.get("timings", {}) and "fit" in peer.get("timings", {}):
            lines.append(
                f"- wall time ratio {name} / mixwise: "
                f"{peer['timings']['fit'] / mix['timings']['fit']:.2f}x in-process (fit), "
                f"{peer['process_wall'] / mix['process_wall']:.2f}x process"
            )
        elif "fit" in mix.get("timings", {}) and str(peer.get("error", "")).startswith("timeout"):
            # The peer did not finish: its time is at least the timeout, so the ratio is a bound.
            lines.append(
                f"- {name} stopped unfinished at the {peer['error']} limit: wall time ratio "
                f"{name} / mixwise **at least "
                f"{peer['process_wall'] / mix['process_wall']:.2f}x**"
                f" (process; mixwise {mix['process_wall']:.1f} s)"
            )
    if "verdict" in mix:
        lines.append(f"- mixwise verdict: {mix['verdict']}")
    lines.append(
        "- in-process = the fit call only (mixwise: model build, NumPyro compile and NUTS; "
        "PyMC-Marketing: `MMM.fit`, model build, PyTensor compile and NUTS; Meridian: "
        "`Meridian(...)` and `sample_posterior`, TensorFlow tracing and NUTS, warm-up split "
        "evenly into its adaptation and burn-in); process adds interpreter start, imports, "
        "reading the CSV and the ROI summaries"
    )
    if "meridian" in results:
        lines.append(
            "- Meridian: its default `ModelSpec` (ROI priors, geometric adstock, Hill), spend "
            "given as both media exposure and spend (the CSV has spend only); ROI from "
            "`Analyzer.roi()`; R-hat from `Analyzer.get_rhat()`, ESS (bulk) over the same "
            "parameters"
        )
    return "\n".join(lines)


def versions() -> dict[str, str]:
    return _versions("mixwise", "numpyro", "jax", "pandas", "numpy")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, choices=(5, 8), default=5)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="sampler seed")
    ap.add_argument("--quick", action="store_true", help="2 chains x 200 draws + 200 warm-up")
    ap.add_argument("--no-controls", action="store_true", help="fit without the controls")
    spend = ap.add_mutually_exclusive_group()
    spend.add_argument(
        "--varied-spend",
        action="store_true",
        help="always-on channels get bursts (spend that varies enough to be measured)",
    )
    spend.add_argument(
        "--flighted",
        action="store_true",
        help="every channel runs in flights with weeks off (its ROI is measured, not "
        "extrapolated to zero spend)",
    )
    ap.add_argument("--data-seed", type=int, default=SEED, help=f"simulator seed ({SEED})")
    ap.add_argument(
        "--geos",
        type=int,
        default=0,
        metavar="N",
        help="geo panel of N geos of unequal size (long CSV, one row per week and geo; "
        "the issue's geo benchmark is --geos 40); 0 = national (default)",
    )
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument(
        "--peer-python",
        type=Path,
        default=DEFAULT_PEER if DEFAULT_PEER.exists() else None,
        help=f"interpreter with pymc-marketing (default {DEFAULT_PEER} if it exists)",
    )
    ap.add_argument(
        "--meridian-python",
        type=Path,
        default=DEFAULT_MERIDIAN if DEFAULT_MERIDIAN.exists() else None,
        help=f"interpreter with google-meridian (default {DEFAULT_MERIDIAN} if it exists)",
    )
    ap.add_argument("--data-dir", type=Path, default=HERE / "data")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per step, seconds")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:  # child
        cfg = json.loads(args.config.read_text())
        result = step_mixwise(cfg)
        Path(cfg["out"]).write_text(json.dumps(result))
        return 0
    if args.quick:
        args.chains, args.draws, args.warmup = 2, 200, 200
    if args.geos < 0:
        ap.error("--geos must be >= 0")

    pattern = "varied" if args.varied_spend else "flighted" if args.flighted else "default"
    tag = data_tag(args.channels, pattern, args.geos, args.data_seed)
    print(
        f"preparing data ({args.channels} channels"
        + (f", {args.geos} geos" if args.geos else "")
        + ") ...",
        flush=True,
    )
    csv, meta = prepare(args.data_dir, args.channels, pattern, args.geos, args.data_seed)
    work = args.data_dir / f"work-mmm-{tag}"
    work.mkdir(parents=True, exist_ok=True)
    settings = {
        "csv": str(csv.resolve()),
        "geo": "geo" if args.geos else None,
        "channels": meta["channels"],
        "controls": [] if args.no_controls else meta["controls"],
        "chains": args.chains,
        "draws": args.draws,
        "warmup": args.warmup,
        "seed": args.seed,
    }
    print(json.dumps({"date": dt.date.today().isoformat(), **settings}, indent=1), flush=True)

    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    steps = ["mixwise", "pymc_marketing", "meridian"]
    if args.skip_peers:
        steps = ["mixwise"]
        skipped["pymc_marketing"] = skipped["meridian"] = "skipped: --skip-peers"
    for step in steps:
        cfg = {**settings, "out": str((work / f"{step}.json").resolve())}
        if step == "meridian" and args.geos:
            cfg["population"] = meta["geo_weights"]
        cfg_path = work / f"{step}-config.json"
        cfg_path.write_text(json.dumps(cfg))
        if step == "mixwise":
            cmd = [sys.executable, __file__, "--step", step, "--config", str(cfg_path)]
        else:
            meridian = step == "meridian"
            python = args.meridian_python if meridian else args.peer_python
            why = peer_check(python, "meridian.model" if meridian else "pymc_marketing.mmm")
            if why:
                skipped[step] = f"skipped: {why}"
                print(f"--- {step}: {skipped[step]}", flush=True)
                continue
            script = work / f"peer_{step}.py"
            script.write_text((MERIDIAN_SCRIPT if meridian else PEER_SCRIPT).lstrip())
            cmd = [str(python), str(script), str(cfg_path)]
        print(f"--- {step}", flush=True)
        res = run_step(cmd, Path(cfg["out"]), work / f"{step}.log", args.timeout)
        res["evaluation"] = evaluate(res, meta["true_roi"])
        results[step] = res
        print(
            f"    {res.get('timings')} process {res['process_wall']:.1f} s "
            f"peak {res['peak_mb']:.0f} MB {res.get('error', res.get('unsupported', ''))}",
            flush=True,
        )
    text = report(meta, settings, results, skipped)
    print("\n" + text, flush=True)
    (args.data_dir / f"mmm-report-{tag}.md").write_text(text + "\n")
    (args.data_dir / f"results-mmm-{tag}.json").write_text(
        json.dumps(
            {
                "data": meta,
                "settings": settings,
                "results": results,
                "skipped": skipped,
                "versions": versions(),
                "cpus": os.cpu_count(),
            },
            indent=1,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
