"""Classification of critical points: criticality, the learned set, and the rank conditions.

:func:`is_critical` is the one criticality test of the library; :func:`classify` decides whether a
critical point is a global minimum, a strict saddle or a non-strict saddle from rank conditions on
partial products (math-spec section 5), independently of the Hessian (:mod:`quotient.hessian`).
Every decision is taken at a well-conditioned point of the point's GL orbit
(:func:`quotient.orbit.well_conditioned`), with tolerances raised to the rounding level that the
move there carries (:func:`orbit_resolution`), so that it is the same on the whole orbit.

Modes are numbered from 1, in the order of ``problem.sigma``. Points are in the problem's
singular frame.
"""

from __future__ import annotations

import numpy as np

from ._numerics import check_tolerance, layer_norms, require_square_loss, squared_norm
from .critical import global_minimum, same_value, value_of
from .network import as_point, backward_products, end_to_end, forward_products
from .orbit import well_conditioned

__all__ = [
    "CLASSES",
    "classify",
    "gradient_size",
    "is_critical",
    "learned_modes",
    "orbit_point",
    "orbit_resolution",
    "relative_gradient",
    "require_critical",
    "target_size",
]


CLASSES = ("global_minimum", "strict_saddle", "nonstrict_saddle", "not_critical")
"""The answers of :func:`classify`."""


def target_size(problem, point, norms) -> float:
    """Size of ``grad l(W)`` and of its rounding error: ``max(||Sigma||_2, prod_l ||W_l||_2)``.

    For a general loss of the end-to-end map, ``||grad l(W)||_2`` stands for ``||Sigma||_2``.

    Parameters
    ----------
    problem : Problem
        The learning problem (square loss or a general loss of the end-to-end map).
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, in the problem's singular frame.
    norms : ndarray, shape (h,)
        The spectral norms of the layers of ``point`` (:func:`quotient._numerics.layer_norms`).

    Returns
    -------
    float
        ``max(||Sigma||_2, prod_l ||W_l||_2)`` (``||grad l(W)||_2`` for ``||Sigma||_2`` with a
        general loss).
    """
    product = float(np.prod(norms))
    if problem.sigma is not None:
        return max(float(np.max(problem.sigma, initial=0.0)), product)
    return max(float(np.linalg.norm(problem.end_to_end_loss.gradient(end_to_end(point)), 2)), product)


def gradient_size(problem, point) -> tuple[float, float]:
    """``(||grad L||, relative size)`` of the gradient at a point, measured as given.

    The relative size is ``max_j ||grad_j L||_F / (prod_{l != j} ||W_l||_2 * max(||Sigma||_2,
    prod_l ||W_l||_2))``, the gradient measured against the size of the products it is made of
    (``grad_j = -B_j^T (Sigma - W) F_{j-1}^T``). The decisions (:func:`is_critical`) take it at a
    well-conditioned point of the orbit (:func:`well_conditioned`), where these products are
    not inflated by the symmetry.

    Parameters
    ----------
    problem : Problem
        The learning problem (square loss or a general loss of the end-to-end map).
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, in the problem's singular frame.

    Returns
    -------
    norm : float
        ``||grad L||``, the Euclidean norm over all layers.
    relative : float
        The relative size above (``inf`` when a product of norms vanishes under a non-zero block).
    """
    gradient = problem.unchecked_gradient(point)
    norm = float(np.sqrt(squared_norm(gradient)))
    norms = layer_norms(point)
    target = target_size(problem, point, norms)
    relative = 0.0
    for j, g in enumerate(gradient):
        size = float(np.linalg.norm(g))
        if size == 0.0:
            continue
        scale = float(np.prod(np.delete(norms, j))) * target
        relative = max(relative, size / scale if scale > 0 else np.inf)
    return norm, relative


