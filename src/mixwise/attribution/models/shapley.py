"""Shapley value attribution: classic (exact or sampled), simplified and ordered (Zhao et al.).

The game
--------
Channels are players. A journey's *coalition* is the set of channels on its path (order and
repeats ignored). From the unique paths we aggregate, per coalition ``T``, its conversions
``conv(T)``, journeys ``n(T) = conversions + nulls`` and value ``val(T)``. The worth of a set of
channels ``S`` is read from the journeys that used only channels in ``S``:

- ``value_function="conversions"`` (default): ``v(S) = Σ_{T ⊆ S} conv(T)`` — the conversions
  that would remain if only the channels of ``S`` existed. Non-converting journeys play no part.
- ``value_function="conversion_rate"``: ``v(S) = Σ_{T⊆S} conv(T) / Σ_{T⊆S} n(T)`` (0 when no
  journey used only ``S``) — the conversion rate of those journeys. We use "⊆ S" rather than
  Shao & Li's "= S" (rate of journeys exposed to exactly ``S``) because it is defined for
  every ``S`` spanned by observed coalitions, is the same set of journeys the conversions game
  uses, and its grand coalition is the overall conversion rate. Marginal contributions can be
  negative (a channel whose journeys convert less lowers the rate), so credits can be negative.

Value credits use the same game with ``val`` in place of ``conv``. The Shapley value
``φ_i = Σ_{S ∌ i} |S|!(n−|S|−1)!/n! · (v(S ∪ i) − v(S))`` is efficient — ``Σ φ_i = v(N)`` — so
``credit_i = total × φ_i / Σ φ`` with shares summing to 1.

Exact computation
-----------------
Over the ``n`` channels present (up to ``max_exact_channels``, default 16) the game is a vector
of ``2ⁿ`` numbers indexed by bitmask. ``v`` is the *zeta* (subset-sum) transform of the
coalition counts, computed in ``n`` vectorised passes (:func:`subset_sum`); its inverse is the
*Möbius* transform (:func:`moebius`), whose values are the Harsanyi dividends. ``φ`` is then
one vectorised sum over the ``2ⁿ⁻¹`` masks without ``i`` per channel (:func:`shapley_values`):
``O(n 2ⁿ)``, never ``n!`` permutations.

Simplified Shapley (Zhao et al. 2018)
--------------------------------------
For the conversions game the Möbius transform of ``v`` is ``conv`` itself, and the Shapley value
of a game is ``φ_i = Σ_{T ∋ i} m(T)/|T|`` with ``m`` its dividends. Hence Zhao et al.'s closed
form ``φ_i = Σ_{T ∋ i} conv(T)/|T|``: every conversion is split equally among the distinct
channels of its path. It needs no ``2ⁿ`` table and is exact for any number of channels
(:class:`SimplifiedShapleyModel`; ``ShapleyModel`` uses it for the conversions game beyond
``max_exact_channels``).

Ordered Shapley (Zhao et al. 2018)
----------------------------------
The simplified formula split by the position at which a channel enters the journey:
``φ_i^(j) = Σ_T Σ_{journeys u with coalition T} conv(u)/|T| · 1[i is the j-th distinct channel of
u]``, positions counted over *distinct* channels in order of first appearance (``a > b > a > c``
has ``a`` at 1, ``b`` at 2, ``c`` at 3). ``Σ_j φ_i^(j)`` is the simplified Shapley value;
``position_credits_`` shows at which stage of journeys each channel earns its credit.

Beyond the exact limit: permutation sampling
--------------------------------------------
For the conversion-rate game with more channels than ``max_exact_channels`` (or with
``method="sampling"``), ``φ`` is estimated as the mean marginal contribution over random
permutations (seeded: ``seed``). Per permutation all ``n`` marginals cost one pass over the
coalitions. Permutations are drawn in batches until, for every channel, the normal (CLT)
half-width ``z · sd/√m`` — with ``z`` Bonferroni-corrected over the ``n`` channels at
``confidence`` — is at most ``tolerance`` in *share* units (or ``max_permutations`` is reached;
``converged_`` says which). ``error_bound_`` holds the achieved half-widths. Each permutation's
marginals sum to ``v(N)`` exactly, so estimated shares still sum to 1. Bitmasks limit sampling
to 62 channels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import norm

from mixwise.attribution.data import ConvertingTouches, PathSet
from mixwise.attribution.models.base import (
    AttributionModel,
    FloatArray,
    IntArray,
    register_model,
    validate_paths,
)

VALUE_FUNCTIONS = ("conversions", "conversion_rate")
METHODS = ("auto", "exact", "sampling")
MAX_BITMASK_CHANNELS = 62


# -- transforms over bitmasks ---------------------------------------------------------------


def subset_sum(f: FloatArray) -> FloatArray:
    """Zeta transform: ``g[S] = Σ_{T ⊆ S} f[T]`` over bitmasks (``len(f) == 2**n``)."""
    g = np.array(f, dtype=float, copy=True)
    n = round(math.log2(len(g)))
    for i in range(n):
        view = g.reshape(-1, 2, 1 << i)
        view[:, 1, :] += view[:, 0, :]
    return g


def moebius(g: FloatArray) -> FloatArray:
    """Möbius transform, the inverse of :func:`subset_sum` (Harsanyi dividends of a game)."""
    f = np.array(g, dtype=float, copy=True)
    n = round(math.log2(len(f)))
    for i in range(n):
        view = f.reshape(-1, 2, 1 << i)
        view[:, 1, :] -= view[:, 0, :]
    return f


def popcount(masks: IntArray, n_bits: int = MAX_BITMASK_CHANNELS + 1) -> IntArray:
    """Number of set bits among the lowest ``n_bits`` of each mask."""
    masks = np.asarray(masks, dtype=np.int64)
    count = np.zeros(masks.shape, dtype=np.int64)
    for i in range(n_bits):
        count += (masks >> i) & 1
    return count


def shapley_values(v: FloatArray) -> FloatArray:
    """Exact Shapley values of the game ``v`` given on all ``2**n`` bitmasks."""
    n = round(math.log2(len(v)))
    if len(v) != 1 << n:
        raise ValueError("the game must have 2**n entries")
    if n == 0:
        return np.zeros(0)
    masks = np.arange(1 << n, dtype=np.int64)
    size = popcount(masks, n)
    s = np.arange(n)
    weight = np.exp(gammaln(s + 1) + gammaln(n - s) - gammaln(n + 1))  # |S|!(n-|S|-1)!/n!
    phi = np.empty(n)
    for i in range(n):
        without = masks[((masks >> i) & 1) == 0]
        phi[i] = np.dot(weight[size[without]], v[without | (1 << i)] - v[without])
    return phi


# -- coalitions -----------------------------------------------------------------------------


class _Coalitions:
    """Unique coalitions (bitmasks over the present channels) with their totals."""

    def __init__(self, paths: PathSet) -> None:
        journeys = paths.conversions + paths.nulls
        used = (journeys + paths.value)[paths.path_index] > 0
        present = np.unique(paths.tokens[used]) if len(paths.tokens) else np.zeros(0, np.int64)
        self.present = present.astype(np.int64)
        self.n = len(present)
        self.too_many = self.n > MAX_BITMASK_CHANNELS
        if self.too_many:
            return
        local = np.full(len(paths.channels), -1, dtype=np.int64)
        local[present] = np.arange(self.n)
        bits = np.where(used, np.left_shift(1, np.maximum(local[paths.tokens], 0)), 0)
        masks = (
            np.bitwise_or.reduceat(bits, paths.offsets[:-1])
            if paths.n_paths
            else np.zeros(0, np.int64)
        )
        keep = masks != 0
        self.masks, inverse = np.unique(masks[keep], return_inverse=True)
        k = len(self.masks)
        self.conv: FloatArray = np.bincount(
            inverse, weights=paths.conversions[keep], minlength=k
        ).astype(float)
        self.journeys: FloatArray = np.bincount(
            inverse, weights=journeys[keep], minlength=k
        ).astype(float)
        self.value: FloatArray = np.bincount(
            inverse, weights=paths.value[keep], minlength=k
        ).astype(float)

    def dense(self, amounts: FloatArray) -> FloatArray:
        f = np.zeros(1 << self.n)
        np.add.at(f, self.masks, amounts)
        return f


def _rate(num: FloatArray, den: FloatArray) -> FloatArray:
    return np.divide(num, den, out=np.zeros(np.shape(num)), where=den > 0)


def _distinct_touches(paths: PathSet) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Per (path, distinct channel): path, channel, rank of first appearance, distinct count."""
    n_ch = max(len(paths.channels), 1)
    key = paths.path_index * n_ch + paths.tokens
    uniq, first = np.unique(key, return_index=True)
    order = np.argsort(first, kind="stable")
    uniq, first = uniq[order], first[order]
    path = uniq // n_ch
    channel = uniq % n_ch
    count = np.bincount(path, minlength=paths.n_paths)
    group_start = np.concatenate([[0], np.cumsum(count)])[:-1]
    rank = np.arange(len(uniq)) - group_start[path]
    return path, channel, rank, count[path]


