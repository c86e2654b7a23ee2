"""Gradient flow and gradient descent, the :class:`Trajectory` they return and its :class:`Status` (how a run ended)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from . import _ode
from ._io import TRAJECTORY_ARRAYS, TRAJECTORY_FORMAT, TRAJECTORY_META, load_record, save_record
from ._numerics import readonly, squared_norm
from ._ode import Status, status_message
from .network import as_point, end_to_end, from_vector, to_vector
from .problem import Problem

__all__ = ["Status", "status_message", "Trajectory", "gradient_flow", "gradient_descent"]


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Samples of a gradient flow or gradient descent run.

    Made by :func:`gradient_flow`, :func:`gradient_descent` and :meth:`load`; the arrays are
    stored read-only.

    Parameters
    ----------
    problem : Problem
        The problem whose loss was descended.
    times : ndarray, shape (T,)
        Sample times, increasing (``k * step`` for descent).
    points : tuple of ndarray
        Layers with a leading time axis, ``W_i`` of shape ``(T, d_i, d_{i-1})``.
    loss : ndarray, shape (T,)
        ``L`` at the samples.
    gradient_norm : ndarray, shape (T,)
        ``||grad L||`` (Euclidean norm over all layers).
    conservation_drift : ndarray, shape (T,)
        ``||C(t) - C(0)|| / max(||W(0)||^2, ||W(t)||^2)``, with ``||C||^2 = sum_i ||C_i||_F^2``
        and ``||W||^2 = sum_i ||W_i||_F^2``: the drift of the conserved quantities relative to
        the size of the terms they are made of. Zero for the exact flow.
    method : str
        The method asked for (``"auto"``, a scipy method's name), or ``"gradient_descent"``;
        ``meta["solver"]`` says what ``"auto"`` ran.
    rtol, atol : float or None
        Integration tolerances (``None`` for gradient descent).
    step : float or None
        Step size of gradient descent (``None`` for flows).
    n_rhs : int
        Number of gradient evaluations.
    n_steps : int
        Number of accepted solver steps (descent steps for gradient descent).
    status : Status
        How the run ended (an ``IntEnum``, equal to the integers of older files):
        ``Status.FINAL_TIME`` (0) reached the final time, ``Status.GRADIENT_BOUND`` (1) stopped at
        ``gradient_atol``, ``Status.FAILED`` (-1) failed.
    message : str
        The sentence of :func:`quotient._ode.status_message` for ``status`` (for a failure, what
        went wrong).
    meta : dict
        What the solver reports besides: ``"solver"`` (what ``method`` ran), ``"n_hessians"``.
    """

    problem: Problem
    times: np.ndarray
    points: tuple
    loss: np.ndarray
    gradient_norm: np.ndarray
    conservation_drift: np.ndarray
    method: str
    rtol: float | None = None
    atol: float | None = None
    step: float | None = None
    n_rhs: int = 0
    n_steps: int = 0
    status: Status = Status.FINAL_TIME
    message: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "status", Status(self.status))
        for name in ("times", "loss", "gradient_norm", "conservation_drift"):
            object.__setattr__(self, name, readonly(getattr(self, name)))
        object.__setattr__(self, "points", tuple(readonly(layer) for layer in self.points))

    @property
    def success(self) -> bool:
        """Whether the run did not fail (``status`` is not ``Status.FAILED``)."""
        return self.status >= 0

    def __len__(self) -> int:
        return self.times.size

    def point(self, k: int):
        """The point at sample ``k`` as a tuple of layers.

        Parameters
        ----------
        k : int
            Sample index, negative from the end (``-1``: the last sample).

        Returns
        -------
        tuple of ndarray
            ``(W_1(t_k), ..., W_h(t_k))``, read-only views.
        """
        return tuple(layer[k] for layer in self.points)

    @property
    def end_to_end(self) -> np.ndarray:
        """``W(t)`` of shape ``(T, d_h, d_0)``."""
        return end_to_end(self.points)

    def save(self, path, *, overwrite: bool = False) -> str:
        """Write the trajectory and its problem to one ``.npz`` file; return the path.

        The file is written to a temporary name first and moved into place, so an existing file
        is never left half-written; it is replaced only when ``overwrite`` is true.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write, ending in ``.npz``.
        overwrite : bool
            Replace an existing file at ``path``.

        Returns
        -------
        str
            The path written.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is false.
        FileNotFoundError
            If the folder of ``path`` does not exist (the message names ``path``).
        ValueError
            If ``path`` does not end in ``.npz``, or the problem's loss is not the square loss.
        """
        return save_record(path, TRAJECTORY_FORMAT, self, TRAJECTORY_ARRAYS, TRAJECTORY_META, overwrite)

    @classmethod
    def load(cls, path) -> Trajectory:
        """Read a trajectory written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            A ``.npz`` file of :meth:`save`.

        Returns
        -------
        Trajectory
            Equal in every array and setting to the one saved; ``status`` a :class:`Status`.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        FileFormatError
            If ``path`` is not a quotient trajectory file, or is corrupt or truncated; the message
            names the path and what is wrong.
        """
        return load_record(path, cls, TRAJECTORY_FORMAT, TRAJECTORY_ARRAYS, TRAJECTORY_META)


