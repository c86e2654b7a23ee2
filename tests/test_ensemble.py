"""Batched flows (quotient/ensemble.py) and the batched right-hand side they share with gradient_flow."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import problems, seeds

import quotient as q
from quotient._ode import flat_gradient


def _stack(starts):
    return tuple(np.stack(layers) for layers in zip(*starts))


def _starts(problem, members, scale, seed):
    generator = np.random.default_rng(seed)
    return [q.init.small_random(problem.widths, scale, rng=generator) for _ in range(members)]


@given(problems(max_width=4, max_depth=4), seeds)
@settings(max_examples=30, deadline=None)
def test_flat_gradient_is_the_gradient_of_every_member(problem, seed):
    """The in-place right-hand side against Problem.gradient, one member at a time (lead shapes (), (3,), (2, 3))."""
    starts = _starts(problem, 6, 1.0, seed)
    for lead in ((), (3,), (2, 3)):
        count = int(np.prod(lead))
        flat = np.stack([q.to_vector(p) for p in starts[:count]]).reshape(lead + (problem.n_params,))
        layers, gradient = flat_gradient(problem, lead)
        result = gradient(flat).reshape(count, problem.n_params)
        for k in range(count):
            expected = q.to_vector(problem.gradient(starts[k]))
            assert np.allclose(result[k], expected, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(expected).max()))
        assert np.array_equal(q.to_vector(layers(flat)).reshape(count, -1), flat.reshape(count, -1))


def test_flat_gradient_with_a_general_loss():
    rng = np.random.default_rng(3)
    loss = q.PseudoHuberLoss(rng.standard_normal((2, 3)), 0.5)
    problem = q.Problem.from_loss(loss, (3, 4, 2))
    starts = _starts(problem, 4, 1.0, 4)
    flat = np.stack([q.to_vector(p) for p in starts])
    result = flat_gradient(problem, (4,))[1](flat)
    for k in range(4):
        assert np.allclose(result[k], q.to_vector(problem.gradient(starts[k])), rtol=1e-12, atol=1e-14)


def test_ensemble_agrees_with_looped_gradient_flow():
    """Each member against its own gradient_flow run sampled at the same times (both rtol 1e-12)."""
    problem = q.Problem.from_sigma(np.random.default_rng(0).standard_normal((3, 2)), (2, 4, 3, 3))
    starts = _starts(problem, 5, 0.3, 1)
    ensemble = q.ensemble_flow(problem, _stack(starts), 15.0, rtol=1e-12, atol=1e-14, t_eval=31, progress=False)
    assert len(ensemble) == 5 and ensemble.success
    for k, start in enumerate(starts):
        alone = q.gradient_flow(problem, start, 15.0, rtol=1e-12, atol=1e-14, t_eval=ensemble.times, progress=False)
        member = ensemble[k]
        assert np.max(np.abs(member.loss - alone.loss)) < 1e-9 * max(1.0, alone.loss[0])
        for a, b in zip(member.points, alone.points):
            assert np.max(np.abs(a - b)) < 1e-8
        assert np.array_equal(member.points[0][0], start[0])


def test_single_member_ensemble_is_gradient_flow():
    problem = q.Problem.from_sigma([3.0, 1.0], (2, 3, 2))
    start = q.init.small_random(problem.widths, 0.1, rng=2)
    ensemble = q.ensemble_flow(problem, _stack([start]), 8.0, t_eval=None, method="DOP853", progress=False)  # shared steps
    alone = q.gradient_flow(problem, start, 8.0, method="DOP853", progress=False)
    assert ensemble.n_steps == alone.n_steps  # B = 1: the same ODE, the same tolerances
    assert np.allclose(ensemble.times, alone.times, rtol=1e-12)
    assert np.max(np.abs(ensemble.loss[0] - alone.loss)) < 1e-12


def test_every_member_conserves_its_charges():
    problem = q.Problem.from_sigma([5.0, 3.0, 2.0, 1.0], (4, 6, 6, 4))
    ensemble = q.ensemble_flow(problem, _stack(_starts(problem, 8, 0.05, 5)), 40.0, progress=False)
    assert ensemble.conservation_drift.shape == (8, 101)
    assert np.all(ensemble.conservation_drift[:, 0] == 0.0)
    assert ensemble.conservation_drift.max() < 1e-8
    assert np.all(np.diff(ensemble.loss, axis=1) <= 1e-10)  # every loss curve decreases


def test_gradient_tol_stops_each_member_where_gradient_flow_would():
    """Member 2 starts near the origin saddle with ||grad L|| < tol: it converges only after escaping."""
    problem = q.Problem.from_sigma([3.0, 2.0], (2, 3, 3, 2))
    starts = [q.init.small_random(problem.widths, scale, rng=k) for k, scale in enumerate((0.3, 0.1, 1e-4))]
    tol = 1e-6
    assert np.linalg.norm(q.to_vector(problem.gradient(starts[2]))) < tol
    ensemble = q.ensemble_flow(problem, _stack(starts), 1e5, gradient_atol=tol, t_eval=None, method="DOP853", progress=False)
    assert ensemble.status == 1 and np.all(ensemble.member_status == 1)
    assert ensemble.gradient_norm[:, -1].max() <= tol * (1 + 1e-6)
    assert ensemble.times[-1] == max(ensemble.converged_time)
    assert ensemble.loss[2, 0] > 6.4  # member 2 starts at the origin's value 1/2 (9 + 4) and moves on
    for k, start in enumerate(starts):
        alone = q.gradient_flow(problem, start, 1e5, gradient_atol=tol, progress=False)
        assert alone.status == 1
        stop, converged = alone.times[-1], ensemble.converged_time[k]
        # the end of the ensemble's step in which member k fell through tol, or the event itself;
        # after member 2's plateau of ~3000 time units the two integrations differ by ~2e-5 relative
        step = np.searchsorted(ensemble.times, converged)
        assert ensemble.times[step] == converged
        assert ensemble.times[step - 1] <= stop * (1 + 1e-4) and converged >= stop * (1 - 1e-4)
        assert ensemble.loss[k, step] == pytest.approx(alone.loss[-1], rel=1e-3, abs=1e-9)  # the same critical value


def test_members_that_do_not_converge_are_reported():
    problem = q.Problem.from_sigma([3.0, 2.0], (2, 3, 3, 2))
    starts = [q.init.small_random(problem.widths, 0.3, rng=0), q.init.small_random(problem.widths, 1e-4, rng=1)]
    ensemble = q.ensemble_flow(problem, _stack(starts), 12.0, gradient_atol=1e-6, progress=False)
    assert ensemble.status == 0
    assert list(ensemble.member_status) == [1, 0]
    assert np.isfinite(ensemble.converged_time[0]) and np.isnan(ensemble.converged_time[1])
    assert ensemble[1].status == 0 and ensemble[0].status == 1


def test_save_and_load(tmp_path):
    problem = q.Problem.from_data(*np.random.default_rng(1).standard_normal((2, 3, 7)), (3, 4, 3))
    ensemble = q.ensemble_flow(problem, _stack(_starts(problem, 3, 0.2, 2)), 5.0, gradient_atol=1e-3, progress=False)
    path = ensemble.save(tmp_path / "ensemble.npz")
    loaded = q.Ensemble.load(path)
    for name in ("times", "loss", "gradient_norm", "conservation_drift", "converged_time", "member_status"):
        assert np.array_equal(getattr(loaded, name), getattr(ensemble, name), equal_nan=name == "converged_time")
    for a, b in zip(loaded.points, ensemble.points):
        assert np.array_equal(a, b)
    assert loaded.problem.offset == problem.offset and np.array_equal(loaded.problem.input_map, problem.input_map)
    assert (loaded.n_rhs, loaded.n_steps, loaded.rtol, loaded.gradient_atol) == (ensemble.n_rhs, ensemble.n_steps, ensemble.rtol, 1e-3)
    with pytest.raises(FileExistsError, match="overwrite"):
        ensemble.save(path)
    with pytest.raises(ValueError, match="not a quotient ensemble"):
        q.Ensemble.load(q.gradient_flow(problem, ensemble[0].point(0), 1.0, progress=False).save(tmp_path / "t.npz"))


def test_files_written_before_the_tolerance_rename_load(tmp_path):
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    ensemble = q.ensemble_flow(problem, _stack(_starts(problem, 2, 0.5, 3)), 1e3, t_eval=11, gradient_atol=1e-4, progress=False)
    path = ensemble.save(tmp_path / "ensemble.npz")
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["meta"]))
    meta["gradient_tol"] = meta.pop("gradient_atol")  # the header's name until issue 15
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    loaded = q.Ensemble.load(tmp_path / "old.npz")
    assert loaded.gradient_atol == 1e-4 and loaded.status is q.flow.Status.GRADIENT_BOUND == ensemble.status
    del meta["gradient_tol"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(q.FileFormatError, match="lacks 'gradient_atol'"):
        q.Ensemble.load(tmp_path / "broken.npz")


def test_indexing_gives_member_trajectories():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    ensemble = q.ensemble_flow(problem, _stack(_starts(problem, 4, 0.5, 3)), 2.0, t_eval=11, progress=False)
    last = ensemble[-1]
    assert isinstance(last, q.Trajectory) and last.meta["ensemble_member"] == 3
    assert np.array_equal(last.points[1], ensemble.points[1][3])
    assert np.array_equal(ensemble.final_points[0], ensemble.points[0][:, -1])
    assert ensemble.end_to_end.shape == (4, 11, 2, 2)
    assert len(list(ensemble)) == 4
    with pytest.raises(IndexError, match="out of range"):
        ensemble[4]
    with pytest.raises(TypeError, match="member number"):
        ensemble[1:2]


def test_bad_input_is_named():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 3, 2))
    point = q.init.small_random(problem.widths, 0.1, rng=0)
    with pytest.raises(ValueError, match="stacked"):
        q.ensemble_flow(problem, point, 1.0)
    with pytest.raises(ValueError, match="points has widths"):
        q.ensemble_flow(problem, _stack([q.init.small_random((2, 4, 2), 0.1, rng=0)]), 1.0)
    with pytest.raises(ValueError, match="t_final"):
        q.ensemble_flow(problem, _stack([point]), -1.0)
    with pytest.raises(ValueError, match="rtol"):
        q.ensemble_flow(problem, _stack([point]), 1.0, rtol=0.0)
    with pytest.raises(TypeError, match="problem"):
        q.ensemble_flow("problem", _stack([point]), 1.0)


@pytest.mark.parametrize("shared_steps", [None, True])
def test_stiff_members_until_minimum_agree_with_gradient_flow(shared_steps):
    """Members of the stiff depth-4 case (plateaus after modes are learned) with until="minimum" and "auto":
    each member with its own steps and Hessian (the default for "auto"), or all in one ODE with LSODA
    on their banded block-diagonal Hessian; each member converges where its own gradient_flow stops."""
    problem = q.Problem.from_sigma([3.0, 2.0, 1.5, 1.0], (4,) * 5)
    starts = [q.init.small_random(problem.widths, scale, rng=k) for k, scale in enumerate((0.3, 0.1, 0.05))]
    tol = 1e-8
    ensemble = q.ensemble_flow(
        problem, _stack(starts), 1e30, gradient_atol=tol, until="minimum", t_eval=51, method="auto", shared_steps=shared_steps,
        progress=False,
    )  # fmt: skip
    assert ensemble.method == "auto" and "LSODA" in ensemble.meta["solver"] and ensemble.meta["n_hessians"] > 0
    assert ensemble.meta["shared_steps"] is bool(shared_steps)
    assert ensemble.status == 1 and np.all(ensemble.member_status == 1)
    assert np.all(ensemble.loss[:, -1] < 1e-14)  # every member at the global minimum, none at a saddle
    assert ensemble.conservation_drift.max() < 1e-9
    assert np.all(np.diff(ensemble.loss, axis=1) <= 1e-12)
    for k, start in enumerate(starts):
        alone = q.gradient_flow(problem, start, 1e30, gradient_atol=tol, until="minimum", t_eval=2, progress=False)
        assert alone.status == 1
        stop, converged = alone.times[-1], ensemble.converged_time[k]
        if not shared_steps:  # the same engine, the same steps: the same event
            assert converged == pytest.approx(stop, rel=1e-12)
            assert ensemble.meta["member_steps"][k] == alone.n_steps
        elif converged == ensemble.times[-1]:  # the last member: the batch's terminal event itself
            assert converged == pytest.approx(stop, rel=1e-5)
        else:  # the end of the batch's step in which the member fell through tol
            assert stop * (1 - 1e-5) <= converged <= stop * 1.01


@pytest.mark.parametrize("method", ["DOP853", "auto"])
def test_separate_members_are_their_own_gradient_flows(method):
    """shared_steps=False: member k is gradient_flow from start k sampled at the ensemble's times."""
    problem = q.Problem.from_sigma(np.random.default_rng(0).standard_normal((3, 2)), (2, 4, 3, 3))
    starts = _starts(problem, 4, 0.3, 1)
    ensemble = q.ensemble_flow(problem, _stack(starts), 15.0, t_eval=np.linspace(0.0, 15.0, 16), method=method,
                               shared_steps=False, progress=False)  # fmt: skip
    assert ensemble.status == 0 and np.all(ensemble.member_status == 0) and ensemble.meta["shared_steps"] is False
    assert ensemble.rtol == 1e-10 and ensemble.times.size == 16
    steps = 0
    for k, start in enumerate(starts):
        alone = q.gradient_flow(problem, start, 15.0, t_eval=ensemble.times, method=method, progress=False)
        for a, b in zip(ensemble[k].points, alone.points):
            assert np.allclose(a, b, rtol=1e-13, atol=1e-13)
        steps += alone.n_steps
    assert ensemble.n_steps == steps


