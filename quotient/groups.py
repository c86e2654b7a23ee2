"""The symmetry groups of the hidden layers as objects: GL, orthogonal, positive diagonal rescalings.

A group ``G = G(d_1) x ... x G(d_{h-1})`` of changes of basis at the hidden layers of a network of
widths ``(d_0, ..., d_h)`` acts on a point ``(W_1, ..., W_h)`` on the left by

    g . (W_1, ..., W_h) = (G_1 W_1, G_2 W_2 G_1^{-1}, ..., W_h G_{h-1}^{-1}),

that is ``W_i -> G_i W_i G_{i-1}^{-1}`` with ``G_0 = I`` and ``G_h = I``, so that
``act(act(W, k), g) = act(W, compose(g, k))``. The action leaves the end-to-end map
``W = W_h ... W_1`` unchanged, hence every loss of ``W``.

:class:`HiddenGroup` declares the interface (as pymanopt's ``Manifold`` declares its manifolds: an
abstract base class whose methods say what each implementation provides), and three classes
implement it:

- :class:`GeneralLinear`: ``G(d) = GL(d)``, Lie algebra all ``(d, d)`` matrices, representative the
  balanced point of minimal norm (:func:`quotient.balance`);
- :class:`Orthogonal`: ``G(d) = O(d)``, skew-symmetric matrices, representative the point nearest a
  reference (:func:`quotient.align_orthogonal`);
- :class:`Rescaling`: positive diagonal matrices, diagonal matrices, representative the per-neuron
  balanced point (:func:`quotient.balance_rescaling`).

A group element is a tuple ``(G_1, ..., G_{h-1})`` of ``(d_i, d_i)`` arrays (empty for ``h = 1``); a
Lie-algebra element ``xi`` is a tuple of the same shapes. A group object is built for one widths
tuple; :func:`as_group` turns the shorthands ``"gl"``, ``"orthogonal"``, ``"rescaling"`` into
objects. The orthogonal subgroup preserves the Euclidean metric and so commutes with the gradient
flow; the rescalings (the symmetry that survives a ReLU) do neither.

Sources: math.md section 3; research/math-spec.md sections 2.5 and 4.2 (Kempf & Ness 1979;
Richardson & Slodowy 1990; Arora, Cohen & Hazan 2018; Du, Hu & Lee 2018).
"""

from __future__ import annotations

import abc

import numpy as np
from scipy.linalg import expm

from ._numerics import act_unchecked, as_generator, haar_orthogonal, is_batch
from .network import as_point, check_positive, check_widths, conserved_quantities, from_vector, to_vector
from .orbit import align_orthogonal, balance, balance_rescaling

__all__ = [
    "GROUPS",
    "HiddenGroup",
    "GeneralLinear",
    "Orthogonal",
    "Rescaling",
    "as_group",
    "compose",
    "inverse",
]

GROUPS = ("gl", "orthogonal", "rescaling")
"""The shorthand names :func:`as_group` accepts, one per class."""

_ORTHOGONALITY_TOL = 1e-10
_ALGEBRA_RTOL = 1e-10


# ------------------------------------------------------------------- group-independent arithmetic
def _infinitesimal_action(point, xi):
    """``(xi_i W_i - W_i xi_{i-1})_{i=1..h}`` with ``xi_0 = xi_h = 0``, for checked inputs."""
    full = (None,) + tuple(xi) + (None,)
    out = []
    for i, W in enumerate(point, start=1):
        V = np.zeros_like(W)
        if full[i] is not None:
            V = V + full[i] @ W
        if full[i - 1] is not None:
            V = V - W @ full[i - 1]
        out.append(V)
    return tuple(out)