def gradient_flow(
    problem: Problem,
    point0,
    t_final: float,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    method: str = "auto",
    t_eval=None,
    gradient_atol: float | None = None,
    until: str = "critical",
    progress: bool = True,
    throw: bool = True,
) -> Trajectory:
    """Integrate the gradient flow ``dW_i/dt = -grad_{W_i} L`` from ``point0``.

    Parameters
    ----------
    problem : Problem
        The loss ``L`` whose gradient is followed.
    point0 : tuple of ndarray
        Initial layers ``(W_1, ..., W_h)`` in the problem's singular frame.
    t_final : float
        Final time, positive.
    rtol, atol : float
        Relative and absolute tolerances of the solver's local error control.
    method : str
        ``"auto"`` (default): DOP853 while its steps are held by accuracy, LSODA with the exact
        Hessian as Jacobian once they are held by stability. For the square loss the DOP853 steps
        run compiled with the gradient (:mod:`quotient._compiled`, numba; a step costs its 12
        gradients, not scipy's ~290 us of Python), for a general loss they are scipy's. DOP853's
        own stiffness test (Hairer's ``h rho > 6.1``, ``rho`` a Lipschitz estimate from the last
        two stages) hands over to LSODA once it has held ``quotient._ode.STIFF_SWITCH = 250``
        times with no 6 calm steps between: after a mode is learned the Hessian has eigenvalues
        ``~ h sigma^{2-2/h}`` while the flow crawls along the next plateau, and LSODA's BDF steps
        are not bound by them. Above ``quotient._ode.DENSE_JACOBIAN_LIMIT`` parameters there is
        no Jacobian to switch to and DOP853 runs throughout. ``meta["solver"]`` says what ran and
        when it switched. Or one of scipy's methods by name: ``"DOP853"``, ``"RK45"``, ``"RK23"``
        (explicit), ``"Radau"``, ``"BDF"``, ``"LSODA"`` (implicit; these get the exact Hessian
        too when it is small enough; ``"LSODA"`` was the default before).
    t_eval : array_like or int, optional
        Increasing times in ``[0, t_final]`` at which to sample; an integer ``n`` asks for ``n``
        evenly spaced samples from 0 to the time the flow stopped (``t_final``, or earlier with
        ``gradient_atol``; for ``n > 2`` the flow is then integrated twice, once to find that time
        and once to sample it). By default the trajectory holds the solver's own steps. Only the samples are
        kept in memory, never every step. For the explicit methods each sample is one fresh
        step of the method from the last accepted step before it, as accurate as the steps
        themselves; the other methods sample their interpolant (of the step's order).
    gradient_atol : float, optional
        Stop as soon as ``||grad L|| < gradient_atol`` (a terminal event, located by root search
        on the step's interpolant).
    until : {"critical", "minimum"}
        Which points ``gradient_atol`` stops at. ``"critical"``: the first one where the gradient
        norm falls through the tolerance, which from a small init is often a saddle (on a plateau
        the gradient is as small as near a minimum). ``"minimum"``: only where, in addition, the
        loss is closer to the global minimum than to any other critical value
        (``L < L_min + (L_next - L_min) / 2``; square-loss problems).
    progress : bool
        Show a tqdm bar on standard error while integrating (only when it is a terminal).
    throw : bool
        Raise ``RuntimeError`` when the solver fails or the state leaves the finite numbers;
        with ``False`` the failure is reported on the result (``status == -1``, ``message``)
        with the samples up to the last finite state.

    Returns
    -------
    Trajectory
        ``meta["solver"]`` says what ran (e.g. ``"auto"``: compiled DOP853, and when it
        switched to LSODA with the exact Hessian), ``meta["n_hessians"]`` how many dense Hessians
        it evaluated.

    Raises
    ------
    TypeError
        If ``problem`` is not a :class:`Problem`, or ``method`` is neither a name nor a solver class.
    ValueError
        If ``point0`` does not have the problem's widths, a tolerance or ``t_final`` is not
        positive, ``t_eval`` is not increasing inside ``[0, t_final]``, ``method`` or ``until``
        is unknown, or ``until="minimum"`` on a problem with a general loss.
    RuntimeError
        If the solver fails and ``throw`` is true (the message says where and what to try).

    Notes
    -----
    The layer form ``dW_i/dt = W_{>i}^T (Sigma - W) W_{<i}^T`` is integrated on the flat vector
    of all layers; the adjacency form ``dA/dt = sum_j (A^{h-j})^T (E - A^h) (A^{j-1})^T`` is the
    same field (:meth:`Problem.adjacency_gradient`).
    """
    # argument checks (the integration engine below validates t_final, t_eval and the method's name)
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    point0 = as_point(point0, "point0", widths=problem.widths)
    method = _ode.check_flow_options(rtol, atol, method, gradient_atol)
    engine = _ode.flow_engine(problem, until, gradient_atol)
    result, times, states, counts = _ode.integrate(
        y0=to_vector(point0),
        t_final=t_final,
        rtol=rtol,
        atol=atol,
        method=method,
        t_eval=t_eval,
        gradient_atol=gradient_atol,
        progress=progress,
        throw=throw,
        name="gradient flow",
        guard=_ode.precision_guard(problem, engine.pop("layers")),
        **engine,
    )
    points = from_vector(states, problem.widths)
    with np.errstate(over="ignore", invalid="ignore"):
        loss, gradient_norm, drift = _ode.diagnostics(problem, points)
    return Trajectory(
        problem=problem,
        times=times,
        points=points,
        loss=loss,
        gradient_norm=gradient_norm,
        conservation_drift=drift,
        method=method if isinstance(method, str) else method.__name__,
        rtol=rtol,
        atol=atol,
        n_rhs=counts["rhs"],
        n_steps=result.n_steps,
        status=result.status,
        message=result.message,
        meta={"solver": result.description, "n_hessians": counts["jac"]},
    )


