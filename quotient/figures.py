"""Regenerate every committed figure in ``figures/`` from scratch: ``python -m quotient.figures``.

Each figure is one function in :data:`FIGURES` that computes what it shows (flows, fibers,
Hessians) from fixed seeds and returns a ``Figure``; nothing is read from disk, so the pictures
are reproducible on any machine. ``python -m quotient.figures --out figures`` writes them all;
``--only NAME ...`` writes some; ``--quiet`` silences the progress bar and the line per figure.
The PNG files carry no software-version metadata, so a rerun gives the same bytes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from . import init, plot
from ._numerics import squared_norm
from .classification import classify
from .critical import canonical_point, critical_values
from .fiber import fiber
from .flow import gradient_descent, gradient_flow
from .network import conserved_quantities
from .problem import Problem
from .saddle import stable_directions, unstable_directions
from .symmetry import act, identity, random_orthogonal, random_rescaling

__all__ = ["FIGURES", "DPI", "main", "save"]

#: Resolution of the committed PNGs (pixels per inch); sizes are set in inches per figure.
DPI = 130

#: The problem most figures use: widths 4-8-8-4 (h = 3), singular values 5, 3, 2, 1.
SIGMA = (5.0, 3.0, 2.0, 1.0)


def _log_times(t_final: float, n: int = 500) -> np.ndarray:
    return np.r_[0.0, np.geomspace(1e-3, t_final, n)]


def _flow(problem, point0, t_final, *, samples=None, gradient_atol=None, **options):
    """A flow sampled at ``samples`` (default log-spaced), to ``t_final`` unless ``gradient_atol`` is given.

    No stop by default: where ``gradient_atol`` stops a flow depends on the solver's step sequence,
    which moves with the last bits of the arithmetic (another BLAS kernel: a stop time 2e-5
    earlier or later, measured by benchmarks/picture_kernels.py --figures), and with it the last
    sample; a flow that has reached the global minimum stays there, so running on changes nothing.
    """
    t_eval = _log_times(t_final) if samples is None else samples
    return gradient_flow(problem, point0, t_final, t_eval=t_eval, gradient_atol=gradient_atol, progress=False, **options)


def _canonical_sign(direction):
    """A saddle direction with its sign fixed (largest entry positive): eigenvectors come from LAPACK
    with a sign that depends on the BLAS kernel, and the flow from ``-v`` is another flow."""
    if direction.mechanism != "hessian":
        return direction  # mode curves fix their signs themselves (quotient.saddle)
    flat = np.concatenate([layer.ravel() for layer in direction.direction])
    sign = np.sign(flat[np.argmax(np.abs(flat))])
    return replace(direction, direction=tuple(sign * layer for layer in direction.direction))


# ---------------------------------------------------------------------------------------- figures
def saddle_to_saddle() -> Figure:
    """Depths 2, 3 and 6 at three init scales: loss staircases and singular values."""
    figure = Figure(figsize=(13.0, 7.0), layout="constrained")
    grid = figure.subplots(2, 3)
    cases = ((2, (1e-2, 1e-4, 1e-6), 40.0), (3, (1e-2, 3e-3, 1e-3), 1e3), (6, (0.2, 0.15, 0.1), 1e3))
    for column, (h, scales, t_final) in enumerate(cases):
        widths = (4,) + (8,) * (h - 1) + (4,)
        problem = Problem.from_sigma(SIGMA, widths)
        runs = [_flow(problem, init.small_random(widths, scale, rng=0), t_final) for scale in scales]
        plot.loss_curve(runs, labels=[f"init scale {scale:g}" for scale in scales], log_time=True, axes=grid[0, column])
        grid[0, column].set_title(f"depth $h = {h}$, widths {'-'.join(map(str, widths))}", fontsize=10)
        plot.singular_value_curves(runs[-1], log_time=True, axes=grid[1, column])
        grid[1, column].set_title(f"singular values of $W(t)$, init scale {scales[-1]:g}", fontsize=10)
        if column < 2:
            grid[1, column].get_legend().remove()
    figure.suptitle(
        r"Saddle-to-saddle learning: the loss rests at the critical values $L_S$, learning one singular value at a time"
        "\n(plateaus grow like $\\log(1/\\mathrm{scale})$ for $h = 2$ and like a power of $1/\\mathrm{scale}$ for $h \\geq 3$)",
        fontsize=11,
    )
    return figure


def balanced_vs_unbalanced() -> Figure:
    """Two starts with the same end-to-end map, one balanced, one not: different quotient paths."""
    widths = (3, 3, 3, 3)
    problem = Problem.from_sigma((3.0, 2.0, 1.0), widths)
    rng = np.random.default_rng(3)
    W0 = 0.01 * rng.standard_normal((3, 3))
    balanced = init.balanced(widths, end_to_end=W0, rng=4)
    g = tuple(np.diag([4.0, 1.0, 0.25]) @ np.linalg.qr(rng.standard_normal((3, 3)))[0] for _ in range(2))
    unbalanced = act(balanced, g)  # same W(0), C(0) far from 0
    runs = [_flow(problem, point, 60.0, samples=_log_times(60.0, 1500)) for point in (balanced, unbalanced)]
    C = [np.sqrt(squared_norm(conserved_quantities(point))) for point in (balanced, unbalanced)]
    labels = [rf"balanced start, $\|C\| = {C[0]:.0f}$", rf"unbalanced start, $\|C\| = {C[1]:.2g}$"]
    figure = Figure(figsize=(12.0, 8.6), layout="constrained")
    panels = figure.subplot_mosaic(
        [["plane", "space"], ["loss", "loss"]], height_ratios=[1.35, 1.0],
        per_subplot_kw={"space": {"projection": "3d"}},
    )  # fmt: skip
    plot.quotient_trajectory(runs, modes=(1, 2), labels=labels, axes=panels["plane"])
    plot.quotient_trajectory(runs, modes=(1, 2, 3), labels=labels, axes=panels["space"])
    panels["space"].get_legend().remove()
    plot.loss_curve(runs, labels=labels, axes=panels["loss"], log_time=True, levels="all")
    panels["plane"].set_title("quotient coordinates $(u_1, u_2)$", fontsize=10)
    panels["space"].set_title("quotient coordinates $(u_1, u_2, u_3)$", fontsize=10)
    panels["loss"].set_title("loss: the balanced start rests at each saddle, the unbalanced one cuts corners", fontsize=10)
    figure.suptitle(
        "Same end-to-end start $W(0)$ (widths 3-3-3-3, $\\sigma = 3, 2, 1$), different conserved quantities $C$:\n"
        "the flows project to different quotient trajectories",
        fontsize=11,
    )
    return figure


def conservation() -> Figure:
    """Drift of the conserved quantities: flows at three tolerances, descent at three steps."""
    problem = Problem.from_sigma(SIGMA, (4, 8, 8, 4))
    point0 = init.small_random(problem.widths, 1e-2, rng=0)
    t_final = 60.0
    samples = np.linspace(0.0, t_final, 601)
    runs = [
        gradient_flow(problem, point0, t_final, rtol=rtol, atol=1e-2 * rtol, t_eval=samples, progress=False)
        for rtol in (1e-6, 1e-8, 1e-10)
    ]
    runs += [
        gradient_descent(problem, point0, step, int(t_final / step), record_every=int(0.1 / step), progress=False)
        for step in (2e-2, 1e-2, 5e-3)
    ]
    # below 1e-11 the drift of these flows is round-off: it differs from one BLAS kernel to another
    # by a factor up to 2 (benchmarks/picture_kernels.py --figures), so it is drawn at the floor
    figure = plot.conservation_drift(runs, floor=1e-11)
    figure.set_size_inches(8.6, 4.2)
    figure.axes[0].set_title(
        "Conserved quantities $C_i = W_{i+1}^\\top W_{i+1} - W_i W_i^\\top$ (widths 4-8-8-4): "
        "flows keep them to their tolerance,\ngradient descent changes them by $O(\\mathrm{step}^2)$ per step, "
        "mostly while a mode is being learned",
        fontsize=10,
    )
    return figure


def hessian_spectra() -> Figure:
    """Hessian spectra at the canonical points of all 8 critical values of widths 3-3-3-3, sigma = 3, 2, 1."""
    problem = Problem.from_sigma((3.0, 2.0, 1.0), (3, 3, 3, 3))
    values = list(critical_values(problem))  # all 8: every subset S of {1, 2, 3}
    names = {"nonstrict_saddle": "non-strict saddle", "strict_saddle": "strict saddle", "global_minimum": "global minimum"}
    figure = Figure(figsize=(15.0, 6.4), layout="constrained")
    grid = figure.subplots(2, 4, sharex=True)
    for axes, value in zip(grid.flat, sorted(values, key=lambda v: -v.value)):
        point = canonical_point(problem, value.learned)
        title = f"$S = {plot.learned_label(value.learned)}$, $L_S = {value.value:g}$: {names[classify(problem, point)]}"
        plot.hessian_spectrum(problem, point, axes=axes, title=title)
    figure.suptitle(
        rf"Hessian at the canonical critical points $\Sigma_S$ of all {len(values)} critical values (widths 3-3-3-3, "
        r"$\sigma = 3, 2, 1$): strict saddles have a negative eigenvalue, non-strict ones none",
        fontsize=11,
    )
    return figure


def quotient_path() -> Figure:
    """The default exploration run in the quotient, in 2-D and 3-D."""
    problem = Problem.from_sigma(SIGMA, (4, 8, 8, 4))
    run = _flow(problem, init.small_random(problem.widths, 1e-2, rng=0), 1e3)
    figure = Figure(figsize=(12.0, 5.4), layout="constrained")
    plot.quotient_trajectory(run, modes=(1, 2), axes=figure.add_subplot(1, 2, 1))
    plot.quotient_trajectory(run, modes=(2, 3, 4), axes=figure.add_subplot(1, 2, 2, projection="3d"))
    figure.axes[1].get_legend().remove()
    figure.get_layout_engine().set(rect=(0.0, 0.0, 0.97, 1.0))  # room for the 3-D z label
    figure.suptitle(
        "Widths 4-8-8-4, $\\sigma = 5, 3, 2, 1$, init scale 0.01, in the quotient coordinates "
        "$u_k = \\langle W, u_k v_k^\\top \\rangle$:\nthe flow runs along the edges "
        "$\\Sigma_\\emptyset \\to \\Sigma_{\\{1\\}} \\to \\Sigma_{\\{1,2\\}} \\to \\Sigma_{\\{1,2,3\\}} \\to \\Sigma$, "
        "one mode at a time (left: modes 1, 2; right: modes 2, 3, 4)",
        fontsize=11,
    )
    return figure


def critical_graph() -> Figure:
    """The Hasse diagram of critical values with the paths of two flows."""
    problem = Problem.from_sigma(SIGMA, (4, 8, 8, 4))
    small = _flow(problem, init.small_random(problem.widths, 1e-2, rng=0), 1e3)
    rng = np.random.default_rng(0)
    near = tuple(W + 3e-3 * rng.standard_normal(W.shape) for W in canonical_point(problem, (3,)))
    strict = _flow(problem, near, 1e3)
    figure = Figure(figsize=(13.0, 5.6), layout="constrained")
    left, right = figure.subplots(1, 2, sharey=True)
    plot.critical_graph(problem, trajectory=small, axes=left)
    plot.critical_graph(problem, trajectory=strict, axes=right)
    left.set_title("from a small random init (scale 0.01): learn one mode after another", fontsize=10)
    right.set_title("from near the strict saddle $\\Sigma_{\\{3\\}}$: swap mode 3 for mode 1, then learn", fontsize=10)
    right.set_ylabel("")
    figure.suptitle(
        "Critical values $L_S$ of widths 4-8-8-4, $\\sigma = 5, 3, 2, 1$, joined by the heteroclinic connections; "
        "in colour the plateaus a flow passes",
        fontsize=11,
    )
    return figure


def nonstrict_saddle() -> Figure:
    """The fiber of the non-strict saddle value L_{1} and the flows leaving or reaching the saddle."""
    problem = Problem.from_sigma((3.0, 2.0, 1.0), (3, 3, 3, 3))
    chosen = fiber(problem, (1,))
    n = 80
    samples = chosen.sample(n, rng=0, spread=0.4)
    classes = [classify(problem, tuple(layer[k] for layer in samples)) for k in range(n)]
    classes = [name.replace("nonstrict_saddle", "non-strict saddle").replace("strict_saddle", "strict saddle") for name in classes]
    saddle = chosen.representative
    unstable = unstable_directions(problem, saddle)
    stable = stable_directions(problem, saddle)
    directions = [d for d in unstable if d.mechanism == "mode"]
    directions += [next(d for d in stable if d.mechanism == "mode"), next(d for d in stable if d.mechanism == "hessian")]
    directions = [_canonical_sign(d) for d in directions]
    runs = [_flow(problem, d.curve(0.1), 2e3, gradient_atol=1e-9) for d in directions]
    labels = [
        f"{d.kind}: " + (f"mode {d.mode}, {'positive' if d.kind == 'unstable' else 'negative'} product (order {d.order})"
                         if d.mechanism == "mode"
                         else f"Hessian eigenvector, $\\lambda = {d.eigenvalue:.3g}$")
        for d in directions
    ]  # fmt: skip
    figure = Figure(figsize=(13.0, 10.0), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[1.0, 0.9])
    plot.fiber_projection(samples, classes=classes, representative=saddle, figure=top)
    top.suptitle(
        f"{n} points of the fiber of $L_{{\\{{1\\}}}} = {chosen.value:g}$ (widths 3-3-3-3, $\\sigma = 3, 2, 1$), "
        "classified: one fiber holds both kinds of saddle",
        fontsize=11,
    )
    loss, gap = bottom.subplots(1, 2)
    plot.loss_curve(runs, labels=labels, log_time=True, axes=loss)
    loss.set_title("the loss: escapes along the unstable curves, stays along the stable ones", fontsize=10)
    for k, run in enumerate(runs):
        keep = run.times > 0
        gap.plot(run.times[keep], np.abs(run.loss[keep] - chosen.value), color=plot.PALETTE[k], linewidth=1.6)
    gap.set_xscale("log")
    gap.set_yscale("log")
    gap.set_ylim(bottom=1e-12)
    gap.set_xlabel(r"time $t$")
    gap.set_ylabel(r"$|L(t) - L_{\{1\}}|$")
    gap.set_title(
        "distance in loss: the stable mode curve returns algebraically,\nthe Hessian eigenvector exponentially", fontsize=10
    )
    bottom.suptitle(
        "Flows from distance 0.1 along the directions of quotient.unstable_directions and stable_directions "
        "at the canonical point $\\Sigma_{\\{1\\}}$\n(its Hessian is positive semidefinite, yet the flow escapes)",
        fontsize=11,
    )
    return figure


def scalar_fiber() -> Figure:
    """The global-minimum fiber of the scalar chain w3 w2 w1 = 2, orbit curves and flows ending on it."""
    problem = Problem.from_sigma([2.0], (1, 1, 1, 1))
    points = fiber(problem, (1,)).sample(240, rng=0, spread=0.5)  # a quarter lands on the sheet drawn
    starts = ((0.2, 0.2, 0.2), (1.5, 0.1, 0.3), (0.1, 1.2, 0.2), (0.3, 0.3, 1.8), (2.4, 2.0, 0.1))
    runs = [
        _flow(problem, tuple(np.array([[w]]) for w in start), 20.0, samples=np.linspace(0, 20.0, 801)) for start in starts
    ]
    figure = plot.scalar_fiber(problem, points=points, trajectories=runs)
    figure.set_size_inches(6.8, 6.0)
    figure.axes[0].set_title(
        "Scalar chain $h = 3$: global-minimum fiber $w_3 w_2 w_1 = 2$\n"
        "flows end at the point of the fiber fixed by their $c_i = w_{i+1}^2 - w_i^2$",
        fontsize=10,
    )
    return figure


# ---------------------------------------------------------------------------------------- symmetry
def _scalar(*values):
    return tuple(np.array([[float(w)]]) for w in values)


def group_orbits() -> Figure:
    """The orbit of one point under GL, the orthogonal group and the rescalings, exactly (1-1-1) and projected (2-3-2)."""
    figure = Figure(figsize=(12.0, 5.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    plot.group_orbits(_scalar(1.2, 0.5), span=3.0, extent=3.0, axes=left)
    left.set_title(
        "scalar chain 1-1-1, the whole orbits: GL(1) both branches of $w_1 w_2 = 0.6$,\n"
        "the rescalings the branch through $x$, $O(1) = \\{\\pm 1\\}$ the points $\\pm x$",
        fontsize=9,
    )
    point = init.small_random((2, 3, 2), 1.0, rng=2)
    plot.group_orbits(point, directions=2, span=1.5, entries=((1, 0, 0), (2, 0, 0)), axes=right)
    figure.suptitle(
        "Orbits of one point under the hidden symmetry groups (quotient.act along one-parameter subgroups "
        "$t \\mapsto c\\, e^{t \\xi}$ in every component):\nthe end-to-end map, hence the loss, is the same on all of them",
        fontsize=11,
    )
    return figure


def level_set_teleport() -> Figure:
    """The level set of L through a point of the scalar chain 1-1-1 and the point of its orbit with the largest gradient."""
    problem = Problem.from_sigma([2.0], (1, 1, 1))
    point = _scalar(1.2, 0.5)
    # the best of the GL elements g = e^s, |s| <= 0.8, for the gradient norm (what teleportation maximises)
    moves = [act(point, (np.array([[np.exp(s)]]),)) for s in np.linspace(-0.8, 0.8, 161)]
    moved = max(moves, key=lambda p: squared_norm(problem.gradient(p)))
    figure = plot.level_set_teleport(problem, point, moved)
    figure.suptitle(
        "Teleportation on the scalar chain 1-1-1, $L = \\frac{1}{2}(2 - w_2 w_1)^2$: moving along the GL orbit keeps the loss\n"
        "and changes the gradient (the moved point: the largest $\\|\\nabla L\\|$ over $g = e^s$, $|s| \\leq 0.8$)",
        fontsize=10,
    )
    return figure


def rescaling_quotient_flow() -> Figure:
    """Flows from starts on one rescaling orbit and on one orthogonal orbit (widths 1-2-1), in quotient coordinates."""
    widths = (1, 2, 1)
    problem = Problem.from_sigma([2.0], widths)
    point = (np.array([[0.6], [0.3]]), np.array([[0.2, 0.5]]))
    times = np.linspace(0.0, 8.0, 321)
    rescalings = [identity(widths)] + [random_rescaling(widths, rng=k, spread=1.0) for k in range(3)]
    rotations = [identity(widths)] + [random_orthogonal(widths, rng=k) for k in range(3)]
    rescaled = [_flow(problem, act(point, g, group="rescaling"), 8.0, samples=times) for g in rescalings]
    rotated = [_flow(problem, act(point, R, group="orthogonal"), 8.0, samples=times) for R in rotations]
    figure = plot.rescaling_quotient_flow(rescaled, rotated)
    figure.set_size_inches(12.4, 5.2)
    figure.suptitle(
        "Widths 1-2-1, $\\sigma = 2$: the orthogonal group commutes with the gradient flow, the rescalings do not;\n"
        "flows from one rescaling orbit project to different curves of the rescaling quotient, flows from one orthogonal orbit to one curve",
        fontsize=11,
    )
    return figure


def quotient_geodesic() -> Figure:
    """The O(d) quotient geodesic between two points of the global-minimum fiber of widths 3-4-4-3."""
    problem = Problem.from_sigma((3.0, 2.0, 1.0), (3, 4, 4, 3))
    samples = fiber(problem, (1, 2, 3)).sample(2, rng=1, spread=0.5, structure=False)
    x, y = (tuple(layer[k] for layer in samples) for k in range(2))
    figure = plot.quotient_geodesic(problem, x, y)
    figure.suptitle(
        "Two points of the global-minimum fiber (widths 3-4-4-3, $\\sigma = 3, 2, 1$): the geodesic of the quotient by "
        "$O(4) \\times O(4)$ (geomstats, quotient.bundle)\nis the segment to the aligned point, shorter than the straight line, "
        "and it stays closer to the fiber",
        fontsize=11,
    )
    return figure


#: name -> function returning the figure; the file is ``figures/<name>.png``.
FIGURES = {
    "saddle_to_saddle": saddle_to_saddle,
    "balanced_vs_unbalanced": balanced_vs_unbalanced,
    "quotient_path": quotient_path,
    "critical_graph": critical_graph,
    "nonstrict_saddle": nonstrict_saddle,
    "scalar_fiber": scalar_fiber,
    "hessian_spectra": hessian_spectra,
    "conservation": conservation,
    "group_orbits": group_orbits,
    "level_set_teleport": level_set_teleport,
    "rescaling_quotient_flow": rescaling_quotient_flow,
    "quotient_geodesic": quotient_geodesic,
}


def save(figure: Figure, path: str, *, dpi: int = DPI) -> str:
    """Write ``figure`` as a PNG without version metadata, so reruns give the same bytes."""
    figure.savefig(path, dpi=dpi, metadata={"Software": None})
    return path


def main(argv=None) -> int:
    """Command line: ``python -m quotient.figures [--out figures] [--only NAME ...] [--quiet]``."""
    parser = argparse.ArgumentParser(prog="python -m quotient.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures", help="output folder (default figures)")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="regenerate only these figures")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no line per figure")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    names = args.only or list(FIGURES)
    start = time.perf_counter()
    with tqdm(names, desc="figures", unit="figure", disable=True if args.quiet else None) as bar:
        for name in bar:
            bar.set_postfix_str(name)
            began = time.perf_counter()
            path = save(FIGURES[name](), os.path.join(args.out, f"{name}.png"))
            if not args.quiet:
                bar.write(f"{path}  ({time.perf_counter() - began:.1f} s)")
    if not args.quiet:
        print(f"{len(names)} figures in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
