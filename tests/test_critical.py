"""Critical values, canonical points, classification and Hessian inertia (quotient/critical.py).

Oracles: the test cases TC2, TC3, TC4 and TC14 of research/math-spec.md section 7, the explicit
negative-curvature direction of math-spec 3.2(B), and the Hessian itself: the rank conditions of
``classify`` are compared with the sign of the smallest Hessian eigenvalue on random critical
points drawn from every fiber.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quotient as q
from quotient.classification import gradient_size


def _problem(sigma, widths):
    return q.Problem.from_sigma(np.asarray(sigma, dtype=float), widths)


def squared_norm(point):
    return sum(float(np.sum(layer**2)) for layer in point)


# ---------------------------------------------------------------------------------------- TC2
def test_tc2_critical_values_of_a_bottleneck():
    values = q.critical_values(_problem([3, 2, 1], (3, 2, 3)))
    assert [v.value for v in values] == [0.5, 2.0, 2.5, 4.5, 5.0, 6.5, 7.0]
    assert values[0].learned == (1, 2)


@pytest.mark.parametrize(
    "sigma, widths, count",
    [
        ([3, 2, 1], (3, 2, 3), 7),  # sum_{k <= 2} C(3, k)
        ([3, 2, 1], (3, 3, 3), 8),  # r = 3
        ([4, 3.1, 1.9, 1.3], (4, 2, 2, 4), 11),  # m = 4, r = 2
        ([5, 4.1, 2.9, 1.7, 1.1], (5, 3, 5), 26),  # m = 5, r = 3
    ],
)
def test_tc2_number_of_critical_values(sigma, widths, count):
    assert len(q.critical_values(_problem(sigma, widths))) == count


def test_equal_sums_of_squares_share_one_critical_value():
    values = q.critical_values(_problem([5, 4, 3, 2, 1], (5, 3, 5)))
    assert len(values) == 23  # 26 sets, with 4^2 + 3^2 = 5^2 and others coinciding
    shared = next(v for v in values if (1,) in v.alternatives)
    assert shared.alternatives == ((1,), (2, 3)) and shared.learned == (1,)


def test_one_layer_has_only_the_global_minimum():
    problem = _problem([2, 1], (2, 2))
    assert [v.learned for v in q.critical_values(problem)] == [(1, 2)]
    with pytest.raises(ValueError, match="one layer"):
        q.canonical_point(problem, (1,))


# ---------------------------------------------------------------------------------------- canonical points
CANONICAL_CASES = [
    ([3, 2, 1], (3, 3, 3), (1, 3)),
    ([3, 2, 1], (3, 3, 3, 3), ()),
    ([3, 2, 1], (3, 3, 3, 3), (2,)),
    ([3, 2, 1], (3, 2, 4, 3), (1, 2)),
    ([4, 3, 2, 1], (4, 5, 3, 5, 4), (2, 4)),
    ([3, 2], (2, 4, 3), (1, 2)),
]


@pytest.mark.parametrize("sigma, widths, learned", CANONICAL_CASES)
def test_canonical_point_is_a_balanced_critical_point_of_minimal_norm(sigma, widths, learned):
    problem = _problem(sigma, widths)
    point = q.canonical_point(problem, learned)
    h = len(widths) - 1
    norm, relative = gradient_size(problem, point)
    assert norm <= 1e-12 and relative <= 1e-14
    expected = np.zeros_like(problem.target)
    for j in learned:
        expected[j - 1, j - 1] = sigma[j - 1]
    assert np.allclose(q.end_to_end(point), expected, atol=1e-14)
    assert problem.loss(point) == pytest.approx(0.5 * sum(s**2 for k, s in enumerate(sigma, 1) if k not in learned))
    assert all(np.abs(C).max() <= 1e-14 for C in q.conserved_quantities(point))
    assert squared_norm(point) == pytest.approx(h * sum(sigma[j - 1] ** (2 / h) for j in learned))


def test_canonical_point_accepts_a_critical_value():
    problem = _problem([3, 2, 1], (3, 3, 3, 3))
    value = q.critical_values(problem)[3]
    assert all(np.array_equal(a, b) for a, b in zip(q.canonical_point(problem, value), q.canonical_point(problem, value.learned)))


@pytest.mark.parametrize(
    "learned, error, message",
    [
        ((0,), ValueError, "out of range"),
        ((4,), ValueError, "out of range"),
        ((1, 1), ValueError, "repeats"),
        ((1, 2, 3), ValueError, "narrowest width r"),
        ((1.0,), TypeError, "integer"),
        ("12", TypeError, "sequence"),
    ],
)
def test_canonical_point_rejects_impossible_learned_sets(learned, error, message):
    problem = _problem([3, 2, 1], (3, 2, 3))
    with pytest.raises(error, match=message):
        q.canonical_point(problem, learned)


def test_canonical_point_rejects_a_zero_singular_value():
    problem = _problem([3, 0], (2, 2, 2))
    with pytest.raises(ValueError, match="singular value 0"):
        q.canonical_point(problem, (2,))
    assert [v.learned for v in q.critical_values(problem)] == [(1,), ()]


def test_a_general_loss_has_no_critical_values():
    problem = q.Problem.from_loss(q.PseudoHuberLoss(np.eye(2)), (2, 2, 2))
    with pytest.raises(ValueError, match="square loss"):
        q.critical_values(problem)
    with pytest.raises(ValueError, match="square loss"):
        q.classify(problem, (np.eye(2), np.eye(2)))


# ---------------------------------------------------------------------------------------- TC3
TC3 = {
    (3, 3, 3): {(): (9, 0, 9), (1,): (4, 5, 9), (2,): (5, 5, 8), (3,): (6, 5, 7), (1, 2): (1, 8, 9), (1, 2, 3): (0, 9, 9)},
    (3, 3, 3, 3): {
        (): (0, 27, 0), (1,): (0, 22, 5), (2,): (1, 22, 4), (3,): (2, 22, 3),
        (1, 2): (0, 19, 8), (1, 3): (1, 19, 7), (2, 3): (2, 19, 6), (1, 2, 3): (0, 18, 9),
    },
    (3, 2, 4, 3): {(1, 2): (0, 18, 8)},
}  # fmt: skip


@pytest.mark.parametrize("widths, learned", [(w, S) for w, table in TC3.items() for S in table])
def test_tc3_inertia_at_canonical_points(widths, learned):
    problem = _problem([3, 2, 1], widths)
    point = q.canonical_point(problem, learned)
    assert tuple(q.hessian_inertia(problem, point)) == TC3[widths][learned]


def test_tc3_inertia_formula_for_the_negative_count():
    """n_- = #{(i, j) : i unlearned, j learned, sigma_i > sigma_j} + [h = 2] (d_1 - e)(m - e) (math-spec 3.3)."""
    sigma = [4.0, 3.0, 2.0, 1.0]
    for widths in [(4, 5, 4), (4, 3, 4, 4), (4, 4, 3, 4, 4)]:
        problem = _problem(sigma, widths)
        h = len(widths) - 1
        for value in q.critical_values(problem):
            S = value.learned
            pairs = sum(1 for i in range(1, 5) for j in S if i not in S and sigma[i - 1] > sigma[j - 1])
            extra = (widths[1] - len(S)) * (4 - len(S)) if h == 2 else 0
            assert q.hessian_inertia(problem, q.canonical_point(problem, S)).negative == pairs + extra


