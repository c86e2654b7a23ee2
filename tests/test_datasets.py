"""Data in: the loader, the digits, the user's frame (quotient/datasets.py, Problem.data_loss, explore --dataset)."""

import argparse
import sys

import numpy as np
import pytest

import quotient as q
from quotient import cli


def _data(d_0=4, d_h=3, n=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((d_0, n)) * np.array([[10.0], [1.0], [0.1], [3.0]])[:d_0], rng.standard_normal((d_h, n))


def _gl(widths, condition, rng):
    """A GL element with every G_i of condition number ``condition``."""
    g = []
    for d in widths[1:-1]:
        Q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
        Q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
        g.append(Q1 @ np.diag(np.logspace(-0.5, 0.5, d) ** np.log10(condition)) @ Q2)
    return tuple(g)


def _reduced_rank_optimum(X, Y, rank):
    """``min 1/2 ||Y - W X||^2`` over rank(W) <= rank, by least squares and Eckart-Young (no whitening)."""
    W_full = np.linalg.lstsq(X.T, Y.T, rcond=None)[0].T
    U, s, Vt = np.linalg.svd(W_full @ X, full_matrices=False)
    return 0.5 * float(np.sum((Y - (U[:, :rank] * s[:rank]) @ Vt[:rank]) ** 2))


# ---------------------------------------------------------------------------------------- the user's frame
def test_data_loss_is_the_loss_on_the_raw_data():
    X, Y = _data()
    problem = q.Problem.from_data(X, Y, (4, 5, 5, 3))
    rng = np.random.default_rng(1)
    for _ in range(5):
        user_point = q.init.small_random(problem.widths, 0.7, rng=rng)  # a network on the raw inputs
        direct = 0.5 * np.sum((Y - q.end_to_end(user_point) @ X) ** 2)
        assert np.isclose(problem.data_loss(user_point), direct, rtol=1e-11)
        # and a singular-frame point: data_loss(to_data_frame(p)) = loss(p) + offset
        point = q.init.small_random(problem.widths, 0.7, rng=rng)
        assert np.isclose(problem.data_loss(problem.to_data_frame(point)), problem.loss(point) + problem.offset, rtol=1e-11)


def test_data_loss_cannot_tell_points_of_one_orbit_apart():
    X, Y = _data(seed=2)
    problem = q.Problem.from_data(X, Y, (4, 3, 3, 3))
    user_point = q.init.small_random(problem.widths, 0.7, rng=3)
    direct = 0.5 * np.sum((Y - q.end_to_end(user_point) @ X) ** 2)
    for condition in (1e3, 1e6):
        moved = q.act(user_point, _gl(problem.widths, condition, np.random.default_rng(4)))
        # Rounding bound of any evaluation of W = W_h ... W_1 at the moved point: h eps prod ||W_i||,
        # times d loss / d W = ||Y - W X|| ||X||; the layers grow with the condition, W does not.
        rounding = 3 * np.finfo(float).eps * np.prod([np.linalg.norm(W) for W in moved])
        tolerance = 10 * rounding * np.linalg.norm(X) * np.sqrt(2 * direct)
        assert abs(problem.data_loss(moved) - 0.5 * np.sum((Y - q.end_to_end(moved) @ X) ** 2)) <= tolerance
        assert abs(problem.data_loss(moved) - direct) <= tolerance + 1e-12 * direct


def test_data_loss_of_a_target_matrix():
    target = np.random.default_rng(5).standard_normal((3, 4))
    problem = q.Problem.from_sigma(target, (4, 6, 3))
    user_point = q.init.small_random(problem.widths, 0.7, rng=6)
    assert np.isclose(problem.data_loss(user_point), 0.5 * np.sum((target - q.end_to_end(user_point)) ** 2), rtol=1e-12)
    assert problem.offset == 0.0


def test_global_minimum_in_the_user_frame_is_the_least_squares_optimum():
    X, Y = _data(seed=7)
    for widths in [(4, 2, 3), (4, 5, 5, 3)]:  # a bottleneck of rank 2, and full rank 3
        problem = q.Problem.from_data(X, Y, widths)
        assert np.isclose(q.global_minimum(problem) + problem.offset, _reduced_rank_optimum(X, Y, min(widths)), rtol=1e-10)
        # the canonical global minimum, carried to the user's frame, attains it
        best = problem.to_data_frame(q.canonical_point(problem, tuple(range(1, min(widths) + 1))))
        assert np.isclose(problem.data_loss(best), _reduced_rank_optimum(X, Y, min(widths)), rtol=1e-10)


# ---------------------------------------------------------------------------------------- the loader
def test_from_arrays_reads_columns_and_rows():
    X, Y = _data()
    by_columns = q.datasets.from_arrays(X, Y, name="toy")
    by_rows = q.datasets.from_arrays(X.T, Y.T, samples="rows")
    assert np.array_equal(by_columns.X, by_rows.X) and np.array_equal(by_columns.Y, by_rows.Y)
    assert (by_columns.n_inputs, by_columns.n_outputs, by_columns.n_samples) == (4, 3, 30)
    assert not by_columns.X.flags.writeable and not by_columns.Y.flags.writeable
    assert repr(by_columns) == "Dataset('toy', d_0=4, d_h=3, n=30)"
    problem = by_columns.problem((5, 5))
    expected = q.Problem.from_data(X, Y, (4, 5, 5, 3))
    assert problem.widths == (4, 5, 5, 3) and np.array_equal(problem.sigma, expected.sigma)
    assert by_columns.problem(()).widths == (4, 3) and by_columns.problem(6).widths == (4, 6, 3)


@pytest.mark.parametrize(
    "X, Y, kwargs, error, message",
    [
        (np.ones((3, 5)), np.ones((2, 5)), {"samples": "cols"}, ValueError, "samples must be 'columns'.*got 'cols'"),
        (np.ones(5), np.ones((2, 5)), {}, ValueError, r"X must have shape \(d_0, n_samples\); got \(5,\)"),
        (np.eye(3, 5), np.ones((2, 4)), {}, ValueError, "same number of samples"),
        (np.eye(3, 5) * np.nan, np.ones((2, 5)), {}, ValueError, "X contains NaN or infinite entries"),
        (np.eye(3, 5), np.full((2, 5), np.inf), {}, ValueError, r"Y contains NaN or infinite entries \(10 of them, the first at row 0, sample 0\)"),
        (np.eye(3, 5).astype(complex), np.ones((2, 5)), {}, TypeError, "X must hold real numbers; got dtype complex128"),
        (np.ones((3, 2)), np.ones((2, 2)), {}, ValueError, r"cannot be whitened.*rank 1 < d_0 = 3.*n_samples = 2"),
        (np.vstack([np.zeros((1, 6)), np.eye(2, 6), np.zeros((1, 6))]), np.ones((2, 6)), {}, ValueError,
         r"cannot be whitened.*rank 2 < d_0 = 4.*input rows \[0, 3\] are zero in every sample: drop them"),
        (np.array([[1.0, 2, 3, 4], [2, 4, 6, 8]]), np.ones((1, 4)), {}, ValueError, r"cannot be whitened.*rank 1 < d_0 = 2"),
    ],
)  # fmt: skip
def test_from_arrays_bad_input(X, Y, kwargs, error, message):
    with pytest.raises(error, match=message):
        q.datasets.from_arrays(X, Y, **kwargs)


def test_one_hot():
    assert np.array_equal(q.datasets.one_hot([2, 0, 1, 2]), np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]]))
    assert q.datasets.one_hot([0, 1], n_classes=4).shape == (4, 2)
    for labels, message in (([0.5, 1], "non-negative integers"), ([-1, 0], "non-negative integers"), ([[0, 1]], "1-D")):
        with pytest.raises(ValueError, match=message):
            q.datasets.one_hot(labels)
    with pytest.raises(ValueError, match="below n_classes = 2"):
        q.datasets.one_hot([0, 3], n_classes=2)


