"""Gradient flow, gradient descent and trajectories (quotient/flow.py)."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from scipy.integrate import solve_ivp
from scipy.stats import ortho_group
from strategies import points, problems, seeds

import quotient as q


@given(problems(max_width=4, max_depth=4), seeds)
@settings(max_examples=15, deadline=None)
def test_loss_never_increases_and_charges_are_conserved(problem, seed):
    point0 = points(problem, seed, scale=0.5)
    trajectory = q.gradient_flow(problem, point0, 5.0, rtol=1e-12, atol=1e-14, progress=False)
    assert trajectory.success
    assert np.all(np.diff(trajectory.loss) <= 1e-12 * max(1.0, trajectory.loss[0]))
    assert trajectory.conservation_drift.max() < 1e-8


def test_conservation_drift_is_relative_to_the_layers():
    problem = q.Problem.from_sigma([5.0, 3.0, 2.0, 1.0], (4, 8, 8, 4))
    trajectory = q.gradient_flow(problem, q.init.small_random(problem.widths, 1e-2, rng=0), 80.0, rtol=1e-12, atol=1e-14, progress=False)
    assert trajectory.loss[-1] < 1e-10  # learned everything
    assert trajectory.conservation_drift[0] == 0.0
    assert trajectory.conservation_drift.max() < 1e-8


def test_adjacency_ode_agrees_with_layer_ode():
    """Integrate dA/dt = -adjacency_gradient(A) on the dense matrix and compare with the layer flow."""
    problem = q.Problem.from_sigma(np.random.default_rng(5).standard_normal((2, 3)), (3, 2, 3, 2))
    point0 = q.init.small_random(problem.widths, 0.5, rng=6)
    n_v = sum(problem.widths)
    times = np.linspace(0, 4, 9)
    dense = solve_ivp(
        lambda t, a: -problem.adjacency_gradient(a.reshape(n_v, n_v)).ravel(),
        (0, 4),
        q.to_adjacency(point0).ravel(),
        method="DOP853",
        rtol=1e-12,
        atol=1e-14,
        t_eval=times,
    )
    layered = q.gradient_flow(problem, point0, 4.0, t_eval=times, rtol=1e-12, atol=1e-14, progress=False)
    for k in range(times.size):
        A = dense.y[:, k].reshape(n_v, n_v)
        assert np.max(np.abs(A - q.to_adjacency(layered.point(k)))) < 1e-9
        assert np.all(np.linalg.matrix_power(A, problem.depth + 1) == 0) or np.max(
            np.abs(np.linalg.matrix_power(A, problem.depth + 1))
        ) < 1e-12  # nilpotent along the flow


def _saxe(sigma, u0, t):
    """Depth-2 aligned balanced mode: u(t) = s u0 e^{2st} / (s - u0 + u0 e^{2st}) (Saxe et al. 2014)."""
    growth = np.exp(2 * sigma * t)
    return sigma * u0 * growth / (sigma - u0 + u0 * growth)


def test_depth_two_closed_form_tc6():
    """math-spec TC6: h = 2, sigma = (3,2,1), u0 = (1e-3, 2e-3, 5e-3), hidden rotation Q."""
    sigma = np.array([3.0, 2.0, 1.0])
    u0 = np.array([1e-3, 2e-3, 5e-3])
    problem = q.Problem.from_sigma(sigma, (3, 3, 3))
    Q = ortho_group.rvs(3, random_state=7)
    point0 = (Q @ np.diag(np.sqrt(u0)), np.diag(np.sqrt(u0)) @ Q.T)
    times = np.linspace(0.0, 2.0, 41)
    trajectory = q.gradient_flow(problem, point0, 2.0, t_eval=times, rtol=1e-12, atol=1e-14, progress=False)
    W = trajectory.end_to_end
    diagonal = np.diagonal(W, axis1=1, axis2=2)
    expected = _saxe(sigma[None, :], u0[None, :], times[:, None])
    assert np.max(np.abs(diagonal - expected)) < 1e-8
    off = W - np.einsum("ti,ij->tij", diagonal, np.eye(3))
    assert np.max(np.abs(off)) < 1e-10
    assert np.allclose(diagonal[20], [0.355712478919, 0.103641317198, 0.035801588701], atol=1e-9)
    assert np.allclose(diagonal[40], [2.945720698616, 1.497984650465, 0.215293960252], atol=1e-9)


def test_gradient_tol_stops_the_flow():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    trajectory = q.gradient_flow(problem, q.init.small_random(problem.widths, 0.3, rng=1), 1e4, gradient_atol=1e-5, progress=False)
    assert trajectory.status == 1
    assert trajectory.times[-1] < 1e3
    assert trajectory.gradient_norm[-1] == pytest.approx(1e-5, rel=1e-3)
    assert np.all(trajectory.gradient_norm[:-1] > 1e-5 * (1 - 1e-3))


def test_t_eval_array_and_count():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 3, 2))
    point0 = q.init.small_random(problem.widths, 0.3, rng=1)
    times = np.array([0.0, 0.5, 1.0, 3.0])
    sampled = q.gradient_flow(problem, point0, 3.0, t_eval=times, progress=False)
    assert np.array_equal(sampled.times, times)
    assert all(np.allclose(a, b) for a, b in zip(sampled.point(0), point0))
    stepped = q.gradient_flow(problem, point0, 3.0, progress=False)
    assert stepped.times[0] == 0 and stepped.times[-1] == 3.0
    assert stepped.n_steps == len(stepped) - 1
    assert np.allclose(sampled.point(3)[0], stepped.point(len(stepped) - 1)[0], atol=1e-9)
    counted = q.gradient_flow(problem, point0, 1e3, t_eval=11, gradient_atol=1e-4, progress=False)
    assert len(counted) == 11 and counted.status == 1
    assert np.allclose(np.diff(counted.times), counted.times[-1] / 10)


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 20)), rng.standard_normal((2, 20))
    problem = q.Problem.from_data(X, Y, (3, 4, 2))
    trajectory = q.gradient_flow(problem, q.init.small_random(problem.widths, 0.1, rng=1), 2.0, progress=False)
    path = trajectory.save(tmp_path / "run.npz")
    loaded = q.Trajectory.load(path)
    for name in ("times", "loss", "gradient_norm", "conservation_drift"):
        assert np.array_equal(getattr(loaded, name), getattr(trajectory, name))
    assert all(np.array_equal(a, b) for a, b in zip(loaded.points, trajectory.points))
    assert (loaded.method, loaded.rtol, loaded.n_steps, loaded.n_rhs, loaded.status) == (
        trajectory.method,
        trajectory.rtol,
        trajectory.n_steps,
        trajectory.n_rhs,
        trajectory.status,
    )
    assert loaded.problem.widths == problem.widths and loaded.problem.offset == problem.offset
    assert np.array_equal(loaded.problem.input_map, problem.input_map)
    assert loaded.problem.loss(loaded.point(0)) == problem.loss(trajectory.point(0))


def test_save_never_overwrites_unless_asked(tmp_path):
    problem = q.Problem.from_sigma([1.0], (1, 1))
    trajectory = q.gradient_flow(problem, (np.array([[0.5]]),), 1.0, progress=False)
    path = tmp_path / "run.npz"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        trajectory.save(path)
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["run.npz"]  # no temporary file left behind
    trajectory.save(path, overwrite=True)
    assert len(q.Trajectory.load(path)) == len(trajectory)
    with pytest.raises(ValueError, match="must end in '.npz'"):
        trajectory.save(tmp_path / "run.txt")


def test_status_is_one_enumeration_that_files_store_as_integers(tmp_path):
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    point0 = q.init.small_random(problem.widths, 0.3, rng=2)
    reached = q.gradient_flow(problem, point0, 0.5, progress=False)
    bounded = q.gradient_flow(problem, point0, 1e3, gradient_atol=1e-6, progress=False)
    failed = q.gradient_descent(problem, point0, 1e3, 10, progress=False, throw=False)
    descended = q.gradient_descent(problem, point0, 0.05, 3, progress=False)
    Status = q.flow.Status
    for run, status, message in (
        (reached, Status.FINAL_TIME, q.flow.status_message(Status.FINAL_TIME)),
        (bounded, Status.GRADIENT_BOUND, "gradient norm below gradient_atol"),
        (failed, Status.FAILED, failed.message),
        (descended, Status.FINAL_TIME, "reached the last of 3 steps"),
    ):
        assert run.status is status and run.status == int(status) and run.message == message
        assert run.success == (status >= 0)
    assert "too large" in failed.message
    path = bounded.save(tmp_path / "run.npz")
    assert json.loads(str(np.load(path)["meta"]))["status"] == 1  # an integer in the file, as before the enumeration
    assert q.Trajectory.load(path).status is Status.GRADIENT_BOUND
    assert q.flow.status_message(0, final_time="--t-final") == "reached --t-final"
    with pytest.raises(ValueError, match="failure"):
        q.flow.status_message(Status.FAILED)
    with pytest.raises(ValueError):
        q.flow.status_message(2)


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, meta=np.array('{"format": "other"}'))
    with pytest.raises(ValueError, match="not a quotient trajectory"):
        q.Trajectory.load(path)


def test_gradient_descent_converges_and_records():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    point0 = q.init.small_random(problem.widths, 0.3, rng=2)
    trajectory = q.gradient_descent(problem, point0, 0.05, 2000, record_every=100, progress=False)
    assert trajectory.method == "gradient_descent" and trajectory.step == 0.05
    assert len(trajectory) == 21 and trajectory.times[-1] == pytest.approx(100.0)
    assert trajectory.n_steps == 2000 and trajectory.n_rhs == 2000
    assert trajectory.loss[-1] < 1e-12
    assert np.all(np.diff(trajectory.loss) <= 0)


def test_gradient_descent_charges_change_by_the_exact_second_order_term():
    """C(k+1) - C(k) = step^2 (G_{i+1}^T G_{i+1} - G_i G_i^T) (math-spec 2.4, TC11)."""
    problem = q.Problem.from_sigma([3.0, 1.0], (2, 3, 2))
    point = (np.array([[1.0, 0], [0, 1], [1, 1]]), np.array([[1.0, 0, 1], [0, 1, 0]]))
    G1, G2 = problem.gradient(point)
    trajectory = q.gradient_descent(problem, point, 0.1, 1, progress=False)
    (before,), (after,) = q.conserved_quantities(trajectory.point(0)), q.conserved_quantities(trajectory.point(1))
    expected = 0.01 * (G2.T @ G2 - G1 @ G1.T)
    assert np.max(np.abs(after - before - expected)) < 1e-15
    assert np.allclose(expected, [[-0.01, -0.01, -0.02], [-0.01, 0.01, 0], [-0.02, 0, -0.02]], atol=1e-15)


def test_gradient_descent_divergence():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    point0 = q.init.small_random(problem.widths, 1.0, rng=3)
    with pytest.raises(RuntimeError, match="diverged"):
        q.gradient_descent(problem, point0, 5.0, 500, progress=False)
    trajectory = q.gradient_descent(problem, point0, 5.0, 500, progress=False, throw=False)
    assert trajectory.status == -1 and not trajectory.success and "too large" in trajectory.message
    assert all(np.all(np.isfinite(layer)) for layer in trajectory.points)
    assert trajectory.loss[-1] > trajectory.loss[0]


def test_gradient_descent_gradient_atol():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    trajectory = q.gradient_descent(problem, q.init.small_random(problem.widths, 0.3, rng=2), 0.05, 10**5, gradient_atol=1e-6, record_every=10**4, progress=False)
    assert trajectory.status == 1
    assert trajectory.gradient_norm[-1] < 1e-6
    assert trajectory.n_steps < 10**5


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("t_final", [0.0, -1.0, np.nan, np.inf])
def test_bad_t_final(t_final):
    problem = q.Problem.from_sigma([1.0], (1, 1))
    with pytest.raises(ValueError, match="t_final must be a positive finite number"):
        q.gradient_flow(problem, (np.array([[0.5]]),), t_final, progress=False)


def test_bad_t_eval_and_point():
    problem = q.Problem.from_sigma([1.0], (1, 1))
    point = (np.array([[0.5]]),)
    with pytest.raises(ValueError, match=r"t_eval must lie in \[0, t_final\]"):
        q.gradient_flow(problem, point, 1.0, t_eval=[0.0, 2.0], progress=False)
    with pytest.raises(ValueError, match="strictly increasing"):
        q.gradient_flow(problem, point, 1.0, t_eval=[0.5, 0.1], progress=False)
    with pytest.raises(ValueError, match="point0 has widths"):
        q.gradient_flow(problem, (np.ones((2, 1)),), 1.0, progress=False)
    with pytest.raises(ValueError, match="point0: layer W_1 contains NaN"):
        q.gradient_flow(problem, (np.array([[np.nan]]),), 1.0, progress=False)
    with pytest.raises(TypeError, match="problem must be a quotient.Problem"):
        q.gradient_flow("sigma", point, 1.0)


@pytest.mark.parametrize("step, n_steps, message", [(0.0, 10, "step must"), (0.1, 0, "n_steps must"), (0.1, 2.5, "n_steps must")])
def test_bad_descent_arguments(step, n_steps, message):
    problem = q.Problem.from_sigma([1.0], (1, 1))
    with pytest.raises(ValueError, match=message):
        q.gradient_descent(problem, (np.array([[0.5]]),), step, n_steps)


@pytest.mark.parametrize("method", ["DOP853", "RK45"])
def test_samples_are_as_accurate_as_the_steps(method):
    # Depth 3, aligned balanced start: each mode follows the exact mode solution. Across the
    # plateaus the steps are long, and DOP853's dense-output interpolant there errs ~400 times
    # more than the steps (6.6e-5 against 1.7e-7); samples by fresh steps must not.
    sigma = np.array([5.0, 3.0, 2.0, 1.0])
    problem = q.Problem.from_sigma(sigma, (4, 4, 4, 4))
    strengths = np.full(4, 1e-2)
    point0 = q.init.aligned(problem, strengths, rng=0)

    def error(trajectory):
        exact = q.mode_solution(sigma, strengths**3, trajectory.times, 3)
        singular = np.linalg.svd(q.end_to_end(trajectory.points), compute_uv=False)
        return np.max(np.abs(singular - exact))

    steps = q.gradient_flow(problem, point0, 100.0, rtol=1e-10, atol=1e-14, method=method, progress=False)
    samples = q.gradient_flow(problem, point0, 100.0, rtol=1e-10, atol=1e-14, method=method, t_eval=2001, progress=False)
    assert error(samples) <= 2 * error(steps)
    on_steps = q.gradient_flow(problem, point0, 100.0, rtol=1e-10, atol=1e-14, method=method, t_eval=steps.times, progress=False)
    for layer, expected in zip(on_steps.points, steps.points):
        np.testing.assert_array_equal(layer, expected)


def test_implicit_methods_sample_the_interpolant():
    problem = q.Problem.from_sigma(np.array([2.0, 1.0]), (2, 2, 2))
    point0 = q.init.small_random(problem.widths, 0.1, rng=0)
    trajectory = q.gradient_flow(problem, point0, 10.0, method="Radau", t_eval=11, progress=False)
    assert trajectory.times.shape == (11,) and np.all(np.diff(trajectory.loss) <= 1e-12)


def test_until_minimum_passes_the_saddles_where_until_critical_stops():
    # On the plateau of the saddle Sigma_{1} (L = 1^2 / 2) the gradient falls below 1e-3:
    # "critical" stops there, "minimum" goes on to the global minimum.
    problem = q.Problem.from_sigma(np.array([2.0, 1.0]), (2, 2, 2, 2))
    point0 = q.init.small_random(problem.widths, 1e-2, rng=0)
    saddle = q.gradient_flow(problem, point0, 1e4, gradient_atol=1e-3, progress=False)
    assert saddle.status == 1 and saddle.loss[-1] == pytest.approx(0.5, abs=1e-3)
    minimum = q.gradient_flow(problem, point0, 1e4, gradient_atol=1e-3, until="minimum", progress=False)
    assert minimum.status == 1 and minimum.loss[-1] < 1e-5 and minimum.gradient_norm[-1] <= 1e-3 * (1 + 1e-9)
    assert np.all(np.diff(minimum.loss) <= 1e-12)


def test_until_must_be_known():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    with pytest.raises(ValueError, match="until must be 'critical' or 'minimum'"):
        q.gradient_flow(problem, q.init.small_random(problem.widths, 0.1, rng=0), 1.0, until="saddle", progress=False)


# ---------------------------------------------------------------------------------------- the default integrator
def _stiff_aligned():
    """Depth 4, aligned balanced start whose last mode starts 1e5 times below the others: after the
    first three modes are learned (t ~ 20) the Hessian has eigenvalues ~ h sigma^{2-2/h} ~ 20 while
    the last mode crawls along its plateau until t ~ 2e4 (mode_time): a stiff plateau."""
    sigma = np.array([3.0, 2.0, 1.5, 1.0])
    problem = q.Problem.from_sigma(sigma, (4,) * 5)
    strengths = np.array([1e-1, 1e-1, 1e-1, 5e-3])
    return problem, sigma, strengths, q.init.aligned(problem, strengths, rng=0)


def test_default_follows_the_exact_mode_solutions_across_a_stiff_plateau():
    problem, sigma, strengths, point0 = _stiff_aligned()
    t_final = 2e4
    assert q.mode_time(sigma[-1], strengths[-1] ** 4, 0.5, 4) == pytest.approx(t_final, rel=1e-3)  # escapes at the end
    times = np.r_[0.0, np.geomspace(1e-2, t_final, 400)]
    errors = {}
    for rtol in (1e-10, 1e-12):
        trajectory = q.gradient_flow(problem, point0, t_final, rtol=rtol, atol=1e-14, t_eval=times, progress=False)
        assert trajectory.success and trajectory.method == "auto" and "LSODA" in trajectory.meta["solver"]
        assert trajectory.meta["n_hessians"] > 0
        exact = q.mode_solution(sigma, strengths**4, times, 4)  # (T, 4); modes stay aligned and ordered
        singular = np.linalg.svd(q.end_to_end(trajectory.points), compute_uv=False)  # descending
        order = np.argsort(-exact, axis=1)
        speed = 4 * np.abs(exact) ** 1.5 * np.abs(sigma - exact)  # |du/dt| of each mode
        error = np.abs(singular - np.take_along_axis(exact, order, axis=1))
        speed = np.take_along_axis(speed, order, axis=1)
        # An error in the timing of a plateau's end is a time shift: bounded by |du/dt| times a
        # relative time error, of order (number of steps) x rtol; on the learned modes, before the switch,
        # DOP853's relative error at the edge of its stability, of the same order (3e-9 at u = 3 with
        # OpenBLAS's Haswell kernels, 7e-10 with SkylakeX's)
        exact_sorted = np.take_along_axis(exact, order, axis=1)
        assert np.all(error <= 1e3 * rtol * (times[:, None] * speed + np.abs(exact_sorted)) + 1e-9)
        errors[rtol] = error.max()
        assert trajectory.conservation_drift.max() < 1e-12
        assert np.all(np.diff(trajectory.loss) <= 1e-12 * trajectory.loss[0])
    assert errors[1e-12] < errors[1e-10] / 5  # converges to the exact solution as rtol shrinks
    # the stiff plateau costs few steps: DOP853 takes ~65 000 here, held to steps ~ 1 / 20
    assert trajectory.n_steps < 10_000


def test_default_hands_over_to_lsoda_on_the_stiff_plateau_and_follows_the_mode_solutions():
    """method="auto": compiled DOP853 while its steps are held by accuracy, LSODA with the exact Hessian once
    DOP853's stiffness test has held STIFF_SWITCH times (after the first three modes are learned)."""
    problem, sigma, strengths, point0 = _stiff_aligned()
    times = np.r_[0.0, np.geomspace(1e-2, 2e4, 200)]
    trajectory = q.gradient_flow(problem, point0, 2e4, rtol=1e-10, atol=1e-14, t_eval=times, progress=False)
    solver = trajectory.meta["solver"]
    assert trajectory.success and "DOP853 (compiled), switched to LSODA" in solver and trajectory.meta["n_hessians"] > 0
    switched = float(solver.rsplit("t = ", 1)[1].rstrip(")"))
    assert 5.0 < switched < 2000.0  # after the three fast modes are learned (t ~ 20), long before the last one (2e4)
    exact = q.mode_solution(sigma, strengths**4, times, 4)
    singular = np.linalg.svd(q.end_to_end(trajectory.points), compute_uv=False)
    order = np.argsort(-exact, axis=1)
    speed = np.take_along_axis(4 * np.abs(exact) ** 1.5 * np.abs(sigma - exact), order, axis=1)
    error = np.abs(singular - np.take_along_axis(exact, order, axis=1))
    # a time shift at the plateaus' ends, and DOP853's relative error on the learned modes
    assert np.all(error <= 1e3 * 1e-10 * (times[:, None] * speed + np.abs(exact)) + 1e-9)
    assert trajectory.conservation_drift.max() < 1e-12
    assert trajectory.n_steps < 5_000  # DOP853 alone: ~65 000


