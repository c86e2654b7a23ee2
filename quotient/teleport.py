"""Symmetry teleportation: moves along a group orbit that the loss cannot see.

The hidden symmetry group leaves the loss unchanged, ``L(g . x) = L(x)``, but not what the loss's
derivatives look like: the gradient norm and the sharpness (largest Hessian eigenvalue) vary along
the orbit. Teleportation (Zhao, Dehmamy, Walters & Yu, NeurIPS 2022) moves a point within its
level set to the orbit point that optimises such an objective -- a larger gradient for faster
descent, a flatter or sharper minimum -- and then descends from there.

Two identities make both objectives functions of the orbit alone. The action ``A_g : W_i ->
G_i W_i G_{i-1}^{-1}`` is linear in the point, so differentiating ``L(A_g y) = L(y)`` gives

    grad L(g . y) = A_g^{-T} grad L(y) = g^{-T} . grad L(y),
    Hess L(g . y) = A_g^{-T} Hess L(y) A_g^{-1},

with ``g^{-T} = (G_i^{-T})_i``. For an orthogonal ``Q``, ``A_Q`` is an isometry, so the gradient norm
and the Hessian spectrum are the same at ``Q . y`` and ``y``; with the polar decomposition
``G_i = Q_i P_i`` (``Q_i`` orthogonal, ``P_i = (G_i^T G_i)^{1/2}`` SPD) every objective here takes
the same value at ``g . x = Q . (P . x)`` and ``P . x``. Teleporting over GL is therefore teleporting
over products of SPD matrices, and over the orthogonal group it is the identity. The order of the
factors matters: with ``G_i = P_i Q_i`` the orthogonal factor acts first, ``g . x = P . (Q . x)``,
and does change both objectives.

Differentiating along a one-parameter subgroup ``exp(t xi) . y`` (``xi`` in the Lie algebra) with
the identities above gives both orbit gradients in closed form through the moment map
``mu(z)_j = z_j z_j^T - z_{j+1}^T z_{j+1}`` (:func:`quotient.symmetry.moment_map`):

    d/dt ||grad L||^2 = -2 <xi, mu(grad L(y))>,      d/dt lambda_max = -2 lambda_max <xi, mu(v)>,

``v`` the unit top eigenvector of ``Hess L(y)`` (for a simple ``lambda_max``). The first agrees with
``2 <Hess L grad L, d/dt (exp(t xi) . y)>`` and the second with the third-derivative contraction
``D^3 L(y)[v, v, d/dt (exp(t xi) . y)]``; tests/test_teleport.py checks both and finite differences.
Neither needs a third derivative of the loss, and both hold for every loss of the end-to-end map.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._numerics import as_generator, squared_norm
from .classification import is_critical
from .groups import GeneralLinear, Orthogonal, Rescaling, as_group
from .minimum import sharpest_direction
from .network import as_point, check_count, check_positive, check_widths, from_vector, widths_of
from .problem import Problem
from .symmetry import act, moment_map, random_orthogonal

__all__ = [
    "OBJECTIVES",
    "TELEPORT_GROUPS",
    "Teleportation",
    "teleport",
    "orbit_gradient",
    "objective_value",
    "random_element",
]

OBJECTIVES = ("gradient_norm", "sharpness")
"""Objectives :func:`teleport` optimises: ``||grad L||_F`` and ``lambda_max(Hess L)``."""

TELEPORT_GROUPS = ("gl", "rescaling")
"""Groups :func:`teleport` moves by (the orthogonal group leaves both objectives unchanged)."""

_DEFAULT_MAXIMIZE = {"gradient_norm": True, "sharpness": False}

# Beyond |lambda| / size = 30 the map lambda -> size tanh(lambda / size) equals size to double
# precision, and cosh would overflow for far larger arguments.
_SATURATION = 30.0


@dataclass(frozen=True, eq=False)
class Teleportation:
    """Result of :func:`teleport`.

    Parameters
    ----------
    point : tuple of ndarray
        The teleported point ``g . x``, layers of the input's shapes.
    g : tuple of ndarray
        The group element ``(P_1, ..., P_{h-1})``: SPD matrices (``group="gl"``) or positive
        diagonal ones (``"rescaling"``) with ``||log P_i||_2 < size``; ``point = act(x, g)``.
    objective : str
        ``"gradient_norm"`` or ``"sharpness"``.
    maximize : bool
        Whether the objective was maximised.
    before, after : float
        The objective at ``x`` and at ``g . x``.
    loss_before, loss_after : float
        The loss at ``x`` and at ``g . x`` (equal up to the rounding of the action).
    iterations : int
        Iterations of the optimiser (0 when nothing was optimised).
    message : str
        Why the optimiser stopped, or why nothing was optimised.
    """

    point: tuple
    g: tuple
    objective: str
    maximize: bool
    before: float
    after: float
    loss_before: float
    loss_after: float
    iterations: int
    message: str

    def __post_init__(self):
        for array in (*self.point, *self.g):
            array.flags.writeable = False


# ---------------------------------------------------------------------------------- objectives
def _check_objective(objective) -> str:
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")
    return objective


def objective_value(problem, point, objective: str) -> float:
    """The teleportation objective at ``point``.

    Parameters
    ----------
    problem : Problem
        The loss ``L`` whose gradient norm or sharpness is the objective.
    point : tuple of ndarray
        ``(W_1, ..., W_h)``.
    objective : {"gradient_norm", "sharpness"}
        ``||grad L(point)||_F`` (all layers together) or ``lambda_max(Hess L(point))``, the
        latter by :func:`quotient.sharpest_direction`.

    Returns
    -------
    float
    """
    objective = _check_objective(objective)
    point = as_point(point, "point", widths=problem.widths)
    if objective == "gradient_norm":
        return float(np.sqrt(squared_norm(problem.gradient(point))))
    return sharpest_direction(problem, point)[0]


def _objective_and_orbit_gradient(problem, point, objective):
    """``phi(point)`` and ``Psi`` with ``d/dt phi(exp(t xi) . point) = sum_j <xi_j, Psi_j>``.

    ``phi`` is ``||grad L||^2`` for the gradient norm (smooth where the norm is not) and
    ``lambda_max`` for the sharpness.
    """
    if objective == "gradient_norm":
        gradient = problem.gradient(point)
        value = float(squared_norm(gradient))
        return value, tuple(-2.0 * M for M in moment_map(gradient))
    value, vector = sharpest_direction(problem, point)
    return value, tuple(-2.0 * value * M for M in moment_map(from_vector(vector, problem.widths)))


def orbit_gradient(problem, point, objective: str) -> tuple[np.ndarray, ...]:
    """Gradient of the objective along the GL orbit, as an element of the Lie algebra.

    Parameters
    ----------
    problem : Problem
        The loss ``L`` whose gradient norm or sharpness is the objective.
    point : tuple of ndarray
        ``y = (W_1, ..., W_h)``.
    objective : {"gradient_norm", "sharpness"}

    Returns
    -------
    tuple of ndarray
        ``Psi = (Psi_1, ..., Psi_{h-1})``, symmetric ``(d_i, d_i)`` arrays with
        ``d/dt phi(exp(t xi) . y) |_{t=0} = sum_j <xi_j, Psi_j>`` for every ``xi`` in
        ``gl(d_1) x ... x gl(d_{h-1})``, where ``phi = ||grad L||_F^2`` for ``"gradient_norm"``
        (the square, which is smooth) and ``phi = lambda_max`` for ``"sharpness"``.

    Notes
    -----
    ``Psi = -2 mu(grad L(y))`` and ``Psi = -2 lambda_max mu(v)`` respectively, with ``mu`` the
    moment map and ``v`` a unit top eigenvector of the Hessian (module docstring). ``Psi`` is
    symmetric, so skew ``xi`` (the orthogonal directions) do not change either objective. For the
    sharpness the formula is the derivative of a simple top eigenvalue; where ``lambda_max`` is
    multiple it is the derivative along the eigenvector returned (a one-sided derivative).
    """
    objective = _check_objective(objective)
    point = as_point(point, "point", widths=problem.widths)
    return _objective_and_orbit_gradient(problem, point, objective)[1]


# ---------------------------------------------------------------------------------- parametrisation
def _squash(eigenvalues, size):
    """``f(lambda) = exp(size tanh(lambda / size))`` and ``f'(lambda) / f(lambda)``."""
    x = np.clip(eigenvalues / size, -_SATURATION, _SATURATION)
    return np.exp(size * np.tanh(x)), 1.0 / np.cosh(x) ** 2


