"""The quotient map and its differential (quotient/projection.py)."""

import numpy as np
import pytest

import quotient as q


# ------------------------------------------------------------------------------- quotient map
def test_quotient_map_is_gl_invariant_and_labels_the_level_set():
    widths = (3, 4, 4, 2)
    point = q.init.small_random(widths, 1.0, rng=0)
    W, C = q.quotient_map(point)
    np.testing.assert_array_equal(W, q.end_to_end(point))
    for a, b in zip(C, q.conserved_quantities(point)):
        np.testing.assert_array_equal(a, b)
    moved_W, _ = q.quotient_map(q.act(point, q.random_gl(widths, rng=1)))
    np.testing.assert_allclose(moved_W, W, atol=1e-12)
    R = q.random_orthogonal(widths, rng=2)
    _, moved_C = q.quotient_map(q.act(point, R))
    for a, b, G in zip(moved_C, C, R):  # C_i -> R_i C_i R_i^T
        np.testing.assert_allclose(a, G @ b @ G.T, atol=1e-12)
    batch = tuple(np.stack([layer, 2 * layer]) for layer in point)
    assert q.quotient_map(batch)[0].shape == (2, 2, 3)


def test_pushforward_is_the_derivative_of_the_end_to_end_map_and_kills_vertical_vectors():
    widths = (3, 4, 2, 5)
    rng = np.random.default_rng(1)
    point = q.init.small_random(widths, 1.0, rng=rng)
    tangent = q.init.small_random(widths, 1.0, rng=rng)
    eps = 1e-6
    plus = q.end_to_end(tuple(W + eps * V for W, V in zip(point, tangent)))
    minus = q.end_to_end(tuple(W - eps * V for W, V in zip(point, tangent)))
    np.testing.assert_allclose(q.pushforward(point, tangent), (plus - minus) / (2 * eps), atol=1e-8)
    xi = tuple(rng.standard_normal((d, d)) for d in widths[1:-1])
    assert np.abs(q.pushforward(point, q.vertical_vector(point, xi))).max() < 1e-13


def test_pullback_is_the_adjoint_of_the_pushforward_and_pulls_back_the_gradient():
    widths = (3, 4, 2, 5)
    rng = np.random.default_rng(3)
    point = q.act(q.init.small_random(widths, 1.0, rng=rng), q.random_gl(widths, rng=4, spread=2.0))  # far from balanced
    tangent = q.init.small_random(widths, 1.0, rng=rng)
    Y = rng.standard_normal((5, 3))
    pulled = q.pullback(point, Y)
    inner = sum(np.sum(P * V) for P, V in zip(pulled, tangent))
    assert inner == pytest.approx(np.sum(Y * q.pushforward(point, tangent)), rel=1e-12)
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], widths)
    gradient = problem.gradient(point)
    for a, b in zip(q.pullback(point, q.end_to_end(point) - problem.target), gradient):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    with pytest.raises(ValueError, match=r"end_to_end_covector must have shape \(d_h, d_0\) = \(5, 3\)"):
        q.pullback(point, Y.T)
