"""Orbits: closedness, Kempf-Ness balancing, orthogonal Procrustes, rescaling balance."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm
from strategies import seeds

import quotient as q
from quotient import orbit

# Architectures whose generic points have closed orbits: min(d_{i-1}, d_i) is the same for every
# layer, so every layer has the rank of the end-to-end map.
CLOSED = [(2, 2), (3, 5, 3), (4, 3, 3, 4), (2, 3, 2, 4), (4, 3, 5, 3, 4), (3, 3, 3, 3), (5, 2, 4, 2, 3), (3, 5, 3, 5, 3)]


def squared_norm(point) -> float:
    return float(sum(np.sum(W**2) for W in point))


def _imbalance(point) -> float:
    return float(np.sqrt(sum(np.sum(C**2) for C in q.conserved_quantities(point)))) / squared_norm(point)


# ------------------------------------------------------------------------------- Kempf-Ness
def test_tc10_two_layer_balance():
    W1, W2 = np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 1.0]])
    assert squared_norm((W1, W2)) == 9.0
    balanced, g = q.balance((W1, W2))
    assert abs(squared_norm(balanced) - 8.246211251235) < 1e-11
    assert abs(squared_norm(balanced) - 2 * np.linalg.norm(W2 @ W1, "nuc")) < 1e-12
    expected = [1.9657895235, 0.5087014597]
    for layer in balanced:
        np.testing.assert_allclose(np.linalg.svd(layer, compute_uv=False), expected, atol=1e-10)
    np.testing.assert_allclose(np.linalg.svd(W2 @ W1, compute_uv=False), np.square(expected), atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(CLOSED), seeds, st.floats(0.2, 1.5))
def test_balance_is_balanced_keeps_w_and_reaches_the_closed_form_minimum(shape, seed, spread):
    point = q.act(q.init.small_random(shape, 1.0, rng=seed), q.random_gl(shape, rng=seed + 1, spread=spread))
    assert q.is_closed_orbit(point)
    balanced, g = q.balance(point)
    assert _imbalance(balanced) <= 1e-8
    W = q.end_to_end(point)
    assert np.abs(q.end_to_end(balanced) - W).max() <= 1e-10 * np.abs(W).max()
    h = len(shape) - 1
    sigma = np.linalg.svd(W, compute_uv=False)[: min(shape)]
    assert abs(squared_norm(balanced) - h * np.sum(sigma ** (2 / h))) <= 1e-9 * squared_norm(balanced)
    for layer in balanced:  # balanced layers share the singular values sigma(W)^{1/h}
        s = np.linalg.svd(layer, compute_uv=False)[: min(shape)]
        np.testing.assert_allclose(s, sigma ** (1 / h), atol=1e-7 * sigma[0] ** (1 / h))
    moved = q.act(point, g)
    # balance acts with g or, where that misses its tolerance, by the route R^T (G . W) (orbit.balance): the two
    # agree to the rounding that g amplifies, eps cond(g) (seen: 0.15 eps cond(g) at cond 5.6e6, Sandybridge kernels)
    amplified = max([1e-12] + [np.finfo(float).eps * np.linalg.cond(G) for G in g])
    assert max(np.abs(a - b).max() for a, b in zip(moved, balanced)) < amplified * np.sqrt(squared_norm(balanced))
    for G in g:
        np.testing.assert_allclose(G, G.T, atol=1e-12 * np.abs(G).max())
        assert np.linalg.eigvalsh(G).min() > 0


@pytest.mark.parametrize("shape", [(3, 5, 3), (4, 3, 5, 3, 4), (3, 3, 3, 3)])
def test_balanced_point_minimises_the_norm_along_one_parameter_subgroups(shape):
    rng = np.random.default_rng(11)
    balanced, _ = q.balance(q.act(q.init.small_random(shape, 1.0, rng=rng), q.random_gl(shape, rng=rng)))
    f0 = squared_norm(balanced)
    for _ in range(20):
        xi = []
        for d in shape[1:-1]:
            X = rng.standard_normal((d, d))
            xi.append((X + X.T) / np.linalg.norm(X + X.T))
        for t in (1e-3, 1e-1, 1.0):
            for sign in (1, -1):
                assert squared_norm(q.act(balanced, tuple(expm(sign * t * X) for X in xi))) > f0 * (1 + 1e-3 * t**2)
    for _ in range(20):  # and against arbitrary group elements
        assert squared_norm(q.act(balanced, q.random_gl(shape, rng=rng, spread=0.3))) >= f0 * (1 - 1e-12)
    # skew generators move along the orthogonal orbit: the norm does not change
    skew = tuple((lambda X: X - X.T)(rng.standard_normal((d, d))) for d in shape[1:-1])
    assert abs(squared_norm(q.act(balanced, tuple(expm(X) for X in skew))) - f0) < 1e-10 * f0


@pytest.mark.parametrize("shape", [(8, 6, 6, 6, 8), (4, 3, 3, 4), (3, 3, 3, 3), (3, 5, 3)])
def test_trust_region_solver_agrees_with_the_closed_form(shape):
    point = q.act(q.init.small_random(shape, 1.0, rng=4), q.random_gl(shape, rng=5))
    f_min = q.orbit_infimum(point)
    solved, g_solved = q.balance(point, method="trust_region", balance_rtol=1e-11)
    closed, g_closed = q.balance(point)
    for balanced in (solved, closed):
        assert _imbalance(balanced) <= 1e-11
        assert abs(squared_norm(balanced) - f_min) <= 1e-11 * f_min
    if sum(d * d for d in shape[1:-1]) == q.vertical_space(point).shape[0]:  # free action: P unique
        for a, b in zip(g_solved, g_closed):
            np.testing.assert_allclose(a, b, atol=1e-8 * np.abs(b).max())


def test_trust_region_polishes_a_perturbed_start():
    shape = (4, 3, 5, 3, 4)
    point = q.act(q.init.small_random(shape, 1.0, rng=7), q.random_gl(shape, rng=8))
    closed = orbit._closed_form_balancing(point, 3)
    rng = np.random.default_rng(0)
    start = []
    for G in closed:
        E = 1e-3 * rng.standard_normal(G.shape)
        start.append((G + E).T @ (G + E))
    P, iterations, reason = orbit._minimise_kempf_ness(point, start, q.orbit_infimum(point), 1e-11, 100)
    assert "min grad norm" in reason and iterations < 20
    assert _imbalance(q.act(point, tuple(orbit._sqrt_spd(X) for X in P))) <= 1e-11


def test_closed_form_balancing_maps_onto_the_balanced_lift():
    shape = (3, 5, 3, 5, 3)  # hidden layers wider than the partial products: stabilisers
    point = q.act(q.init.small_random(shape, 1.0, rng=2), q.random_gl(shape, rng=3))
    g = orbit._closed_form_balancing(point, 3)
    lift = q.balanced_lift(q.end_to_end(point), shape)
    moved = q.act(point, g)
    assert max(np.abs(a - b).max() for a, b in zip(moved, lift)) < 1e-10


def test_balance_at_a_point_moved_by_an_ill_conditioned_element_keeps_the_closed_form_accuracy():
    # The closed form maps this point onto the balanced lift to ~eps cond(g); acting with its SPD polar
    # factor directly lost eps cond to 1.4e-10 > tol, and the trust-region polish then stalled on
    # the non-compact stabiliser of the wide middle layer (RuntimeError).
    shape = (1, 1, 2, 1, 1)
    rng = np.random.default_rng(1)
    point = q.init.balanced(shape, scale=1.0, rng=rng)
    g = []
    for scales in ([100.0], [1.0, 1e4], [100.0]):  # factors of condition 1, 1e4, 1, determinant +-1
        d = len(scales)
        Q1, Q2 = q.random_orthogonal((1, d, 1), rng)[0], q.random_orthogonal((1, d, 1), rng)[0]
        g.append((Q1 * np.array(scales)) @ Q2 / 100)
    g = tuple(g)
    moved = q.act(point, g)
    balanced, P = q.balance(moved)
    assert _imbalance(balanced) <= 1e-10
    assert np.linalg.cond(P[1]) > 1e5  # the SPD factor is ill-conditioned
    # the closed form reaches the balanced lift through g, of condition 1e4: a relative error of order eps cond(g)
    # (1.4e-12 on an Intel Xeon with OpenBLAS's SkylakeX and Sandybridge kernels, 3e-13 with Haswell's)
    assert abs(squared_norm(balanced) - q.orbit_infimum(moved)) <= 4 * np.finfo(float).eps * 1e4 * squared_norm(balanced)


def test_balance_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="method must be"):
        q.balance(q.init.small_random((2, 2, 2), 1.0, rng=0), method="newton")


def _random_spd_product(shape, rng):
    out = []
    for d in shape[1:-1]:
        X = rng.standard_normal((d, d))
        out.append(X @ X.T + d * np.eye(d))
    return out


def _random_symmetric(shape, rng):
    return [(lambda X: X + X.T)(rng.standard_normal((d, d))) for d in shape[1:-1]]


@pytest.mark.parametrize("shape", [(3, 4, 2, 5), (2, 3, 2), (3, 3, 4, 2, 3)])
def test_kempf_ness_gradient_and_hessian_match_finite_differences(shape):
    rng = np.random.default_rng(0)
    point = q.init.small_random(shape, 1.0, rng=rng)
    P = _random_spd_product(shape, rng)
    Xi = _random_symmetric(shape, rng)
    eps = 1e-6
    plus = [A + eps * X for A, X in zip(P, Xi)]
    minus = [A - eps * X for A, X in zip(P, Xi)]
    directional = (orbit._kempf_ness_cost(point, plus) - orbit._kempf_ness_cost(point, minus)) / (2 * eps)
    gradient = orbit._kempf_ness_gradient(point, P)
    assert abs(directional - sum(np.sum(G * X) for G, X in zip(gradient, Xi))) < 1e-7 * (1 + abs(directional))
    difference = [
        (a - b) / (2 * eps)
        for a, b in zip(orbit._kempf_ness_gradient(point, plus), orbit._kempf_ness_gradient(point, minus))
    ]
    hessian = orbit._kempf_ness_hessian(point, P, Xi)
    scale = max(np.abs(H).max() for H in hessian)
    assert max(np.abs(a - b).max() for a, b in zip(difference, hessian)) < 1e-7 * (1 + scale)
    # the cost is ||P^{1/2} . W||^2 and its Riemannian gradient P^{1/2} grad P^{1/2} is mu(P^{1/2} . W)
    G = tuple(orbit._sqrt_spd(A) for A in P)
    moved = q.act(point, G)
    assert abs(orbit._kempf_ness_cost(point, P) - squared_norm(moved)) < 1e-10 * squared_norm(moved)
    for S, grad, mu in zip(G, gradient, q.moment_map(moved)):
        np.testing.assert_allclose(S @ grad @ S, mu, atol=1e-10 * (1 + np.abs(mu).max()))


def test_balance_of_closed_rank_deficient_points():
    rng = np.random.default_rng(3)
    for shape in [(3, 4, 4, 3), (4, 3, 5, 3, 4), (3, 5, 3, 5, 3)]:
        W = rng.standard_normal((shape[-1], 1)) @ rng.standard_normal((1, shape[0]))
        point = q.act(q.balanced_lift(W, shape), q.random_gl(shape, rng=rng))
        balanced, _ = q.balance(point)
        assert _imbalance(balanced) <= 1e-8
        assert abs(squared_norm(balanced) - q.orbit_infimum(point)) <= 1e-9 * squared_norm(balanced)


def test_balance_trivial_cases():
    W = np.arange(6.0).reshape(2, 3)
    balanced, g = q.balance((W,))
    assert g == () and np.array_equal(balanced[0], W)
    zero = (np.zeros((3, 2)), np.zeros((2, 3)))
    balanced, g = q.balance(zero)
    assert squared_norm(balanced) == 0 and np.array_equal(g[0], np.eye(3))


def test_non_closed_orbit_gets_a_clear_error_with_the_infimum():
    point = (np.eye(2), np.diag([1.0, 0.0]))  # input 2 enters the hidden layer and dies
    assert not q.is_closed_orbit(point)
    with pytest.raises(q.OrbitNotClosedError, match="not closed") as info:
        q.balance(point)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.infimum == pytest.approx(2.0, abs=1e-14)
    assert error.layer_ranks == (2, 1) and error.rank == 1
    assert "W_1 has rank 2" in str(error)
    np.testing.assert_allclose(q.end_to_end(error.limit), q.end_to_end(point), atol=1e-14)
    assert _imbalance(error.limit) < 1e-15
    # the infimum is approached along g_t = diag(1, t), t -> 0, and never reached
    norms = [squared_norm(q.act(point, (np.diag([1.0, t]),))) for t in (1e-1, 1e-3, 1e-6)]
    assert all(n > 2.0 for n in norms) and norms[-1] - 2.0 < 1e-11


def test_equal_layer_ranks_do_not_make_an_orbit_closed():
    # widths (1, 2, 2, 1): every layer has rank 1, but im W_1 = ker W_2 so W = 0
    point = (np.array([[1.0], [0.0]]), np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[1.0, 0.0]]))
    assert [np.linalg.matrix_rank(W) for W in point] == [1, 1, 1]
    assert np.array_equal(q.end_to_end(point), np.zeros((1, 1)))
    assert not q.is_closed_orbit(point)
    with pytest.raises(q.OrbitNotClosedError) as info:
        q.balance(point)
    assert info.value.infimum == 0.0


def test_generic_points_of_uneven_architectures_are_not_closed():
    assert not q.is_closed_orbit(q.init.small_random((3, 4, 5, 2), 1.0, rng=0))
    assert q.is_closed_orbit(q.init.small_random((3, 5, 3), 1.0, rng=0))


def test_balanced_lift():
    rng = np.random.default_rng(2)
    shape = (4, 3, 5, 3)
    W = rng.standard_normal((3, 4))
    lift = q.balanced_lift(W, shape)
    assert q.widths_of(lift) == shape
    np.testing.assert_allclose(q.end_to_end(lift), W, atol=1e-13)
    assert _imbalance(lift) < 1e-15
    assert squared_norm(lift) == pytest.approx(q.orbit_infimum(lift), rel=1e-13)
    with pytest.raises(ValueError, match="rank above min"):
        q.balanced_lift(rng.standard_normal((3, 4)), (4, 2, 3))
    with pytest.raises(ValueError, match=r"shape \(d_h, d_0\)"):
        q.balanced_lift(W.T, shape)


# ------------------------------------------------------------------------------- Procrustes
def test_two_layer_alignment_is_exact():
    shape = (3, 4, 2)
    rng = np.random.default_rng(0)
    point, reference = q.init.small_random(shape, 1.0, rng=rng), q.init.small_random(shape, 1.0, rng=rng)
    aligned, R = q.align_orthogonal(point, reference)
    best = squared_norm(tuple(a - b for a, b in zip(aligned, reference)))
    for _ in range(300):  # no orthogonal element does better
        other = q.act(point, q.random_orthogonal(shape, rng=rng))
        assert squared_norm(tuple(a - b for a, b in zip(other, reference))) >= best - 1e-12
    rotated = q.act(reference, q.random_orthogonal(shape, rng=rng))
    back, _ = q.align_orthogonal(rotated, reference)
    assert max(np.abs(a - b).max() for a, b in zip(back, reference)) < 1e-12


@pytest.mark.parametrize("shape", [(3, 4, 4, 2), (2, 3, 4, 3, 2), (5, 3, 3, 5)])
def test_deep_alignment_recovers_orbit_points_and_is_stationary(shape):
    rng = np.random.default_rng(1)
    reference = q.init.small_random(shape, 1.0, rng=rng)
    R = q.random_orthogonal(shape, rng=rng)
    back, found = q.align_orthogonal(q.act(reference, R), reference)
    assert max(np.abs(a - b).max() for a, b in zip(back, reference)) < 1e-10
    point = q.init.small_random(shape, 1.0, rng=rng)
    aligned, R = q.align_orthogonal(point, reference)
    start = squared_norm(tuple(a - b for a, b in zip(point, reference)))
    assert squared_norm(tuple(a - b for a, b in zip(aligned, reference))) <= start
    # first-order optimality: aligned - reference is orthogonal to the orbit at the aligned point
    difference = tuple(a - b for a, b in zip(aligned, reference))
    vertical = q.vertical_projection(aligned, difference, group="orthogonal")
    assert np.sqrt(squared_norm(vertical)) < 1e-9 * (1 + np.sqrt(squared_norm(difference)))


def test_alignment_rejects_mismatched_points():
    with pytest.raises(ValueError, match="widths"):
        q.align_orthogonal(q.init.small_random((2, 3, 2), 1.0, rng=0), q.init.small_random((2, 4, 2), 1.0, rng=0))
    with pytest.raises(ValueError, match="n_starts"):
        q.align_orthogonal(q.init.small_random((2, 3, 3, 2), 1.0, rng=0), q.init.small_random((2, 3, 3, 2), 1.0, rng=1), n_starts=0)


# ------------------------------------------------------------------------------- rescaling
@settings(max_examples=30, deadline=None)
@given(st.sampled_from([(3, 4, 5, 2), (2, 6, 2), (4, 3, 3, 3, 4)]), seeds)
def test_rescaling_balance_equalises_each_neuron_and_minimises_the_norm(shape, seed):
    point = q.act(q.init.small_random(shape, 1.0, rng=seed), q.random_rescaling(shape, rng=seed + 1))
    balanced, D = q.balance_rescaling(point)
    for C in q.conserved_quantities(balanced):  # incoming = outgoing squared norm per neuron
        assert np.abs(np.diag(C)).max() <= 1e-10 * squared_norm(balanced)
    np.testing.assert_allclose(q.end_to_end(balanced), q.end_to_end(point), atol=1e-10 * np.abs(q.end_to_end(point)).max())
    f0 = squared_norm(balanced)
    assert f0 <= squared_norm(point) * (1 + 1e-12)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        assert squared_norm(q.act(balanced, q.random_rescaling(shape, rng=rng, spread=0.3))) >= f0 * (1 - 1e-12)
    for G in D:
        assert np.array_equal(G, np.diag(np.diag(G))) and np.diag(G).min() > 0


def test_rescaling_orbit_with_a_stranded_neuron_is_not_closed():
    W1 = np.array([[1.0, 2.0], [0.5, 1.0]])
    W2 = np.array([[1.0, 0.0]])  # hidden neuron 2 receives signal and passes none on
    with pytest.raises(q.OrbitNotClosedError, match=r"W_1\[1, 0\]"):
        q.balance_rescaling((W1, W2))
    # a neuron with no weights at all is harmless
    W1 = np.array([[1.0, 2.0], [0.0, 0.0]])
    balanced, D = q.balance_rescaling((W1, W2))
    assert D[0][1, 1] == 1.0
