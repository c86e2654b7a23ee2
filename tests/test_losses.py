"""Losses of the end-to-end map (quotient/losses.py, Problem.from_loss) and the protocol they follow."""

import inspect

import numpy as np
import pytest

import quotient as q
from quotient import init, losses

FLOW = dict(rtol=1e-12, atol=1e-14, progress=False)
WIDTHS = (3, 4, 4, 2)


def _data(seed=0, n=20):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, n)) * np.array([[3.0], [1.0], [0.3]])  # anisotropic inputs
    Y = rng.standard_normal((2, n))
    return X, Y


def _losses():
    X, Y = _data()
    return {
        "square": losses.SquareLoss(np.random.default_rng(2).standard_normal((2, 3))),
        "covariance": q.CovarianceSquareLoss.from_data(X, Y),
        "pseudo-huber": q.PseudoHuberLoss(np.random.default_rng(1).standard_normal((2, 3)), delta=0.5),
        "logistic": q.LogisticLoss(X, np.sign(Y)),
    }


LOSSES = _losses()


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_matches_finite_differences(name):
    problem = q.Problem.from_loss(LOSSES[name], WIDTHS)
    point = init.small_random(WIDTHS, 0.5, rng=2)
    direction = init.small_random(WIDTHS, 1.0, rng=3)
    eps = 1e-6
    plus = problem.loss(tuple(W + eps * D for W, D in zip(point, direction)))
    minus = problem.loss(tuple(W - eps * D for W, D in zip(point, direction)))
    analytic = sum(np.sum(G * D) for G, D in zip(problem.gradient(point), direction))
    assert (plus - minus) / (2 * eps) == pytest.approx(analytic, rel=1e-7)


@pytest.mark.parametrize("name", LOSSES)
def test_hvp_matches_finite_differences_of_the_gradient(name):
    problem = q.Problem.from_loss(LOSSES[name], WIDTHS)
    point = init.small_random(WIDTHS, 0.5, rng=4)
    direction = init.small_random(WIDTHS, 1.0, rng=5)
    eps = 1e-6
    plus = problem.gradient(tuple(W + eps * D for W, D in zip(point, direction)))
    minus = problem.gradient(tuple(W - eps * D for W, D in zip(point, direction)))
    for numeric, analytic in zip(((a - b) / (2 * eps) for a, b in zip(plus, minus)), problem.hvp(point, direction)):
        np.testing.assert_allclose(numeric, analytic, rtol=1e-6, atol=1e-7 * np.abs(analytic).max())


