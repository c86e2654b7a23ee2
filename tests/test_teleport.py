"""Symmetry teleportation: orbit gradients, the bounded parametrisation, and what teleport keeps and gains."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.linalg import expm
from strategies import seeds, widths

import quotient as q
from quotient.symmetry import act, random_orthogonal, vertical_vector
from quotient.teleport import (
    OBJECTIVES,
    TELEPORT_GROUPS,
    _cost_and_gradient,
    _element,
    objective_value,
    orbit_gradient,
    random_element,
    teleport,
)

WIDTHS = (3, 4, 4, 3)


def _inner(a, b) -> float:
    return float(sum(np.sum(x * y) for x, y in zip(a, b)))


def _problem(widths=WIDTHS):
    sigma = np.linspace(3.0, 1.0, min(widths[0], widths[-1]))
    return q.Problem.from_sigma(sigma, widths)


def _conditioned(widths, condition, rng):
    """GL element whose every factor has condition number ``condition`` exactly."""
    rng = np.random.default_rng(rng)
    factors = []
    for Q, R in zip(random_orthogonal(widths, rng), random_orthogonal(widths, rng)):
        d = Q.shape[0]
        factors.append((Q * np.logspace(-0.5, 0.5, d) ** np.log10(condition)) @ R)
    return tuple(factors)


def _algebra(widths, rng):
    return tuple(rng.standard_normal((d, d)) for d in widths[1:-1])


def _objective_squared(problem, point, objective):
    value = objective_value(problem, point, objective)
    return value**2 if objective == "gradient_norm" else value


def _third_derivative(problem, point, v):
    """``D^3 L(point)[v, v, .]`` from the even part of ``grad L(point + s v)``, a polynomial.

    ``L`` has degree ``2h``, so ``(grad L(y + s v) + grad L(y - s v)) / 2 = sum_{m<h} c_{2m} s^{2m}``;
    ``h - 1`` nodes determine ``c_2 .. c_{2h-2}`` exactly, and ``D^3 L[v, v, .] = 2 c_2``.
    """
    h = len(point)
    c0 = q.to_vector(problem.gradient(point))
    nodes = np.arange(1, h) / (h - 1)
    rows = []
    for s in nodes:
        plus = problem.gradient(tuple(W + s * V for W, V in zip(point, v)))
        minus = problem.gradient(tuple(W - s * V for W, V in zip(point, v)))
        rows.append(0.5 * (q.to_vector(plus) + q.to_vector(minus)) - c0)
    vandermonde = nodes[:, None] ** (2 * np.arange(1, h))[None, :]
    coefficients = np.linalg.solve(vandermonde, np.array(rows))
    return q.from_vector(2 * coefficients[0], problem.widths)


# ---------------------------------------------------------------------------------- orbit gradient
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("condition", [1.0, 30.0])
def test_orbit_gradient_matches_finite_differences(objective, condition):
    rng = np.random.default_rng(1)
    problem = _problem()
    point = act(q.init.small_random(WIDTHS, 0.7, rng=rng), _conditioned(WIDTHS, condition, rng))
    psi = orbit_gradient(problem, point, objective)
    for _ in range(3):
        xi = _algebra(WIDTHS, rng)
        t = 1e-5
        values = [
            _objective_squared(problem, act(point, tuple(expm(s * X) for X in xi)), objective) for s in (t, -t)
        ]
        derivative = (values[0] - values[1]) / (2 * t)
        assert _inner(xi, psi) == pytest.approx(derivative, rel=1e-6, abs=1e-8 * abs(values[0]))


@settings(max_examples=12, deadline=None)
@given(shape=widths(min_depth=2, max_depth=4, max_width=4), seed=seeds, objective=st.sampled_from(OBJECTIVES))
def test_orbit_gradient_property(shape, seed, objective):
    """Finite differences of the objective along exp(t xi) on random widths, points and xi."""
    rng = np.random.default_rng(seed)
    problem = q.Problem.from_sigma(rng.standard_normal((shape[-1], shape[0])), shape)
    point = act(q.init.small_random(shape, 0.8, rng=rng), _conditioned(shape, 10.0, rng))
    if objective == "sharpness":
        eigenvalues = np.linalg.eigvalsh(problem.hessian(point))
        assume(eigenvalues[-1] - eigenvalues[-2] > 1e-2 * abs(eigenvalues[-1]))
    xi = _algebra(shape, rng)
    t = 1e-5
    values = [_objective_squared(problem, act(point, tuple(expm(s * X) for X in xi)), objective) for s in (t, -t)]
    derivative = (values[0] - values[1]) / (2 * t)
    psi = orbit_gradient(problem, point, objective)
    assert _inner(xi, psi) == pytest.approx(derivative, rel=1e-5, abs=1e-7 * max(abs(values[0]), 1e-300))


def test_orbit_gradient_of_gradient_norm_is_hessian_contraction():
    """d ||grad L||^2 = 2 <H grad L, d(x_g)>, with d(x_g) the infinitesimal action."""
    rng = np.random.default_rng(2)
    problem = _problem()
    point = act(q.init.small_random(WIDTHS, 0.7, rng=rng), _conditioned(WIDTHS, 100.0, rng))
    psi = orbit_gradient(problem, point, "gradient_norm")
    direction = problem.hvp(point, problem.gradient(point))
    for _ in range(3):
        xi = _algebra(WIDTHS, rng)
        expected = 2 * _inner(direction, vertical_vector(point, xi))
        assert _inner(xi, psi) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("widths", [(2, 3, 2), WIDTHS, (2, 3, 3, 3, 2)])
def test_orbit_gradient_of_sharpness_is_third_derivative_contraction(widths):
    """d lambda_max = D^3 L[v, v, d(x_g)] (exact polynomial fit), equal to -2 lambda <xi, mu(v)>."""
    rng = np.random.default_rng(3)
    problem = _problem(widths)
    point = act(q.init.small_random(widths, 0.7, rng=rng), _conditioned(widths, 10.0, rng))
    psi = orbit_gradient(problem, point, "sharpness")
    eigenvalues, eigenvectors = np.linalg.eigh(problem.hessian(point))
    assert eigenvalues[-1] - eigenvalues[-2] > 1e-3 * eigenvalues[-1]  # simple: differentiable
    third = _third_derivative(problem, point, q.from_vector(eigenvectors[:, -1], widths))
    for _ in range(3):
        xi = _algebra(widths, rng)
        assert _inner(xi, psi) == pytest.approx(_inner(third, vertical_vector(point, xi)), rel=1e-8)


def test_orbit_gradient_is_symmetric():
    """Skew xi (orthogonal directions) leave both objectives unchanged: Psi is symmetric."""
    problem = _problem()
    point = q.init.small_random(WIDTHS, 0.7, rng=4)
    for objective in OBJECTIVES:
        for P in orbit_gradient(problem, point, objective):
            np.testing.assert_allclose(P, P.T, atol=1e-14 * np.abs(P).max())


def test_gradient_transforms_by_inverse_transpose():
    """grad L(g . x) = g^{-T} . grad L(x), the identity behind the gradient norm on the orbit."""
    rng = np.random.default_rng(5)
    problem = _problem()
    point = q.init.small_random(WIDTHS, 0.7, rng=rng)
    g = _conditioned(WIDTHS, 1e3, rng)
    inverse_transpose = tuple(np.linalg.inv(G).T for G in g)
    expected = act(problem.gradient(point), inverse_transpose)
    for got, want in zip(problem.gradient(act(point, g)), expected):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_orthogonal_factor_changes_no_objective(objective):
    """phi(Q P . x) = phi(P . x): optimising over SPD products loses nothing."""
    rng = np.random.default_rng(6)
    problem = _problem()
    point = q.init.small_random(WIDTHS, 0.7, rng=rng)
    P = tuple(G.T @ G for G in _conditioned(WIDTHS, 10.0, rng))
    QP = tuple(Q @ G for Q, G in zip(random_orthogonal(WIDTHS, rng), P))
    a = objective_value(problem, act(point, P), objective)
    b = objective_value(problem, act(point, QP), objective)
    assert a == pytest.approx(b, rel=1e-10)


def test_sharpness_objective_is_quotient_sharpness():
    problem = _problem()
    point = q.init.small_random(WIDTHS, 0.7, rng=7)
    assert objective_value(problem, point, "sharpness") == pytest.approx(q.sharpness(problem, point), rel=1e-12)


# ---------------------------------------------------------------------------------- parametrisation
@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("group", TELEPORT_GROUPS)
def test_cost_gradient_in_coordinates_matches_finite_differences(objective, group):
    """The Euclidean gradient in A (Daleckii-Krein through P = exp(size tanh(A / size)))."""
    rng = np.random.default_rng(8)
    problem = _problem()
    point = q.init.small_random(WIDTHS, 0.7, rng=rng)
    size = 0.8
    if group == "gl":
        # a tied pair of eigenvalues, and eigenvalues well into the saturation of tanh
        Q = random_orthogonal(WIDTHS, rng)
        spectra = ([0.3, 0.3, -1.0, 2.0], [0.1, -0.5, 0.9, 1.3])
        coordinates = [(U * np.array(spectrum)) @ U.T for U, spectrum in zip(Q, spectra)]
    else:
        coordinates = [np.array([0.3, 0.3, -1.0, 2.0]), np.array([0.1, -0.5, 0.9, 1.3])]
    _, gradient = _cost_and_gradient(problem, point, objective, 1.0, 1.0, coordinates, group, size)
    for _ in range(3):
        direction = [rng.standard_normal(A.shape) for A in coordinates]
        if group == "gl":
            direction = [D + D.T for D in direction]
        t = 1e-5
        values = []
        for s in (t, -t):
            moved = [A + s * D for A, D in zip(coordinates, direction)]
            values.append(_cost_and_gradient(problem, point, objective, 1.0, 1.0, moved, group, size)[0])
        derivative = (values[0] - values[1]) / (2 * t)
        assert _inner(direction, gradient) == pytest.approx(derivative, rel=1e-6)


def test_parametrisation_stays_within_size():
    size = 0.7
    rng = np.random.default_rng(9)
    coordinates = [50 * rng.standard_normal((4, 4)) for _ in range(2)]
    for P in _element([A + A.T for A in coordinates], "gl", size):
        eigenvalues = np.linalg.eigvalsh(P)
        assert np.all(np.abs(np.log(eigenvalues)) <= size * (1 + 1e-12))  # equality once tanh saturates


def test_random_element_has_bounded_size():
    size = 0.9
    for group in TELEPORT_GROUPS:
        for G in random_element(WIDTHS, size, group=group, rng=10):
            singular = np.linalg.svd(G, compute_uv=False)
            assert np.all(np.abs(np.log(singular)) <= size + 1e-12)


# ---------------------------------------------------------------------------------- teleport
CASES = [("gradient_norm", True), ("sharpness", False), ("sharpness", True)]


def _loss_rounding(problem, point):
    """What relative errors ``eps`` in the layers of ``point`` do to the loss, to first order:
    ``|dL| <= ||R||_F ||dW||_F`` with ``dW = sum_i W_{>i} dW_i W_{<i}``, ``||dW_i||_F <= eps ||W_i||_F``."""
    h = len(point)
    residual = np.linalg.norm(q.end_to_end(point) - problem.target)
    total = 0.0
    for i in range(h):
        after = q.end_to_end(point[i + 1 :]) if i + 1 < h else np.eye(point[-1].shape[0])
        before = q.end_to_end(point[:i]) if i > 0 else np.eye(point[0].shape[1])
        total += np.linalg.norm(after, 2) * np.linalg.norm(point[i]) * np.linalg.norm(before, 2)
    return np.finfo(float).eps * residual * total


@pytest.mark.parametrize("group", TELEPORT_GROUPS)
@pytest.mark.parametrize(("objective", "maximize"), CASES)
@pytest.mark.parametrize("condition", [1.0, 1e4])
def test_teleport_beats_random_elements_and_keeps_the_loss(objective, maximize, group, condition):
    """The objective is at least the best of 100 random elements of the same size, and the loss
    is kept: to 1e-12 relative from a well-conditioned start; from a GL-moved start of condition
    1e4, where merely rounding the point moves the loss by up to ~1e-7 relative, to that rounding
    level (the first-order effect of relative errors eps in the layers of both points)."""
    rng = np.random.default_rng(11)
    problem = _problem()
    point = act(q.init.small_random(WIDTHS, 0.7, rng=rng), _conditioned(WIDTHS, condition, rng))
    size = 1.0
    result = teleport(problem, point, objective, group, maximize=maximize, size=size, max_iterations=60)
    change = abs(problem.loss(result.point) - problem.loss(point))
    if condition == 1.0:
        assert change <= 1e-12 * problem.loss(point)
    else:
        # measured: change / rounding <= 0.07 over seeds 11-13 and every case
        rounding = _loss_rounding(problem, point) + _loss_rounding(problem, result.point)
        assert rounding > 1e-9 * problem.loss(point)  # the start is badly conditioned indeed
        assert change <= 1e-12 * problem.loss(point) + rounding
    assert result.loss_after == problem.loss(result.point) and result.loss_before == problem.loss(point)
    for got, want in zip(result.point, act(point, result.g)):
        np.testing.assert_array_equal(got, want)
    for P in result.g:
        np.testing.assert_array_equal(P, P.T)
        assert np.all(np.abs(np.log(np.linalg.eigvalsh(P))) <= size * (1 + 1e-12))
        if group == "rescaling":
            np.testing.assert_array_equal(P, np.diag(np.diag(P)))
    samples = [
        objective_value(problem, act(point, random_element(WIDTHS, size, group=group, rng=rng)), objective)
        for _ in range(100)
    ]
    best = max(samples) if maximize else min(samples)
    assert result.after >= best if maximize else result.after <= best
    assert result.before == objective_value(problem, point, objective)
    assert result.after == objective_value(problem, result.point, objective)


def test_teleport_flattens_a_minimum_to_the_balanced_sharpness():
    """The balanced minimum is the flattest (minimum.sharpness): lambda_max = h sigma_1^{2-2/h}."""
    rng = np.random.default_rng(12)
    problem = _problem()
    g = _conditioned(WIDTHS, 4.0, rng)  # ||log P_i||_2 = log(4) / 2
    point = act(q.canonical_point(problem, [1, 2, 3]), g)
    result = teleport(problem, point, "sharpness", maximize=False, size=1.5, max_iterations=300)
    h, sigma_1 = len(WIDTHS) - 1, problem.sigma[0]
    assert result.before > 1.2 * h * sigma_1 ** (2 - 2 / h)
    assert result.after == pytest.approx(h * sigma_1 ** (2 - 2 / h), rel=1e-3)
    assert result.after >= h * sigma_1 ** (2 - 2 / h) * (1 - 1e-9)


def test_gradient_norm_at_a_critical_point_is_left_alone():
    """A GL-moved saddle carries a rounding-level gradient; teleport does not amplify it. (Whether the rounding
    leaves the gradient exactly 0 or ~1e-15 depends on the CPU's BLAS kernels: 0 on an Intel Xeon with AVX-512.)"""
    problem = _problem()
    point = act(q.canonical_point(problem, [1]), _conditioned(WIDTHS, 10.0, 13))
    assert 0.0 <= objective_value(problem, point, "gradient_norm") < 1e-12
    result = teleport(problem, point, "gradient_norm")
    assert result.iterations == 0 and "critical" in result.message
    assert result.after == result.before
    for P in result.g:
        np.testing.assert_array_equal(P, np.eye(P.shape[0]))


def test_exact_critical_point_returns_identity():
    problem = _problem()
    point = q.canonical_point(problem, [1, 2, 3])
    assert objective_value(problem, point, "gradient_norm") == 0.0
    result = teleport(problem, point, "gradient_norm")
    assert result.iterations == 0 and "critical" in result.message
    assert result.after == 0.0


def test_no_hidden_layer():
    problem = _problem((3, 2))
    point = q.init.small_random((3, 2), 0.5, rng=14)
    result = teleport(problem, point, "sharpness")
    assert result.g == () and result.after == result.before


def test_defaults_maximise_gradient_norm_and_minimise_sharpness():
    problem = _problem()
    point = q.init.small_random(WIDTHS, 0.7, rng=15)
    assert teleport(problem, point, "gradient_norm", max_iterations=5).maximize is True
    assert teleport(problem, point, "sharpness", max_iterations=5).maximize is False


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"objective": "loss"}, ValueError, "objective must be one of"),
        ({"objective": "gradient_norm", "group": "orthogonal"}, ValueError, "isometries"),
        ({"objective": "gradient_norm", "group": "sl"}, ValueError, "group must be one of"),
        ({"objective": "gradient_norm", "size": 0.0}, ValueError, "size must be a positive"),
        ({"objective": "gradient_norm", "size": np.inf}, ValueError, "size must be a positive"),
        ({"objective": "gradient_norm", "size": -1.0}, ValueError, "size must be a positive"),
        ({"objective": "gradient_norm", "size": "big"}, TypeError, "size must be a real number"),
        ({"objective": "gradient_norm", "maximize": "yes"}, TypeError, "maximize must be a bool"),
        ({"objective": "gradient_norm", "max_iterations": -1}, ValueError, "max_iterations"),
    ],
)
def test_bad_input(kwargs, error, match):
    problem = _problem()
    point = q.init.small_random(WIDTHS, 0.5, rng=16)
    with pytest.raises(error, match=match):
        teleport(problem, point, **kwargs)


