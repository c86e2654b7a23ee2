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
    """``sum_i ||W_i||_F^2`` over the layers (or any matrices), batched over their leading axes."""
    return sum(np.sum(layer**2, axis=(-2, -1)) for layer in point)


def layer_norms(point) -> np.ndarray:
    return np.array([np.linalg.norm(layer, 2) for layer in point])


def readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.flags.writeable = False
    return array


def as_generator(rng) -> np.random.Generator:
    """``rng`` as a Generator: ``None`` (fresh entropy), a seed (an integer >= 0) or a Generator."""
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
    """``W_i = O_i diag(strengths[i-1]) O_{i-1}^T`` for frames ``O_0..O_h`` of shape ``(d_i, k)``."""
    return tuple(frames[i] @ (strengths[i - 1][:, None] * frames[i - 1].T) for i in range(1, len(frames)))


def is_batch(point) -> bool:
    """Whether a point-like tuple carries one leading batch axis (3-D layers)."""
    return isinstance(point, (tuple, list)) and len(point) > 0 and np.ndim(point[0]) == 3


def require_square_loss(problem) -> None:
    """Critical values, fibers and the classification are those of the square loss."""
    if getattr(problem, "sigma", None) is None:
        raise ValueError(
            f"{problem!r} has a general loss of the end-to-end map; critical values, canonical points, "
            "the classification and fibers need the square loss with a target Sigma "
            "(Problem.from_sigma or Problem.from_data)"
        )


def check_tolerance(value, name: str = "tol", upper: float = 1.0) -> float:
    """A tolerance must be a finite number in ``(0, upper)``: NaN or a negative one would turn
    every comparison into a wrong answer, not an error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < float(value) < upper):
        raise ValueError(f"{name} must be a finite number in (0, {upper:g}); got {value!r}")
    return float(value)


def act_unchecked(point, g):
    """``W_i -> G_i W_i G_{i-1}^{-1}`` for checked inputs; batches of points broadcast."""
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


def haar_orthogonal(d: int, generator: np.random.Generator) -> np.ndarray:
    # QR of a Gaussian matrix with the signs of R's diagonal moved into Q is Haar on O(d)
    # (Mezzadri 2007).
    Q, R = np.linalg.qr(generator.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))
