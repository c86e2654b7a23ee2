"""Networks and arrays of other libraries (quotient/interop.py, quotient.network.as_array / as_point).

torch is in the test extra: in CI (``CI`` set) these tests import it and fail if it is missing;
elsewhere they are skipped when it is not installed.
"""

import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import points, problems, seeds

import quotient as q

if os.environ.get("CI"):
    import torch
else:
    torch = pytest.importorskip("torch")


def _sequential(widths, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(*[torch.nn.Linear(widths[i - 1], widths[i], bias=False, dtype=dtype) for i in range(1, len(widths))])


# ---------------------------------------------------------------------------------------- from_torch / to_torch
@given(problems(max_depth=4), seeds)
@settings(max_examples=15, deadline=None)
def test_round_trip_is_exact(problem, seed):
    point = points(problem, seed)
    module = q.to_torch(point)
    back = q.from_torch(module)
    assert all(np.array_equal(a, b) for a, b in zip(back, point))
    again = q.to_torch(back)
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(module, again))


def test_round_trip_at_a_point_moved_by_an_ill_conditioned_gl_element():
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 4, 4, 3))
    point = q.init.small_random(problem.widths, 1.0, rng=1)
    rng = np.random.default_rng(2)
    g = []
    for d in problem.widths[1:-1]:
        Q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
        Q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
        g.append(Q1 @ np.diag(np.logspace(-3, 3, d)) @ Q2)  # condition 1e6
    moved = q.act(point, tuple(g))
    back = q.from_torch(q.to_torch(moved))
    assert all(np.array_equal(a, b) for a, b in zip(back, moved))
    assert problem.loss(back) == problem.loss(moved)


@pytest.mark.parametrize("widths", [(5, 3), (4, 6, 2), (3, 5, 5, 4, 2)])
def test_to_torch_forward_is_the_end_to_end_map(widths):
    point = q.init.small_random(widths, 0.8, rng=3)
    for W in point:
        W.flags.writeable = False  # as trajectory.point returns them
    module = q.to_torch(point)
    assert all(layer.weight.dtype == torch.float64 and layer.bias is None for layer in module)
    x = np.random.default_rng(4).standard_normal((widths[0], 7))  # columns are samples
    with torch.no_grad():
        forward = module(torch.from_numpy(x.T)).numpy().T  # the module takes rows
    expected = q.end_to_end(point) @ x
    assert np.allclose(forward, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_from_torch_reads_the_weights_as_float64_copies():
    module = _sequential((4, 6, 3))
    point = q.from_torch(module)
    assert [W.shape for W in point] == [(6, 4), (3, 6)]
    assert all(W.dtype == np.float64 for W in point)
    assert all(np.array_equal(W, layer.weight.detach().numpy().astype(np.float64)) for W, layer in zip(point, module))
    with torch.no_grad():
        module[0].weight.zero_()  # training on in torch leaves the point alone
    assert np.abs(point[0]).max() > 0
    double = _sequential((4, 6, 3), dtype=torch.float64)
    point = q.from_torch(double)
    with torch.no_grad():
        double[1].weight.add_(1.0)
    assert not np.shares_memory(point[1], double[1].weight.detach().numpy())
    assert np.array_equal(q.from_torch(torch.nn.Linear(3, 2, bias=False))[0].shape, (2, 3))  # one layer


def test_problem_gradient_equals_torch_autograd():
    """An independent oracle for Problem.gradient: torch's autograd of 1/2 ||T - W||^2 in the user's frame."""
    target = np.random.default_rng(5).standard_normal((3, 4))
    problem = q.Problem.from_sigma(target, (4, 5, 6, 3))
    module = _sequential(problem.widths, dtype=torch.float64, seed=6)
    user_point = q.from_torch(module)
    W = torch.eye(4, dtype=torch.float64)
    for layer in module:
        W = layer.weight @ W
    loss = 0.5 * torch.sum((torch.from_numpy(target) - W) ** 2)
    loss.backward()
    assert np.isclose(problem.data_loss(user_point), loss.item(), rtol=1e-13)
    # The singular frame is orthogonal here (no whitening), so gradients map like points.
    gradient = problem.to_data_frame(problem.gradient(problem.from_data_frame(user_point)))
    for G, layer in zip(gradient, module):
        assert np.allclose(G, layer.weight.grad.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2, bias=False)), ValueError, r"module\[0\].*has a bias"),
        (lambda: torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.ReLU(), torch.nn.Linear(4, 2, bias=False)),
         TypeError, r"module\[1\] is ReLU, not nn.Linear"),
        (lambda: torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Linear(5, 2, bias=False)),
         ValueError, r"do not chain: module\[1\] has in_features 5 but module\[0\] has out_features 4"),
        (lambda: torch.nn.Sequential(), ValueError, "at least one nn.Linear"),
        (lambda: torch.nn.ReLU(), TypeError, "must be a torch.nn.Sequential.*got ReLU"),
        (lambda: (np.eye(2),), TypeError, "must be a torch.nn.Sequential.*got tuple"),
        (lambda: torch.nn.Linear(3, 2, bias=False, dtype=torch.complex64), TypeError, "real floating point; got dtype torch.complex64"),
    ],
)  # fmt: skip
def test_from_torch_bad_modules(make, error, message):
    with pytest.raises(error, match=message):
        q.from_torch(make())


