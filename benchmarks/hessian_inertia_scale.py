"""How large a network can `hessian_inertia` handle in under a minute?

Times the matrix-free paths (``sketch``, the default beyond ``N = 2000``, and ``lanczos``) and the
dense one (while ``N <= 3000``) at canonical critical points of square networks ``(d,) * (h + 1)``
with distinct singular values, for growing ``d``. Two kinds of points bracket the cost, which
grows with the number of non-zero eigenvalues: a top saddle learning two modes (``2 (2d - 2)``
non-zero eigenvalues) and the global minimum (``d^2``). A method is dropped for the larger
sizes once one of its calls takes longer than ``--budget`` seconds.

    python benchmarks/hessian_inertia_scale.py [--depth 3] [--budget 60] [--methods dense,sketch,lanczos]
"""

import argparse
import os
import platform
import time

import numpy as np

import quotient as q


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--widths", default="8,16,32,48,64,96,128,192,256")
    parser.add_argument("--methods", default="dense,sketch,lanczos", help="comma-separated hessian_inertia methods to time")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print("| point | d | h | N | method | inertia (-, 0, +) | seconds |")
    print("|---|---|---|---|---|---|---|")
    for label, learned in (("top saddle S = {1, 2}", lambda d: (1, 2)), ("global minimum", lambda d: tuple(range(1, d + 1)))):
        dropped = set()
        for d in (int(w) for w in args.widths.split(",")):
            widths = (d,) * (args.depth + 1)
            problem = q.Problem.from_sigma(np.linspace(2.0, 1.0, d), widths)
            point = q.canonical_point(problem, learned(d))
            methods = [m for m in args.methods.split(",") if m not in dropped]
            if problem.n_params > 3000 and "dense" in methods:
                methods.remove("dense")
            if not methods:
                break
            for method in methods:
                inertia, seconds = timed(lambda: q.hessian_inertia(problem, point, method=method))
                print(f"| {label} | {d} | {args.depth} | {problem.n_params} | {method} | {tuple(inertia)} | {seconds:.2f} |", flush=True)
                if seconds > args.budget:
                    dropped.add(method)


if __name__ == "__main__":
    main()
