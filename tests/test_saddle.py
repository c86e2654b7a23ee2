"""Stable and unstable directions at saddles (quotient/saddle.py).

Oracles: the explicit unstable eigenvalue sigma_j^{(h-2)/h} (sigma_j - sigma_i) at canonical
points (math-spec 3.3), test case TC12 (the stable ray of the scalar chain), the algebraic
return rate ((h - 2) sigma t)^{-1/(h-2)} (math-spec 6.2), and the gradient flow itself: flows
started on the returned curves leave or come back as announced, and stay on invariant curves.
"""

import numpy as np
import pytest

import quotient as q


def _problem(sigma, widths):
    return q.Problem.from_sigma(np.asarray(sigma, dtype=float), widths)


def _distance(a, b):
    return float(np.sqrt(sum(np.sum((x - y) ** 2) for x, y in zip(a, b))))


def _flow(problem, start, t_final, times=None, gradient_atol=None):
    return q.gradient_flow(
        problem, start, t_final, t_eval=times, progress=False, rtol=1e-11, atol=1e-13, gradient_atol=gradient_atol
    )


def _descend(problem, start, t_final):
    """Flow until the gradient is 1e-7: the end is (close to) the critical point the flow reaches."""
    return _flow(problem, start, t_final, gradient_atol=1e-7)


SIGMA = [3.0, 2.0, 1.0]
WIDTHS = (3, 3, 3, 3)


def test_strict_saddle_unstable_direction_is_the_negative_eigenvector():
    problem = _problem(SIGMA, WIDTHS)
    saddle = q.canonical_point(problem, (2,))
    directions = q.unstable_directions(problem, saddle)
    hessian = [d for d in directions if d.mechanism == "hessian"]
    assert len(hessian) == 1 and hessian[0].order == 2 and hessian[0].kind == "unstable"
    # lambda = sigma_j^{(h-2)/h} (sigma_j - sigma_i), j = 2 learned, i = 1 unlearned
    assert hessian[0].eigenvalue == pytest.approx(2.0 ** (1 / 3) * (2.0 - 3.0))
    d = hessian[0].direction
    Hd = problem.hvp(saddle, d)
    assert np.allclose(q.to_vector(Hd), hessian[0].eigenvalue * q.to_vector(d), atol=1e-12)
    assert _distance(d, tuple(np.zeros_like(x) for x in d)) == pytest.approx(1.0)


@pytest.mark.parametrize("learned, lower", [((2,), 2.5), ((1, 3), 0.5), ((2, 3), 2.0)])
def test_flow_along_a_strict_unstable_direction_leaves_and_lowers_the_loss(learned, lower):
    problem = _problem(SIGMA, WIDTHS)
    saddle = q.canonical_point(problem, learned)
    value = problem.loss(saddle)
    direction = q.unstable_directions(problem, saddle)[0]
    assert direction.mechanism == "hessian"
    start = direction.curve(1e-4)
    assert problem.loss(start) < value
    trajectory = _descend(problem, start, 300.0)
    assert trajectory.loss[-1] <= lower + 1e-6  # a lower critical value (swap of the mode)
    assert _distance(trajectory.point(-1), saddle) > 0.5


@pytest.mark.parametrize("widths, learned", [((3, 3, 3, 3), (1,)), ((3, 3, 3, 3), ()), ((2, 3, 3, 3, 2), (1,)), ((3, 2, 4, 3), ())])
def test_non_strict_saddle_escapes_along_mode_curves_of_order_h(widths, learned):
    problem = _problem(SIGMA[: min(widths[0], widths[-1])], widths)
    saddle = q.canonical_point(problem, learned)
    assert q.classify(problem, saddle) == "nonstrict_saddle"
    value = problem.loss(saddle)
    h = len(widths) - 1
    directions = q.unstable_directions(problem, saddle)
    unlearned = [i for i in range(1, len(problem.sigma) + 1) if i not in learned]
    assert [d.mode for d in directions] == unlearned  # no Hessian direction: every one is a mode curve
    for d in directions:
        assert d.mechanism == "mode" and d.order == h and d.invariant
        sigma_i = problem.sigma[d.mode - 1]
        v = 0.05
        assert problem.loss(d.curve(v)) == pytest.approx(value - sigma_i * v**h + 0.5 * v ** (2 * h))
        trajectory = _descend(problem, d.curve(v), 5e3)
        assert trajectory.loss[-1] == pytest.approx(value - 0.5 * sigma_i**2, abs=1e-6)


def test_flow_stays_on_an_invariant_mode_curve():
    problem = _problem(SIGMA, WIDTHS)
    saddle = q.canonical_point(problem, (1,))
    curve = next(d for d in q.unstable_directions(problem, saddle) if d.mode == 2)
    trajectory = _flow(problem, curve.curve(0.05), 200.0, np.linspace(0, 200, 41))
    for k in range(len(trajectory)):
        point = trajectory.point(k)
        v = float(np.linalg.norm(point[0][:, 1]))  # the edge from f_2 into the hidden layer
        assert _distance(point, curve.curve(v)) <= 1e-8


