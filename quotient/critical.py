"""Critical values and critical points of the loss: enumeration, representatives, classification.

At a critical point the end-to-end map is ``W = Sigma_S`` for a set ``S`` of learned modes and the
loss is ``L_S = 1/2 sum_{i not in S} sigma_i^2`` (math.md section 4). This module lists the
critical values (:func:`critical_values`), builds the balanced canonical point of each
(:func:`canonical_point`), decides what kind of critical point a point is from rank conditions on
partial products (:func:`classify`) and, independently, from the Hessian
(:func:`hessian_inertia`), and joins the critical values into the graph of heteroclinic
connections the flow runs along (:func:`quotient.graph.critical_graph`).

Modes are numbered from 1, in the order of ``problem.sigma`` (mode 1 carries the largest singular
value), as in the literature and in math.md. Points are in the problem's singular frame.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from .network import _squared_norm, as_point, backward_products, end_to_end, forward_products, from_vector, to_vector

__all__ = [
    "CLASSES",
    "DENSE_LIMIT",
    "ZERO_EIGENVALUE_RTOL",
    "CriticalValue",
    "Inertia",
    "canonical_point",
    "classify",
    "critical_values",
    "global_minimum",
    "minimum_threshold",
    "hessian_inertia",
    "hessian_operator",
    "is_critical",
    "learned_modes",
    "well_conditioned",
    "zero_eigenvalue_threshold",
]

CLASSES = ("global_minimum", "strict_saddle", "nonstrict_saddle", "not_critical")
"""The answers of :func:`classify`."""


def _require_square(problem) -> None:
    """Critical values, fibers and the classification are those of the square loss."""
    if getattr(problem, "sigma", None) is None:
        raise ValueError(
            f"{problem!r} has a general loss of the end-to-end map; critical values, canonical points, "
            "the classification and fibers need the square loss with a target Sigma "
            "(Problem.from_sigma or Problem.from_data)"
        )


@dataclass(frozen=True)
class CriticalValue:
    """One critical value of the loss and the learned modes that produce it.

    Attributes
    ----------
    value : float
        ``L_S = 1/2 sum_{i not in S} sigma_i^2``.
    learned : tuple of int
        The canonical learned set ``S`` (1-based mode numbers, increasing): among all sets with
        this value, the one that learns the largest singular values first (lexicographically
        smallest).
    alternatives : tuple of tuple of int
        Every learned set with this value (``learned`` included). More than one when singular
        values tie or sums of squares coincide; the fiber of the value is then the union of
        the critical sets of all of them.
    """

    value: float
    learned: tuple[int, ...]
    alternatives: tuple[tuple[int, ...], ...] = ()

    def __str__(self) -> str:
        modes = ",".join(str(i) for i in self.learned)
        return f"L = {self.value:.6g} (learned {{{modes}}})"


def critical_values(problem, *, rtol: float = 1e-12) -> list[CriticalValue]:
    """Every critical value of the loss, each once, in increasing order.

    Parameters
    ----------
    problem : Problem
        A square-loss problem.
    rtol : float
        Values closer than ``rtol * max(1, L_{})`` count as one value.

    Returns
    -------
    list of CriticalValue

    Notes
    -----
    At a critical point ``W = Sigma_S`` for a set ``S`` of learned modes with ``|S| <= r``,
    ``r = min(d_0, ..., d_h)``, and the critical value is ``L_S = 1/2 sum_{i not in S} sigma_i^2``;
    every such ``S`` is attained (math.md section 4). Ties are grouped:

    * a zero singular value cannot be learned (learning it does not change ``W``), so only modes
      with ``sigma_i > 0`` enter ``S``;
    * repeated singular values give several sets with one value (``sigma = (2, 2, 1)``:
      ``{1}`` and ``{2}``); the critical set of that value is then a union over
      ``alternatives`` (and, for a repeated value, a continuum of rotated ``Sigma_S``);
    * distinct sets whose unlearned squares sum to the same number share a value too.

    With one layer (``h = 1``) the loss is convex and ``W_1 = Sigma`` is its only critical point,
    so the list holds the global minimum alone.
    """
    _require_square(problem)
    sigma = np.asarray(problem.sigma)
    learnable = [i + 1 for i in range(sigma.size) if sigma[i] > 0]
    total = 0.5 * float(np.sum(sigma**2))
    tolerance = rtol * max(1.0, total)
    entries = []
    sizes = range(min(problem.rank_bound, len(learnable)) + 1)
    if problem.depth == 1:
        sizes = [len(learnable)]  # r = min(d_0, d_1) = m: every learnable mode
    for size in sizes:
        for subset in itertools.combinations(learnable, size):
            value = total - 0.5 * float(sum(sigma[i - 1] ** 2 for i in subset))
            entries.append((max(value, 0.0), subset))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    grouped: list[list] = []
    for value, subset in entries:
        if grouped and value - grouped[-1][0] <= tolerance:
            grouped[-1][1].append(subset)
        else:
            grouped.append([value, [subset]])
    result = []
    for value, subsets in grouped:
        result.append(CriticalValue(value, min(subsets), tuple(sorted(subsets))))
    return result


# ---------------------------------------------------------------------------------------- learned sets
def _learned_set(problem, learned, name: str = "learned") -> tuple[int, ...]:
    """Validate a set of learned modes (1-based) and return it sorted."""
    _require_square(problem)
    if isinstance(learned, CriticalValue):
        learned = learned.learned
    if isinstance(learned, (str, bytes)) or not hasattr(learned, "__iter__"):
        raise TypeError(f"{name} must be a sequence of 1-based mode numbers like (1, 3); got {learned!r}")
    modes = tuple(learned)
    for i in modes:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"{name} must hold integer mode numbers (1 = largest singular value); got {i!r} in {modes!r}")
    sigma = np.asarray(problem.sigma)
    m, r = sigma.size, problem.rank_bound
    for i in modes:
        if not 1 <= i <= m:
            raise ValueError(
                f"{name}: mode {i} is out of range; modes are numbered 1..m = 1..{m} "
                f"(m = min(d_0, d_h), mode 1 carries the largest singular value)"
            )
    if len(set(modes)) != len(modes):
        raise ValueError(f"{name} repeats a mode: {modes!r}")
    for i in modes:
        if sigma[i - 1] == 0:
            raise ValueError(f"{name}: mode {i} has singular value 0 and cannot be learned (learning it leaves W unchanged)")
    if len(modes) > r:
        raise ValueError(
            f"{name} has {len(modes)} modes, but the narrowest width r = min(widths) = {r} of widths "
            f"{problem.widths} lets the end-to-end map have rank at most {r}"
        )
    if problem.depth == 1 and len(modes) != int(np.count_nonzero(sigma)):
        raise ValueError(
            f"{name} = {modes!r} is not critical with one layer: the loss is convex and its only critical "
            f"point is W_1 = Sigma, which learns every mode with sigma > 0"
        )
    return tuple(int(i) for i in sorted(modes))


def _critical_value_of(problem, learned) -> CriticalValue:
    """The :class:`CriticalValue` whose alternatives hold the (validated) learned set."""
    learned = _learned_set(problem, learned)
    for value in critical_values(problem):
        if learned in value.alternatives:
            return value
    raise AssertionError(f"learned set {learned} missing from critical_values")  # pragma: no cover


def canonical_point(problem, learned):
    """The balanced canonical critical point that learns the modes in ``learned``.

    Parameters
    ----------
    problem : Problem
    learned : sequence of int or CriticalValue
        The learned set ``S = {j_1 < ... < j_e}``, 1-based mode numbers (mode 1 carries the largest
        singular value); a :class:`CriticalValue` stands for its ``learned`` set.

    Returns
    -------
    tuple of ndarray
        ``(W_1, ..., W_h)`` with ``W_i = Q_i D_S^{1/h} Q_{i-1}^T``, ``D_S = diag(sigma_{j_1}, ...,
        sigma_{j_e})``, ``Q_0 = [f_{j_1} ... f_{j_e}]`` and ``Q_h = [e_{j_1} ... e_{j_e}]`` (the
        singular vectors of the learned modes) and ``Q_i`` the first ``e`` unit vectors of hidden
        layer ``i``: mode ``j_k`` runs through hidden unit ``k`` of every layer with strength
        ``sigma_{j_k}^{1/h}``.

    Raises
    ------
    TypeError
        If ``learned`` does not hold integers.
    ValueError
        If a mode is out of range ``1..m``, is repeated, has singular value 0, or if ``learned``
        holds more modes than the narrowest width ``r = min(d_0, ..., d_h)``.

    Notes
    -----
    The point is critical with ``W = Sigma_S`` and loss ``L_S``, balanced (``C_i = 0``) and of
    minimal norm ``||W||^2 = h sum_{j in S} sigma_j^{2/h}`` on its fiber of the end-to-end map
    (math-spec section 3.3; Arora, Cohen & Hazan 2018).
    """
    S = _learned_set(problem, learned)
    widths, h = problem.widths, problem.depth
    layers = [np.zeros((widths[i], widths[i - 1])) for i in range(1, h + 1)]
    for k, j in enumerate(S):
        strength = float(problem.sigma[j - 1]) ** (1.0 / h)
        for i, layer in enumerate(layers, start=1):
            row = j - 1 if i == h else k
            column = j - 1 if i == 1 else k
            layer[row, column] = strength
    return tuple(layers)


# ---------------------------------------------------------------------------------------- shared constants
ZERO_EIGENVALUE_RTOL = 1e-9
"""Default relative threshold for a zero Hessian eigenvalue: ``|lambda| <= 1e-9 max |lambda|``
(:func:`zero_eigenvalue_threshold`; used by :func:`hessian_inertia`, :meth:`Fiber.tangent_space`,
the saddle directions and :func:`quotient.convergence_rate`)."""

DENSE_LIMIT = 2000
"""Largest number of parameters ``N`` for which the Hessian is formed and diagonalised densely
(``N`` Hessian-vector products and an ``O(N^3)`` ``eigh``); matrix-free methods beyond."""


def _check_tolerance(value, name: str = "tol", upper: float = 1.0) -> float:
    """A tolerance must be a finite number in ``(0, upper)``: NaN or a negative one would turn
    every comparison into a wrong answer, not an error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < float(value) < upper):
        raise ValueError(f"{name} must be a finite number in (0, {upper:g}); got {value!r}")
    return float(value)


