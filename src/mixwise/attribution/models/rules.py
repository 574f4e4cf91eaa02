"""Rule-based (heuristic) attribution on unique paths.

Each rule gives every touch of a path a weight, the weights of one path summing to 1; the path's
conversions and its conversion value are then split by those weights and summed per channel::

    credit[c] = Σ_paths Σ_{touches t of the path on channel c} weight(t) × conversions(path)

(the same with ``value``). Only converting journeys carry credit, so a channel seen only on
non-converting paths gets 0. A channel touched twice on a path gets both touches' weights. All
rules are vectorised over the flat token array of :class:`~mixwise.attribution.data.PathSet`.

=====================  ==========================================================================
key                    weight of the touch at position ``p`` (0-based) of a path of ``n`` touches
=====================  ==========================================================================
``first``              1 for ``p = 0``
``last``               1 for ``p = n-1``
``last_non_direct``    1 for the last touch whose channel is not direct-like (``direct``, default
                       ``{"direct"}``); a path made *only* of direct-like touches keeps its last
                       touch (so no conversion is dropped)
``linear``             ``1/n`` (per touch, as ChannelAttribution's ``linear_touch``)
``position``           U-shaped: ``first`` (0.4) to the first touch, ``last`` (0.4) to the last,
                       the rest (0.2) shared equally by the middle touches; see below for short
                       paths
``custom``             user weights per position from the start and from the end, a shared middle
=====================  ==========================================================================

Custom position weights
-----------------------
:class:`CustomPositionModel` takes ``from_start`` (weights of positions 0, 1, …),
``from_end`` (weights of the last, second-to-last, … touch) and ``middle`` (one weight shared
equally by all touches not covered by either list). A touch covered by both lists (short paths)
takes its ``from_start`` weight. The raw weights of a path are then scaled to sum to 1; a path
whose raw weights are all 0 is split equally. The U-shaped model is the special case
``from_start=(first,), from_end=(last,), middle=1-first-last``, which gives:

======  ===============================================
n = 1   100 % to the only touch
n = 2   first/(first+last) and last/(first+last): 50/50 with the defaults (the middle share has
        no touch to go to and is spread by rescaling)
n ≥ 3   first, middle/(n-2) to each middle touch, last (40 / 20 shared / 40)
======  ===============================================

"Time decay" and "W-shaped" need the age and milestones of touches and live in
:mod:`mixwise.attribution.models.timing`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mixwise.attribution.data import ConvertingTouches, PathSet
from mixwise.attribution.models.base import (
    AttributionModel,
    FloatArray,
    check_fraction,
    length_rule_credits,
    register_model,
    token_credits,
    validate_paths,
)


class _PathWeightModel(AttributionModel):
    """A rule that weighs the touches of each path; subclasses give the raw weights."""

    def _weights(self, paths: PathSet) -> FloatArray:
        raise NotImplementedError

    def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> _PathWeightModel:
        validate_paths(paths)
        weights = self._weights(paths)
        conv, val = token_credits(
            len(paths.channels),
            paths.tokens,
            weights,
            paths.path_index,
            paths.conversions,
            paths.value,
        )
        self.total_conversions_ = float(paths.conversions.sum())
        self.total_value_ = float(paths.value.sum())
        self._set_credits(paths.channels, conv, val)
        return self


def _at(paths: PathSet, index: np.ndarray) -> FloatArray:
    w = np.zeros(len(paths.tokens))
    w[index] = 1.0
    return w


@register_model
class FirstTouchModel(_PathWeightModel):
    """All credit to the first touch of each path."""

    name = "first"

    def _weights(self, paths: PathSet) -> FloatArray:
        return _at(paths, paths.offsets[:-1])


@register_model
class LastTouchModel(_PathWeightModel):
    """All credit to the last touch of each path."""

    name = "last"

    def _weights(self, paths: PathSet) -> FloatArray:
        return _at(paths, paths.offsets[1:] - 1)


@register_model
class LastNonDirectModel(_PathWeightModel):
    """All credit to the last touch not on a direct-like channel.

    Parameters
    ----------
    direct:
        Names of the direct-like channels (default ``("direct",)``); names not among the
        path set's channels are ignored. A path with only direct-like touches keeps its last
        touch.
    """

    name = "last_non_direct"

    def __init__(self, direct: Sequence[str] = ("direct",)) -> None:
        self.direct = direct

    def _weights(self, paths: PathSet) -> FloatArray:
        if isinstance(self.direct, str):
            raise TypeError("direct must be a list of channel names, not a single string")
        direct = {str(d) for d in self.direct}
        is_direct = np.array([c in direct for c in paths.channels], dtype=bool)
        n = len(paths.tokens)
        non_direct = ~is_direct[paths.tokens] if n else np.zeros(0, bool)
        candidate = np.where(non_direct, np.arange(n), -1)
        last_nd = (
            np.maximum.reduceat(candidate, paths.offsets[:-1])
            if paths.n_paths
            else np.zeros(0, np.int64)
        )
        chosen = np.where(last_nd >= 0, last_nd, paths.offsets[1:] - 1)
        return _at(paths, chosen)


@register_model
class LinearModel(_PathWeightModel):
    """Equal credit to every touch (``1/n`` each; a channel touched twice gets ``2/n``)."""

    name = "linear"

    def _weights(self, paths: PathSet) -> FloatArray:
        return 1.0 / np.repeat(paths.lengths, paths.lengths).astype(float)


@register_model
class CustomPositionModel(_PathWeightModel):
    """Weights per position from the start and from the end, plus a shared middle.

    Parameters
    ----------
    from_start:
        Raw weights of the first, second, … touch.
    from_end:
        Raw weights of the last, second-to-last, … touch.
    middle:
        Raw weight shared equally by the touches covered by neither list.

    The weights of a path are rescaled to sum to 1 (see the module docstring).
    """

    name = "custom"

    def __init__(
        self,
        from_start: Sequence[float] = (0.4,),
        from_end: Sequence[float] = (0.4,),
        middle: float = 0.2,
    ) -> None:
        self.from_start = from_start
        self.from_end = from_end
        self.middle = middle

    def _position_weights(self) -> tuple[FloatArray, FloatArray, float]:
        start = np.array([check_fraction("from_start weight", w) for w in self.from_start])
        end = np.array([check_fraction("from_end weight", w) for w in self.from_end])
        return start, end, check_fraction("middle", self.middle)

    def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> CustomPositionModel:
        validate_paths(paths)
        rule = self._rule()
        conv, val = length_rule_credits(
            len(paths.channels), paths.tokens, paths.offsets, rule, paths.conversions, paths.value
        )
        self.total_conversions_ = float(paths.conversions.sum())
        self.total_value_ = float(paths.value.sum())
        self._set_credits(paths.channels, conv, val)
        return self

    def _rule(self) -> Callable[[int], FloatArray]:
        """The weights of a path of ``n`` touches (they depend on ``n`` only)."""
        start, end, middle = self._position_weights()

        def weights(n: int) -> FloatArray:
            pos = np.arange(n)
            from_end = n - 1 - pos
            raw = np.zeros(n)
            in_start = pos < len(start)
            in_end = ~in_start & (from_end < len(end))
            raw[in_start] = start[pos[in_start]]
            raw[in_end] = end[from_end[in_end]]
            in_middle = ~in_start & ~in_end
            if in_middle.any():
                raw[in_middle] = middle / in_middle.sum()
            total = raw.sum()
            return raw / total if total > 0 else np.full(n, 1.0 / n)

        return weights


@register_model
class PositionBasedModel(CustomPositionModel):
    """U-shaped: ``first`` and ``last`` to the end touches, the rest shared by the middle.

    Defaults 40/20/40. ``first + last`` must not exceed 1. Length 1: 100 % to the touch;
    length 2: ``first/(first+last)`` and ``last/(first+last)`` (50/50 by default).
    """

    name = "position"

    def __init__(self, first: float = 0.4, last: float = 0.4) -> None:
        self.first = first
        self.last = last

    def _position_weights(self) -> tuple[FloatArray, FloatArray, float]:
        first = check_fraction("first", self.first)
        last = check_fraction("last", self.last)
        if first + last > 1 + 1e-12:
            raise ValueError("position model: first + last must be <= 1")
        return np.array([first]), np.array([last]), max(0.0, 1.0 - first - last)
