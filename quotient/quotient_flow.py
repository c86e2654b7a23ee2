"""The gradient flow seen in the quotient: projected and reduced velocities, the reduced flow.

The quotient map ``(W_1, ..., W_h) -> W = W_h ... W_1`` (:mod:`quotient.projection`) sends the
gradient flow of the layers to a curve of end-to-end maps. Its velocity (:func:`projected_velocity`)
depends on the layers in general; from balanced points (``C_i = 0``) it is a closed flow of ``W``
alone, the Riemannian gradient flow of the loss on the matrices of rank ``k``
(:func:`reduced_velocity`, :func:`reduced_flow`; math.md section 3, math-spec section 4.3).
:class:`QuotientTrajectory` is such a curve, labelled by the nearest critical end-to-end maps.
Every function here works in the problem's singular frame, where the target is the rectangular
diagonal ``Sigma``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _ode
from ._numerics import is_batch, readonly, require_square_loss, squared_norm
from .flow import Trajectory
from .graph import nearest_critical
from .network import as_point, conserved_quantities, end_to_end
from .problem import Problem
from .projection import pushforward, rank_manifold
from .rank_manifold import RankManifold

__all__ = [
    "projected_velocity",
    "reduced_velocity",
    "QuotientTrajectory",
    "project",
    "reduced_flow",
]


def projected_velocity(problem: Problem, point) -> np.ndarray:
    """``dW/dt`` of the end-to-end map along the gradient flow: ``sum_i W_{>i} (dW_i/dt) W_{<i}``.

    Parameters
    ----------
    problem : Problem
        The loss ``L`` whose gradient flow is pushed forward.
    point : tuple of ndarray
        A point or a batch of points.

    Returns
    -------
    ndarray, shape (d_h, d_0) (or batched)
        The push-forward of ``-grad L``. In general it depends on the point and not only on ``W``
        (the flow is not closed on the quotient); on the balanced points it equals
        :func:`reduced_velocity` of ``W``.

    Raises
    ------
    TypeError
        If ``problem`` is not a :class:`Problem`.
    ValueError
        If ``point`` does not have the problem's widths or is not finite.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    batch = is_batch(point)
    point = as_point(point, "point", widths=problem.widths, batch=batch)
    velocity = tuple(-G for G in problem.unchecked_gradient(point))
    return pushforward(point, velocity)


