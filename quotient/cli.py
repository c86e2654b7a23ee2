"""The ``quotient`` command line.

Each sub-command is a pair of functions, ``_<name>_arguments(parser)`` and ``_<name>(args)``,
registered in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys

import numpy as np

__all__ = ["main"]

DEFAULT_WIDTHS = (4, 8, 8, 4)
DEFAULT_SIGMA = (5.0, 3.0, 2.0, 1.0)
#: Most fiber samples ``quotient fiber`` draws (each is classified, about 1 ms apiece).
FIBER_SAMPLE_LIMIT = 100_000
#: Most modes m = min(d_0, d_h) the commands take at depth >= 2: they list every critical value,
#: up to 2^m of them (m = 18 takes 4 s, m = 20 takes 30 s).
MODE_LIMIT = 16


class UsageError(Exception):
    """Bad command-line input; reported as one line on standard error with exit status 2."""


class _ParseError(Exception):
    def __init__(self, prog, message):
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (``quotient explore: error: ...``), exit 2."""

    def error(self, message):
        raise _ParseError(self.prog, message)


# ---------------------------------------------------------------------------------------- argument types
def _widths_list(text: str) -> tuple[int, ...]:
    """``--widths``: positive integers separated by commas (``4,8,8,4``) or dashes (``4-8-8-4``)."""
    parts = text.split(",") if "," in text or text.lstrip().startswith("-") else text.split("-")
    parts = [part.strip() for part in parts]
    if not text.strip() or "" in parts:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, like 4,8,8,4; got {text!r}")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, like 4,8,8,4; got {text!r}") from None
    bad = [value for value in values if value < 1]
    if bad:
        raise argparse.ArgumentTypeError(f"every width must be a positive integer; got {bad[0]} in {text!r}")
    if len(values) < 2:
        raise argparse.ArgumentTypeError(f"expected at least two widths d_0,d_h (one layer); got {text!r}")
    return values


def _sigma_list(text: str) -> tuple[float, ...]:
    """``--sigma``: finite non-negative numbers separated by commas."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or "" in parts:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, like 5,3,2,1; got {text!r}")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, like 5,3,2,1; got {text!r}") from None
    if not all(math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError(f"singular values must be finite; got {text!r}")
    if any(value < 0 for value in values):
        raise argparse.ArgumentTypeError(f"singular values are non-negative; got {text!r}")
    return values


def _number(kind, condition, what):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if not condition(value):
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


_positive = _number(float, lambda x: math.isfinite(x) and x > 0, "a positive finite number")
_non_negative = _number(float, lambda x: math.isfinite(x) and x >= 0, "a finite number >= 0")
_count = _number(int, lambda n: n >= 1, "a positive integer")
_seed = _number(int, lambda n: 0 <= n < 2**63, "an integer seed >= 0")
_samples = _number(int, lambda n: 1 <= n <= FIBER_SAMPLE_LIMIT, f"an integer from 1 to {FIBER_SAMPLE_LIMIT}")

_NEGATIVE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


def _join_negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--sigma -1,2`` as ``--sigma=-1,2``: argparse takes a value like ``-1,2`` for an option."""
    takes_value = {
        option
        for action in parser._actions
        for sub in ([action] if not isinstance(action, argparse._SubParsersAction) else
                    [a for p in action.choices.values() for a in p._actions])
        if sub.nargs is None and sub.option_strings and not isinstance(sub, (argparse._StoreTrueAction, argparse._VersionAction))
        for option in sub.option_strings
    }  # fmt: skip
    joined, k = [], 0
    while k < len(argv):
        if argv[k] in takes_value and k + 1 < len(argv) and _NEGATIVE.match(argv[k + 1]):
            joined.append(f"{argv[k]}={argv[k + 1]}")
            k += 2
        else:
            joined.append(argv[k])
            k += 1
    return joined


# ---------------------------------------------------------------------------------------- the problem
def _architecture(widths, depth, default_hidden: int, given: bool) -> tuple[int, ...]:
    """Widths from ``--widths`` and ``--depth``: depth repeats the first hidden width."""
    if depth is None:
        return widths
    if given and len(widths) > 3 and depth != len(widths) - 1:
        raise UsageError(
            f"--depth {depth} contradicts --widths {','.join(map(str, widths))} ({len(widths) - 1} layers); give one of them"
        )
    hidden = widths[1] if len(widths) > 2 else default_hidden
    return (widths[0],) + (hidden,) * (depth - 1) + (widths[-1],)


