"""Orbits of the hidden symmetry group: closedness, minimal-norm representatives, alignment.

Kempf-Ness for the GL action (math.md section 3, math-spec section 4.2): an orbit ``G . W`` is
closed exactly when it meets the balanced set ``{C_i = 0}``; it then meets it in one orbit of the
orthogonal subgroup, at the points of minimal norm of the orbit. :func:`balance` finds such a point
as the minimiser of the geodesically convex function

    f(P_1, ..., P_{h-1}) = sum_{i=1}^h tr(P_i W_i P_{i-1}^{-1} W_i^T),   P_0 = I, P_h = I,

over products of SPD matrices (``f(G^T G) = ||G . W||^2``), from a closed form that exists on every
closed orbit or with pymanopt's trust-region method, and returns ``G_i = P_i^{1/2}``.
:func:`is_closed_orbit` decides closedness from ranks. :func:`align_orthogonal` registers one
point to another over the orthogonal subgroup (Procrustes), :func:`balance_rescaling` minimises the
norm over positive diagonal rescalings.
"""

from __future__ import annotations

import numpy as np

from ._numerics import act_unchecked, as_generator, chain_point, haar_orthogonal, squared_norm
from .network import (
    as_point,
    backward_products,
    check_count,
    check_positive,
    check_widths,
    conserved_quantities,
    end_to_end,
    forward_products,
    from_vector,
    to_vector,
    widths_of,
)

__all__ = [
    "OrbitNotClosedError",
    "orbit_infimum",
    "is_closed_orbit",
    "balanced_lift",
    "balance",
    "align_orthogonal",
    "balance_rescaling",
    "pull_back",
    "well_conditioned",
]


class OrbitNotClosedError(ValueError):
    """The orbit of a point has no point of minimal norm (it is not closed).

    Raised by :func:`balance` (GL action) and :func:`balance_rescaling` (rescalings); a
    ``ValueError``, so code that catches bad input catches it too.

    Parameters
    ----------
    message : str
        The sentence shown to the user: what is not closed and why.
    group : str
        ``"gl"`` or ``"rescaling"``: the action whose orbit is not closed.
    infimum : float, optional
        The infimum of the squared norm over the orbit (GL action only).
    limit : tuple of ndarray, optional
        A balanced point with the same end-to-end map, layers of shape ``(d_i, d_{i-1})`` (GL
        action only).
    layer_ranks : tuple of int, optional
        Numerical ranks of ``W_1, ..., W_h`` (GL action only).
    rank : int, optional
        Numerical rank of the end-to-end map (GL action only).

    Attributes
    ----------
    group : str
        ``"gl"`` or ``"rescaling"``.
    infimum : float or None
        The infimum of ``||g . W||^2`` over the orbit, approached but not attained. For the GL action
        it is ``h sum_k sigma_k(W)^{2/h}``; ``None`` for rescalings.
    limit : tuple of ndarray or None
        For the GL action, a balanced point with the same end-to-end map (:func:`balanced_lift`): a
        minimising sequence ``g_n . W`` converges to an orthogonal image of it.
    layer_ranks : tuple of int or None
        Numerical ranks of ``W_1, ..., W_h`` (GL action).
    rank : int or None
        Numerical rank of the end-to-end map (GL action).
    """

    def __init__(self, message, *, group, infimum=None, limit=None, layer_ranks=None, rank=None):
        super().__init__(message)
        self.group = group
        self.infimum = infimum
        self.limit = limit
        self.layer_ranks = layer_ranks
        self.rank = rank


def orbit_infimum(point, *, rtol: float = 1e-12) -> float:
    """``inf_g ||g . W||^2 = h sum_k sigma_k(W)^{2/h}`` over the GL orbit.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    rtol : float
        Rank threshold of :func:`is_closed_orbit`; singular values of ``W`` beyond its numerical rank
        are rounding errors and are dropped (the power ``2/h`` would turn an error ``e`` into
        ``e^{2/h}``).

    Returns
    -------
    float
        The infimum of ``||g . W||^2 = sum_i ||(g . W)_i||_F^2`` over ``g`` in
        ``GL(d_1) x ... x GL(d_{h-1})``; a function of the end-to-end map only.

    Raises
    ------
    TypeError, ValueError
        If ``point`` is not a point or ``rtol`` is negative or not finite.

    Notes
    -----
    The closure of every orbit contains exactly one closed orbit, the balanced points with the same
    end-to-end map ``W``; balanced layers share the singular values ``sigma_k(W)^{1/h}`` (Arora,
    Cohen & Hazan 2018), so their squared norm is ``h sum_k sigma_k(W)^{2/h}``. It is attained
    exactly when the orbit is closed (:func:`is_closed_orbit`). For ``h = 2`` it is twice the
    nuclear norm of ``W``.

    Examples
    --------
    >>> import numpy as np
    >>> from quotient import orbit_infimum
    >>> W = (np.array([[4.0]]), np.array([[1.0]]))   # ||W||^2 = 17, end-to-end map 4
    >>> orbit_infimum(W)                              # 2 * 4 at the balanced point (2, 2)
    8.0
    """
    check_positive("rtol", rtol, zero=True)
    point = as_point(point, "point")
    _, rank = _ranks(point, rtol)
    sigma = np.linalg.svd(end_to_end(point), compute_uv=False)[:rank]
    h = len(point)
    return float(h * np.sum(sigma ** (2.0 / h)))


