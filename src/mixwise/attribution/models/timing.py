"""Rules that need the timing of touches: time decay and W-shaped.

Unique paths cannot carry when each touch happened, so these two models read
:class:`~mixwise.attribution.data.ConvertingTouches` — every touch of every converting journey,
with its age in days at the conversion and its milestone role. Each conversion distributes one
conversion and its own value over its touches; ``credits_`` sums to
``touches.n_conversions`` and ``touches.value.sum()``. Non-converting journeys carry no credit
under any rule, so they are not needed. (``paths`` is still passed: it fixes the channel list and
order of ``credits_``.)

Time decay
----------
A touch ``a`` days before its conversion has raw weight ``2 ** (-a / half_life_days)`` (default
half-life 7 days: a touch a week before the conversion counts half as much as one on the day).
Weights are scaled to sum to 1 per conversion. Touches with the same age (ties in time) get the
same weight.

W-shaped
--------
Three milestone touches get ``first``, ``lead`` and ``opportunity`` (30 % each by default); the
remaining ``others`` (10 %) is shared equally by the touches that are not milestones.

- With ``touches.has_lead_milestones``: the milestones are the first touch (position 0), the
  first touch flagged ``LEAD_CREATION`` and the first touch flagged ``OPPORTUNITY_CREATION``.
- Without (the documented fallback): the first touch, the middle touch at position
  ``⌊(n−1)/2⌋`` and the last touch.

Edge cases, all handled by one rule — *add the shares of coinciding milestones, then rescale the
conversion's weights to sum to 1*:

- milestones on the same touch merge: that touch gets the sum of their shares;
- a missing milestone (no touch flagged) gives nothing, and the others are rescaled;
- a conversion with no non-milestone touch has no one to give ``others`` to; it is rescaled away.

So, in the fallback with the defaults: n = 1 → [1]; n = 2 → [2/3, 1/3] (first and middle
coincide on touch 0); n = 3 → [1/3, 1/3, 1/3]; n = 4 → [.3, .3, .1, .3];
n = 5 → [.3, .05, .3, .05, .3].
"""

from __future__ import annotations

import numpy as np

from mixwise.attribution.data import (
    LEAD_CREATION,
    OPPORTUNITY_CREATION,
    ConvertingTouches,
    PathSet,
)
from mixwise.attribution.models.base import (
    AttributionModel,
    FloatArray,
    IntArray,
    check_fraction,
    length_rule_credits,
    normalise_per_owner,
    register_model,
    require_touches,
    token_credits,
    touch_tokens,
)


class _TouchWeightModel(AttributionModel):
    needs_timing = True

    def _weights(self, touches: ConvertingTouches, owner: IntArray) -> FloatArray:
        raise NotImplementedError

    def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> _TouchWeightModel:
        t = require_touches(self, touches)
        tokens = touch_tokens(paths, t)
        lengths = np.diff(t.offsets)
        owner = np.repeat(np.arange(t.n_conversions, dtype=np.int64), lengths)
        weights = self._weights(t, owner)
        conv, val = token_credits(
            len(paths.channels), tokens, weights, owner, np.ones(t.n_conversions), t.value
        )
        self.total_conversions_ = float(t.n_conversions)
        self.total_value_ = float(np.sum(t.value))
        self._set_credits(paths.channels, conv, val)
        return self


@register_model
class TimeDecayModel(_TouchWeightModel):
    """Weight ``2 ** (-age_days / half_life_days)``, scaled to 1 per conversion."""

    name = "time_decay"

    def __init__(self, half_life_days: float = 7.0) -> None:
        self.half_life_days = half_life_days

    def _weights(self, touches: ConvertingTouches, owner: IntArray) -> FloatArray:
        half_life = check_fraction("half_life_days", self.half_life_days, positive=True)
        # Subtracting each conversion's youngest age keeps the largest raw weight at 1, so very
        # old journeys do not underflow to 0 (the scale cancels in the normalisation).
        age = touches.age_days.astype(float)
        # Touches are in time order within a conversion: the last one is the youngest.
        youngest = age[touches.offsets[1:] - 1]
        raw = np.exp2(-(age - youngest[owner]) / half_life)
        return normalise_per_owner(raw, owner, touches.n_conversions)


@register_model
class WShapedModel(_TouchWeightModel):
    """First touch, lead creation and opportunity creation as milestones (30 % each)."""

    name = "w_shaped"

    def __init__(
        self,
        first: float = 0.3,
        lead: float = 0.3,
        opportunity: float = 0.3,
        others: float = 0.1,
    ) -> None:
        self.first = first
        self.lead = lead
        self.opportunity = opportunity
        self.others = others

    def _milestones(self, touches: ConvertingTouches, owner: IntArray) -> list[IntArray]:
        """Global touch index of each milestone per conversion (-1 where missing)."""
        starts = touches.offsets[:-1]
        n = touches.n_conversions
        if not touches.has_lead_milestones:
            lengths = np.diff(touches.offsets)
            return [starts, starts + (lengths - 1) // 2, touches.offsets[1:] - 1]
        idx = np.arange(len(touches.tokens), dtype=np.int64)
        found = []
        for role in (LEAD_CREATION, OPPORTUNITY_CREATION):
            first_flagged = np.full(n, np.iinfo(np.int64).max)
            flagged = touches.milestone == role
            np.minimum.at(first_flagged, owner[flagged], idx[flagged])
            found.append(np.where(first_flagged == np.iinfo(np.int64).max, -1, first_flagged))
        return [starts, found[0], found[1]]

    def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> WShapedModel:
        t = require_touches(self, touches)
        if t.has_lead_milestones:
            super().fit(paths, t)
            return self
        # The fallback's weights depend on the number of touches only.
        first, lead, opportunity, others = self._shares()

        def rule(n: int) -> FloatArray:
            raw = np.zeros(n)
            milestones = (0, (n - 1) // 2, n - 1)
            for where, share in zip(milestones, (first, lead, opportunity), strict=True):
                raw[where] += share  # coinciding milestones merge their shares
            rest = np.ones(n, dtype=bool)
            rest[list(milestones)] = False
            if rest.any():
                raw[rest] = others / rest.sum()
            return raw / raw.sum() if raw.sum() > 0 else np.full(n, 1.0 / n)

        conv, val = length_rule_credits(
            len(paths.channels),
            touch_tokens(paths, t),
            t.offsets,
            rule,
            np.ones(t.n_conversions),
            t.value,
        )
        self.total_conversions_ = float(t.n_conversions)
        self.total_value_ = float(np.sum(t.value))
        self._set_credits(paths.channels, conv, val)
        return self

    def _shares(self) -> tuple[float, float, float, float]:
        return (
            check_fraction("first", self.first),
            check_fraction("lead", self.lead),
            check_fraction("opportunity", self.opportunity),
            check_fraction("others", self.others),
        )

    def _weights(self, touches: ConvertingTouches, owner: IntArray) -> FloatArray:
        first, lead, opportunity, others = self._shares()
        shares = [first, lead, opportunity]
        raw = np.zeros(len(touches.tokens))
        is_milestone = np.zeros(len(touches.tokens), dtype=bool)
        for where, share in zip(self._milestones(touches, owner), shares, strict=True):
            present = where[where >= 0]
            np.add.at(raw, present, share)  # add.at: coinciding milestones merge their shares
            is_milestone[present] = True
        n_other = np.bincount(owner[~is_milestone], minlength=touches.n_conversions)
        raw[~is_milestone] = others / n_other[owner[~is_milestone]]
        return normalise_per_owner(raw, owner, touches.n_conversions)
