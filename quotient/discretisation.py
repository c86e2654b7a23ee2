"""Gradient descent as a discretisation of the gradient flow: error, order, and broken conservation.

Descent ``W_i <- W_i - eta G_i`` is the explicit Euler method for the flow: its error after a
fixed time ``T`` is first order in ``eta``. It does not conserve ``C_i = W_{i+1}^T W_{i+1} - W_i W_i^T``;
one step changes it by exactly ``eta^2 (G_{i+1}^T G_{i+1} - G_i G_i^T)`` (the first-order terms
cancel because ``W_i G_i^T = G_{i+1}^T W_{i+1}``, math-spec 2.4), so the drift is second order per
step and first order over a fixed time. The largest stable step near a global minimum is
:func:`quotient.stable_step`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._numerics import squared_norm
from .flow import gradient_descent, gradient_flow
from .network import as_point, check_positive, conserved_quantities

__all__ = ["DescentStudy", "descent_vs_flow", "charge_increment"]


def _slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the observed order."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def charge_increment(problem, point, step: float):
    """Exact change of the conserved quantities under one descent step from ``point``.

    Parameters
    ----------
    problem : Problem
        The loss ``L`` descended.
    point : tuple of ndarray
        Layers ``(W_1, ..., W_h)`` before the step, in the singular frame.
    step : float
        The step size ``eta`` (any finite number: the formula is exact for every step).

    Returns
    -------
    tuple of ndarray
        ``eta^2 (G_{i+1}^T G_{i+1} - G_i G_i^T)``, ``i = 1..h-1``, of shape ``(d_i, d_i)``, with
        ``G = grad L(point)``: equal to ``C_i(point - eta G) - C_i(point)`` for every loss of the
        end-to-end map.

    Raises
    ------
    ValueError
        If ``point`` does not have the problem's widths or ``step`` is not a finite number.
    """
    point = as_point(point, "point", widths=problem.widths)
    if not np.isscalar(step) or not np.isfinite(step):
        raise ValueError(f"step must be a finite number; got {step!r}")
    G = problem.gradient(point)
    return tuple(step**2 * (G[i + 1].T @ G[i + 1] - G[i] @ G[i].T) for i in range(len(G) - 1))



def _norm(matrices) -> float:
    return float(np.sqrt(squared_norm(matrices)))

@dataclass(frozen=True, eq=False)
class DescentStudy:
    """Gradient descent against the flow at one final time, for several steps.

    Parameters
    ----------
    steps : ndarray, shape (S,)
        The step sizes ``eta`` compared.
    t_final : float
        The final time ``T`` at which descent (``T / eta`` steps) meets the flow.
    error : ndarray, shape (S,)
        ``||theta_GD(T / eta) - theta_flow(T)||`` over all layers.
    loss_error : ndarray, shape (S,)
        ``|L_GD(T / eta) - L_flow(T)|``.
    charge_drift : ndarray, shape (S,)
        ``||C(T / eta) - C(0)||`` under descent (the flow's is zero).
    step_charge_change : ndarray, shape (S,)
        ``||C(1) - C(0)||`` after one step.
    order, charge_order, step_charge_order : float
        Fitted slopes of ``log error``, ``log charge_drift`` and ``log step_charge_change`` against
        ``log eta``: about 1, 1 and 2.
    """

    steps: np.ndarray
    t_final: float
    error: np.ndarray
    loss_error: np.ndarray
    charge_drift: np.ndarray
    step_charge_change: np.ndarray
    order: float
    charge_order: float
    step_charge_order: float

    def __post_init__(self):
        for name in ("steps", "error", "loss_error", "charge_drift", "step_charge_change"):
            array = np.array(getattr(self, name), dtype=np.float64)
            array.flags.writeable = False
            object.__setattr__(self, name, array)


def descent_vs_flow(problem, point0, t_final: float, steps, *, rtol: float = 1e-12, atol: float = 1e-14) -> DescentStudy:
    """Measure gradient descent against the gradient flow as the step shrinks.

    Parameters
    ----------
    problem : Problem
        The loss ``L`` descended and flowed.
    point0 : tuple of ndarray
        Layers ``(W_1, ..., W_h)`` both start from, in the singular frame.
    t_final : float
        Final time ``T``; every step must divide it (``T / eta`` an integer up to ``1e-9``).
    steps : array_like
        At least two positive steps ``eta``.
    rtol, atol : float
        Tolerances of the reference flow (``gradient_flow``, DOP853).

    Returns
    -------
    DescentStudy
        The errors and the fitted orders, one entry per step.

    Raises
    ------
    ValueError
        If fewer than two steps are given, a step is not positive, or does not divide ``t_final``.
    RuntimeError
        If descent diverges for one of the steps (take smaller steps; see
        :func:`quotient.stable_step`).
    """
    check_positive("rtol", rtol)
    check_positive("atol", atol, zero=True)
    point0 = as_point(point0, "point0", widths=problem.widths)
    steps = np.asarray(steps, dtype=np.float64)
    if steps.ndim != 1 or steps.size < 2 or not np.all(np.isfinite(steps)) or np.any(steps <= 0):
        raise ValueError(f"steps must be a 1-D array of at least two positive step sizes; got {steps!r}")
    if not np.isscalar(t_final) or not np.isfinite(t_final) or t_final <= 0:
        raise ValueError(f"t_final must be a positive finite number; got {t_final!r}")
    counts = t_final / steps
    if np.any(np.abs(counts - np.rint(counts)) > 1e-9 * counts):
        raise ValueError(f"every step must divide t_final = {t_final}: t_final / steps = {counts}")
    flow = gradient_flow(problem, point0, t_final, t_eval=[t_final], rtol=rtol, atol=atol, progress=False)
    reference = flow.point(-1)
    C0 = conserved_quantities(point0)
    error, loss_error, drift, one_step = [], [], [], []
    for step, count in zip(steps, np.rint(counts).astype(int)):
        run = gradient_descent(problem, point0, float(step), int(count), record_every=int(count), progress=False)
        end = run.point(-1)
        error.append(_norm([a - b for a, b in zip(end, reference)]))
        loss_error.append(abs(run.loss[-1] - flow.loss[-1]))
        drift.append(_norm([a - b for a, b in zip(conserved_quantities(end), C0)]))
        one_step.append(_norm(charge_increment(problem, point0, float(step))))
    return DescentStudy(
        steps,
        float(t_final),
        np.array(error),
        np.array(loss_error),
        np.array(drift),
        np.array(one_step),
        _slope(steps, error),
        _slope(steps, drift) if np.all(np.array(drift) > 0) else float("nan"),
        _slope(steps, one_step) if np.all(np.array(one_step) > 0) else float("nan"),
    )