def orbit_point(problem, point):
    """:func:`well_conditioned` with the problem's scale ``sigma_1^{1/h}`` (the size of a
    canonical layer) for the parts of the network that the orbit can shrink.

    Parameters
    ----------
    problem : Problem
        The learning problem (square loss or a general loss of the end-to-end map).
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, in the problem's singular frame.

    Returns
    -------
    z : tuple of ndarray
        The well-conditioned point ``g . W`` of the orbit.
    g : tuple of ndarray
        ``(G_1, ..., G_{h-1})`` with ``z = act(point, g)``.
    """
    sigma = getattr(problem, "sigma", None)
    scale = None
    if sigma is not None and np.size(sigma) and float(np.max(sigma)) > 0:
        scale = float(np.max(sigma)) ** (1.0 / problem.depth)
    return well_conditioned(point, scale=scale)


def orbit_resolution(g) -> float:
    """Relative rounding level of a point that ``g`` maps to a well-conditioned one: ``eps kappa^2``.

    A point stored in floating point carries errors of ``eps`` relative to each of its layers;
    carried to ``z = g . W`` they become up to ``eps cond(G_i) cond(G_{i-1}) <= eps kappa^2``
    relative to the layers of ``z`` (first order; typically ``1e-2`` of it), ``kappa = max_i
    cond(G_i)``. Decisions relative to ``z`` (criticality, ranks, the couplings of
    :func:`classify`) cannot be finer than this, so their tolerances are raised to it. The
    point's own rounding was made by the move that produced it, which ``g`` only estimates, so
    the full first-order bound is used: a factor ``0.3`` (the largest ratio seen in a first
    sweep) was exceeded by a criticality test at ``0.73 eps kappa^2`` and by a coupling of
    ``classify`` (a canonical point of ``(3, 3, 3, 3)`` moved by condition ``1e5`` called a
    strict saddle) in ``benchmarks/landscape_invariance.py``.

    Parameters
    ----------
    g : sequence of ndarray
        ``(G_1, ..., G_{h-1})``, the element that maps the point to the well-conditioned one.

    Returns
    -------
    float
        ``eps kappa^2`` with ``kappa = max_i cond(G_i)`` (``eps`` for ``h = 1``, ``inf`` when a
        ``G_i`` is numerically singular).
    """
    kappa = max((np.linalg.cond(G) for G in g), default=1.0)
    if not np.isfinite(kappa):
        return np.inf
    return float(np.finfo(float).eps * kappa**2)


def is_critical(problem, point, *, rtol: float = 1e-8) -> bool:
    """Whether ``point`` is a critical point of the loss: the one criticality test of the library.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, in the problem's singular frame.
    rtol : float
        ``0 < rtol < 1``.

    Returns
    -------
    bool
        Whether ``max_j ||grad_j L||_F / (prod_{l != j} ||W_l||_2 max(||Sigma||_2, prod_l ||W_l||_2))
        <= max(rtol, eps kappa^2)`` at ``z =`` :func:`well_conditioned` of the point
        (``||Sigma||_2`` is ``||grad l(W)||_2`` for a general loss; ``kappa`` the largest condition
        number of the ``G_i`` that map the point to ``z``: the rounding of a point given in floating
        point, carried to ``z``, which no test can resolve). Gradients are mapped by the action as
        ``grad_j(g . W) = G_j^{-T} grad_j(W) G_{j-1}^T``, so criticality is a property of the orbit;
        deciding it at a well-conditioned point keeps it one numerically.
    """
    relative, _, g = relative_gradient(problem, point, rtol)
    return relative <= max(rtol, orbit_resolution(g))