def test_default_switches_the_same_way_for_a_general_loss():
    """A loss that is not the square loss has no compiled field: "auto" runs scipy's DOP853 with the same
    stiffness switch, and on the square loss written as a general one it follows the compiled run."""
    problem, sigma, strengths, point0 = _stiff_aligned()
    square = q.losses.CovarianceSquareLoss(np.eye(problem.widths[0]), problem.target, 0.5 * np.sum(problem.target**2))
    general = q.Problem.from_loss(square, problem.widths)  # 1/2 ||W - Sigma||^2, not a quotient.SquareLoss
    times = np.r_[0.0, np.geomspace(1e-2, 2e3, 50)]
    compiled = q.gradient_flow(problem, point0, 2e3, rtol=1e-10, atol=1e-14, t_eval=times, progress=False)
    python = q.gradient_flow(general, point0, 2e3, rtol=1e-10, atol=1e-14, t_eval=times, progress=False)
    assert "compiled" in compiled.meta["solver"] and "compiled" not in python.meta["solver"]
    assert "switched to LSODA" in python.meta["solver"]
    at = [float(t.meta["solver"].rsplit("t = ", 1)[1].rstrip(")")) for t in (compiled, python)]
    assert at[0] == pytest.approx(at[1], rel=0.05)  # the same test on the same steps, up to rounding
    assert np.max(np.abs(compiled.end_to_end - python.end_to_end)) < 1e-7


