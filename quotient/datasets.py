"""Data sets: inputs ``X`` and targets ``Y`` of a regression, one sample per column.

A :class:`Dataset` holds ``X`` of shape ``(d_0, n)`` and ``Y`` of shape ``(d_h, n)``, validated
once (real, finite, as many samples in both, ``X X^T`` invertible so that the inputs can be
whitened); :meth:`Dataset.problem` is the :class:`~quotient.problem.Problem` of a deep linear
network with given hidden widths on it (:meth:`~quotient.problem.Problem.from_data`: inputs
whitened, the flow in the singular frame of ``Sigma_yx``). :func:`from_arrays` loads any arrays,
:func:`digits` scikit-learn's bundled hand-written digits (no download).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import as_array, check_widths
from .problem import Problem, check_data

__all__ = ["Dataset", "from_arrays", "digits", "one_hot"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and targets, one sample per column; build with :func:`from_arrays` or :func:`digits`.

    The constructor stores its arguments as read-only float64 (``features`` int) arrays and does
    not validate them: :func:`from_arrays` does.

    Parameters
    ----------
    X : array_like, shape (d_0, n)
        Inputs, one sample per column; ``X X^T`` must be invertible.
    Y : array_like, shape (d_h, n)
        Targets, one sample per column.
    name : str
        A name for summaries; default ``"data"``.
    features : array_like of int, shape (d_0,), optional
        Which rows of the source's inputs the rows of ``X`` are; default ``arange(d_0)``.

    Attributes
    ----------
    X : ndarray, shape (d_0, n)
        Inputs (float64, read-only); ``X X^T`` is invertible.
    Y : ndarray, shape (d_h, n)
        Targets (float64, read-only).
    name : str
        A name for summaries.
    features : ndarray of int, shape (d_0,)
        Which columns of the source's inputs the rows of ``X`` are (``arange(d_0)`` unless
        some were dropped, as :func:`digits` drops its constant pixels).

    Examples
    --------
    >>> import numpy as np
    >>> from quotient.datasets import from_arrays
    >>> data = from_arrays(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]), np.array([[1.0, 2.0, 3.0]]))
    >>> data
    Dataset('data', d_0=2, d_h=1, n=3)
    >>> data.widths(4)
    (2, 4, 1)
    """

    X: np.ndarray
    Y: np.ndarray
    name: str = "data"
    features: np.ndarray = None

    def __post_init__(self):
        for field_name in ("X", "Y"):
            array = np.array(getattr(self, field_name), dtype=np.float64)
            array.flags.writeable = False
            object.__setattr__(self, field_name, array)
        features = np.arange(self.X.shape[0]) if self.features is None else np.array(self.features, dtype=int)
        features.flags.writeable = False
        object.__setattr__(self, "features", features)

    @property
    def n_inputs(self) -> int:
        """``d_0``."""
        return self.X.shape[0]

    @property
    def n_outputs(self) -> int:
        """``d_h``."""
        return self.Y.shape[0]

    @property
    def n_samples(self) -> int:
        """``n``."""
        return self.X.shape[1]

    def widths(self, hidden) -> tuple[int, ...]:
        """``(d_0, *hidden, d_h)``: the architecture with these hidden widths ``(d_1, ..., d_{h-1})``.

        Parameters
        ----------
        hidden : int or sequence of int
            Hidden widths ``(d_1, ..., d_{h-1})``; one int for one hidden layer, ``()`` for a
            single layer.

        Returns
        -------
        tuple of int
            ``(d_0, d_1, ..., d_{h-1}, d_h)`` with ``d_0 = n_inputs`` and ``d_h = n_outputs``.

        Raises
        ------
        TypeError
            If ``hidden`` is neither an int nor a sequence.
        ValueError
            If a hidden width is not a positive integer.
        """
        if isinstance(hidden, (int, np.integer)):
            hidden = (hidden,)
        try:
            hidden = tuple(hidden)
        except TypeError:
            raise TypeError(f"hidden must be a sequence of hidden widths (d_1, ..., d_{{h-1}}); got {hidden!r}") from None
        return check_widths((self.n_inputs, *hidden, self.n_outputs), "widths (d_0, *hidden, d_h)")

    def problem(self, hidden) -> Problem:
        """The square-loss problem ``1/2 ||Y - W_h ... W_1 X||_F^2`` with inputs whitened.

        Parameters
        ----------
        hidden : sequence of int
            Hidden widths ``(d_1, ..., d_{h-1})``; ``()`` for one layer.

        Returns
        -------
        Problem
            :meth:`Problem.from_data(X, Y, (d_0, *hidden, d_h)) <quotient.problem.Problem.from_data>`.
            Its points are in the singular frame; ``problem.to_data_frame`` gives the network on
            the raw inputs and ``problem.data_loss`` its loss there.

        Raises
        ------
        TypeError, ValueError
            If ``hidden`` is not a sequence of positive integers (see :meth:`widths`).
        """
        return Problem.from_data(self.X, self.Y, self.widths(hidden))

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, d_0={self.n_inputs}, d_h={self.n_outputs}, n={self.n_samples})"


