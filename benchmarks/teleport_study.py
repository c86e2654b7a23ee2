"""Does symmetry teleportation speed up gradient descent? Steps to a loss target with and without it.

Gradient descent with a fixed step on explore's problem (widths 4-8-8-4, sigma = (5, 3, 2, 1)) from a
small random init, against the same descent teleported by :func:`quotient.teleport` (maximise the
gradient norm, Zhao et al. 2022) once at the start or every ``k`` steps, over GL and over positive
rescalings with elements of size ``s`` (``||log P_i||_2 < s``: condition number below ``e^{2s}``).
Prints, per variant, the steps to the loss target (median and range over seeds; the teleported
runs count descent steps only), ``||grad L||^2`` before -> after the first teleport, the loss change
it caused, the number of runs that diverged (before the target, or in the 1000 plain steps after
it), and the largest ``lambda_max`` met at a teleported
point (descent with step ``eta`` is unstable near points sharper than ``2 / eta``). Then the sharpness range on one GL orbit of a
global minimum: teleport minimising and maximising ``lambda_max``, against 100 random elements of
the same size.

    python benchmarks/teleport_study.py [--quick] [--seeds 5] [--size 1.0] [--every 100]
"""

import argparse
import time

import numpy as np

import quotient as q
from quotient.symmetry import act
from quotient.teleport import objective_value, random_element

WIDTHS = (4, 8, 8, 4)
SIGMA = (5.0, 3.0, 2.0, 1.0)


def squared_norm(point) -> float:
    return float(sum(np.sum(W**2) for W in point))


def descend(problem, point, step, target, max_steps, *, teleport_every=None, group="gl", size=1.0):
    """Fixed-step descent until ``L <= target``; teleport at step 0 and every ``teleport_every`` steps.

    Returns (steps or None, first (||grad||^2 before, after, relative loss change), teleports, seconds
    spent teleporting, diverged, largest sharpness at a teleported point).
    """
    first, teleports, spent, sharpest = None, 0, 0.0, 0.0
    for k in range(max_steps + 1):
        loss = problem.loss(point)
        if not np.isfinite(loss) or loss > 1e6:
            return None, first, teleports, spent, True, sharpest
        if loss <= target:
            # then 1000 plain steps: does descent stay at the minimum it reached?
            stays = True
            for _ in range(1000):
                point = tuple(W - step * G for W, G in zip(point, problem.gradient(point)))
                if not problem.loss(point) <= 1e6:
                    stays = False
                    break
            stays = stays and problem.loss(point) <= target
            return k, first, teleports, spent, not stays, sharpest
        if teleport_every is not None and (k == 0 or (teleport_every > 0 and k % teleport_every == 0)):
            start = time.perf_counter()
            result = q.teleport(problem, point, "gradient_norm", group, size=size, max_iterations=100)
            spent += time.perf_counter() - start
            teleports += 1
            if first is None:
                first = (result.before**2, result.after**2, abs(result.loss_after - result.loss_before) / loss)
            point = result.point
            sharpest = max(sharpest, objective_value(problem, point, "sharpness"))
        gradient = problem.gradient(point)
        point = tuple(W - step * G for W, G in zip(point, gradient))
    return None, first, teleports, spent, False, sharpest


