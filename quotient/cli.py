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


def _problem(args, widths):
    from .problem import Problem

    if args.data is None:
        return Problem.from_sigma(np.asarray(args.sigma), widths)
    if args.sigma_given:
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
EXPLORE_FILES = ("trajectory.npz", "loss.png", "singular_values.png", "summary.md")


def _explore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--widths", type=_int_list, default=DEFAULT_WIDTHS, help="d_0,...,d_h (default 4,8,8,4)")
    parser.add_argument("--sigma", type=_float_list, default=None, help="target singular values (default 5,3,2,1)")
    parser.add_argument("--data", default=None, help=".npz with X (d_0 x n) and Y (d_h x n), or .npy target matrix")
    parser.add_argument("--depth", type=int, default=None, help="number of layers h (repeats the first hidden width)")
    parser.add_argument("--init-scale", type=float, default=1e-2, help="std of the small random init (default 1e-2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--t-final", type=float, default=1e4, help="longest time to integrate (default 1e4)")
    parser.add_argument("--gradient-tol", type=float, default=1e-6, help="stop when ||grad L|| falls below this (default 1e-6)")
    parser.add_argument("--out", default="explore-out", help="output folder (default explore-out)")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _explore(args) -> int:
    from . import init
    from .critical import critical_values, plateaus
    from .flow import gradient_flow
    from .plot import loss_curve, singular_value_curves

    widths = _architecture(args.widths, args.depth)
    args.sigma_given = args.sigma is not None
    if args.sigma is None:
        m = min(widths[0], widths[-1])
        args.sigma = DEFAULT_SIGMA[:m] if m <= len(DEFAULT_SIGMA) else tuple(np.linspace(5.0, 1.0, m))
    try:
        problem = _problem(args, widths)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    if not args.t_final > 0:
        raise UsageError(f"--t-final must be positive; got {args.t_final}")
    if not args.init_scale > 0:
        raise UsageError(f"--init-scale must be positive; got {args.init_scale}")
    _prepare_output(args.out, EXPLORE_FILES, args.overwrite)

    point0 = init.small_random(widths, args.init_scale, rng=args.seed)
    trajectory = gradient_flow(
        problem, point0, args.t_final, t_eval=2001, gradient_tol=args.gradient_tol, progress=not args.quiet
    )
    values = critical_values(problem)
    minimum = values[0]
    visited = plateaus(problem, trajectory.times, trajectory.loss)
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
    figures = {"loss.png": loss_curve(trajectory), "singular_values.png": singular_value_curves(trajectory)}
    lines += ["", "![loss](loss.png)", "", "![singular values](singular_values.png)", ""]
    trajectory.save(os.path.join(args.out, "trajectory.npz"), overwrite=True)
    for name, figure in figures.items():
        figure.savefig(os.path.join(args.out, name), dpi=150)
    with open(os.path.join(args.out, "summary.md"), "w") as stream:
        stream.write("\n".join(lines))
    print("\n".join(line for line in lines if not line.startswith("![")).rstrip())
    print(f"\nwrote {', '.join(os.path.join(args.out, name) for name in EXPLORE_FILES)}")
    return 0


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
    from .plot import fiber_samples

    widths = _architecture(args.widths, args.depth)
    args.sigma_given = args.sigma is not None
    if args.sigma is None:
        m = min(widths[0], widths[-1])
        args.sigma = DEFAULT_SIGMA[:m] if m <= len(DEFAULT_SIGMA) else tuple(np.linspace(5.0, 1.0, m))
    try:
        problem = _problem(args, widths)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
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
    norms = np.sqrt(sum(np.sum(layer**2, axis=(1, 2)) for layer in samples))
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


COMMANDS = {
    "explore": (_explore_arguments, _explore, "run the gradient flow from a small random init and summarise it"),
    "fiber": (_fiber_arguments, _fiber, "sample the fiber of one critical value and classify its points"),
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
