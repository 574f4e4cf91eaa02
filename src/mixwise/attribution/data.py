"""The small, encoded inputs every attribution model works on.

The warehouse reduces raw journeys (possibly billions of touchpoints) to one of two compact
structures (``attribution/reduce.py``); the models in this package only ever see these:

- :class:`PathSet` — the *unique* channel paths with, per path, the number of journeys that
  converted on it (``conversions``), that did not (``nulls``) and the conversion value. It is
  exactly ChannelAttribution's input form, so a ``paths`` file maps onto it directly. Paths
  are stored flat (CSR): channel indices in ``tokens``, path ``i`` is
  ``tokens[offsets[i]:offsets[i+1]]``. Every rule-based model that depends only on the order
  of touches, the Markov models and the Shapley models run on it.
- :class:`ConvertingTouches` — every touch of every *converting* journey with its age in days
  at the conversion and its milestone role; the time-decay and W-shaped models need timing,
  which unique paths cannot carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pandas as pd

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

SEPARATOR = " > "

# Milestone roles of a touch in ConvertingTouches.milestone (for the W-shaped model). A bit
# set: one touch can be several milestones (the first touch may also be the one before the
# lead was created), so test with ``milestone & LEAD_CREATION``.
NO_MILESTONE, FIRST_TOUCH, LEAD_CREATION, OPPORTUNITY_CREATION = 0, 1, 2, 4


@dataclass(frozen=True)
class PathSet:
    """Unique paths with their conversions, non-conversions and value."""

    channels: tuple[str, ...]
    offsets: IntArray  # len n_paths + 1, offsets[0] == 0
    tokens: IntArray  # channel index of each touch, len offsets[-1]
    conversions: FloatArray
    nulls: FloatArray
    value: FloatArray  # conversion value per path (0 where none)

    def __post_init__(self) -> None:
        n = len(self.offsets) - 1
        if n < 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.tokens):
            raise ValueError("offsets must start at 0 and end at len(tokens)")
        if np.any(np.diff(self.offsets) < 1):
            raise ValueError("every path needs at least one touch")
        for name in ("conversions", "nulls", "value"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have one entry per path")
        if len(self.tokens) and (self.tokens.min() < 0 or self.tokens.max() >= len(self.channels)):
            raise ValueError("tokens must index channels")

    @property
    def n_paths(self) -> int:
        return len(self.offsets) - 1

    # Cached (the arrays are read-only): every model asks for them, and at 10M journeys each
    # is an array of millions of entries.
    @cached_property
    def lengths(self) -> IntArray:
        return _frozen(np.diff(self.offsets))

    @cached_property
    def path_index(self) -> IntArray:
        """For every token, the index of its path."""
        return _frozen(np.repeat(np.arange(self.n_paths, dtype=np.int64), self.lengths))

    @cached_property
    def position(self) -> IntArray:
        """For every token, its 0-based position within its path."""
        return _frozen(
            np.arange(len(self.tokens), dtype=np.int64) - np.repeat(self.offsets[:-1], self.lengths)
        )

    def path(self, i: int) -> list[str]:
        return [self.channels[t] for t in self.tokens[self.offsets[i] : self.offsets[i + 1]]]

    def path_strings(self) -> list[str]:
        return [SEPARATOR.join(self.path(i)) for i in range(self.n_paths)]

    @classmethod
    def from_paths(
        cls,
        paths: Iterable[Sequence[str] | str],
        conversions: npt.ArrayLike,
        nulls: npt.ArrayLike | None = None,
        value: npt.ArrayLike | None = None,
        *,
        channels: Sequence[str] | None = None,
    ) -> PathSet:
        """Build from paths given as channel lists or ``"a > b > c"`` strings.

        Identical paths are merged (their counts added). ``channels`` fixes the channel order;
        by default channels are sorted by name.
        """
        seqs = [_split(p) for p in paths]
        conv = np.asarray(conversions, dtype=np.float64)
        n = len(seqs)
        nul = np.zeros(n) if nulls is None else np.asarray(nulls, dtype=np.float64)
        val = np.zeros(n) if value is None else np.asarray(value, dtype=np.float64)
        names = (
            tuple(channels) if channels is not None else tuple(sorted({c for s in seqs for c in s}))
        )
        index = {c: i for i, c in enumerate(names)}
        frame = pd.DataFrame(
            {
                "path": [SEPARATOR.join(s) for s in seqs],
                "conversions": conv,
                "nulls": nul,
                "value": val,
            }
        )
        merged = frame.groupby("path", sort=True, as_index=False).sum()
        lists = [_split(p) for p in merged["path"]]
        lengths = np.array([len(s) for s in lists], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        tokens = np.array([index[c] for s in lists for c in s], dtype=np.int64)
        return cls(
            names,
            offsets,
            tokens,
            merged["conversions"].to_numpy(np.float64),
            merged["nulls"].to_numpy(np.float64),
            merged["value"].to_numpy(np.float64),
        )

    def to_frame(self) -> pd.DataFrame:
        """ChannelAttribution's form: path, conversions, nulls, value."""
        return pd.DataFrame(
            {
                "path": self.path_strings(),
                "conversions": self.conversions,
                "nulls": self.nulls,
                "value": self.value,
            }
        )


@dataclass(frozen=True)
class ConvertingTouches:
    """Touches of converting journeys, in time order within each conversion."""

    channels: tuple[str, ...]
    offsets: IntArray  # len n_conversions + 1
    tokens: IntArray  # channel index per touch
    age_days: FloatArray  # days from the touch to its conversion (>= 0)
    milestone: npt.NDArray[np.int8]  # bit set of FIRST_TOUCH, LEAD_CREATION, ...
    value: FloatArray  # value per conversion
    has_lead_milestones: bool = False  # False: W-shaped uses its documented fallback

    @property
    def n_conversions(self) -> int:
        return len(self.offsets) - 1


def _frozen(array: IntArray) -> IntArray:
    array.flags.writeable = False
    return array


def _split(path: Sequence[str] | str) -> list[str]:
    if isinstance(path, str):
        parts = [p.strip() for p in path.split(">")]
    else:
        parts = [str(p).strip() for p in path]
    if not parts or any(not p for p in parts):
        raise ValueError(f"path {path!r} has an empty channel")
    return parts