def relative_gradient(problem, point, rtol):
    """``(relative gradient, z, g)``: the gradient at ``point`` carried to ``z = g . point`` by
    ``grad_j(z) = G_j^{-T} grad_j(point) G_{j-1}^T`` and measured against the products at ``z``.

    Carrying the gradient computed at the point as given keeps its exact structure (a zero block
    stays zero), where recomputing it at the rounded ``z`` would add ``eps cond(g)^2`` of noise.

    Parameters
    ----------
    problem : Problem
        The learning problem (square loss or a general loss of the end-to-end map).
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, in the problem's singular frame.
    rtol : float
        Criticality tolerance, checked to lie in ``(0, 1)`` (it is not compared here).

    Returns
    -------
    relative : float
        The relative gradient at ``z`` (:func:`gradient_size`'s measure).
    z : tuple of ndarray
        The well-conditioned point of the orbit (:func:`orbit_point`).
    g : tuple of ndarray
        ``(G_1, ..., G_{h-1})`` with ``z = g . point``.

    Raises
    ------
    ValueError
        If ``rtol`` is not in ``(0, 1)`` or ``point`` does not fit the problem's widths.
    """
    rtol = check_tolerance(rtol)
    point = as_point(point, "point", widths=problem.widths)
    z, g = orbit_point(problem, point)
    gradient = list(problem.unchecked_gradient(point))
    h = len(point)
    try:
        for j in range(h):
            if j < h - 1:
                gradient[j] = np.linalg.solve(g[j].T, gradient[j])
            if j > 0:
                gradient[j] = gradient[j] @ g[j - 1].T
    except np.linalg.LinAlgError:  # pragma: no cover - g numerically singular: recompute at z
        gradient = list(problem.unchecked_gradient(z))
    norms = layer_norms(z)
    target = target_size(problem, z, norms)
    relative = 0.0
    for j, grad in enumerate(gradient):
        size = float(np.linalg.norm(grad))
        if size > 0.0:
            scale = float(np.prod(np.delete(norms, j))) * target
            relative = max(relative, size / scale if scale > 0 else np.inf)
    return relative, z, g


def require_critical(problem, point, rtol: float, name: str = "point"):
    """Raise ``ValueError`` stating the gradient norm if ``point`` is not critical; return ``(z, g)``.

    Parameters
    ----------
    problem : Problem
        The learning problem (square loss or a general loss of the end-to-end map).
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, in the problem's singular frame.
    rtol : float
        Criticality tolerance of :func:`is_critical`, ``0 < rtol < 1``.
    name : str
        The argument's name in the error message.

    Returns
    -------
    z : tuple of ndarray
        The well-conditioned point of the orbit (:func:`orbit_point`).
    g : tuple of ndarray
        ``(G_1, ..., G_{h-1})`` with ``z = g . point``.

    Raises
    ------
    ValueError
        If the point is not critical (the message gives ``||grad L||`` and the relative gradient),
        or if ``rtol`` or ``point`` is invalid.
    """
    relative, z, g = relative_gradient(problem, point, rtol)
    if relative > max(rtol, orbit_resolution(g)):
        norm = float(np.sqrt(squared_norm(problem.unchecked_gradient(point))))
        raise ValueError(
            f"{name} is not a critical point: ||grad L|| = {norm:.3e} (relative to the size of its "
            f"partial products at a well-conditioned point of its orbit {relative:.3e} > the tolerance {rtol:g})"
        )
    return z, g


def learned_modes(problem, point) -> tuple[int, ...]:
    """The learned set ``S`` of a critical point (1-based modes), read from its end-to-end map.

    At a critical point ``W = Sigma_S`` (up to rotations within repeated singular values), so the
    singular values of ``W`` are ``sigma_j``, ``j in S``, and zeros. Singular values above half
    the smallest positive ``sigma`` count as learned and are matched to the nearest ``sigma_j``
    (ties: the smallest index, the canonical learned set). ``W`` is GL-invariant, so the answer is
    the same on the whole orbit; the threshold is fixed by ``Sigma`` alone (no layer norms).
    The point is not checked to be critical (:func:`is_critical`).

    Parameters
    ----------
    problem : Problem
        A square-loss problem (a target ``Sigma``); points are in its singular frame.
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, a critical point.

    Returns
    -------
    tuple of int
        The learned set ``S``, 1-based mode numbers in increasing order (``()`` when nothing is
        learned).

    Raises
    ------
    ValueError
        If ``problem`` has a general loss (no target ``Sigma``) or ``point`` does not fit its widths.
    """
    require_square_loss(problem)
    point = as_point(point, "point", widths=problem.widths)
    sigma = np.asarray(problem.sigma, dtype=float)
    available = [i for i in range(sigma.size) if sigma[i] > 0]
    if not available:
        return ()
    s = np.linalg.svd(end_to_end(orbit_point(problem, point)[0]), compute_uv=False)
    chosen = []
    for value in s[s > 0.5 * sigma[available[-1]]]:
        if not available:
            break
        j = min(available, key=lambda i: (abs(sigma[i] - value), i))
        available.remove(j)
        chosen.append(j + 1)
    return tuple(sorted(chosen))


