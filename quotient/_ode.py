"""The integration engine of the flows: one step loop over scipy's solvers that keeps only the samples.

:func:`run` drives a ``scipy.integrate.OdeSolver`` step by step (rather than through
``solve_ivp``, which stores every step and, with dense output, every step's interpolant): it
keeps the states at the requested sample times only, locates a terminal event by root search on
the step's interpolant, and stops with a clear status when the state leaves the finite numbers.

Methods (:data:`METHODS`):

* ``"auto"``, the default of the flows: ``LSODA`` (Adams up to order 12 while the flow is not
  stiff, BDF up to order 5 once it is, switched automatically by the solver's stiffness test)
  with the exact Jacobian ``-Hess L`` (a dense Hessian from ``N`` batched Hessian-vector
  products) for ``N <= DENSE_JACOBIAN_LIMIT`` parameters; above, ``DOP853`` (a dense Jacobian
  of that size costs more than the explicit steps it saves).
* ``"switching"``: ``DOP853`` while its own stiffness test (Hairer's, :func:`dop853_stiffness`)
  finds its steps held by accuracy, then ``LSODA`` with the exact Jacobian from where they are held
  by stability (``DOP853`` throughout above ``DENSE_JACOBIAN_LIMIT``). Optional, not the default.
* scipy's own methods by name: explicit ``"RK23"``, ``"RK45"``, ``"DOP853"``; implicit
  ``"Radau"``, ``"BDF"``, ``"LSODA"``, which get the exact Jacobian too when ``N`` is small
  enough (without it they approximate it by ``N`` finite-difference gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, OdeSolver, Radau
from scipy.optimize import brentq

EXPLICIT = {"RK23": RK23, "RK45": RK45, "DOP853": DOP853}
IMPLICIT = {"Radau": Radau, "BDF": BDF, "LSODA": LSODA}
DEFAULT_METHOD = "auto"
SWITCHING = "switching"
METHODS = (DEFAULT_METHOD,) + tuple(EXPLICIT) + tuple(IMPLICIT) + (SWITCHING,)

# Hairer and Wanner's stiffness test of DOP853 (dop853.f): the step is held by stability when
# h * rho > 6.1 (rho: a Lipschitz estimate from the last two stages, both at t + h; DOP853's
# stability region reaches about -6 on the real axis), 15 times with no 6 calm steps between.
STIFF_BOUND, STIFF_COUNT, CALM_COUNT = 6.1, 15, 6

# Above this many parameters "auto" integrates explicitly: the dense Hessian (N Hessian-vector
# products, N^2 entries) and its LU factorisation (N^3 / 3 flops, ~0.3 s at N = 1500) would cost
# more per Jacobian than dozens of explicit steps. An estimate, not yet a measured crossover; a
# Jacobian-free Newton-Krylov path on Problem.hvp for larger N is not built.
DENSE_JACOBIAN_LIMIT = 1500


def check_method(method):
    """``method`` if it names a method of :data:`METHODS` or is an ``OdeSolver`` subclass.

    TypeError when it is neither a str nor a class, ValueError for an unknown name or class.
    """
    if not isinstance(method, (str, type)):
        raise TypeError(f"method must be the name of an integrator (a str) or a solve_ivp OdeSolver class; got {method!r}")
    if isinstance(method, type) and issubclass(method, OdeSolver):
        return method
    if isinstance(method, str) and method in METHODS:
        return method
    raise ValueError(
        f"method must be one of {', '.join(map(repr, METHODS))} or a scipy.integrate.OdeSolver subclass; got {method!r}"
    )


def resolve(method, n: int, has_jacobian: bool):
    """``(solver class, use the exact Jacobian, description)`` for a checked ``method``.

    ``has_jacobian``: the caller can evaluate the exact Jacobian of its ``n``-dimensional field
    at an affordable cost (dense for ``N <= DENSE_JACOBIAN_LIMIT``, block-banded for ensembles).
    """
    method = check_method(method)
    if method == SWITCHING:
        if has_jacobian:
            return DOP853, True, "DOP853, switched to LSODA with the exact Hessian as Jacobian once stiff"
        return DOP853, False, f"DOP853 (no affordable exact Jacobian at {n} unknowns to switch to)"
    if method == DEFAULT_METHOD:
        if has_jacobian:
            return LSODA, True, "LSODA (Adams/BDF, automatic stiffness switching) with the exact Hessian as Jacobian"
        return DOP853, False, f"DOP853 (no affordable exact Jacobian at {n} unknowns)"
    solver = method if isinstance(method, type) else {**EXPLICIT, **IMPLICIT}[method]
    if solver in IMPLICIT.values() and has_jacobian:
        return solver, True, f"{solver.__name__} with the exact Hessian as Jacobian"
    return solver, False, solver.__name__


@dataclass
class Result:
    """What :func:`run` returns: the samples and how the integration ended."""

    times: np.ndarray  # (T,)
    states: np.ndarray  # (T, n)
    status: int  # 0: reached t_final; 1: the terminal event; -1: failed
    message: str
    t_end: float
    n_steps: int
    n_rhs: int
    n_jac: int
    switched_at: float | None = None  # the time the explicit start handed over to ``switch_to``


_TABLEAUS = (DOP853, RK45, RK23)


def run(
    fun, y0, t_final, *, solver, rtol, atol, jac=None, band=None, t_eval=None, event=None, fresh_step=None, bar=None,
    counter=None, guard=None, switch_to=None,
):
    """Integrate ``dy/dt = fun(y)`` from ``y0`` at ``t = 0`` to ``t_final``, keeping only the samples.

    Parameters
    ----------
    fun : callable
        ``y -> dy/dt``, flat arrays of shape ``(n,)``; counted in ``n_rhs``.
    y0 : ndarray, shape (n,)
    t_final : float
    solver : OdeSolver subclass
    rtol, atol : float
    jac : callable, optional
        ``y -> d fun / dy`` of shape ``(n, n)``, for the implicit solvers.
    band : int, optional
        For LSODA: ``jac`` returns the banded Jacobian of half-bandwidth ``band`` in LSODA's packed
        form ``J_packed[band + i - j, j] = J[i, j]``, shape ``(2 band + 1, n)``.
    t_eval : ndarray of increasing times in ``[0, t_final]``, optional
        The sample times; ``None`` keeps the state at every accepted step (and ``t = 0``).
    event : callable, optional
        ``event(t, y, f, accepted) -> float`` with ``f = fun(y)``; the integration stops where it
        falls through 0 from above (its value at ``t = 0`` counts as the first accepted one);
        ``accepted`` is false during the root search inside a step.
    fresh_step : callable, optional
        For the explicit Runge-Kutta solvers: ``(starts (S, n), lengths (S,)) -> states (S, n)``,
        one step of the solver's tableau from each start; samples inside a step then come from a
        fresh step from the step's start rather than from the interpolant, which on the long
        steps of a plateau is hundreds of times less accurate than the steps.
    guard : callable, optional
        ``guard(t, y, f) -> str or None`` at every accepted step: a message stops the
        integration as failed (``status == -1``) with that message.
    switch_to : OdeSolver subclass, optional
        With ``solver=DOP853``: an implicit solver (given ``jac``) that takes over from the
        current state once DOP853's stiffness test says its steps are held by stability
        (:data:`STIFF_BOUND`); the time is ``Result.switched_at``.
    bar : tqdm, optional
        Advanced to the current time after each step.
    counter : dict, optional
        Gets ``"rhs"`` and ``"jac"`` counts added (shared with other calls, e.g. a second pass).

    Returns
    -------
    Result
        With ``t_eval`` given, the samples at ``t_eval <= t_end`` and, when the event stopped the
        flow between two samples, the stopping point as the last sample.
    """
    counts = {"rhs": 0, "jac": 0}
    latest = {"y": None, "f": None}

    def rhs(t, y):
        counts["rhs"] += 1
        f = fun(y)
        latest["y"], latest["f"] = y, f
        return f

    def field(y):
        if latest["y"] is y:
            return latest["f"]
        return rhs(None, y)

    options = {}
    if jac is not None:

        def jacobian(t, y):
            counts["jac"] += 1
            return jac(y)

        options["jac"] = jacobian
        if band is not None:
            options.update(lband=band, uband=band)
    ode = solver(rhs, 0.0, np.array(y0, dtype=float), t_final, rtol=rtol, atol=atol, **({} if switch_to else options))
    explicit = fresh_step is not None and isinstance(ode, _TABLEAUS)
    stiff_steps, calm_steps, switched_at = 0, 0, None
    if switch_to is not None and not isinstance(ode, DOP853):
        raise ValueError(f"switch_to needs solver=DOP853 (its stiffness test); got {solver.__name__}")
    samples_t, samples_y = [], []
    if t_eval is None:
        samples_t.append(0.0)
        samples_y.append(ode.y.copy())
        pending = None
    else:
        pending = np.asarray(t_eval, dtype=float)
        at_start = pending <= 0.0
        for _ in range(int(at_start.sum())):
            samples_t.append(0.0)
            samples_y.append(ode.y.copy())
        pending = pending[~at_start]
    value = None if event is None else event(0.0, ode.y, field(ode.y), True)
    status, message, n_steps, stalled = 0, "reached t_final", 0, 0
    t_stop = None
    with np.errstate(over="ignore", invalid="ignore"):
        while ode.status == "running":
            t_old, y_old = ode.t, ode.y.copy()
            error = ode.step()
            if ode.status == "failed":
                status, message = -1, f"the solver failed at t = {t_old:.6g}: {error}"
                break
            n_steps += 1
            t_new, y_new = ode.t, ode.y
            stalled = stalled + 1 if t_new - t_old <= 8 * np.finfo(float).eps * abs(t_new) else 0
            if stalled >= 32:  # LSODA, near a singularity, can go on "succeeding" with steps of size 0
                status = -1
                message = (
                    f"the solver makes no progress at t = {t_new:.6g} (steps below the spacing of the floating-point "
                    f"times, state norm {np.linalg.norm(y_new):.3g}): the flow blows up there, or is too stiff for this method"
                )
                if pending is None:
                    samples_t.append(t_new)
                    samples_y.append(y_new.copy())
                break
            if not np.all(np.isfinite(y_new)):
                status = -1
                message = (
                    f"the state left the finite numbers at t = {t_new:.6g}: the flow (or the solver) blows up; "
                    "try method='auto', tighter tolerances or a smaller init"
                )
                break
            if guard is not None:
                complaint = guard(t_new, y_new, field(y_new))
                if complaint is not None:
                    status, message = -1, complaint
                    if pending is None:
                        samples_t.append(t_new)
                        samples_y.append(y_new.copy())
                    break
            if bar is not None and t_new > bar.n:
                bar.update(t_new - bar.n)
            interpolant = None
            if event is not None:
                new_value = event(t_new, y_new, field(y_new), True)
                if value >= 0 and new_value <= 0 and new_value != value:
                    interpolant = ode.dense_output()
                    if new_value == 0:
                        t_stop = t_new
                    else:

                        def inside(t):
                            y = interpolant(t)
                            return event(t, y, rhs(None, y), False)

                        t_stop = brentq(inside, t_old, t_new, xtol=4 * np.finfo(float).eps * max(1.0, abs(t_new)))
                value = new_value
            t_reach = t_new if t_stop is None else t_stop
            if pending is None:
                if t_stop is None:
                    samples_t.append(t_new)
                    samples_y.append(y_new.copy())
            elif pending.size and pending[0] <= t_reach:
                count = int(np.searchsorted(pending, t_reach, side="right"))
                ts, pending = pending[:count], pending[count:]
                samples_t.extend(ts)
                samples_y.extend(_states_in_step(ode, interpolant, explicit, fresh_step, t_old, y_old, t_new, y_new, ts))
            if t_stop is not None:
                if not samples_t or samples_t[-1] < t_stop:
                    samples_t.append(t_stop)
                    samples_y.extend(_states_in_step(ode, interpolant, explicit, fresh_step, t_old, y_old, t_new, y_new, np.array([t_stop])))
                status, message = 1, "the stopping event occurred"
                break
            if switch_to is not None and switched_at is None:
                if dop853_stiffness(ode, y_old) > STIFF_BOUND:
                    stiff_steps, calm_steps = stiff_steps + 1, 0
                else:
                    calm_steps += 1
                    stiff_steps = 0 if calm_steps >= CALM_COUNT else stiff_steps
                if stiff_steps >= STIFF_COUNT:
                    switched_at = float(ode.t)
                    ode = switch_to(rhs, ode.t, ode.y.copy(), t_final, rtol=rtol, atol=atol, **options)
                    explicit = False
    if t_stop is not None:
        t_end = float(t_stop)
    elif status < 0 and not np.all(np.isfinite(ode.y)):
        t_end = float(t_old)  # the last finite state
    else:
        t_end = float(ode.t)
    if counter is not None:
        counter["rhs"] = counter.get("rhs", 0) + counts["rhs"]
        counter["jac"] = counter.get("jac", 0) + counts["jac"]
    states = np.array(samples_y).reshape(len(samples_y), np.size(y0))
    return Result(np.array(samples_t, dtype=float), states, status, message, t_end, n_steps, counts["rhs"], counts["jac"], switched_at)


def dop853_stiffness(ode, y_old):
    """``h * rho`` of the step a ``DOP853`` solver just took from ``y_old``: Hairer's stiffness estimate.

    ``rho = ||f(y_new) - f(Y_12)|| / ||y_new - Y_12||``, with ``Y_12`` the state of the last stage
    (``c_12 = 1``, at ``t + h`` as ``y_new``): a lower bound on the Lipschitz constant of the field
    near ``y_new``, so ``h * rho`` estimates ``h |lambda_max|``.
    """
    h, K = ode.h_previous, ode.K
    last = ode.n_stages - 1
    stage = y_old + h * (ode.A[last, :last] @ K[:last])
    denominator = np.linalg.norm(ode.y - stage)
    if denominator == 0.0:
        return 0.0
    return float(h * np.linalg.norm(K[ode.n_stages] - K[last]) / denominator)


def _states_in_step(ode, interpolant, explicit, fresh_step, t_old, y_old, t_new, y_new, ts):
    """States at times ``ts`` in ``(t_old, t_new]`` of the step just taken."""
    states = np.empty((ts.size, y_old.size))
    end = ts == t_new
    states[end] = y_new
    inner = ~end
    if np.any(inner):
        if explicit:
            states[inner] = fresh_step(np.broadcast_to(y_old, (int(inner.sum()), y_old.size)), ts[inner] - t_old)
        else:
            interpolant = interpolant if interpolant is not None else ode.dense_output()
            states[inner] = interpolant(ts[inner]).T
    return list(states)


def rk_step(batch_fun, solver, starts, lengths):
    """One step of an explicit Runge-Kutta tableau (``DOP853``, ``RK45``, ``RK23``) from each start.

    ``batch_fun(Y)`` evaluates the field on states ``Y`` of shape ``(S, n)``; ``lengths`` has shape
    ``(S,)``. Costs ``n_stages`` batched evaluations.
    """
    A, B, n_stages = solver.A, solver.B, solver.n_stages
    y, h = np.array(starts), np.asarray(lengths, dtype=float)[:, None]
    K = np.empty((n_stages,) + y.shape)
    K[0] = batch_fun(y)
    for s in range(1, n_stages):
        K[s] = batch_fun(y + h * np.tensordot(A[s, :s], K[:s], axes=1))
    return y + h * np.tensordot(B, K, axes=1)
