"""Initialisations and the invariant sets the flow keeps them on (quotient/init.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp
from scipy.optimize import least_squares

import quotient as q
from quotient import init

FLOW = dict(rtol=1e-12, atol=1e-14, progress=False)


def _charges(point):
    return q.conserved_quantities(point)


def _relative_charge_error(points, deltas):
    """max over samples and layers of ||C_i(t) - delta_i I|| / ||W(t)||^2."""
    worst = 0.0
    for k in range(points[0].shape[0]):
        point = tuple(W[k] for W in points)
        size = sum(np.sum(W**2) for W in point)
        for C, delta in zip(_charges(point), deltas):
            worst = max(worst, np.linalg.norm(C - delta * np.eye(C.shape[0])) / size)
    return worst


# ---------------------------------------------------------------------------------------------- random starts
def test_orthogonal_layers_have_equal_singular_values():
    point = init.orthogonal((3, 5, 2, 4), scale=0.3, rng=0)
    for W in point:
        np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False), 0.3, rtol=1e-14)


def test_orthogonal_is_balanced_when_hidden_widths_never_exceed_neighbours():
    point = init.orthogonal((5, 3, 4, 2, 6), scale=0.2, rng=1)  # d_1 = 3 <= 5, 4; d_3 = 2 <= 4, 6
    C = _charges(point)
    assert np.abs(C[0]).max() < 1e-15 and np.abs(C[2]).max() < 1e-15
    # d_2 = 4 > d_1, d_3: C_2 = scale^2 (projector on the row space of W_3 - on the column space of W_2)
    rows = np.linalg.svd(point[2])[2][:2]
    columns = np.linalg.svd(point[1])[0][:, :3]
    np.testing.assert_allclose(C[1], 0.04 * (rows.T @ rows - columns @ columns.T), atol=1e-15)


def test_scale_must_be_positive():
    with pytest.raises(ValueError, match="scale"):
        init.orthogonal((2, 2), scale=0.0)
    with pytest.raises(ValueError, match="scale"):
        init.balanced((2, 2, 2), scale=-1.0)


# ---------------------------------------------------------------------------------------------- balanced
def test_balanced_from_a_prescribed_map():
    widths = (3, 5, 4, 2)
    target = np.random.default_rng(2).standard_normal((2, 3))
    point = init.balanced(widths, target, rng=3)
    np.testing.assert_allclose(q.end_to_end(point), target, atol=1e-14)
    for C in _charges(point):
        assert np.abs(C).max() < 1e-14
    values = np.linalg.svd(target, compute_uv=False)
    for W in point:  # balanced layers share the singular values s^{1/h}
        np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False)[:2], values ** (1 / 3), rtol=1e-13)
    norm = sum(np.sum(W**2) for W in point)
    np.testing.assert_allclose(norm, 3 * np.sum(values ** (2 / 3)), rtol=1e-13)  # least norm in the fiber


def test_balanced_random_has_largest_layer_singular_value_scale():
    point = init.balanced((4, 6, 6, 3), scale=0.05, rng=4)
    assert max(np.linalg.svd(W, compute_uv=False).max() for W in point) == pytest.approx(0.05, rel=1e-12)
    assert np.linalg.matrix_rank(q.end_to_end(point)) == 3


def test_balanced_rejects_a_map_of_too_high_rank():
    with pytest.raises(ValueError, match="rank 3"):
        init.balanced((3, 2, 3), np.eye(3))
    with pytest.raises(ValueError, match="shape"):
        init.balanced((3, 2, 3), np.eye(2))


def test_flow_stays_balanced():
    """Non-aligned balanced start, non-diagonal target: C = 0 and equal layer spectra along the flow."""
    problem = q.Problem.from_sigma(np.random.default_rng(5).standard_normal((3, 4)), (4, 5, 5, 3))
    point0 = init.balanced(problem.widths, scale=0.5, rng=6)
    trajectory = q.gradient_flow(problem, point0, 6.0, t_eval=31, **FLOW)
    assert trajectory.loss[-1] < 0.1 * trajectory.loss[0]
    assert _relative_charge_error(trajectory.points, (0.0, 0.0)) < 1e-8
    for k in range(0, 31, 5):
        spectra = [np.linalg.svd(W[k], compute_uv=False)[:3] for W in trajectory.points]
        for spectrum in spectra[1:]:
            np.testing.assert_allclose(spectrum, spectra[0], atol=1e-8)


# ---------------------------------------------------------------------------------------------- delta-balanced
FEASIBLE = [
    ((3, 3, 3, 3), (0.5, 0.5)),
    ((3, 3, 3, 3), (-0.5, 0.3)),
    ((3, 3, 3, 3), (1.0, -2.0)),
    ((1, 2, 2, 1), (1.0, -1.0)),
    ((2, 2, 1, 2, 2), (-1.0, 0.5, 1.0)),
    ((2, 3, 4), (0.7,)),
    ((4, 3, 2), (-0.7,)),
    ((2, 2, 2), (0.0,)),
    ((1, 2, 3, 3, 2), (0.2, 0.3, -0.3)),
    ((3, 2), ()),
]


@pytest.mark.parametrize(("widths", "deltas"), FEASIBLE)
def test_delta_balanced_has_the_requested_charges(widths, deltas):
    point = init.delta_balanced(widths, deltas, scale=0.3, rng=7)
    assert q.widths_of(point) == widths
    for C, delta in zip(_charges(point), deltas):
        np.testing.assert_allclose(C, delta * np.eye(C.shape[0]), atol=1e-13)


def test_delta_balanced_scalar_delta_applies_to_every_hidden_layer():
    point = init.delta_balanced((2, 2, 2, 2), 0.4, rng=8)
    for C in _charges(point):
        np.testing.assert_allclose(C, 0.4 * np.eye(2), atol=1e-14)


INFEASIBLE = [
    ((1, 2, 1), (1.0,), "rank is at most d_2"),  # delta > 0 needs d_1 <= d_2
    ((1, 2, 1), (-1.0,), "rank is at most d_0"),  # delta < 0 needs d_1 <= d_0
    ((2, 3, 2), (1.0,), "rank is at most"),
    ((1, 2, 2, 1), (1.0, -0.5), "scalar paths"),  # local conditions hold, the sums do not cancel
    ((1, 2, 2, 1), (1.0, -1.5), "scalar paths"),
    ((1, 2, 3, 3, 2), (0.2, 0.3, -0.5), "scalar paths"),  # the path born at layer 2 would need 0.3 - 0.5 >= 0
]


@pytest.mark.parametrize(("widths", "deltas", "message"), INFEASIBLE)
def test_delta_balanced_rejects_deltas_without_a_real_point(widths, deltas, message):
    with pytest.raises(ValueError, match=message):
        init.delta_balanced(widths, deltas)


def _closest_charge_residual(widths, deltas, seeds=8):
    """Independent oracle: least squares over all points for ||C_i - delta_i I||, best of several starts."""
    shapes = [(widths[i], widths[i - 1]) for i in range(1, len(widths))]
    sizes = [a * b for a, b in shapes]

    def residual(x):
        layers, start = [], 0
        for shape, size in zip(shapes, sizes):
            layers.append(x[start : start + size].reshape(shape))
            start += size
        return np.concatenate([(C - d * np.eye(C.shape[0])).ravel() for C, d in zip(_charges(layers), deltas)])

    best = np.inf
    for seed in range(seeds):
        x0 = np.random.default_rng(seed).standard_normal(sum(sizes))
        best = min(best, np.linalg.norm(least_squares(residual, x0, xtol=1e-15, ftol=1e-15, gtol=1e-15).fun))
    return best


def test_existence_condition_against_direct_search():
    """The exact condition agrees with a brute-force search for C = delta I on small chains."""
    assert _closest_charge_residual((1, 2, 2, 1), (1.0, -1.0)) < 1e-8
    assert _closest_charge_residual((2, 2, 1, 2, 2), (-1.0, 0.5, 1.0)) < 1e-8
    assert _closest_charge_residual((1, 2, 2, 1), (1.0, -0.5)) > 0.1
    assert _closest_charge_residual((1, 2, 1), (1.0,)) > 0.1


@given(st.lists(st.integers(1, 4), min_size=3, max_size=5), st.floats(0.05, 2.0), st.integers(0, 1000))
@settings(max_examples=25, deadline=None)
def test_nondecreasing_widths_allow_every_positive_delta(widths, delta, seed):
    """Sufficient condition: non-decreasing widths after the input and delta_i > 0 everywhere."""
    widths = (widths[0],) + tuple(sorted(widths[1:]))
    deltas = delta * np.linspace(1.0, 2.0, len(widths) - 2)
    point = init.delta_balanced(widths, deltas, rng=seed)
    for C, d in zip(_charges(point), deltas):
        np.testing.assert_allclose(C, d * np.eye(C.shape[0]), atol=1e-12 * max(1.0, d))


def test_flow_keeps_delta_balance():
    widths, deltas = (3, 3, 3, 3), (0.3, -0.2)
    problem = q.Problem.from_sigma(np.random.default_rng(9).standard_normal((3, 3)), widths)
    point0 = init.delta_balanced(widths, deltas, scale=0.4, rng=10)
    trajectory = q.gradient_flow(problem, point0, 5.0, t_eval=21, **FLOW)
    assert _relative_charge_error(trajectory.points, deltas) < 1e-8


def test_delta_balanced_bad_length():
    with pytest.raises(ValueError, match="h - 1 = 2"):
        init.delta_balanced((2, 2, 2, 2), (0.1,))


# ---------------------------------------------------------------------------------------------- aligned
def _frames(point, n_modes):
    """Hidden frames of an aligned point, read off the forward chain of each mode."""
    frames = [np.eye(point[0].shape[1])[:, :n_modes]]
    for W in point[:-1]:
        V = W @ frames[-1]
        frames.append(V / np.linalg.norm(V, axis=0))
    frames.append(np.eye(point[-1].shape[0])[:, :n_modes])
    return frames


def _alignment_error(points, frames):
    """Largest relative part of W_i(t) outside diag(O_i^T W_i O_{i-1}) in the fixed frames."""
    worst = 0.0
    for k in range(points[0].shape[0]):
        for i, W in enumerate(points, start=1):
            W = W[k]
            D = frames[i].T @ W @ frames[i - 1]
            rebuilt = frames[i] @ np.diag(np.diag(D)) @ frames[i - 1].T
            worst = max(worst, np.linalg.norm(W - rebuilt) / max(np.linalg.norm(W), 1e-300))
    return worst


def test_flow_stays_aligned_for_an_unbalanced_start():
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0, 0.5], (4, 6, 5, 4))
    strengths = [[0.3, 0.1, 0.2], [0.2, 0.4, 0.1], [0.1, 0.3, 0.5]]  # three of four modes
    point0 = init.aligned(problem.widths, strengths, rng=11)
    frames = _frames(point0, 3)
    for i in range(1, 3):  # hidden frames are orthonormal
        np.testing.assert_allclose(frames[i].T @ frames[i], np.eye(3), atol=1e-14)
    trajectory = q.gradient_flow(problem, point0, 8.0, t_eval=41, **FLOW)
    assert _alignment_error(trajectory.points, frames) < 1e-8
    assert np.abs(trajectory.end_to_end[:, 3, 3]).max() == 0.0  # the fourth mode never starts


def test_aligned_needs_enough_width():
    with pytest.raises(ValueError, match="at most r = min\\(widths\\) = 2"):
        init.aligned((3, 2, 3), [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="shape"):
        init.aligned((3, 3, 3), np.ones((3, 2)))


def test_decoupled_modes_are_independent_scalar_chains():
    """Decoupled unbalanced start: layers stay diagonal and each mode follows its scalar chain."""
    sigma = np.array([2.0, 1.0])
    problem = q.Problem.from_sigma(sigma, (2, 3, 3, 2))
    strengths = np.array([[0.2, 0.05], [0.1, 0.3], [0.4, -0.2]])
    point0 = init.decoupled(problem.widths, strengths)
    times = np.linspace(0, 6, 13)
    trajectory = q.gradient_flow(problem, point0, 6.0, t_eval=times, **FLOW)
    for W in trajectory.points:
        off = W.copy()
        off[:, [0, 1], [0, 1]] = 0
        assert np.abs(off).max() == 0.0
    for k in range(2):

        def chain(t, a, s=sigma[k]):
            p = np.prod(a)
            return np.array([np.prod(np.delete(a, i)) * (s - p) for i in range(3)])

        oracle = solve_ivp(chain, (0, 6), strengths[:, k], t_eval=times, method="DOP853", rtol=1e-13, atol=1e-15)
        for i, W in enumerate(trajectory.points):
            np.testing.assert_allclose(W[:, k, k], oracle.y[i], atol=1e-9)


def test_spectral_start_has_the_prescribed_modes():
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 4, 4, 4, 3))
    point = init.spectral(problem, [0.1, -0.02, 0.0], rng=12)
    np.testing.assert_allclose(q.end_to_end(point), np.diag([0.1, -0.02, 0.0]), atol=1e-15)
    for C in _charges(point):
        assert np.abs(C).max() < 1e-15


def test_spectral_and_decoupled_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        init.spectral((2, 2, 2), np.ones((2, 2)))
    with pytest.raises(ValueError, match="at most r"):
        init.decoupled((2, 1, 2), [1.0, 1.0])