# ---------------------------------------------------------------------------------------- TC4 and TC14
C3, Q4 = 2 ** (1 / 3), 2 ** (1 / 4)
TC4 = {
    "a": ((C3, 0), (C3, 0), (C3, 0), (0, 9, 3), "nonstrict_saddle"),
    "b": ((C3, 0), (C3, 1), (C3, 0), (1, 7, 4), "strict_saddle"),
    "c": ((C3, 1), (C3, 0), (C3, 0), (1, 7, 4), "strict_saddle"),
    "d": ((1, 0), (1, 0), (2, 0), (0, 9, 3), "nonstrict_saddle"),
    "e": ((Q4, 1), (Q4, 0), (Q4, 0), (Q4, 0), (0, 13, 3), "nonstrict_saddle"),
    "f": ((Q4, 1), (Q4, 1), (Q4, 0), (Q4, 0), (1, 11, 4), "strict_saddle"),
}


@pytest.mark.parametrize("case", sorted(TC4))
def test_tc4_strictness_depends_on_the_point_not_on_the_learned_set(case):
    *diagonals, inertia, kind = TC4[case]
    point = tuple(np.diag(np.asarray(d, dtype=float)) for d in diagonals)
    problem = _problem([2, 1], (2,) * (len(point) + 1))
    assert problem.loss(point) == pytest.approx(0.5)
    assert q.classify(problem, point) == kind
    assert tuple(q.hessian_inertia(problem, point)) == inertia
    if kind == "strict_saddle":
        assert np.linalg.eigvalsh(problem.hessian(point))[0] == pytest.approx(-1.0)


