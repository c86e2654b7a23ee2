"""Losses of the end-to-end map: the protocol they follow, the whitened square loss and others.

A loss ``l`` of the end-to-end map ``W`` (shape ``(d_h, d_0)``) is any object with the three
methods of :class:`EndToEndLoss`, each broadcasting over leading axes of ``W`` and ``dW``:

* ``value(W)`` -> ``l(W)``, shape ``W.shape[:-2]``;
* ``gradient(W)`` -> ``grad l(W)``, shape of ``W``;
* ``hvp(W, dW)`` -> ``Hess l(W)[dW]``, shape of ``dW``.

``Problem.from_loss(loss, widths)`` turns one into a network problem; the layer gradient is
``B_j^T grad l(W) F_{j-1}^T`` and the conserved quantities ``C_i`` are conserved for every such loss
(Du, Hu & Lee 2018). :class:`SquareLoss` is the whitened square loss of ``Problem.from_sigma`` and
``Problem.from_data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from scipy.special import expit

__all__ = ["EndToEndLoss", "SquareLoss", "CovarianceSquareLoss", "PseudoHuberLoss", "LogisticLoss", "check_loss"]

#: The methods of :class:`EndToEndLoss`, in the order :func:`check_loss` names them.
LOSS_METHODS = ("value", "gradient", "hvp")


@runtime_checkable
class EndToEndLoss(Protocol):
    """What :class:`quotient.Problem` calls on a loss ``l`` of the end-to-end map ``W = W_h ... W_1``.

    Every method broadcasts over the leading axes of its arguments (the flows evaluate batches of
    points at once); ``W`` and ``dW`` have shape ``(..., d_h, d_0)``.
    """

    def value(self, W: np.ndarray) -> np.ndarray:
        """``l(W)``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape W.shape[:-2]
            The loss of each map.
        """

    def gradient(self, W: np.ndarray) -> np.ndarray:
        """``grad l(W)``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape of W
            The Euclidean gradient of ``l`` at each map.
        """

    def hvp(self, W: np.ndarray, dW: np.ndarray) -> np.ndarray:
        """``Hess l(W)[dW]``, the Hessian-vector product.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.
        dW : ndarray, shape (..., d_h, d_0)
            Directions, broadcast against ``W``.

        Returns
        -------
        ndarray, shape of dW
            The second derivative of ``l`` at ``W`` applied to ``dW``.
        """


def check_loss(loss, name: str = "loss") -> EndToEndLoss:
    """``loss`` if it has the methods of :class:`EndToEndLoss`.

    Parameters
    ----------
    loss : object
        A candidate loss of the end-to-end map.
    name : str
        The argument's name, for the error message.

    Returns
    -------
    EndToEndLoss
        ``loss`` itself.

    Raises
    ------
    TypeError
        If a method of :data:`LOSS_METHODS` is missing or not callable; the message names them.
    """
    missing = [method for method in LOSS_METHODS if not callable(getattr(loss, method, None))]
    if missing:
        raise TypeError(
            f"{name} must be a loss of the end-to-end map with methods {', '.join(LOSS_METHODS)} "
            f"(quotient.losses.EndToEndLoss); {type(loss).__name__} lacks {', '.join(missing)}"
        )
    return loss



@dataclass(frozen=True, eq=False)
class SquareLoss:
    """``l(W) = 1/2 ||W - Sigma||_F^2``, the whitened square loss: gradient ``W - Sigma``, Hessian the identity.

    The loss of :meth:`quotient.Problem.from_sigma` and :meth:`~quotient.Problem.from_data`
    (``Sigma`` the rectangular diagonal target in the singular frame); only runs of this loss can
    be saved to files.

    Parameters
    ----------
    target : ndarray, shape (d_h, d_0)
        ``Sigma``, the target the end-to-end map is compared with (read-only once stored).
    """

    target: np.ndarray

    def value(self, W: np.ndarray) -> np.ndarray:
        """``1/2 ||W - Sigma||_F^2``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape W.shape[:-2]
            The loss of each map.
        """
        return 0.5 * np.sum((W - self.target) ** 2, axis=(-2, -1))

    def gradient(self, W: np.ndarray) -> np.ndarray:
        """``W - Sigma``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape of W
            The residuals, the gradient of the loss.
        """
        return W - self.target

    def hvp(self, W: np.ndarray, dW: np.ndarray) -> np.ndarray:
        """``dW``: the Hessian is the identity.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps (the Hessian does not depend on them).
        dW : ndarray, shape (..., d_h, d_0)
            Directions.

        Returns
        -------
        ndarray, shape of dW
            ``dW`` itself.
        """
        return dW


def _matrix(name, value, shape=None) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers; got dtype {array.dtype}")
    array = np.array(array, dtype=np.float64)
    if array.ndim != 2 or (shape is not None and array.shape != shape):
        expected = shape if shape is not None else "a 2-D array"
        raise ValueError(f"{name} must have shape {expected}; got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class CovarianceSquareLoss:
    """Square loss with a non-identity input covariance, without whitening.

    ``l(W) = 1/2 tr(W S_xx W^T) - tr(W S_yx^T) + c``, gradient ``W S_xx - S_yx``, Hessian
    ``dW -> dW S_xx``. With ``S_xx = X X^T``, ``S_yx = Y X^T`` and ``c = 1/2 ||Y||_F^2`` it equals
    ``1/2 ||Y - W X||_F^2`` (:meth:`from_data`).

    The flow is not the whitened flow seen in other coordinates: the minimum is the same
    (``W* = S_yx S_xx^{-1}`` when ``S_xx`` is invertible and the widths allow it), the path to it
    is not (math-spec 1.2).

    Parameters
    ----------
    input_covariance : array_like, shape (d_0, d_0)
        ``S_xx``, symmetric positive semidefinite (``X X^T`` of the inputs).
    cross_covariance : array_like, shape (d_h, d_0)
        ``S_yx`` (``Y X^T``).
    constant : float
        ``c``, the value at ``W = 0`` (``1/2 ||Y||_F^2`` for the data loss).

    Raises
    ------
    TypeError
        If a matrix does not hold real numbers.
    ValueError
        If ``input_covariance`` is not symmetric positive semidefinite, the shapes do not match,
        or an entry is not finite.
    """

    input_covariance: np.ndarray
    cross_covariance: np.ndarray
    constant: float = 0.0

    def __post_init__(self):
        Sxx = _matrix("input_covariance", self.input_covariance)
        if Sxx.shape[0] != Sxx.shape[1] or not np.allclose(Sxx, Sxx.T, rtol=1e-12, atol=1e-12 * np.abs(Sxx).max()):
            raise ValueError(f"input_covariance must be a symmetric (d_0, d_0) matrix; got shape {Sxx.shape}")
        if np.linalg.eigvalsh(Sxx)[0] < -1e-10 * max(np.abs(Sxx).max(), 1.0):
            raise ValueError("input_covariance must be positive semidefinite (a covariance X X^T)")
        Syx = _matrix("cross_covariance", self.cross_covariance)
        if Syx.shape[1] != Sxx.shape[0]:
            raise ValueError(
                f"cross_covariance must have {Sxx.shape[0]} columns (d_0, as input_covariance); got shape {Syx.shape}"
            )
        object.__setattr__(self, "input_covariance", Sxx)
        object.__setattr__(self, "cross_covariance", Syx)
        object.__setattr__(self, "constant", float(self.constant))

    @classmethod
    def from_data(cls, X, Y) -> CovarianceSquareLoss:
        """The loss ``1/2 ||Y - W X||_F^2`` of data ``(X, Y)``, unwhitened.

        Parameters
        ----------
        X : array_like, shape (d_0, n)
            Inputs, one sample per column.
        Y : array_like, shape (d_h, n)
            Targets, one sample per column.

        Returns
        -------
        CovarianceSquareLoss
            With ``S_xx = X X^T``, ``S_yx = Y X^T`` and ``c = 1/2 ||Y||_F^2``.

        Raises
        ------
        TypeError
            If ``X`` or ``Y`` does not hold real numbers.
        ValueError
            If they are not matrices, are not finite, or their sample counts differ.
        """
        X, Y = _matrix("X", X), _matrix("Y", Y)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(f"X and Y must have the same number of samples (columns); got {X.shape[1]} and {Y.shape[1]}")
        return cls(X @ X.T, Y @ X.T, 0.5 * float(np.sum(Y**2)))

    @property
    def shape(self) -> tuple[int, int]:
        """``(d_h, d_0)``, the shape of the end-to-end map."""
        return self.cross_covariance.shape

    def value(self, W):
        """``1/2 tr(W S_xx W^T) - tr(W S_yx^T) + c``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape W.shape[:-2]
            The loss of each map.
        """
        return (
            0.5 * np.sum((W @ self.input_covariance) * W, axis=(-2, -1))
            - np.sum(W * self.cross_covariance, axis=(-2, -1))
            + self.constant
        )

    def gradient(self, W):
        """``W S_xx - S_yx``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape of W
            The gradient of the loss at each map.
        """
        return W @ self.input_covariance - self.cross_covariance

    def hvp(self, W, dW):
        """``dW S_xx``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.
        dW : ndarray, shape (..., d_h, d_0)
            Directions, broadcast against ``W``.

        Returns
        -------
        ndarray, shape of dW
            The Hessian of the loss at ``W`` applied to ``dW``.
        """
        return dW @ self.input_covariance


@dataclass(frozen=True, eq=False)
class PseudoHuberLoss:
    """Pseudo-Huber loss of the residual, a smooth convex Huber loss.

    ``l(W) = sum_{ab} delta^2 (sqrt(1 + (R_ab / delta)^2) - 1)``, ``R = W - target``: quadratic
    (``R^2 / 2``) for small residuals, linear (``delta |R|``) for large ones. Gradient
    ``R / sqrt(1 + (R/delta)^2)``, Hessian ``dW -> dW (1 + (R/delta)^2)^{-3/2}`` (entrywise).

    Parameters
    ----------
    target : array_like, shape (d_h, d_0)
        The end-to-end map the residual ``R = W - target`` is measured from.
    delta : float
        Transition scale, positive: residuals well below it are penalised quadratically, well
        above it linearly.

    Raises
    ------
    TypeError
        If ``target`` does not hold real numbers.
    ValueError
        If ``target`` is not a finite matrix or ``delta`` is not a positive finite number.
    """

    target: np.ndarray
    delta: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "target", _matrix("target", self.target))
        if not np.isscalar(self.delta) or not np.isfinite(self.delta) or self.delta <= 0:
            raise ValueError(f"delta must be a positive finite number; got {self.delta!r}")
        object.__setattr__(self, "delta", float(self.delta))

    @property
    def shape(self) -> tuple[int, int]:
        """``(d_h, d_0)``, the shape of the end-to-end map."""
        return self.target.shape

    def value(self, W):
        """``sum_ab delta^2 (sqrt(1 + (R_ab / delta)^2) - 1)``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape W.shape[:-2]
            The loss of each map.
        """
        R = W - self.target
        # delta^2 (sqrt(1 + x) - 1) = R^2 / (sqrt(1 + x) + 1), x = (R / delta)^2: no cancellation at small R
        return np.sum(R**2 / (np.sqrt(1.0 + (R / self.delta) ** 2) + 1.0), axis=(-2, -1))

    def gradient(self, W):
        """``R / sqrt(1 + (R / delta)^2)``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape of W
            The gradient of the loss at each map.
        """
        R = W - self.target
        return R / np.sqrt(1.0 + (R / self.delta) ** 2)

    def hvp(self, W, dW):
        """``dW (1 + (R / delta)^2)^{-3/2}``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.
        dW : ndarray, shape (..., d_h, d_0)
            Directions, broadcast against ``W``.

        Returns
        -------
        ndarray, shape of dW
            The Hessian of the loss at ``W`` applied to ``dW``.
        """
        ratio = (W - self.target) / self.delta
        return dW * (1.0 + ratio**2) ** -1.5


@dataclass(frozen=True, eq=False)
class LogisticLoss:
    """Logistic (softplus) loss of the network's outputs: a smooth convex classification loss.

    ``l(W) = sum_{a, n} log(1 + exp(-Y_an (W X)_an))`` for inputs ``X`` ``(d_0, n)`` and labels
    ``Y`` ``(d_h, n)`` (``+-1``, or any real margins). With ``Z = Y * (W X)``:
    gradient ``-(Y * sigmoid(-Z)) X^T``, Hessian ``dW -> (Y^2 sigmoid(Z) sigmoid(-Z) * (dW X)) X^T``.
    On separable data it has no minimiser (``||W|| -> infinity`` along the flow).

    Parameters
    ----------
    inputs : array_like, shape (d_0, n)
        ``X``, one sample per column.
    labels : array_like, shape (d_h, n)
        ``Y``: ``+-1`` labels, or real margins, one sample per column.

    Raises
    ------
    TypeError
        If ``inputs`` or ``labels`` does not hold real numbers.
    ValueError
        If they are not finite matrices or their sample counts differ.
    """

    inputs: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        X, Y = _matrix("inputs", self.inputs), _matrix("labels", self.labels)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(
                f"inputs and labels must have the same number of samples (columns); got {X.shape[1]} and {Y.shape[1]}"
            )
        object.__setattr__(self, "inputs", X)
        object.__setattr__(self, "labels", Y)

    @property
    def shape(self) -> tuple[int, int]:
        """``(d_h, d_0)``, the shape of the end-to-end map."""
        return (self.labels.shape[0], self.inputs.shape[0])

    def value(self, W):
        """``sum_{a, n} log(1 + exp(-Y_an (W X)_an))``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape W.shape[:-2]
            The loss of each map.
        """
        margins = self.labels * (W @ self.inputs)
        return np.sum(np.logaddexp(0.0, -margins), axis=(-2, -1))

    def gradient(self, W):
        """``-(Y * sigmoid(-Z)) X^T, Z = Y * (W X)``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.

        Returns
        -------
        ndarray, shape of W
            The gradient of the loss at each map.
        """
        margins = self.labels * (W @ self.inputs)
        return -(self.labels * expit(-margins)) @ self.inputs.T

    def hvp(self, W, dW):
        """``(Y^2 sigmoid(Z) sigmoid(-Z) * (dW X)) X^T``.

        Parameters
        ----------
        W : ndarray, shape (..., d_h, d_0)
            End-to-end maps.
        dW : ndarray, shape (..., d_h, d_0)
            Directions, broadcast against ``W``.

        Returns
        -------
        ndarray, shape of dW
            The Hessian of the loss at ``W`` applied to ``dW``.
        """
        margins = self.labels * (W @ self.inputs)
        curvature = self.labels**2 * expit(margins) * expit(-margins)
        return (curvature * (dW @ self.inputs)) @ self.inputs.T
