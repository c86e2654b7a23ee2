"""Closed forms of one mode and plateau predictions (quotient/modes.py, quotient/riccati.py)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import quotient as q
from quotient import init

FLOW = dict(rtol=1e-12, atol=1e-14, progress=False)


def _scalar_ode(sigma, u0, t, depth, imbalance=0.0):
    """Independent oracle: the mode ODE integrated by solve_ivp."""
    if imbalance:
        rhs = lambda _, u: np.sqrt(imbalance**2 + 4 * u**2) * (sigma - u)  # noqa: E731
    else:
        rhs = lambda _, u: depth * np.abs(u) ** (2 - 2 / depth) * (sigma - u)  # noqa: E731
    return solve_ivp(rhs, (0, t), [u0], method="DOP853", rtol=1e-13, atol=1e-16).y[0, -1]


# ---------------------------------------------------------------------------------------------- test cases
def test_tc6_saxe_depth_two():
    u0 = np.array([1e-3, 2e-3, 5e-3])
    u = q.mode_solution([3.0, 2.0, 1.0], u0, [1.0, 2.0], 2)
    np.testing.assert_allclose(u[0], [0.355712478919, 0.103641317198, 0.035801588701], atol=1e-9)
    np.testing.assert_allclose(u[1], [2.945720698616, 1.497984650465, 0.215293960252], atol=1e-9)


def test_tc6_full_matrix_flow():
    """W_1 = Q diag(sqrt u0), W_2 = diag(sqrt u0) Q^T: the full flow carries each mode as predicted."""
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3))
    u0 = np.array([1e-3, 2e-3, 5e-3])
    trajectory = q.gradient_flow(problem, init.spectral(problem, u0, rng=0), 2.0, t_eval=[0.0, 1.0, 2.0], **FLOW)
    diagonal = np.diagonal(trajectory.end_to_end, axis1=1, axis2=2)
    np.testing.assert_allclose(diagonal[1:], q.mode_solution(problem.sigma, u0, [1.0, 2.0], 2), atol=1e-9)


# math-spec 5.6: eps = 0.05 per layer, u0 = eps^h; exact half-learning time and leading order
TC7 = [
    (2, 3.0, 1.1815405258, 1.1817),
    (2, 1.0, 2.9944807084, 2.9957),
    (3, 3.0, 6.4700174743, 6.6667),
    (3, 1.0, 19.1484992454, 20.0000),
    (4, 2.0, 99.9054938097, 100.0000),
    (4, 1.0, 199.7323300097, 200.0000),
]


@pytest.mark.parametrize(("depth", "sigma", "exact", "leading"), TC7)
def test_tc7_half_learning_times(depth, sigma, exact, leading):
    u0 = 0.05**depth
    assert q.learning_time(sigma, u0, depth) == pytest.approx(exact, abs=1e-8)
    assert q.learning_time(sigma, u0, depth, leading_order=True) == pytest.approx(leading, abs=1e-4)


def test_tc7_table_against_the_full_flow():
    """h = 3, sigma = (3, 2, 1), eps = 0.05: at the predicted times the full flow is at sigma/2."""
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))
    u0 = np.full(3, 0.05**3)
    times = q.learning_time(problem.sigma, u0, 3)
    trajectory = q.gradient_flow(problem, init.spectral(problem, u0, rng=1), times.max(), t_eval=np.sort(times), **FLOW)
    W = trajectory.end_to_end
    for j, k in enumerate(np.argsort(times)):
        assert W[j, k, k] == pytest.approx(problem.sigma[k] / 2, abs=1e-9)


def test_tc8_two_layer_imbalanced_scalar():
    a0, b0, sigma = 0.01, 0.5, 2.0
    p = q.mode_solution(sigma, a0 * b0, [1.0, 2.0, 3.0], 2, imbalance=b0**2 - a0**2)
    np.testing.assert_allclose(p, [1.3086087563, 1.9810221627, 1.9996518784], atol=1e-9)
    # time formula vs time, both ways
    for t, value in zip([1.0, 2.0, 3.0], p):
        assert q.mode_time(sigma, a0 * b0, value, 2, imbalance=b0**2 - a0**2) == pytest.approx(t, abs=1e-8)


def test_tc12_stable_ray_of_the_scalar_chain():
    """h = 3, sigma = 1, start (0.5, 0.5, -0.5): a balanced chain with u0 = -1/8 decays to 0."""
    w = np.abs(q.mode_solution(1.0, -0.125, [1.0, 5.0, 20.0, 100.0, 1000.0], 3)) ** (1 / 3)
    np.testing.assert_allclose(w, [0.32607742584, 0.140660505007, 0.045211685061, 0.009792482615, 0.000997885284], atol=1e-10)


def test_tc9_riccati_two_layer_matrix_solution():
    problem = q.Problem.from_sigma(np.array([[2.0, 0.5], [0.3, 1.0]]), (2, 2, 2))
    W1 = np.array([[0.1, 0.2], [0.0, 0.3]])
    point0 = problem.from_data_frame((W1, W1.T))  # balanced: C = W1 W1^T - W1 W1^T = 0
    P = q.two_layer_solution(problem, point0, [1.0, 3.0])
    U, V = problem.output_frame, problem.input_map
    np.testing.assert_allclose(U @ P[0] @ V, [[0.69647864905, 0.56239867526], [0.48212937647, 0.57041203916]], atol=1e-10)
    np.testing.assert_allclose(U @ P[1] @ V, [[1.97721692933, 0.54623817722], [0.35539352812, 0.88580029636]], atol=1e-10)


@pytest.mark.parametrize(("widths", "delta"), [((3, 2, 4), 0.8), ((4, 3, 2), -0.5), ((3, 3, 3), 0.0)])
def test_riccati_against_the_flow_for_lambda_balanced_starts(widths, delta):
    target = np.random.default_rng(2).standard_normal((widths[-1], widths[0]))
    problem = q.Problem.from_sigma(target, widths)
    point0 = init.delta_balanced(widths, delta, scale=0.3, rng=3)
    trajectory = q.gradient_flow(problem, point0, 5.0, t_eval=11, **FLOW)
    np.testing.assert_allclose(trajectory.end_to_end, q.two_layer_solution(problem, point0, trajectory.times), atol=1e-9)


def test_riccati_rejects_an_unbalanced_start():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2, 2))
    with pytest.raises(ValueError, match="not lambda-balanced"):
        q.two_layer_solution(problem, init.small_random(problem.widths, 0.3, rng=4), 1.0)
    with pytest.raises(ValueError, match="depth-2"):
        q.two_layer_solution(q.Problem.from_sigma([1.0], (1, 1, 1, 1)), init.decoupled((1, 1, 1, 1), [0.1]), 1.0)


# ---------------------------------------------------------------------------------------------- closed forms
BRANCHES = [(2.0, 0.01), (2.0, 3.0), (1.0, -0.2), (0.0, 0.3), (0.0, -0.3), (1.5, 1.4), (1.0, 0.0)]


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 6])
@pytest.mark.parametrize(("sigma", "u0"), BRANCHES)
def test_mode_solution_matches_the_scalar_ode(depth, sigma, u0):
    for t in (0.3, 2.0):
        assert q.mode_solution(sigma, u0, t, depth) == pytest.approx(_scalar_ode(sigma, u0, t, depth), abs=1e-10)


@pytest.mark.parametrize(
    ("sigma", "p0", "imbalance"), [(2.0, -0.3, 0.5), (2.0, -0.3, -0.5), (2.0, 3.0, 0.4), (0.0, 0.3, 0.5), (1.0, 0.0, 0.3)]
)
def test_imbalanced_depth_two_matches_the_scalar_ode(sigma, p0, imbalance):
    for t in (0.5, 3.0):
        expected = _scalar_ode(sigma, p0, t, 2, imbalance)
        assert q.mode_solution(sigma, p0, t, 2, imbalance=imbalance) == pytest.approx(expected, abs=1e-10)


def test_mode_solution_shapes():
    u = q.mode_solution([3.0, 2.0], [0.1, 0.2], np.linspace(0, 1, 5), 3)
    assert u.shape == (5, 2)
    np.testing.assert_array_equal(u[0], [0.1, 0.2])
    assert isinstance(q.mode_solution(1.0, 0.1, 1.0, 3), float)


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_mode_time_inverts_mode_solution(depth):
    sigma = 2.0
    for u0, u1 in ((1e-4, 0.5), (1e-4, 1.9), (0.3, 1.999), (2.5, 2.2), (-0.5, -0.01)):
        t = q.mode_time(sigma, u0, u1, depth)
        assert t > 0
        assert q.mode_solution(sigma, u0, t, depth) == pytest.approx(u1, rel=1e-10)


def test_mode_time_limits_and_wrong_branch():
    assert q.mode_time(2.0, 0.1, 2.0, 3) == np.inf
    assert q.mode_time(2.0, -0.1, 0.0, 3) == np.inf
    assert q.mode_time(2.0, 0.5, 0.1, 3) < 0  # behind the start
    with pytest.raises(ValueError, match="not on the trajectory"):
        q.mode_time(2.0, 0.1, 2.5, 3)
    with pytest.raises(ValueError, match="not on the trajectory"):
        q.mode_time(2.0, -0.1, 0.1, 2)


def test_mode_solution_against_the_full_deep_flow():
    """Aligned balanced starts, depths 3 and 4, random hidden frames: full flow = scalar closed form."""
    for depth, widths in ((3, (3, 5, 4, 3)), (4, (3, 4, 4, 4, 3))):
        problem = q.Problem.from_sigma([3.0, 2.0, 1.0], widths)
        u0 = np.array([2e-3, 5e-3, 1e-2])
        times = np.linspace(0, 8.0, 17)
        trajectory = q.gradient_flow(problem, init.spectral(problem, u0, rng=depth), 8.0, t_eval=times, **FLOW)
        measured = np.diagonal(trajectory.end_to_end, axis1=1, axis2=2)
        assert np.abs(measured - q.mode_solution(problem.sigma, u0, times, depth)).max() < 1e-8


def test_bad_input():
    with pytest.raises(ValueError, match="depth"):
        q.mode_solution(1.0, 0.1, 1.0, 0)
    with pytest.raises(ValueError, match="non-negative"):
        q.mode_solution(-1.0, 0.1, 1.0, 2)
    with pytest.raises(ValueError, match="non-negative"):
        q.mode_solution(1.0, 0.1, -1.0, 2)
    with pytest.raises(ValueError, match="depth 2 only"):
        q.mode_solution(1.0, 0.1, 1.0, 3, imbalance=0.1)
    with pytest.raises(ValueError, match="fraction"):
        q.learning_time(1.0, 0.1, 2, fraction=1.5)
    with pytest.raises(ValueError, match="finite"):
        q.mode_time(1.0, np.nan, 0.5, 2)


# ---------------------------------------------------------------------------------------------- chains
def _chain_crossing_time(sigma, a0, target, t_max):
    """Independent oracle: integrate the scalar chain and locate p = target with an event."""

    def rhs(_, a):
        p = np.prod(a)
        return np.array([np.prod(np.delete(a, i)) * (sigma - p) for i in range(a.size)])

    def hit(_, a):
        return np.prod(a) - target

    hit.terminal = True
    solution = solve_ivp(rhs, (0, t_max), a0, events=hit, method="DOP853", rtol=1e-13, atol=1e-16)
    return solution.t_events[0][0]


@pytest.mark.parametrize("a0", [[0.05, 0.1, 0.2], [0.2, 0.3, -0.01], [0.3, -0.1, 0.2, 0.25], [0.0, 0.2, 0.3]])
def test_chain_time_matches_the_scalar_chain(a0):
    a0 = np.array(a0)
    expected = _chain_crossing_time(2.0, a0, 1.0, 1e4)
    assert q.chain_time(2.0, a0, 1.0) == pytest.approx(expected, rel=1e-9)


def test_chain_time_for_tied_negative_chain_is_infinite():
    assert q.chain_time(1.0, [0.2, 0.2, -0.2], 0.5) == np.inf  # a balanced stable ray


# ---------------------------------------------------------------------------------------------- plateaus
def _time_error(problem, point0, prediction):
    """Relative time error of the prediction, (u_k(t_k) - sigma_k/2) / (u_k'(t_k) t_k), on the full flow."""
    finite = np.isfinite(prediction.times)
    order = np.argsort(prediction.times[finite])
    modes = np.flatnonzero(finite)[order]
    times = prediction.times[modes]
    trajectory = q.gradient_flow(problem, point0, times.max(), t_eval=times, **FLOW)
    errors = []
    for j, k in enumerate(modes):
        point = trajectory.point(j)
        gradient = problem.gradient(point)
        # dW/dt = sum_i W_h..W_{i+1} (-G_i) W_{i-1}..W_1: each term is the product with layer i replaced
        velocity = sum(q.end_to_end(point[:i] + (-gradient[i],) + point[i + 1 :]) for i in range(len(point)))[k, k]
        W = q.end_to_end(point)
        errors.append(abs(W[k, k] - problem.sigma[k] / 2) / abs(velocity) / times[j])
    return max(errors)


@pytest.mark.parametrize(
    ("widths", "strengths"),
    [
        ((3, 4, 3), [[0.01, 0.02, 0.005], [0.01, 0.02, 0.005]]),  # h = 2 balanced
        ((3, 4, 3), [[0.01, 0.2, 0.05], [0.3, 0.02, -0.1]]),  # h = 2 unbalanced, one negative product
        ((3, 4, 5, 3), [[0.05, 0.1, 0.1], [0.05, 0.1, 0.1], [0.05, 0.1, 0.1]]),  # h = 3 balanced
        ((3, 5, 4, 3), [[0.05, 0.1, 0.2], [0.1, 0.05, 0.3], [0.02, 0.3, -0.01]]),  # h = 3 unbalanced
        ((3, 4, 4, 4, 3), [[0.2, 0.3, 0.25]] * 4),  # h = 4 balanced
    ],
)
def test_predict_plateaus_exact_for_aligned_starts(widths, strengths):
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], widths)
    point0 = init.aligned(widths, strengths, rng=5)
    prediction = q.predict_plateaus(problem, point0)
    assert prediction.exact
    assert np.all(np.isfinite(prediction.times))
    assert _time_error(problem, point0, prediction) < 1e-6


