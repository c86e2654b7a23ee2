"""Parameter space as a geomstats manifold with a hidden symmetry group and its quotient.

The only module of ``quotient`` that imports geomstats. Usage::

    from quotient.bundle import ParameterSpace, frechet_mean, quotient_geodesic

    space = ParameterSpace((3, 4, 4, 2))     # flat points of length N, Euclidean metric, O(d) action
    quotient = space.equip_with_quotient()   # space.fiber_bundle: OrthogonalBundle
    quotient.metric.dist(x, y)               # min over R of ||x - R . y||, R in O(d_1) x ... x O(d_{h-1})
    quotient_geodesic(a, b, 11)              # points along the quotient geodesic (layer tuples)
    frechet_mean(points)                     # Frechet mean orbit of points (geomstats's FrechetMean)

    gl = ParameterSpace((3, 4, 4, 2), group="gl")
    rank_matrices = gl.equip_with_quotient() # BalancedRankMatrices; gl.fiber_bundle: GeneralLinearBundle
    ParameterSpace((3, 4, 4, 2), group="rescaling").equip_with_quotient()  # None; RescalingBundle

``group`` is a name or a :mod:`quotient.groups` object; the actions check elements and act with it,
the bundles take their vertical spaces from it.

Which group. The loss is invariant under ``GL(d_1) x ... x GL(d_{h-1})``, but only its orthogonal
subgroup ``K = O(d_1) x ... x O(d_{h-1})`` preserves the Euclidean metric of parameter space. So
only ``K`` makes the quotient map a Riemannian submersion and induces a quotient metric
(``d([x], [y]) = min_{R in K} ||x - R . y||``); the GL quotient (the end-to-end map,
:func:`quotient.projection.quotient_map`) carries no metric induced this way. This bundle is the
``K``-bundle; its vertical space is ``{xi . W : xi_i skew}``, a subspace of the GL vertical space.

Representation. Points are flat vectors of length ``N = sum_i d_i d_{i-1}`` in the order of
:func:`quotient.to_vector`, and the total space is geomstats's ``Euclidean(N)``, whose metric is the
Frobenius metric of the layers. A ``ProductManifold`` of ``Matrices`` factors would give the same
metric, but it stacks its points into a ``(h, d, d)`` array when all layers have one shape and
flattens them otherwise, so a point's shape would depend on the widths.

The quotient ``R^N / K`` has no global coordinates (its invariants include the entries of every
word in the layers and their transposes), so, as geomstats does for Kendall shape space, a point of
the quotient is represented by any point of its orbit: :meth:`OrthogonalBundle.riemannian_submersion`
and ``lift`` are the identity on representatives, two representatives are the same quotient point
when their quotient distance is zero, and ``align`` puts a representative in optimal position.
Quotient geodesics are total-space straight lines with a horizontal direction.

Alignment and the distance. ``align(y, x)`` minimises ``||R . y - x||`` over ``R`` in ``K``. For
``h = 2`` this is one orthogonal Procrustes problem, solved exactly. For ``h >= 3`` the blocks are
coupled and the problem has several local minima (research/ecosystem.md section 2.3 found 4 among
30 starts at widths (8, 6, 6, 6, 8)); the bundle runs the multi-start block-coordinate Procrustes
search of :func:`quotient.orbit.align_orthogonal` in both directions, ``y`` onto ``x`` and ``x``
onto ``y`` (whose answer ``R'`` gives ``R = R'^T``), from the same starts, and keeps the better.
Both orders of a pair therefore search the same local minima, so the quotient distance is
symmetric to rounding (not only when the search finds the global minimum), and it is never
above what either one-sided search finds. It is a local method: the global minimum is likely,
not certain (100 random pairs at widths (3, 4, 4, 3) and (3, 4, 4, 4, 3): none above the best of
80 fully converged random starts; docs/quotient.md).

geomstats's ``FiberBundle.is_horizontal`` and ``is_vertical`` reduce over the last two axes and so
fail on flat points (``AxisError``); this bundle overrides them to reduce over the last axis.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ._numerics import squared_norm
from .groups import GeneralLinear, Orthogonal, Rescaling, as_group
from .network import (
    as_point,
    check_count,
    check_positive,
    check_widths,
    end_to_end,
    from_vector,
    n_params,
    to_vector,
    widths_of,
)
from .orbit import balanced_lift
from .projection import pushforward
from .rank_manifold import RankManifold


def _import_geomstats():
    # geomstats's _logging module calls logging.basicConfig and sets the root logger to INFO on
    # import; undo both so that importing quotient.bundle leaves the user's logging alone.
    # Its backend importer also emits an ImportWarning (exec_module not found), an error under -W error.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="BackendImporter.exec_module", category=ImportWarning)
            import geomstats._backend as backend
            from geomstats.geometry.euclidean import CanonicalEuclideanMetric, Euclidean
            from geomstats.geometry.fiber_bundle import FiberBundle
            from geomstats.geometry.group_action import GroupAction
            from geomstats.geometry.manifold import Manifold, register_quotient
            from geomstats.geometry.quotient_metric import QuotientMetric
            from geomstats.geometry.riemannian_metric import RiemannianMetric
    finally:
        root.setLevel(level)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
    if backend.BACKEND_NAME != "numpy":
        raise ImportError(
            f"quotient.bundle needs geomstats's numpy backend; GEOMSTATS_BACKEND selected "
            f"{backend.BACKEND_NAME!r}. Unset GEOMSTATS_BACKEND (or set it to 'numpy') before the "
            "first import of geomstats."
        )
    return (
        CanonicalEuclideanMetric,
        Euclidean,
        FiberBundle,
        GroupAction,
        register_quotient,
        QuotientMetric,
        Manifold,
        RiemannianMetric,
    )


(
    CanonicalEuclideanMetric,
    Euclidean,
    FiberBundle,
    GroupAction,
    register_quotient,
    QuotientMetric,
    Manifold,
    RiemannianMetric,
) = _import_geomstats()

__all__ = [
    "ParameterSpace",
    "HiddenGroupAction",
    "HiddenOrthogonalAction",
    "HiddenGeneralLinearAction",
    "HiddenRescalingAction",
    "OrthogonalBundle",
    "GeneralLinearBundle",
    "RescalingBundle",
    "BalancedRankMatrices",
    "BalancedLiftMetric",
    "quotient_geodesic",
    "frechet_mean",
]


def _layers_of(x, widths):
    """Flat ``(..., N)`` -> list of single points (each a tuple of layers) and the batch shape."""
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:-1]
    flat = x.reshape((-1, x.shape[-1]))
    return [from_vector(row, widths) for row in flat], lead


def _pairs(tangent_vec, base_point, size: int):
    """Broadcast a batch of flat tangent vectors ``(..., size)`` against flat base points.

    Returns the list of ``(tangent, base)`` rows and the batch shape of the result.
    """
    tangent_vec = np.asarray(tangent_vec, dtype=np.float64)
    base_point = np.asarray(base_point, dtype=np.float64)
    lead = np.broadcast_shapes(tangent_vec.shape[:-1], base_point.shape[:-1])
    tangents = np.broadcast_to(tangent_vec, lead + (tangent_vec.shape[-1],)).reshape((-1, tangent_vec.shape[-1]))
    bases = np.broadcast_to(base_point, lead + (size,)).reshape((-1, size))
    return list(zip(tangents, bases)), lead


class HiddenGroupAction(GroupAction):
    """The action ``W_i -> G_i W_i G_{i-1}^{-1}`` of a hidden group on flat points.

    A group element is a tuple ``(G_1, ..., G_{h-1})`` of ``(d_i, d_i)`` arrays, checked to belong
    to the group (:meth:`quotient.groups.HiddenGroup.check`); points are flat ``(..., N)`` arrays.
    One subclass per group, so that geomstats's quotient registry (keyed by the action's type)
    finds each group's bundle.

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)`` of the flat points acted on (``N = sum_i d_i d_{i-1}``).
    group : str or HiddenGroup, optional
        The group (:func:`quotient.groups.as_group`); default the subclass's (``"orthogonal"``,
        ``"gl"`` or ``"rescaling"``).

    Raises
    ------
    TypeError, ValueError
        If ``widths`` is not an architecture or ``group`` not a group for it (from
        :func:`quotient.groups.as_group`).

    Notes
    -----
    ``action(group_elem, point)`` takes ``group_elem = (G_1, ..., G_{h-1})`` and flat points of
    shape ``(..., N)`` and returns ``g . W`` flat, same shape.
    """

    group_name = "gl"

    def __init__(self, widths, group=None):
        self.widths = check_widths(widths)
        self.group = as_group(self.group_name if group is None else group, self.widths)

    def __call__(self, group_elem, point):
        """``g . W`` for flat points.

        Parameters
        ----------
        group_elem : tuple of ndarray
            ``(G_1, ..., G_{h-1})``, ``G_i`` of shape ``(d_i, d_i)``, an element of ``self.group``.
        point : array_like
            Flat points, shape ``(N,)`` or ``(..., N)``.

        Returns
        -------
        ndarray
            The moved points, flat, same shape as ``point``.

        Raises
        ------
        TypeError, ValueError
            If ``group_elem`` is not an element of the group (:meth:`quotient.groups.HiddenGroup.check`).
        """
        self.group.check(group_elem, name="group_elem")
        points, lead = _layers_of(point, self.widths)
        out = np.stack([to_vector(self.group.act(p, group_elem)) for p in points])
        return out.reshape(lead + (out.shape[-1],))


class HiddenOrthogonalAction(HiddenGroupAction):
    """``R . W = (R_1 W_1, R_2 W_2 R_1^T, ..., W_h R_{h-1}^T)``, ``R_i`` orthogonal (:class:`quotient.groups.Orthogonal`).

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)`` of the flat points acted on (``N = sum_i d_i d_{i-1}``).
    group : str or HiddenGroup, optional
        The group object or its name (:func:`quotient.groups.as_group`); default ``"orthogonal"``.
    """

    group_name = "orthogonal"


class HiddenGeneralLinearAction(HiddenGroupAction):
    """``G . W = (G_1 W_1, G_2 W_2 G_1^{-1}, ..., W_h G_{h-1}^{-1})``, ``G_i`` invertible (:class:`quotient.groups.GeneralLinear`).

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)`` of the flat points acted on (``N = sum_i d_i d_{i-1}``).
    group : str or HiddenGroup, optional
        The group object or its name (:func:`quotient.groups.as_group`); default ``"gl"``.
    """

    group_name = "gl"


class HiddenRescalingAction(HiddenGroupAction):
    """The action of positive diagonal ``G_i``, rescalings of the hidden neurons (:class:`quotient.groups.Rescaling`).

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)`` of the flat points acted on (``N = sum_i d_i d_{i-1}``).
    group : str or HiddenGroup, optional
        The group object or its name (:func:`quotient.groups.as_group`); default ``"rescaling"``.
    """

    group_name = "rescaling"


def _action_class(group):
    for cls, action in ((Orthogonal, HiddenOrthogonalAction), (GeneralLinear, HiddenGeneralLinearAction), (Rescaling, HiddenRescalingAction)):
        if isinstance(group, cls):
            return action
    raise TypeError(
        f"group must be an Orthogonal, GeneralLinear or Rescaling group (or its name); got {type(group).__name__}, "
        "which has no bundle here"
    )


class ParameterSpace(Euclidean):
    """Parameter space ``R^N`` of a network with widths ``(d_0, ..., d_h)``, flat points.

    Equipped with the Euclidean (Frobenius) metric and the action of a hidden group
    (:class:`HiddenGroupAction`); ``space.equip_with_quotient()`` sets ``space.fiber_bundle`` to
    that group's bundle and returns the quotient it carries:

    ========================= ========================== =============================================
    ``group``                 ``space.fiber_bundle``     ``equip_with_quotient()`` returns
    ========================= ========================== =============================================
    ``"orthogonal"`` (default) :class:`OrthogonalBundle`  the orbit space with geomstats's
                                                         ``QuotientMetric`` (``dist``, ``log``,
                                                         ``exp``, ``geodesic``)
    ``"gl"``                  :class:`GeneralLinearBundle` :class:`BalancedRankMatrices`: the quotient
                                                         of the balanced points, rank-``r`` matrices
                                                         with the balanced-lift metric
    ``"rescaling"``           :class:`RescalingBundle`   ``None``: horizontal-space geometry only
    ========================= ========================== =============================================

    Only the orthogonal group acts by isometries, so only its quotient carries the metric
    ``min_R ||x - R . y||``; for GL and the rescalings the bundle gives the vertical and horizontal
    spaces (the gradient of the loss is horizontal, so the flow is its own horizontal projection).

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)``.
    equip : bool
        Equip with the default (Euclidean) metric.
    group : {"orthogonal", "gl", "rescaling"} or HiddenGroup
        The hidden group acting (:func:`quotient.groups.as_group`): a name, or an
        :class:`~quotient.groups.Orthogonal`, :class:`~quotient.groups.GeneralLinear` or
        :class:`~quotient.groups.Rescaling` object for these widths; ``space.group`` is the object.
    align_starts : int
        Starts of the alignment search in each direction for ``h >= 3``
        (:meth:`OrthogonalBundle.align`).

    Raises
    ------
    ValueError
        If ``widths`` is not an architecture, ``align_starts`` is not a positive integer, or
        ``group`` is an unknown name or a group built for other widths.
    TypeError
        If ``widths`` is not a sequence, or ``group`` is neither a name nor an Orthogonal,
        GeneralLinear or Rescaling object.

    Examples
    --------
    >>> import numpy as np
    >>> from quotient import act, random_orthogonal, to_vector
    >>> from quotient.bundle import ParameterSpace
    >>> space = ParameterSpace((2, 3, 2))
    >>> quotient_space = space.equip_with_quotient()
    >>> x = to_vector((np.arange(6.0).reshape(3, 2), np.ones((2, 3))))
    >>> y = to_vector(act(space.to_layers(x), random_orthogonal((2, 3, 2), rng=0)))
    >>> bool(quotient_space.metric.dist(x, y) < 1e-6)   # one orbit: one quotient point
    True
    """

    def __init__(self, widths, equip: bool = True, *, group="orthogonal", align_starts: int = 16):
        self.widths = check_widths(widths)
        if isinstance(align_starts, bool) or not isinstance(align_starts, (int, np.integer)) or align_starts < 1:
            raise ValueError(f"align_starts must be a positive integer; got {align_starts!r}")
        self.align_starts = int(align_starts)
        self.group = as_group(group, self.widths)
        action = _action_class(self.group)
        super().__init__(dim=n_params(self.widths), equip=equip)
        self.equip_with_group_action(action(self.widths, self.group))

    def new(self, equip: bool = True):
        """A copy with the same widths and group (geomstats builds the quotient space with it).

        Parameters
        ----------
        equip : bool
            Equip the copy with the default (Euclidean) metric.

        Returns
        -------
        ParameterSpace
            A new space of the same ``widths``, ``group`` and ``align_starts``.
        """
        return ParameterSpace(self.widths, equip=equip, group=self.group, align_starts=self.align_starts)

    def equip_with_quotient(self):
        """Set ``self.fiber_bundle`` and return the quotient (see the class docstring).

        For GL, ``self.quotient`` is :class:`BalancedRankMatrices` of rank ``r = min(widths)``,
        the stratum of generic points: the image of the balanced points of rank ``r`` under the
        end-to-end map ``self.fiber_bundle.riemannian_submersion``.

        Returns
        -------
        geomstats.geometry.manifold.Manifold or None
            Orthogonal group: the orbit space, points flat ``(N,)``, with geomstats's
            ``QuotientMetric``; GL: :class:`BalancedRankMatrices`, points ``(d_h, d_0)``;
            rescalings: ``None`` (no induced metric).
        """
        quotient = super().equip_with_quotient()
        if isinstance(self.group, GeneralLinear):
            self.quotient = BalancedRankMatrices((self.widths[-1], self.widths[0]), min(self.widths), len(self.widths) - 1)
            return self.quotient
        return quotient

    def to_layers(self, x):
        """Flat ``(N,)`` -> ``(W_1, ..., W_h)``.

        Parameters
        ----------
        x : array_like
            Flat point of shape ``(N,)`` (or ``(..., N)``), ordered as :func:`quotient.to_vector`.

        Returns
        -------
        tuple of ndarray
            Layers ``W_i`` of shape ``(d_i, d_{i-1})`` (``(..., d_i, d_{i-1})`` for a batch).
        """
        return from_vector(x, self.widths)

    def from_layers(self, point) -> np.ndarray:
        """``(W_1, ..., W_h)`` -> flat ``(N,)`` (row-major layers, ``W_1`` first).

        Parameters
        ----------
        point : tuple of ndarray
            Layers ``W_i`` of shape ``(d_i, d_{i-1})`` (or a batch with leading axes).

        Returns
        -------
        ndarray
            Shape ``(N,)`` (``(..., N)`` for a batch), :func:`quotient.to_vector` of ``point``.
        """
        return to_vector(point)


class _HiddenBundle(FiberBundle):
    """Vertical space of the hidden group at flat points, and the flat ``is_horizontal`` / ``is_vertical``."""

    def __init__(self, total_space, aligner=None):
        super().__init__(total_space=total_space, aligner=aligner)
        self.widths = total_space.widths
        self.group = total_space.group

    def vertical_projection(self, tangent_vec, base_point):
        """Euclidean orthogonal projection onto the tangent space of the orbit (the group's :meth:`~quotient.groups.HiddenGroup.vertical_projection`).

        Parameters
        ----------
        tangent_vec : array_like
            Flat tangent vectors, shape ``(N,)`` or ``(..., N)``.
        base_point : array_like
            Flat points, shape ``(N,)`` (one point for every vector) or the batch shape of
            ``tangent_vec``.

        Returns
        -------
        ndarray
            The vertical parts, flat, shape ``(..., N)``.
        """
        tangent_vec = np.asarray(tangent_vec, dtype=np.float64)
        base_point = np.asarray(base_point, dtype=np.float64)
        if base_point.ndim == 1:
            base = from_vector(base_point, self.widths)
            flat = tangent_vec.reshape((-1, tangent_vec.shape[-1]))
            out = to_vector(self.group.vertical_projection(base, from_vector(flat, self.widths)))
            return out.reshape(tangent_vec.shape)
        pairs, lead = _pairs(tangent_vec, base_point, base_point.shape[-1])
        out = [to_vector(self.group.vertical_projection(from_vector(b, self.widths), from_vector(v, self.widths))) for v, b in pairs]
        return np.stack(out).reshape(lead + (tangent_vec.shape[-1],))

    def is_horizontal(self, tangent_vec, base_point, atol: float = 1e-10):
        """Whether ``tangent_vec`` equals its horizontal projection to ``atol`` (flat points).

        Overrides geomstats's, which reduces over two axes and fails on flat points.

        Parameters
        ----------
        tangent_vec : array_like
            Flat tangent vectors, shape ``(N,)`` or ``(..., N)``.
        base_point : array_like
            Flat points, shape ``(N,)`` or the batch shape of ``tangent_vec``.
        atol : float
            Absolute bound on every entry of the vertical part.

        Returns
        -------
        bool or ndarray of bool
            ``max |vertical_projection(V)| <= atol`` for each vector, shape ``(...)``.
        """
        difference = self.vertical_projection(tangent_vec, base_point)
        return np.all(np.abs(difference) <= atol, axis=-1)

    def is_vertical(self, tangent_vec, base_point, atol: float = 1e-10):
        """Whether the horizontal part of ``tangent_vec`` vanishes to ``atol`` (flat points).

        Overrides geomstats's, which reduces over two axes and fails on flat points.

        Parameters
        ----------
        tangent_vec : array_like
            Flat tangent vectors, shape ``(N,)`` or ``(..., N)``.
        base_point : array_like
            Flat points, shape ``(N,)`` or the batch shape of ``tangent_vec``.
        atol : float
            Absolute bound on every entry of the horizontal part.

        Returns
        -------
        bool or ndarray of bool
            ``max |V - vertical_projection(V)| <= atol`` for each vector, shape ``(...)``.
        """
        horizontal = self.horizontal_projection(tangent_vec, base_point)
        return np.all(np.abs(horizontal) <= atol, axis=-1)


class _RepresentedQuotient(_HiddenBundle):
    """A bundle whose quotient points are represented by any point of their orbit."""

    @staticmethod
    def riemannian_submersion(point):
        """The quotient map on representatives: a point stands for its own orbit.

        Parameters
        ----------
        point : array_like
            Flat points, shape ``(N,)`` or ``(..., N)``.

        Returns
        -------
        ndarray
            A float64 copy of ``point``, same shape: the representative of its orbit.
        """
        return np.array(point, dtype=np.float64, copy=True)

    @staticmethod
    def lift(point):
        """A representative of the orbit ``point`` stands for: the point itself.

        Parameters
        ----------
        point : array_like
            Quotient points, i.e. flat representatives, shape ``(N,)`` or ``(..., N)``.

        Returns
        -------
        ndarray
            A float64 copy of ``point``, same shape.
        """
        return np.array(point, dtype=np.float64, copy=True)


class OrthogonalBundle(_RepresentedQuotient):
    """The principal ``O(d_1) x ... x O(d_{h-1})``-bundle over parameter space (geomstats).

    Vertical space at ``W``: ``{(xi_i W_i - W_i xi_{i-1})_i : xi_i skew}``; horizontal space its
    Euclidean orthogonal complement. Because the action is by isometries, the quotient map is a
    Riemannian submersion onto the orbit space with the induced metric
    ``d([x], [y]) = min_R ||x - R . y||``. Quotient points are represented by total-space points
    (``riemannian_submersion`` and ``lift`` are identities; see the module docstring).

    Parameters
    ----------
    total_space : ParameterSpace
        The space it is the bundle of, with its group (built by
        ``ParameterSpace(widths, group=...).equip_with_quotient()``, which sets
        ``space.fiber_bundle``).
    aligner : optional
        geomstats's aligner argument, passed on to ``FiberBundle``; by default the alignment is :meth:`align`.
    """

    def __init__(self, total_space, aligner=None):
        super().__init__(total_space=total_space, aligner=aligner)
        self.n_starts = getattr(total_space, "align_starts", 16)


    def align(self, point, base_point):
        """The point of ``point``'s orbit closest to ``base_point``: ``R . point``, ``R`` minimising ``||R . point - base_point||``.

        Exact for ``h = 2`` (orthogonal Procrustes). For ``h >= 3``, the better of the multi-start
        searches :func:`quotient.orbit.align_orthogonal` of ``point`` onto ``base_point`` and of
        ``base_point`` onto ``point`` (inverted), with ``n_starts`` starts each; the search is the
        same for both orders of a pair, so ``squared_dist(a, b) == squared_dist(b, a)`` to rounding.
        ``point`` and ``base_point`` are ``(..., N)``; one of them may be a single point.

        Parameters
        ----------
        point : array_like
            Flat points to move, shape ``(N,)`` or ``(..., N)``.
        base_point : array_like
            Flat reference points, shape ``(N,)`` or the batch shape of ``point``.

        Returns
        -------
        ndarray
            ``R . point`` flat, shape ``(..., N)`` (the batch shape of the batched argument).

        Raises
        ------
        ValueError
            If both arguments are batches of different lengths.
        """
        points, lead = _layers_of(point, self.widths)
        bases, base_lead = _layers_of(base_point, self.widths)
        if len(bases) == 1:
            bases = bases * len(points)
        elif len(points) == 1:
            points, lead = points * len(bases), base_lead
        if len(points) != len(bases):
            raise ValueError(f"point and base_point have incompatible batch shapes {lead} and {base_lead}")
        out = np.stack([to_vector(self.group.act(p, self.alignment(p, b))) for p, b in zip(points, bases)])
        return out.reshape(lead + (out.shape[-1],))

    def alignment(self, point, reference) -> tuple:
        """``R`` in ``O(d_1) x ... x O(d_{h-1})`` minimising ``||R . point - reference||`` (layer tuples).

        Parameters
        ----------
        point : tuple of ndarray
            Layers ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, to move.
        reference : tuple of ndarray
            Layers of the same widths to move it to.

        Returns
        -------
        tuple of ndarray
            ``(R_1, ..., R_{h-1})``, orthogonal of shapes ``(d_i, d_i)``: the better of the searches
            in both directions (exact for ``h = 2``).
        """
        forward = self.group.representative(point, reference, n_starts=self.n_starts, rng=0)[1]
        if len(point) <= 2:
            return forward  # exact
        backward = self.group.inverse(self.group.representative(reference, point, n_starts=self.n_starts, rng=0)[1])
        values = [squared_norm(tuple(a - b for a, b in zip(self.group.act(point, R), reference))) for R in (forward, backward)]
        return forward if values[0] <= values[1] else backward


class RescalingBundle(_RepresentedQuotient):
    """The bundle of the positive diagonal rescalings of the hidden neurons: horizontal-space geometry.

    Vertical space at ``W``: ``{(D_i W_i - W_i D_{i-1})_i : D_i diagonal}``; horizontal space its
    Euclidean orthogonal complement. The rescalings are not isometries, so no quotient metric is
    induced and ``equip_with_quotient()`` returns ``None``; a quotient point is represented by any
    point of its orbit (``riemannian_submersion`` and ``lift`` are identities, the tangent
    submersion is the horizontal projection). The gradient of any loss of ``W`` is horizontal, so
    the gradient flow is its own horizontal projection: the projected flow is the flow.

    Parameters
    ----------
    total_space : ParameterSpace
        The space it is the bundle of, with its group (built by
        ``ParameterSpace(widths, group=...).equip_with_quotient()``, which sets
        ``space.fiber_bundle``).
    aligner : optional
        geomstats's aligner argument, passed on to ``FiberBundle`` (no alignment is defined).
    """



class GeneralLinearBundle(_HiddenBundle):
    """The ``GL(d_1) x ... x GL(d_{h-1})``-bundle: the end-to-end map onto the rank-``r`` matrices.

    ``riemannian_submersion`` is the end-to-end map ``pi(x) = W_h ... W_1`` (flat ``(..., N)`` to
    ``(..., d_h, d_0)``), ``tangent_riemannian_submersion`` its differential
    (:func:`quotient.pushforward`), ``lift`` the balanced lift (:func:`quotient.orbit.balanced_lift`)
    and ``horizontal_lift(Z, fiber_point=x)`` the least-norm ``V`` with ``d pi_x(V) = Z``, by least
    squares on the Jacobian of ``pi`` (it lies in the range of ``d pi_x^*``, inside the horizontal
    space). The vertical space is ``{(xi_i W_i - W_i xi_{i-1})_i : xi_i in gl(d_i)}``, the kernel of
    ``d pi`` at generic points.

    ``pi`` is a Riemannian submersion from the balanced points onto
    :class:`BalancedRankMatrices` (at a balanced ``x``, ``||horizontal_lift(Z)||^2`` is the
    balanced-lift metric ``g_W(Z, Z)``), not from all of parameter space: the GL action is not by
    isometries, and away from the balanced set the least-norm lift has another norm. There is no
    alignment (no GL-invariant distance).

    Parameters
    ----------
    total_space : ParameterSpace
        The space it is the bundle of, with its group (built by
        ``ParameterSpace(widths, group=...).equip_with_quotient()``, which sets
        ``space.fiber_bundle``).
    aligner : optional
        geomstats's aligner argument, passed on to ``FiberBundle`` (no alignment is defined).
    """

    def riemannian_submersion(self, point):
        """The end-to-end map of flat points: ``(..., N)`` -> ``(..., d_h, d_0)``.

        Parameters
        ----------
        point : array_like
            Flat points, shape ``(N,)`` or ``(..., N)``.

        Returns
        -------
        ndarray
            ``pi(x) = W_h ... W_1``, shape ``(d_h, d_0)`` or ``(..., d_h, d_0)``.
        """
        points, lead = _layers_of(point, self.widths)
        out = np.stack([end_to_end(p) for p in points])
        return out.reshape(lead + out.shape[-2:])

    def lift(self, point):
        """The balanced lift of end-to-end maps ``(..., d_h, d_0)``, flat ``(..., N)``.

        Parameters
        ----------
        point : array_like
            End-to-end maps ``W``, shape ``(d_h, d_0)`` or ``(..., d_h, d_0)``, of rank at most
            ``min(widths)``.

        Returns
        -------
        ndarray
            Flat balanced points over ``W`` (:func:`quotient.orbit.balanced_lift`), shape ``(N,)``
            or ``(..., N)``.
        """
        W = np.asarray(point, dtype=np.float64)
        flat = W.reshape((-1,) + W.shape[-2:])
        out = np.stack([to_vector(balanced_lift(w, self.widths)) for w in flat])
        return out.reshape(W.shape[:-2] + (out.shape[-1],))

    def tangent_riemannian_submersion(self, tangent_vec, base_point):
        """``d pi_x(V) = sum_i W_{>i} V_i W_{<i}`` (:func:`quotient.pushforward`), shape ``(..., d_h, d_0)``.

        Parameters
        ----------
        tangent_vec : array_like
            Flat tangent vectors ``V``, shape ``(..., N)``.
        base_point : array_like
            Flat points ``x``, shape ``(..., N)``, broadcast against ``tangent_vec``.

        Returns
        -------
        ndarray
            ``d pi_x(V)``, shape ``(..., d_h, d_0)`` (the broadcast batch shape).
        """
        pairs, lead = _pairs(tangent_vec, base_point, n_params(self.widths))
        out = np.stack([pushforward(from_vector(b, self.widths), from_vector(v, self.widths)) for v, b in pairs])
        return out.reshape(lead + out.shape[-2:])

    def jacobian(self, fiber_point) -> np.ndarray:
        """The matrix of ``d pi`` at a flat point: ``(d_h d_0, N)``, row-major in the end-to-end map.

        Parameters
        ----------
        fiber_point : array_like
            One flat point ``x``, shape ``(N,)``.

        Returns
        -------
        ndarray
            Shape ``(d_h d_0, N)``: column ``c`` is ``d pi_x(e_c)`` flattened row-major.
        """
        point = from_vector(np.asarray(fiber_point, dtype=np.float64), self.widths)
        N = n_params(self.widths)
        return np.stack([pushforward(point, from_vector(e, self.widths)).ravel() for e in np.eye(N)], axis=1)

    def horizontal_lift(self, tangent_vec, base_point=None, fiber_point=None):
        """The least-norm ``V`` with ``d pi_x(V) = Z``: ``tangent_vec`` ``(..., d_h, d_0)`` -> ``(..., N)``.

        ``Z`` is expected to be tangent to the rank stratum of ``pi(x)`` (the image of ``d pi_x``);
        its other part is dropped (least squares).

        Parameters
        ----------
        tangent_vec : array_like
            ``Z``, shape ``(d_h, d_0)`` or ``(..., d_h, d_0)``.
        base_point : array_like, optional
            End-to-end map(s) ``W``, shape ``(..., d_h, d_0)``: used, through its balanced lift,
            when ``fiber_point`` is not given.
        fiber_point : array_like, optional
            Flat point(s) ``x``, shape ``(N,)`` or ``(..., N)``, broadcast against ``tangent_vec``;
            takes precedence over ``base_point``.

        Returns
        -------
        ndarray
            The least-norm ``V``, flat of shape ``(..., N)``, horizontal at ``x``.

        Raises
        ------
        ValueError
            If neither ``base_point`` nor ``fiber_point`` is given.
        """
        if fiber_point is None:
            if base_point is None:
                raise ValueError("horizontal_lift needs base_point or fiber_point")
            fiber_point = self.lift(base_point)
        Z = np.asarray(tangent_vec, dtype=np.float64)
        fiber_point = np.asarray(fiber_point, dtype=np.float64)
        lead = np.broadcast_shapes(Z.shape[:-2], fiber_point.shape[:-1])
        Zs = np.broadcast_to(Z, lead + Z.shape[-2:]).reshape((-1, Z.shape[-2] * Z.shape[-1]))
        xs = np.broadcast_to(fiber_point, lead + fiber_point.shape[-1:]).reshape((-1, fiber_point.shape[-1]))
        out = np.stack([np.linalg.lstsq(self.jacobian(x), z, rcond=None)[0] for z, x in zip(Zs, xs)])
        return out.reshape(lead + (out.shape[-1],))


class BalancedRankMatrices(Manifold):
    """The quotient of the balanced points by GL: rank-``k`` matrices with the balanced-lift metric (geomstats).

    A geomstats manifold over :class:`quotient.RankManifold`, which holds the computations; its
    default metric is :class:`BalancedLiftMetric`.

    Parameters
    ----------
    shape : tuple of int
        ``(d_h, d_0)``.
    rank : int
        ``k``.
    depth : int
        ``h``.
    equip : bool
        Equip with :class:`BalancedLiftMetric`.

    Notes
    -----
    Points and tangent vectors are ``(d_h, d_0)`` matrices, or batches ``(..., d_h, d_0)``;
    every method applies :class:`quotient.RankManifold`'s to each matrix of the batch.
    """

    def __init__(self, shape, rank: int, depth: int, equip: bool = True):
        self.manifold = RankManifold(shape, rank, depth)
        super().__init__(dim=self.manifold.dim, shape=self.manifold.shape, intrinsic=False, equip=equip)

    def new(self, equip: bool = True):
        """A copy with the same shape, rank and depth (geomstats builds derived spaces with it).

        Parameters
        ----------
        equip : bool
            Equip the copy with :class:`BalancedLiftMetric`.

        Returns
        -------
        BalancedRankMatrices
            A new manifold of the same ``(d_h, d_0)``, ``k`` and ``h``.
        """
        return BalancedRankMatrices(self.manifold.shape, self.manifold.rank, self.manifold.depth, equip=equip)

    @staticmethod
    def default_metric():
        """The metric class geomstats equips this manifold with.

        Returns
        -------
        type
            :class:`BalancedLiftMetric`.
        """
        return BalancedLiftMetric

    def _each(self, function, *arrays):
        """Apply ``function`` to matrices broadcast over the leading axes of ``arrays``."""
        arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
        lead = np.broadcast_shapes(*(a.shape[:-2] for a in arrays))
        flats = [np.broadcast_to(a, lead + a.shape[-2:]).reshape((-1,) + a.shape[-2:]) for a in arrays]
        out = np.array([function(*rows) for rows in zip(*flats)])
        return out.reshape(lead + out.shape[1:])

    def belongs(self, point, atol: float = 1e-10):
        """Whether each point has shape ``(d_h, d_0)`` and rank ``k`` (:meth:`quotient.RankManifold.belongs`).

        Parameters
        ----------
        point : array_like
            Matrices, shape ``(..., d_h, d_0)``.
        atol : float
            Rank threshold on the singular values, compared against ``atol * max(s_1, 1)``
            (:meth:`quotient.RankManifold.belongs`), not geomstats's entrywise tolerance.

        Returns
        -------
        bool or ndarray of bool
            One answer per matrix, shape ``(...)``; all ``False`` when the last two axes are not
            ``(d_h, d_0)``.
        """
        point = np.asarray(point, dtype=np.float64)
        if point.shape[-2:] != self.shape:
            return np.zeros(point.shape[:-2], dtype=bool)
        return self._each(lambda W: self.manifold.belongs(W, atol), point)

    def is_tangent(self, vector, base_point=None, atol: float = 1e-10):
        """Whether each vector lies in ``T_W M_k``.

        Parameters
        ----------
        vector : array_like
            Matrices ``Z``, shape ``(..., d_h, d_0)``.
        base_point : array_like
            Points ``W``, shape ``(..., d_h, d_0)``, broadcast against ``vector``; required in
            spite of geomstats's ``None`` default.
        atol : float
            Absolute bound on every entry of the normal part of ``Z``
            (:meth:`quotient.RankManifold.is_tangent`).

        Returns
        -------
        bool or ndarray of bool
            One answer per pair, the broadcast batch shape.
        """
        return self._each(lambda Z, W: self.manifold.is_tangent(Z, W, atol), vector, base_point)

    def to_tangent(self, vector, base_point=None):
        """Frobenius-orthogonal projection onto ``T_W M_k``.

        Parameters
        ----------
        vector : array_like
            Matrices ``Z``, shape ``(..., d_h, d_0)``.
        base_point : array_like
            Points ``W``, shape ``(..., d_h, d_0)``, broadcast against ``vector``; required in
            spite of geomstats's ``None`` default.

        Returns
        -------
        ndarray
            The tangent parts (:meth:`quotient.RankManifold.to_tangent`), shape
            ``(..., d_h, d_0)``.
        """
        return self._each(self.manifold.to_tangent, vector, base_point)

    def random_point(self, n_samples: int = 1, bound: float = 1.0):
        """Rank-``k`` matrices ``A B^T`` with normal ``A``, ``B`` (numpy's global generator, as geomstats).

        Parameters
        ----------
        n_samples : int
            Number of matrices.
        bound : float
            Scale of the matrices: the product ``A B^T`` is multiplied by it.

        Returns
        -------
        ndarray
            Shape ``(d_h, d_0)`` for ``n_samples = 1``, else ``(n_samples, d_h, d_0)``; rank ``k``
            with probability one.
        """
        m, n = self.shape
        k = self.manifold.rank
        A = np.random.standard_normal((n_samples, m, k))
        B = np.random.standard_normal((n_samples, n, k))
        out = bound * A @ np.swapaxes(B, -1, -2)
        return out[0] if n_samples == 1 else out


class BalancedLiftMetric(RiemannianMetric):
    """``g_W(Z_1, Z_2) = <A_W^{-1}(Z_1), Z_2>`` (:meth:`quotient.RankManifold.inner_product`), batched.

    The metric of Bah, Rauhut, Terstiege & Westdickenberg (2022) induced by balanced lifts;
    :meth:`riemannian_gradient` gives the gradient whose flow is :func:`quotient.reduced_flow`.
    Geodesics are not implemented (no closed form).

    Parameters
    ----------
    space : BalancedRankMatrices
        The manifold it is the metric of (geomstats passes it when equipping).
    signature : tuple of int, optional
        geomstats's signature of the metric, passed on to ``RiemannianMetric``.
    """

    def inner_product(self, tangent_vec_a, tangent_vec_b, base_point=None):
        """``g_W(Z_1, Z_2) = <A_W^{-1}(Z_1), Z_2>`` for each pair (:meth:`quotient.RankManifold.inner_product`).

        Parameters
        ----------
        tangent_vec_a : array_like
            ``Z_1``, shape ``(..., d_h, d_0)``; its normal part at ``W`` is ignored.
        tangent_vec_b : array_like
            ``Z_2``, shape ``(..., d_h, d_0)``; its normal part at ``W`` is ignored.
        base_point : array_like
            ``W``, shape ``(..., d_h, d_0)``, broadcast against the vectors; required in spite
            of geomstats's ``None`` default.

        Returns
        -------
        float or ndarray
            One inner product per triple, the broadcast batch shape.
        """
        return self._space._each(self._space.manifold.inner_product, tangent_vec_a, tangent_vec_b, base_point)

    def riemannian_gradient(self, euclidean_gradient, base_point):
        """``A_W(G)`` (:meth:`quotient.RankManifold.riemannian_gradient`), batched.

        Parameters
        ----------
        euclidean_gradient : array_like
            ``G``, the Frobenius gradient of a function of ``W``, shape ``(..., d_h, d_0)``.
        base_point : array_like
            ``W``, shape ``(..., d_h, d_0)``, broadcast against ``euclidean_gradient``.

        Returns
        -------
        ndarray
            ``A_W(G)``, tangent at ``W``, shape ``(..., d_h, d_0)``.
        """
        return self._space._each(self._space.manifold.riemannian_gradient, euclidean_gradient, base_point)


register_quotient(
    Space=ParameterSpace,
    Metric=CanonicalEuclideanMetric,
    GroupAction=HiddenOrthogonalAction,
    FiberBundle=OrthogonalBundle,
    QuotientMetric=QuotientMetric,
)
register_quotient(
    Space=ParameterSpace,
    Metric=CanonicalEuclideanMetric,
    GroupAction=HiddenGeneralLinearAction,
    FiberBundle=GeneralLinearBundle,
)
register_quotient(
    Space=ParameterSpace,
    Metric=CanonicalEuclideanMetric,
    GroupAction=HiddenRescalingAction,
    FiberBundle=RescalingBundle,
)


# ----------------------------------------------------------------------- computations in the O(d) quotient
def _orthogonal_quotient(widths, align_starts: int):
    space = ParameterSpace(widths, group="orthogonal", align_starts=align_starts)
    return space, space.equip_with_quotient()


def _as_batch(points, name: str):
    """A batch of points (a tuple of layers with a leading axis, or a sequence of points) -> list of points."""
    if isinstance(points, tuple) and points and all(isinstance(W, np.ndarray) and W.ndim == 3 for W in points):
        batch = as_point(points, name, batch=True)
        return [tuple(W[k] for W in batch) for k in range(batch[0].shape[0])]
    if isinstance(points, (tuple, list)) and points and all(isinstance(p, (tuple, list)) for p in points):
        out = [as_point(p, f"{name}[{k}]") for k, p in enumerate(points)]
        widths = widths_of(out[0])
        for k, p in enumerate(out):
            if widths_of(p) != widths:
                raise ValueError(f"{name}[{k}] has widths {widths_of(p)}, {name}[0] has {widths}")
        return out
    raise TypeError(f"{name} must be a batch of points (layers with a leading axis) or a sequence of points; got {type(points).__name__}")


def quotient_geodesic(a, b, times=11, *, align_starts: int = 16):
    """Points along the geodesic of the O(d) quotient from the orbit of ``a`` to the orbit of ``b``.

    The geodesic of geomstats's ``QuotientMetric`` (:class:`OrthogonalBundle`): the total-space
    straight line ``x(t) = a + t (b' - a)`` from ``a`` to ``b' = align(b, a)``, the point of
    ``b``'s orbit nearest to ``a``. Its direction is horizontal at ``a``, and
    ``d([a], [x(t)]) = t d([a], [b])``, ``d([x(t)], [b]) = (1 - t) d([a], [b])``.

    Parameters
    ----------
    a, b : tuple of ndarray
        Points ``(W_1, ..., W_h)`` of one widths, ``W_i`` of shape ``(d_i, d_{i-1})``.
    times : int or array_like
        Number of evenly spaced times in ``[0, 1]``, or the times themselves.
    align_starts : int
        Starts of the alignment search for ``h >= 3`` (:meth:`OrthogonalBundle.align`): a local
        search, so for ``h >= 3`` the line is the geodesic to the best alignment found.

    Returns
    -------
    tuple of ndarray
        A batch of points, layer ``i`` of shape ``(T, d_i, d_{i-1})``; ``T = len(times)``.

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not a point.
    ValueError
        If ``a`` and ``b`` have different widths, ``times`` is an int below 2, or a time is not
        finite.

    Notes
    -----
    Points of one fiber (one critical value) are joined by a curve that leaves the fiber: the
    end-to-end map along the line is a polynomial of degree ``h`` in ``t`` and the loss moves
    (docs/quotient.md gives measured sizes). The line is a geodesic of the
    quotient, not a path of critical points.
    """
    a, b = as_point(a, "a"), as_point(b, "b")
    widths = widths_of(a)
    if widths_of(b) != widths:
        raise ValueError(f"a and b must have the same widths; got {widths} and {widths_of(b)}")
    if isinstance(times, (int, np.integer)) and not isinstance(times, bool):
        times = np.linspace(0.0, 1.0, check_count("times", times, 2))
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(times)):
        raise ValueError("times must be finite")
    _, quotient_space = _orthogonal_quotient(widths, align_starts)
    path = quotient_space.metric.geodesic(initial_point=to_vector(a), end_point=to_vector(b))(times)
    layers = [from_vector(x, widths) for x in np.asarray(path).reshape(times.size, -1)]
    return tuple(np.stack([p[i] for p in layers]) for i in range(len(widths) - 1))


def frechet_mean(points, *, starts: int | None = None, align_starts: int = 16, rtol: float = 1e-10, max_iter: int = 200):
    """Frechet mean of points in the O(d) quotient (geomstats's ``FrechetMean`` with the ``QuotientMetric``).

    Minimises the Frechet function ``F([m]) = sum_k d([m], [x_k])^2`` over quotient points
    ``[m]``. geomstats's gradient descent with this metric is generalised Procrustes analysis: from
    a start ``m``, align every point to ``m`` (:meth:`OrthogonalBundle.align`) and replace ``m`` by
    the mean of the aligned points, until the mean of the logs ``align(x_k, m) - m`` has norm at
    most ``rtol`` times the points' RMS norm. ``F`` has several local minima when the points are
    spread (the quotient is positively curved; 5 samples of a fiber at widths (2, 3, 2): three
    local minima, reached from different starts), so the descent runs from several starts and the
    lowest ``F`` wins.

    Parameters
    ----------
    points : tuple of ndarray or sequence of points
        A batch (layer ``i`` of shape ``(n, d_i, d_{i-1})``) or a sequence of ``n`` points.
    starts : int, optional
        Start the descent from the first ``starts`` points; by default from every point, which
        makes the result independent of the order of the points.
    align_starts : int
        Starts of the alignment search for ``h >= 3``.
    rtol : float
        Relative stopping tolerance: the mean log's norm over the points' RMS norm
        ``sqrt(mean_k ||x_k||^2)`` (see above).
    max_iter : int
        Iterations of each descent.

    Returns
    -------
    tuple of ndarray
        A representative ``(W_1, ..., W_h)`` of the mean orbit, aligned to the first point;
        ``W_i`` of shape ``(d_i, d_{i-1})``.

    Raises
    ------
    TypeError
        If ``points`` is neither a batch nor a sequence of points, or a count is not an integer.
    ValueError
        If the points have different widths, or ``rtol``, ``starts`` or ``max_iter`` is not
        positive.
    RuntimeError
        If no descent reaches ``rtol`` in ``max_iter`` iterations.

    Notes
    -----
    Invariant: replacing any point by another point of its orbit gives the same mean orbit, and the
    mean of points of one orbit is that orbit. With the default ``starts`` the order of the points
    changes only the representative returned, up to the alignment search: for ``h >= 3`` the
    alignments are local searches (:meth:`OrthogonalBundle.align`), and the global minimum of ``F``
    is likely, not certain.
    """
    points = _as_batch(points, "points")
    check_positive("rtol", rtol)
    check_count("max_iter", max_iter)
    n_starts = len(points) if starts is None else min(check_count("starts", starts), len(points))
    widths = widths_of(points[0])
    space, quotient_space = _orthogonal_quotient(widths, align_starts)
    X = np.stack([to_vector(p) for p in points])
    scale = max(float(np.sqrt(np.mean(np.sum(X**2, axis=-1)))), 1e-300)
    best, best_value, residuals = None, np.inf, []
    for start in X[:n_starts]:
        mean = _gradient_descent_mean(quotient_space, X, start, (rtol * scale) ** 2 / space.dim, max_iter)
        residual = float(np.linalg.norm(np.mean(quotient_space.metric.log(X, mean), axis=0)))
        residuals.append(residual)
        if len(points) > 1 and residual > rtol * scale * (1 + 1e-6):
            continue
        value = float(np.sum(quotient_space.metric.squared_dist(X, mean)))
        if value < best_value:
            best, best_value = mean, value
    if best is None:
        raise RuntimeError(
            f"frechet_mean did not converge in max_iter = {max_iter} iterations from any of {n_starts} starts: "
            f"the mean log has norm at least {min(residuals):.3e} > rtol * RMS norm = {rtol * scale:.3e}"
        )
    return from_vector(space.fiber_bundle.align(best, X[0]), widths)


def _gradient_descent_mean(quotient_space, X, start, epsilon: float, max_iter: int) -> np.ndarray:
    """geomstats's ``FrechetMean`` from ``start``; it stops at a mean log of squared norm ``epsilon * dim``."""
    # imported here: geomstats.learning pulls in scikit-learn, a third of this module's import time
    from geomstats.learning.frechet_mean import FrechetMean

    estimator = FrechetMean(quotient_space).set(max_iter=max_iter, epsilon=epsilon, init_point=start)
    # at max_iter geomstats calls logging.warning, which configures the root logger if it has no
    # handler: keep the user's logging as it was (frechet_mean checks convergence itself)
    root = logging.getLogger()
    level, handlers, disabled = root.level, list(root.handlers), logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        estimator.fit(X)
    finally:
        logging.disable(disabled)
        root.setLevel(level)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
    return np.asarray(estimator.estimate_, dtype=np.float64)