def _read_data(path: str):
    """``(kind, arrays)`` of ``--data``: ``("data", (X, Y))``, ``("target", matrix)`` or ``("sigma", values)``."""
    from ._io import FileFormatError, read_npz

    if not os.path.exists(path):
        raise UsageError(f"--data: no such file {path!r}")
    if not path.endswith((".npy", ".npz")):
        raise UsageError(f"--data must be a .npy target matrix or a .npz file with X and Y; got {path!r}")
    try:
        if path.endswith(".npy"):
            if os.path.isdir(path):
                raise UsageError(f"--data {path!r} is a folder, not a .npy file")
            try:
                values = np.load(path, allow_pickle=False)
            except (ValueError, OSError, EOFError) as error:
                raise UsageError(f"--data {path!r} is not a readable .npy file ({error})") from None
            arrays = {"sigma": values}
        else:
            arrays = read_npz(path)
    except FileFormatError as error:
        raise UsageError(f"--data: {error}") from None
    if "X" in arrays and "Y" in arrays:
        X, Y = arrays["X"], arrays["Y"]
        if X.ndim != 2 or Y.ndim != 2:
            raise UsageError(f"--data {path!r}: X and Y must be matrices (d_0 x n and d_h x n); got shapes {X.shape} and {Y.shape}")
        return "data", (X, Y)
    if "sigma" in arrays:
        values = arrays["sigma"]
        if values.ndim == 2:
            return "target", values
        if values.ndim == 1:
            return "sigma", values
        raise UsageError(
            f"--data {path!r} must hold a target matrix (d_h x d_0) or singular values (1-D); got an array of {values.ndim} axes"
        )
    raise UsageError(f"--data {path!r} must hold arrays 'X' and 'Y' (data) or 'sigma'; found {sorted(arrays)}")


#: The data sets of ``--dataset``: name -> loader in :mod:`quotient.datasets`.
DATASETS = ("digits",)


def _load_dataset(name: str):
    """``(X, Y)`` of ``--dataset NAME``."""
    from . import datasets

    try:
        dataset = getattr(datasets, name)()
    except ImportError as error:
        raise UsageError(f"--dataset {name}: {error}") from None
    return dataset.X, dataset.Y


def _problem(args, default_widths):
    """The problem of ``--widths``/``--depth`` with ``--sigma`` (default 5,3,2,1 cut to m) or ``--data``.

    Sets ``args.notes``: lines for the summary on choices made for the user (a cut default sigma).
    """
    from .problem import Problem

    args.notes = []
    given = args.widths is not None
    widths = args.widths if given else default_widths
    data = None
    dataset = getattr(args, "dataset", None)
    if dataset is not None:
        for option, value in (("--sigma", args.sigma), ("--data", args.data)):
            if value is not None:
                raise UsageError(f"give either {option} or --dataset, not both")
        data = ("data", _load_dataset(dataset))
        arrays = data[1]
        args.notes.append(
            f"- data: --dataset {dataset}, d_0 = {arrays[0].shape[0]} inputs, d_h = {arrays[1].shape[0]} outputs, "
            f"n = {arrays[0].shape[1]} samples; inputs whitened"
        )
    elif args.data is not None:
        if args.sigma is not None:
            raise UsageError("give either --sigma or --data, not both")
        data = _read_data(args.data)
    if data is not None:
        kind, arrays = data
        ends = None
        if kind == "data":
            ends = (arrays[0].shape[0], arrays[1].shape[0])
        elif kind == "target":
            ends = (arrays.shape[1], arrays.shape[0])
        if ends is not None:
            if given and (widths[0], widths[-1]) != ends:
                source = f"--dataset {dataset}" if dataset is not None else f"--data {args.data!r}"
                raise UsageError(
                    f"--widths {','.join(map(str, widths))} has d_0 = {widths[0]}, d_h = {widths[-1]}, but {source} "
                    f"has d_0 = {ends[0]}, d_h = {ends[1]}; drop --widths or fix it"
                )
            if not given:
                widths = (ends[0],) + tuple(default_widths[1:-1]) + (ends[1],)
    widths = _architecture(widths, args.depth, default_widths[1], given)
    m = min(widths[0], widths[-1])
    if m > MODE_LIMIT and len(widths) > 2:  # one layer: the loss is convex, one critical value
        raise UsageError(
            f"--widths {','.join(map(str, widths))}: m = min(d_0, d_h) = {m} modes have up to 2^{m} critical values, which "
            f"quotient {args.command} lists; it takes at most {MODE_LIMIT} (use the Python API for larger problems)"
        )
    try:
        if data is None:
            sigma = args.sigma
            if sigma is None:
                sigma = DEFAULT_SIGMA[:m] if m <= len(DEFAULT_SIGMA) else tuple(np.linspace(5.0, 1.0, m))
                if m != len(DEFAULT_SIGMA):
                    args.notes.append(
                        f"- sigma: the default 5,3,2,1 {'cut to its first' if m < 4 else 'replaced by'} m = min(d_0, d_h) = {m} "
                        f"values {','.join(f'{s:g}' for s in sigma)}; pass --sigma to choose them"
                    )
            try:
                return Problem.from_sigma(np.asarray(sigma, dtype=float), widths)
            except (ValueError, TypeError) as error:
                raise UsageError(f"--sigma {','.join(f'{s:g}' for s in sigma)}: {error}") from None
        kind, arrays = data
        try:
            if kind == "data":
                return Problem.from_data(arrays[0], arrays[1], widths)
            return Problem.from_sigma(arrays, widths)
        except (ValueError, TypeError) as error:
            source = f"--dataset {dataset}" if dataset is not None else f"--data {args.data!r}"
            raise UsageError(f"{source}: {error}") from None
    except UsageError:
        raise
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None