def reduced_velocity(problem: Problem, W, *, rank: int | None = None, rank_rtol: float = 1e-12, balance_rtol: float = 1e-8) -> np.ndarray:
    """Right-hand side of the closed balanced flow on the quotient.

        dW/dt = - sum_{j=1}^h (W W^T)^{(j-1)/h} grad l(W) (W^T W)^{(h-j)/h}

    (``grad l(W) = W - Sigma`` for the square loss).

    Parameters
    ----------
    problem : Problem
        Supplies ``h`` and the loss ``l`` of the end-to-end map (any loss: the formula holds for
        every differentiable ``l``).
    W : array_like, shape (d_h, d_0), or tuple of ndarray
        An end-to-end map (singular frame), standing for its balanced lifts, or a point
        ``(W_1, ..., W_h)``, which must then be balanced (``C_i = 0``).
    rank : int, optional
        The rank ``k`` of the stratum ``W`` lies on: singular values beyond the ``k``-th are set to
        zero. By default the numerical rank, the number of singular values above ``rank_rtol``
        times the largest.
    rank_rtol : float
        Relative threshold of the default rank.
    balance_rtol : float
        A point counts as balanced when ``||C_i||_F <= balance_rtol (||W_i||^2 + ||W_{i+1}||^2)``
        for every ``i``.

    Returns
    -------
    ndarray, shape (d_h, d_0)

    Raises
    ------
    TypeError
        If ``problem`` is not a :class:`Problem`.
    ValueError
        If a point is not balanced (its end-to-end map does not follow this flow: use
        :func:`projected_velocity`), if ``rank`` or the rank of ``W`` exceeds ``min(widths)``, or
        ``W`` has the wrong shape.

    Notes
    -----
    Arora, Cohen & Hazan (2018); Bah, Rauhut, Terstiege & Westdickenberg (2022): the Riemannian
    gradient flow of ``l`` on the matrices of rank ``k``; math-spec section 4.3.
    The fractional powers come from one SVD ``W = U S V^T``: with ``lambda`` and ``mu`` the
    eigenvalues of ``W W^T`` and ``W^T W`` (squared singular values, zero-padded),
    ``dW/dt = -U (K o (U^T grad l V)) V^T`` with ``K_pq = sum_j lambda_p^{(j-1)/h}
    mu_q^{(h-j)/h}``. ``(W W^T)^{1/h}`` is not Lipschitz where a singular value vanishes: a
    rounding error ``e`` in a zero singular value would enter as ``e^{2/h}``, growing with the
    depth, so singular values beyond the rank are set to exactly 0.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    W = _balanced_end_to_end(problem, W, "W", balance_rtol)
    return _reduced_velocity(problem, W, rank_manifold(problem, _stratum_rank(problem, W, rank, rank_rtol, "W")))


def _reduced_velocity(problem: Problem, W: np.ndarray, manifold: RankManifold) -> np.ndarray:
    # minus the Riemannian gradient of l on M_k: one implementation of the metric
    return -manifold.riemannian_gradient(problem.end_to_end_loss.gradient(W), W)


def _balanced_end_to_end(problem: Problem, start, name: str, balance_rtol: float) -> np.ndarray:
    """The end-to-end map of ``start``: a map, or a point that must be balanced."""
    if not (isinstance(balance_rtol, (int, float, np.floating)) and not isinstance(balance_rtol, bool) and balance_rtol >= 0):
        raise ValueError(f"balance_rtol must be a non-negative number; got {balance_rtol!r}")
    if not isinstance(start, (tuple, list)):
        return _check_end_to_end(problem, start, name)
    point = as_point(start, name, widths=problem.widths)
    for i, C in enumerate(conserved_quantities(point), start=1):
        scale = squared_norm((point[i - 1], point[i]))
        imbalance = float(np.linalg.norm(C))
        if imbalance > balance_rtol * scale:
            raise ValueError(
                f"{name} is not balanced: ||C_{i}||_F = {imbalance:.3e} > balance_rtol * (||W_{i}||^2 + "
                f"||W_{i + 1}||^2) = {balance_rtol:.1e} * {scale:.3e}, where C_{i} = W_{i + 1}^T W_{i + 1} - "
                f"W_{i} W_{i}^T. The reduced flow is the flow of balanced points (C = 0) only; from other "
                "points the end-to-end map does not follow it: integrate the layers with gradient_flow and "
                "project() the run, or use projected_velocity"
            )
    return end_to_end(point)


def _stratum_rank(problem: Problem, W: np.ndarray, rank, rank_rtol: float, name: str) -> int:
    """The rank ``k`` the reduced flow keeps: given, or the numerical rank of ``W``."""
    r = problem.rank_bound
    s = np.linalg.svd(W, compute_uv=False)
    if rank is None:
        if not (isinstance(rank_rtol, (int, float, np.floating)) and not isinstance(rank_rtol, bool) and 0 <= rank_rtol < 1):
            raise ValueError(f"rank_rtol must be a number in [0, 1); got {rank_rtol!r}")
        rank = int(np.sum(s > rank_rtol * s[0])) if s.size and s[0] > 0 else 0
        if rank > r:
            raise ValueError(
                f"{name} has rank above min(widths) = {r} (singular value {r + 1} is {s[r]:.3e}); it is not "
                f"the end-to-end map of any point with widths {problem.widths}"
            )
        return rank
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank <= r:
        raise ValueError(f"rank must be an integer in [0, min(widths)] = [0, {r}]; got {rank!r}")
    return int(rank)


def _check_end_to_end(problem: Problem, W, name: str) -> np.ndarray:
    d_0, d_h = problem.widths[0], problem.widths[-1]
    array = np.asarray(W)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers; got dtype {array.dtype}")
    if array.shape != (d_h, d_0):
        raise ValueError(f"{name} must have shape (d_h, d_0) = {(d_h, d_0)} for widths {problem.widths}; got {array.shape}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return array


@dataclass(frozen=True, eq=False)
class QuotientTrajectory:
    """A trajectory seen in the quotient: the end-to-end map over time.

    Made by :func:`project`, :func:`reduced_flow` or :meth:`from_end_to_end`; arrays read-only.

    Parameters
    ----------
    problem : Problem
        The square-loss problem whose critical values label the samples.
    times : ndarray, shape (T,)
        Sample times.
    end_to_end : ndarray, shape (T, d_h, d_0)
        ``W(t)`` in the problem's singular frame.
    singular_values : ndarray, shape (T, m)
        Singular values of ``W(t)``, decreasing, ``m = min(d_0, d_h)``.
    coordinates : ndarray, shape (T, m)
        ``u_k(t) = <W(t), e_k f_k^T> = W_kk(t)``: the component of ``W(t)`` on mode ``k`` of the
        target (``e_k``, ``f_k`` the singular vectors of ``Sigma``, unit vectors in this frame).
    learned : tuple of tuple of int
        At each time, the learned set ``S`` of the nearest critical end-to-end map ``Sigma_S``
        (:func:`nearest_critical`).
    critical_value : ndarray, shape (T,)
        ``L_S`` of that set.
    critical_distance : ndarray, shape (T,)
        ``||W(t) - Sigma_S||_F``.
    """

    problem: Problem
    times: np.ndarray
    end_to_end: np.ndarray
    singular_values: np.ndarray
    coordinates: np.ndarray
    learned: tuple
    critical_value: np.ndarray
    critical_distance: np.ndarray

    def __post_init__(self):
        for name in ("times", "end_to_end", "singular_values", "coordinates", "critical_value", "critical_distance"):
            object.__setattr__(self, name, readonly(getattr(self, name)))
        object.__setattr__(self, "learned", tuple(tuple(S) for S in self.learned))

    def __len__(self) -> int:
        return self.times.size

    @property
    def loss(self) -> np.ndarray:
        """``l(W(t))``, shape ``(T,)``."""
        return self.problem.end_to_end_loss.value(self.end_to_end)

    @classmethod
    def from_end_to_end(cls, problem: Problem, times, W) -> QuotientTrajectory:
        """Build one from sample times and end-to-end maps, labelling each by its nearest critical map.

        Parameters
        ----------
        problem : Problem
            A square-loss problem (its ``sigma`` sets the coordinates and the labels).
        times : array_like, shape (T,)
            Sample times.
        W : array_like, shape (T, d_h, d_0)
            The end-to-end maps at those times, in the singular frame.

        Returns
        -------
        QuotientTrajectory
            With singular values, mode coordinates and nearest critical labels computed.

        Raises
        ------
        ValueError
            If the problem has a general loss (:meth:`Problem.from_loss`): no critical values.
        """
        require_square_loss(problem)
        times = np.asarray(times, dtype=np.float64)
        W = np.asarray(W, dtype=np.float64)
        m = problem.sigma.size
        learned, value, distance = nearest_critical(problem, W)
        return cls(
            problem,
            times,
            W,
            np.linalg.svd(W, compute_uv=False),
            np.diagonal(W, axis1=-2, axis2=-1)[:, :m],
            learned,
            value,
            distance,
        )


def project(trajectory: Trajectory) -> QuotientTrajectory:
    """Push a trajectory of points down to the quotient (its end-to-end maps).

    Parameters
    ----------
    trajectory : quotient.Trajectory
        From :func:`quotient.gradient_flow` or :func:`quotient.gradient_descent`.

    Returns
    -------
    QuotientTrajectory
        ``W(t) = W_h(t) ... W_1(t)`` at the run's times, labelled by the nearest critical maps.

    Raises
    ------
    TypeError
        If ``trajectory`` is not a :class:`quotient.Trajectory`.
    ValueError
        If the run's problem has a general loss (:meth:`Problem.from_loss`): the trajectory is
        labelled by the critical values of the square loss. :func:`quotient.end_to_end` of the
        run's points gives its curve in the quotient for any loss.
    """
    if not isinstance(trajectory, Trajectory):
        raise TypeError(f"trajectory must be a quotient.Trajectory; got {type(trajectory).__name__}")
    require_square_loss(trajectory.problem)
    return QuotientTrajectory.from_end_to_end(trajectory.problem, trajectory.times, trajectory.end_to_end)


def reduced_flow(
    problem: Problem,
    W0,
    t_final: float,
    *,
    t_eval=None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    method: str = "DOP853",
    rank: int | None = None,
    rank_rtol: float = 1e-12,
    balance_rtol: float = 1e-8,
    throw: bool = True,
) -> QuotientTrajectory:
    """Integrate the closed flow on the quotient that balanced starts follow.

        dW/dt = - sum_{j=1}^h (W W^T)^{(j-1)/h} (W - Sigma) (W^T W)^{(h-j)/h}

    Parameters
    ----------
    problem : Problem
        A square-loss problem: supplies ``Sigma`` and the depth ``h``.
    W0 : array_like, shape (d_h, d_0), or tuple of ndarray
        Initial end-to-end map (singular frame), of rank at most ``min(widths)``, standing for its
        balanced lifts; or a balanced point ``(W_1, ..., W_h)`` (``C_i = 0``), whose end-to-end map
        is taken.
    t_final : float
        Final time, positive.
    t_eval : array_like or int, optional
        Sample times in ``[0, t_final]``, or a number of evenly spaced samples; by default the
        solver's steps. Sampled as in :func:`quotient.gradient_flow`.
    rtol, atol : float
        Tolerances of ``scipy.integrate.solve_ivp``.
    method : str
        A ``solve_ivp`` method.
    rank : int, optional
        The rank ``k`` the flow keeps (the stratum of ``W0``); by default the numerical rank of
        ``W0``.
    rank_rtol : float
        Singular values of ``W0`` below ``rank_rtol`` times the largest count as zero; this sets the
        default rank.
    balance_rtol : float
        A point ``W0`` counts as balanced when ``||C_i||_F <= balance_rtol (||W_i||^2 +
        ||W_{i+1}||^2)`` (:func:`reduced_velocity`).
    throw : bool
        Raise ``RuntimeError`` if the solver fails; otherwise return the samples computed so far.

    Returns
    -------
    QuotientTrajectory
        The samples of ``W(t)``, labelled by their nearest critical maps.

    Notes
    -----
    If a point is balanced (``C_i = 0``) its end-to-end map follows this flow exactly, whatever the
    layers (Arora, Cohen & Hazan 2018; math-spec 4.3): it equals ``project(gradient_flow(...))``
    from any balanced point over ``W0``, e.g. :func:`quotient.orbit.balanced_lift`. For unbalanced
    starts the projected flow is not closed in ``W`` (:func:`projected_velocity`).

    The flow keeps the rank ``k`` of ``W0`` for all finite times (Bah et al. 2022), and the
    right-hand side is evaluated with the singular values beyond the ``k``-th set to zero:
    ``(W W^T)^{1/h}`` is not Lipschitz where a singular value vanishes, so rounding errors of size
    ``e`` there would feed terms of size ``e^{2/h}`` into the solution. With this, the agreement
    with the layer flow stays at the level of the tolerances at every rank.

    Raises
    ------
    TypeError
        If ``problem`` is not a :class:`Problem`.
    ValueError
        If ``W0`` is an unbalanced point (its end-to-end map does not follow this flow: integrate
        the layers with :func:`quotient.gradient_flow` and :func:`project` the run), has the wrong
        shape, is not finite, or has rank above ``min(widths)``; or if the problem has a general
        loss (the result labels the run by the critical values of the square loss).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    require_square_loss(problem)
    W0 = _balanced_end_to_end(problem, W0, "W0", balance_rtol)
    manifold = rank_manifold(problem, _stratum_rank(problem, W0, rank, rank_rtol, "W0"))
    shape = W0.shape

    def gradient(y):
        return -_reduced_velocity(problem, y.reshape(shape), manifold).ravel()

    solution, times, states, _ = _ode.integrate(
        gradient,
        np.linalg.norm,
        W0.ravel(),
        t_final,
        rtol=rtol,
        atol=atol,
        method=method,
        t_eval=t_eval,
        gradient_atol=None,
        progress=False,
        throw=throw,
        name="reduced flow",
        batch_gradient=lambda states: np.stack([gradient(y) for y in states]),
    )
    return QuotientTrajectory.from_end_to_end(problem, times, states.reshape((-1,) + shape))