def _strict_witness(problem, point, rtol: float):
    """Why a critical point that is not a global minimum is a strict saddle, or ``None``.

    Returns ``("swap", s_unlearned, s_learned)`` for condition (B) or ``("pair", k, l)`` for the
    layer pair of condition (C) of :func:`classify`.
    """
    h = len(point)
    P = end_to_end(point)
    R = problem.target - P
    norms = layer_norms(point)
    size = max(float(np.max(problem.sigma, initial=0.0)), float(np.prod(norms)))
    learned = np.linalg.svd(P, compute_uv=False)
    learned = learned[learned > rtol * size]
    unlearned = np.linalg.svd(R, compute_uv=False)
    # (B): an unlearned singular value above a learned one
    if learned.size and unlearned.size and unlearned[0] > learned[-1] + rtol * size:
        return ("swap", float(unlearned[0]), float(learned[-1]))

    # (C): ranks of partial products. A singular value of a product counts as non-zero when it
    # exceeds rtol times the product of its factors' spectral norms, the size of its rounding error.
    def rank(M, scale) -> int:
        if scale == 0.0:
            return 0
        return int(np.sum(np.linalg.svd(M, compute_uv=False) > rtol * scale))

    F = forward_products(point)  # F[j] = W_j ... W_1, F[0] = identity
    B = backward_products(point)  # B[j] = W_h ... W_{j+1}, B[h] = identity
    rank_F = [point[0].shape[1]] + [rank(F[j], np.prod(norms[:j])) for j in range(1, h + 1)]
    rank_B = [rank(B[j], np.prod(norms[j:])) for j in range(h)] + [point[-1].shape[0]]
    norm_R = float(np.linalg.norm(R, 2))
    for k in range(1, h):
        left = R.T if k == 1 else F[k - 1] @ R.T  # F_{k-1} R^T, (d_{k-1}, d_h)
        M = None  # M_{kl} = W_{l-1} ... W_{k+1}, identity for l = k + 1
        for l in range(k + 1, h + 1):
            if l > k + 1:
                M = point[l - 2] if M is None else point[l - 2] @ M
            coupling = left if l == h else left @ B[l]  # F_{k-1} R^T B_l, (d_{k-1}, d_l)
            scale = float(np.prod(norms[: k - 1]) * norm_R * np.prod(norms[l:]))
            if np.linalg.norm(coupling, 2) <= rtol * scale:
                continue
            rank_M = point[k - 1].shape[0] if M is None else rank(M, np.prod(norms[k : l - 1]))
            if rank_B[k] < rank_M or rank_F[l - 1] < rank_M:
                return ("pair", k, l)
    return None


