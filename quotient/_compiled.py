"""The compiled explicit integrator of the square-loss gradient flow: DOP853 and the layer gradient in numba.

Private to the package (its names are public within it): :func:`quotient._ode.integrate` runs
the flows of a square-loss :class:`~quotient.problem.Problem` through :class:`CompiledFlow`.

scipy's ``DOP853`` spends ~290 us of Python per step on a 4-8-8-4 network whose gradient costs
13.7 us; here the whole step loop (the 12 stages, the error estimate and step-size control, the
event test and Hairer's stiffness test) is compiled with the gradient inside it, so a step costs
its 12 gradients and little more. The method is scipy's to the last detail (the same tableau
``scipy.integrate._ivp.dop853_coefficients``, the same initial step, error norm, safety factor
and step-size limits), so the two take the same steps up to rounding (the error estimate
cancels, so its last bits, and with them the step sizes, differ at the 1e-9 level).

Loaded only when a flow first needs it (``import numba`` takes ~0.3 s); the functions are
compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.integrate._ivp import dop853_coefficients as _tableau

N_STAGES = _tableau.N_STAGES  # 12
_A = np.ascontiguousarray(_tableau.A[:N_STAGES, :N_STAGES])
_B = np.ascontiguousarray(_tableau.B)
_E3 = np.ascontiguousarray(_tableau.E3)
_E5 = np.ascontiguousarray(_tableau.E5)
SAFETY, MIN_FACTOR, MAX_FACTOR, ERROR_EXPONENT = 0.9, 0.2, 10.0, -1.0 / 8.0  # scipy's RungeKutta, order 7 estimate

# the codes with which :func:`_advance` returns
FINAL_TIME, SAMPLE, EVENT, CHUNK, STIFF, TOO_SMALL_STEP, NOT_FINITE = range(7)

# products with at most this many multiply-adds run as compiled loops, larger ones call the BLAS (measured:
# 4-8-8-4 gradients 1.28 us with 64, 1.36 us with 1024; 3-4-4-3 0.56 us, half the time of 2-D views)
_SMALL_PRODUCT = 64


@njit(cache=True, inline="always")
def _product(a, ao, ars, acs, b, bo, brs, bcs, out, oo, m, k, n):
    """``C = A B`` on flat arrays: ``A[i, p] = a[ao + i ars + p acs]``, ``B[p, j] = b[bo + p brs + j bcs]``,
    ``C[i, j] = out[oo + i n + j]`` (shapes ``(m, k)``, ``(k, n)``, ``(m, n)``); a transposed factor is
    the same memory with its strides swapped. Compiled loops for small products (array views cost more
    than their arithmetic there), BLAS ``gemm`` on views above ``_SMALL_PRODUCT`` multiply-adds."""
    if m * k * n <= _SMALL_PRODUCT:
        for i in range(m):
            for j in range(n):
                out[oo + i * n + j] = 0.0
            for p in range(k):
                aip = a[ao + i * ars + p * acs]
                for j in range(n):
                    out[oo + i * n + j] += aip * b[bo + p * brs + j * bcs]
        return
    C = out[oo : oo + m * n].reshape((m, n))
    if acs == 1 and bcs == 1:
        np.dot(a[ao : ao + m * k].reshape((m, k)), b[bo : bo + k * n].reshape((k, n)), C)
    elif acs == 1:
        np.dot(a[ao : ao + m * k].reshape((m, k)), b[bo : bo + k * n].reshape((n, k)).T, C)
    elif bcs == 1:
        np.dot(a[ao : ao + m * k].reshape((k, m)).T, b[bo : bo + k * n].reshape((k, n)), C)
    else:
        np.dot(a[ao : ao + m * k].reshape((k, m)).T, b[bo : bo + k * n].reshape((n, k)).T, C)


@njit(cache=True)
def _negative_gradient(y, widths, offsets, forward_offsets, target, forward, back, out):
    """``out = -grad L(y)`` on the flat state ``y``; returns ``L(y)``, ``L = 1/2 ||W_h ... W_1 - Sigma||_F^2``.

    ``F_j = W_j F_{j-1}`` forward (``F_1 = W_1``), ``G = F_h - Sigma``, then backward
    ``grad_j = (B_j^T G) F_{j-1}^T`` with ``B_{j-1}^T G = W_j^T (B_j^T G)``: the products of
    :meth:`Problem.unchecked_gradient`. ``W_j`` is ``y[offsets[j-1]:offsets[j]]`` in C order,
    ``F_j`` is ``forward[forward_offsets[j]:]``, ``target`` is flat, and ``back`` holds the two
    alternating ``B_j^T G`` (halves of it).
    """
    h = widths.size - 1
    d0 = widths[0]
    for j in range(2, h + 1):  # F_j = W_j F_{j-1}
        if j == 2:
            _product(y, offsets[1], widths[1], 1, y, offsets[0], d0, 1, forward, forward_offsets[2], widths[2], widths[1], d0)
        else:
            _product(
                y, offsets[j - 1], widths[j - 1], 1, forward, forward_offsets[j - 1], d0, 1, forward, forward_offsets[j],
                widths[j], widths[j - 1], d0,
            )  # fmt: skip
    last, at = (y, offsets[0]) if h == 1 else (forward, forward_offsets[h])
    loss = 0.0
    for i in range(widths[h] * d0):
        g = last[at + i] - target[i]
        back[i] = g
        loss += g * g
    current, other = 0, back.size // 2
    for j in range(h, 1, -1):
        # grad_j = (B_j^T G) F_{j-1}^T and B_{j-1}^T G = W_j^T (B_j^T G); F_1 = W_1
        previous, at = (y, offsets[0]) if j == 2 else (forward, forward_offsets[j - 1])
        _product(back, current, d0, 1, previous, at, 1, d0, out, offsets[j - 1], widths[j], d0, widths[j - 1])
        target_array, target_at = (out, offsets[0]) if j == 2 else (back, other)
        _product(y, offsets[j - 1], 1, widths[j - 1], back, current, d0, 1, target_array, target_at, widths[j - 1], widths[j], d0)
        current, other = other, current
    if h == 1:
        for i in range(widths[1] * d0):
            out[offsets[0] + i] = back[i]
    for i in range(out.size):
        out[i] = -out[i]
    return 0.5 * loss


@njit(cache=True)
def _event_value(loss, f, gradient_atol, threshold):
    """The terminal event's value: ``||grad L|| - gradient_atol`` where ``L < threshold``, else 1."""
    if loss >= threshold:
        return 1.0
    return np.sqrt(np.sum(f * f)) - gradient_atol


