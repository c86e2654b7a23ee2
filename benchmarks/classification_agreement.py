"""Rank conditions against the Hessian: the agreement table of `classify` and `hessian_inertia`.

For every critical value of each architecture below, draws random critical points of its fiber
(`Fiber.sample`: interval structures, boundary moves, data rotations and hidden GL moves), and
compares the answer of `classify` (rank conditions on partial products, math-spec 3.2) with the
Hessian: strict saddle iff some eigenvalue is negative. Prints one row per depth and answer, the
number of disagreements (expected: zero) and the margin of the decisions: the smallest negative
eigenvalue seen at a strict saddle, relative to the largest eigenvalue.

With ``--condition c`` every sample is moved further by a GL element of condition number ``c``
(``benchmarks/landscape_invariance.py``'s construction) before both answers are computed.

    python benchmarks/classification_agreement.py [--per-fiber 20] [--spread 0.5] [--seed 0] [--condition 1]
"""

import argparse
import collections
import time

import numpy as np

import quotient as q

ARCHITECTURES = [
    ([3, 2, 1], (3, 4, 3)),
    ([3, 2, 1, 0.5], (4, 2, 4)),
    ([3, 2], (2, 5, 3)),
    ([3, 2, 1], (3, 3, 3, 3)),
    ([3, 2, 1], (3, 2, 4, 3)),
    ([4, 3, 2, 1], (4, 3, 2, 4)),
    ([2, 2, 1], (3, 3, 3, 3)),
    ([3, 2, 1], (3, 3, 3, 3, 3)),
    ([3, 2, 1], (3, 4, 2, 5, 3)),
    ([3, 2], (4, 3, 3, 3, 2)),
    ([2, 1], (2, 4, 3, 4, 2)),
    ([3, 2, 1], (3, 3, 3, 3, 3, 3)),
    ([2, 1], (2, 3, 2, 3, 2, 2)),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-fiber", type=int, default=20)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--condition", type=float, default=1.0, help="move the samples by GL of this condition")
    args = parser.parse_args()
    from landscape_invariance import gl_of_condition

    rng = np.random.default_rng(args.seed)
    rows = collections.defaultdict(lambda: [0, 0])
    margin = np.inf
    start = time.perf_counter()
    for sigma, widths in ARCHITECTURES:
        problem = q.Problem.from_sigma(np.asarray(sigma, dtype=float), widths)
        h = len(widths) - 1
        bottleneck = min(widths[1:-1]) < min(widths[0], widths[-1])
        for value in q.critical_values(problem):
            samples = q.fiber(problem, value).sample(args.per_fiber, rng, spread=args.spread)
            for k in range(args.per_fiber):
                point = tuple(layer[k] for layer in samples)
                if args.condition > 1:
                    point = q.act(point, gl_of_condition(widths, args.condition, rng))
                kind = q.classify(problem, point)
                inertia = q.hessian_inertia(problem, point)
                strict = inertia.negative > 0
                agree = strict == (kind == "strict_saddle") and kind != "not_critical"
                row = rows[(h, "bottleneck" if bottleneck else "no bottleneck", kind)]
                row[0] += 1
                row[1] += not agree
                if strict:
                    eigenvalues = np.linalg.eigvalsh(problem.hessian(q.well_conditioned(point)[0]))
                    margin = min(margin, -eigenvalues[0] / np.abs(eigenvalues).max())
    print("| h | widths | rank conditions say | points | disagreements with the Hessian |")
    print("|---|---|---|---|---|")
    for (h, shape, kind), (count, bad) in sorted(rows.items()):
        print(f"| {h} | {shape} | {kind} | {count} | {bad} |")
    total = sum(c for c, _ in rows.values())
    bad = sum(b for _, b in rows.values())
    print(f"\n{total} critical points, {bad} disagreements; smallest |negative eigenvalue| / max |eigenvalue| "
          f"at a strict saddle: {margin:.2e}; {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
