"""Points of parameter space: layer tuples, the adjacency matrix and flat vectors.

A point is a tuple of layer arrays ``(W_1, ..., W_h)`` with ``W_i`` of shape ``(d_i, d_{i-1})``;
the widths ``(d_0, ..., d_h)`` are read off the shapes. A batch of points (a trajectory, an
ensemble, fiber samples) is the same tuple with one leading axis on every layer.

Adjacency form. Nodes are ordered input first: block ``0`` holds the ``d_0`` input nodes, block
``i`` the ``d_i`` nodes after layer ``i``. The adjacency matrix ``A`` (``n_v = sum_i d_i``) is the
lower block shift with ``A[block i, block i-1] = W_i`` and zeros elsewhere, so ``A[p, q]`` is the
weight of the edge ``q -> p`` and one step of signal propagation is ``x <- A x``. Then
``A^k[block i+k, block i] = W_{i+k} ... W_{i+1}``, ``A^h[block h, block 0] = W_h ... W_1`` and
``A^{h+1} = 0``.
"""

from __future__ import annotations

import numbers

import numpy as np

Point = tuple[np.ndarray, ...]

__all__ = [
    "Point",
    "as_array",
    "as_point",
    "check_widths",
    "widths_of",
    "n_params",
    "end_to_end",
    "forward_products",
    "backward_products",
    "conserved_quantities",
    "block_slices",
    "to_adjacency",
    "from_adjacency",
    "to_vector",
    "from_vector",
]