@njit(cache=True)
def _stages(y, h, K, stage, increment, widths, offsets, forward_offsets, target, forward, back):
    """The stages ``K[1..11]`` of one DOP853 step of length ``h`` from ``y`` (``K[0] = f(y)`` given).

    ``stage = y + h sum_r A[s, r] K[r]``, the sum over ``r`` in order as scipy's, the loops over the
    state innermost (contiguous, vectorised) and the tableau's zeros skipped.
    """
    n = y.size
    for s in range(1, N_STAGES):
        increment[:] = 0.0
        for r in range(s):
            a = _A[s, r]
            if a != 0.0:
                for i in range(n):
                    increment[i] += a * K[r, i]
        for i in range(n):
            stage[i] = y[i] + h * increment[i]
        _negative_gradient(stage, widths, offsets, forward_offsets, target, forward, back, K[s])


@njit(cache=True, inline="always")
def _step(y, f, h, K, stage, increment, out, widths, offsets, forward_offsets, target, forward, back):
    """``out`` = one DOP853 step of length ``h`` from ``y`` (``f = f(y)``): ``y + h sum_r B[r] K[r]``, stages in ``K``."""
    K[0, :] = f
    _stages(y, h, K, stage, increment, widths, offsets, forward_offsets, target, forward, back)
    _combine(_B, K, N_STAGES, increment)
    for i in range(y.size):
        out[i] = y[i] + h * increment[i]


@njit(cache=True, inline="always")
def _combine(weights, K, rows, out):
    """``out = sum_{r < rows} weights[r] K[r]`` (in the order of ``r``, zeros skipped)."""
    out[:] = 0.0
    for r in range(rows):
        w = weights[r]
        if w != 0.0:
            for i in range(out.size):
                out[i] += w * K[r, i]