def from_arrays(X, Y, *, samples: str = "columns", name: str = "data", rcond: float = 1e-10) -> Dataset:
    """Load any data ``(X, Y)`` for the square loss, validated once.

    Parameters
    ----------
    X : array_like
        Inputs: shape ``(d_0, n)``, or ``(n, d_0)`` with ``samples="rows"``. numpy, torch, JAX
        or any array-protocol object.
    Y : array_like
        Targets: shape ``(d_h, n)``, or ``(n, d_h)`` with ``samples="rows"``. For class labels,
        pass :func:`one_hot` of them.
    samples : {"columns", "rows"}
        Whether samples are the columns (quotient's convention, ``Y ~ W X``) or the rows
        (scikit-learn's and torch's, ``Y ~ X W^T``).
    name : str
        Name of the data set.
    rcond : float
        ``X X^T`` counts as singular when its smallest eigenvalue is at most ``rcond`` times its
        largest (as :meth:`~quotient.problem.Problem.from_data`).

    Returns
    -------
    Dataset
        ``X`` of shape ``(d_0, n)`` and ``Y`` of shape ``(d_h, n)`` (samples as columns whatever
        ``samples`` was), float64 and read-only.

    Raises
    ------
    TypeError
        If ``X`` or ``Y`` does not hold real numbers.
    ValueError
        If ``samples`` is neither ``"columns"`` nor ``"rows"``, an array is not a matrix, the
        sample counts differ, an entry is NaN or infinite, or ``X X^T`` is singular (the
        inputs cannot be whitened: fewer samples than inputs, linearly dependent inputs, or
        inputs that are zero in every sample, which the message names).
    """
    if samples not in ("columns", "rows"):
        raise ValueError(f"samples must be 'columns' (X is (d_0, n)) or 'rows' (X is (n, d_0)); got {samples!r}")
    arrays = [as_array(X, "X"), as_array(Y, "Y")]
    if samples == "rows":
        arrays = [array.T if array.ndim == 2 else array for array in arrays]
    X, Y, _ = check_data(*arrays, rcond=rcond)
    return Dataset(X, Y, str(name))


def one_hot(labels, n_classes=None) -> np.ndarray:
    """Class labels ``0..k-1`` as one-hot columns, shape ``(k, n)``.

    Parameters
    ----------
    labels : array_like of int, shape (n,)
        The class of each sample.
    n_classes : int, optional
        ``k``; by default ``max(labels) + 1``.

    Returns
    -------
    ndarray
        Float64 of shape ``(k, n)``: column ``j`` is the unit vector ``e_{labels[j]}``.

    Raises
    ------
    ValueError
        If ``labels`` is not a 1-D array of non-negative integers below ``n_classes``.

    Examples
    --------
    >>> one_hot([0, 2, 1])
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]])
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise ValueError(f"labels must be a 1-D array of non-negative integers; got dtype {labels.dtype}, shape {labels.shape}")
    k = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    if labels.size and labels.max() >= k:
        raise ValueError(f"labels must be below n_classes = {k}; got a label {labels.max()}")
    return np.eye(k)[labels].T


def digits() -> Dataset:
    """scikit-learn's hand-written digits: 8 x 8 images of the digits 0-9, targets one-hot.

    Returns
    -------
    Dataset
        ``X`` of shape ``(61, 1797)``: the pixel intensities (0 to 16) of the 61 pixels that are
        not zero in every image (pixels 0, 32 and 39, in row-major order, are always zero and
        would make ``X X^T`` singular; ``features`` lists the pixels kept). ``Y`` of shape
        ``(10, 1797)``: the one-hot digit.

    Raises
    ------
    ImportError
        If scikit-learn is not installed (``pip install 'quotient[data]'``).

    Notes
    -----
    The data ship with scikit-learn (``sklearn.datasets.load_digits``); nothing is downloaded.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("quotient.datasets.digits needs scikit-learn, which is not installed: pip install 'quotient[data]'") from None
    bunch = load_digits()
    pixels = bunch.data.T  # (64, 1797)
    features = np.flatnonzero(pixels.any(axis=1))
    X, Y, _ = check_data(pixels[features], one_hot(bunch.target, 10))
    return Dataset(X, Y, "digits", features)
