"""Symmetry and optimality of the quotient distance of `bundle.ParameterSpace` (O(d) quotient).

For random pairs of standard-normal points, computes `squared_dist(x, y)` and `squared_dist(y, x)`
and compares both with an oracle: the best of `--oracle-starts` Haar-random starts of the
block-coordinate Procrustes sweeps, each run to convergence, in both directions. Prints per
widths the largest relative asymmetry, the largest relative excess over the oracle, the number of
pairs where either exceeds its threshold, and the time of one distance.

    python benchmarks/quotient_distance.py [--pairs 100] [--oracle-starts 40] [--seed 0]
"""

import argparse
import time

import numpy as np

from quotient._numerics import haar_orthogonal
from quotient.bundle import ParameterSpace
from quotient.network import from_vector
from quotient.orbit import _procrustes_sweeps

WIDTHS = [(3, 4, 4, 3), (3, 4, 4, 4, 3)]


def oracle(widths, x, y, starts, rng):
    a, b = from_vector(x, widths), from_vector(y, widths)
    best = np.inf
    for _ in range(starts):
        R = tuple(haar_orthogonal(d, rng) for d in widths[1:-1])
        best = min(best, _procrustes_sweeps(b, a, R, 500, 1e-12)[1], _procrustes_sweeps(a, b, R, 500, 1e-12)[1])
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--oracle-starts", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for widths in WIDTHS:
        space = ParameterSpace(widths)
        metric = space.equip_with_quotient().metric
        rng = np.random.default_rng(args.seed)
        asymmetry, excess, elapsed = [], [], 0.0
        for _ in range(args.pairs):
            x, y = rng.standard_normal((2, space.dim))
            started = time.perf_counter()
            forward = metric.squared_dist(x, y)
            elapsed += time.perf_counter() - started
            backward = metric.squared_dist(y, x)
            best = oracle(widths, x, y, args.oracle_starts, rng)
            asymmetry.append(abs(forward - backward) / max(forward, backward))
            excess.append((max(forward, backward) - best) / best)
        asymmetry, excess = np.array(asymmetry), np.array(excess)
        print(
            f"widths {widths} (h = {len(widths) - 1}), {args.pairs} pairs: asymmetry max {asymmetry.max():.2e} "
            f"({np.sum(asymmetry > 1e-10)} above 1e-10); excess over the best of {2 * args.oracle_starts} "
            f"converged starts max {excess.max():.2e} ({np.sum(excess > 1e-8)} above 1e-8); "
            f"{1e3 * elapsed / args.pairs:.0f} ms per distance"
        )


if __name__ == "__main__":
    main()