def _divided_differences(eigenvalues, size):
    """``Gamma_ij = (f(l_i) - f(l_j)) / (l_i - l_j)``, ``f'(l_i)`` on ties (Daleckii-Krein).

    For close eigenvalues ``f(l_i) - f(l_j) = f(l_j) expm1(size (tanh a_i - tanh a_j))`` with
    ``a = l / size`` and ``tanh a_i - tanh a_j = sinh((l_i - l_j) / size) / (cosh a_i cosh a_j)``:
    no cancellation. The difference ``l_i - l_j`` enters only as computed, so a near-tie from
    ``eigh`` gives the derivative, not a ratio of two rounding errors.
    """
    f, ratio = _squash(eigenvalues, size)
    x = np.clip(eigenvalues / size, -_SATURATION, _SATURATION)
    difference = np.subtract.outer(eigenvalues, eigenvalues)
    close = np.abs(difference) < 1e-2 * size
    gap = np.where(close, difference, 0.0) / size
    stable = f[None, :] * np.expm1(size * np.sinh(gap) / np.outer(np.cosh(x), np.cosh(x)))
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where(close, stable, np.subtract.outer(f, f)) / difference
    ties = difference == 0
    gamma[ties] = np.broadcast_to(f * ratio, difference.shape)[ties]
    return gamma