def test_tc14_origin_of_a_two_layer_network_is_a_strict_saddle():
    problem = _problem([2, 1], (2, 3, 2))
    origin = (np.zeros((3, 2)), np.zeros((2, 3)))
    eigenvalues = np.linalg.eigvalsh(problem.hessian(origin))
    assert np.allclose(eigenvalues, np.repeat([-2.0, -1.0, 1.0, 2.0], 3))
    assert tuple(q.hessian_inertia(problem, origin)) == (6, 0, 6)
    assert q.classify(problem, origin) == "strict_saddle"


@pytest.mark.parametrize("widths", [(2, 3, 3, 2), (2, 2, 2, 2, 2)])
def test_tc14_origin_of_a_deep_network_has_zero_hessian(widths):
    problem = _problem([2, 1], widths)
    origin = tuple(np.zeros((widths[i], widths[i - 1])) for i in range(1, len(widths)))
    assert np.all(problem.hessian(origin) == 0.0)
    assert tuple(q.hessian_inertia(problem, origin)) == (0, problem.n_params, 0)
    assert q.classify(problem, origin) == "nonstrict_saddle"


# ---------------------------------------------------------------------------------------- classify
def test_classify_a_point_that_is_not_critical():
    problem = _problem([3, 2, 1], (3, 3, 3, 3))
    point = q.init.small_random(problem.widths, 0.5, rng=0)
    assert q.classify(problem, point) == "not_critical"


def test_condition_b_direction_has_the_predicted_negative_curvature():
    """At any critical point learning j but not i > j: d2L[D, D] = 2 t^2 sigma_j (sigma_j - sigma_i)."""
    problem = _problem([3, 2, 1], (3, 3, 3, 3))
    samples = q.fiber(problem, (2,)).sample(10, rng=1, spread=0.7)
    e, f = np.eye(3), np.eye(3)
    for k in range(10):
        W = tuple(layer[k] for layer in samples)
        assert q.classify(problem, W) == "strict_saddle"
        D = [np.zeros_like(layer) for layer in W]
        D[2] = np.outer(e[0], W[2].T @ e[1])
        D[0] = np.outer(W[0] @ f[1], f[0])
        curvature = float(q.to_vector(problem.hvp(W, tuple(D))) @ q.to_vector(tuple(D)))
        assert curvature == pytest.approx(2 * 2.0 * (2.0 - 3.0), rel=1e-8)


# Architectures for the agreement table: h = 2, 3, 4 (and 5), square and bottlenecked.
AGREEMENT_CASES = [
    ([3, 2, 1], (3, 4, 3)),
    ([3, 2, 1, 0.5], (4, 2, 4)),
    ([3, 2, 1], (3, 3, 3, 3)),
    ([3, 2, 1], (3, 2, 4, 3)),
    ([4, 3, 2, 1], (4, 3, 2, 4)),
    ([3, 2, 1], (3, 3, 3, 3, 3)),
    ([3, 2, 1], (3, 4, 2, 5, 3)),
    ([3, 2], (4, 3, 3, 3, 2)),
    ([2, 1], (2, 4, 3, 4, 2)),
    ([2, 2, 1], (3, 3, 3, 3)),  # a repeated singular value
    ([3, 2, 1], (3, 3, 3, 3, 3, 3)),
]


