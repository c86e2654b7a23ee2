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

The groups are objects (:mod:`quotient.groups`: :class:`~quotient.groups.GeneralLinear`,
:class:`~quotient.groups.Orthogonal`, :class:`~quotient.groups.Rescaling`); the functions here are
the shorthands that take ``group=`` as a name of :data:`GROUPS` or as such an object and call it.

Sources: math.md section 3; research/math-spec.md sections 2.5 and 4.2 (Kempf & Ness 1979;
Richardson & Slodowy 1990; Arora, Cohen & Hazan 2018).
"""

from __future__ import annotations

import numpy as np

from ._numerics import is_batch
from .groups import GROUPS, GeneralLinear, Orthogonal, Rescaling, as_group, compose, inverse
from .network import as_point, widths_of

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

def _group_for(group, point):
    """The group object of ``group`` (a name or an object) for the widths of ``point``."""
    point = as_point(point, "point", batch=is_batch(point))
    return as_group(group, widths_of(point)), point


# ---------------------------------------------------------------------------------- group elements
def identity(widths) -> tuple[np.ndarray, ...]:
    """The identity ``(I_{d_1}, ..., I_{d_{h-1}})`` for widths ``(d_0, ..., d_h)``.

    Parameters
    ----------
    widths : sequence of int
        Layer widths ``(d_0, ..., d_h)``.

    Returns
    -------
    tuple of ndarray
        ``h - 1`` identity matrices, the ``i``-th of shape ``(d_i, d_i)`` (empty for ``h = 1``).

    Raises
    ------
    TypeError, ValueError
        If ``widths`` is not a valid architecture (:func:`quotient.network.check_widths`).
    """
    return GeneralLinear(widths).identity()


def check_group_element(g, widths, group="gl", name: str = "g") -> tuple[np.ndarray, ...]:
    """Validate a group element for ``widths`` and return it as a tuple of float64 arrays.

    Parameters
    ----------
    g : sequence of array_like
        ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``.
    widths : sequence of int
        ``(d_0, ..., d_h)``.
    group : {"gl", "orthogonal", "rescaling"} or HiddenGroup
        The group ``g`` must belong to: invertible, orthogonal (``G^T G = I`` to ``1e-10``), or
        diagonal with positive diagonal (:meth:`quotient.groups.HiddenGroup.check`).
    name : str
        Name of the argument in error messages.

    Returns
    -------
    tuple of ndarray
        ``(G_1, ..., G_{h-1})`` as float64 arrays of shape ``(d_i, d_i)``.

    Raises
    ------
    TypeError
        If ``g`` is not a sequence of real arrays.
    ValueError
        If ``g`` has the wrong number of factors, a factor has the wrong shape, is not finite, is
        numerically singular (smallest singular value below ``d eps`` times the largest), or is not
        in ``group``.
    """
    return as_group(group, widths).check(g, name)


def act(point, g, *, group="gl"):
    """The action ``W_i -> G_i W_i G_{i-1}^{-1}`` (``G_0 = I``, ``G_h = I``).

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch of points (one leading
        axis on every layer, ``(batch, d_i, d_{i-1})``).
    g : tuple of ndarray
        ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``.
    group : {"gl", "orthogonal", "rescaling"} or HiddenGroup
        Check that ``g`` belongs to this group (:func:`check_group_element`); default ``"gl"``,
        any invertible factors.

    Returns
    -------
    tuple of ndarray
        The point ``g . W``, same shapes. ``end_to_end`` is unchanged
        (:meth:`quotient.groups.HiddenGroup.act`).

    Raises
    ------
    TypeError, ValueError
        If ``point`` is not a point, ``group`` is not a group, or ``g`` is not an element of it for
        the widths of ``point`` (:func:`check_group_element`).

    Examples
    --------
    >>> import numpy as np
    >>> from quotient import act, end_to_end
    >>> W = (np.array([[1.0, 2.0]]), np.array([[3.0]]))        # widths (2, 1, 1)
    >>> moved = act(W, (np.array([[2.0]]),))                   # G_1 = 2
    >>> moved
    (array([[2., 4.]]), array([[1.5]]))
    >>> end_to_end(moved)
    array([[3., 6.]])
    """
    group, point = _group_for(group, point)
    return group.act(point, g)


def random_orthogonal(widths, rng=None) -> tuple[np.ndarray, ...]:
    """Haar-random element of ``O(d_1) x ... x O(d_{h-1})`` (both components of each ``O(d_i)``).

    Parameters
    ----------
    widths : sequence of int
        Layer widths ``(d_0, ..., d_h)``.
    rng : numpy.random.Generator or int, optional
        Source of randomness (a generator or a seed); default a fresh unseeded generator.

    Returns
    -------
    tuple of ndarray
        ``(Q_1, ..., Q_{h-1})``, ``Q_i`` orthogonal of shape ``(d_i, d_i)``
        (:meth:`quotient.groups.Orthogonal.random`).

    Raises
    ------
    TypeError, ValueError
        If ``widths`` is not a valid architecture.
    """
    return Orthogonal(widths).random(rng)


def random_gl(widths, rng=None, *, spread: float = 1.0) -> tuple[np.ndarray, ...]:
    """Random element of ``GL(d_1) x ... x GL(d_{h-1})`` with controlled conditioning.

    ``G_i = Q_i diag(exp(spread z)) Q_i'`` with ``Q_i, Q_i'`` Haar orthogonal and ``z`` standard
    normal, so ``log cond(G_i)`` is of order ``spread`` and both signs of the determinant occur.

    Parameters
    ----------
    widths : sequence of int
        Layer widths ``(d_0, ..., d_h)``.
    rng : numpy.random.Generator or int, optional
        Source of randomness (a generator or a seed); default a fresh unseeded generator.
    spread : float
        Standard deviation of the log singular values; ``0`` gives orthogonal factors, ``3`` condition
        numbers of order ``e^6`` and beyond.

    Returns
    -------
    tuple of ndarray
        ``(G_1, ..., G_{h-1})``, ``G_i`` invertible of shape ``(d_i, d_i)``
        (:meth:`quotient.groups.GeneralLinear.random`).

    Raises
    ------
    TypeError, ValueError
        If ``widths`` is not a valid architecture or ``spread`` is negative or not finite.
    """
    return GeneralLinear(widths).random(rng, spread=spread)


def random_rescaling(widths, rng=None, *, spread: float = 1.0) -> tuple[np.ndarray, ...]:
    """Random positive diagonal rescaling ``G_i = diag(exp(spread z_i))``, ``z_i`` standard normal.

    Parameters
    ----------
    widths : sequence of int
        Layer widths ``(d_0, ..., d_h)``.
    rng : numpy.random.Generator or int, optional
        Source of randomness (a generator or a seed); default a fresh unseeded generator.
    spread : float
        Standard deviation of the log scales ``log (G_i)_{kk}``.

    Returns
    -------
    tuple of ndarray
        ``(G_1, ..., G_{h-1})``, ``G_i`` diagonal with positive diagonal, shape ``(d_i, d_i)``
        (:meth:`quotient.groups.Rescaling.random`).

    Raises
    ------
    TypeError, ValueError
        If ``widths`` is not a valid architecture or ``spread`` is negative or not finite.
    """
    return Rescaling(widths).random(rng, spread=spread)


# ---------------------------------------------------------------------------------- Lie algebra
def vertical_vector(point, xi):
    """The infinitesimal action: the tangent vector ``d/dt exp(t xi) . W`` at ``t = 0``.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    xi : tuple of ndarray
        ``(xi_1, ..., xi_{h-1})``, ``xi_i`` in ``gl(d_i)`` of shape ``(d_i, d_i)``.

    Returns
    -------
    tuple of ndarray
        ``(xi_i W_i - W_i xi_{i-1})_{i=1..h}`` with ``xi_0 = xi_h = 0``: a point-shaped tangent
        vector, tangent to the orbit (vertical). This is
        :meth:`quotient.groups.GeneralLinear.infinitesimal_action`.
    """
    point = as_point(point, "point")
    return GeneralLinear(widths_of(point)).infinitesimal_action(point, xi)


def vertical_adjoint(point, tangent) -> tuple[np.ndarray, ...]:
    """Adjoint of ``xi -> vertical_vector(point, xi)`` for the Frobenius inner products.

    ``<vertical_vector(W, xi), V> = sum_j <xi_j, vertical_adjoint(W, V)_j>``. A tangent vector is
    horizontal (for GL) exactly when this vanishes; at ``V = W`` it is the moment map.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    tangent : tuple of ndarray
        A point-shaped direction ``(V_1, ..., V_h)``, same widths as ``point``.

    Returns
    -------
    tuple of ndarray
        ``(V_j W_j^T - W_{j+1}^T V_{j+1})_{j=1..h-1}``, the ``j``-th of shape ``(d_j, d_j)``: an
        element of ``gl(d_1) x ... x gl(d_{h-1})``.

    Raises
    ------
    TypeError, ValueError
        If ``point`` or ``tangent`` is not a point, or their widths differ.
    """
    point = as_point(point, "point")
    tangent = as_point(tangent, "tangent", widths=widths_of(point))
    return tuple(tangent[j] @ point[j].T - point[j + 1].T @ tangent[j + 1] for j in range(len(point) - 1))


def action_matrix(point, *, group="gl") -> np.ndarray:
    """Matrix of the infinitesimal action, shape ``(N, k)``, ``k`` the dimension of the algebra.

    Column ``c`` is ``to_vector(vertical_vector(point, xi_c))`` for the ``c``-th element of an
    orthonormal basis of the Lie algebra (matrix units for ``gl``, ``(E_pq - E_qp)/sqrt(2)`` for
    the orthogonal group, diagonal units for rescalings), hidden layer 1 first
    (:meth:`quotient.groups.HiddenGroup.action_matrix`).

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    group : {"gl", "orthogonal", "rescaling"} or HiddenGroup
        Whose Lie algebra; ``k = sum_i d_i^2`` for ``"gl"``, ``sum_i d_i (d_i - 1) / 2`` for
        ``"orthogonal"``, ``sum_i d_i`` for ``"rescaling"``.

    Returns
    -------
    ndarray
        Shape ``(N, k)``, ``N = sum_i d_i d_{i-1}``.

    Raises
    ------
    TypeError, ValueError
        If ``point`` is not a point or ``group`` is not a group name or object.
    """
    group, point = _group_for(group, point)
    return group.action_matrix(point)


def vertical_space(point, *, group="gl", rtol: float | None = None) -> np.ndarray:
    """Orthonormal basis of the vertical space (the tangent space of the orbit) at ``point``.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    group : {"gl", "orthogonal", "rescaling"} or HiddenGroup
        Whose orbit; default ``"gl"``.
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

    Raises
    ------
    TypeError, ValueError
        If ``point`` is not a point, ``group`` not a group, or ``rtol`` negative or not finite.

    Examples
    --------
    At a generic point of widths ``(2, 2, 2)`` the GL orbit has dimension ``d_1^2 = 4``:

    >>> import numpy as np
    >>> from quotient import vertical_space
    >>> W = (np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 3.0]]))
    >>> vertical_space(W).shape
    (4, 8)
    >>> vertical_space(W, group="orthogonal").shape
    (1, 8)
    """
    group, point = _group_for(group, point)
    return group.vertical_space(point, rtol)


def vertical_projection(point, tangent, *, group="gl", rtol: float | None = None):
    """Orthogonal projection of a tangent vector onto the vertical space at ``point``.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    tangent : tuple of ndarray
        A point-shaped direction ``(V_1, ..., V_h)``, or a batch of them (one leading axis).
    group, rtol
        As in :func:`vertical_space`.

    Returns
    -------
    tuple of ndarray
        ``vertical_vector(point, xi*)`` where ``xi*`` solves the least-squares problem
        ``min_xi ||V - vertical_vector(point, xi)||``; same shapes as ``tangent``.

    Raises
    ------
    TypeError, ValueError
        If ``point`` or ``tangent`` is not a point of the same widths, ``group`` not a group, or
        ``rtol`` negative or not finite.
    """
    group, point = _group_for(group, point)
    return group.vertical_projection(point, tangent, rtol)


def horizontal_projection(point, tangent, *, group="gl", rtol: float | None = None):
    """``V - vertical_projection(point, V)``: the component orthogonal to the orbit.

    The gradient of any loss of the end-to-end map is horizontal for the GL action (and so for
    each subgroup); the horizontal space is where the quotient's geometry lives.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
    tangent : tuple of ndarray
        A point-shaped direction ``(V_1, ..., V_h)``, or a batch of them (one leading axis).
    group : {"gl", "orthogonal", "rescaling"} or HiddenGroup
        Whose orbit; default ``"gl"``.
    rtol : float, optional
        Rank threshold of the vertical space, as in :func:`vertical_space`.

    Returns
    -------
    tuple of ndarray
        The horizontal component of ``tangent``, same shapes; Frobenius-orthogonal to every
        ``vertical_vector(point, xi)``.

    Raises
    ------
    TypeError, ValueError
        If ``point`` or ``tangent`` is not a point of the same widths, ``group`` not a group, or
        ``rtol`` negative or not finite.
    """
    group, point = _group_for(group, point)
    return group.horizontal_projection(point, tangent, rtol)


def moment_map(point, *, group="gl") -> tuple[np.ndarray, ...]:
    """Moment map of the action, for GL ``mu_i = W_i W_i^T - W_{i+1}^T W_{i+1} = -C_i``.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch of points (one leading
        axis on every layer).
    group : {"gl", "orthogonal", "rescaling"} or HiddenGroup
        ``"gl"``: ``h - 1`` symmetric ``(d_i, d_i)`` arrays; ``"rescaling"``: their diagonals,
        vectors of shape ``(d_i,)``; ``"orthogonal"``: zeros (:meth:`quotient.groups.HiddenGroup.moment_map`).

    Returns
    -------
    tuple of ndarray
        ``h - 1`` arrays: ``(d_i, d_i)`` for ``"gl"`` and ``"orthogonal"``, ``(d_i,)`` for
        ``"rescaling"``; with the leading batch axis of the point if it has one.

    Raises
    ------
    TypeError, ValueError
        If ``point`` is not a point or ``group`` is not a group name or object.

    Notes
    -----
    ``mu = vertical_adjoint(W, W)``, i.e. ``<mu, xi> = d/dt 1/2 ||exp(t xi) . W||^2`` at ``t = 0``.
    Its components are the conserved quantities ``C_i`` of the gradient flow with the opposite
    sign (math-spec section 4.2); the balanced points are ``mu^{-1}(0)``.
    """
    group, point = _group_for(group, point)
    return group.moment_map(point)