# ---------------------------------------------------------------------------------------- digits
def test_digits():
    digits = q.datasets.digits()
    assert (digits.n_inputs, digits.n_outputs, digits.n_samples) == (61, 10, 1797)
    assert np.array_equal(np.setdiff1d(np.arange(64), digits.features), [0, 32, 39])  # pixels zero in every image
    assert np.array_equal(digits.Y.sum(axis=0), np.ones(1797)) and set(np.unique(digits.Y)) == {0.0, 1.0}
    assert digits.X.min() == 0 and digits.X.max() == 16
    problem = digits.problem((10, 10))
    assert problem.widths == (61, 10, 10, 10) and np.all(np.diff(problem.sigma) <= 0) and problem.sigma[-1] > 0
    assert np.isclose(q.global_minimum(problem) + problem.offset, _reduced_rank_optimum(digits.X, digits.Y, 10), rtol=1e-9)
    with pytest.raises(ValueError, match=r"input rows \[0, 32, 39\] are zero in every sample"):
        from sklearn.datasets import load_digits

        q.datasets.from_arrays(load_digits().data, digits.Y.T, samples="rows")


def test_digits_without_scikit_learn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"needs scikit-learn.*pip install 'quotient\[data\]'"):
        q.datasets.digits()


# ---------------------------------------------------------------------------------------- explore --dataset
def _explore_args(**kwargs):
    values = dict(widths=None, sigma=None, data=None, dataset="digits", depth=None, command="explore")
    values.update(kwargs)
    return argparse.Namespace(**values)


def test_explore_dataset_digits_is_the_digits_problem():
    args = _explore_args()
    problem = cli._problem(args, cli.DEFAULT_WIDTHS)
    expected = q.datasets.digits().problem((8, 8))  # the default hidden widths of explore
    assert problem.widths == (61, 8, 8, 10)
    assert np.array_equal(problem.sigma, expected.sigma) and problem.offset == expected.offset
    assert any("--dataset digits" in note and "whitened" in note for note in args.notes)
    assert cli._problem(_explore_args(widths=(61, 10, 10), depth=3), cli.DEFAULT_WIDTHS).widths == (61, 10, 10, 10)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--dataset", "digits", "--sigma", "2,1"], "give either --sigma or --dataset, not both"),
        (["--dataset", "digits", "--data", "x.npz"], "give either --data or --dataset, not both"),
        (["--dataset", "digits", "--widths", "4,8,4"], "--widths 4,8,4 has d_0 = 4, d_h = 4, but --dataset digits has d_0 = 61, d_h = 10"),
        (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
    ],
)
def test_explore_dataset_bad_input(tmp_path, capsys, arguments, message):
    assert cli.main(["explore", *arguments, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and error.count("\n") == 1


def test_explore_dataset_without_scikit_learn(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert cli.main(["explore", "--dataset", "digits", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "--dataset digits: quotient.datasets.digits needs scikit-learn" in capsys.readouterr().err
