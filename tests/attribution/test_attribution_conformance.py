"""Every registered model passes the battery; the registry and serialisation work for users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixwise.attribution.checks import check_attribution_model
from mixwise.attribution.data import ConvertingTouches, PathSet
from mixwise.attribution.models import (
    MODELS,
    AttributionModel,
    from_dict,
    get_model,
    register_model,
)

EXTRA = [
    ("markov", {"order": 2}),
    ("markov", {"order": 3, "states": "window"}),
    ("markov", {"order": 4}),
    ("markov", {"include_nulls": False}),
    ("shapley", {"value_function": "conversion_rate"}),
    ("shapley", {"value_function": "conversion_rate", "method": "sampling", "tolerance": 0.05}),
    ("last_non_direct", {"direct": ["ch0", "ch1"]}),
    ("custom", {"from_start": [0.5, 0.1], "from_end": [0.3], "middle": 0.1}),
    ("time_decay", {"half_life_days": 2.5}),
]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_passes_the_battery(name: str) -> None:
    check_attribution_model(MODELS[name])


@pytest.mark.parametrize(("name", "params"), EXTRA, ids=[f"{n}-{p}" for n, p in EXTRA])
def test_configured_models_pass_the_battery(name: str, params: dict) -> None:
    check_attribution_model(get_model(name, **params))


class Broken(AttributionModel):
    name = "broken_for_tests"

    def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> AttributionModel:
        n = len(paths.channels)
        self.credits_ = pd.DataFrame(
            {"conversions": np.full(n, 1.0), "value": np.zeros(n)},
            index=pd.Index(paths.channels, name="channel"),
        )
        self.total_conversions_ = float(paths.conversions.sum())
        self.total_value_ = float(paths.value.sum())
        return self


def test_battery_names_the_failed_check() -> None:
    with pytest.raises(AssertionError, match=r"^sums_to_totals: Broken"):
        check_attribution_model(Broken)


def test_user_model_registers_serialises_and_passes() -> None:
    @register_model
    class EvenSplit(AttributionModel):
        """Every channel on a path gets an equal share of it (distinct channels)."""

        name = "even_split_for_tests"

        def __init__(self, scale: float = 1.0) -> None:
            self.scale = scale

        def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> EvenSplit:
            return self._fit(get_model("shapley_simplified").fit(paths))

        def _fit(self, inner: AttributionModel) -> EvenSplit:
            self.credits_ = inner.credits_
            self.total_conversions_ = inner.total_conversions_
            self.total_value_ = inner.total_value_
            return self

    try:
        assert MODELS["even_split_for_tests"] is EvenSplit
        check_attribution_model(EvenSplit(scale=2.0))
        data = EvenSplit(scale=2.0).to_dict()
        assert data == {"name": "even_split_for_tests", "params": {"scale": 2.0}}
        assert from_dict(data).get_params() == {"scale": 2.0}
        with pytest.raises(ValueError, match="already taken"):

            @register_model
            class Clash(AttributionModel):
                name = "even_split_for_tests"

                def fit(self, paths, touches=None):  # type: ignore[no-untyped-def]
                    return self

    finally:
        MODELS.pop("even_split_for_tests", None)


def test_get_model_lists_known_names() -> None:
    with pytest.raises(KeyError, match=r"known models: .*markov"):
        get_model("nope")


def test_to_dict_is_json_ready() -> None:
    m = get_model("last_non_direct", direct=("direct", "brand_search"))
    assert m.to_dict() == {
        "name": "last_non_direct",
        "params": {"direct": ["direct", "brand_search"]},
    }
    assert (
        from_dict(m.to_dict())
        .fit(PathSet.from_paths(["a > direct"], conversions=[1]))
        .credits_.at["a", "conversions"]
        == 1
    )


def test_credits_cover_channels_absent_from_paths() -> None:
    paths = PathSet.from_paths(["a"], conversions=[1], channels=("a", "unused"))
    for name, cls in MODELS.items():
        if cls.needs_timing:
            continue
        credits = get_model(name).fit(paths).credits_
        assert list(credits.index) == ["a", "unused"], name
        assert credits.at["unused", "conversions"] == 0, name


def test_fitted_model_reports_shares() -> None:
    paths = PathSet.from_paths(["a > b", "b"], conversions=[2, 2], value=[0, 0])
    shares = get_model("last").fit(paths).shares_
    assert shares["conversions"].tolist() == [0, 1]
    assert shares["value"].isna().all()  # nothing to share


def test_cross_check_with_channelattribution() -> None:
    ca = pytest.importorskip("ChannelAttribution")
    from mixwise.attribution.checks import random_world

    paths = random_world(seed=9, n_channels=6, n_paths=300).paths
    frame = paths.to_frame()
    heuristic = ca.heuristic_models(
        frame, "path", "conversions", var_value="value", sep=">"
    ).set_index("channel_name")
    for name, column in (
        ("first", "first_touch"),
        ("last", "last_touch"),
        ("linear", "linear_touch"),
    ):
        ours = get_model(name).fit(paths).credits_
        col = next(c for c in heuristic.columns if c.startswith(column) and "value" not in c)
        assert np.allclose(heuristic[col].reindex(ours.index).fillna(0), ours["conversions"])
    markov = ca.markov_model(
        frame, "path", "conversions", var_null="nulls", order=1, sep=">", verbose=False
    ).set_index("channel_name")
    ours = get_model("markov").fit(paths).shares_["conversions"]
    theirs = markov["total_conversions"].reindex(ours.index).fillna(0)
    assert np.abs(theirs / theirs.sum() - ours).max() <= 0.005
