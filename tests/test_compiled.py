"""The compiled DOP853 of "auto" (quotient._compiled) against its oracles: the numpy gradient, scipy's DOP853
on the same field, the exact mode solutions and the conserved quantities."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import DOP853

import quotient as q
from quotient._compiled import CompiledFlow
from quotient._ode import flat_gradient


@settings(max_examples=40, deadline=None)
@given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=6).map(tuple) | st.sampled_from([(3, 20, 20, 2), (17, 18, 3)]),
    seed=st.integers(0, 2**16),
)
def test_compiled_gradient_is_the_numpy_gradient(widths, seed):
    """The loops (small products) and the BLAS path (products over 256 multiply-adds) against Problem.gradient."""
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(widths[-1], widths[0]))
    problem = q.Problem.from_loss(q.SquareLoss(target), widths)
    point = tuple(rng.normal(size=(widths[i], widths[i - 1])) for i in range(1, len(widths)))
    flow = CompiledFlow(widths, target)
    f, loss = flow.field(q.to_vector(point))
    expected = q.to_vector(problem.gradient(point))
    assert np.allclose(-f, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    assert loss == pytest.approx(problem.loss(point), rel=1e-12)


def _scipy_dop853(problem, y0, t_final, rtol, atol):
    gradient = flat_gradient(problem)[1]
    ode = DOP853(lambda t, y: -gradient(y), 0.0, y0, t_final, rtol=rtol, atol=atol)
    steps = 0
    while ode.status == "running":
        ode.step()
        steps += 1
    return ode.y, steps


@pytest.mark.parametrize("widths, sigma, scale", [((4, 8, 8, 4), (5.0, 3.0, 2.0, 1.0), 1e-2), ((3, 2, 4), (2.0, 1.0, 0.5), 0.5)])
def test_compiled_dop853_takes_scipys_steps(widths, sigma, scale):
    """Same tableau, initial step and step-size control as scipy's DOP853: the same steps up to rounding."""
    problem = q.Problem.from_sigma(sigma, widths)
    point0 = q.init.small_random(widths, scale, rng=1)
    y0, t_final = q.to_vector(point0), 30.0
    flow = CompiledFlow(widths, problem.target)
    flow.start(y0, 0.0, t_final, 1e-10, 1e-12, 0.0, np.inf)
    while flow.advance(t_final, 1e-10, 1e-12, np.inf, 64, 0.0, np.inf, 0) != 0:
        pass
    expected, steps = _scipy_dop853(problem, y0, t_final, 1e-10, 1e-12)
    assert flow.t == t_final
    assert abs(flow.n_steps - steps) <= max(2, 0.02 * steps)
    assert np.max(np.abs(flow.y - expected)) < 1e-8 * max(1.0, np.abs(expected).max())


def test_default_samples_and_stop_follow_the_saxe_closed_form():
    """Two layers from a balanced diagonal start follow u' = 2u(sigma - u) exactly: the samples inside steps
    (fresh steps from the step's start) and the stopping point of gradient_atol (root search on them)."""
    sigma, u0 = np.array([3.0, 1.0]), np.array([1e-3, 2e-3])
    problem = q.Problem.from_sigma(sigma, (2, 2, 2))
    point0 = (np.diag(np.sqrt(u0)), np.diag(np.sqrt(u0)))
    times = np.linspace(0.0, 6.0, 61)
    trajectory = q.gradient_flow(problem, point0, 6.0, t_eval=times, progress=False)
    assert "compiled" in trajectory.meta["solver"]
    exact = sigma * u0 / (u0 + (sigma - u0) * np.exp(-2 * sigma * times[:, None]))
    assert np.max(np.abs(np.diagonal(trajectory.end_to_end, axis1=1, axis2=2) - exact)) < 1e-8
    stopped = q.gradient_flow(problem, point0, 1e3, gradient_atol=1e-6, t_eval=2, progress=False)
    assert stopped.status == q.Status.GRADIENT_BOUND
    assert stopped.gradient_norm[-1] == pytest.approx(1e-6, rel=1e-9)
    assert stopped.conservation_drift.max() < 1e-12