def _element(coordinates, group, size):
    """``P_i = f(A_i)`` (spectral function of a symmetric ``A_i``) or ``diag(f(a_i))``."""
    if group == "rescaling":
        return tuple(np.diag(_squash(a, size)[0]) for a in coordinates)
    factors = []
    for A in coordinates:
        eigenvalues, U = np.linalg.eigh(0.5 * (A + A.T))
        P = (U * _squash(eigenvalues, size)[0]) @ U.T
        factors.append(0.5 * (P + P.T))
    return tuple(factors)


def _cost_and_gradient(problem, point, objective, sign, scale, coordinates, group, size):
    """``sign phi(P(A) . x) / scale`` and its Euclidean gradient in the coordinates ``A``."""
    P = _element(coordinates, group, size)
    value, psi = _objective_and_orbit_gradient(problem, act(point, P, group=group), objective)
    gradient = []
    for A, Pi, Psi in zip(coordinates, P, psi):
        if group == "rescaling":  # xi = dP P^{-1} = diag(f'/f) da
            gradient.append(np.diag(Psi) * _squash(A, size)[1])
            continue
        # d phi = <dP P^{-1}, Psi> = <dP, sym(Psi P^{-1})>, and dP = U (Gamma o (U^T dA U)) U^T is
        # self-adjoint in dA.
        eigenvalues, U = np.linalg.eigh(0.5 * (A + A.T))
        M = np.linalg.solve(Pi, Psi).T  # Psi P^{-1} (P, Psi symmetric)
        M = 0.5 * (M + M.T)
        gradient.append(U @ (_divided_differences(eigenvalues, size) * (U.T @ M @ U)) @ U.T)
    return sign * value / scale, [sign * G / scale for G in gradient]


# ---------------------------------------------------------------------------------- random elements
def random_element(widths, size: float, *, group="gl", rng=None) -> tuple[np.ndarray, ...]:
    """Random group element of size at most ``size`` (as in :func:`teleport`).

    ``G_i = Q_i diag(exp(size u)) Q_i'`` with ``Q_i, Q_i'`` Haar orthogonal and ``u`` uniform on
    ``[-1, 1]^{d_i}`` (``group="gl"``), or ``G_i = diag(exp(size u))`` (``"rescaling"``): every
    singular value of ``G_i`` lies in ``[e^{-size}, e^{size}]``.
    """
    size = check_positive("size", size)
    widths = check_widths(widths)
    group = _check_group(group, widths)
    generator = as_generator(rng)
    hidden = tuple(widths[1:-1])
    scales = [np.exp(size * generator.uniform(-1.0, 1.0, d)) for d in hidden]
    if group == "rescaling":
        return tuple(np.diag(s) for s in scales)
    left, right = random_orthogonal(widths, generator), random_orthogonal(widths, generator)
    return tuple((Q * s) @ R for Q, s, R in zip(left, scales, right))


def _check_group(group, widths) -> str:
    """The shorthand of a group :func:`teleport` moves by, from a name or a group object."""
    group = as_group(group, widths)
    if isinstance(group, Orthogonal):
        raise ValueError(
            "group='orthogonal' cannot teleport: orthogonal elements act by isometries, so the gradient "
            "norm and the Hessian spectrum are the same on the whole orthogonal orbit; use 'gl' or 'rescaling'"
        )
    if not isinstance(group, (GeneralLinear, Rescaling)):
        raise ValueError(f"group must be one of {TELEPORT_GROUPS} (or GeneralLinear, Rescaling); got {group!r}")
    return "rescaling" if isinstance(group, Rescaling) else "gl"


