"""Many gradient flows at once: one ODE over a stacked batch of starts, and the :class:`Ensemble` it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from . import _ode
from ._io import ENSEMBLE_ARRAYS, ENSEMBLE_FORMAT, ENSEMBLE_META, load_record, save_record
from ._numerics import readonly
from ._ode import Status, status_message
from .critical import minimum_threshold
from .flow import Trajectory
from .network import as_point, end_to_end
from .problem import Problem

__all__ = ["Ensemble", "ensemble_flow"]

# method="auto" with shared_steps=True passes the members' Hessians to LSODA as one band of (2N - 1) x (B N) entries
# while it has at most this many (400 MB); beyond, it integrates explicitly (DOP853).
ENSEMBLE_JACOBIAN_ENTRIES = 50_000_000


@dataclass(frozen=True, eq=False)
class Ensemble:
    """``B`` gradient flows integrated together on one time grid.

    ``ensemble[k]`` is member ``k`` as a :class:`~quotient.flow.Trajectory`; ``len(ensemble)`` is ``B``.

    Parameters
    ----------
    problem : Problem
        The problem whose gradient flow every member follows.
    times : ndarray, shape (T,)
        The shared sample times.
    points : tuple of ndarray
        Layers with leading member and time axes, ``W_i`` of shape ``(B, T, d_i, d_{i-1})``.
    loss, gradient_norm, conservation_drift : ndarray, shape (B, T)
        As on :class:`~quotient.flow.Trajectory`, per member.
    converged_time : ndarray, shape (B,)
        When the member's ``||grad L||`` first fell through ``gradient_atol`` (where
        :func:`~quotient.flow.gradient_flow` would have stopped it): the end of the solver step in
        which it did, or the event's time for the last member. NaN if it never did (or no
        ``gradient_atol`` was given).
    member_status : ndarray of int, shape (B,)
        Each member's :class:`~quotient.flow.Status` as an integer: ``1`` the member reached
        ``gradient_atol``; ``0`` it did not by the last time; ``-1`` the solver failed.
    method : str
        The method asked for (:func:`ensemble_flow`'s ``method``); ``meta["solver"]`` says what ran.
    rtol, atol : float
        The tolerances asked for, per member (with shared steps the solver ran with them divided
        by ``sqrt(B)``).
    gradient_atol : float or None
        The bound on ``||grad L||`` the members stopped at, or ``None`` (no early stop).
    n_rhs : int
        Number of gradient evaluations: batched ones (each evaluates all ``B`` members) with
        shared steps, single-member ones (all members and passes) without.
    n_steps : int
        Number of accepted solver steps: shared ones, or the sum of the members' own.
    status : Status
        ``Status.FINAL_TIME`` (0) reached the final time; ``Status.GRADIENT_BOUND`` (1) every member
        reached ``gradient_atol``; ``Status.FAILED`` (-1) failed (an ``IntEnum``).
    message : str
        The sentence of :func:`quotient._ode.status_message` for ``status``.
    meta : dict
        What the solver reports besides: ``"solver"``, ``"n_hessians"``, ``"shared_steps"``.
    """

    problem: Problem
    times: np.ndarray
    points: tuple
    loss: np.ndarray
    gradient_norm: np.ndarray
    conservation_drift: np.ndarray
    converged_time: np.ndarray
    member_status: np.ndarray
    method: str
    rtol: float
    atol: float
    gradient_atol: float | None = None
    n_rhs: int = 0
    n_steps: int = 0
    status: Status = Status.FINAL_TIME
    message: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "status", Status(self.status))
        for name in ("times", "loss", "gradient_norm", "conservation_drift", "converged_time"):
            object.__setattr__(self, name, readonly(getattr(self, name)))
        status = np.array(self.member_status, dtype=np.int64)
        status.flags.writeable = False
        object.__setattr__(self, "member_status", status)
        object.__setattr__(self, "points", tuple(readonly(layer) for layer in self.points))

    @property
    def success(self) -> bool:
        """Whether the run did not fail (``status`` is not ``Status.FAILED``)."""
        return self.status >= 0

    def __len__(self) -> int:
        return self.loss.shape[0]

    def __getitem__(self, k) -> Trajectory:
        """Member ``k`` as a :class:`~quotient.flow.Trajectory` on the shared times."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"an Ensemble is indexed by a member number; got {k!r}")
        if not -len(self) <= k < len(self):
            raise IndexError(f"member {k} out of range for an ensemble of {len(self)}")
        status = int(self.member_status[k])
        return Trajectory(
            problem=self.problem,
            times=self.times,
            points=tuple(layer[k] for layer in self.points),
            loss=self.loss[k],
            gradient_norm=self.gradient_norm[k],
            conservation_drift=self.conservation_drift[k],
            method=self.method,
            rtol=self.rtol,
            atol=self.atol,
            n_rhs=self.n_rhs,
            n_steps=self.n_steps,
            status=status,
            message=self.message if status < 0 else status_message(status),
            meta={"ensemble_member": int(k) % len(self)},
        )

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    @property
    def final_points(self):
        """The last sample of every member: layers of shape ``(B, d_i, d_{i-1})``."""
        return tuple(layer[:, -1] for layer in self.points)

    @property
    def end_to_end(self) -> np.ndarray:
        """``W(t)`` of every member, shape ``(B, T, d_h, d_0)``."""
        return end_to_end(self.points)

    def save(self, path, *, overwrite: bool = False) -> str:
        """Write the ensemble and its problem to one ``.npz`` file; return the path.

        Written through a temporary file and never over an existing one unless ``overwrite``.

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
        ValueError
            If ``path`` does not end in ``.npz``, or the problem's loss is not the square loss.
        """
        return save_record(path, ENSEMBLE_FORMAT, self, ENSEMBLE_ARRAYS, ENSEMBLE_META, overwrite)

    @classmethod
    def load(cls, path) -> Ensemble:
        """Read an ensemble written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            A ``.npz`` file of :meth:`save` (files from before issue 15, whose header names the
            bound ``gradient_tol``, load too).

        Returns
        -------
        Ensemble
            Equal in every array and setting to the one saved.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        FileFormatError
            If ``path`` is not a quotient ensemble file, or is corrupt or truncated.
        """
        return load_record(path, cls, ENSEMBLE_FORMAT, ENSEMBLE_ARRAYS, ENSEMBLE_META)


def ensemble_flow(
    problem: Problem,
    points,
    t_final: float,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    method: str = "auto",
    t_eval=101,
    gradient_atol: float | None = None,
    until: str = "critical",
    shared_steps: bool | None = None,
    progress: bool = True,
    throw: bool = True,
) -> Ensemble:
    """Integrate the gradient flow ``dW_i/dt = -grad_{W_i} L`` from ``B`` starts.

    With shared steps (the default for the explicit methods) the ``B`` flows are one ODE for the
    stacked state of shape ``(B, N)``, whose right-hand side is one batched gradient (batched
    matrix products, ``3h - 3`` of them for all members), so the per-step cost of the solver is
    paid once for the whole batch rather than ``B`` times. Without (the default for ``"auto"``
    and the implicit methods) every member is its own run of :func:`~quotient.flow.gradient_flow`'s
    engine, with its own adaptive steps and its own Hessian, one member after another, sampled on
    the shared times.

    Parameters
    ----------
    problem : Problem
        The loss ``L`` whose gradient every member follows.
    points : tuple of ndarray
        The starts, stacked: layers ``W_i`` of shape ``(B, d_i, d_{i-1})``.
    t_final : float
        Final time, positive.
    rtol, atol : float
        Tolerances per member, as in :func:`~quotient.flow.gradient_flow`.
    method : str
        As in :func:`~quotient.flow.gradient_flow`: ``"auto"`` (default; compiled DOP853 steps,
        LSODA with the exact Hessian once stiff, every member with steps of its own) or one of
        scipy's methods by name. 256 members of explore's problem (4-8-8-4 from 1e-2) to
        ``t = 20`` take 0.98 s with ``"auto"`` against 2.49 s for DOP853 on the stacked batch.
    t_eval : int or array_like or None
        Sample times shared by all members: an integer ``n`` for ``n`` evenly spaced samples from
        0 to the stopping time (default 101), increasing times in ``[0, t_final]``, or ``None``
        for the solver's own steps (shared steps only; ``B`` times the memory of one trajectory
        per step).
    gradient_atol : float, optional
        Stop once every member has ``||grad L|| < gradient_atol`` (see Notes).
    until : {"critical", "minimum"}
        As in :func:`~quotient.flow.gradient_flow`: with ``"minimum"`` a member converges only
        where, in addition, its loss is closer to the global minimum than to any other critical
        value (square-loss problems).
    shared_steps : bool, optional
        ``True``: one ODE over the batch, whose steps all members share (with ``"auto"``, scipy's
        DOP853 on the batch hands over to LSODA once stiff, with the members' Hessians as one band
        of half-width ``N - 1`` while it has at most ``ENSEMBLE_JACOBIAN_ENTRIES`` entries). ``False``: every member with steps of its own.
        ``None`` (default): separate for ``"auto"`` and the implicit methods, shared for scipy's
        explicit Runge-Kutta methods (``"DOP853"``, ``"RK45"``, ``"RK23"``). Shared steps cost
        few batched gradients where the members' step sizes agree, but a stiff batch steps as
        finely as its stiffest member at every time (each member's plateau end forces small steps
        on all, and the steps grow with ``B``: 79 k for 16 stiff members, 152 k for 32; 256 would
        take hours, against minutes with separate steps).
    progress : bool
        Show a tqdm bar (only on a terminal).
    throw : bool
        Raise ``RuntimeError`` when the solver fails; with ``False`` the failure is reported on
        the result.

    Returns
    -------
    Ensemble
        The ``B`` runs on the shared times; ``meta["solver"]`` says what ran,
        ``meta["shared_steps"]`` whether the steps were shared.

    Raises
    ------
    TypeError
        If ``problem`` is not a :class:`Problem`, ``shared_steps`` is not a bool or ``None``, or
        ``method`` is neither a name nor a solver class.
    ValueError
        If ``points`` is not a stacked batch of the problem's widths or is empty, a tolerance or
        ``t_final`` is not positive, ``t_eval`` is invalid (or ``None`` without shared steps),
        or ``method`` or ``until`` is unknown.
    RuntimeError
        If the solver fails for a member and ``throw`` is true.

    Notes
    -----
    With shared steps, one ODE over the batch shares its step sizes: the controller of ``solve_ivp`` bounds the
    root-mean-square of the scaled local error over all ``B N`` components. To keep each member's
    error within the ``rtol``, ``atol`` it would get alone, the solver runs with both divided by
    ``sqrt(B)`` (a member's mean square is at most ``B`` times the batch's); the members therefore
    agree with separate :func:`~quotient.flow.gradient_flow` runs to about the tolerance.

    Early stopping is per member in what it reports and collective in what it computes. Member
    ``k`` converges where ``gradient_flow`` would stop it: at the first time its ``||grad L_k||``
    falls through ``gradient_atol`` from above (a member that starts near a saddle with a gradient
    already below the tolerance has not converged until it has escaped and come down again).
    The batch stops when the last member has converged (a terminal event located to the
    solver's precision), or at ``t_final``. Members that converged earlier keep following their
    own flow meanwhile, which only brings them closer to their limit point; ``converged_time``
    says when each one converged, and a member still on its way at ``t_final`` has
    ``member_status == 0``.

    With separate steps every member keeps the ``rtol``, ``atol`` asked for and converges exactly
    where its own ``gradient_flow`` stops (``converged_time`` is that event's time). With
    ``gradient_atol`` the members are integrated twice, once each to find its stopping time and
    once each to sample the shared times up to the last of them (the two passes of
    ``gradient_flow`` with an integer ``t_eval``); ``n_steps`` is the sum of the members' steps
    (``meta["member_steps"]`` per member) and ``n_rhs`` counts single-member gradients. A member
    that fails has ``member_status == -1`` and NaN samples after its last finite state; the
    others run on (``throw=False``).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    if not isinstance(points, (tuple, list)) or (points and np.ndim(points[0]) != 3):
        raise ValueError(
            "points must be the starts stacked layer by layer, a tuple of arrays W_i of shape "
            "(B, d_i, d_{i-1}); stack a list of points with tuple(np.stack(layers) for layers in zip(*starts))"
        )
    points = as_point(points, "points", widths=problem.widths, batch=True)
    members = points[0].shape[0]
    if members == 0:
        raise ValueError("points must hold at least one member; got a batch of 0")
    method = _ode.check_flow_options(rtol, atol, method, gradient_atol)
    if shared_steps is None:
        solver = _ode.resolve(method, problem.n_params, problem.n_params <= _ode.DENSE_JACOBIAN_LIMIT)[0]
        shared_steps = method != _ode.DEFAULT_METHOD and solver in _ode.EXPLICIT.values()
    elif not isinstance(shared_steps, (bool, np.bool_)):
        raise TypeError(f"shared_steps must be True, False or None; got {shared_steps!r}")
    if not shared_steps:
        return _separate_flows(
            problem, points, t_final, rtol=rtol, atol=atol, method=method, t_eval=t_eval, gradient_atol=gradient_atol, until=until,
            progress=progress, throw=throw,
        )  # fmt: skip
    threshold = None
    if until == "minimum":
        threshold = minimum_threshold(problem)
    elif until != "critical":
        raise ValueError(f"until must be 'critical' or 'minimum'; got {until!r}")
    n = problem.n_params
    layers_of, gradient = _ode.flat_gradient(problem, (members,))
    scale = np.sqrt(members)

    def member_norms(flat):
        return np.sqrt(np.sum(flat.reshape(members, n) ** 2, axis=1))

    def batch_gradient(states):
        lead = (states.shape[0], members)
        return _ode.flat_gradient(problem, lead)[1](states).reshape(states.shape)

    # Per-member stopping, as gradient_flow's event: member k stops at the first downward
    # crossing of ||grad L_k|| = gradient_atol. Its state (0 not yet above the tolerance, 1 above,
    # 2 crossed) is updated at accepted steps only, and a step's root search sees the states of
    # the step before, so the event's value max_k v_k is continuous within every step
    # (v_k = +1 before member k was above, ||grad L_k|| - gradient_atol while it is, -1 after).
    committed = np.zeros(members, dtype=np.int64)
    pending = committed.copy()
    crossed_at = np.full(members, np.nan)

    def stop_value(t, y, flat, accepted):
        excess = member_norms(flat) - gradient_atol
        if threshold is not None:  # until="minimum": a member above the threshold has not converged
            excess = np.where(problem.end_to_end_loss.value(end_to_end(layers_of(y))) >= threshold, 1.0, excess)
        if accepted:
            committed[:] = pending
            pending[(pending == 0) & (excess > 0)] = 1
            newly = (pending == 1) & (excess < 0)
            pending[newly] = 2
            crossed_at[newly] = t
        return float(np.max(np.where(committed == 0, 1.0, np.where(committed == 2, -1.0, excess))))

    y0 = np.concatenate([layer.reshape(members, -1) for layer in points], axis=1)
    banded = n <= _ode.DENSE_JACOBIAN_LIMIT and (2 * n - 1) * members * n <= ENSEMBLE_JACOBIAN_ENTRIES
    result, times, states, counts = _ode.integrate(
        lambda y: gradient(y).reshape(-1),
        None,
        y0.reshape(-1),
        t_final,
        rtol=rtol / scale,
        atol=atol / scale,
        method=method,
        t_eval=t_eval,
        gradient_atol=gradient_atol,
        progress=progress,
        throw=throw,
        name=f"ensemble flow ({members} members)",
        batch_gradient=batch_gradient,
        stop_value=stop_value,
        hessian=_ode.banded_block_hessian(problem, members) if banded else None,
        band=n - 1,
    )
    # states: (T, B N) -> per member (B, T, N)
    per_member = np.ascontiguousarray(states.reshape(times.size, members, n).transpose(1, 0, 2))
    converged_time = np.minimum(crossed_at, result.t_end)  # the last one crossed at the event
    member_status = np.isfinite(converged_time).astype(np.int64)
    if result.status < 0:
        member_status = np.full(members, -1, dtype=np.int64)
    return _ensemble(
        problem, times, per_member, converged_time=converged_time, member_status=member_status, method=method, rtol=rtol,
        atol=atol, gradient_atol=gradient_atol, n_rhs=counts["rhs"], n_steps=result.n_steps, status=result.status,
        message=result.message, meta={"solver": result.description, "n_hessians": counts["jac"], "shared_steps": True},
    )  # fmt: skip


def _ensemble(problem, times, states, *, method, rtol, atol, gradient_atol, **outcome) -> Ensemble:
    """The :class:`Ensemble` of flat member states ``(B, T, N)`` on ``times``, with its diagnostics.

    ``outcome``: ``converged_time``, ``member_status``, ``n_rhs``, ``n_steps``, ``status``,
    ``message``, ``meta``, as the runs found them.
    """
    layers = _ode.flat_gradient(problem, states.shape[:2])[0](states)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged member reports inf, not a warning
        loss, gradient_norm, drift = _ode.diagnostics(problem, layers)
    return Ensemble(
        problem=problem,
        times=times,
        points=tuple(np.array(layer) for layer in layers),
        loss=loss,
        gradient_norm=gradient_norm,
        conservation_drift=drift,
        method=method if isinstance(method, str) else method.__name__,
        rtol=float(rtol),
        atol=float(atol),
        gradient_atol=None if gradient_atol is None else float(gradient_atol),
        **outcome,
    )


def _separate_solver(method, n, has_jacobian, compiled, runs) -> str:
    """What the members' runs did, in one line: the method and how many of them switched."""
    text = "each member its own run: " + _ode.resolve(method, n, has_jacobian, compiled)[2]
    if runs["switched"]:
        text += f"; {runs['switched']} of {runs['all']} runs switched to LSODA with the exact Hessian once stiff"
    if runs["crawled"]:
        text += f", {runs['crawled']} of them on to BDF (LSODA crawling in Adams mode)"
    return text


def _separate_flows(problem, points, t_final, *, rtol, atol, method, t_eval, gradient_atol, until, progress, throw):
    """:func:`ensemble_flow` with ``shared_steps=False``: each member its own run of gradient_flow's engine.

    With ``gradient_atol`` two passes: the first finds each member's stopping time (the event of
    :func:`~quotient.flow.gradient_flow`, keeping no samples), the second samples every member on
    the shared times up to the last of them (or ``t_final`` when a member did not converge).
    """
    members, n = points[0].shape[0], problem.n_params
    t_final = _ode.check_time(t_final)
    if t_eval is None:
        raise ValueError(
            "t_eval=None (the solver's own steps) needs shared steps; with shared_steps=False (the default for "
            "implicit methods and 'auto') every member has steps of its own: pass a number of samples or sample times"
        )
    t_eval, n_samples = _ode.parse_t_eval(t_eval, t_final)
    starts = np.concatenate([layer.reshape(members, -1) for layer in points], axis=1)
    engine = _ode.flow_engine(problem, until, gradient_atol)
    layers = engine.pop("layers")
    counts = {"rhs": 0, "jac": 0}
    steps = np.zeros(members, dtype=np.int64)
    member_status = np.zeros(members, dtype=np.int64)
    converged_time = np.full(members, np.nan)
    failures = {}
    runs = {"all": 0, "switched": 0, "crawled": 0}  # the runs of the members, and how many switched method
    passes = 1 if gradient_atol is None else 2
    bar = tqdm(total=passes * members, desc=f"ensemble flow ({members} members)", unit="run", disable=None if progress else True, leave=False)

    def flow(k, y0, t_end, times, bound, guard):
        result, _, states, used = _ode.integrate(
            y0=y0, t_final=t_end, rtol=rtol, atol=atol, method=method, t_eval=times, gradient_atol=bound, progress=False,
            throw=False, name=f"ensemble flow, member {k}", guard=_ode.precision_guard(problem, layers) if guard else None, **engine,
        )  # fmt: skip
        for key in counts:
            counts[key] += used[key]
        runs["all"] += 1
        runs["switched"] += result.switched_at is not None
        runs["crawled"] += result.crawled_at is not None
        if result.status < 0:
            member_status[k] = -1
            failures.setdefault(k, f"member {k} failed at t = {result.t_end:.6g}: {result.message}")
            if throw:
                bar.close()
                raise RuntimeError(
                    f"ensemble flow {failures[k]}; try method='auto', a smaller t_final or looser tolerances, or pass throw=False"
                )
        return result, states

    with bar:
        t_end = t_final
        stops = [None] * members  # where the first pass stopped each converged member
        if gradient_atol is not None:
            for k in range(members):
                result, ends = flow(k, starts[k], t_final, 2, gradient_atol, True)
                bar.update()
                steps[k] = result.n_steps
                if result.status == Status.GRADIENT_BOUND:
                    member_status[k], converged_time[k], stops[k] = 1, result.t_end, ends[-1]
            if not np.any(member_status == 0) and np.any(member_status == 1):
                t_end = float(np.nanmax(converged_time))
        if n_samples is not None:
            times = np.linspace(0.0, t_end, n_samples)
        else:
            times = t_eval[t_eval <= t_end]
            if times.size == 0 or times[-1] < t_end < t_final:  # stopped between two samples: the stop is the last one
                times = np.append(times, t_end)
        states = np.full((members, times.size, n), np.nan)
        for k in range(members):
            if stops[k] is None:
                result, sampled = flow(k, starts[k], t_end, times, None, gradient_atol is None)
                states[k, : len(sampled)] = sampled
                if gradient_atol is None:
                    steps[k] = result.n_steps
            else:  # converged: the samples up to its stop, then the flow on from the stop to t_end
                stop = converged_time[k]
                own = int(np.sum(times <= stop))
                if np.any(times[:own] > 0):
                    states[k, :own] = flow(k, starts[k], stop, times[:own], None, False)[1]
                else:
                    states[k, :own] = starts[k]
                if own < times.size:  # the flow is autonomous: on from the stop at t = stop is a flow from it at 0
                    later = flow(k, stops[k], t_end - stop, times[own:] - stop, None, False)[1]
                    states[k, own : own + len(later)] = later
            bar.update()
    if failures:
        status = Status.FAILED
    elif gradient_atol is not None and np.all(member_status == Status.GRADIENT_BOUND):
        status = Status.GRADIENT_BOUND
    else:
        status = Status.FINAL_TIME
    message = status_message(status, failure=failures[min(failures)] if failures else "")
    return _ensemble(
        problem, times, states, converged_time=converged_time, member_status=member_status, method=method, rtol=rtol,
        atol=atol, gradient_atol=gradient_atol, n_rhs=counts["rhs"], n_steps=int(steps.sum()), status=status, message=message,
        meta={
            "solver": _separate_solver(method, problem.n_params, engine["hessian"] is not None, engine["compiled"] is not None, runs),
            "n_hessians": counts["jac"], "shared_steps": False, "member_steps": steps.tolist(),
        },  # fmt: skip
    )
