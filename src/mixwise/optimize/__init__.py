"""Budget allocation and scenario planning on response models (see docs/optimize.md).

JAX is imported only inside the functions that need it, so importing this package is cheap.
"""

from mixwise.optimize.allocate import Allocation, Objective, allocate
from mixwise.optimize.constraints import Constraint, InfeasibleError, parse_constraint
from mixwise.optimize.response import (
    HillResponse,
    PointResponse,
    ResponseModel,
    TruthResponse,
    read_hill_csv,
    read_points_csv,
)

__all__ = [
    "Allocation",
    "Constraint",
    "HillResponse",
    "InfeasibleError",
    "Objective",
    "PointResponse",
    "ResponseModel",
    "TruthResponse",
    "allocate",
    "parse_constraint",
    "read_hill_csv",
    "read_points_csv",
]
