"""The critical graph and the paths the rests of a run take through it (quotient.graph)."""

import itertools
import time

import numpy as np
import pytest

import quotient as q


def test_critical_graph_is_limited_to_a_stated_number_of_modes():
    problem = q.Problem.from_sigma(np.linspace(20, 1, 20), (20, 20, 20))
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"2\^20 nodes.*max_modes = 12"):
        q.critical_graph(problem)
    assert time.perf_counter() - started < 5  # refused before enumerating anything
    small = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))
    with pytest.raises(ValueError, match="max_modes"):
        q.critical_graph(small, max_modes=2)
    assert len(q.critical_graph(small, max_modes=3).nodes) == 8
    with pytest.raises(ValueError, match="max_modes must be"):
        q.critical_graph(small, max_modes=-1)


def test_path_of_plateaus_merges_repeats_and_reports_skipped_saddles():
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))
    graph = q.critical_graph(problem)
    value = {S: graph.nodes[graph.index(S)] for S in [(), (1,), (1, 2)]}
    rests = [q.Plateau(value[()], 0, 1), q.Plateau(value[()], 2, 3), q.Plateau(value[(1, 2)], 4, 5)]
    path = graph.path(rests)
    assert path == (graph.index(()), graph.index((1, 2)))
    assert not graph.has_edge(*path)  # two modes learned without a rest at {1}


@pytest.mark.parametrize(("widths", "sigma", "seed"), [((3, 3, 3, 3), [3.0, 2.0, 1.0], 0), ((4, 6, 6, 4), [5.0, 3.0, 2.0, 1.0], 1)])
def test_the_rests_of_a_small_initialisation_walk_the_graph_one_edge_at_a_time(widths, sigma, seed):
    problem = q.Problem.from_sigma(sigma, widths)
    graph = q.critical_graph(problem)
    point0 = q.init.small_random(widths, 1e-2, rng=seed)
    trajectory = q.gradient_flow(problem, point0, 400.0, t_eval=4001, until="minimum", progress=False)
    rests = q.plateaus(problem, trajectory.times, trajectory.end_to_end)
    path = graph.path(rests)
    expected = [tuple(range(1, k + 1)) for k in range(len(sigma) + 1)]
    assert [graph.nodes[n].learned for n in path] == expected
    assert all(graph.has_edge(a, b) for a, b in itertools.pairwise(path))
    # the rests do not overlap and follow each other in time
    assert all(a.t_end < b.t_start for a, b in itertools.pairwise(rests))


def test_a_start_near_a_strict_saddle_swaps_along_a_swap_edge():
    # start next to Sigma_{2} (strict saddle): the flow swaps mode 2 for mode 1
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))
    graph = q.critical_graph(problem)
    point0 = q.canonical_point(problem, (2,))
    rng = np.random.default_rng(3)
    point0 = tuple(W + 1e-4 * rng.standard_normal(W.shape) for W in point0)
    trajectory = q.gradient_flow(problem, point0, 200.0, t_eval=4001, until="minimum", progress=False)
    path = graph.path(q.plateaus(problem, trajectory.times, trajectory.end_to_end))
    learned = [graph.nodes[n].learned for n in path]
    assert learned[:2] == [(2,), (1,)]
    assert all(graph.has_edge(a, b) for a, b in itertools.pairwise(path))
    assert graph.kinds[graph.edges.index((path[0], path[1]))] == "swap"