def test_separate_members_follow_the_exact_mode_solutions():
    """Aligned balanced starts (depth 3), one per member and each with its own strengths: every singular
    value of every member on modes.mode_solution, and the conserved quantities kept."""
    sigma = np.array([3.0, 2.0, 1.0])
    problem = q.Problem.from_sigma(sigma, (3, 3, 3, 3))
    strengths = np.array([[0.3, 0.2, 0.1], [0.05, 0.3, 0.02], [0.1, 0.1, 0.01]])
    starts = [q.init.aligned(problem, s, rng=k) for k, s in enumerate(strengths)]
    times = np.linspace(0.0, 60.0, 31)
    ensemble = q.ensemble_flow(problem, _stack(starts), 60.0, t_eval=times, method="auto", rtol=1e-12, atol=1e-14, progress=False)
    assert ensemble.meta["shared_steps"] is False and ensemble.success
    singular = np.linalg.svd(ensemble.end_to_end, compute_uv=False)  # (B, T, 3), descending
    for k, s in enumerate(strengths):
        exact = np.sort(q.mode_solution(sigma, s**3, times, 3), axis=1)[:, ::-1]  # (T, 3)
        assert np.max(np.abs(singular[k] - exact)) < 1e-7
    assert ensemble.conservation_drift.max() < 1e-11


