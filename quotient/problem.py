"""The learning problem: a loss of the end-to-end map, its gradient and Hessian in layer form.

With whitened inputs the quadratic loss reduces to ``L(W_1..W_h) = 1/2 ||Sigma - W_h ... W_1||_F^2``
where ``Sigma`` is the ``(d_h, d_0)`` rectangular diagonal matrix of the singular values of
``Sigma_yx = Y X^T`` (math.md section 1). A :class:`Problem` holds ``Sigma``, the orthogonal
frames that map the singular frame back to the data frame, and the constant that separates the
reduced loss from the data loss. Every point passed to a ``Problem`` method is in the singular
frame; :meth:`Problem.to_data_frame` and :meth:`Problem.from_data_frame` convert.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._numerics import readonly
from .losses import EndToEndLoss, SquareLoss, check_loss
from .network import (
    as_array,
    as_point,
    block_slices,
    check_positive,
    check_widths,
    end_to_end,
    forward_products,
    from_vector,
    n_params,
    to_vector,
)

__all__ = ["Problem", "check_data"]

#: Most parameters ``N`` for which :meth:`Problem.hessian` assembles the dense ``(N, N)`` matrix.
HESSIAN_LIMIT = 8000


def _transpose(array: np.ndarray) -> np.ndarray:
    return np.swapaxes(array, -1, -2)


def check_data(X, Y, widths=None, *, rcond: float = 1e-10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate data ``(X, Y)`` for the square loss and compute the whitening ``Sigma_xx^{-1/2}``.

    Parameters
    ----------
    X : array_like, shape (d_0, n)
        Inputs, one sample per column (numpy, torch, JAX: read by :func:`quotient.network.as_array`).
    Y : array_like, shape (d_h, n)
        Targets, one sample per column.
    widths : sequence of int, optional
        ``(d_0, ..., d_h)``; when given, ``X`` must have ``d_0`` rows and ``Y`` ``d_h``.
    rcond : float
        ``Sigma_xx = X X^T`` counts as singular when its smallest eigenvalue is at most ``rcond``
        times its largest.

    Returns
    -------
    X, Y : ndarray
        The data as float64 arrays, shapes ``(d_0, n)`` and ``(d_h, n)``.
    whitening : ndarray, shape (d_0, d_0)
        ``Sigma_xx^{-1/2}`` (symmetric), so that ``X_w = Sigma_xx^{-1/2} X`` has ``X_w X_w^T = I``.

    Raises
    ------
    TypeError
        If ``X`` or ``Y`` does not hold real numbers.
    ValueError
        If they are not matrices, their rows do not match ``widths``, their sample counts differ,
        an entry is NaN or infinite, or ``X X^T`` is singular (rank-deficient inputs cannot be
        whitened: the message names the input rows that are zero in every sample, if any).
    """
    check_positive("rcond", rcond, zero=True)
    arrays = {}
    for name, data, rows in (("X", X, None if widths is None else widths[0]), ("Y", Y, None if widths is None else widths[-1])):
        array = as_array(data, name)
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers; got dtype {array.dtype}")
        if array.ndim != 2 or (rows is not None and array.shape[0] != rows):
            expected = f"({'d_0' if name == 'X' else 'd_h'}, n_samples)" if rows is None else f"({rows}, n_samples) for widths {tuple(widths)}"
            raise ValueError(f"{name} must have shape {expected}; got {array.shape}")
        finite = np.isfinite(array)
        if not finite.all():
            row, column = np.argwhere(~finite)[0]
            raise ValueError(
                f"{name} contains NaN or infinite entries ({np.count_nonzero(~finite)} of them, the first at row {row}, sample {column})"
            )
        arrays[name] = array.astype(np.float64)
    X, Y = arrays["X"], arrays["Y"]
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same number of samples (columns); got {X.shape[1]} and {Y.shape[1]}")
    eigenvalues, eigenvectors = np.linalg.eigh(X @ X.T)
    if eigenvalues[0] <= rcond * max(eigenvalues[-1], np.finfo(float).tiny):
        zero_rows = np.flatnonzero(~X.any(axis=1))
        rank = int(np.count_nonzero(eigenvalues > rcond * max(eigenvalues[-1], np.finfo(float).tiny)))
        raise ValueError(
            "X X^T is singular, so the inputs cannot be whitened: its eigenvalues range from "
            f"{eigenvalues[0]:.3e} to {eigenvalues[-1]:.3e}, rank {rank} < d_0 = {X.shape[0]} (need d_0 linearly "
            f"independent input rows and n_samples >= d_0; got n_samples = {X.shape[1]})"
            + (f"; input rows {zero_rows.tolist()} are zero in every sample: drop them" if zero_rows.size else "")
        )
    whitening = (eigenvectors / np.sqrt(eigenvalues)) @ eigenvectors.T
    return X, Y, whitening


