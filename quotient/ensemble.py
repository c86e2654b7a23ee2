"""Many gradient flows at once: one ODE over a stacked batch of starts, and the :class:`Ensemble` it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _ode
from ._io import FileFormatError, load_run, save_run
from .critical import minimum_threshold
from .flow import (
    Trajectory,
    _banded_block_hessian,
    _check_flow_options,
    _diagnostics,
    _flat_gradient,
    _integrate,
)
from .network import as_point, end_to_end
from .problem import Problem, _readonly

__all__ = ["Ensemble", "ensemble_flow"]

_FORMAT = "quotient.ensemble/1"

# method="auto" passes the members' Hessians to LSODA as one band of (2N - 1) x (B N) entries
# while it has at most this many (400 MB); beyond, it integrates explicitly (DOP853).
ENSEMBLE_JACOBIAN_ENTRIES = 50_000_000


@dataclass(frozen=True, eq=False)
class Ensemble:
    """``B`` gradient flows integrated together on one time grid.

    ``ensemble[k]`` is member ``k`` as a :class:`~quotient.flow.Trajectory`; ``len(ensemble)`` is ``B``.

    Attributes
    ----------
    problem : Problem
    times : ndarray, shape (T,)
        The shared sample times.
    points : tuple of ndarray
        Layers with leading member and time axes, ``W_i`` of shape ``(B, T, d_i, d_{i-1})``.
    loss, gradient_norm, conservation_drift : ndarray, shape (B, T)
        As on :class:`~quotient.flow.Trajectory`, per member.
    converged_time : ndarray, shape (B,)
        When the member's ``||grad L||`` first fell through ``gradient_tol`` (where
        :func:`~quotient.flow.gradient_flow` would have stopped it): the end of the solver step in
        which it did, or the event's time for the last member. NaN if it never did (or no
        ``gradient_tol`` was given).
    member_status : ndarray of int, shape (B,)
        ``1``: the member reached ``gradient_tol``; ``0``: it did not by the last time; ``-1``:
        the solver failed.
    method : str
    rtol, atol : float
        The tolerances asked for, per member (the solver ran with them divided by ``sqrt(B)``).
    gradient_tol : float or None
    n_rhs : int
        Number of batched gradient evaluations (each one evaluates all ``B`` members).
    n_steps : int
        Number of accepted solver steps.
    status : int
        ``0``: reached the final time; ``1``: every member reached ``gradient_tol``; ``-1``: failed.
    message : str
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
    gradient_tol: float | None = None
    n_rhs: int = 0
    n_steps: int = 0
    status: int = 0
    message: str = ""
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for name in ("times", "loss", "gradient_norm", "conservation_drift", "converged_time"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        status = np.array(self.member_status, dtype=np.int64)
        status.flags.writeable = False
        object.__setattr__(self, "member_status", status)
        object.__setattr__(self, "points", tuple(_readonly(layer) for layer in self.points))

    @property
    def success(self) -> bool:
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
            self.problem,
            self.times,
            tuple(layer[k] for layer in self.points),
            self.loss[k],
            self.gradient_norm[k],
            self.conservation_drift[k],
            self.method,
            rtol=self.rtol,
            atol=self.atol,
            n_rhs=self.n_rhs,
            n_steps=self.n_steps,
            status=status,
            message=self.message if status < 0 else ("gradient norm below gradient_tol" if status == 1 else "reached the last time"),
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

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is false.
        ValueError
            If ``path`` does not end in ``.npz``, or the problem's loss is not the square loss.
        """
        meta = {"method": self.method, "rtol": self.rtol, "atol": self.atol, "gradient_tol": self.gradient_tol}
        meta.update(n_rhs=self.n_rhs, n_steps=self.n_steps, status=self.status, message=self.message, meta=self.meta)
        names = ("times", "loss", "gradient_norm", "conservation_drift", "converged_time", "member_status")
        return save_run(path, _FORMAT, self.problem, self.points, meta, {name: getattr(self, name) for name in names}, overwrite)

    @classmethod
    def load(cls, path) -> Ensemble:
        """Read an ensemble written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        FileFormatError
            If ``path`` is not a quotient ensemble file, or is corrupt or truncated.
        """
        names = ("times", "loss", "gradient_norm", "conservation_drift", "converged_time", "member_status")
        problem, points, meta, data = load_run(path, _FORMAT, names)
        keys = ("method", "rtol", "atol", "gradient_tol", "n_rhs", "n_steps", "status", "message", "meta")
        try:
            return cls(problem, data["times"], points, *(data[name] for name in names[1:]), *(meta[key] for key in keys))
        except (KeyError, ValueError, TypeError) as error:
            raise FileFormatError(f"{path} is not a valid quotient ensemble file: {type(error).__name__}: {error}") from None


def ensemble_flow(
    problem: Problem,
    points,
    t_final: float,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    method: str = "DOP853",
    t_eval=101,
    gradient_tol: float | None = None,
    until: str = "critical",
    progress: bool = True,
    throw: bool = True,
) -> Ensemble:
    """Integrate the gradient flow ``dW_i/dt = -grad_{W_i} L`` from ``B`` starts at once.

    The ``B`` flows are one ODE for the stacked state of shape ``(B, N)``, whose right-hand side
    is one batched gradient (batched matrix products, ``3h - 3`` of them for all members), so the
    per-step cost of ``solve_ivp`` is paid once for the whole batch rather than ``B`` times.

    Parameters
    ----------
    problem : Problem
    points : tuple of ndarray
        The starts, stacked: layers ``W_i`` of shape ``(B, d_i, d_{i-1})``.
    t_final : float
        Final time, positive.
    rtol, atol : float
        Tolerances per member, as in :func:`~quotient.flow.gradient_flow`.
    method : str
        One of scipy's methods by name, as in :func:`~quotient.flow.gradient_flow`, default
        ``"DOP853"``; or ``"auto"``: LSODA with the exact Jacobian, here block diagonal (one
        ``(N, N)`` Hessian per member, passed to LSODA as a band of half-width ``N - 1``) while it
        fits in ``ENSEMBLE_JACOBIAN_ENTRIES`` entries, and DOP853 beyond. Pass ``"auto"`` for
        stiff members (plateaus after some modes are learnt: 16 members of the stiff depth-4
        case to ``||grad L|| < 1e-8`` in ~1 minute, where DOP853 takes minutes for each one).
        It is not the default here: the members share their steps, and on non-stiff ensembles
        LSODA then takes ~10 times the steps of DOP853 (256 members of 4-8-8-4 from 1e-2 to
        ``gradient_tol=1e-6``: 128 s against 12 s).
    t_eval : int or array_like or None
        Sample times shared by all members: an integer ``n`` for ``n`` evenly spaced samples from
        0 to the stopping time (default 101), increasing times in ``[0, t_final]``, or ``None``
        for the solver's own steps (``B`` times the memory of one trajectory per step).
    gradient_tol : float, optional
        Stop once every member has ``||grad L|| < gradient_tol`` (see Notes).
    until : {"critical", "minimum"}
        As in :func:`~quotient.flow.gradient_flow`: with ``"minimum"`` a member converges only
        where, in addition, its loss is closer to the global minimum than to any other critical
        value (square-loss problems).
    progress : bool
        Show a tqdm bar (only on a terminal).
    throw : bool
        Raise ``RuntimeError`` when the solver fails; with ``False`` the failure is reported on
        the result.

    Returns
    -------
    Ensemble

    Notes
    -----
    One ODE over the batch shares its step sizes: the controller of ``solve_ivp`` bounds the
    root-mean-square of the scaled local error over all ``B N`` components. To keep each member's
    error within the ``rtol``, ``atol`` it would get alone, the solver runs with both divided by
    ``sqrt(B)`` (a member's mean square is at most ``B`` times the batch's); the members therefore
    agree with separate :func:`~quotient.flow.gradient_flow` runs to about the tolerance.

    Early stopping is per member in what it reports and collective in what it computes. Member
    ``k`` converges where ``gradient_flow`` would stop it: at the first time its ``||grad L_k||``
    falls through ``gradient_tol`` from above (a member that starts near a saddle with a gradient
    already below the tolerance has not converged until it has escaped and come down again).
    The batch stops when the last member has converged (a terminal event located to the
    solver's precision), or at ``t_final``. Members that converged earlier keep following their
    own flow meanwhile, which only brings them closer to their limit point; ``converged_time``
    says when each one converged, and a member still on its way at ``t_final`` has
    ``member_status == 0``.
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
    method = _check_flow_options(rtol, atol, method, gradient_tol)
    threshold = None
    if until == "minimum":
        threshold = minimum_threshold(problem)
    elif until != "critical":
        raise ValueError(f"until must be 'critical' or 'minimum'; got {until!r}")
    n = problem.n_params
    layers_of, gradient = _flat_gradient(problem, (members,))
    scale = np.sqrt(members)

    def member_norms(flat):
        return np.sqrt(np.sum(flat.reshape(members, n) ** 2, axis=1))

    def batch_gradient(states):
        lead = (states.shape[0], members)
        return _flat_gradient(problem, lead)[1](states).reshape(states.shape)

    # Per-member stopping, as gradient_flow's event: member k stops at the first downward
    # crossing of ||grad L_k|| = gradient_tol. Its state (0 not yet above the tolerance, 1 above,
    # 2 crossed) is updated at accepted steps only, and a step's root search sees the states of
    # the step before, so the event's value max_k v_k is continuous within every step
    # (v_k = +1 before member k was above, ||grad L_k|| - gradient_tol while it is, -1 after).
    committed = np.zeros(members, dtype=np.int64)
    pending = committed.copy()
    crossed_at = np.full(members, np.nan)

    def stop_value(t, y, flat, accepted):
        excess = member_norms(flat) - gradient_tol
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
    result, times, states, counts = _integrate(
        lambda y: gradient(y).reshape(-1),
        None,
        y0.reshape(-1),
        t_final,
        rtol=rtol / scale,
        atol=atol / scale,
        method=method,
        t_eval=t_eval,
        gradient_tol=gradient_tol,
        progress=progress,
        throw=throw,
        name=f"ensemble flow ({members} members)",
        batch_gradient=batch_gradient,
        stop_value=stop_value,
        hessian=_banded_block_hessian(problem, members) if banded else None,
        band=n - 1,
    )
    # states: (T, B N) -> layers (B, T, d_i, d_{i-1})
    per_member = np.ascontiguousarray(states.reshape(times.size, members, n).transpose(1, 0, 2))
    layers = _flat_gradient(problem, (members, times.size))[0](per_member)
    loss, gradient_norm, drift = _diagnostics(problem, layers)
    converged_time = np.minimum(crossed_at, result.t_end)  # the last one crossed at the event
    member_status = np.isfinite(converged_time).astype(np.int64)
    if result.status < 0:
        member_status = np.full(members, -1, dtype=np.int64)
    return Ensemble(
        problem,
        times,
        tuple(np.array(layer) for layer in layers),
        loss,
        gradient_norm,
        drift,
        converged_time,
        member_status,
        method if isinstance(method, str) else method.__name__,
        float(rtol),
        float(atol),
        None if gradient_tol is None else float(gradient_tol),
        n_rhs=counts["rhs"],
        n_steps=result.n_steps,
        status=result.status,
        message=result.message,
        meta={"solver": result.description, "n_hessians": counts["jac"]},
    )
