"""quotient: the gradient flow of deep linear networks as geometry.

Parameter space is a tuple of layers ``(W_1, ..., W_h)``; the loss depends on the end-to-end map
``W = W_h ... W_1`` only, so it is invariant under changes of basis at the hidden layers. See
``README.md`` and ``docs/`` for a tour and ``math.md``-style formulas in every docstring.
"""

from . import datasets, groups, init
from ._io import FileFormatError
from .classification import classify, is_critical, learned_modes
from .conservation import (
    ConservationLaws,
    LieAlgebraTrace,
    balancedness_rank,
    count_conservation_laws,
    lie_algebra_dimension,
)
from .critical import CriticalValue, canonical_point, critical_values, global_minimum, minimum_threshold
from .discretisation import DescentStudy, charge_increment, descent_vs_flow
from .ensemble import Ensemble, ensemble_flow
from .fiber import Fiber, fiber
from .flow import Status, Trajectory, gradient_descent, gradient_flow
from .graph import CriticalGraph, Plateau, critical_graph, nearest_critical, plateaus
from .groups import GeneralLinear, HiddenGroup, Orthogonal, Rescaling, as_group
from .hessian import (
    DENSE_LIMIT,
    ZERO_EIGENVALUE_RTOL,
    Inertia,
    hessian_inertia,
    hessian_operator,
    zero_eigenvalue_threshold,
)
from .interop import from_torch, to_torch
from .losses import CovarianceSquareLoss, EndToEndLoss, LogisticLoss, PseudoHuberLoss, SquareLoss
from .minimum import convergence_rate, sharpest_direction, sharpness, stable_step
from .modes import PlateauPrediction, chain_time, learning_time, mode_solution, mode_time, predict_plateaus
from .network import (
    conserved_quantities,
    end_to_end,
    from_adjacency,
    from_vector,
    to_adjacency,
    to_vector,
    widths_of,
)
from .orbit import (
    OrbitNotClosedError,
    align_orthogonal,
    balance,
    balance_rescaling,
    balanced_lift,
    is_closed_orbit,
    orbit_infimum,
    well_conditioned,
)
from .problem import Problem
from .projection import pullback, pushforward, quotient_map, rank_manifold
from .quotient_flow import QuotientTrajectory, project, projected_velocity, reduced_flow, reduced_velocity
from .rank_manifold import RankManifold
from .riccati import two_layer_solution
from .saddle import SaddleDirection, stable_directions, unstable_directions
from .sweep import load_sweep, sweep
from .symmetry import (
    act,
    compose,
    horizontal_projection,
    inverse,
    moment_map,
    random_gl,
    random_orthogonal,
    random_rescaling,
    vertical_projection,
    vertical_space,
    vertical_vector,
)
from .teleport import Teleportation, teleport

__version__ = "0.1.0"

__all__ = [
    "ConservationLaws",
    "EndToEndLoss",
    "LieAlgebraTrace",
    "SquareLoss",
    "Status",
    "balancedness_rank",
    "count_conservation_laws",
    "lie_algebra_dimension",
    "DENSE_LIMIT",
    "ZERO_EIGENVALUE_RTOL",
    "CovarianceSquareLoss",
    "CriticalGraph",
    "CriticalValue",
    "DescentStudy",
    "FileFormatError",
    "Ensemble",
    "Fiber",
    "GeneralLinear",
    "HiddenGroup",
    "Inertia",
    "LogisticLoss",
    "OrbitNotClosedError",
    "Orthogonal",
    "Plateau",
    "PlateauPrediction",
    "Problem",
    "PseudoHuberLoss",
    "QuotientTrajectory",
    "RankManifold",
    "Rescaling",
    "SaddleDirection",
    "Teleportation",
    "Trajectory",
    "act",
    "align_orthogonal",
    "as_group",
    "balance",
    "balance_rescaling",
    "balanced_lift",
    "canonical_point",
    "chain_time",
    "charge_increment",
    "classify",
    "compose",
    "conserved_quantities",
    "convergence_rate",
    "critical_graph",
    "critical_values",
    "datasets",
    "descent_vs_flow",
    "ensemble_flow",
    "end_to_end",
    "fiber",
    "groups",
    "from_adjacency",
    "from_torch",
    "from_vector",
    "gradient_descent",
    "global_minimum",
    "gradient_flow",
    "hessian_inertia",
    "hessian_operator",
    "horizontal_projection",
    "init",
    "inverse",
    "is_closed_orbit",
    "is_critical",
    "learned_modes",
    "learning_time",
    "load_sweep",
    "minimum_threshold",
    "mode_solution",
    "mode_time",
    "moment_map",
    "nearest_critical",
    "orbit_infimum",
    "plateaus",
    "predict_plateaus",
    "project",
    "projected_velocity",
    "pullback",
    "pushforward",
    "quotient_map",
    "random_gl",
    "random_orthogonal",
    "random_rescaling",
    "rank_manifold",
    "reduced_flow",
    "reduced_velocity",
    "sharpest_direction",
    "sharpness",
    "stable_directions",
    "stable_step",
    "sweep",
    "teleport",
    "to_adjacency",
    "to_torch",
    "to_vector",
    "two_layer_solution",
    "unstable_directions",
    "vertical_projection",
    "vertical_space",
    "vertical_vector",
    "well_conditioned",
    "widths_of",
    "zero_eigenvalue_threshold",
]
