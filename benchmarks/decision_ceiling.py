"""How good can a decision be from weekly data? The MMM's curve form fitted without noise.

``optimize.py`` scores each tool's plan on the simulator's true curves. This script asks what
the best an MMM of mixwise's media form could reach on the same markets if there were no
noise and no baseline to separate: per channel, the form (a Hill curve of the weekly
adstock, geometric carry-over decaying per day over 8 weeks, as ``MMM`` fits weekly data) is
fitted by least squares to the channel's **true** weekly media revenue (the simulator's
daily curves on its daily spend, summed per week; no noise, no baseline, no other channel).
The fitted curves then plan the same decisions as ``optimize.py`` (``allocate`` on them, one
week and ``--weeks``), scored on the truth by ``optimize.true_value``.

Two targets, two curve shapes:

- ``weekly data``: the true weekly media revenue of the spend as it was, day by day (what a
  weekly model sees);
- ``steady weeks``: the true curves' weekly revenue had each week's spend been spread evenly
  over its days (what ``TruthResponse`` and every plan assume): no loss from aggregation;
- Hill slope free (0.3-6) or fixed at 1 (concave).

The report also gives how far the true curves, with each week's spend spread evenly, are from
the true weekly revenue (the timing of spend within the week, which weekly data do not show).

    python benchmarks/decision_ceiling.py               # the three markets, 1 and 13 weeks
    python benchmarks/decision_ceiling.py --market flighted --weeks 4

No MCMC, no peers: a few minutes on 2 cores. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from mixwise.optimize import HillResponse, TruthResponse, allocate  # noqa: E402
from mmm import SEED, WEEKS, _channel_specs  # noqa: E402
from optimize import N_CHANNELS, steady, true_value  # noqa: E402

FloatArray = npt.NDArray[np.float64]
L_MAX = 8  # weeks of carry-over, as MMM's geometric adstock
STEPS = 7  # decay steps (days) per week, as MMM sets for weekly data


@dataclass(frozen=True, eq=False)
class DailyDecayHill(HillResponse):
    """``HillResponse`` whose ``decay`` is per day of a week (MMM's weekly kernel)."""

    def _weights(self) -> Any:
        import jax.numpy as jnp

        from mixwise.mmm.transforms import geometric_weights

        w = geometric_weights(jnp.asarray(self.decay, jnp.float32), self.l_max, steps=STEPS)
        return jnp.moveaxis(w, 0, 1)  # (draws, L, C)


def weekly_weights(decay: float) -> FloatArray:
    from mixwise.mmm.transforms import geometric_weights

    return np.asarray(geometric_weights(np.float32(decay), L_MAX, steps=STEPS), np.float64)


def fit_channel(spend: FloatArray, target: FloatArray, slope: float | None) -> dict[str, float]:
    """Least squares of ``effect * hill(adstock(spend), half, slope)`` to ``target`` (weekly),
    from 9 starts; spend and target in money, the fit on the scale of their means."""
    from scipy.optimize import least_squares
    from scipy.signal import lfilter

    from mixwise.simulate.transforms import hill

    s_mean, y_mean = float(spend.mean()), float(target.mean())

    def unpack(p: FloatArray) -> tuple[float, float, float, float]:
        return float(p[0]), float(p[1]), slope if slope else float(p[2]), float(p[-1])

    def resid(p: FloatArray) -> FloatArray:
        decay, half, n, effect = unpack(p)
        ad = lfilter(weekly_weights(decay), [1.0], spend / s_mean)  # causal convolution
        with np.errstate(over="ignore"):  # (half / tiny adstock) ** slope -> inf -> hill 0
            return effect * hill(ad, half, n) - target / y_mean

    best = None
    for d0 in (0.2, 0.5, 0.8):
        for h0 in (0.5, 1.0, 2.0):
            p0 = [d0, h0] + ([] if slope else [1.5]) + [2.0]
            lo = [0.01, 0.01] + ([] if slope else [0.3]) + [0.0]
            hi = [0.99, 50.0] + ([] if slope else [6.0]) + [np.inf]
            f = least_squares(resid, p0, bounds=(lo, hi))
            if best is None or f.cost < best.cost:
                best = f
    assert best is not None
    decay, half, n, effect = unpack(best.x)
    rmse = float(np.sqrt(np.mean(best.fun**2)))  # relative to the mean weekly revenue
    return {
        "decay": decay,
        "half": half * s_mean,
        "slope": n,
        "max_effect": effect * y_mean,
        "rel_rmse": rmse,
    }


def market_truth(spend: str, seed: int) -> tuple[TruthResponse, FloatArray, FloatArray]:
    """The truth, the weekly spend (W, C) and the true weekly media revenue (W, C) of the
    market, from the simulator's daily spend and curves (whole weeks from the end)."""
    from mixwise.simulate import MarketConfig, simulate_market

    chans = _channel_specs(N_CHANNELS, spend)
    cfg = MarketConfig(days=WEEKS * 7, channels=chans, synergies=(), n_journeys=1000)
    market = simulate_market(cfg, seed=seed)
    truth = TruthResponse.from_market(market, period_days=7)
    world = market._world
    daily = np.asarray(world.sim(world.spend).sum(axis=1).T, dtype=np.float64)  # (days, C)
    # the simulator's own noise-free media effects (burn-in carry-over included), national
    effect = world.sim(world.media_parts(world.spend).direct).sum(axis=1).T
    weeks = len(daily) // 7
    daily, effect = daily[-weeks * 7 :], effect[-weeks * 7 :]
    spend_w = daily.reshape(weeks, 7, -1).sum(axis=1)
    return truth, spend_w, effect.reshape(weeks, 7, -1).sum(axis=1)


def run_market(spend: str, seed: int, horizons: list[int]) -> list[str]:
    truth, s_w, y_w = market_truth(spend, seed)
    channels = truth.channels
    # the truth's curves with each week's spend spread evenly over its days
    y_even = np.asarray(truth.media(s_w, carry_over=False))[0]
    timing = np.sqrt(np.mean((y_even - y_w) ** 2, axis=0)) / y_w.mean(axis=0)
    lines = [
        f"**{spend} market** (simulator seed {seed}, {len(s_w)} weeks). The true curves with "
        "each week's spend spread evenly miss the true weekly revenue by (RMSE / mean): "
        + ", ".join(f"{c} {100 * t:.1f} %" for c, t in zip(channels, timing, strict=True)),
        "",
        "| curves fitted to | Hill slope | weekly fit RMSE / mean (max over channels) | "
        "fitted slopes | "
        + " | ".join(f"decision quality, {h} week{'s' if h > 1 else ''}" for h in horizons)
        + " |",
        "|---|---|---:|---|" + "---:|" * len(horizons),
    ]
    optimum: dict[int, tuple[float, float]] = {}
    for h in horizons:
        budget = float(truth.history_mean.sum()) * h
        hist = true_value(truth, steady(truth.history_mean, h))
        best = true_value(truth, allocate(truth, budget, periods=h).plan.to_numpy())
        optimum[h] = (hist, best)
    for label, target in (("weekly data", y_w), ("steady weeks", y_even)):
        for slope in (None, 1.0):
            fits = [fit_channel(s_w[:, c], target[:, c], slope) for c in range(len(channels))]
            rm = DailyDecayHill(
                channels=channels,
                half=[f["half"] for f in fits],
                slope=[f["slope"] for f in fits],
                max_effect=[f["max_effect"] for f in fits],
                decay=[f["decay"] for f in fits],
                current=truth.history_mean,
                history=s_w[-L_MAX:],
                l_max=L_MAX,
            )
            cells = []
            for h in horizons:
                budget = float(truth.history_mean.sum()) * h
                plan = allocate(rm, budget, periods=h).plan.to_numpy()
                hist, best = optimum[h]
                dq = 100.0 * (true_value(truth, plan) - hist) / (best - hist)
                cells.append(f"{dq:.1f} %")
            slopes = ", ".join(f"{f['slope']:.2f}" for f in fits)
            lines.append(
                f"| {label} | {'free' if slope is None else '1'} "
                f"| {100 * max(f['rel_rmse'] for f in fits):.2f} % "
                f"| {slopes} | " + " | ".join(cells) + " |"
            )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--market",
        choices=("default", "flighted", "varied"),
        action="append",
        help="the market(s) (default: all three)",
    )
    ap.add_argument("--weeks", type=int, default=13, help="the longer horizon (default 13)")
    ap.add_argument("--data-seed", type=int, default=SEED, help=f"simulator seed ({SEED})")
    args = ap.parse_args(argv)
    if args.weeks < 1:
        ap.error("--weeks must be >= 1")
    horizons = sorted({1, args.weeks})
    print(
        f"## Decision ceiling of the MMM's curve form (noise-free fits), {dt.date.today()}\n",
        flush=True,
    )
    for market in args.market or ["default", "flighted", "varied"]:
        print("\n".join(run_market(market, args.data_seed, horizons)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
