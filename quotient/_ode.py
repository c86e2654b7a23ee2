"""The integration engine of the flows: one step loop over scipy's solvers that keeps only the samples.

Private to the package (its names are public within it): :mod:`quotient.flow`,
:mod:`quotient.ensemble` and :mod:`quotient.quotient_flow` integrate through it.

* :func:`run`, the step loop, and :func:`integrate`, the flows' driver around it (tolerance and
  time checks, the terminal event at ``gradient_atol``, two passes for evenly spaced samples, the
  progress bar, the failure message);
* the gradient field on flat states: :func:`flat_gradient`, its Jacobians :func:`flat_hessian`
  and :func:`banded_block_hessian` (ensembles), :func:`flow_engine` (the field of one flow as
  :func:`integrate` takes it) and :func:`precision_guard` (stops a flow that float64 cannot follow);
* :func:`diagnostics` (loss, gradient norm, conservation drift along the samples);
* :class:`Status` and :func:`status_message`: how a run ended, and the one sentence that says it.

:func:`run` drives a ``scipy.integrate.OdeSolver`` step by step (rather than through
``solve_ivp``, which stores every step and, with dense output, every step's interpolant): it
keeps the states at the requested sample times only, locates a terminal event by root search on
the step's interpolant, and stops with a clear status when the state leaves the finite numbers.

Methods (:data:`METHODS`):

* ``"auto"``, the default of the flows: ``DOP853`` while its steps are held by accuracy, then
  ``LSODA`` with the exact Jacobian ``-Hess L`` (a dense Hessian from ``N`` batched
  Hessian-vector products) from where DOP853's stiffness test has held :data:`STIFF_SWITCH`
  times, and scipy's ``BDF`` should LSODA crawl on in Adams mode (:data:`CRAWL_STEPS`). For the
  square loss the DOP853 phase runs compiled (:class:`quotient._compiled.CompiledFlow`:
  :func:`_run_compiled`), and the compiled gradient is also LSODA's right-hand side; for a general
  loss it is scipy's ``DOP853``. Above ``DENSE_JACOBIAN_LIMIT`` parameters DOP853 runs throughout.
* scipy's own methods by name: explicit ``"RK23"``, ``"RK45"``, ``"DOP853"``; implicit
  ``"Radau"``, ``"BDF"``, ``"LSODA"``, which get the exact Jacobian too when ``N`` is small
  enough (without it they approximate it by ``N`` finite-difference gradients).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from scipy.integrate import BDF, DOP853, LSODA, RK23, RK45, OdeSolver, Radau
from scipy.optimize import brentq
from tqdm import tqdm

from ._numerics import squared_norm
from .critical import minimum_threshold
from .losses import SquareLoss
from .network import check_positive, conserved_quantities, end_to_end, from_vector, to_vector
from .problem import Problem

EXPLICIT = {"RK23": RK23, "RK45": RK45, "DOP853": DOP853}
IMPLICIT = {"Radau": Radau, "BDF": BDF, "LSODA": LSODA}
DEFAULT_METHOD = "auto"
METHODS = (DEFAULT_METHOD,) + tuple(EXPLICIT) + tuple(IMPLICIT)

# Hairer and Wanner's stiffness test of DOP853 (dop853.f): a step is held by stability when
# h * rho > 6.1 (rho: a Lipschitz estimate from the last two stages, both at t + h; DOP853's
# stability region reaches about -6 on the real axis); the count of such steps restarts after 6
# calm ones. dop853.f reports stiffness at 15; "auto" switches to LSODA at STIFF_SWITCH, later:
# a compiled DOP853 step costs ~1/10 of an LSODA step with its Jacobians, so a switch pays only
# where the stability bound holds the explicit steps for long (explore's problem, 4-8-8-4 from
# 1e-2 to ||grad L|| < 1e-8, reaches 15 at t = 38 and never 100 before it stops at t = 61; the
# stiff case (4,)*5 reaches 250 at t ~ 520 and would need ~350 000 explicit steps to its minimum).
STIFF_BOUND, STIFF_SWITCH, CALM_COUNT = 6.1, 250, 6

# After the switch LSODA chooses between its Adams and BDF formulas itself, and can stay with Adams
# on a stiff plateau, held to a constant stability-bound step (seen with a negligible atol: init 1e-4
# at depth 4, Adams order 1 at h = 0.025 for millions of steps). "auto" hands over to scipy's BDF
# (with the exact Jacobian) once LSODA has taken CRAWL_STEPS steps in Adams mode without its step
# size doubling.
CRAWL_STEPS = 5000

# the guard (precision_guard) is asked every this many accepted steps
GUARD_EVERY = 8

# Above this many parameters "auto" integrates explicitly: the dense Hessian (N Hessian-vector
# products, N^2 entries) and its LU factorisation (N^3 / 3 flops, ~0.3 s at N = 1500) would cost
# more per Jacobian than dozens of explicit steps. An estimate, not yet a measured crossover; a
# Jacobian-free Newton-Krylov path on Problem.hvp for larger N is not built.
DENSE_JACOBIAN_LIMIT = 1500


class Status(enum.IntEnum):
    """How a run of a flow or of gradient descent ended (``Trajectory.status``, ``Ensemble.status``).

    An ``IntEnum``: members compare equal to the integers ``-1, 0, 1`` that files written before
    it hold, and are written to files as those integers.
    """

    #: The solver failed, or the state left the finite numbers; the message says where and why.
    FAILED = -1
    #: The run reached its final time (``t_final``, or the last descent step).
    FINAL_TIME = 0
    #: The run stopped where ``||grad L||`` fell below ``gradient_atol`` (a terminal event).
    GRADIENT_BOUND = 1


def status_message(status, *, failure: str = "", final_time: str = "t_final", gradient_bound: str = "gradient_atol") -> str:
    """The one sentence that says how a run ended; every status message of the flows comes from here.

    Parameters
    ----------
    status : Status or int
        The outcome (an integer ``-1``, ``0`` or ``1`` is read as the :class:`Status` member).
    failure : str
        For :attr:`Status.FAILED`: what went wrong (the solver's complaint), returned as it is.
    final_time : str
        How the caller names the end of the run: ``"t_final"`` for the flows, ``"--t-final"``
        for the command line, ``"the last of n steps"`` for descent.
    gradient_bound : str
        How the caller names the gradient bound: ``"gradient_atol"``, or ``"--gradient-atol"``.

    Returns
    -------
    str
        ``"reached <final_time>"``, ``"gradient norm below <gradient_bound>"`` or ``failure``.

    Raises
    ------
    ValueError
        If ``status`` is not one of the three outcomes, or is :attr:`Status.FAILED` without a
        ``failure`` text.
    """
    status = Status(status)
    if status is Status.FAILED:
        if not failure:
            raise ValueError("status_message: a failed run needs the failure text (failure=...)")
        return failure
    if status is Status.GRADIENT_BOUND:
        return f"gradient norm below {gradient_bound}"
    return f"reached {final_time}"


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


def resolve(method, n: int, has_jacobian: bool, compiled: bool = False):
    """``(solver class, use the exact Jacobian, description)`` for a checked ``method``.

    ``has_jacobian``: the caller can evaluate the exact Jacobian of its ``n``-dimensional field
    at an affordable cost (dense for ``N <= DENSE_JACOBIAN_LIMIT``, block-banded for ensembles);
    ``compiled``: ``"auto"``'s DOP853 steps run compiled (:mod:`quotient._compiled`). For
    ``"auto"`` with the Jacobian, DOP853 hands over to LSODA with it once stiff
    (:data:`STIFF_SWITCH`).
    """
    method = check_method(method)
    if method == DEFAULT_METHOD:
        explicit = "DOP853 (compiled)" if compiled else "DOP853"
        if has_jacobian:
            return DOP853, True, explicit
        return DOP853, False, f"{explicit} (no affordable exact Jacobian at {n} unknowns to switch to)"
    solver = method if isinstance(method, type) else {**EXPLICIT, **IMPLICIT}[method]
    if solver in IMPLICIT.values() and has_jacobian:
        return solver, True, f"{solver.__name__} with the exact Hessian as Jacobian"
    return solver, False, solver.__name__


@dataclass
class Result:
    """What :func:`run` returns: the samples and how the integration ended."""

    times: np.ndarray  # (T,)
    states: np.ndarray  # (T, n)
    status: Status
    message: str
    t_end: float
    n_steps: int
    n_rhs: int
    n_jac: int
    switched_at: float | None = None  # the time the explicit start handed over to ``switch_to``
    crawled_at: float | None = None  # the time LSODA, crawling in Adams mode after the switch, handed over to BDF


_TABLEAUS = (DOP853, RK45, RK23)


def run(
    fun, y0, t_final, *, solver, rtol, atol, jac=None, band=None, t_eval=None, event=None, fresh_step=None, bar=None,
    counter=None, guard=None, switch_to=None, compiled=None, stop=None,
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
        ``guard(t, y, f) -> str or None``, called every :data:`GUARD_EVERY` accepted steps: a
        message stops the integration as failed (``status == -1``) with that message.
    switch_to : OdeSolver subclass, optional
        With ``solver=DOP853``: an implicit solver (given ``jac``) that takes over from the
        current state once DOP853's stiffness test has held :data:`STIFF_SWITCH` times (Hairer's
        ``h rho > 6.1``, :data:`STIFF_BOUND`); the time is ``Result.switched_at``.
    compiled : quotient._compiled.CompiledFlow, optional
        With ``solver=DOP853``: the same field ``fun`` compiled with the method
        (:mod:`quotient._compiled`), which then takes the steps, the samples, the event (given as
        ``stop``) and the stiffness test, until ``switch_to`` takes over.
    stop : tuple of float, optional
        With ``compiled``: ``(gradient_atol, threshold)`` of ``event`` (the flow stops where
        ``||fun(y)|| < gradient_atol`` at a loss below ``threshold``), for the compiled test.
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
    if switch_to is not None and solver is not DOP853:
        raise ValueError(f"switch_to needs solver=DOP853 (its stiffness test); got {solver.__name__}")
    if compiled is not None and solver is not DOP853:
        raise ValueError(f"compiled needs solver=DOP853 (the method it compiles); got {solver.__name__}")
    y0 = np.array(y0, dtype=float)
    samples_t, samples_y = [], []
    if t_eval is None:
        samples_t.append(0.0)
        samples_y.append(y0.copy())
        pending = None
    else:
        pending = np.asarray(t_eval, dtype=float)
        at_start = pending <= 0.0
        for _ in range(int(at_start.sum())):
            samples_t.append(0.0)
            samples_y.append(y0.copy())
        pending = pending[~at_start]
    status, message, n_steps, stalled = Status.FINAL_TIME, status_message(Status.FINAL_TIME), 0, 0
    t_stop = switched_at = crawled_at = crawl = None
    ode = None
    if compiled is not None:
        with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported, not warned about
            phase = _run_compiled(
                compiled, y0, t_final, rtol, atol, stop, STIFF_SWITCH if switch_to is not None else 0, pending, samples_t,
                samples_y, guard, bar,
            )  # fmt: skip
        status, message, t_stop, pending, t_end = phase["status"], phase["message"], phase["t_stop"], phase["pending"], phase["t_end"]
        n_steps, counts["rhs"] = compiled.n_steps, compiled.n_rhs
        if phase["stiff"]:
            switched_at = compiled.t
            ode = switch_to(rhs, compiled.t, compiled.y.copy(), t_final, rtol=rtol, atol=atol, **options)
            crawl = (n_steps, 0.0)
            value = compiled.value if event is not None else None
    else:
        ode = solver(rhs, 0.0, y0, t_final, rtol=rtol, atol=atol, **({} if switch_to else options))
        value = None if event is None else event(0.0, ode.y, field(ode.y), True)
    if ode is not None:
        explicit = fresh_step is not None and isinstance(ode, _TABLEAUS)
        stiff_steps, calm_steps = 0, 0
        with np.errstate(over="ignore", invalid="ignore"):
            while ode.status == "running":
                t_old, y_old = ode.t, ode.y.copy()
                error = ode.step()
                if ode.status == "failed":
                    status, message = Status.FAILED, f"the solver failed at t = {t_old:.6g}: {error}"
                    break
                n_steps += 1
                t_new, y_new = ode.t, ode.y
                stalled = stalled + 1 if t_new - t_old <= np.spacing(abs(t_new)) else 0
                if stalled >= 32:  # LSODA, near a singularity, can go on "succeeding" with steps of size 0
                    status = Status.FAILED
                    message = (
                        f"the solver makes no progress at t = {t_new:.6g} (steps below the spacing of the floating-point "
                        f"times, state norm {np.linalg.norm(y_new):.3g}): the flow blows up there, or is too stiff for this method"
                    )
                    if pending is None:
                        samples_t.append(t_new)
                        samples_y.append(y_new.copy())
                    break
                if not np.all(np.isfinite(y_new)):
                    status, message = Status.FAILED, _not_finite_message(t_new)
                    break
                if guard is not None and n_steps % GUARD_EVERY == 0:
                    complaint = guard(t_new, y_new, field(y_new))
                    if complaint is not None:
                        status, message = Status.FAILED, complaint
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

                            t_stop = brentq(inside, t_old, t_new, xtol=_root_xtol(t_new))
                    value = new_value
                if explicit:

                    def inside(ts, y_old=y_old, t_old=t_old):
                        return fresh_step(np.broadcast_to(y_old, (ts.size, y_old.size)), ts - t_old)

                else:

                    def inside(ts, interpolant=interpolant):
                        return (interpolant if interpolant is not None else ode.dense_output())(ts).T

                pending = _record(pending, samples_t, samples_y, t_new, y_new, t_stop, inside)
                if t_stop is not None:
                    status, message = Status.GRADIENT_BOUND, status_message(Status.GRADIENT_BOUND)
                    break
                # LSODA crawling in Adams mode after the switch: on to BDF (which takes no banded Jacobian)
                if switched_at is not None and isinstance(ode, LSODA) and crawl is not None and band is None:
                    if n_steps - crawl[0] >= CRAWL_STEPS:
                        if ode.step_size <= 2 * crawl[1] and _lsoda_uses_adams(ode):
                            crawled_at = float(ode.t)
                            ode = BDF(rhs, ode.t, ode.y.copy(), t_final, rtol=rtol, atol=atol, **options)
                            crawl = None
                        else:
                            crawl = (n_steps, ode.step_size)
                if switch_to is not None and switched_at is None:
                    if dop853_stiffness(ode, y_old) > STIFF_BOUND:
                        stiff_steps, calm_steps = stiff_steps + 1, 0
                    else:
                        calm_steps += 1
                        stiff_steps = 0 if calm_steps >= CALM_COUNT else stiff_steps
                    if stiff_steps >= STIFF_SWITCH:
                        switched_at = float(ode.t)
                        ode = switch_to(rhs, ode.t, ode.y.copy(), t_final, rtol=rtol, atol=atol, **options)
                        explicit = False
                        crawl = (n_steps, 0.0)
        if t_stop is not None:
            t_end = float(t_stop)
        elif status < 0 and not np.all(np.isfinite(ode.y)):
            t_end = float(t_old)  # the last finite state
        else:
            t_end = float(ode.t)
    if counter is not None:
        counter["rhs"] = counter.get("rhs", 0) + counts["rhs"]
        counter["jac"] = counter.get("jac", 0) + counts["jac"]
    states = np.array(samples_y).reshape(len(samples_y), y0.size)
    return Result(
        np.array(samples_t, dtype=float), states, status, message, t_end, n_steps, counts["rhs"], counts["jac"], switched_at, crawled_at
    )


def _lsoda_uses_adams(ode) -> bool:
    """Whether scipy's LSODA took its last step with the Adams formulas (LSODA's ``IWORK(19) == 1``)."""
    try:
        return int(ode._lsoda_solver._integrator.iwork[18]) == 1
    except (AttributeError, IndexError, TypeError):  # another scipy: decide by the step size alone
        return True


def _root_xtol(t):
    return 4 * np.finfo(float).eps * max(1.0, abs(t))


def _not_finite_message(t):
    return (
        f"the state left the finite numbers at t = {t:.6g}: the flow (or the solver) blows up; "
        "try method='auto', tighter tolerances or a smaller init"
    )


def _run_compiled(flow, y0, t_final, rtol, atol, stop, stiff_limit, pending, samples_t, samples_y, guard, bar):
    """The compiled DOP853 phase of :func:`run`: steps, samples, event and guard, until the end or stiffness.

    Appends the samples to ``samples_t`` / ``samples_y`` and returns a dict: ``status``,
    ``message``, ``t_stop`` (the event's time, or None), ``pending`` (the sample times not yet
    reached), ``t_end`` and ``stiff`` (the stiffness test held ``stiff_limit`` times: the caller
    switches method at ``flow.t``).
    """
    from ._compiled import EVENT, FINAL_TIME, NOT_FINITE, STIFF, TOO_SMALL_STEP  # loaded with the flow's CompiledFlow

    gradient_atol, threshold = stop if stop is not None else (0.0, np.inf)
    flow.start(y0, 0.0, t_final, rtol, atol, gradient_atol, threshold)
    status, message, t_stop, stiff = Status.FINAL_TIME, status_message(Status.FINAL_TIME), None, False
    guarded = 0
    while True:
        t_return = -np.inf if pending is None else (pending[0] if pending.size else np.inf)
        before = flow.n_steps
        code = flow.advance(t_final, rtol, atol, t_return, GUARD_EVERY, gradient_atol, threshold, stiff_limit)
        if code == FINAL_TIME and flow.n_steps == before:
            break
        t, t_old = flow.t, flow.t_old
        if code == NOT_FINITE:
            return dict(status=Status.FAILED, message=_not_finite_message(t), t_stop=None, pending=pending, t_end=t_old, stiff=False)
        if code == TOO_SMALL_STEP:
            message = f"the solver failed at t = {t:.6g}: Required step size is less than spacing between numbers."
            return dict(status=Status.FAILED, message=message, t_stop=None, pending=pending, t_end=t, stiff=False)
        if code == EVENT:
            if flow.value == 0.0:
                t_stop = t
            else:

                def inside(s):
                    return flow.event_value(flow.steps_from_old([s - t_old])[0], gradient_atol, threshold)

                t_stop = brentq(inside, t_old, t, xtol=_root_xtol(t))
        pending = _record(pending, samples_t, samples_y, t, flow.y, t_stop, lambda ts: flow.steps_from_old(ts - t_old))
        if t_stop is not None:
            status, message = Status.GRADIENT_BOUND, status_message(Status.GRADIENT_BOUND)
            break
        if guard is not None and flow.n_steps // GUARD_EVERY > guarded:
            guarded = flow.n_steps // GUARD_EVERY
            complaint = guard(t, flow.y, flow.f)
            if complaint is not None:
                status, message = Status.FAILED, complaint
                break
        if bar is not None and t > bar.n:
            bar.update(t - bar.n)
        if code == STIFF:
            stiff = True
            break
        if code == FINAL_TIME:
            break
    t_end = flow.t if t_stop is None else t_stop
    return dict(status=status, message=message, t_stop=t_stop, pending=pending, t_end=t_end, stiff=stiff)


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


def _record(pending, samples_t, samples_y, t_new, y_new, t_stop, inside):
    """Append the samples that the step just taken, ending at ``(t_new, y_new)``, reached; return the rest.

    ``pending`` is the sample times not yet reached (``None``: every step is a sample); with
    ``t_stop`` (the event's time inside the step) the samples end there and the stop is the last
    one. ``inside(ts)`` gives the states at times ``ts`` strictly inside the step, shape
    ``(len(ts), n)``: fresh steps of an explicit method from the step's start, or an interpolant.
    """
    t_reach = t_new if t_stop is None else t_stop
    if pending is None:
        times = np.empty(0) if t_stop is not None else np.array([t_new])
    else:
        count = int(np.searchsorted(pending, t_reach, side="right"))
        times, pending = pending[:count], pending[count:]
    if t_stop is not None:
        last = times[-1] if times.size else (samples_t[-1] if samples_t else None)
        if last is None or last < t_stop:
            times = np.append(times, t_stop)
    if times.size:
        states = np.empty((times.size, np.size(y_new)))
        end = times == t_new
        states[end] = y_new
        if np.any(~end):
            states[~end] = inside(times[~end])
        samples_t.extend(times)
        samples_y.extend(states)
    return pending


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


def diagnostics(problem: Problem, points):
    """Loss, gradient norm and relative conservation drift along a batch of points.

    The time axis is the last leading axis of the layers (``(T, d_i, d_{i-1})``, or
    ``(B, T, d_i, d_{i-1})`` for an ensemble); the drift is measured from the first time.
    """
    loss = problem.end_to_end_loss.value(end_to_end(points))
    gradient = problem.unchecked_gradient(points)
    gradient_norm = np.sqrt(squared_norm(gradient))
    charges = conserved_quantities(points)
    if charges:
        drift = np.sqrt(sum(np.sum((C - C[..., :1, :, :]) ** 2, axis=(-2, -1)) for C in charges))
        scale = squared_norm(points)
        drift = drift / np.maximum(np.maximum(scale, scale[..., :1]), np.finfo(float).tiny)
    else:
        drift = np.zeros(points[0].shape[:-2])
    return loss, gradient_norm, drift


def check_flow_options(rtol, atol, method, gradient_atol):
    """The argument checks shared by the flows: tolerances and ``method``; returns the checked method."""
    check_positive("rtol", rtol)
    check_positive("atol", atol, zero=True)
    if gradient_atol is not None:
        check_positive("gradient_atol", gradient_atol)
    return check_method(method)


def check_time(t_final) -> float:
    if not np.isscalar(t_final) or not np.isfinite(t_final) or t_final <= 0:
        raise ValueError(f"t_final must be a positive finite number; got {t_final!r}")
    return float(t_final)


def flat_gradient(problem: Problem, lead: tuple[int, ...] = ()):
    """``grad L`` on flat states: ``(layers, gradient)`` for a state of ``lead + (N,)`` entries.

    ``layers(y)`` views a flat state as a point (or a batch of points with leading shape
    ``lead``), ``gradient(y)`` returns the flat gradient. This is the right-hand side ``solve_ivp``
    calls thousands of times, so a call does no validation, no concatenation and no allocation
    beyond its result and ``G``: the slices and the buffers of the forward products are made
    once here, and :meth:`Problem.unchecked_gradient` writes the layers of the gradient straight into
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
        problem.unchecked_gradient(layers(y), out=views(flat), forward=forward)
        return flat

    return layers, gradient


def parse_t_eval(t_eval, t_final):
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


def flat_hessian(problem: Problem):
    """``y -> Hess L(y)``, the dense ``(N, N)`` Hessian on flat states (the Jacobian of the flow, negated).

    The ``N`` Hessian-vector products along the unit vectors run as one batched
    :meth:`Problem.unchecked_hvp`, with the unit vectors made once here; symmetrised like
    :meth:`Problem.hessian`.
    """
    layers, _ = flat_gradient(problem)
    basis = from_vector(np.eye(problem.n_params), problem.widths)

    def hessian(y):
        H = to_vector(problem.unchecked_hvp(layers(y), basis))
        H += H.T
        H *= 0.5
        return H

    return hessian


def banded_block_hessian(problem: Problem, members: int):
    """``y -> `` the block-diagonal Hessian of ``B`` stacked members in LSODA's packed banded form.

    The state is ``B`` flat points one after the other (shape ``(B N,)``), so the Hessian of the
    sum of the members' losses is block diagonal, each block one member's ``(N, N)`` Hessian:
    banded with half-bandwidth ``N - 1``. Returned as ``J[N - 1 + i - j, j]`` of shape
    ``(2N - 1, B N)``; the ``B N`` Hessian-vector products are one batched :meth:`Problem.unchecked_hvp`.
    """
    n = problem.n_params
    layers, _ = flat_gradient(problem, (members, 1))
    basis = from_vector(np.eye(n), problem.widths)
    local = np.arange(n)
    rows = (n - 1 + local[:, None] - local[None, :]).ravel()  # (a, b) -> packed row of block entry a, b
    columns = (np.arange(members)[:, None] * n + np.tile(local, n)[None, :]).ravel()
    rows = np.tile(rows, members)

    def hessian(y):
        blocks = to_vector(problem.unchecked_hvp(layers(y), basis))  # (B, N, N): row b is H e_b, i.e. column b
        packed = np.zeros((2 * n - 1, members * n))
        packed[rows, columns] = 0.5 * (blocks + np.swapaxes(blocks, 1, 2)).transpose(0, 2, 1).reshape(-1)
        return packed

    return hessian


def precision_guard(problem: Problem, layers, patience: int = 12):
    """``guard(t, y, f)``: a message once ``||grad L||`` stays at the rounding error of computing it.

    In float64 the gradient ``grad_j = B_j^T (W - Sigma) F_{j-1}^T`` carries an error of about
    ``eps prod_{i != j} ||W_i||_2 (prod_i ||W_i||_2 + ||Sigma||)`` (the products are formed from
    layers of those sizes, however small ``W - Sigma`` is). Where ``||grad L||`` stays below that
    level (checked every :data:`GUARD_EVERY` accepted steps by :func:`run`, ``patience`` checks in a row) and the level is
    above ``sqrt(eps)`` (far above the error of a flow at the scale of ``Sigma``: it takes layers
    of norm ``>~ 10`` at depth 4), the field is rounding noise and a solver would crawl on it
    forever (an init of scale ``1e3`` does: the conserved quantities keep the layers large); the
    run stops with this message. Layers of more than 4096 entries use the Frobenius norm, an
    upper bound of the spectral norm.
    """
    eps = np.finfo(float).eps
    target = 0.0 if problem.target is None else float(np.linalg.norm(problem.target, 2))
    state = {"below": 0}

    depth = problem.depth

    def guard(t, y, f):
        whole = float(np.sqrt(np.dot(y, y)))  # bounds every layer's norm: the level below is at most
        if eps * whole ** (depth - 1) * (whole**depth + target) <= np.sqrt(eps):
            state["below"] = 0
            return None
        gradient_norm = float(np.linalg.norm(f))
        for spectral in (False, True):  # Frobenius norms bound the spectral ones: most checks end at the first
            norms = np.array([np.linalg.norm(W, 2) if spectral and W.size <= 4096 else np.linalg.norm(W) for W in layers(y)])
            product = float(np.prod(norms))
            level = eps * float(np.max(product / np.maximum(norms, np.finfo(float).tiny))) * (product + target)
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


def flow_engine(problem: Problem, until: str, gradient_atol):
    """The field of one gradient flow of ``problem`` as :func:`integrate` takes it.

    Returns a dict of ``layers`` (flat state -> point, for :func:`precision_guard`, which holds
    the state of one run and is made per run), and ``gradient``, ``gradient_norm``,
    ``batch_gradient``, ``stop_value`` (``until="minimum"``) and ``hessian`` (dense, for up to
    ``quotient.DENSE_JACOBIAN_LIMIT`` parameters), ``compiled`` (for the square loss: a
    function that makes the :class:`quotient._compiled.CompiledFlow` of ``"auto"``'s steps) and
    ``threshold`` (``stop_value``'s loss bound, ``inf`` for ``until="critical"``), the keywords of :func:`integrate`.
    Shared by :func:`gradient_flow` and the members of ``ensemble_flow`` that do not share steps.
    """
    layers, gradient = flat_gradient(problem)
    stop_value = None
    if until == "minimum":
        threshold = minimum_threshold(problem)
        if gradient_atol is not None:

            def stop_value(t, y, field, accepted):
                if problem.end_to_end_loss.value(end_to_end(layers(y))) >= threshold:
                    return 1.0
                return float(np.linalg.norm(field)) - gradient_atol

    elif until != "critical":
        raise ValueError(f"until must be 'critical' or 'minimum'; got {until!r}")
    compiled = None
    if isinstance(problem.end_to_end_loss, SquareLoss):

        def compiled():
            from ._compiled import CompiledFlow  # numba: loaded when a compiled flow first runs

            return CompiledFlow(problem.widths, problem.end_to_end_loss.target)

    return dict(
        layers=layers,
        compiled=compiled,
        threshold=threshold if until == "minimum" else np.inf,
        gradient=gradient,
        gradient_norm=np.linalg.norm,
        batch_gradient=lambda states: flat_gradient(problem, states.shape[:1])[1](states),
        stop_value=stop_value,
        hessian=flat_hessian(problem) if problem.n_params <= DENSE_JACOBIAN_LIMIT else None,
    )


def integrate(
    gradient, gradient_norm, y0, t_final, *, rtol, atol, method, t_eval, gradient_atol, progress, throw, name, batch_gradient=None,
    stop_value=None, hessian=None, band=None, guard=None, compiled=None, threshold=np.inf,
):
    """Integrate ``dy/dt = -gradient(y)``; the shared engine of the flows (:func:`quotient.run`).

    ``gradient_norm(g)`` maps a flat gradient to the norm that ``gradient_atol`` is compared with;
    ``stop_value(t, y, g, accepted)``, if given, is the terminal event's value instead (the flow
    stops where it falls through 0), told whether ``t`` ends an accepted step (``False`` during
    the event's root search inside a step).
    ``batch_gradient(Y)``, for ``Y`` of shape ``(S, y0.size)``, evaluates ``gradient`` on ``S``
    states at once; with it, samples of the explicit methods come from fresh Runge-Kutta steps
    rather than from the interpolant. ``hessian(y)``, the dense ``(n, n)`` Jacobian of
    ``gradient``, is what ``method="auto"`` and the implicit methods need to be fast; with
    ``band``, ``hessian`` returns it in LSODA's packed banded form (:func:`quotient.run`).

    ``guard(t, y, f)`` (:func:`quotient.run`) may stop a run that cannot go on.
    ``compiled()``, if given, makes the compiled form of the same field
    (:class:`quotient._compiled.CompiledFlow`), with which ``method="auto"`` takes its DOP853
    steps; its event stops where ``||gradient|| < gradient_atol`` at a loss below ``threshold``, the
    same as ``stop_value``'s.
    Only the samples are kept: with ``t_eval`` an integer and ``gradient_atol`` given, the
    stopping time is found first and the flow integrated again to sample it (twice the
    gradients, not every step's state in memory).

    Returns ``(result, times, states, counts)``: a :class:`quotient.Result` describing the
    run that found the end, ``states`` of shape ``(T, y0.size)``, ``counts`` with the gradient
    (``"rhs"``) and Hessian (``"jac"``) evaluations of all passes.
    """
    t_final = check_time(t_final)
    t_eval, n_samples = parse_t_eval(t_eval, t_final)
    if gradient_atol is not None and not gradient_atol > 0:
        raise ValueError(f"gradient_atol must be positive; got {gradient_atol!r}")
    compiled = compiled if method == DEFAULT_METHOD else None
    solver, use_jacobian, description = resolve(method, np.size(y0), hessian is not None, compiled is not None)
    if band is not None and use_jacobian and solver is not LSODA and method != DEFAULT_METHOD:
        use_jacobian, description = False, solver.__name__  # a banded Jacobian is LSODA's form only (auto switches to it)

    def field(y):
        flat = gradient(y)
        np.negative(flat, out=flat)
        return flat

    if compiled is not None:
        compiled = compiled()

        def field(y):  # the same field, compiled: also LSODA's right-hand side after the switch
            return compiled.field(y)[0]

    jacobian = None
    if use_jacobian:

        def jacobian(y):
            H = hessian(y)
            np.negative(H, out=H)
            return H

    event = None
    if gradient_atol is not None:
        if stop_value is not None:

            def event(t, y, f, accepted):
                return stop_value(t, y, -f, accepted)

        else:

            def event(t, y, f, accepted):
                return gradient_norm(f) - gradient_atol

    fresh_step = None
    if batch_gradient is not None:

        def fresh_step(starts, lengths):
            return rk_step(lambda Y: -batch_gradient(Y), solver, starts, lengths)

    counts = {"rhs": 0, "jac": 0}
    bar = tqdm(total=t_final, desc=name, unit="t", disable=None if progress else True, leave=False)
    options = dict(solver=solver, rtol=rtol, atol=atol, jac=jacobian, band=band if use_jacobian else None, fresh_step=fresh_step)
    if method == DEFAULT_METHOD and use_jacobian:
        options["switch_to"] = LSODA
    if compiled is not None:
        options.update(compiled=compiled, stop=None if gradient_atol is None else (float(gradient_atol), float(threshold)))
    options.update(bar=bar, counter=counts, guard=guard)
    try:
        two_pass = n_samples is not None and n_samples > 2 and event is not None  # 2 samples: the start and the end
        times = np.linspace(0.0, t_final, n_samples) if n_samples is not None and not two_pass else t_eval
        result = run(field, y0, t_final, t_eval=np.empty(0) if two_pass else times, event=event, **options)
        if two_pass:
            first = result
            bar.reset()
            options.update(guard=None, stop=None)  # the first pass found where the run ends
            result = run(field, y0, first.t_end, t_eval=np.linspace(0.0, first.t_end, n_samples), **options)
            result.status, result.message, result.n_steps = first.status, first.message, first.n_steps
            if first.status == Status.GRADIENT_BOUND and len(result.states) == n_samples and len(first.states):
                result.states[-1] = first.states[-1]  # the stop itself (the event's root), not pass 2's run to its time
    finally:
        bar.close()
    result.description = description
    if method == DEFAULT_METHOD and use_jacobian:
        at, crawled = (first.switched_at, first.crawled_at) if two_pass else (result.switched_at, result.crawled_at)
        if at is None:
            result.description = f"{description} throughout (its steps never held by stability long enough to switch to LSODA)"
        else:
            result.description = f"{description}, switched to LSODA with the exact Hessian as Jacobian at t = {at:.6g}"
        if crawled is not None:
            result.description += f"; LSODA kept its Adams steps on a stiff stretch and handed over to BDF at t = {crawled:.6g}"
    if result.status < 0 and throw:
        raise RuntimeError(
            f"{name} failed at t = {result.t_end:.6g}: {result.message}; "
            "try method='auto', a smaller t_final or looser tolerances, or pass throw=False"
        )
    return result, result.times, result.states, counts