@dataclass(frozen=True, eq=False)
class Problem:
    """A deep linear network learning problem in the singular frame of its data.

    Build one with :meth:`from_sigma`, :meth:`from_data` or :meth:`from_loss` rather than
    directly; a direct call takes every field by keyword.

    Parameters
    ----------
    widths : tuple of int
        ``(d_0, ..., d_h)``.
    target : ndarray, shape (d_h, d_0), or None
        ``Sigma``: rectangular diagonal, entries ``sigma_1 >= ... >= sigma_m >= 0``,
        ``m = min(d_0, d_h)``. ``None`` for a general loss (:meth:`from_loss`).
    sigma : ndarray, shape (m,), or None
        The singular values on the diagonal of ``target`` (``None`` for a general loss).
    output_frame : ndarray, shape (d_h, d_h)
        ``U``: the data-frame last layer is ``U W_h``.
    input_map : ndarray, shape (d_0, d_0)
        ``V^T Sigma_xx^{-1/2}``: the data-frame first layer is ``W_1 V^T Sigma_xx^{-1/2}``.
    offset : float
        Data loss minus reduced loss, ``1/2 (||Y||_F^2 - ||Sigma_yx||_F^2)`` (0 for
        :meth:`from_sigma`).
    end_to_end_loss : EndToEndLoss
        The loss ``l`` of the end-to-end map; ``L(W_1..W_h) = l(W_h ... W_1)``: any object with
        the methods of the protocol :class:`quotient.losses.EndToEndLoss` (``value``,
        ``gradient``, ``hvp``); :class:`quotient.losses.SquareLoss` of ``target`` by default.

    Raises
    ------
    ValueError
        If ``widths`` are not positive integers, or neither ``target`` nor ``end_to_end_loss``
        is given.
    TypeError
        If ``end_to_end_loss`` lacks a method of the protocol.
    """

    widths: tuple[int, ...]
    target: np.ndarray
    sigma: np.ndarray
    output_frame: np.ndarray
    input_map: np.ndarray
    offset: float = 0.0
    end_to_end_loss: EndToEndLoss | None = field(default=None, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "widths", check_widths(self.widths))
        for name in ("target", "sigma", "output_frame", "input_map"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, readonly(getattr(self, name)))
        if self.end_to_end_loss is None:
            if self.target is None:
                raise ValueError("a Problem needs a target Sigma or an end_to_end_loss")
            object.__setattr__(self, "end_to_end_loss", SquareLoss(self.target))
        else:
            check_loss(self.end_to_end_loss, "end_to_end_loss")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_sigma(cls, sigma, widths) -> Problem:
        """Problem with target singular values ``sigma`` or a target matrix.

        Parameters
        ----------
        sigma : array_like
            Either a 1-D array of ``m = min(d_0, d_h)`` singular values in non-increasing order
            (the target is then ``Sigma`` itself, with identity frames), or a 2-D target matrix of
            shape ``(d_h, d_0)``, whose full SVD ``U Sigma V^T`` supplies the frames.
        widths : sequence of int
            ``(d_0, ..., d_h)``.

        Raises
        ------
        ValueError
            If ``sigma`` has the wrong shape, is not finite, is negative or is not sorted.
        """
        widths = check_widths(widths)
        d_0, d_h = widths[0], widths[-1]
        m = min(d_0, d_h)
        values = np.asarray(sigma)
        if values.dtype.kind not in "fiu":
            raise TypeError(f"sigma must hold real numbers; got dtype {values.dtype}")
        values = values.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError("sigma contains NaN or infinite entries")
        if values.ndim == 1:
            if values.shape != (m,):
                raise ValueError(
                    f"sigma must hold m = min(d_0, d_h) = {m} singular values for widths {widths}; "
                    f"got {values.shape[0]}"
                )
            if np.any(values < 0):
                raise ValueError(f"sigma must be non-negative; got {values}")
            if np.any(np.diff(values) > 0):
                raise ValueError(
                    f"sigma must be sorted in non-increasing order; got {values} "
                    "(pass a 2-D target matrix for any other target)"
                )
            target = np.zeros((d_h, d_0))
            target[np.arange(m), np.arange(m)] = values
            return cls(widths=widths, target=target, sigma=values, output_frame=np.eye(d_h), input_map=np.eye(d_0))
        if values.ndim == 2:
            if values.shape != (d_h, d_0):
                raise ValueError(
                    f"a target matrix sigma must have shape (d_h, d_0) = {(d_h, d_0)}; got {values.shape}"
                )
            return cls._from_cross_covariance(widths, values, np.eye(d_0), 0.0)
        raise ValueError(f"sigma must be 1-D (singular values) or 2-D (target matrix); got {values.ndim} axes")

    @classmethod
    def from_data(cls, X, Y, widths, *, rcond: float = 1e-10) -> Problem:
        """Problem for the data loss ``1/2 ||Y - W X||_F^2`` with inputs whitened.

        Parameters
        ----------
        X : array_like, shape (d_0, n)
            Inputs, one sample per column.
        Y : array_like, shape (d_h, n)
            Targets, one sample per column.
        widths : sequence of int
            ``(d_0, ..., d_h)``.
        rcond : float
            ``X X^T`` counts as singular when its smallest eigenvalue is below ``rcond`` times its
            largest.

        Notes
        -----
        With ``Sigma_xx = X X^T`` and whitened inputs ``X_w = Sigma_xx^{-1/2} X``,
        ``1/2 ||Y - W_w X_w||^2 = 1/2 ||Sigma_yx - W_w||^2 + offset`` with
        ``Sigma_yx = Y X_w^T = U Sigma V^T`` and ``offset = 1/2 (||Y||^2 - ||Sigma_yx||^2)``.
        The reduced problem works with ``W = U^T W_w V``; the network acting on the raw inputs
        is ``W_data = U W V^T Sigma_xx^{-1/2}`` (:meth:`to_data_frame`). The gradient flow is that
        of the whitened problem.

        Raises
        ------
        ValueError
            If the shapes do not match the widths, an entry is not finite, or ``X X^T`` is
            singular (the inputs cannot be whitened).
        """
        widths = check_widths(widths)
        X, Y, whitening = check_data(X, Y, widths, rcond=rcond)
        cross = Y @ (whitening @ X).T
        offset = 0.5 * (np.sum(Y**2) - np.sum(cross**2))
        return cls._from_cross_covariance(widths, cross, whitening, offset)

    @classmethod
    def from_loss(cls, loss, widths) -> Problem:
        """Problem for a general smooth loss ``l`` of the end-to-end map: ``L = l(W_h ... W_1)``.

        Parameters
        ----------
        loss : EndToEndLoss
            With the methods of :class:`quotient.losses.EndToEndLoss`: ``value(W)``,
            ``gradient(W)`` and ``hvp(W, dW)`` for ``W`` of shape ``(..., d_h, d_0)``, e.g. :class:`quotient.losses.CovarianceSquareLoss`,
            :class:`~quotient.losses.PseudoHuberLoss`, :class:`~quotient.losses.LogisticLoss`.
        widths : sequence of int
            ``(d_0, ..., d_h)``.

        Notes
        -----
        Points are taken as they are (identity frames, no whitening), and the problem has no
        ``target`` or ``sigma``: methods that need them (:meth:`adjacency_target`, the critical
        values, the closed forms) raise. Gradient, Hessian, flows and the conserved quantities
        work for any such loss.

        Raises
        ------
        TypeError
            If ``loss`` lacks one of the three methods.
        ValueError
            If its gradient at ``W = 0`` does not have shape ``(d_h, d_0)``.
        """
        widths = check_widths(widths)
        check_loss(loss, "loss")
        d_0, d_h = widths[0], widths[-1]
        probe = np.zeros((d_h, d_0))
        gradient_shape = np.shape(loss.gradient(probe))
        if gradient_shape != (d_h, d_0) or np.shape(loss.value(probe)) != ():
            raise ValueError(
                f"loss does not act on end-to-end maps of shape (d_h, d_0) = {(d_h, d_0)} for widths {widths}: "
                f"its gradient at W = 0 has shape {gradient_shape}"
            )
        return cls(widths=widths, target=None, sigma=None, output_frame=np.eye(d_h), input_map=np.eye(d_0), end_to_end_loss=loss)

    @classmethod
    def _from_cross_covariance(cls, widths, cross, whitening, offset) -> Problem:
        d_0, d_h = widths[0], widths[-1]
        m = min(d_0, d_h)
        U, values, Vt = np.linalg.svd(cross, full_matrices=True)
        target = np.zeros((d_h, d_0))
        target[np.arange(m), np.arange(m)] = values
        return cls(widths=widths, target=target, sigma=values, output_frame=U, input_map=Vt @ whitening, offset=float(offset))

    # ------------------------------------------------------------------ frames
    @property
    def depth(self) -> int:
        """Number of layers ``h``."""
        return len(self.widths) - 1

    @property
    def n_params(self) -> int:
        """Number of parameters ``N = sum_i d_i d_{i-1}``."""
        return n_params(self.widths)

    @property
    def rank_bound(self) -> int:
        """``r = min(d_0, ..., d_h)``, the largest rank of the end-to-end map."""
        return min(self.widths)

    def to_data_frame(self, point):
        """Map a point from the singular frame to the network acting on the raw data.

        ``W_1 -> W_1 V^T Sigma_xx^{-1/2}`` and ``W_h -> U W_h``; hidden layers are unchanged.

        Parameters
        ----------
        point : sequence of array_like
            Layers ``(W_1, ..., W_h)`` in the singular frame (as the flows return them).

        Returns
        -------
        tuple of ndarray
            The layers of the same network in the data frame, shapes ``(d_i, d_{i-1})``.

        Raises
        ------
        ValueError
            If ``point`` does not have the problem's widths or is not finite.
        """
        layers = list(as_point(point, "point", widths=self.widths))
        layers[0] = layers[0] @ self.input_map
        layers[-1] = self.output_frame @ layers[-1]
        return tuple(layers)

    def from_data_frame(self, point):
        """Inverse of :meth:`to_data_frame`: a network on the raw data, seen in the singular frame.

        Parameters
        ----------
        point : sequence of array_like
            Layers ``(W_1, ..., W_h)`` of a network acting on the user's inputs.

        Returns
        -------
        tuple of ndarray
            ``W_1 -> W_1 (V^T Sigma_xx^{-1/2})^{-1}`` and ``W_h -> U^T W_h``, hidden layers unchanged.

        Raises
        ------
        ValueError
            If ``point`` does not have the problem's widths or is not finite.
        """
        layers = list(as_point(point, "point", widths=self.widths))
        layers[0] = np.linalg.solve(self.input_map.T, layers[0].T).T
        layers[-1] = self.output_frame.T @ layers[-1]
        return tuple(layers)

    def data_loss(self, point) -> float:
        """The loss of a network given in the data frame (the user's): ``L_data = loss(from_data_frame(point)) + offset``.

        Parameters
        ----------
        point : sequence of array_like
            Layers ``(W_1, ..., W_h)`` of a network acting on the user's inputs, e.g.
            :meth:`to_data_frame` of a point, or :func:`quotient.interop.from_torch` of a torch model.

        Returns
        -------
        float
            For :meth:`from_data`, ``1/2 ||Y - W X||_F^2`` on the raw data ``(X, Y)`` with
            ``W = W_h ... W_1``; for a target matrix ``T`` (:meth:`from_sigma`), ``1/2 ||T - W||_F^2``;
            for singular values or a general loss, :meth:`loss` (identity frames, offset 0).

        Notes
        -----
        :meth:`loss`, :meth:`gradient` and the flows take points in the singular frame, where the
        target is the diagonal ``Sigma``; ``from_data_frame`` maps the user's network there and
        ``offset = 1/2 (||Y||_F^2 - ||Sigma_yx||_F^2)`` is the constant between the two losses.
        """
        return self.loss(self.from_data_frame(point)) + self.offset

    # ------------------------------------------------------------------ loss and derivatives
    def loss(self, point) -> float:
        """``L(W_1..W_h) = l(W_h ... W_1)``; for the square loss ``1/2 ||Sigma - W||_F^2``.

        Parameters
        ----------
        point : sequence of array_like
            Layers ``(W_1, ..., W_h)`` in the singular frame.

        Returns
        -------
        float
            The loss (without :attr:`offset`: :meth:`data_loss` adds it).

        Raises
        ------
        ValueError
            If ``point`` does not have the problem's widths or is not finite.
        """
        point = as_point(point, "point", widths=self.widths)
        return float(self.end_to_end_loss.value(end_to_end(point)))

    def gradient(self, point):
        """Gradient of the loss as a point.

        Parameters
        ----------
        point : sequence of array_like
            Layers ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, in the singular frame.

        Returns
        -------
        tuple of ndarray
            ``(grad_{W_1} L, ..., grad_{W_h} L)``, of the shapes of the layers.

        Raises
        ------
        ValueError
            If ``point`` does not have the problem's widths or is not finite.

        Notes
        -----
        ``grad_{W_j} L = B_j^T G F_{j-1}^T`` with ``G = grad l(W)``, ``F_{j-1} = W_{j-1} ... W_1``
        and ``B_j = W_h ... W_{j+1}``. ``B_j^T G`` is accumulated as ``W_{j+1}^T (B_{j+1}^T G)``,
        so one gradient costs ``3h - 3`` matrix products. :meth:`unchecked_gradient` is the same
        computation without the validation.
        """
        return self.unchecked_gradient(as_point(point, "point", widths=self.widths))

    def unchecked_gradient(self, point, out=None, forward=None):
        """The gradient of :meth:`gradient` without validation, batched over leading axes: the trusted kernel.

        For callers inside the package that have checked ``point`` already (the flows call this
        thousands of times on the same shapes): nothing is converted or checked.

        Parameters
        ----------
        point : tuple of ndarray
            Float64 layers ``W_i`` of shape ``(..., d_i, d_{i-1})`` with the problem's widths; the
            leading axes broadcast (a batch of points).
        out : tuple of ndarray, optional
            Layers of the gradient's shapes that receive the result (written in place).
        forward : list, optional
            Arrays for the forward products ``F_2 .. F_h`` at indices ``2 .. h`` (shapes
            ``(..., d_j, d_0)``), written in place instead of allocated.

        Returns
        -------
        tuple of ndarray
            The gradient's layers (``out`` itself when given), shapes ``(..., d_i, d_{i-1})``.
        """
        h = len(point)
        if out is None:
            lead = np.broadcast_shapes(*(W.shape[:-2] for W in point))
            out = tuple(np.empty(lead + W.shape[-2:]) for W in point)
        F = [None, point[0]]  # F_j = W_j ... W_1
        for j in range(1, h):
            F.append(np.matmul(point[j], F[j], out=None if forward is None else forward[j + 1]))
        back = self.end_to_end_loss.gradient(F[h])  # B_j^T G, starting at j = h
        for j in range(h, 1, -1):  # grad_j = (B_j^T G) F_{j-1}^T, B_{j-1}^T G = W_j^T (B_j^T G)
            np.matmul(back, F[j - 1].mT, out=out[j - 1])
            back = np.matmul(point[j - 1].mT, back, out=out[0] if j == 2 else None)
        if h == 1:
            np.copyto(out[0], back)
        return tuple(out)

    def hvp(self, point, direction):
        """Exact Hessian-vector product ``H(point)[direction]`` as a point.

        Parameters
        ----------
        point : sequence of array_like
            Layers ``(W_1, ..., W_h)`` in the singular frame.
        direction : sequence of array_like
            A tangent vector ``(D_1, ..., D_h)`` of the layers' shapes, or a batch of them with a
            leading axis (``D_i`` of shape ``(k, d_i, d_{i-1})``: one product per direction).

        Returns
        -------
        tuple of ndarray
            ``H D`` in layer form, shapes of ``direction``.

        Raises
        ------
        ValueError
            If ``point`` or ``direction`` does not have the problem's widths or is not finite.

        Notes
        -----
        Differentiating ``grad_j = B_j^T G F_{j-1}^T`` along ``D``:
        ``(H D)_j = (B_j^T dG + dB_j^T G) F_{j-1}^T + B_j^T G dF_{j-1}^T`` with
        ``dG = Hess l(W)[dW]``, ``dW = dF_h``, ``dF_j = W_j dF_{j-1} + D_j F_{j-1}`` and
        ``B_j^T dG + dB_j^T G = W_{j+1}^T (...)_{j+1} + D_{j+1}^T B_{j+1}^T G``:
        ``O(h)`` matrix products (math-spec section 2.3). :meth:`unchecked_hvp` is the same
        computation without the validation.
        """
        point = as_point(point, "point", widths=self.widths)
        batched = np.ndim(direction[0]) == 3 if isinstance(direction, (tuple, list)) and direction else False
        direction = as_point(direction, "direction", widths=self.widths, batch=batched)
        return self.unchecked_hvp(point, direction)

    def unchecked_hvp(self, point, direction):
        """The product of :meth:`hvp` without validation, batched over leading axes: the trusted kernel.

        Parameters
        ----------
        point : tuple of ndarray
            Float64 layers ``W_i`` of shape ``(..., d_i, d_{i-1})`` with the problem's widths.
        direction : tuple of ndarray
            Float64 ``D_i`` of shape ``(..., d_i, d_{i-1})``; leading axes broadcast against
            ``point``'s (e.g. ``N`` unit directions at one point give the dense Hessian).

        Returns
        -------
        tuple of ndarray
            ``H D`` in layer form, new arrays of the broadcast shapes ``(..., d_i, d_{i-1})``.
        """
        h = len(point)
        forward = forward_products(point)
        d_forward = [None, direction[0]]  # dF_j, dF_0 = 0
        for j in range(2, h + 1):
            d_forward.append(point[j - 1] @ d_forward[-1] + direction[j - 1] @ forward[j - 1])
        W = forward[-1]
        G = self.end_to_end_loss.gradient(W)
        dG = self.end_to_end_loss.hvp(W, d_forward[-1])
        out = [None] * h
        back, d_back = G, dG  # B_j^T G and B_j^T dG + dB_j^T G at j = h
        for j in range(h, 0, -1):
            if j == 1:
                out[0] = d_back
            else:
                out[j - 1] = d_back @ _transpose(forward[j - 1]) + back @ _transpose(d_forward[j - 1])
                d_back = _transpose(point[j - 1]) @ d_back + _transpose(direction[j - 1]) @ back
                back = _transpose(point[j - 1]) @ back
        shape = np.broadcast_shapes(*(o.shape[:-2] for o in out))
        return tuple(np.broadcast_to(o, shape + o.shape[-2:]).copy() for o in out)

    def hessian(self, point) -> np.ndarray:
        """Dense Hessian of shape ``(N, N)`` in the flat order of :func:`quotient.network.to_vector`.

        Assembled from ``N`` Hessian-vector products in one batched call; meant for small networks.

        Parameters
        ----------
        point : sequence of array_like
            Layers ``(W_1, ..., W_h)`` in the singular frame.

        Returns
        -------
        ndarray, shape (N, N)
            ``Hess L(point)``, symmetrised: ``(H + H^T) / 2`` of the products.

        Raises
        ------
        ValueError
            If ``N > HESSIAN_LIMIT`` (8000 parameters: the matrix alone would take 512 MB, its
            batched assembly several times that); use :meth:`hvp` for larger networks.
        """
        if self.n_params > HESSIAN_LIMIT:
            raise ValueError(
                f"hessian: N = {self.n_params} parameters > HESSIAN_LIMIT = {HESSIAN_LIMIT} would make an N x N matrix of "
                f"{8 * self.n_params**2 / 2**30:.1f} GiB; use hvp (Hessian-vector products) for networks this large"
            )
        point = as_point(point, "point", widths=self.widths)
        basis = from_vector(np.eye(self.n_params), self.widths)
        H = to_vector(self.unchecked_hvp(point, basis))
        return 0.5 * (H + H.T)

    # ------------------------------------------------------------------ adjacency form
    def adjacency_target(self) -> np.ndarray:
        """``E``: the ``(n_v, n_v)`` matrix with ``Sigma`` at block ``(h, 0)``, zeros elsewhere.

        Returns
        -------
        ndarray, shape (n_v, n_v)
            ``n_v = d_0 + ... + d_h``, blocks in the order of :func:`quotient.network.block_slices`.

        Raises
        ------
        ValueError
            If the problem has a general loss (:meth:`from_loss`) and so no target.
        """
        if self.target is None:
            raise ValueError("this problem has a general loss (Problem.from_loss) and no target Sigma")
        blocks = block_slices(self.widths)
        n_v = sum(self.widths)
        E = np.zeros((n_v, n_v))
        E[blocks[-1], blocks[0]] = self.target
        return E

    def adjacency_loss(self, A) -> float:
        """``l`` read off ``A^h``; for the square loss ``1/2 ||E - A^h||_F^2``.

        Parameters
        ----------
        A : array_like, shape (n_v, n_v)
            An adjacency matrix with the layers ``W_i`` at blocks ``(i, i - 1)``.

        Returns
        -------
        float
            ``l`` of the block ``(h, 0)`` of ``A^h``, which is the end-to-end map.
        """
        A = np.asarray(A, dtype=np.float64)
        blocks = block_slices(self.widths)
        power = np.linalg.matrix_power(A, self.depth)
        return float(self.end_to_end_loss.value(power[blocks[-1], blocks[0]]))

    def adjacency_gradient(self, A) -> np.ndarray:
        """Gradient in adjacency form, ``sum_{j=1}^h (A^{h-j})^T G_A (A^{j-1})^T``.

        ``G_A`` holds ``grad l(A^h[block h, block 0])`` at block ``(h, 0)`` (``A^h - E`` for the
        square loss). This is the unconstrained gradient over all ``(n_v, n_v)`` matrices; it has
        the block-shift pattern, so the flow ``dA/dt = -grad`` stays on it. Dense: costs
        ``O(h n_v^3)``; the layer form :meth:`gradient` is the fast path.

        Parameters
        ----------
        A : array_like, shape (n_v, n_v)
            An adjacency matrix, ``n_v = d_0 + ... + d_h``.

        Returns
        -------
        ndarray, shape (n_v, n_v)
            The gradient of ``A -> l(A^h[block h, block 0])``.

        Raises
        ------
        ValueError
            If ``A`` does not have shape ``(n_v, n_v)``.
        """
        A = np.asarray(A, dtype=np.float64)
        n_v = sum(self.widths)
        if A.shape != (n_v, n_v):
            raise ValueError(f"A must have shape ({n_v}, {n_v}) for widths {self.widths}; got {A.shape}")
        h = self.depth
        blocks = block_slices(self.widths)
        powers = [np.eye(n_v)]
        for _ in range(h):
            powers.append(powers[-1] @ A)
        G_A = np.zeros((n_v, n_v))
        G_A[blocks[-1], blocks[0]] = self.end_to_end_loss.gradient(powers[h][blocks[-1], blocks[0]])
        return sum(powers[h - j].T @ G_A @ powers[j - 1].T for j in range(1, h + 1))

    def __repr__(self) -> str:
        if self.sigma is None:
            return f"Problem(widths={self.widths}, loss={type(self.end_to_end_loss).__name__})"
        return f"Problem(widths={self.widths}, sigma={np.array2string(self.sigma, precision=4)})"
