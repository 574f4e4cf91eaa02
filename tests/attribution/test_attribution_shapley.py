"""Shapley models: exact vs brute force, Zhao et al.'s variants, and the sampling bound."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mixwise.attribution.checks import random_world
from mixwise.attribution.data import PathSet
from mixwise.attribution.models import (
    OrderedShapleyModel,
    ShapleyModel,
    SimplifiedShapleyModel,
)
from mixwise.attribution.models.shapley import moebius, shapley_values, subset_sum


def brute_force(paths: PathSet, value_function: str) -> np.ndarray:
    """Average marginal contribution over all n! orders, v evaluated from the paths directly."""
    sets = [frozenset(paths.path(i)) for i in range(paths.n_paths)]
    players = sorted({c for s in sets for c in s})

    def v(coalition: frozenset[str]) -> float:
        inside = [i for i, s in enumerate(sets) if s <= coalition]
        conv = sum(paths.conversions[i] for i in inside)
        if value_function == "conversions":
            return float(conv)
        journeys = sum(paths.conversions[i] + paths.nulls[i] for i in inside)
        return float(conv / journeys) if journeys else 0.0

    phi = dict.fromkeys(players, 0.0)
    orders = list(itertools.permutations(players))
    for order in orders:
        seen: frozenset[str] = frozenset()
        for p in order:
            phi[p] += v(seen | {p}) - v(seen)
            seen = seen | {p}
    return np.array([phi.get(c, 0.0) / len(orders) for c in paths.channels])


@pytest.mark.parametrize("value_function", ["conversions", "conversion_rate"])
@pytest.mark.parametrize("n_channels", [4, 5])
def test_exact_matches_brute_force_permutations(value_function: str, n_channels: int) -> None:
    paths = random_world(seed=n_channels, n_channels=n_channels, n_paths=30).paths
    m = ShapleyModel(value_function=value_function).fit(paths)
    assert m.method_ == "exact"
    want = brute_force(paths, value_function)
    assert np.allclose(m.shapley_values_.to_numpy(), want, atol=1e-12)
    assert m.credits_["conversions"].to_numpy() == pytest.approx(
        want / want.sum() * paths.conversions.sum()
    )


def test_two_channel_game_by_hand() -> None:
    # Coalitions: {a}: 1 conv / 4 journeys, {b}: 1 / 2, {a,b}: 2 / 2.
    paths = PathSet.from_paths(["a", "b", "a > b"], conversions=[1, 1, 2], nulls=[3, 1, 0])
    # Conversions game: v(a)=1, v(b)=1, v(ab)=4 -> φ_a = φ_b = (1 + 3)/2 = 2.
    conv = ShapleyModel().fit(paths)
    assert conv.shapley_values_.tolist() == pytest.approx([2, 2])
    # Rate game (⊆): v(a)=1/4, v(b)=1/2, v(ab)=4/8 -> φ_a = (1/4 + 0)/2 = 1/8,
    # φ_b = (1/2 + 1/4)/2 = 3/8; credits 4 × (1/4, 3/4).
    rate = ShapleyModel(value_function="conversion_rate").fit(paths)
    assert rate.shapley_values_.tolist() == pytest.approx([1 / 8, 3 / 8])
    assert rate.credits_["conversions"].tolist() == pytest.approx([1, 3])


def test_rate_game_can_give_negative_credit() -> None:
    # b's journeys never convert and pull the rate down when b joins.
    paths = PathSet.from_paths(["a", "a > b", "b"], conversions=[5, 0, 0], nulls=[5, 5, 5])
    m = ShapleyModel(value_function="conversion_rate").fit(paths)
    assert m.credits_.at["b", "conversions"] < 0
    assert not m.nonnegative_credits
    assert m.credits_["conversions"].sum() == pytest.approx(5)


def test_simplified_equals_classic_with_subset_sum_game() -> None:
    # Zhao et al.: φ_i = Σ_{T∋i} conv(T)/|T| equals the Shapley value of v(S) = Σ_{T⊆S} conv(T).
    paths = random_world(seed=8, n_channels=7, n_paths=80).paths
    classic = ShapleyModel().fit(paths)
    simple = SimplifiedShapleyModel().fit(paths)
    assert classic.method_ == "exact"
    assert np.allclose(classic.credits_, simple.credits_)
    assert np.allclose(classic.shapley_values_, simple.credits_["conversions"])


def test_transforms_are_inverse_and_shapley_is_efficient() -> None:
    rng = np.random.default_rng(0)
    f = rng.random(1 << 6)
    assert np.allclose(moebius(subset_sum(f)), f)
    v = subset_sum(f)
    v[0] = 0.0
    assert shapley_values(v).sum() == pytest.approx(v[-1])
    # Shapley via dividends: φ_i = Σ_{T∋i} m(T)/|T|
    m = moebius(v)
    masks = np.arange(1 << 6)
    size = np.array([bin(x).count("1") for x in masks])
    via_dividends = [
        sum(m[t] / size[t] for t in masks if t >> i & 1) for i in range(6)
    ]  # fmt: skip
    assert np.allclose(shapley_values(v), via_dividends)


def test_ordered_shapley_by_hand() -> None:
    paths = PathSet.from_paths(
        [
            "a > b > a > c",  # 3 conv; distinct order a(1) b(2) c(3): 1 each
            "b > a",  # 2 conv; b(1) a(2): 1 each
            "c",  # 1 conv; c(1): 1
            "a > d",  # nulls only: nothing
        ],
        conversions=[3, 2, 1, 0],
        nulls=[0, 0, 0, 5],
        value=[30, 8, 5, 0],
    )
    m = OrderedShapleyModel().fit(paths)
    table = m.position_credits_
    assert list(table.columns) == [1, 2, 3]
    assert table.loc["a"].tolist() == pytest.approx([1, 1, 0])
    assert table.loc["b"].tolist() == pytest.approx([1, 1, 0])
    assert table.loc["c"].tolist() == pytest.approx([1, 0, 1])
    assert table.loc["d"].tolist() == pytest.approx([0, 0, 0])
    assert m.position_value_credits_.loc["a"].tolist() == pytest.approx([10, 4, 0])
    assert np.allclose(m.credits_, SimplifiedShapleyModel().fit(paths).credits_)


def test_exact_refuses_too_many_channels_for_rate_game() -> None:
    paths = random_world(seed=1, n_channels=17, n_paths=120).paths
    with pytest.raises(ValueError, match="max_exact_channels=16"):
        ShapleyModel(value_function="conversion_rate", method="exact").fit(paths)
    # The conversions game has an exact closed form at any size.
    m = ShapleyModel(method="exact").fit(paths)
    assert m.method_ == "closed_form"
    assert np.allclose(m.credits_, SimplifiedShapleyModel().fit(paths).credits_)


def test_sampling_within_its_bound_on_20_channels() -> None:
    world = random_world(seed=20, n_channels=20, n_paths=150).paths
    exact = ShapleyModel(value_function="conversion_rate", max_exact_channels=20).fit(world)
    assert exact.method_ == "exact" and exact.n_players_ == 20
    approx = ShapleyModel(value_function="conversion_rate", tolerance=0.01, seed=3).fit(world)
    assert approx.method_ == "sampling" and approx.converged_
    assert approx.n_permutations_ >= 512
    total = world.conversions.sum()
    exact_share = exact.credits_["conversions"] / total
    approx_share = approx.credits_["conversions"] / total
    assert approx_share.sum() == pytest.approx(1)
    assert (approx.error_bound_ <= 0.01).all()
    assert ((approx_share - exact_share).abs() <= approx.error_bound_).all()
    again = ShapleyModel(value_function="conversion_rate", tolerance=0.01, seed=3).fit(world)
    assert np.array_equal(again.credits_, approx.credits_)


def test_sampling_reports_non_convergence() -> None:
    world = random_world(seed=4, n_channels=6, n_paths=50).paths
    m = ShapleyModel(
        value_function="conversion_rate", method="sampling", tolerance=1e-6, max_permutations=300
    ).fit(world)
    assert not m.converged_ and m.n_permutations_ == 300
    assert math.isfinite(m.error_bound_.max()) and m.error_bound_.max() > 1e-6
