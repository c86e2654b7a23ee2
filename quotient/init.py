"""Initial points, each documented with the invariant set of the flow it lies on.

Every function returns a point ``(W_1, ..., W_h)`` in the singular frame of the data, where the
target is the rectangular diagonal ``Sigma`` and mode ``k`` is the pair of unit vectors
``(e_k, f_k)`` (output, input). ``problem.to_data_frame(point)`` gives the network acting on the
raw data. Functions that only need the architecture accept either the widths or a ``Problem``.

What each start keeps along the gradient flow of any loss of the end-to-end map (the
conserved quantities ``C_i = W_{i+1}^T W_{i+1} - W_i W_i^T`` never change; the square loss is
needed only for the last row):

================  ==========================================================================
start             invariant set the flow stays on
================  ==========================================================================
small_random      none beyond ``C = C(0)`` (random, of size ``scale^2``)
orthogonal        ``C = C(0)``; balanced (``C = 0``) when every hidden width is at most both
                  neighbouring widths
balanced          ``C = 0``: layers share singular values, ``W_i = O_i diag(s)^{1/h} O_{i-1}^T``
delta_balanced    ``C_i = delta_i I``
decoupled,        ``W_i = O_i D_i O_{i-1}^T`` with the frames ``O_i`` of the start, fixed in
aligned,          time, and ``D_i`` diagonal: every mode is an independent scalar chain
spectral          ``dd_{i,k}/dt = (prod_{l != i} d_{l,k}) (sigma_k - prod_l d_{l,k})``; balanced
                  ones follow ``du_k/dt = h u_k^{2-2/h} (sigma_k - u_k)`` (square loss)
================  ==========================================================================
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from ._numerics import as_generator, chain_point, haar_orthogonal
from .network import check_widths

__all__ = ["small_random", "orthogonal", "balanced", "delta_balanced", "aligned", "decoupled", "spectral"]


def _widths(widths_or_problem) -> tuple[int, ...]:
    widths = getattr(widths_or_problem, "widths", widths_or_problem)
    return check_widths(widths)


def _check_scale(scale) -> float:
    if not np.isscalar(scale) or not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number; got {scale!r}")
    return float(scale)


def small_random(widths, scale: float = 1e-2, rng=None):
    """Gaussian point with independent ``N(0, scale^2)`` entries.

    Parameters
    ----------
    widths : sequence of int or Problem
        ``(d_0, ..., d_h)``.
    scale : float
        Standard deviation of every entry; must be positive.
    rng : numpy.random.Generator or int or None
        Source of randomness (a seed is passed to ``numpy.random.default_rng``).

    Returns
    -------
    tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``. Lies on no special invariant
        set: its conserved quantities ``C_i`` are random of size ``O(scale^2)``.

    Raises
    ------
    TypeError, ValueError
        If ``widths`` is not an architecture, ``scale`` is not a positive finite number, or ``rng``
        is neither ``None``, a seed ``>= 0`` nor a Generator.

    Examples
    --------
    >>> from quotient import init, widths_of
    >>> point = init.small_random((3, 4, 2), scale=0.1, rng=0)
    >>> [W.shape for W in point], widths_of(point)
    ([(4, 3), (2, 4)], (3, 4, 2))
    """
    widths = _widths(widths)
    scale = _check_scale(scale)
    generator = as_generator(rng)
    return tuple(scale * generator.standard_normal((widths[i], widths[i - 1])) for i in range(1, len(widths)))


def orthogonal(widths, scale: float = 1e-2, rng=None):
    """Random scaled semi-orthogonal layers: every singular value of every layer equals ``scale``.

    Parameters
    ----------
    widths : sequence of int or Problem
        ``(d_0, ..., d_h)``.
    scale : float
        The common singular value of the layers; must be positive.
    rng : numpy.random.Generator or int or None
        Source of randomness.

    Returns
    -------
    tuple of ndarray
        ``W_i = scale * Q_i`` with ``Q_i`` Haar-distributed, orthonormal rows when
        ``d_i <= d_{i-1}`` and orthonormal columns otherwise.

    Notes
    -----
    Invariant set: the level ``C = C(0)`` with
    ``C_i = scale^2 (Pi(row space of W_{i+1}) - Pi(column space of W_i))``. When
    ``d_i <= min(d_{i-1}, d_{i+1})`` both projectors are the identity and ``C_i = 0``, so a network
    whose hidden widths never exceed their neighbours' (e.g. all widths equal) starts balanced.

    Raises
    ------
    TypeError, ValueError
        If ``widths`` is not an architecture, ``scale`` is not a positive finite number, or ``rng``
        is neither ``None``, a seed ``>= 0`` nor a Generator.
    """
    widths = _widths(widths)
    scale = _check_scale(scale)
    generator = as_generator(rng)
    layers = []
    for i in range(1, len(widths)):
        rows, cols = widths[i], widths[i - 1]
        Q = haar_orthogonal(max(rows, cols), generator, min(rows, cols))
        layers.append(scale * (Q.T if rows <= cols else Q))
    return tuple(layers)


def balanced(widths, end_to_end=None, *, scale: float = 1e-2, rng=None):
    """A balanced point (``C_i = 0`` for every hidden layer) with a given or random end-to-end map.

    Parameters
    ----------
    widths : sequence of int or Problem
        ``(d_0, ..., d_h)``.
    end_to_end : array_like, shape (d_h, d_0), optional
        The end-to-end map ``W`` in the problem's singular frame; its rank must be at most
        ``r = min(d_0, ..., d_h)``. By default a random Gaussian matrix truncated to rank ``r``
        and scaled so that the largest layer singular value is ``scale``.
    scale : float
        Largest layer singular value of the random map (ignored when ``end_to_end`` is given).
    rng : numpy.random.Generator or int or None
        Source of the hidden frames (and of the random map).

    Returns
    -------
    tuple of ndarray
        ``W_1 = O_1 D^{1/h} V^T``, ``W_i = O_i D^{1/h} O_{i-1}^T``, ``W_h = U D^{1/h} O_{h-1}^T``
        with ``W = U D V^T`` the compact SVD (``k = rank W`` columns) and Haar-random hidden frames
        ``O_i`` of shape ``(d_i, k)``. Its end-to-end map is ``W``, and its norm
        ``h sum_k d_k^{2/h}`` is the least in the fiber of ``W``.

    Notes
    -----
    Invariant set: ``C = 0`` (Arora, Cohen & Hazan 2018). Along the flow the layers keep equal
    singular values, ``W_i = O_i(t) diag(s(t))^{1/h} O_{i-1}(t)^T``, the rank of ``W`` is
    constant for finite times, and ``W`` follows the closed flow
    ``dW/dt = -sum_j (W W^T)^{(h-j)/h} grad l(W) (W^T W)^{(j-1)/h}`` (Bah et al. 2022).

    Raises
    ------
    ValueError
        If ``end_to_end`` has the wrong shape, is not finite, or has rank above ``r``: no point
        of these widths has that end-to-end map.

    Examples
    --------
    >>> import numpy as np
    >>> from quotient import conserved_quantities, end_to_end, init
    >>> W = np.array([[3.0, 0.0], [0.0, 1.0]])
    >>> point = init.balanced((2, 3, 2), W, rng=0)
    >>> bool(np.allclose(end_to_end(point), W)), bool(np.allclose(conserved_quantities(point)[0], 0))
    (True, True)
    """
    widths = _widths(widths)
    generator = as_generator(rng)
    h, d_0, d_h, r = len(widths) - 1, widths[0], widths[-1], min(widths)
    if end_to_end is None:
        scale = _check_scale(scale)
        U, values, Vt = np.linalg.svd(generator.standard_normal((d_h, d_0)), full_matrices=False)
        values = scale**h * values[:r] / values[0]
        U, Vt = U[:, :r], Vt[:r]
    else:
        W = np.asarray(end_to_end, dtype=np.float64)
        if W.shape != (d_h, d_0):
            raise ValueError(f"end_to_end must have shape (d_h, d_0) = {(d_h, d_0)} for widths {widths}; got {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ValueError("end_to_end contains NaN or infinite entries")
        U, values, Vt = np.linalg.svd(W, full_matrices=False)
        tol = max(W.shape) * np.finfo(float).eps * (values[0] if values.size else 0.0)
        k = int(np.sum(values > tol))
        if k > r:
            raise ValueError(
                f"end_to_end has rank {k}, but widths {widths} allow rank at most r = min(widths) = {r}: "
                "no point has this end-to-end map"
            )
        U, values, Vt = U[:, :k], values[:k], Vt[:k]
    k = values.size
    frames = [Vt.T] + [haar_orthogonal(widths[i], generator, k) for i in range(1, h)] + [U]
    return chain_point(frames, np.tile(values ** (1.0 / h), (h, 1)))


def _delta_paths(widths, deltas):
    """Scalar paths realising ``C_i = delta_i I``, or a sentence saying why none exist.

    Returns ``(paths, None)`` with ``paths`` a list of ``(start, end, squared_weights, count)``, or
    ``(None, reason)``. See :func:`delta_balanced` for the mathematics.
    """
    h = len(widths) - 1
    delta = np.concatenate([[0.0], deltas, [0.0]])  # delta[i] for layer i; the ends carry none
    prefix = np.concatenate([[0.0], np.cumsum(deltas)])  # prefix[k] = delta_1 + ... + delta_k
    tol = 64 * np.finfo(float).eps * max(1.0, float(np.abs(prefix).max()))  # "Delta = 0" up to rounding
    # Each candidate path: (start j, end l, squared weights of edges j+1..l, or None for the
    # input-to-output paths whose first weight is free).
    candidates = [(0, 0, ()), (h, h, ())]
    candidates.append((0, h, None))
    for l in range(1, h):
        if prefix[l] < prefix[:l].min() - tol:  # a path from the input can end at hidden layer l
            candidates.append((0, l, tuple(prefix[i - 1] - prefix[l] for i in range(1, l + 1))))
    for j in range(1, h):
        if delta[j] == 0:
            candidates.append((j, j, ()))  # an isolated hidden unit
        elif delta[j] > 0:  # a path starting at hidden layer j: squared weights Delta(j, k)
            weights, end = [], h
            for k in range(j, h):
                partial = prefix[k] - prefix[j - 1]
                if partial <= tol:
                    end = k
                    break
                weights.append(partial)
            if end == h or abs(prefix[end] - prefix[j - 1]) <= tol:
                candidates.append((j, end, tuple(weights)))
    cover = np.array([[1.0 if j <= i <= l else 0.0 for (j, l, _) in candidates] for i in range(h + 1)])
    # Prefer paths through the whole network, then long paths: fewest isolated units.
    cost = np.array([-(l - j + 1) - (2.0 * (h + 1) if (j, l) == (0, h) else 0.0) for (j, l, _) in candidates])
    result = milp(
        cost,
        constraints=LinearConstraint(cover, np.array(widths, float), np.array(widths, float)),
        integrality=np.ones(len(candidates)),
        bounds=Bounds(0, max(widths)),
    )
    if not result.success:
        return None, "no combination of scalar paths covers every layer with its width"
    counts = np.rint(result.x).astype(int)
    return [(j, l, w, n) for (j, l, w), n in zip(candidates, counts) if n > 0], None


def delta_balanced(widths, deltas, *, scale: float = 1.0, rng=None):
    """A point with ``C_i = W_{i+1}^T W_{i+1} - W_i W_i^T = delta_i I_{d_i}`` for every hidden layer.

    Parameters
    ----------
    widths : sequence of int or Problem
        ``(d_0, ..., d_h)``.
    deltas : float or sequence of float
        ``delta_1, ..., delta_{h-1}`` (one number is used for every hidden layer).
    scale : float
        The smallest weight along every input-to-output path of the construction.
    rng : numpy.random.Generator or int or None
        Source of the Haar-random orthogonal frames applied at every layer.

    Returns
    -------
    tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, with ``C_i = delta_i I_{d_i}``.

    Notes
    -----
    Invariant set: ``C_i = delta_i I`` for all times (lambda-balance of Braun et al. 2022 and
    Dominé et al. 2025 when ``h = 2``; ``deltas = 0`` is :func:`balanced`).

    Existence (derived here). If ``C_i = delta_i I`` then ``W_{i+1}^T W_{i+1}`` and ``W_i W_i^T``
    share eigenvectors, and induction from the input gives orthonormal bases of every layer in
    which each ``W_i`` has at most one nonzero entry per row and column: the network is a direct sum
    of scalar paths (interval modules) from a layer ``j`` to a layer ``l`` with nonzero weights
    ``w_{j+1}, ..., w_l``, each unit of each layer on exactly one path. On a unit of hidden layer
    ``i`` the condition reads ``w_out^2 - w_in^2 = delta_i`` (a missing edge counts 0). With
    ``Delta(j, k) = delta_j + ... + delta_k`` and ``P_k = Delta(1, k)``, ``P_0 = 0``:

    * a path from the input to the output exists for any deltas (its first weight is free);
    * a path from the input ending at hidden layer ``l`` exists iff ``P_l < min(P_0, ..., P_{l-1})``;
    * a path starting at hidden layer ``j`` needs ``delta_j > 0``; its squared weights are
      ``Delta(j, k)``, so it ends at the first ``l`` with ``Delta(j, l) <= 0`` and exists iff
      ``Delta(j, l) = 0`` exactly (or it reaches the output);
    * an isolated hidden unit needs ``delta_i = 0``; isolated input and output units always exist.

    A point exists iff non-negative integer counts of these paths cover every layer ``i`` exactly
    ``d_i`` times (an interval-covering problem, solved exactly with ``scipy.optimize.milp``). It
    implies the local conditions ``delta_i > 0 => d_i <= d_{i+1}`` and ``delta_i < 0 =>
    d_i <= d_{i-1}``, which are not sufficient: for widths ``(1, 2, 2, 1)`` the only deltas are
    ``(0, 0)`` and ``(c, -c)`` with ``c > 0``.

    Raises
    ------
    ValueError
        If ``deltas`` has the wrong length or is not finite, or no real point has these deltas
        for these widths (the message names the first violated condition).
    """
    widths = _widths(widths)
    scale = _check_scale(scale)
    h = len(widths) - 1
    values = np.asarray(deltas, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(h - 1, float(values))
    if values.shape != (h - 1,):
        raise ValueError(
            f"deltas must hold h - 1 = {h - 1} numbers (one per hidden layer) for widths {widths}; got shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"deltas must be finite; got {values}")
    for i in range(1, h):
        delta, d_prev, d_i, d_next = values[i - 1], widths[i - 1], widths[i], widths[i + 1]
        if delta > 0 and d_i > d_next:
            raise ValueError(
                f"no point has C_{i} = {delta:g} I for widths {widths}: delta_{i} > 0 makes "
                f"W_{i + 1}^T W_{i + 1} = delta_{i} I + W_{i} W_{i}^T positive definite of size d_{i} = {d_i}, "
                f"but its rank is at most d_{i + 1} = {d_next}"
            )
        if delta < 0 and d_i > d_prev:
            raise ValueError(
                f"no point has C_{i} = {delta:g} I for widths {widths}: delta_{i} < 0 makes "
                f"W_{i} W_{i}^T = W_{i + 1}^T W_{i + 1} - delta_{i} I positive definite of size d_{i} = {d_i}, "
                f"but its rank is at most d_{i - 1} = {d_prev}"
            )
    paths, reason = _delta_paths(widths, values)
    if paths is None:
        raise ValueError(
            f"no point has C_i = delta_i I with deltas {values.tolist()} for widths {widths}: {reason} "
            "(a path starting at a hidden layer j must end exactly where delta_j + ... + delta_l = 0; "
            "see the Notes of quotient.init.delta_balanced)"
        )
    prefix = np.concatenate([[0.0], np.cumsum(values)])
    through = scale**2 - prefix[:h].min()  # first squared weight: the smallest weight is `scale`
    layers = [np.zeros((widths[i], widths[i - 1])) for i in range(1, h + 1)]
    used = [0] * (h + 1)
    for start, end, squared, count in paths:
        if squared is None:
            squared = tuple(through + prefix[i - 1] for i in range(1, h + 1))
        for _ in range(count):
            units = list(used[start : end + 1])
            for edge, w2 in zip(range(start + 1, end + 1), squared):
                layers[edge - 1][units[edge - start], units[edge - start - 1]] = np.sqrt(w2)
            for i in range(start, end + 1):
                used[i] += 1
    generator = as_generator(rng)
    frames = [haar_orthogonal(d, generator) for d in widths]
    return tuple(frames[i] @ layers[i - 1] @ frames[i - 1].T for i in range(1, h + 1))


def _mode_strengths(widths, strengths, name):
    h, r = len(widths) - 1, min(widths)
    values = np.asarray(strengths, dtype=np.float64)
    if values.ndim == 1:
        values = np.tile(values, (h, 1))
    if values.ndim != 2 or values.shape[0] != h:
        raise ValueError(f"{name} must have shape (k,) or (h, k) = ({h}, k) for widths {widths}; got {np.shape(strengths)}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite; got {values}")
    k = values.shape[1]
    if k > r:
        raise ValueError(
            f"{name} asks for {k} modes, but widths {widths} carry at most r = min(widths) = {r} "
            "aligned modes (each needs its own unit in every layer)"
        )
    return values


def decoupled(widths, strengths):
    """Layers diagonal in the singular frame: ``W_i[k, k] = strengths[i-1, k]``, zero elsewhere.

    Parameters
    ----------
    widths : sequence of int or Problem
        ``(d_0, ..., d_h)``.
    strengths : array_like, shape (h, k) or (k,)
        Per-layer, per-mode entries ``d_{i,k}`` (any sign, not necessarily balanced); a 1-D array
        gives every layer the same entries (balanced). ``k <= min(widths)``.

    Returns
    -------
    tuple of ndarray
        ``(W_1, ..., W_h)``, rectangular diagonal ``W_i`` of shape ``(d_i, d_{i-1})``; mode ``k``
        runs through unit ``k`` of every layer.

    Notes
    -----
    Invariant set: rectangular diagonal layers (Saxe, McClelland & Ganguli 2014). Along the
    square-loss flow each mode is an independent scalar chain
    ``dd_{i,k}/dt = (prod_{l != i} d_{l,k}) (sigma_k - prod_l d_{l,k})`` conserving
    ``d_{i+1,k}^2 - d_{i,k}^2``; modes not given stay zero. Any other loss keeps the layers diagonal
    when its gradient at diagonal maps is diagonal.

    Raises
    ------
    ValueError
        If ``strengths`` has the wrong shape or asks for more modes than ``min(widths)``.
    """
    widths = _widths(widths)
    values = _mode_strengths(widths, strengths, "strengths")
    k = values.shape[1]
    frames = [np.eye(d, k) for d in widths]
    return chain_point(frames, values)


def aligned(widths, strengths, *, rng=None):
    """Aligned layers: singular frames of consecutive layers matched, the ends matched to the data.

    Parameters
    ----------
    widths : sequence of int or Problem
        ``(d_0, ..., d_h)``.
    strengths : array_like, shape (k,) or (h, k)
        Per-mode singular values of every layer (1-D: the same on every layer, a balanced start)
        or per layer and mode (not necessarily balanced). ``k <= min(widths)``.
    rng : numpy.random.Generator or int or None
        Source of the Haar-random hidden frames.

    Returns
    -------
    tuple of ndarray
        ``W_1 = O_1 D_1 F^T``, ``W_i = O_i D_i O_{i-1}^T``, ``W_h = E D_h O_{h-1}^T`` with
        ``F = [f_1 .. f_k]``, ``E = [e_1 .. e_k]`` (the data frame), random ``O_i`` of shape
        ``(d_i, k)`` with orthonormal columns, and ``D_i = diag(strengths[i-1])``.

    Notes
    -----
    Invariant set: the points ``O_i D_i O_{i-1}^T`` with these frames, fixed in time, and
    ``D_i`` diagonal (the flow is equivariant under the orthogonal hidden group, so this is
    :func:`decoupled` seen in rotated hidden frames). Each mode is an independent scalar chain; a
    balanced start (1-D ``strengths`` ``a_k``) has ``u_k = a_k^h`` following
    ``du_k/dt = h u_k^{2-2/h} (sigma_k - u_k)`` (:func:`quotient.mode_solution`).

    Raises
    ------
    ValueError
        If the widths are smaller than the number of modes requested, or ``strengths`` has the
        wrong shape.
    """
    widths = _widths(widths)
    values = _mode_strengths(widths, strengths, "strengths")
    k = values.shape[1]
    generator = as_generator(rng)
    frames = [np.eye(widths[0], k)] + [haar_orthogonal(d, generator, k) for d in widths[1:-1]] + [np.eye(widths[-1], k)]
    return chain_point(frames, values)


def spectral(widths, u, *, rng=None):
    """A balanced aligned start with prescribed per-mode end-to-end strengths ``u_k``.

    Parameters
    ----------
    widths : sequence of int or Problem
        ``(d_0, ..., d_h)``.
    u : array_like, shape (k,)
        The end-to-end map is ``W = sum_k u_k e_k f_k^T``; ``k <= min(widths)``. Every layer
        carries ``|u_k|^{1/h}`` on mode ``k``; the sign of a negative ``u_k`` sits on ``W_h``.
    rng : numpy.random.Generator or int or None
        Source of the Haar-random hidden frames.

    Returns
    -------
    tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``: :func:`aligned` with strengths
        ``|u|^{1/h}`` (and the signs on the last layer).

    Notes
    -----
    Invariant set: balanced (``C = 0``) and aligned. Under the square loss each mode follows
    ``du_k/dt = h |u_k|^{2-2/h} (sigma_k - u_k)`` exactly: the start of
    :func:`quotient.mode_solution` and :func:`quotient.predict_plateaus`. A negative ``u_k`` lies
    on a stable ray of the origin's mode ``k`` and decays to 0 without being learned.

    Raises
    ------
    ValueError
        If ``u`` is not 1-D and finite, or asks for more modes than ``min(widths)``.
    """
    widths = _widths(widths)
    values = np.asarray(u, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"u must be 1-D (one strength per mode); got shape {values.shape}")
    h = len(widths) - 1
    strengths = np.tile(np.abs(values) ** (1.0 / h), (h, 1))
    strengths[-1] *= np.where(values < 0, -1.0, 1.0)
    return aligned(widths, strengths, rng=rng)
