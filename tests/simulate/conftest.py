import pytest

from mixwise.simulate import Market, MarketConfig, simulate_market


@pytest.fixture(scope="session")
def small_market() -> Market:
    return simulate_market(MarketConfig.small(), seed=7)


@pytest.fixture(scope="session")
def geo_market() -> Market:
    cfg = MarketConfig.small().replace(
        geos=("north", "south", "east", "west"), geo_weights=(0.3, 0.3, 0.25, 0.15)
    )
    return simulate_market(cfg, seed=11)