def test_from_torch_refuses_integer_weights():
    layer = torch.nn.Linear(3, 2, bias=False)
    layer.weight = torch.nn.Parameter(torch.ones(2, 3, dtype=torch.int64), requires_grad=False)
    with pytest.raises(TypeError, match=r"module.weight must be real floating point; got dtype torch.int64"):
        q.from_torch(layer)


def test_from_torch_refuses_non_finite_weights():
    module = _sequential((3, 4, 2))
    with torch.no_grad():
        module[1].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="module: layer W_2 contains NaN"):
        q.from_torch(module)


def test_without_torch_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    for call in (lambda: q.from_torch(None), lambda: q.to_torch((np.eye(2),))):
        with pytest.raises(ImportError, match=r"needs PyTorch.*pip install 'quotient\[torch\]'"):
            call()


# ---------------------------------------------------------------------------------------- tensors as points
def _tensor_point(point, **kwargs):
    return tuple(torch.tensor(W, **kwargs) for W in point)


def test_tensors_are_accepted_wherever_a_point_is():
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))  # generic points have closed orbits
    point = q.init.small_random(problem.widths, 0.5, rng=7)
    tensors = _tensor_point(point, dtype=torch.float64, requires_grad=True)  # a documented copy: detached
    calls = {
        "loss": lambda p: problem.loss(p),
        "gradient": lambda p: problem.gradient(p),
        "hvp": lambda p: problem.hvp(p, p),
        "end_to_end": q.end_to_end,
        "conserved_quantities": q.conserved_quantities,
        "to_vector": q.to_vector,
        "to_adjacency": q.to_adjacency,
        "act": lambda p: q.act(p, q.random_gl(problem.widths, rng=8)),
        "balance": lambda p: q.balance(p)[0],
        "moment_map": q.moment_map,
        "flow": lambda p: q.gradient_flow(problem, p, 1.0, t_eval=[1.0], progress=False).point(-1),
    }
    for name, call in calls.items():
        expected, found = call(point), call(tensors)
        expected = expected if isinstance(expected, tuple) else (expected,)
        found = found if isinstance(found, tuple) else (found,)
        assert all(isinstance(a, (np.ndarray, float)) for a in found), name
        assert all(np.array_equal(a, b) for a, b in zip(expected, found)), name
    assert all(t.grad is None for t in tensors)  # nothing flowed back into torch's graph


def test_float32_and_bfloat16_tensors_are_read_as_their_values():
    point = q.init.small_random((3, 4, 2), 0.5, rng=9)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        tensors = _tensor_point(point, dtype=dtype)
        read = q.network.as_point(tensors)
        assert all(W.dtype == np.float64 for W in read)
        assert all(np.array_equal(W, t.float().numpy().astype(np.float64)) for W, t in zip(read, tensors))


@pytest.mark.parametrize(
    "layers, error, message",
    [
        ((torch.ones(4, 3, dtype=torch.bool), torch.ones(2, 4)), TypeError, "layer W_1 must hold real numbers; got dtype bool"),
        ((torch.ones(4, 3, dtype=torch.complex64), torch.ones(2, 4)), TypeError, "layer W_1 must hold real numbers; got dtype complex64"),
        ((torch.ones(4, 3), torch.full((2, 4), float("inf"))), ValueError, "layer W_2 contains NaN or infinite"),
        ((torch.ones(4, 3), torch.ones(2, 5)), ValueError, "layers do not chain"),
        ((torch.ones(4, 3), torch.ones(2, 4, 1)), ValueError, r"layer W_2 must have shape \(d_i, d_\{i-1\}\)"),
    ],
)  # fmt: skip
def test_bad_tensors_fail_as_bad_arrays_do(layers, error, message):
    with pytest.raises(error, match=message):
        q.network.as_point(layers)
    numpy_layers = tuple(t.numpy() for t in layers)
    with pytest.raises(error, match=message):  # the same message as for numpy input
        q.network.as_point(numpy_layers)


def test_tensor_data_are_accepted_by_from_data():
    rng = np.random.default_rng(10)
    X, Y = rng.standard_normal((3, 20)), rng.standard_normal((2, 20))
    expected = q.Problem.from_data(X, Y, (3, 4, 2))
    found = q.Problem.from_data(torch.tensor(X, requires_grad=True), torch.tensor(Y), (3, 4, 2))
    assert np.array_equal(found.sigma, expected.sigma) and found.offset == expected.offset


class _DLPackOnly:
    """An array that offers only ``__dlpack__`` (no ``__array__``), as some libraries do."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_dlpack_arrays_are_accepted():
    point = q.init.small_random((3, 4, 2), 0.5, rng=11)
    read = q.network.as_point(tuple(_DLPackOnly(W) for W in point))
    assert all(np.array_equal(a, b) for a, b in zip(read, point))
    assert np.array_equal(q.end_to_end(tuple(_DLPackOnly(W) for W in point)), q.end_to_end(point))


def test_jax_arrays_are_accepted():
    jnp = pytest.importorskip("jax.numpy")  # jax is in the bench extra only; numpy and torch cover the path
    point = q.init.small_random((3, 4, 2), 0.5, rng=12)
    read = q.network.as_point(tuple(jnp.asarray(W, dtype=jnp.float32) for W in point))
    assert all(np.array_equal(a, np.asarray(jnp.asarray(b, dtype=jnp.float32), dtype=np.float64)) for a, b in zip(read, point))
