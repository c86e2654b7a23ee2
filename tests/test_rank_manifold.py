"""The rank-k manifold with the balanced-lift metric (Bah, Rauhut, Terstiege & Westdickenberg 2022)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quotient as q
from quotient.rank_manifold import RankManifold


def _jacobian(point):
    """The matrix of ``d pi`` at ``point``: ``(d_h d_0, N)``, column ``j`` the push forward of unit vector ``j``."""
    widths = q.widths_of(point)
    N = q.network.n_params(widths)
    return np.stack([q.pushforward(point, q.from_vector(e, widths)).ravel() for e in np.eye(N)], axis=1)


def _balanced_point(widths, rank, rng):
    """A balanced point of end-to-end rank ``rank``, moved off the canonical diagonal by an O(d) element."""
    manifold = RankManifold((widths[-1], widths[0]), rank, len(widths) - 1)
    W = manifold.random_point(rng)
    point = q.act(q.orbit.balanced_lift(W, widths), q.random_orthogonal(widths, rng=rng), group="orthogonal")
    return manifold, point, q.end_to_end(point)


def gl_of_condition(widths, condition, rng):
    """``G_i = Q diag(c^{-1/2} .. c^{1/2}) Q'`` with Haar ``Q``, ``Q'``: condition number exactly ``c``."""
    Q = q.random_orthogonal(widths, rng=rng)
    Qp = q.random_orthogonal(widths, rng=rng)
    return tuple(A @ np.diag(np.logspace(-0.5, 0.5, A.shape[0]) ** np.log10(condition)) @ B for A, B in zip(Q, Qp))


CASES = [((3, 4, 3), 3), ((3, 3, 3, 3), 3), ((3, 3, 3, 3), 1), ((4, 2, 5, 3), 2), ((2, 3, 3, 3, 4), 2), ((3, 5, 2), 2)]


@pytest.mark.parametrize(("widths", "rank"), CASES)
def test_riemannian_gradient_is_the_pushforward_of_the_layer_gradient_at_balanced_points(widths, rank):
    rng = np.random.default_rng(sum(widths) + rank)
    manifold, point, W = _balanced_point(widths, rank, rng)
    assert np.abs(np.concatenate([C.ravel() for C in q.conserved_quantities(point)])).max() < 1e-12
    G = rng.standard_normal(W.shape)
    pushed = q.pushforward(point, q.pullback(point, G))  # the layer gradient of <G, W(x)>, pushed forward
    gradient = manifold.riemannian_gradient(G, W)
    np.testing.assert_allclose(gradient, pushed, atol=1e-11 * (1 + np.abs(pushed).max()))
    assert manifold.is_tangent(gradient, W, atol=1e-11)
    # the square loss: minus the reduced velocity is the push forward of the layer gradient
    problem = q.Problem.from_sigma(np.linspace(3.0, 1.0, min(widths[0], widths[-1])), widths)
    pushed = q.pushforward(point, problem.gradient(point))
    np.testing.assert_allclose(manifold.riemannian_gradient(W - problem.target, W), pushed, atol=1e-11 * (1 + np.abs(pushed).max()))
    np.testing.assert_allclose(-q.reduced_velocity(problem, W, rank=rank), pushed, atol=1e-11 * (1 + np.abs(pushed).max()))


@pytest.mark.parametrize(("widths", "rank"), CASES)
def test_metric_is_the_norm_of_the_least_norm_lift_at_balanced_points(widths, rank):
    # second formulation: the least-norm V with d pi(V) = Z, by least squares on the Jacobian
    rng = np.random.default_rng(10 + sum(widths) + rank)
    manifold, point, W = _balanced_point(widths, rank, rng)
    J = _jacobian(point)
    assert np.linalg.matrix_rank(J, tol=1e-9 * np.abs(J).max()) == manifold.dim  # d pi is onto T_W M_k
    Z1, Z2 = (manifold.to_tangent(rng.standard_normal(W.shape), W) for _ in range(2))
    V1, V2 = (np.linalg.lstsq(J, Z.ravel(), rcond=1e-10)[0] for Z in (Z1, Z2))
    np.testing.assert_allclose(J @ V1, Z1.ravel(), atol=1e-10)
    expected = V1 @ V2
    assert abs(manifold.inner_product(Z1, Z2, W) - expected) <= 1e-9 * (1 + abs(expected))
    assert abs(manifold.squared_norm(Z1, W) - V1 @ V1) <= 1e-9 * (V1 @ V1)
    # the operator itself: d pi d pi^* = A_W
    Y = rng.standard_normal(W.shape)
    np.testing.assert_allclose(manifold.metric_operator(Y, W), (J @ J.T @ Y.ravel()).reshape(W.shape), atol=1e-11)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    depth=st.integers(1, 5),
    data=st.data(),
)
def test_gradient_is_defined_by_the_metric(shape, depth, data):
    rank = data.draw(st.integers(0, min(shape)))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    manifold = RankManifold(shape, rank, depth)
    W = manifold.random_point(rng)
    assert manifold.belongs(W)
    G, Z = rng.standard_normal(shape), manifold.to_tangent(rng.standard_normal(shape), W)
    gradient = manifold.riemannian_gradient(G, W)
    # g(grad f, Z) = <G, Z> on the tangent space, and the inverse operator undoes the operator there
    assert abs(manifold.inner_product(gradient, Z, W) - np.sum(G * Z)) <= 1e-9 * (1 + np.abs(G).sum() * np.abs(Z).sum())
    np.testing.assert_allclose(manifold.metric_operator(manifold.inverse_metric_operator(Z, W), W), Z, atol=1e-9 * (1 + np.abs(Z).max()))
    np.testing.assert_allclose(manifold.to_tangent(Z, W), Z, atol=1e-12 * (1 + np.abs(Z).max()))
    assert manifold.squared_norm(Z, W) >= -1e-12
    if depth == 1:
        np.testing.assert_allclose(gradient, G, atol=1e-12)  # the Frobenius metric on all matrices


def test_reduced_velocity_is_minus_the_riemannian_gradient_and_gl_invariant():
    widths = (3, 5, 3, 3)
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], widths)
    point = q.init.small_random(widths, 1.0, rng=0)
    balanced, _ = q.balance(point)
    W = q.end_to_end(balanced)
    manifold = q.rank_manifold(problem, 3)
    velocity = q.reduced_velocity(problem, W)
    np.testing.assert_allclose(velocity, -manifold.riemannian_gradient(problem.end_to_end_loss.gradient(W), W), atol=1e-15)
    np.testing.assert_allclose(velocity, q.projected_velocity(problem, balanced), atol=1e-11)
    # the metric depends on W only: GL-moved points of condition 1e4 give the same answer
    for seed in range(3):
        g = gl_of_condition(widths, 1e4, np.random.default_rng(seed))
        assert all(abs(np.linalg.cond(G) / 1e4 - 1) < 1e-6 for G in g)
        moved = q.act(point, g)
        W_moved = q.end_to_end(moved)
        np.testing.assert_allclose(q.reduced_velocity(problem, W_moved), velocity, atol=1e-9 * np.abs(velocity).max())
        Z = manifold.to_tangent(np.ones(W.shape), W)
        assert abs(manifold.squared_norm(Z, W_moved) - manifold.squared_norm(Z, W)) < 1e-8 * manifold.squared_norm(Z, W)


def test_rank_manifold_checks_its_arguments():
    with pytest.raises(ValueError, match="shape"):
        RankManifold((3,), 1, 2)
    with pytest.raises(ValueError, match="rank must be at most"):
        RankManifold((3, 2), 3, 2)
    with pytest.raises(ValueError, match="depth"):
        RankManifold((3, 2), 1, 0)
    manifold = RankManifold((3, 2), 1, 3)
    with pytest.raises(ValueError, match=r"base_point must have shape \(3, 2\)"):
        manifold.riemannian_gradient(np.ones((3, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        manifold.metric_operator(np.full((3, 2), np.nan), np.ones((3, 2)))
    with pytest.raises(TypeError, match="real numbers"):
        manifold.to_tangent(np.array([["a"] * 2] * 3), np.ones((3, 2)))
    assert manifold.dim == 1 * (3 + 2 - 1)
    assert not manifold.belongs(np.eye(3, 2)) and manifold.belongs(np.outer([1.0, 2, 3], [1.0, -1]))
    with pytest.raises(TypeError, match="problem"):
        q.rank_manifold("problem", 1)
