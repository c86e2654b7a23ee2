"""Fibers of the quotient: every critical point that shares one critical value.

The loss takes finitely many critical values ``L_S`` (:func:`quotient.critical_values`). The
*fiber* of a value is the set of all critical points at that value (math.md section 4): it is
unbounded (it contains the orbits of the hidden symmetry group ``GL(d_1) x ... x GL(d_{h-1})``)
and, at saddle values, a union of strata of different dimensions that no single orbit fills.

Points of a fiber in normal form. Up to the hidden symmetry group, a network is a direct sum of
*intervals*: chains of non-zero edges through one unit of each layer ``a, a+1, ..., b``. A critical
point with end-to-end map ``W = Sigma_S`` (distinct singular values) is built from (math-spec
sections 3.1 and 3.2):

* one full interval ``[0, h]`` for each learned mode ``j`` in ``S``, from input direction ``f_j`` to
  output direction ``e_j``, its edges multiplying to ``sigma_j``;
* for each unlearned mode ``i`` (``sigma_i > 0``) a *tail* ``[0, b_i]`` from ``f_i`` and a *head*
  ``[a_i, h]`` into ``e_i`` with ``a_i >= b_i + 2``: at least two missing edges between them (with
  one missing edge the gradient at that edge is ``sigma_i`` times the two products, not zero);
* tails from the input directions and heads into the output directions that ``Sigma`` maps to 0,
  of any length short of a full path;
* *internal* intervals ``[a, b]``, ``1 <= a <= b <= h - 1``, using spare hidden units.

Every such network, moved by any element of the hidden symmetry group and by the rotations of the
data that fix ``Sigma`` (within repeated singular values and within the null spaces), is a
critical point with value ``L_S``. :meth:`Fiber.sample` draws points this way, so its samples reach
the strata of a fiber, not only the orbit of one point.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from ._numerics import as_generator, check_tolerance, haar_orthogonal, readonly
from .classification import learned_modes, orbit_resolution, relative_gradient, require_critical
from .critical import CriticalValue, canonical_point, critical_value_of, learned_set, same_value, value_of
from .hessian import ZERO_EIGENVALUE_RTOL, hessian_inertia, zero_eigenvalue_threshold, zero_resolution
from .network import as_point, backward_products, forward_products, from_vector, to_vector
from .orbit import pull_back
from .problem import Problem
from .symmetry import act, random_gl

__all__ = ["MAX_SAMPLES", "Fiber", "fiber"]

MAX_SAMPLES = 10**6
"""Most samples :meth:`Fiber.sample` draws in one call (it raises ``ValueError`` beyond)."""


# ---------------------------------------------------------------------------------------- sampling
def _intervals(problem: Problem, S, rng: np.random.Generator, structure: bool):
    """A random interval decomposition of a critical point learning ``S``.

    Returns a list of ``(a, b, input_index, output_index)``: the interval covers layers ``a..b``,
    starts at input direction ``input_index`` when ``a == 0`` and ends at output direction
    ``output_index`` when ``b == h`` (``None`` otherwise). Learnt paths come first, in the order
    of ``S``.
    """
    widths, h = problem.widths, problem.depth
    sigma = np.asarray(problem.sigma)
    m = sigma.size
    free = list(widths)  # spare units per hidden layer (entries 0 and h unused)
    intervals = []

    def take(a, b):
        for j in range(max(a, 1), min(b, h - 1) + 1):
            free[j] -= 1

    def reach_up(a):  # the largest b such that hidden layers max(a,1)..b all have a spare unit
        b = a
        while b + 1 <= h - 1 and free[b + 1] > 0:
            b += 1
        return b

    def reach_down(b):  # the smallest a such that hidden layers a..min(b,h-1) all have a spare unit
        a = b
        while a - 1 >= 1 and free[a - 1] > 0:
            a -= 1
        return a

    for j in S:
        intervals.append((0, h, j - 1, j - 1))
        take(0, h)
    if not structure:
        return intervals
    # how much of the spare capacity this sample uses: from the bare learned paths to crowded
    density = rng.random()

    def draw(low, high):  # an interval end in [low, high], `low` (trivial) with probability 1 - density
        return low if high <= low or rng.random() > density else int(rng.integers(low + 1, high + 1))

    unlearned = [i for i in range(m) if sigma[i] > 0 and i + 1 not in S]
    null_inputs = [k for k in range(widths[0]) if k >= m or sigma[k] == 0]
    null_outputs = [k for k in range(widths[-1]) if k >= m or sigma[k] == 0]
    jobs = [("mode", i) for i in unlearned] + [("in", k) for k in null_inputs] + [("out", k) for k in null_outputs]
    rng.shuffle(jobs)
    for kind, index in jobs:
        if kind in ("mode", "in"):  # a tail [0, b]; b = 0: the direction is not used
            b = draw(0, min(reach_up(0), h - 2 if kind == "mode" else h - 1))
            take(0, b)
            intervals.append((0, b, index, None))
        if kind in ("mode", "out"):  # a head [a, h]; a = h: the direction is not reached
            lowest = reach_down(h - 1) if h >= 2 and free[h - 1] > 0 else h
            if kind == "mode":  # at least two missing edges between the tail and the head
                lowest = max(lowest, b + 2)
            a = h - draw(0, h - max(lowest, 1)) if lowest <= h else h
            take(a, h)
            intervals.append((a, h, None, index))
    for j in range(1, h):
        while free[j] > 0 and rng.random() < density:
            b = draw(j, reach_up(j))
            take(j, b)
            intervals.append((j, b, None, None))
    return intervals


def _normal_form(problem: Problem, S, intervals, weights, units):
    """Layers of the direct sum of ``intervals`` with edge weights ``weights[n]`` (one per edge)."""
    widths, h = problem.widths, problem.depth
    layers = [np.zeros((widths[i], widths[i - 1])) for i in range(1, h + 1)]
    used = [0] * (h + 1)
    for (a, b, source, sink), edge_weights in zip(intervals, weights):
        previous = None
        for j in range(a, b + 1):
            if j == 0:
                unit = source
            elif j == h:
                unit = sink
            else:
                unit = units[j][used[j]]
                used[j] += 1
            if previous is not None:
                layers[j - 1][unit, previous] = edge_weights[j - a - 1]
            previous = unit
    return layers


def _data_rotation(problem: Problem, rng: np.random.Generator, size: float):
    """``(U', V')`` orthogonal with ``U'^T Sigma V' = Sigma``: rotations within repeated singular
    values (the same on both sides) and within the null spaces of ``Sigma`` (independent).

    ``size`` scales the generator of each rotation (``None``: Haar-random).
    """
    d_0, d_h = problem.widths[0], problem.widths[-1]
    sigma = np.asarray(problem.sigma)
    U, V = np.eye(d_h), np.eye(d_0)

    def rotation(k):
        if size is None:
            return haar_orthogonal(k, rng)
        X = rng.standard_normal((k, k))
        Q, R = np.linalg.qr(np.eye(k) + size * (X - X.T) / 2)
        return Q * np.sign(np.diag(R))

    positive = [i for i in range(sigma.size) if sigma[i] > 0]
    for _, group in _groups(positive, sigma):
        if len(group) > 1:
            Q = rotation(len(group))
            U[np.ix_(group, group)] = Q
            V[np.ix_(group, group)] = Q
    for matrix, width in ((V, d_0), (U, d_h)):
        null = [k for k in range(width) if k >= sigma.size or sigma[k] == 0]
        if len(null) > 1:
            matrix[np.ix_(null, null)] = rotation(len(null))
    return U, V


def _boundary_moves(problem: Problem, S, rng: np.random.Generator, size: float):
    """``(I + X, I + Y)`` acting on the input and output spaces, keeping ``W`` and criticality.

    With ``W_1 -> W_1 (I + X)`` and ``W_h -> (I + Y) W_h`` the end-to-end map becomes
    ``(I + Y) W (I + X)`` and the gradient ``B_j^T (I + Y)^T R (I + X)^T F_{j-1}^T``. Both are
    unchanged when ``W X = 0``, ``X R^T = 0``, ``Y W = 0`` and ``R^T Y = 0``: ``X`` maps learned and
    null input directions into the non-learned ones (``f_l -> f_l + sum_k x_{kl} f_k``), and ``Y``
    maps non-learned output directions into learned and null ones. A learned path then also reads
    the inputs of tails, and heads also write into learned outputs: not an orbit of the hidden
    symmetry group.
    """
    d_0, d_h = problem.widths[0], problem.widths[-1]
    sigma = np.asarray(problem.sigma)
    learned = [j - 1 for j in S]
    not_learned_in = [k for k in range(d_0) if k not in learned]
    not_learned_out = [k for k in range(d_h) if k not in learned]
    quiet_in = learned + [k for k in range(d_0) if k >= sigma.size or sigma[k] == 0]
    quiet_out = learned + [k for k in range(d_h) if k >= sigma.size or sigma[k] == 0]
    X, Y = np.eye(d_0), np.eye(d_h)
    use = rng.random()  # fraction of the allowed entries switched on
    for matrix, rows, columns in ((X, not_learned_in, quiet_in), (Y, quiet_out, not_learned_out)):
        for k in rows:
            for l in columns:
                if k != l and rng.random() < use:
                    matrix[k, l] += size * rng.standard_normal()
    return X, Y


def _groups(indices, sigma):
    """Runs of indices with equal singular values."""
    runs = []
    for i in indices:
        if runs and sigma[runs[-1][1][-1]] == sigma[i]:
            runs[-1][1].append(i)
        else:
            runs.append((sigma[i], [i]))
    return runs


def _random_critical_point(problem: Problem, S, rng, spread: float, structure: bool, local: float | None):
    h = problem.depth
    sigma = np.asarray(problem.sigma)
    intervals = _intervals(problem, S, rng, structure)
    typical = max(float(sigma.max(initial=0.0)), 1.0) ** (1.0 / h)
    weights = []
    for a, b, source, _sink in intervals:
        n_edges = b - a
        if a == 0 and b == h:  # a learned path: edges multiply to sigma_j
            target = float(sigma[source])
            if local is None:
                logs = spread * rng.standard_normal(n_edges)
                signs = rng.choice([-1.0, 1.0], size=n_edges)
            else:
                logs = local * rng.standard_normal(n_edges)
                signs = np.ones(n_edges)
            logs += np.log(target) / h - logs.mean()
            signs[-1] = np.prod(signs[:-1])
            weights.append(signs * np.exp(logs))
        elif local is None:
            weights.append(typical * rng.choice([-1.0, 1.0], size=n_edges) * np.exp(spread * rng.standard_normal(n_edges)))
        else:
            weights.append(local * typical * rng.standard_normal(n_edges))
    if local is None:
        units = [None] + [rng.permutation(d) for d in problem.widths[1:-1]] + [None]
    else:  # learned paths stay on the units of the canonical point, the spare units are shuffled
        e = len(S)
        units = [None] + [np.r_[np.arange(e), e + rng.permutation(d - e)] for d in problem.widths[1:-1]] + [None]
    layers = _normal_form(problem, S, intervals, weights, units)
    if structure and h > 1:
        X, Y = _boundary_moves(problem, S, rng, typical * (spread if local is None else local))
        layers[0] = layers[0] @ X
        layers[-1] = Y @ layers[-1]
    U, V = _data_rotation(problem, rng, local)
    layers[0] = layers[0] @ V.T
    layers[-1] = U @ layers[-1]
    if h == 1:
        return tuple(layers)
    if local is None:
        g = random_gl(problem.widths, rng, spread=spread)
    else:
        g = tuple(np.eye(d) + local * rng.standard_normal((d, d)) for d in problem.widths[1:-1])
    return act(tuple(layers), g)


# ---------------------------------------------------------------------------------------- nearest point
@dataclass(frozen=True, eq=False)
class _LinearLoss:
    """``l(W) = <C, W>``: its gradient ``(B_j^T C F_{j-1}^T)_j`` is the criticality residual."""

    C: np.ndarray

    def value(self, W):
        return np.sum(self.C * W, axis=(-2, -1))

    def gradient(self, W):
        return np.broadcast_to(self.C, np.shape(W)).copy()

    def hvp(self, W, dW):
        return np.zeros_like(dW)


def _fiber_residual(problem: Problem, S):
    """``x -> (r(x), J(x))`` whose zeros with ``W = Sigma_S`` are the critical points learning ``S``.

    ``r = (W - Sigma_S, (B_j^T R_S F_{j-1}^T)_j)`` with the fixed ``R_S = Sigma - Sigma_S``: at
    ``W = Sigma_S`` the second block is ``-grad L``.
    """
    widths, h = problem.widths, problem.depth
    target = np.zeros_like(problem.target)
    for j in S:
        target[j - 1, j - 1] = problem.sigma[j - 1]
    residual_problem = dataclasses.replace(problem, end_to_end_loss=_LinearLoss(problem.target - target))
    basis = from_vector(np.eye(problem.n_params), widths)

    def evaluate(x):
        point = from_vector(x, widths)
        F, B = forward_products(point), backward_products(point)
        r = np.concatenate([(F[-1] - target).ravel(), to_vector(residual_problem.unchecked_gradient(point))])
        dW = sum(
            (basis[j] if B[j + 1] is None else B[j + 1] @ basis[j]) @ (F[j] if F[j] is not None else np.eye(widths[0]))
            for j in range(h)
        )
        J = np.vstack([dW.reshape(problem.n_params, -1).T, residual_problem.hessian(point)])
        return r, J

    return evaluate


def _project(problem: Problem, S, y: np.ndarray, penalties, steps: int):
    """Nearest zero of the fiber residual to ``y``: penalty continuation, then Gauss-Newton."""
    evaluate = _fiber_residual(problem, S)
    n = y.size
    x = y.copy()
    for weight in penalties:
        root = np.sqrt(weight)
        solution = least_squares(
            lambda z: np.concatenate([z - y, root * evaluate(z)[0]]),
            x,
            jac=lambda z: np.vstack([np.eye(n), root * evaluate(z)[1]]),
            method="lm",
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
        )
        x = solution.x
    for _ in range(steps):  # minimum-norm Newton steps onto the zero set
        r, J = evaluate(x)
        if np.linalg.norm(r) == 0.0:
            break
        x = x + np.linalg.lstsq(J, -r, rcond=1e-12)[0]
    return x


# ---------------------------------------------------------------------------------------- the fiber
@dataclass(frozen=True, eq=False)
class Fiber:
    """The set of critical points of ``problem`` at one critical value.

    Build one with :func:`fiber`.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    value : float
        The critical value ``L_S = 1/2 sum_{i not in S} sigma_i^2``.
    learned : tuple of int
        The learned set ``S`` of the representative (1-based modes).
    alternatives : tuple of tuple of int
        Every learned set with this value; the fiber is the union of their critical sets.
    representative : tuple of ndarray
        The balanced canonical point of ``learned`` (:func:`quotient.canonical_point`), read-only.
    point : tuple of ndarray or None
        The critical point the fiber was built from (``fiber(problem, point)``), read-only, or
        ``None`` when it was built from a value or a learned set. :attr:`dimension` and
        :meth:`tangent_space` describe the fiber there (its stratum), else at the representative.
    """

    problem: Problem
    value: float
    learned: tuple
    alternatives: tuple
    representative: tuple
    point: tuple | None = None

    def __post_init__(self):
        object.__setattr__(self, "representative", tuple(readonly(layer) for layer in self.representative))
        if self.point is not None:
            object.__setattr__(self, "point", tuple(readonly(np.array(layer, dtype=float)) for layer in self.point))

    def __repr__(self) -> str:
        modes = ",".join(map(str, self.learned))
        return f"Fiber(L = {self.value:.6g}, learned {{{modes}}}, widths {self.problem.widths})"

    # ------------------------------------------------------------------ membership
    def contains(self, point, rtol: float = 1e-8) -> bool:
        """Whether ``point`` is a critical point with this fiber's value.

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, in the problem's singular frame.
        rtol : float
            Criticality tolerance, ``0 < rtol < 1`` (:func:`quotient.is_critical`).

        Returns
        -------
        bool
            Whether the point is critical (relative gradient at most ``rtol``, raised to the
            rounding level carried by the move to a well-conditioned point) and its learned set
            has this fiber's value.

        Raises
        ------
        ValueError
            If ``point`` does not fit the problem's widths or ``rtol`` is not in ``(0, 1)``.

        Notes
        -----
        Both tests are GL-invariant: criticality is decided at a well-conditioned point of the
        point's orbit (:func:`quotient.is_critical`), and the value is the one of the learned set
        read from the singular values of the end-to-end map (:func:`quotient.learned_modes`),
        compared with the fiber's value exactly (up to ``1e-12`` relative, the grouping of
        :func:`quotient.critical_values`): a critical point's loss is one of finitely many
        values, so no tolerance on the loss is needed, and none grows with the layer norms.
        """
        point = as_point(point, "point", widths=self.problem.widths)
        relative, z, g = relative_gradient(self.problem, point, rtol)
        return relative <= max(rtol, orbit_resolution(g)) and same_value(self.problem, value_of(self.problem, learned_modes(self.problem, z)), self.value)

    def _check_member(self, point, rtol: float, name: str = "point"):
        point = as_point(point, name, widths=self.problem.widths)
        z, g = require_critical(self.problem, point, rtol, name)
        value = value_of(self.problem, learned_modes(self.problem, z))
        if not same_value(self.problem, value, self.value):
            raise ValueError(f"{name} is critical but its value {value:.6g} is not this fiber's value {self.value:.6g}")
        return point, z, g

    # ------------------------------------------------------------------ samples
    def sample(self, n: int, rng=None, spread: float = 1.0, *, structure: bool = True, local: float | None = None):
        """Random points of the fiber, far from the representative.

        Parameters
        ----------
        n : int
            Number of samples.
        rng : numpy.random.Generator or int or None
            Source of randomness: a ``numpy.random.Generator``, a seed (an integer >= 0) or ``None`` (fresh entropy).
        spread : float
            Size of the moves: the hidden changes of basis ``G_i`` have singular values
            ``exp(spread z)`` (``z`` standard normal), and the edge weights of each interval are
            ``exp(spread z)`` in size (a learned path's weights keep their product ``sigma_j``).
            The norm of the samples grows like ``exp(c spread)``: the fiber is unbounded.
        structure : bool
            Draw a random interval decomposition for each sample (tails and heads of unlearned
            modes, of the null directions, internal intervals; see the module docstring), so that
            samples reach the fiber's strata. With ``False`` only the symmetry group moves the
            learned paths (plus the rotations of the data fixing ``Sigma``): the samples lie on the
            orbits of the balanced points.
        local : float, optional
            Draw points close to :attr:`representative` instead: every move is of size about
            ``local`` (edge weights of the extra intervals ``~ local``, ``G_i = I + O(local)``,
            learned paths rescaled by ``exp(O(local))``). Used to see the fiber's tangent cone.

        Returns
        -------
        tuple of ndarray
            A batch of points, layer ``i`` of shape ``(n, d_i, d_{i-1})``; each one is critical
            with this fiber's value (:meth:`contains`).

        Raises
        ------
        ValueError
            If ``n`` is not an integer in ``[0, MAX_SAMPLES]``, or ``spread`` or ``local`` is out
            of range.
        TypeError
            If ``rng`` is neither ``None``, a seed nor a Generator.

        Notes
        -----
        Each sample picks a learned set among :attr:`alternatives` (only :attr:`learned` with
        ``local``), builds the normal form described in the module docstring with random
        interval lengths and weights, rotates the data directions that ``Sigma`` cannot tell apart,
        and applies a random element of ``GL(d_1) x ... x GL(d_{h-1})``
        (:func:`quotient.symmetry.random_gl`).
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative integer; got {n!r}")
        if n > MAX_SAMPLES:
            raise ValueError(
                f"n = {n} samples exceeds the cap of {MAX_SAMPLES} per call (each sample is a Python-level "
                f"construction, about 0.1 ms to 1 ms, and the batch is held in memory); draw several batches"
            )
        if not (np.isfinite(spread) and spread >= 0):
            raise ValueError(f"spread must be a non-negative finite number; got {spread!r}")
        if local is not None and not (np.isfinite(local) and local > 0):
            raise ValueError(f"local must be a positive finite number; got {local!r}")
        generator = as_generator(rng)
        choices = [self.learned] if local is not None else list(self.alternatives)
        points = [
            _random_critical_point(self.problem, choices[generator.integers(len(choices))], generator, spread, structure, local)
            for _ in range(n)
        ]
        widths = self.problem.widths
        return tuple(
            np.stack([p[i] for p in points]) if points else np.zeros((0, widths[i + 1], widths[i]))
            for i in range(len(widths) - 1)
        )

    # ------------------------------------------------------------------ local geometry
    def tangent_space(self, point=None, *, rtol: float = ZERO_EIGENVALUE_RTOL) -> np.ndarray:
        """Orthonormal basis of the tangent space of the critical set at a point of the fiber.

        Parameters
        ----------
        point : tuple of ndarray, optional
            A point of the fiber (default :attr:`point` when the fiber was built from one, else
            :attr:`representative`).
        rtol : float
            Zero threshold for the Hessian eigenvalues (:func:`quotient.zero_eigenvalue_threshold`)
            at a well-conditioned point of the orbit.

        Returns
        -------
        ndarray, shape (k, N)
            Rows are orthonormal flat vectors (order of :func:`quotient.to_vector`) spanning
            ``ker H``.

        Raises
        ------
        ValueError
            If ``point`` is not critical (the message gives its gradient norm) or not at this
            fiber's value.

        Notes
        -----
        The critical set is the zero set of ``grad L``; a direction ``D`` keeps a point critical to
        first order iff ``H D = 0``, so ``ker H`` is the (Zariski) tangent space of that zero set.
        Strata: where the critical set is a manifold, ``ker H`` is its tangent space; at every
        point of the global-minimum fiber it is ``{W = Sigma_S}``, smooth of dimension
        ``N - r (d_0 + d_h - r)`` (Morse-Bott). At saddle values the critical set near a point is
        a union of strata (tails and heads of an unlearned mode may grow, but not both to within
        one edge of each other), its tangent cone a union of subspaces, and ``ker H`` is their
        span; its dimension changes from stratum to stratum (14 to 22 over the samples of one
        fiber at widths 3-3-3-3). At a non-strict saddle ``ker H`` also holds the escape curves of
        :mod:`quotient.saddle`, which leave the critical set at order ``h`` (they are in that
        span too).

        Computed at ``z = g . W`` (:func:`quotient.well_conditioned`): ``L(g . X) = L(X)`` with
        a linear action gives ``H(W) = A^T H(z) A``, ``A = D(g .)``, so ``ker H(W) = A^{-1} ker H(z)``;
        the kernel found at ``z`` is carried back by ``D_i -> G_i^{-1} D_i G_{i-1}`` and
        orthonormalised. ``tests/test_fiber.py`` checks the span against secants to nearby fiber
        points, at the representative and at moved points. Dense: ``N`` Hessian-vector products
        and an ``eigh``.
        """
        rtol = check_tolerance(rtol)
        if point is None:
            point = self.representative if self.point is None else self.point
        point, z, g = self._check_member(point, 1e-8)
        eigenvalues, vectors = np.linalg.eigh(self.problem.hessian(z))
        threshold = zero_eigenvalue_threshold(eigenvalues, rtol=max(rtol, zero_resolution(self.problem, z, g)))
        kernel = vectors[:, np.abs(eigenvalues) <= threshold].T
        if kernel.shape[0] == 0:
            return kernel.copy()
        basis = np.linalg.qr(pull_back(kernel, g, self.problem.widths).T)[0]
        return basis.T.copy()

    @property
    def dimension(self) -> int:
        """Local dimension of the fiber at :attr:`point` (or the representative): ``dim ker H`` there.

        For the global-minimum fiber this is ``N - r (d_0 + d_h - r)`` at every point (math-spec
        section 3.4; Trager, Kohn & Bruna 2020); at saddle values it is the dimension of the span
        of the tangent cone (:meth:`tangent_space`) and depends on the stratum of the point.
        Counted by :func:`quotient.hessian_inertia`, so it works for large networks too.
        """
        return hessian_inertia(self.problem, self.representative if self.point is None else self.point).zero

    def nearest(self, point, *, penalties=(1.0, 1e2, 1e4, 1e6, 1e8), steps: int = 20, rtol: float = 1e-8):
        """The point of the fiber closest to ``point`` (a local minimiser of the distance).

        Parameters
        ----------
        point : tuple of ndarray
            ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, in the problem's singular frame.
        penalties : sequence of float
            Weights ``mu`` of the penalty continuation (see Notes).
        steps : int
            Gauss-Newton steps that finish the projection.
        rtol : float
            Membership tolerance of the answer (:meth:`contains`).

        Returns
        -------
        tuple of ndarray

        Raises
        ------
        RuntimeError
            If no learned set of the fiber gives a point that passes :meth:`contains`.

        Notes
        -----
        For each learned set ``S`` of the value, the critical points learning ``S`` are the zeros of
        ``r(X) = (W(X) - Sigma_S, (B_j^T R_S F_{j-1}^T)_j)`` with ``R_S = Sigma - Sigma_S`` fixed. The
        nearest one to ``Y`` minimises ``||X - Y||^2`` subject to ``r(X) = 0``; we minimise
        ``||X - Y||^2 + mu ||r(X)||^2`` with ``scipy.optimize.least_squares`` (Levenberg-Marquardt,
        exact Jacobians from :meth:`Problem.hessian`) for increasing ``mu``, then take
        minimum-norm Newton steps ``dX = -J^+ r`` onto ``r = 0``, and keep the closest answer over
        ``S``. The result is a local solution near ``point``; dense Jacobians, for small networks.
        Repeated singular values: only the diagonal ``Sigma_S`` of each alternative is searched,
        not the rotations mixing equal singular values.
        """
        point = as_point(point, "point", widths=self.problem.widths)
        y = to_vector(point)
        best, best_distance = None, np.inf
        for S in self.alternatives:
            x = _project(self.problem, S, y, penalties, steps)
            candidate = from_vector(x, self.problem.widths)
            distance = float(np.linalg.norm(x - y))
            if distance < best_distance and self.contains(candidate, rtol):
                best, best_distance = tuple(layer.copy() for layer in candidate), distance
        if best is None:
            raise RuntimeError(
                "nearest: the projection did not reach the fiber from this point; try a point closer "
                "to it or more penalty steps"
            )
        return best


def fiber(problem: Problem, point_or_critical_value, *, rtol: float = 1e-8) -> Fiber:
    """The fiber of a critical value: every critical point with that loss.

    Parameters
    ----------
    problem : Problem
        The learning problem; points are in its singular frame.
    point_or_critical_value : CriticalValue, sequence of int, or tuple of ndarray
        A critical value (:func:`quotient.critical_values`), a learned set (1-based modes), or a
        critical point: its value (from its learned set, :func:`quotient.learned_modes`) is then
        used, and the fiber's :attr:`Fiber.dimension` and :meth:`Fiber.tangent_space` describe
        the fiber at that point.
    rtol : float
        Criticality tolerance for a point (see :func:`quotient.classify`).

    Returns
    -------
    Fiber

    Raises
    ------
    ValueError
        If a point is not critical (the message gives its gradient norm), or a learned set is
        impossible (a mode out of range, of singular value 0, or more modes than the narrowest
        width).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a quotient.Problem; got {type(problem).__name__}")
    argument = point_or_critical_value
    if isinstance(argument, CriticalValue):
        value = critical_value_of(problem, argument.learned)
        if abs(value.value - argument.value) > 1e-9 * max(1.0, abs(value.value)):
            raise ValueError(f"{argument} is not a critical value of {problem}")
    elif isinstance(argument, (tuple, list)) and all(isinstance(i, (int, np.integer)) for i in argument):
        value = critical_value_of(problem, learned_set(problem, argument))
    else:
        point = as_point(argument, "point", widths=problem.widths)
        z, _ = require_critical(problem, point, rtol)
        value = critical_value_of(problem, learned_modes(problem, z))
        return Fiber(problem, value.value, value.learned, value.alternatives, canonical_point(problem, value.learned), point)
    return Fiber(problem, value.value, value.learned, value.alternatives, canonical_point(problem, value.learned))