def test_until_minimum_passes_the_saddle_in_the_compiled_loop():
    """From a small init the gradient is small on the first plateau: until="minimum" stops only at the minimum."""
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))
    point0 = q.init.small_random(problem.widths, 1e-3, rng=0)
    loose = q.gradient_flow(problem, point0, 1e4, gradient_atol=1e-4, t_eval=2, progress=False)
    minimum = q.gradient_flow(problem, point0, 1e4, gradient_atol=1e-4, until="minimum", t_eval=2, progress=False)
    assert loose.loss[-1] > 1.0  # stopped on the origin's plateau
    assert minimum.loss[-1] < 1e-6 and minimum.gradient_norm[-1] == pytest.approx(1e-4, rel=1e-9)


def test_a_blow_up_fails_with_the_last_finite_state():
    """L unbounded below is impossible for the square loss; a huge init overflows the compiled steps instead."""
    problem = q.Problem.from_sigma([1.0], (1, 1, 1))
    point0 = (np.array([[1e120]]), np.array([[1e120]]))
    trajectory = q.gradient_flow(problem, point0, 1.0, throw=False, progress=False)
    assert trajectory.status == q.Status.FAILED
    assert np.all(np.isfinite(trajectory.points[0]))


def test_lsoda_crawling_in_adams_mode_hands_over_to_bdf():
    """With a negligible atol, LSODA after the switch kept its Adams formulas on the stiff plateau of the saddle
    {1} (order 1, h = 0.025, millions of steps); "auto" hands over to BDF after CRAWL_STEPS such steps."""
    problem = q.Problem.from_sigma([3.0, 2.0, 1.5, 1.0], (4,) * 5)
    point0 = q.init.small_random(problem.widths, 1e-4, rng=0)
    trajectory = q.gradient_flow(problem, point0, 1.5e7, rtol=1e-10, atol=1e-300, t_eval=2, progress=False)
    assert trajectory.status == q.Status.FINAL_TIME and trajectory.times[-1] == 1.5e7
    assert "handed over to BDF" in trajectory.meta["solver"]
    assert trajectory.n_steps < 50_000
    assert trajectory.loss[-1] <= trajectory.loss[0] and trajectory.conservation_drift.max() < 1e-9


def test_converged_members_flow_on_from_their_stop():
    """ensemble_flow with gradient_atol and separate steps: a member that converged before the last one is
    sampled on from its stopping point (the flow is autonomous), matching gradient_flow from that point."""
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))
    starts = [q.init.small_random(problem.widths, scale, rng=k) for k, scale in enumerate((0.3, 0.05))]
    stacked = tuple(np.stack(layers) for layers in zip(*starts))
    ensemble = q.ensemble_flow(problem, stacked, 1e4, gradient_atol=1e-8, until="minimum", t_eval=21, progress=False)  # "auto"
    assert ensemble.meta["shared_steps"] is False and np.all(ensemble.member_status == 1)
    first = int(np.argmin(ensemble.converged_time))
    stop = ensemble.converged_time[first]
    alone = q.gradient_flow(problem, starts[first], 1e4, gradient_atol=1e-8, until="minimum", t_eval=2, progress=False)
    assert stop == pytest.approx(alone.times[-1], rel=1e-12)
    later = ensemble.times > stop
    on = q.gradient_flow(problem, alone.point(-1), ensemble.times[-1] - stop, t_eval=ensemble.times[later] - stop, progress=False)
    for a, b in zip(ensemble[first].points, on.points):
        np.testing.assert_allclose(a[later], b, rtol=1e-12, atol=1e-14)
    assert np.all(np.isfinite(ensemble.loss)) and np.all(ensemble.loss[:, -1] < 1e-14)
