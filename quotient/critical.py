"""Critical values and critical points of the square loss: enumeration and canonical representatives.

At a critical point the end-to-end map is ``W = Sigma_S`` for a set ``S`` of learned modes and the
loss is ``L_S = 1/2 sum_{i not in S} sigma_i^2`` (math.md section 4). This module lists the
critical values (:func:`critical_values`), builds the balanced canonical point of each
(:func:`canonical_point`), and gives the global minimum and the threshold halfway to the next value
in closed form. What kind of critical point a point is lives in :mod:`quotient.classification`
(rank conditions), the Hessian's inertia in :mod:`quotient.hessian`, the well-conditioned point of
an orbit the decisions are taken at in :mod:`quotient.orbit`, and the graph of heteroclinic
connections in :mod:`quotient.graph`.

Modes are numbered from 1, in the order of ``problem.sigma`` (mode 1 carries the largest singular
value), as in the literature and in math.md. Points are in the problem's singular frame.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass

import numpy as np

from ._numerics import require_square_loss

__all__ = [
    "CriticalValue",
    "canonical_point",
    "critical_value_of",
    "critical_values",
    "global_minimum",
    "learned_set",
    "minimum_threshold",
    "same_value",
    "value_of",
]

@dataclass(frozen=True)
class CriticalValue:
    """One critical value of the loss and the learned modes that produce it.

    Parameters
    ----------
    value : float
        ``L_S = 1/2 sum_{i not in S} sigma_i^2``.
    learned : tuple of int
        The canonical learned set ``S`` (1-based mode numbers, increasing): among all sets with
        this value, the one that learns the largest singular values first (lexicographically
        smallest).
    alternatives : tuple of tuple of int
        Every learned set with this value (``learned`` included). More than one when singular
        values tie or sums of squares coincide; the fiber of the value is then the union of
        the critical sets of all of them.
    """

    value: float
    learned: tuple[int, ...]
    alternatives: tuple[tuple[int, ...], ...] = ()

    def __str__(self) -> str:
        modes = ",".join(str(i) for i in self.learned)
        return f"L = {self.value:.6g} (learned {{{modes}}})"


def critical_values(problem, *, rtol: float = 1e-12) -> list[CriticalValue]:
    """Every critical value of the loss, each once, in increasing order.

    Parameters
    ----------
    problem : Problem
        A square-loss problem.
    rtol : float
        Values closer than ``rtol * max(1, L_{})`` count as one value.

    Returns
    -------
    list of CriticalValue

    Notes
    -----
    At a critical point ``W = Sigma_S`` for a set ``S`` of learned modes with ``|S| <= r``,
    ``r = min(d_0, ..., d_h)``, and the critical value is ``L_S = 1/2 sum_{i not in S} sigma_i^2``;
    every such ``S`` is attained (math.md section 4). Ties are grouped:

    * a zero singular value cannot be learned (learning it does not change ``W``), so only modes
      with ``sigma_i > 0`` enter ``S``;
    * repeated singular values give several sets with one value (``sigma = (2, 2, 1)``:
      ``{1}`` and ``{2}``); the critical set of that value is then a union over
      ``alternatives`` (and, for a repeated value, a continuum of rotated ``Sigma_S``);
    * distinct sets whose unlearned squares sum to the same number share a value too.

    With one layer (``h = 1``) the loss is convex and ``W_1 = Sigma`` is its only critical point,
    so the list holds the global minimum alone.
    """
    require_square_loss(problem)
    sigma = np.asarray(problem.sigma)
    learnable = [i + 1 for i in range(sigma.size) if sigma[i] > 0]
    total = 0.5 * float(np.sum(sigma**2))
    tolerance = rtol * max(1.0, total)
    entries = []
    sizes = range(min(problem.rank_bound, len(learnable)) + 1)
    if problem.depth == 1:
        sizes = [len(learnable)]  # r = min(d_0, d_1) = m: every learnable mode
    for size in sizes:
        for subset in itertools.combinations(learnable, size):
            value = total - 0.5 * float(sum(sigma[i - 1] ** 2 for i in subset))
            entries.append((max(value, 0.0), subset))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    grouped: list[list] = []
    for value, subset in entries:
        if grouped and value - grouped[-1][0] <= tolerance:
            grouped[-1][1].append(subset)
        else:
            grouped.append([value, [subset]])
    result = []
    for value, subsets in grouped:
        result.append(CriticalValue(value, min(subsets), tuple(sorted(subsets))))
    return result


# ---------------------------------------------------------------------------------------- learned sets
def learned_set(problem, learned, name: str = "learned") -> tuple[int, ...]:
    """Validate a set of learned modes (1-based) and return it sorted.

    Parameters
    ----------
    problem : Problem
        A square-loss problem (a target ``Sigma``).
    learned : iterable of int or CriticalValue
        1-based mode numbers (mode 1 carries the largest singular value), or a critical value,
        which stands for its canonical learned set.
    name : str
        The argument's name in error messages.

    Returns
    -------
    tuple of int
        The modes, increasing.

    Raises
    ------
    TypeError
        If ``learned`` is not a sequence of integers.
    ValueError
        If a mode is out of range ``1..m``, repeated, has ``sigma = 0``, the set is larger than
        ``r = min(widths)``, or (one layer) it is not every mode with ``sigma > 0``; or if
        ``problem`` has no target ``Sigma``.
    """
    require_square_loss(problem)
    if isinstance(learned, CriticalValue):
        learned = learned.learned
    if isinstance(learned, (str, bytes)) or not hasattr(learned, "__iter__"):
        raise TypeError(f"{name} must be a sequence of 1-based mode numbers like (1, 3); got {learned!r}")
    modes = tuple(learned)
    for i in modes:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):
            raise TypeError(f"{name} must hold integer mode numbers (1 = largest singular value); got {i!r} in {modes!r}")
    sigma = np.asarray(problem.sigma)
    m, r = sigma.size, problem.rank_bound
    for i in modes:
        if not 1 <= i <= m:
            raise ValueError(
                f"{name}: mode {i} is out of range; modes are numbered 1..m = 1..{m} "
                f"(m = min(d_0, d_h), mode 1 carries the largest singular value)"
            )
    if len(set(modes)) != len(modes):
        raise ValueError(f"{name} repeats a mode: {modes!r}")
    for i in modes:
        if sigma[i - 1] == 0:
            raise ValueError(f"{name}: mode {i} has singular value 0 and cannot be learned (learning it leaves W unchanged)")
    if len(modes) > r:
        raise ValueError(
            f"{name} has {len(modes)} modes, but the narrowest width r = min(widths) = {r} of widths "
            f"{problem.widths} lets the end-to-end map have rank at most {r}"
        )
    if problem.depth == 1 and len(modes) != int(np.count_nonzero(sigma)):
        raise ValueError(
            f"{name} = {modes!r} is not critical with one layer: the loss is convex and its only critical "
            f"point is W_1 = Sigma, which learns every mode with sigma > 0"
        )
    return tuple(int(i) for i in sorted(modes))


def critical_value_of(problem, learned) -> CriticalValue:
    """The :class:`CriticalValue` whose alternatives hold the (validated) learned set.

    Parameters
    ----------
    problem : Problem
        A square-loss problem (a target ``Sigma``).
    learned : iterable of int or CriticalValue
        A learned set, validated by :func:`learned_set`.

    Returns
    -------
    CriticalValue
        The entry of :func:`critical_values` whose ``alternatives`` hold the set.
    """
    learned = learned_set(problem, learned)
    for value in critical_values(problem):
        if learned in value.alternatives:
            return value
    raise AssertionError(f"learned set {learned} missing from critical_values")  # pragma: no cover


def canonical_point(problem, learned):
    """The balanced canonical critical point that learns the modes in ``learned``.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    learned : sequence of int or CriticalValue
        The learned set ``S = {j_1 < ... < j_e}``, 1-based mode numbers (mode 1 carries the largest
        singular value); a :class:`CriticalValue` stands for its ``learned`` set.

    Returns
    -------
    tuple of ndarray
        ``(W_1, ..., W_h)`` with ``W_i = Q_i D_S^{1/h} Q_{i-1}^T``, ``D_S = diag(sigma_{j_1}, ...,
        sigma_{j_e})``, ``Q_0 = [f_{j_1} ... f_{j_e}]`` and ``Q_h = [e_{j_1} ... e_{j_e}]`` (the
        singular vectors of the learned modes) and ``Q_i`` the first ``e`` unit vectors of hidden
        layer ``i``: mode ``j_k`` runs through hidden unit ``k`` of every layer with strength
        ``sigma_{j_k}^{1/h}``.

    Raises
    ------
    TypeError
        If ``learned`` does not hold integers.
    ValueError
        If a mode is out of range ``1..m``, is repeated, has singular value 0, or if ``learned``
        holds more modes than the narrowest width ``r = min(d_0, ..., d_h)``.

    Notes
    -----
    The point is critical with ``W = Sigma_S`` and loss ``L_S``, balanced (``C_i = 0``) and of
    minimal norm ``||W||^2 = h sum_{j in S} sigma_j^{2/h}`` on its fiber of the end-to-end map
    (math-spec section 3.3; Arora, Cohen & Hazan 2018).
    """
    S = learned_set(problem, learned)
    widths, h = problem.widths, problem.depth
    layers = [np.zeros((widths[i], widths[i - 1])) for i in range(1, h + 1)]
    for k, j in enumerate(S):
        strength = float(problem.sigma[j - 1]) ** (1.0 / h)
        for i, layer in enumerate(layers, start=1):
            row = j - 1 if i == h else k
            column = j - 1 if i == 1 else k
            layer[row, column] = strength
    return tuple(layers)


# ---------------------------------------------------------------------------------------- shared constants
def global_minimum(problem) -> float:
    """The least critical value, the loss at every global minimum: ``1/2 sum_{i > k} sigma_i^2``.

    Parameters
    ----------
    problem : Problem
        A square-loss problem.

    Returns
    -------
    float
        ``1/2 sum_{i > k} sigma_i^2`` with ``k = min(r, #{i : sigma_i > 0})`` and
        ``r = min(d_0, ..., d_h)``: the end-to-end map learns the top ``k`` modes (Eckart-Young;
        math.md section 4). Closed form, ``O(m)``: nothing is enumerated.
    """
    sigma, k = _minimum_modes(problem)
    return 0.5 * float(np.sum(sigma[k:] ** 2))


def _minimum_modes(problem) -> tuple[np.ndarray, int]:
    """``(sigma, k)``: a global minimum learns the top ``k = min(r, #{i : sigma_i > 0})`` modes."""
    require_square_loss(problem)
    sigma = np.asarray(problem.sigma, dtype=float)
    return sigma, min(problem.rank_bound, int(np.count_nonzero(sigma)))


def minimum_threshold(problem) -> float:
    """Halfway from the global minimum to the next critical value: ``L_min + (L_next - L_min) / 2``.

    A loss below it is closer to the global minimum than to any other critical value (the test of
    ``gradient_flow(until="minimum")`` and of the command line's "ended on a plateau" line).

    Parameters
    ----------
    problem : Problem
        A square-loss problem.

    Returns
    -------
    float
        ``inf`` when the global minimum is the only critical value.

    Notes
    -----
    With ``T`` the top ``k`` modes learned at the global minimum (:func:`global_minimum`), every
    critical value is ``L_S = L_min + 1/2 (sum_{i in T} sigma_i^2 - sum_{i in S} sigma_i^2)``
    with ``|S| <= k``. Pairing each added mode ``j`` of ``S \\ T`` with a distinct removed mode ``i``
    of ``T \\ S`` writes the difference as a sum of terms ``sigma_i^2 - sigma_j^2 >= 0`` and
    ``sigma_i^2 >= 0``, so the least positive difference is the least positive single term:
    ``L_next - L_min = 1/2 min+ ({sigma_i^2 - sigma_j^2 : i in T, j not in T} U {sigma_i^2 : i in T})``.
    Closed form, ``O(m^2)``: nothing is enumerated.
    """
    sigma, k = _minimum_modes(problem)
    learned, rest = sigma[:k] ** 2, sigma[k:] ** 2
    terms = np.concatenate([(learned[:, None] - rest[None, :]).ravel(), learned])
    positive = terms[terms > 0]
    if positive.size == 0:
        return np.inf
    return global_minimum(problem) + 0.25 * float(positive.min())


# ---------------------------------------------------------------------------------------- numerical scales
# ---------------------------------------------------------------------------------------- orbit representative
# ---------------------------------------------------------------------------------------- criticality, values
def value_of(problem, learned) -> float:
    """``L_S = 1/2 sum_{i not in S} sigma_i^2``.

    Parameters
    ----------
    problem : Problem
        A square-loss problem (a target ``Sigma``).
    learned : iterable of int
        A validated learned set ``S`` (1-based modes).

    Returns
    -------
    float
        ``L_S``, the loss at every critical point that learns ``S``.
    """
    sigma = np.asarray(problem.sigma, dtype=float)
    mask = np.ones(sigma.size, dtype=bool)
    mask[[i - 1 for i in learned]] = False
    return 0.5 * float(np.sum(sigma[mask] ** 2))


def same_value(problem, a: float, b: float) -> bool:
    """Critical values are equal when closer than ``1e-12 max(1, L_{})`` (as in :func:`critical_values`).

    Parameters
    ----------
    problem : Problem
        A square-loss problem (a target ``Sigma``).
    a, b : float
        Two critical values.

    Returns
    -------
    bool
        Whether ``|a - b| <= 1e-12 max(1, L_{})``, ``L_{} = 1/2 sum_i sigma_i^2`` the loss at zero.
    """
    return abs(a - b) <= 1e-12 * max(1.0, 0.5 * float(np.sum(np.asarray(problem.sigma) ** 2)))



# ---------------------------------------------------------------------------------------- classification
# ---------------------------------------------------------------------------------------- Hessian inertia
