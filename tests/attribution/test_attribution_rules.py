"""Rule-based models pinned to hand-computed credits."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from mixwise.attribution.data import (
    LEAD_CREATION,
    NO_MILESTONE,
    OPPORTUNITY_CREATION,
    ConvertingTouches,
    PathSet,
)
from mixwise.attribution.models import (
    CustomPositionModel,
    FirstTouchModel,
    LastNonDirectModel,
    LastTouchModel,
    LinearModel,
    PositionBasedModel,
    TimeDecayModel,
    WShapedModel,
)

CHANNELS = ("a", "b", "c", "direct", "e")


@pytest.fixture
def paths() -> PathSet:
    # conversions / value per path; "e" appears only on a non-converting path.
    return PathSet.from_paths(
        [
            "a > b > c",  # 2 conv, 20
            "direct > a",  # 1, 5
            "b",  # 1, 10   single touch
            "a > b > a",  # 1, 6    loop
            "direct",  # 1, 4    only direct-like touches
            "a > direct",  # 1, 8
            "c > e",  # 0 conv, 3 nulls
        ],
        conversions=[2, 1, 1, 1, 1, 1, 0],
        nulls=[0, 0, 0, 0, 0, 0, 3],
        value=[20, 5, 10, 6, 4, 8, 0],
        channels=CHANNELS,
    )


def credits(model, paths: PathSet) -> dict[str, tuple[float, float]]:
    frame = model.fit(paths).credits_
    return {c: (frame.at[c, "conversions"], frame.at[c, "value"]) for c in frame.index}


def assert_credits(got: dict, want: dict) -> None:
    assert list(got) == list(CHANNELS)
    for c in CHANNELS:
        assert got[c] == pytest.approx(tuple(float(x) for x in want.get(c, (0, 0))), abs=1e-12)


def test_first_touch(paths: PathSet) -> None:
    # a: paths 1 (2, 20), 4 (1, 6), 6 (1, 8); b: path 3; direct: paths 2 and 5.
    assert_credits(
        credits(FirstTouchModel(), paths), {"a": (4, 34), "b": (1, 10), "direct": (2, 9)}
    )


def test_last_touch(paths: PathSet) -> None:
    # c: path 1; a: paths 2, 4; b: path 3; direct: paths 5, 6.
    assert_credits(
        credits(LastTouchModel(), paths),
        {"a": (2, 11), "b": (1, 10), "c": (2, 20), "direct": (2, 12)},
    )


def test_last_non_direct_skips_direct_but_keeps_all_direct_paths(paths: PathSet) -> None:
    # "a > direct" goes to a; "direct" alone keeps its (direct) last touch.
    assert_credits(
        credits(LastNonDirectModel(), paths),
        {"a": (3, 19), "b": (1, 10), "c": (2, 20), "direct": (1, 4)},
    )
    # A different direct-like set: "a" counts as direct, so "direct > a" goes to "direct",
    # "a > b > a" to b and "a > direct" to direct.
    assert_credits(
        credits(LastNonDirectModel(direct=["a"]), paths),
        {"b": (2, 16), "c": (2, 20), "direct": (3, 17)},
    )


def test_linear_counts_every_touch(paths: PathSet) -> None:
    # 1: a,b,c 2/3 each (20/3); 2: direct, a 1/2 (2.5); 3: b 1 (10);
    # 4: a 2/3 (4), b 1/3 (2); 5: direct 1 (4); 6: a, direct 1/2 (4 each).
    got = credits(LinearModel(), paths)
    want = {
        "a": (F(2, 3) + F(1, 2) + F(2, 3) + F(1, 2), F(20, 3) + F(5, 2) + 4 + 4),
        "b": (F(2, 3) + 1 + F(1, 3), F(20, 3) + 10 + 2),
        "c": (F(2, 3), F(20, 3)),
        "direct": (F(1, 2) + 1 + F(1, 2), F(5, 2) + 4 + 4),
    }
    assert_credits(got, want)


def test_position_based_u_shape(paths: PathSet) -> None:
    # 1 (n=3): a .4, b .2, c .4 (x2 conv, x20 value); 2 (n=2): 50/50; 3 (n=1): b 1;
    # 4 "a > b > a": a .4+.4, b .2; 5: direct 1; 6 (n=2): 50/50.
    got = credits(PositionBasedModel(), paths)
    want = {
        "a": (0.8 + 0.5 + 0.8 + 0.5, 8 + 2.5 + 4.8 + 4),
        "b": (0.4 + 1 + 0.2, 4 + 10 + 1.2),
        "c": (0.8, 8),
        "direct": (0.5 + 1 + 0.5, 2.5 + 4 + 4),
    }
    assert_credits(got, want)


def test_position_based_equals_custom_with_same_weights(paths: PathSet) -> None:
    a = PositionBasedModel(first=0.3, last=0.5).fit(paths).credits_
    b = CustomPositionModel(from_start=[0.3], from_end=[0.5], middle=0.2).fit(paths).credits_
    assert np.allclose(a.to_numpy(), b.to_numpy())


def test_custom_position_weights() -> None:
    paths = PathSet.from_paths(
        ["p0 > p1 > p2 > p3 > p4", "q0 > q1", "r0"], conversions=[8, 3, 1], channels=None
    )
    model = CustomPositionModel(from_start=[1], from_end=[2, 1], middle=4).fit(paths)
    c = model.credits_["conversions"]
    # n=5: raw [1, 4/2, 4/2, 1, 2] / 8 -> x 8 conversions = [1, 2, 2, 1, 2]
    assert [c["p0"], c["p1"], c["p2"], c["p3"], c["p4"]] == pytest.approx([1, 2, 2, 1, 2])
    # n=2: q0 from_start 1, q1 from_end 2 -> 1/3, 2/3 of 3 conversions
    assert [c["q0"], c["q1"]] == pytest.approx([1, 2])
    # n=1: the only touch is covered by both lists; from_start wins, then rescaled to 1
    assert c["r0"] == pytest.approx(1)


def test_custom_all_zero_weights_split_equally() -> None:
    paths = PathSet.from_paths(["a > b > c"], conversions=[3])
    c = CustomPositionModel(from_start=[0], from_end=[0], middle=0).fit(paths).credits_
    assert c["conversions"].tolist() == pytest.approx([1, 1, 1])


def test_position_rejects_weights_over_one(paths: PathSet) -> None:
    with pytest.raises(ValueError, match="first \\+ last"):
        PositionBasedModel(first=0.7, last=0.4).fit(paths)


def _touches(
    convs: list[list[tuple[str, float, int]]], values: list[float], channels: tuple[str, ...]
) -> ConvertingTouches:
    index = {c: i for i, c in enumerate(channels)}
    lengths = [len(c) for c in convs]
    flat = [t for conv in convs for t in conv]
    return ConvertingTouches(
        channels=channels,
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        tokens=np.array([index[c] for c, _, _ in flat], dtype=np.int64),
        age_days=np.array([a for _, a, _ in flat], dtype=float),
        milestone=np.array([m for _, _, m in flat], dtype=np.int8),
        value=np.array(values, dtype=float),
        has_lead_milestones=any(m in (LEAD_CREATION, OPPORTUNITY_CREATION) for *_, m in flat),
    )


def test_time_decay_by_hand() -> None:
    paths = PathSet.from_paths(["a > b > c", "a > b"], conversions=[1, 1], value=[70, 10])
    n = NO_MILESTONE
    touches = _touches(
        [
            [("a", 14, n), ("b", 7, n), ("c", 0, n)],  # 2^-2, 2^-1, 1 -> 1/7, 2/7, 4/7
            [("a", 3, n), ("b", 3, n)],  # a tie in time: 1/2 each
        ],
        [70, 10],
        paths.channels,
    )
    c = TimeDecayModel(half_life_days=7).fit(paths, touches).credits_
    assert c["conversions"].tolist() == pytest.approx([1 / 7 + 1 / 2, 2 / 7 + 1 / 2, 4 / 7])
    assert c["value"].tolist() == pytest.approx([10 + 5, 20 + 5, 40])
    # A longer half-life flattens: half-life 14 -> 2^-1, 2^-0.5, 1 for the first conversion.
    c14 = TimeDecayModel(half_life_days=14).fit(paths, touches).credits_
    raw = np.array([0.5, 2**-0.5, 1.0])
    assert c14.at["c", "conversions"] == pytest.approx(raw[2] / raw.sum())


def test_time_decay_needs_touches() -> None:
    paths = PathSet.from_paths(["a"], conversions=[1])
    with pytest.raises(ValueError, match="needs touch timing"):
        TimeDecayModel().fit(paths)


def test_time_decay_survives_very_old_journeys() -> None:
    paths = PathSet.from_paths(["a > b"], conversions=[1])
    touches = _touches([[("a", 20_007, 0), ("b", 20_000, 0)]], [0], paths.channels)
    c = TimeDecayModel().fit(paths, touches).credits_["conversions"]
    assert c.tolist() == pytest.approx([1 / 3, 2 / 3])  # 2^-1 : 1, no underflow


def test_w_shaped_fallback_by_hand() -> None:
    # Without lead data: milestones first, middle ⌊(n−1)/2⌋ and last, 30 % each, 10 % shared.
    paths = PathSet.from_paths(["a > b > c"], conversions=[4], channels=("a", "b", "c"))
    n = NO_MILESTONE
    convs = [
        [("a", 0, n), ("b", 0, n), ("c", 0, n), ("b", 0, n), ("a", 0, n)],  # .3 .05 .3 .05 .3
        [("a", 0, n), ("b", 0, n)],  # first = middle = touch 0: .6, .3 -> 2/3, 1/3
        [("c", 0, n)],  # 1
        [("a", 0, n), ("b", 0, n), ("c", 0, n), ("a", 0, n)],  # middle = 1: .3 .3 .1 .3
    ]
    touches = _touches(convs, [10, 20, 30, 40], paths.channels)
    assert not touches.has_lead_milestones
    c = WShapedModel().fit(paths, touches).credits_
    want_conv = {
        "a": 0.6 + F(2, 3) + 0.6,
        "b": 0.1 + F(1, 3) + 0.3,
        "c": 0.3 + 1 + 0.1,
    }
    want_value = {
        "a": 6 + F(40, 3) + 24,
        "b": 1 + F(20, 3) + 12,
        "c": 3 + 30 + 4,
    }
    for ch in "abc":
        assert c.at[ch, "conversions"] == pytest.approx(float(want_conv[ch]))
        assert c.at[ch, "value"] == pytest.approx(float(want_value[ch]))
    assert c["conversions"].sum() == pytest.approx(4)


def test_w_shaped_with_lead_milestones_by_hand() -> None:
    paths = PathSet.from_paths(["a > b > c"], conversions=[3], channels=("a", "b", "c"))
    n, lead, opp = NO_MILESTONE, LEAD_CREATION, OPPORTUNITY_CREATION
    convs = [
        # first a(0) .3, lead c(2) .3, opp b(4) .3, others b(1), a(3) .05 each
        [("a", 9, n), ("b", 8, n), ("c", 7, lead), ("a", 6, n), ("b", 5, opp)],
        # lead on the first touch: b gets .3 + .3, a (opp) .3; no others -> 2/3, 1/3
        [("b", 2, lead), ("a", 1, opp)],
        # no lead flagged: first c .3, opp b .3, other a .1 -> 3/7, 3/7, 1/7
        [("c", 2, n), ("a", 1, n), ("b", 0, opp)],
    ]
    touches = _touches(convs, [1, 1, 1], paths.channels)
    assert touches.has_lead_milestones
    c = WShapedModel().fit(paths, touches).credits_["conversions"]
    assert c["a"] == pytest.approx(0.35 + 1 / 3 + 1 / 7)
    assert c["b"] == pytest.approx(0.35 + 2 / 3 + 3 / 7)
    assert c["c"] == pytest.approx(0.3 + 3 / 7)


def test_touch_channels_are_matched_by_name() -> None:
    paths = PathSet.from_paths(["a > b"], conversions=[1], channels=("a", "b", "z"))
    touches = _touches([[("b", 7, 0), ("a", 0, 0)]], [2], ("b", "a"))
    c = TimeDecayModel().fit(paths, touches).credits_
    assert list(c.index) == ["a", "b", "z"]
    assert c["conversions"].tolist() == pytest.approx([2 / 3, 1 / 3, 0])


def test_length_rules_agree_on_sorted_and_unsorted_paths() -> None:
    """Rules that depend on the path length only take a block per length when the paths
    are sorted by length (the reduction's order) and a table lookup otherwise: both must
    give the per-path brute-force credits."""
    from mixwise.attribution.models.base import length_rule_credits

    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 7, 200)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = rng.integers(0, 4, int(offsets[-1])).astype(np.int64)
    amount = rng.uniform(0, 5, 200)

    def rule(n: int) -> np.ndarray:
        raw = np.arange(1.0, n + 1) ** 2
        return raw / raw.sum()

    want = np.zeros(4)
    for i in range(200):
        np.add.at(want, tokens[offsets[i] : offsets[i + 1]], rule(int(lengths[i])) * amount[i])
    (unsorted,) = length_rule_credits(4, tokens, offsets, rule, amount)
    order = np.argsort(lengths, kind="stable")
    s_tokens = np.concatenate([tokens[offsets[i] : offsets[i + 1]] for i in order])
    s_offsets = np.concatenate([[0], np.cumsum(lengths[order])]).astype(np.int64)
    (sorted_,) = length_rule_credits(4, s_tokens, s_offsets, rule, amount[order])
    assert unsorted == pytest.approx(want)
    assert sorted_ == pytest.approx(want)
    assert sorted_.sum() == pytest.approx(amount.sum())
