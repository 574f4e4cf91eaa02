"""Customer orders (a customer-lifetime process) and the lead funnel.

**Orders** follow a BG/NBD-like process for a panel of ``n_customers`` customers (think: the
loyalty-card holders, a sample of the buyers behind the aggregate revenue):

* customer ``i`` is acquired on a uniform day of the range, with a first order that day;
* while alive, orders arrive as a Poisson process with rate ``λ_i ~ Gamma(r, mean 1/
  mean_interpurchase_days)``;
* after each order the customer drops out for good with probability ``p_i ~ Beta(a, b)``;
* order values are ``Gamma(value_p, rate ν_i)`` with ``ν_i ~ Gamma(value_q, rate γ)``
  (gamma-gamma), ``γ`` set so the mean order value is the market's ``aov``.

The true per-customer parameters are returned alongside (``GroundTruth.customers``).

**Leads.** The aggregate ``outcomes.leads`` count of each day (summed over geos) is turned into
that many leads entering on that day. Each lead's ``source_channel`` is drawn from that day's mix
of true revenue sources: ``organic`` with weight baseline + controls, each channel with its
(non-negative) removal contribution. Leads then move lead → mql → sql → opportunity with
probabilities ``advance`` (otherwise they stall), and opportunities close as won (``p_won``) or
lost; each transition takes an exponential delay. Rows after the end of the range are censored.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mixwise.simulate.config import MarketConfig
from mixwise.simulate.world import _CUSTOMER, _LEAD_TABLE, FloatArray, IntArray, rng_for

__all__ = ["simulate_leads", "simulate_orders"]

_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def _ids(prefix: str, index: IntArray) -> pd.Series:
    digits = pc.cast(pa.array(np.asarray(index) + 1), pa.string())
    arr = pc.binary_join_element_wise(prefix, pc.utf8_lpad(digits, 7, "0"), "")
    return pd.Series(pd.array(arr, dtype=_STR))


def simulate_orders(config: MarketConfig, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``orders`` (customer_id, date, value, order_id) and the true per-customer parameters."""
    spec = config.customers
    rng = rng_for(seed, _CUSTOMER)
    n, k, days = spec.n_customers, spec.max_orders, config.days
    acquired = rng.integers(0, days, n)
    rate = rng.gamma(
        spec.purchase_shape, 1.0 / (spec.purchase_shape * spec.mean_interpurchase_days), n
    )
    dropout = rng.beta(spec.dropout_a, spec.dropout_b, n)
    gamma_rate = config.aov * (spec.value_q - 1.0) / spec.value_p
    nu = rng.gamma(spec.value_q, 1.0 / gamma_rate, n)
    gaps = rng.exponential(1.0, (n, k)) / rate[:, None]
    gaps[:, 0] = 0.0
    times = acquired[:, None] + np.cumsum(gaps, axis=1)
    # Orders made while alive: the customer survives after order j with prob (1 - p)^(j+1).
    alive_orders = rng.geometric(dropout)  # orders placed before dropping out, >= 1
    valid = (np.arange(k)[None, :] < alive_orders[:, None]) & (times < days)
    values = rng.gamma(spec.value_p, 1.0, (n, k)) / nu[:, None]
    cust, order = np.nonzero(valid)
    day = np.floor(times[cust, order]).astype(np.int64)
    start = config.start_date
    date_arr = np.array([start + dt.timedelta(days=i) for i in range(days)], dtype=object)
    orders = pd.DataFrame(
        {
            "customer_id": _ids("c", cust),
            "date": pd.Series(date_arr[day], dtype=object),
            "value": np.round(values[cust, order], 2),
        }
    )
    orders = orders.iloc[np.lexsort((cust, day))].reset_index(drop=True)
    # A customer can order twice on one day, so orders carry their own id (the natural key).
    orders["order_id"] = _ids("o", np.arange(len(orders)))
    customers = pd.DataFrame(
        {
            "customer_id": _ids("c", np.arange(n)),
            "acquired": pd.Series(date_arr[acquired], dtype=object),
            "purchase_rate": rate,
            "dropout_prob": dropout,
            "mean_value": spec.value_p / nu,
            "n_orders": valid.sum(axis=1).astype(np.int64),
        }
    )
    return orders, customers


def simulate_leads(
    config: MarketConfig,
    seed: int,
    daily_leads: IntArray,
    source_weights: FloatArray,
    source_names: list[str],
) -> pd.DataFrame:
    """Lead stage history. ``daily_leads`` (T,) counts; ``source_weights`` (T, S) mix per day."""
    funnel = config.leads
    rng = rng_for(seed, _LEAD_TABLE)
    counts = np.asarray(daily_leads, dtype=np.int64)
    n = int(counts.sum())
    day = np.repeat(np.arange(len(counts)), counts)
    entered = (day + rng.random(n)) * 86_400.0
    w = np.maximum(source_weights, 0.0)
    cw = np.cumsum(w, axis=1)
    u = rng.random(n) * cw[day, -1]
    source = (cw[day] < u[:, None]).sum(axis=1)
    stages = ["lead", "mql", "sql", "opportunity"]
    lead_idx: list[IntArray] = []
    stage_col: list[np.ndarray] = []
    time_col: list[FloatArray] = []
    alive = np.ones(n, dtype=bool)
    t = entered.copy()
    for i, stage in enumerate(stages):
        idx = np.flatnonzero(alive)
        lead_idx.append(idx)
        stage_col.append(np.full(len(idx), stage, dtype=object))
        time_col.append(t[idx])
        delay = rng.exponential(funnel.mean_delay_days[i] * 86_400.0, n)
        t = t + delay
        if i < 3:
            alive &= rng.random(n) < funnel.advance[i]
        else:
            won = rng.random(n) < funnel.p_won
            idx = np.flatnonzero(alive)
            lead_idx.append(idx)
            stage_col.append(np.where(won[idx], "won", "lost").astype(object))
            time_col.append(t[idx])
    lid = np.concatenate(lead_idx)
    sec = np.concatenate(time_col)
    stage_arr = np.concatenate(stage_col)
    keep = sec < config.days * 86_400.0
    lid, sec, stage_arr = lid[keep], sec[keep], stage_arr[keep]
    order = np.lexsort((sec, lid))
    lid, sec, stage_arr = lid[order], sec[order], stage_arr[order]
    epoch = pd.Timestamp(config.start_date, tz="UTC")
    stamps = epoch + pd.to_timedelta(np.rint(sec).astype(np.int64), unit="s")
    names = np.array(source_names, dtype=object)
    return pd.DataFrame(
        {
            "lead_id": _ids("l", lid),
            "stage": pd.Series(stage_arr, dtype="str"),
            "entered_at": pd.Series(stamps.as_unit("us")),
            "source_channel": pd.Series(names[source[lid]], dtype="str"),
        }
    )