def classify(problem, point, *, rtol: float = 1e-8) -> str:
    """What kind of critical point ``point`` is, from rank conditions on partial products.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point : tuple of ndarray
        ``(W_1, ..., W_h)`` in the problem's singular frame.
    rtol : float
        Relative tolerance of the three numerical decisions (see Notes).

    Returns
    -------
    str
        One of :data:`CLASSES`: ``"global_minimum"``, ``"strict_saddle"`` (the Hessian has a
        negative eigenvalue), ``"nonstrict_saddle"`` (a saddle whose Hessian is positive
        semidefinite) or ``"not_critical"``.

    Notes
    -----
    With ``W = W_h ... W_1``, ``R = Sigma - W``, ``F_j = W_j ... W_1``, ``B_j = W_h ... W_{j+1}`` and
    ``M_{kl} = W_{l-1} ... W_{k+1}`` (``= I`` for ``l = k + 1``), a critical point has
    ``W = Sigma_S`` for a learned set ``S`` and (math-spec section 3.2):

    (A) it is a global minimum iff its loss is the least critical value
        ``1/2 sum_{i > r} sigma_i^2`` (``S`` holds the top ``min(r, rank Sigma)`` modes);
    (B) if an unlearned singular value exceeds a learned one (the singular values of ``R`` against
        the non-zero ones of ``W``), it is a strict saddle at every depth: the direction
        ``D_h = e_i (W_h^T e_j)^T``, ``D_1 = (W_1 f_j) f_i^T`` has curvature
        ``2 sigma_j (sigma_j - sigma_i) < 0``;
    (C) otherwise (``S`` a top set, ``|S| < min(r, rank Sigma)``) it is a strict saddle iff some
        layers ``1 <= k < l <= h`` have

        (i)  ``F_{k-1} R^T B_l != 0`` and
        (ii) ``rk B_k < rk M_{kl}`` or ``rk F_{l-1} < rk M_{kl}``,

        and a non-strict saddle otherwise. (i) and (ii) say that an unlearned mode's input
        direction can be joined to its output direction by switching on two edges (at layers
        ``k`` and ``l``) through capacity that is not on a learned path; when three or more edges
        are needed the escape is of order three or more and the Hessian is blind to it. For
        ``h = 2`` (ii) always holds, so every saddle is strict.

    Sufficiency in (C) is proved in math-spec 3.2 (a 2x2 indefinite block); necessity is checked
    numerically: ``tests/test_critical.py`` compares this answer with the sign of the smallest
    Hessian eigenvalue (:func:`hessian_inertia`) on random critical points of every fiber of
    several architectures. Achour, Malgouyres & Gerchinovitz (JMLR 25(242), 2024) publish a
    characterisation by ranks of partial products ("tightened" pivots); their text could not be
    read for this implementation, so (C) is our statement, not a quotation.

    Numerical decisions. All three are taken at :func:`well_conditioned` of the point, a point of
    the same GL orbit whose layers have comparable norms (the answer is a property of the orbit,
    and a point moved by a badly conditioned GL element would otherwise inflate every product):

    * critical (:func:`is_critical`): ``||grad_j L||_F <= rtol * prod_{l != j} ||W_l||_2 *
      max(||Sigma||_2, prod_l ||W_l||_2)`` for every layer there;
    * global minimum: the learned set read from the singular values of ``W``
      (:func:`learned_modes`, a threshold set by ``Sigma`` alone) has the value
      :func:`global_minimum`; no tolerance scales with the layer norms;
    * ranks: a singular value of a partial product counts towards its rank when it exceeds ``rtol``
      times the product of the spectral norms of its factors, and ``F_{k-1} R^T B_l`` counts as
      non-zero likewise.

    The point as stored carries rounding errors which, carried to the well-conditioned point,
    are up to ``eps kappa^2`` relative (first order) (``kappa`` the largest condition number
    of the ``G_i`` that map it there); ``rtol`` is raised to that level (:func:`is_critical`), so that a point of
    a fiber moved by a badly conditioned GL element is still recognised.
    ``benchmarks/landscape_invariance.py`` measures how far the answers stay invariant: they
    agree with the unmoved point for every GL element of condition number up to ``1e6`` and
    norm factor up to ``1e8`` in the benchmark's sweep (2 inertias of about 3000 points differ in
    longer seeded sweeps, see docs/critical.md).

    Raises
    ------
    ValueError
        If ``rtol`` is not a finite number in ``(0, 1)`` (a NaN or negative ``rtol`` would give
        wrong answers, not errors).

    References
    ----------
    E. M. Achour, F. Malgouyres, S. Gerchinovitz, "The loss landscape of deep linear neural
    networks: a second-order analysis", JMLR 25(242), 2024 (arXiv 2107.13289).
    K. Kawaguchi, "Deep learning without poor local minima", NeurIPS 2016.
    """
    require_square_loss(problem)
    relative, z, g = relative_gradient(problem, point, rtol)
    rtol = max(rtol, orbit_resolution(g))
    if relative > rtol:
        return "not_critical"
    if same_value(problem, value_of(problem, learned_modes(problem, z)), global_minimum(problem)):
        return "global_minimum"
    return "strict_saddle" if _strict_witness(problem, z, rtol) is not None else "nonstrict_saddle"
