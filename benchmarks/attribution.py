"""Attribution benchmark: mixwise against ChannelAttribution and marketing-attribution-models.

For each size (``--journeys``), simulator journeys are loaded into a DuckDB warehouse file
(cached under ``--data-dir``), then every step runs in its own subprocess so that wall time
and peak memory (the child's VmHWM, sampled every 50 ms) do not contaminate each other:

- ``mixwise``: raw touchpoints in the warehouse → ``reduce_journeys`` → every model;
- ``ca_aggregate``: what a ChannelAttribution user does first: load the touches into pandas,
  sort, build ``"a > b > c"`` strings per journey, count conversions / nulls / value per path
  (the fastest idiomatic pandas we found: a grouped string sum; ``agg(" > ".join)`` is ~8x
  slower). Loading from DuckDB is timed apart and not counted in "aggregation";
- ``ca_heuristic``, ``ca_markov1``, ``ca_markov3``: ChannelAttribution on that path table;
- ``ca_markov1_converged``: its Markov order 1 with 1e7 simulations, for the agreement check
  only (the timed ``ca_markov1`` keeps its defaults);
- ``mam``: marketing-attribution-models (Polars) from the raw touches, if it is installed.

Accuracy: each model's channel shares against the simulator's true incremental shares (the
true cause of every incremental conversion; ``direct`` is 0), uncalibrated and calibrated
with incrementality factors (see ``factors``). Results: a table on stdout and
``<data-dir>/results-<n>.json``; ``benchmarks/RESULTS.md`` is written by hand from them.

    python benchmarks/attribution.py --journeys 1000000 10000000
    python benchmarks/attribution.py --quick            # 100k journeys, a smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _data import Dataset, prepare  # noqa: E402
from _proc import rss_mb as _rss_mb  # noqa: E402
from _proc import run_child  # noqa: E402
from _proc import versions as _versions  # noqa: E402

# Rule-based models + Markov order 1 + Shapley: the set the 10M target is about.
TARGET_MODELS = (
    "first",
    "last",
    "last_non_direct",
    "linear",
    "position",
    "custom",
    "time_decay",
    "w_shaped",
    "markov",
    "shapley",
)
# label -> (registry key, params)
MIXWISE_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: (name, {}) for name in TARGET_MODELS},
    "custom": ("custom", {"from_start": (0.3, 0.1), "from_end": (0.3, 0.1), "middle": 0.2}),
    "markov_o2": ("markov", {"order": 2}),
    "markov_o3": ("markov", {"order": 3}),
    "markov_o4": ("markov", {"order": 4}),
    "shapley_simplified": ("shapley_simplified", {}),
    "shapley_ordered": ("shapley_ordered", {}),
}
PEER_STEPS = (
    "ca_aggregate",
    "ca_heuristic",
    "ca_markov1",
    "ca_markov1_converged",
    "ca_markov3",
    "mam",
)
MEMORY_GUARD_MB = 12_000  # a peer step above this is stopped (the machine has 24 GiB)


# ------------------------------------------------------------------------------ steps (child)
@contextlib.contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start


def step_mixwise(db: Path, work: Path) -> dict[str, Any]:
    timings: dict[str, float] = {}
    with timed(timings, "import"):
        from mixwise.attribution.models import get_model
        from mixwise.attribution.reduce import JourneyOptions, reduce_journeys
        from mixwise.store.warehouse import Warehouse
    wh = Warehouse(db, read_only=True)
    with timed(timings, "reduce"):
        red = reduce_journeys(
            wh.expr("touchpoints"), wh.expr("conversions"), None, JourneyOptions()
        )
    credits: dict[str, dict[str, float]] = {}
    target_peak = 0.0
    for label, (name, params) in MIXWISE_MODELS.items():
        with timed(timings, label):
            model = get_model(name, **params).fit(red.paths, red.touches)
        credits[label] = {str(k): float(v) for k, v in model.credits_["conversions"].items()}
        if label == TARGET_MODELS[-1]:  # the models after it are extras (Markov 2-4, …)
            target_peak = _rss_mb(os.getpid(), "VmHWM")
    wh.close()
    frame = red.paths.to_frame()
    frame.to_parquet(work / "mixwise-paths.parquet")
    return {
        "timings": timings,
        "target_peak_mb": target_peak,
        "credits": credits,
        "paths": red.paths.n_paths,
        "segments": red.journeys,
        "unattributed": red.unattributed,
    }


def _load_touches_pandas(db: Path) -> tuple[Any, Any]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    tp = con.execute("SELECT journey_id, epoch_us(timestamp) AS ts, channel FROM touchpoints").df()
    cv = con.execute("SELECT journey_id, epoch_us(timestamp) AS ts, value FROM conversions").df()
    con.close()
    return tp, cv


def step_ca_aggregate(db: Path, work: Path) -> dict[str, Any]:
    timings: dict[str, float] = {}
    with timed(timings, "load"):
        tp, cv = _load_touches_pandas(db)
    with timed(timings, "aggregate"):
        # Every simulated journey converts at most once, after all its touches, so one
        # journey is one path (what mixwise's segmentation also gives on these data).
        tp = tp.sort_values(["journey_id", "ts", "channel"])
        path = (tp["channel"] + " > ").groupby(tp["journey_id"], sort=False).sum().str[:-3]
        conv = cv.groupby("journey_id").agg(conversions=("value", "size"), value=("value", "sum"))
        journeys = path.to_frame("path").join(conv)
        journeys["conversions"] = journeys["conversions"].fillna(0)
        journeys["value"] = journeys["value"].fillna(0.0)
        journeys["nulls"] = (journeys["conversions"] == 0).astype("int64")
        paths = journeys.groupby("path", as_index=False).agg(
            total_conversions=("conversions", "sum"),
            total_null=("nulls", "sum"),
            total_conversion_value=("value", "sum"),
        )
    paths.to_parquet(work / "ca-paths.parquet")
    return {"timings": timings, "paths": len(paths)}


def _ca_paths(work: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(work / "ca-paths.parquet")


def step_ca_heuristic(db: Path, work: Path) -> dict[str, Any]:
    import ChannelAttribution as ca

    paths = _ca_paths(work)
    timings: dict[str, float] = {}
    with timed(timings, "heuristic"):
        out = ca.heuristic_models(
            paths, "path", "total_conversions", var_value="total_conversion_value", flg_pro=False
        )
    credits = {
        model: dict(
            zip(out["channel_name"], map(float, out[f"{model}_touch_conversions"]), strict=True)
        )
        for model in ("first", "last", "linear")
    }
    return {"timings": timings, "credits": credits}


# ChannelAttribution's Markov model estimates removal effects by simulating journeys
# (default ``nsim_start`` 1e5, grown until its convergence test passes), so its shares carry
# simulation noise; mixwise solves the absorbing chain exactly. The agreement check is made
# against a run with this many simulations as well (not timed: the timed run keeps the
# peer's defaults).
CONVERGED_NSIM = 1e7


def _ca_markov(work: Path, order: int, nsim: float | None = None) -> dict[str, Any]:
    import ChannelAttribution as ca

    paths = _ca_paths(work)
    timings: dict[str, float] = {}
    extra = {} if nsim is None else {"nsim_start": nsim}
    with timed(timings, f"markov{order}"):
        out = ca.markov_model(
            paths,
            "path",
            "total_conversions",
            var_value="total_conversion_value",
            var_null="total_null",
            order=order,
            ncore=os.cpu_count() or 1,
            verbose=False,
            flg_pro=False,
            **extra,
        )
    credits = dict(zip(out["channel_name"], map(float, out["total_conversions"]), strict=True))
    return {"timings": timings, "credits": {f"markov_o{order}": credits}}


def step_ca_markov1_converged(db: Path, work: Path) -> dict[str, Any]:
    """Markov order 1 with :data:`CONVERGED_NSIM` simulations: agreement only."""
    return _ca_markov(work, 1, CONVERGED_NSIM)


def step_ca_markov1(db: Path, work: Path) -> dict[str, Any]:
    return _ca_markov(work, 1)


def step_ca_markov3(db: Path, work: Path) -> dict[str, Any]:
    return _ca_markov(work, 3)


def step_mam(db: Path, work: Path) -> dict[str, Any]:
    import duckdb
    import polars as pl
    from mam import MAM

    timings: dict[str, float] = {}
    with timed(timings, "load"):
        con = duckdb.connect(str(db), read_only=True)
        touches = pl.from_arrow(
            con.sql(
                "SELECT t.journey_id, CAST(t.timestamp AS TIMESTAMP) AS ts, t.channel, "
                "c.journey_id IS NOT NULL AS converted FROM touchpoints t "
                "LEFT JOIN conversions c USING (journey_id)"
            ).to_arrow_table()
        )
        con.close()
    with timed(timings, "preprocess"):
        mam = MAM(
            touches,
            format_type="session",
            channels_colname="channel",
            journey_with_conv_colname="converted",
            datetime_colname="ts",
            user_id_colname="journey_id",
        )
    del touches
    credits: dict[str, dict[str, float]] = {}
    runs: dict[str, Callable[[], Any]] = {
        "first": mam.run_first_click,
        "last": mam.run_last_click,
        "linear": mam.run_linear,
        "markov_o1": mam.run_markov,
    }
    for label, run in runs.items():
        with timed(timings, label):
            result = run().to_pandas()
        credits[label] = _mam_credits(result)
    return {"timings": timings, "credits": credits}


def _mam_credits(frame: Any) -> dict[str, float]:
    cols = list(frame.columns)
    channel = next(c for c in cols if "channel" in c.lower())
    value = next(c for c in cols if c != channel and frame[c].dtype.kind == "f")
    return {str(k): float(v) for k, v in zip(frame[channel], frame[value], strict=True)}


STEPS: dict[str, Callable[[Path, Path], dict[str, Any]]] = {
    "mixwise": step_mixwise,
    "ca_aggregate": step_ca_aggregate,
    "ca_heuristic": step_ca_heuristic,
    "ca_markov1": step_ca_markov1,
    "ca_markov1_converged": step_ca_markov1_converged,
    "ca_markov3": step_ca_markov3,
    "mam": step_mam,
}


# --------------------------------------------------------------------------- parent side
def run_step(step: str, data: Dataset, work: Path, timeout: float) -> dict[str, Any]:
    """Run one step in a child process; add its wall time and peak RSS (MB)."""
    out = work / f"{step}.json"
    cmd = [sys.executable, __file__, "--step", step, "--db", str(data.warehouse)]
    cmd += ["--work", str(work)]
    return run_child(cmd, out, timeout, MEMORY_GUARD_MB)


def shares(credits: dict[str, float], channels: list[str]) -> dict[str, float]:
    total = sum(max(credits.get(c, 0.0), 0.0) for c in channels) or 1.0
    return {c: max(credits.get(c, 0.0), 0.0) / total for c in channels}


def mae_pp(a: dict[str, float], b: dict[str, float]) -> float:
    return 100 * sum(abs(a[c] - b[c]) for c in a) / len(a)


def factors(data: Dataset, last_touch: dict[str, float]) -> dict[str, float]:
    """Incrementality per channel, as the issue defines it: the share of the conversions
    attributed to a channel that is truly incremental. A lift test would measure the
    channel's incremental conversions; here the simulator's truth stands in for a perfect
    test (an upper bound on what calibration can do), divided by the channel's last-touch
    conversions (the report such a factor is usually read against) and applied unchanged to
    every model."""
    truth = data.incremental
    return {c: truth[c] / last_touch[c] if last_touch.get(c) else 0.0 for c in truth}


def calibrated(credits: dict[str, float], f: dict[str, float]) -> dict[str, float]:
    import pandas as pd

    from mixwise.attribution.calibration import calibrate

    frame = pd.DataFrame({"conversions": credits, "value": credits})
    frame.index.name = "channel"
    inc = pd.DataFrame({"channel": list(f), "factor": list(f.values())})
    out = calibrate(frame, inc)
    return {str(k): float(v) for k, v in out["calibrated_conversions"].fillna(0.0).items()}


def evaluate(data: Dataset, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    truth = data.incremental
    channels = list(truth)
    truth_share = shares(truth, channels)
    mix = results["mixwise"]
    f = factors(data, mix["credits"]["last"])
    rows: dict[str, dict[str, Any]] = {}
    for tool, res in results.items():
        for label, cred in res.get("credits", {}).items():
            s = shares(cred, channels)
            cal = shares(calibrated(cred, f), channels)
            rows[f"{tool}:{label}"] = {
                "mae_pp": mae_pp(s, truth_share),
                "direct_pct": 100 * s.get("direct", 0.0),
                "credited_vs_incremental": sum(cred.values()) / sum(truth.values()),
                "mae_calibrated_pp": mae_pp(cal, truth_share),
                "shares": s,
            }
    checks: dict[str, Any] = {"factors": f}
    ca_h = results.get("ca_heuristic", {}).get("credits", {})
    for model in ("first", "last", "linear"):
        if model in ca_h:
            a, b = mix["credits"][model], ca_h[model]
            checks[f"{model}_max_abs_diff"] = max(abs(a.get(c, 0) - b.get(c, 0)) for c in channels)
    for order, step, suffix in (
        (1, "ca_markov1", ""),
        (1, "ca_markov1_converged", "_converged"),
        (3, "ca_markov3", ""),
    ):
        key = f"markov_o{order}"
        ca_m = results.get(step, {}).get("credits", {}).get(key)
        if ca_m:
            ours = "markov" if order == 1 else key
            a, b = shares(mix["credits"][ours], channels), shares(ca_m, channels)
            diff = 100 * max(abs(a[c] - b[c]) for c in channels)
            checks[f"{key}{suffix}_max_share_diff_pp"] = diff
    return {"rows": rows, "checks": checks, "truth_share": truth_share}


def same_paths(work: Path) -> bool | None:
    import pandas as pd

    a, b = work / "mixwise-paths.parquet", work / "ca-paths.parquet"
    if not (a.exists() and b.exists()):
        return None
    m = pd.read_parquet(a).set_index("path").sort_index()
    c = pd.read_parquet(b).set_index("path").sort_index()
    return bool(
        m.index.equals(c.index)
        and (m["conversions"].to_numpy() == c["total_conversions"].to_numpy()).all()
        and (m["nulls"].to_numpy() == c["total_null"].to_numpy()).all()
    )


def report(
    n: int,
    data: Dataset,
    results: dict[str, dict[str, Any]],
    ev: dict[str, Any],
    same: bool | None,
) -> str:
    lines = [
        f"## {n:,} journeys ({data.truth['touches']:,} touches, "
        f"{data.truth['conversions']:,} conversions)",
        "",
    ]
    lines.append("| step | wall s (in-process) | process wall s | peak RSS MB |")
    lines.append("|---|---:|---:|---:|")
    for step, res in results.items():
        t = res.get("timings", {})
        inner = sum(v for k, v in t.items() if k not in ("import", "load"))
        err = f" ({res['error']})" if "error" in res else ""
        lines.append(
            f"| {step}{err} | {inner:.2f} | {res['process_wall']:.1f} | {res['peak_mb']:.0f} |"
        )
    lines += [
        "",
        "| tool:model | wall s | MAE vs truth (pp) | direct % | credited ÷ incremental "
        "| MAE calibrated (pp) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, row in ev["rows"].items():
        tool, label = key.split(":", 1)
        t = results[tool].get("timings", {})
        secs = t.get(label) or t.get("heuristic") or t.get(label.replace("_o", "")) or float("nan")
        lines.append(
            f"| {key} | {secs:.2f} | {row['mae_pp']:.2f} | {row['direct_pct']:.1f} | "
            f"{row['credited_vs_incremental']:.2f} | {row['mae_calibrated_pp']:.2f} |"
        )
    lines.append("")
    mix = results["mixwise"]["timings"]
    ours = mix["reduce"] + sum(mix[m] for m in TARGET_MODELS)
    lines.append(
        f"- mixwise target set (reduce + {', '.join(TARGET_MODELS)}): {ours:.2f} s "
        f"(reduce {mix['reduce']:.2f} s); process peak "
        f"{results['mixwise'].get('target_peak_mb', 0):.0f} MB after the target set, "
        f"{results['mixwise']['peak_mb']:.0f} MB with every model"
    )
    agg = results.get("ca_aggregate", {}).get("timings", {})
    mk1 = results.get("ca_markov1", {}).get("timings", {})
    if "aggregate" in agg and "markov1" in mk1:
        theirs = agg["aggregate"] + mk1["markov1"]
        lines.append(
            f"- ChannelAttribution aggregation + Markov order 1: {theirs:.2f} s "
            f"(aggregate {agg['aggregate']:.2f} s + markov {mk1['markov1']:.2f} s; "
            f"loading into pandas {agg.get('load', 0):.2f} s not counted) → ratio "
            f"{theirs / ours:.1f}x (target ≥ 5x)"
        )
    for k, v in ev["checks"].items():
        if k != "factors":
            lines.append(f"- {k}: {v:.3g}")
    lines.append(f"- same path table as the pandas aggregation: {same}")
    lines.append(
        "- incrementality factors: "
        + ", ".join(f"{c} {v:.2f}" for c, v in ev["checks"]["factors"].items())
    )
    return "\n".join(lines)


def versions() -> dict[str, str]:
    return _versions(
        "mixwise",
        "duckdb",
        "ibis-framework",
        "pandas",
        "numpy",
        "pyarrow",
        "channelattribution",
        "marketing-attribution-models",
        "polars",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--journeys", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--data-dir", type=Path, default=HERE / "data")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--skip", nargs="*", default=[], help="steps to leave out, e.g. mam")
    ap.add_argument("--quick", action="store_true", help="100k journeys only")
    ap.add_argument("--timeout", type=float, default=900.0, help="per step, seconds")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:  # child
        result = STEPS[args.step](args.db, args.work)
        (args.work / f"{args.step}.json").write_text(json.dumps(result))
        return 0
    sizes = [100_000] if args.quick else args.journeys
    print(
        json.dumps(
            {"date": dt.date.today().isoformat(), "cpus": os.cpu_count(), "versions": versions()},
            indent=1,
        )
    )
    for n in sizes:
        print(f"\n=== {n:,} journeys: preparing data ...", flush=True)
        data = prepare(args.data_dir, n)
        work = args.data_dir / f"work-{n}"
        work.mkdir(parents=True, exist_ok=True)
        steps = ["mixwise"] + ([] if args.skip_peers else list(PEER_STEPS))
        results: dict[str, dict[str, Any]] = {}
        for step in steps:
            missing = (
                step == "mam" and versions()["marketing-attribution-models"] == "not installed"
            )
            if step in args.skip or missing:
                continue
            print(f"--- {step}", flush=True)
            results[step] = run_step(step, data, work, args.timeout)
            print(
                f"    {results[step].get('timings')} peak {results[step]['peak_mb']:.0f} MB "
                f"{results[step].get('error', '')}",
                flush=True,
            )
        ev = evaluate(data, results)
        same = same_paths(work)
        text = report(n, data, results, ev, same)
        print("\n" + text, flush=True)
        out = args.data_dir / f"results-{n}.json"
        out.write_text(
            json.dumps(
                {
                    "journeys": n,
                    "truth": data.truth,
                    "results": results,
                    "evaluation": ev,
                    "same_paths": same,
                    "versions": versions(),
                },
                indent=1,
                default=str,
            )
        )
        (args.data_dir / f"report-{n}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
