"""Saddle geometry: the directions along which the gradient flow leaves or reaches a saddle.

At a strict saddle the Hessian has negative eigenvalues and its eigenvectors give the unstable
directions (the flow leaves at an exponential rate: escape of order 2). At a non-strict saddle
(``h >= 3``, math.md section 6) the Hessian is positive semidefinite and blind to the escape; the
flow still leaves along invariant curves on which one more mode is switched on, at a rate set by
the order ``g >= 3`` of the first non-zero term of the loss along them (``g = h`` at the canonical
points of top sets). This module returns both kinds as :class:`SaddleDirection` objects.

Mode curves (math-spec section 6.2). Fix an unlearned mode ``i`` (``sigma_i > 0``) at a critical
point. Its input direction ``f_i`` runs through a *tail* of non-zero edges up to layer ``b``
(``x_j = F_j f_i != 0`` for ``j <= b``), its output direction ``e_i`` is reached from a *head*
starting at layer ``a`` (``B_j^T e_i != 0`` for ``j >= a``), and criticality forces
``g = a - b >= 2`` missing edges between them. Where the hidden layers ``b+1 .. a-1`` have free
capacity (a vector in ``ker W_{j+1}`` outside ``range W_j``), the tail, the head and one free unit
per gap layer form a chain that splits off the rest of the network as a direct summand. After a
change of basis at the hidden layers that makes the split orthogonal, the chain is a scalar chain
``(c_1, ..., c_h)`` for the target ``sigma_i``, decoupled from the rest, and the flow keeps its
conserved quantities ``c_{j+1}^2 - c_j^2``: starting from the saddle's values ``c_j^0`` (zero on
the gap), the set

    c_j(v) = s_j sqrt((c_j^0)^2 + v^2),   v >= 0,

is a curve the flow never leaves. It is *unstable* when the signs ``s_j`` multiply to ``+1`` (the
chain learns ``sigma_i``: the loss falls by ``sigma_i prod_j c_j(v) ~ v^g``) and *stable* when
they multiply to ``-1`` (the flow returns to the saddle, algebraically:
``v(t) ~ ((h - 2) sigma_i t)^{-1/(h-2)}`` at the canonical point). When the split is orthogonal
already (canonical points, their orthogonal images, any point in normal form) the curve lies in
parameter space as it is (``invariant=True``). Otherwise the curve is carried back by the inverse
change of basis: the loss along it is the same (the loss is invariant), so the flow from an
unstable curve's points still ends at a lower critical value, but it does not stay on the curve
(``invariant=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import null_space, orth
from scipy.sparse.linalg import eigsh

from ._numerics import check_tolerance, layer_norms, squared_norm
from .classification import learned_modes, require_critical
from .critical import global_minimum, same_value, value_of
from .hessian import DENSE_LIMIT, ZERO_EIGENVALUE_RTOL, hessian_inertia, hessian_operator
from .network import as_point, backward_products, forward_products, from_vector, to_vector
from .orbit import pull_back
from .problem import Problem

__all__ = ["SaddleDirection", "stable_directions", "unstable_directions"]


@dataclass(frozen=True, eq=False)
class SaddleDirection:
    """A direction in which the gradient flow leaves (unstable) or reaches (stable) a saddle.

    Parameters
    ----------
    point : tuple of ndarray
        The saddle.
    direction : tuple of ndarray
        Unit tangent vector at ``point`` (Euclidean norm over all layers is 1).
    kind : {"unstable", "stable"}
        Whether the flow leaves the saddle along the direction or reaches it.
    order : int
        Order of the first non-zero term of ``L(curve(v)) - L(point)``: 2 for a Hessian
        eigenvector, ``g`` (the number of edges switched on) for a mode curve.
    mechanism : {"hessian", "mode"}
        An eigenvector of the Hessian, or the curve of one unlearned mode (module docstring).
    eigenvalue : float or None
        The Hessian eigenvalue (``"hessian"`` only).
    mode : int or None
        The unlearned mode switched on, 1-based (``"mode"`` only).
    invariant : bool
        Whether the gradient flow started at ``curve(v)`` stays on the curve.
    _chain : tuple or None
        Internal (built by :func:`unstable_directions` / :func:`stable_directions` for
        ``"mode"`` directions): ``(vectors, base, signs, frame)`` of the mode's chain of unit
        vectors, from which :meth:`curve` builds the exact curve; ``None`` for Hessian directions.
    """

    point: tuple
    direction: tuple
    kind: str
    order: int
    mechanism: str
    eigenvalue: float | None = None
    mode: int | None = None
    invariant: bool = False
    _chain: tuple | None = field(default=None, repr=False)

    def curve(self, v: float):
        """The point at parameter ``v >= 0`` of the curve.

        ``"hessian"``: the straight line ``point + v * direction`` (tangent to the unstable or
        stable manifold, not on it). ``"mode"``: the curve of the module docstring, with ``v``
        the size of each switched-on edge in the orthogonal frame of the chain.

        Parameters
        ----------
        v : float
            Curve parameter, ``v >= 0``; ``v = 0`` is the saddle itself.

        Returns
        -------
        tuple of ndarray
            The point ``(W_1, ..., W_h)`` at ``v``, same shapes as :attr:`point`.
        """
        if self._chain is None:
            return tuple(W + v * D for W, D in zip(self.point, self.direction))
        vectors, base, signs, frame = self._chain
        layers = []
        for j, W in enumerate(self.point):
            change = signs[j] * np.sqrt(base[j] ** 2 + v**2) - base[j]
            delta = change * np.outer(vectors[j + 1], vectors[j])
            layers.append(W + _from_frame(delta, frame, j))
        return tuple(layers)


def _from_frame(delta, frame, j):
    """``G_{j+1}^{-1} delta G_j`` (layer ``j + 1``, 0-based ``j``), ``G_0 = G_h = I``."""
    if frame is None:
        return delta
    G = frame
    if G[j + 1] is not None:
        delta = np.linalg.solve(G[j + 1], delta)
    if G[j] is not None:
        delta = delta @ G[j]
    return delta


def _complement_basis(V: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """Orthonormal basis of a hyperplane ``Q`` that contains ``span V`` and not ``p``.

    ``Q = span V + (span V + span p)^perp``; ``None`` if ``p`` lies in ``span V``.
    """
    d = p.size
    V = orth(V) if V.size else np.zeros((d, 0))
    residual = p - V @ (V.T @ p)
    if np.linalg.norm(residual) <= 1e-9 * np.linalg.norm(p):
        return None
    rest = null_space(np.column_stack([V, p]).T) if V.shape[1] + 1 < d else np.zeros((d, 0))
    return np.column_stack([V, rest])


def _mode_chain(problem: Problem, point, i: int, rtol: float):
    """The chain of unlearned mode ``i`` (0-based) at a critical point, or ``None``.

    Returns ``(vectors, base, gap, frame, orthogonal)``: unit chain vectors ``n_0 = f_i, ...,
    n_h = e_i`` in the orthogonal frame ``g.W``, the edge values ``c_j^0`` there, a boolean mask of
    the gap edges, the frame ``(None, G_1, ..., G_{h-1}, None)`` (``None`` overall when it is the
    identity) and whether the split is orthogonal already.
    """
    h = len(point)
    widths = problem.widths
    norms = layer_norms(point)
    F, B = forward_products(point), backward_products(point)
    f = np.zeros(widths[0])
    f[i] = 1.0
    e = np.zeros(widths[-1])
    e[i] = 1.0

    def nonzero(x, scale):
        return np.linalg.norm(x) > rtol * scale

    # tail: x_j = F_j f_i, j = 0..b
    tail = [f]
    for j in range(1, h + 1):
        x = F[j] @ f
        if not nonzero(x, np.prod(norms[:j])):
            break
        tail.append(x)
    b = len(tail) - 1
    if b == h:
        return None  # the mode reaches the output: it is (partly) learned
    # head: y_j = B_j^T e_i != 0 for j >= a
    a = h
    while a - 1 >= 1 and nonzero(B[a - 1].T @ e, np.prod(norms[a - 1 :])):
        a -= 1
    if a - b < 2:
        return None  # not a critical configuration of this mode
    # head vectors p_j = W_j ... W_{a+1} p_a with B_a p_a = e_i
    head = {h: e}
    if a < h:
        p_a, *_ = np.linalg.lstsq(B[a], e, rcond=None)
        if np.linalg.norm(B[a] @ p_a - e) > 1e-8:
            return None
        head[a] = p_a
        for j in range(a + 1, h):
            head[j] = point[j - 1] @ head[j - 1]
    # gap vectors z_j in ker W_{j+1} outside range W_j, j = b+1..a-1
    gap_vectors = {}
    for j in range(b + 1, a):
        kernel = null_space(point[j], rcond=rtol)  # W_{j+1} is point[j]
        outside = null_space(point[j - 1].T, rcond=rtol)  # (range W_j)^perp
        if kernel.shape[1] == 0 or outside.shape[1] == 0:
            return None
        U, s, Vt = np.linalg.svd(outside.T @ kernel)
        if s[0] <= 1e-6:
            return None
        z = kernel @ Vt[0]
        gap_vectors[j] = z * np.sign(z[np.argmax(np.abs(z))])
    # the hyperplanes Q_j (the rest of the network) and the chain vectors p_j
    p, Q = {0: f}, {0: null_space(f[None, :])}
    for j in range(1, h):
        if j <= b:
            p[j] = tail[j]
            Q[j] = _complement_basis(point[j - 1] @ Q[j - 1], p[j])
        elif j < a:
            p[j] = gap_vectors[j]
            Q[j] = _complement_basis(point[j - 1], p[j])
        else:
            p[j] = head[j]
            y = B[j].T @ e
            Q[j] = null_space(y[None, :])
        if Q[j] is None:
            return None
    p[h] = e
    # G_j = [|p_j| n_j, Q_j] [p_j, Q_j]^{-1}: identity on Q_j, p_j onto the normal of Q_j
    frame = [None] * (h + 1)
    vectors = [f] + [None] * (h - 1) + [e]
    orthogonal = True
    for j in range(1, h):
        normal = null_space(Q[j].T)[:, 0] if Q[j].shape[1] < widths[j] else None
        normal = normal * np.sign(normal @ p[j])
        vectors[j] = normal
        size = np.linalg.norm(p[j])
        frame[j] = np.column_stack([size * normal, Q[j]]) @ np.linalg.inv(np.column_stack([p[j], Q[j]]))
        orthogonal &= bool(abs(normal @ p[j] - size) <= 1e-10 * size)
    # edge values in the orthogonal frame: |p_j| / |p_{j-1}| on tail and head edges, 0 on the gap
    sizes = [np.linalg.norm(p[j]) for j in range(h + 1)]
    gap = np.array([b < j <= a for j in range(1, h + 1)])
    base = np.array([0.0 if gap[j - 1] else sizes[j] / sizes[j - 1] for j in range(1, h + 1)])
    return vectors, base, gap, (None if orthogonal else tuple(frame)), orthogonal


def _mode_directions(problem: Problem, point, kind: str, rtol: float, min_order: int = 3):
    h = len(point)
    sigma = np.asarray(problem.sigma)
    out = []
    for i in range(sigma.size):
        if sigma[i] <= 0:
            continue
        chain = _mode_chain(problem, point, i, rtol)
        if chain is None:
            continue
        vectors, base, gap, frame, orthogonal = chain
        order = int(gap.sum())
        if order < min_order:
            continue
        signs = np.ones(h)
        if kind == "stable":
            signs[np.argmax(gap)] = -1.0  # the first switched-on edge negative: product -1
        tangent = [_from_frame(signs[j] * gap[j] * np.outer(vectors[j + 1], vectors[j]), frame, j) for j in range(h)]
        size = np.sqrt(squared_norm(tangent))
        out.append(
            SaddleDirection(
                point, tuple(D / size for D in tangent), kind, order, "mode",
                mode=i + 1, invariant=orthogonal, _chain=(tuple(vectors), base, signs, frame),
            )  # fmt: skip
        )
    return out


def _hessian_directions(problem: Problem, point, z, g, kind: str, rtol: float, dense_limit: int):
    """Hessian directions of one sign at ``point``; the count is the inertia of the orbit (at ``z``).

    Unstable: the negative eigenvectors at the well-conditioned ``z = g . point`` carried back by the
    action span a subspace on which ``H(point)`` is negative definite (``H(point) = A^T H(z) A``);
    the directions returned are its Ritz vectors (orthonormal, with their Rayleigh quotients as
    eigenvalues: the negative eigenpairs themselves when ``g`` is orthogonal, e.g. at balanced
    points). Stable: the positive eigenvectors of ``H(point)`` itself, since the linearised flow
    ``-H(point)`` is not transported by the action (only by its orthogonal subgroup).
    """
    n = problem.n_params
    inertia = hessian_inertia(problem, z, rtol=rtol, dense_limit=dense_limit)
    count = inertia.negative if kind == "unstable" else inertia.positive
    if count == 0:
        return []
    at = z if kind == "unstable" else point
    if n <= dense_limit:
        values, vectors = np.linalg.eigh(problem.hessian(at))
        chosen = np.arange(count) if kind == "unstable" else np.arange(n - count, n)
        values, vectors = values[chosen], vectors[:, chosen]
    else:
        operator = hessian_operator(problem, at)
        values, vectors = eigsh(operator, k=count, which="SA" if kind == "unstable" else "LA", tol=1e-12)
    if kind == "unstable":
        Q = np.linalg.qr(pull_back(vectors.T, g, problem.widths).T)[0]
        HQ = np.stack([to_vector(problem.unchecked_hvp(point, from_vector(Q[:, k].copy(), problem.widths))) for k in range(count)], axis=1)
        values, ritz = np.linalg.eigh(0.5 * (Q.T @ HQ + HQ.T @ Q))
        vectors = Q @ ritz
    order = np.argsort(values) if kind == "unstable" else np.argsort(-values)
    return [
        SaddleDirection(point, from_vector(vectors[:, k].copy(), problem.widths), kind, 2, "hessian", eigenvalue=float(values[k]))
        for k in order
    ]


def _saddle(problem: Problem, point, rtol: float):
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    rtol = check_tolerance(rtol, "gradient_rtol")
    point = as_point(point, "point", widths=problem.widths)
    z, g = require_critical(problem, point, rtol)
    minimum = same_value(problem, value_of(problem, learned_modes(problem, z)), global_minimum(problem))
    return tuple(np.array(layer) for layer in point), minimum, z, g


def unstable_directions(problem: Problem, point, *, gradient_rtol: float = 1e-8, hessian_rtol: float = ZERO_EIGENVALUE_RTOL, dense_limit: int = DENSE_LIMIT):
    """The directions in which the gradient flow leaves a saddle.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point : tuple of ndarray
        A critical point.
    gradient_rtol : float
        Criticality and rank tolerance (as in :func:`quotient.classify`).
    hessian_rtol : float
        Zero threshold for Hessian eigenvalues (as in :func:`quotient.hessian_inertia`).
    dense_limit : int
        Largest ``N`` for which the Hessian eigenvectors are computed densely (ARPACK beyond).

    Returns
    -------
    list of SaddleDirection
        The eigenvectors of the Hessian's negative eigenvalues (``mechanism="hessian"``, order 2,
        most negative first; present exactly at strict saddles), then one unstable mode curve
        per unlearned mode that has free capacity between its tail and head and needs ``g >= 3``
        edges (``mechanism="mode"``, order ``g``: the only escape at a non-strict saddle). Empty
        at a global minimum.

    Raises
    ------
    ValueError
        If ``point`` is not critical (the message gives its gradient norm).

    Notes
    -----
    Along a Hessian eigenvector ``d`` with eigenvalue ``lambda < 0`` the loss falls like
    ``lambda v^2 / 2``; along an unstable mode curve it falls like ``sigma_i v^g prod c_j^0``. Mode
    curves with ``g = 2`` are Hessian-visible and left to the eigenvectors. A non-strict saddle
    whose spare hidden units are all taken by tails and heads of directions ``Sigma`` ignores
    has no mode curve: the escape first has to move along the fiber, and none is returned.
    """
    point, minimum, z, g = _saddle(problem, point, gradient_rtol)
    hessian_rtol = check_tolerance(hessian_rtol, "hessian_rtol")
    if minimum:
        return []
    return _hessian_directions(problem, point, z, g, "unstable", hessian_rtol, dense_limit) + _mode_directions(
        problem, point, "unstable", gradient_rtol
    )


def stable_directions(problem: Problem, point, *, gradient_rtol: float = 1e-8, hessian_rtol: float = ZERO_EIGENVALUE_RTOL, dense_limit: int = DENSE_LIMIT):
    """The directions along which the gradient flow comes back to a critical point.

    Parameters
    ----------
    problem, point, gradient_rtol, hessian_rtol, dense_limit
        As in :func:`unstable_directions`.

    Returns
    -------
    list of SaddleDirection
        The eigenvectors of the Hessian's positive eigenvalues (order 2, largest first: the flow
        returns exponentially, at rate ``lambda``), then one stable mode curve per unlearned mode
        with a chain of ``g >= 3`` missing edges (order ``g``: the flow returns algebraically; at
        the canonical point ``v(t) ~ ((h - 2) sigma_i t)^{-1/(h-2)}``, math-spec section 6.2,
        test case TC12), where the chain splits off orthogonally (``invariant=True``: canonical
        points, their orthogonal images, points in normal form). At a global minimum only the
        Hessian eigenvectors.

    Raises
    ------
    ValueError
        If ``point`` is not critical (the message gives its gradient norm).

    Notes
    -----
    The kernel of the Hessian (directions along the fiber and the centre directions of a
    non-strict saddle) is neither stable nor unstable and is not returned; see
    :meth:`quotient.Fiber.tangent_space`.

    What transports and what does not. The loss is GL-invariant and the action linear, so descent
    directions move with the action (:func:`unstable_directions` computes them at a
    well-conditioned point of the orbit); the flow is only equivariant under the orthogonal
    subgroup, so stable curves must be found at the point itself. The Hessian eigenvectors are
    those of ``H`` at the point. A stable mode curve carried back from the orthogonal frame of a
    chain that splits off non-orthogonally is *not* on the stable set (the flow from it drifts
    along the fiber and escapes to a lower value: measured in ``tests/test_saddle.py``), so such
    curves are not returned: at points whose chains split non-orthogonally (e.g. samples of
    :meth:`Fiber.sample`, which apply random GL elements) only the Hessian directions are.
    """
    point, minimum, z, g = _saddle(problem, point, gradient_rtol)
    hessian_rtol = check_tolerance(hessian_rtol, "hessian_rtol")
    directions = _hessian_directions(problem, point, z, g, "stable", hessian_rtol, dense_limit)
    if not minimum:
        directions += [d for d in _mode_directions(problem, point, "stable", gradient_rtol) if d.invariant]
    return directions
