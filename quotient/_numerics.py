"""Shared numerics and argument validation of the package (documented-internal API).

Helpers that several modules need and that belong to no single mathematical object: norms of
layer tuples, read-only arrays, the random generator check, the square-loss check, tolerance
validation. Every module imports them from here under their public names; none is exported at the
top level of ``quotient``.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "act_unchecked",
    "as_generator",
    "chain_point",
    "check_tolerance",
    "haar_orthogonal",
    "is_batch",
    "layer_norms",
    "readonly",
    "require_square_loss",
    "squared_norm",
]


def squared_norm(point) -> np.ndarray:
    """Squared Euclidean norm of a layer tuple, ``sum_i ||W_i||_F^2``, batched over leading axes.

    Parameters
    ----------
    point : sequence of ndarray
        Layers ``W_i`` of shape ``(..., d_i, d_{i-1})`` (a point, a batch of points, or any tuple
        of matrices such as a gradient or a group element).

    Returns
    -------
    ndarray or float
        ``sum_i ||W_i||_F^2``, of the batch shape ``(...)`` (a scalar for one point).
    """
    return sum(np.sum(layer**2, axis=(-2, -1)) for layer in point)


def layer_norms(point) -> np.ndarray:
    """Spectral norms ``||W_i||_2`` of the layers of one point.

    Parameters
    ----------
    point : sequence of ndarray
        Layers ``W_i`` of shape ``(d_i, d_{i-1})`` (no batch axis).

    Returns
    -------
    ndarray, shape (h,)
        ``||W_1||_2, ..., ||W_h||_2`` (largest singular values).
    """
    return np.array([np.linalg.norm(layer, 2) for layer in point])


def readonly(array: np.ndarray) -> np.ndarray:
    """A read-only float64 copy of an array (the arrays held by frozen result objects).

    Parameters
    ----------
    array : array_like
        Any array; it is copied, never modified.

    Returns
    -------
    ndarray
        ``float64`` copy with ``flags.writeable = False``.
    """
    array = np.array(array, dtype=np.float64)
    array.flags.writeable = False
    return array


def as_generator(rng) -> np.random.Generator:
    """``rng`` as a ``numpy.random.Generator``: the package's one check of a random source.

    Parameters
    ----------
    rng : numpy.random.Generator or int or SeedSequence or BitGenerator or None
        A Generator (returned as is), a seed (an integer >= 0), a ``SeedSequence`` or
        ``BitGenerator``, or ``None`` for fresh entropy.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    TypeError
        If ``rng`` is of none of these types (booleans included).
    ValueError
        If ``rng`` is a negative integer.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(rng)
    if isinstance(rng, bool) or not isinstance(rng, (numbers.Integral, np.integer)):
        raise TypeError(f"rng must be None, an integer seed >= 0 or a numpy Generator; got {rng!r}")
    if rng < 0:
        raise ValueError(f"rng: a seed must be an integer >= 0; got {rng!r}")
    return np.random.default_rng(int(rng))


def chain_point(frames, strengths):
    """The point ``W_i = O_i diag(s_i) O_{i-1}^T`` of a chain of frames and strengths.

    Parameters
    ----------
    frames : sequence of ndarray
        ``O_0, ..., O_h``, ``O_i`` of shape ``(d_i, k)`` (orthonormal columns in every use).
    strengths : sequence of ndarray
        ``s_1, ..., s_h``, each of shape ``(k,)``: the singular values of layer ``i`` along the
        ``k`` modes of the chain.

    Returns
    -------
    tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, of rank at most ``k``.
    """
    return tuple(frames[i] @ (strengths[i - 1][:, None] * frames[i - 1].T) for i in range(1, len(frames)))


def is_batch(point) -> bool:
    """Whether a point-like tuple carries one leading batch axis (3-D layers).

    Parameters
    ----------
    point : object
        A point ``(W_1, ..., W_h)``, a batch of points (layers ``(n, d_i, d_{i-1})``), or anything.

    Returns
    -------
    bool
        True for a non-empty tuple or list whose first layer has three axes.
    """
    return isinstance(point, (tuple, list)) and len(point) > 0 and np.ndim(point[0]) == 3