# ---------------------------------------------------------------------------------- teleport
def teleport(
    problem,
    point,
    objective: str,
    group="gl",
    *,
    maximize: bool | None = None,
    size: float = 1.0,
    max_iterations: int = 200,
    rtol: float = 1e-8,
) -> Teleportation:
    """Move ``point`` along its group orbit to optimise the gradient norm or the sharpness.

    Parameters
    ----------
    problem : Problem
        The loss ``L`` whose gradient norm or sharpness is the objective.
    point : tuple of ndarray
        ``x = (W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    objective : {"gradient_norm", "sharpness"}
        ``||grad L(g . x)||_F`` or ``lambda_max(Hess L(g . x))`` (:func:`objective_value`).
    group : {"gl", "rescaling"} or GeneralLinear or Rescaling
        Move by ``GL(d_1) x ... x GL(d_{h-1})`` or by positive diagonal rescalings (a shorthand or
        a group object, :func:`quotient.as_group`). The orthogonal group raises: both objectives
        are constant on its orbits.
    maximize : bool, optional
        Maximise (True) or minimise (False). Default: maximise the gradient norm (Zhao et al.:
        faster descent), minimise the sharpness (the flattest point of the orbit).
    size : float
        Bound on the group element: ``g = (P_1, ..., P_{h-1})`` with ``P_i`` SPD (positive diagonal
        for rescalings) and ``||log P_i||_2 < size``, i.e. every eigenvalue of ``P_i`` in
        ``(e^{-size}, e^{size})`` and ``cond(P_i) < e^{2 size}``. Equivalently, for GL: every
        ``G_i = Q_i P_i`` whose singular values lie in that interval, since the orthogonal factor
        changes neither objective. The bound is needed: away from critical points the gradient
        norm is unbounded on the orbit (``grad L(g . x) = g^{-T} . grad L(x)`` grows without bound as
        ``g`` degenerates), and so is the sharpness, even at a global minimum (explore's problem,
        4-8-8-4: from 25.6 at the balanced minimum to 474 within size 1, 2.5e4 within size 2).
    max_iterations : int
        Iterations of pymanopt's conjugate gradient method.
    rtol : float
        Stop when the gradient of the normalised cost ``phi / phi(x)`` is below ``rtol`` (relative:
        the cost is divided by its value at the start).

    Returns
    -------
    Teleportation
        ``point = act(x, g)``, ``g``, the objective and the loss before and after. The objective
        is at least its value at ``x`` (the optimiser starts from the identity and only keeps
        descent steps).

    Notes
    -----
    The optimisation runs over products of SPD matrices written as ``P_i = f(A_i)``, a spectral
    function of a free symmetric ``A_i`` with ``f(lambda) = exp(size tanh(lambda / size))``: a
    diffeomorphism from symmetric matrices onto the open set of SPD matrices of size below
    ``size``, so the bounded problem is an unconstrained one on a Euclidean space (pymanopt
    ``Product`` of ``Symmetric``, or of ``Euclidean`` diagonals for rescalings, conjugate
    gradients). Its Euclidean gradient is exact: the orbit gradient ``Psi`` of
    :func:`orbit_gradient` gives ``d phi = <dP_i P_i^{-1}, Psi_i>`` and the Daleckii-Krein formula
    ``dP = U (Gamma o (U^T dA U)) U^T`` (``Gamma`` the divided differences of ``f`` at the
    eigenvalues of ``A``) carries it to ``A``. The optimum of a maximised gradient norm usually lies
    on the boundary of the bounded set, which ``f`` reaches only asymptotically.

    At a critical point the gradient vanishes on the whole orbit (``grad L(g . x) = g^{-T} . 0``), so
    for ``"gradient_norm"`` nothing is optimised: where :func:`quotient.is_critical` holds (default
    tolerance, a GL-invariant test) ``g`` is the identity and ``message`` says why. Maximising the
    rounding-level gradient left at a critical point in floating point would only amplify noise.
    The same holds without hidden layers (``h = 1``, trivial group). For ``"sharpness"`` the
    derivative is that of a simple top eigenvalue; where ``lambda_max`` is multiple (typical at
    the minimiser of the sharpness over an orbit) the method stalls near the kink.

    The loss is unchanged up to rounding: storing a point in floating point (relative errors
    ``eps`` in its layers) already moves the loss by up to ``eps ||R||_F sum_i ||W_{>i}||_2
    ||W_i||_F ||W_{<i}||_2`` (``R`` the residual), which is below ``1e-12 L`` at well-conditioned
    points but not at badly conditioned ones; tests/test_teleport.py measured relative changes of
    at most ``4e-15`` from well-conditioned starts and ``3e-8`` (below that bound, for both
    points, by 15x) from starts moved by GL elements of condition ``1e4``.

    References
    ----------
    B. Zhao, N. Dehmamy, R. Walters, R. Yu, "Symmetry Teleportation for Accelerated
    Optimization", NeurIPS 2022.

    Raises
    ------
    ValueError
        If ``objective`` or ``group`` is unknown (or a group object built for other widths),
        ``size`` is not a positive finite number,
        ``point`` does not have the problem's widths, or the objective at ``x`` is not finite.
    TypeError
        If ``problem`` is not a :class:`quotient.Problem`, ``group`` is neither a name nor a group
        object, ``maximize`` is not a bool or None, or ``size`` is not a real number.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    objective = _check_objective(objective)
    group = _check_group(group, problem.widths)
    size = check_positive("size", size)
    if maximize is None:
        maximize = _DEFAULT_MAXIMIZE[objective]
    if not isinstance(maximize, (bool, np.bool_)):
        raise TypeError(f"maximize must be a bool or None; got {type(maximize).__name__}")
    max_iterations = check_count("max_iterations", max_iterations, 0)
    rtol = check_positive("rtol", rtol)
    point = as_point(point, "point", widths=problem.widths)
    widths = widths_of(point)
    hidden = widths[1:-1]
    identity = tuple(np.eye(d) for d in hidden)
    loss = problem.loss(point)
    start_value, _ = _objective_and_orbit_gradient(problem, point, objective)
    if not np.isfinite(start_value):
        raise ValueError(f"the objective {objective} is not finite at point ({start_value})")

    def result(g, iterations, message):
        moved = act(point, g, group=group) if g else tuple(W.copy() for W in point)
        return Teleportation(
            moved,
            tuple(np.array(G) for G in g),
            objective,
            bool(maximize),
            objective_value(problem, point, objective),
            objective_value(problem, moved, objective),
            loss,
            problem.loss(moved),
            iterations,
            message,
        )

    if not hidden:
        return result(identity, 0, "no hidden layers: the group is trivial")
    if objective == "gradient_norm" and is_critical(problem, point):
        return result(identity, 0, "point is critical: the gradient vanishes on its whole orbit, nothing to optimise")
    g, iterations, message = _optimise(
        problem, point, objective, group, size, bool(maximize), start_value, max_iterations, rtol
    )
    return result(g, iterations, message)


def _optimise(problem, point, objective, group, size, maximize, start_value, max_iterations, rtol):
    import pymanopt
    from pymanopt.manifolds import Euclidean, Product, Symmetric
    from pymanopt.optimizers import ConjugateGradient

    hidden = widths_of(point)[1:-1]
    factors = [Euclidean(d) if group == "rescaling" else Symmetric(d) for d in hidden]
    manifold = Product(factors)
    backend = pymanopt.function.numpy(manifold)
    sign = -1.0 if maximize else 1.0
    scale = abs(start_value) if start_value != 0 else 1.0
    cache = {}

    def evaluate(coordinates):
        key = tuple(c.tobytes() for c in coordinates)
        if key not in cache:
            cache.clear()
            cache[key] = _cost_and_gradient(problem, point, objective, sign, scale, coordinates, group, size)
        return cache[key]

    @backend
    def cost(*coordinates):
        return evaluate(coordinates)[0]

    @backend
    def gradient(*coordinates):
        return evaluate(coordinates)[1]

    start = [np.zeros(d) if group == "rescaling" else np.zeros((d, d)) for d in hidden]
    problem_ = pymanopt.Problem(manifold, cost, euclidean_gradient=gradient)
    optimizer = ConjugateGradient(verbosity=0, max_iterations=max_iterations, min_gradient_norm=rtol)
    # Hestenes-Stiefel's beta divides by a vanishing inner product once converged; pymanopt then
    # restarts along the gradient, and the step is still a descent step.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        run = optimizer.run(problem_, initial_point=start) if max_iterations else None
    if run is None:
        return tuple(np.eye(d) for d in hidden), 0, "max_iterations = 0: nothing optimised"
    coordinates = list(run.point)
    # The line search only accepts decreasing steps, but keep the identity if rounding says otherwise.
    if evaluate(coordinates)[0] > sign * start_value / scale:
        return tuple(np.eye(d) for d in hidden), run.iterations, run.stopping_criterion
    return _element(coordinates, group, size), run.iterations, run.stopping_criterion
