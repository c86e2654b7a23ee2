"""The ``quotient`` command line.

Each sub-command is a pair of functions, ``_<name>_arguments(parser)`` and ``_<name>(args)``,
registered in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

__all__ = ["main"]

DEFAULT_WIDTHS = (4, 8, 8, 4)
DEFAULT_SIGMA = (5.0, 3.0, 2.0, 1.0)


class UsageError(Exception):
    """Bad command-line input; reported as one line on standard error with exit status 2."""


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace("-", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, like 4,8,8,4; got {text!r}") from None


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, like 5,3,2,1; got {text!r}") from None


def _architecture(widths, depth) -> tuple[int, ...]:
    """Widths from ``--widths`` and ``--depth``: depth repeats the first hidden width."""
    if depth is None:
        return widths
    if depth < 1:
        raise UsageError(f"--depth must be at least 1; got {depth}")
    hidden = widths[1] if len(widths) > 2 else max(widths[0], widths[-1])
    return (widths[0],) + (hidden,) * (depth - 1) + (widths[-1],)


def _problem(args):
    """The problem of ``--widths``/``--depth`` with ``--sigma`` (default 5,3,2,1 cut to m) or ``--data``."""
    widths = _architecture(args.widths, args.depth)
    sigma_given = args.sigma is not None
    if not sigma_given:
        m = min(widths[0], widths[-1])
        args.sigma = DEFAULT_SIGMA[:m] if m <= len(DEFAULT_SIGMA) else tuple(np.linspace(5.0, 1.0, m))
    try:
        return _load_problem(args, widths, sigma_given)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None


def _load_problem(args, widths, sigma_given):
    from .problem import Problem

    if args.data is None:
        return Problem.from_sigma(np.asarray(args.sigma), widths)
    if sigma_given:
        raise UsageError("give either --sigma or --data, not both")
    path = args.data
    if not os.path.exists(path):
        raise UsageError(f"--data: no such file {path!r}")
    if path.endswith(".npy"):
        return Problem.from_sigma(np.load(path, allow_pickle=False), widths)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            if "X" in data and "Y" in data:
                return Problem.from_data(data["X"], data["Y"], widths)
            if "sigma" in data:
                return Problem.from_sigma(data["sigma"], widths)
            raise UsageError(f"--data {path!r} must hold arrays 'X' and 'Y' (data) or 'sigma'; found {sorted(data)}")
    raise UsageError(f"--data must be a .npy target matrix or a .npz file with X and Y; got {path!r}")


def _prepare_output(folder: str, names, overwrite: bool) -> None:
    """Refuse to overwrite earlier results unless asked, before any computation runs."""
    os.makedirs(folder, exist_ok=True)
    existing = [name for name in names if os.path.exists(os.path.join(folder, name))]
    if existing and not overwrite:
        raise UsageError(
            f"--out {folder!r} already holds {', '.join(existing)}; choose another folder or pass --overwrite"
        )


# ---------------------------------------------------------------------------------------- explore
EXPLORE_FIGURES = {
    "loss.png": "loss against time with the critical values it rests at (the incremental-learning staircase)",
    "singular_values.png": "singular values of the end-to-end map W(t) against the targets sigma_k",
    "quotient.png": "the trajectory in the quotient coordinates u_k = <W, u_k v_k^T> of modes 1 and 2",
    "critical_graph.png": "the critical values as a Hasse diagram, with the path of the run through them",
    "conservation.png": "drift of the conserved quantities C_i along the run",
    "hessian.png": "Hessian spectrum at the critical point nearest the final point",
}
EXPLORE_FILES = ("trajectory.npz", *EXPLORE_FIGURES, "summary.md")
#: Largest number of parameters for which explore draws the dense Hessian spectrum.
EXPLORE_HESSIAN_LIMIT = 1000


def _explore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--widths", type=_int_list, default=DEFAULT_WIDTHS, help="d_0,...,d_h (default 4,8,8,4)")
    parser.add_argument("--sigma", type=_float_list, default=None, help="target singular values (default 5,3,2,1)")
    parser.add_argument("--data", default=None, help=".npz with X (d_0 x n) and Y (d_h x n), or .npy target matrix")
    parser.add_argument("--depth", type=int, default=None, help="number of layers h (repeats the first hidden width)")
    parser.add_argument("--init-scale", type=float, default=1e-2, help="std of the small random init (default 1e-2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--t-final", type=float, default=1e4, help="longest time to integrate (default 1e4)")
    parser.add_argument("--gradient-tol", type=float, default=1e-6, help="stop when ||grad L|| falls below this near the global minimum (default 1e-6)")
    parser.add_argument("--out", default="explore-out", help="output folder (default explore-out)")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _explore(args) -> int:
    from . import init
    from .critical import critical_values
    from .flow import gradient_flow
    from .graph import plateaus

    problem = _problem(args)
    widths = problem.widths
    if not args.t_final > 0:
        raise UsageError(f"--t-final must be positive; got {args.t_final}")
    if not args.init_scale > 0:
        raise UsageError(f"--init-scale must be positive; got {args.init_scale}")
    _prepare_output(args.out, EXPLORE_FILES, args.overwrite)

    point0 = init.small_random(widths, args.init_scale, rng=args.seed)
    trajectory = gradient_flow(
        problem, point0, args.t_final, t_eval=2001, gradient_tol=args.gradient_tol, until="minimum", progress=not args.quiet
    )
    values = critical_values(problem)
    minimum = values[0]
    visited = plateaus(problem, trajectory.times, trajectory.end_to_end)
    stop = "gradient norm below --gradient-tol" if trajectory.status == 1 else "reached --t-final"
    sigma_text = ", ".join(f"{s:.4g}" for s in problem.sigma)
    lines = [
        f"# quotient explore: widths {'-'.join(map(str, widths))} (h = {problem.depth}), sigma = {sigma_text}",
        "",
        f"- init: N(0, {args.init_scale:g}^2) entries, seed {args.seed}",
        f"- flow: {trajectory.method}, rtol {trajectory.rtol:g}, atol {trajectory.atol:g}; "
        f"{trajectory.n_steps} steps, {trajectory.n_rhs} gradient evaluations; "
        f"stopped at t = {trajectory.times[-1]:.6g} ({stop})",
        f"- final loss {trajectory.loss[-1]:.6e}; global minimum {minimum.value:.6g} "
        f"(learnt {{{','.join(map(str, minimum.learned))}}}); gap {trajectory.loss[-1] - minimum.value:.3e}",
        f"- conservation drift (relative, max over t): {trajectory.conservation_drift.max():.3e}",
        "",
        "| plateau | t from | t to | loss value L_S | learnt S |",
        "|---|---|---|---|---|",
    ]
    for k, plateau in enumerate(visited, start=1):
        value = plateau.critical_value
        lines.append(
            f"| {k} | {plateau.t_start:.4g} | {plateau.t_end:.4g} | {value.value:.6g} | "
            f"{{{','.join(map(str, value.learned))}}} |"
        )
    figures, notes = _explore_figures(problem, trajectory)
    lines += ["", *notes, "", "## Pictures", ""]
    for name, caption in EXPLORE_FIGURES.items():
        if name in figures:
            lines += [f"### {caption[0].upper()}{caption[1:]}", "", f"![{name[:-4]}]({name})", ""]
    trajectory.save(os.path.join(args.out, "trajectory.npz"), overwrite=True)
    for name, figure in figures.items():
        figure.savefig(os.path.join(args.out, name), dpi=120, metadata={"Software": None})
    with open(os.path.join(args.out, "summary.md"), "w") as stream:
        stream.write("\n".join(lines))
    print("\n".join(line for line in lines if not line.startswith(("![", "#"))).rstrip())
    written = ["trajectory.npz", *figures, "summary.md"]
    print(f"\nwrote {', '.join(os.path.join(args.out, name) for name in written)}")
    return 0


def _explore_figures(problem, trajectory):
    """The pictures of one explore run, by file name, and lines for the summary about them."""
    from .critical import classify
    from .fiber import fiber
    from .network import _squared_norm
    from .plot import conservation_drift, critical_graph, hessian_spectrum, loss_curve, quotient_trajectory
    from .plot import singular_value_curves
    from .projection import project

    figures = {
        "loss.png": loss_curve(trajectory),
        "singular_values.png": singular_value_curves(trajectory),
        "critical_graph.png": critical_graph(problem, trajectory=trajectory),
        "conservation.png": conservation_drift(trajectory),
    }
    if problem.sigma.size >= 2:
        figures["quotient.png"] = quotient_trajectory(trajectory)
    final = trajectory.point(-1)
    learned = project(trajectory).learned[-1]
    if problem.n_params > EXPLORE_HESSIAN_LIMIT:
        return figures, [f"- Hessian spectrum not drawn: {problem.n_params} parameters > {EXPLORE_HESSIAN_LIMIT}"]
    try:
        point = fiber(problem, learned).nearest(final)
        where = "the critical point nearest the final point"
    except (RuntimeError, ValueError):
        point, where = final, "the final point (no nearby critical point found)"
    distance = float(np.sqrt(_squared_norm([a - b for a, b in zip(point, final)])))
    kind = classify(problem, point).replace("_", " ")
    modes = ",".join(map(str, learned))
    title = f"Hessian at {where}\n(distance {distance:.1e} from the final point): learnt {{{modes}}}, {kind}"
    figures["hessian.png"] = hessian_spectrum(problem, point, title=title)
    return figures, [f"- Hessian spectrum at {where}, at distance {distance:.2e}: learnt {{{modes}}}, {kind}"]


# ---------------------------------------------------------------------------------------- fiber
FIBER_FILES = ("fiber.png", "fiber_samples.npz")


def _learned_list(text: str) -> tuple[int, ...]:
    """``--learned``: 1-based modes like ``1,3``; ``none`` or an empty string for nothing learnt."""
    if text.strip().lower() in ("", "none", "{}"):
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected mode numbers separated by commas, like 1,3 (or none); got {text!r}") from None


def _fiber_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--widths", type=_int_list, default=(3, 3, 3, 3), help="d_0,...,d_h (default 3,3,3,3)")
    parser.add_argument("--sigma", type=_float_list, default=None, help="target singular values (default 5,3,2,1 cut to m)")
    parser.add_argument("--data", default=None, help=".npz with X (d_0 x n) and Y (d_h x n), or .npy target matrix")
    parser.add_argument("--depth", type=int, default=None, help="number of layers h (repeats the first hidden width)")
    parser.add_argument(
        "--learned", type=_learned_list, default=None,
        help="learnt modes S, 1-based, like 1,3 ('none' for the origin's value; default: the global minimum)",
    )  # fmt: skip
    parser.add_argument("--samples", type=int, default=200, help="number of fiber samples to draw (default 200)")
    parser.add_argument("--spread", type=float, default=1.0, help="size of the sampling moves (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", default="fiber-out", help="output folder (default fiber-out)")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out")


def _fiber(args) -> int:
    from .critical import _gradient_size, classify, critical_values, hessian_inertia
    from .fiber import fiber
    from .network import _squared_norm
    from .plot import fiber_samples

    problem = _problem(args)
    widths = problem.widths
    if args.samples < 1:
        raise UsageError(f"--samples must be at least 1; got {args.samples}")
    if not (np.isfinite(args.spread) and args.spread >= 0):
        raise UsageError(f"--spread must be a non-negative number; got {args.spread}")
    learned = critical_values(problem)[0].learned if args.learned is None else args.learned
    try:
        chosen = fiber(problem, learned)
    except (ValueError, TypeError) as error:
        raise UsageError(f"--learned: {error}") from None
    _prepare_output(args.out, FIBER_FILES, args.overwrite)

    representative = chosen.representative
    kind = classify(problem, representative)
    inertia = hessian_inertia(problem, representative)
    samples = chosen.sample(args.samples, args.seed, args.spread)
    points = [tuple(layer[k] for layer in samples) for k in range(args.samples)]
    classes = [classify(problem, point) for point in points]
    relative = max(_gradient_size(problem, point)[1] for point in points)
    losses = np.array([problem.loss(point) for point in points])
    norms = np.sqrt(_squared_norm(samples))
    minimum = critical_values(problem)[0]
    modes = ",".join(map(str, chosen.learned))
    sigma_text = ", ".join(f"{s:.4g}" for s in problem.sigma)
    lines = [
        f"quotient fiber: widths {'-'.join(map(str, widths))} (h = {problem.depth}), sigma = {sigma_text}",
        f"- critical value L_S = {chosen.value:.6g} for S = {{{modes}}}"
        + (f" (also learnt by {len(chosen.alternatives) - 1} other set(s))" if len(chosen.alternatives) > 1 else "")
        + f"; global minimum {minimum.value:.6g}",
        f"- canonical point: {kind}; Hessian inertia (negative, zero, positive) = "
        f"({inertia.negative}, {inertia.zero}, {inertia.positive}) of N = {problem.n_params}",
        f"- local dimension (dim ker H at the canonical point): {chosen.dimension}",
    ]
    if kind == "global_minimum" and len(chosen.learned) == problem.rank_bound:
        r = problem.rank_bound
        formula = problem.n_params - r * (widths[0] + widths[-1] - r)
        lines.append(f"  global-minimum formula N - r (d_0 + d_h - r) = {formula}")
    counts = ", ".join(f"{name} {classes.count(name)}" for name in dict.fromkeys(classes))
    lines += [
        f"- {args.samples} samples (spread {args.spread:g}, seed {args.seed}): {counts}",
        f"  largest relative gradient {relative:.1e}, largest |L - L_S| {np.max(np.abs(losses - chosen.value)):.1e}, "
        f"norms from {norms.min():.3g} to {norms.max():.3g}",
    ]
    figure = fiber_samples(chosen, samples, classes=classes)
    figure.savefig(os.path.join(args.out, "fiber.png"), dpi=150)
    arrays = {f"W_{i}": layer for i, layer in enumerate(samples, start=1)}
    np.savez_compressed(
        os.path.join(args.out, "fiber_samples.npz"),
        widths=np.array(widths), sigma=problem.sigma, learned=np.array(chosen.learned, dtype=int),
        value=np.array(chosen.value), seed=np.array(args.seed), spread=np.array(args.spread),
        classes=np.array(classes), **arrays,
    )  # fmt: skip
    print("\n".join(lines))
    print(f"\nwrote {', '.join(os.path.join(args.out, name) for name in FIBER_FILES)}")
    return 0


# ---------------------------------------------------------------------------------------- sweep
def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="TOML file: [problem] sigma, [grid] depths/widths/init_scales/seeds, [flow], [cluster]")
    parser.add_argument("--out", default=None, help="output folder (default: 'out' in the file, else sweep-out)")
    parser.add_argument("--scheduler", default=None, help="dask scheduler address like tcp://host:8786 (default: a LocalCluster)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _sweep(args) -> int:
    from .sweep import read_config, sweep

    if not os.path.exists(args.config):
        raise UsageError(f"no such config file {args.config!r}")
    try:
        config = read_config(args.config)
    except ValueError as error:
        raise UsageError(str(error)) from None
    out = args.out or config.pop("out", None) or "sweep-out"
    config.pop("out", None)
    if args.scheduler is not None:
        config["scheduler"] = args.scheduler
    try:
        table = sweep(out, progress=not args.quiet, **config)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    table.to_csv(os.path.join(out, "outcomes.csv"), index=False)
    summary = table.groupby(["depth", "width", "init_scale"]).agg(
        runs=("run", "size"), converged=("converged", "sum"), final_loss=("final_loss", "median"),
        t_stop=("t_stop", "median"), plateaus=("n_plateaus", "median"),
    )  # fmt: skip
    print(f"quotient sweep: {len(table)} runs in {out} ({int(table['converged'].sum())} converged)")
    print(summary.to_string())
    print(f"\nwrote {os.path.join(out, 'outcomes.csv')}, {os.path.join(out, 'index.json')} and {os.path.join(out, 'runs')}/")
    return 0


COMMANDS = {
    "explore": (_explore_arguments, _explore, "run the gradient flow from a small random init and summarise it"),
    "fiber": (_fiber_arguments, _fiber, "sample the fiber of one critical value and classify its points"),
    "sweep": (_sweep_arguments, _sweep, "run gradient flows over a grid of depths, widths, init scales and seeds on dask"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="quotient", description="Gradient flows of deep linear networks as geometry.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _, help_text) in COMMANDS.items():
        add_arguments(subparsers.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except UsageError as error:
        print(f"quotient {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
