"""Gradient flow and gradient descent, and the :class:`Trajectory` they return."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import DOP853, RK23, RK45, solve_ivp
from tqdm import tqdm

from ._io import FileFormatError, load_run, save_run
from .network import _squared_norm, as_point, check_positive, conserved_quantities, end_to_end, from_vector, to_vector
from .problem import Problem, _readonly

__all__ = ["Trajectory", "gradient_flow", "gradient_descent"]

_FORMAT = "quotient.trajectory/1"


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Samples of a gradient flow or gradient descent run.

    Attributes
    ----------
    problem : Problem
    times : ndarray, shape (T,)
    points : tuple of ndarray
        Layers with a leading time axis, ``W_i`` of shape ``(T, d_i, d_{i-1})``.
    loss : ndarray, shape (T,)
    gradient_norm : ndarray, shape (T,)
        ``||grad L||`` (Euclidean norm over all layers).
    conservation_drift : ndarray, shape (T,)
        ``||C(t) - C(0)|| / max(||W(0)||^2, ||W(t)||^2)``, with ``||C||^2 = sum_i ||C_i||_F^2``
        and ``||W||^2 = sum_i ||W_i||_F^2``: the drift of the conserved quantities relative to
        the size of the terms they are made of. Zero for the exact flow.
    method : str
        The solve_ivp method, or ``"gradient_descent"``.
    rtol, atol : float or None
        Integration tolerances (``None`` for gradient descent).
    step : float or None
        Step size of gradient descent (``None`` for flows).
    n_rhs : int
        Number of gradient evaluations.
    n_steps : int
        Number of accepted solver steps (descent steps for gradient descent).
    status : int
        ``0``: reached the final time; ``1``: stopped at ``gradient_tol``; ``-1``: failed.
    message : str
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
    status: int = 0
    message: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for name in ("times", "loss", "gradient_norm", "conservation_drift"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        object.__setattr__(self, "points", tuple(_readonly(layer) for layer in self.points))

    @property
    def success(self) -> bool:
        return self.status >= 0

    def __len__(self) -> int:
        return self.times.size

    def point(self, k: int):
        """The point at sample ``k`` as a tuple of layers."""
        return tuple(layer[k] for layer in self.points)

    @property
    def end_to_end(self) -> np.ndarray:
        """``W(t)`` of shape ``(T, d_h, d_0)``."""
        return end_to_end(self.points)

    def save(self, path, *, overwrite: bool = False) -> str:
        """Write the trajectory and its problem to one ``.npz`` file; return the path.

        The file is written to a temporary name first and moved into place, so an existing file
        is never left half-written; it is replaced only when ``overwrite`` is true.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is false.
        FileNotFoundError
            If the folder of ``path`` does not exist (the message names ``path``).
        ValueError
            If ``path`` does not end in ``.npz``, or the problem's loss is not the square loss.
        """
        meta = {"method": self.method, "rtol": self.rtol, "atol": self.atol, "step": self.step}
        meta.update(n_rhs=self.n_rhs, n_steps=self.n_steps, status=self.status, message=self.message, meta=self.meta)
        arrays = {name: getattr(self, name) for name in ("times", "loss", "gradient_norm", "conservation_drift")}
        return save_run(path, _FORMAT, self.problem, self.points, meta, arrays, overwrite)

    @classmethod
    def load(cls, path) -> Trajectory:
        """Read a trajectory written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        FileFormatError
            If ``path`` is not a quotient trajectory file, or is corrupt or truncated; the message
            names the path and what is wrong.
        """
        names = ("times", "loss", "gradient_norm", "conservation_drift")
        problem, points, meta, data = load_run(path, _FORMAT, names)
        try:
            keys = ("method", "rtol", "atol", "step", "n_rhs", "n_steps", "status", "message", "meta")
            return cls(problem, data["times"], points, *(data[name] for name in names[1:]), *(meta[key] for key in keys))
        except (KeyError, ValueError, TypeError) as error:
            raise FileFormatError(f"{path} is not a valid quotient trajectory file: {type(error).__name__}: {error}") from None


def _diagnostics(problem: Problem, points):
    """Loss, gradient norm and relative conservation drift along a batch of points.

    The time axis is the last leading axis of the layers (``(T, d_i, d_{i-1})``, or
    ``(B, T, d_i, d_{i-1})`` for an ensemble); the drift is measured from the first time.
    """
    loss = problem.end_to_end_loss.value(end_to_end(points))
    gradient = problem._gradient(points)
    gradient_norm = np.sqrt(_squared_norm(gradient))
    charges = conserved_quantities(points)
    if charges:
        drift = np.sqrt(sum(np.sum((C - C[..., :1, :, :]) ** 2, axis=(-2, -1)) for C in charges))
        scale = _squared_norm(points)
        drift = drift / np.maximum(np.maximum(scale, scale[..., :1]), np.finfo(float).tiny)
    else:
        drift = np.zeros(points[0].shape[:-2])
    return loss, gradient_norm, drift


def _check_flow_options(rtol, atol, method, gradient_tol) -> None:
    """The argument checks shared by the flows: tolerances and the type of ``method``."""
    check_positive("rtol", rtol)
    check_positive("atol", atol, zero=True)
    if gradient_tol is not None:
        check_positive("gradient_tol", gradient_tol)
    if not isinstance(method, (str, type)):
        raise TypeError(f"method must be the name of an integrator (a str) or a solve_ivp OdeSolver class; got {method!r}")


def _check_time(t_final) -> float:
    if not np.isscalar(t_final) or not np.isfinite(t_final) or t_final <= 0:
        raise ValueError(f"t_final must be a positive finite number; got {t_final!r}")
    return float(t_final)


def _flat_gradient(problem: Problem, lead: tuple[int, ...] = ()):
    """``grad L`` on flat states: ``(layers, gradient)`` for a state of ``lead + (N,)`` entries.

    ``layers(y)`` views a flat state as a point (or a batch of points with leading shape
    ``lead``), ``gradient(y)`` returns the flat gradient. This is the right-hand side ``solve_ivp``
    calls thousands of times, so a call does no validation, no concatenation and no allocation
    beyond its result and ``G``: the slices and the buffers of the forward products are made
    once here, and :meth:`Problem._gradient` writes the layers of the gradient straight into
    views of the flat result.
    """
    widths, h, n = problem.widths, problem.depth, problem.n_params
    shapes = [lead + (widths[i], widths[i - 1]) for i in range(1, h + 1)]
    offsets = np.cumsum([0] + [widths[i] * widths[i - 1] for i in range(1, h + 1)])
    blocks = [slice(int(offsets[i]), int(offsets[i + 1])) for i in range(h)]
    forward = [None, None] + [np.empty(lead + (widths[j], widths[0])) for j in range(2, h + 1)]

    def views(flat):
        return tuple(flat[..., block].reshape(shape) for block, shape in zip(blocks, shapes))

    def layers(y):
        return views(y.reshape(lead + (n,)))

    def gradient(y):
        flat = np.empty(lead + (n,))
        problem._gradient(layers(y), out=views(flat), forward=forward)
        return flat

    return layers, gradient


def _parse_t_eval(t_eval, t_final):
    """``(t_eval, n_samples)``: sample times for the dense output, or a count of even samples."""
    if isinstance(t_eval, (int, np.integer)) and not isinstance(t_eval, bool):
        if t_eval < 2:
            raise ValueError(f"t_eval as a number of samples must be at least 2; got {t_eval}")
        return np.array([0.0, t_final]), int(t_eval)
    if t_eval is not None:
        t_eval = np.asarray(t_eval, dtype=float)
        if t_eval.ndim != 1 or t_eval.size == 0 or np.any(np.diff(t_eval) <= 0):
            raise ValueError("t_eval must be a non-empty, strictly increasing 1-D array")
        if t_eval[0] < 0 or t_eval[-1] > t_final:
            raise ValueError(f"t_eval must lie in [0, t_final] = [0, {t_final}]; got [{t_eval[0]}, {t_eval[-1]}]")
    return t_eval, None


def _integrate(
    gradient, gradient_norm, y0, t_final, *, rtol, atol, method, t_eval, gradient_tol, progress, throw, name, batch_gradient=None,
    stop_value=None,
):
    """Integrate ``dy/dt = -gradient(y)`` with ``solve_ivp``; the shared engine of the flows.

    ``gradient_norm(g)`` maps a flat gradient to the norm that ``gradient_tol`` is compared with;
    ``stop_value(t, y, g, accepted)``, if given, is the terminal event's value instead (the flow
    stops where it falls through 0), told whether ``t`` ends an accepted step (``False`` during
    the event's root search inside a step).
    ``batch_gradient(Y)``, for ``Y`` of shape ``(S, y0.size)``, evaluates ``gradient`` on ``S``
    states at once; with it, samples at ``t_eval`` come from fresh explicit Runge-Kutta steps
    (:func:`_sample_by_steps`) rather than from the dense-output interpolant.
    Returns ``(solution, times, states, n_rhs)`` with ``states`` of shape ``(T, y0.size)``.
    """
    t_final = _check_time(t_final)
    t_eval, n_samples = _parse_t_eval(t_eval, t_final)
    if gradient_tol is not None and not gradient_tol > 0:
        raise ValueError(f"gradient_tol must be positive; got {gradient_tol!r}")

    counter = {"rhs": 0}
    bar = tqdm(total=t_final, desc=name, unit="t", disable=None if progress else True, leave=False)

    recent = collections.deque(maxlen=4)  # (y, -grad L(y)) of the latest calls, for the event

    def rhs(t, y):
        counter["rhs"] += 1
        if t > bar.n:
            bar.update(t - bar.n)
        flat = gradient(y)
        np.negative(flat, out=flat)
        recent.append((y, flat))
        return flat

    events = None
    if gradient_tol is not None:

        latest = [-np.inf]

        def converged(t, y):
            # solve_ivp checks the event at the state of each accepted step, later than any
            # earlier call, and whose right-hand side it has just evaluated (DOP853's dense
            # output adds 3 calls after it); its root search calls it inside the step.
            accepted, latest[0] = t > latest[0], max(latest[0], t)
            velocity = next((velocity for state, velocity in reversed(recent) if state is y), None)
            if velocity is None:
                counter["rhs"] += 1
                field = gradient(y)
            else:
                field = -velocity  # rhs returned -grad L
            if stop_value is not None:
                return stop_value(t, y, field, accepted)
            return gradient_norm(field) - gradient_tol

        converged.terminal = True
        converged.direction = -1
        events = [converged]

    try:
        solution = solve_ivp(
            rhs,
            (0.0, t_final),
            y0,
            method=method,
            rtol=rtol,
            atol=atol,
            dense_output=t_eval is not None,
            events=events,
        )
    finally:
        bar.close()
    if solution.status < 0 and throw:
        raise RuntimeError(
            f"{name} failed at t = {solution.t[-1]:.6g}: {solution.message}; "
            "try a smaller t_final, looser tolerances or method='LSODA', or pass throw=False"
        )
    if t_eval is None:
        return solution, solution.t, solution.y.T, counter["rhs"]
    if n_samples is not None:
        times = np.linspace(0.0, solution.t[-1], n_samples)
    else:
        times = t_eval[t_eval <= solution.t[-1]]
        if solution.status == 1 and (times.size == 0 or times[-1] < solution.t[-1]):
            times = np.r_[times, solution.t[-1]]  # keep the point where the event stopped the flow
    tableau = _TABLEAUS.get(method)  # solve_ivp takes a method's name or its class
    if tableau is None or batch_gradient is None:
        states = solution.sol(times).T
    else:
        states = _sample_by_steps(batch_gradient, tableau, solution, times)
    return solution, times, states, counter["rhs"]


_TABLEAUS = {key: method for method in (DOP853, RK45, RK23) for key in (method, method.__name__)}


def _sample_by_steps(batch_gradient, tableau, solution, times, chunk_entries: int = 2**22):
    """States at ``times`` by one explicit Runge-Kutta step from the last accepted step before each.

    The interpolant of ``solve_ivp``'s dense output is less accurate than its steps: on the long
    steps the controller takes across a plateau, DOP853's interpolant errs by up to ~400 times the
    error at the step ends (measured against the exact mode solution, h = 3). A fresh step of the
    same tableau from ``(t_k, y_k)`` to ``t_k < t <= t_{k+1}`` is shorter than the accepted step
    ``t_{k+1} - t_k``, so its local error is below the one the controller accepted. All the
    samples are stepped at once in batches: ``n_stages`` batched gradients per batch.

    Returns ``states`` of shape ``(T, size)``. The cost, ``n_stages`` gradients per sample, is not
    counted in ``n_rhs``, which stays the solver's own count.
    """
    steps = np.clip(np.searchsorted(solution.t, times, side="right") - 1, 0, solution.t.size - 1)
    starts = solution.y.T[steps]
    lengths = times - solution.t[steps]
    A, B, n_stages = tableau.A, tableau.B, tableau.n_stages
    states = starts.copy()
    moving = np.flatnonzero(lengths > 0)
    per_chunk = max(1, chunk_entries // (starts.shape[1] * (n_stages + 1)))
    for first in range(0, moving.size, per_chunk):
        index = moving[first : first + per_chunk]
        y, h = starts[index], lengths[index, None]
        K = np.empty((n_stages,) + y.shape)
        K[0] = -batch_gradient(y)
        for s in range(1, n_stages):
            K[s] = -batch_gradient(y + h * np.tensordot(A[s, :s], K[:s], axes=1))
        states[index] = y + h * np.tensordot(B, K, axes=1)
    return states


def gradient_flow(
    problem: Problem,
    point0,
    t_final: float,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    method: str = "DOP853",
    t_eval=None,
    gradient_tol: float | None = None,
    until: str = "critical",
    progress: bool = True,
    throw: bool = True,
) -> Trajectory:
    """Integrate the gradient flow ``dW_i/dt = -grad_{W_i} L`` from ``point0``.

    Parameters
    ----------
    problem : Problem
    point0 : tuple of ndarray
        Initial layers ``(W_1, ..., W_h)`` in the problem's singular frame.
    t_final : float
        Final time, positive.
    rtol, atol : float
        Tolerances of ``scipy.integrate.solve_ivp``.
    method : str
        A ``solve_ivp`` method; the default ``"DOP853"`` (order 8) keeps the conservation drift at
        the level of ``rtol``.
    t_eval : array_like or int, optional
        Increasing times in ``[0, t_final]`` at which to sample; an integer ``n`` asks for ``n``
        evenly spaced samples from 0 to the time the flow stopped (``t_final``, or earlier with
        ``gradient_tol``). By default the trajectory holds the solver's own steps. For the
        explicit methods (``"DOP853"``, ``"RK45"``, ``"RK23"``) each sample is one fresh step of
        the method from the last accepted step before it, as accurate as the steps themselves;
        the implicit methods sample their dense-output interpolant, which on the long steps of a
        plateau can be hundreds of times less accurate.
    gradient_tol : float, optional
        Stop as soon as ``||grad L|| < gradient_tol`` (a terminal ``solve_ivp`` event).
    until : {"critical", "minimum"}
        Which points ``gradient_tol`` stops at. ``"critical"``: the first one where the gradient
        norm falls through the tolerance, which from a small init is often a saddle (on a plateau
        the gradient is as small as near a minimum). ``"minimum"``: only where, in addition, the
        loss is closer to the global minimum than to any other critical value
        (``L < L_min + (L_next - L_min) / 2``; square-loss problems).
    progress : bool
        Show a tqdm bar on standard error while integrating (only when it is a terminal).
    throw : bool
        Raise ``RuntimeError`` when the solver fails; with ``False`` the failure is reported on
        the result (``status == -1``, ``message``).

    Returns
    -------
    Trajectory

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
    _check_flow_options(rtol, atol, method, gradient_tol)
    layers, gradient = _flat_gradient(problem)
    stop_value = None
    if until == "minimum":
        from .critical import critical_values

        levels = [value.value for value in critical_values(problem)]
        threshold = levels[0] + (levels[1] - levels[0]) / 2 if len(levels) > 1 else np.inf
        if gradient_tol is not None:

            def stop_value(t, y, field, accepted):
                if problem.end_to_end_loss.value(end_to_end(layers(y))) >= threshold:
                    return 1.0
                return float(np.linalg.norm(field)) - gradient_tol

    elif until != "critical":
        raise ValueError(f"until must be 'critical' or 'minimum'; got {until!r}")
    solution, times, states, n_rhs = _integrate(
        gradient,
        np.linalg.norm,
        to_vector(point0),
        t_final,
        rtol=rtol,
        atol=atol,
        method=method,
        t_eval=t_eval,
        gradient_tol=gradient_tol,
        progress=progress,
        throw=throw,
        name="gradient flow",
        batch_gradient=lambda states: _flat_gradient(problem, states.shape[:1])[1](states),
        stop_value=stop_value,
    )
    points = from_vector(states, problem.widths)
    loss, gradient_norm, drift = _diagnostics(problem, points)
    return Trajectory(
        problem,
        times,
        points,
        loss,
        gradient_norm,
        drift,
        method,
        rtol=rtol,
        atol=atol,
        n_rhs=n_rhs,
        n_steps=solution.t.size - 1,
        status=int(solution.status),
        message=str(solution.message),
    )


def gradient_descent(
    problem: Problem,
    point0,
    step: float,
    n_steps: int,
    *,
    record_every: int = 1,
    gradient_tol: float | None = None,
    progress: bool = True,
    throw: bool = True,
) -> Trajectory:
    """Gradient descent ``W_i <- W_i - step * grad_{W_i} L`` for ``n_steps`` steps.

    Parameters
    ----------
    problem : Problem
    point0 : tuple of ndarray
    step : float
        Step size, positive. Near a global minimum descent is stable for
        ``step < 2 / lambda_max(Hessian)``.
    n_steps : int
        Number of steps, positive.
    record_every : int
        Keep every ``record_every``-th iterate (and the last one).
    gradient_tol : float, optional
        Stop once ``||grad L|| < gradient_tol``.
    progress : bool
        Show a tqdm bar (only on a terminal).
    throw : bool
        Raise ``RuntimeError`` if the iterates overflow; otherwise report it on the result.

    Returns
    -------
    Trajectory
        ``times`` are ``k * step``. The conserved quantities are not conserved by descent: each
        step changes ``C_i`` by exactly ``step^2 (G_{i+1}^T G_{i+1} - G_i G_i^T)``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    point = as_point(point0, "point0", widths=problem.widths)
    if not np.isscalar(step) or not np.isfinite(step) or step <= 0:
        raise ValueError(f"step must be a positive finite number; got {step!r}")
    for name, value in (("n_steps", n_steps), ("record_every", record_every)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if gradient_tol is not None and not gradient_tol > 0:
        raise ValueError(f"gradient_tol must be positive; got {gradient_tol!r}")
    recorded, steps = [point], [0]
    status, message = 0, f"completed {n_steps} steps"
    n_done = n_rhs = 0
    bar = tqdm(total=n_steps, desc="gradient descent", disable=None if progress else True, leave=False)
    with bar, np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, n_steps + 1):
            gradient = problem._gradient(point)
            n_rhs += 1
            gradient_norm = np.sqrt(_squared_norm(gradient))
            if gradient_tol is not None and gradient_norm < gradient_tol:
                status, message = 1, "gradient norm below gradient_tol"
                break
            candidate = tuple(W - step * G for W, G in zip(point, gradient))
            if not np.isfinite(gradient_norm) or not all(np.all(np.isfinite(W)) for W in candidate):
                status, message = -1, f"iterates overflowed at step {k}: step = {step} is too large"
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
        loss, gradient_norm, drift = _diagnostics(problem, points)
    return Trajectory(
        problem,
        step * np.asarray(steps, dtype=float),
        points,
        loss,
        gradient_norm,
        drift,
        "gradient_descent",
        step=float(step),
        n_rhs=n_rhs,
        n_steps=n_done,
        status=status,
        message=message,
    )
