"""Benchmark data: simulator journeys loaded straight into a DuckDB warehouse file.

A scratch loader: chunks from :meth:`Market.iter_journeys` are registered and inserted with
plain SQL (no CSV validation), and the per-journey truth is reduced on the fly to the counts
the accuracy check needs. The warehouse file and a ``.truth.json`` sidecar are cached under
the data directory; a file is only used once its sidecar exists (written last).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mixwise.simulate import MarketConfig, simulate_market
from mixwise.store.warehouse import Warehouse

SEED = 7
CHUNK = 500_000


@dataclass(frozen=True)
class Dataset:
    journeys: int
    warehouse: Path
    truth: dict[str, object]  # see ``prepare``

    @property
    def incremental(self) -> dict[str, float]:
        """True incremental conversions per channel (``direct`` is 0)."""
        return {k: float(v) for k, v in dict(self.truth["incremental"]).items()}  # type: ignore[call-overload]


def paths_for(data_dir: Path, n: int) -> tuple[Path, Path]:
    stem = data_dir / f"journeys-{n}-seed{SEED}"
    return stem.with_suffix(".duckdb"), stem.with_suffix(".truth.json")


def prepare(data_dir: Path, n: int, *, log: bool = True) -> Dataset:
    """The cached warehouse of ``n`` simulator journeys (built on first use)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db, sidecar = paths_for(data_dir, n)
    if db.exists() and sidecar.exists():
        return Dataset(n, db, json.loads(sidecar.read_text()))
    for stale in (db, db.with_suffix(".duckdb.wal"), sidecar):
        stale.unlink(missing_ok=True)
    t0 = time.perf_counter()
    market = simulate_market(MarketConfig.demo(), seed=SEED)
    channels = [*market.config.channel_names, "direct"]
    incremental = pd.Series(0.0, index=channels)
    baseline = conversions = touches = 0
    value = 0.0
    wh = Warehouse(db)
    raw = wh._raw
    try:
        for chunk in market.iter_journeys(n, CHUNK):
            raw.register("_bench_tp", chunk.touchpoints)
            raw.execute(
                "INSERT INTO touchpoints SELECT journey_id, timestamp, channel, campaign, "
                "interaction FROM _bench_tp"
            )
            raw.unregister("_bench_tp")
            raw.register("_bench_cv", chunk.conversions)
            raw.execute(
                "INSERT INTO conversions SELECT journey_id, timestamp, value, order_id "
                "FROM _bench_cv"
            )
            raw.unregister("_bench_cv")
            truth = chunk.truth
            inc = truth.loc[truth["incremental"], "cause"].value_counts()
            incremental = incremental.add(inc.reindex(channels, fill_value=0), fill_value=0)
            baseline += int((truth["converted"] & ~truth["incremental"]).sum())
            conversions += len(chunk.conversions)
            value += float(chunk.conversions["value"].sum())
            touches += len(chunk.touchpoints)
            if log:
                print(f"  generated {truth['journey_id'].iloc[-1]} ...", flush=True)
        raw.execute("CHECKPOINT")
    finally:
        wh.close()
    meta: dict[str, object] = {
        "journeys": n,
        "seed": SEED,
        "touches": touches,
        "conversions": conversions,
        "value": value,
        "baseline_conversions": baseline,
        "incremental": {k: float(v) for k, v in incremental.items()},
        "seconds_to_build": round(time.perf_counter() - t0, 1),
    }
    sidecar.write_text(json.dumps(meta, indent=1))
    return Dataset(n, db, meta)
