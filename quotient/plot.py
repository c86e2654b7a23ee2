"""Pictures: functions that take quotient's objects and return a matplotlib ``Figure``.

No function here calls ``show`` or touches global ``rcParams``; figures are built with the
object-oriented API (``matplotlib.figure.Figure``), so they render with any backend, headless too.
Colours come from the Okabe-Ito palette, which stays distinguishable under colour blindness.

Every function takes an optional ``axes``: given one, it draws there (to compose panels) and
returns the figure that holds it; otherwise it makes its own figure with constrained layout.
Modes are numbered from 1 (mode 1 carries the largest singular value), as in :mod:`quotient.critical`.
"""

from __future__ import annotations

import itertools

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.linalg import expm

from ._numerics import squared_norm
from .critical import critical_values
from .graph import critical_graph as _critical_graph
from .graph import plateaus
from .groups import as_group
from .hessian import zero_eigenvalue_threshold
from .network import (
    as_point,
    check_count,
    check_positive,
    conserved_quantities,
    end_to_end,
    from_vector,
    to_vector,
    widths_of,
)
from .symmetry import act, compose, random_orthogonal

__all__ = [
    "PALETTE",
    "conservation_drift",
    "critical_graph",
    "fiber_projection",
    "fiber_samples",
    "group_orbits",
    "hessian_spectrum",
    "level_set_teleport",
    "loss_curve",
        "orthogonal_invariants",
    "path_products",
    "quotient_geodesic",
    "quotient_trajectory",
    "rescaling_quotient_flow",
    "scalar_fiber",
    "singular_value_curves",
]

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_NEGATIVE, _ZERO, _POSITIVE = PALETTE[3], "0.45", PALETTE[0]
_LEVEL = "0.55"
#: Marker areas (points^2) in the quotient pictures: a start or end dot fits inside a corner's diamond.
_CORNER_SIZE, _DOT_SIZE = 70.0, 22.0


def _figure(width: float = 6.4, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _axes(axes, *, projection=None, width: float = 6.4, height: float = 4.0):
    """The axes to draw into: the one given, or the single axes of a new figure."""
    if axes is not None:
        if projection == "3d" and axes.name != "3d":
            raise ValueError("a 3-D picture needs a 3-D axes (add_subplot(projection='3d')); got a 2-D one")
        return axes
    return _figure(width, height).add_subplot(projection=projection)


def learned_label(learned) -> str:
    """``S`` as mathtext: ``\\{1,3\\}`` (``\\emptyset`` when nothing is learned); also used by :mod:`quotient.figures`."""
    return r"\{" + ",".join(str(i) for i in learned) + r"\}" if learned else r"\emptyset"


def _as_list(trajectories) -> list:
    return list(trajectories) if isinstance(trajectories, (list, tuple)) else [trajectories]


def _labels(labels, n: int) -> list:
    if labels is None:
        return [None] * n
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"labels must hold one label per trajectory ({n}); got {len(labels)}")
    return labels


def _run_labels(labels, n: int) -> list:
    """Legend entries for ``n`` runs: the ones given, else ``run 1, run 2, ...`` when there are several
    (so that every curve is named), else none."""
    labels = _labels(labels, n)
    if n > 1 and all(label is None for label in labels):
        return [f"run {k + 1}" for k in range(n)]
    return labels


def _distinct(labels: list) -> list:
    """Labels made distinct: a repeated one gets ``(run k)`` appended, ``k`` its 1-based position."""
    counts = {label: labels.count(label) for label in labels}
    return [f"{label} (run {k + 1})" if counts[label] > 1 else label for k, label in enumerate(labels)]


def _tidy_3d(axes, nbins: int = 4, labelpad: float = 10.0) -> None:
    """Fewer ticks and padded axis labels on a 3-D axes, so that tick labels and axis labels do not
    overlap; the box is zoomed out a little to leave room for the z label (layouts do not reserve it)."""
    from matplotlib.ticker import MaxNLocator

    for axis in (axes.xaxis, axes.yaxis, axes.zaxis):
        axis.set_major_locator(MaxNLocator(nbins=nbins))
        axis.labelpad = labelpad
    axes.tick_params(labelsize=8, pad=1)
    axes.set_box_aspect(None, zoom=0.85)


def _time_axis(axes, times, *values, log_time: bool):
    """Drop ``t = 0`` samples on a logarithmic time axis."""
    if not log_time:
        return (times, *values)
    axes.set_xscale("log")
    keep = times > 0
    return (times[keep], *(value[keep] for value in values))


def _spread(positions, gap: float) -> np.ndarray:
    """Move sorted 1-D label positions apart to at least ``gap``, staying near the originals."""
    order = np.argsort(positions)
    placed = np.asarray(positions, dtype=float)[order].copy()
    for _ in range(len(placed)):
        moved = False
        for k in range(1, len(placed)):
            overlap = gap - (placed[k] - placed[k - 1])
            if overlap > 1e-12:
                placed[k - 1] -= overlap / 2
                placed[k] += overlap / 2
                moved = True
        if not moved:
            break
    result = np.empty_like(placed)
    result[order] = placed
    return result


def _level_labels(axes, values, labels, *, fontsize: float = 8.0) -> None:
    """Label horizontal levels at the right edge, spread so that labels never overlap."""
    if not values:
        return
    axes.autoscale_view()
    to_fraction = axes.transScale + axes.transLimits
    fractions = np.array([to_fraction.transform((0.5, v))[1] for v in values])
    height_points = axes.bbox.height * 72.0 / axes.get_figure().dpi  # works in subfigures too
    gap = 1.25 * fontsize / max(height_points, 1.0)
    targets = _spread(fractions, gap)
    for value, label, fraction, target in zip(values, labels, fractions, targets):
        moved = abs(target - fraction) > 0.2 * gap
        axes.annotate(
            label,
            xy=(1.0, value),
            xycoords=("axes fraction", "data"),
            xytext=(1.02 + (0.02 if moved else 0.0), target),
            textcoords="axes fraction",
            va="center",
            fontsize=fontsize,
            color="0.3",
            annotation_clip=False,
            arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 0}
            if moved
            else None,
        )


# ---------------------------------------------------------------------------------------- loss
def loss_curve(
    trajectories,
    *,
    labels=None,
    log_time: bool = False,
    levels: str = "visited",
    axes=None,
) -> Figure:
    """Loss against time with the critical values drawn as labelled horizontal levels.

    Parameters
    ----------
    trajectories : Trajectory or sequence of Trajectory
        Runs of one problem (flows or gradient descent); each is one curve.
    labels : sequence of str, optional
        Legend entries, one per trajectory; by default ``run 1, run 2, ...`` when there are
        several, and no legend for a single run.
    log_time : bool
        Use a logarithmic time axis (samples at ``t = 0`` are dropped).
    levels : {"visited", "all", "none"}
        Which critical values ``L_S`` to draw as dashed levels labelled by ``S``: those some
        trajectory plateaus at (:func:`quotient.graph.plateaus`), every one below the largest
        loss, or none.
    axes : matplotlib.axes.Axes, optional
        Draw here instead of in a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The loss is drawn on a symmetric-log scale (linear below the power of ten just under
        ``10^-3`` times the largest loss or level) from 0 to above the largest loss or level, so
        that both the plateaus and the final convergence are visible and a run that stays on a
        plateau is a flat line (not a tiny change stretched to the full height); the level labels
        sit outside the right edge, spread apart where levels are close.

    Raises
    ------
    ValueError
        If ``levels`` is not one of the three names or ``labels`` does not hold one label per
        trajectory.
    """
    runs = _as_list(trajectories)
    labels = _run_labels(labels, len(runs))
    if levels not in ("visited", "all", "none"):
        raise ValueError(f"levels must be 'visited', 'all' or 'none'; got {levels!r}")
    axes = _axes(axes)
    problem = runs[0].problem
    top = max(float(np.max(run.loss)) for run in runs)
    if levels == "visited":
        shown = {p.critical_value for run in runs for p in plateaus(run.problem, run.times, run.end_to_end)}
    elif levels == "all":
        shown = {value for value in critical_values(problem) if value.value <= 1.05 * top}
    else:
        shown = set()
    shown = sorted(shown, key=lambda v: v.value)
    for value in shown:
        axes.axhline(value.value, color=_LEVEL, linewidth=0.8, linestyle="--", zorder=1)
    for k, (run, label) in enumerate(zip(runs, labels)):
        times, loss = _time_axis(axes, run.times, run.loss, log_time=log_time)
        axes.plot(times, loss, color=PALETTE[k % len(PALETTE)], linewidth=1.8, zorder=2, label=label)
    # a power of ten as threshold, so that the tick at 0 and the first decade tick keep apart
    highest = max([top] + [v.value for v in shown])
    if not highest > 0:
        highest = 1.0  # a loss that is zero throughout: any scale
    linthresh = 10.0 ** np.floor(np.log10(1e-3 * highest))
    axes.set_yscale("symlog", linthresh=linthresh, linscale=0.6)
    # from just below 0 (the level L = 0 stays off the frame) to above the highest loss or level,
    # whatever the data span: a change of 1e-10 on a plateau stays a flat line (autoscaling would
    # stretch it over the whole height, with no tick label)
    axes.set_ylim(-0.25 * linthresh, highest * 10.0**0.15)
    axes.set_xlabel(r"time $t$")
    axes.set_ylabel(r"loss $L = \frac{1}{2}\,\|\Sigma - W_h \cdots W_1\|_F^2$")
    if any(label is not None for label in labels):
        axes.legend(loc="best", fontsize=8, frameon=True, framealpha=0.9)
    _level_labels(axes, [v.value for v in shown], ["$S = " + learned_label(v.learned) + "$" for v in shown])
    return axes.get_figure()