def gradient_descent(
    problem: Problem,
    point0,
    step: float,
    n_steps: int,
    *,
    record_every: int = 1,
    gradient_atol: float | None = None,
    progress: bool = True,
    throw: bool = True,
) -> Trajectory:
    """Gradient descent ``W_i <- W_i - step * grad_{W_i} L`` for ``n_steps`` steps.

    Parameters
    ----------
    problem : Problem
        The loss ``L`` descended.
    point0 : tuple of ndarray
        Initial layers ``(W_1, ..., W_h)`` in the problem's singular frame.
    step : float
        Step size, positive. Near a global minimum descent is stable for
        ``step < 2 / lambda_max(Hessian)``.
    n_steps : int
        Number of steps, positive.
    record_every : int
        Keep every ``record_every``-th iterate (and the last one).
    gradient_atol : float, optional
        Stop once ``||grad L|| < gradient_atol``.
    progress : bool
        Show a tqdm bar (only on a terminal).
    throw : bool
        Raise ``RuntimeError`` if the iterates overflow; otherwise report it on the result.

    Returns
    -------
    Trajectory
        ``times`` are ``k * step``. The conserved quantities are not conserved by descent: each
        step changes ``C_i`` by exactly ``step^2 (G_{i+1}^T G_{i+1} - G_i G_i^T)``.

    Raises
    ------
    TypeError
        If ``problem`` is not a :class:`Problem`.
    ValueError
        If ``point0`` does not have the problem's widths, ``step`` or ``gradient_atol`` is not
        positive, or ``n_steps`` or ``record_every`` is not a positive integer.
    RuntimeError
        If the iterates overflow and ``throw`` is true.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    point = as_point(point0, "point0", widths=problem.widths)
    if not np.isscalar(step) or not np.isfinite(step) or step <= 0:
        raise ValueError(f"step must be a positive finite number; got {step!r}")
    for name, value in (("n_steps", n_steps), ("record_every", record_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if gradient_atol is not None and not gradient_atol > 0:
        raise ValueError(f"gradient_atol must be positive; got {gradient_atol!r}")
    recorded, steps = [point], [0]
    status, message = Status.FINAL_TIME, status_message(Status.FINAL_TIME, final_time=f"the last of {n_steps} steps")
    n_done = n_rhs = 0
    bar = tqdm(total=n_steps, desc="gradient descent", disable=None if progress else True, leave=False)
    with bar, np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, n_steps + 1):
            gradient = problem.unchecked_gradient(point)
            n_rhs += 1
            gradient_norm = np.sqrt(squared_norm(gradient))
            if gradient_atol is not None and gradient_norm < gradient_atol:
                status, message = Status.GRADIENT_BOUND, status_message(Status.GRADIENT_BOUND)
                break
            candidate = tuple(W - step * G for W, G in zip(point, gradient))
            if not np.isfinite(gradient_norm) or not all(np.all(np.isfinite(W)) for W in candidate):
                status = Status.FAILED
                message = status_message(status, failure=f"iterates overflowed at step {k}: step = {step} is too large")
                if throw:
                    raise RuntimeError(f"gradient descent diverged at step {k}: step = {step} is too large")
                break
            point, n_done = candidate, k
            bar.update()
            if k % record_every == 0:
                recorded.append(point)
                steps.append(k)
    if steps[-1] != n_done:
        recorded.append(point)
        steps.append(n_done)
    points = tuple(np.stack(layers) for layers in zip(*recorded))
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged run reports inf, not a warning
        loss, gradient_norm, drift = _ode.diagnostics(problem, points)
    return Trajectory(
        problem=problem,
        times=step * np.asarray(steps, dtype=float),
        points=points,
        loss=loss,
        gradient_norm=gradient_norm,
        conservation_drift=drift,
        method="gradient_descent",
        step=float(step),
        n_rhs=n_rhs,
        n_steps=n_done,
        status=status,
        message=message,
    )
