"""Pure numerical building blocks of the media response: adstock and Hill saturation.

Everything here is a plain function of numpy arrays so it can be unit-tested by hand and reused
by the models that try to *recover* these shapes.

Adstock (carry-over)
    Spend on day ``t`` keeps working on later days. With **geometric** adstock of decay ``d``::

        a[t] = x[t] + d * a[t-1]  =  sum_l d**l * x[t-l]        (normalize=False)
        a[t] = (1 - d) * sum_l d**l * x[t-l]                     (normalize=True)

    The normalised form has weights that sum to one, so a *steady* spend ``x`` gives a steady
    adstock equal to ``x``: the half-saturation point of the Hill curve stays in spend units.

    **Delayed** adstock (used for TV) peaks ``peak`` days after the spend: weights
    ``w[l] = d ** ((l - peak) ** 2)`` for ``l = 0 .. max_lag-1``, normalised to sum to one.

Hill saturation
    ``hill(a, half, shape) = a**shape / (a**shape + half**shape)``, in [0, 1): ``half`` is the
    adstocked spend that reaches half of the maximum effect. With ``shape > 1`` the curve is S
    shaped (convex below its inflection point, which lies below ``half``; concave above it).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "adstock",
    "delayed_adstock",
    "delayed_adstock_weights",
    "geometric_adstock",
    "hill",
]


def geometric_adstock(x: npt.ArrayLike, decay: float, *, normalize: bool = True) -> FloatArray:
    """Geometric carry-over along the last axis: ``a[t] = x[t] + decay * a[t-1]``.

    With ``normalize=True`` the result is multiplied by ``1 - decay`` so that the weights sum to
    one and a constant input maps to itself at steady state.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    arr = np.asarray(x, dtype=np.float64)
    out = np.asarray(lfilter([1.0], [1.0, -decay], arr, axis=-1), dtype=np.float64)
    return out * (1.0 - decay) if normalize else out


def delayed_adstock_weights(decay: float, peak: float, max_lag: int) -> FloatArray:
    """Weights ``decay ** ((l - peak) ** 2)`` for ``l = 0 .. max_lag-1``, normalised to sum 1."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"decay must be in (0, 1), got {decay}")
    if max_lag < 1:
        raise ValueError("max_lag must be >= 1")
    lags = np.arange(max_lag, dtype=np.float64)
    w = decay ** ((lags - peak) ** 2)
    return np.asarray(w / w.sum(), dtype=np.float64)


def delayed_adstock(x: npt.ArrayLike, decay: float, peak: float, max_lag: int) -> FloatArray:
    """Carry-over with a delayed peak, along the last axis (truncated causal convolution)."""
    w = delayed_adstock_weights(decay, peak, max_lag)
    arr = np.asarray(x, dtype=np.float64)
    return np.asarray(lfilter(w, [1.0], arr, axis=-1), dtype=np.float64)


def adstock(x: npt.ArrayLike, decay: float, peak: float = 0.0, max_lag: int = 21) -> FloatArray:
    """Normalised adstock: geometric when ``peak == 0``, delayed otherwise."""
    if peak > 0:
        return delayed_adstock(x, decay, peak, max_lag)
    return geometric_adstock(x, decay, normalize=True)


def hill(x: npt.ArrayLike, half: float, shape: float) -> FloatArray:
    """Hill saturation ``x**shape / (x**shape + half**shape)`` (0 for x <= 0)."""
    if half <= 0 or shape <= 0:
        raise ValueError("half and shape must be positive")
    arr = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    # Written as 1 / (1 + (half/x)^shape) for numerical stability at large x.
    with np.errstate(divide="ignore"):
        ratio = np.where(arr > 0, (half / np.where(arr > 0, arr, 1.0)) ** shape, np.inf)
    return np.asarray(1.0 / (1.0 + ratio), dtype=np.float64)
