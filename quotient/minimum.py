"""The Hessian at a global minimum: the local convergence rate of the flow and the sharpness.

At a critical point the orbit of the hidden symmetry group consists of critical points, so the
Hessian vanishes on the vertical space (the orbit's tangent) and maps into the horizontal space:
the nonzero spectrum of the Hessian restricted to the horizontal space is the nonzero spectrum
of the Hessian itself. Near a global minimum the flow ``dtheta/dt = -H (theta - theta*)`` then
contracts every horizontal direction at least as fast as ``exp(-lambda_min t)``, with
``lambda_min`` the smallest nonzero eigenvalue, and the loss gap ``1/2 delta^T H delta`` decays
like ``exp(-2 lambda_min t)``. Gradient descent is stable there for steps below
``2 / lambda_max``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh
from scipy.sparse.linalg import eigsh

from ._numerics import check_tolerance
from .classification import learned_modes, require_critical
from .critical import canonical_point, global_minimum, same_value, value_of
from .hessian import DENSE_LIMIT, ZERO_EIGENVALUE_RTOL, hessian_operator, zero_eigenvalue_threshold
from .network import as_point

__all__ = ["convergence_rate", "sharpest_direction", "sharpness", "stable_step"]

_DENSE_LIMIT = DENSE_LIMIT  # parameters; above it the sharpness is found by Lanczos on hvp


def _canonical_minimum(problem):
    """The balanced canonical global minimum: the top ``min(r, m)`` modes with ``sigma > 0`` learned."""
    if getattr(problem, "sigma", None) is None:
        raise ValueError(
            "without a point, convergence_rate, sharpness and stable_step need a square-loss problem with "
            "singular values sigma; pass a global minimum as point"
        )
    sigma = np.asarray(problem.sigma)
    return canonical_point(problem, [k + 1 for k in range(min(problem.rank_bound, sigma.size)) if sigma[k] > 0])


def _check_minimum(problem, point, gradient_rtol):
    """Criticality (:func:`quotient.is_critical`) and, for the square loss, the learned set's value
    against :func:`quotient.global_minimum`: both GL-invariant, as :func:`quotient.classify`."""
    require_critical(problem, point, check_tolerance(gradient_rtol, "gradient_rtol"))
    if getattr(problem, "sigma", None) is not None:
        value = value_of(problem, learned_modes(problem, point))
        best = global_minimum(problem)
        if not same_value(problem, value, best):
            raise ValueError(
                f"point is a critical point but not a global minimum: its value {value:.6g} exceeds the "
                f"global minimum {best:.6g} (a saddle; see quotient.critical_values)"
            )


def convergence_rate(problem, point=None, *, gradient_rtol: float = 1e-6, eigenvalue_rtol: float = ZERO_EIGENVALUE_RTOL) -> float:
    """Exponential rate at which the loss gap decays near a global minimum: ``2 lambda_min``.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point : tuple of ndarray, optional
        A global minimum (e.g. the end of a converged flow); by default
        the canonical global minimum (:func:`quotient.canonical_point` of the top
        ``min(r, m)`` modes). The rate is local to the point: unbalanced minima have other
        Hessians and other rates.
    gradient_rtol : float
        Criticality tolerance of :func:`quotient.is_critical`; for the square loss the point's
        learned set must moreover have the value :func:`quotient.global_minimum`.
    eigenvalue_rtol : float
        Eigenvalues below ``eigenvalue_rtol * lambda_max`` in absolute value count as zero
        (:func:`quotient.zero_eigenvalue_threshold`).

    Returns
    -------
    float
        ``2 lambda_min``, ``lambda_min`` the smallest nonzero eigenvalue of the Hessian restricted
        to the horizontal space: ``L(t) - L* ~ exp(-2 lambda_min t)`` along a flow converging to
        the point.

    Notes
    -----
    At the canonical minimum of a square network (``d_0 = d_h = r``) ``lambda_min = h sigma_r^{2-2/h}``
    (Arora's operator ``lambda_kk``); in general the minimum over the spectrum of math-spec 3.3,
    ``min(h sigma_r^{2-2/h}, [r < m] sigma_r^{1-2/h} (sigma_r - sigma_{r+1}), [d_0 != d_h]
    sigma_r^{2-2/h})``. Computed from the dense Hessian (``eigvalsh``), so meant for networks of
    up to a few thousand parameters. For a general convex loss the point is only checked to be
    critical; the Hessian must then be positive semidefinite.

    Raises
    ------
    ValueError
        If the point is not a global minimum (gradient, loss or a negative Hessian eigenvalue).
    """
    point = _canonical_minimum(problem) if point is None else as_point(point, "point", widths=problem.widths)
    _check_minimum(problem, point, gradient_rtol)
    eigenvalues = np.linalg.eigvalsh(problem.hessian(point))
    top = float(np.abs(eigenvalues).max())
    if top == 0:
        raise ValueError("the Hessian vanishes at point: no exponential rate (e.g. a zero target)")
    threshold = zero_eigenvalue_threshold(eigenvalues, rtol=eigenvalue_rtol)
    if eigenvalues[0] < -threshold:
        raise ValueError(f"the Hessian has a negative eigenvalue {eigenvalues[0]:.3e}: point is not a minimum")
    return 2.0 * float(eigenvalues[eigenvalues > threshold].min())


def sharpness(problem, point=None) -> float:
    """Largest Hessian eigenvalue ``lambda_max`` at ``point`` (default: the canonical global minimum).

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point : tuple of ndarray, optional
        ``(W_1, ..., W_h)``, a global minimum; default the canonical global minimum
        (:func:`quotient.canonical_point` of the top modes).

    Returns
    -------
    float
        ``lambda_max``, the first value of :func:`sharpest_direction`.

    Notes
    -----
    At the canonical minimum ``lambda_max = h sigma_1^{2-2/h}`` (math-spec 5.7); by AM-GM it is the
    smallest sharpness over the global minima of mode 1's chain, so balanced minima are the
    flattest. The value of :func:`sharpest_direction`.
    """
    return sharpest_direction(problem, point)[0]


def sharpest_direction(problem, point=None) -> tuple[float, np.ndarray]:
    """``lambda_max`` of the Hessian at ``point`` and a unit eigenvector of it.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point : tuple of ndarray, optional
        ``(W_1, ..., W_h)``; default the canonical global minimum.

    Returns
    -------
    lambda_max : float
    direction : ndarray, shape (N,)
        Unit eigenvector, flat in the order of :func:`quotient.to_vector` (its sign is arbitrary).

    Notes
    -----
    Dense (LAPACK ``evr``, the top eigenpair only) up to ``DENSE_LIMIT`` parameters, Lanczos
    (``eigsh`` on :meth:`Problem.hvp`, ``tol = 1e-12``) above.
    """
    point = _canonical_minimum(problem) if point is None else as_point(point, "point", widths=problem.widths)
    n = problem.n_params
    if n <= _DENSE_LIMIT:
        eigenvalues, eigenvectors = eigh(problem.hessian(point), subset_by_index=[n - 1, n - 1], driver="evr")
        return float(eigenvalues[-1]), eigenvectors[:, -1]
    eigenvalues, eigenvectors = eigsh(hessian_operator(problem, point), k=1, which="LA", tol=1e-12)
    return float(eigenvalues[0]), eigenvectors[:, 0]


def stable_step(problem, point=None) -> float:
    """Largest stable gradient-descent step near a global minimum, ``2 / lambda_max``.

    Descent with a step below it converges to a minimum started close enough; above it the
    sharpest direction is amplified by ``|1 - step lambda_max| > 1`` and, since the balanced
    minimum is the flattest one, no global minimum is stable. At the canonical minimum it is
    ``2 / (h sigma_1^{2-2/h})``.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point : tuple of ndarray, optional
        ``(W_1, ..., W_h)``, a global minimum; default the canonical global minimum
        (:func:`quotient.canonical_point` of the top modes).

    Returns
    -------
    float
        ``2 / lambda_max`` with ``lambda_max`` of :func:`sharpness`.
    """
    return 2.0 / sharpness(problem, point)
