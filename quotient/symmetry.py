"""The hidden symmetry group: its action, orbits, vertical and horizontal spaces, moment map.

The group ``GL(d_1) x ... x GL(d_{h-1})`` of changes of basis at the hidden layers acts on a point
``(W_1, ..., W_h)`` by

    g . (W_1, ..., W_h) = (G_1 W_1, G_2 W_2 G_1^{-1}, ..., W_h G_{h-1}^{-1}),

that is ``W_i -> G_i W_i G_{i-1}^{-1}`` with ``G_0 = I`` and ``G_h = I``. It leaves the end-to-end
map ``W = W_h ... W_1`` unchanged, hence every loss of ``W``. A group element is a tuple
``(G_1, ..., G_{h-1})`` of ``(d_i, d_i)`` arrays (empty for ``h = 1``); a Lie-algebra element ``xi``
is a tuple of the same shapes. Two subgroups matter: the orthogonal one ``O(d_1) x ... x O(d_{h-1})``,
which also preserves the Euclidean metric and so commutes with the gradient flow, and the positive
diagonal rescalings (the symmetry that survives a ReLU), which do neither.

Sources: math.md section 3; research/math-spec.md sections 2.5 and 4.2 (Kempf & Ness 1979;
Richardson & Slodowy 1990; Arora, Cohen & Hazan 2018).
"""

from __future__ import annotations


import numpy as np

from .init import _rng
from .network import as_point, check_positive, check_widths, conserved_quantities, from_vector, to_vector, widths_of

__all__ = [
    "GROUPS",
    "identity",
    "check_group_element",
    "act",
    "inverse",
    "compose",
    "random_gl",
    "random_orthogonal",
    "random_rescaling",
    "vertical_vector",
    "vertical_adjoint",
    "action_matrix",
    "vertical_space",
    "vertical_projection",
    "horizontal_projection",
    "moment_map",
]

GROUPS = ("gl", "orthogonal", "rescaling")
"""Names of the groups ``act`` and the vertical-space functions accept."""

_ORTHOGONALITY_TOL = 1e-10


def _check_group_name(group) -> str:
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}; got {group!r}")
    return group


def _hidden(widths) -> tuple[int, ...]:
    return tuple(widths[1:-1])


def _is_batch(point) -> bool:
    """Whether a point-like tuple carries one leading batch axis (3-D layers)."""
    return isinstance(point, (tuple, list)) and len(point) > 0 and np.ndim(point[0]) == 3


# ---------------------------------------------------------------------------------- group elements
def identity(widths) -> tuple[np.ndarray, ...]:
    """The identity ``(I_{d_1}, ..., I_{d_{h-1}})`` for widths ``(d_0, ..., d_h)``."""
    return tuple(np.eye(d) for d in _hidden(check_widths(widths)))