def global_minimum(problem) -> float:
    """The least critical value, the loss at every global minimum: ``1/2 sum_{i > k} sigma_i^2``.

    Parameters
    ----------
    problem : Problem
        A square-loss problem.

    Returns
    -------
    float
        ``1/2 sum_{i > k} sigma_i^2`` with ``k = min(r, #{i : sigma_i > 0})`` and
        ``r = min(d_0, ..., d_h)``: the end-to-end map learns the top ``k`` modes (Eckart-Young;
        math.md section 4). Closed form, ``O(m)``: nothing is enumerated.
    """
    sigma, k = _minimum_modes(problem)
    return 0.5 * float(np.sum(sigma[k:] ** 2))


def _minimum_modes(problem) -> tuple[np.ndarray, int]:
    """``(sigma, k)``: a global minimum learns the top ``k = min(r, #{i : sigma_i > 0})`` modes."""
    _require_square(problem)
    sigma = np.asarray(problem.sigma, dtype=float)
    return sigma, min(problem.rank_bound, int(np.count_nonzero(sigma)))


def minimum_threshold(problem) -> float:
    """Halfway from the global minimum to the next critical value: ``L_min + (L_next - L_min) / 2``.

    A loss below it is closer to the global minimum than to any other critical value (the test of
    ``gradient_flow(until="minimum")`` and of the command line's "ended on a plateau" line).

    Parameters
    ----------
    problem : Problem
        A square-loss problem.

    Returns
    -------
    float
        ``inf`` when the global minimum is the only critical value.

    Notes
    -----
    With ``T`` the top ``k`` modes learned at the global minimum (:func:`global_minimum`), every
    critical value is ``L_S = L_min + 1/2 (sum_{i in T} sigma_i^2 - sum_{i in S} sigma_i^2)``
    with ``|S| <= k``. Pairing each added mode ``j`` of ``S \\ T`` with a distinct removed mode ``i``
    of ``T \\ S`` writes the difference as a sum of terms ``sigma_i^2 - sigma_j^2 >= 0`` and
    ``sigma_i^2 >= 0``, so the least positive difference is the least positive single term:
    ``L_next - L_min = 1/2 min+ ({sigma_i^2 - sigma_j^2 : i in T, j not in T} U {sigma_i^2 : i in T})``.
    Closed form, ``O(m^2)``: nothing is enumerated.
    """
    sigma, k = _minimum_modes(problem)
    learned, rest = sigma[:k] ** 2, sigma[k:] ** 2
    terms = np.concatenate([(learned[:, None] - rest[None, :]).ravel(), learned])
    positive = terms[terms > 0]
    if positive.size == 0:
        return np.inf
    return global_minimum(problem) + 0.25 * float(positive.min())


