"""The manifold of rank-k matrices with the metric induced by balanced lifts.

On the balanced points (``C_i = 0``) the quotient of parameter space by ``GL(d_1) x ... x
GL(d_{h-1})`` is the manifold ``M_k`` of ``(d_h, d_0)`` matrices of rank ``k``, reached by the
end-to-end map ``pi(W_1, ..., W_h) = W_h ... W_1``. Bah, Rauhut, Terstiege & Westdickenberg (2022)
equip it with the metric

    g_W(Z_1, Z_2) = <A_W^{-1}(Z_1), Z_2>,   A_W(Z) = sum_{j=1}^h (W W^T)^{(j-1)/h} Z (W^T W)^{(h-j)/h},

for which the end-to-end map of the balanced gradient flow is the Riemannian gradient flow of the
loss ``l`` of ``W``: ``dW/dt = -A_W(grad l(W))`` (:func:`quotient.reduced_velocity`). It is the
metric induced by balanced lifts: at a balanced point ``x`` over ``W`` the operator
``d pi_x d pi_x^*`` is ``A_W`` (``W_{>i} W_{>i}^T = (W W^T)^{(h-i)/h}`` and ``W_{<i}^T W_{<i} =
(W^T W)^{(i-1)/h}`` there), so ``g_W(Z, Z) = ||V||^2`` for the least-norm ``V`` with
``d pi_x(V) = Z``, the horizontal lift ``d pi_x^*(A_W^{-1} Z)``
(:meth:`quotient.bundle.GeneralLinearBundle.horizontal_lift`, computed by least squares, is the
test's second formulation).

Coordinates. With the full SVD ``W = U S V^T`` and ``lambda``, ``mu`` the squared singular values
(zero-padded to ``d_h`` and ``d_0``, only the first ``k`` kept), ``A_W`` is diagonal in the
coordinates ``Z~ = U^T Z V``: ``A_W(Z) = U (K o Z~) V^T`` with ``K_pq = sum_j lambda_p^{(j-1)/h}
mu_q^{(h-j)/h}`` (``0^0 = 1``). The tangent space of ``M_k`` is ``{Z : Z~_pq = 0 for p, q > k}``,
and for ``h >= 2`` ``K`` is positive exactly there, so ``A_W`` maps every matrix to a tangent
vector and is invertible on the tangent space. For ``h = 1`` ``K = 1``: the metric is the
Frobenius metric, the gradient flow is the Euclidean one and does not keep the rank; the object then
stands for all ``(d_1, d_0)`` matrices, and its tangent space is everything.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["RankManifold"]


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


class RankManifold:
    """``M_k``: the ``(m, n)`` matrices of rank ``k``, with the balanced-lift metric of depth ``h``.

    Parameters
    ----------
    shape : tuple of int
        ``(m, n) = (d_h, d_0)``.
    rank : int
        ``k``, ``0 <= k <= min(m, n)``.
    depth : int
        ``h``, the number of layers the metric comes from (``h >= 1``).

    Attributes
    ----------
    shape : tuple of int
        ``(m, n)``.
    rank : int
        ``k``.
    depth : int
        ``h``.
    dim : int
        ``k (m + n - k)`` (``m n`` for ``h = 1``).

    Raises
    ------
    ValueError
        If ``shape`` is not a pair of positive integers, ``rank`` is not an integer in
        ``0..min(m, n)``, or ``depth`` is not an integer ``>= 1``.

    Notes
    -----
    A point ``W`` is used through its rank-``k`` truncation: singular values beyond the ``k``-th
    are set to zero, as :func:`quotient.reduced_flow` does (``(W W^T)^{1/h}`` is not Lipschitz
    where a singular value vanishes, so rounding errors there would enter as ``e^{2/h}``).

    Examples
    --------
    For ``h = 2`` the metric at a diagonal ``W`` scales the entry ``(p, q)`` of a tangent vector by
    ``1 / (s_p + s_q)``:

    >>> import numpy as np
    >>> from quotient import RankManifold
    >>> manifold = RankManifold((2, 2), rank=2, depth=2)
    >>> manifold.dim
    4
    >>> W = np.diag([4.0, 1.0])
    >>> manifold.metric_operator(np.ones((2, 2)), W)      # A_W(Z)_pq = (s_p + s_q) Z_pq
    array([[8., 5.],
           [5., 2.]])
    >>> round(manifold.inner_product(np.eye(2), np.eye(2), W), 12)   # 1/8 + 1/2
    0.625
    """

    def __init__(self, shape, rank: int, depth: int):
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
            raise ValueError(f"shape must be a pair (d_h, d_0); got {shape!r}")
        self.shape = (_check_int("shape[0]", shape[0], 1), _check_int("shape[1]", shape[1], 1))
        self.rank = _check_int("rank", rank, 0)
        if self.rank > min(self.shape):
            raise ValueError(f"rank must be at most min(shape) = {min(self.shape)}; got {rank!r}")
        self.depth = _check_int("depth", depth, 1)
        m, n = self.shape
        self.dim = m * n if self.depth == 1 else self.rank * (m + n - self.rank)

    def __repr__(self) -> str:
        return f"RankManifold(shape={self.shape}, rank={self.rank}, depth={self.depth})"

    # ------------------------------------------------------------------------------ checks
    def _matrix(self, value, name: str) -> np.ndarray:
        array = np.asarray(value)
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers; got dtype {array.dtype}")
        if array.shape != self.shape:
            raise ValueError(f"{name} must have shape {self.shape}; got {array.shape}")
        array = array.astype(np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or infinite entries")
        return array

    def frame(self, base_point):
        """SVD frame and metric kernel at ``W``: ``(U, Vt, K)``.

        Parameters
        ----------
        base_point : array_like, shape (m, n)
            The matrix ``W``; used through its rank-``k`` truncation.

        Returns
        -------
        U : ndarray, shape (m, m)
            Left singular vectors of ``W`` (full SVD, singular values decreasing).
        Vt : ndarray, shape (n, n)
            Right singular vectors, transposed: ``W = U S Vt``.
        K : ndarray, shape (m, n)
            ``K_pq = sum_{j=1}^h lambda_p^{(j-1)/h} mu_q^{(h-j)/h}`` with ``lambda``, ``mu`` the
            squared singular values of the rank-``k`` truncation, zero-padded; ``0^0 = 1``.

        Raises
        ------
        TypeError, ValueError
            If ``base_point`` is not a finite real ``(m, n)`` matrix.
        """
        W = self._matrix(base_point, "base_point")
        m, n = self.shape
        h = self.depth
        U, s, Vt = np.linalg.svd(W, full_matrices=True)
        lam, mu = np.zeros(m), np.zeros(n)
        lam[: self.rank] = s[: self.rank] ** 2
        mu[: self.rank] = s[: self.rank] ** 2
        kernel = np.zeros((m, n))
        for j in range(1, h + 1):
            a, b = (j - 1) / h, (h - j) / h
            left = lam**a if a > 0 else np.ones(m)
            right = mu**b if b > 0 else np.ones(n)
            kernel += left[:, None] * right[None, :]
        return U, Vt, kernel

    def belongs(self, point, atol: float = 1e-10) -> bool:
        """Whether ``point`` has shape ``(m, n)`` and rank ``k``: ``s_k > atol >= s_{k+1}`` (relative to ``s_1``).

        The geomstats ``belongs`` signature, with our rank test in place of geomstats's.

        Parameters
        ----------
        point : array_like
            A candidate matrix; any shape (a wrong shape or a non-finite entry gives ``False``).
        atol : float
            Rank threshold on the singular values ``s_1 >= s_2 >= ...``: they are compared against
            ``atol * max(s_1, 1)``, so ``atol`` is absolute for matrices of norm below 1 and
            relative to ``s_1`` above.

        Returns
        -------
        bool
            ``True`` when the shape is ``(m, n)``, every entry is finite and
            ``s_k > atol max(s_1, 1) >= s_{k+1}`` (for ``h = 1``, every finite ``(m, n)`` matrix).
        """
        array = np.asarray(point, dtype=np.float64)
        if array.shape != self.shape or not np.all(np.isfinite(array)):
            return False
        s = np.linalg.svd(array, compute_uv=False)
        scale = max(s[0], 1.0) if s.size else 1.0
        if self.depth == 1:
            return True
        above = s[self.rank - 1] > atol * scale if self.rank > 0 else True
        below = s[self.rank] <= atol * scale if self.rank < s.size else True
        return bool(above and below)

    def random_point(self, rng=None) -> np.ndarray:
        """A rank-``k`` matrix ``A B^T`` with standard normal ``A (m, k)``, ``B (n, k)``.

        Parameters
        ----------
        rng : numpy.random.Generator or int, optional
            Source of randomness (a generator or a seed); default a fresh unseeded generator.

        Returns
        -------
        ndarray
            Shape ``(m, n)``, of rank ``k`` with probability one.
        """
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        m, n = self.shape
        return generator.standard_normal((m, self.rank)) @ generator.standard_normal((n, self.rank)).T

    # ------------------------------------------------------------------------------ tangent space
    def to_tangent(self, vector, base_point) -> np.ndarray:
        """Frobenius-orthogonal projection onto ``T_W M_k``: ``Z - U_perp U_perp^T Z V_perp V_perp^T``.

        Parameters
        ----------
        vector : array_like, shape (m, n)
            Any matrix ``Z``.
        base_point : array_like, shape (m, n)
            The point ``W``; ``U_perp``, ``V_perp`` span the complements of its first ``k``
            singular vectors.

        Returns
        -------
        ndarray
            Shape ``(m, n)``, the tangent part of ``Z`` (``Z`` itself for ``h = 1``).

        Raises
        ------
        TypeError, ValueError
            If ``vector`` or ``base_point`` is not a finite real ``(m, n)`` matrix.
        """
        Z = self._matrix(vector, "vector")
        if self.depth == 1:
            return Z
        U, Vt, _ = self.frame(base_point)
        k = self.rank
        normal = U[:, k:] @ (U[:, k:].T @ Z @ Vt[k:].T) @ Vt[k:]
        return Z - normal

    def is_tangent(self, vector, base_point, atol: float = 1e-10) -> bool:
        """Whether ``vector`` lies in ``T_W M_k`` (its normal part ``U_perp^T Z V_perp`` is below ``atol``).

        Parameters
        ----------
        vector : array_like, shape (m, n)
            The matrix ``Z`` to test.
        base_point : array_like, shape (m, n)
            The point ``W``.
        atol : float
            Absolute bound on every entry of the normal part ``Z - to_tangent(Z, W)``.

        Returns
        -------
        bool
            Whether ``max |Z - to_tangent(Z, W)| <= atol``.

        Raises
        ------
        TypeError, ValueError
            If ``vector`` or ``base_point`` is not a finite real ``(m, n)`` matrix.
        """
        Z = self._matrix(vector, "vector")
        return bool(np.all(np.abs(Z - self.to_tangent(Z, base_point)) <= atol))

    # ------------------------------------------------------------------------------ the metric
    def metric_operator(self, vector, base_point) -> np.ndarray:
        """``A_W(Z) = sum_j (W W^T)^{(j-1)/h} Z (W^T W)^{(h-j)/h}``, shape ``(m, n)``.

        At a balanced point ``x`` over ``W`` this is ``d pi_x d pi_x^*(Z)``. It maps every matrix
        into ``T_W M_k`` and kills the normal part of ``Z`` (for ``h >= 2``).

        Parameters
        ----------
        vector : array_like, shape (m, n)
            Any matrix ``Z``.
        base_point : array_like, shape (m, n)
            The point ``W`` (through its rank-``k`` truncation).

        Returns
        -------
        ndarray
            ``A_W(Z)``, shape ``(m, n)``, tangent at ``W``.

        Raises
        ------
        TypeError, ValueError
            If ``vector`` or ``base_point`` is not a finite real ``(m, n)`` matrix.
        """
        Z = self._matrix(vector, "vector")
        U, Vt, kernel = self.frame(base_point)
        return U @ (kernel * (U.T @ Z @ Vt.T)) @ Vt

    def inverse_metric_operator(self, tangent_vec, base_point) -> np.ndarray:
        """``A_W^{-1}(Z)`` on ``T_W M_k``: the tangent vector ``Y`` with ``A_W(Y) = Z``.

        The normal part of ``tangent_vec`` (where ``K = 0``) is ignored, so this inverts ``A_W``
        on the tangent projection of ``tangent_vec``.

        Parameters
        ----------
        tangent_vec : array_like, shape (m, n)
            The matrix ``Z``; only its tangent part at ``W`` is used.
        base_point : array_like, shape (m, n)
            The point ``W``.

        Returns
        -------
        ndarray
            ``Y = A_W^{-1}(Z)``, shape ``(m, n)``, tangent at ``W``.

        Raises
        ------
        TypeError, ValueError
            If ``tangent_vec`` or ``base_point`` is not a finite real ``(m, n)`` matrix.
        """
        Z = self._matrix(tangent_vec, "tangent_vec")
        U, Vt, kernel = self.frame(base_point)
        coordinates = U.T @ Z @ Vt.T
        positive = kernel > 0
        out = np.zeros_like(coordinates)
        out[positive] = coordinates[positive] / kernel[positive]
        return U @ out @ Vt

    def inner_product(self, tangent_vec_a, tangent_vec_b, base_point) -> float:
        """``g_W(Z_1, Z_2) = <A_W^{-1}(Z_1), Z_2>`` (of the tangent projections of ``Z_1``, ``Z_2``).

        Equals ``<V_1, V_2>`` for the least-norm lifts ``V_i`` (``d pi_x(V_i) = Z_i``) at any
        balanced point ``x`` over ``W``.

        Parameters
        ----------
        tangent_vec_a : array_like, shape (m, n)
            ``Z_1``; its normal part at ``W`` is ignored.
        tangent_vec_b : array_like, shape (m, n)
            ``Z_2``; its normal part at ``W`` is ignored.
        base_point : array_like, shape (m, n)
            The point ``W``.

        Returns
        -------
        float
            ``g_W(Z_1, Z_2)``, symmetric in ``Z_1``, ``Z_2``.

        Raises
        ------
        TypeError, ValueError
            If an argument is not a finite real ``(m, n)`` matrix.
        """
        Z2 = self.to_tangent(tangent_vec_b, base_point)
        return float(np.sum(self.inverse_metric_operator(tangent_vec_a, base_point) * Z2))

    def squared_norm(self, tangent_vec, base_point) -> float:
        """``g_W(Z, Z) = <A_W^{-1}(Z), Z>``, the squared length of ``Z`` in the balanced-lift metric.

        Parameters
        ----------
        tangent_vec : array_like, shape (m, n)
            ``Z``; its normal part at ``W`` is ignored.
        base_point : array_like, shape (m, n)
            The point ``W``.

        Returns
        -------
        float
            ``g_W(Z, Z) >= 0``: the squared norm of the least-norm lift of ``Z`` at a balanced point
            over ``W``.

        Raises
        ------
        TypeError, ValueError
            If an argument is not a finite real ``(m, n)`` matrix.
        """
        return self.inner_product(tangent_vec, tangent_vec, base_point)

    def riemannian_gradient(self, euclidean_gradient, base_point) -> np.ndarray:
        """The Riemannian gradient ``A_W(G)`` of a function with Euclidean gradient ``G`` at ``W``.

        It is the tangent vector with ``g_W(grad f, Z) = <G, Z>`` for every tangent ``Z``
        (``A_W`` is ``g``-to-Frobenius self-adjoint and maps into the tangent space);
        ``-riemannian_gradient`` of ``grad l(W)`` is :func:`quotient.reduced_velocity`, the push
        forward of the layer flow at every balanced point over ``W``.

        Parameters
        ----------
        euclidean_gradient : array_like, shape (m, n)
            ``G``, the Euclidean (Frobenius) gradient of ``f`` at ``W``.
        base_point : array_like, shape (m, n)
            The point ``W``.

        Returns
        -------
        ndarray
            ``A_W(G)``, shape ``(m, n)``, tangent at ``W``.

        Raises
        ------
        TypeError, ValueError
            If an argument is not a finite real ``(m, n)`` matrix.
        """
        return self.metric_operator(euclidean_gradient, base_point)
