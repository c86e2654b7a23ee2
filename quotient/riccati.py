"""Two layers with ``C = lambda I``: the flow is a matrix Riccati equation with a closed-form solution."""

from __future__ import annotations

import numpy as np

from .network import as_point, conserved_quantities

__all__ = ["two_layer_solution"]


def two_layer_solution(problem, point0, t, *, rtol: float = 1e-10):
    """End-to-end map ``W(t) = W_2(t) W_1(t)`` of a two-layer, lambda-balanced flow in closed form.

    Parameters
    ----------
    problem : Problem
        A square-loss problem of depth 2 (any target, any widths).
    point0 : tuple of ndarray
        ``(W_1, W_2)`` with ``C = W_2^T W_2 - W_1 W_1^T = lambda I_{d_1}`` for some real ``lambda``.
    t : float or array_like
        Times ``>= 0``.
    rtol : float
        Relative tolerance of the check ``C = lambda I``.

    Returns
    -------
    ndarray, shape ``t.shape + (d_2, d_0)``

    Notes
    -----
    With ``Q = [W_1^T ; W_2]`` and ``M = Q Q^T = [[W_1^T W_1, W^T], [W, W_2 W_2^T]]``, the flow reads
    ``dM/dt = F M + M F - M^2`` with the symmetric ``F = [[-lambda/2 I, Sigma^T], [Sigma, lambda/2 I]]``,
    whose solution is (Fukumizu 1998; Braun et al. 2022; Tarmoun et al. 2021; math-spec 4.4)

        M(t) = e^{F t} Q_0 [I + Q_0^T G(t) Q_0]^{-1} Q_0^T e^{F t} = e^{F t} M_0 [I + G(t) M_0]^{-1} e^{F t},
        G(t) = int_0^t e^{2 F s} ds,

    evaluated in the eigenbasis of ``F`` and composed over steps with ``|mu| dt <= 1`` (the
    semigroup property; one long step loses digits to factors ``e^{2 mu t}`` that cancel).
    ``W(t)`` is the lower-left ``(d_2, d_0)`` block.

    Raises
    ------
    ValueError
        If the problem is not of depth 2 or has no target, ``t`` is negative, or ``C`` is not a
        multiple of the identity.
    """
    if problem.depth != 2:
        raise ValueError(f"two_layer_solution needs a depth-2 problem; got depth {problem.depth}")
    if getattr(problem, "target", None) is None:
        raise ValueError("two_layer_solution needs a square-loss problem with a target Sigma")
    W1, W2 = as_point(point0, "point0", widths=problem.widths)
    (C,) = conserved_quantities((W1, W2))
    lam = float(np.trace(C)) / C.shape[0]
    scale = max(np.linalg.norm(W1) ** 2 + np.linalg.norm(W2) ** 2, np.finfo(float).tiny)
    if np.linalg.norm(C - lam * np.eye(C.shape[0])) > rtol * scale:
        raise ValueError(
            "point0 is not lambda-balanced: C = W_2^T W_2 - W_1 W_1^T differs from lambda I by "
            f"{np.linalg.norm(C - lam * np.eye(C.shape[0])):.3e} (relative to ||W||^2 = {scale:.3e})"
        )
    times = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError(f"t must be finite and non-negative; got {t!r}")
    d_0, d_2 = problem.widths[0], problem.widths[2]
    Sigma = problem.target
    F = np.block([[-0.5 * lam * np.eye(d_0), Sigma.T], [Sigma, 0.5 * lam * np.eye(d_2)]])
    mu, V = np.linalg.eigh(F)
    Q0 = V.T @ np.vstack([W1.T, W2])
    M = Q0 @ Q0.T  # M(0) in the eigenbasis of F
    # Long steps multiply numbers of size e^{2 mu t} that cancel; the semigroup property lets us
    # compose exact steps short enough that |mu| dt <= 1.
    longest = 1.0 / max(float(np.abs(mu).max()), np.finfo(float).tiny)
    out = np.empty(times.shape + (d_2, d_0))
    flat = times.ravel()
    now = 0.0
    for position in np.argsort(flat, kind="stable"):
        remaining = flat[position] - now
        n_steps = int(np.ceil(remaining / longest)) if remaining > 0 else 0
        for _ in range(n_steps):
            M = _riccati_step(M, mu, remaining / n_steps)
        now = flat[position]
        out.reshape((-1, d_2, d_0))[position] = (V @ M @ V.T)[d_0:, :d_0]
    return out


def _riccati_step(M, mu, dt):
    """Exact step of ``dM/dt = F M + M F - M^2`` in the eigenbasis of ``F``:
    ``M(dt) = E M (I + G M)^{-1} E`` with ``E = e^{F dt}``, ``G = int_0^dt e^{2 F s} ds``."""
    growth = np.exp(mu * dt)
    safe = np.where(mu == 0, 1.0, mu)
    G = np.where(mu == 0, dt, np.expm1(2 * mu * dt) / (2 * safe))
    X = np.linalg.solve(np.eye(M.shape[0]) + M * G[None, :], M)  # (I + M G)^{-1} M = M (I + G M)^{-1}
    X = growth[:, None] * X * growth[None, :]
    return 0.5 * (X + X.T)
