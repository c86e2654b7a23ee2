"""The Hessian of the loss at a point: matrix-free operator, zero threshold and inertia.

:func:`hessian_operator` is the one matrix-free Hessian of the library (one Hessian-vector
product per application); :func:`hessian_inertia` counts its negative, zero and positive
eigenvalues by one of three algorithms (dense, a randomised range sketch, Lanczos), at the
well-conditioned point of the orbit, with the zero threshold of :func:`zero_eigenvalue_threshold`
raised to the rounding level of the move there (:func:`zero_resolution`).
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

from ._numerics import check_tolerance, layer_norms
from .classification import gradient_size, orbit_point, orbit_resolution, target_size
from .network import as_point, from_vector, to_vector

__all__ = [
    "DENSE_LIMIT",
    "ZERO_EIGENVALUE_RTOL",
    "Inertia",
    "hessian_inertia",
    "hessian_operator",
    "zero_eigenvalue_threshold",
    "zero_resolution",
]


ZERO_EIGENVALUE_RTOL = 1e-9
"""Default relative threshold for a zero Hessian eigenvalue: ``|lambda| <= 1e-9 max |lambda|``
(:func:`zero_eigenvalue_threshold`; used by :func:`hessian_inertia`, :meth:`Fiber.tangent_space`,
the saddle directions and :func:`quotient.convergence_rate`)."""


DENSE_LIMIT = 2000
"""Largest number of parameters ``N`` for which the Hessian is formed and diagonalised densely
(``N`` Hessian-vector products and an ``O(N^3)`` ``eigh``); matrix-free methods beyond."""


def zero_eigenvalue_threshold(eigenvalues, *, rtol: float = ZERO_EIGENVALUE_RTOL, floor: float = 0.0) -> float:
    """Below this magnitude a Hessian eigenvalue counts as zero: ``max(rtol * max |lambda|, floor)``.

    Parameters
    ----------
    eigenvalues : array_like
        The eigenvalues computed (or the ones found: their largest magnitude sets the scale).
    rtol : float
        Relative threshold, default :data:`ZERO_EIGENVALUE_RTOL`.
    floor : float
        Absolute rounding level of the eigenvalues (Hessians that vanish in exact arithmetic).

    Returns
    -------
    float
    """
    values = np.asarray(eigenvalues, dtype=float)
    top = float(np.max(np.abs(values), initial=0.0))
    return max(rtol * top, floor)


def zero_resolution(problem, z, g) -> float:
    """Relative rounding level of the Hessian's zero eigenvalues at ``z = g . W``.

    ``min(eps kappa^2, sqrt(rho))`` with ``rho`` the relative gradient measured at ``z`` itself
    (:func:`gradient_size`). The Hessian is evaluated at the computed ``z``, whose distance to
    the critical set the gradient there measures: a departure ``delta`` moves the zero eigenvalues
    by ``O(delta)`` and the gradient by ``O(delta)`` across the critical set, ``O(delta^2)``
    along a degenerate (cubic, ``h = 3``) escape and less for ``h > 3``, so they are of order
    ``sqrt(rho)`` at most (relative to the largest eigenvalue; measured: about ``rho``). That is
    usually far below the a-priori
    bound ``eps kappa^2`` of :func:`orbit_resolution`, which at ``kappa ~ 2e7`` reaches ``0.1`` and would
    count true eigenvalues as zero; the smaller of the two is the threshold, so the test is
    never looser than the bound.

    Parameters
    ----------
    problem : Problem
        The learning problem (square loss or a general loss of the end-to-end map).
    z : tuple of ndarray
        The well-conditioned point ``g . W`` of the orbit (:func:`quotient.classification.orbit_point`).
    g : sequence of ndarray
        ``(G_1, ..., G_{h-1})`` that maps the given point to ``z``.

    Returns
    -------
    float
        ``min(eps kappa^2, sqrt(rho))``, a relative threshold for the zero eigenvalues at ``z``.
    """
    return min(orbit_resolution(g), float(np.sqrt(gradient_size(problem, z)[1])))


class Inertia(NamedTuple):
    """Numbers of negative, zero and positive eigenvalues of a symmetric matrix.

    Parameters
    ----------
    negative : int
        Number of eigenvalues below ``-threshold`` (the Morse index at a critical point).
    zero : int
        Number of eigenvalues within ``threshold`` of zero (:func:`zero_eigenvalue_threshold`).
    positive : int
        Number of eigenvalues above ``threshold``.
    """

    negative: int
    zero: int
    positive: int


def hessian_operator(problem, point, scale: float = 1.0, shift: float = 0.0) -> LinearOperator:
    """The Hessian of the loss at ``point`` as a ``LinearOperator``: ``x -> H x / scale + shift x``.

    Flat vectors (order of :func:`quotient.to_vector`), shape ``(N, N)``, one
    :meth:`Problem.hvp` per product: the one matrix-free Hessian of the library (used by
    :func:`hessian_inertia`, the saddle directions and :func:`quotient.sharpness`).

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, where the Hessian is taken;
        trusted (not validated).
    scale : float
        Divides every product (``H / scale``), e.g. to normalise the spectrum for ARPACK.
    shift : float
        Added multiple of the identity (``+ shift I``), e.g. to move the spectrum for ARPACK.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator
        Symmetric, shape ``(N, N)`` with ``N = problem.n_params``, ``float64``.
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
    norms = layer_norms(point)
    h = norms.size
    target = target_size(problem, point, norms)
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