@pytest.mark.parametrize("name", LOSSES)
def test_loss_level_derivatives_broadcast(name):
    """value, gradient and hvp of l broadcast over a leading batch axis, with finite differences."""
    loss = LOSSES[name]
    rng = np.random.default_rng(6)
    W = rng.standard_normal((5, 2, 3))
    dW = rng.standard_normal((5, 2, 3))
    eps = 1e-6
    assert loss.value(W).shape == (5,)
    numeric = (loss.value(W + eps * dW) - loss.value(W - eps * dW)) / (2 * eps)
    np.testing.assert_allclose(numeric, np.sum(loss.gradient(W) * dW, axis=(1, 2)), rtol=1e-7)
    numeric = (loss.gradient(W + eps * dW) - loss.gradient(W - eps * dW)) / (2 * eps)
    np.testing.assert_allclose(numeric, loss.hvp(W, dW), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(loss.hvp(W[0], dW), np.stack([loss.hvp(W[0], d) for d in dW]))


@pytest.mark.parametrize("name", LOSSES)
def test_charges_are_conserved_for_any_loss(name):
    problem = q.Problem.from_loss(LOSSES[name], WIDTHS)
    trajectory = q.gradient_flow(problem, init.small_random(WIDTHS, 0.5, rng=7), 3.0, **FLOW)
    assert trajectory.loss[-1] < trajectory.loss[0]
    assert np.all(np.diff(trajectory.loss) <= 1e-12 * trajectory.loss[0])
    assert trajectory.conservation_drift.max() < 1e-8


def test_covariance_loss_equals_the_data_loss():
    X, Y = _data()
    loss = q.CovarianceSquareLoss.from_data(X, Y)
    W = np.random.default_rng(8).standard_normal((2, 3))
    assert loss.value(W) == pytest.approx(0.5 * np.sum((Y - W @ X) ** 2), rel=1e-13)


def test_covariance_loss_flow_reaches_least_squares_but_not_along_the_whitened_path():
    """Same minimum as the whitened problem (the least-squares residual), different path."""
    X, Y = _data(n=50)
    widths = (3, 3, 3, 2)
    raw = q.Problem.from_loss(q.CovarianceSquareLoss.from_data(X, Y), widths)
    whitened = q.Problem.from_data(X, Y, widths)
    point0 = init.small_random(widths, 0.3, rng=9)
    trajectory = q.gradient_flow(raw, point0, 200.0, gradient_atol=1e-9, **FLOW)
    W_ls = np.linalg.lstsq(X.T, Y.T, rcond=None)[0].T
    assert trajectory.loss[-1] == pytest.approx(0.5 * np.sum((Y - W_ls @ X) ** 2), rel=1e-9)
    np.testing.assert_allclose(q.end_to_end(trajectory.point(-1)), W_ls, atol=1e-6)
    # the whitened flow from the same data-frame network passes through other maps
    whitened_run = q.gradient_flow(whitened, whitened.from_data_frame(point0), 1.0, t_eval=[1.0], **FLOW)
    raw_run = q.gradient_flow(raw, point0, 1.0, t_eval=[1.0], **FLOW)
    assert np.abs(q.end_to_end(whitened.to_data_frame(whitened_run.point(0))) - raw_run.end_to_end[0]).max() > 1e-2


def test_general_loss_problem_has_no_sigma():
    problem = q.Problem.from_loss(LOSSES["pseudo-huber"], WIDTHS)
    assert problem.sigma is None and problem.target is None
    assert "PseudoHuberLoss" in repr(problem)
    with pytest.raises(ValueError, match="no target Sigma"):
        problem.adjacency_target()
    A = q.to_adjacency(init.small_random(WIDTHS, 0.5, rng=10))
    assert problem.adjacency_loss(A) == pytest.approx(problem.loss(q.from_adjacency(A, WIDTHS)))
    layered = problem.gradient(q.from_adjacency(A, WIDTHS))
    for dense, layer in zip(q.from_adjacency(problem.adjacency_gradient(A), WIDTHS), layered):
        np.testing.assert_allclose(dense, layer, atol=1e-13)


def test_from_loss_bad_input():
    with pytest.raises(TypeError, match="lacks"):
        q.Problem.from_loss(object(), WIDTHS)
    with pytest.raises(ValueError, match="shape"):
        q.Problem.from_loss(q.PseudoHuberLoss(np.zeros((3, 3))), WIDTHS)


def test_loss_constructors_bad_input():
    with pytest.raises(ValueError, match="symmetric"):
        q.CovarianceSquareLoss(np.array([[1.0, 2.0], [0.0, 1.0]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="positive semidefinite"):
        q.CovarianceSquareLoss(-np.eye(2), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="columns"):
        q.CovarianceSquareLoss(np.eye(2), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="delta"):
        q.PseudoHuberLoss(np.zeros((2, 2)), delta=0.0)
    with pytest.raises(ValueError, match="samples"):
        q.LogisticLoss(np.zeros((2, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        q.PseudoHuberLoss(np.array([[np.nan]]))


def test_every_loss_of_the_module_follows_the_protocol():
    classes = {
        cls for _, cls in inspect.getmembers(losses, inspect.isclass)
        if cls.__module__ == losses.__name__ and cls is not losses.EndToEndLoss
    }  # fmt: skip
    assert {type(loss) for loss in LOSSES.values()} == classes  # every loss of the module is tested here
    for loss in LOSSES.values():
        assert isinstance(loss, losses.EndToEndLoss)
        assert losses.check_loss(loss) is loss
    assert set(losses.LOSS_METHODS) == {
        name for name, _ in inspect.getmembers(losses.EndToEndLoss, inspect.isfunction) if not name.startswith("_")
    }


class _NoHvp:
    def value(self, W):
        return 0.5 * np.sum(W**2, axis=(-2, -1))

    def gradient(self, W):
        return W


class _HvpNotCallable(_NoHvp):
    hvp = 1.0


@pytest.mark.parametrize("loss", [_NoHvp(), _HvpNotCallable()], ids=["missing", "not callable"])
def test_a_loss_without_a_method_is_refused_naming_it(loss):
    if type(loss) is _NoHvp:  # isinstance checks that the names exist; check_loss also that they are callable
        assert not isinstance(loss, losses.EndToEndLoss)
    with pytest.raises(TypeError, match=r"loss must be a loss of the end-to-end map .* lacks hvp"):
        q.Problem.from_loss(loss, WIDTHS)
    with pytest.raises(TypeError, match=r"end_to_end_loss must be .* lacks hvp"):
        q.Problem(widths=WIDTHS, target=None, sigma=None, output_frame=np.eye(2), input_map=np.eye(3), end_to_end_loss=loss)
    with pytest.raises(TypeError, match=r"_NoHvp|_HvpNotCallable"):
        losses.check_loss(loss)
    with pytest.raises(TypeError, match=r"lacks value, gradient, hvp"):
        losses.check_loss(object())