# ---------------------------------------------------------------------------------------- output folders
def _check_output(folder: str, names, overwrite: bool, command: str) -> None:
    """Refuse an ``--out`` that is a file, holds other files, or holds results without ``--overwrite``.

    Runs before any computation. The results are written into a folder beside ``folder`` and
    swapped in when complete (:class:`quotient._io.StagedFolder`), so ``folder`` is replaced as a
    whole: a folder holding files that are not the command's is refused rather than lost.
    """
    if not folder.strip():
        raise UsageError("--out must name a folder; got ''")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"--out {folder!r} is a file, not a folder")
    if os.path.isdir(folder):
        entries = sorted(os.listdir(folder))
        foreign = [name for name in entries if name not in names]
        if foreign:
            raise UsageError(
                f"--out {folder!r} holds files that quotient {command} did not write ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); choose a new or empty folder"
            )
        if entries and not overwrite:
            raise UsageError(
                f"--out {folder!r} already holds {', '.join(entries)}; choose another folder or pass --overwrite"
            )
    parent = os.path.dirname(os.path.abspath(folder))
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {folder!r}: cannot create files in {existing!r}")


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
    parser.add_argument("--widths", type=_widths_list, default=None,
                        help="d_0,...,d_h (default 4,8,8,4; with --data, d_0 and d_h are read from the data)")
    parser.add_argument("--sigma", type=_sigma_list, default=None,
                        help="target singular values, non-increasing (default 5,3,2,1, cut to m = min(d_0, d_h))")
    parser.add_argument("--data", default=None, help=".npz with X (d_0 x n) and Y (d_h x n), or .npy target matrix")
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="a bundled data set: digits (scikit-learn's, 61 varying pixels -> 10 one-hot classes; no download)")
    parser.add_argument("--depth", type=_count, default=None, help="number of layers h (repeats the first hidden width)")
    parser.add_argument("--init-scale", type=_positive, default=1e-2, help="std of the small random init (default 1e-2)")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed, an integer >= 0 (default 0)")
    parser.add_argument("--t-final", type=_positive, default=1e4, help="longest time to integrate (default 1e4)")
    parser.add_argument("--gradient-atol", type=_positive, default=1e-6,
                        help="stop when ||grad L|| falls below this near the global minimum (default 1e-6)")
    parser.add_argument("--method", default=None,
                        help="integrator of quotient.gradient_flow: auto (the default: compiled DOP853, LSODA with the exact "
                             "Hessian once stiff) or one of scipy's DOP853, RK45, RK23, Radau, BDF, LSODA")
    parser.add_argument("--out", default="explore-out", help="output folder (default explore-out)")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")  # fmt: skip