def test_rank_conditions_agree_with_the_hessian_on_random_critical_points():
    """The rank conditions of classify and the Hessian's inertia: zero disagreements.

    Points: for every critical value of every architecture, samples of its fiber (canonical
    point moved by random interval structures, boundary moves, data rotations and hidden GL).
    """
    rng = np.random.default_rng(2024)
    table = {}
    for sigma, widths in AGREEMENT_CASES:
        problem = _problem(sigma, widths)
        h = len(widths) - 1
        for value in q.critical_values(problem):
            samples = q.fiber(problem, value).sample(8, rng, spread=0.5)
            for k in range(8):
                point = tuple(layer[k] for layer in samples)
                kind = q.classify(problem, point)
                inertia = q.hessian_inertia(problem, point)
                assert kind != "not_critical"
                by_hessian = "strict_saddle" if inertia.negative else kind if kind == "global_minimum" else "nonstrict_saddle"
                counts = table.setdefault((h, kind), [0, 0])
                counts[0] += 1
                counts[1] += by_hessian != kind
    assert sum(c[1] for c in table.values()) == 0, table
    assert sum(c[0] for c in table.values()) >= 600
    for h in (3, 4, 5):
        assert table[(h, "nonstrict_saddle")][0] > 0 and table[(h, "strict_saddle")][0] > 0
    assert (2, "nonstrict_saddle") not in table  # depth two: every saddle is strict


def test_repeated_singular_values_are_not_a_swap():
    """sigma = (2, 2, 1): learning mode 2 instead of mode 1 is a top set; its canonical point is non-strict."""
    problem = _problem([2, 2, 1], (3, 3, 3, 3))
    value = next(v for v in q.critical_values(problem) if (2,) in v.alternatives)
    assert value.alternatives == ((1,), (2,))
    point = q.canonical_point(problem, (2,))
    assert q.classify(problem, point) == "nonstrict_saddle"
    assert q.hessian_inertia(problem, point).negative == 0


# ---------------------------------------------------------------------------------------- Hessian inertia
@pytest.mark.parametrize("method", ["lanczos", "sketch"])
def test_matrix_free_inertia_matches_the_dense_count(method):
    rng = np.random.default_rng(5)
    cases = [([5, 4, 3, 2, 1], (5, 6, 4, 5), (1, 3)), ([4, 3, 2, 1], (4, 5, 5, 5, 4), (1, 2)), ([3, 2, 1], (3, 3, 3, 3), ())]
    for sigma, widths, learned in cases:
        problem = _problem(sigma, widths)
        samples = q.fiber(problem, learned).sample(3, rng, spread=0.5)
        points = [q.canonical_point(problem, learned)] + [tuple(layer[k] for layer in samples) for k in range(3)]
        points.append(q.init.small_random(widths, 0.5, rng=rng))  # not critical: no zero eigenvalues
        for point in points:
            assert q.hessian_inertia(problem, point, method=method) == q.hessian_inertia(problem, point, method="dense")


def test_inertia_is_constant_on_orbits():
    """L(g . W) = L(W) with a linear action: the Hessians are congruent (Sylvester's law)."""
    problem = _problem([3, 2, 1], (3, 4, 3, 3))
    for learned in [(1,), (2,), (1, 3)]:
        point = q.canonical_point(problem, learned)
        inertia = q.hessian_inertia(problem, point)
        for seed in range(3):
            moved = q.act(point, q.random_gl(problem.widths, rng=seed, spread=0.7))
            assert q.hessian_inertia(problem, moved) == inertia


def test_hessian_inertia_at_a_non_critical_point_counts_every_eigenvalue():
    problem = _problem([3, 2, 1], (3, 4, 3))
    point = q.init.small_random(problem.widths, 1.0, rng=3)
    eigenvalues = np.linalg.eigvalsh(problem.hessian(point))
    inertia = q.hessian_inertia(problem, point)
    assert sum(inertia) == problem.n_params
    assert inertia.negative == int(np.sum(eigenvalues < -1e-9 * np.abs(eigenvalues).max()))


@pytest.mark.parametrize("kwargs, message", [({"method": "qr"}, "method"), ({"rtol": 0.0}, "rtol"), ({"rtol": 2.0}, "rtol")])
def test_hessian_inertia_rejects_bad_options(kwargs, message):
    problem = _problem([2, 1], (2, 2, 2))
    with pytest.raises(ValueError, match=message):
        q.hessian_inertia(problem, (np.eye(2), np.eye(2)), **kwargs)


def test_hessian_inertia_checks_the_point():
    problem = _problem([2, 1], (2, 2, 2))
    with pytest.raises(ValueError, match="widths"):
        q.hessian_inertia(problem, (np.eye(2), np.ones((3, 2))))
    with pytest.raises(ValueError, match="NaN"):
        q.hessian_inertia(problem, (np.eye(2), np.full((2, 2), np.nan)))