def summary(steps):
    done = [s for s in steps if s is not None]
    if not done:
        return "never", "-"
    return f"{int(np.median(done))}", f"{min(done)}-{max(done)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 seeds, shorter runs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--size", type=float, default=1.0, help="bound s on ||log P_i||_2")
    parser.add_argument("--every", type=int, default=100, help="teleport every k steps")
    parser.add_argument("--init", type=float, default=1e-2, help="scale of the small random init")
    parser.add_argument("--step", type=float, default=0.02, help="descent step (stable below 2/25.6 = 0.078)")
    parser.add_argument("--target", type=float, default=1e-3, help="loss target")
    args = parser.parse_args()
    seeds = range(2 if args.quick else args.seeds)
    max_steps = 20000 if args.quick else 50000
    problem = q.Problem.from_sigma(SIGMA, WIDTHS)
    print(f"widths {WIDTHS}, sigma {SIGMA}, init {args.init:g}, step {args.step:g}, target L <= {args.target:g}, "
          f"size s = {args.size:g} (cond(P_i) < {np.exp(2 * args.size):.3g}), seeds {len(seeds)}")
    print(f"sharpness of the balanced minimum: {q.sharpness(problem):.4g} (stable steps < {q.stable_step(problem):.4g})\n")

    variants = [("gradient descent", None, "gl")]
    for group in ("gl", "rescaling"):
        variants.append((f"teleport once ({group})", 0, group))
        variants.append((f"teleport every {args.every} ({group})", args.every, group))
    header = f"{'variant':<28} {'steps (median)':>14} {'range':>12} {'|grad|^2 before -> after':>26} {'dL/L':>9} {'teleports':>9} {'t_tp [s]':>8} {'diverged':>8} {'max lambda':>10}"
    print(header)
    print("-" * len(header))
    for name, every, group in variants:
        steps, firsts, teleports, spent, diverged, sharpest = [], [], [], 0.0, 0, 0.0
        for seed in seeds:
            point = q.init.small_random(WIDTHS, args.init, rng=seed)
            n, first, count, seconds, blown, lam = descend(
                problem, point, args.step, args.target, max_steps, teleport_every=every, group=group, size=args.size
            )
            steps.append(n)
            firsts.append(first)
            teleports.append(count)
            spent += seconds
            diverged += blown
            sharpest = max(sharpest, lam)
        median, spread = summary(steps)
        if firsts[0] is None:
            gain, change = "-", "-"
        else:
            before = np.median([f[0] for f in firsts])
            after = np.median([f[1] for f in firsts])
            gain = f"{before:.3g} -> {after:.3g} (x{after / before:.3g})"
            change = f"{max(f[2] for f in firsts):.1e}"
        print(f"{name:<28} {median:>14} {spread:>12} {gain:>26} {change:>9} {int(np.median(teleports)):>9} {spent:>8.2f} {diverged:>8} {sharpest if every is not None else float('nan'):>10.4g}")

    # sharpness on one orbit of a global minimum (the end of plain descent from seed 0)
    point = q.init.small_random(WIDTHS, args.init, rng=0)
    for _ in range(max_steps):
        point = tuple(W - args.step * G for W, G in zip(point, problem.gradient(point)))
        if problem.loss(point) < 1e-20:
            break
    print(f"\nsharpness on the GL orbit of a global minimum (descent end, loss {problem.loss(point):.1e}), size s:")
    print(f"{'s':>5} {'at the point':>12} {'teleport min':>12} {'teleport max':>12} {'random min':>10} {'random max':>10} {'balanced':>9}")
    rng = np.random.default_rng(0)
    for size in (0.5, 1.0, 2.0):
        low = q.teleport(problem, point, "sharpness", maximize=False, size=size, max_iterations=200)
        high = q.teleport(problem, point, "sharpness", maximize=True, size=size, max_iterations=200)
        samples = [objective_value(problem, act(point, random_element(WIDTHS, size, rng=rng)), "sharpness") for _ in range(100)]
        print(f"{size:>5g} {low.before:>12.4g} {low.after:>12.4g} {high.after:>12.4g} {min(samples):>10.4g} {max(samples):>10.4g} "
              f"{q.sharpness(problem):>9.4g}")

    unbalanced = act(point, random_element(WIDTHS, 1.5, rng=1))
    print("\nthe same minimum moved by a random GL element of size 1.5, flattened by teleport (minimise lambda_max):")
    for size in (1.0, 2.0):
        low = q.teleport(problem, unbalanced, "sharpness", maximize=False, size=size, max_iterations=300)
        print(f"  size {size:g}: lambda_max {low.before:.4g} -> {low.after:.4g} (balanced {q.sharpness(problem):.4g}), "
              f"loss {low.loss_before:.1e} -> {low.loss_after:.1e}, {low.iterations} iterations")


if __name__ == "__main__":
    main()
