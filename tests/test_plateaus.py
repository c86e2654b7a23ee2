"""Rests of a run in the quotient (quotient.graph.plateaus)."""

import numpy as np
import pytest
from scipy.optimize import brentq

import quotient as q


def _diagonal_maps(values, shape):
    """End-to-end maps ``(T, d_h, d_0)`` with ``values`` ``(T, m)`` on the diagonal."""
    W = np.zeros((values.shape[0],) + shape)
    m = values.shape[1]
    W[:, np.arange(m), np.arange(m)] = values
    return W


def test_rests_of_a_synthetic_staircase_in_the_quotient():
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))
    times = np.linspace(0, 30, 3001)
    modes = np.select([times < 10, times < 20, times < 25], [0, 1, 2], 3)
    u = np.array([3.0, 2.0, 1.0]) * (np.arange(3)[None, :] < modes[:, None])
    u = u + 1e-3 * np.sin(times)[:, None]  # a small wiggle inside the band
    found = q.plateaus(problem, times, _diagonal_maps(u, (3, 3)))
    assert [p.learned for p in found] == [(), (1,), (1, 2), (1, 2, 3)]
    assert [p.value for p in found] == [7.0, 2.5, 0.5, 0.0]
    assert np.allclose([p.t_start for p in found], [0, 10, 20, 25])
    assert np.allclose([p.t_end for p in found], [9.99, 19.99, 24.99, 30])
    assert all(p.critical_value in q.critical_values(problem) for p in found)
    assert found[1].duration == pytest.approx(9.99)


def test_a_loss_passing_a_critical_level_without_resting_there_is_no_plateau():
    # W moves slowly along the segment from Sigma_{} to Sigma_{1,2}: the loss passes through
    # L_{1} = 2.5 (and lingers near it), but W never comes near Sigma_{1} (distance >= 1.1)
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))
    times = np.linspace(0, 10, 2001)
    s = 0.5 * (1 + np.tanh(times - 5.0))  # fraction of the way, slow in the middle
    s = np.where(np.abs(times - 5.0) < 2.0, 1 - 2 / np.sqrt(13) + 1e-4 * (times - 5.0), s)
    u = np.stack([3 * s, 2 * s, 0 * s], axis=1)
    found = q.plateaus(problem, times, _diagonal_maps(u, (3, 3)))
    assert [p.learned for p in found] == [(), (1, 2)]
    loss = problem.end_to_end_loss.value(_diagonal_maps(u, (3, 3)))
    assert np.sum(np.abs(loss - 2.5) < 0.01 * 2.0) > 100  # the loss rests at L_{1}: no rest there


def _predicted_rests(sigma, u0, depth, learned_sets, band, t_final):
    """Rests from the closed-form mode solutions: where the distance to Sigma_S is below band * gap.

    Aligned modes with distinct sigma: ``W(t) = diag(u_k(t))``, ``dist(W, Sigma_S)^2 =
    sum_{i in S} (u_i - sigma_i)^2 + sum_{i not in S} u_i^2``, and the gap of ``S`` is the smallest
    ``sigma_i`` (every mode can be learned or unlearned: r = m here).
    """
    sigma = np.asarray(sigma)
    grid = np.linspace(0, t_final, 601)
    u_grid = q.mode_solution(sigma, u0, grid, depth)  # (601, m)
    out = []
    for S in learned_sets:
        target = np.where(np.isin(np.arange(1, sigma.size + 1), S), sigma, 0.0)
        gap = sigma.min()

        def excess(t):
            return np.linalg.norm(q.mode_solution(sigma, u0, t, depth) - target) - band * gap

        inside = np.linalg.norm(u_grid - target, axis=1) - band * gap <= 0
        k = np.flatnonzero(inside)
        start, end = k[0], k[-1]
        assert np.all(inside[start : end + 1])  # one interval
        t_start = 0.0 if start == 0 else brentq(excess, grid[start - 1], grid[start], xtol=1e-12)
        t_end = t_final if end == grid.size - 1 else brentq(excess, grid[end], grid[end + 1], xtol=1e-12)
        out.append((t_start, t_end))
    return out


