"""Attribution models: rule-based, Markov removal effect and Shapley, behind one registry.

Every model has configuration in ``__init__``, learns in ``fit(paths, touches=None)`` (which
returns ``self``) and exposes ``credits_`` — a DataFrame indexed by every channel of
``paths.channels`` with columns ``conversions`` and ``value``. Models are looked up by name:

>>> from mixwise.attribution.data import PathSet
>>> from mixwise.attribution.models import get_model
>>> paths = PathSet.from_paths(["a > b", "b"], conversions=[2, 1], value=[20.0, 5.0])
>>> credits = get_model("linear").fit(paths).credits_
>>> credits["conversions"].to_dict(), credits["value"].to_dict()
({'a': 1.0, 'b': 2.0}, {'a': 10.0, 'b': 15.0})

=======================  ======================================  ================================
registry key             class                                   module
=======================  ======================================  ================================
``first``                :class:`FirstTouchModel`                :mod:`.rules`
``last``                 :class:`LastTouchModel`                 :mod:`.rules`
``last_non_direct``      :class:`LastNonDirectModel`             :mod:`.rules`
``linear``               :class:`LinearModel`                    :mod:`.rules`
``position``             :class:`PositionBasedModel`             :mod:`.rules`
``custom``               :class:`CustomPositionModel`            :mod:`.rules`
``time_decay``           :class:`TimeDecayModel`                 :mod:`.timing`
``w_shaped``             :class:`WShapedModel`                   :mod:`.timing`
``markov``               :class:`MarkovModel`                    :mod:`.markov`
``shapley``              :class:`ShapleyModel`                   :mod:`.shapley`
``shapley_simplified``   :class:`SimplifiedShapleyModel`         :mod:`.shapley`
``shapley_ordered``      :class:`OrderedShapleyModel`            :mod:`.shapley`
=======================  ======================================  ================================

Each module's docstring states the model's exact definition and the choices made.
"""

from mixwise.attribution.models.base import (
    MODELS,
    AttributionModel,
    credits_frame,
    from_dict,
    get_model,
    register_model,
)
from mixwise.attribution.models.markov import MarkovModel
from mixwise.attribution.models.rules import (
    CustomPositionModel,
    FirstTouchModel,
    LastNonDirectModel,
    LastTouchModel,
    LinearModel,
    PositionBasedModel,
)
from mixwise.attribution.models.shapley import (
    OrderedShapleyModel,
    ShapleyModel,
    SimplifiedShapleyModel,
)
from mixwise.attribution.models.timing import TimeDecayModel, WShapedModel

__all__ = [
    "MODELS",
    "AttributionModel",
    "CustomPositionModel",
    "FirstTouchModel",
    "LastNonDirectModel",
    "LastTouchModel",
    "LinearModel",
    "MarkovModel",
    "OrderedShapleyModel",
    "PositionBasedModel",
    "ShapleyModel",
    "SimplifiedShapleyModel",
    "TimeDecayModel",
    "WShapedModel",
    "credits_frame",
    "from_dict",
    "get_model",
    "register_model",
]
