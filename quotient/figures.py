"""Regenerate every committed figure in ``figures/`` from scratch: ``python -m quotient.figures``.

Each figure is one function in :data:`FIGURES` that computes what it shows (flows, fibers,
Hessians) from fixed seeds and returns a ``Figure``; nothing is read from disk, so the pictures
are reproducible on any machine. ``python -m quotient.figures --out figures`` writes them all;
``--only NAME ...`` writes some. The PNG files carry no software-version metadata.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from matplotlib.figure import Figure

from . import init, plot
from .critical import critical_values
from .flow import gradient_descent, gradient_flow
from .network import conserved_quantities, end_to_end
from .problem import Problem

__all__ = ["FIGURES", "DPI", "main", "save"]

#: Resolution of the committed PNGs (pixels per inch); sizes are set in inches per figure.
DPI = 130

#: The problem most figures use: widths 4-8-8-4 (h = 3), singular values 5, 3, 2, 1.
SIGMA = (5.0, 3.0, 2.0, 1.0)


def _log_times(t_final: float, n: int = 500) -> np.ndarray:
    return np.r_[0.0, np.geomspace(1e-3, t_final, n)]


def _flow(problem, point0, t_final, *, samples=None, gradient_tol=1e-6, **options):
    t_eval = _log_times(t_final) if samples is None else samples
    return gradient_flow(problem, point0, t_final, t_eval=t_eval, gradient_tol=gradient_tol, progress=False, **options)


def _canonical_point(problem, learned):
    """Balanced critical point carrying mode ``k`` of ``learned`` with strength ``sigma_k^{1/h}``
    on hidden unit ``k`` of every layer (math.md section 4)."""
    h = problem.depth
    layers = []
    for i in range(1, h + 1):
        W = np.zeros((problem.widths[i], problem.widths[i - 1]))
        for k in learned:
            W[k - 1, k - 1] = problem.sigma[k - 1] ** (1.0 / h)
        layers.append(W)
    return tuple(layers)


def _act(point, group_element):
    """GL action ``W_i -> G_i W_i G_{i-1}^{-1}`` (``G_0 = G_h = I``)."""
    G = (None, *group_element, None)
    return tuple(
        (W if G[i + 1] is None else G[i + 1] @ W) @ (np.eye(W.shape[-1]) if G[i] is None else np.linalg.inv(G[i]))
        for i, W in enumerate(point)
    )


def _balanced_with_end_to_end(W, widths):
    """A balanced point (all ``C_i = 0``) with end-to-end map ``W``: ``W = U S V^T`` spread as
    ``W_1 = S^{1/h} V^T``, ``W_i = S^{1/h}``, ``W_h = U S^{1/h}`` (square widths)."""
    h = len(widths) - 1
    U, s, Vt = np.linalg.svd(W)
    root = np.diag(s ** (1.0 / h))
    return tuple([root @ Vt] + [root] * (h - 2) + [U @ root])


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
    W0 = 0.15 * rng.standard_normal((3, 3))
    balanced = _balanced_with_end_to_end(W0, widths)
    g = tuple(np.diag([4.0, 1.0, 0.25]) @ np.linalg.qr(rng.standard_normal((3, 3)))[0] for _ in range(2))
    unbalanced = _act(balanced, g)
    assert np.allclose(end_to_end(unbalanced), end_to_end(balanced))
    runs = [_flow(problem, point, 60.0, samples=np.linspace(0.0, 60.0, 1201)) for point in (balanced, unbalanced)]
    C = [np.sqrt(sum(np.sum(c**2) for c in conserved_quantities(point))) for point in (balanced, unbalanced)]
    labels = [rf"balanced start, $\|C\| = {C[0]:.0f}$", rf"unbalanced start, $\|C\| = {C[1]:.2g}$"]
    figure = Figure(figsize=(13.0, 4.6), layout="constrained")
    left = figure.add_subplot(1, 3, 1)
    middle = figure.add_subplot(1, 3, 2, projection="3d")
    right = figure.add_subplot(1, 3, 3)
    plot.quotient_trajectory(runs, modes=(1, 2), labels=labels, axes=left)
    plot.quotient_trajectory(runs, modes=(1, 2, 3), labels=labels, axes=middle)
    middle.get_legend().remove()
    plot.loss_curve(runs, labels=labels, axes=right, levels="all")
    figure.suptitle(
        "Same end-to-end start $W(0)$, different conserved quantities $C$: the quotient trajectories differ",
        fontsize=11,
    )
    return figure


def conservation() -> Figure:
    """Drift of the conserved quantities: flows at three tolerances, descent at two steps."""
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
    figure = plot.conservation_drift(runs)
    figure.set_size_inches(7.0, 4.2)
    figure.axes[0].set_title(
        "Conserved quantities $C_i = W_{i+1}^\\top W_{i+1} - W_i W_i^\\top$: flow vs gradient descent", fontsize=10
    )
    return figure


def hessian_spectra() -> Figure:
    """Hessian spectra at the canonical critical points of widths 3-3-3-3, sigma = 3, 2, 1."""
    problem = Problem.from_sigma((3.0, 2.0, 1.0), (3, 3, 3, 3))
    cases = (((), "non-strict saddle"), ((1,), "non-strict saddle"), ((2,), "strict saddle"),
             ((1, 2), "non-strict saddle"), ((1, 3), "strict saddle"), ((1, 2, 3), "global minimum"))  # fmt: skip
    figure = Figure(figsize=(13.0, 6.4), layout="constrained")
    grid = figure.subplots(2, 3, sharex=True)
    for axes, (learned, kind) in zip(grid.flat, cases):
        name = "\\emptyset" if not learned else "\\{" + ",".join(map(str, learned)) + "\\}"
        plot.hessian_spectrum(problem, _canonical_point(problem, learned), axes=axes, title=f"$S = {name}$: {kind}")
    figure.suptitle(
        r"Hessian at the canonical critical points $\Sigma_S$ (widths 3-3-3-3, $\sigma = 3, 2, 1$): "
        "strict saddles have a negative eigenvalue, non-strict ones none",
        fontsize=11,
    )
    return figure


def quotient_path() -> Figure:
    """The default exploration run in the quotient (2-D and 3-D) and through the critical graph."""
    problem = Problem.from_sigma(SIGMA, (4, 8, 8, 4))
    run = _flow(problem, init.small_random(problem.widths, 1e-2, rng=0), 1e3)
    figure = Figure(figsize=(14.0, 4.8), layout="constrained")
    plot.quotient_trajectory(run, modes=(1, 2), axes=figure.add_subplot(1, 3, 1))
    plot.quotient_trajectory(run, modes=(1, 2, 3), axes=figure.add_subplot(1, 3, 2, projection="3d"))
    plot.critical_graph(problem, trajectory=run, axes=figure.add_subplot(1, 3, 3))
    figure.suptitle(
        "Widths 4-8-8-4, $\\sigma = 5, 3, 2, 1$, init scale 0.01: the flow visits "
        "$\\Sigma_\\emptyset \\to \\Sigma_{\\{1\\}} \\to \\Sigma_{\\{1,2\\}} \\to \\cdots$",
        fontsize=11,
    )
    return figure


def scalar_fiber() -> Figure:
    """The global-minimum fiber of the scalar chain w3 w2 w1 = 2, orbit curves and flows ending on it."""
    problem = Problem.from_sigma([2.0], (1, 1, 1, 1))
    rng = np.random.default_rng(0)
    balanced = np.full(3, 2.0 ** (1 / 3))
    g = np.exp(0.6 * rng.standard_normal((60, 2)))
    full = np.hstack([np.ones((60, 1)), g, np.ones((60, 1))])
    samples = balanced * full[:, 1:] / full[:, :-1]
    points = tuple(samples[:, i].reshape(-1, 1, 1) for i in range(3))
    starts = ((0.2, 0.2, 0.2), (1.5, 0.1, 0.3), (0.1, 1.2, 0.2), (0.3, 0.3, 1.8), (2.4, 2.0, 0.1))
    runs = [
        _flow(problem, tuple(np.array([[w]]) for w in start), 20.0, samples=np.linspace(0, 20.0, 801)) for start in starts
    ]
    figure = plot.scalar_fiber(problem, points=points, trajectories=runs)
    figure.set_size_inches(6.4, 5.6)
    figure.axes[0].set_title(
        "Scalar chain $h = 3$: global-minimum fiber $w_3 w_2 w_1 = 2$\n"
        "flows end at the point of the fiber fixed by their $c_i = w_{i+1}^2 - w_i^2$",
        fontsize=10,
    )
    return figure


#: name -> function returning the figure; the file is ``figures/<name>.png``.
FIGURES = {
    "saddle_to_saddle": saddle_to_saddle,
    "balanced_vs_unbalanced": balanced_vs_unbalanced,
    "quotient_path": quotient_path,
    "scalar_fiber": scalar_fiber,
    "hessian_spectra": hessian_spectra,
    "conservation": conservation,
}


def save(figure: Figure, path: str, *, dpi: int = DPI) -> str:
    """Write ``figure`` as a PNG without version metadata, so reruns give the same bytes."""
    figure.savefig(path, dpi=dpi, metadata={"Software": None})
    return path


def main(argv=None) -> int:
    """Command line: ``python -m quotient.figures [--out figures] [--only NAME ...]``."""
    parser = argparse.ArgumentParser(prog="python -m quotient.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures", help="output folder (default figures)")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="regenerate only these figures")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name in args.only or FIGURES:
        start = time.perf_counter()
        path = save(FIGURES[name](), os.path.join(args.out, f"{name}.png"))
        print(f"{path}  ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
