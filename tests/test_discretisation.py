"""Gradient descent against the flow (quotient/discretisation.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import points, problems, seeds

import quotient as q
from quotient import init


def test_tc11_one_step_changes_the_charges_by_eta_squared():
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    W2 = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    problem = q.Problem.from_sigma([3.0, 1.0], (2, 3, 2))
    expected = np.array([[-0.01, -0.01, -0.02], [-0.01, 0.01, 0.0], [-0.02, 0.0, -0.02]])
    (increment,) = q.charge_increment(problem, (W1, W2), 0.1)
    np.testing.assert_allclose(increment, expected, atol=1e-16)
    run = q.gradient_descent(problem, (W1, W2), 0.1, 1, progress=False)
    (after,), (before,) = q.conserved_quantities(run.point(1)), q.conserved_quantities((W1, W2))
    np.testing.assert_allclose(after - before, expected, atol=1e-15)


@given(problems(min_depth=2, max_depth=4, max_width=4), seeds)
@settings(max_examples=30, deadline=None)
def test_charge_increment_is_exact_for_any_point(problem, seed):
    point = points(problem, seed, scale=0.7)
    step = 0.05
    after = tuple(W - step * G for W, G in zip(point, problem.gradient(point)))
    size = sum(np.sum(W**2) for W in point) + 1.0
    changes = q.charge_increment(problem, point, step)
    for change, C1, C0 in zip(changes, q.conserved_quantities(after), q.conserved_quantities(point)):
        assert np.abs((C1 - C0) - change).max() < 1e-14 * size


def test_charge_increment_holds_for_a_general_loss():
    loss = q.PseudoHuberLoss(np.random.default_rng(0).standard_normal((2, 3)), delta=0.3)
    problem = q.Problem.from_loss(loss, (3, 4, 4, 2))
    point = init.small_random(problem.widths, 0.8, rng=1)
    after = tuple(W - 0.1 * G for W, G in zip(point, problem.gradient(point)))
    changes = q.charge_increment(problem, point, 0.1)
    for change, C1, C0 in zip(changes, q.conserved_quantities(after), q.conserved_quantities(point)):
        np.testing.assert_allclose(C1 - C0, change, atol=1e-14)


def test_descent_converges_to_the_flow_at_first_order():
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 4, 4, 3))
    point0 = init.small_random(problem.widths, 0.3, rng=0)
    study = q.descent_vs_flow(problem, point0, 2.0, [0.02, 0.01, 0.005, 0.0025])
    assert study.order == pytest.approx(1.0, abs=0.05)
    assert np.all(np.diff(study.error) < 0)
    assert study.charge_order == pytest.approx(1.0, abs=0.05)  # O(eta^2) per step, T / eta steps
    assert study.step_charge_order == pytest.approx(2.0, abs=1e-9)  # exactly eta^2 per step
    assert np.all(study.loss_error < study.error * 10)


def test_descent_vs_flow_bad_input():
    problem = q.Problem.from_sigma([1.0], (1, 1, 1))
    point0 = init.decoupled(problem.widths, [0.1])
    with pytest.raises(ValueError, match="at least two"):
        q.descent_vs_flow(problem, point0, 1.0, [0.1])
    with pytest.raises(ValueError, match="divide"):
        q.descent_vs_flow(problem, point0, 1.0, [0.3, 0.1])
    with pytest.raises(ValueError, match="t_final"):
        q.descent_vs_flow(problem, point0, -1.0, [0.2, 0.1])
