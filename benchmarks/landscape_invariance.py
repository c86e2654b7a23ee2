"""Do the landscape answers survive the symmetry? Disagreement counts at moved critical points.

Reproduces the measurements of issue 11 (items 1 and 6) and sweeps the condition number of the
GL element and the norm of the point:

* the reproducer: ``sigma = (2, 1)``, widths ``(2, 2, 2, 2)``, ``x = canonical_point(p, (1,))``,
  ``G = R diag(100, 0.01) R^T``, ``y = act(x, (G, G))`` (loss 0.5, a saddle);
* ``Fiber.sample(400, spread=3.0)`` on the saddle fibers of ``sigma = (3, 2, 1)``, widths
  ``(3, 3, 3, 3)``: how many samples ``classify`` calls ``global_minimum``;
* spread 4: samples of one fiber tested by ``contains`` of every other fiber (wrong-value accepts);
* 144 inertias: canonical points and fiber samples moved by GL elements of condition ~3e3,
  inertia compared with the unmoved point, strict saddles with no negative eigenvalue counted;
* the sweep: for condition numbers ``c`` and norms ``s``, the fraction of moved points at which
  ``classify``, ``contains`` and ``hessian_inertia`` agree with the unmoved point;
* the time of ``classify`` at widths (20, 20, 20).

    python benchmarks/landscape_invariance.py [--quick] [--seed N] [--show]
"""

import argparse
import time

import numpy as np

import quotient as q


def gl_of_condition(widths, condition, rng, scale=1.0):
    """``G_i = scale^i Q diag(c^{-1/2} .. c^{1/2}) Q'``: condition number ``c``, the point's norm
    multiplied by about ``scale`` (layer ``i`` by ``scale``, the next one divided by it)."""
    out = []
    for i, d in enumerate(widths[1:-1], start=1):
        Q1 = np.linalg.qr(rng.standard_normal((d, d)))[0]
        Q2 = np.linalg.qr(rng.standard_normal((d, d)))[0]
        s = np.logspace(-0.5, 0.5, d) ** np.log10(condition) if d > 1 else np.ones(1)
        out.append(scale**i * (Q1 * s) @ Q2)
    return tuple(out)


def points_of(batch):
    return [tuple(layer[k] for layer in batch) for k in range(batch[0].shape[0])]


def reproducer():
    p = q.Problem.from_sigma(np.array([2.0, 1.0]), (2, 2, 2, 2))
    x = q.canonical_point(p, (1,))
    R = np.array([[1.0, 1.0], [-1.0, 1.0]]) / np.sqrt(2)
    G = R @ np.diag([100.0, 0.01]) @ R.T
    y = q.act(x, (G, G))
    print(f"reproducer: loss {p.loss(y):.6g}, classify {q.classify(p, y)!r} (x: {q.classify(p, x)!r}), "
          f"fiber((1, 2)).contains {q.fiber(p, (1, 2)).contains(y)}, fiber((1,)).contains {q.fiber(p, (1,)).contains(y)}")