def _plateau_note(problem, trajectory):
    """A line saying the run ended on a plateau, or None if it ended near the global minimum.

    The run ended at the global minimum when its final loss is closer to ``L_min`` than to any
    other critical value (``L < L_min + (L_next - L_min) / 2``, the test of
    ``gradient_flow(until="minimum")``).
    """
    from .critical import global_minimum, minimum_threshold
    from .graph import nearest_critical

    final = float(trajectory.loss[-1])
    if final < minimum_threshold(problem):
        return None
    learned, value, _ = nearest_critical(problem, trajectory.end_to_end[-1])
    return (
        f"- NOT at the global minimum: the run ended on the plateau of L_S = {float(value):.6g} "
        f"(learned {{{','.join(map(str, learned))}}}) with loss {final:.6g}, above the global minimum "
        f"{global_minimum(problem):.6g}; a larger --t-final (now {trajectory.times[-1]:g}) or --init-scale lets it go on"
    )


def _explore(args) -> int:
    from . import init
    from ._io import StagedFolder, stage_hook
    from .critical import critical_values
    from .flow import gradient_flow, status_message
    from .graph import plateaus

    problem = _problem(args, DEFAULT_WIDTHS)
    widths = problem.widths
    _check_output(args.out, EXPLORE_FILES, args.overwrite, "explore")

    point0 = init.small_random(widths, args.init_scale, rng=args.seed)
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(problem.loss(point0)) and all(np.all(np.isfinite(G)) for G in problem.gradient(point0))
    if not finite:
        raise UsageError(f"--init-scale {args.init_scale:g}: the loss or its gradient at the init overflows; take a smaller scale")
    with StagedFolder(args.out) as staging:  # swapped in for --out when complete; removed on an error
        options = {} if args.method is None else {"method": args.method}
        try:
            trajectory = gradient_flow(
                problem, point0, args.t_final, t_eval=2001, gradient_atol=args.gradient_atol, until="minimum",
                progress=not args.quiet, throw=False, **options,
            )  # fmt: skip
        except (ValueError, TypeError) as error:
            if args.method is not None and "method" in str(error):
                raise UsageError(f"--method {args.method!r}: {error}") from None
            raise
        if not trajectory.success:  # nothing is written: a failed run has no end to report
            raise UsageError(f"the flow from --init-scale {args.init_scale:g} failed after t = {trajectory.times[-1]:.6g}: {trajectory.message}")
        stage_hook("computed")
        values = critical_values(problem)
        minimum = values[0]
        visited = plateaus(problem, trajectory.times, trajectory.end_to_end)
        stop = status_message(trajectory.status, failure=trajectory.message, final_time="--t-final", gradient_bound="--gradient-atol")
        sigma_text = ", ".join(f"{s:.4g}" for s in problem.sigma)
        plateau = _plateau_note(problem, trajectory)
        lines = [
            f"# quotient explore: widths {'-'.join(map(str, widths))} (h = {problem.depth}), sigma = {sigma_text}",
            "",
            *args.notes,
            f"- init: N(0, {args.init_scale:g}^2) entries, seed {args.seed}",
            f"- flow: {trajectory.method} ({trajectory.meta['solver']}), rtol {trajectory.rtol:g}, atol {trajectory.atol:g}; "
            f"{trajectory.n_steps} steps, {trajectory.n_rhs} gradient evaluations; "
            f"stopped at t = {trajectory.times[-1]:.6g} ({stop})",
            f"- final loss {trajectory.loss[-1]:.6e}; global minimum {minimum.value:.6g} "
            f"(learned {{{','.join(map(str, minimum.learned))}}}); gap {trajectory.loss[-1] - minimum.value:.3e}",
            *([plateau] if plateau else []),
            f"- conservation drift (relative, max over t): {trajectory.conservation_drift.max():.3e}",
            "",
            "| plateau | t from | t to | loss value L_S | learned S |",
            "|---|---|---|---|---|",
        ]
        for k, passed in enumerate(visited, start=1):
            value = passed.critical_value
            lines.append(
                f"| {k} | {passed.t_start:.4g} | {passed.t_end:.4g} | {value.value:.6g} | "
                f"{{{','.join(map(str, value.learned))}}} |"
            )
        figures, notes = _explore_figures(problem, trajectory)
        lines += ["", *notes, "", "## Pictures", ""]
        for name, caption in EXPLORE_FIGURES.items():
            if name in figures:
                lines += [f"### {caption[0].upper()}{caption[1:]}", "", f"![{name[:-4]}]({name})", ""]
        trajectory.save(os.path.join(staging, "trajectory.npz"), overwrite=True)
        stage_hook("trajectory")
        for name, figure in figures.items():
            figure.savefig(os.path.join(staging, name), dpi=120, metadata={"Software": None})
            stage_hook(f"figure:{name}")
        with open(os.path.join(staging, "summary.md"), "w") as stream:
            stream.write("\n".join(lines))
        stage_hook("summary")
    stage_hook("done")
    print("\n".join(line for line in lines if not line.startswith(("![", "#"))).rstrip())
    written = ["trajectory.npz", *figures, "summary.md"]
    print(f"\nwrote {', '.join(os.path.join(args.out, name) for name in written)}")
    if plateau:
        print(f"\nquotient explore: the run ended on a plateau, not at the global minimum (L = {trajectory.loss[-1]:.6g} > "
              f"{minimum.value:.6g}); see summary.md")  # fmt: skip
    return 0