def require_square_loss(problem) -> None:
    """Raise unless ``problem`` has the square loss with a target ``Sigma``.

    Critical values, canonical points, the classification, fibers and the critical graph are
    those of the square loss ``1/2 ||Sigma - W||_F^2``; a general loss of the end-to-end map has
    no finite list of critical values.

    Parameters
    ----------
    problem : Problem
        The learning problem (anything with a ``sigma`` attribute, ``None`` for a general loss).

    Raises
    ------
    ValueError
        If ``problem.sigma`` is ``None`` or missing.
    """
    if getattr(problem, "sigma", None) is None:
        raise ValueError(
            f"{problem!r} has a general loss of the end-to-end map; critical values, canonical points, "
            "the classification and fibers need the square loss with a target Sigma "
            "(Problem.from_sigma or Problem.from_data)"
        )


def check_tolerance(value, name: str = "rtol", upper: float = 1.0) -> float:
    """A relative tolerance, checked: a finite number in ``(0, upper)``.

    NaN or a negative tolerance would turn every comparison into a wrong answer, not an error.

    Parameters
    ----------
    value : float
        The tolerance given.
    name : str
        The argument's name in the error message (``"rtol"``, ``"gradient_rtol"``, ...).
    upper : float
        Exclusive upper bound, default 1 (a relative tolerance of 1 or more decides nothing).

    Returns
    -------
    float
        ``float(value)``.

    Raises
    ------
    ValueError
        If ``value`` is not a real number (booleans included) strictly between 0 and ``upper``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < float(value) < upper):
        raise ValueError(f"{name} must be a finite number in (0, {upper:g}); got {value!r}")
    return float(value)


def act_unchecked(point, g):
    """The GL action ``W_i -> G_i W_i G_{i-1}^{-1}`` (``G_0 = G_h = I``) for checked inputs.

    The arithmetic shared by every group's ``act`` (:func:`quotient.act` validates and calls it);
    ``W G^{-1}`` is computed by a solve, not an inverse.

    Parameters
    ----------
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(..., d_i, d_{i-1})``; batches broadcast.
    g : sequence of ndarray
        ``(G_1, ..., G_{h-1})``, ``G_i`` invertible of shape ``(d_i, d_i)``.

    Returns
    -------
    tuple of ndarray
        ``g . W``, same shapes as ``point``.
    """
    h = len(point)
    full = (None,) + tuple(g) + (None,)
    layers = []
    for i in range(1, h + 1):
        W = point[i - 1]
        if full[i - 1] is not None:  # W G^{-1} = (G^{-T} W^T)^T, a solve rather than an inverse
            W = np.swapaxes(np.linalg.solve(full[i - 1].T, np.swapaxes(W, -1, -2)), -1, -2)
        if full[i] is not None:
            W = full[i] @ W
        layers.append(W)
    return tuple(layers)


def haar_orthogonal(d: int, generator: np.random.Generator, columns: int | None = None) -> np.ndarray:
    """A Haar-distributed random orthogonal matrix, or its first ``columns`` columns.

    QR of a Gaussian matrix with the signs of ``R``'s diagonal moved into ``Q`` is Haar on
    ``O(d)`` (Mezzadri 2007), and on the Stiefel manifold of orthonormal ``k``-frames of ``R^d``
    for a ``(d, k)`` Gaussian matrix.

    Parameters
    ----------
    d : int
        Number of rows.
    generator : numpy.random.Generator
        Source of randomness (``d * columns`` standard normal draws).
    columns : int, optional
        Number of columns ``k <= d``; ``None`` for a square matrix.

    Returns
    -------
    ndarray, shape (d, columns) or (d, d)
        Orthonormal columns.
    """
    Q, R = np.linalg.qr(generator.standard_normal((d, d if columns is None else columns)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)
