"""The conformance battery every attribution model passes, built-in or user-supplied.

>>> from mixwise.attribution.checks import check_attribution_model
>>> from mixwise.attribution.models import LinearModel
>>> check_attribution_model(LinearModel)

:func:`check_attribution_model` takes a model class (built with its defaults) or an unfitted
instance and runs every check in :data:`CHECKS` on small seeded worlds. A failure raises
``AssertionError`` whose message starts with the check's name. The checks:

``fit_returns_self``            ``fit`` returns the model itself
``init_stores_params``          ``__init__`` stores its arguments unchanged and learns nothing
``fitted_attributes``           everything ``fit`` adds ends in ``_``
``credits_layout``              ``credits_`` is indexed by every channel, in order, with
                                ``conversions`` and ``value``, all finite
``nonnegative``                 credits ≥ 0 (for models whose ``nonnegative_credits`` is True)
``sums_to_totals``              credits sum to the conversions and value distributed (1e-9
                                relative) and those equal the input's totals; shares sum to 1
``deterministic``               two fits give identical credits
``path_order_invariant``        shuffling the rows of the PathSet (and the conversions of the
                                touches) changes nothing beyond 1e-9
``single_channel``              in a one-channel world that channel gets everything
``serialisation_round_trip``    ``from_dict(to_dict())`` rebuilds the same parameters and credits
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from mixwise.attribution.data import FIRST_TOUCH, NO_MILESTONE, ConvertingTouches, PathSet
from mixwise.attribution.models.base import AttributionModel, from_dict

RTOL = 1e-9


class World:
    """A small consistent input: unique paths and the touches of their conversions."""

    def __init__(self, paths: PathSet, touches: ConvertingTouches) -> None:
        self.paths = paths
        self.touches = touches


def random_world(seed: int = 0, n_channels: int = 4, n_paths: int = 40) -> World:
    """Seeded random paths (lengths 1-5, repeats and loops) with integer conversions."""
    rng = np.random.default_rng(seed)
    channels = tuple(f"ch{i}" for i in range(n_channels))
    lengths = rng.integers(1, 6, n_paths)
    seqs = [list(rng.integers(0, n_channels, n)) for n in lengths]
    conv = rng.integers(0, 4, n_paths).astype(float)
    nulls = rng.integers(0, 6, n_paths).astype(float)
    value = conv * rng.uniform(5, 50, n_paths).round(2)
    paths = PathSet.from_paths(
        [[channels[t] for t in s] for s in seqs], conv, nulls, value, channels=channels
    )
    return World(paths, touches_for(paths, rng))


def touches_for(paths: PathSet, rng: np.random.Generator) -> ConvertingTouches:
    """One journey per (integer) conversion of each path, with random ages and a lead touch."""
    per_path = np.round(paths.conversions).astype(np.int64)
    tokens: list[int] = []
    ages: list[float] = []
    roles: list[int] = []
    lengths: list[int] = []
    values: list[float] = []
    for i in np.flatnonzero(per_path > 0):
        seq = paths.tokens[paths.offsets[i] : paths.offsets[i + 1]]
        for _ in range(per_path[i]):
            age = np.sort(rng.integers(0, 30, len(seq)).astype(float))[::-1]
            role = np.full(len(seq), NO_MILESTONE)
            role[0] = FIRST_TOUCH
            tokens.extend(int(t) for t in seq)
            ages.extend(age.tolist())
            roles.extend(role.tolist())
            lengths.append(len(seq))
            values.append(float(paths.value[i] / per_path[i]))
    return ConvertingTouches(
        channels=paths.channels,
        offsets=np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
        tokens=np.asarray(tokens, dtype=np.int64),
        age_days=np.asarray(ages, dtype=float),
        milestone=np.asarray(roles, dtype=np.int8),
        value=np.asarray(values, dtype=float),
    )


def shuffled(world: World, seed: int) -> World:
    """The same world with the rows of the PathSet and the conversions permuted."""
    rng = np.random.default_rng(seed)
    p = world.paths
    order = rng.permutation(p.n_paths)
    paths = PathSet(
        p.channels,
        np.concatenate([[0], np.cumsum(p.lengths[order])]).astype(np.int64),
        np.concatenate([p.tokens[p.offsets[i] : p.offsets[i + 1]] for i in order]),
        p.conversions[order],
        p.nulls[order],
        p.value[order],
    )
    t = world.touches
    lengths = np.diff(t.offsets)
    corder = rng.permutation(t.n_conversions)
    pieces = [np.arange(t.offsets[i], t.offsets[i + 1]) for i in corder]
    take = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    touches = ConvertingTouches(
        t.channels,
        np.concatenate([[0], np.cumsum(lengths[corder])]).astype(np.int64),
        t.tokens[take],
        t.age_days[take],
        t.milestone[take],
        t.value[corder],
        t.has_lead_milestones,
    )
    return World(paths, touches)


def single_channel_world() -> World:
    paths = PathSet.from_paths(
        ["solo", "solo > solo", "solo > solo > solo"],
        conversions=[3, 1, 0],
        nulls=[2, 0, 4],
        value=[30.0, 12.5, 0.0],
    )
    return World(paths, touches_for(paths, np.random.default_rng(0)))


# -- the checks -----------------------------------------------------------------------------


def _fit(model: AttributionModel, world: World) -> AttributionModel:
    return model.fit(world.paths, world.touches if model.needs_timing else None)


def _credits(model: AttributionModel) -> pd.DataFrame:
    assert isinstance(getattr(model, "credits_", None), pd.DataFrame), "credits_ is no DataFrame"
    return model.credits_


def _totals(model: AttributionModel, world: World) -> tuple[float, float]:
    if model.needs_timing:
        return float(world.touches.n_conversions), float(world.touches.value.sum())
    return float(world.paths.conversions.sum()), float(world.paths.value.sum())


def check_fit_returns_self(new: Callable[[], AttributionModel], world: World) -> None:
    model = new()
    assert _fit(model, world) is model, "fit must return self"


def check_init_stores_params(new: Callable[[], AttributionModel], world: World) -> None:
    model = new()
    params = model.get_params()
    learnt = [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
    assert not learnt, f"__init__ set fitted attributes {learnt}"
    missing = [k for k in model._param_names() if k not in vars(model)]
    assert not missing, f"__init__ does not store parameters {missing} under their own names"
    _fit(model, world)
    after = model.get_params()
    assert json.dumps(after, default=repr) == json.dumps(params, default=repr), (
        "fit changed the parameters"
    )


def check_fitted_attributes(new: Callable[[], AttributionModel], world: World) -> None:
    model = new()
    before = set(vars(model))
    _fit(model, world)
    added = [k for k in set(vars(model)) - before if not k.endswith("_") and k[0] != "_"]
    assert not added, f"fit added attributes not ending in '_': {sorted(added)}"


def check_credits_layout(new: Callable[[], AttributionModel], world: World) -> None:
    credits = _credits(_fit(new(), world))
    assert list(credits.index) == list(world.paths.channels), (
        f"credits_ index {list(credits.index)} != channels {list(world.paths.channels)}"
    )
    assert list(credits.columns) == ["conversions", "value"], (
        f"credits_ columns {list(credits.columns)} != ['conversions', 'value']"
    )
    assert np.isfinite(credits.to_numpy(float)).all(), "credits_ has non-finite entries"


def check_nonnegative(new: Callable[[], AttributionModel], world: World) -> None:
    model = _fit(new(), world)
    if model.nonnegative_credits:
        assert (_credits(model).to_numpy(float) >= -1e-12).all(), "negative credits"


def check_sums_to_totals(new: Callable[[], AttributionModel], world: World) -> None:
    model = _fit(new(), world)
    credits = _credits(model)
    conv, value = _totals(model, world)
    for col, want, got in (
        ("conversions", conv, model.total_conversions_),
        ("value", value, model.total_value_),
    ):
        assert np.isclose(got, want, rtol=RTOL, atol=0), f"total_{col}_ {got} != input {want}"
        s = float(credits[col].sum())
        assert np.isclose(s, want, rtol=RTOL, atol=1e-12), f"{col} credits sum {s} != {want}"
        if want:
            share = float(model.shares_[col].sum())
            assert np.isclose(share, 1.0, rtol=RTOL), f"{col} shares sum {share} != 1"


def check_deterministic(new: Callable[[], AttributionModel], world: World) -> None:
    a = _credits(_fit(new(), world)).to_numpy(float)
    b = _credits(_fit(new(), world)).to_numpy(float)
    assert np.array_equal(a, b), "two fits on the same input differ"


def check_path_order_invariant(new: Callable[[], AttributionModel], world: World) -> None:
    a = _credits(_fit(new(), world)).to_numpy(float)
    b = _credits(_fit(new(), shuffled(world, seed=1))).to_numpy(float)
    assert np.allclose(a, b, rtol=RTOL, atol=1e-9), "credits depend on the order of paths"


def check_single_channel(new: Callable[[], AttributionModel], world: World) -> None:
    solo = single_channel_world()
    model = _fit(new(), solo)
    conv, value = _totals(model, solo)
    got = _credits(model).loc["solo"].to_numpy(float)
    assert np.allclose(got, [conv, value], rtol=RTOL), (
        f"one-channel world: got {got.tolist()}, want {[conv, value]}"
    )


def check_no_paths(new: Callable[[], AttributionModel], world: World) -> None:
    """A date range or filter can leave nothing: a fit on no paths credits nothing."""
    empty = PathSet.from_paths([], conversions=[])
    none = World(empty, touches_for(empty, np.random.default_rng(0)))
    model = _fit(new(), none)
    total = float(_credits(model).to_numpy(float).sum()) if len(_credits(model)) else 0.0
    assert total == 0.0, f"no paths: credited {total}"


def check_serialisation_round_trip(new: Callable[[], AttributionModel], world: World) -> None:
    model = new()
    data = model.to_dict()
    text = json.dumps(data)
    again = from_dict(json.loads(text))
    assert type(again) is type(model), f"from_dict built {type(again).__name__}"
    assert json.dumps(again.to_dict()) == text, "parameters changed in the round trip"
    a = _credits(_fit(model, world)).to_numpy(float)
    b = _credits(_fit(again, world)).to_numpy(float)
    assert np.array_equal(a, b), "the rebuilt model fits different credits"


CHECKS: dict[str, Callable[[Callable[[], AttributionModel], World], None]] = {
    "fit_returns_self": check_fit_returns_self,
    "init_stores_params": check_init_stores_params,
    "fitted_attributes": check_fitted_attributes,
    "credits_layout": check_credits_layout,
    "nonnegative": check_nonnegative,
    "sums_to_totals": check_sums_to_totals,
    "deterministic": check_deterministic,
    "path_order_invariant": check_path_order_invariant,
    "single_channel": check_single_channel,
    "no_paths": check_no_paths,
    "serialisation_round_trip": check_serialisation_round_trip,
}


def check_attribution_model(
    model: type[AttributionModel] | AttributionModel, *, seeds: tuple[int, ...] = (0, 1)
) -> None:
    """Run every check of :data:`CHECKS`; raise ``AssertionError`` naming the first failure.

    ``model`` is a class (instantiated with its defaults) or an unfitted instance (each check
    works on a fresh copy rebuilt from its parameters).
    """
    if isinstance(model, type):
        cls = model

        def new() -> AttributionModel:
            return cls()

    else:
        instance = model
        params = instance.get_params()

        def new() -> AttributionModel:
            return type(instance)(**params)

    for seed in seeds:
        world = random_world(seed)
        for name, check in CHECKS.items():
            try:
                check(new, world)
            except AssertionError as exc:
                label = type(model).__name__ if not isinstance(model, type) else model.__name__
                raise AssertionError(f"{name}: {label} (world seed {seed}): {exc}") from exc