@pytest.mark.parametrize(("depth", "u0", "t_final"), [(2, 1e-9, 14.0), (3, 1e-3, 60.0), (6, 1e-2, 6.0)])
def test_rests_of_an_aligned_flow_match_the_mode_solutions(depth, u0, t_final):
    sigma = np.array([3.0, 2.0, 1.0])
    widths = (3,) * (depth + 1)
    problem = q.Problem.from_sigma(sigma, widths)
    point0 = tuple(u0 ** (1 / depth) * np.eye(3) for _ in range(depth))
    times = np.linspace(0, t_final, 3001)
    run = q.gradient_flow(problem, point0, t_final, t_eval=times, rtol=1e-11, atol=1e-13, progress=False)
    found = q.plateaus(problem, run.times, run.end_to_end)
    sets = [(), (1,), (1, 2), (1, 2, 3)]
    assert [p.learned for p in found] == sets
    predicted = _predicted_rests(sigma, u0, depth, sets, 0.1, t_final)
    dt = times[1] - times[0]
    for plateau, (t_start, t_end) in zip(found, predicted):
        # the first and last samples inside the predicted interval
        assert t_start - 1e-9 <= plateau.t_start <= t_start + dt + 1e-9
        assert t_end - dt - 1e-9 <= plateau.t_end <= t_end + 1e-9


def test_tied_singular_values_are_labelled_as_critical_values_labels_them():
    # sigma = (2, 2, 1): the value 2.5 is learned by {1} or {2}; critical_values names it {1}
    problem = q.Problem.from_sigma([2.0, 2.0, 1.0], (3, 3, 3, 3))
    times = np.linspace(0, 3, 301)
    c, s = np.cos(0.4), np.sin(0.4)
    rotated = 2.0 * np.outer([c, s, 0.0], [c, s, 0.0])  # a rotated Sigma_{1} in the tied block
    W = np.stack([np.diag([0.0, 2.0, 0.0]) if t < 1 else rotated if t < 2 else np.diag([0.0, 2.0, 1.0]) for t in times])
    found = q.plateaus(problem, times, W)
    labels = {v.value: v.learned for v in q.critical_values(problem)}
    assert [p.learned for p in found] == [labels[2.5], labels[2.0]] == [(1,), (1, 3)]
    assert found[0].t_end == pytest.approx(1.99)
    projected = q.quotient_flow.QuotientTrajectory.from_end_to_end(problem, times, W)
    assert set(projected.learned) == {(1,), (1, 3)}


def test_plateaus_validate_their_arguments():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    times = np.linspace(0, 1, 5)
    W = np.zeros((5, 2, 2))
    with pytest.raises(ValueError, match="same length"):
        q.plateaus(problem, times[:4], W)
    with pytest.raises(ValueError, match="non-decreasing"):
        q.plateaus(problem, times[::-1], W)
    with pytest.raises(ValueError, match="band"):
        q.plateaus(problem, times, W, band=-0.1)
    with pytest.raises(ValueError, match="band"):
        q.plateaus(problem, times, W, band=0.5)
    with pytest.raises(ValueError, match="shape"):
        q.plateaus(problem, times, np.zeros((5, 3, 2)))
    with pytest.raises(ValueError, match=r"\(T, d_h, d_0\)"):
        q.plateaus(problem, times, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        q.plateaus(problem, times, np.full((5, 2, 2), np.nan))
    with pytest.raises(TypeError, match="quotient.Problem"):
        q.plateaus("problem", times, W)
    assert q.plateaus(problem, [], np.zeros((0, 2, 2))) == []


def test_one_layer_has_one_critical_map_and_rests_only_near_it():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2))
    learned, value, distance = q.nearest_critical(problem, np.zeros((2, 2)))
    assert learned == (1, 2) and value == 0.0 and distance == pytest.approx(np.sqrt(5.0))
    run = q.gradient_flow(problem, (0.1 * np.eye(2),), 10.0, t_eval=101, progress=False)
    (rest,) = q.plateaus(problem, run.times, run.end_to_end)
    # W(t) = Sigma + (W0 - Sigma) e^{-t}: within 0.1 * sigma_2 of Sigma once ||W0 - Sigma|| e^{-t} <= 0.1
    t_enter = np.log(np.linalg.norm(np.diag([1.9, 0.9])) / 0.1)
    assert t_enter <= rest.t_start <= t_enter + 0.1 and rest.t_end == 10.0
