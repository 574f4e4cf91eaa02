import numpy as np
import pytest

from mixwise.simulate import adstock, delayed_adstock, geometric_adstock, hill
from mixwise.simulate.transforms import delayed_adstock_weights


def test_geometric_adstock_by_hand() -> None:
    x = [1.0, 0.0, 0.0, 2.0]
    np.testing.assert_allclose(geometric_adstock(x, 0.5, normalize=False), [1, 0.5, 0.25, 2.125])
    np.testing.assert_allclose(geometric_adstock(x, 0.5), [0.5, 0.25, 0.125, 1.0625])
    np.testing.assert_allclose(geometric_adstock(x, 0.0), x)


def test_geometric_adstock_steady_state_and_axis() -> None:
    x = np.full((2, 400), 7.0)
    out = geometric_adstock(x, 0.8)
    np.testing.assert_allclose(out[:, -1], 7.0)
    assert out.shape == (2, 400)


def test_delayed_adstock_by_hand() -> None:
    w = delayed_adstock_weights(0.5, peak=1.0, max_lag=3)
    # raw weights 0.5**1, 0.5**0, 0.5**1 = 0.5, 1, 0.5 -> / 2
    np.testing.assert_allclose(w, [0.25, 0.5, 0.25])
    np.testing.assert_allclose(delayed_adstock([4.0, 0.0, 0.0, 0.0], 0.5, 1.0, 3), [1, 2, 1, 0])
    np.testing.assert_allclose(adstock(np.full(50, 3.0), 0.5, 1.0, 3)[-1], 3.0)


def test_hill_by_hand() -> None:
    np.testing.assert_allclose(hill([0.0, 1.0, 2.0, 3.0], half=1.0, shape=2.0), [0, 0.5, 0.8, 0.9])
    np.testing.assert_allclose(hill([2.0], half=2.0, shape=1.0), [0.5])
    assert hill([-1.0], 1.0, 1.0)[0] == 0.0
    big = hill([1e12], 1.0, 3.0)[0]
    assert 0.999 < big <= 1.0


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        geometric_adstock([1.0], 1.0)
    with pytest.raises(ValueError):
        hill([1.0], 0.0, 1.0)