def _explore_figures(problem, trajectory):
    """The pictures of one explore run, by file name, and lines for the summary about them."""
    from ._numerics import squared_norm
    from .classification import classify
    from .fiber import fiber
    from .plot import (
        conservation_drift,
        critical_graph,
        hessian_spectrum,
        loss_curve,
        quotient_trajectory,
        singular_value_curves,
    )
    from .quotient_flow import project

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
    distance = float(np.sqrt(squared_norm([a - b for a, b in zip(point, final)])))
    kind = classify(problem, point).replace("_", " ")
    modes = ",".join(map(str, learned))
    title = f"Hessian at {where}\n(distance {distance:.1e} from the final point): learned {{{modes}}}, {kind}"
    figures["hessian.png"] = hessian_spectrum(problem, point, title=title)
    return figures, [f"- Hessian spectrum at {where}, at distance {distance:.2e}: learned {{{modes}}}, {kind}"]


# ---------------------------------------------------------------------------------------- fiber
FIBER_FILES = ("fiber.png", "fiber_samples.npz")


def _learned_list(text: str) -> tuple[int, ...]:
    """``--learned``: 1-based modes like ``1,3``; ``none`` or an empty string for nothing learned."""
    if text.strip().lower() in ("", "none", "{}"):
        return ()
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected mode numbers separated by commas, like 1,3 (or none); got {text!r}") from None
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"modes are numbered from 1; got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a mode appears twice in {text!r}")
    return values


def _fiber_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--widths", type=_widths_list, default=None,
                        help="d_0,...,d_h (default 3,3,3,3; with --data, d_0 and d_h are read from the data)")
    parser.add_argument("--sigma", type=_sigma_list, default=None, help="target singular values (default 5,3,2,1 cut to m)")
    parser.add_argument("--data", default=None, help=".npz with X (d_0 x n) and Y (d_h x n), or .npy target matrix")
    parser.add_argument("--depth", type=_count, default=None, help="number of layers h (repeats the first hidden width)")
    parser.add_argument(
        "--learned", type=_learned_list, default=None,
        help="learned modes S, 1-based, like 1,3 ('none' for the origin's value; default: the global minimum)",
    )
    parser.add_argument("--samples", type=_samples, default=200,
                        help=f"number of fiber samples to draw, at most {FIBER_SAMPLE_LIMIT} (default 200)")
    parser.add_argument("--spread", type=_non_negative, default=1.0, help="size of the sampling moves (default 1)")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed, an integer >= 0 (default 0)")
    parser.add_argument("--out", default="fiber-out", help="output folder (default fiber-out)")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")  # fmt: skip