def test_default_crosses_a_stiff_plateau_to_gradient_tol_with_small_drift():
    """The issue's stiff case: depth 4, sigma (3, 2, 1.5, 1), init 1e-2, until ||grad L|| < 1e-8 (t ~ 1.1e5)."""
    problem = q.Problem.from_sigma([3.0, 2.0, 1.5, 1.0], (4,) * 5)
    point0 = q.init.small_random(problem.widths, 1e-2, rng=0)
    trajectory = q.gradient_flow(problem, point0, 1e30, gradient_atol=1e-8, t_eval=201, progress=False)
    assert trajectory.status == 1 and len(trajectory) == 201
    assert trajectory.times[-1] == pytest.approx(1.086e5, rel=1e-2)
    assert trajectory.gradient_norm[-1] == pytest.approx(1e-8, rel=1e-3)
    assert trajectory.loss[-1] < 1e-15  # the global minimum
    assert trajectory.conservation_drift.max() <= 1e-9
    assert np.all(np.diff(trajectory.loss) <= 1e-12 * trajectory.loss[0])


@pytest.mark.parametrize("method", ["auto", "DOP853", "RK45", "RK23", "Radau", "BDF", "LSODA"])
def test_every_method_by_name_agrees_with_the_saxe_closed_form(method):
    sigma, u0 = np.array([3.0, 1.0]), np.array([1e-2, 2e-2])
    problem = q.Problem.from_sigma(sigma, (2, 2, 2))
    point0 = (np.diag(np.sqrt(u0)), np.diag(np.sqrt(u0)))
    times = np.linspace(0.0, 4.0, 9)
    trajectory = q.gradient_flow(problem, point0, 4.0, t_eval=times, rtol=1e-10, atol=1e-13, method=method, progress=False)
    assert trajectory.method == method and trajectory.success
    diagonal = np.diagonal(trajectory.end_to_end, axis1=1, axis2=2)
    tolerance = 1e-5 if method == "RK23" else 1e-7  # RK23 is order 3: its global error at rtol 1e-10
    assert np.max(np.abs(diagonal - _saxe(sigma, u0, times[:, None]))) < tolerance