# ---------------------------------------------------------------------------------------- the graph
def test_critical_graph_edges_learn_one_mode_or_swap_for_a_larger_one():
    problem = _problem([3, 2, 1], (3, 3, 3, 3))
    graph = q.critical_graph(problem)
    nodes, edges = graph[0], graph[1]
    assert list(nodes) == q.critical_values(problem)
    assert len(edges) == len(graph.kinds) == 18
    for (a, b), kind in zip(edges, graph.kinds):
        S, T = set(nodes[a].learned), set(nodes[b].learned)
        assert nodes[b].value < nodes[a].value
        if kind == "learn":
            assert S < T and len(T - S) == 1
        else:
            (i,), (j,) = T - S, S - T
            assert len(S) == len(T) and i < j  # mode i has the larger singular value
    top = graph.index(())
    assert {nodes[b].learned for b in graph.successors(top)} == {(1,), (2,), (3,)}
    assert graph.has_edge(graph.index((2,)), graph.index((1,)))  # swap 2 -> 1
    assert not graph.has_edge(graph.index((1,)), graph.index((2,)))


def test_critical_graph_respects_the_rank_bound():
    graph = q.critical_graph(_problem([3, 2, 1], (3, 2, 3)))
    for _a, b in graph.edges:
        assert len(graph.nodes[b].learned) <= 2


def test_a_small_initialisation_walks_the_graph_one_edge_at_a_time():
    problem = _problem([3, 2, 1], (3, 3, 3, 3))
    graph = q.critical_graph(problem)
    point0 = q.init.small_random(problem.widths, 1e-2, rng=0)
    trajectory = q.gradient_flow(problem, point0, 400.0, t_eval=4001, progress=False)
    path = graph.path(q.plateaus(problem, trajectory.times, trajectory.end_to_end))
    assert [graph.nodes[n].learned for n in path] == [(), (1,), (1, 2), (1, 2, 3)]
    assert all(graph.has_edge(a, b) for a, b in itertools.pairwise(path))


# ---------------------------------------------------------------------------------------- invariance (issue 11)
def _gl_of_condition(widths, condition, rng, scale=1.0):
    """``G_i = scale^i Q diag(c^{-1/2} .. c^{1/2}) Q'``: condition number ``c``; layer ``i`` grows
    by about ``scale`` and the last shrinks by ``scale^{h-1}`` (norms up to ``scale``)."""
    out = []
    for i, d in enumerate(widths[1:-1], start=1):
        Q1 = np.linalg.qr(rng.standard_normal((d, d)))[0]
        Q2 = np.linalg.qr(rng.standard_normal((d, d)))[0]
        s = np.logspace(-0.5, 0.5, d) ** np.log10(condition) if d > 1 else np.ones(1)
        out.append(scale**i * (Q1 * s) @ Q2)
    return tuple(out)


def test_global_minimum_is_the_least_enumerated_critical_value():
    cases = [
        ([3, 2, 1], (3, 2, 3)),
        ([3, 2, 1], (3, 3, 3, 3)),
        ([2, 2, 1], (3, 1, 3)),  # a tie at the rank bound
        ([3, 0, 0], (3, 4, 3)),  # zero singular values cannot be learned
        ([4, 3, 2, 1], (4, 2, 5, 4)),
        ([2, 1], (2, 2)),  # one layer
        ([5, 4, 3, 2, 1], (5, 3, 5)),
    ]
    for sigma, widths in cases:
        problem = _problem(sigma, widths)
        k = min(min(widths), int(np.count_nonzero(sigma)))
        assert q.global_minimum(problem) == pytest.approx(0.5 * sum(s * s for s in sigma[k:]), abs=1e-15)
        assert q.global_minimum(problem) == pytest.approx(q.critical_values(problem)[0].value, rel=1e-12, abs=1e-14)