def inverse(g) -> tuple[np.ndarray, ...]:
    """The inverse element ``(G_1^{-1}, ..., G_{h-1}^{-1})`` of a product of matrix groups.

    Parameters
    ----------
    g : sequence of array_like
        ``(G_1, ..., G_{h-1})``, ``G_i`` square of shape ``(d_i, d_i)``; membership in a subgroup is
        not checked (use :meth:`HiddenGroup.inverse` for that).

    Returns
    -------
    tuple of ndarray
        ``(G_1^{-1}, ..., G_{h-1}^{-1})``, float64 of the same shapes (each by a linear solve).

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

    Parameters
    ----------
    g : sequence of array_like
        ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``: applied second.
    k : sequence of array_like
        ``(K_1, ..., K_{h-1})``, same shapes: applied first.

    Returns
    -------
    tuple of ndarray
        ``(G_1 K_1, ..., G_{h-1} K_{h-1})``, float64 of shapes ``(d_i, d_i)``.

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


def _check_spread(spread) -> float:
    if isinstance(spread, bool) or not isinstance(spread, (int, float, np.integer, np.floating)):
        raise TypeError(f"spread must be a non-negative finite number; got {spread!r}")
    if not np.isfinite(spread) or spread < 0:
        raise ValueError(f"spread must be a non-negative finite number; got {spread!r}")
    return float(spread)


def _orthonormal_image(J: np.ndarray, rtol) -> np.ndarray:
    """Orthonormal basis (columns) of the image of ``J``, numerical rank by SVD."""
    if J.shape[1] == 0:
        return np.zeros((J.shape[0], 0))
    U, s, _ = np.linalg.svd(J, full_matrices=False)
    if rtol is None:
        rtol = max(J.shape) * np.finfo(float).eps
    rank = int(np.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0
    return U[:, :rank]


def _unflatten(flat: np.ndarray, widths):
    return tuple(layer.copy() for layer in from_vector(flat, widths))


# ---------------------------------------------------------------------------------- the interface
class HiddenGroup(abc.ABC):
    """A group ``G(d_1) x ... x G(d_{h-1})`` of matrices acting on the hidden layers.

    The interface every hidden symmetry group provides. An implementation fixes the factor group
    ``G(d)`` (a closed subgroup of ``GL(d)``) through four abstract methods: the membership test of
    one factor (:meth:`_check_factor`), an orthonormal basis of its Lie algebra
    (:meth:`_factor_basis`), a random factor (:meth:`_random_factor`) and, for the whole group, the
    moment map (:meth:`moment_map`) and the minimal-norm representative (:meth:`representative`).
    Everything else (composition, exponential, action, infinitesimal action, vertical and
    horizontal spaces) is defined here once for every group.

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)``; the group acts on the hidden widths ``d_1, ..., d_{h-1}``.

    Attributes
    ----------
    name : str
        The shorthand of :data:`GROUPS` (``"gl"``, ``"orthogonal"`` or ``"rescaling"``).
    widths : tuple of int
        ``(d_0, ..., d_h)``.
    hidden : tuple of int
        ``(d_1, ..., d_{h-1})``.
    dim : int
        Dimension of the group, ``sum_i dim G(d_i)``.

    Notes
    -----
    Conventions shared by all methods: an element is a tuple ``g = (G_1, ..., G_{h-1})`` of
    ``(d_i, d_i)`` float arrays, an algebra element a tuple ``xi`` of the same shapes; a point is a
    tuple of layers ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``; a tangent vector is
    point-shaped. Flat vectors follow :func:`quotient.to_vector` (layer 1 first, row-major) and
    flat algebra elements concatenate ``xi_1, ..., xi_{h-1}`` row-major (``n_hidden_entries =
    sum_i d_i^2`` entries). The action is a left action,
    ``act(act(W, k), g) = act(W, compose(g, k))``, and ``infinitesimal_action(W, xi)`` is
    ``d/dt act(W, exp(t xi))`` at ``t = 0``. Two group objects are equal when they are of the same
    class and built for the same widths.
    """

    name: str = ""

    def __init__(self, widths):
        self._widths = check_widths(widths)

    # -------------------------------------------------------------------------- identification
    @property
    def widths(self) -> tuple[int, ...]:
        """``(d_0, ..., d_h)``."""
        return self._widths

    @property
    def hidden(self) -> tuple[int, ...]:
        """The hidden widths ``(d_1, ..., d_{h-1})`` the factors act on."""
        return self._widths[1:-1]

    @property
    def dim(self) -> int:
        """Dimension of the group (and of its Lie algebra), ``sum_i dim G(d_i)``."""
        return sum(self._factor_dim(d) for d in self.hidden)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._widths})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._widths == other._widths

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._widths))

    # -------------------------------------------------------------------------- what each group fixes
    @abc.abstractmethod
    def _check_factor(self, G: np.ndarray, i: int, name: str) -> None:
        """Raise ``ValueError`` unless the finite ``(d_i, d_i)`` array ``G`` is in ``G(d_i)`` (invertibility is checked after)."""

    @abc.abstractmethod
    def _factor_basis(self, d: int) -> np.ndarray:
        """Orthonormal basis of the Lie algebra of ``G(d)``, shape ``(dim G(d), d * d)`` (rows, row-major)."""

    @abc.abstractmethod
    def _factor_dim(self, d: int) -> int:
        """``dim G(d)``."""

    @abc.abstractmethod
    def _random_factor(self, d: int, generator: np.random.Generator, spread: float) -> np.ndarray:
        """A random element of ``G(d)``."""

    @abc.abstractmethod
    def moment_map(self, point):
        """The moment map of the action at ``point``, conserved along every gradient flow.

        ``mu(W)`` is the element of the dual of the Lie algebra with
        ``<mu(W), xi> = d/dt 1/2 ||exp(t xi) . W||^2`` at ``t = 0``; its zeros are the points of
        minimal norm of their orbits (Kempf & Ness 1979).

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch of points (one
            leading axis on every layer).

        Returns
        -------
        tuple of ndarray
            One array per hidden layer; the shape depends on the group (see the implementation).
        """

    @abc.abstractmethod
    def representative(self, point, **options):
        """A canonical point of the orbit of ``point`` and the element that maps there.

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
        **options
            Options of the group's solver (see the implementation).

        Returns
        -------
        representative : tuple of ndarray
            ``act(point, g)``, same shapes as ``point``.
        g : tuple of ndarray
            The group element, ``(G_1, ..., G_{h-1})`` of shapes ``(d_i, d_i)``.
        """

    # -------------------------------------------------------------------------- elements
    def check(self, g, name: str = "g") -> tuple[np.ndarray, ...]:
        """Validate a group element and return it as a tuple of float64 arrays.

        Parameters
        ----------
        g : sequence of array_like
            ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``.
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
            numerically singular (smallest singular value at most ``d eps`` times the largest), or is
            not in the group.
        """
        factors = []
        for i, G in enumerate(self._square_factors(g, name, "G"), start=1):
            d = G.shape[0]
            self._check_factor(G, i, name)
            singular_values = np.linalg.svd(G, compute_uv=False)
            if singular_values[-1] <= d * np.finfo(float).eps * singular_values[0]:
                raise ValueError(
                    f"{name}: G_{i} is singular (singular values from {singular_values[0]:.3e} down to "
                    f"{singular_values[-1]:.3e}); a group element must be invertible"
                )
            factors.append(G)
        return tuple(factors)

    def _square_factors(self, factors, name: str, symbol: str) -> list[np.ndarray]:
        """``factors`` as float64 arrays of shapes ``(d_i, d_i)``, one per hidden layer, all finite."""
        hidden = self.hidden
        if isinstance(factors, np.ndarray) or not isinstance(factors, (tuple, list)):
            raise TypeError(
                f"{name} must be a tuple of {len(hidden)} square arrays ({symbol}_1, ..., {symbol}_{{h-1}}); "
                f"got {type(factors).__name__}"
            )
        if len(factors) != len(hidden):
            raise ValueError(
                f"{name} must have one factor per hidden layer, {len(hidden)} for widths {self._widths}; got {len(factors)}"
            )
        out = []
        for i, (F, d) in enumerate(zip(factors, hidden), start=1):
            F = np.asarray(F)
            if F.dtype.kind not in "fiu" or F.dtype == bool:
                raise TypeError(f"{name}: {symbol}_{i} must hold real numbers; got dtype {F.dtype}")
            if F.shape != (d, d):
                raise ValueError(
                    f"{name}: {symbol}_{i} must have shape ({d}, {d}) for hidden width d_{i} = {d}; got {F.shape}"
                )
            F = F.astype(np.float64)
            if not np.all(np.isfinite(F)):
                raise ValueError(f"{name}: {symbol}_{i} contains NaN or infinite entries")
            out.append(F)
        return out

    def identity(self) -> tuple[np.ndarray, ...]:
        """The identity ``(I_{d_1}, ..., I_{d_{h-1}})``.

        Returns
        -------
        tuple of ndarray
            ``h - 1`` identity matrices of shapes ``(d_i, d_i)`` (empty for ``h = 1``).
        """
        return tuple(np.eye(d) for d in self.hidden)

    def compose(self, g, k) -> tuple[np.ndarray, ...]:
        """The product ``g k = (G_1 K_1, ..., G_{h-1} K_{h-1})``; ``act(W, g k) = act(act(W, k), g)``.

        Parameters
        ----------
        g : sequence of array_like
            ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``, an element of the group
            (checked by :meth:`check`), applied second.
        k : sequence of array_like
            ``(K_1, ..., K_{h-1})``, same shapes, an element of the group, applied first.

        Returns
        -------
        tuple of ndarray
            ``(G_1 K_1, ..., G_{h-1} K_{h-1})``, shapes ``(d_i, d_i)``.

        Raises
        ------
        TypeError, ValueError
            If ``g`` or ``k`` is not an element of the group (see :meth:`check`).
        """
        return compose(self.check(g, "g"), self.check(k, "k"))

    def inverse(self, g) -> tuple[np.ndarray, ...]:
        """The inverse ``(G_1^{-1}, ..., G_{h-1}^{-1})``.

        Parameters
        ----------
        g : sequence of array_like
            ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``, an element of the group
            (checked by :meth:`check`).

        Returns
        -------
        tuple of ndarray
            ``(G_1^{-1}, ..., G_{h-1}^{-1})``, shapes ``(d_i, d_i)``.

        Raises
        ------
        TypeError, ValueError
            If ``g`` is not an element of the group (see :meth:`check`).
        """
        return inverse(self.check(g, "g"))

    def random(self, rng=None, *, spread: float = 1.0) -> tuple[np.ndarray, ...]:
        """A random element.

        Parameters
        ----------
        rng : numpy.random.Generator or int or None
            Source of randomness (a Generator, a seed, or ``None`` for fresh entropy).
        spread : float
            Non-negative; ``log`` of the condition numbers (GL) or of the scales (rescalings) are of
            order ``spread``. The orthogonal group is compact and draws from its Haar measure
            whatever ``spread`` is.

        Returns
        -------
        tuple of ndarray
            ``(G_1, ..., G_{h-1})``, an element of the group, ``G_i`` of shape ``(d_i, d_i)``.

        Raises
        ------
        TypeError, ValueError
            If ``spread`` is not a non-negative finite number or ``rng`` is neither a generator, a
            seed nor ``None``.
        """
        spread = _check_spread(spread)
        generator = as_generator(rng)
        return tuple(self._random_factor(d, generator, spread) for d in self.hidden)

    # -------------------------------------------------------------------------- Lie algebra
    def algebra_basis(self) -> np.ndarray:
        """Orthonormal basis of the Lie algebra for the Frobenius inner product.

        Returns
        -------
        ndarray, shape (dim, n_hidden_entries)
            Row ``c`` is the flat algebra element ``(xi_1, ..., xi_{h-1})`` (row-major, hidden
            layer 1 first, ``n_hidden_entries = sum_i d_i^2``); the bases of the factors are laid
            out block-diagonally, factor 1 first.
        """
        sizes = [d * d for d in self.hidden]
        basis = np.zeros((self.dim, sum(sizes)))
        row, column = 0, 0
        for d, size in zip(self.hidden, sizes):
            block = self._factor_basis(d)
            basis[row : row + block.shape[0], column : column + size] = block
            row, column = row + block.shape[0], column + size
        return basis

    def algebra_element(self, coefficients) -> tuple[np.ndarray, ...]:
        """``sum_c coefficients[c] basis_c`` as a tuple ``(xi_1, ..., xi_{h-1})``.

        Parameters
        ----------
        coefficients : array_like, shape (dim,)
            Coordinates in :meth:`algebra_basis`.

        Returns
        -------
        tuple of ndarray
            ``(xi_1, ..., xi_{h-1})``, ``xi_i`` of shape ``(d_i, d_i)`` in the algebra of ``G(d_i)``.

        Raises
        ------
        ValueError
            If ``coefficients`` does not have shape ``(dim,)``.
        """
        coefficients = np.asarray(coefficients, dtype=np.float64)
        if coefficients.shape != (self.dim,):
            raise ValueError(f"coefficients must have shape ({self.dim},) for {self!r}; got {coefficients.shape}")
        flat = coefficients @ self.algebra_basis()
        out, start = [], 0
        for d in self.hidden:
            out.append(flat[start : start + d * d].reshape(d, d).copy())
            start += d * d
        return tuple(out)

    def check_algebra(self, xi, name: str = "xi") -> tuple[np.ndarray, ...]:
        """Validate a Lie-algebra element and return it projected exactly onto the algebra.

        Parameters
        ----------
        xi : sequence of array_like
            ``(xi_1, ..., xi_{h-1})``, ``xi_i`` of shape ``(d_i, d_i)``: any matrices for GL,
            skew-symmetric for the orthogonal group, diagonal for rescalings.
        name : str
            Name of the argument in error messages.

        Returns
        -------
        tuple of ndarray
            The factors as float64 ``(d_i, d_i)`` arrays, orthogonally projected onto the algebra
            (removing rounding errors of size at most ``1e-10`` relative).

        Raises
        ------
        TypeError
            If ``xi`` is not a sequence of real arrays.
        ValueError
            If it has the wrong number of factors or shapes, non-finite entries, or lies off the
            algebra by more than ``1e-10`` relative (Frobenius) in some factor.
        """
        out = []
        for i, X in enumerate(self._square_factors(xi, name, "xi"), start=1):
            d = X.shape[0]
            basis = self._factor_basis(d)
            projected = ((basis @ X.ravel()) @ basis).reshape(d, d)
            defect = np.linalg.norm(X - projected)
            if defect > _ALGEBRA_RTOL * np.linalg.norm(X):
                raise ValueError(
                    f"{name}: xi_{i} is not in the Lie algebra of {type(self).__name__}: its distance to it is "
                    f"{defect:.3e}, relative {defect / np.linalg.norm(X):.3e} > {_ALGEBRA_RTOL:.0e}"
                )
            out.append(projected)
        return tuple(out)

    def exp(self, xi) -> tuple[np.ndarray, ...]:
        """The exponential ``(expm(xi_1), ..., expm(xi_{h-1}))`` (``scipy.linalg.expm`` per factor).

        Parameters
        ----------
        xi : sequence of array_like
            An element of the Lie algebra, ``xi_i`` of shape ``(d_i, d_i)`` (checked by
            :meth:`check_algebra`).

        Returns
        -------
        tuple of ndarray
            ``(expm(xi_1), ..., expm(xi_{h-1}))``, an element of the group, shapes ``(d_i, d_i)``.

        Raises
        ------
        TypeError, ValueError
            If ``xi`` is not an element of the algebra (see :meth:`check_algebra`).

        Examples
        --------
        >>> import numpy as np
        >>> from quotient import Orthogonal
        >>> R, = Orthogonal((1, 2, 1)).exp((np.array([[0.0, np.pi / 2], [-np.pi / 2, 0.0]]),))
        >>> np.round(R, 12) + 0.0
        array([[ 0.,  1.],
               [-1.,  0.]])
        """
        return tuple(expm(X) for X in self.check_algebra(xi))

    # -------------------------------------------------------------------------- action
    def _point(self, point, name: str = "point"):
        return as_point(point, name, widths=self._widths, batch=is_batch(point))

    def act(self, point, g):
        """The action ``W_i -> G_i W_i G_{i-1}^{-1}`` (``G_0 = I``, ``G_h = I``).

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch of points (one
            leading axis on every layer).
        g : tuple of ndarray
            ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``, an element of the group
            (checked by :meth:`check`).

        Returns
        -------
        tuple of ndarray
            ``g . W``, same shapes; ``end_to_end`` is unchanged.

        Notes
        -----
        ``W_i G_{i-1}^{-1}`` is computed as a linear solve with ``G_{i-1}^T``, never by forming the
        inverse.
        """
        point = self._point(point)
        return act_unchecked(point, self.check(g))

    def infinitesimal_action(self, point, xi):
        """The vertical vector ``d/dt act(point, exp(t xi))`` at ``t = 0``.

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch of points (one
            leading axis on every layer).
        xi : tuple of ndarray
            ``(xi_1, ..., xi_{h-1})``, ``xi_i`` of shape ``(d_i, d_i)``, an element of the Lie
            algebra (checked by :meth:`check_algebra`).

        Returns
        -------
        tuple of ndarray
            ``(xi_i W_i - W_i xi_{i-1})_{i=1..h}`` with ``xi_0 = xi_h = 0``, point-shaped.
        """
        point = self._point(point)
        return _infinitesimal_action(point, self.check_algebra(xi))

    def action_matrix(self, point) -> np.ndarray:
        """Matrix of the infinitesimal action in the basis :meth:`algebra_basis`, shape ``(N, dim)``.

        Column ``c`` is ``to_vector(infinitesimal_action(point, xi_c))`` for the ``c``-th basis
        element ``xi_c``.

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, with the group's widths.

        Returns
        -------
        ndarray
            Shape ``(N, dim)``, ``N = sum_i d_i d_{i-1}``; ``(N, 0)`` for ``h = 1``.

        Raises
        ------
        TypeError, ValueError
            If ``point`` is not a point of the group's widths.

        Notes
        -----
        In the row-major flat order, ``vec(xi_j W_j) = (I ⊗ W_j^T) vec(xi_j)`` and
        ``vec(W_{j+1} xi_j) = (W_{j+1} ⊗ I) vec(xi_j)``. Dense: ``N dim`` entries.
        """
        point = as_point(point, "point", widths=self._widths)
        widths = self._widths
        offsets = np.concatenate([[0], np.cumsum([widths[i] * widths[i - 1] for i in range(1, len(widths))])])
        blocks = []
        for j, d in enumerate(self.hidden, start=1):
            basis = self._factor_basis(d).T
            column = np.zeros((offsets[-1], basis.shape[1]))
            W_in, W_out = point[j - 1], point[j]  # W_j (d_j, d_{j-1}) and W_{j+1} (d_{j+1}, d_j)
            column[offsets[j - 1] : offsets[j]] = np.kron(np.eye(d), W_in.T) @ basis
            column[offsets[j] : offsets[j + 1]] = -np.kron(W_out, np.eye(d)) @ basis
            blocks.append(column)
        if not blocks:
            return np.zeros((offsets[-1], 0))
        return np.concatenate(blocks, axis=1)

    def vertical_space(self, point, rtol: float | None = None) -> np.ndarray:
        """Orthonormal basis of the vertical space (the tangent space of the orbit) at ``point``.

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, with the group's widths.
        rtol : float, optional
            Singular values of :meth:`action_matrix` at most ``rtol`` times the largest count as
            zero; default ``max(N, dim) * eps``.

        Returns
        -------
        ndarray, shape (n_vertical, N)
            Orthonormal rows (flat in the order of :func:`quotient.to_vector`) spanning
            ``{infinitesimal_action(point, xi)}``; ``n_vertical = dim - dim(stabiliser algebra)``.

        Raises
        ------
        TypeError, ValueError
            If ``point`` is not a point of the group's widths or ``rtol`` is negative.
        """
        if rtol is not None:
            check_positive("rtol", rtol, zero=True)
        return _orthonormal_image(self.action_matrix(point), rtol).T

    def vertical_projection(self, point, tangent, rtol: float | None = None):
        """Orthogonal projection of a tangent vector (or a batch of them) onto the vertical space.

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, with the group's widths.
        tangent : tuple of ndarray
            A point-shaped direction ``(V_1, ..., V_h)``, or a batch of them (one leading axis on
            every layer).
        rtol : float, optional
            Rank threshold of the vertical space, as in :meth:`vertical_space`.

        Returns
        -------
        tuple of ndarray
            ``infinitesimal_action(point, xi*)`` with ``xi*`` the least-squares solution of
            ``min_xi ||V - infinitesimal_action(point, xi)||``; same shapes as ``tangent``.

        Raises
        ------
        TypeError, ValueError
            If ``point`` or ``tangent`` is not a point (batch) of the group's widths or ``rtol`` is
            negative.
        """
        if rtol is not None:
            check_positive("rtol", rtol, zero=True)
        point = as_point(point, "point", widths=self._widths)
        tangent = as_point(tangent, "tangent", widths=self._widths, batch=is_batch(tangent))
        basis = _orthonormal_image(self.action_matrix(point), rtol)
        projected = (to_vector(tangent) @ basis) @ basis.T
        return _unflatten(projected, self._widths)

    def horizontal_projection(self, point, tangent, rtol: float | None = None):
        """``V - vertical_projection(point, V)``: the component orthogonal to the orbit.

        The gradient of any loss of the end-to-end map is horizontal for the GL action (and so for
        each subgroup).

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, with the group's widths.
        tangent : tuple of ndarray
            A point-shaped direction ``(V_1, ..., V_h)``, or a batch of them (one leading axis on
            every layer).
        rtol : float, optional
            Rank threshold of the vertical space, as in :meth:`vertical_space`.

        Returns
        -------
        tuple of ndarray
            ``tangent - vertical_projection(point, tangent)``, same shapes as ``tangent``.
        """
        vertical = self.vertical_projection(point, tangent, rtol)
        tangent = as_point(tangent, "tangent", widths=self._widths, batch=is_batch(tangent))
        return tuple(V - P for V, P in zip(tangent, vertical))


# ---------------------------------------------------------------------------------- the groups
class GeneralLinear(HiddenGroup):
    """``GL(d_1) x ... x GL(d_{h-1})``: every change of basis at the hidden layers.

    The full symmetry of every loss of the end-to-end map. Lie algebra: all ``(d, d)`` matrices,
    basis the matrix units ``E_pq``. Moment map ``mu_i = W_i W_i^T - W_{i+1}^T W_{i+1} = -C_i``;
    representative: the balanced point of minimal norm (:func:`quotient.balance`).

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)``; the group acts on the hidden widths ``d_1, ..., d_{h-1}``.

    Examples
    --------
    >>> from quotient import GeneralLinear
    >>> group = GeneralLinear((2, 3, 3, 1))
    >>> group.hidden, group.dim
    ((3, 3), 18)
    """

    name = "gl"

    def _check_factor(self, G, i, name):
        return None  # invertibility is checked for every group

    def _factor_dim(self, d):
        return d * d

    def _factor_basis(self, d):
        return np.eye(d * d)

    def _random_factor(self, d, generator, spread):
        # G = Q diag(exp(spread z)) Q' with Q, Q' Haar orthogonal and z standard normal: log cond(G)
        # is of order spread and both signs of the determinant occur.
        scales = np.exp(spread * generator.standard_normal(d))
        return (haar_orthogonal(d, generator) * scales) @ haar_orthogonal(d, generator)

    def moment_map(self, point):
        """``mu_i = W_i W_i^T - W_{i+1}^T W_{i+1} = -C_i`` (``C_i`` of :func:`quotient.conserved_quantities`).

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch of points (one
            leading axis on every layer).

        Returns
        -------
        tuple of ndarray
            ``h - 1`` symmetric ``(d_i, d_i)`` arrays (batched if the point is). The balanced points
            are ``mu^{-1}(0)``; each ``C_i`` is conserved along the gradient flow of every loss of
            the end-to-end map (math-spec section 4.2).
        """
        return tuple(-C for C in conserved_quantities(self._point(point)))

    def representative(self, point, **options):
        """The balanced point of minimal norm of the orbit: :func:`quotient.balance` (same options).

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
        **options
            Passed to :func:`quotient.balance` (its tolerances, ``method``, ``max_iterations``).

        Returns
        -------
        balanced_point : tuple of ndarray
            ``g . W``, balanced (``C_i = 0``), same shapes as ``point``.
        g : tuple of ndarray
            ``(G_1, ..., G_{h-1})``, symmetric positive definite of shapes ``(d_i, d_i)``.

        Raises
        ------
        OrbitNotClosedError
            If the orbit is not closed (see :func:`quotient.balance`).
        """

        return balance(self._point(point), **options)


class Orthogonal(HiddenGroup):
    """``O(d_1) x ... x O(d_{h-1})``: the changes of basis that preserve the Euclidean metric.

    It commutes with the gradient flow and is the group of :class:`quotient.bundle.ParameterSpace`.
    Membership: ``max |G^T G - I| <= 1e-10``. Lie algebra: skew-symmetric matrices, basis
    ``(E_pq - E_qp) / sqrt(2)`` for ``p < q``; random elements are Haar. Representative: the point
    of the orbit nearest a reference (:func:`quotient.align_orthogonal`).

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)``; the group acts on the hidden widths ``d_1, ..., d_{h-1}``.
    """

    name = "orthogonal"

    def _check_factor(self, G, i, name):
        d = G.shape[0]
        defect = np.abs(G.T @ G - np.eye(d)).max()
        if defect > _ORTHOGONALITY_TOL:
            raise ValueError(f"{name}: G_{i} is not orthogonal: max |G^T G - I| = {defect:.3e}")

    def _factor_dim(self, d):
        return d * (d - 1) // 2

    def _factor_basis(self, d):
        rows, cols = np.triu_indices(d, 1)
        basis = np.zeros((rows.size, d * d))
        basis[np.arange(rows.size), rows * d + cols] = 1 / np.sqrt(2)
        basis[np.arange(rows.size), cols * d + rows] = -1 / np.sqrt(2)
        return basis

    def _random_factor(self, d, generator, spread):
        return haar_orthogonal(d, generator)

    def moment_map(self, point):
        """Identically zero: returns ``h - 1`` zero ``(d_i, d_i)`` arrays (batched if the point is).

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch of points (one
            leading axis on every layer); validated, not otherwise used.

        Returns
        -------
        tuple of ndarray
            ``h - 1`` zero arrays of shape ``(d_i, d_i)`` (``(batch, d_i, d_i)`` for a batch).

        Notes
        -----
        The moment map of a subgroup is the GL moment map projected onto its Lie algebra; the GL one
        is symmetric (``-C_i``) and the projection onto the skew-symmetric matrices is its skew part,
        which vanishes. The zero is the true moment map and is consistent with Kempf-Ness: the
        action preserves the norm, so every orbit is closed and every point has minimal norm in its
        orbit. It carries no information: the conservation laws of the flow come from
        :class:`GeneralLinear`. It is returned rather than raised so that code written for any group
        (``mu^{-1}(0)``, conservation checks) runs unchanged.
        """
        point = self._point(point)
        batch = point[0].shape[:-2]
        return tuple(np.zeros(batch + (d, d)) for d in self.hidden)

    def representative(self, point, reference=None, **options):
        """The point of the orbit nearest ``reference``: :func:`quotient.align_orthogonal`.

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
        reference : tuple of ndarray
            Required: every point of an orthogonal orbit has the same norm, so the canonical point
            is the one registered to a reference.
        **options
            Passed to :func:`quotient.align_orthogonal` (``n_starts``, ``rng``, ``max_sweeps``,
            ``rtol``).

        Returns
        -------
        aligned : tuple of ndarray
            ``act(point, R)``, minimising ``||R . W - reference||``; same shapes as ``point``.
        R : tuple of ndarray
            ``(R_1, ..., R_{h-1})``, orthogonal of shapes ``(d_i, d_i)``.

        Raises
        ------
        TypeError
            If ``reference`` is not given.
        """
        if reference is None:
            raise TypeError(
                "Orthogonal.representative needs reference=: every point of an orthogonal orbit has the "
                "same norm, so the representative is the point of the orbit nearest a reference point"
            )

        return align_orthogonal(self._point(point), reference, **options)


class Rescaling(HiddenGroup):
    """Positive diagonal rescalings ``D_i = diag(s_i)``, ``s_i > 0``: one scale per hidden neuron.

    The symmetry that survives a positively homogeneous activation (ReLU). Membership: diagonal
    (off-diagonal entries exactly zero) with positive diagonal. Lie algebra: diagonal matrices,
    basis the diagonal units ``E_pp``; random elements ``diag(exp(spread z))``. Moment map: the
    diagonal of the GL one; representative: the per-neuron balanced point
    (:func:`quotient.balance_rescaling`).

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)``; the group acts on the hidden widths ``d_1, ..., d_{h-1}``.
    """

    name = "rescaling"

    def _check_factor(self, G, i, name):
        diagonal = np.diag(G)
        if np.any(G - np.diag(diagonal)):
            raise ValueError(f"{name}: G_{i} must be diagonal to be a rescaling; it has off-diagonal entries")
        if np.any(diagonal <= 0):
            raise ValueError(
                f"{name}: G_{i} must have a positive diagonal to be a rescaling; got diagonal entries "
                f"{diagonal[diagonal <= 0]}"
            )

    def _factor_dim(self, d):
        return d

    def _factor_basis(self, d):
        return np.eye(d * d)[np.arange(d) * (d + 1)]

    def _random_factor(self, d, generator, spread):
        return np.diag(np.exp(spread * generator.standard_normal(d)))

    def moment_map(self, point):
        """``mu_i = diag(W_i W_i^T - W_{i+1}^T W_{i+1})``: incoming minus outgoing squared norms.

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch of points (one
            leading axis on every layer).

        Returns
        -------
        tuple of ndarray
            ``h - 1`` vectors of shape ``(d_i,)`` (batched if the point is); entry ``k`` is
            ``||W_i[k, :]||^2 - ||W_{i+1}[:, k]||^2``, the negated diagonal of ``C_i``.

        Notes
        -----
        The moment map of a subgroup is the GL one projected onto its algebra, here the diagonal.
        It is conserved along the gradient flow of any loss of the end-to-end map, and also with
        ReLU activations (Du, Hu & Lee 2018); its zeros are the per-neuron balanced points.
        """
        return tuple(np.diagonal(-C, axis1=-2, axis2=-1).copy() for C in conserved_quantities(self._point(point)))

    def representative(self, point, **options):
        """The minimal-norm point of the rescaling orbit: :func:`quotient.balance_rescaling` (same options).

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``.
        **options
            Passed to :func:`quotient.balance_rescaling` (its tolerance, ``max_iterations``).

        Returns
        -------
        balanced_point : tuple of ndarray
            ``D . W``, every hidden neuron with equal incoming and outgoing squared norms; same
            shapes as ``point``.
        D : tuple of ndarray
            ``(D_1, ..., D_{h-1})``, positive diagonal of shapes ``(d_i, d_i)``.

        Raises
        ------
        OrbitNotClosedError
            If a weight lies on no input-output path of nonzero weights.
        """

        return balance_rescaling(self._point(point), **options)


_BY_NAME = {cls.name: cls for cls in (GeneralLinear, Orthogonal, Rescaling)}


def as_group(group, widths) -> HiddenGroup:
    """The group object for a shorthand or an object, checked against ``widths``.

    Parameters
    ----------
    group : {"gl", "orthogonal", "rescaling"} or HiddenGroup
        A name of :data:`GROUPS` (``"gl"`` -> :class:`GeneralLinear`, ``"orthogonal"`` ->
        :class:`Orthogonal`, ``"rescaling"`` -> :class:`Rescaling`) or a group object.
    widths : sequence of int
        ``(d_0, ..., d_h)`` of the points the group will act on.

    Returns
    -------
    HiddenGroup
        ``group`` itself when it is an object of these widths, else a new object of the named
        class for ``widths``.

    Raises
    ------
    ValueError
        If ``group`` is an unknown name, or an object built for other widths.
    TypeError
        If ``group`` is neither a string nor a :class:`HiddenGroup`.

    Examples
    --------
    >>> from quotient import as_group
    >>> group = as_group("orthogonal", (2, 3, 1))
    >>> group, group.dim
    (Orthogonal((2, 3, 1)), 3)
    >>> as_group(group, (2, 3, 1)) is group
    True
    """
    widths = check_widths(widths)
    if isinstance(group, HiddenGroup):
        if group.widths != widths:
            raise ValueError(f"group {group!r} is built for widths {group.widths}; the point has widths {widths}")
        return group
    if isinstance(group, str):
        if group not in _BY_NAME:
            raise ValueError(f"group must be one of {GROUPS} or a HiddenGroup; got {group!r}")
        return _BY_NAME[group](widths)
    raise TypeError(f"group must be one of {GROUPS} or a HiddenGroup; got {type(group).__name__} {group!r}")