def _closed_form(paths: PathSet) -> tuple[FloatArray, FloatArray]:
    path, channel, _, k = _distinct_touches(paths)
    n = len(paths.channels)
    conv = np.bincount(channel, weights=paths.conversions[path] / k, minlength=n)
    val = np.bincount(channel, weights=paths.value[path] / k, minlength=n)
    return conv.astype(float), val.astype(float)


def _scale(phi: FloatArray, total: float) -> FloatArray:
    s = phi.sum()
    return phi / s * total if s != 0 and total != 0 else np.zeros_like(phi)


# -- models ---------------------------------------------------------------------------------


@register_model
class ShapleyModel(AttributionModel):
    """Classic Shapley value attribution over the channels present on paths.

    Parameters
    ----------
    value_function:
        ``"conversions"`` or ``"conversion_rate"`` (see the module docstring).
    method:
        ``"auto"`` (exact up to ``max_exact_channels``; beyond it the closed form for the
        conversions game, sampling for the conversion-rate game), ``"exact"`` (raises for the
        conversion-rate game beyond ``max_exact_channels``) or ``"sampling"``.
    max_exact_channels:
        Largest number of present channels solved on the ``2ⁿ`` table (default 16).
    tolerance, confidence, max_permutations, seed:
        Sampling: stop when every channel's share is within ``tolerance`` at ``confidence``
        (simultaneously, Bonferroni), or after ``max_permutations``.

    Fitted: ``credits_``, ``shapley_values_`` (in the game's units), ``method_``,
    ``n_players_``, ``error_bound_`` (share half-widths; 0 when exact), ``n_permutations_``,
    ``converged_``.
    """

    name = "shapley"

    def __init__(
        self,
        value_function: str = "conversions",
        method: str = "auto",
        max_exact_channels: int = 16,
        tolerance: float = 0.005,
        confidence: float = 0.95,
        max_permutations: int = 200_000,
        seed: int = 0,
    ) -> None:
        self.value_function = value_function
        self.method = method
        self.max_exact_channels = max_exact_channels
        self.tolerance = tolerance
        self.confidence = confidence
        self.max_permutations = max_permutations
        self.seed = seed

    @property
    def nonnegative_credits(self) -> bool:
        return self.value_function == "conversions"

    def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> ShapleyModel:
        validate_paths(paths)
        if self.value_function not in VALUE_FUNCTIONS:
            raise ValueError(f"value_function must be one of {VALUE_FUNCTIONS}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        n_ch = len(paths.channels)
        total_conv, total_value = float(paths.conversions.sum()), float(paths.value.sum())
        coal = _Coalitions(paths)
        rate = self.value_function == "conversion_rate"
        small = coal.n <= int(self.max_exact_channels)
        phi_c = np.zeros(n_ch)
        phi_v = np.zeros(n_ch)
        bound = np.zeros(n_ch)
        self.n_permutations_ = 0
        self.converged_ = True

        if self.method != "sampling" and small:
            self.method_ = "exact"
            if coal.n:
                cum_c = subset_sum(coal.dense(coal.conv))
                cum_v = subset_sum(coal.dense(coal.value))
                if rate:
                    cum_n = subset_sum(coal.dense(coal.journeys))
                    cum_c, cum_v = _rate(cum_c, cum_n), _rate(cum_v, cum_n)
                phi_c[coal.present] = shapley_values(cum_c)
                phi_v[coal.present] = shapley_values(cum_v)
        elif self.method != "sampling" and not rate:
            self.method_ = "closed_form"
            phi_c, phi_v = _closed_form(paths)
        elif self.method == "exact":
            raise ValueError(
                f"exact Shapley over {coal.n} channels needs a table of 2**{coal.n} coalitions; "
                f"the limit is max_exact_channels={self.max_exact_channels}. Use method='auto' "
                "or 'sampling' (with an error bound), or group channels."
            )
        else:
            if coal.too_many:
                raise ValueError(
                    f"Shapley sampling supports up to {MAX_BITMASK_CHANNELS} channels present, "
                    f"got {coal.n}; group channels or use value_function='conversions'"
                )
            self.method_ = "sampling"
            phi_c[coal.present], phi_v[coal.present], bound[coal.present], m, ok = _sample(
                coal,
                rate=rate,
                tolerance=float(self.tolerance),
                confidence=float(self.confidence),
                max_permutations=int(self.max_permutations),
                seed=int(self.seed),
            )
            self.n_permutations_, self.converged_ = m, ok

        self.n_players_ = coal.n
        self.error_bound_ = pd.Series(bound, index=pd.Index(paths.channels, name="channel"))
        self.shapley_values_ = pd.Series(phi_c, index=pd.Index(paths.channels, name="channel"))
        self.total_conversions_ = total_conv
        self.total_value_ = total_value
        self._set_credits(paths.channels, _scale(phi_c, total_conv), _scale(phi_v, total_value))
        return self


def _sample(
    coal: _Coalitions,
    *,
    rate: bool,
    tolerance: float,
    confidence: float,
    max_permutations: int,
    seed: int,
    batch: int = 256,
) -> tuple[FloatArray, FloatArray, FloatArray, int, bool]:
    n = coal.n
    rng = np.random.default_rng(seed)
    bits = ((coal.masks[:, None] >> np.arange(n)) & 1).astype(bool)
    member_row, member_ch = np.nonzero(bits)
    starts = np.searchsorted(member_row, np.arange(len(coal.masks)))
    z = float(norm.ppf(1 - (1 - confidence) / (2 * max(n, 1))))
    sums = np.zeros((2, n))
    squares = np.zeros((2, n))
    m = 0
    totals = []
    for amount in (coal.conv, coal.value):
        grand = amount.sum() / coal.journeys.sum() if rate and coal.journeys.sum() else amount.sum()
        totals.append(grand)
    bound = np.full(n, np.inf)
    converged = False
    while m < max_permutations:
        b = min(batch, max_permutations - m)
        perm = rng.permuted(np.tile(np.arange(n), (b, 1)), axis=1)
        rows = np.arange(b)[:, None]
        pos = np.empty_like(perm)
        pos[rows, perm] = np.arange(n)
        # A coalition joins the prefix when its last member (in permutation order) arrives.
        joins = np.maximum.reduceat(pos[:, member_ch], starts, axis=1)
        flat = (rows * n + joins).ravel()

        def prefix(amount: FloatArray, flat: Any = flat, b: int = b) -> FloatArray:
            out = np.bincount(flat, weights=np.tile(amount, b), minlength=b * n)
            return out.reshape(b, n).cumsum(axis=1)

        cum_n = prefix(coal.journeys) if rate else None
        for g, amount in enumerate((coal.conv, coal.value)):
            cum = prefix(amount)
            if cum_n is not None:
                cum = _rate(cum, cum_n)
            marginal = np.diff(cum, axis=1, prepend=0.0)
            per_channel = np.empty_like(marginal)
            per_channel[rows, perm] = marginal
            sums[g] += per_channel.sum(axis=0)
            squares[g] += (per_channel**2).sum(axis=0)
        m += b
        if m >= 2 * batch or m >= max_permutations:
            bound = np.zeros(n)
            for g in range(2):
                if totals[g] == 0:
                    continue
                mean = sums[g] / m
                var = np.maximum(squares[g] / m - mean**2, 0.0) * m / max(m - 1, 1)
                bound = np.maximum(bound, z * np.sqrt(var / m) / abs(totals[g]))
            if bound.max(initial=0.0) <= tolerance:
                converged = True
                break
    return sums[0] / m, sums[1] / m, bound, m, converged


@register_model
class SimplifiedShapleyModel(AttributionModel):
    """Zhao et al.'s simplified Shapley: each conversion split equally by distinct channels.

    Exact for any number of channels; equals :class:`ShapleyModel` with the conversions game.
    """

    name = "shapley_simplified"

    def fit(
        self, paths: PathSet, touches: ConvertingTouches | None = None
    ) -> SimplifiedShapleyModel:
        validate_paths(paths)
        conv, val = _closed_form(paths)
        self.total_conversions_ = float(paths.conversions.sum())
        self.total_value_ = float(paths.value.sum())
        self._set_credits(paths.channels, conv, val)
        return self


@register_model
class OrderedShapleyModel(AttributionModel):
    """Zhao et al.'s ordered Shapley: the simplified value split by entry position.

    Fitted: ``credits_`` (the simplified Shapley credits, summed over positions),
    ``position_credits_`` and ``position_value_credits_`` (channel × position 1, 2, …: credit
    earned as the j-th distinct channel of a journey).
    """

    name = "shapley_ordered"

    def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> OrderedShapleyModel:
        validate_paths(paths)
        path, channel, rank, k = _distinct_touches(paths)
        n = len(paths.channels)
        width = int(rank.max()) + 1 if len(rank) else 0
        cell = channel * max(width, 1) + rank
        frames = []
        for amount in (paths.conversions, paths.value):
            table = np.bincount(cell, weights=amount[path] / k, minlength=n * max(width, 1))
            frames.append(
                pd.DataFrame(
                    table.reshape(n, max(width, 1))[:, :width],
                    index=pd.Index(paths.channels, name="channel"),
                    columns=pd.RangeIndex(1, width + 1, name="position"),
                )
            )
        self.position_credits_, self.position_value_credits_ = frames
        self.total_conversions_ = float(paths.conversions.sum())
        self.total_value_ = float(paths.value.sum())
        self._set_credits(
            paths.channels,
            frames[0].sum(axis=1).to_numpy(float),
            frames[1].sum(axis=1).to_numpy(float),
        )
        return self