def test_tc12_stable_ray_of_the_scalar_chain():
    problem = _problem([1.0], (1, 1, 1, 1))
    origin = tuple(np.zeros((1, 1)) for _ in range(3))
    (stable,) = q.stable_directions(problem, origin)
    assert stable.mechanism == "mode" and stable.order == 3 and stable.kind == "stable"
    start = stable.curve(0.5)
    assert sorted(float(w[0, 0]) for w in start) == [-0.5, 0.5, 0.5]
    times = np.array([0.0, 1.0, 5.0, 20.0, 100.0, 1000.0])
    trajectory = _flow(problem, start, 1000.0, times)
    expected = [0.32607742584, 0.140660505007, 0.045211685061, 0.009792482615, 0.000997885284]
    for layer in trajectory.points:
        assert np.allclose(np.abs(layer[1:, 0, 0]), expected, rtol=1e-8)
    (unstable,) = q.unstable_directions(problem, origin)
    assert np.prod([w[0, 0] for w in unstable.curve(0.5)]) > 0


def test_flow_along_a_stable_mode_curve_returns_to_the_saddle_algebraically():
    problem = _problem(SIGMA, WIDTHS)
    saddle = q.canonical_point(problem, (1,))
    stable = [d for d in q.stable_directions(problem, saddle) if d.mechanism == "mode"]
    assert [d.mode for d in stable] == [2, 3]
    for d in stable:
        sigma_i = problem.sigma[d.mode - 1]
        times = np.array([0.0, 10.0, 100.0, 1000.0, 1e4])
        trajectory = _flow(problem, d.curve(0.3), 1e4, times)
        distances = [_distance(trajectory.point(k), saddle) for k in range(len(times))]
        assert all(np.diff(distances) < 0)
        # v(t) -> ((h - 2) sigma_i t)^{-1/(h-2)} with h = 3: distance = sqrt(3) v
        assert distances[-1] == pytest.approx(np.sqrt(3) / (sigma_i * 1e4), rel=2e-2)
        assert trajectory.loss[-1] - problem.loss(saddle) < 1e-9


def test_flow_along_a_stable_hessian_direction_comes_back_to_the_fiber():
    problem = _problem(SIGMA, WIDTHS)
    saddle = q.canonical_point(problem, (2,))
    chosen = q.fiber(problem, (2,))
    stable = [d for d in q.stable_directions(problem, saddle) if d.mechanism == "hessian"]
    assert len(stable) == q.hessian_inertia(problem, saddle).positive == 4
    for d in stable:
        rate = d.eigenvalue
        start = d.curve(1e-3)
        trajectory = _flow(problem, start, 8.0 / rate, np.array([0.0, 8.0 / rate]))
        end = trajectory.point(-1)
        # the gradient (distance to the critical set, to first order) shrinks by about e^{-8}
        assert trajectory.gradient_norm[-1] <= 1e-2 * trajectory.gradient_norm[0]
        assert abs(problem.loss(end) - chosen.value) <= 1e-3 * abs(problem.loss(start) - chosen.value)


def test_tails_shorten_the_escape_order():
    """TC4(e): h = 4 with a tail of mode 2 already in W_1: the escape switches on 3 edges, not 4."""
    c = 2 ** 0.25
    point = (np.diag([c, 1.0]), np.diag([c, 0.0]), np.diag([c, 0.0]), np.diag([c, 0.0]))
    problem = _problem([2.0, 1.0], (2, 2, 2, 2, 2))
    (unstable,) = q.unstable_directions(problem, point)
    assert unstable.order == 3 and unstable.invariant
    for v in (0.02, 0.04):  # L falls like sigma_2 v^3 * 1 (the tail edge has weight 1)
        assert problem.loss(point) - problem.loss(unstable.curve(v)) == pytest.approx(v**3, rel=1e-2)
    trajectory = _descend(problem, unstable.curve(0.05), 3e3)
    assert trajectory.loss[-1] <= 1e-8


def test_mode_curves_at_a_non_orthogonal_point_lower_the_loss():
    c = 2 ** 0.25
    point0 = (np.diag([c, 1.0]), np.diag([c, 0.0]), np.diag([c, 0.0]), np.diag([c, 0.0]))
    problem = _problem([2.0, 1.0], (2, 2, 2, 2, 2))
    point = q.act(point0, q.random_gl(problem.widths, rng=3, spread=0.5))
    assert q.classify(problem, point) == "nonstrict_saddle"
    (unstable,) = q.unstable_directions(problem, point)
    assert unstable.order == 3 and not unstable.invariant
    start = unstable.curve(0.05)
    assert problem.loss(start) < problem.loss(point)
    assert _descend(problem, start, 3e3).loss[-1] <= 1e-8


