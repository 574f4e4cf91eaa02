"""The attribution model protocol, the registry, and the helpers every model shares.

A model follows scikit-learn's vocabulary:

- configuration goes in ``__init__`` and is stored, unchanged, under the parameter's own name;
  ``__init__`` does no work and no validation (``fit`` validates);
- ``fit(paths, touches=None)`` learns from the encoded inputs of :mod:`mixwise.attribution.data`
  and returns ``self``;
- everything learnt ends in ``_``. Every model has ``credits_``: a DataFrame indexed by *every*
  channel of ``paths.channels`` (in that order) with columns ``conversions`` and ``value``, plus
  ``total_conversions_`` and ``total_value_`` (what the credits distribute).

Models are registered by their class attribute ``name`` in :data:`MODELS`, so a run serialises
to ``{"name": ..., "params": {...}}`` (:meth:`AttributionModel.to_dict`) and comes back with
:func:`from_dict`. A user adds a model with :func:`register_model`::

    @register_model
    class EvenSplit(AttributionModel):
        name = "even_split"

        def fit(self, paths, touches=None):
            ...
            return self

and proves it with :func:`mixwise.attribution.checks.check_attribution_model`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from mixwise.attribution.data import ConvertingTouches, PathSet

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CREDIT_COLUMNS = ("conversions", "value")


class AttributionModel:
    """Base class: parameters, serialisation and the shared result layout."""

    #: Registry key; also the value of ``to_dict()["name"]``.
    name: ClassVar[str] = ""
    #: True when the model needs :class:`ConvertingTouches` (age and milestones of touches).
    needs_timing: ClassVar[bool] = False

    credits_: pd.DataFrame
    total_conversions_: float
    total_value_: float

    # -- parameters -------------------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as stored."""
        return {k: getattr(self, k) for k in self._param_names()}

    def to_dict(self) -> dict[str, Any]:
        """``{"name": registry key, "params": JSON-able constructor arguments}``."""
        return {
            "name": self.name,
            "params": {k: _jsonable(v) for k, v in self.get_params().items()},
        }

    @property
    def nonnegative_credits(self) -> bool:
        """Whether credits are guaranteed ``>= 0`` (checked by the conformance battery)."""
        return True

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ----------------------------------------------------------------------------

    def fit(self, paths: PathSet, touches: ConvertingTouches | None = None) -> AttributionModel:
        raise NotImplementedError

    @property
    def shares_(self) -> pd.DataFrame:
        """Credits as shares of what was distributed (NaN where nothing was)."""
        self._check_fitted()
        totals = pd.Series(
            {"conversions": self.total_conversions_, "value": self.total_value_}, dtype=float
        )
        return self.credits_.div(totals.where(totals != 0))

    def _check_fitted(self) -> None:
        if not hasattr(self, "credits_"):
            raise AttributeError(f"{type(self).__name__} is not fitted yet; call fit(paths) first")

    def _set_credits(
        self, channels: tuple[str, ...], conversions: FloatArray, value: FloatArray
    ) -> None:
        self.credits_ = credits_frame(channels, conversions, value)


# -- registry -------------------------------------------------------------------------------

MODELS: dict[str, type[AttributionModel]] = {}

M = TypeVar("M", bound=type[AttributionModel])


def register_model(cls: M) -> M:
    """Register a model class under ``cls.name`` (usable as a class decorator).

    Re-registering the same class is a no-op; a *different* class under a taken name is refused.
    """
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute `name`")
    if not callable(getattr(cls, "fit", None)):
        raise TypeError(f"{cls.__name__} needs a fit(paths, touches=None) method")
    existing = MODELS.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"attribution model name {name!r} is already taken by {existing.__name__}")
    MODELS[name] = cls
    return cls


def get_model(name: str, **params: Any) -> AttributionModel:
    """A new, unfitted model by registry key, e.g. ``get_model("markov", order=2)``."""
    try:
        cls = MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise KeyError(f"unknown attribution model {name!r}; known models: {known}") from None
    return cls(**params)


def from_dict(data: Mapping[str, Any]) -> AttributionModel:
    """Inverse of :meth:`AttributionModel.to_dict`."""
    if "name" not in data:
        raise ValueError("a serialised attribution model needs a 'name'")
    return get_model(str(data["name"]), **dict(data.get("params") or {}))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- shared numerics ------------------------------------------------------------------------


def credits_frame(
    channels: Iterable[str], conversions: FloatArray, value: FloatArray
) -> pd.DataFrame:
    """The result layout: one row per channel, columns ``conversions`` and ``value``."""
    return pd.DataFrame(
        {"conversions": np.asarray(conversions, float), "value": np.asarray(value, float)},
        index=pd.Index(list(channels), name="channel"),
    )


def token_credits(
    n_channels: int,
    tokens: IntArray,
    weights: FloatArray,
    owner: IntArray,
    *amounts: FloatArray,
) -> list[FloatArray]:
    """Distribute each owner's amounts over its tokens by per-token ``weights``.

    ``weights`` must sum to 1 within each owner (a path or a conversion); ``owner[t]`` is the
    owner of token ``t``. Returns one credit vector per amount, summed per channel.
    """
    return [
        np.bincount(tokens, weights=weights * a[owner], minlength=n_channels).astype(float)
        for a in amounts
    ]