def _fiber(args) -> int:
    from tqdm import tqdm

    from ._io import StagedFolder, stage_hook
    from ._numerics import squared_norm
    from .classification import classify, gradient_size
    from .critical import critical_values
    from .fiber import fiber
    from .hessian import hessian_inertia
    from .plot import fiber_samples

    problem = _problem(args, (3, 3, 3, 3))
    widths = problem.widths
    learned = critical_values(problem)[0].learned if args.learned is None else args.learned
    try:
        chosen = fiber(problem, learned)
    except (ValueError, TypeError) as error:
        raise UsageError(f"--learned {','.join(map(str, learned)) or 'none'}: {error}") from None
    _check_output(args.out, FIBER_FILES, args.overwrite, "fiber")

    representative = chosen.representative
    kind = classify(problem, representative)
    inertia = hessian_inertia(problem, representative)
    samples = chosen.sample(args.samples, args.seed, args.spread)
    points = [tuple(layer[k] for layer in samples) for k in range(args.samples)]
    classes = [classify(problem, point) for point in tqdm(points, desc="classify", unit="point", leave=False,
                                                          disable=True if args.quiet else None)]  # fmt: skip
    relative = max(gradient_size(problem, point)[1] for point in points)
    losses = np.array([problem.loss(point) for point in points])
    norms = np.sqrt(squared_norm(samples))
    minimum = critical_values(problem)[0]
    modes = ",".join(map(str, chosen.learned))
    sigma_text = ", ".join(f"{s:.4g}" for s in problem.sigma)
    lines = [
        f"quotient fiber: widths {'-'.join(map(str, widths))} (h = {problem.depth}), sigma = {sigma_text}",
        *args.notes,
        f"- critical value L_S = {chosen.value:.6g} for S = {{{modes}}}"
        + (f" (also learned by {len(chosen.alternatives) - 1} other set(s))" if len(chosen.alternatives) > 1 else "")
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
        "- fiber.png: the samples in three layer entries on signed logarithmic axes, "
        "slog x = sign(x) log10(1 + |x|) (the fiber is unbounded); the black star is the canonical point",
    ]
    figure = fiber_samples(chosen, samples, classes=classes)
    stage_hook("computed")
    with StagedFolder(args.out) as staging:
        figure.savefig(os.path.join(staging, "fiber.png"), dpi=150)
        stage_hook("figure:fiber.png")
        arrays = {f"W_{i}": layer for i, layer in enumerate(samples, start=1)}
        np.savez_compressed(
            os.path.join(staging, "fiber_samples.npz"),
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
    parser.add_argument("--out", default=None,
                        help="output folder (default: 'out' in the file, relative to the file's folder, else sweep-out beside the file)")
    parser.add_argument("--scheduler", default=None, help="dask scheduler address like tcp://host:8786 (default: a LocalCluster)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _sweep(args) -> int:
    from ._io import FolderLockedError, write_text
    from .sweep import read_config, sweep

    if not os.path.isfile(args.config):
        raise UsageError(f"config: no such file {args.config!r}")
    try:
        config = read_config(args.config)
    except ValueError as error:
        raise UsageError(str(error)) from None
    # --out is relative to the working directory; the file's out to the file's folder (read_config)
    out = args.out or config.pop("out", None) or os.path.join(os.path.dirname(os.path.abspath(args.config)), "sweep-out")
    config.pop("out", None)
    if args.scheduler is not None:
        config["scheduler"] = args.scheduler
    try:
        table = sweep(out, progress=not args.quiet, **config)
    except (ValueError, TypeError, FolderLockedError) as error:
        raise UsageError(str(error)) from None
    write_text(os.path.join(out, "outcomes.csv"), table.to_csv(index=False))
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
    """Run the ``quotient`` command line on ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0 on success, 2 on bad input (one line on standard error naming the argument), 130 when
    interrupted (Ctrl-C).
    """
    from . import __version__

    parser = _Parser(prog="quotient", description="Gradient flows of deep linear networks as geometry.")
    parser.add_argument("--version", action="version", version=f"quotient {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, _, help_text) in COMMANDS.items():
        add_arguments(subparsers.add_parser(name, help=help_text, description=help_text))
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "quotient"
    try:
        args = parser.parse_args(_join_negative_values(parser, argv))
        prog = f"quotient {args.command}"
        return COMMANDS[args.command][1](args)
    except _ParseError as error:
        print(f"{error.prog}: error: {error}", file=sys.stderr)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
    except OSError as error:  # a folder that cannot be written, a full disk
        print(f"{prog}: error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    return 2


if __name__ == "__main__":
    sys.exit(main())
