"""Geodesics and Frechet means of fiber samples in the O(d) quotient (`quotient.bundle`).

For pairs of points of one fiber (`Fiber.sample`, balanced orbits moved by GL, `structure=False`,
and full samples, `structure=True`), the geodesic of the O(d) quotient between them
(`quotient_geodesic`, the straight line from `a` to `align(b, a)`) leaves the fiber: prints the
largest excursion of the loss along it, `max_t |L(x(t)) - L_S|`, absolute and relative to
`L(0) = ||Sigma||^2 / 2`, the quotient distance against the Euclidean one, and for the Frechet mean
(`frechet_mean`) of `--samples` fiber samples its loss and gradient norm. Also the vertical part of
the loss gradient, relative, at points moved by GL elements of condition 1e4 (each group's bundle).

    python benchmarks/fiber_geodesics.py [--pairs 10] [--samples 5] [--seed 0]
"""

import argparse
import time

import numpy as np

import quotient as q
from quotient.bundle import ParameterSpace, frechet_mean, quotient_geodesic

CASES = [((2, 3, 2), [2.0, 1.0], (1, 2)), ((2, 3, 2), [2.0, 1.0], (1,)), ((3, 3, 3, 3), [3.0, 2.0, 1.0], (1, 2, 3)), ((3, 3, 3, 3), [3.0, 2.0, 1.0], (1,))]


def layer(batch, k):
    return tuple(W[k] for W in batch)


def gl_of_condition(widths, condition, rng):
    Q, Qp = q.random_orthogonal(widths, rng=rng), q.random_orthogonal(widths, rng=rng)
    return tuple(A @ np.diag(np.logspace(-0.5, 0.5, A.shape[0]) ** np.log10(condition)) @ B for A, B in zip(Q, Qp))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for widths, sigma, learned in CASES:
        problem = q.Problem.from_sigma(sigma, widths)
        fib = q.fiber(problem, learned)
        scale = 0.5 * float(np.sum(np.square(sigma)))
        space = ParameterSpace(widths, align_starts=8)
        quotient_space = space.equip_with_quotient()
        for structure in (False, True):
            excursions, ratios, seconds = [], [], []
            for k in range(args.pairs):
                samples = fib.sample(2, rng=args.seed + k, spread=0.5, structure=structure)
                a, b = layer(samples, 0), layer(samples, 1)
                start = time.perf_counter()
                path = quotient_geodesic(a, b, 21, align_starts=8)
                seconds.append(time.perf_counter() - start)
                losses = np.array([problem.loss(layer(path, t)) for t in range(21)])
                excursions.append(np.max(np.abs(losses - fib.value)))
                ratios.append(quotient_space.metric.dist(q.to_vector(a), q.to_vector(b)) / np.linalg.norm(q.to_vector(a) - q.to_vector(b)))
            excursions = np.array(excursions)
            print(
                f"{widths} S={learned} L_S={fib.value:.3g} structure={structure}: max |L - L_S| along the geodesic "
                f"median {np.median(excursions):.3g} max {excursions.max():.3g} (relative to L(0) = {scale:.3g}: "
                f"median {np.median(excursions) / scale:.2%}, max {excursions.max() / scale:.2%}); "
                f"d_quotient / d_euclid median {np.median(ratios):.3f}; {np.median(seconds) * 1e3:.1f} ms per geodesic"
            )
        samples = fib.sample(args.samples, rng=args.seed + 100, spread=0.5, structure=False)
        start = time.perf_counter()
        mean = frechet_mean(samples, align_starts=8)
        elapsed = time.perf_counter() - start
        gradient = np.sqrt(sum(np.sum(G**2) for G in problem.gradient(mean)))
        print(
            f"  Frechet mean of {args.samples} samples: loss {problem.loss(mean):.3g} (L_S = {fib.value:.3g}), "
            f"gradient norm {gradient:.3g}, {elapsed:.2f} s"
        )
    rng = np.random.default_rng(args.seed)
    widths = (3, 5, 3, 3)
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], widths)
    for group in ("orthogonal", "gl", "rescaling"):
        space = ParameterSpace(widths, group=group)
        space.equip_with_quotient()
        worst = 0.0
        for _ in range(20):
            moved = q.act(q.init.small_random(widths, 1.0, rng=rng), gl_of_condition(widths, 1e4, rng))
            x, gradient = q.to_vector(moved), q.to_vector(problem.gradient(moved))
            worst = max(worst, np.linalg.norm(space.fiber_bundle.vertical_projection(gradient, x)) / np.linalg.norm(gradient))
        print(f"group {group}: ||vertical part of grad L|| / ||grad L|| at 20 points moved by GL of condition 1e4: max {worst:.1e}")


if __name__ == "__main__":
    main()
