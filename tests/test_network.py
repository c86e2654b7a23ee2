"""Points, the adjacency form and the conserved quantities (quotient/network.py)."""

import numpy as np
import pytest
from hypothesis import given
from strategies import seeds, widths

import quotient as q
from quotient.network import as_point, backward_products, block_slices, check_widths, forward_products, n_params


@given(widths(), seeds)
def test_vector_round_trip(shape, seed):
    point = q.init.small_random(shape, 1.0, rng=seed)
    vector = q.to_vector(point)
    assert vector.shape == (n_params(shape),)
    back = q.from_vector(vector, shape)
    assert all(np.array_equal(a, b) for a, b in zip(point, back))


def test_vector_batch_round_trip():
    shape = (2, 3, 4)
    batch = tuple(np.random.default_rng(0).standard_normal((5, shape[i], shape[i - 1])) for i in (1, 2))
    vectors = q.to_vector(batch)
    assert vectors.shape == (5, n_params(shape))
    back = q.from_vector(vectors, shape)
    assert all(np.array_equal(a, b) for a, b in zip(batch, back))
    for k in range(5):
        assert np.array_equal(vectors[k], q.to_vector(tuple(layer[k] for layer in batch)))


@given(widths(), seeds)
def test_adjacency_round_trip_and_blocks(shape, seed):
    point = q.init.small_random(shape, 1.0, rng=seed)
    A = q.to_adjacency(point)
    blocks = block_slices(shape)
    assert A.shape == (sum(shape), sum(shape))
    for i, layer in enumerate(point, start=1):
        assert np.array_equal(A[blocks[i], blocks[i - 1]], layer)
    back = q.from_adjacency(A, shape)
    assert all(np.array_equal(a, b) for a, b in zip(point, back))


@given(widths(), seeds)
def test_adjacency_powers_hold_partial_products_and_are_nilpotent(shape, seed):
    point = q.init.small_random(shape, 1.0, rng=seed)
    h = len(point)
    A = q.to_adjacency(point)
    blocks = block_slices(shape)
    power = np.linalg.matrix_power(A, h)
    scale = max(1.0, np.abs(power).max())
    assert np.allclose(power[blocks[h], blocks[0]], q.end_to_end(point), atol=1e-12 * scale)
    outside = power.copy()
    outside[blocks[h], blocks[0]] = 0
    assert np.all(outside == 0)
    assert np.all(np.linalg.matrix_power(A, h + 1) == 0)
    if h >= 2:
        square = A @ A
        for i in range(2, h + 1):
            expected = point[i - 1] @ point[i - 2]
            assert np.allclose(square[blocks[i], blocks[i - 2]], expected, atol=1e-12 * max(1, np.abs(expected).max()))


@given(widths(min_depth=2), seeds)
def test_conserved_quantities_are_hidden_blocks_of_the_commutator(shape, seed):
    point = q.init.small_random(shape, 1.0, rng=seed)
    A = q.to_adjacency(point)
    commutator = A.T @ A - A @ A.T
    blocks = block_slices(shape)
    charges = q.conserved_quantities(point)
    assert len(charges) == len(shape) - 2
    for i, C in enumerate(charges, start=1):
        assert np.allclose(commutator[blocks[i], blocks[i]], C, atol=1e-12)
        assert np.allclose(C, C.T)


@given(widths(), seeds)
def test_partial_products(shape, seed):
    point = q.init.small_random(shape, 1.0, rng=seed)
    forward, backward = forward_products(point), backward_products(point)
    W = q.end_to_end(point)
    h = len(point)
    assert forward[0] is None and backward[h] is None
    for j in range(h + 1):
        F = np.eye(shape[0]) if forward[j] is None else forward[j]
        B = np.eye(shape[-1]) if backward[j] is None else backward[j]
        assert np.allclose(B @ F, W, atol=1e-12 * max(1, np.abs(W).max()))


def test_end_to_end_is_batched():
    shape = (3, 2, 4)
    rng = np.random.default_rng(1)
    batch = tuple(rng.standard_normal((6, shape[i], shape[i - 1])) for i in (1, 2))
    W = q.end_to_end(batch)
    assert W.shape == (6, 4, 3)
    assert np.allclose(W[2], batch[1][2] @ batch[0][2])


def test_widths_of():
    point = q.init.small_random((3, 5, 2, 7), 1.0, rng=0)
    assert q.widths_of(point) == (3, 5, 2, 7)


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "widths, message",
    [((3,), "at least two"), ((3, 0, 2), r"widths\[1\]"), ((3, -1), r"widths\[1\]"), ((3, 2.5), r"widths\[1\]")],
)
def test_bad_widths(widths, message):
    with pytest.raises(ValueError, match=message):
        check_widths(widths)


def test_layers_that_do_not_chain():
    with pytest.raises(ValueError, match=r"do not chain: W_2 has shape \(4, 5\)"):
        as_point((np.ones((3, 2)), np.ones((4, 5))))


def test_layers_with_nan_or_inf():
    with pytest.raises(ValueError, match="W_2 contains NaN"):
        as_point((np.ones((3, 2)), np.array([[1.0, np.nan, 0.0]])))
    with pytest.raises(ValueError, match="W_1 contains NaN or infinite"):
        as_point((np.array([[np.inf]]),))


def test_layer_with_wrong_number_of_axes():
    with pytest.raises(ValueError, match=r"W_1 must have shape \(d_i, d_\{i-1\}\)"):
        as_point((np.ones(3),))


def test_point_that_is_not_a_tuple():
    with pytest.raises(TypeError, match="tuple of layer arrays"):
        as_point(np.ones((2, 2)))


def test_point_with_other_widths():
    with pytest.raises(ValueError, match=r"has widths \(2, 3\), but widths \(2, 4\)"):
        as_point((np.ones((3, 2)),), widths=(2, 4))


def test_adjacency_with_entries_off_the_pattern():
    A = q.to_adjacency(q.init.small_random((2, 2), 1.0, rng=0))
    A[0, 0] = 1.0
    with pytest.raises(ValueError, match="outside the block-shift pattern"):
        q.from_adjacency(A, (2, 2))
    with pytest.raises(ValueError, match=r"A must have shape \(4, 4\)"):
        q.from_adjacency(np.zeros((3, 3)), (2, 2))


def test_vector_of_wrong_length():
    with pytest.raises(ValueError, match="N = 6"):
        q.from_vector(np.zeros(5), (2, 3))