def check_group_element(g, widths, group: str = "gl", name: str = "g") -> tuple[np.ndarray, ...]:
    """Validate a group element for ``widths`` and return it as a tuple of float64 arrays.

    Parameters
    ----------
    g : sequence of array_like
        ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``.
    widths : sequence of int
        ``(d_0, ..., d_h)``.
    group : {"gl", "orthogonal", "rescaling"}
        The group ``g`` must belong to: invertible, orthogonal (``G^T G = I`` to ``1e-10``), or
        diagonal with positive diagonal.
    name : str
        Name of the argument in error messages.

    Raises
    ------
    TypeError
        If ``g`` is not a sequence of real arrays.
    ValueError
        If ``g`` has the wrong number of factors, a factor has the wrong shape, is not finite, is
        numerically singular (smallest singular value below ``d eps`` times the largest), or is not
        in ``group``.
    """
    widths = check_widths(widths)
    group = _check_group_name(group)
    hidden = _hidden(widths)
    if isinstance(g, np.ndarray) or not isinstance(g, (tuple, list)):
        raise TypeError(
            f"{name} must be a tuple of {len(hidden)} square arrays (G_1, ..., G_{{h-1}}); got {type(g).__name__}"
        )
    if len(g) != len(hidden):
        raise ValueError(
            f"{name} must have one factor per hidden layer, {len(hidden)} for widths {widths}; got {len(g)}"
        )
    factors = []
    for i, (G, d) in enumerate(zip(g, hidden), start=1):
        G = np.asarray(G)
        if G.dtype.kind not in "fiu" or G.dtype == bool:
            raise TypeError(f"{name}: G_{i} must hold real numbers; got dtype {G.dtype}")
        if G.shape != (d, d):
            raise ValueError(f"{name}: G_{i} must have shape ({d}, {d}) for hidden width d_{i} = {d}; got {G.shape}")
        G = G.astype(np.float64)
        if not np.all(np.isfinite(G)):
            raise ValueError(f"{name}: G_{i} contains NaN or infinite entries")
        if group == "rescaling":
            diagonal = np.diag(G)
            if np.any(G - np.diag(diagonal)):
                raise ValueError(f"{name}: G_{i} must be diagonal to be a rescaling; it has off-diagonal entries")
            if np.any(diagonal <= 0):
                raise ValueError(
                    f"{name}: G_{i} must have a positive diagonal to be a rescaling; got diagonal entries "
                    f"{diagonal[diagonal <= 0]}"
                )
        singular_values = np.linalg.svd(G, compute_uv=False)
        if singular_values[-1] <= d * np.finfo(float).eps * singular_values[0]:
            raise ValueError(
                f"{name}: G_{i} is singular (singular values from {singular_values[0]:.3e} down to "
                f"{singular_values[-1]:.3e}); a group element must be invertible"
            )
        if group == "orthogonal":
            defect = np.abs(G.T @ G - np.eye(d)).max()
            if defect > _ORTHOGONALITY_TOL:
                raise ValueError(f"{name}: G_{i} is not orthogonal: max |G^T G - I| = {defect:.3e}")
        factors.append(G)
    return tuple(factors)


def act(point, g, *, group: str = "gl"):
    """The action ``W_i -> G_i W_i G_{i-1}^{-1}`` (``G_0 = I``, ``G_h = I``).

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, or a batch of points (one leading axis on every layer).
    g : tuple of ndarray
        ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``.
    group : {"gl", "orthogonal", "rescaling"}
        Check that ``g`` belongs to this group (:func:`check_group_element`).

    Returns
    -------
    tuple of ndarray
        The point ``g . W``, same shapes. ``end_to_end`` is unchanged.

    Notes
    -----
    ``W_i G_{i-1}^{-1}`` is computed as a linear solve with ``G_{i-1}^T``, never by forming the
    inverse.
    """
    point = as_point(point, "point", batch=_is_batch(point))
    g = check_group_element(g, widths_of(point), group)
    return _act(point, g)


def _act(point, g):
    h = len(point)
    full = (None,) + tuple(g) + (None,)
    layers = []
    for i in range(1, h + 1):
        W = point[i - 1]
        if full[i - 1] is not None:  # W G^{-1} = (G^{-T} W^T)^T
            W = np.swapaxes(np.linalg.solve(full[i - 1].T, np.swapaxes(W, -1, -2)), -1, -2)
        if full[i] is not None:
            W = full[i] @ W
        layers.append(W)
    return tuple(layers)


def inverse(g) -> tuple[np.ndarray, ...]:
    """The inverse group element ``(G_1^{-1}, ..., G_{h-1}^{-1})``.

    Raises
    ------
    ValueError
        If a factor is not square or is singular.
    """
    factors = []
    for i, G in enumerate(g, start=1):
        G = np.asarray(G, dtype=np.float64)
        if G.ndim != 2 or G.shape[0] != G.shape[1]:
            raise ValueError(f"g: G_{i} must be a square matrix; got shape {G.shape}")
        try:
            factors.append(np.linalg.solve(G, np.eye(G.shape[0])))
        except np.linalg.LinAlgError:
            raise ValueError(f"g: G_{i} is singular and has no inverse") from None
    return tuple(factors)