@njit(cache=True)
def _advance(
    y, f, K, work, real, count, t_final, rtol, atol, t_return, max_steps, gradient_atol, threshold, stiff_limit,
    widths, offsets, forward_offsets, target, forward, back,
):
    """Accepted DOP853 steps of ``dy/dt = f(y)`` until one of the return codes; the state is updated in place.

    ``y, f`` (``f = f(y)``), ``K`` of shape ``(13, n)``, ``work`` of shape ``(6, n)`` (row 0 holds
    the state before the last step, row 1 the last stage, rows 2-5 scratch: the new state, the
    stage increment, the two error estimates); ``real = [t, h_abs, t_old, loss,
    event value, h, event value before the last step]``; ``count = [steps, field evaluations,
    stiff steps, calm steps]``. Returns ``FINAL_TIME`` at ``t_final``, ``SAMPLE`` after the step
    that reaches ``t_return``, ``EVENT`` after the step across which the event value falls
    through 0 (``gradient_atol > 0``), ``STIFF`` once Hairer's test (``h rho > 6.1``) has held
    ``stiff_limit`` times with no 6 calm steps between (``stiff_limit > 0``), ``CHUNK`` after
    ``max_steps`` steps, ``TOO_SMALL_STEP`` when the step falls below 10 spacings of ``t`` and
    ``NOT_FINITE`` when an accepted state is not finite.
    """
    n = y.size
    t, h_abs, value = real[0], real[1], real[4]
    y_old, stage, y_new, increment, e5, e3 = work[0], work[1], work[2], work[3], work[4], work[5]
    taken = 0
    while t < t_final:
        min_step = 10.0 * (np.nextafter(t, np.inf) - t)
        h_abs = max(h_abs, min_step)
        rejected = False
        while True:
            if h_abs < min_step:
                real[0], real[1] = t, h_abs
                return TOO_SMALL_STEP
            t_new = min(t + h_abs, t_final)
            h = t_new - t
            h_abs = abs(h)
            _step(y, f, h, K, stage, increment, y_new, widths, offsets, forward_offsets, target, forward, back)
            loss = _negative_gradient(y_new, widths, offsets, forward_offsets, target, forward, back, K[N_STAGES])
            count[1] += N_STAGES
            _combine(_E5, K, N_STAGES + 1, e5)
            _combine(_E3, K, N_STAGES + 1, e3)
            err5, err3 = 0.0, 0.0
            for i in range(n):
                sc = atol + max(abs(y[i]), abs(y_new[i])) * rtol
                err5 += (e5[i] / sc) ** 2
                err3 += (e3[i] / sc) ** 2
            error = 0.0 if err5 == 0.0 and err3 == 0.0 else h_abs * err5 / np.sqrt((err5 + 0.01 * err3) * n)
            if error < 1.0:
                factor = MAX_FACTOR if error == 0.0 else min(MAX_FACTOR, SAFETY * error**ERROR_EXPONENT)
                h_abs *= min(1.0, factor) if rejected else factor
                break
            factor = SAFETY * error**ERROR_EXPONENT
            h_abs *= factor if factor > MIN_FACTOR else MIN_FACTOR  # a NaN error shrinks the step as scipy's max(0.2, nan)
            rejected = True
        finite = True
        for i in range(n):
            y_old[i] = y[i]
            y[i] = y_new[i]
            f[i] = K[N_STAGES, i]
            finite = finite and np.isfinite(y[i])
        real[2], real[0], real[1], real[3], real[5] = t, t_new, h_abs, loss, h
        t = t_new
        count[0] += 1
        taken += 1
        if not finite:
            return NOT_FINITE
        if gradient_atol > 0.0:
            new_value = _event_value(loss, f, gradient_atol, threshold)
            real[6], real[4] = value, new_value
            if value >= 0.0 and new_value <= 0.0 and new_value != value:
                return EVENT
            value = new_value
        if stiff_limit > 0:
            # Hairer's rho = ||f(y_new) - f(Y_12)|| / ||y_new - Y_12||, Y_12 the last stage's state (c_12 = 1),
            # which ``stage`` holds after _stages
            rise, run = 0.0, 0.0
            for i in range(n):
                rise += (K[N_STAGES, i] - K[N_STAGES - 1, i]) ** 2
                run += (y[i] - stage[i]) ** 2
            if run > 0.0 and h * np.sqrt(rise / run) > 6.1:
                count[2] += 1
                count[3] = 0
            else:
                count[3] += 1
                if count[3] >= 6:
                    count[2] = 0
            if count[2] >= stiff_limit:
                return STIFF
        if t >= t_return:
            return SAMPLE
        if taken >= max_steps:
            return CHUNK
    return FINAL_TIME


@njit(cache=True)
def _steps_from(y, f, lengths, states, K, stage, increment, widths, offsets, forward_offsets, target, forward, back):
    """``states[k]`` = one DOP853 step of length ``lengths[k]`` from ``y`` (``f = f(y)``)."""
    for k in range(lengths.size):
        _step(y, f, lengths[k], K, stage, increment, states[k], widths, offsets, forward_offsets, target, forward, back)


