"""The hidden symmetry group: action, Lie algebra, vertical and horizontal spaces, moment map."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm
from strategies import seeds, widths

import quotient as q
from quotient import symmetry


def _norm(point) -> float:
    return float(np.sqrt(sum(np.sum(W**2) for W in point)))


def _inner(a, b) -> float:
    return float(sum(np.sum(x * y) for x, y in zip(a, b)))


def _random_algebra(widths, rng, kind="gl"):
    xi = []
    for d in widths[1:-1]:
        X = rng.standard_normal((d, d))
        if kind == "skew":
            X = X - X.T
        elif kind == "symmetric":
            X = X + X.T
        xi.append(X)
    return tuple(xi)


def _generic_stabiliser(widths) -> int:
    """Dimension of the stabiliser algebra at a generic point, from quiver representation theory.

    A generic representation of the equioriented quiver 0 -> 1 -> ... -> h with dimension vector
    ``widths`` has composite maps of rank ``r_ij = min(d_i..d_j)``; it splits into interval modules
    ``[a, b]`` with multiplicity ``r_ab - r_{a-1,b} - r_{a,b+1} + r_{a-1,b+1}``, and
    ``Hom([a,b], [c,d])`` is one-dimensional when ``c <= a <= d <= b`` (zero otherwise). The
    stabiliser is the endomorphisms vanishing at the framed vertices 0 and h: the pairs with
    ``a >= 1`` and ``d <= h - 1``.
    """
    h = len(widths) - 1

    def r(i, j):
        return 0 if i < 0 or j > h else min(widths[i : j + 1])

    multiplicity = {}
    for a in range(h + 1):
        for b in range(a, h + 1):
            m = r(a, b) - r(a - 1, b) - r(a, b + 1) + r(a - 1, b + 1)
            if m:
                multiplicity[(a, b)] = m
    return sum(
        m * n
        for (a, b), m in multiplicity.items()
        for (c, d), n in multiplicity.items()
        if c <= a <= d <= b and a >= 1 and d <= h - 1
    )


# ------------------------------------------------------------------------------- group action
@settings(max_examples=40, deadline=None)
@given(widths(min_depth=1, max_depth=4), seeds)
def test_end_to_end_and_loss_invariant_under_gl(shape, seed):
    problem = q.Problem.from_sigma(np.random.default_rng(seed).standard_normal((shape[-1], shape[0])), shape)
    point = q.init.small_random(shape, 1.0, rng=seed)
    g = q.random_gl(shape, rng=seed + 1)
    moved = q.act(point, g)
    conditioning = np.prod([np.linalg.cond(G) for G in g]) if g else 1.0
    scale = np.prod([np.linalg.norm(W, 2) for W in point]) * conditioning
    assert np.abs(q.end_to_end(moved) - q.end_to_end(point)).max() <= 1e-12 * scale
    assert abs(problem.loss(moved) - problem.loss(point)) <= 1e-11 * (1 + problem.loss(point)) * conditioning


def test_action_is_a_group_action():
    shape = (3, 4, 2, 5)
    point = q.init.small_random(shape, 1.0, rng=0)
    g, k = q.random_gl(shape, rng=1), q.random_gl(shape, rng=2)
    left = q.act(q.act(point, k), g)
    right = q.act(point, q.compose(g, k))
    assert max(np.abs(a - b).max() for a, b in zip(left, right)) < 1e-12
    back = q.act(q.act(point, g), q.inverse(g))
    assert max(np.abs(a - b).max() for a, b in zip(back, point)) < 1e-12
    same = q.act(point, symmetry.identity(shape))
    assert all(np.array_equal(a, b) for a, b in zip(same, point))


def test_action_formula_on_one_layer_triple():
    W1, W2, W3 = np.arange(6.0).reshape(2, 3), np.arange(4.0).reshape(2, 2) + 1, np.ones((1, 2))
    G1, G2 = np.array([[2.0, 1.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [3.0, 1.0]])
    out = q.act((W1, W2, W3), (G1, G2))
    np.testing.assert_allclose(out[0], G1 @ W1, atol=1e-14)
    np.testing.assert_allclose(out[1], G2 @ W2 @ np.linalg.inv(G1), atol=1e-14)
    np.testing.assert_allclose(out[2], W3 @ np.linalg.inv(G2), atol=1e-14)


def test_action_on_a_batch_acts_on_each_point():
    shape = (2, 3, 3, 2)
    batch = tuple(np.stack(layers) for layers in zip(*(q.init.small_random(shape, 1.0, rng=s) for s in range(4))))
    g = q.random_gl(shape, rng=9)
    moved = q.act(batch, g)
    for n in range(4):
        single = q.act(tuple(W[n] for W in batch), g)
        assert max(np.abs(a[n] - b).max() for a, b in zip(moved, single)) < 1e-13


def test_random_elements_belong_to_their_groups():
    shape = (2, 4, 3, 2)
    symmetry.check_group_element(q.random_orthogonal(shape, rng=0), shape, "orthogonal")
    symmetry.check_group_element(q.random_rescaling(shape, rng=0), shape, "rescaling")
    symmetry.check_group_element(q.random_gl(shape, rng=0), shape, "gl")
    with pytest.raises(ValueError, match="not orthogonal"):
        symmetry.check_group_element(q.random_gl(shape, rng=0), shape, "orthogonal")
    determinants = [np.linalg.det(q.random_orthogonal((1, 3, 1), rng=s)[0]) for s in range(20)]
    assert min(determinants) < 0 < max(determinants)  # both components of O(d)


@pytest.mark.parametrize(
    ("g", "group", "error", "match"),
    [
        ((np.eye(3),), "gl", ValueError, "one factor per hidden layer"),
        ((np.eye(3), np.eye(3)), "gl", ValueError, r"G_1 must have shape \(4, 4\)"),
        ((np.eye(4), np.zeros((3, 3))), "gl", ValueError, "G_2 is singular"),
        ((np.eye(4), np.diag([1.0, 1.0, 0.0])), "rescaling", ValueError, "positive diagonal"),
        ((np.eye(4), np.diag([1.0, -2.0, 1.0])), "rescaling", ValueError, "positive diagonal"),
        ((np.eye(4), np.ones((3, 3)) + np.eye(3)), "rescaling", ValueError, "must be diagonal"),
        ((np.eye(4), 2 * np.eye(3)), "orthogonal", ValueError, "not orthogonal"),
        ((np.eye(4), np.full((3, 3), np.nan)), "gl", ValueError, "NaN"),
        (np.eye(4), "gl", TypeError, "tuple of 2 square arrays"),
        ((np.eye(4), np.eye(3)), "unitary", ValueError, "group must be one of"),
    ],
)
def test_bad_group_elements_are_rejected(g, group, error, match):
    point = q.init.small_random((2, 4, 3, 2), 1.0, rng=0)
    with pytest.raises(error, match=match):
        q.act(point, g, group=group)


def test_act_rejects_points_whose_widths_do_not_chain():
    with pytest.raises(ValueError, match="do not chain"):
        q.act((np.ones((3, 2)), np.ones((2, 4))), (np.eye(3),))


# ------------------------------------------------------------------------------- equivariance
def test_gradient_is_equivariant_under_orthogonal_but_not_gl():
    shape = (3, 4, 4, 2)
    problem = q.Problem.from_sigma([2.0, 1.0], shape)
    point = q.init.small_random(shape, 1.0, rng=3)
    R = q.random_orthogonal(shape, rng=4)
    moved, expected = problem.gradient(q.act(point, R)), q.act(problem.gradient(point), R)
    assert max(np.abs(a - b).max() for a, b in zip(moved, expected)) < 1e-12
    g = q.random_gl(shape, rng=4)
    moved, expected = problem.gradient(q.act(point, g)), q.act(problem.gradient(point), g)
    assert max(np.abs(a - b).max() for a, b in zip(moved, expected)) > 1e-2


def test_flow_commutes_with_orthogonal_action():
    shape = (3, 4, 3, 2)
    problem = q.Problem.from_sigma([3.0, 1.0], shape)
    point = q.init.small_random(shape, 0.5, rng=5)
    R = q.random_orthogonal(shape, rng=6)
    times = np.linspace(0, 4, 9)
    options = dict(t_eval=times, rtol=1e-12, atol=1e-14, progress=False)
    flow_then_act = q.act(q.gradient_flow(problem, point, 4.0, **options).points, R)
    act_then_flow = q.gradient_flow(problem, q.act(point, R), 4.0, **options).points
    assert max(np.abs(a - b).max() for a, b in zip(flow_then_act, act_then_flow)) < 1e-9


# ------------------------------------------------------------------------------- Lie algebra
@settings(max_examples=30, deadline=None)
@given(widths(min_depth=2, max_depth=4), seeds)
def test_vertical_vector_is_the_derivative_of_the_action(shape, seed):
    rng = np.random.default_rng(seed)
    point = q.init.small_random(shape, 1.0, rng=rng)
    xi = _random_algebra(shape, rng)
    eps = 1e-5
    plus = q.act(point, tuple(expm(eps * X) for X in xi))
    minus = q.act(point, tuple(expm(-eps * X) for X in xi))
    difference = tuple((a - b) / (2 * eps) for a, b in zip(plus, minus))
    vertical = q.vertical_vector(point, xi)
    error = max(np.abs(a - b).max() for a, b in zip(difference, vertical))
    assert error <= 1e-7 * (1 + _norm(point) * sum(np.abs(X).max() for X in xi)) ** 3


@settings(max_examples=30, deadline=None)
@given(widths(min_depth=2, max_depth=4), seeds)
def test_vertical_vectors_are_annihilated_by_the_gradient(shape, seed):
    rng = np.random.default_rng(seed)
    problem = q.Problem.from_sigma(rng.standard_normal((shape[-1], shape[0])), shape)
    point = q.init.small_random(shape, 1.0, rng=rng)
    xi = _random_algebra(shape, rng)
    gradient, vertical = problem.gradient(point), q.vertical_vector(point, xi)
    assert abs(_inner(gradient, vertical)) <= 1e-12 * (1 + _norm(gradient) * _norm(vertical))


def test_vertical_adjoint_is_the_adjoint():
    shape = (3, 4, 2, 5)
    rng = np.random.default_rng(0)
    point = q.init.small_random(shape, 1.0, rng=rng)
    tangent = q.init.small_random(shape, 1.0, rng=rng)
    xi = _random_algebra(shape, rng)
    left = _inner(q.vertical_vector(point, xi), tangent)
    right = _inner(xi, symmetry.vertical_adjoint(point, tangent))
    assert abs(left - right) < 1e-12 * (1 + abs(left))


def test_action_matrix_columns_are_vertical_vectors_of_the_basis():
    shape = (2, 3, 2)
    point = q.init.small_random(shape, 1.0, rng=1)
    J = symmetry.action_matrix(point)
    for c in range(9):
        xi = (np.eye(9)[c].reshape(3, 3),)
        np.testing.assert_allclose(J[:, c], q.to_vector(q.vertical_vector(point, xi)), atol=1e-15)
    skew = symmetry.action_matrix(point, group="orthogonal")
    assert skew.shape == (12, 3)
    np.testing.assert_allclose(skew, J @ q.groups.Orthogonal(shape).algebra_basis().T, atol=1e-15)


# ------------------------------------------------------------------------------- vertical space
@settings(max_examples=60, deadline=None)
@given(widths(min_depth=1, max_depth=5), seeds)
def test_vertical_dimension_matches_quiver_theory_at_generic_points(shape, seed):
    point = q.init.small_random(shape, 1.0, rng=seed)
    basis = q.vertical_space(point)
    dimension = sum(d * d for d in shape[1:-1]) - _generic_stabiliser(shape)
    assert basis.shape == (dimension, q.network.n_params(shape))
    np.testing.assert_allclose(basis @ basis.T, np.eye(dimension), atol=1e-12)


@pytest.mark.parametrize("shape", [(5, 4, 3, 3, 4), (3, 2, 2, 6), (4, 4, 4), (6, 2, 5)])
def test_action_is_free_when_hidden_widths_form_a_valley(shape):
    # d_0 >= ... >= d_k <= ... <= d_h: every xi_i is forced to zero, dim = sum d_i^2
    basis = q.vertical_space(q.init.small_random(shape, 1.0, rng=0))
    assert basis.shape[0] == sum(d * d for d in shape[1:-1])


def test_vertical_space_at_rank_deficient_points():
    # widths (2,3,2), hidden unit 3 dead: xi W_1 = 0 and W_2 xi = 0 leave xi = c e_3 e_3^T
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    W2 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert q.vertical_space((W1, W2)).shape[0] == 9 - 1
    assert q.vertical_space((np.zeros((3, 2)), np.zeros((2, 3)))).shape[0] == 0
    # W_1 = I, W_2 = diag(1, 0): not closed, but free (xi W_1 = 0 forces xi = 0)
    assert q.vertical_space((np.eye(2), np.diag([1.0, 0.0]))).shape[0] == 4


def test_vertical_space_spans_finite_differences_of_the_action():
    shape = (3, 5, 3)  # generic stabiliser of dimension (5 - 3)(5 - 3) = 4
    rng = np.random.default_rng(2)
    point = q.init.small_random(shape, 1.0, rng=rng)
    basis = q.vertical_space(point)
    eps = 1e-6
    differences = []
    for _ in range(40):
        xi = _random_algebra(shape, rng)
        plus, minus = q.act(point, tuple(expm(eps * X) for X in xi)), q.act(point, tuple(expm(-eps * X) for X in xi))
        differences.append(q.to_vector(tuple((a - b) / (2 * eps) for a, b in zip(plus, minus))))
    differences = np.array(differences)
    s = np.linalg.svd(differences, compute_uv=False)
    assert int(np.sum(s > 1e-6 * s[0])) == basis.shape[0] == 25 - 4
    residual = differences - (differences @ basis.T) @ basis
    assert np.abs(residual).max() < 1e-7 * np.abs(differences).max()


@pytest.mark.parametrize("group", ["gl", "orthogonal", "rescaling"])
def test_projections_split_a_tangent_vector_orthogonally(group):
    shape = (3, 4, 5, 2)
    rng = np.random.default_rng(7)
    point = q.init.small_random(shape, 1.0, rng=rng)
    tangent = q.init.small_random(shape, 1.0, rng=rng)
    vertical = q.vertical_projection(point, tangent, group=group)
    horizontal = q.horizontal_projection(point, tangent, group=group)
    assert max(np.abs(v + h - t).max() for v, h, t in zip(vertical, horizontal, tangent)) < 1e-13
    assert abs(_inner(vertical, horizontal)) < 1e-12
    again = q.vertical_projection(point, vertical, group=group)
    assert max(np.abs(a - b).max() for a, b in zip(again, vertical)) < 1e-12
    assert _norm(q.vertical_projection(point, horizontal, group=group)) < 1e-12


def test_vertical_projection_fixes_vertical_vectors_of_each_subgroup():
    shape = (2, 4, 3, 3)
    rng = np.random.default_rng(8)
    point = q.init.small_random(shape, 1.0, rng=rng)
    for kind, group in (("gl", "gl"), ("skew", "orthogonal")):
        vertical = q.vertical_vector(point, _random_algebra(shape, rng, kind))
        projected = q.vertical_projection(point, vertical, group=group)
        assert max(np.abs(a - b).max() for a, b in zip(projected, vertical)) < 1e-12
    # a symmetric generator moves along the GL orbit but off the orthogonal one
    symmetric = q.vertical_vector(point, _random_algebra(shape, rng, "symmetric"))
    assert _norm(q.horizontal_projection(point, symmetric, group="orthogonal")) > 1e-2 * _norm(symmetric)


def test_vertical_projection_of_a_batch_projects_each_tangent():
    shape = (2, 3, 2)
    point = q.init.small_random(shape, 1.0, rng=0)
    tangents = tuple(np.stack(layers) for layers in zip(*(q.init.small_random(shape, 1.0, rng=s) for s in range(3))))
    batch = q.vertical_projection(point, tangents)
    for n in range(3):
        single = q.vertical_projection(point, tuple(V[n] for V in tangents))
        assert max(np.abs(a[n] - b).max() for a, b in zip(batch, single)) < 1e-14


@settings(max_examples=30, deadline=None)
@given(widths(min_depth=1, max_depth=4), seeds)
def test_gradient_is_horizontal(shape, seed):
    rng = np.random.default_rng(seed)
    problem = q.Problem.from_sigma(rng.standard_normal((shape[-1], shape[0])), shape)
    point = q.init.small_random(shape, 1.0, rng=rng)
    gradient = problem.gradient(point)
    # The exact identity: the gradient is orthogonal to every vertical vector.
    assert _norm(symmetry.vertical_adjoint(point, gradient)) <= 1e-12 * (1 + _norm(gradient) * _norm(point))
    # The projection is a least-squares solve against the action matrix: backward stable, so its
    # rounding error is of order eps * cond(action matrix) * ||gradient|| (cond reached 6.5e4 on
    # random points; the projection was then 2.2e-10 with ||gradient|| = 200).
    singular = np.linalg.svd(symmetry.action_matrix(point), compute_uv=False)
    singular = singular[singular > singular[0] * 1e-12] if singular.size else singular
    condition = singular[0] / singular[-1] if singular.size else 1.0
    bound = 10 * np.finfo(float).eps * condition * (1 + _norm(gradient))
    assert _norm(q.vertical_projection(point, gradient)) <= bound


# ------------------------------------------------------------------------------- moment map
def test_moment_map_is_minus_the_conserved_quantities_and_the_norm_derivative():
    shape = (3, 4, 2, 3)
    rng = np.random.default_rng(3)
    point = q.init.small_random(shape, 1.0, rng=rng)
    mu = q.moment_map(point)
    for m, C in zip(mu, q.conserved_quantities(point)):
        np.testing.assert_array_equal(m, -C)
    for m, a in zip(mu, symmetry.vertical_adjoint(point, point)):
        np.testing.assert_allclose(m, a, atol=1e-14)
    xi = _random_algebra(shape, rng)
    eps = 1e-6

    def half_norm(t):
        return 0.5 * _norm(q.act(point, tuple(expm(t * X) for X in xi))) ** 2

    derivative = (half_norm(eps) - half_norm(-eps)) / (2 * eps)
    assert abs(derivative - _inner(mu, xi)) < 1e-7 * (1 + abs(derivative))


def test_moment_map_of_a_batch():
    shape = (2, 3, 2)
    batch = tuple(np.stack(layers) for layers in zip(*(q.init.small_random(shape, 1.0, rng=s) for s in range(3))))
    assert q.moment_map(batch)[0].shape == (3, 3, 3)


@settings(max_examples=20, deadline=None)
@given(widths(min_depth=2, max_depth=3), seeds, st.floats(0.1, 2.0))
def test_random_gl_spread_controls_conditioning(shape, seed, spread):
    for G in q.random_gl(shape, rng=seed, spread=spread):
        assert np.linalg.cond(G) < np.exp(2 * spread * 6)


def test_bad_lie_algebra_elements_and_tangents_are_rejected():
    point = q.init.small_random((2, 3, 4, 2), 1.0, rng=0)
    with pytest.raises(ValueError, match="one factor per hidden layer"):
        q.vertical_vector(point, (np.eye(3),))
    with pytest.raises(ValueError, match=r"xi_2 must have shape \(4, 4\)"):
        q.vertical_vector(point, (np.eye(3), np.eye(3)))
    with pytest.raises(ValueError, match="widths"):
        q.vertical_projection(point, q.init.small_random((2, 3, 3, 2), 1.0, rng=0))
    with pytest.raises(ValueError, match="group must be one of"):
        q.vertical_space(point, group="sl")
    with pytest.raises(ValueError, match="spread"):
        q.random_gl((2, 3, 2), rng=0, spread=-1.0)
