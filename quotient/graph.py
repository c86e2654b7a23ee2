"""The landscape seen from the quotient: nearest critical maps, rests of a run, the critical graph.

The quotient map sends a point to its end-to-end map ``W`` (:mod:`quotient.projection`), and the
critical points of the square loss map to the critical end-to-end maps ``Sigma_S`` (math.md
section 4). This module answers, in the quotient, the questions a trajectory asks of the
landscape:

* :func:`nearest_critical`: which critical map is nearest to ``W``, and at what distance;
* :func:`plateaus`: where a run rests near one critical map, and for how long;
* :func:`critical_graph`: the heteroclinic connections between critical values that the rests of
  a run follow.

Ties. When singular values repeat (``sigma = (2, 2, 1)``), several learned sets give one critical
value; :func:`quotient.critical_values` lists them as ``alternatives`` and names the value by its
``learned`` set, the lexicographically smallest (the largest singular values learned first). Every
function here labels a critical value by that same ``learned`` set: ``sigma = (2, 2, 1)``,
``W = diag(0, 2, 0)`` is labelled ``{1}``, the name of the value ``L = 2.5``. Distances are to the
whole critical set of the value, which for a repeated singular value is a continuum (``sigma P``
with ``P`` any projector of the right rank in the repeated block), not only the listed
``Sigma_S``.

Points and maps are in the problem's singular frame, where the target is the rectangular diagonal
``Sigma``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._numerics import require_square_loss
from .critical import CriticalValue, critical_values
from .problem import Problem

__all__ = ["CriticalGraph", "Plateau", "critical_graph", "nearest_critical", "plateaus"]

#: Singular values closer than this, relative to the largest, form one repeated block.
_TIE_RTOL = 1e-12
#: Default largest number of learnable modes for which :func:`critical_graph` builds the graph.
GRAPH_MAX_MODES = 12


# ---------------------------------------------------------------------------------------- nearest critical
def _blocks(sigma: np.ndarray) -> list[np.ndarray]:
    """Indices (0-based) of the learnable modes grouped into blocks of equal singular values."""
    learnable = np.flatnonzero(sigma > 0)
    blocks: list[list[int]] = []
    scale = float(sigma.max()) if sigma.size else 0.0
    for i in learnable:
        if blocks and abs(sigma[blocks[-1][0]] - sigma[i]) <= _TIE_RTOL * scale:
            blocks[-1].append(int(i))
        else:
            blocks.append([int(i)])
    return [np.array(block) for block in blocks]


def _check_problem(problem, name: str = "problem"):
    if not isinstance(problem, Problem):
        raise TypeError(f"{name} must be a quotient.Problem; got {type(problem).__name__}")
    require_square_loss(problem)


def _nearest(problem, W: np.ndarray):
    """Nearest critical map of every ``W`` in a batch ``(T, d_h, d_0)``.

    Returns the number of modes learned in each repeated block, ``counts`` ``(T, n_blocks)``, the
    squared distance ``(T,)`` and the blocks.
    """
    sigma = np.asarray(problem.sigma)
    blocks = _blocks(sigma)
    T = W.shape[0]
    if not blocks:
        return np.zeros((T, 0), dtype=int), np.sum(W**2, axis=(-2, -1)), blocks
    # Within a block of singular value s (indices I), the critical maps are s P for P an
    # orthogonal projector of rank k on R^I, and ||W_II - s P||^2 = ||W_II||^2 - 2 s tr(W_II P)
    # + s^2 k, whose minimum over P takes the top k eigenvalues of the symmetric part of W_II.
    # Learning the j-th of them changes ||W - Sigma_S||^2 by the gain s^2 - 2 s lambda_j.
    gains, owner, frames = [], [], []
    for b, block in enumerate(blocks):
        s = sigma[block[0]]
        sub = W[:, block[:, None], block[None, :]]
        eigenvalues, vectors = np.linalg.eigh(0.5 * (sub + np.swapaxes(sub, -1, -2)))
        gains.append(s * s - 2 * s * eigenvalues[:, ::-1])
        frames.append(vectors[:, :, ::-1])
        owner += [b] * block.size
    gains = np.concatenate(gains, axis=1)  # (T, n_learnable), increasing within each block
    owner = np.array(owner)
    # the r most negative gains (a block's gains increase, so its chosen ones are a prefix);
    # ties between equal gains go to the earlier mode, the larger singular value
    order = np.argsort(gains, axis=1, kind="stable")
    position = np.argsort(order, axis=1, kind="stable")
    chosen = (gains < 0) & (position < problem.rank_bound)
    if problem.depth == 1:  # the loss is convex: W_1 = Sigma, every mode learned, is the only critical map
        chosen = np.ones_like(chosen)
    counts = np.stack([chosen[:, owner == b].sum(axis=1) for b in range(len(blocks))], axis=1)
    # the distance from the nearest critical map itself, not from the expansion above, which
    # cancels to sqrt(eps) ||W|| near a critical map
    nearest = np.zeros_like(W)
    for b, (block, vectors) in enumerate(zip(blocks, frames)):
        kept = vectors * (np.arange(block.size)[None, None, :] < counts[:, b, None, None])
        nearest[:, block[:, None], block[None, :]] = sigma[block[0]] * kept @ np.swapaxes(vectors, -1, -2)
    return counts, np.sum((W - nearest) ** 2, axis=(-2, -1)), blocks


def _labels(problem, counts: np.ndarray, blocks) -> list[CriticalValue]:
    """The :class:`CriticalValue` of each row of block counts (one enumeration for the batch)."""
    by_set = {S: value for value in critical_values(problem) for S in value.alternatives}
    cache: dict[tuple, CriticalValue] = {}
    out = []
    for row in counts:
        key = tuple(int(k) for k in row)
        if key not in cache:
            S = tuple(sorted(int(i) + 1 for block, k in zip(blocks, key) for i in block[:k]))
            cache[key] = by_set[S]
        out.append(cache[key])
    return out


def _gaps(problem, counts: np.ndarray, blocks) -> np.ndarray:
    """Distance from the critical set of each row of counts to the nearest critical map of another value.

    Sets differing by one mode learned in a block of singular value ``s`` are ``s`` apart, and
    every other critical map is at least as far as one of those, so the gap is the smallest
    ``s`` over the blocks where a mode can be unlearned, or learned without exceeding the rank.
    """
    sigma = np.asarray(problem.sigma)
    if not blocks:
        return np.full(counts.shape[0], np.inf)
    values = np.array([sigma[block[0]] for block in blocks])
    sizes = np.array([block.size for block in blocks])
    if problem.depth == 1:  # one critical map; measure rests against its smallest mode
        return np.full(counts.shape[0], values.min())
    can_drop = counts > 0
    can_add = (counts < sizes) & (counts.sum(axis=1, keepdims=True) < problem.rank_bound)
    return np.where(can_drop | can_add, values, np.inf).min(axis=1)


def nearest_critical(problem, W):
    """The critical value whose critical end-to-end maps are nearest to ``W`` (square loss).

    Parameters
    ----------
    problem : Problem
        A square-loss problem (:meth:`Problem.from_sigma` or :meth:`Problem.from_data`).
    W : array_like, shape (d_h, d_0) or (T, d_h, d_0)
        End-to-end maps in the singular frame.

    Returns
    -------
    learned : tuple of int, or a list of them for a batch
        The label of the nearest critical value: its ``learned`` set in
        :func:`quotient.critical_values` (for tied values, the set that learns the largest
        singular values first, whichever of its ``alternatives`` is nearest).
    value : ndarray, shape () or (T,)
        ``L_S = 1/2 sum_{i not in S} sigma_i^2``.
    distance : ndarray, shape () or (T,)
        The Frobenius distance from ``W`` to the nearest critical map ``Sigma_S``, over every
        learned set of at most ``r = min(widths)`` modes with ``sigma_i > 0`` and, where singular
        values repeat, every rotation of ``Sigma_S`` in the repeated block.

    Raises
    ------
    ValueError
        For a general-loss problem (:meth:`Problem.from_loss`), whose critical maps are not known,
        or a ``W`` of the wrong shape.

    Notes
    -----
    ``||W - Sigma_S||^2 = ||W||^2 + sum_{i in S} (sigma_i^2 - 2 sigma_i W_ii)``, so the nearest set
    holds the (at most ``r``) modes with the most negative gain ``sigma_i (sigma_i - 2 W_ii)``;
    for a block of equal singular values ``W_ii`` is replaced by the eigenvalues of the symmetric
    part of the block of ``W``. A gain of exactly 0 does not learn its mode, and equal gains go to
    the larger singular value. The labels come from :func:`quotient.critical_values`, whose
    enumeration of ``2^m`` learned sets dominates the cost for large ``m``.
    """
    _check_problem(problem)
    W = _as_maps(problem, W, "W")
    single = W.ndim == 2
    batch = W[None] if single else W
    counts, squared, blocks = _nearest(problem, batch)
    labels = _labels(problem, counts, blocks)
    learned = [value.learned for value in labels]
    values = np.array([value.value for value in labels])
    distance = np.sqrt(squared)
    if single:
        return learned[0], values[0], distance[0]
    return learned, values, distance


def _as_maps(problem, W, name: str) -> np.ndarray:
    array = np.asarray(W)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers; got dtype {array.dtype}")
    d_0, d_h = problem.widths[0], problem.widths[-1]
    if array.ndim not in (2, 3) or array.shape[-2:] != (d_h, d_0):
        raise ValueError(
            f"{name} must have shape (d_h, d_0) = {(d_h, d_0)} or (T, d_h, d_0) for widths "
            f"{problem.widths}; got {array.shape}"
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return array


# ---------------------------------------------------------------------------------------- plateaus
@dataclass(frozen=True)
class Plateau:
    """A rest of a run near the critical maps of one critical value.

    Parameters
    ----------
    critical_value : CriticalValue
        The value rested at, labelled as in :func:`quotient.critical_values`.
    t_start, t_end : float
        First and last sample time of the rest (consecutive samples within the band).
    distance : float
        Smallest distance from ``W(t)`` to the critical maps of the value during the rest.
    """

    critical_value: CriticalValue
    t_start: float
    t_end: float
    distance: float = 0.0

    @property
    def learned(self) -> tuple[int, ...]:
        """The learned set naming the value (``critical_value.learned``)."""
        return self.critical_value.learned

    @property
    def value(self) -> float:
        """``L_S`` (``critical_value.value``)."""
        return self.critical_value.value

    @property
    def duration(self) -> float:
        """``t_end - t_start``."""
        return self.t_end - self.t_start


def plateaus(problem, times, W, *, band: float = 0.1) -> list[Plateau]:
    """The rests of a run in the quotient: where ``W(t)`` stays near one critical map.

    Parameters
    ----------
    problem : Problem
        A square-loss problem.
    times : array_like, shape (T,)
        Sample times, non-decreasing.
    W : array_like, shape (T, d_h, d_0)
        End-to-end maps ``W(t)`` in the singular frame (``trajectory.end_to_end``).
    band : float
        In ``(0, 1/2)``. A sample rests at the critical value ``L_S`` when
        ``dist(W(t), Sigma_S) <= band * g_S``, where ``dist`` is the distance to the critical maps
        of the value (:func:`nearest_critical`) and ``g_S`` the distance from them to the nearest
        critical map of another value (the smallest singular value ``sigma_i`` that can be
        learned or unlearned from ``S``). Below ``1/2`` the bands of different values are disjoint.
        With one layer, the only critical map is ``Sigma`` and ``g`` is its smallest nonzero
        singular value; with ``Sigma = 0`` there is no other critical map and every sample rests.

    Returns
    -------
    list of Plateau
        Maximal runs of at least two consecutive samples resting at one value, in time order;
        ``t_start`` and ``t_end`` are the first and last sample of the run. Consecutive plateaus
        of a saddle-to-saddle run are joined by edges of :func:`critical_graph`; where they are
        not, the run passed a saddle too quickly to rest there (:meth:`CriticalGraph.path`).

    Raises
    ------
    ValueError
        If ``times`` and ``W`` disagree in length, ``times`` decrease or are not finite, ``band`` is
        not in ``(0, 1/2)``, or the problem has a general loss.

    Notes
    -----
    Detecting rests by the loss alone fails both ways: the loss passes through a critical level
    ``L_S`` on its way between two others without resting anywhere near ``Sigma_S``, and where
    critical levels are close a rest is attributed to the wrong one. The distance in the quotient
    tells the two apart.
    """
    _check_problem(problem)
    times = np.asarray(times)
    if times.dtype.kind not in "fiu":
        raise TypeError(f"times must hold real numbers; got dtype {times.dtype}")
    times = times.astype(np.float64)
    if times.ndim != 1:
        raise ValueError(f"times must be one-dimensional, shape (T,); got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise ValueError("times contains NaN or infinite entries")
    if np.any(np.diff(times) < 0):
        k = int(np.flatnonzero(np.diff(times) < 0)[0])
        raise ValueError(f"times must be non-decreasing; times[{k + 1}] = {times[k + 1]} < times[{k}] = {times[k]}")
    W = _as_maps(problem, W, "W")
    if W.ndim != 3:
        raise ValueError(f"W must be a batch of end-to-end maps, shape (T, d_h, d_0); got {W.shape}")
    if W.shape[0] != times.size:
        raise ValueError(f"times and W must have the same length T; got {times.size} times and {W.shape[0]} maps")
    if isinstance(band, bool) or not isinstance(band, numbers.Real) or not 0 < band < 0.5:
        raise ValueError(f"band must be a number in (0, 1/2); got {band!r}")
    if times.size == 0:
        return []
    counts, squared, blocks = _nearest(problem, W)
    labels = _labels(problem, counts, blocks)
    distance = np.sqrt(squared)
    inside = distance <= band * _gaps(problem, counts, blocks)
    result = []
    n = 0
    while n < times.size:
        if not inside[n]:
            n += 1
            continue
        end = n
        while end + 1 < times.size and inside[end + 1] and labels[end + 1] == labels[n]:
            end += 1
        if end > n:
            closest = float(distance[n : end + 1].min())
            result.append(Plateau(labels[n], float(times[n]), float(times[end]), closest))
        n = end + 1
    return result


# ---------------------------------------------------------------------------------------- the graph
class CriticalGraph(NamedTuple):
    """The critical values joined by the heteroclinic connections between them.

    ``graph[0]`` and ``graph[1]`` are the nodes and edges, so the graph can be passed wherever a
    ``(nodes, edges)`` pair is expected.

    Parameters
    ----------
    nodes : tuple of CriticalValue
        As :func:`critical_values` lists them (increasing loss); node ``n`` is ``nodes[n]``.
    edges : tuple of (int, int)
        ``(a, b)``: a flow line runs from a critical point of value ``nodes[a]`` to one of value
        ``nodes[b] < nodes[a]`` (see :func:`critical_graph`). Sorted.
    kinds : tuple of str
        For each edge, ``"learn"`` (one more mode learned) or ``"swap"`` (a learned mode exchanged
        for a larger unlearned one).
    """

    nodes: tuple
    edges: tuple
    kinds: tuple

    def index(self, learned) -> int:
        """Node holding the learned set ``learned``.

        Parameters
        ----------
        learned : sequence of int or CriticalValue
            A learned set (1-based mode numbers, in any order) or a critical value, which stands
            for its canonical learned set.

        Returns
        -------
        int
            The index ``n`` of the node whose value has ``learned`` among its alternatives.

        Raises
        ------
        ValueError
            If no critical value of the graph learns exactly these modes.
        """
        if isinstance(learned, CriticalValue):
            learned = learned.learned
        learned = tuple(sorted(learned))
        for n, node in enumerate(self.nodes):
            if learned in node.alternatives:
                return n
        raise ValueError(f"no critical value learns the modes {learned}")

    def has_edge(self, a: int, b: int) -> bool:
        """Whether a flow line runs from node ``a`` to node ``b``.

        Parameters
        ----------
        a, b : int
            Node indices (positions in :attr:`nodes`), ``a`` the source (higher loss).

        Returns
        -------
        bool
            Whether ``(a, b)`` is one of :attr:`edges`.
        """
        return (a, b) in self.edges

    def successors(self, a: int) -> tuple[int, ...]:
        """Nodes reached from node ``a`` by one edge, in increasing order.

        Parameters
        ----------
        a : int
            Index of the source node in :attr:`nodes`.

        Returns
        -------
        tuple of int
            The targets ``b`` of the edges ``(a, b)``, increasing.
        """
        return tuple(b for (source, b) in self.edges if source == a)

    def path(self, plateaus) -> tuple[int, ...]:
        """The nodes a trajectory visits, from its plateaus (:func:`plateaus`), repeats merged.

        Consecutive nodes of a flow that rests at every saddle it passes are joined by an edge;
        :meth:`has_edge` tells where the plateaus skipped one (a saddle passed too quickly to rest
        there, or several modes learned at once).

        Parameters
        ----------
        plateaus : sequence of Plateau
            The rests of one run in time order, as :func:`plateaus` returns them; each plateau's
            critical value must be a node of this graph.

        Returns
        -------
        tuple of int
            Node indices in visiting order, consecutive repeats merged into one.
        """
        visited: list[int] = []
        for plateau in plateaus:
            n = self.nodes.index(plateau.critical_value)
            if not visited or visited[-1] != n:
                visited.append(n)
        return tuple(visited)


def critical_graph(problem, *, max_modes: int = GRAPH_MAX_MODES) -> CriticalGraph:
    """The graph of critical values and the elementary heteroclinic connections between them.

    Parameters
    ----------
    problem : Problem
        A square-loss problem.
    max_modes : int
        Largest number of learnable modes (``sigma_i > 0``) accepted. The graph has up to ``2^m``
        nodes and ``m^2 2^m`` edges, so building it is exponential in ``m``; past
        ``max_modes`` (default 12: 4096 nodes) it raises instead of running for minutes.

    Returns
    -------
    CriticalGraph
        Nodes are :func:`critical_values`; an edge ``a -> b`` joins two values when some learned set
        ``S`` of ``a`` (among its ``alternatives``) and ``S'`` of ``b`` are related by

        * ``"learn"``: ``S' = S + {i}``, one more mode ``i`` with ``sigma_i > 0`` (``|S| < r``); the
          loss drops by ``sigma_i^2 / 2``;
        * ``"swap"``: ``S' = S - {j} + {i}`` with ``sigma_i > sigma_j``; the loss drops by
          ``(sigma_i^2 - sigma_j^2) / 2``.

    Raises
    ------
    ValueError
        If the problem has more than ``max_modes`` learnable modes, or a general loss.

    Notes
    -----
    Each edge is realised by an explicit flow line between the canonical points
    (:func:`quotient.canonical_point`), inside an invariant subspace of the flow. For "learn", the
    chain of mode ``i`` through free hidden units is decoupled from the rest, and on its balanced
    ray with positive product the flow takes mode ``i`` from 0 (as ``t -> -infinity``) to
    ``sigma_i^{1/h}``: this is the unstable curve of :func:`quotient.saddle.unstable_directions`.
    For "swap", the subspace in which the hidden units of mode ``j`` also connect to the input
    and output directions of mode ``i`` holds a rank-one network; the saddle (mode ``j`` learned)
    has the negative curvature of condition (B) of :func:`quotient.classify`, and the flow on its
    unstable manifold ends at the best rank-one fit, mode ``i``. Flow lines that learn several
    modes at once also exist (their end points are joined by a path of edges); the graph keeps
    only the elementary steps, the ones the saddle-to-saddle dynamics of small initialisations
    take one after the other.
    """
    _check_problem(problem)
    if isinstance(max_modes, bool) or not isinstance(max_modes, numbers.Integral) or max_modes < 0:
        raise ValueError(f"max_modes must be a non-negative integer; got {max_modes!r}")
    sigma = np.asarray(problem.sigma)
    learnable = [i + 1 for i in range(sigma.size) if sigma[i] > 0]
    if len(learnable) > max_modes:
        raise ValueError(
            f"the critical graph of {len(learnable)} learnable modes has up to 2^{len(learnable)} nodes; "
            f"it is built for at most max_modes = {max_modes} (pass a larger max_modes to build it "
            "anyway, or use nearest_critical / plateaus, which do not need it)"
        )
    nodes = tuple(critical_values(problem))
    node_of = {S: n for n, node in enumerate(nodes) for S in node.alternatives}
    found: dict[tuple[int, int], str] = {}
    for a, node in enumerate(nodes):
        for S in node.alternatives:
            for i in learnable:
                if i in S:
                    continue
                targets = []
                if len(S) < problem.rank_bound:
                    targets.append((tuple(sorted(S + (i,))), "learn"))
                for j in S:
                    if sigma[i - 1] > sigma[j - 1]:
                        targets.append((tuple(sorted(set(S) - {j} | {i})), "swap"))
                for target, kind in targets:
                    b = node_of[target]
                    if nodes[b].value < node.value:
                        found.setdefault((a, b), kind)
    edges = tuple(sorted(found))
    return CriticalGraph(nodes, edges, tuple(found[edge] for edge in edges))
