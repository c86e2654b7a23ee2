"""Hessian at a global minimum: convergence rate, sharpness, stable step (quotient/minimum.py)."""

import numpy as np
import pytest

import quotient as q
from quotient import init

FLOW = dict(rtol=1e-13, atol=1e-18, progress=False)


def _minimum(problem):
    """The canonical global minimum, built independently: W_i[k, k] = sigma_k^{1/h} for k <= r."""
    r = min(problem.rank_bound, problem.sigma.size)
    return init.decoupled(problem.widths, problem.sigma[:r] ** (1 / problem.depth))


def _decay_rate(trajectory, low=1e-22, high=1e-12):
    """Fitted exponential rate of the loss gap (L* = 0) over the window low < gap < high."""
    window = (trajectory.loss > low) & (trajectory.loss < high)
    assert window.sum() > 30
    return -np.polyfit(trajectory.times[window], np.log(trajectory.loss[window]), 1)[0]


@pytest.mark.parametrize(("depth", "expected"), [(2, 2.000000), (3, 2.381102), (4, 2.828427)])
def test_tc13_rate_at_the_canonical_minimum(depth, expected):
    problem = q.Problem.from_sigma([2.0, 1.0, 0.5], (3,) * (depth + 1))
    assert q.convergence_rate(problem) == pytest.approx(expected, rel=1e-6)
    assert q.convergence_rate(problem) == pytest.approx(2 * depth * 0.5 ** (2 - 2 / depth), rel=1e-12)


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_tc13_loss_decays_at_that_rate_along_the_flow(depth):
    """Balanced aligned start u0 = 0.8 sigma: the measured decay of L(t) matches 2 lambda_min to 1e-4."""
    problem = q.Problem.from_sigma([2.0, 1.0, 0.5], (3,) * (depth + 1))
    rate = q.convergence_rate(problem)
    t_final = 40.0 / rate
    trajectory = q.gradient_flow(problem, init.spectral(problem, 0.8 * problem.sigma, rng=0), t_final, t_eval=4001, **FLOW)
    assert _decay_rate(trajectory) == pytest.approx(rate, rel=1e-4)


def test_rate_at_a_nearby_unbalanced_minimum():
    """A random perturbation of the minimum converges to another (unbalanced) minimum with its own
    Hessian; the loss decays at that point's rate (the next eigenvalues are close, so only 2%)."""
    problem = q.Problem.from_sigma([2.0, 1.0, 0.5], (3, 3, 3, 3))
    rng = np.random.default_rng(1)
    start = tuple(W + 0.05 * rng.standard_normal(W.shape) for W in _minimum(problem))
    trajectory = q.gradient_flow(problem, start, 20.0, t_eval=4001, **FLOW)
    rate = q.convergence_rate(problem, trajectory.point(-1))
    assert rate != pytest.approx(q.convergence_rate(problem), rel=1e-3)
    assert _decay_rate(trajectory) == pytest.approx(rate, rel=0.02)


@pytest.mark.parametrize(
    ("widths", "sigma"),
    [((3, 2, 4, 3), [3.0, 2.0, 1.0]), ((4, 3, 3, 2), [3.0, 2.0]), ((2, 5, 3), [2.0, 1.0]), ((3, 4, 3), [3.0, 2.5, 1.0])],
)
def test_rate_matches_the_spectrum_formula(widths, sigma):
    """math-spec 5.7: lambda_min = min(h s_r^{2-2/h}, [r<m] s_r^{1-2/h}(s_r - s_{r+1}), [d_0 != d_h] s_r^{2-2/h})."""
    problem = q.Problem.from_sigma(sigma, widths)
    h, r, s = problem.depth, problem.rank_bound, np.asarray(sigma)
    candidates = [h * s[r - 1] ** (2 - 2 / h)]
    if r < s.size:
        candidates.append(s[r - 1] ** (1 - 2 / h) * (s[r - 1] - s[r]))
    if widths[0] != widths[-1]:
        candidates.append(s[r - 1] ** (2 - 2 / h))
    assert q.convergence_rate(problem) == pytest.approx(2 * min(candidates), rel=1e-10)


