"""The gradient flow seen in the quotient: projected and reduced velocities, reduced flow, QuotientTrajectory (quotient/quotient_flow.py)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import seeds

import quotient as q

FLOW = dict(rtol=1e-12, atol=1e-14)


def _balanced_start(widths, seed, scale=1.0):
    """A balanced point in general position: the balanced lift of a random W, rotated."""
    rng = np.random.default_rng(seed)
    W = scale * rng.standard_normal((widths[-1], widths[0]))
    r = min(widths)
    U, s, Vt = np.linalg.svd(W, full_matrices=False)
    W = (U[:, :r] * s[:r]) @ Vt[:r]
    return q.act(q.balanced_lift(W, widths), q.random_orthogonal(widths, rng=rng))


def _fractional_power(S, a):
    """``S^a`` of a PSD matrix by eigh, ``S^0 = I`` (a second formulation).

    Eigenvalues below ``n eps`` times the largest are rounding errors of zeros and are clipped to
    zero; the power ``a`` would otherwise magnify them.
    """
    if a == 0:
        return np.eye(S.shape[0])
    values, vectors = np.linalg.eigh(S)
    values = np.where(values > S.shape[0] * np.finfo(float).eps * values.max(), values, 0.0)
    return (vectors * values**a) @ vectors.T


def test_projected_velocity_is_the_time_derivative_of_w_along_the_flow():
    widths = (2, 3, 3, 2)
    problem = q.Problem.from_sigma([2.0, 0.5], widths)
    point = q.init.small_random(widths, 0.5, rng=3)
    dt = 1e-5
    trajectory = q.gradient_flow(problem, point, 2 * dt, t_eval=[0.0, dt, 2 * dt], progress=False, **FLOW)
    W = trajectory.end_to_end
    velocity = q.projected_velocity(problem, trajectory.point(1))
    np.testing.assert_allclose(velocity, (W[2] - W[0]) / (2 * dt), rtol=1e-6, atol=1e-6 * np.abs(velocity).max())
    batch = q.projected_velocity(problem, trajectory.points)
    np.testing.assert_allclose(batch[1], q.projected_velocity(problem, trajectory.point(1)), atol=1e-15)


# ------------------------------------------------------------------------------- reduced flow
@settings(max_examples=30, deadline=None)
@given(st.sampled_from([(2, 2, 2), (3, 3, 3, 3), (4, 3, 5, 3, 2), (2, 4, 4, 3), (3, 2, 3)]), seeds)
def test_reduced_velocity_is_the_projected_velocity_at_balanced_points(widths, seed):
    problem = q.Problem.from_sigma(np.random.default_rng(seed).standard_normal((widths[-1], widths[0])), widths)
    point = _balanced_start(widths, seed + 1)
    W = q.end_to_end(point)
    reduced = q.reduced_velocity(problem, W)
    np.testing.assert_allclose(reduced, q.projected_velocity(problem, point), atol=1e-11 * (1 + np.abs(reduced).max()))
    # a second formulation: eigh powers of W W^T and W^T W, summed term by term
    h = len(widths) - 1
    G = W - problem.target
    direct = -sum(
        _fractional_power(W @ W.T, (j - 1) / h) @ G @ _fractional_power(W.T @ W, (h - j) / h) for j in range(1, h + 1)
    )
    np.testing.assert_allclose(reduced, direct, atol=1e-7 * (1 + np.abs(reduced).max()))


def test_projected_velocity_of_an_unbalanced_point_differs_from_the_reduced_one():
    widths = (2, 2, 2, 2)
    problem = q.Problem.from_sigma([2.0, 1.0], widths)
    point = q.init.small_random(widths, 1.0, rng=4)
    gap = q.projected_velocity(problem, point) - q.reduced_velocity(problem, q.end_to_end(point))
    assert np.abs(gap).max() > 1e-2


@pytest.mark.parametrize(
    ("widths", "sigma"),
    [((3, 3, 3, 3), [3.0, 2.0, 1.0]), ((2, 4, 2), [2.0, 0.5]), ((4, 3, 3, 4), [3.0, 2.0, 1.0, 0.5]), ((3, 4, 2, 4, 2), [2.0, 1.0])],
)
def test_reduced_flow_agrees_with_the_projected_full_flow_from_a_balanced_start(widths, sigma):
    problem = q.Problem.from_sigma(sigma, widths)
    point = _balanced_start(widths, 5, scale=0.5)
    times = np.linspace(0, 10, 21)
    full = q.project(q.gradient_flow(problem, point, 10.0, t_eval=times, progress=False, **FLOW))
    reduced = q.reduced_flow(problem, q.end_to_end(point), 10.0, t_eval=times, **FLOW)
    assert np.abs(full.end_to_end - reduced.end_to_end).max() <= 1e-8
    np.testing.assert_allclose(full.singular_values, reduced.singular_values, atol=1e-8)


def test_tc15_rank_one_balanced_start_keeps_rank_one_and_learns_the_best_rank_one_map():
    widths = (3, 3, 3, 3)
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], widths)
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal(3), rng.standard_normal(3)
    W0 = 0.3 * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    times = np.linspace(0, 40, 41)
    reduced = q.reduced_flow(problem, W0, 40.0, t_eval=times, **FLOW)
    assert reduced.singular_values[:, 1:].max() < 1e-12
    assert abs(reduced.loss[-1] - 2.5) < 1e-9
    assert abs(reduced.singular_values[-1, 0] - 3.0) < 1e-9
    assert reduced.learned[-1] == (1,) and reduced.critical_value[-1] == pytest.approx(2.5)
    full = q.project(q.gradient_flow(problem, q.balanced_lift(W0, widths), 40.0, t_eval=times, progress=False, **FLOW))
    assert full.singular_values[:, 1:].max() < 1e-12
    assert np.abs(full.end_to_end - reduced.end_to_end).max() <= 1e-8


def test_tc9_two_layer_balanced_flow_with_a_non_diagonal_target():
    target = np.array([[2.0, 0.5], [0.3, 1.0]])
    problem = q.Problem.from_sigma(target, (2, 2, 2))
    W1 = np.array([[0.1, 0.2], [0.0, 0.3]])
    U, V = problem.output_frame, problem.input_map.T  # data frame = U (singular frame) V^T
    reduced = q.reduced_flow(problem, U.T @ (W1.T @ W1) @ V, 3.0, t_eval=[0.0, 1.0, 3.0], **FLOW)
    expected_1 = [[0.69647864905, 0.56239867526], [0.48212937647, 0.57041203916]]
    expected_3 = [[1.97721692933, 0.54623817722], [0.35539352812, 0.88580029636]]
    np.testing.assert_allclose(U @ reduced.end_to_end[1] @ V.T, expected_1, atol=1e-10)
    np.testing.assert_allclose(U @ reduced.end_to_end[2] @ V.T, expected_3, atol=1e-10)


@pytest.mark.parametrize("depth", [3, 5, 8])
def test_reduced_velocity_on_a_rank_deficient_map_keeps_its_stratum(depth):
    # rank 2 in widths 4-...-4: without the rank, rounding errors e in the two zero singular
    # values enter as e^{2/h} (6e-6 relative at h = 8); the layer push-forward is the oracle
    widths = (4,) * (depth + 1)
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0, 0.5], widths)
    rng = np.random.default_rng(depth)
    W = rng.standard_normal((4, 2)) @ rng.standard_normal((2, 4))
    point = q.balanced_lift(W, widths)
    expected = q.projected_velocity(problem, point)
    scale = np.abs(expected).max()
    for velocity in (
        q.reduced_velocity(problem, q.end_to_end(point)),
        q.reduced_velocity(problem, q.end_to_end(point), rank=2),
        q.reduced_velocity(problem, point),
    ):
        assert np.abs(velocity - expected).max() <= 1e-12 * scale
    with pytest.raises(ValueError, match=r"rank must be an integer in \[0, min\(widths\)\]"):
        q.reduced_velocity(problem, W, rank=5)


def test_reduced_flow_and_velocity_refuse_unbalanced_points():
    widths = (2, 2, 2, 2)
    problem = q.Problem.from_sigma([2.0, 1.0], widths)
    point = q.init.small_random(widths, 1.0, rng=4)  # C_i far from 0
    with pytest.raises(ValueError, match="not balanced.*projected_velocity"):
        q.reduced_velocity(problem, point)
    with pytest.raises(ValueError, match="W0 is not balanced.*gradient_flow"):
        q.reduced_flow(problem, point, 1.0)
    # the same orbit's balanced point is accepted, and agrees with the layer flow
    balanced = q.balanced_lift(q.end_to_end(point), widths)
    times = np.linspace(0, 2, 5)
    reduced = q.reduced_flow(problem, balanced, 2.0, t_eval=times, **FLOW)
    full = q.project(q.gradient_flow(problem, balanced, 2.0, t_eval=times, progress=False, **FLOW))
    assert np.abs(reduced.end_to_end - full.end_to_end).max() <= 1e-8
    with pytest.raises(ValueError, match="balance_rtol"):
        q.reduced_flow(problem, balanced, 1.0, balance_rtol=-1.0)


def test_reduced_flow_rejects_bad_input():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 1, 2))
    with pytest.raises(ValueError, match="rank above min"):
        q.reduced_flow(problem, np.eye(2), 1.0)
    with pytest.raises(ValueError, match=r"shape \(d_h, d_0\)"):
        q.reduced_flow(problem, np.zeros((3, 2)), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        q.reduced_flow(problem, np.full((2, 2), np.nan), 1.0)
    with pytest.raises(ValueError, match="t_final"):
        q.reduced_flow(problem, np.zeros((2, 2)), -1.0)
    with pytest.raises(ValueError, match="t_eval"):
        q.reduced_flow(problem, np.zeros((2, 2)), 1.0, t_eval=[0.0, 2.0])
    with pytest.raises(TypeError, match="quotient.Problem"):
        q.reduced_flow("problem", np.zeros((2, 2)), 1.0)
    with pytest.raises(TypeError, match="quotient.Trajectory"):
        q.project("trajectory")
    with pytest.raises(ValueError, match="widths"):
        q.projected_velocity(problem, q.init.small_random((2, 3, 2), 1.0, rng=0))


# ------------------------------------------------------------------------------- trajectories
def _brute_force_nearest(problem, W, tied):
    """Search over every listed Sigma_S and, for a tied pair of modes 1, 2, every rotation of it."""
    best = None
    sigma = problem.sigma
    angles = np.linspace(0, np.pi, 2001) if tied else [0.0]
    for value in q.critical_values(problem):
        for S in value.alternatives:
            target = np.zeros_like(problem.target)
            for i in S:
                target[i - 1, i - 1] = sigma[i - 1]
            for theta in angles:  # sigma P, P a projector in the tied block: rotate Sigma_S there
                R = np.eye(problem.widths[-1])
                c, s_ = np.cos(theta), np.sin(theta)
                R[:2, :2] = [[c, -s_], [s_, c]]
                Q = np.eye(problem.widths[0])
                Q[:2, :2] = R[:2, :2]
                distance = np.linalg.norm(W - R @ target @ Q.T)
                if best is None or distance < best[0] - 1e-12:
                    best = (distance, value)
    return best


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([(3, 3, 3), (3, 2, 3), (4, 4, 2), (2, 3, 4), (3, 1, 2, 3)]),
    st.sampled_from([None, "tie", "zero"]),
    seeds,
)
def test_nearest_critical_matches_a_search_over_all_critical_values(widths, kind, seed):
    m = min(widths[0], widths[-1])
    sigma = np.sort(np.random.default_rng(seed).uniform(0.5, 3.0, m))[::-1]
    tied = kind == "tie" and m > 1
    if tied:
        sigma[1] = sigma[0]
    if kind == "zero":
        sigma[-1] = 0.0
    problem = q.Problem.from_sigma(sigma, widths)
    W = np.random.default_rng(seed + 1).uniform(-0.5, 3.5, (widths[-1], widths[0]))
    learned, value, distance = q.nearest_critical(problem, W)
    best_distance, best_value = _brute_force_nearest(problem, W, tied)
    # the grid of rotation angles is 1.6e-3 apart: the distance it finds is above the true one
    # by at most its second-order error
    assert best_distance - 1e-5 * (1 + best_distance) <= distance <= best_distance + 1e-12
    if not tied:  # no rotation grid: the search is exact
        assert distance == pytest.approx(best_distance, abs=1e-12)
        assert value == pytest.approx(best_value.value, abs=1e-12)
        assert learned == best_value.learned  # the label critical_values gives the value
    assert len(learned) <= problem.rank_bound and all(sigma[i - 1] > 0 for i in learned)


def test_nearest_critical_labels_tied_values_as_critical_values_does():
    problem = q.Problem.from_sigma([2.0, 2.0, 1.0], (3, 3, 3, 3))
    labels = {value.value: value.learned for value in q.critical_values(problem)}
    for W, value in [(np.diag([0.0, 2.0, 0.0]), 2.5), (np.diag([0.0, 2.0, 1.0]), 2.0), (np.diag([2.0, 0.0, 1.0]), 2.0)]:
        learned, found, distance = q.nearest_critical(problem, W)
        assert found == value and learned == labels[value] and distance == 0.0
    # a rotation inside the tied block stays on the critical set of L = 2.5
    c, s = np.cos(0.3), np.sin(0.3)
    u = np.array([c, s, 0.0])
    learned, found, distance = q.nearest_critical(problem, 2.0 * np.outer(u, u))
    assert learned == (1,) and found == 2.5 and distance < 1e-14
    # project() uses the same labels
    quotient_run = q.quotient_flow.QuotientTrajectory.from_end_to_end(problem, [0.0], np.diag([0.0, 2.0, 0.0])[None])
    assert quotient_run.learned == ((1,),)


def test_quotient_functions_refuse_general_losses_with_a_clear_error():
    problem = q.Problem.from_loss(q.PseudoHuberLoss(np.diag([2.0, 1.0])), (2, 2, 2))
    point = q.init.small_random((2, 2, 2), 0.1, rng=0)
    trajectory = q.gradient_flow(problem, point, 1.0, t_eval=3, progress=False)
    for call in (
        lambda: q.project(trajectory),
        lambda: q.reduced_flow(problem, q.end_to_end(point), 1.0),
        lambda: q.nearest_critical(problem, np.eye(2)),
        lambda: q.plateaus(problem, trajectory.times, trajectory.end_to_end),
        lambda: q.critical_graph(problem),
    ):
        with pytest.raises(ValueError, match="general loss"):
            call()
    # the balanced flow on the quotient holds for any loss of W (Arora, Cohen & Hazan 2018)
    balanced = q.balanced_lift(np.array([[0.5, 0.1], [0.2, 0.3]]), (2, 2, 2))
    np.testing.assert_allclose(
        q.reduced_velocity(problem, balanced), q.projected_velocity(problem, balanced), atol=1e-12
    )


def test_project_a_flow_from_a_small_start_learns_modes_in_order():
    widths = (3, 3, 3)
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], widths)
    trajectory = q.gradient_flow(problem, q.init.small_random(widths, 1e-3, rng=1), 20.0, t_eval=401, progress=False)
    projected = q.project(trajectory)
    assert isinstance(projected, q.QuotientTrajectory) and len(projected) == 401
    assert projected.end_to_end.shape == (401, 3, 3) and projected.singular_values.shape == (401, 3)
    np.testing.assert_allclose(projected.coordinates, np.diagonal(trajectory.end_to_end, axis1=1, axis2=2))
    np.testing.assert_allclose(projected.loss, trajectory.loss, atol=1e-12)
    np.testing.assert_allclose(projected.singular_values[:, 0], np.linalg.norm(trajectory.end_to_end, 2, axis=(1, 2)))
    assert projected.learned[0] == () and projected.learned[-1] == (1, 2, 3)
    assert projected.critical_value[-1] == 0.0 and projected.critical_distance[-1] < 1e-3
    # saddle to saddle: the learned sets grow one mode at a time, largest singular value first
    sequence = [S for S, _ in itertools.groupby(projected.learned)]
    assert sequence == [(), (1,), (1, 2), (1, 2, 3)]
    with pytest.raises(ValueError):
        projected.times[0] = 1.0  # read-only


def test_reduced_flow_samples():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    result = q.reduced_flow(problem, 0.1 * np.eye(2), 5.0, t_eval=11)
    np.testing.assert_allclose(result.times, np.linspace(0, 5, 11))
    unsampled = q.reduced_flow(problem, 0.1 * np.eye(2), 5.0)
    assert unsampled.times[0] == 0.0 and unsampled.times[-1] == 5.0
