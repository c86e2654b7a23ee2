"""The geomstats fiber bundle of the orthogonal hidden symmetry and its quotient metric."""

import subprocess
import sys

import numpy as np
import pytest

import quotient as q
from quotient.bundle import HiddenOrthogonalAction, OrthogonalBundle, ParameterSpace


def _space(widths):
    space = ParameterSpace(widths)
    quotient = space.equip_with_quotient()
    return space, quotient


def _skew_vertical(space, x, rng):
    xi = tuple((lambda X: X - X.T)(rng.standard_normal((d, d))) for d in space.widths[1:-1])
    return q.to_vector(q.vertical_vector(space.to_layers(x), xi))


def test_importing_the_bundle_leaves_logging_alone_and_quotient_free_of_geomstats():
    code = (
        "import logging, sys\n"
        "root = logging.getLogger(); level, handlers = root.level, list(root.handlers)\n"
        "import quotient\n"
        "assert 'geomstats' not in sys.modules and 'pymanopt' not in sys.modules\n"
        "import quotient.bundle\n"
        "assert 'geomstats' in sys.modules\n"
        "assert root.level == level and root.handlers == handlers, (root.level, root.handlers)\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)


def test_equip_with_quotient_builds_the_bundle_and_quotient_metric():
    space, quotient = _space((3, 4, 4, 2))
    assert isinstance(space.fiber_bundle, OrthogonalBundle)
    assert type(quotient.metric).__name__ == "QuotientMetric"
    assert space.dim == q.network.n_params((3, 4, 4, 2)) == space.shape[0]
    assert isinstance(space.group_action, HiddenOrthogonalAction)


def test_group_action_matches_quotient_act():
    widths = (2, 3, 3, 2)
    space, _ = _space(widths)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(space.dim)
    R = q.random_orthogonal(widths, rng=rng)
    np.testing.assert_allclose(space.group_action(R, x), q.to_vector(q.act(space.to_layers(x), R)), atol=1e-15)
    batch = rng.standard_normal((3, space.dim))
    assert space.group_action(R, batch).shape == (3, space.dim)
    with pytest.raises(ValueError, match="not orthogonal"):
        space.group_action(q.random_gl(widths, rng=rng), x)


def test_vertical_and_horizontal_projections_follow_geomstats_conventions():
    widths = (3, 4, 5, 2)
    space, _ = _space(widths)
    bundle = space.fiber_bundle
    rng = np.random.default_rng(1)
    x, v = rng.standard_normal(space.dim), rng.standard_normal(space.dim)
    vertical, horizontal = bundle.vertical_projection(v, x), bundle.horizontal_projection(v, x)
    np.testing.assert_allclose(vertical + horizontal, v, atol=1e-13)
    assert abs(vertical @ horizontal) < 1e-12
    assert bundle.is_vertical(vertical, x) and bundle.is_horizontal(horizontal, x)
    assert not bundle.is_vertical(v, x) and not bundle.is_horizontal(v, x)
    assert bundle.is_vertical(_skew_vertical(space, x, rng), x)
    # geomstats's defaults on top of the overrides: the tangent submersion is the horizontal
    # projection, and the horizontal lift inverts it on the horizontal space
    np.testing.assert_allclose(bundle.tangent_riemannian_submersion(v, x), horizontal, atol=1e-13)
    np.testing.assert_allclose(bundle.horizontal_lift(horizontal, fiber_point=x), horizontal, atol=1e-13)
    # the O-vertical space is smaller than the GL one: a symmetric generator is not O-vertical
    xi = tuple((lambda X: X + X.T)(rng.standard_normal((d, d))) for d in widths[1:-1])
    assert not bundle.is_vertical(q.to_vector(q.vertical_vector(space.to_layers(x), xi)), x)
    # batches of tangent vectors, at one base point or at one base point each
    vs, xs = rng.standard_normal((4, space.dim)), rng.standard_normal((4, space.dim))
    np.testing.assert_allclose(bundle.vertical_projection(vs, x)[2], bundle.vertical_projection(vs[2], x), atol=1e-14)
    np.testing.assert_allclose(bundle.vertical_projection(vs, xs)[1], bundle.vertical_projection(vs[1], xs[1]), atol=1e-14)
    assert bundle.is_horizontal(np.stack([horizontal, horizontal]), x).tolist() == [True, True]


def test_gradient_is_horizontal_for_the_bundle():
    widths = (3, 4, 4, 2)
    space, _ = _space(widths)
    problem = q.Problem.from_sigma([2.0, 1.0], widths)
    x = np.random.default_rng(2).standard_normal(space.dim)
    gradient = q.to_vector(problem.gradient(space.to_layers(x)))
    assert space.fiber_bundle.is_horizontal(gradient, x, atol=1e-12)


@pytest.mark.parametrize("widths", [(2, 3, 2), (3, 4, 4, 2), (2, 3, 3, 3, 2)])
def test_quotient_distance_is_symmetric_zero_on_orbits_and_below_total_distance(widths):
    space, quotient = _space(widths)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(space.dim), 0.3 * rng.standard_normal(space.dim)
    y = x + y  # nearby points: the multi-start alignment is reliable there for h >= 3
    distance = quotient.metric.dist(x, y)
    assert abs(distance - quotient.metric.dist(y, x)) < 1e-10 * (1 + distance)
    assert distance <= np.linalg.norm(x - y) + 1e-12
    R = q.random_orthogonal(widths, rng=rng)
    assert quotient.metric.dist(x, space.group_action(R, x)) < 1e-9
    # invariance: moving either point along its orbit does not change the distance
    moved = quotient.metric.dist(space.group_action(R, x), space.group_action(q.random_orthogonal(widths, rng=rng), y))
    assert abs(moved - distance) < 1e-9 * (1 + distance)


def test_two_layer_quotient_distance_is_the_bures_wasserstein_distance_of_gram_matrices():
    # h = 2: the invariants of O(d_1) acting on M = [W_1 | W_2^T] are the Gram matrix M^T M, and
    # min_R ||R M_x - M_y||^2 = tr A + tr B - 2 tr (A^{1/2} B A^{1/2})^{1/2} (Bures-Wasserstein)
    widths = (2, 5, 3)  # d_1 >= d_0 + d_2: full-rank Gram matrices, accurate square roots
    space, quotient = _space(widths)
    rng = np.random.default_rng(4)

    def sqrt_psd(A):
        values, vectors = np.linalg.eigh(A)
        return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T

    for _ in range(5):
        x, y = rng.standard_normal(space.dim), rng.standard_normal(space.dim)
        grams = []
        for z in (x, y):
            W1, W2 = space.to_layers(z)
            M = np.concatenate([W1, W2.T], axis=1)
            grams.append(M.T @ M)
        A, B = grams
        root = sqrt_psd(A)
        bures = np.trace(A) + np.trace(B) - 2 * np.trace(sqrt_psd(root @ B @ root))
        assert abs(quotient.metric.squared_dist(x, y) - bures) < 1e-9 * (1 + bures)


def test_log_exp_and_geodesics_of_the_quotient():
    widths = (3, 4, 4, 2)
    space, quotient = _space(widths)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(space.dim)
    y = x + 0.5 * rng.standard_normal(space.dim)
    log = quotient.metric.log(y, x)
    assert space.fiber_bundle.is_horizontal(log, x, atol=1e-9)
    assert abs(np.linalg.norm(log) - quotient.metric.dist(x, y)) < 1e-9
    assert quotient.metric.dist(quotient.metric.exp(log, x), y) < 1e-8  # lands on y's orbit
    midpoint = quotient.metric.geodesic(initial_point=x, end_point=y)(0.5)[0]
    half = quotient.metric.dist(x, y) / 2
    assert abs(quotient.metric.dist(x, midpoint) - half) < 1e-8
    assert abs(quotient.metric.dist(midpoint, y) - half) < 1e-8
    v = rng.standard_normal(space.dim)
    horizontal = space.fiber_bundle.horizontal_projection(v, x)
    assert abs(quotient.metric.inner_product(v, v, fiber_point=x) - horizontal @ horizontal) < 1e-10


def test_align_is_registration_to_the_base_point():
    widths = (2, 3, 3, 2)
    space, _ = _space(widths)
    rng = np.random.default_rng(6)
    x = rng.standard_normal(space.dim)
    R = q.random_orthogonal(widths, rng=rng)
    np.testing.assert_allclose(space.fiber_bundle.align(space.group_action(R, x), x), x, atol=1e-10)
    batch = np.stack([space.group_action(q.random_orthogonal(widths, rng=rng), x) for _ in range(3)])
    np.testing.assert_allclose(space.fiber_bundle.align(batch, x), np.stack([x] * 3), atol=1e-10)
    with pytest.raises(ValueError, match="batch shapes"):
        space.fiber_bundle.align(batch, batch[:2])


def test_flows_from_one_orbit_stay_at_quotient_distance_zero():
    # the gradient flow is O-equivariant, so its curve in the quotient does not depend on the
    # representative: quotient distances between two flows from one orbit stay zero
    widths = (2, 3, 3, 2)
    space, quotient = _space(widths)
    problem = q.Problem.from_sigma([2.0, 1.0], widths)
    x = 0.5 * np.random.default_rng(7).standard_normal(space.dim)
    R = q.random_orthogonal(widths, rng=8)
    options = dict(t_eval=np.linspace(0, 2, 3), rtol=1e-12, atol=1e-14, progress=False)
    first = q.gradient_flow(problem, space.to_layers(x), 2.0, **options)
    second = q.gradient_flow(problem, q.act(space.to_layers(x), R), 2.0, **options)
    for k in range(3):
        a, b = q.to_vector(first.point(k)), q.to_vector(second.point(k))
        assert quotient.metric.dist(a, b) < 1e-8


def test_parameter_space_round_trip_and_rotation_invariance_of_the_metric():
    widths = (2, 3, 2)
    space, _ = _space(widths)
    point = q.init.small_random(widths, 1.0, rng=0)
    assert all(np.array_equal(a, b) for a, b in zip(space.to_layers(space.from_layers(point)), point))
    x, y = space.from_layers(point), np.random.default_rng(1).standard_normal(space.dim)
    R = q.random_orthogonal(widths, rng=2)
    assert abs(space.metric.dist(x, y) - space.metric.dist(space.group_action(R, x), space.group_action(R, y))) < 1e-12
