"""The group protocol: laws of GL, orthogonal and rescaling groups of the hidden layers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import seeds

import quotient as q
from quotient.groups import GROUPS, GeneralLinear, HiddenGroup, Orthogonal, Rescaling, as_group

CLASSES = (GeneralLinear, Orthogonal, Rescaling)
CONDITION = 1e4


@st.composite
def hidden_widths(draw):
    """Widths of depth 2..4 with every width (hidden ones included) in 1..4."""
    depth = draw(st.integers(2, 4))
    return tuple(draw(st.integers(1, 4)) for _ in range(depth + 1))


groups = st.sampled_from(CLASSES)


def _norm2(point) -> float:
    return float(sum(np.sum(W**2) for W in point))


def _distance2(a, b) -> float:
    return float(sum(np.sum((x - y) ** 2) for x, y in zip(a, b)))


def _conditioned_gl(widths, rng, condition=CONDITION):
    """A GL element whose factors of size >= 2 have condition number ``condition`` exactly."""
    g = []
    for d in widths[1:-1]:
        scales = np.logspace(0, np.log10(condition), d) if d > 1 else np.array([condition**0.5])
        Q1 = q.random_orthogonal((1, d, 1), rng)[0]
        Q2 = q.random_orthogonal((1, d, 1), rng)[0]
        g.append((Q1 * scales) @ Q2 / np.sqrt(condition))
    return tuple(g)


def _moved_point(widths, seed):
    """A Gaussian point moved by a GL element of condition 1e4."""
    rng = np.random.default_rng(seed)
    point = q.init.small_random(widths, 1.0, rng=rng)
    return q.act(point, _conditioned_gl(widths, rng))


def _random_algebra(group, rng, size=1.0):
    return group.algebra_element(size * rng.standard_normal(group.dim))


def _assert_close(a, b, rtol, scale=None):
    scale = max(np.sqrt(_norm2(a)), np.sqrt(_norm2(b))) if scale is None else scale
    assert np.sqrt(_distance2(a, b)) <= rtol * max(scale, 1e-300), (np.sqrt(_distance2(a, b)), scale)


# ------------------------------------------------------------------------------------ as_group
def test_as_group_turns_shorthands_into_objects_and_keeps_objects():
    widths = (2, 3, 2)
    assert GROUPS == ("gl", "orthogonal", "rescaling") == q.symmetry.GROUPS
    for name, cls in zip(GROUPS, CLASSES):
        group = as_group(name, widths)
        assert type(group) is cls and group.name == name and group.widths == widths
        assert as_group(group, widths) is group
        assert group == cls([2, 3, 2]) and hash(group) == hash(cls(widths)) and group != cls((2, 3, 3))
        assert isinstance(group, HiddenGroup)
    assert repr(Rescaling(widths)) == "Rescaling((2, 3, 2))"


def test_as_group_rejects_unknown_names_other_types_and_other_widths():
    with pytest.raises(ValueError, match="group must be one of"):
        as_group("affine", (2, 3, 2))
    with pytest.raises(TypeError, match="group must be one of"):
        as_group(3, (2, 3, 2))
    with pytest.raises(ValueError, match=r"built for widths \(2, 3, 2\); the point has widths \(2, 4, 2\)"):
        as_group(GeneralLinear((2, 3, 2)), (2, 4, 2))
    with pytest.raises(TypeError):
        HiddenGroup((2, 3, 2))  # abstract


def test_dimensions():
    widths = (3, 4, 2, 5)
    assert GeneralLinear(widths).dim == 16 + 4
    assert Orthogonal(widths).dim == 6 + 1
    assert Rescaling(widths).dim == 4 + 2
    assert GeneralLinear(widths).hidden == (4, 2)
    assert GeneralLinear((3, 5)).dim == 0 and GeneralLinear((3, 5)).identity() == ()


# ------------------------------------------------------------------------------------ the laws
@settings(max_examples=30, deadline=None)
@given(groups, hidden_widths())
def test_algebra_basis_is_orthonormal_and_in_the_algebra(cls, widths):
    group = cls(widths)
    basis = group.algebra_basis()
    assert basis.shape == (group.dim, sum(d * d for d in group.hidden))
    np.testing.assert_allclose(basis @ basis.T, np.eye(group.dim), atol=1e-15)
    for c in range(group.dim):
        xi = group.algebra_element(np.eye(group.dim)[c])
        flat = np.concatenate([X.ravel() for X in group.check_algebra(xi)])
        np.testing.assert_allclose(flat, basis[c], rtol=0, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(groups, hidden_widths(), seeds)
def test_closure_identity_and_inverse(cls, widths, seed):
    group = cls(widths)
    rng = np.random.default_rng(seed)
    g, k = group.random(rng), group.random(rng, spread=0.5)
    e = group.identity()
    for element in (g, k, e, group.compose(g, k), group.inverse(g), group.exp(_random_algebra(group, rng))):
        group.check(element)  # membership
    _assert_close(group.compose(e, g), g, 1e-15)
    _assert_close(group.compose(g, e), g, 1e-15)
    _assert_close(group.compose(g, group.inverse(g)), e, 1e-12)
    _assert_close(group.compose(group.inverse(g), g), e, 1e-12)
    # associativity
    m = group.random(rng)
    _assert_close(group.compose(group.compose(g, k), m), group.compose(g, group.compose(k, m)), 1e-12)


@settings(max_examples=30, deadline=None)
@given(groups, hidden_widths(), seeds)
def test_exp_is_a_one_parameter_subgroup(cls, widths, seed):
    group = cls(widths)
    xi = _random_algebra(group, np.random.default_rng(seed), 0.5)
    half = group.exp(tuple(0.5 * X for X in xi))
    _assert_close(group.compose(half, half), group.exp(xi), 1e-12)
    _assert_close(group.exp(tuple(0 * X for X in xi)), group.identity(), 0, scale=1)
    _assert_close(group.compose(group.exp(xi), group.exp(tuple(-X for X in xi))), group.identity(), 1e-12)


@settings(max_examples=30, deadline=None)
@given(groups, hidden_widths(), seeds)
def test_action_is_a_homomorphism_and_keeps_the_end_to_end_map(cls, widths, seed):
    group = cls(widths)
    rng = np.random.default_rng(seed)
    point = _moved_point(widths, seed)
    g, k = group.random(rng), group.random(rng)
    _assert_close(group.act(group.act(point, k), g), group.act(point, group.compose(g, k)), 1e-10)
    _assert_close(group.act(point, group.identity()), point, 0)
    _assert_close(group.act(group.act(point, g), group.inverse(g)), point, 1e-10)
    # the product's rounding error is relative to the product of the layer norms, not to ||W||
    scale = np.prod([np.linalg.norm(A, 2) for A in point]) * max(np.linalg.cond(G) for G in g + ((np.eye(1)),))
    np.testing.assert_allclose(q.end_to_end(group.act(point, g)), q.end_to_end(point), rtol=0, atol=1e-13 * scale)
    # batches act layer by layer
    batch = tuple(np.stack([W, 2 * W]) for W in point)
    acted = group.act(batch, g)
    _assert_close(tuple(A[1] for A in acted), group.act(tuple(2 * W for W in point), g), 1e-14)


@settings(max_examples=30, deadline=None)
@given(groups, hidden_widths(), seeds)
def test_infinitesimal_action_is_the_derivative_of_the_action(cls, widths, seed):
    group = cls(widths)
    rng = np.random.default_rng(seed)
    point = _moved_point(widths, seed)
    xi = _random_algebra(group, rng)
    t = 1e-5
    plus = group.act(point, group.exp(tuple(t * X for X in xi)))
    minus = group.act(point, group.exp(tuple(-t * X for X in xi)))
    difference = tuple((P - M) / (2 * t) for P, M in zip(plus, minus))
    V = group.infinitesimal_action(point, xi)
    scale = np.sqrt(_norm2(point)) * np.sqrt(_norm2(xi))
    _assert_close(V, difference, 1e-7, scale=scale)
    np.testing.assert_allclose(q.to_vector(V), group.action_matrix(point) @ np.linalg.lstsq(
        group.algebra_basis().T, np.concatenate([X.ravel() for X in xi]), rcond=None)[0], atol=1e-13 * scale)


@settings(max_examples=30, deadline=None)
@given(groups, hidden_widths(), seeds)
def test_vertical_space_spans_the_infinitesimal_actions_of_the_basis(cls, widths, seed):
    group = cls(widths)
    point = _moved_point(widths, seed)
    V = group.vertical_space(point)
    assert V.shape[1] == sum(widths[i] * widths[i - 1] for i in range(1, len(widths)))
    np.testing.assert_allclose(V @ V.T, np.eye(V.shape[0]), atol=1e-12)
    actions = np.zeros((group.dim, V.shape[1]))
    for c in range(group.dim):
        actions[c] = q.to_vector(group.infinitesimal_action(point, group.algebra_element(np.eye(group.dim)[c])))
    if group.dim:
        residual = actions - (actions @ V.T) @ V
        assert np.abs(residual).max() <= 1e-10 * max(np.abs(actions).max(), 1e-300)
        assert V.shape[0] == np.linalg.matrix_rank(actions, tol=max(actions.shape) * np.finfo(float).eps * np.linalg.norm(actions, 2))
    # projections split a tangent vector into orthogonal parts, the vertical one in the span
    tangent = q.init.small_random(widths, 1.0, rng=seed % 1000 + 1)
    vertical = group.vertical_projection(point, tangent)
    horizontal = group.horizontal_projection(point, tangent)
    _assert_close(tuple(a + b for a, b in zip(vertical, horizontal)), tangent, 1e-14)
    assert abs(q.to_vector(vertical) @ q.to_vector(horizontal)) <= 1e-12 * _norm2(tangent)
    np.testing.assert_allclose((q.to_vector(vertical) @ V.T) @ V, q.to_vector(vertical), atol=1e-12 * np.sqrt(_norm2(tangent)))


@settings(max_examples=20, deadline=None)
@given(groups, hidden_widths(), seeds)
def test_the_gradient_is_horizontal_for_every_group(cls, widths, seed):
    # every loss of the end-to-end map is invariant, so its gradient is orthogonal to every orbit
    problem = q.Problem.from_sigma(np.random.default_rng(seed).standard_normal((widths[-1], widths[0])), widths)
    point = _moved_point(widths, seed)
    gradient = problem.gradient(point)
    group = cls(widths)
    # The computed vertical space is off by an angle ~ eps cond(J) (J = action_matrix, cond over its
    # nonzero singular values): up to 1e-8 at these points; measured at most 0.81 eps cond(J).
    s = np.linalg.svd(group.action_matrix(point), compute_uv=False)
    kept = s[s > max(len(q.to_vector(point)), group.dim) * np.finfo(float).eps * s[0]] if s.size else s
    tol = 10 * np.finfo(float).eps * (kept[0] / kept[-1] if kept.size else 1.0)
    vertical = group.vertical_projection(point, gradient)
    assert np.sqrt(_norm2(vertical)) <= tol * np.sqrt(_norm2(gradient))
    _assert_close(group.horizontal_projection(point, gradient), gradient, tol)


@settings(max_examples=20, deadline=None)
@given(hidden_widths(), seeds)
def test_moment_map_is_equivariant_under_the_orthogonal_subgroup(widths, seed):
    # mu(R . W)_i = R_i mu(W)_i R_i^T: the moment map of the GL action is equivariant under the
    # subgroup that preserves the norm
    rng = np.random.default_rng(seed)
    point = _moved_point(widths, seed)
    R = Orthogonal(widths).random(rng)
    moved = GeneralLinear(widths).moment_map(Orthogonal(widths).act(point, R))
    for m, m0, Q in zip(moved, GeneralLinear(widths).moment_map(point), R):
        np.testing.assert_allclose(m, Q @ m0 @ Q.T, rtol=0, atol=1e-13 * _norm2(point))


def test_subgroups_have_smaller_vertical_spaces():
    point = _moved_point((2, 3, 3, 2), 5)
    dims = [cls((2, 3, 3, 2)).vertical_space(point).shape[0] for cls in CLASSES]
    # GL: 18 minus the one-dimensional generic stabiliser of the wide stretch (3, 3) between 2s
    # (the interval module [1, 2] of the quiver representation, tests/test_symmetry.py)
    assert dims == [17, 6, 6]


# ------------------------------------------------------------------------------------ moment map
@settings(max_examples=30, deadline=None)
@given(groups, hidden_widths(), seeds)
def test_moment_map_is_the_derivative_of_half_the_squared_norm(cls, widths, seed):
    # <mu(W), xi> = d/dt 1/2 ||exp(t xi) . W||^2 at t = 0, by central differences
    group = cls(widths)
    rng = np.random.default_rng(seed)
    point = _moved_point(widths, seed)
    xi = _random_algebra(group, rng)
    mu = group.moment_map(point)
    if cls is Rescaling:
        pairing = sum(float(m @ np.diag(X)) for m, X in zip(mu, xi))
    else:
        pairing = sum(float(np.sum(m * X)) for m, X in zip(mu, xi))
    t = 1e-5
    f = [0.5 * _norm2(group.act(point, group.exp(tuple(s * X for X in xi)))) for s in (t, -t)]
    assert abs(pairing - (f[0] - f[1]) / (2 * t)) <= 1e-7 * _norm2(point) * np.sqrt(_norm2(xi))


@settings(max_examples=20, deadline=None)
@given(hidden_widths(), seeds)
def test_moment_maps_are_the_conserved_quantities(widths, seed):
    point = _moved_point(widths, seed)
    C = q.conserved_quantities(point)
    for mu, Ci in zip(GeneralLinear(widths).moment_map(point), C):
        np.testing.assert_array_equal(mu, -Ci)
    for mu, Ci in zip(Rescaling(widths).moment_map(point), C):
        assert mu.shape == (Ci.shape[0],)
        np.testing.assert_array_equal(mu, -np.diag(Ci))
    for mu, d in zip(Orthogonal(widths).moment_map(point), widths[1:-1]):
        np.testing.assert_array_equal(mu, np.zeros((d, d)))
    for cls in CLASSES:
        assert len(q.moment_map(point, group=cls.name)) == len(widths) - 2
        for a, b in zip(q.moment_map(point, group=cls(widths)), cls(widths).moment_map(point)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", CLASSES)
def test_moment_map_is_constant_along_a_gradient_flow(cls):
    widths = (3, 2, 4, 2)
    problem = q.Problem.from_sigma(np.random.default_rng(0).standard_normal((2, 3)), widths)
    point = q.act(q.init.small_random(widths, 0.5, rng=1), _conditioned_gl(widths, np.random.default_rng(2), 10.0))
    trajectory = q.gradient_flow(problem, point, 5.0, progress=False)
    assert trajectory.loss[-1] < 0.5 * trajectory.loss[0]  # the flow moved
    group = cls(widths)
    start, path = group.moment_map(point), group.moment_map(trajectory.points)
    scale = _norm2(point)
    for m0, m in zip(start, path):
        assert m.shape == (len(trajectory.times),) + m0.shape
        assert np.abs(m - m0).max() <= 1e-7 * scale


# ------------------------------------------------------------------------------------ representatives
def _minimal_along_subgroups(group, rep, value, rng, tol, slope=0.0):
    """``value(act(rep, exp(t xi))) >= value(rep)`` up to the first-order term of a residual ``slope``."""
    base = value(rep)
    for _ in range(4):
        xi = _random_algebra(group, rng)
        size = np.sqrt(_norm2(xi))
        for t in (-1e-1, -1e-2, 1e-2, 1e-1):
            moved = value(group.act(rep, group.exp(tuple(t * X for X in xi))))
            assert moved >= base - 2 * abs(t) * size * slope - tol * base, (t, moved, base)


@settings(max_examples=20, deadline=None)
@given(hidden_widths(), seeds)
def test_gl_representative_is_balanced_of_minimal_norm_in_the_orbit(widths, seed):
    rng = np.random.default_rng(seed)
    group = GeneralLinear(widths)
    point = q.act(q.init.balanced(widths, scale=1.0, rng=rng), _conditioned_gl(widths, rng))  # closed orbit
    # The rounding error eps ||W_i|| of the moved point is mapped back by an element of condition
    # ~CONDITION on each side: the balance is determined to eps CONDITION^2 (measured: 2.5e-8 at
    # widths (1, 2, 2, 1), 2e-11 at (1, 3, 1), over 30 seeds).
    tol = 10 * np.finfo(float).eps * CONDITION**2
    rep, g = group.representative(point, balance_rtol=tol)
    group.check(g)
    for G in g:
        np.testing.assert_allclose(G, G.T, rtol=0, atol=1e-14 * np.linalg.norm(G))
        assert np.linalg.eigvalsh(G).min() > 0
    # acting with g loses eps cond(g); the representative itself is computed without that loss
    _assert_close(group.act(point, g), rep, 1e-13 * max([np.linalg.cond(G) for G in g] + [1.0]))
    W = q.end_to_end(point)
    scale = np.prod([np.linalg.norm(A, 2) for A in point])
    np.testing.assert_allclose(q.end_to_end(rep), W, rtol=0, atol=1e-13 * scale)
    assert np.sqrt(_norm2(group.moment_map(rep))) <= tol * _norm2(rep)
    assert abs(_norm2(rep) - q.orbit_infimum(point)) <= tol * _norm2(rep)
    _minimal_along_subgroups(group, rep, _norm2, rng, 1e-12, slope=tol * _norm2(rep))


@settings(max_examples=20, deadline=None)
@given(hidden_widths(), seeds)
def test_rescaling_representative_is_neuron_balanced_of_minimal_norm(widths, seed):
    rng = np.random.default_rng(seed)
    group = Rescaling(widths)
    point = _moved_point(widths, seed)
    rep, D = group.representative(point)
    group.check(D)
    _assert_close(group.act(point, D), rep, 1e-12)
    scale = np.prod([np.linalg.norm(A, 2) for A in point])
    np.testing.assert_allclose(q.end_to_end(rep), q.end_to_end(point), rtol=0, atol=1e-13 * scale)
    tol = 1e-10  # balance_rescaling's default
    assert np.sqrt(_norm2(group.moment_map(rep))) <= tol * _norm2(rep)
    _minimal_along_subgroups(group, rep, _norm2, rng, 1e-12, slope=tol * _norm2(rep))


@settings(max_examples=12, deadline=None)
@given(hidden_widths(), seeds)
def test_orthogonal_representative_is_nearest_the_reference_in_the_orbit(widths, seed):
    rng = np.random.default_rng(seed)
    group = Orthogonal(widths)
    reference = _moved_point(widths, seed)
    point = q.init.small_random(widths, 1.0, rng=rng)
    rep, R = group.representative(point, reference=reference)
    group.check(R)
    _assert_close(group.act(point, R), rep, 1e-12)
    assert abs(_norm2(rep) - _norm2(point)) <= 1e-12 * _norm2(point)

    def distance(x):
        return _distance2(x, reference)

    scale = _norm2(point) + _norm2(reference)
    _minimal_along_subgroups(group, rep, distance, rng, 1e-12 * scale / max(distance(rep), 1e-300), slope=1e-12 * scale)


def test_orthogonal_representative_needs_a_reference():
    point = q.init.small_random((2, 3, 2), 1.0, rng=0)
    with pytest.raises(TypeError, match="reference="):
        Orthogonal((2, 3, 2)).representative(point)


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "cls, g, error, match",
    [
        (GeneralLinear, np.eye(3), TypeError, "k must be a tuple"),
        (GeneralLinear, (np.eye(3), np.eye(2)), ValueError, "one factor per hidden layer"),
        (GeneralLinear, (np.eye(2),), ValueError, r"k: G_1 must have shape \(3, 3\)"),
        (GeneralLinear, (np.zeros((3, 3)),), ValueError, "singular"),
        (GeneralLinear, (np.full((3, 3), np.nan),), ValueError, "NaN"),
        (Orthogonal, (2 * np.eye(3),), ValueError, "not orthogonal"),
        (Rescaling, (np.ones((3, 3)),), ValueError, "diagonal"),
        (Rescaling, (-np.eye(3),), ValueError, "positive diagonal"),
    ],
)
def test_bad_elements_are_rejected_naming_the_argument(cls, g, error, match):
    with pytest.raises(error, match=match):
        cls((2, 3, 2)).check(g, name="k")


@pytest.mark.parametrize(
    "cls, xi, match",
    [
        (Orthogonal, (np.eye(3),), "not in the Lie algebra of Orthogonal"),
        (Rescaling, (np.ones((3, 3)),), "not in the Lie algebra of Rescaling"),
        (GeneralLinear, (np.ones((2, 2)),), r"xi_1 must have shape \(3, 3\)"),
    ],
)
def test_bad_algebra_elements_are_rejected(cls, xi, match):
    with pytest.raises(ValueError, match=match):
        cls((2, 3, 2)).exp(xi)


def test_points_of_other_widths_and_bad_spreads_are_rejected():
    group = GeneralLinear((2, 3, 2))
    with pytest.raises(ValueError, match="widths"):
        group.act(q.init.small_random((2, 4, 2), 1.0, rng=0), group.identity())
    with pytest.raises(ValueError, match="spread"):
        group.random(0, spread=-1.0)
    with pytest.raises(ValueError, match="coefficients"):
        group.algebra_element(np.zeros(3))


# ------------------------------------------------------------------------------------ shorthands
@pytest.mark.parametrize("cls", CLASSES)
def test_symmetry_functions_accept_group_objects(cls):
    widths = (2, 3, 4, 2)
    point = _moved_point(widths, 3)
    group = cls(widths)
    g = group.random(4)
    tangent = q.init.small_random(widths, 1.0, rng=5)
    for a, b in zip(q.act(point, g, group=group), q.act(point, g, group=cls.name)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(q.vertical_space(point, group=group), q.vertical_space(point, group=cls.name))
    for a, b in zip(
        q.horizontal_projection(point, tangent, group=group), group.horizontal_projection(point, tangent)
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(q.symmetry.action_matrix(point, group=group), group.action_matrix(point))
    for a, b in zip(q.symmetry.check_group_element(g, widths, group), g):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="built for widths"):
        q.act(q.init.small_random((2, 3, 2), 1.0, rng=0), (np.eye(3),), group=group)


def test_random_shorthands_are_the_group_objects_random_elements():
    widths = (2, 3, 4, 2)
    for a, b in zip(q.random_gl(widths, 7, spread=0.3), GeneralLinear(widths).random(7, spread=0.3)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(q.random_orthogonal(widths, 7), Orthogonal(widths).random(7)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(q.random_rescaling(widths, 7), Rescaling(widths).random(7)):
        np.testing.assert_array_equal(a, b)
