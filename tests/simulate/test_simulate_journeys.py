import numpy as np
import pandas as pd
import pytest

from mixwise.simulate import Market, MarketConfig, paths_from_journeys, simulate_market
from mixwise.simulate.journeys import BLOCK_SIZE, _strictly_increasing


def test_direct_confounding(small_market: Market) -> None:
    truth = small_market.truth
    inc = truth.incremental_conversions
    assert inc["direct"] == 0
    assert inc.drop("direct").sum() > 0
    tp, conv = small_market.touchpoints, small_market.conversions
    last = tp.groupby("journey_id", sort=False).tail(1)
    last = last[last["journey_id"].isin(set(conv["journey_id"]))]
    share = last["channel"].value_counts(normalize=True)
    assert share["direct"] > 0.2  # last touch credits direct heavily, truth says zero
    assert share["brand_search"] > inc["brand_search"] / inc.sum()


def test_incremental_share_and_channel_link() -> None:
    market = simulate_market(MarketConfig.small(), seed=3)
    frames = [tr for _, _, tr in market.iter_journeys(150_000, chunk_size=50_000)]
    truth = pd.concat(frames, ignore_index=True)
    share = truth["incremental"].sum() / truth["converted"].sum()
    assert share == pytest.approx(market.config.journeys.incremental_share, abs=0.03)
    high = truth["intent"] > 1
    assert truth.loc[high, "converted"].mean() > 2 * truth.loc[~high, "converted"].mean()
    causes = truth.loc[truth["incremental"], "cause"].value_counts(normalize=True)
    targets = market.truth.journey_targets
    corr = np.corrcoef(causes.reindex(targets.index).fillna(0), targets)[0, 1]
    assert corr > 0.9


def test_chunks_are_deterministic_and_bounded(small_market: Market) -> None:
    n = BLOCK_SIZE + 1234  # spans two blocks
    whole = list(small_market.iter_journeys(n, chunk_size=n))
    assert len(whole) == 1
    chunks = list(small_market.iter_journeys(n, chunk_size=20_000))
    sizes = [len(c.truth) for c in chunks]
    assert max(sizes) <= 20_000 and sum(sizes) == n and len(sizes) == 4
    for k in range(3):
        joined = pd.concat([c[k] for c in chunks], ignore_index=True)
        pd.testing.assert_frame_equal(joined, whole[0][k])
    # the configured journeys are a prefix of any larger set
    prefix = whole[0].touchpoints
    own = small_market.touchpoints
    pd.testing.assert_frame_equal(prefix.iloc[: len(own)].reset_index(drop=True), own)
    assert set(own["journey_id"]) == set(small_market.journey_truth["journey_id"])


def test_touchpoints_sorted_and_consistent(small_market: Market) -> None:
    tp = small_market.touchpoints
    assert tp.groupby("journey_id")["timestamp"].apply(lambda s: s.is_monotonic_increasing).all()
    conv = small_market.conversions
    truth = small_market.journey_truth
    assert set(conv["journey_id"]) == set(truth.loc[truth["converted"], "journey_id"])
    assert conv["order_id"].is_unique and (conv["value"] > 0).all()
    last = tp.groupby("journey_id")["timestamp"].max()
    assert (conv.set_index("journey_id")["timestamp"] >= last.reindex(conv["journey_id"])).all()


def test_paths(small_market: Market) -> None:
    paths = small_market.paths
    truth = small_market.journey_truth
    assert paths["conversions"].sum() == truth["converted"].sum()
    assert paths["conversions"].sum() + paths["nulls"].sum() == len(truth)
    assert paths["value"].sum() == pytest.approx(small_market.conversions["value"].sum())
    assert paths["path"].is_unique
    again = paths_from_journeys(small_market.touchpoints, small_market.conversions)
    pd.testing.assert_frame_equal(again, paths)
    chunked = small_market.journey_paths(chunk_size=700)
    pd.testing.assert_frame_equal(chunked, paths, check_exact=False)


def test_paths_by_hand() -> None:
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    tp = pd.DataFrame(
        {
            "journey_id": ["j1", "j1", "j2", "j3", "j3"],
            "timestamp": [ts + pd.Timedelta(hours=h) for h in (2, 1, 0, 0, 1)],
            "channel": ["b", "a", "a", "a", "b"],
        }
    )
    conv = pd.DataFrame({"journey_id": ["j1"], "timestamp": [ts], "value": [10.0]})
    out = paths_from_journeys(tp, conv).set_index("path")
    assert out.loc["a > b", "conversions"] == 1 and out.loc["a > b", "nulls"] == 1
    assert out.loc["a > b", "value"] == 10.0
    assert out.loc["a", "nulls"] == 1


def test_switch_off_at_user_level(small_market: Market) -> None:
    off = simulate_market(small_market.config, seed=small_market.seed, switch_off=("tv",))
    assert "tv" not in set(off.touchpoints["channel"])
    assert off.truth.incremental_conversions["tv"] == 0
    on_inc = small_market.journey_truth["incremental"].sum()
    assert off.journey_truth["incremental"].sum() < on_inc
    pd.testing.assert_series_equal(
        off.truth.per_touch_probability, small_market.truth.per_touch_probability
    )


def test_write_parquet(small_market: Market, tmp_path) -> None:
    written = small_market.write_journeys(tmp_path, n_journeys=5_000, chunk_size=2_000)
    assert [len(v) for v in written.values()] == [3, 3, 3]
    back = pd.read_parquet(tmp_path / "truth")
    assert len(back) == 5_000
    tp = pd.read_parquet(tmp_path / "touchpoints")
    assert str(tp["timestamp"].dt.tz) == "UTC"


def test_strictly_increasing_by_hand() -> None:
    journey = np.array([0, 0, 0, 0, 1, 1, 2])
    seconds = np.array([10, 10, 10, 20, 5, 5, 7])
    assert _strictly_increasing(journey, seconds).tolist() == [10, 11, 12, 20, 5, 6, 7]


def test_touch_keys_are_unique_and_precede_the_conversion() -> None:
    """The touchpoints contract keys on (journey_id, timestamp, channel): no duplicates."""
    market = simulate_market(MarketConfig.demo(), seed=1)  # had a duplicate at 300k journeys
    chunk = next(market.iter_journeys(n_journeys=300_000, chunk_size=300_000))
    tp = chunk.touchpoints
    assert not tp.duplicated(["journey_id", "timestamp", "channel"]).any()
    last = tp.groupby("journey_id")["timestamp"].max()
    conv = chunk.conversions.set_index("journey_id")["timestamp"]
    assert (conv >= last.reindex(conv.index)).all()
