"""The loss, its gradient and Hessian, and the reduction of data to Sigma (quotient/problem.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import points, problems, seeds, widths

import quotient as q


def _directional(problem, point, direction, eps=1e-6):
    """Central difference of the loss along a direction."""
    plus = tuple(W + eps * D for W, D in zip(point, direction))
    minus = tuple(W - eps * D for W, D in zip(point, direction))
    return (problem.loss(plus) - problem.loss(minus)) / (2 * eps)


@given(problems(), seeds)
def test_gradient_matches_finite_differences(problem, seed):
    point = points(problem, seed, scale=0.7)
    direction = points(problem, seed + 1)
    gradient = problem.gradient(point)
    analytic = float(q.to_vector(gradient) @ q.to_vector(direction))
    numeric = _directional(problem, point, direction)
    assert abs(analytic - numeric) <= 1e-6 * max(1.0, abs(analytic))


def test_gradient_matches_finite_differences_entrywise():
    problem = q.Problem.from_sigma(np.random.default_rng(3).standard_normal((2, 3)), (3, 4, 5, 2))
    point = q.init.small_random(problem.widths, 0.5, rng=4)
    x = q.to_vector(point)
    numeric = np.array(
        [
            (problem.loss(q.from_vector(x + 1e-6 * e, problem.widths)) - problem.loss(q.from_vector(x - 1e-6 * e, problem.widths)))
            / 2e-6
            for e in np.eye(x.size)
        ]
    )
    assert np.max(np.abs(numeric - q.to_vector(problem.gradient(point)))) < 1e-8


@given(problems(), seeds)
def test_hvp_matches_finite_differences_of_the_gradient(problem, seed):
    point = points(problem, seed, scale=0.7)
    direction = points(problem, seed + 1)
    eps = 1e-6
    plus = q.to_vector(problem.gradient(tuple(W + eps * D for W, D in zip(point, direction))))
    minus = q.to_vector(problem.gradient(tuple(W - eps * D for W, D in zip(point, direction))))
    numeric = (plus - minus) / (2 * eps)
    analytic = q.to_vector(problem.hvp(point, direction))
    assert np.max(np.abs(analytic - numeric)) <= 1e-6 * max(1.0, np.max(np.abs(analytic)))


@given(problems(max_width=4, max_depth=3), seeds)
@settings(max_examples=30)
def test_hessian_is_symmetric_and_agrees_with_hvp(problem, seed):
    point = points(problem, seed, scale=0.7)
    direction = points(problem, seed + 1)
    H = problem.hessian(point)
    assert H.shape == (problem.n_params, problem.n_params)
    assert np.allclose(H, H.T)
    raw = q.to_vector(problem.unchecked_hvp(point, q.from_vector(np.eye(problem.n_params), problem.widths)))
    assert np.max(np.abs(raw - raw.T)) <= 1e-12 * max(1.0, np.max(np.abs(raw)))
    assert np.allclose(H @ q.to_vector(direction), q.to_vector(problem.hvp(point, direction)), atol=1e-12 * max(1, np.abs(H).max()))


def test_hvp_accepts_a_batch_of_directions():
    problem = q.Problem.from_sigma([3.0, 1.0], (2, 3, 2))
    point = q.init.small_random(problem.widths, 1.0, rng=0)
    batch = tuple(np.random.default_rng(1).standard_normal((4,) + W.shape) for W in point)
    out = problem.hvp(point, batch)
    for k in range(4):
        single = problem.hvp(point, tuple(D[k] for D in batch))
        assert all(np.allclose(o[k], s) for o, s in zip(out, single))


@given(problems(), seeds)
def test_adjacency_form_agrees_with_layer_form(problem, seed):
    point = points(problem, seed, scale=0.7)
    A = q.to_adjacency(point)
    gradient = problem.adjacency_gradient(A)
    layers = q.from_adjacency(gradient, problem.widths)  # raises if off the block pattern
    expected = problem.gradient(point)
    scale = max(1.0, max(np.abs(g).max() for g in expected))
    assert all(np.allclose(a, b, atol=1e-12 * scale) for a, b in zip(layers, expected))
    assert np.isclose(problem.adjacency_loss(A), problem.loss(point), rtol=1e-12, atol=1e-12)


def test_adjacency_target_holds_sigma_in_the_corner():
    problem = q.Problem.from_sigma([3.0, 1.0], (2, 4, 3))
    E = problem.adjacency_target()
    assert E.shape == (9, 9)
    assert np.array_equal(E[6:9, 0:2], problem.target)
    assert np.count_nonzero(E) == 2


def test_tc1_worked_example():
    """math-spec TC1: h = 2, W_1 = [[1,0],[0,1],[1,1]], W_2 = [[1,0,1],[0,1,0]], Sigma = diag(3,1)."""
    problem = q.Problem.from_sigma([3.0, 1.0], (2, 3, 2))
    point = (np.array([[1.0, 0], [0, 1], [1, 1]]), np.array([[1.0, 0, 1], [0, 1, 0]]))
    assert np.array_equal(q.end_to_end(point), [[2, 1], [0, 1]])
    assert problem.loss(point) == 1.0
    descent = tuple(-g for g in problem.gradient(point))
    assert np.array_equal(descent[0], [[1, -1], [0, 0], [1, -1]])
    assert np.array_equal(descent[1], [[1, -1, 0], [0, 0, 0]])
    (C,) = q.conserved_quantities(point)
    assert np.array_equal(C, [[0, 0, 0], [0, 0, -1], [0, -1, -1]])


@given(widths(max_depth=3), seeds)
@settings(max_examples=30)
def test_from_data_matches_the_data_loss_up_to_its_constant(shape, seed):
    rng = np.random.default_rng(seed)
    n = shape[0] + 3 + int(rng.integers(0, 5))
    X = rng.standard_normal((shape[0], n)) * rng.uniform(0.5, 2.0, size=(shape[0], 1))
    Y = rng.standard_normal((shape[-1], n))
    problem = q.Problem.from_data(X, Y, shape)
    point = q.init.small_random(shape, 0.8, rng=rng)
    W_data = q.end_to_end(problem.to_data_frame(point))
    data_loss = 0.5 * np.sum((Y - W_data @ X) ** 2)
    assert np.isclose(problem.loss(point) + problem.offset, data_loss, rtol=1e-9, atol=1e-9)
    # from_sigma on the whitened cross-covariance gives the same loss up to the same constant
    eigenvalues, eigenvectors = np.linalg.eigh(X @ X.T)
    whitened = (eigenvectors / np.sqrt(eigenvalues)) @ eigenvectors.T @ X
    reference = q.Problem.from_sigma(Y @ whitened.T, shape)
    assert np.allclose(reference.sigma, problem.sigma, atol=1e-10)
    assert np.isclose(reference.loss(point), problem.loss(point), rtol=1e-9, atol=1e-9)
    # frames round-trip
    back = problem.from_data_frame(problem.to_data_frame(point))
    assert all(np.allclose(a, b, atol=1e-9) for a, b in zip(back, point))


def test_from_sigma_matrix_frames():
    rng = np.random.default_rng(2)
    target = rng.standard_normal((3, 2))
    problem = q.Problem.from_sigma(target, (2, 4, 3))
    assert np.allclose(problem.sigma, np.linalg.svd(target, compute_uv=False))
    point = q.init.small_random(problem.widths, 1.0, rng=3)
    W_data = q.end_to_end(problem.to_data_frame(point))
    assert np.isclose(problem.loss(point), 0.5 * np.sum((target - W_data) ** 2))


def test_problem_arrays_are_read_only():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2))
    with pytest.raises(ValueError):
        problem.target[0, 0] = 5.0


# ------------------------------------------------------------------------------- bad input
def test_singular_input_covariance_is_refused():
    X = np.ones((2, 10))
    with pytest.raises(ValueError, match="X X\\^T is singular"):
        q.Problem.from_data(X, np.ones((1, 10)), (2, 1))


def test_too_few_samples_to_whiten():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_samples = 2"):
        q.Problem.from_data(rng.standard_normal((3, 2)), rng.standard_normal((1, 2)), (3, 1))


@pytest.mark.parametrize(
    "X, Y, message",
    [
        (np.ones((3, 5)), np.ones((1, 5)), r"X must have shape \(2, n_samples\)"),
        (np.ones((2, 5)), np.ones((2, 5)), r"Y must have shape \(1, n_samples\)"),
        (np.eye(2, 5), np.ones((1, 4)), "same number of samples"),
        (np.full((2, 5), np.nan), np.ones((1, 5)), "X contains NaN"),
        (np.eye(2, 5), np.full((1, 5), np.inf), "Y contains NaN or infinite"),
    ],
)
def test_bad_data(X, Y, message):
    with pytest.raises(ValueError, match=message):
        q.Problem.from_data(X, Y, (2, 1))


@pytest.mark.parametrize(
    "sigma, message",
    [
        ([3.0], "m = min\\(d_0, d_h\\) = 2"),
        ([1.0, 3.0], "non-increasing"),
        ([3.0, -1.0], "non-negative"),
        ([3.0, np.nan], "NaN"),
        (np.ones((2, 2)), r"shape \(d_h, d_0\) = \(3, 2\)"),
        (np.ones((2, 2, 2)), "1-D"),
    ],
)
def test_bad_sigma(sigma, message):
    with pytest.raises(ValueError, match=message):
        q.Problem.from_sigma(sigma, (2, 4, 3))


def test_point_of_other_widths_is_refused():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 3, 2))
    with pytest.raises(ValueError, match=r"widths \(2, 4, 2\), but widths \(2, 3, 2\)"):
        problem.gradient(q.init.small_random((2, 4, 2), 1.0, rng=0))