def test_separate_members_report_their_own_failure():
    """A member whose flow blows up (dw/dt = w^3 from 1: at t = 1/2) fails alone; the other one runs on."""
    from test_flow import _Explosive

    problem = q.Problem.from_loss(_Explosive(), (1, 1))
    points = (np.array([[[1.0]], [[0.1]]]),)
    ensemble = q.ensemble_flow(problem, points, 1.0, t_eval=11, method="auto", throw=False, progress=False)
    assert ensemble.status == -1 and list(ensemble.member_status) == [-1, 0] and "member 0" in ensemble.message
    assert np.all(np.isnan(ensemble.loss[0, 6:])) and np.all(np.isfinite(ensemble.loss[1]))
    exact = 0.1 / np.sqrt(1 - 2 * 0.01 * ensemble.times)  # w(t) = w0 / sqrt(1 - 2 w0^2 t)
    assert np.allclose(ensemble.points[0][1, :, 0, 0], exact, rtol=1e-8)
    with pytest.raises(RuntimeError, match="member 0 failed"):
        q.ensemble_flow(problem, points, 1.0, t_eval=11, method="auto", progress=False)


def test_separate_steps_bad_input_is_named():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 3, 2))
    points = _stack([q.init.small_random(problem.widths, 0.1, rng=0)])
    with pytest.raises(ValueError, match="t_eval=None"):
        q.ensemble_flow(problem, points, 1.0, method="auto", t_eval=None, progress=False)
    with pytest.raises(TypeError, match="shared_steps"):
        q.ensemble_flow(problem, points, 1.0, shared_steps="no", progress=False)
    with pytest.raises(ValueError, match="until"):
        q.ensemble_flow(problem, points, 1.0, method="auto", until="saddle", progress=False)