def sample_study(rng):
    p = q.Problem.from_sigma(np.array([3.0, 2.0, 1.0]), (3, 3, 3, 3))
    values = q.critical_values(p)
    saddles = values[1:]
    wrong = 0
    total = 0
    per = [400 // len(saddles) + (k < 400 % len(saddles)) for k in range(len(saddles))]
    for value, n in zip(saddles, per):
        for point in points_of(q.fiber(p, value).sample(n, rng, spread=3.0)):
            total += 1
            wrong += q.classify(p, point) == "global_minimum"
    print(f"Fiber.sample(spread=3.0), saddle fibers of (3,3,3,3): {wrong} of {total} classified global_minimum")
    accepted = tested = 0
    fibers = [q.fiber(p, v) for v in values]
    for k in range(len(values)):
        for point in points_of(fibers[k].sample(40 // len(values) + 1, rng, spread=4.0)):
            for j, other in enumerate(fibers):
                if j != k:
                    tested += 1
                    accepted += other.contains(point)
    print(f"spread 4: {accepted} of {tested} (point, wrong fiber) pairs accepted by contains")


def inertia_study(rng, condition=3e3):
    cases = [([3, 2, 1], (3, 3, 3, 3)), ([3, 2, 1], (3, 4, 3, 3)), ([3, 2, 1], (3, 2, 4, 3)), ([2, 1], (2, 3, 3, 3, 2)),
             ([3, 2, 1], (3, 3, 3, 3, 3)), ([4, 3, 2, 1], (4, 3, 2, 4))]
    differ = hidden = total = 0
    for sigma, widths in cases:
        p = q.Problem.from_sigma(np.asarray(sigma, dtype=float), widths)
        for value in q.critical_values(p):
            base = [q.canonical_point(p, value.learned)] + points_of(q.fiber(p, value).sample(2, rng, spread=0.5))
            for x in base:
                if total >= 144:
                    break
                y = q.act(x, gl_of_condition(widths, condition, rng))
                a, b = q.hessian_inertia(p, x), q.hessian_inertia(p, y)
                total += 1
                differ += a != b
                hidden += a.negative > 0 and b.negative == 0
    print(f"inertia at condition {condition:.0e}: {differ} of {total} differ, {hidden} strict saddles show no negative eigenvalue")


def sweep(rng, conditions, scales, per_case=6, show=False):
    cases = [([3, 2, 1], (3, 3, 3, 3)), ([3, 2, 1], (3, 2, 4, 3)), ([2, 1], (2, 3, 3, 3, 2))]
    print("| condition | norm factor | points | classify agrees | contains agrees | inertia agrees |")
    print("|---|---|---|---|---|---|")
    for c in conditions:
        for s in scales:
            n = agree_c = agree_f = agree_i = 0
            for sigma, widths in cases:
                p = q.Problem.from_sigma(np.asarray(sigma, dtype=float), widths)
                values = q.critical_values(p)
                for value in values:
                    fib = q.fiber(p, value)
                    xs = [q.canonical_point(p, value.learned)] + points_of(fib.sample(per_case - 1, rng, spread=0.5))
                    for k, x in enumerate(xs):
                        y = q.act(x, gl_of_condition(widths, c, rng, s))
                        n += 1
                        kinds = q.classify(p, x), q.classify(p, y)
                        member = fib.contains(y) and not any(q.fiber(p, v).contains(y) for v in values if v != value)
                        inertias = q.hessian_inertia(p, x), q.hessian_inertia(p, y)
                        agree_c += kinds[0] == kinds[1]
                        agree_f += member
                        agree_i += inertias[0] == inertias[1]
                        if show and (kinds[0] != kinds[1] or not member or inertias[0] != inertias[1]):
                            print(f"  miss: widths {widths}, learned {value.learned}, point {k} "
                                  f"(0 = canonical), classify {kinds[0]} -> {kinds[1]}, contains {member}, "
                                  f"inertia {tuple(inertias[0])} -> {tuple(inertias[1])}")
            print(f"| {c:.0e} | {s:.0e} | {n} | {agree_c} | {agree_f} | {agree_i} |", flush=True)


def classify_time():
    p = q.Problem.from_sigma(np.linspace(2.0, 1.0, 20), (20, 20, 20))
    x = q.canonical_point(p, range(1, 11))
    start = time.perf_counter()
    kind = q.classify(p, x)
    print(f"classify at widths (20, 20, 20): {kind}, {time.perf_counter() - start:.3f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller sweep")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", action="store_true", help="print each point of the sweep where an answer changes")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    reproducer()
    sample_study(rng)
    inertia_study(rng)
    classify_time()
    if args.quick:
        sweep(rng, [1e2, 1e4, 1e6], [1.0, 1e8], per_case=2, show=args.show)
    else:
        sweep(rng, [1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7], [1.0, 1e4, 1e8], per_case=3, show=args.show)


if __name__ == "__main__":
    main()