@pytest.mark.parametrize("method, error", [("dop853", ValueError), ("Euler", ValueError), (3, TypeError), (None, TypeError)])
def test_an_unknown_method_is_named(method, error):
    problem = q.Problem.from_sigma([1.0], (1, 1))
    with pytest.raises(error, match="method must be"):
        q.gradient_flow(problem, (np.array([[0.5]]),), 1.0, method=method, progress=False)
    with pytest.raises(error, match="method must be"):
        q.ensemble_flow(problem, (np.full((2, 1, 1), 0.5),), 1.0, method=method, progress=False)
    if error is ValueError:
        with pytest.raises(ValueError, match="method must be one of 'auto', 'RK23'"):
            q.gradient_flow(problem, (np.array([[0.5]]),), 1.0, method=method, progress=False)


def test_memory_is_bounded_by_the_samples():
    """Thousands of steps more cost no memory more: the run keeps its 11 samples, not its steps."""
    import tracemalloc

    problem, sigma, strengths, point0 = _stiff_aligned()
    peaks, steps = [], []
    for t_final in (20.0, 2e4):
        tracemalloc.start()
        try:
            trajectory = q.gradient_flow(problem, point0, t_final, t_eval=11, progress=False)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        steps.append(trajectory.n_steps)
        assert len(trajectory) == 11
    assert steps[1] > steps[0] + 1000
    # one state per extra step would be 8 N bytes each (solve_ivp's dense output ~13 times that); measured ~0.1 of it
    assert peaks[1] - peaks[0] < 0.5 * (steps[1] - steps[0]) * 8 * problem.n_params