def check_positive(name: str, value, *, zero: bool = False) -> float:
    """A finite real number ``> 0`` (``>= 0`` with ``zero``), as a float; the tolerances' check.

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If it is NaN, infinite, or not positive (negative with ``zero``).
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"{name} must be a {'non-negative' if zero else 'positive'} finite number; got {value!r}")
    return float(value)


def check_count(name: str, value, minimum: int = 1) -> int:
    """An integer ``>= minimum`` (iterations, sweeps, samples), as an int."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_widths(widths, name: str = "widths") -> tuple[int, ...]:
    """Validate an architecture ``(d_0, ..., d_h)`` and return it as a tuple of ints.

    Parameters
    ----------
    widths : sequence of int
        Layer widths ``(d_0, ..., d_h)``, input first: at least two, each a positive integer.
    name : str
        Name of the argument, used in error messages.

    Returns
    -------
    tuple of int
        The widths, length ``h + 1``.

    Raises
    ------
    TypeError
        If ``widths`` is a string or not iterable.
    ValueError
        If fewer than two widths are given or a width is not a positive integer.
    """
    if isinstance(widths, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of positive integers (d_0, ..., d_h); got {widths!r}")
    try:
        values = tuple(widths)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of positive integers (d_0, ..., d_h); got {widths!r}") from None
    if len(values) < 2:
        raise ValueError(f"{name} must hold at least two widths (d_0, d_1) for one layer; got {values!r}")
    for k, d in enumerate(values):
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d <= 0:
            raise ValueError(f"{name}[{k}] must be a positive integer; got {d!r} in {values!r}")
    return tuple(int(d) for d in values)


def as_array(value, name: str = "array") -> np.ndarray:
    """An array of numpy, torch, JAX or any array-protocol library as a numpy array.

    Parameters
    ----------
    value : array_like
        A numpy array (returned as it is), a torch tensor (detached from its autograd graph and,
        on an accelerator, copied to host memory: ``value.detach().cpu().numpy()``; bfloat16,
        which numpy lacks, becomes float32), another library's array (``np.asarray`` through
        ``__array__``, e.g. JAX, else ``np.from_dlpack``), or anything ``np.asarray`` reads.
    name : str
        Name of the argument, used in error messages.

    Returns
    -------
    ndarray
        The values, dtype kept (sharing memory with ``value`` where numpy can).

    Raises
    ------
    TypeError
        If an array of another library cannot be read (a dtype numpy lacks, a traced JAX value).
    """
    if isinstance(value, np.ndarray) or not _is_array_protocol(value):
        return np.asarray(value)
    if all(callable(getattr(value, method, None)) for method in ("detach", "cpu", "numpy")) and hasattr(value, "requires_grad"):
        tensor = value.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        try:
            return tensor.resolve_conj().numpy()
        except (TypeError, RuntimeError) as error:
            raise TypeError(f"{name} is a tensor of dtype {tensor.dtype} that numpy cannot read ({error})") from None
    try:
        if hasattr(value, "__array__"):
            return np.asarray(value)
        return np.from_dlpack(value)
    except (TypeError, ValueError, RuntimeError, BufferError) as error:
        raise TypeError(f"{name} ({type(value).__name__}) cannot be read as an array: {error}") from None


def _is_array_protocol(layer) -> bool:
    """Whether ``layer`` is an array of another library (torch, JAX, ...): it has ``__array__`` or ``__dlpack__``."""
    return hasattr(layer, "__array__") or hasattr(layer, "__dlpack__")


def as_point(point, name: str = "point", widths=None, batch: bool = False) -> Point:
    """Validate a point and return it as a tuple of float64 arrays.

    Parameters
    ----------
    point : sequence of array_like
        Layers ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})`` (with one leading batch axis
        when ``batch`` is true). Real numeric arrays are converted to float64. Layers may be numpy
        arrays, torch tensors (detached, and copied to the CPU if they live on an accelerator), JAX
        arrays or any object of the array protocol (``__array__`` or ``__dlpack__``); all pass the
        same checks.
    name : str
        Name of the argument, used in error messages.
    widths : sequence of int, optional
        Expected widths ``(d_0, ..., d_h)``.
    batch : bool
        Whether every layer carries one leading batch axis of a common length.

    Returns
    -------
    tuple of ndarray
        The layers as float64 arrays, ``W_i`` of shape ``(d_i, d_{i-1})`` (``(batch, d_i, d_{i-1})``
        with ``batch``); float64 numpy arrays are returned as they are, not copied.

    Raises
    ------
    TypeError
        If ``point`` is not a sequence of real arrays.
    ValueError
        If a layer has the wrong number of axes, consecutive layers do not chain
        (``W_{i+1}.shape[1] != W_i.shape[0]``), the widths differ from ``widths``, or an entry is
        NaN or infinite.
    """
    if isinstance(point, np.ndarray) or not isinstance(point, (tuple, list)):
        raise TypeError(
            f"{name} must be a tuple of layer arrays (W_1, ..., W_h); got {type(point).__name__}"
        )
    if len(point) == 0:
        raise ValueError(f"{name} must hold at least one layer; got an empty tuple")
    ndim = 3 if batch else 2
    layers = []
    for i, layer in enumerate(point, start=1):
        array = as_array(layer, f"{name}: layer W_{i}")
        if array.dtype.kind not in "fiu":  # bool is kind "b"
            raise TypeError(f"{name}: layer W_{i} must hold real numbers; got dtype {array.dtype}")
        if array.ndim != ndim:
            expected = "(batch, d_i, d_{i-1})" if batch else "(d_i, d_{i-1})"
            raise ValueError(f"{name}: layer W_{i} must have shape {expected}; got shape {array.shape}")
        # NaN and inf propagate through a sum, so a finite sum proves every entry finite (and is
        # cheaper than the entrywise test, which runs only when the sum is not finite)
        if not np.isfinite(array.sum()) and not np.isfinite(array).all():
            raise ValueError(f"{name}: layer W_{i} contains NaN or infinite entries")
        layers.append(array if array.dtype.char == "d" else array.astype(np.float64))
    for i in range(1, len(layers)):
        if layers[i].shape[-1] != layers[i - 1].shape[-2]:
            raise ValueError(
                f"{name}: layers do not chain: W_{i + 1} has shape {layers[i].shape[-2:]} but W_{i} has "
                f"shape {layers[i - 1].shape[-2:]} (W_{i + 1} needs {layers[i - 1].shape[-2]} columns)"
            )
    if batch and len({layer.shape[0] for layer in layers}) != 1:
        raise ValueError(f"{name}: layers have different batch lengths {[layer.shape[0] for layer in layers]}")
    if widths is not None:
        expected_widths = tuple(widths)
        found = widths_of(layers)
        if found != expected_widths:
            raise ValueError(f"{name} has widths {found}, but widths {expected_widths} were expected")
    return tuple(layers)


def widths_of(point) -> tuple[int, ...]:
    """Widths ``(d_0, ..., d_h)`` of a point (or of a batch of points).

    Parameters
    ----------
    point : tuple of ndarray
        Layers ``W_i`` of shape ``(d_i, d_{i-1})``, or ``(..., d_i, d_{i-1})`` for a batch; only the
        last two axes are read and the chaining is not checked.

    Returns
    -------
    tuple of int
        ``(d_0, ..., d_h)``: the column count of ``W_1`` then the row count of every layer.

    Examples
    --------
    >>> import numpy as np
    >>> widths_of((np.zeros((3, 2)), np.zeros((1, 3))))
    (2, 3, 1)
    """
    return (point[0].shape[-1],) + tuple(layer.shape[-2] for layer in point)


def n_params(widths) -> int:
    """Number of parameters ``N = sum_i d_i d_{i-1}``.

    Parameters
    ----------
    widths : sequence of int
        Layer widths ``(d_0, ..., d_h)``, input first (not validated).

    Returns
    -------
    int
        ``N``, the length of :func:`to_vector`'s output.

    Examples
    --------
    >>> n_params((2, 3, 1))
    9
    """
    return sum(widths[i] * widths[i - 1] for i in range(1, len(widths)))


def forward_products(point) -> list:
    """Forward partial products ``F_j = W_j ... W_1`` for ``j = 0..h``.

    Parameters
    ----------
    point : tuple of ndarray
        Layers ``W_i`` of shape ``(d_i, d_{i-1})`` (or a batch, ``(batch, d_i, d_{i-1})``); not
        validated.

    Returns
    -------
    list
        ``h + 1`` entries: ``F_0`` is the identity and is returned as ``None`` so that callers can
        skip the product; ``F_j`` (``j >= 1``) is an array of shape ``(d_j, d_0)`` (batches broadcast
        along leading axes), ``F_h`` the end-to-end map.
    """
    products = [None, point[0]]
    for layer in point[1:]:
        products.append(layer @ products[-1])
    return products


def backward_products(point) -> list:
    """Backward partial products ``B_j = W_h ... W_{j+1}`` for ``j = 0..h``.

    Parameters
    ----------
    point : tuple of ndarray
        Layers ``W_i`` of shape ``(d_i, d_{i-1})`` (or a batch, ``(batch, d_i, d_{i-1})``); not
        validated.

    Returns
    -------
    list
        ``h + 1`` entries: ``B_j`` (``j < h``) an array of shape ``(d_h, d_j)`` (batches broadcast
        along leading axes), ``B_0`` the end-to-end map; ``B_h`` is the identity and is returned as
        ``None``.
    """
    h = len(point)
    products = [None] * (h + 1)
    products[h - 1] = point[h - 1]
    for j in range(h - 2, -1, -1):
        products[j] = products[j + 1] @ point[j]
    return products


def _check_chain(point, name: str = "point") -> Point:
    """A cheap structural check for the kernels: a non-empty tuple of arrays whose shapes chain.

    Returns the layers as numpy arrays (torch and JAX arrays converted as in :func:`as_point`,
    dtypes kept).
    """
    if not isinstance(point, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of layer arrays (W_1, ..., W_h); got {type(point).__name__}")
    if not point:
        raise ValueError(f"{name} must hold at least one layer; got an empty tuple")
    point = tuple(
        as_array(layer, f"{name}: layer W_{i}") if not isinstance(layer, np.ndarray) and _is_array_protocol(layer) else layer
        for i, layer in enumerate(point, start=1)
    )
    for i, layer in enumerate(point, start=1):
        if getattr(layer, "ndim", 0) < 2:
            raise TypeError(f"{name}: layer W_{i} must be an array of at least 2 axes; got {type(layer).__name__} {np.shape(layer)}")
        if i > 1 and layer.shape[-1] != point[i - 2].shape[-2]:
            raise ValueError(f"{name}: layer W_{i} of shape {layer.shape} does not follow W_{i - 1} of shape {point[i - 2].shape}")
    return point


def end_to_end(point) -> np.ndarray:
    """End-to-end map ``W = W_h ... W_1`` of shape ``(d_h, d_0)`` (batched if the point is).

    Parameters
    ----------
    point : sequence of array_like
        Layers ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch with the same
        leading axes on every layer, ``(..., d_i, d_{i-1})``. numpy, torch or JAX arrays; the dtype
        is kept.

    Returns
    -------
    ndarray
        ``W_h ... W_1``, shape ``(d_h, d_0)`` (``(..., d_h, d_0)`` for a batch).

    Raises
    ------
    TypeError
        If ``point`` is not a tuple or list of arrays of at least two axes.
    ValueError
        If ``point`` is empty or consecutive layers do not chain.

    Examples
    --------
    >>> import numpy as np
    >>> W1 = np.array([[1.0, 2.0], [0.0, 1.0], [1.0, 0.0]])  # (d_1, d_0) = (3, 2)
    >>> W2 = np.array([[1.0, -1.0, 2.0]])                      # (d_2, d_1) = (1, 3)
    >>> end_to_end((W1, W2))
    array([[3., 1.]])
    """
    point = _check_chain(point)
    product = point[0]
    for layer in point[1:]:
        product = layer @ product
    return product


def conserved_quantities(point) -> tuple[np.ndarray, ...]:
    """Balancedness matrices ``C_i = W_{i+1}^T W_{i+1} - W_i W_i^T``, ``i = 1..h-1``.

    Parameters
    ----------
    point : sequence of array_like
        Layers ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch with the same
        leading axes on every layer, ``(..., d_i, d_{i-1})``.

    Returns
    -------
    tuple of ndarray
        ``h - 1`` symmetric arrays of shape ``(d_i, d_i)`` (batched if the point is).

    Notes
    -----
    Along the gradient flow of any loss of the end-to-end map, ``dC_i/dt = 0``. In the adjacency
    form they are the hidden diagonal blocks of ``A^T A - A A^T``. They are, up to sign, the moment
    map of the action of ``GL(d_1) x ... x GL(d_{h-1})`` (Du, Hu & Lee 2018; Arora et al. 2018).

    Their ``sum_i d_i (d_i + 1) / 2`` entries are not always independent, nor all the conservation
    laws (:func:`quotient.count_conservation_laws` counts both, by Marcotte, Gribonval & Peyre 2023):

    - the entries of ``C_i`` are dependent when ``d_i > d_{i-1} + d_{i+1}``, since
      ``C_i = M^T diag(I, -I) M`` with ``M = [W_{i+1}; W_i^T]`` of rank ``<= d_{i-1} + d_{i+1}``; for
      two layers they are still all the laws, ``d_1 (d_1 + 1) / 2 - k (k + 1) / 2`` of them,
      ``k = max(0, d_1 - d_0 - d_2)`` (e.g. ``(1, 3, 1)``: 5 laws, not 6);
    - with scalar input and output (``d_0 = d_h = 1``) there are ``N - 1`` laws, more than the ``C_i``
      give from depth 3 on: ``(1, 3, 3, 1)`` has 14 laws, 12 from the ``C_i``; ``(1, 2, 3, 2, 1)`` 15, 12.

    On the random architectures of Marcotte et al. (depth 2 to 4, widths 2 to 5) the ``C_i`` are
    all the laws.

    Raises
    ------
    TypeError
        If ``point`` is not a tuple or list of arrays of at least two axes.
    ValueError
        If ``point`` is empty or consecutive layers do not chain.

    Examples
    --------
    A point with ``W_2^T W_2 = W_1 W_1^T`` is balanced:

    >>> import numpy as np
    >>> W1 = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> W2 = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> conserved_quantities((W1, W2))
    (array([[0., 0.],
           [0., 0.]]),)
    >>> conserved_quantities((W1, 2 * W2))[0]
    array([[ 3.,  0.],
           [ 0., 12.]])
    """
    point = _check_chain(point)
    return tuple(
        np.swapaxes(point[i + 1], -1, -2) @ point[i + 1] - point[i] @ np.swapaxes(point[i], -1, -2)
        for i in range(len(point) - 1)
    )


def block_slices(widths) -> list[slice]:
    """Slices of the node blocks ``0..h`` of the adjacency matrix (input block first).

    Parameters
    ----------
    widths : sequence of int
        Layer widths ``(d_0, ..., d_h)`` (not validated).

    Returns
    -------
    list of slice
        ``h + 1`` slices; block ``i`` covers the ``d_i`` rows (and columns) ``sum_{j<i} d_j`` to
        ``sum_{j<=i} d_j - 1`` of the ``(n_v, n_v)`` adjacency matrix.

    Examples
    --------
    >>> block_slices((2, 3, 1))
    [slice(0, 2, None), slice(2, 5, None), slice(5, 6, None)]
    """
    offsets = np.concatenate([[0], np.cumsum(widths)])
    return [slice(int(offsets[i]), int(offsets[i + 1])) for i in range(len(widths))]


def to_adjacency(point) -> np.ndarray:
    """Adjacency matrix ``A`` of shape ``(n_v, n_v)``, ``n_v = sum_i d_i``.

    ``A[block i, block i-1] = W_i`` (input block first); every other block is zero.

    Parameters
    ----------
    point : sequence of array_like
        Layers ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})`` (one point, not a batch),
        validated as in :func:`as_point`.

    Returns
    -------
    ndarray
        ``A``, float64 of shape ``(n_v, n_v)``: ``A[p, q]`` is the weight of the edge ``q -> p``, and
        ``A^h[block h, block 0]`` is the end-to-end map.

    Raises
    ------
    TypeError, ValueError
        If ``point`` is not a valid point (see :func:`as_point`).

    Examples
    --------
    >>> import numpy as np
    >>> W1 = np.array([[1.0, 2.0]])      # (d_1, d_0) = (1, 2)
    >>> W2 = np.array([[3.0], [4.0]])    # (d_2, d_1) = (2, 1)
    >>> A = to_adjacency((W1, W2))
    >>> A
    array([[0., 0., 0., 0., 0.],
           [0., 0., 0., 0., 0.],
           [1., 2., 0., 0., 0.],
           [0., 0., 3., 0., 0.],
           [0., 0., 4., 0., 0.]])
    >>> from_adjacency(A, (2, 1, 2))[1]
    array([[3.],
           [4.]])
    """
    point = as_point(point)
    widths = widths_of(point)
    blocks = block_slices(widths)
    n_v = sum(widths)
    A = np.zeros((n_v, n_v))
    for i, layer in enumerate(point, start=1):
        A[blocks[i], blocks[i - 1]] = layer
    return A


def from_adjacency(A, widths) -> Point:
    """Layers ``(W_1, ..., W_h)`` read off the block shift of an adjacency matrix.

    Inverse of :func:`to_adjacency`.

    Parameters
    ----------
    A : array_like
        Adjacency matrix of shape ``(n_v, n_v)``, ``n_v = sum_i d_i``, zero outside the blocks
        ``A[block i, block i-1]``.
    widths : sequence of int
        Layer widths ``(d_0, ..., d_h)`` that fix the blocks (see :func:`block_slices`).

    Returns
    -------
    tuple of ndarray
        Layers ``W_i = A[block i, block i-1]``, float64 copies of shape ``(d_i, d_{i-1})``.

    Raises
    ------
    TypeError
        If ``widths`` is not a sequence (see :func:`check_widths`).
    ValueError
        If ``A`` is not square of size ``sum(widths)``, is not finite, or has a nonzero entry
        outside the block-shift pattern.
    """
    widths = check_widths(widths)
    A = np.asarray(A, dtype=np.float64)
    n_v = sum(widths)
    if A.shape != (n_v, n_v):
        raise ValueError(f"A must have shape ({n_v}, {n_v}) for widths {widths}; got {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError("A contains NaN or infinite entries")
    blocks = block_slices(widths)
    layers = tuple(A[blocks[i], blocks[i - 1]].copy() for i in range(1, len(widths)))
    if np.count_nonzero(A) != sum(np.count_nonzero(layer) for layer in layers):
        raise ValueError("A has nonzero entries outside the block-shift pattern A[block i, block i-1]")
    return layers


def to_vector(point) -> np.ndarray:
    """Flatten a point to ``(N,)`` (or a batch to ``(batch, N)``): ``W_1`` row-major first.

    Parameters
    ----------
    point : sequence of array_like
        Layers ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, or a batch with the same
        leading axes on every layer.

    Returns
    -------
    ndarray
        Shape ``(N,)``, ``N = sum_i d_i d_{i-1}`` (``(..., N)`` for a batch): the entries of
        ``W_1`` row by row, then ``W_2``, ... (dtype kept).

    Raises
    ------
    TypeError
        If ``point`` is not a tuple or list of arrays of at least two axes.
    ValueError
        If ``point`` is empty or consecutive layers do not chain.

    Examples
    --------
    >>> import numpy as np
    >>> x = to_vector((np.array([[1.0, 2.0]]), np.array([[3.0], [4.0]])))
    >>> x
    array([1., 2., 3., 4.])
    >>> from_vector(x, (2, 1, 2))[1]
    array([[3.],
           [4.]])
    """
    point = _check_chain(point)
    lead = point[0].shape[:-2]
    return np.concatenate([layer.reshape(lead + (-1,)) for layer in point], axis=-1)


def from_vector(x, widths) -> Point:
    """Inverse of :func:`to_vector`: ``(N,)`` -> point, ``(batch, N)`` -> batch of points.

    Parameters
    ----------
    x : array_like
        Flat parameters of shape ``(N,)`` or ``(..., N)``, ``N = sum_i d_i d_{i-1}``, ordered as
        :func:`to_vector` writes them.
    widths : sequence of int
        Layer widths ``(d_0, ..., d_h)``.

    Returns
    -------
    tuple of ndarray
        Layers ``W_i`` of shape ``(d_i, d_{i-1})`` (``(..., d_i, d_{i-1})`` for a batch), float64;
        views of ``x`` where possible.

    Raises
    ------
    TypeError
        If ``widths`` is not a sequence (see :func:`check_widths`).
    ValueError
        If ``widths`` is not a valid architecture or the last axis of ``x`` is not ``N`` long.
    """
    widths = check_widths(widths)
    x = np.asarray(x, dtype=np.float64)
    n = n_params(widths)
    if x.shape[-1] != n:
        raise ValueError(f"x must have last axis of length N = {n} for widths {widths}; got shape {x.shape}")
    lead = x.shape[:-1]
    layers = []
    start = 0
    for i in range(1, len(widths)):
        size = widths[i] * widths[i - 1]
        layers.append(x[..., start : start + size].reshape(lead + (widths[i], widths[i - 1])))
        start += size
    return tuple(layers)