def zero_eigenvalue_threshold(eigenvalues, *, tol: float = ZERO_EIGENVALUE_RTOL, floor: float = 0.0) -> float:
    """Below this magnitude a Hessian eigenvalue counts as zero: ``max(tol * max |lambda|, floor)``.

    Parameters
    ----------
    eigenvalues : array_like
        The eigenvalues computed (or the ones found: their largest magnitude sets the scale).
    tol : float
        Relative threshold, default :data:`ZERO_EIGENVALUE_RTOL`.
    floor : float
        Absolute rounding level of the eigenvalues (Hessians that vanish in exact arithmetic).

    Returns
    -------
    float
    """
    values = np.asarray(eigenvalues, dtype=float)
    top = float(np.max(np.abs(values), initial=0.0))
    return max(tol * top, floor)


# ---------------------------------------------------------------------------------------- numerical scales
def _layer_norms(point) -> np.ndarray:
    return np.array([np.linalg.norm(layer, 2) for layer in point])


def _target_size(problem, point, norms) -> float:
    """Size of ``grad l(W)`` and of its rounding error: ``max(||Sigma||_2, prod_l ||W_l||_2)``.

    For a general loss of the end-to-end map, ``||grad l(W)||_2`` stands for ``||Sigma||_2``.
    """
    product = float(np.prod(norms))
    if problem.sigma is not None:
        return max(float(np.max(problem.sigma, initial=0.0)), product)
    return max(float(np.linalg.norm(problem.end_to_end_loss.gradient(end_to_end(point)), 2)), product)


def _gradient_size(problem, point) -> tuple[float, float]:
    """``(||grad L||, relative size)`` of the gradient at a point, measured as given.

    The relative size is ``max_j ||grad_j L||_F / (prod_{l != j} ||W_l||_2 * max(||Sigma||_2,
    prod_l ||W_l||_2))``, the gradient measured against the size of the products it is made of
    (``grad_j = -B_j^T (Sigma - W) F_{j-1}^T``). The decisions (:func:`is_critical`) take it at a
    well-conditioned point of the orbit (:func:`well_conditioned`), where these products are
    not inflated by the symmetry.
    """
    gradient = problem.unchecked_gradient(point)
    norm = float(np.sqrt(_squared_norm(gradient)))
    norms = _layer_norms(point)
    target = _target_size(problem, point, norms)
    relative = 0.0
    for j, g in enumerate(gradient):
        size = float(np.linalg.norm(g))
        if size == 0.0:
            continue
        scale = float(np.prod(np.delete(norms, j))) * target
        relative = max(relative, size / scale if scale > 0 else np.inf)
    return norm, relative