def test_predict_plateaus_modes_never_learned():
    problem = q.Problem.from_sigma([3.0, 2.0, 0.0], (3, 2, 3, 3))  # bottleneck r = 2, sigma_3 = 0
    prediction = q.predict_plateaus(problem, init.spectral(problem, [1e-3, -1e-3], rng=6))
    assert prediction.exact
    assert np.isfinite(prediction.times[0])
    assert prediction.times[1] == np.inf  # balanced negative product: the stable ray
    assert prediction.times[2] == np.inf
    assert prediction.order == (1,)


def test_predict_plateaus_depth_one_is_exact():
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 2))
    point0 = init.small_random(problem.widths, 0.1, rng=7)
    prediction = q.predict_plateaus(problem, point0)
    expected = np.log((problem.sigma - np.diag(point0[0])) / (problem.sigma / 2))
    np.testing.assert_allclose(prediction.times, expected, rtol=1e-12)


def test_predict_plateaus_random_small_init_is_an_estimate():
    """Not on the aligned set: the nearest-balanced-chain estimate. Depth 2: exact to leading order
    as the scale goes to zero, so the top mode is predicted within 2% (measured: 0.0-0.5%)."""
    problem = q.Problem.from_sigma([5.0, 3.0, 2.0, 1.0], (4, 8, 4))
    point0 = init.small_random(problem.widths, 1e-3, rng=0)
    prediction = q.predict_plateaus(problem, point0)
    assert not prediction.exact
    trajectory = q.gradient_flow(problem, point0, 12.0, t_eval=np.linspace(0, 12, 6001), **FLOW)
    u = trajectory.end_to_end[:, 0, 0]
    measured = np.interp(2.5, u, trajectory.times)  # u is increasing for the top mode
    assert abs(prediction.times[0] - measured) / measured < 0.02
    assert prediction.order == (1, 2, 3, 4)


def test_predict_plateaus_needs_singular_values():
    loss = q.PseudoHuberLoss(np.eye(2))
    problem = q.Problem.from_loss(loss, (2, 2, 2))
    with pytest.raises(ValueError, match="square-loss"):
        q.predict_plateaus(problem, init.small_random((2, 2, 2), rng=0))