def compose(g, k) -> tuple[np.ndarray, ...]:
    """The product ``g k = (G_1 K_1, ..., G_{h-1} K_{h-1})``: ``act(W, g k) = act(act(W, k), g)``.

    Raises
    ------
    ValueError
        If ``g`` and ``k`` have different numbers of factors or factor shapes.
    """
    if len(g) != len(k):
        raise ValueError(f"g and k must have the same number of factors; got {len(g)} and {len(k)}")
    out = []
    for i, (G, K) in enumerate(zip(g, k), start=1):
        G, K = np.asarray(G, dtype=np.float64), np.asarray(K, dtype=np.float64)
        if G.shape != K.shape or G.ndim != 2:
            raise ValueError(f"G_{i} and K_{i} must be square matrices of one shape; got {G.shape} and {K.shape}")
        out.append(G @ K)
    return tuple(out)


def _haar_orthogonal(d: int, generator: np.random.Generator) -> np.ndarray:
    # QR of a Gaussian matrix with the signs of R's diagonal moved into Q is Haar on O(d)
    # (Mezzadri 2007).
    Q, R = np.linalg.qr(generator.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def random_orthogonal(widths, rng=None) -> tuple[np.ndarray, ...]:
    """Haar-random element of ``O(d_1) x ... x O(d_{h-1})`` (both components of each ``O(d_i)``)."""
    generator = _rng(rng)
    return tuple(_haar_orthogonal(d, generator) for d in _hidden(check_widths(widths)))


def random_gl(widths, rng=None, *, spread: float = 1.0) -> tuple[np.ndarray, ...]:
    """Random element of ``GL(d_1) x ... x GL(d_{h-1})`` with controlled conditioning.

    ``G_i = Q_i diag(exp(spread z)) Q_i'`` with ``Q_i, Q_i'`` Haar orthogonal and ``z`` standard
    normal, so ``log cond(G_i)`` is of order ``spread`` and both signs of the determinant occur.
    """
    if not np.isfinite(spread) or spread < 0:
        raise ValueError(f"spread must be a non-negative finite number; got {spread!r}")
    generator = _rng(rng)
    factors = []
    for d in _hidden(check_widths(widths)):
        scales = np.exp(spread * generator.standard_normal(d))
        factors.append((_haar_orthogonal(d, generator) * scales) @ _haar_orthogonal(d, generator))
    return tuple(factors)


def random_rescaling(widths, rng=None, *, spread: float = 1.0) -> tuple[np.ndarray, ...]:
    """Random positive diagonal rescaling ``G_i = diag(exp(spread z_i))``, ``z_i`` standard normal."""
    if not np.isfinite(spread) or spread < 0:
        raise ValueError(f"spread must be a non-negative finite number; got {spread!r}")
    generator = _rng(rng)
    return tuple(np.diag(np.exp(spread * generator.standard_normal(d))) for d in _hidden(check_widths(widths)))


# ---------------------------------------------------------------------------------- Lie algebra
def _check_algebra_element(xi, widths) -> tuple[np.ndarray, ...]:
    hidden = _hidden(widths)
    if isinstance(xi, np.ndarray) or not isinstance(xi, (tuple, list)):
        raise TypeError(f"xi must be a tuple of {len(hidden)} square arrays (xi_1, ..., xi_{{h-1}})")
    if len(xi) != len(hidden):
        raise ValueError(f"xi must have one factor per hidden layer, {len(hidden)} for widths {widths}; got {len(xi)}")
    out = []
    for i, (X, d) in enumerate(zip(xi, hidden), start=1):
        X = np.asarray(X, dtype=np.float64)
        if X.shape != (d, d):
            raise ValueError(f"xi: xi_{i} must have shape ({d}, {d}); got {X.shape}")
        out.append(X)
    return tuple(out)


def vertical_vector(point, xi):
    """The infinitesimal action: the tangent vector ``d/dt exp(t xi) . W`` at ``t = 0``.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``.
    xi : tuple of ndarray
        ``(xi_1, ..., xi_{h-1})``, ``xi_i`` in ``gl(d_i)`` of shape ``(d_i, d_i)``.

    Returns
    -------
    tuple of ndarray
        ``(xi_i W_i - W_i xi_{i-1})_{i=1..h}`` with ``xi_0 = xi_h = 0``: a point-shaped tangent
        vector, tangent to the orbit (vertical).
    """
    point = as_point(point, "point")
    xi = _check_algebra_element(xi, widths_of(point))
    full = (None,) + xi + (None,)
    out = []
    for i, W in enumerate(point, start=1):
        V = np.zeros_like(W)
        if full[i] is not None:
            V = V + full[i] @ W
        if full[i - 1] is not None:
            V = V - W @ full[i - 1]
        out.append(V)
    return tuple(out)


def vertical_adjoint(point, tangent) -> tuple[np.ndarray, ...]:
    """Adjoint of ``xi -> vertical_vector(point, xi)`` for the Frobenius inner products.

    Returns ``(V_j W_j^T - W_{j+1}^T V_{j+1})_{j=1..h-1}``, so that
    ``<vertical_vector(W, xi), V> = sum_j <xi_j, vertical_adjoint(W, V)_j>``. A tangent vector is
    horizontal exactly when this vanishes; at ``V = W`` it is the moment map.
    """
    point = as_point(point, "point")
    tangent = as_point(tangent, "tangent", widths=widths_of(point))
    return tuple(tangent[j] @ point[j].T - point[j + 1].T @ tangent[j + 1] for j in range(len(point) - 1))


def _algebra_basis(d: int, group: str) -> np.ndarray:
    """Orthonormal basis of the Lie algebra of one factor, as columns of shape ``(d*d, k)``."""
    if group == "gl":
        return np.eye(d * d)
    if group == "rescaling":
        return np.eye(d * d)[:, np.arange(d) * (d + 1)]
    rows, cols = np.triu_indices(d, 1)  # so(d): (E_pq - E_qp) / sqrt(2), p < q
    basis = np.zeros((d * d, rows.size))
    basis[rows * d + cols, np.arange(rows.size)] = 1 / np.sqrt(2)
    basis[cols * d + rows, np.arange(rows.size)] = -1 / np.sqrt(2)
    return basis


def action_matrix(point, *, group: str = "gl") -> np.ndarray:
    """Matrix of the infinitesimal action, shape ``(N, k)``, ``k`` the dimension of the algebra.

    Column ``c`` is ``to_vector(vertical_vector(point, xi_c))`` for the ``c``-th element of an
    orthonormal basis of the Lie algebra (matrix units for ``gl``, ``(E_pq - E_qp)/sqrt(2)`` for
    the orthogonal group, diagonal units for rescalings), hidden layer 1 first.

    Notes
    -----
    In the row-major flat order, ``vec(xi_j W_j) = (I ⊗ W_j^T) vec(xi_j)`` and
    ``vec(W_{j+1} xi_j) = (W_{j+1} ⊗ I) vec(xi_j)``. Dense: ``N k`` entries.
    """
    point = as_point(point, "point")
    group = _check_group_name(group)
    widths = widths_of(point)
    offsets = np.concatenate([[0], np.cumsum([widths[i] * widths[i - 1] for i in range(1, len(widths))])])
    blocks = []
    for j, d in enumerate(_hidden(widths), start=1):
        basis = _algebra_basis(d, group)
        column = np.zeros((offsets[-1], basis.shape[1]))
        W_in, W_out = point[j - 1], point[j]  # W_j (d_j, d_{j-1}) and W_{j+1} (d_{j+1}, d_j)
        column[offsets[j - 1] : offsets[j]] = np.kron(np.eye(d), W_in.T) @ basis
        column[offsets[j] : offsets[j + 1]] = -np.kron(W_out, np.eye(d)) @ basis
        blocks.append(column)
    if not blocks:
        return np.zeros((offsets[-1], 0))
    return np.concatenate(blocks, axis=1)


def _orthonormal_image(J: np.ndarray, rtol) -> np.ndarray:
    """Orthonormal basis (columns) of the image of ``J``, numerical rank by SVD."""
    if J.shape[1] == 0:
        return np.zeros((J.shape[0], 0))
    U, s, _ = np.linalg.svd(J, full_matrices=False)
    if rtol is None:
        rtol = max(J.shape) * np.finfo(float).eps
    rank = int(np.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0
    return U[:, :rank]


def vertical_space(point, *, group: str = "gl", rtol: float | None = None) -> np.ndarray:
    """Orthonormal basis of the vertical space (the tangent space of the orbit) at ``point``.

    Parameters
    ----------
    point : tuple of ndarray
    group : {"gl", "orthogonal", "rescaling"}
        Whose orbit.
    rtol : float, optional
        Singular values of :func:`action_matrix` below ``rtol`` times the largest count as zero;
        default ``max(N, k) * eps``.

    Returns
    -------
    ndarray, shape (n_vertical, N)
        Rows are orthonormal flat vectors (the order of :func:`quotient.to_vector`) spanning
        ``{vertical_vector(point, xi)}``.

    Notes
    -----
    ``n_vertical = dim(algebra) - dim(stabiliser algebra)``. At rank-deficient points the
    stabiliser ``{xi : xi_i W_i = W_i xi_{i-1}}`` is larger and the infinitesimal action is not
    injective; taking the image by a rank-revealing SVD handles this. At a generic point the GL
    stabiliser is trivial when the widths first fall and then rise (``d_0 >= ... >= d_k <= ... <=
    d_h``), so ``n_vertical = sum_i d_i^2``; a hidden layer wider than both neighbours adds
    ``(d_i - d_{i-1})(d_i - d_{i+1})`` and longer wide stretches more (the count follows from the
    interval decomposition of the quiver representation; see tests/test_symmetry.py). The cost is
    one dense SVD of an ``(N, k)`` matrix.
    """
    if rtol is not None:
        check_positive("rtol", rtol, zero=True)
    return _orthonormal_image(action_matrix(point, group=group), rtol).T


def vertical_projection(point, tangent, *, group: str = "gl", rtol: float | None = None):
    """Orthogonal projection of a tangent vector onto the vertical space at ``point``.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``.
    tangent : tuple of ndarray
        A point-shaped direction ``(V_1, ..., V_h)``, or a batch of them (one leading axis).
    group, rtol
        As in :func:`vertical_space`.

    Returns
    -------
    tuple of ndarray
        ``vertical_vector(point, xi*)`` where ``xi*`` solves the least-squares problem
        ``min_xi ||V - vertical_vector(point, xi)||``; same shapes as ``tangent``.
    """
    if rtol is not None:
        check_positive("rtol", rtol, zero=True)
    point = as_point(point, "point")
    widths = widths_of(point)
    tangent = as_point(tangent, "tangent", widths=widths, batch=_is_batch(tangent))
    basis = _orthonormal_image(action_matrix(point, group=group), rtol)
    flat = to_vector(tangent)
    projected = (flat @ basis) @ basis.T
    return _unflatten(projected, widths)


def horizontal_projection(point, tangent, *, group: str = "gl", rtol: float | None = None):
    """``V - vertical_projection(point, V)``: the component orthogonal to the orbit.

    The gradient of any loss of the end-to-end map is horizontal for the GL action (and so for
    each subgroup); the horizontal space is where the quotient's geometry lives.
    """
    if rtol is not None:
        check_positive("rtol", rtol, zero=True)
    vertical = vertical_projection(point, tangent, group=group, rtol=rtol)
    tangent = as_point(tangent, "tangent", batch=_is_batch(vertical))
    return tuple(V - P for V, P in zip(tangent, vertical))


def _unflatten(flat: np.ndarray, widths):
    return tuple(layer.copy() for layer in from_vector(flat, widths))


def moment_map(point) -> tuple[np.ndarray, ...]:
    """Moment map of the GL action, ``mu_i = W_i W_i^T - W_{i+1}^T W_{i+1} = -C_i``.

    Returns
    -------
    tuple of ndarray
        ``h - 1`` symmetric ``(d_i, d_i)`` arrays (batched if the point is).

    Notes
    -----
    ``mu = vertical_adjoint(W, W)``, i.e. ``<mu, xi> = d/dt 1/2 ||exp(t xi) . W||^2`` at ``t = 0``.
    Its components are the conserved quantities ``C_i`` of the gradient flow with the opposite
    sign (math-spec section 4.2); the balanced points are ``mu^{-1}(0)``.
    """
    return tuple(-C for C in conserved_quantities(as_point(point, "point", batch=_is_batch(point))))