def _ranks(point, rtol: float) -> tuple[tuple[int, ...], int]:
    """Numerical ranks of every layer and of the end-to-end map.

    The rank of the product is found by pushing an orthonormal basis of ``im W_1`` through the
    layers (rank of ``W_i Q`` relative to ``||W_i||``), so that it is not lost to the conditioning
    of the product of many layers.
    """
    layer_ranks = []
    for W in point:
        s = np.linalg.svd(W, compute_uv=False)
        layer_ranks.append(int(np.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0)
    Q = None
    for W in point:
        image = W if Q is None else W @ Q
        scale = np.linalg.norm(W, 2)
        if scale == 0 or image.size == 0:
            return tuple(layer_ranks), 0
        U, s, _ = np.linalg.svd(image, full_matrices=False)
        k = int(np.sum(s > rtol * scale))
        if k == 0:
            return tuple(layer_ranks), 0
        Q = U[:, :k]
    return tuple(layer_ranks), Q.shape[1]


def is_closed_orbit(point, *, rtol: float = 1e-12) -> bool:
    """Whether the GL orbit of ``point`` is closed, i.e. contains a balanced point.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    rtol : float
        Singular values below ``rtol`` times the norm of their layer count as zero.

    Returns
    -------
    bool
        ``True`` when ``rank W_i = rank W`` for every layer (the orbit holds a balanced point and
        :func:`balance` succeeds), ``False`` otherwise.

    Raises
    ------
    TypeError, ValueError
        If ``point`` is not a point or ``rtol`` is negative or not finite.

    Notes
    -----
    The orbit is closed exactly when every layer has the rank of the end-to-end map,
    ``rank W_i = rank W`` for ``i = 1..h``. Necessary: balanced points have ``rank W_i = rank W``
    and ranks are invariant. Sufficient: then at each hidden layer ``im(W_i ... W_1)`` and
    ``ker(W_h ... W_{i+1})`` are complementary and every layer vanishes on the kernel part, so the
    point is equivalent to the balanced factorisation of ``W``. This is stronger than comparing
    ``rank W_i`` with ``rank W_{i+1}``: at widths ``(1, 2, 2, 1)``, ``W_1 = e_1``,
    ``W_2 = e_1 e_2^T`` and ``W_3 = e_1^T`` all have rank 1, but ``im W_1 = ker W_2``, so ``W = 0``
    and the orbit holds no balanced point. Generic points have closed orbits exactly when
    ``min(d_{i-1}, d_i)`` is the same for every layer.

    Examples
    --------
    >>> import numpy as np
    >>> from quotient import is_closed_orbit
    >>> e1, e2 = np.array([[1.0], [0.0]]), np.array([[0.0], [1.0]])
    >>> is_closed_orbit((e1, e1 @ e2.T, e1.T))   # im W_1 = ker W_2: W = 0 but rank W_i = 1
    False
    >>> is_closed_orbit((e1, e1 @ e1.T, e1.T))
    True
    """
    check_positive("rtol", rtol, zero=True)
    point = as_point(point, "point")
    layer_ranks, rank = _ranks(point, rtol)
    return all(r == rank for r in layer_ranks)


def balanced_lift(W, widths, *, rtol: float = 1e-12):
    """The balanced point with end-to-end map ``W`` whose layers are diagonal in ``W``'s SVD frame.

    Parameters
    ----------
    W : array_like, shape (d_h, d_0)
        The end-to-end map to factor, of rank at most ``min(widths)``.
    widths : sequence of int
        ``(d_0, ..., d_h)``.
    rtol : float
        Singular values of ``W`` below ``rtol`` times the largest are set to zero (rounding errors;
        the root ``s^{1/h}`` would magnify them).

    Returns
    -------
    tuple of ndarray
        With ``W = U S V^T`` and ``k = min(widths)``: ``W_1 = E S_k^{1/h} V_k^T``,
        ``W_i = E S_k^{1/h} E^T`` and ``W_h = U_k S_k^{1/h} E^T`` (``E`` the first ``k`` unit
        vectors). It minimises the norm over every point with end-to-end map ``W``, balanced
        (``C_i = 0``), with squared norm :func:`orbit_infimum`.

    Raises
    ------
    TypeError
        If ``widths`` is not a sequence of integers.
    ValueError
        If ``W`` has the wrong shape, is not finite, or has rank above ``min(widths)`` (no point of
        this architecture has this end-to-end map), or ``rtol`` is negative.

    Examples
    --------
    >>> import numpy as np
    >>> from quotient import balanced_lift, conserved_quantities, end_to_end
    >>> W1, W2 = balanced_lift(np.array([[4.0, 0.0]]), (2, 1, 1))
    >>> round(float(np.linalg.norm(W1)), 12), round(float(np.linalg.norm(W2)), 12)   # 4^(1/2) each
    (2.0, 2.0)
    >>> bool(np.allclose(end_to_end((W1, W2)), [[4.0, 0.0]]))
    True
    >>> bool(np.allclose(conserved_quantities((W1, W2))[0], 0.0))
    True
    """
    check_positive("rtol", rtol, zero=True)
    widths = check_widths(widths)
    W = np.asarray(W, dtype=np.float64)
    d_0, d_h = widths[0], widths[-1]
    if W.shape != (d_h, d_0):
        raise ValueError(f"W must have shape (d_h, d_0) = {(d_h, d_0)} for widths {widths}; got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W contains NaN or infinite entries")
    h = len(widths) - 1
    k = min(widths)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    s = np.where(s > rtol * (s[0] if s.size else 0.0), s, 0.0)
    if s.size > k and s[k] > 0:
        raise ValueError(
            f"W has rank above min(widths) = {k} (singular value {k + 1} is {s[k]:.3e}); no point "
            f"with widths {widths} has this end-to-end map"
        )
    if h == 1:
        return (W.copy(),)
    hidden = [np.eye(d, k) for d in widths[1:-1]]
    return chain_point([Vt[:k].T] + hidden + [U[:, :k]], np.tile(s[:k] ** (1.0 / h), (h, 1)))


# ------------------------------------------------------------------------------- Kempf-Ness
def _inverses(P):
    return [None] + [np.linalg.inv(X) for X in P] + [None]


def _kempf_ness_cost(point, P) -> float:
    """``f(P) = sum_i tr(P_i W_i P_{i-1}^{-1} W_i^T)`` (``P_0 = P_h = I``)."""
    h = len(point)
    full = [None] + list(P) + [None]
    inv = _inverses(P)
    total = 0.0
    for i in range(1, h + 1):
        W = point[i - 1]
        left = W if full[i] is None else full[i] @ W
        right = W if inv[i - 1] is None else W @ inv[i - 1]
        total += float(np.sum(left * right))
    return total


def _kempf_ness_gradient(point, P):
    """Euclidean gradient: ``W_j P_{j-1}^{-1} W_j^T - P_j^{-1} A_j P_j^{-1}``,
    ``A_j = W_{j+1}^T P_{j+1} W_{j+1}`` (ecosystem.md section 2.2)."""
    h = len(point)
    full = [None] + list(P) + [None]
    inv = _inverses(P)
    out = []
    for j in range(1, h):
        W_j, W_next = point[j - 1], point[j]
        B = W_j @ W_j.T if inv[j - 1] is None else W_j @ inv[j - 1] @ W_j.T
        A = W_next.T @ W_next if full[j + 1] is None else W_next.T @ full[j + 1] @ W_next
        out.append(B - inv[j] @ A @ inv[j])
    return out


def _kempf_ness_hessian(point, P, Xi):
    """Euclidean Hessian applied to ``Xi``:
    ``P_j^{-1} Xi_j P_j^{-1} A_j P_j^{-1} + P_j^{-1} A_j P_j^{-1} Xi_j P_j^{-1}
    - W_j P_{j-1}^{-1} Xi_{j-1} P_{j-1}^{-1} W_j^T - P_j^{-1} W_{j+1}^T Xi_{j+1} W_{j+1} P_j^{-1}``."""
    h = len(point)
    full = [None] + list(P) + [None]
    inv = _inverses(P)
    xi = [None] + list(Xi) + [None]
    out = []
    for j in range(1, h):
        W_j, W_next = point[j - 1], point[j]
        A = W_next.T @ W_next if full[j + 1] is None else W_next.T @ full[j + 1] @ W_next
        core = inv[j] @ A @ inv[j]
        term = inv[j] @ xi[j] @ core + core @ xi[j] @ inv[j]
        if xi[j - 1] is not None:
            term = term - W_j @ inv[j - 1] @ xi[j - 1] @ inv[j - 1] @ W_j.T
        if xi[j + 1] is not None:
            term = term - inv[j] @ W_next.T @ xi[j + 1] @ W_next @ inv[j]
        out.append(term)
    return out


def _polar_factors(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G = R S`` with ``R`` orthogonal and ``S = (G^T G)^{1/2}`` SPD, from the SVD of ``G``.

    ``S`` is accurate to ``eps cond(G)``; taking the square root of ``G^T G`` by eigh would lose
    ``eps cond(G)^2``.
    """
    U, singular_values, Vt = np.linalg.svd(G)
    return U @ Vt, (Vt.T * singular_values) @ Vt


def _sqrt_spd(P: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (P + P.T))
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def _closed_form_balancing(point, rank: int):
    """A group element ``G`` with ``G . W = balanced_lift(W)`` for a closed orbit of rank ``k``.

    At each hidden layer ``i``, let ``Q_i`` be an orthonormal basis of ``im F_i``
    (``F_i = W_i ... W_1``) and ``N_i`` one of ``ker B_i`` (``B_i = W_h ... W_{i+1}``); on a closed
    orbit they are complementary, ``T_i = [Q_i N_i]`` is invertible, every layer maps ``im F_{i-1}``
    onto ``im F_i`` and vanishes on ``ker B_{i-1}``. With ``W = U S V^T`` and
    ``C_i = Q_i^T F_i`` (rank ``k``, row space that of ``V_k^T``), put
    ``A_i = S_k^{i/h} V_k^T C_i^+`` and ``G_i = diag(A_i, I) T_i^{-1}``. Then
    ``G_i F_i = E_k S_k^{i/h} V_k^T``, the forward products of the balanced lift, and ``G_i`` maps
    ``ker B_i`` onto the complement, so ``G . W`` is the balanced lift exactly. Returns ``None`` if
    some ``T_i`` is numerically singular (a nearly non-closed orbit).
    """
    h = len(point)
    U, s, Vt = np.linalg.svd(end_to_end(point), full_matrices=False)
    k = rank
    forward, backward = forward_products(point), backward_products(point)
    g = []
    for i in range(1, h):
        d = point[i - 1].shape[0]
        Q = np.linalg.svd(forward[i], full_matrices=False)[0][:, :k]
        N = np.linalg.svd(backward[i], full_matrices=True)[2][k:].T
        T = np.concatenate([Q, N], axis=1)
        singular_values = np.linalg.svd(T, compute_uv=False)
        if singular_values[-1] <= d * np.finfo(float).eps * singular_values[0]:
            return None
        C = Q.T @ forward[i]
        A = (s[:k, None] ** (i / h) * Vt[:k]) @ np.linalg.pinv(C)
        block = np.eye(d)
        block[:k, :k] = A
        g.append(block @ np.linalg.inv(T))
    return tuple(g)


def _imbalance(point) -> float:
    """``||mu(W)|| / ||W||^2``: the balance residual relative to the size of its terms."""
    scale = squared_norm(point)
    if scale == 0:
        return 0.0
    return float(np.sqrt(squared_norm(conserved_quantities(point)))) / scale


def _not_closed_error(point, layer_ranks, rank, rtol) -> OrbitNotClosedError:
    widths = widths_of(point)
    infimum = orbit_infimum(point, rtol=rtol)
    bad = [i for i, r in enumerate(layer_ranks, start=1) if r != rank]
    detail = ", ".join(f"W_{i} has rank {layer_ranks[i - 1]}" for i in bad)
    message = (
        f"the GL orbit of this point is not closed, so it has no balanced (minimal-norm) point: the "
        f"end-to-end map has rank {rank} but {detail}. Some signal enters a hidden layer and never "
        f"reaches the output, or leaves it without coming from the input. The infimum of ||g.W||^2 "
        f"over the orbit is h sum_k sigma_k(W)^(2/h) = {infimum:.12g}, approached (as some G_i "
        f"degenerate) but not attained; the error's .infimum holds it and .limit a balanced point "
        f"with the same end-to-end map (quotient.orbit.balanced_lift)."
    )
    return OrbitNotClosedError(
        message,
        group="gl",
        infimum=infimum,
        limit=balanced_lift(end_to_end(point), widths),
        layer_ranks=layer_ranks,
        rank=rank,
    )


def balance(
    point,
    *,
    balance_rtol: float = 1e-10,
    rank_rtol: float = 1e-12,
    method: str = "auto",
    max_iterations: int = 200,
):
    """Minimal-norm point of the GL orbit (Kempf-Ness) and the group element that maps there.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``.
    balance_rtol : float
        Required balance: ``||mu(g . W)|| <= balance_rtol ||g . W||^2`` with ``mu = -C`` the moment map
        (this is also the Riemannian gradient norm of ``f / f_min`` at which the solver stops).
    rank_rtol : float
        Relative threshold for the numerical ranks of the closedness test (:func:`is_closed_orbit`).
    method : {"auto", "trust_region"}
        ``"auto"``: the closed form below, polished by the trust-region solver when rounding leaves
        it above ``balance_rtol``. ``"trust_region"``: the solver alone, from ``P = I``.
    max_iterations : int
        Trust-region iterations.

    Returns
    -------
    balanced_point : tuple of ndarray
        ``g . W``: balanced (``C_i = 0``), same end-to-end map, squared norm
        ``h sum_k sigma_k(W)^{2/h}``, the minimum over the orbit. Unique up to the orthogonal
        subgroup.
    g : tuple of ndarray
        ``(G_1, ..., G_{h-1})`` with ``G_i = P_i^{1/2}`` symmetric positive definite.

    Raises
    ------
    OrbitNotClosedError
        (a ``ValueError``) if some layer has a rank other than that of the end-to-end map: the orbit
        is not closed, no point of it is balanced, and the infimum ``h sum_k sigma_k(W)^{2/h}`` is
        not attained. The error carries ``infimum`` and ``limit`` (a balanced point with the same
        end-to-end map, the limit of a minimising sequence up to the orthogonal subgroup).
    RuntimeError
        If the balance does not reach ``balance_rtol``.

    Notes
    -----
    ``f(P) = sum_i tr(P_i W_i P_{i-1}^{-1} W_i^T)`` is ``||G . W||^2`` for ``P_i = G_i^T G_i`` and is
    geodesically convex on ``SPD(d_1) x ... x SPD(d_{h-1})``; its Riemannian gradient at ``P`` is
    ``mu(P^{1/2} . W)``, so stationary points are balanced. pymanopt's ``TrustRegions`` minimises
    it with the analytic Euclidean gradient and Hessian, the cost divided by its known minimum so
    that the stopping rule is relative. From ``P = I`` it converges in about ten iterations when the
    action is free, but slowly where the stabiliser is non-compact (a hidden layer wider than both
    its neighbours' partial products), because the minimisers then form an unbounded family.

    On a closed orbit the minimiser also has a closed form: at each hidden layer ``im F_i`` and
    ``ker B_i`` (``F_i = W_i ... W_1``, ``B_i = W_h ... W_{i+1}``) are complementary, and the element
    ``G_i = diag(S_k^{i/h} V_k^T C_i^+, I) [Q_i N_i]^{-1}`` (orthonormal bases ``Q_i`` of the image and
    ``N_i`` of the kernel, ``C_i = Q_i^T F_i``, ``W = U S V^T``) maps the point to
    :func:`balanced_lift` of ``W``; ``P_i = G_i^T G_i``. ``"auto"`` uses it and calls the solver only
    to polish.

    Examples
    --------
    >>> import numpy as np
    >>> from quotient import act, balance, conserved_quantities, end_to_end, orbit_infimum, random_gl
    >>> rng = np.random.default_rng(0)
    >>> W = (rng.standard_normal((3, 2)), rng.standard_normal((2, 3)))   # widths (2, 3, 2)
    >>> moved = act(W, random_gl((2, 3, 2), rng, spread=2.0))          # cond(G_1) of order e^4
    >>> balanced, g = balance(moved)
    >>> all(np.abs(C).max() < 1e-8 for C in conserved_quantities(balanced))
    True
    >>> bool(np.allclose(end_to_end(balanced), end_to_end(W)))
    True
    >>> bool(np.isclose(sum(np.sum(B**2) for B in balanced), orbit_infimum(W)))
    True
    """
    check_positive("balance_rtol", balance_rtol)
    check_positive("rank_rtol", rank_rtol, zero=True)
    check_count("max_iterations", max_iterations)
    point = as_point(point, "point")
    widths = widths_of(point)
    if method not in ("auto", "trust_region"):
        raise ValueError(f"method must be 'auto' or 'trust_region'; got {method!r}")
    h = len(point)
    if h == 1:
        return tuple(W.copy() for W in point), ()
    layer_ranks, rank = _ranks(point, rank_rtol)
    if any(r != rank for r in layer_ranks):
        raise _not_closed_error(point, layer_ranks, rank, rank_rtol)
    f_min = orbit_infimum(point, rtol=rank_rtol)
    if rank == 0 or f_min == 0:  # closed with rank 0: every layer is zero
        return tuple(W.copy() for W in point), tuple(np.eye(d) for d in widths[1:-1])

    start = [np.eye(d) for d in widths[1:-1]]
    if method == "auto":
        closed_form = _closed_form_balancing(point, rank)
        if closed_form is not None:
            R, g = zip(*(_polar_factors(G) for G in closed_form))
            start = [H @ H for H in g]
            # g . W = R^T . (G . W): G maps onto the balanced lift to rounding and R^T acts without
            # loss, whereas acting with the SPD factor g directly would lose eps cond(g), which
            # exceeds balance_rtol at points moved by group elements of condition 1e4.
            # The direct action of g first (the returned point is then exactly g . W); through R^T
            # where that misses balance_rtol (measured there: shape (5, 2, 4, 2, 3), R^T route 1.7e-11
            # against balance_rtol = 4.4e-12, so neither route is always the better).
            for balanced in (act_unchecked(point, g), act_unchecked(act_unchecked(point, closed_form), tuple(Q.T for Q in R))):
                if _imbalance(balanced) <= balance_rtol:
                    return balanced, g
    P, iterations, reason = _minimise_kempf_ness(point, start, f_min, balance_rtol, max_iterations)
    g = tuple(_sqrt_spd(X) for X in P)
    balanced = act_unchecked(point, g)
    residual = _imbalance(balanced)
    if residual > balance_rtol:
        raise RuntimeError(
            f"balance did not converge: relative imbalance {residual:.3e} > balance_rtol = {balance_rtol:.1e} after "
            f"{iterations} trust-region iterations ({reason}); raise max_iterations or balance_rtol, or use "
            "method='auto'. Layers with singular values near zero make the orbit nearly non-closed "
            "and the problem ill-conditioned."
        )
    return balanced, g


def _minimise_kempf_ness(point, start, f_min, tol, max_iterations):
    """Minimise ``f / f_min`` over SPD products with pymanopt's TrustRegions from ``start``.

    Returns the minimiser ``(P_1, ..., P_{h-1})``, the number of iterations and the stopping reason.
    """
    import pymanopt
    from pymanopt.manifolds import Product, SymmetricPositiveDefinite
    from pymanopt.optimizers import TrustRegions

    h = len(point)
    manifold = Product([SymmetricPositiveDefinite(P.shape[0]) for P in start])
    backend = pymanopt.function.numpy(manifold)

    @backend
    def cost(*P):
        return _kempf_ness_cost(point, P) / f_min

    @backend
    def gradient(*P):
        return [G / f_min for G in _kempf_ness_gradient(point, P)]

    @backend
    def hessian(*args):
        P, Xi = args[: h - 1], args[h - 1 :]
        return [H / f_min for H in _kempf_ness_hessian(point, P, Xi)]

    problem = pymanopt.Problem(manifold, cost, euclidean_gradient=gradient, euclidean_hessian=hessian)
    optimizer = TrustRegions(verbosity=0, min_gradient_norm=tol, max_iterations=max_iterations, min_step_size=0.0)
    # Near convergence tCG's residual norm r_r is ~1e-30 and can round to a tiny negative number,
    # so pymanopt takes sqrt of it; the step is then discarded. The balance is checked by the caller.
    with np.errstate(invalid="ignore"):
        result = optimizer.run(problem, initial_point=list(start))
    return tuple(result.point), result.iterations, result.stopping_criterion


# ------------------------------------------------------------------------------- Procrustes
def _polar(M: np.ndarray) -> np.ndarray:
    """``argmax_{R in O(d)} tr(R M) = B A^T`` for ``M = A S B^T``."""
    A, _, Bt = np.linalg.svd(M)
    return Bt.T @ A.T


def _procrustes_sweeps(point, reference, R, max_sweeps, tol):
    """Block-coordinate Procrustes from ``R``; stops when the Riemannian gradient is below ``tol``.

    With neighbours fixed, the objective in ``R_j`` is ``const - 2 tr(R_j M_j)``; its Riemannian
    gradient on ``O(d_j)`` vanishes exactly when ``R_j M_j`` is symmetric, so the stopping rule is
    ``sqrt(sum_j ||skew(R_j M_j)||^2) <= tol (||W||^2 + ||U||^2)``.
    """
    h = len(point)
    full = [None] + list(R) + [None]
    scale = max(squared_norm(point) + squared_norm(reference), np.finfo(float).tiny)

    def block(j):
        W_j, W_next = point[j - 1], point[j]
        left = W_j if full[j - 1] is None else W_j @ full[j - 1].T
        right = W_next.T if full[j + 1] is None else W_next.T @ full[j + 1].T
        return left @ reference[j - 1].T + right @ reference[j]

    for _ in range(max_sweeps):
        for j in range(1, h):
            full[j] = _polar(block(j))
        skew = 0.0
        for j in range(1, h):
            RM = full[j] @ block(j)
            skew += 0.25 * np.sum((RM - RM.T) ** 2)
        if np.sqrt(skew) <= tol * scale:
            break
    value = sum(np.sum((_act_layer(point, full, i) - reference[i - 1]) ** 2) for i in range(1, h + 1))
    return tuple(full[1:-1]), value


def _act_layer(point, full, i):
    W = point[i - 1]
    if full[i] is not None:
        W = full[i] @ W
    if full[i - 1] is not None:
        W = W @ full[i - 1].T
    return W


def align_orthogonal(point, reference, *, n_starts: int = 8, rng=0, max_sweeps: int = 2000, rtol: float = 1e-13):
    """Register ``point`` to ``reference`` over the orthogonal subgroup (coupled Procrustes).

    Minimises ``sum_i ||R_i W_i R_{i-1}^T - U_i||_F^2`` over ``R_i`` in ``O(d_i)``
    (``R_0 = R_h = I``), where ``W`` is ``point`` and ``U`` is ``reference``.

    Parameters
    ----------
    point, reference : tuple of ndarray
        Two points with the same widths.
    n_starts : int
        Number of starts for ``h >= 3``: the identity, a greedy layer-by-layer Procrustes, then
        Haar-random elements. Each runs 30 sweeps; the best is then run to convergence.
    rng : numpy.random.Generator or int or None
        Source of the random starts.
    max_sweeps : int
        Sweeps of block updates per start.
    rtol : float
        A start stops when the Riemannian gradient of the objective (the skew parts of
        ``R_j M_j`` below) is below ``rtol`` times ``||W||^2 + ||U||^2``, or after ``max_sweeps``.

    Returns
    -------
    aligned : tuple of ndarray
        ``R . W``, the registered point, layers of shape ``(d_i, d_{i-1})``.
    R : tuple of ndarray
        ``(R_1, ..., R_{h-1})``, orthogonal, ``R_i`` of shape ``(d_i, d_i)`` (empty for ``h = 1``).

    Raises
    ------
    TypeError
        If ``point`` or ``reference`` is not a point, or a tolerance or count is not a number.
    ValueError
        If the widths of ``reference`` differ from those of ``point``, ``n_starts`` or
        ``max_sweeps`` is not a positive integer, or the tolerance is not positive.

    Notes
    -----
    For ``h = 2`` there is one block and the answer is exact: ``R_1 = polar(W_1 U_1^T + W_2^T U_2)``
    (``R = B A^T`` for the SVD ``A S B^T``). For ``h >= 3`` the blocks are coupled and the problem
    is not convex: each sweep replaces ``R_j`` by the exact minimiser with its neighbours fixed,
    ``polar(W_j R_{j-1}^T U_j^T + W_{j+1}^T R_{j+1}^T U_{j+1})``, which never increases the
    objective. This is a local method; several starts make a global answer likely, not certain
    (research/ecosystem.md section 2.3 found 4 local minima among 30 starts at widths (8,6,6,6,8)).
    """
    check_positive("rtol", rtol)
    check_count("max_sweeps", max_sweeps)
    point = as_point(point, "point")
    reference = as_point(reference, "reference", widths=widths_of(point))
    if isinstance(n_starts, bool) or not isinstance(n_starts, (int, np.integer)) or n_starts < 1:
        raise ValueError(f"n_starts must be a positive integer; got {n_starts!r}")
    widths = widths_of(point)
    h = len(point)
    if h == 1:
        return (point[0].copy(),), ()
    if h == 2:
        R = (_polar(point[0] @ reference[0].T + point[1].T @ reference[1]),)
        return act_unchecked(point, R), R
    generator = as_generator(rng)
    starts = [tuple(np.eye(d) for d in widths[1:-1])]
    if n_starts > 1:  # greedy: align layer j given the layers before it
        greedy, previous = [], None
        for j in range(1, h):
            W_j = point[j - 1] if previous is None else point[j - 1] @ previous.T
            previous = _polar(W_j @ reference[j - 1].T)
            greedy.append(previous)
        starts.append(tuple(greedy))
    while len(starts) < n_starts:
        starts.append(tuple(haar_orthogonal(d, generator) for d in widths[1:-1]))
    # Screen every start with a few sweeps, then converge the best one: the sweeps converge only
    # linearly, and running every start to the tolerance costs n_starts times as much.
    best, best_value = None, np.inf
    for start in starts:
        R, value = _procrustes_sweeps(point, reference, start, min(_SCREENING_SWEEPS, max_sweeps), rtol)
        if value < best_value:
            best, best_value = R, value
    best, _ = _procrustes_sweeps(point, reference, best, max_sweeps, rtol)
    return act_unchecked(point, best), best


_SCREENING_SWEEPS = 30


# ------------------------------------------------------------------------------- rescalings
def _check_rescaling_closed(point):
    """Every nonzero weight must lie on an input-to-output path of nonzero weights."""
    h = len(point)
    support = [W != 0 for W in point]
    reach = [np.ones(point[0].shape[1], dtype=bool)]
    for S in support:
        reach.append((S & reach[-1][None, :]).any(axis=1))
    coreach = [None] * (h + 1)
    coreach[h] = np.ones(point[-1].shape[0], dtype=bool)
    for i in range(h, 0, -1):
        coreach[i - 1] = (support[i - 1] & coreach[i][:, None]).any(axis=0)
    for i in range(1, h + 1):
        stranded = support[i - 1] & ~(coreach[i][:, None] & reach[i - 1][None, :])
        if stranded.any():
            k, l = np.argwhere(stranded)[0]
            raise OrbitNotClosedError(
                f"the rescaling orbit of this point is not closed, so no rescaling minimises the norm: "
                f"{int(stranded.sum())} nonzero weight(s) lie on no input-to-output path of nonzero "
                f"weights, e.g. W_{i}[{k}, {l}] (a neuron that receives signal but passes none on, or "
                f"the reverse). The norm decreases forever as such a neuron is scaled towards zero.",
                group="rescaling",
            )


def balance_rescaling(point, *, rtol: float = 1e-10, max_iterations: int = 100):
    """Minimal-norm point over positive diagonal rescalings (per-neuron balance).

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    rtol : float
        Stop when ``||grad|| <= rtol ||D . W||^2`` in log-scale coordinates.
    max_iterations : int
        Newton iterations.

    Returns
    -------
    balanced_point : tuple of ndarray
        ``D . W`` in which every hidden neuron has equal incoming and outgoing squared norms
        (``diag(C_i) = 0``), the minimal norm over the rescaling orbit; same shapes as ``point``.
    D : tuple of ndarray
        ``(D_1, ..., D_{h-1})``, positive diagonal matrices of shapes ``(d_i, d_i)``.

    Raises
    ------
    OrbitNotClosedError
        If a nonzero weight lies on no input-to-output path of nonzero weights (the minimum is
        not attained).
    RuntimeError
        If Newton's method does not reach ``rtol`` in ``max_iterations``.

    Notes
    -----
    With ``D_i = diag(exp(a_i))`` the squared norm is
    ``f(a) = sum_i sum_{k,l} W_i[k,l]^2 exp(2 (a_{i,k} - a_{i-1,l}))``, convex in ``a``, with
    gradient ``2 (in - out)`` (incoming minus outgoing squared norms of each neuron) and Hessian
    ``4`` times a grounded weighted graph Laplacian, positive definite on the neurons that carry
    weight once every weight lies on an input-output path. Damped Newton converges quadratically.
    """
    check_positive("rtol", rtol)
    check_count("max_iterations", max_iterations)
    point = as_point(point, "point")
    widths = widths_of(point)
    h = len(point)
    if h == 1:
        return (point[0].copy(),), ()
    _check_rescaling_closed(point)
    hidden = widths[1:-1]
    offsets = np.concatenate([[0], np.cumsum(hidden)]).astype(int)
    squares = [W**2 for W in point]

    def scaled(a):
        e = [np.ones(widths[0])] + [np.exp(a[offsets[j] : offsets[j + 1]]) for j in range(h - 1)] + [np.ones(widths[-1])]
        return [S * (e[i][:, None] ** 2) / (e[i - 1][None, :] ** 2) for i, S in enumerate(squares, start=1)]

    def value_gradient_hessian(a):
        T = scaled(a)
        value = float(sum(np.sum(t) for t in T))
        grad = np.concatenate([2 * (T[j - 1].sum(axis=1) - T[j].sum(axis=0)) for j in range(1, h)])
        H = np.diag(np.concatenate([4 * (T[j - 1].sum(axis=1) + T[j].sum(axis=0)) for j in range(1, h)]))
        for j in range(2, h):  # coupling of hidden layers j and j-1 through W_j
            block = -4 * T[j - 1]
            H[offsets[j - 1] : offsets[j], offsets[j - 2] : offsets[j - 1]] = block
            H[offsets[j - 2] : offsets[j - 1], offsets[j - 1] : offsets[j]] = block.T
        return value, grad, H

    a = np.zeros(offsets[-1])
    active = np.diag(value_gradient_hessian(a)[2]) > 0  # neurons with no weight at all stay put
    for _ in range(max_iterations):
        value, grad, H = value_gradient_hessian(a)
        if value == 0 or np.linalg.norm(grad) <= rtol * value:
            break
        step = np.zeros_like(a)
        step[active] = np.linalg.solve(H[np.ix_(active, active)], -grad[active])
        t = 1.0
        # Armijo backtracking, except in the quadratic regime, where the predicted decrease is
        # below the rounding error of f and the full Newton step is taken.
        if -(grad @ step) > 1e-12 * value:
            while value_gradient_hessian(a + t * step)[0] > value + 0.25 * t * grad @ step and t > 1e-12:
                t *= 0.5
        a = a + t * step
    value, grad, _ = value_gradient_hessian(a)
    if value > 0 and np.linalg.norm(grad) > rtol * value:
        raise RuntimeError(
            f"balance_rescaling did not converge in {max_iterations} Newton iterations "
            f"(relative gradient {np.linalg.norm(grad) / value:.3e}); raise max_iterations or rtol"
        )
    D = tuple(np.diag(np.exp(a[offsets[j] : offsets[j + 1]])) for j in range(h - 1))
    return act_unchecked(point, D), D


def _geometric_mean_step(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(G, G^{-1})``, ``G = P^{1/2}`` with ``P = A^{-1} # B`` the SPD minimiser of
    ``tr(P A) + tr(P^{-1} B)``: ``P = A^{-1/2} (A^{1/2} B A^{1/2})^{1/2} A^{-1/2}``."""
    a, U = np.linalg.eigh(A)
    root = (U * np.sqrt(a)) @ U.T
    inverse_root = (U / np.sqrt(a)) @ U.T
    m, V = np.linalg.eigh(root @ B @ root)
    middle = (V * np.sqrt(np.clip(m, 0.0, None))) @ V.T
    p, W = np.linalg.eigh(inverse_root @ middle @ inverse_root)
    p = np.clip(p, np.finfo(float).tiny, None)
    return (W * np.sqrt(p)) @ W.T, (W / np.sqrt(p)) @ W.T


def _normalising_step(M: np.ndarray, scale: float, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(G, G^{-1})`` at a hidden layer next to a zero layer, ``M`` the Gram matrix of the other one.

    A zero layer stays zero on the orbit, so the two sides decouple and the Kempf-Ness step has
    nothing to balance against. Instead the non-zero neighbour's singular values on this hidden
    layer are shrunk to at most ``scale`` in one step: ``M = U diag(m) U^T``, ``G = U diag(max(
    sqrt(m) / scale, 1)) U^T``, so that ``V -> V G^{-1}`` (``M = V^T V``, ``inverse``) or ``W -> G W``
    (``M = W W^T``, ``G`` the inverse of the former). Directions below ``scale`` are left alone:
    which of them are real and which are rounding amplified by the move that made the point
    cannot be told apart here (expanding them to ``scale`` made the sweeps diverge), and the
    scalar balancing of :func:`well_conditioned` has already set the layer's overall size.
    """
    m, U = np.linalg.eigh(M)
    root = np.sqrt(np.clip(m, 0.0, None))
    factor = np.maximum(root / scale, 1.0)
    if not inverse:
        factor = 1.0 / factor
    return (U * factor) @ U.T, (U / factor) @ U.T


def well_conditioned(point, *, scale: float | None = None, mu: float = 0.3, stop: float = 1.2, max_sweeps: int = 200):
    """A well-conditioned point of the GL orbit of ``point`` and the group element that maps there.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``.
    scale : float, optional
        Typical size of a layer's non-zero singular values: parts of the network that the orbit can
        shrink to zero (see Notes) stop at about ``sqrt(mu) * scale``. Default: the balanced size
        ``(orbit_infimum / (h rank W))^{1/2}`` of the point, ``1`` when ``W = 0``.
    mu : float
        Relative regularisation of each step (see Notes), ``0 < mu < 1``.
    stop : float
        Stop after a sweep whose steps all have condition number below ``stop``.
    max_sweeps : int
        Most sweeps over the hidden layers; the result after the last one is returned.

    Returns
    -------
    z : tuple of ndarray
        ``g . W``, same end-to-end map, same orbit.
    g : tuple of ndarray
        ``(G_1, ..., G_{h-1})``, invertible, with ``z = act(point, g)``.

    Notes
    -----
    Block-coordinate descent on a regularised Kempf-Ness function: at each hidden layer ``i`` in
    turn, ``G`` minimises ``tr(P (A + delta I)) + tr(P^{-1} (B + delta I))`` over SPD ``P = G^T G``,
    with ``A = W_i W_i^T``, ``B = W_{i+1}^T W_{i+1}`` and ``delta = mu ((tr A + tr B) / d_i +
    scale^2)``: ``P = (A + delta I)^{-1} # (B + delta I)`` (the matrix geometric mean), and
    ``W_i -> G W_i``, ``W_{i+1} -> W_{i+1} G^{-1}``. Without ``delta`` this is the balancing of
    :func:`quotient.balance`, whose minimiser does not exist on an orbit that is not closed
    (tails, heads and internal intervals of the interval decomposition are driven to zero);
    ``delta`` bounds each step's condition number by about ``(1 + 1 / mu)^{1/2}`` and makes the
    steps on such a part nearly the identity once it is about ``sqrt(delta)`` in size, where the
    sweeps stop. The default ``mu = 0.3`` (parts stop at about half their layer's size) gave the
    fewest disagreements in ``benchmarks/classification_agreement.py --condition 1e4`` among
    ``mu`` = 1e-3, 1e-2, 0.1, 0.3 (10, 7, 2, 0 of 900). The result is a point of the same orbit (not of its closure) whose layers have
    comparable norms: a point moved by a GL element of condition number ``c`` comes back in
    ``O(log c)`` sweeps. A balanced point is a fixed point (``A = B`` gives ``G = I``). Next to
    a zero layer (which stays zero on the orbit and decouples its neighbours) the step instead
    shrinks the other neighbour's singular values on that hidden layer to at most ``scale``
    (:func:`_normalising_step`); balancing against the zero layer would shrink them without end
    and inflate the condition number of ``g`` (to ``1e12`` at ``c = 1e6``), and with it the
    rounding level :func:`orbit_resolution` that the decisions must respect. The
    answers of the landscape that the symmetry cannot change (:func:`classify`,
    :func:`hessian_inertia`, :meth:`Fiber.contains`, :meth:`Fiber.tangent_space`, ...) are
    computed at this point.
    """
    point = as_point(point, "point")
    layers = [np.array(W, dtype=np.float64) for W in point]
    h = len(layers)
    g = [np.eye(W.shape[0]) for W in layers[:-1]]
    if h == 1:
        return tuple(layers), ()
    if scale is None:
        s = np.linalg.svd(end_to_end(layers), compute_uv=False)
        s = s[s > 1e-12 * s[0]] if s.size and s[0] > 0 else s[:0]
        scale = float(np.mean(s ** (1.0 / h))) if s.size else 1.0
    # scalar balancing first: G_i = c_i I gives every non-zero layer the same norm (the geometric
    # mean when none is zero; ``scale`` times sqrt(rank) otherwise, the layers then decouple)
    norms = np.array([np.linalg.norm(W) for W in layers])
    if np.all(norms > 0):
        targets = np.full(h, float(np.exp(np.mean(np.log(norms)))))
    else:
        targets = np.where(norms > 0, float(scale) * np.sqrt(np.maximum(1, [min(W.shape) for W in layers])), 0.0)
    c = [1.0]
    for i in range(h - 1):
        c.append(c[-1] * (targets[i] / norms[i] if norms[i] > 0 else 1.0))
    c.append(1.0)
    zero = [i for i in range(h) if norms[i] == 0]
    if zero:  # after the last zero layer the scales are free: set them from layer h backwards
        for i in range(h - 1, zero[-1], -1):
            c[i] = c[i + 1] * norms[i] / targets[i]
    for i in range(h):
        layers[i] = layers[i] * (c[i + 1] / c[i])
    g = [c[i + 1] * G for i, G in enumerate(g)]
    floor = mu * float(scale) ** 2
    for _ in range(max_sweeps):
        worst = 1.0
        for i in range(1, h):
            W, V = layers[i - 1], layers[i]
            A, B = W @ W.T, V.T @ V
            d = A.shape[0]
            if not (W.any() and V.any()):
                if W.any() or V.any():
                    G, G_inv = _normalising_step(B if not W.any() else A, float(scale), inverse=not W.any())
                    layers[i - 1], layers[i], g[i - 1] = G @ W, V @ G_inv, G @ g[i - 1]
                    worst = max(worst, float(np.linalg.norm(G, 2) * np.linalg.norm(G_inv, 2)))
                continue
            delta = mu * (np.trace(A) + np.trace(B)) / d + floor
            if not delta > 0:
                continue
            G, G_inv = _geometric_mean_step(A + delta * np.eye(d), B + delta * np.eye(d))
            layers[i - 1], layers[i], g[i - 1] = G @ W, V @ G_inv, G @ g[i - 1]
            worst = max(worst, float(np.linalg.norm(G, 2) * np.linalg.norm(G_inv, 2)))
        if worst < stop:
            break
    return tuple(layers), tuple(g)


def pull_back(vectors: np.ndarray, g, widths) -> np.ndarray:
    """Rows ``v`` (flat tangent vectors at ``g . W``) mapped to ``g^{-1} . v`` at ``W``.

    The action is linear in the point, ``L(g . W) = L(W)``, so ``H(W) = A^T H(g . W) A`` with
    ``A = D(g .)``; directions at ``g . W`` come back by ``A^{-1}``: ``D_i -> G_i^{-1} D_i G_{i-1}``.

    Parameters
    ----------
    vectors : ndarray, shape (k, N) or (N,)
        Flat tangent vectors at ``g . W`` (order of :func:`quotient.to_vector`), one per row.
    g : sequence of ndarray
        ``(G_1, ..., G_{h-1})``, invertible, ``G_i`` of shape ``(d_i, d_i)``.
    widths : tuple of int
        ``(d_0, ..., d_h)``.

    Returns
    -------
    ndarray, shape (k, N)
        The vectors ``g^{-1} . v`` at ``W``, flat, one per row.
    """
    layers = list(from_vector(np.atleast_2d(vectors), widths))
    h = len(layers)
    for i in range(h):
        if i < h - 1:
            layers[i] = np.linalg.inv(g[i]) @ layers[i]
        if i > 0:
            layers[i] = layers[i] @ g[i - 1]
    return to_vector(tuple(layers))