def singular_value_curves(
    trajectory,
    *,
    log_time: bool = False,
    reference=None,
    plateau_times=None,
    axes=None,
) -> Figure:
    """Singular values of the end-to-end map ``W(t)`` against time, with the targets ``sigma_k``.

    Parameters
    ----------
    trajectory : Trajectory
        One run (flow or gradient descent); its end-to-end maps ``W(t)``, shape
        ``(T, d_h, d_0)``, give the curves and its problem the targets ``sigma_k``.
    log_time : bool
        Use a logarithmic time axis (samples at ``t = 0`` are dropped).
    reference : array_like, shape (T, m), optional
        Predicted singular values at ``trajectory.times`` (e.g. the closed-form mode solution),
        drawn dashed in black over the measured curves.
    plateau_times : array_like, shape (m,), optional
        Predicted time at which each mode is learned, drawn as a vertical dotted line in the
        mode's colour.
    axes : matplotlib.axes.Axes, optional
        Draw here instead of in a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        One curve per singular value of ``W(t)`` (``m = min(d_0, d_h)`` of them), each in the
        colour of the target ``sigma_k`` drawn as a dotted level; the legend sits outside.

    Raises
    ------
    ValueError
        If ``reference`` does not have shape ``(T, m)``.
    """
    axes = _axes(axes)
    values = np.linalg.svd(trajectory.end_to_end, compute_uv=False)
    sigma = np.asarray(trajectory.problem.sigma)
    prediction = None if reference is None else np.asarray(reference, dtype=float)
    if prediction is not None and prediction.shape != values.shape:
        raise ValueError(f"reference must have shape {values.shape} (times, modes); got {prediction.shape}")
    if prediction is None:
        times, values = _time_axis(axes, trajectory.times, values, log_time=log_time)
    else:
        times, values, prediction = _time_axis(axes, trajectory.times, values, prediction, log_time=log_time)
    for k, target in enumerate(sigma):
        colour = PALETTE[k % len(PALETTE)]
        axes.axhline(target, color=colour, linewidth=0.8, linestyle=":")
        axes.plot(
            times, values[:, k], color=colour, linewidth=1.8,
            label=rf"$s_{{{k + 1}}}(W)$, target $\sigma_{{{k + 1}}} = {target:.3g}$",
        )  # fmt: skip
        if prediction is not None:
            axes.plot(times, prediction[:, k], color="black", linewidth=0.9, linestyle="--")
        if plateau_times is not None and np.isfinite(plateau_times[k]):
            axes.axvline(plateau_times[k], color=colour, linewidth=0.9, linestyle=(0, (1, 2)))
    handles, names = axes.get_legend_handles_labels()
    if prediction is not None:
        handles.append(Line2D([], [], color="black", linewidth=0.9, linestyle="--"))
        names.append("closed-form prediction")
    if plateau_times is not None:
        handles.append(Line2D([], [], color="0.3", linewidth=0.9, linestyle=(0, (1, 2))))
        names.append("predicted learning time")
    axes.set_xlabel(r"time $t$")
    axes.set_ylabel(r"singular values $s_k(W(t))$")
    axes.legend(handles, names, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return axes.get_figure()


# ---------------------------------------------------------------------------------------- quotient
def _mode_coordinates(trajectory) -> np.ndarray:
    """``u_k(t) = <W(t), e_k e_k^T>``: diagonal of ``W(t)`` in the singular frame, shape (T, m)."""
    W = trajectory.end_to_end
    m = min(W.shape[-2:])
    return W[:, np.arange(m), np.arange(m)]


def quotient_trajectory(
    trajectories,
    *,
    modes=(1, 2),
    labels=None,
    critical_points: bool = True,
    axes=None,
) -> Figure:
    """A trajectory drawn in the quotient: the coordinates ``u_k(t) = <W(t), u_k v_k^T>``.

    Parameters
    ----------
    trajectories : Trajectory or sequence of Trajectory
        Runs of one problem. Points are in the problem's singular frame, so ``u_k`` is the
        ``k``-th diagonal entry of the end-to-end map ``W(t)``.
    modes : tuple of 2 or 3 int
        The modes (1-based) to use as coordinates; three give a 3-D picture.
    labels : sequence of str, optional
        Legend entries, one per trajectory; by default ``run 1, run 2, ...`` when there are several.
    critical_points : bool
        Mark the canonical critical points ``Sigma_S`` (``u_k = sigma_k`` for ``k`` in ``S``,
        else 0) for every ``S`` within ``modes``, labelled by ``S``. Other sets project onto
        the same marks (only the modes drawn are visible).
    axes : matplotlib.axes.Axes, optional
        A 2-D axes for two modes, a 3-D one for three.

    Returns
    -------
    matplotlib.figure.Figure
        Each trajectory is a line from an open circle (start) to a filled one (end), drawn over
        the hollow diamonds of the critical points (so an end at ``Sigma_S`` shows inside its
        diamond); labels of the critical points sit inside the rectangle of corners (2-D); the
        legend sits outside, on the right.

    Raises
    ------
    ValueError
        If ``modes`` is not 2 or 3 mode numbers in ``1..len(sigma)``, ``labels`` does not hold one
        label per trajectory, or ``axes`` is 2-D for three modes.
    """
    runs = _as_list(trajectories)
    labels = _run_labels(labels, len(runs))
    sigma = np.asarray(runs[0].problem.sigma)
    modes = tuple(int(k) for k in modes)
    if len(modes) not in (2, 3) or any(not 1 <= k <= sigma.size for k in modes):
        raise ValueError(f"modes must be 2 or 3 mode numbers in 1..{sigma.size}; got {modes}")
    three = len(modes) == 3
    axes = _axes(axes, projection="3d" if three else None, width=5.6 if three else 5.2, height=4.6)
    index = [k - 1 for k in modes]
    depth = {"depthshade": False} if three else {}
    if three:
        axes.computed_zorder = False  # draw in zorder: the start and end dots over the diamonds
    if critical_points:
        for size in range(len(modes) + 1):
            for learned in itertools.combinations(modes, size):
                corner = [sigma[k - 1] if k in learned else 0.0 for k in modes]
                # a hollow diamond: a start or end dot at the corner stays visible inside it
                axes.scatter(
                    *([c] for c in corner), s=_CORNER_SIZE, facecolor="none", edgecolor="0.2", linewidth=1.2,
                    marker="D", zorder=4, **depth,
                )  # fmt: skip
                text = "$" + learned_label(learned) + "$"
                if three:  # above the corner when the last mode is learned, below it otherwise
                    top = modes[2] in learned
                    axes.text(*corner, text + "  ", fontsize=9, color="0.2", ha="right", va="bottom" if top else "top")
                else:
                    # inside the rectangle of corners, so inside the axes: towards its centre
                    right, top = modes[0] in learned, modes[1] in learned
                    axes.annotate(
                        text, corner, xytext=(-6 if right else 6, -6 if top else 6), textcoords="offset points",
                        ha="right" if right else "left", va="top" if top else "bottom", fontsize=9, color="0.2",
                    )  # fmt: skip
    for k, (run, label) in enumerate(zip(runs, labels)):
        u = _mode_coordinates(run)[:, index]
        colour = PALETTE[k % len(PALETTE)]
        axes.plot(*u.T, color=colour, linewidth=1.6, label=label, zorder=3)
        start, end = u[0], u[-1]
        axes.scatter(*([c] for c in start), s=_DOT_SIZE, facecolor="white", edgecolor=colour, zorder=5, **depth)
        axes.scatter(*([c] for c in end), s=_DOT_SIZE, color=colour, zorder=6, **depth)
    names = [rf"$u_{{{k}}} = \langle W, u_{{{k}}} v_{{{k}}}^\top \rangle$" for k in modes]
    axes.set_xlabel(names[0])
    axes.set_ylabel(names[1])
    if three:
        axes.set_zlabel(names[2])
        axes.view_init(elev=24, azim=-58)
        _tidy_3d(axes)
    else:
        axes.set_aspect("equal", adjustable="datalim")
    handles, names = axes.get_legend_handles_labels()
    if critical_points:
        handles.append(Line2D([], [], color="0.2", marker="D", markersize=6, markerfacecolor="none", linestyle="none"))
        names.append(r"critical point $\Sigma_S$, labelled by $S$")
    handles += [
        Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none"),
        Line2D([], [], color="0.3", marker="o", linestyle="none"),
    ]
    names += ["start", "end"]
    # outside, on the right: inside it would cover a corner Sigma_S or its label
    axes.legend(handles, names, loc="center left", bbox_to_anchor=(1.12 if three else 1.02, 0.5), fontsize=8, frameon=False)
    return axes.get_figure()


# ---------------------------------------------------------------------------------------- graph
def critical_graph(problem, *, graph=None, trajectory=None, axes=None) -> Figure:
    """The critical values as a Hasse diagram, with the path of a trajectory highlighted.

    Parameters
    ----------
    problem : Problem
        The problem whose critical values ``L_S = 1/2 sum_{i not in S} sigma_i^2`` are drawn.
    graph : CriticalGraph, optional
        The graph to draw; by default :func:`quotient.graph.critical_graph` of ``problem``
        (edges: one more mode learned, solid; a learned mode swapped for a larger one, dotted).
    trajectory : Trajectory, optional
        Its plateaus (:func:`quotient.graph.plateaus`) give the nodes it visits
        (:meth:`CriticalGraph.path`), drawn in colour and joined by arrows in the order visited.
    axes : matplotlib.axes.Axes, optional
        Draw here instead of in a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Node ``S`` sits at ``x = |S|`` (number of modes learned), ``y = L_S``, labelled by ``S``.
    """
    graph = _critical_graph(problem) if graph is None else graph
    nodes = list(graph.nodes)
    axes = _axes(axes, width=6.4, height=4.8)
    x = np.array([len(node.learned) for node in nodes], dtype=float)
    y = np.array([node.value for node in nodes])
    for (a, b), kind in zip(graph.edges, graph.kinds):
        style = "-" if kind == "learn" else ":"
        axes.plot([x[a], x[b]], [y[a], y[b]], color="0.78", linewidth=0.8, linestyle=style, zorder=1)
    path = [] if trajectory is None else list(graph.path(plateaus(problem, trajectory.times, trajectory.end_to_end)))
    on_path = np.zeros(len(nodes), dtype=bool)
    on_path[path] = True
    axes.scatter(x[~on_path], y[~on_path], s=22, color="0.55", zorder=2, label="critical value $L_S$")
    if path:
        axes.scatter(x[on_path], y[on_path], s=46, color=PALETTE[3], zorder=4, label="visited by the flow")
        for a, b in zip(path[:-1], path[1:]):
            axes.annotate(
                "", xy=(x[b], y[b]), xytext=(x[a], y[a]),
                arrowprops={"arrowstyle": "-|>", "color": PALETTE[3], "linewidth": 1.8, "shrinkA": 4, "shrinkB": 4},
                zorder=3,
            )  # fmt: skip
    for n, node in enumerate(nodes):
        axes.annotate(
            "$" + learned_label(node.learned) + "$", (x[n], y[n]), xytext=(5, 0), textcoords="offset points",
            va="center", fontsize=7.5, color="black" if on_path[n] else "0.35",
        )  # fmt: skip
    handles, names = axes.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.6", linewidth=0.8), Line2D([], [], color="0.6", linewidth=0.8, linestyle=":")]
    names += ["learn one more mode", "swap for a larger mode"]
    axes.set_xticks(range(int(x.max()) + 1))
    axes.set_xlim(-0.3, x.max() + 0.7)
    axes.set_xlabel(r"modes learned $|S|$")
    axes.set_ylabel(r"critical value $L_S = \frac{1}{2}\sum_{i \notin S} \sigma_i^2$")
    axes.legend(handles, names, loc="upper right", fontsize=8, framealpha=0.9)
    return axes.get_figure()


# ---------------------------------------------------------------------------------------- fibers
def _scalar_target(problem) -> float:
    if any(d != 1 for d in problem.widths):
        raise ValueError(f"the scalar fiber needs a scalar chain (all widths 1); got widths {problem.widths}")
    if problem.depth not in (2, 3):
        raise ValueError(f"the scalar fiber is drawn for depth 2 or 3; got depth {problem.depth}")
    return float(problem.sigma[0])


def scalar_fiber(
    problem,
    *,
    points=None,
    trajectories=None,
    orbit_curves: int = 6,
    extent: float = 3.0,
    axes=None,
) -> Figure:
    """The global-minimum fiber of a scalar chain, ``w_h ... w_1 = s``, with GL orbit curves.

    Parameters
    ----------
    problem : Problem
        Widths all 1 and depth ``h`` = 2 (the fiber is a hyperbola in the plane) or 3 (a surface
        in space, drawn on the sheet with ``w_1, w_2 > 0``).
    points : tuple of ndarray, optional
        A batch of points ``(w_1, ..., w_h)``, each layer of shape ``(n, 1, 1)`` (e.g.
        ``Fiber.sample``), drawn as dots.
    trajectories : sequence of Trajectory, optional
        Flows drawn in parameter space; the ones that converge end on the fiber.
    orbit_curves : int
        Number of one-parameter subgroup orbits ``g(t) = (e^{t a_1}, ..., e^{t a_{h-1}})``
        through the balanced point ``w_i = s^{1/h}``, for evenly spread unit directions ``a``.
    extent : float
        Coordinates range over ``[-extent, extent]``.
    axes : matplotlib.axes.Axes, optional
        2-D for ``h = 2``, 3-D for ``h = 3``.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    ``GL(1)^{h-1}`` acts by ``w_i -> g_i w_i / g_{i-1}`` and preserves the product, so each
    connected component of the fiber (``s != 0``) is one orbit; the conserved quantities
    ``c_i = w_{i+1}^2 - w_i^2`` label its points, and the balanced point is the one with ``c = 0``.
    """
    s = _scalar_target(problem)
    h = problem.depth
    axes = _axes(axes, projection="3d" if h == 3 else None, width=5.6, height=4.8)
    balanced = np.full(h, abs(s) ** (1.0 / h))
    if s < 0:
        balanced[0] = -balanced[0]
    grid = np.linspace(-extent, extent, 801)
    if h == 2:
        for branch in (grid[grid > 0], grid[grid < 0]):
            w2 = s / branch
            keep = np.abs(w2) <= extent
            axes.plot(branch[keep], w2[keep], color=PALETTE[5], linewidth=2.2, zorder=1)
        axes.plot([], [], color=PALETTE[5], linewidth=2.2, label=rf"fiber $w_2 w_1 = {s:g}$")
    else:
        low = max(abs(s) / extent**2, 1e-3) ** 0.5
        a, b = np.meshgrid(np.geomspace(low, extent, 40), np.geomspace(low, extent, 40))
        c = s / (a * b)
        c[np.abs(c) > extent] = np.nan
        axes.plot_surface(a, b, c, color=PALETTE[5], alpha=0.35, linewidth=0, antialiased=True, shade=False)
        axes.plot([], [], color=PALETTE[5], linewidth=6, alpha=0.5, label=rf"fiber $w_3 w_2 w_1 = {s:g}$")
    t = np.linspace(-3.0, 3.0, 601)
    for n in range(orbit_curves):
        angle = np.pi * n / max(orbit_curves, 1)
        direction = np.array([np.cos(angle), np.sin(angle)])[: h - 1] if h == 3 else np.array([1.0 if n == 0 else -1.0])
        g = np.exp(np.outer(t, direction))                  # (T, h-1)
        g_full = np.hstack([np.ones((t.size, 1)), g, np.ones((t.size, 1))])
        curve = balanced * g_full[:, 1:] / g_full[:, :-1]   # w_i -> g_i w_i / g_{i-1}
        keep = np.all(np.abs(curve) <= extent, axis=1)
        curve = np.where(keep[:, None], curve, np.nan)
        axes.plot(*curve.T, color=PALETTE[0], linewidth=1.0, label="GL orbit curves" if n == 0 else None, zorder=2)
        if h == 2:
            break
    # 3-D axes do not clip: keep only what lies in the box drawn (the sheet w_1, w_2 > 0 for h = 3)
    if h == 3:
        box = np.array([[0.0, extent], [0.0, extent], [-extent if s < 0 else 0.0, extent]])
    else:
        box = np.array([[-extent, extent], [-extent, extent]])

    def inside(coords):
        return np.all((coords >= box[:, 0]) & (coords <= box[:, 1]), axis=-1)

    scatter = {"depthshade": False} if h == 3 else {}
    axes.scatter(*balanced, s=40, color="black", marker="*", zorder=5, label="balanced point ($C = 0$)", **scatter)
    if points is not None:
        coords = np.stack([np.asarray(layer).reshape(-1) for layer in points], axis=1)
        axes.scatter(*coords[inside(coords)].T, s=12, color=PALETTE[1], zorder=4, label="fiber samples", **scatter)
    for k, run in enumerate(trajectories or []):
        path = np.stack([np.asarray(layer).reshape(len(run), -1)[:, 0] for layer in run.points], axis=1)
        path = np.where(inside(path)[:, None], path, np.nan)
        axes.plot(*path.T, color=PALETTE[3], linewidth=1.4, label="gradient flows" if k == 0 else None, zorder=3)
        if inside(path[0]):
            axes.scatter(*path[0], s=14, facecolor="white", edgecolor=PALETTE[3], zorder=5, **scatter)
    axes.set_xlabel("$w_1$")
    axes.set_ylabel("$w_2$")
    axes.set_xlim(*box[0])
    axes.set_ylim(*box[1])
    if h == 3:
        axes.set_zlim(*box[2])
        axes.set_zlabel("$w_3$")
        _tidy_3d(axes)
    else:
        axes.set_aspect("equal")
    axes.legend(loc="upper right" if h == 3 else "upper left", fontsize=8, framealpha=0.9)
    return axes.get_figure()


def _bound(value: float, floor: int = -12) -> str:
    """``< 10^k`` for the smallest decade ``k >= floor`` above ``value``: round-off is not printed.

    A number made of rounding errors (``1.3e-15`` on one machine, ``8.9e-16`` on another) says
    nothing but "tiny"; a decade bound says that and stays the same on every machine.
    """
    if not np.isfinite(value):
        return f"= {value}"
    exponent = floor if value < 10.0**floor else int(np.ceil(np.log10(value)))
    if value >= 10.0**exponent:  # a power of ten itself, or log10 rounded down
        exponent += 1
    return f"< 10^{{{exponent}}}"


def _layer_entry(points, spec) -> np.ndarray:
    layer, row, column = spec
    return np.asarray(points[layer - 1])[:, row, column]


def fiber_projection(
    points,
    *,
    entries=((1, 0, 0), (2, 0, 0), (3, 0, 0)),
    representative=None,
    classes=None,
    figure=None,
) -> Figure:
    """Points of a fiber seen from the quotient and from inside the fiber.

    Parameters
    ----------
    points : tuple of ndarray
        A batch of points, layer ``i`` of shape ``(n, d_i, d_{i-1})`` (e.g. ``Fiber.sample``).
    entries : tuple of 2 or 3 (layer, row, column)
        Layer entries (layer 1-based, row and column 0-based) used as fiber coordinates.
    representative : tuple of ndarray, optional
        A point, layers of shapes ``(d_i, d_{i-1})``, drawn as a hollow black star in both panels
        (e.g. the canonical point).
    classes : sequence of str, optional
        One label per point (e.g. :func:`quotient.classify`'s answer); points are coloured
        by class.
    figure : matplotlib.figure.Figure, optional
        Draw into this (empty) figure.

    Returns
    -------
    matplotlib.figure.Figure
        Left: the conserved-quantity label ``(tr C_1, tr C_2)`` (``||C_1||_F`` alone for two
        layers), the part of the quotient map that varies along the fiber; the title gives the
        spread of the end-to-end map ``W``, constant on the fiber. Right: the chosen entries.

    Raises
    ------
    ValueError
        If the points have fewer than two layers, ``entries`` does not name 2 or 3 entries, or
        ``classes`` does not hold one label per point.
    """
    layers = tuple(np.asarray(layer, dtype=float) for layer in points)
    if len(layers) < 2:
        raise ValueError("a fiber picture needs at least two layers")
    entries = tuple(tuple(int(v) for v in spec) for spec in entries)
    if len(entries) not in (2, 3):
        raise ValueError(f"entries must name 2 or 3 layer entries; got {len(entries)}")
    n = layers[0].shape[0]
    kinds = ["fiber samples"] * n if classes is None else [str(c) for c in classes]
    if len(kinds) != n:
        raise ValueError(f"classes must hold one label per point ({n}); got {len(kinds)}")
    names = list(dict.fromkeys(kinds))
    colours = {name: PALETTE[(k + 1) % len(PALETTE)] for k, name in enumerate(names)}
    figure = figure if figure is not None else _figure(10.0, 4.4)
    left = figure.add_subplot(1, 2, 1)
    right = figure.add_subplot(1, 2, 2, projection="3d" if len(entries) == 3 else None)

    def label(batch):
        C = conserved_quantities(batch)
        if len(C) == 1:
            return np.linalg.norm(C[0], axis=(-2, -1)), np.zeros(C[0].shape[0])
        return np.trace(C[0], axis1=-2, axis2=-1), np.trace(C[1], axis1=-2, axis2=-1)

    x, y = label(layers)
    W = end_to_end(layers)
    spread = float(np.max(np.abs(W - W[:1]))) if n else 0.0
    coords = [_layer_entry(layers, spec) for spec in entries]
    kinds = np.array(kinds)
    scatter = {"depthshade": False} if len(entries) == 3 else {}
    for name in names:
        mask = kinds == name
        left.scatter(x[mask], y[mask], s=14, color=colours[name], label=name, alpha=0.85)
        right.scatter(*(c[mask] for c in coords), s=14, color=colours[name], label=name, alpha=0.85, **scatter)
    if representative is not None:
        rep = tuple(np.asarray(layer, dtype=float)[None] for layer in representative)
        rx, ry = label(rep)
        star = {"s": 110, "marker": "*", "facecolor": "none", "edgecolor": "black", "linewidth": 1.0, "zorder": 5}
        left.scatter(rx, ry, label="representative", **star)  # hollow: a sample under it stays visible
        right.scatter(*(_layer_entry(rep, spec) for spec in entries), **star, **scatter)
    if len(layers) == 2:
        left.set_xlabel(r"$\|C_1\|_F$")
        left.set_ylabel("(one conserved quantity)")
    else:
        left.set_xlabel(r"$\mathrm{tr}\, C_1$")
        left.set_ylabel(r"$\mathrm{tr}\, C_2$")
    left.set_title(rf"conserved label; $\max |W - W^{{(0)}}| {_bound(spread)}$", fontsize=9)
    left.legend(loc="best", fontsize=8, framealpha=0.9)
    axis_names = [rf"$(W_{{{layer}}})_{{{row + 1}{column + 1}}}$" for layer, row, column in entries]
    right.set_xlabel(axis_names[0])
    right.set_ylabel(axis_names[1])
    if len(entries) == 3:
        right.set_zlabel(axis_names[2])
        right.computed_zorder = False  # the star over the samples, as in the left panel
        _tidy_3d(right)
    right.set_title("fiber coordinates", fontsize=9)
    return figure


# ---------------------------------------------------------------------------------------- hessian
def hessian_spectrum(
    problem, point, *, atol: float | None = None, yscale: str = "linear", title: str | None = None, axes=None
) -> Figure:
    """Eigenvalues of the Hessian at a point, negative, zero and positive parts coloured.

    Parameters
    ----------
    problem : Problem
        The problem whose loss's Hessian is taken.
    point : tuple of ndarray
        ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``; usually a critical point. The dense Hessian (:meth:`Problem.hessian`) is used, so the
        network must be small.
    atol : float, optional
        Eigenvalues with ``|lambda| <= atol`` count as zero; default
        :func:`quotient.critical.zero_eigenvalue_threshold` (the rule of :func:`hessian_inertia`:
        ``ZERO_EIGENVALUE_RTOL * max |lambda|``) with the rounding floor
        ``100 N eps max(1, max |lambda|)``, ``N`` the number of parameters.
    yscale : {"linear", "symlog"}
        ``"symlog"`` is logarithmic beyond the smallest eigenvalue counted as non-zero, to
        separate small eigenvalues from the zero ones.
    title : str, optional
        Title of the axes; by default none.
    axes : matplotlib.axes.Axes, optional
        Draw here instead of in a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Eigenvalues in increasing order against their index, as stems from zero; the legend
        gives the inertia (how many negative, zero and positive).

    Raises
    ------
    ValueError
        If ``yscale`` is neither ``"linear"`` nor ``"symlog"``.
    """
    if yscale not in ("linear", "symlog"):
        raise ValueError(f"yscale must be 'linear' or 'symlog'; got {yscale!r}")
    eigenvalues = np.linalg.eigvalsh(problem.hessian(point))
    n = eigenvalues.size
    if atol is None:
        floor = 100 * n * np.finfo(float).eps * max(1.0, float(np.max(np.abs(eigenvalues))))
        atol = zero_eigenvalue_threshold(eigenvalues, floor=floor)
    axes = _axes(axes, width=6.0, height=3.6)
    index = np.arange(1, n + 1)
    parts = (
        (eigenvalues < -atol, _NEGATIVE, "negative"),
        (np.abs(eigenvalues) <= atol, _ZERO, "zero"),
        (eigenvalues > atol, _POSITIVE, "positive"),
    )
    for mask, colour, name in parts:
        shown = np.where(mask, eigenvalues, np.nan)
        if name == "zero":
            shown = np.where(mask, 0.0, np.nan)
        axes.vlines(index[mask], 0, shown[mask], color=colour, linewidth=1.2)
        axes.scatter(index[mask], shown[mask], s=14, color=colour, zorder=3, label=f"{name} ({int(mask.sum())})")
    axes.axhline(0.0, color="0.3", linewidth=0.6)
    if not np.any(np.abs(eigenvalues) > atol):
        axes.set_ylim(-1.0, 1.0)  # all zero (the origin for h >= 3): no scale to read off the data
    if yscale == "symlog":
        nonzero = np.abs(eigenvalues[np.abs(eigenvalues) > atol])
        axes.set_yscale("symlog", linthresh=float(nonzero.min()) if nonzero.size else 1.0, linscale=1.0)
    axes.margins(y=0.08)
    axes.set_xlabel(r"eigenvalue index $k$ (increasing)")
    axes.set_ylabel(r"Hessian eigenvalue $\lambda_k$")
    axes.legend(loc="best", fontsize=8, framealpha=0.9, title=f"inertia (|λ| ≤ {atol:.0e} is zero)", title_fontsize=7)
    if title is not None:
        axes.set_title(title, fontsize=9)
    return axes.get_figure()


# ---------------------------------------------------------------------------------------- conservation
def conservation_drift(
    trajectories, *, labels=None, log_time: bool = False, floor: float = 1e-12, axes=None
) -> Figure:
    """Drift of the conserved quantities ``C_i`` against time, for flows and gradient descent.

    Parameters
    ----------
    trajectories : Trajectory or sequence of Trajectory
        Runs (flows or gradient descent, any problems); each is one curve.
    labels : sequence of str, optional
        Legend entries; by default the method with its tolerance or step (made distinct by
        ``(run k)`` when two runs share them).
    log_time : bool
        Use a logarithmic time axis (samples at ``t = 0`` are dropped).
    floor : float
        Round-off level: a relative drift below it is rounding error, which differs from one
        BLAS kernel to another, so it is drawn at ``floor``, in a grey band labelled as round-off.
    axes : matplotlib.axes.Axes, optional
        Draw here instead of in a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        ``||C(t) - C(0)|| / max(||W(0)||^2, ||W(t)||^2)`` (``Trajectory.conservation_drift``) on a
        log axis; exact zeros (``t = 0``) are not drawn. Flows stay at the level of their
        tolerance; gradient descent drifts by ``O(step^2)`` per step.

    Raises
    ------
    ValueError
        If ``floor`` is not a positive finite number or ``labels`` does not hold one label per
        trajectory.
    """
    if not (np.isfinite(floor) and floor > 0):
        raise ValueError(f"floor must be a positive number; got {floor!r}")
    runs = _as_list(trajectories)
    if labels is None:
        labels = [
            f"gradient descent, step {run.step:g}" if run.step is not None else f"flow {run.method}, rtol {run.rtol:g}"
            for run in runs
        ]
        labels = _distinct(labels)
    labels = _labels(labels, len(runs))
    axes = _axes(axes, width=6.0, height=3.8)
    for k, (run, label) in enumerate(zip(runs, labels)):
        times, drift = _time_axis(axes, run.times, run.conservation_drift, log_time=log_time)
        drift = np.where(drift > 0, np.maximum(drift, floor), np.nan)
        style = "-" if run.step is None else "--"
        axes.plot(times, drift, color=PALETTE[k % len(PALETTE)], linewidth=1.6, linestyle=style, label=label)
    axes.set_yscale("log")
    axes.axhspan(floor / 10.0, floor, color="0.9", zorder=0, linewidth=0, label=f"round-off (below {floor:g})")
    axes.set_ylim(bottom=floor / 3.0)
    axes.set_xlabel(r"time $t$")
    axes.set_ylabel(r"drift $\|C(t) - C(0)\| \,/\, \|W\|^2$")
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return axes.get_figure()


# ---------------------------------------------------------------------------------------- fiber samples
def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log10(1.0 + np.abs(x))


def fiber_samples(fiber, samples, *, classes=None) -> Figure:
    """Samples of a fiber (:meth:`quotient.Fiber.sample`) in a few coordinates of parameter space.

    Parameters
    ----------
    fiber : Fiber
        The fiber sampled (:func:`quotient.fiber`): its problem, critical value and canonical
        representative are drawn with the samples.
    samples : tuple of ndarray
        A batch of points of the fiber, layer ``i`` of shape ``(n, d_i, d_{i-1})``.
    classes : sequence of str, optional
        One label per sample (e.g. :func:`quotient.classify`'s answer), used for the colours.

    Returns
    -------
    matplotlib.figure.Figure
        Scalar chains (all widths 1): the samples in ``(w_1, w_2)`` for ``h = 2`` with the
        hyperbola ``w_2 w_1 = sigma`` of the global minimum, or in ``(w_1, w_2, w_3)`` for
        ``h >= 3`` with the surface ``w_3 w_2 w_1 = sigma`` (``h = 3``). Matrices: the layer norms
        ``||W_1||_F``, ``||W_2||_F`` and ``||W_h||_F`` (``W_1[0, 0]`` as third coordinate for
        ``h = 2``) on signed logarithmic axes ``sign(x) log10(1 + |x|)``, since the fiber is
        unbounded (the title says so). The canonical representative is the hollow black star,
        drawn under the samples; samples that coincide in the picture (the origin's fiber holds many
        copies of the origin) are one larger dot labelled with their count, and the legend gives
        the number of samples of each class.
    """
    layers = tuple(np.asarray(layer, dtype=float) for layer in samples)
    n = layers[0].shape[0]
    problem, h = fiber.problem, len(layers)
    labels = ["sample"] * n if classes is None else [str(c) for c in classes]
    names = list(dict.fromkeys(labels))
    scalar = all(d == 1 for d in problem.widths)
    if scalar:
        coordinates = [layer[:, 0, 0] for layer in layers[:3]]
        representative = [float(layer[0, 0]) for layer in fiber.representative[:3]]
        axis_names = [f"$w_{k}$" for k in range(1, len(coordinates) + 1)]
    else:
        # layer norms: distinct points of a fiber rarely share them (entries do: the origin's fiber
        # holds many points whose first entries all vanish); h = 2 adds the entry W_1[0, 0]
        picks = [0, 1, h - 1] if h >= 3 else [0, 1]
        coordinates = [_signed_log(np.linalg.norm(layers[i], axis=(1, 2))) for i in picks]
        representative = [float(_signed_log(np.linalg.norm(fiber.representative[i]))) for i in picks]
        axis_names = [rf"$\mathrm{{slog}}\, \|W_{{{i + 1}}}\|_F$" for i in picks]
        if h == 2:
            coordinates.append(_signed_log(layers[0][:, 0, 0]))
            representative.append(float(_signed_log(fiber.representative[0][0, 0])))
            axis_names.append(r"$\mathrm{slog}\, W_1[0,0]$")
    three = len(coordinates) == 3
    figure = _figure(6.0, 5.2 if three else 4.4)
    axes = figure.add_subplot(projection="3d" if three else None)
    if scalar and problem.sigma[0] > 0 and len(fiber.learned) == 1:
        s = float(problem.sigma[0])
        extent = max(3.0, 1.2 * float(np.max(np.abs(np.concatenate(coordinates))))) if n else 3.0
        if h == 2:
            grid = np.geomspace(s / extent, extent, 400)
            for sign in (1.0, -1.0):
                axes.plot(sign * grid, sign * s / grid, color=PALETTE[5], linewidth=1.6, zorder=1)
        elif h == 3:
            a, b = np.meshgrid(np.geomspace(1e-2, extent, 30), np.geomspace(1e-2, extent, 30))
            c = s / (a * b)
            c[np.abs(c) > extent] = np.nan
            for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                axes.plot_surface(sa * a, sb * b, sa * sb * c, color=PALETTE[5], alpha=0.18, linewidth=0)
    if three:
        axes.computed_zorder = False  # draw in zorder: samples over the canonical point's star
    # the star hollow and underneath: samples at the canonical point (the origin's fiber has many)
    # stay visible on top of it
    axes.scatter(
        *representative, s=160, marker="*", facecolor="none", edgecolor="black", linewidth=1.0,
        label="canonical point", zorder=3,
    )  # fmt: skip
    # rarest class on top; points that coincide in the picture are one dot, larger, with their count
    order = sorted(range(len(names)), key=lambda k: -labels.count(names[k]))
    for rank, k in enumerate(order):
        name = names[k]
        mask = np.array([label == name for label in labels])
        picked = np.stack([x[mask] for x in coordinates], axis=1)
        places, counts = np.unique(np.round(picked, 9), axis=0, return_counts=True)
        axes.scatter(
            *places.T, s=12.0 * np.sqrt(counts), color=PALETTE[k % len(PALETTE)], alpha=0.8, zorder=4 + rank,
            label=f"{name.replace('nonstrict', 'non-strict').replace('_', ' ')} ({int(mask.sum())})",
            **({"depthshade": False} if three else {}),
        )  # fmt: skip
        for place, count in zip(places, counts):
            if count > 1:
                axes.text(*place, f"  {count}x", fontsize=8, color="0.15", ha="left", va="bottom", zorder=10)
    axes.set_xlabel(axis_names[0])
    axes.set_ylabel(axis_names[1])
    if three:
        axes.set_zlabel(axis_names[2])
        _tidy_3d(axes, nbins=5)
    title = f"fiber of $L_S = {fiber.value:.4g}$, $S = {learned_label(fiber.learned)}$: {n} critical points"
    if not scalar:
        title += "\naxes: " + r"$\mathrm{slog}\, x = \mathrm{sign}(x) \log_{10}(1 + |x|)$ of the layer norms"
    axes.set_title(title, fontsize=10)
    axes.legend(loc="upper left", fontsize=8, framealpha=0.9)
    return figure


# ---------------------------------------------------------------------------------------- symmetry
#: Colours of the three hidden symmetry groups in the symmetry pictures.
_GROUP_COLOURS = {"gl": PALETTE[0], "orthogonal": PALETTE[3], "rescaling": PALETTE[2]}
_GROUP_NAMES = {"gl": "GL", "orthogonal": "orthogonal", "rescaling": "rescaling"}


def _algebra_direction(hidden, group: str, generator) -> tuple:
    """A random unit element ``xi`` (Frobenius norm over all factors) of the group's Lie algebra:
    Gaussian matrices for GL, their skew parts for the orthogonal group, Gaussian diagonals for the
    rescalings. ``None`` when the algebra is zero (the orthogonal group of width-1 hidden layers)."""
    factors = []
    for d in hidden:
        Z = generator.standard_normal((d, d))
        if group == "orthogonal":
            Z = (Z - Z.T) / 2.0
        elif group == "rescaling":
            Z = np.diag(np.diag(Z))
        factors.append(Z)
    norm = np.sqrt(sum(float(np.sum(Z**2)) for Z in factors))
    return None if norm == 0.0 else tuple(Z / norm for Z in factors)


def _exponentials(xi, times, group: str) -> list:
    """``exp(t xi)`` for every ``t`` in ``times``, one tuple of factors per ``t``.

    By one eigendecomposition ``xi_i = V diag(lambda) V^{-1}`` per factor (a random Gaussian or
    skew matrix is diagonalisable; skew ones with unitary ``V``), ``exp(t xi_i) = V diag(e^{t lambda})
    V^{-1}``, real part (``scipy.linalg.expm`` per ``t`` where ``cond(V) > 1e6``); diagonal exactly
    for the rescalings, so that the membership check sees one.
    """
    factors = []
    for Z in xi:
        if group == "rescaling":
            factors.append(np.stack([np.diag(np.exp(t * np.diag(Z))) for t in times]))
            continue
        values, vectors = np.linalg.eig(Z)
        if np.linalg.cond(vectors) > 1e6:  # nearly defective: eigenvectors lose the digits
            factors.append(np.stack([expm(t * Z) for t in times]))
            continue
        inverse = np.linalg.inv(vectors)
        scaled = vectors[None] * np.exp(np.multiply.outer(times, values))[:, None, :]
        factors.append(np.real(scaled @ inverse[None]))
    return [tuple(f[k] for f in factors) for k in range(len(times))]


def _components(hidden, group: str) -> list:
    """One element in each connected component of the group: every choice of ``I`` or the reflection
    ``diag(-1, 1, ..., 1)`` per hidden layer for GL and the orthogonal group (``2^{h-1}`` components);
    the identity for the (connected) rescalings."""
    if group == "rescaling":
        return [tuple(np.eye(d) for d in hidden)]
    choices = []
    for signs in itertools.product((1.0, -1.0), repeat=len(hidden)):
        choices.append(tuple(np.diag(np.r_[s, np.ones(d - 1)]) for s, d in zip(signs, hidden)))
    return choices


def _orbit_curves(point, group: str, *, directions: int, span: float, samples: int, rng) -> list:
    """Curves ``t -> c exp(t xi) . x``, ``t`` in ``[-span, span]``, for ``c`` in every component and
    ``directions`` random unit ``xi``; each curve is a batch of points (layers of shape
    ``(samples, d_i, d_{i-1})``). A zero algebra gives the points ``c . x``, one per component."""
    widths = widths_of(point)
    hidden = widths[1:-1]
    generator = np.random.default_rng(rng)
    count = min(directions, as_group(group, widths).dim)
    xis = [_algebra_direction(hidden, group, generator) for _ in range(count)]
    times = np.linspace(-span, span, samples) if count else np.zeros(1)
    curves = []
    exponentials = [_exponentials(xi, times, group) for xi in xis]
    for component in _components(hidden, group):
        for elements in exponentials or [[None]]:
            moved = []
            for element in elements:
                g = component if element is None else compose(component, element)
                moved.append(act(point, g, group=group))
            curves.append(tuple(np.stack([m[i] for m in moved]) for i in range(len(point))))
    return curves


def group_orbits(
    point,
    *,
    groups=("gl", "orthogonal", "rescaling"),
    entries=((1, 0, 0), (2, 0, 0)),
    directions: int = 3,
    span: float = 2.0,
    samples: int = 161,
    extent: float | None = None,
    rng=0,
    axes=None,
) -> Figure:
    """The orbit of one point under each hidden symmetry group, in two layer entries.

    Parameters
    ----------
    point : tuple of ndarray
        ``x = (W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})``, ``h >= 2``.
    groups : sequence of {"gl", "orthogonal", "rescaling"}
        The groups whose orbits ``G . x`` are drawn (or :class:`quotient.groups.HiddenGroup` objects for the point's widths, through ``as_group``).
    entries : tuple of 2 (layer, row, column)
        Layer entries (layer 1-based, row and column 0-based) used as coordinates.
    directions : int
        Number of random unit Lie-algebra directions ``xi`` (at most the algebra's dimension).
    span : float
        Each curve is ``t -> c exp(t xi) . x`` for ``t`` in ``[-span, span]``.
    samples : int
        Points per curve.
    extent : float, optional
        Draw the square ``[-extent, extent]^2`` (parts of curves outside it are not drawn); by
        default the limits fit the curves.
    rng : int or numpy.random.Generator
        Seed of the directions.
    axes : matplotlib.axes.Axes, optional
        Draw here instead of in a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        For every group and every element ``c`` of each connected component (``I`` or the
        reflection ``diag(-1, 1, ..., 1)`` per hidden layer for GL and the orthogonal group, the
        identity for the connected rescalings), the one-parameter curves ``c exp(t xi) . x`` through
        ``c . x`` (:func:`quotient.symmetry.act`): lines for GL and the rescalings, a line or, where
        the orthogonal algebra is zero (hidden widths 1), a marker per component. The point ``x``
        is the black star. The title bounds the largest change ``max |W - W(x)|`` of the
        end-to-end map over all points drawn: the orbits lie in the fiber of ``W(x)``.

        For the scalar chain ``(1, 1, 1)`` in ``(w_1, w_2)`` this is the whole orbit, exactly:
        ``GL(1)`` gives both branches of the hyperbola ``w_1 w_2 = c``, the rescalings the branch
        through ``x``, ``O(1) = {1, -1}`` the two points ``x`` and ``-x``. For larger networks it
        is a 2-D projection of a few curves of each orbit.

    Raises
    ------
    ValueError
        If ``point`` has fewer than two layers, a group is unknown, or ``entries`` does not name
        two entries of the layers.
    """
    layers = as_point(point, "point")
    if len(layers) < 2:
        raise ValueError(f"point must have at least two layers (a hidden layer to act on); got {len(layers)}")
    names = [as_group(group, widths_of(layers)).name for group in groups]
    entries = tuple(tuple(int(v) for v in spec) for spec in entries)
    if len(entries) != 2:
        raise ValueError(f"entries must name 2 layer entries; got {len(entries)}")
    for layer, row, column in entries:
        inside = 1 <= layer <= len(layers) and 0 <= row < layers[layer - 1].shape[0]
        if not (inside and 0 <= column < layers[layer - 1].shape[1]):
            shapes = [W.shape for W in layers]
            raise ValueError(f"entries: ({layer}, {row}, {column}) is not an entry of the layers of shapes {shapes}")
    if extent is not None:
        check_positive("extent", extent)
    check_positive("span", span)
    directions = check_count("directions", directions)
    samples = check_count("samples", samples, 2)
    W0 = end_to_end(layers)
    axes = _axes(axes, width=5.6, height=5.0)
    hidden = widths_of(layers)[1:-1]
    # line width, opacity and style per group: GL wide and pale under the others (the rescaling
    # orbit lies in the GL orbit), the orthogonal one dashed
    styles = {"gl": (4.5, 0.35, "-"), "rescaling": (1.8, 1.0, "-"), "orthogonal": (1.6, 1.0, "--")}
    spread = 0.0
    handles, labels = [], []
    for name in names:
        colour = _GROUP_COLOURS[name]
        width, alpha, style = styles[name]
        curves = _orbit_curves(layers, name, directions=directions, span=span, samples=samples, rng=rng)
        isolated = len(curves[0][0]) == 1  # a zero Lie algebra: the orbit is one point per component
        for curve in curves:
            spread = max(spread, float(np.max(np.abs(end_to_end(curve) - W0))))
            x, y = (_layer_entry(curve, spec) for spec in entries)
            if extent is not None:
                outside = (np.abs(x) > extent) | (np.abs(y) > extent)
                x, y = np.where(outside, np.nan, x), np.where(outside, np.nan, y)
            if isolated:
                axes.scatter(x, y, s=70, facecolor="none", edgecolor=colour, linewidth=1.8, zorder=4)
            else:
                axes.plot(x, y, color=colour, linewidth=width, alpha=alpha, linestyle=style, zorder=2)
        label = f"{_GROUP_NAMES[name]} orbit"
        if name != "rescaling":
            label += f" ({len(_components(hidden, name))} components)"
        if isolated:
            handles.append(Line2D([], [], color=colour, marker="o", markerfacecolor="none", markersize=8, linestyle="none"))
            label += f": {len(curves)} points"
        else:
            handles.append(Line2D([], [], color=colour, linewidth=width, alpha=alpha, linestyle=style))
        labels.append(label)
    x0, y0 = (float(_layer_entry(tuple(W[None] for W in layers), spec)[0]) for spec in entries)
    axes.scatter([x0], [y0], s=120, marker="*", color="black", zorder=5)
    handles.append(Line2D([], [], color="black", marker="*", markersize=10, linestyle="none"))
    labels.append("the point $x$")
    axis_names = [rf"$(W_{{{layer}}})_{{{row + 1}{column + 1}}}$" for layer, row, column in entries]
    if all(W.shape == (1, 1) for W in layers):
        axis_names = [f"$w_{{{layer}}}$" for layer, _, _ in entries]
    axes.set_xlabel(axis_names[0])
    axes.set_ylabel(axis_names[1])
    if extent is not None:
        axes.set_xlim(-extent, extent)
        axes.set_ylim(-extent, extent)
        axes.set_aspect("equal")
    axes.axhline(0.0, color="0.85", linewidth=0.6, zorder=0)
    axes.axvline(0.0, color="0.85", linewidth=0.6, zorder=0)
    widths = "-".join(map(str, widths_of(layers)))
    axes.set_title(f"widths {widths}: on every orbit drawn, $\\max |W - W(x)| {_bound(spread)}$", fontsize=9)
    axes.legend(handles, labels, loc="best", fontsize=8, framealpha=0.9)
    return axes.get_figure()


def _scalar_plane(problem, name: str = "problem") -> None:
    if tuple(problem.widths) != (1, 1, 1):
        raise ValueError(
            f"{name} must be the scalar chain with widths (1, 1, 1) (drawn in the (w_1, w_2) plane); "
            f"got widths {problem.widths}"
        )


def level_set_teleport(problem, point, moved, *, extent: float = 3.0, levels: int = 10, axes=None) -> Figure:
    """The level set of the loss through a point, the point's GL orbit in it, and a teleported point.

    Parameters
    ----------
    problem : Problem
        The scalar chain, widths ``(1, 1, 1)``: the picture is the whole parameter plane ``(w_1, w_2)``.
    point : tuple of ndarray
        ``x = (w_1, w_2)``, each of shape ``(1, 1)``.
    moved : tuple of ndarray
        A point of the same level set, e.g. ``g . x`` for the group element that teleportation
        (maximising the gradient norm over the orbit) returns.
    extent : float
        Draw the square ``[-extent, extent]^2``.
    levels : int
        Number of other contours of ``L`` drawn, spaced evenly in ``log(1 + L)`` up to the largest
        loss in the square.
    axes : matplotlib.axes.Axes, optional
        Draw here instead of in a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Thin grey contours of ``L(w) = l(w_2 w_1)`` (:attr:`Problem.end_to_end_loss`); the level set
        ``{L = L(x)}`` as a thick contour; on it the GL orbit of ``x``, both branches of
        ``w_1 w_2 = w_1(x) w_2(x)``; the arrows ``-grad L`` at ``x`` (open circle) and at the moved
        point (filled), drawn to one common scale, with ``||grad L||`` of both in the legend.

    Raises
    ------
    ValueError
        If the problem is not the scalar chain ``(1, 1, 1)``, or ``moved`` is not on the level set
        of ``x`` (loss different by more than ``1e-9`` relative).

    Notes
    -----
    For the square loss ``L = 1/2 (s - w_1 w_2)^2`` the level set is ``w_1 w_2 = c`` and
    ``w_1 w_2 = 2 s - c`` (``c = w_1(x) w_2(x)``): two GL orbits (four branches), one through ``x``.
    The gradient ``-(s - w_1 w_2) (w_2, w_1)`` is not constant on the orbit: moving along it
    changes ``||grad L||`` at the same loss, which is what teleportation exploits.
    """
    _scalar_plane(problem)
    check_positive("extent", extent)
    levels = check_count("levels", levels, 0)
    x = as_point(point, "point", widths=problem.widths)
    y = as_point(moved, "moved", widths=problem.widths)
    value = problem.loss(x)
    if abs(problem.loss(y) - value) > 1e-9 * max(1.0, abs(value)):
        raise ValueError(
            f"moved must lie on the level set of point: L(point) = {value:.12g}, L(moved) = {problem.loss(y):.12g}"
        )
    axes = _axes(axes, width=7.8, height=4.8)
    grid = np.linspace(-extent, extent, 401)
    w1, w2 = np.meshgrid(grid, grid)
    L = problem.end_to_end_loss.value((w1 * w2)[..., None, None])
    others = np.expm1(np.linspace(0.0, np.log1p(float(L.max())), levels + 2)[1:-1])
    axes.contour(w1, w2, L, levels=others, colors="0.75", linewidths=0.7, zorder=1)
    axes.contour(w1, w2, L, levels=[value], colors=[PALETTE[5]], linewidths=3.0, zorder=2)
    c = float(x[0][0, 0] * x[1][0, 0])
    for branch in (grid[grid > 0], grid[grid < 0]):
        w = c / branch
        keep = np.abs(w) <= extent
        axes.plot(branch[keep], w[keep], color=PALETTE[0], linewidth=1.4, zorder=3)
    gradients = [problem.gradient(p) for p in (x, y)]
    norms = [float(np.sqrt(squared_norm(grad))) for grad in gradients]
    scale = 0.3 * extent / max(max(norms), np.finfo(float).tiny)
    for k, (p, grad) in enumerate(zip((x, y), gradients)):
        start = np.array([p[0][0, 0], p[1][0, 0]])
        step = -scale * np.array([grad[0][0, 0], grad[1][0, 0]])
        axes.annotate(
            "", xy=start + step, xytext=start,
            arrowprops={"arrowstyle": "-|>", "color": PALETTE[3 if k else 1], "linewidth": 1.8, "shrinkA": 0, "shrinkB": 0},
            zorder=4,
        )  # fmt: skip
        face = PALETTE[3] if k else "white"
        axes.scatter([start[0]], [start[1]], s=46, facecolor=face, edgecolor=PALETTE[3 if k else 1], linewidth=1.4, zorder=5)
    handles = [
        Line2D([], [], color="0.75", linewidth=0.7),
        Line2D([], [], color=PALETTE[5], linewidth=3.0),
        Line2D([], [], color=PALETTE[0], linewidth=1.4),
        Line2D([], [], color=PALETTE[1], marker="o", markerfacecolor="white", linestyle="-"),
        Line2D([], [], color=PALETTE[3], marker="o", linestyle="-"),
    ]
    names = [
        "contours of $L$",
        rf"level set $L = {value:.4g}$",
        rf"GL orbit of $x$: $w_1 w_2 = {c:.4g}$",
        rf"$x$, $-\nabla L$: $\|\nabla L\| = {norms[0]:.3g}$",
        rf"moved point, $-\nabla L$: $\|\nabla L\| = {norms[1]:.3g}$",
    ]
    axes.set_xlim(-extent, extent)
    axes.set_ylim(-extent, extent)
    axes.set_aspect("equal")
    axes.set_xlabel("$w_1$")
    axes.set_ylabel("$w_2$")
    axes.set_title(
        rf"same loss $L = {value:.4g}$, gradient norm ${norms[0]:.3g} \to {norms[1]:.3g}$" "\n(arrows to one scale)",
        fontsize=9,
    )
    axes.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return axes.get_figure()


def _same_times(runs, name: str) -> None:
    if len(runs) < 2:
        raise ValueError(f"{name} must hold at least two trajectories (starts on one orbit); got {len(runs)}")
    for k, run in enumerate(runs[1:], start=2):
        if run.times.shape != runs[0].times.shape or not np.array_equal(run.times, runs[0].times):
            raise ValueError(f"{name}: trajectory {k} is sampled at other times than trajectory 1; use one t_eval for all")


def path_products(points, paths=((0,), (1,))) -> np.ndarray:
    """Rescaling-invariant coordinates: the products of the weights along paths through the network.

    Parameters
    ----------
    points : tuple of ndarray
        A batch of points, layer ``k`` of shape ``(T, d_k, d_{k-1})`` (e.g. ``Trajectory.points``).
    paths : sequence of tuple of int
        Each path ``(j_1, ..., j_{h-1})`` names one neuron (0-based) per hidden layer; it runs from
        input 0 to output 0.

    Returns
    -------
    ndarray, shape (T, len(paths))
        ``p = W_h[0, j_{h-1}] W_{h-1}[j_{h-1}, j_{h-2}] ... W_1[j_1, 0]`` per path.

    Raises
    ------
    ValueError
        If the points have fewer than two layers or a path does not name one neuron per hidden
        layer.

    Notes
    -----
    A positive rescaling ``W_k -> D_k W_k D_{k-1}^{-1}`` (``D_0 = D_h = I``) multiplies each factor
    ``W_k[j_k, j_{k-1}]`` by ``D_k[j_k] / D_{k-1}[j_{k-1}]``; along a path from input to output the
    factors cancel, so ``p`` is invariant. The product of only two neighbouring layers,
    ``W_{i+1}[r, j] W_i[j, c]``, is invariant only for ``h = 2``: deeper, the rescalings of
    layers ``i + 1`` and ``i - 1`` change it. For widths ``(1, d, 1)`` the ``d`` products
    ``p_j = W_2[0, j] W_1[j, 0]`` with the signs of ``W_1`` are all the invariants: the ``p_j`` are
    coordinates of the rescaling quotient, and ``W = sum_j p_j``.
    """
    layers = tuple(np.asarray(W, dtype=float) for W in points)
    h = len(layers)
    if h < 2:
        raise ValueError(f"points must have at least two layers (a hidden layer); got {h}")
    paths = [tuple(int(j) for j in path) for path in paths]
    hidden = [W.shape[-2] for W in layers[:-1]]
    for path in paths:
        if len(path) != h - 1 or any(not 0 <= j < d for j, d in zip(path, hidden)):
            raise ValueError(
                f"paths: {path} must name one neuron per hidden layer, in 0..d_i - 1 for hidden widths {tuple(hidden)}"
            )
    products = []
    for path in paths:
        full = (0,) + path + (0,)
        product = np.ones(layers[0].shape[:-2])
        for k, W in enumerate(layers):
            product = product * W[..., full[k + 1], full[k]]
        products.append(product)
    return np.stack(products, axis=-1)


def orthogonal_invariants(points) -> np.ndarray:
    """``(W[0, 0], sum_i ||W_i||_F^2)``: two coordinates unchanged by the orthogonal hidden symmetry.

    For widths ``(1, d, 1)``, with ``a = W_1``, ``b = W_2^T``, the orthogonal quotient has the
    coordinates ``a . b = W``, ``|a|^2`` and ``|b|^2``; along a flow ``|b|^2 - |a|^2 = C_1`` is
    conserved, so these two determine the quotient point.

    Parameters
    ----------
    points : tuple of ndarray
        A batch of points, layer ``i`` of shape ``(T, d_i, d_{i-1})`` (e.g. ``Trajectory.points``),
        or one point (layers ``(d_i, d_{i-1})``).

    Returns
    -------
    ndarray
        Shape ``(T, 2)`` (``(2,)`` for one point): the entry ``W[0, 0]`` of the end-to-end map and
        the squared norm ``sum_i ||W_i||_F^2``.
    """
    layers = tuple(np.asarray(W, dtype=float) for W in points)
    return np.stack([end_to_end(layers)[..., 0, 0], squared_norm(layers)], axis=-1)


def _parameter_gap(runs) -> float:
    """``max_k max_t ||x_k(t) - x_1(t)||_F``: how far apart the runs are in parameter space."""
    first = runs[0].points
    gaps = [np.sqrt(sum(np.sum((A - B) ** 2, axis=(-2, -1)) for A, B in zip(run.points, first))) for run in runs[1:]]
    return max(float(np.max(gap)) for gap in gaps)


def _quotient_panel(axes, runs, coordinates, names, start_label):
    """Runs drawn in quotient coordinates ``(T, 2)``: the first wide and pale, the others thin and
    dashed over it, so that coinciding curves show as one. Returns the largest gap to the first."""
    first = coordinates[0]
    gap = max(float(np.max(np.abs(c - first))) for c in coordinates[1:])
    for k, c in enumerate(coordinates):
        label = start_label if k == 0 else f"start {k + 1}"
        if k == 0:
            axes.plot(*c.T, color=PALETTE[0], linewidth=5.0, alpha=0.35, label=label, zorder=2)
        else:
            axes.plot(*c.T, color=PALETTE[k % 7], linewidth=1.4, linestyle=(0, (4, 2)), label=label, zorder=3)
        axes.scatter(*c[-1:].T, s=22, color=PALETTE[0] if k == 0 else PALETTE[k % 7], zorder=5)
    axes.scatter(*first[:1].T, s=40, facecolor="white", edgecolor="black", zorder=6, label="start in the quotient")
    axes.set_xlabel(names[0])
    axes.set_ylabel(names[1])
    return gap


def rescaling_quotient_flow(rescaled, rotated=None, *, paths=((0,), (1,)), figure=None) -> Figure:
    """Flows from several starts on one orbit, drawn in coordinates of the quotient by the group.

    Parameters
    ----------
    rescaled : sequence of Trajectory
        Flows (one ``t_eval``) from starts ``r_k . x`` on one rescaling orbit (``r_k`` positive
        diagonal, :func:`quotient.random_rescaling`).
    rotated : sequence of Trajectory, optional
        Flows (one ``t_eval``) from starts ``R_k . x`` on one orthogonal orbit
        (:func:`quotient.random_orthogonal`): a second panel, for contrast.
    paths : tuple of 2 paths
        The rescaling-invariant coordinates of the left panel, two path products
        (:func:`path_products`); for ``h = 2`` the path ``(j,)`` gives ``p_j = W_2[0, j] W_1[j, 0]``.
    figure : matplotlib.figure.Figure, optional
        Draw into this (empty) figure.

    Returns
    -------
    matplotlib.figure.Figure
        Left: the rescaled starts in two path products ``(p_a, p_b)``; they are one point of the quotient at
        ``t = 0``, but the curves separate: the rescalings are not isometries, so they do not
        commute with the gradient flow and the flow does not descend to a flow on the rescaling
        quotient (the "projected flow" depends on the representative). Right: the rotated starts
        in the orthogonal invariants ``(W_11, sum_i ||W_i||_F^2)`` (:func:`orthogonal_invariants`):
        the orthogonal group acts by isometries preserving the loss, so ``R . x(t)`` is the flow
        from ``R . x`` and the quotient curves coincide while the points stay apart in parameter
        space. Titles give the largest gap between the quotient curves (on the right as a bound,
        ``< 10^-6`` for the solver errors of flows at ``rtol = 1e-10``, which differ between
        machines) and between the points ``max_t ||x_k(t) - x_1(t)||``; for widths ``(1, 2, 1)`` the global minimum
        ``W = sigma_1`` is drawn dashed (the line ``p_1 + p_2 = sigma_1``, resp. ``W_11 = sigma_1``).

    Raises
    ------
    ValueError
        If ``rescaled`` or ``rotated`` holds fewer than two trajectories or trajectories sampled at
        different times, or ``paths`` does not name two valid paths.
    """
    rescaled = _as_list(rescaled)
    _same_times(rescaled, "rescaled")
    panels = 1 if rotated is None else 2
    figure = figure if figure is not None else _figure(5.4 * panels + 1.6, 4.8)
    left = figure.add_subplot(1, panels, 1)
    problem = rescaled[0].problem
    if len(paths) != 2:
        raise ValueError(f"paths must name two paths (the two coordinates); got {paths!r}")
    paths = tuple(tuple(int(j) for j in path) for path in paths)
    if problem.depth == 2:
        names = [rf"$p_{{{j + 1}}} = (W_2)_{{1{j + 1}}} (W_1)_{{{j + 1}1}}$" for (j,) in paths]
    else:
        names = ["$p_{(" + ",".join(str(j + 1) for j in path) + ")}$ (path product)" for path in paths]
    coordinates = [path_products(run.points, paths) for run in rescaled]
    target = float(problem.sigma[0]) if tuple(problem.widths) == (1, 2, 1) else None
    if target is not None:
        left.axline(
            (target, 0.0), slope=-1.0, color=_LEVEL, linewidth=0.9, linestyle="--", zorder=1,
            label=rf"global minimum $p_1 + p_2 = {target:g}$",
        )  # fmt: skip
    gap = _quotient_panel(left, rescaled, coordinates, names, "start 1 ($x$)")
    left.set_title(
        f"{len(rescaled)} starts on one rescaling orbit: one quotient point at $t = 0$,\n"
        f"quotient curves apart by up to {gap:.2g} (points by {_parameter_gap(rescaled):.2g})",
        fontsize=9,
    )
    left.legend(loc="best", fontsize=8, framealpha=0.9)
    if rotated is not None:
        rotated = _as_list(rotated)
        _same_times(rotated, "rotated")
        right = figure.add_subplot(1, 2, 2)
        if tuple(rotated[0].problem.widths) == (1, 2, 1):
            value = float(rotated[0].problem.sigma[0])
            right.axvline(
                value, color=_LEVEL, linewidth=0.9, linestyle="--", zorder=1, label=rf"global minimum $W = {value:g}$"
            )
        names = [r"$W_{11}$", r"$\sum_i \|W_i\|_F^2$"]
        gap = _quotient_panel(right, rotated, [orthogonal_invariants(run.points) for run in rotated], names, "start 1 ($x$)")
        right.set_title(
            f"{len(rotated)} starts on one orthogonal orbit: the quotient curves coincide\n"
            f"(apart by ${_bound(gap, floor=-6)}$) while the points are apart by {_parameter_gap(rotated):.2g}",
            fontsize=9,
        )
        right.legend(loc="best", fontsize=8, framealpha=0.9)
    return figure


def _orthogonal_alignment(widths, x_flat, y_flat) -> np.ndarray:
    """``align(y, x)`` of the orthogonal quotient (:class:`quotient.bundle.ParameterSpace`), flat."""
    from .bundle import ParameterSpace  # geomstats: imported only when a picture needs it

    space = ParameterSpace(widths)
    space.equip_with_quotient()
    return np.asarray(space.fiber_bundle.align(y_flat, x_flat), dtype=float)


def quotient_geodesic(
    problem, x, y, *, aligned=None, samples: int = 101, orbit_samples: int = 200, rng=0, figure=None
) -> Figure:
    """The geodesic of the orthogonal quotient between two points, against the straight line.

    Parameters
    ----------
    problem : Problem
        The problem whose loss is drawn along the paths; ``x`` and ``y`` have its widths.
    x, y : tuple of ndarray
        Two points of the problem's widths, layers of shapes ``(d_i, d_{i-1})`` (e.g. two samples
        of one fiber, :meth:`quotient.Fiber.sample`).
    aligned : tuple of ndarray, optional
        ``R* . y``, the point of ``y``'s orbit under ``K = O(d_1) x ... x O(d_{h-1})`` closest
        to ``x``; by default ``ParameterSpace(widths).fiber_bundle.align(y, x)``
        (:mod:`quotient.bundle`, geomstats).
    samples : int
        Points along each path.
    orbit_samples : int
        Points ``R . y`` of the orbit of ``y`` (``R`` Haar random, :func:`quotient.random_orthogonal`)
        whose distances to ``x`` are drawn.
    rng : int or numpy.random.Generator
        Seed of the orbit samples.
    figure : matplotlib.figure.Figure, optional
        Draw into this (empty) figure.

    Returns
    -------
    matplotlib.figure.Figure
        Left: the loss along the straight segment from ``x`` to ``y`` (length ``||x - y||``) and
        along the quotient geodesic, the segment from ``x`` to ``align(y, x)`` (length the
        quotient distance ``d([x], [y]) = ||x - align(y, x)||``), against arc length; the level
        ``L(x)`` dashed. Right: the empirical distribution of the distances ``||x - R . y||`` of the
        orbit samples, with the quotient distance and ``||x - y||`` as vertical lines: no sample
        of the orbit is nearer to ``x`` than the aligned point. The legends give both lengths.

    Raises
    ------
    ValueError
        If ``aligned`` is not on the orthogonal orbit of ``y`` (its invariants ``||W_i||_F`` and
        ``W`` differ by more than ``1e-8`` relative).

    Notes
    -----
    ``K`` acts by isometries, so the quotient metric is ``d([x], [y]) = min_R ||x - R . y||`` and
    its geodesics are the horizontal straight lines: the segment from ``x`` to the aligned point
    (its direction is horizontal at ``x`` because ``align`` is optimal). The straight line to
    ``y`` itself is a geodesic of parameter space, longer, and between two points of one fiber it
    can leave the fiber further.
    """
    xs = as_point(x, "x", widths=problem.widths)
    ys = as_point(y, "y", widths=problem.widths)
    flat_x, flat_y = to_vector(xs), to_vector(ys)
    if aligned is None:
        flat_a = _orthogonal_alignment(problem.widths, flat_x, flat_y)
    else:
        a = as_point(aligned, "aligned", widths=problem.widths)
        flat_a = to_vector(a)
    a = from_vector(flat_a, problem.widths)
    scale = max(1.0, float(np.sqrt(np.sum(flat_y**2))))
    norms_y = np.array([np.linalg.norm(W) for W in ys])
    norms_a = np.array([np.linalg.norm(W) for W in a])
    same_map = np.max(np.abs(end_to_end(a) - end_to_end(ys))) <= 1e-8 * scale ** len(ys)
    if np.max(np.abs(norms_a - norms_y)) > 1e-8 * scale or not same_map:
        raise ValueError("aligned must lie on the orthogonal orbit of y (same layer norms and end-to-end map)")
    t = np.linspace(0.0, 1.0, check_count("samples", samples, 2))
    n_orbit = check_count("orbit_samples", orbit_samples, 0)
    paths = {"line": (flat_x, flat_y), "geodesic": (flat_x, flat_a)}
    figure = figure if figure is not None else _figure(12.0, 4.8)
    left, right = figure.subplots(1, 2)
    lengths = {}
    colours = {"line": PALETTE[3], "geodesic": PALETTE[0]}
    names = {
        "line": r"straight line $x \to y$",
        "geodesic": r"quotient geodesic $x \to \mathrm{align}(y, x)$",
    }
    for key, (start, end) in paths.items():
        lengths[key] = float(np.linalg.norm(end - start))
        points = start[None] + t[:, None] * (end - start)[None]
        loss = np.array([problem.loss(from_vector(p, problem.widths)) for p in points])
        label = names[key] + (f", length {lengths[key]:.3g}")
        left.plot(t * lengths[key], loss, color=colours[key], linewidth=1.8, label=label)
    level = problem.loss(xs)
    shown = _bound(abs(level)) if abs(level) < 1e-12 else f"= {level:.4g}"  # round-off is not printed
    left.axhline(level, color=_LEVEL, linewidth=0.9, linestyle="--", label=rf"$L(x) {shown}$")
    left.set_xlabel("arc length $s$ along the path")
    left.set_ylabel(r"loss $L$")
    left.legend(loc="best", fontsize=8, framealpha=0.9)
    left.set_title(
        f"quotient distance {lengths['geodesic']:.3g} against $\\|x - y\\| = {lengths['line']:.3g}$", fontsize=9
    )
    # the distances to x of other points of y's orbit: none is below the quotient distance
    generator = np.random.default_rng(rng)
    orbit = [to_vector(act(ys, random_orthogonal(problem.widths, generator), group="orthogonal")) for _ in range(n_orbit)]
    distances = np.sort([float(np.linalg.norm(flat - flat_x)) for flat in orbit])
    if n_orbit:
        right.plot(
            np.r_[distances[0], distances], np.arange(n_orbit + 1) / n_orbit, drawstyle="steps-post",
            color="0.35", linewidth=1.6, label=rf"$\|x - R \cdot y\|$, {n_orbit} Haar-random $R$",
        )  # fmt: skip
    right.axvline(
        lengths["geodesic"], color=colours["geodesic"], linewidth=1.8,
        label=rf"quotient distance $\min_R \|x - R \cdot y\| = {lengths['geodesic']:.3g}$",
    )  # fmt: skip
    right.axvline(
        lengths["line"], color=colours["line"], linewidth=1.8, linestyle="--",
        label=rf"$\|x - y\| = {lengths['line']:.3g}$ ($R = I$)",
    )  # fmt: skip
    right.set_xlabel(r"distance to $x$")
    right.set_ylabel(r"fraction of the orbit samples within it")
    right.set_ylim(-0.03, 1.03)
    right.set_xlim(0.0, 1.05 * max([lengths["line"]] + list(distances[-1:])))
    right.set_title(r"the orbit of $y$ seen from $x$: its nearest point is $\mathrm{align}(y, x)$", fontsize=9)
    right.legend(loc="upper left", fontsize=8, framealpha=0.9)
    return figure