def length_rule_credits(
    n_channels: int,
    tokens: IntArray,
    offsets: IntArray,
    rule: Callable[[int], FloatArray],
    *amounts: FloatArray,
) -> list[FloatArray]:
    """:func:`token_credits` for a rule whose weights depend only on the owner's length.

    ``rule(n)`` gives the ``n`` weights (summing to 1) of an owner with ``n`` tokens; it is
    called once per distinct length. Owners sorted by length (as the reduction's
    :class:`~mixwise.attribution.data.PathSet`) are done class by class, each class a
    ``(owners, n)`` block of tokens: no per-token index arrays at all. Otherwise each token's
    weight is looked up in a flat table of the rules by (length, position).
    """
    lengths = np.diff(offsets)
    credits = [np.zeros(n_channels) for _ in amounts]
    if not len(lengths):
        return credits
    present = np.flatnonzero(np.bincount(lengths))
    table = {int(n): np.asarray(rule(int(n)) if n else [], dtype=np.float64) for n in present}
    if np.all(lengths[1:] >= lengths[:-1]):
        ends = np.searchsorted(lengths, present, side="right")
        first = 0
        for n, end in zip(present.tolist(), ends.tolist(), strict=True):
            block = tokens[offsets[first] : offsets[end]]
            for credit, amount in zip(credits, amounts, strict=True):
                weights = (amount[first:end, None] * table[n][None, :]).ravel()
                credit += np.bincount(block, weights=weights, minlength=n_channels)
            first = end
        return credits
    start = np.zeros(int(present[-1]) + 1, dtype=np.int64)
    start[present] = np.concatenate([[0], np.cumsum(present)[:-1]])
    flat = np.concatenate([table[int(n)] for n in present])
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    position = np.arange(len(tokens), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    weights = flat[start[lengths[owner]] + position]
    return token_credits(n_channels, tokens, weights, owner, *amounts)


def normalise_per_owner(raw: FloatArray, owner: IntArray, n_owners: int) -> FloatArray:
    """Scale ``raw`` so it sums to 1 within each owner; owners summing to 0 get equal shares."""
    total = np.bincount(owner, weights=raw, minlength=n_owners).astype(float)  # int if empty
    count = np.bincount(owner, minlength=n_owners).astype(float)
    positive = total > 0
    # Per owner first (one entry each), then one gather per token array: no boolean masks
    # over the tokens (at 10M journeys, millions of entries).
    scale = np.divide(1.0, total, out=np.zeros_like(total), where=positive)
    even = np.divide(1.0, count, out=np.zeros_like(count), where=~positive & (count > 0))
    return raw * scale[owner] + even[owner]


def validate_paths(paths: PathSet) -> None:
    """Non-negative, finite counts and values."""
    for field in ("conversions", "nulls", "value"):
        arr = getattr(paths, field)
        if len(arr) and (not np.all(np.isfinite(arr)) or arr.min() < 0):
            raise ValueError(f"PathSet.{field} must be finite and >= 0")


def touch_tokens(paths: PathSet, touches: ConvertingTouches) -> IntArray:
    """``touches.tokens`` re-indexed onto ``paths.channels`` (matched by channel name)."""
    if touches.channels == paths.channels:
        return touches.tokens
    index = {c: i for i, c in enumerate(paths.channels)}
    missing = [c for c in touches.channels if c not in index]
    if missing:
        raise ValueError(f"channels in touches but not in paths: {missing}")
    mapping = np.array([index[c] for c in touches.channels], dtype=np.int64)
    return mapping[touches.tokens] if len(touches.tokens) else touches.tokens


def require_touches(
    model: AttributionModel, touches: ConvertingTouches | None
) -> ConvertingTouches:
    if touches is None:
        raise ValueError(
            f"the {model.name!r} model needs touch timing: pass touches=ConvertingTouches(...)"
        )
    n = touches.n_conversions
    if touches.offsets[0] != 0 or touches.offsets[-1] != len(touches.tokens):
        raise ValueError("ConvertingTouches.offsets must start at 0 and end at len(tokens)")
    if n and np.any(np.diff(touches.offsets) < 1):
        raise ValueError("every conversion in ConvertingTouches needs at least one touch")
    if len(touches.age_days) != len(touches.tokens) or len(touches.milestone) != len(
        touches.tokens
    ):
        raise ValueError("ConvertingTouches.age_days and milestone need one entry per touch")
    if len(touches.value) != n:
        raise ValueError("ConvertingTouches.value needs one entry per conversion")
    if len(touches.age_days) and (
        not np.all(np.isfinite(touches.age_days)) or touches.age_days.min() < 0
    ):
        raise ValueError("ConvertingTouches.age_days must be finite and >= 0")
    return touches


def check_fraction(name: str, value: float, *, positive: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}")
    return v
