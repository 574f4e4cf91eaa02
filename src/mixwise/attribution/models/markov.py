"""Markov chain attribution by removal effect, solved exactly on the absorbing chain.

The model
---------
Every journey is a walk ``(start) → s₁ → s₂ → … → sₙ → (conversion) | (null)`` through *channel
states*. Transitions are counted from the unique paths, each weighted by its number of journeys
(``conversions + nulls``); the last state goes to ``(conversion)`` with weight ``conversions``
and to ``(null)`` with weight ``nulls``. Row-normalising the counts gives the transition matrix
``P``; ``(conversion)`` and ``(null)`` are absorbing.

With ``Q`` the transitions among the transient states (``(start)`` and the channel states) and
``r`` the one-step probabilities into ``(conversion)``, the probability of converting from each
state solves ``(I − Q) x = r``; ``conversion_probability_ = x[(start)]``. We solve it with one
sparse LU (:func:`scipy.sparse.linalg.spsolve`) — exact, no random simulation, so no seed and no
run-to-run noise (ChannelAttribution estimates the same quantities by simulating walks).
Because the chain is the maximum-likelihood fit of the observed walks, flow is conserved and
``conversion_probability_`` equals the observed conversion rate at every order; what the order
changes is how that probability responds to removing a channel.

Removal effect
--------------
Removing channel ``c`` redirects every transition into a state that *contains* ``c`` to
``(null)``: equivalently, those states are deleted from the transient system. With ``P₋c`` the
conversion probability of that chain::

    RE_c = 1 − P₋c / P(conversion)        credit_c = total conversions × RE_c / Σ_k RE_k

``RE_c`` is in ``[0, 1]`` (removal can only lose conversions) and equals the probability that a
converting walk visits ``c``. Removal effects do not sum to 1 — several channels share one
conversion — which is why credits are normalised.

Higher order: the states
------------------------
At order ``k`` a state is the tuple of the last ``k`` channels. Two conventions for the first
``k − 1`` touches (``states=``):

- ``"padded"`` (default): the history is padded with ``(start)``, so the states of
  ``a > b > c > d`` at order 2 are ``(a)``, ``(a, b)``, ``(b, c)``, ``(c, d)`` — one step per
  touch, and the chain remembers that a journey *began* with ``a``. This is a true ``k``-th
  order chain on the padded sequence. A notable consequence: when ``order`` is at least the
  longest path, the chain is the prefix tree of the data and reproduces the observed paths
  exactly, so ``RE_c`` is exactly the share of conversions on paths that contain ``c``.
- ``"window"`` (ChannelAttribution's ``markov_model`` convention): states are the sliding windows
  of exactly ``k`` channels, ``(start) → (a, b) → (b, c) → (c, d)``; a path shorter than ``k``
  is a single state made of the whole path.

At order 1 both are the same chain. A state "contains" ``c`` when any of its channels is ``c``.

Documented behaviours
---------------------
- **Non-converting paths** feed the transitions and the ``(null)`` exits (``include_nulls=True``).
  With ``include_nulls=False`` only converting journeys are counted: every walk converts,
  ``conversion_probability_ = 1`` and ``RE_c`` is the probability that the chain's walk visits
  ``c``. This is *not* in general the share of conversions whose paths contain ``c`` (with paths
  ``a > b`` and ``b > a``, one conversion each, order 1 gives ``RE_a = 3/4``, not 1): the chain
  also generates walks that are not in the data. It is that share when the chain reproduces the
  data (``states="padded"`` and ``order`` ≥ the longest path).
- **Repeated channels and self-transitions** are kept as observed (``a > a > b`` has the
  transition ``a → a``). Absorption probabilities do not depend on self-loops: if state ``s``
  stays with probability ``p``, then ``x_s = p x_s + Σ_{j≠s} P_sj x_j`` gives
  ``x_s = Σ_{j≠s} P_sj/(1 − p) x_j``, the chain with the self-loop dropped and the row
  rescaled — which is exactly what collapsing consecutive repeats in the data does at order 1.
  So order-1 removal effects are invariant to repeats (ChannelAttribution collapses repeated
  consecutive states, the same thing). At order ≥ 2, ``a > a > b`` visits the state ``(a, a)``,
  which ``a > b`` does not, so repeats can matter there, as in ChannelAttribution.
- **Channels only on non-converting paths** get credit only if the chain can carry a walk from
  them to a conversion through states shared with converting journeys (null path ``c > a`` with
  ``a`` converting elsewhere gives ``c`` a share at order 1); a channel only at the end of null
  paths, or any such channel at full-history order, gets exactly 0.
- **Value credits** follow ChannelAttribution's definition: the value removal effect uses the
  expected conversion *value* of the chain, not its conversion probability. A conversion leaving
  state ``s`` is worth the mean value of the conversions observed leaving ``s``; the expected
  value per journey solves ``(I − Q) y = b`` with ``b_s = value leaving s / journeys through s``,
  ``VRE_c = 1 − Y₋c / Y`` and ``value credit_c = total value × VRE_c / Σ_k VRE_k``. With a
  constant value per conversion this reproduces the conversion credits scaled by the value.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from mixwise.attribution.data import SEPARATOR, ConvertingTouches, PathSet
from mixwise.attribution.models.base import (
    AttributionModel,
    FloatArray,
    IntArray,
    register_model,
    validate_paths,
)

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
STATE_CONVENTIONS = ("padded", "window")
SOLVERS = ("auto", "direct", "iterative")
DIRECT_LIMIT = 2_000  # transient states up to which "auto" uses a sparse LU
ITERATION_LIMIT = 100_000

BoolArray = npt.NDArray[np.bool_]


@register_model
class MarkovModel(AttributionModel):
    """Removal-effect attribution on an order-``order`` Markov chain, solved exactly.

    Parameters
    ----------
    order:
        1 to 4: how many past channels a state remembers.
    include_nulls:
        Count non-converting journeys (default). False: only converting journeys.
    states:
        ``"padded"`` (default) or ``"window"`` (ChannelAttribution's convention); identical at
        order 1. See the module docstring.
    solver:
        ``"direct"``: sparse LU (:func:`scipy.sparse.linalg.spsolve`). ``"iterative"``: the
        absorption iteration ``x ← Qx + r`` to 1e-15, checked by its residual (falls back to
        LU if it does not settle). ``"auto"`` (default): LU up to 2,000 states, else iterative
        — at order 4 the LU of a densely connected chain fills in badly (seconds per solve),
        while the iteration takes milliseconds and agrees to ~1e-13.

    Fitted attributes
    -----------------
    credits_, total_conversions_, total_value_
    removal_effects_: Series per channel (by conversion probability)
    value_removal_effects_: Series per channel (by expected value)
    conversion_probability_: P(conversion) from ``(start)``
    value_per_journey_: expected conversion value per journey from ``(start)``
    transition_matrix_: CSR matrix, row-stochastic, over ``states_``
    states_: state labels: ``(start)``, channel states (``"a > b"``), ``(conversion)``, ``(null)``
    """

    name = "markov"

    def __init__(
        self,
        order: int = 1,
        include_nulls: bool = True,
        states: str = "padded",
        solver: str = "auto",
    ) -> None:
        self.order = order
        self.include_nulls = include_nulls
        self.states = states
        self.solver = solver

    def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> MarkovModel:
        validate_paths(paths)
        order = self.order
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
            raise TypeError("order must be an integer from 1 to 4")
        if not 1 <= int(order) <= 4:
            raise ValueError(f"order must be from 1 to 4, got {order}")
        if self.states not in STATE_CONVENTIONS:
            raise ValueError(f"states must be one of {STATE_CONVENTIONS}, got {self.states!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        chain = _build_chain(paths, int(order), bool(self.include_nulls), self.states)
        n_ch = len(paths.channels)
        total_conv = float(paths.conversions.sum())
        total_value = float(paths.value.sum())

        base_x = chain.solve(np.ones(chain.n_transient, dtype=bool), self.solver)
        p_conv, v_conv = float(base_x[0]), float(base_x[1])
        re = np.zeros(n_ch)
        vre = np.zeros(n_ch)
        for c in range(n_ch):
            keep = ~chain.contains(c)
            if keep.all():
                continue  # channel absent from the chain: nothing to remove
            x = chain.solve(keep, self.solver)
            re[c] = 1.0 - x[0] / p_conv if p_conv > 0 else 0.0
            vre[c] = 1.0 - x[1] / v_conv if v_conv > 0 else 0.0
        re = np.clip(re, 0.0, 1.0)  # round-off only; removal cannot add conversions
        vre = np.clip(vre, 0.0, 1.0)

        self.removal_effects_ = pd.Series(re, index=pd.Index(paths.channels, name="channel"))
        self.value_removal_effects_ = pd.Series(vre, index=pd.Index(paths.channels, name="channel"))
        self.conversion_probability_ = p_conv
        self.value_per_journey_ = v_conv
        self.transition_matrix_ = chain.transition_matrix()
        self.states_ = chain.labels(paths.channels)
        self.total_conversions_ = total_conv
        self.total_value_ = total_value
        self._set_credits(
            paths.channels, _normalised(re, total_conv), _normalised(vre, total_value)
        )
        return self

    def transitions(self) -> pd.DataFrame:
        """The fitted transition matrix in long form: ``from``, ``to``, ``probability``."""
        self._check_fitted()
        m = self.transition_matrix_.tocoo()
        labels = np.asarray(self.states_, dtype=object)
        return pd.DataFrame({"from": labels[m.row], "to": labels[m.col], "probability": m.data})


def _absorb_iteratively(q: sp.csr_matrix, rhs: FloatArray) -> FloatArray | None:
    """Solve ``(I − Q) x = rhs`` by ``x ← Q x + rhs`` from 0; None if it does not settle.

    ``x_k`` is the probability (expected value) of absorbing within ``k`` steps, so the iterates
    rise monotonically to the solution; we stop when a step changes nothing at 1e-15 relative
    and then require the residual to be below 1e-12 relative.
    """
    x = np.zeros_like(rhs)
    for _ in range(ITERATION_LIMIT):
        nxt = q @ x + rhs
        step = np.abs(nxt - x).max(initial=0.0)
        x = nxt
        if step <= 1e-15 * max(np.abs(x).max(initial=0.0), 1e-300):
            residual = np.abs(x - q @ x - rhs).max(initial=0.0)
            if residual <= 1e-12 * max(np.abs(rhs).max(initial=0.0), 1e-300):
                return x
            return None
    return None


def _normalised(effects: FloatArray, total: float) -> FloatArray:
    s = effects.sum()
    return effects / s * total if s > 0 else np.zeros_like(effects)


class _Chain:
    """Transition counts of the absorbing chain; states 0 = start, 1..S channel states."""

    def __init__(
        self,
        counts: sp.csr_matrix,
        state_codes: IntArray,
        base: int,
        order: int,
    ) -> None:
        self.counts = counts  # (S+3) x (S+3): transient 0..S, then conversion, null
        self.state_codes = state_codes  # code of states 1..S
        self.base = base
        self.order = order
        self.n_transient = len(state_codes) + 1
        n_t = self.n_transient
        out = np.asarray(counts.sum(axis=1)).ravel()
        inv = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
        self.probabilities = sp.csr_matrix(sp.diags(inv) @ counts)
        p = self.probabilities
        self.q = sp.csc_matrix(p[:n_t, :n_t])
        self.to_conversion = p[:n_t, n_t].toarray().ravel()
        self._digits = self._decode()

    def _decode(self) -> IntArray:
        """Channel index + 1 of each position of each channel state (0 = padding)."""
        digits = np.zeros((len(self.state_codes), self.order), dtype=np.int64)
        rest = self.state_codes.copy()
        for j in range(self.order):
            digits[:, j] = rest % self.base
            rest //= self.base
        return digits

    def contains(self, channel: int) -> BoolArray:
        inside = np.zeros(self.n_transient, dtype=bool)
        inside[1:] = (self._digits == channel + 1).any(axis=1)
        return inside

    def set_value_rhs(self, value_out: FloatArray) -> None:
        out = np.asarray(self.counts.sum(axis=1)).ravel()[: self.n_transient]
        self.value_rhs = np.divide(value_out, out, out=np.zeros_like(value_out), where=out > 0)

    def solve(self, keep: BoolArray, solver: str) -> FloatArray:
        """P(conversion) and expected value from ``(start)`` on the chain restricted to keep."""
        idx = np.flatnonzero(keep)
        q = sp.csr_matrix(self.q[idx][:, idx])
        rhs = np.column_stack([self.to_conversion[idx], self.value_rhs[idx]])
        if solver == "iterative" or (solver == "auto" and len(idx) > DIRECT_LIMIT):
            x = _absorb_iteratively(q, rhs)
            if x is not None:
                return x[0]
        a = sp.csc_matrix(sp.identity(len(idx), format="csc") - q)
        return np.asarray(spsolve(a, rhs)).reshape(len(idx), 2)[0]

    def transition_matrix(self) -> sp.csr_matrix:
        n = self.counts.shape[0]
        absorbing = sp.csr_matrix(
            (np.ones(2), (np.array([n - 2, n - 1]), np.array([n - 2, n - 1]))), shape=(n, n)
        )
        return sp.csr_matrix(self.probabilities + absorbing)

    def labels(self, channels: tuple[str, ...]) -> list[str]:
        names = ("", *channels)
        out = [START]
        for row in self._digits:
            seq = [names[d] for d in row[::-1] if d > 0]  # digit 0 is the newest channel
            out.append(SEPARATOR.join(seq))
        return [*out, CONVERSION, NULL]


def _build_chain(paths: PathSet, order: int, include_nulls: bool, states: str) -> _Chain:
    conv = paths.conversions
    nulls = paths.nulls if include_nulls else np.zeros_like(paths.nulls)
    journeys = conv + nulls
    lengths = paths.lengths
    tokens = paths.tokens
    base = len(paths.channels) + 1

    # State code of each touch: the last `order` channels (+1; 0 = before the start), the
    # newest in the lowest digit. Memory matters at millions of touches: order 1 needs no
    # positions, and weights are taken per path with np.repeat rather than gathered.
    codes = tokens + 1
    if order > 1 or states == "window":
        pos = paths.position
        for j in range(1, order):
            back = np.flatnonzero(pos >= j)
            codes[back] += (tokens[back - j] + 1) * base**j
    per_touch_journeys = np.repeat(journeys, lengths)
    keep = np.repeat(journeys > 0, lengths)
    if states == "window":
        # Only windows of exactly `order` channels; a shorter path is one state (its last touch).
        keep &= pos >= np.minimum(order - 1, np.repeat(lengths, lengths) - 1)
    if keep.all():
        first_of_path = np.zeros(len(codes), dtype=bool)
        first_of_path[paths.offsets[:-1]] = True
        last_idx = paths.offsets[1:] - 1
        last_owner = np.arange(paths.n_paths, dtype=np.int64)
    else:
        owner_k = paths.path_index[keep]
        codes, per_touch_journeys = codes[keep], per_touch_journeys[keep]
        first_of_path = np.ones(len(codes), dtype=bool)
        first_of_path[1:] = owner_k[1:] != owner_k[:-1]
        last_idx = np.flatnonzero(np.append(first_of_path[1:], True))
        last_owner = owner_k[last_idx]
        del owner_k
    del keep

    state_codes, state = _dense_ids(codes, base**order)
    n_states = len(state_codes) + 3
    conv_state, null_state = n_states - 2, n_states - 1

    # Within a path, kept touches are consecutive and in order: each one's predecessor is the
    # previous kept touch of the same path, or (start) for its first.
    prev_state = np.empty_like(state)
    prev_state[:1] = 0
    prev_state[1:] = state[:-1]
    prev_state[first_of_path] = 0
    last_state = state[last_idx]
    moves = (prev_state, state, per_touch_journeys)
    exits = (
        (last_state, np.full(len(last_state), conv_state), conv[last_owner]),
        (last_state, np.full(len(last_state), null_state), nulls[last_owner]),
    )
    if n_states * n_states <= 1 << 24:
        flat = np.zeros(n_states * n_states)
        for rows, cols, w in (moves, *exits):
            flat += np.bincount(rows * n_states + cols, weights=w, minlength=n_states**2)
        counts = sp.csr_matrix(flat.reshape(n_states, n_states))
    else:
        rows, cols, w = (np.concatenate(parts) for parts in zip(moves, *exits, strict=True))
        counts = sp.csr_matrix(sp.coo_matrix((w, (rows, cols)), shape=(n_states, n_states)))
    counts.eliminate_zeros()
    chain = _Chain(counts, state_codes, base, order)
    value_out = np.bincount(last_state, weights=paths.value[last_owner], minlength=n_states).astype(
        float
    )
    chain.set_value_rhs(value_out[: chain.n_transient])
    return chain


def _dense_ids(codes: IntArray, n_codes: int) -> tuple[IntArray, IntArray]:
    """Sorted distinct codes and each code's 1-based rank (0 is kept for ``(start)``)."""
    if n_codes <= 1 << 22:  # a lookup table beats sorting millions of touches
        seen = np.zeros(n_codes, dtype=bool)
        seen[codes] = True
        distinct = np.flatnonzero(seen).astype(np.int64)
        rank = np.zeros(n_codes, dtype=np.int64)
        rank[distinct] = np.arange(1, len(distinct) + 1)
        return distinct, rank[codes]
    distinct, inverse = np.unique(codes, return_inverse=True)
    return distinct.astype(np.int64), inverse.astype(np.int64) + 1