def test_default_point_is_the_canonical_minimum():
    problem = q.Problem.from_sigma([2.0, 1.0, 0.5], (3, 4, 2, 3))
    assert q.convergence_rate(problem) == pytest.approx(q.convergence_rate(problem, _minimum(problem)), rel=1e-12)
    assert q.sharpness(problem) == pytest.approx(q.sharpness(problem, _minimum(problem)), rel=1e-12)
    general = q.Problem.from_loss(q.PseudoHuberLoss(np.eye(2)), (2, 2, 2))
    with pytest.raises(ValueError, match="pass a global minimum"):
        q.stable_step(general)


def test_convergence_rate_rejects_points_that_are_not_minima():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2, 2))
    with pytest.raises(ValueError, match="not a critical point"):
        q.convergence_rate(problem, init.small_random(problem.widths, 0.5, rng=0))
    saddle = init.decoupled(problem.widths, [2.0 ** (1 / 3), 0.0])  # learned {1}: a critical point
    with pytest.raises(ValueError, match="not a global minimum"):
        q.convergence_rate(problem, saddle)


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_sharpness_at_the_canonical_minimum(depth):
    problem = q.Problem.from_sigma([3.0, 1.0], (2,) * (depth + 1))
    assert q.sharpness(problem) == pytest.approx(depth * 3.0 ** (2 - 2 / depth), rel=1e-12)
    assert q.stable_step(problem) == pytest.approx(2 / (depth * 3.0 ** (2 - 2 / depth)), rel=1e-12)


def test_sharpness_by_lanczos_agrees_with_dense(monkeypatch):
    from quotient import minimum

    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 5, 5, 3))
    dense = q.sharpness(problem)
    monkeypatch.setattr(minimum, "_DENSE_LIMIT", 10)
    assert q.sharpness(problem) == pytest.approx(dense, rel=1e-9)


@pytest.mark.parametrize("dense", [True, False])
def test_sharpest_direction_is_the_top_eigenpair(dense, monkeypatch):
    """H v = lambda v by Hessian-vector products, |v| = 1, and lambda above every eigenvalue of the dense Hessian."""
    from quotient import minimum

    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 4, 4, 3))
    point = init.small_random(problem.widths, 0.8, rng=3)
    eigenvalues = np.linalg.eigvalsh(problem.hessian(point))
    if not dense:
        monkeypatch.setattr(minimum, "_DENSE_LIMIT", 10)
    value, direction = q.sharpest_direction(problem, point)
    assert np.linalg.norm(direction) == pytest.approx(1.0, rel=1e-12)
    product = q.to_vector(problem.hvp(point, q.from_vector(direction, problem.widths)))
    assert np.linalg.norm(product - value * direction) <= 1e-8 * abs(value)
    assert value == pytest.approx(eigenvalues[-1], rel=1e-10)


@pytest.mark.parametrize("depth", [2, 3])
def test_descent_is_stable_below_two_over_sharpness_and_not_above(depth):
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3,) * (depth + 1))
    rng = np.random.default_rng(2)
    start = tuple(W + 1e-3 * rng.standard_normal(W.shape) for W in _minimum(problem))
    step = q.stable_step(problem)
    below = q.gradient_descent(problem, start, 0.95 * step, 3000, record_every=3000, progress=False)
    assert below.loss[-1] < 1e-20
    above = q.gradient_descent(problem, start, 1.05 * step, 3000, record_every=3000, progress=False, throw=False)
    assert not above.success or above.loss[-1] > 1e-3


def test_rate_for_a_non_quadratic_loss():
    """Pseudo-Huber loss with a reachable target: the loss decays at the rate of the limit's Hessian."""
    target = np.array([[2.0, 0.3], [0.1, 1.0]])
    problem = q.Problem.from_loss(q.PseudoHuberLoss(target, delta=0.5), (2, 2, 2))
    start = init.balanced(problem.widths, target + 0.3, rng=4)
    trajectory = q.gradient_flow(problem, start, 30.0, t_eval=3001, **FLOW)
    rate = q.convergence_rate(problem, trajectory.point(-1))
    assert _decay_rate(trajectory, low=1e-21, high=1e-12) == pytest.approx(rate, rel=1e-4)