def test_point_of_wrong_widths():
    problem = _problem()
    with pytest.raises(ValueError, match="point"):
        teleport(problem, q.init.small_random((3, 5, 4, 3), 0.5, rng=17), "gradient_norm")


def test_problem_must_be_a_problem():
    with pytest.raises(TypeError, match="problem must be a quotient.Problem"):
        teleport(object(), q.init.small_random(WIDTHS, 0.5, rng=18), "gradient_norm")


def test_group_objects_are_accepted():
    """``group=`` takes the objects of quotient.groups as well as the shorthands."""
    problem = _problem()
    point = q.init.small_random(WIDTHS, 0.7, rng=19)
    for name, group in (("gl", q.GeneralLinear(WIDTHS)), ("rescaling", q.as_group("rescaling", WIDTHS))):
        by_name = teleport(problem, point, "gradient_norm", name, max_iterations=10)
        by_object = teleport(problem, point, "gradient_norm", group, max_iterations=10)
        assert by_object.after == by_name.after
        for a, b in zip(by_object.g, by_name.g):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="isometries"):
        teleport(problem, point, "sharpness", q.Orthogonal(WIDTHS))
    with pytest.raises(ValueError, match="widths"):
        teleport(problem, point, "sharpness", q.GeneralLinear((3, 5, 3)))
    with pytest.raises(TypeError, match="group must be"):
        teleport(problem, point, "sharpness", 3)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_general_loss(objective):
    """The orbit gradients use only the invariance L(g . y) = L(y): any loss of W works."""
    rng = np.random.default_rng(20)
    problem = q.Problem.from_loss(q.PseudoHuberLoss(rng.standard_normal((3, 3)), delta=0.5), WIDTHS)
    point = act(q.init.small_random(WIDTHS, 0.7, rng=rng), _conditioned(WIDTHS, 10.0, rng))
    psi = orbit_gradient(problem, point, objective)
    xi = _algebra(WIDTHS, rng)
    t = 1e-5
    values = [_objective_squared(problem, act(point, tuple(expm(s * X) for X in xi)), objective) for s in (t, -t)]
    assert _inner(xi, psi) == pytest.approx((values[0] - values[1]) / (2 * t), rel=1e-6)
    result = teleport(problem, point, objective, maximize=True, max_iterations=20)
    assert result.after > result.before
    assert result.loss_after == pytest.approx(result.loss_before, rel=1e-12)