def test_a_flow_beyond_float64_stops_with_a_clear_message():
    """From an init of scale 1e3 the layers stay ~1e3 (the conserved quantities), their products cancel to
    an end-to-end map of size ~1, and the gradient is soon rounding noise: the run must stop, not crawl."""
    problem = q.Problem.from_sigma([3.0, 2.0, 1.5, 1.0], (4,) * 5)
    point0 = q.init.small_random(problem.widths, 1e3, rng=0)
    short = q.gradient_flow(problem, point0, 1e-6, t_eval=11, progress=False)
    assert short.status == 0 and short.loss[-1] < short.loss[0] / 1e10  # the fast transient is followed
    stopped = q.gradient_flow(problem, point0, 1e4, gradient_atol=1e-8, t_eval=11, progress=False, throw=False)
    assert stopped.status == -1 and "below the resolution of float64" in stopped.message
    assert stopped.times[-1] < 1.0 and len(stopped) == 11
    with pytest.raises(RuntimeError, match="below the resolution of float64"):
        q.gradient_flow(problem, point0, 1e4, gradient_atol=1e-8, progress=False)


class _Explosive:
    """``l(W) = -||W||^4 / 4``: the flow ``dw/dt = w^3`` of a 1x1 network blows up at ``t = 1 / (2 w0^2)``."""

    def value(self, W):
        return -0.25 * np.sum(W**2, axis=(-2, -1)) ** 2

    def gradient(self, W):
        return -np.sum(W**2, axis=(-2, -1))[..., None, None] * W

    def hvp(self, W, dW):
        square = np.sum(W**2, axis=(-2, -1))[..., None, None]
        return -square * dW - 2 * np.sum(W * dW, axis=(-2, -1))[..., None, None] * W


@pytest.mark.parametrize("method", ["auto", "DOP853"])
def test_a_blowing_up_flow_stops_with_a_failed_status(method):
    problem = q.Problem.from_loss(_Explosive(), (1, 1))
    trajectory = q.gradient_flow(problem, (np.array([[1.0]]),), 10.0, method=method, progress=False, throw=False)
    assert trajectory.status == -1 and trajectory.message
    assert trajectory.times[-1] < 0.5 + 1e-6  # not past the blow-up time 1 / 2
    with pytest.raises(RuntimeError, match="gradient flow failed"):
        q.gradient_flow(problem, (np.array([[1.0]]),), 10.0, method=method, progress=False)