def test_the_issue_reproducer_is_a_saddle_at_every_point_of_its_orbit():
    p = _problem([2.0, 1.0], (2, 2, 2, 2))
    x = q.canonical_point(p, (1,))
    R = np.array([[1.0, 1.0], [-1.0, 1.0]]) / np.sqrt(2)
    G = R @ np.diag([100.0, 0.01]) @ R.T
    y = q.act(x, (G, G))
    assert p.loss(y) == pytest.approx(0.5)
    assert q.classify(p, x) == q.classify(p, y) == "nonstrict_saddle"  # S = {1} top, h = 3 (math.md 4)
    assert not q.fiber(p, (1, 2)).contains(y) and q.fiber(p, (1,)).contains(y)
    assert q.learned_modes(p, y) == (1,)
    assert q.hessian_inertia(p, y) == q.hessian_inertia(p, x)


INVARIANCE_CASES = [
    ([3, 2, 1], (3, 3, 3, 3)),
    ([3, 2, 1], (3, 2, 4, 3)),  # a bottleneck
    ([2, 1], (2, 3, 3, 3, 2)),
    ([3, 2], (2, 5, 3)),  # depth two
]


@pytest.mark.parametrize("condition, scale", [(1e2, 1.0), (1e4, 1.0), (1e2, 1e8), (1e4, 1e8), (1e6, 1.0), (1e6, 1e8)])
def test_landscape_answers_are_invariant_under_badly_conditioned_gl(condition, scale):
    """classify, contains, the learned set, the inertia (Sylvester) and the fiber dimension at x and g.x.

    Points: canonical points (closed orbits) and fiber samples (tails, heads, internal intervals:
    orbits that are not closed), moved by GL elements of condition ``condition`` and norm ``scale``.
    """
    rng = np.random.default_rng(int(np.log10(condition)) + 7 * int(np.log10(scale)))
    count = 0
    for sigma, widths in INVARIANCE_CASES:
        problem = _problem(sigma, widths)
        values = q.critical_values(problem)
        fibers = [q.fiber(problem, v) for v in values]
        for n, value in enumerate(values):
            samples = fibers[n].sample(2, rng, spread=0.5)
            for x in [q.canonical_point(problem, value.learned)] + [tuple(layer[k] for layer in samples) for k in range(2)]:
                y = q.act(x, _gl_of_condition(widths, condition, rng, scale))
                assert max(np.linalg.norm(W) for W in y) > 0.3 * scale or scale == 1.0 or not value.learned
                kind = q.classify(problem, x)
                assert kind != "not_critical" and q.classify(problem, y) == kind
                assert [f.contains(y) for f in fibers] == [m == n for m in range(len(fibers))]
                assert q.fiber(problem, y).value == value.value
                assert q.hessian_inertia(problem, y) == q.hessian_inertia(problem, x)
                count += 1
    assert count >= 60


@pytest.mark.parametrize("condition", [1e2, 1e4])
def test_points_that_are_not_critical_stay_so_under_gl(condition):
    rng = np.random.default_rng(3)
    for sigma, widths in INVARIANCE_CASES:
        problem = _problem(sigma, widths)
        for value in q.critical_values(problem)[:3]:
            x = q.canonical_point(problem, value.learned)
            x = tuple(W + 1e-3 * rng.standard_normal(W.shape) for W in x)  # relative gradient ~1e-3
            for point in (x, q.init.small_random(widths, 0.5, rng=rng)):
                y = q.act(point, _gl_of_condition(widths, condition, rng, 1e4))
                assert q.classify(problem, point) == q.classify(problem, y) == "not_critical"
                assert not q.is_critical(problem, y)


def test_is_critical_agrees_with_the_gradient_at_balanced_points():
    problem = _problem([3, 2, 1], (3, 3, 3, 3))
    for value in q.critical_values(problem):
        assert q.is_critical(problem, q.canonical_point(problem, value.learned))
    assert not q.is_critical(problem, q.init.small_random(problem.widths, 0.5, rng=0))


def test_well_conditioned_stays_on_the_orbit_and_balances_closed_orbits():
    problem = _problem([3, 2, 1], (3, 3, 3, 3))
    rng = np.random.default_rng(0)
    x = q.canonical_point(problem, (1, 2))
    y = q.act(x, _gl_of_condition(problem.widths, 1e4, rng, 1e6))
    z, g = q.well_conditioned(y)
    assert all(np.allclose(a, b, atol=1e-8 * np.linalg.norm(a)) for a, b in zip(q.act(y, g), z))
    assert np.allclose(q.end_to_end(z), q.end_to_end(y), atol=1e-8)
    norms = [np.linalg.norm(W) for W in z]
    assert max(norms) / min(norms) < 1.5 and max(norms) < 2 * max(np.linalg.norm(W) for W in x)
    # a balanced point is a fixed point
    z, g = q.well_conditioned(x)
    assert all(np.allclose(G, np.eye(3), atol=1e-12) for G in g)


