"""Parameter space as a geomstats manifold with the orthogonal hidden symmetry and its quotient.

The only module of ``quotient`` that imports geomstats. Usage::

    from quotient.bundle import ParameterSpace

    space = ParameterSpace((3, 4, 4, 2))     # flat points of length N, Euclidean metric
    quotient = space.equip_with_quotient()   # space.fiber_bundle: OrthogonalBundle
    quotient.metric.dist(x, y)               # min over R of ||x - R . y||, R in O(d_1) x ... x O(d_{h-1})

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
80 fully converged random starts; README, section on the quotient).

geomstats's ``FiberBundle.is_horizontal`` and ``is_vertical`` reduce over the last two axes and so
fail on flat points (``AxisError``); this bundle overrides them to reduce over the last axis.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from .network import _squared_norm, check_widths, from_vector, n_params, to_vector
from .orbit import align_orthogonal
from .symmetry import _act, check_group_element, vertical_projection


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
            from geomstats.geometry.manifold import register_quotient
            from geomstats.geometry.quotient_metric import QuotientMetric
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
    return CanonicalEuclideanMetric, Euclidean, FiberBundle, GroupAction, register_quotient, QuotientMetric


(
    CanonicalEuclideanMetric,
    Euclidean,
    FiberBundle,
    GroupAction,
    register_quotient,
    QuotientMetric,
) = _import_geomstats()

__all__ = ["ParameterSpace", "HiddenOrthogonalAction", "OrthogonalBundle"]


def _layers_of(x, widths):
    """Flat ``(..., N)`` -> list of single points (each a tuple of layers) and the batch shape."""
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[:-1]
    flat = x.reshape((-1, x.shape[-1]))
    return [from_vector(row, widths) for row in flat], lead


class HiddenOrthogonalAction(GroupAction):
    """``R . W = (R_1 W_1, R_2 W_2 R_1^T, ..., W_h R_{h-1}^T)`` on flat points.

    A group element is a tuple ``(R_1, ..., R_{h-1})`` of orthogonal ``(d_i, d_i)`` arrays;
    points are flat ``(..., N)`` arrays.
    """

    def __init__(self, widths):
        self.widths = check_widths(widths)

    def __call__(self, group_elem, point):
        R = check_group_element(group_elem, self.widths, "orthogonal", name="group_elem")
        points, lead = _layers_of(point, self.widths)
        out = np.stack([to_vector(_act(p, R)) for p in points])
        return out.reshape(lead + (out.shape[-1],))


class ParameterSpace(Euclidean):
    """Parameter space ``R^N`` of a network with widths ``(d_0, ..., d_h)``, flat points.

    Equipped with the Euclidean (Frobenius) metric and the action of
    ``O(d_1) x ... x O(d_{h-1})`` (:class:`HiddenOrthogonalAction`), so that
    ``space.equip_with_quotient()`` returns the quotient space with its ``QuotientMetric`` and sets
    ``space.fiber_bundle`` to an :class:`OrthogonalBundle`.

    Parameters
    ----------
    widths : sequence of int
        ``(d_0, ..., d_h)``.
    equip : bool
        Equip with the default (Euclidean) metric.
    align_starts : int
        Starts of the alignment search in each direction for ``h >= 3``
        (:meth:`OrthogonalBundle.align`).
    """

    def __init__(self, widths, equip: bool = True, *, align_starts: int = 16):
        self.widths = check_widths(widths)
        if isinstance(align_starts, bool) or not isinstance(align_starts, (int, np.integer)) or align_starts < 1:
            raise ValueError(f"align_starts must be a positive integer; got {align_starts!r}")
        self.align_starts = int(align_starts)
        super().__init__(dim=n_params(self.widths), equip=equip)
        self.equip_with_group_action(HiddenOrthogonalAction(self.widths))

    def new(self, equip: bool = True):
        """A copy with the same widths (geomstats builds the quotient space with it)."""
        return ParameterSpace(self.widths, equip=equip, align_starts=self.align_starts)

    def to_layers(self, x):
        """Flat ``(N,)`` -> ``(W_1, ..., W_h)``."""
        return from_vector(x, self.widths)

    def from_layers(self, point) -> np.ndarray:
        """``(W_1, ..., W_h)`` -> flat ``(N,)`` (row-major layers, ``W_1`` first)."""
        return to_vector(point)


class OrthogonalBundle(FiberBundle):
    """The principal ``O(d_1) x ... x O(d_{h-1})``-bundle over parameter space (geomstats).

    Vertical space at ``W``: ``{(xi_i W_i - W_i xi_{i-1})_i : xi_i skew}``; horizontal space its
    Euclidean orthogonal complement. Because the action is by isometries, the quotient map is a
    Riemannian submersion onto the orbit space with the induced metric
    ``d([x], [y]) = min_R ||x - R . y||``. Quotient points are represented by total-space points
    (``riemannian_submersion`` and ``lift`` are identities; see the module docstring).
    """

    def __init__(self, total_space, aligner=None):
        super().__init__(total_space=total_space, aligner=aligner)
        self.widths = total_space.widths
        self.n_starts = getattr(total_space, "align_starts", 16)

    @staticmethod
    def riemannian_submersion(point):
        """The quotient map on representatives: a point stands for its own orbit."""
        return np.array(point, dtype=np.float64, copy=True)

    @staticmethod
    def lift(point):
        """A representative of the orbit ``point`` stands for: the point itself."""
        return np.array(point, dtype=np.float64, copy=True)

    def vertical_projection(self, tangent_vec, base_point):
        """Orthogonal projection onto ``{xi . W : xi skew}`` (:func:`quotient.vertical_projection`).

        ``tangent_vec`` is ``(..., N)``; ``base_point`` is ``(N,)`` or has the same batch shape.
        """
        tangent_vec = np.asarray(tangent_vec, dtype=np.float64)
        base_point = np.asarray(base_point, dtype=np.float64)
        if base_point.ndim == 1:
            base = from_vector(base_point, self.widths)
            flat = tangent_vec.reshape((-1, tangent_vec.shape[-1]))
            out = to_vector(vertical_projection(base, from_vector(flat, self.widths), group="orthogonal"))
            return out.reshape(tangent_vec.shape)
        tangents, bases = np.broadcast_arrays(tangent_vec, base_point)
        out = [
            to_vector(vertical_projection(from_vector(b, self.widths), from_vector(v, self.widths), group="orthogonal"))
            for v, b in zip(tangents.reshape((-1, tangents.shape[-1])), bases.reshape((-1, bases.shape[-1])))
        ]
        return np.stack(out).reshape(tangents.shape)

    def align(self, point, base_point):
        """The point of ``point``'s orbit closest to ``base_point``: ``R . point``, ``R`` minimising ``||R . point - base_point||``.

        Exact for ``h = 2`` (orthogonal Procrustes). For ``h >= 3``, the better of the multi-start
        searches :func:`quotient.orbit.align_orthogonal` of ``point`` onto ``base_point`` and of
        ``base_point`` onto ``point`` (inverted), with ``n_starts`` starts each; the search is the
        same for both orders of a pair, so ``squared_dist(a, b) == squared_dist(b, a)`` to rounding.
        ``point`` and ``base_point`` are ``(..., N)``; one of them may be a single point.
        """
        points, lead = _layers_of(point, self.widths)
        bases, base_lead = _layers_of(base_point, self.widths)
        if len(bases) == 1:
            bases = bases * len(points)
        elif len(points) == 1:
            points, lead = points * len(bases), base_lead
        if len(points) != len(bases):
            raise ValueError(f"point and base_point have incompatible batch shapes {lead} and {base_lead}")
        out = np.stack([to_vector(_act(p, self.alignment(p, b))) for p, b in zip(points, bases)])
        return out.reshape(lead + (out.shape[-1],))

    def alignment(self, point, reference) -> tuple:
        """``R`` in ``O(d_1) x ... x O(d_{h-1})`` minimising ``||R . point - reference||`` (layer tuples)."""
        forward = align_orthogonal(point, reference, n_starts=self.n_starts, rng=0)[1]
        if len(point) <= 2:
            return forward  # exact
        backward = tuple(R.T for R in align_orthogonal(reference, point, n_starts=self.n_starts, rng=0)[1])
        values = [_squared_norm(tuple(a - b for a, b in zip(_act(point, R), reference))) for R in (forward, backward)]
        return forward if values[0] <= values[1] else backward

    def is_horizontal(self, tangent_vec, base_point, atol: float = 1e-10):
        """Whether ``tangent_vec`` equals its horizontal projection to ``atol`` (flat points)."""
        difference = self.vertical_projection(tangent_vec, base_point)
        return np.all(np.abs(difference) <= atol, axis=-1)

    def is_vertical(self, tangent_vec, base_point, atol: float = 1e-10):
        """Whether the horizontal part of ``tangent_vec`` vanishes to ``atol`` (flat points)."""
        horizontal = self.horizontal_projection(tangent_vec, base_point)
        return np.all(np.abs(horizontal) <= atol, axis=-1)


register_quotient(
    Space=ParameterSpace,
    Metric=CanonicalEuclideanMetric,
    GroupAction=HiddenOrthogonalAction,
    FiberBundle=OrthogonalBundle,
    QuotientMetric=QuotientMetric,
)
