"""Gradient flow and gradient descent, and the :class:`Trajectory` they return."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from . import _ode
from ._numerics import readonly, squared_norm
from ._io import FileFormatError, load_run, save_run
from .critical import minimum_threshold
from .network import as_point, check_positive, conserved_quantities, end_to_end, from_vector, to_vector
from .problem import Problem, SquareLoss

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
            object.__setattr__(self, name, readonly(getattr(self, name)))
        object.__setattr__(self, "points", tuple(readonly(layer) for layer in self.points))

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
    gradient_norm = np.sqrt(squared_norm(gradient))
    charges = conserved_quantities(points)
    if charges:
        drift = np.sqrt(sum(np.sum((C - C[..., :1, :, :]) ** 2, axis=(-2, -1)) for C in charges))
        scale = squared_norm(points)
        drift = drift / np.maximum(np.maximum(scale, scale[..., :1]), np.finfo(float).tiny)
    else:
        drift = np.zeros(points[0].shape[:-2])
    return loss, gradient_norm, drift


def _check_flow_options(rtol, atol, method, gradient_tol):
    """The argument checks shared by the flows: tolerances and ``method``; returns the checked method."""
    check_positive("rtol", rtol)
    check_positive("atol", atol, zero=True)
    if gradient_tol is not None:
        check_positive("gradient_tol", gradient_tol)
    return _ode.check_method(method)


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


def _flat_hessian(problem: Problem):
    """``y -> Hess L(y)``, the dense ``(N, N)`` Hessian on flat states (the Jacobian of the flow, negated).

    The ``N`` Hessian-vector products along the unit vectors run as one batched
    :meth:`Problem._hvp`, with the unit vectors made once here; symmetrised like
    :meth:`Problem.hessian`.
    """
    layers, _ = _flat_gradient(problem)
    basis = from_vector(np.eye(problem.n_params), problem.widths)

    def hessian(y):
        H = to_vector(problem._hvp(layers(y), basis))
        H += H.T
        H *= 0.5
        return H

    return hessian


def _banded_block_hessian(problem: Problem, members: int):
    """``y -> `` the block-diagonal Hessian of ``B`` stacked members in LSODA's packed banded form.

    The state is ``B`` flat points one after the other (shape ``(B N,)``), so the Hessian of the
    sum of the members' losses is block diagonal, each block one member's ``(N, N)`` Hessian:
    banded with half-bandwidth ``N - 1``. Returned as ``J[N - 1 + i - j, j]`` of shape
    ``(2N - 1, B N)``; the ``B N`` Hessian-vector products are one batched :meth:`Problem._hvp`.
    """
    n = problem.n_params
    layers, _ = _flat_gradient(problem, (members, 1))
    basis = from_vector(np.eye(n), problem.widths)
    local = np.arange(n)
    rows = (n - 1 + local[:, None] - local[None, :]).ravel()  # (a, b) -> packed row of block entry a, b
    columns = (np.arange(members)[:, None] * n + np.tile(local, n)[None, :]).ravel()
    rows = np.tile(rows, members)

    def hessian(y):
        blocks = to_vector(problem._hvp(layers(y), basis))  # (B, N, N): row b is H e_b, i.e. column b
        packed = np.zeros((2 * n - 1, members * n))
        packed[rows, columns] = 0.5 * (blocks + np.swapaxes(blocks, 1, 2)).transpose(0, 2, 1).reshape(-1)
        return packed

    return hessian


def _precision_guard(problem: Problem, layers, every: int = 8, patience: int = 12):
    """``guard(t, y, f)``: a message once ``||grad L||`` stays at the rounding error of computing it.

    In float64 the gradient ``grad_j = B_j^T (W - Sigma) F_{j-1}^T`` carries an error of about
    ``eps prod_{i != j} ||W_i||_2 (prod_i ||W_i||_2 + ||Sigma||)`` (the products are formed from
    layers of those sizes, however small ``W - Sigma`` is). Where ``||grad L||`` stays below that
    level (checked every ``every`` accepted steps, ``patience`` checks in a row) and the level is
    above ``sqrt(eps)`` (far above the error of a flow at the scale of ``Sigma``: it takes layers
    of norm ``>~ 10`` at depth 4), the field is rounding noise and a solver would crawl on it
    forever (an init of scale ``1e3`` does: the conserved quantities keep the layers large); the
    run stops with this message. Layers of more than 4096 entries use the Frobenius norm, an
    upper bound of the spectral norm.
    """
    eps = np.finfo(float).eps
    target = 0.0 if problem.target is None else float(np.linalg.norm(problem.target, 2))
    state = {"calls": 0, "below": 0}

    def guard(t, y, f):
        state["calls"] += 1
        if state["calls"] % every:
            return None
        norms = np.array([np.linalg.norm(W, 2) if W.size <= 4096 else np.linalg.norm(W) for W in layers(y)])
        product = float(np.prod(norms))
        level = eps * float(np.max(product / np.maximum(norms, np.finfo(float).tiny))) * (product + target)
        gradient_norm = float(np.linalg.norm(f))
        if level <= np.sqrt(eps) or gradient_norm > level:
            state["below"] = 0
            return None
        state["below"] += 1
        if state["below"] < patience:
            return None
        return (
            f"the flow is below the resolution of float64 at t = {t:.6g}: ||grad L|| = {gradient_norm:.3g} has stayed "
            f"within the rounding error ~{level:.3g} of computing it from layers of norms up to {norms.max():.3g} "
            "(whose products cancel to the end-to-end map), so the solver cannot follow the flow further; "
            "start from a smaller init"
        )

    return guard


def _flow_engine(problem: Problem, until: str, gradient_tol):
    """The field of one gradient flow of ``problem`` as :func:`_integrate` takes it.

    Returns a dict of ``layers`` (flat state -> point, for :func:`_precision_guard`, which holds
    the state of one run and is made per run), and ``gradient``, ``gradient_norm``,
    ``batch_gradient``, ``stop_value`` (``until="minimum"``) and ``hessian`` (dense, for up to
    ``quotient._ode.DENSE_JACOBIAN_LIMIT`` parameters), the keywords of :func:`_integrate`.
    Shared by :func:`gradient_flow` and the members of ``ensemble_flow`` that do not share steps.
    """
    layers, gradient = _flat_gradient(problem)
    stop_value = None
    if until == "minimum":
        threshold = minimum_threshold(problem)
        if gradient_tol is not None:

            def stop_value(t, y, field, accepted):
                if problem.end_to_end_loss.value(end_to_end(layers(y))) >= threshold:
                    return 1.0
                return float(np.linalg.norm(field)) - gradient_tol

    elif until != "critical":
        raise ValueError(f"until must be 'critical' or 'minimum'; got {until!r}")
    return dict(
        layers=layers,
        gradient=gradient,
        gradient_norm=np.linalg.norm,
        batch_gradient=lambda states: _flat_gradient(problem, states.shape[:1])[1](states),
        stop_value=stop_value,
        hessian=_flat_hessian(problem) if problem.n_params <= _ode.DENSE_JACOBIAN_LIMIT else None,
    )


def _integrate(
    gradient, gradient_norm, y0, t_final, *, rtol, atol, method, t_eval, gradient_tol, progress, throw, name, batch_gradient=None,
    stop_value=None, hessian=None, band=None, guard=None,
):
    """Integrate ``dy/dt = -gradient(y)``; the shared engine of the flows (:func:`quotient._ode.run`).

    ``gradient_norm(g)`` maps a flat gradient to the norm that ``gradient_tol`` is compared with;
    ``stop_value(t, y, g, accepted)``, if given, is the terminal event's value instead (the flow
    stops where it falls through 0), told whether ``t`` ends an accepted step (``False`` during
    the event's root search inside a step).
    ``batch_gradient(Y)``, for ``Y`` of shape ``(S, y0.size)``, evaluates ``gradient`` on ``S``
    states at once; with it, samples of the explicit methods come from fresh Runge-Kutta steps
    rather than from the interpolant. ``hessian(y)``, the dense ``(n, n)`` Jacobian of
    ``gradient``, is what ``method="auto"`` and the implicit methods need to be fast; with
    ``band``, ``hessian`` returns it in LSODA's packed banded form (:func:`quotient._ode.run`).

    ``guard(t, y, f)`` (:func:`quotient._ode.run`) may stop a run that cannot go on.
    Only the samples are kept: with ``t_eval`` an integer and ``gradient_tol`` given, the
    stopping time is found first and the flow integrated again to sample it (twice the
    gradients, not every step's state in memory).

    Returns ``(result, times, states, counts)``: a :class:`quotient._ode.Result` describing the
    run that found the end, ``states`` of shape ``(T, y0.size)``, ``counts`` with the gradient
    (``"rhs"``) and Hessian (``"jac"``) evaluations of all passes.
    """
    t_final = _check_time(t_final)
    t_eval, n_samples = _parse_t_eval(t_eval, t_final)
    if gradient_tol is not None and not gradient_tol > 0:
        raise ValueError(f"gradient_tol must be positive; got {gradient_tol!r}")
    solver, use_jacobian, description = _ode.resolve(method, np.size(y0), hessian is not None)
    if band is not None and use_jacobian and solver is not _ode.LSODA:
        use_jacobian, description = False, solver.__name__  # a banded Jacobian is LSODA's form only

    def field(y):
        flat = gradient(y)
        np.negative(flat, out=flat)
        return flat

    jacobian = None
    if use_jacobian:

        def jacobian(y):
            H = hessian(y)
            np.negative(H, out=H)
            return H

    event = None
    if gradient_tol is not None:
        if stop_value is not None:

            def event(t, y, f, accepted):
                return stop_value(t, y, -f, accepted)

        else:

            def event(t, y, f, accepted):
                return gradient_norm(f) - gradient_tol

    fresh_step = None
    if batch_gradient is not None:

        def fresh_step(starts, lengths):
            return _ode.rk_step(lambda Y: -batch_gradient(Y), solver, starts, lengths)

    counts = {"rhs": 0, "jac": 0}
    bar = tqdm(total=t_final, desc=name, unit="t", disable=None if progress else True, leave=False)
    options = dict(solver=solver, rtol=rtol, atol=atol, jac=jacobian, band=band if use_jacobian else None, fresh_step=fresh_step)
    if method == _ode.SWITCHING and use_jacobian:
        options["switch_to"] = _ode.LSODA
    options.update(bar=bar, counter=counts, guard=guard)
    try:
        two_pass = n_samples is not None and n_samples > 2 and event is not None  # 2 samples: the start and the end
        times = np.linspace(0.0, t_final, n_samples) if n_samples is not None and not two_pass else t_eval
        result = _ode.run(field, y0, t_final, t_eval=np.empty(0) if two_pass else times, event=event, **options)
        if two_pass:
            first = result
            bar.reset()
            options["guard"] = None  # the first pass found where the run ends
            result = _ode.run(field, y0, first.t_end, t_eval=np.linspace(0.0, first.t_end, n_samples), **options)
            result.status, result.message, result.n_steps = first.status, first.message, first.n_steps
    finally:
        bar.close()
    if result.status == 1:
        result.message = "gradient norm below gradient_tol"
    result.description = description
    if method == _ode.SWITCHING and use_jacobian:
        at = result.switched_at if not two_pass else first.switched_at
        result.description = description + (f" (at t = {at:.6g})" if at is not None else " (never stiff: DOP853 throughout)")
    if result.status < 0 and throw:
        raise RuntimeError(
            f"{name} failed at t = {result.t_end:.6g}: {result.message}; "
            "try method='auto', a smaller t_final or looser tolerances, or pass throw=False"
        )
    return result, result.times, result.states, counts


def gradient_flow(
    problem: Problem,
    point0,
    t_final: float,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    method: str = "auto",
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
        Relative and absolute tolerances of the solver's local error control.
    method : str
        ``"auto"`` (default): LSODA with the exact Hessian as its Jacobian (for up to
        ``quotient._ode.DENSE_JACOBIAN_LIMIT`` parameters; DOP853 above). LSODA's Adams
        formulas (orders 1-12) take the non-stiff phases and its BDF formulas (orders 1-5) the
        stiff ones, switched by its own stiffness test, so the steps stay few both on the
        plateaus, where the field is slow, and after a mode is learned, where the Hessian has
        eigenvalues ``~ h sigma^{2-2/h}`` that would bound an explicit step. Or one of scipy's
        methods by name: ``"DOP853"``, ``"RK45"``, ``"RK23"`` (explicit), ``"Radau"``,
        ``"BDF"``, ``"LSODA"`` (implicit; these get the exact Hessian too when it is small
        enough). Or ``"switching"``: DOP853 until its stiffness test (``h rho > 6.1`` on 15
        steps, Hairer's) says its steps are held by stability, then LSODA with the exact Hessian
        from there on; ``meta["solver"]`` says when it switched.
    t_eval : array_like or int, optional
        Increasing times in ``[0, t_final]`` at which to sample; an integer ``n`` asks for ``n``
        evenly spaced samples from 0 to the time the flow stopped (``t_final``, or earlier with
        ``gradient_tol``; for ``n > 2`` the flow is then integrated twice, once to find that time
        and once to sample it). By default the trajectory holds the solver's own steps. Only the samples are
        kept in memory, never every step. For the explicit methods each sample is one fresh
        step of the method from the last accepted step before it, as accurate as the steps
        themselves; the other methods sample their interpolant (of the step's order).
    gradient_tol : float, optional
        Stop as soon as ``||grad L|| < gradient_tol`` (a terminal event, located by root search
        on the step's interpolant).
    until : {"critical", "minimum"}
        Which points ``gradient_tol`` stops at. ``"critical"``: the first one where the gradient
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
        ``meta["solver"]`` says what ran (e.g. ``"auto"`` resolved to LSODA with the exact
        Hessian), ``meta["n_hessians"]`` how many dense Hessians it evaluated.

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
    method = _check_flow_options(rtol, atol, method, gradient_tol)
    engine = _flow_engine(problem, until, gradient_tol)
    result, times, states, counts = _integrate(
        y0=to_vector(point0),
        t_final=t_final,
        rtol=rtol,
        atol=atol,
        method=method,
        t_eval=t_eval,
        gradient_tol=gradient_tol,
        progress=progress,
        throw=throw,
        name="gradient flow",
        guard=_precision_guard(problem, engine.pop("layers")),
        **engine,
    )
    points = from_vector(states, problem.widths)
    with np.errstate(over="ignore", invalid="ignore"):
        loss, gradient_norm, drift = _diagnostics(problem, points)
    return Trajectory(
        problem,
        times,
        points,
        loss,
        gradient_norm,
        drift,
        method if isinstance(method, str) else method.__name__,
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
            gradient_norm = np.sqrt(squared_norm(gradient))
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