# ---------------------------------------------------------------------------------------- orbit representative
def _geometric_mean_step(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(G, G^{-1})``, ``G = P^{1/2}`` with ``P = A^{-1} # B`` the SPD minimiser of
    ``tr(P A) + tr(P^{-1} B)``: ``P = A^{-1/2} (A^{1/2} B A^{1/2})^{1/2} A^{-1/2}``."""
    a, U = np.linalg.eigh(A)
    root = (U * np.sqrt(a)) @ U.T
    inverse_root = (U / np.sqrt(a)) @ U.T
    m, V = np.linalg.eigh(root @ B @ root)
    middle = (V * np.sqrt(np.clip(m, 0.0, None))) @ V.T
    p, W = np.linalg.eigh(inverse_root @ middle @ inverse_root)
    p = np.clip(p, np.finfo(float).tiny, None)
    return (W * np.sqrt(p)) @ W.T, (W / np.sqrt(p)) @ W.T


def _normalising_step(M: np.ndarray, scale: float, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(G, G^{-1})`` at a hidden layer next to a zero layer, ``M`` the Gram matrix of the other one.

    A zero layer stays zero on the orbit, so the two sides decouple and the Kempf-Ness step has
    nothing to balance against. Instead the non-zero neighbour's singular values on this hidden
    layer are shrunk to at most ``scale`` in one step: ``M = U diag(m) U^T``, ``G = U diag(max(
    sqrt(m) / scale, 1)) U^T``, so that ``V -> V G^{-1}`` (``M = V^T V``, ``inverse``) or ``W -> G W``
    (``M = W W^T``, ``G`` the inverse of the former). Directions below ``scale`` are left alone:
    which of them are real and which are rounding amplified by the move that made the point
    cannot be told apart here (expanding them to ``scale`` made the sweeps diverge), and the
    scalar balancing of :func:`well_conditioned` has already set the layer's overall size.
    """
    m, U = np.linalg.eigh(M)
    root = np.sqrt(np.clip(m, 0.0, None))
    factor = np.maximum(root / scale, 1.0)
    if not inverse:
        factor = 1.0 / factor
    return (U * factor) @ U.T, (U / factor) @ U.T


def well_conditioned(point, *, scale: float | None = None, mu: float = 0.3, stop: float = 1.2, max_sweeps: int = 200):
    """A well-conditioned point of the GL orbit of ``point`` and the group element that maps there.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``.
    scale : float, optional
        Typical size of a layer's non-zero singular values: parts of the network that the orbit can
        shrink to zero (see Notes) stop at about ``sqrt(mu) * scale``. Default: the balanced size
        ``(orbit_infimum / (h rank W))^{1/2}`` of the point, ``1`` when ``W = 0``.
    mu : float
        Relative regularisation of each step (see Notes), ``0 < mu < 1``.
    stop : float
        Stop after a sweep whose steps all have condition number below ``stop``.
    max_sweeps : int

    Returns
    -------
    z : tuple of ndarray
        ``g . W``, same end-to-end map, same orbit.
    g : tuple of ndarray
        ``(G_1, ..., G_{h-1})``, invertible, with ``z = act(point, g)``.

    Notes
    -----
    Block-coordinate descent on a regularised Kempf-Ness function: at each hidden layer ``i`` in
    turn, ``G`` minimises ``tr(P (A + delta I)) + tr(P^{-1} (B + delta I))`` over SPD ``P = G^T G``,
    with ``A = W_i W_i^T``, ``B = W_{i+1}^T W_{i+1}`` and ``delta = mu ((tr A + tr B) / d_i +
    scale^2)``: ``P = (A + delta I)^{-1} # (B + delta I)`` (the matrix geometric mean), and
    ``W_i -> G W_i``, ``W_{i+1} -> W_{i+1} G^{-1}``. Without ``delta`` this is the balancing of
    :func:`quotient.balance`, whose minimiser does not exist on an orbit that is not closed
    (tails, heads and internal intervals of the interval decomposition are driven to zero);
    ``delta`` bounds each step's condition number by about ``(1 + 1 / mu)^{1/2}`` and makes the
    steps on such a part nearly the identity once it is about ``sqrt(delta)`` in size, where the
    sweeps stop. The default ``mu = 0.3`` (parts stop at about half their layer's size) gave the
    fewest disagreements in ``benchmarks/classification_agreement.py --condition 1e4`` among
    ``mu`` = 1e-3, 1e-2, 0.1, 0.3 (10, 7, 2, 0 of 900). The result is a point of the same orbit (not of its closure) whose layers have
    comparable norms: a point moved by a GL element of condition number ``c`` comes back in
    ``O(log c)`` sweeps. A balanced point is a fixed point (``A = B`` gives ``G = I``). Next to
    a zero layer (which stays zero on the orbit and decouples its neighbours) the step instead
    shrinks the other neighbour's singular values on that hidden layer to at most ``scale``
    (:func:`_normalising_step`); balancing against the zero layer would shrink them without end
    and inflate the condition number of ``g`` (to ``1e12`` at ``c = 1e6``), and with it the
    rounding level :func:`_resolution` that the decisions must respect. The
    answers of the landscape that the symmetry cannot change (:func:`classify`,
    :func:`hessian_inertia`, :meth:`Fiber.contains`, :meth:`Fiber.tangent_space`, ...) are
    computed at this point.
    """
    point = as_point(point, "point")
    layers = [np.array(W, dtype=np.float64) for W in point]
    h = len(layers)
    g = [np.eye(W.shape[0]) for W in layers[:-1]]
    if h == 1:
        return tuple(layers), ()
    if scale is None:
        s = np.linalg.svd(end_to_end(layers), compute_uv=False)
        s = s[s > 1e-12 * s[0]] if s.size and s[0] > 0 else s[:0]
        scale = float(np.mean(s ** (1.0 / h))) if s.size else 1.0
    # scalar balancing first: G_i = c_i I gives every non-zero layer the same norm (the geometric
    # mean when none is zero; ``scale`` times sqrt(rank) otherwise, the layers then decouple)
    norms = np.array([np.linalg.norm(W) for W in layers])
    if np.all(norms > 0):
        targets = np.full(h, float(np.exp(np.mean(np.log(norms)))))
    else:
        targets = np.where(norms > 0, float(scale) * np.sqrt(np.maximum(1, [min(W.shape) for W in layers])), 0.0)
    c = [1.0]
    for i in range(h - 1):
        c.append(c[-1] * (targets[i] / norms[i] if norms[i] > 0 else 1.0))
    c.append(1.0)
    zero = [i for i in range(h) if norms[i] == 0]
    if zero:  # after the last zero layer the scales are free: set them from layer h backwards
        for i in range(h - 1, zero[-1], -1):
            c[i] = c[i + 1] * norms[i] / targets[i]
    for i in range(h):
        layers[i] = layers[i] * (c[i + 1] / c[i])
    g = [c[i + 1] * G for i, G in enumerate(g)]
    floor = mu * float(scale) ** 2
    for _ in range(max_sweeps):
        worst = 1.0
        for i in range(1, h):
            W, V = layers[i - 1], layers[i]
            A, B = W @ W.T, V.T @ V
            d = A.shape[0]
            if not (W.any() and V.any()):
                if W.any() or V.any():
                    G, G_inv = _normalising_step(B if not W.any() else A, float(scale), inverse=not W.any())
                    layers[i - 1], layers[i], g[i - 1] = G @ W, V @ G_inv, G @ g[i - 1]
                    worst = max(worst, float(np.linalg.norm(G, 2) * np.linalg.norm(G_inv, 2)))
                continue
            delta = mu * (np.trace(A) + np.trace(B)) / d + floor
            if not delta > 0:
                continue
            G, G_inv = _geometric_mean_step(A + delta * np.eye(d), B + delta * np.eye(d))
            layers[i - 1], layers[i], g[i - 1] = G @ W, V @ G_inv, G @ g[i - 1]
            worst = max(worst, float(np.linalg.norm(G, 2) * np.linalg.norm(G_inv, 2)))
        if worst < stop:
            break
    return tuple(layers), tuple(g)


def _orbit_point(problem, point):
    """:func:`well_conditioned` with the problem's scale ``sigma_1^{1/h}`` (the size of a
    canonical layer) for the parts of the network that the orbit can shrink."""
    sigma = getattr(problem, "sigma", None)
    scale = None
    if sigma is not None and np.size(sigma) and float(np.max(sigma)) > 0:
        scale = float(np.max(sigma)) ** (1.0 / problem.depth)
    return well_conditioned(point, scale=scale)


def _resolution(g) -> float:
    """Relative rounding level of a point that ``g`` maps to a well-conditioned one: ``eps kappa^2``.

    A point stored in floating point carries errors of ``eps`` relative to each of its layers;
    carried to ``z = g . W`` they become up to ``eps cond(G_i) cond(G_{i-1}) <= eps kappa^2``
    relative to the layers of ``z`` (first order; typically ``1e-2`` of it), ``kappa = max_i
    cond(G_i)``. Decisions relative to ``z`` (criticality, ranks, the couplings of
    :func:`classify`) cannot be finer than this, so their tolerances are raised to it. The
    point's own rounding was made by the move that produced it, which ``g`` only estimates, so
    the full first-order bound is used: a factor ``0.3`` (the largest ratio seen in a first
    sweep) was exceeded by a criticality test at ``0.73 eps kappa^2`` and by a coupling of
    ``classify`` (a canonical point of ``(3, 3, 3, 3)`` moved by condition ``1e5`` called a
    strict saddle) in ``benchmarks/landscape_invariance.py``.
    """
    kappa = max((np.linalg.cond(G) for G in g), default=1.0)
    if not np.isfinite(kappa):
        return np.inf
    return float(np.finfo(float).eps * kappa**2)


def _zero_resolution(problem, z, g) -> float:
    """Relative rounding level of the Hessian's zero eigenvalues at ``z = g . W``.

    ``min(eps kappa^2, sqrt(rho))`` with ``rho`` the relative gradient measured at ``z`` itself
    (:func:`_gradient_size`). The Hessian is evaluated at the computed ``z``, whose distance to
    the critical set the gradient there measures: a departure ``delta`` moves the zero eigenvalues
    by ``O(delta)`` and the gradient by ``O(delta)`` across the critical set, ``O(delta^2)``
    along a degenerate (cubic, ``h = 3``) escape and less for ``h > 3``, so they are of order
    ``sqrt(rho)`` at most (relative to the largest eigenvalue; measured: about ``rho``). That is
    usually far below the a-priori
    bound ``eps kappa^2`` of :func:`_resolution`, which at ``kappa ~ 2e7`` reaches ``0.1`` and would
    count true eigenvalues as zero; the smaller of the two is the threshold, so the test is
    never looser than the bound.
    """
    return min(_resolution(g), float(np.sqrt(_gradient_size(problem, z)[1])))


def _pull_back(vectors: np.ndarray, g, widths) -> np.ndarray:
    """Rows ``v`` (flat tangent vectors at ``g . W``) mapped to ``g^{-1} . v`` at ``W``.

    The action is linear in the point, ``L(g . W) = L(W)``, so ``H(W) = A^T H(g . W) A`` with
    ``A = D(g .)``; directions at ``g . W`` come back by ``A^{-1}``: ``D_i -> G_i^{-1} D_i G_{i-1}``.
    """
    layers = list(from_vector(np.atleast_2d(vectors), widths))
    h = len(layers)
    for i in range(h):
        if i < h - 1:
            layers[i] = np.linalg.inv(g[i]) @ layers[i]
        if i > 0:
            layers[i] = layers[i] @ g[i - 1]
    return to_vector(tuple(layers))


# ---------------------------------------------------------------------------------------- criticality, values
def is_critical(problem, point, *, tol: float = 1e-8) -> bool:
    """Whether ``point`` is a critical point of the loss: the one criticality test of the library.

    Parameters
    ----------
    problem : Problem
    point : tuple of ndarray
    tol : float
        ``0 < tol < 1``.

    Returns
    -------
    bool
        Whether ``max_j ||grad_j L||_F / (prod_{l != j} ||W_l||_2 max(||Sigma||_2, prod_l ||W_l||_2))
        <= max(tol, eps kappa^2)`` at ``z =`` :func:`well_conditioned` of the point
        (``||Sigma||_2`` is ``||grad l(W)||_2`` for a general loss; ``kappa`` the largest condition
        number of the ``G_i`` that map the point to ``z``: the rounding of a point given in floating
        point, carried to ``z``, which no test can resolve). Gradients are mapped by the action as
        ``grad_j(g . W) = G_j^{-T} grad_j(W) G_{j-1}^T``, so criticality is a property of the orbit;
        deciding it at a well-conditioned point keeps it one numerically.
    """
    relative, _, g = _relative_gradient(problem, point, tol)
    return relative <= max(tol, _resolution(g))


def _relative_gradient(problem, point, tol):
    """``(relative gradient, z, g)``: the gradient at ``point`` carried to ``z = g . point`` by
    ``grad_j(z) = G_j^{-T} grad_j(point) G_{j-1}^T`` and measured against the products at ``z``.

    Carrying the gradient computed at the point as given keeps its exact structure (a zero block
    stays zero), where recomputing it at the rounded ``z`` would add ``eps cond(g)^2`` of noise.
    """
    tol = _check_tolerance(tol)
    point = as_point(point, "point", widths=problem.widths)
    z, g = _orbit_point(problem, point)
    gradient = list(problem.unchecked_gradient(point))
    h = len(point)
    try:
        for j in range(h):
            if j < h - 1:
                gradient[j] = np.linalg.solve(g[j].T, gradient[j])
            if j > 0:
                gradient[j] = gradient[j] @ g[j - 1].T
    except np.linalg.LinAlgError:  # pragma: no cover - g numerically singular: recompute at z
        gradient = list(problem.unchecked_gradient(z))
    norms = _layer_norms(z)
    target = _target_size(problem, z, norms)
    relative = 0.0
    for j, grad in enumerate(gradient):
        size = float(np.linalg.norm(grad))
        if size > 0.0:
            scale = float(np.prod(np.delete(norms, j))) * target
            relative = max(relative, size / scale if scale > 0 else np.inf)
    return relative, z, g


def _require_critical(problem, point, tol: float, name: str = "point"):
    """Raise ``ValueError`` stating the gradient norm if ``point`` is not critical; return ``(z, g)``."""
    relative, z, g = _relative_gradient(problem, point, tol)
    if relative > max(tol, _resolution(g)):
        norm = float(np.sqrt(_squared_norm(problem.unchecked_gradient(point))))
        raise ValueError(
            f"{name} is not a critical point: ||grad L|| = {norm:.3e} (relative to the size of its "
            f"partial products at a well-conditioned point of its orbit {relative:.3e} > tol = {tol:g})"
        )
    return z, g


def learned_modes(problem, point) -> tuple[int, ...]:
    """The learned set ``S`` of a critical point (1-based modes), read from its end-to-end map.

    At a critical point ``W = Sigma_S`` (up to rotations within repeated singular values), so the
    singular values of ``W`` are ``sigma_j``, ``j in S``, and zeros. Singular values above half
    the smallest positive ``sigma`` count as learned and are matched to the nearest ``sigma_j``
    (ties: the smallest index, the canonical learned set). ``W`` is GL-invariant, so the answer is
    the same on the whole orbit; the threshold is fixed by ``Sigma`` alone (no layer norms).
    The point is not checked to be critical (:func:`is_critical`).
    """
    _require_square(problem)
    point = as_point(point, "point", widths=problem.widths)
    sigma = np.asarray(problem.sigma, dtype=float)
    available = [i for i in range(sigma.size) if sigma[i] > 0]
    if not available:
        return ()
    s = np.linalg.svd(end_to_end(_orbit_point(problem, point)[0]), compute_uv=False)
    chosen = []
    for value in s[s > 0.5 * sigma[available[-1]]]:
        if not available:
            break
        j = min(available, key=lambda i: (abs(sigma[i] - value), i))
        available.remove(j)
        chosen.append(j + 1)
    return tuple(sorted(chosen))


def _value_of(problem, learned) -> float:
    """``L_S = 1/2 sum_{i not in S} sigma_i^2``."""
    sigma = np.asarray(problem.sigma, dtype=float)
    mask = np.ones(sigma.size, dtype=bool)
    mask[[i - 1 for i in learned]] = False
    return 0.5 * float(np.sum(sigma[mask] ** 2))


def _same_value(problem, a: float, b: float) -> bool:
    """Critical values are equal when closer than ``1e-12 max(1, L_{})`` (as in :func:`critical_values`)."""
    return abs(a - b) <= 1e-12 * max(1.0, 0.5 * float(np.sum(np.asarray(problem.sigma) ** 2)))



# ---------------------------------------------------------------------------------------- classification
def _strict_witness(problem, point, tol: float):
    """Why a critical point that is not a global minimum is a strict saddle, or ``None``.

    Returns ``("swap", s_unlearned, s_learned)`` for condition (B) or ``("pair", k, l)`` for the
    layer pair of condition (C) of :func:`classify`.
    """
    h = len(point)
    P = end_to_end(point)
    R = problem.target - P
    norms = _layer_norms(point)
    size = max(float(np.max(problem.sigma, initial=0.0)), float(np.prod(norms)))
    learned = np.linalg.svd(P, compute_uv=False)
    learned = learned[learned > tol * size]
    unlearned = np.linalg.svd(R, compute_uv=False)
    # (B): an unlearned singular value above a learned one
    if learned.size and unlearned.size and unlearned[0] > learned[-1] + tol * size:
        return ("swap", float(unlearned[0]), float(learned[-1]))

    # (C): ranks of partial products. A singular value of a product counts as non-zero when it
    # exceeds tol times the product of its factors' spectral norms, the size of its rounding error.
    def rank(M, scale) -> int:
        if scale == 0.0:
            return 0
        return int(np.sum(np.linalg.svd(M, compute_uv=False) > tol * scale))

    F = forward_products(point)  # F[j] = W_j ... W_1, F[0] = identity
    B = backward_products(point)  # B[j] = W_h ... W_{j+1}, B[h] = identity
    rank_F = [point[0].shape[1]] + [rank(F[j], np.prod(norms[:j])) for j in range(1, h + 1)]
    rank_B = [rank(B[j], np.prod(norms[j:])) for j in range(h)] + [point[-1].shape[0]]
    norm_R = float(np.linalg.norm(R, 2))
    for k in range(1, h):
        left = R.T if k == 1 else F[k - 1] @ R.T  # F_{k-1} R^T, (d_{k-1}, d_h)
        M = None  # M_{kl} = W_{l-1} ... W_{k+1}, identity for l = k + 1
        for l in range(k + 1, h + 1):
            if l > k + 1:
                M = point[l - 2] if M is None else point[l - 2] @ M
            coupling = left if l == h else left @ B[l]  # F_{k-1} R^T B_l, (d_{k-1}, d_l)
            scale = float(np.prod(norms[: k - 1]) * norm_R * np.prod(norms[l:]))
            if np.linalg.norm(coupling, 2) <= tol * scale:
                continue
            rank_M = point[k - 1].shape[0] if M is None else rank(M, np.prod(norms[k : l - 1]))
            if rank_B[k] < rank_M or rank_F[l - 1] < rank_M:
                return ("pair", k, l)
    return None


def classify(problem, point, *, tol: float = 1e-8) -> str:
    """What kind of critical point ``point`` is, from rank conditions on partial products.

    Parameters
    ----------
    problem : Problem
    point : tuple of ndarray
        ``(W_1, ..., W_h)`` in the problem's singular frame.
    tol : float
        Relative tolerance of the three numerical decisions (see Notes).

    Returns
    -------
    str
        One of :data:`CLASSES`: ``"global_minimum"``, ``"strict_saddle"`` (the Hessian has a
        negative eigenvalue), ``"nonstrict_saddle"`` (a saddle whose Hessian is positive
        semidefinite) or ``"not_critical"``.

    Notes
    -----
    With ``W = W_h ... W_1``, ``R = Sigma - W``, ``F_j = W_j ... W_1``, ``B_j = W_h ... W_{j+1}`` and
    ``M_{kl} = W_{l-1} ... W_{k+1}`` (``= I`` for ``l = k + 1``), a critical point has
    ``W = Sigma_S`` for a learned set ``S`` and (math-spec section 3.2):

    (A) it is a global minimum iff its loss is the least critical value
        ``1/2 sum_{i > r} sigma_i^2`` (``S`` holds the top ``min(r, rank Sigma)`` modes);
    (B) if an unlearned singular value exceeds a learned one (the singular values of ``R`` against
        the non-zero ones of ``W``), it is a strict saddle at every depth: the direction
        ``D_h = e_i (W_h^T e_j)^T``, ``D_1 = (W_1 f_j) f_i^T`` has curvature
        ``2 sigma_j (sigma_j - sigma_i) < 0``;
    (C) otherwise (``S`` a top set, ``|S| < min(r, rank Sigma)``) it is a strict saddle iff some
        layers ``1 <= k < l <= h`` have

        (i)  ``F_{k-1} R^T B_l != 0`` and
        (ii) ``rk B_k < rk M_{kl}`` or ``rk F_{l-1} < rk M_{kl}``,

        and a non-strict saddle otherwise. (i) and (ii) say that an unlearned mode's input
        direction can be joined to its output direction by switching on two edges (at layers
        ``k`` and ``l``) through capacity that is not on a learned path; when three or more edges
        are needed the escape is of order three or more and the Hessian is blind to it. For
        ``h = 2`` (ii) always holds, so every saddle is strict.

    Sufficiency in (C) is proved in math-spec 3.2 (a 2x2 indefinite block); necessity is checked
    numerically: ``tests/test_critical.py`` compares this answer with the sign of the smallest
    Hessian eigenvalue (:func:`hessian_inertia`) on random critical points of every fiber of
    several architectures. Achour, Malgouyres & Gerchinovitz (JMLR 25(242), 2024) publish a
    characterisation by ranks of partial products ("tightened" pivots); their text could not be
    read for this implementation, so (C) is our statement, not a quotation.

    Numerical decisions. All three are taken at :func:`well_conditioned` of the point, a point of
    the same GL orbit whose layers have comparable norms (the answer is a property of the orbit,
    and a point moved by a badly conditioned GL element would otherwise inflate every product):

    * critical (:func:`is_critical`): ``||grad_j L||_F <= tol * prod_{l != j} ||W_l||_2 *
      max(||Sigma||_2, prod_l ||W_l||_2)`` for every layer there;
    * global minimum: the learned set read from the singular values of ``W``
      (:func:`learned_modes`, a threshold set by ``Sigma`` alone) has the value
      :func:`global_minimum`; no tolerance scales with the layer norms;
    * ranks: a singular value of a partial product counts towards its rank when it exceeds ``tol``
      times the product of the spectral norms of its factors, and ``F_{k-1} R^T B_l`` counts as
      non-zero likewise.

    The point as stored carries rounding errors which, carried to the well-conditioned point,
    are up to ``eps kappa^2`` relative (first order) (``kappa`` the largest condition number
    of the ``G_i`` that map it there); ``tol`` is raised to that level (:func:`is_critical`), so that a point of
    a fiber moved by a badly conditioned GL element is still recognised.
    ``benchmarks/landscape_invariance.py`` measures how far the answers stay invariant: they
    agree with the unmoved point for every GL element of condition number up to ``1e6`` and
    norm factor up to ``1e8`` in the benchmark's sweep (2 inertias of about 3000 points differ in
    longer seeded sweeps, see the README).

    Raises
    ------
    ValueError
        If ``tol`` is not a finite number in ``(0, 1)`` (a NaN or negative ``tol`` would give
        wrong answers, not errors).

    References
    ----------
    E. M. Achour, F. Malgouyres, S. Gerchinovitz, "The loss landscape of deep linear neural
    networks: a second-order analysis", JMLR 25(242), 2024 (arXiv 2107.13289).
    K. Kawaguchi, "Deep learning without poor local minima", NeurIPS 2016.
    """
    _require_square(problem)
    relative, z, g = _relative_gradient(problem, point, tol)
    tol = max(tol, _resolution(g))
    if relative > tol:
        return "not_critical"
    if _same_value(problem, _value_of(problem, learned_modes(problem, z)), global_minimum(problem)):
        return "global_minimum"
    return "strict_saddle" if _strict_witness(problem, z, tol) is not None else "nonstrict_saddle"


# ---------------------------------------------------------------------------------------- Hessian inertia
class Inertia(NamedTuple):
    """Numbers of negative, zero and positive eigenvalues of a symmetric matrix."""

    negative: int
    zero: int
    positive: int


def hessian_operator(problem, point, scale: float = 1.0, shift: float = 0.0) -> LinearOperator:
    """The Hessian of the loss at ``point`` as a ``LinearOperator``: ``x -> H x / scale + shift x``.

    Flat vectors (order of :func:`quotient.to_vector`), shape ``(N, N)``, one
    :meth:`Problem.hvp` per product: the one matrix-free Hessian of the library (used by
    :func:`hessian_inertia`, the saddle directions and :func:`quotient.sharpness`).
    """
    widths, n = problem.widths, problem.n_params

    def matvec(x):
        x = np.asarray(x, dtype=np.float64).reshape(n)
        return to_vector(problem.unchecked_hvp(point, from_vector(x, widths))) / scale + shift * x

    return LinearOperator((n, n), matvec=matvec, dtype=np.float64)


def _hessian_rounding(problem, point) -> float:
    """Rounding level of the Hessian's eigenvalues: ``100 N eps`` times the size of its blocks.

    Block ``(j, k)`` of the Hessian is a sum of ``B_j^T dW F_{j-1}^T``-type products (size
    ``prod_{l != j} ||W_l|| prod_{l != k} ||W_l||``) and of ``R``-weighted products (size
    ``prod_{l != j, k} ||W_l|| max(||Sigma||, prod_l ||W_l||)``); a Hessian that vanishes in exact
    arithmetic is left with eigenvalues of this order times ``eps``.
    """
    norms = _layer_norms(point)
    h = norms.size
    target = _target_size(problem, point, norms)
    size = 0.0
    for j in range(h):
        for k in range(h):
            others = float(np.prod(np.delete(norms, [j, k])))
            size = max(size, float(np.prod(np.delete(norms, j)) * np.prod(np.delete(norms, k))) + others * target * (j != k))
    return 100 * problem.n_params * np.finfo(float).eps * size


def _eigsh(operator, k: int, which: str, v0, tol: float) -> np.ndarray:
    n = operator.shape[0]
    ncv = min(n, max(2 * k + 1, k + 32))
    try:
        return eigsh(operator, k=k, which=which, v0=v0, ncv=ncv, tol=tol, return_eigenvectors=False)
    except ArpackNoConvergence as failure:  # the converged Ritz values are still exact enough
        if failure.eigenvalues.size == 0:
            raise
        return failure.eigenvalues


def _lanczos_inertia(problem, point, tol: float, floor: float, start: int = 8) -> Inertia:
    n = problem.n_params
    v0 = np.random.default_rng(0).standard_normal(n)
    operator = hessian_operator(problem, point)
    # ARPACK stops on a Krylov space that collapses at once (H v0 = 0), which happens for a
    # Hessian that vanishes in exact arithmetic: look at one product first.
    if np.linalg.norm(operator.matvec(v0)) <= floor * np.linalg.norm(v0):
        return Inertia(0, n, 0)
    largest = abs(float(_eigsh(operator, 1, "LM", v0, 1e-4)[0]))
    if largest <= floor:
        return Inertia(0, n, 0)
    tol = max(tol, floor / largest)
    # Shifted and scaled, A = H / |lambda|_max + I has its spectrum in [0, 2] and the zero
    # eigenvalues of H at 1, where ARPACK's relative convergence test is meaningful.
    operator = hessian_operator(problem, point, scale=largest, shift=1.0)
    counts = {}
    for which, side in (("SA", -1.0), ("LA", 1.0)):
        k = min(start, n - 1)
        while True:
            values = _eigsh(operator, k, which, v0, 1e-12)
            count = int(np.sum(side * (values - 1.0) > tol))
            if count < values.size:
                break
            if k == n - 1:
                raise RuntimeError(
                    f"hessian_inertia: {count} eigenvalues on one side of 0 out of N = {n}; "
                    "use method='dense'"
                )
            k = min(2 * k, n - 1)
        counts[which] = count
    return Inertia(counts["SA"], n - counts["SA"] - counts["LA"], counts["LA"])


def _sketch_inertia(problem, point, tol: float, floor: float, start: int = 64, oversampling: int = 16) -> Inertia:
    """Inertia from the range of the Hessian, found by random probing (Halko, Martinsson & Tropp 2011)."""
    n, widths = problem.n_params, problem.widths
    rng = np.random.default_rng(0)

    def apply(rows):  # H applied to each row of a (k, N) array, one batched hvp
        return to_vector(problem.unchecked_hvp(point, from_vector(rows, widths)))

    k = min(start, n)
    while True:
        probes = min(k + oversampling, n)
        sketch = apply(rng.standard_normal((probes, n)))  # rows span a random part of range(H)
        U, s, _ = np.linalg.svd(sketch.T, full_matrices=False)
        if s[0] <= floor * np.sqrt(n * probes):
            return Inertia(0, n, 0)
        rank = int(np.sum(s > 1e-3 * tol * s[0]))
        if rank <= probes - oversampling // 2 or probes == n:
            break  # fewer directions than probes: the whole range has been seen
        k = 2 * k
    basis = U[:, :rank]  # orthonormal, spans range(H), so H = B (B^T H B) B^T
    eigenvalues = np.linalg.eigvalsh(basis.T @ apply(basis.T).T)
    threshold = zero_eigenvalue_threshold(eigenvalues, tol=tol, floor=floor)
    negative = int(np.sum(eigenvalues < -threshold))
    positive = int(np.sum(eigenvalues > threshold))
    return Inertia(negative, n - negative - positive, positive)


def hessian_inertia(
    problem, point, *, tol: float = ZERO_EIGENVALUE_RTOL, method: str = "auto", dense_limit: int = DENSE_LIMIT
) -> Inertia:
    """Numbers of negative, zero and positive eigenvalues of the Hessian of the loss at a point.

    Parameters
    ----------
    problem : Problem
    point : tuple of ndarray
        Any point (usually a critical one).
    tol : float
        An eigenvalue counts as zero when ``|lambda| <= max(tol' * max |lambda|, rounding)``
        (:func:`zero_eigenvalue_threshold`), where ``tol' = max(tol, min(eps kappa^2, sqrt(rho)))``
        (the rounding of the point carried to the well-conditioned point ``z`` of its orbit, see
        :func:`is_critical`, capped by the square root of the relative gradient ``rho`` measured at
        ``z``, which bounds how far the zero eigenvalues have moved there),
        ``rounding = 100 N eps c_H`` and ``c_H`` is the size of the Hessian's blocks predicted
        from the layer norms there (see Notes). ``0 < tol < 1``.
    method : {"auto", "dense", "sketch", "lanczos"}
        ``"dense"``: every eigenvalue of :meth:`Problem.hessian` (``N`` Hessian-vector products
        and an ``O(N^3)`` ``eigvalsh``). ``"sketch"``: the range of the Hessian from batches of
        Hessian-vector products on random vectors, and the eigenvalues of the Hessian restricted
        to it. ``"lanczos"``: ARPACK (``scipy.sparse.linalg.eigsh``) on a ``LinearOperator``
        that applies :meth:`Problem.hvp`. The last two never form the matrix. ``"auto"``: dense
        when ``N <= dense_limit``, sketch otherwise.
    dense_limit : int
        Largest number of parameters ``N`` for which ``"auto"`` chooses the dense method.

    Returns
    -------
    Inertia
        ``(negative, zero, positive)``, a named tuple summing to ``N``.

    Notes
    -----
    The inertia is constant on each orbit of the hidden symmetry group: the action
    ``W -> g . W`` is linear and leaves ``L`` invariant, so the Hessians at ``W`` and ``g . W`` are
    congruent (Sylvester's law of inertia). The eigenvalues are therefore computed at
    :func:`well_conditioned` of the point, a point of its orbit with layers of comparable norms:
    at the point as given, a badly conditioned GL element would scale the Hessian's blocks by up
    to ``c^2`` and bury its small eigenvalues in the rounding of its large ones.

    Large networks. At critical points most eigenvalues are zero (the fiber's directions), so
    both matrix-free paths work with the non-zero part only, and their cost grows with the number
    ``rho`` of non-zero eigenvalues (``e (d_0 + d_h - e)`` at the canonical point of a learned set
    of size ``e``; ``r (d_0 + d_h - r)`` at a global minimum), not with ``N``.

    The sketch path applies the Hessian to ``k + 16`` random vectors (``k = 64, 128, ...``) until
    the images span fewer directions than vectors were used (numerical rank of the images by SVD,
    singular values above ``1e-3 tol`` times the largest): then they span the range of ``H``
    (with probability one), and with ``B`` an orthonormal basis of it, ``H = B (B^T H B) B^T``.
    The negative and positive counts are those of the ``rho x rho`` matrix ``B^T H B``
    (thresholds as in the dense path), and the zero count is ``N`` minus both. Exact, up to
    rounding; memory ``O(N rho)``, time ``O(N rho^2)``.

    The Lanczos path first finds ``|lambda|_max`` (one eigenvalue of largest magnitude), then
    works with ``A = H / |lambda|_max + I``. It asks ARPACK for the ``k`` smallest eigenvalues of
    ``A`` with ``k = 8, 16, 32, ...`` until one of them is ``>= 1 - tol`` (so every eigenvalue of
    ``H`` below ``-tol |lambda|_max`` has been found and counted), and likewise for the largest
    ones; the zero count is ``N`` minus both. The counts are exact when ARPACK converges. In our
    measurements it is 3 to 10 times slower than the sketch, the gap widening as ``rho`` grows
    (``benchmarks/hessian_inertia_scale.py``).

    The threshold ``tol`` must sit above the rounding level of the zero eigenvalues (about
    ``1e-15`` relative at balanced points, more at points made unbalanced by the symmetry group)
    and below the smallest non-zero one.

    The absolute floor handles Hessians that vanish in exact arithmetic (two consecutive zero
    layers, e.g. the origin for ``h >= 3``, moved by the symmetry group): their computed
    eigenvalues are pure rounding, of size ``eps c_H`` with ``c_H = max_{j,k} (prod_{l != j}
    ||W_l||_2 prod_{l != k} ||W_l||_2 + [j != k] prod_{l != j,k} ||W_l||_2 max(||Sigma||_2,
    prod_l ||W_l||_2))``, and a threshold relative to the largest of them would count noise.
    """
    point = as_point(point, "point", widths=problem.widths)
    if method not in ("auto", "dense", "lanczos", "sketch"):
        raise ValueError(f"method must be 'auto', 'dense', 'lanczos' or 'sketch'; got {method!r}")
    tol = _check_tolerance(tol)
    if isinstance(dense_limit, bool) or not isinstance(dense_limit, numbers.Integral) or dense_limit < 0:
        raise ValueError(f"dense_limit must be a non-negative integer; got {dense_limit!r}")
    n = problem.n_params
    if method == "lanczos" and n < 3:
        method = "dense"  # ARPACK needs k < N - 1
    # Sylvester: the inertia of the orbit, computed where the orbit is well conditioned
    point, g = _orbit_point(problem, point)
    tol = max(tol, _zero_resolution(problem, point, g))
    floor = _hessian_rounding(problem, point)
    if method == "dense" or (method == "auto" and n <= dense_limit):
        eigenvalues = np.linalg.eigvalsh(problem.hessian(point))
        threshold = zero_eigenvalue_threshold(eigenvalues, tol=tol, floor=floor)
        negative = int(np.sum(eigenvalues < -threshold))
        positive = int(np.sum(eigenvalues > threshold))
        return Inertia(negative, n - negative - positive, positive)
    if method == "sketch":
        return _sketch_inertia(problem, point, tol, floor)
    return _lanczos_inertia(problem, point, tol, floor)
