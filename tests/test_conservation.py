"""Counting conservation laws (quotient/conservation.py) against closed forms, theorems and their paper."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quotient as q
from quotient import conservation as c

# (widths, laws, laws explained by the entries of the C_i): issue 14's table
TABLE = [
    ((1, 3, 1), 5, 5),
    ((1, 4, 1), 7, 7),
    ((2, 5, 2), 14, 14),
    ((2, 6, 2), 18, 18),
    ((1, 3, 3, 1), 14, 12),
    ((1, 2, 3, 2, 1), 15, 12),
]


@pytest.mark.parametrize("widths, laws, balancedness", TABLE)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_table_of_the_issue(widths, laws, balancedness, seed):
    result = q.count_conservation_laws(widths, rng=seed)
    assert (result.n_laws, result.n_balancedness) == (laws, balancedness)
    assert result.complete == (laws == balancedness)
    assert result.n_parameters == sum(a * b for a, b in zip(widths, widths[1:]))


@settings(max_examples=15, deadline=None)
@given(st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 4)), st.integers(0, 2**32 - 1))
def test_two_layers_closed_form(widths, seed):
    """``d_1 (d_1 + 1) / 2 - k (k + 1) / 2``, ``k = max(0, d_1 - d_0 - d_2)``, all from C_1."""
    d0, d1, d2 = widths
    k = max(0, d1 - d0 - d2)
    result = q.count_conservation_laws(widths, rng=seed)
    assert result.n_laws == d1 * (d1 + 1) // 2 - k * (k + 1) // 2
    assert result.n_balancedness == result.n_laws


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=1, max_size=3), st.integers(0, 2**32 - 1))
def test_scalar_input_and_output_leave_one_direction(hidden, seed):
    """``d_0 = d_h = 1``: ``W_0`` is the single field ``grad w``, so ``N - 1`` laws."""
    widths = (1, *hidden, 1)
    result = q.count_conservation_laws(widths, rng=seed)
    assert result.lie.dimension == 1
    assert result.n_laws == result.n_parameters - 1


def test_one_layer_has_no_law():
    result = q.count_conservation_laws((3, 2), rng=0)
    assert (result.n_laws, result.n_balancedness, result.lie.levels) == (0, 0, 0)


@pytest.mark.parametrize("widths", [(2, 3, 2, 2), (2, 2, 2, 2, 2), (3, 2, 3, 2)])
def test_count_does_not_depend_on_the_seed(widths):
    counts = {q.count_conservation_laws(widths, rng=seed).n_laws for seed in range(4)}
    assert len(counts) == 1


# Marcotte, Gribonval & Peyre's notebook (main.ipynb, part C): np.random.seed(0), depth in 2..4,
# widths in 2..5; they find that the C_i are all the laws. The smaller half of their 50 draws:
def _their_architectures():
    legacy = np.random.RandomState(0)
    drawn = []
    for _ in range(50):
        depth = legacy.randint(2, 5)
        drawn.append(tuple(int(legacy.randint(2, 6)) for _ in range(depth + 1)))
    return drawn


@pytest.mark.parametrize("widths", [w for w in _their_architectures() if sum(a * b for a, b in zip(w, w[1:])) <= 22])
def test_their_random_protocol(widths):
    result = q.count_conservation_laws(widths, rng=0)
    assert result.complete


def test_their_protocol_draws():
    """The replay of their draws gives their first architectures (guards the replay itself)."""
    drawn = _their_architectures()
    assert len(drawn) == 50 and all(2 <= len(w) - 1 <= 4 and min(w) >= 2 and max(w) <= 5 for w in drawn)


@pytest.mark.parametrize("widths", [(1, 3, 1), (2, 6, 2), (2, 5, 2, 1), (3, 2, 4), (2, 3, 3, 2)])
def test_balancedness_rank_against_finite_differences(widths):
    """Rank of the Jacobian of the C_i entries: float central differences of conserved_quantities."""
    rng = np.random.default_rng(7)
    theta = rng.standard_normal(sum(a * b for a, b in zip(widths, widths[1:])))

    def entries(x):
        return np.concatenate([C[np.triu_indices(C.shape[0])] for C in q.conserved_quantities(q.from_vector(x, widths))])

    step = 1e-3  # the entries are quadratic: central differences are exact up to rounding
    J = np.stack([(entries(theta + step * e) - entries(theta - step * e)) / (2 * step) for e in np.eye(theta.size)])
    s = np.linalg.svd(J, compute_uv=False)
    expected = int(np.sum(s > 1e-8 * s[0]))
    assert s[expected - 1] > 1e-3 * s[0] and (expected == s.size or s[expected] < 1e-10 * s[0])  # a clear gap
    assert q.balancedness_rank(widths, rng=3) == expected


def _residue_to_int(x):
    return np.where(x > c.PRIME // 2, x - c.PRIME, x)


def _float_values(field, theta):
    comp, exps, coef = field
    out = np.zeros(theta.size)
    np.add.at(out, comp, _residue_to_int(coef) * np.prod(theta ** exps.astype(float), axis=1))
    return out


@pytest.mark.parametrize("widths", [(2, 2, 2), (2, 3, 2, 2), (1, 2, 2, 1)])
def test_bracket_against_finite_differences(widths):
    """``[X, Y] = DY X - DX Y`` on a nested bracket, with float central differences for DX, DY."""
    fields = c._gradient_fields(widths)
    X = fields[0]
    Y = c._bracket(fields[-1], c._bracket(fields[0], fields[-1])) if len(fields) > 1 else fields[0]
    theta = np.random.default_rng(1).uniform(-1, 1, sum(a * b for a, b in zip(widths, widths[1:])))
    step = 1e-5

    def D(field, v):
        return (_float_values(field, theta + step * v) - _float_values(field, theta - step * v)) / (2 * step)

    expected = D(Y, _float_values(X, theta)) - D(X, _float_values(Y, theta))
    got = _float_values(c._bracket(X, Y), theta)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("widths", [(2, 2, 2), (2, 3, 2, 2)])
def test_brackets_from_jets_equal_expanded_brackets(widths):
    """The values of the brackets computed from jets (what the count uses) equal the expanded ones."""
    fields = c._gradient_fields(widths)
    new = [c._bracket(fields[0], fields[1]), c._bracket(fields[1], fields[2])]
    pairs = [(i, j) for i in range(len(fields)) for j in range(len(new))]
    points = c._points(np.random.default_rng(2), 3, sum(a * b for a, b in zip(widths, widths[1:])))
    n = points.shape[1]
    from_jets = c._brackets_at(fields, new, pairs, n)(points)
    expanded = c._evaluate([c._bracket(fields[i], new[j]) for i, j in pairs], points, n)
    assert np.array_equal(from_jets, expanded)


@pytest.mark.parametrize("widths", [(2, 3, 2), (2, 3, 2, 2), (1, 3, 3, 1)])
def test_balancedness_is_orthogonal_to_the_lie_algebra(widths):
    """C_i conserved by every flow: grad (C_i)_ab is orthogonal to every bracket of gradient fields."""
    fields = c._gradient_fields(widths)
    level1 = [c._bracket(x, y) for x in fields for y in fields]
    level2 = [c._bracket(x, y) for x in fields[:2] for y in level1[:4]]
    n = sum(a * b for a, b in zip(widths, widths[1:]))
    points = c._points(np.random.default_rng(4), 2, n)
    grads = [c._gradient(exps, coef) for exps, coef in c._balancedness_entries(widths)]
    G = c._evaluate(grads, points, n).reshape(len(grads), 2, n)
    V = c._evaluate(fields + level1 + level2, points, n).reshape(-1, 2, n)
    assert np.all(c._matmul(G[:, 0], V[:, 0].T) == 0) and np.all(c._matmul(G[:, 1], V[:, 1].T) == 0)
    assert np.any(V != 0)


def test_independent_rows_against_exact_rank():
    """Rank over F_p of integer matrices of known rank (products of small random factors)."""
    rng = np.random.default_rng(5)
    for rank in (0, 1, 3, 5):
        A = rng.integers(-9, 10, (7, rank)) @ rng.integers(-9, 10, (rank, 9)) if rank else np.zeros((7, 9), np.int64)
        rows = c._independent_rows(A % c.PRIME, block=3)
        assert len(rows) == np.linalg.matrix_rank(A.astype(float))
        assert not rows or np.linalg.matrix_rank(A[rows].astype(float)) == len(rows)


def test_lie_algebra_levels():
    """Two layers: the fields are linear and one bracket level closes the algebra."""
    lie = q.lie_algebra_dimension((2, 5, 2), rng=0)
    assert lie.dimension == 20 - 14 and lie.levels == len(lie.trace_dimensions) - 1
    assert lie.trace_dimensions[-1] == lie.trace_dimensions[-2] == lie.dimension
    assert all(a <= b for a, b in zip(lie.function_dimensions, lie.function_dimensions[1:]))


@pytest.mark.parametrize("function", [q.count_conservation_laws, q.lie_algebra_dimension, q.balancedness_rank])
def test_bad_widths(function):
    with pytest.raises(ValueError, match="widths"):
        function((2,))
    with pytest.raises(ValueError, match="widths"):
        function((2, 0, 2))
    with pytest.raises(TypeError, match="widths"):
        function("abc")


@pytest.mark.parametrize("widths", [(2, 5, 2), (2, 3, 2, 2), (3, 3, 2, 3), (2, 2, 3, 2)])
def test_stopping_rule_agrees_with_the_bound(widths):
    """Without the bound from the C_i the stopping rule alone finds the same dimension."""
    n = sum(a * b for a, b in zip(widths, widths[1:]))
    lie = q.lie_algebra_dimension(widths, rng=1)
    assert lie.trace_dimensions[-1] == lie.trace_dimensions[-2]
    assert lie.dimension == n - q.balancedness_rank(widths, rng=1)


def test_bound_below_the_dimension_is_refused():
    with pytest.raises(ValueError, match="bound"):
        q.lie_algebra_dimension((2, 5, 2), rng=0, bound=3)
    with pytest.raises(ValueError, match="bound"):
        q.lie_algebra_dimension((2, 5, 2), rng=0, bound=-1)
