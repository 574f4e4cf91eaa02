"""Markov removal effects, pinned to absorbing-chain computations by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mixwise.attribution.checks import random_world
from mixwise.attribution.data import SEPARATOR, PathSet
from mixwise.attribution.models import MarkovModel


def textbook() -> PathSet:
    return PathSet.from_paths(
        ["C1 > C2 > C3", "C1", "C2 > C3", "D"],
        conversions=[1, 0, 0, 0],
        nulls=[0, 1, 1, 1],
        value=[10, 0, 0, 0],
    )


def test_order1_textbook_by_hand() -> None:
    # start -> C1 2/4, C2 1/4, D 1/4;  C1 -> C2 1/2, null 1/2;  C2 -> C3 1;
    # C3 -> conv 1/2, null 1/2;  D -> null 1.
    # P(conv) = 1/2·1/2·1·1/2 + 1/4·1·1/2 = 1/4.
    # Without C1: 1/8 -> RE 1/2.  Without C2 or C3: 0 -> RE 1.  Without D: 1/4 -> RE 0.
    m = MarkovModel().fit(textbook())
    assert m.conversion_probability_ == pytest.approx(1 / 4)
    assert m.removal_effects_.to_dict() == pytest.approx({"C1": 0.5, "C2": 1, "C3": 1, "D": 0})
    # credits = 1 conversion × RE / ΣRE (2.5); D appears only on a null path: 0.
    assert m.credits_["conversions"].to_dict() == pytest.approx(
        {"C1": 0.2, "C2": 0.4, "C3": 0.4, "D": 0}
    )
    assert m.credits_["value"].to_dict() == pytest.approx({"C1": 2, "C2": 4, "C3": 4, "D": 0})
    assert m.states_ == ["(start)", "C1", "C2", "C3", "D", "(conversion)", "(null)"]
    p = m.transition_matrix_.toarray()
    assert np.allclose(p.sum(axis=1), 1)
    assert p[0, 1:5].tolist() == pytest.approx([0.5, 0.25, 0, 0.25])
    t = m.transitions()
    row = t[(t["from"] == "C3") & (t["to"] == "(conversion)")]
    assert row["probability"].item() == pytest.approx(0.5)


def order2_paths() -> PathSet:
    return PathSet.from_paths(
        ["a > b > c", "b > c", "a > b"], conversions=[2, 0, 0], nulls=[0, 2, 1]
    )


def test_order2_by_hand() -> None:
    # Padded states. Counts: start->(a) 3, start->(b) 2, (a)->(a,b) 3, (a,b)->(b,c) 2,
    # (a,b)->null 1, (b)->(b,c) 2, (b,c)->conv 2, (b,c)->null 2.
    # x(b,c) = 1/2, x(a,b) = 2/3·1/2 = 1/3, x(a) = 1/3, x(b) = 1/2;
    # P = 3/5·1/3 + 2/5·1/2 = 2/5.
    # Without a (drops (a), (a,b)): 2/5·1/2 = 1/5 -> RE 1/2. Without b or c: 0 -> RE 1.
    # Credits: 2 × (1/2, 1, 1) / 2.5 = (0.4, 0.8, 0.8).
    m = MarkovModel(order=2).fit(order2_paths())
    assert m.conversion_probability_ == pytest.approx(2 / 5)
    assert m.removal_effects_.tolist() == pytest.approx([0.5, 1, 1])
    assert m.credits_["conversions"].tolist() == pytest.approx([0.4, 0.8, 0.8])
    assert m.states_[:6] == ["(start)", "a", "b", "a > b", "b > c", "(conversion)"]


def test_order1_on_the_order2_example_differs() -> None:
    # start -> a 3/5, b 2/5; a -> b 1; b -> c 4/5, null 1/5; c -> conv 1/2.
    # x_c = 1/2, x_b = 2/5, x_a = 2/5, P = 2/5. Without a: 2/5·2/5 -> RE 3/5. b, c: RE 1.
    m = MarkovModel(order=1).fit(order2_paths())
    assert m.removal_effects_.tolist() == pytest.approx([0.6, 1, 1])
    assert m.credits_["conversions"].tolist() == pytest.approx([2 * 0.6 / 2.6, 2 / 2.6, 2 / 2.6])


def test_window_states_follow_channelattribution() -> None:
    # Windows of exactly 2 channels: (start) -> (a,b) -> (b,c); P and RE as in the padded chain
    # here, but the states differ.
    m = MarkovModel(order=2, states="window").fit(order2_paths())
    assert m.states_ == ["(start)", "a > b", "b > c", "(conversion)", "(null)"]
    assert m.removal_effects_.tolist() == pytest.approx([0.5, 1, 1])
    short = PathSet.from_paths(["a", "a > b > c"], conversions=[1, 1])
    assert "a" in MarkovModel(order=3, states="window").fit(short).states_


def test_loops_are_walked() -> None:
    # "a > b > a" converts, "b" does not. start -> a 1/2, b 1/2; a -> b 1/2, conv 1/2;
    # b -> a 1/2, null 1/2.  x_a = 1/2 x_b + 1/2, x_b = 1/2 x_a -> x_a = 2/3, x_b = 1/3;
    # P = 1/2. Without a: 0 -> RE 1. Without b: 1/2·1/2 -> RE 1/2.
    paths = PathSet.from_paths(["a > b > a", "b"], conversions=[1, 0], nulls=[0, 1])
    m = MarkovModel().fit(paths)
    assert m.conversion_probability_ == pytest.approx(0.5)
    assert m.removal_effects_.tolist() == pytest.approx([1, 0.5])


def collapse_repeats(paths: PathSet) -> PathSet:
    strings = []
    for i in range(paths.n_paths):
        p = paths.path(i)
        strings.append(SEPARATOR.join(c for j, c in enumerate(p) if j == 0 or p[j - 1] != c))
    return PathSet.from_paths(
        strings, paths.conversions, paths.nulls, paths.value, channels=paths.channels
    )


def test_order1_invariant_to_self_loops() -> None:
    world = random_world(seed=3, n_channels=4, n_paths=60).paths
    collapsed = collapse_repeats(world)
    assert collapsed.n_paths < world.n_paths or len(collapsed.tokens) < len(world.tokens)
    a = MarkovModel().fit(world)
    b = MarkovModel().fit(collapsed)
    assert np.allclose(a.removal_effects_, b.removal_effects_)
    assert np.allclose(a.credits_, b.credits_)
    assert a.conversion_probability_ == pytest.approx(b.conversion_probability_)


def test_value_uses_value_weighted_removal() -> None:
    # "a" converts once worth 10, "b" once worth 30. Conversion RE 1/2 each -> 1 and 1.
    # Expected value per journey V = 1/2·10 + 1/2·30 = 20; without a: 15 (VRE 1/4),
    # without b: 5 (VRE 3/4) -> value credits 10 and 30.
    paths = PathSet.from_paths(["a", "b"], conversions=[1, 1], value=[10, 30])
    m = MarkovModel().fit(paths)
    assert m.credits_["conversions"].tolist() == pytest.approx([1, 1])
    assert m.value_per_journey_ == pytest.approx(20)
    assert m.value_removal_effects_.tolist() == pytest.approx([0.25, 0.75])
    assert m.credits_["value"].tolist() == pytest.approx([10, 30])


def test_constant_value_per_conversion_scales_conversion_credits() -> None:
    world = random_world(seed=5).paths
    paths = PathSet(
        world.channels, world.offsets, world.tokens, world.conversions, world.nulls,
        world.conversions * 7.5,
    )  # fmt: skip
    m = MarkovModel(order=2).fit(paths)
    assert np.allclose(m.credits_["value"], m.credits_["conversions"] * 7.5)


def test_without_nulls_removal_effect_is_visit_probability() -> None:
    # a > b and b > a, one conversion each. Order 1: start -> a, b 1/2; a -> b 1/2, conv 1/2;
    # b -> a 1/2, conv 1/2. P(walk visits a) = 1/2 + 1/2·1/2 = 3/4, not the data's share (1).
    paths = PathSet.from_paths(["a > b", "b > a"], conversions=[1, 1], nulls=[5, 0])
    m = MarkovModel(include_nulls=False).fit(paths)
    assert m.conversion_probability_ == pytest.approx(1)
    assert m.removal_effects_.tolist() == pytest.approx([0.75, 0.75])
    # With full-history states the chain is the data's prefix tree: RE = share of conversions
    # on paths containing the channel (1 and 1).
    full = MarkovModel(order=2, include_nulls=False).fit(paths)
    assert full.removal_effects_.tolist() == pytest.approx([1, 1])


def test_full_history_removal_effect_is_share_of_conversions_containing() -> None:
    world = random_world(seed=11, n_channels=5, n_paths=80).paths
    short = [i for i in range(world.n_paths) if world.lengths[i] <= 4]
    paths = PathSet.from_paths(
        [world.path(i) for i in short],
        world.conversions[short],
        world.nulls[short],
        world.value[short],
        channels=world.channels,
    )
    m = MarkovModel(order=4).fit(paths)
    total = paths.conversions.sum()
    for c, name in enumerate(paths.channels):
        has = np.array([c in set(paths.tokens[paths.offsets[i] : paths.offsets[i + 1]])
                        for i in range(paths.n_paths)])  # fmt: skip
        assert m.removal_effects_[name] == pytest.approx(paths.conversions[has].sum() / total)
    assert m.conversion_probability_ == pytest.approx(
        total / (paths.conversions.sum() + paths.nulls.sum())
    )


def test_channel_only_on_null_paths_can_reach_conversion_through_shared_states() -> None:
    # Documented: null path "c > a" with "a" converting lets c reach conversion at order 1.
    paths = PathSet.from_paths(["a", "c > a", "b > c"], conversions=[1, 0, 0], nulls=[1, 1, 1])
    m = MarkovModel().fit(paths)
    assert m.removal_effects_["c"] > 0
    assert MarkovModel(order=2).fit(paths).removal_effects_["c"] == pytest.approx(0)


def test_no_conversions_gives_zero_credit() -> None:
    paths = PathSet.from_paths(["a > b", "b"], conversions=[0, 0], nulls=[3, 1])
    m = MarkovModel().fit(paths)
    assert m.conversion_probability_ == 0
    assert m.credits_.to_numpy().tolist() == [[0, 0], [0, 0]]


@pytest.mark.parametrize("bad", [0, 5, 1.5, "2"])
def test_order_is_validated(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        MarkovModel(order=bad).fit(textbook())  # type: ignore[arg-type]


def test_higher_orders_run_and_are_consistent() -> None:
    world = random_world(seed=2, n_channels=6, n_paths=200).paths
    for order in (1, 2, 3, 4):
        m = MarkovModel(order=order).fit(world)
        assert m.credits_["conversions"].sum() == pytest.approx(world.conversions.sum())
        assert (m.removal_effects_ >= 0).all() and (m.removal_effects_ <= 1).all()
        # P(conversion) of the chain equals the observed conversion rate at every order:
        # the flow out of (start) is the journeys, the flow into (conversion) the conversions.
        rate = world.conversions.sum() / (world.conversions.sum() + world.nulls.sum())
        assert m.conversion_probability_ == pytest.approx(rate)


@pytest.mark.parametrize("order", [1, 3])
def test_iterative_solver_agrees_with_lu(order: int) -> None:
    world = random_world(seed=6, n_channels=5, n_paths=300).paths
    direct = MarkovModel(order=order, solver="direct").fit(world)
    iterative = MarkovModel(order=order, solver="iterative").fit(world)
    assert np.allclose(direct.removal_effects_, iterative.removal_effects_, atol=1e-12)
    assert np.allclose(direct.credits_, iterative.credits_, rtol=1e-10)