def _lanczos_inertia(problem, point, rtol: float, floor: float, start: int = 8) -> Inertia:
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
    rtol = max(rtol, floor / largest)
    # Shifted and scaled, A = H / |lambda|_max + I has its spectrum in [0, 2] and the zero
    # eigenvalues of H at 1, where ARPACK's relative convergence test is meaningful.
    operator = hessian_operator(problem, point, scale=largest, shift=1.0)
    counts = {}
    for which, side in (("SA", -1.0), ("LA", 1.0)):
        k = min(start, n - 1)
        while True:
            values = _eigsh(operator, k, which, v0, 1e-12)
            count = int(np.sum(side * (values - 1.0) > rtol))
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


def _sketch_inertia(problem, point, rtol: float, floor: float, start: int = 64, oversampling: int = 16) -> Inertia:
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
        rank = int(np.sum(s > 1e-3 * rtol * s[0]))
        if rank <= probes - oversampling // 2 or probes == n:
            break  # fewer directions than probes: the whole range has been seen
        k = 2 * k
    basis = U[:, :rank]  # orthonormal, spans range(H), so H = B (B^T H B) B^T
    eigenvalues = np.linalg.eigvalsh(basis.T @ apply(basis.T).T)
    threshold = zero_eigenvalue_threshold(eigenvalues, rtol=rtol, floor=floor)
    negative = int(np.sum(eigenvalues < -threshold))
    positive = int(np.sum(eigenvalues > threshold))
    return Inertia(negative, n - negative - positive, positive)


def hessian_inertia(
    problem, point, *, rtol: float = ZERO_EIGENVALUE_RTOL, method: str = "auto", dense_limit: int = DENSE_LIMIT
) -> Inertia:
    """Numbers of negative, zero and positive eigenvalues of the Hessian of the loss at a point.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point : tuple of ndarray
        Any point (usually a critical one).
    rtol : float
        An eigenvalue counts as zero when ``|lambda| <= max(rtol' * max |lambda|, rounding)``
        (:func:`zero_eigenvalue_threshold`), where ``rtol' = max(rtol, min(eps kappa^2, sqrt(rho)))``
        (the rounding of the point carried to the well-conditioned point ``z`` of its orbit, see
        :func:`is_critical`, capped by the square root of the relative gradient ``rho`` measured at
        ``z``, which bounds how far the zero eigenvalues have moved there),
        ``rounding = 100 N eps c_H`` and ``c_H`` is the size of the Hessian's blocks predicted
        from the layer norms there (see Notes). ``0 < rtol < 1``.
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

    Raises
    ------
    ValueError
        If ``method`` is not one of the four names, ``dense_limit`` is not a non-negative integer,
        ``rtol`` is not in ``(0, 1)`` or ``point`` does not fit the problem's widths.
    RuntimeError
        If the Lanczos path's ARPACK iteration does not converge.

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
    singular values above ``1e-3 rtol`` times the largest): then they span the range of ``H``
    (with probability one), and with ``B`` an orthonormal basis of it, ``H = B (B^T H B) B^T``.
    The negative and positive counts are those of the ``rho x rho`` matrix ``B^T H B``
    (thresholds as in the dense path), and the zero count is ``N`` minus both. Exact, up to
    rounding; memory ``O(N rho)``, time ``O(N rho^2)``.

    The Lanczos path first finds ``|lambda|_max`` (one eigenvalue of largest magnitude), then
    works with ``A = H / |lambda|_max + I``. It asks ARPACK for the ``k`` smallest eigenvalues of
    ``A`` with ``k = 8, 16, 32, ...`` until one of them is ``>= 1 - rtol`` (so every eigenvalue of
    ``H`` below ``-rtol |lambda|_max`` has been found and counted), and likewise for the largest
    ones; the zero count is ``N`` minus both. The counts are exact when ARPACK converges. In our
    measurements it is 3 to 10 times slower than the sketch, the gap widening as ``rho`` grows
    (``benchmarks/hessian_inertia_scale.py``).

    The threshold ``rtol`` must sit above the rounding level of the zero eigenvalues (about
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
    rtol = check_tolerance(rtol)
    if isinstance(dense_limit, bool) or not isinstance(dense_limit, numbers.Integral) or dense_limit < 0:
        raise ValueError(f"dense_limit must be a non-negative integer; got {dense_limit!r}")
    n = problem.n_params
    if method == "lanczos" and n < 3:
        method = "dense"  # ARPACK needs k < N - 1
    # Sylvester: the inertia of the orbit, computed where the orbit is well conditioned
    point, g = orbit_point(problem, point)
    rtol = max(rtol, zero_resolution(problem, point, g))
    floor = _hessian_rounding(problem, point)
    if method == "dense" or (method == "auto" and n <= dense_limit):
        eigenvalues = np.linalg.eigvalsh(problem.hessian(point))
        threshold = zero_eigenvalue_threshold(eigenvalues, rtol=rtol, floor=floor)
        negative = int(np.sum(eigenvalues < -threshold))
        positive = int(np.sum(eigenvalues > threshold))
        return Inertia(negative, n - negative - positive, positive)
    if method == "sketch":
        return _sketch_inertia(problem, point, rtol, floor)
    return _lanczos_inertia(problem, point, rtol, floor)