def test_global_minimum_has_no_unstable_direction():
    problem = _problem(SIGMA, WIDTHS)
    minimum = q.canonical_point(problem, (1, 2, 3))
    assert q.unstable_directions(problem, minimum) == []
    stable = q.stable_directions(problem, minimum)
    assert len(stable) == 9 and all(d.mechanism == "hessian" and d.eigenvalue > 0 for d in stable)


def test_directions_need_a_critical_point():
    problem = _problem(SIGMA, WIDTHS)
    point = q.init.small_random(problem.widths, 0.5, rng=0)
    for function in (q.unstable_directions, q.stable_directions):
        with pytest.raises(ValueError, match=r"not a critical point: \|\|grad L\|\| ="):
            function(problem, point)


# ---------------------------------------------------------------------------------------- at any point of a fiber (issue 11)
def _moved_saddle(learned, rng, spread=0.7):
    problem = _problem(SIGMA, WIDTHS)
    point = q.act(q.canonical_point(problem, learned), q.random_gl(problem.widths, rng=rng, spread=spread))
    return problem, point


def test_unstable_hessian_directions_at_a_moved_strict_saddle_lower_the_loss():
    """Descent directions move with the action: at g.x they are negative-curvature directions."""
    problem, point = _moved_saddle((2,), 4)
    value = problem.loss(point)
    (direction,) = [d for d in q.unstable_directions(problem, point) if d.mechanism == "hessian"]
    d = q.to_vector(direction.direction)
    assert np.linalg.norm(d) == pytest.approx(1.0)
    curvature = d @ problem.hessian(point) @ d
    assert curvature < 0 and direction.eigenvalue == pytest.approx(curvature, rel=1e-10)
    for v in (1e-3, 2e-3):  # the loss falls like lambda v^2 / 2
        assert problem.loss(direction.curve(v)) - value == pytest.approx(0.5 * curvature * v**2, rel=1e-2)
    trajectory = _descend(problem, direction.curve(1e-3), 300.0)
    assert trajectory.loss[-1] <= 2.5 + 1e-6


def test_stable_hessian_directions_at_a_moved_saddle_return_exponentially():
    problem, point = _moved_saddle((2,), 5)
    stable = [d for d in q.stable_directions(problem, point) if d.mechanism == "hessian"]
    assert len(stable) == q.hessian_inertia(problem, point).positive == 4
    for d in stable:
        rate = d.eigenvalue
        trajectory = _flow(problem, d.curve(1e-4), 6.0 / rate, np.array([0.0, 3.0 / rate, 6.0 / rate]))
        # the gradient falls like e^{-lambda t}: measured order of return 2 (exponential)
        ratio = trajectory.gradient_norm[2] / trajectory.gradient_norm[1]
        assert ratio == pytest.approx(np.exp(-3.0), rel=0.2)
        assert abs(trajectory.loss[-1] - problem.loss(point)) < 1e-9


def test_stable_mode_curves_are_returned_only_where_they_are_invariant():
    """At fiber samples (h = 4) the returned stable mode curves come back at order h, v ~ t^{-1/2};
    a curve carried back from a non-orthogonal split is not on the stable set: the flow from it
    leaves the saddle and ends lower (why such curves are not returned)."""
    from quotient.saddle import _mode_directions

    problem = _problem(SIGMA, (3, 3, 3, 3, 3))
    samples = q.fiber(problem, (1,)).sample(12, rng=0, spread=0.5)
    points = [tuple(layer[k] for layer in samples) for k in (4, 8)]
    returned = carried = 0
    times = np.array([0.0, 3e2, 3e3])
    for point in points:
        assert q.classify(problem, point) == "nonstrict_saddle"
        stable = [d for d in q.stable_directions(problem, point) if d.mechanism == "mode"]
        assert all(d.invariant for d in stable)
        for d in stable[:1]:
            trajectory = _flow(problem, d.curve(0.2), 3e3, times)
            distances = [_distance(trajectory.point(k), point) for k in range(3)]
            assert distances[1] / distances[2] == pytest.approx(np.sqrt(10.0), rel=5e-2)  # order h = 4
            assert trajectory.loss[-1] - problem.loss(point) < 1e-6
            returned += 1
        for d in [d for d in _mode_directions(problem, point, "stable", 1e-8) if not d.invariant][:1]:
            trajectory = _flow(problem, d.curve(0.2), 3e2, times[:2])
            assert trajectory.loss[-1] < problem.loss(point) - 0.4 and _distance(trajectory.point(-1), point) > 1.0
            carried += 1
    assert returned >= 1 and carried >= 1