class CompiledFlow:
    """The square-loss gradient flow ``dy/dt = -grad L(y)`` of one problem, compiled, with its DOP853 state.

    Parameters
    ----------
    widths : sequence of int
        ``d_0, ..., d_h``.
    target : ndarray, shape (d_h, d_0)
        ``Sigma``.

    Attributes
    ----------
    y, f : ndarray, shape (n,)
        The current state and ``f(y)``; ``t``, ``h_abs`` the current time and step size.
    """

    def __init__(self, widths, target):
        widths = np.asarray(widths, dtype=np.int64)
        sizes = widths[1:] * widths[:-1]
        self.n = int(sizes.sum())
        self._layout = (
            widths,
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            np.concatenate([[0, 0], np.cumsum(widths[1:] * widths[0])]).astype(np.int64),  # F_j at [o_j, o_{j+1})
            np.ascontiguousarray(target, dtype=float).ravel(),
        )
        self._forward = np.zeros(int(self._layout[2][-1]) + 1)
        self._back = np.zeros(2 * int(widths.max() * widths[0]))
        self._K = np.empty((N_STAGES + 1, self.n))
        self._work = np.empty((6, self.n))
        self._real = np.zeros(7)
        self._count = np.zeros(4, dtype=np.int64)

    def _kernels(self):
        return (*self._layout, self._forward, self._back)

    def field(self, y):
        """``(f, L)``: ``f = -grad L(y)`` of shape ``(n,)`` and the loss at ``y``."""
        f = np.empty(self.n)
        loss = _negative_gradient(np.ascontiguousarray(y, dtype=float), *self._kernels(), f)
        return f, loss

    def event_value(self, y, gradient_atol, threshold):
        """The terminal event's value at ``y`` (:func:`_event_value`)."""
        f, loss = self.field(y)
        return _event_value(loss, f, gradient_atol, threshold)

    def start(self, y0, t0, t_final, rtol, atol, gradient_atol, threshold):
        """Set the state to ``y0`` at ``t0`` with scipy's initial step (``select_initial_step``, order 7)."""
        self.y = np.array(y0, dtype=float)
        self.f, loss = self.field(self.y)
        scale = atol + np.abs(self.y) * rtol
        root_n = np.sqrt(self.n)
        d0, d1 = np.linalg.norm(self.y / scale) / root_n, np.linalg.norm(self.f / scale) / root_n
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        h0 = min(h0, t_final - t0)
        f1, _ = self.field(self.y + h0 * self.f)
        d2 = np.linalg.norm((f1 - self.f) / scale) / root_n / h0
        h1 = max(1e-6, h0 * 1e-3) if d1 <= 1e-15 and d2 <= 1e-15 else (0.01 / max(d1, d2)) ** (1 / 8)
        value = _event_value(loss, self.f, gradient_atol, threshold) if gradient_atol > 0 else np.inf
        self._real[:] = (t0, min(100 * h0, h1, t_final - t0), t0, loss, value, 0.0, value)
        self._count[:] = (0, 2, 0, 0)

    @property
    def t(self) -> float:
        return float(self._real[0])

    @property
    def t_old(self) -> float:
        """The time before the last accepted step."""
        return float(self._real[2])

    @property
    def y_old(self):
        return self._work[0]

    @property
    def f_old(self):
        """``f(y_old)``: the first stage of the last step."""
        return self._K[0]

    @property
    def value(self) -> float:
        """The event value at the current state (``real[6]`` holds the one before the last step)."""
        return float(self._real[4])

    @property
    def n_steps(self) -> int:
        return int(self._count[0])

    @property
    def n_rhs(self) -> int:
        return int(self._count[1])

    def advance(self, t_final, rtol, atol, t_return, max_steps, gradient_atol, threshold, stiff_limit) -> int:
        """Accepted steps until a return code of :func:`_advance`."""
        return _advance(
            self.y, self.f, self._K, self._work, self._real, self._count, float(t_final), float(rtol), float(atol),
            float(t_return), int(max_steps), float(gradient_atol), float(threshold), int(stiff_limit), *self._kernels(),
        )  # fmt: skip

    def steps_from_old(self, lengths):
        """States one DOP853 step of each of ``lengths`` after ``y_old``: shape ``(len(lengths), n)``.

        The samples inside the last step: as accurate as the steps, where DOP853's interpolant
        on the long steps of a plateau is hundreds of times less accurate.
        """
        lengths = np.ascontiguousarray(lengths, dtype=float)
        states = np.empty((lengths.size, self.n))
        K, stage, increment = np.empty((N_STAGES + 1, self.n)), np.empty(self.n), np.empty(self.n)
        y_old, f_old = self.y_old.copy(), self.f_old.copy()
        _steps_from(y_old, f_old, lengths, states, K, stage, increment, *self._kernels())
        self._count[1] += N_STAGES * lengths.size
        return states