def test_classify_at_widths_20_20_20_does_not_enumerate_subsets(monkeypatch):
    from quotient import classification, critical

    problem = q.Problem.from_sigma(np.linspace(2.0, 1.0, 20), (20, 20, 20))
    for module in (critical, classification):  # wherever classify could reach the enumeration
        monkeypatch.setattr(module, "critical_values", lambda *a, **k: pytest.fail("2^m enumeration"), raising=False)
    assert q.classify(problem, q.canonical_point(problem, range(1, 11))) == "strict_saddle"  # h = 2
    assert q.classify(problem, q.canonical_point(problem, range(1, 21))) == "global_minimum"
    assert q.learned_modes(problem, q.canonical_point(problem, (2, 5, 19))) == (2, 5, 19)


@pytest.mark.parametrize("tol", [float("nan"), -1.0, 0.0, 1.5, float("inf"), "1e-8"])
def test_tolerances_are_checked(tol):
    problem = _problem([3, 2, 1], (3, 3, 3, 3))
    point = q.canonical_point(problem, (1,))
    chosen = q.fiber(problem, (1,))
    for name, call in (
        ("rtol", lambda: q.classify(problem, point, rtol=tol)),
        ("rtol", lambda: q.is_critical(problem, point, rtol=tol)),
        ("rtol", lambda: q.hessian_inertia(problem, point, rtol=tol)),
        ("rtol", lambda: chosen.contains(point, rtol=tol)),
        ("rtol", lambda: chosen.tangent_space(rtol=tol)),
        ("rtol", lambda: q.fiber(problem, point, rtol=tol)),
        ("gradient_rtol", lambda: q.unstable_directions(problem, point, gradient_rtol=tol)),
        ("hessian_rtol", lambda: q.stable_directions(problem, point, hessian_rtol=tol)),
        ("gradient_rtol", lambda: q.convergence_rate(problem, q.canonical_point(problem, (1, 2, 3)), gradient_rtol=tol)),
    ):
        with pytest.raises(ValueError, match=rf"^{name} must be a finite number in \(0, 1\)"):
            call()


def test_zero_eigenvalue_threshold():
    assert q.zero_eigenvalue_threshold([-2.0, 0.0, 1.0]) == 2.0 * q.ZERO_EIGENVALUE_RTOL
    assert q.zero_eigenvalue_threshold([-2.0, 1.0], rtol=1e-3, floor=0.5) == 0.5
    assert q.zero_eigenvalue_threshold([]) == 0.0


def test_hessian_operator_is_the_dense_hessian():
    problem = _problem([3, 2, 1], (3, 4, 3))
    point = q.init.small_random(problem.widths, 0.5, rng=0)
    H = problem.hessian(point)
    operator = q.hessian_operator(problem, point, scale=2.0, shift=0.5)
    x = np.random.default_rng(1).standard_normal(problem.n_params)
    assert np.allclose(operator.matvec(x), H @ x / 2.0 + 0.5 * x, atol=1e-12)


@given(
    sigma=st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, 3.0]), min_size=1, max_size=5),
    bottleneck=st.integers(1, 5),
)
@settings(max_examples=60, deadline=None)
def test_minimum_threshold_is_halfway_to_the_next_enumerated_value(sigma, bottleneck):
    """The closed form of critical.minimum_threshold against the enumeration of critical_values (ties included)."""
    sigma = sorted(sigma, reverse=True)
    m = len(sigma)
    problem = q.Problem.from_sigma(sigma, (m, max(1, min(bottleneck, m)), m))
    levels = sorted({round(value.value, 12) for value in q.critical_values(problem)})
    expected = levels[0] + (levels[1] - levels[0]) / 2 if len(levels) > 1 else np.inf
    assert levels[0] == pytest.approx(q.global_minimum(problem), abs=1e-12)
    assert q.minimum_threshold(problem) == pytest.approx(expected, abs=1e-12)
