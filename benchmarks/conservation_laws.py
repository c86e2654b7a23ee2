"""Counts and speed of `count_conservation_laws` (Marcotte, Gribonval & Peyre's Lie-algebra trace).

Prints, per architecture, N, the number of laws, how many the entries of the C_i explain, the
dimensions dim W_k(theta) per bracket level and the time of one count:

- the table of issue 14;
- the 50 architectures of Marcotte et al.'s notebook (main.ipynb, part C: np.random.seed(0), depth
  in 2..4, widths in 2..5), where they find that the C_i are all the laws;
- growing square architectures (d,)*(h+1) for h = 2, 3, 4 until one count exceeds --limit seconds.

    python benchmarks/conservation_laws.py [--limit 10] [--seed 0] [--skip-protocol]
"""

import argparse
import time

import numpy as np

from quotient.conservation import count_conservation_laws

TABLE = [(1, 3, 1), (1, 4, 1), (2, 5, 2), (2, 6, 2), (1, 3, 3, 1), (1, 2, 3, 2, 1)]


def their_architectures():
    legacy = np.random.RandomState(0)
    drawn = []
    for _ in range(50):
        depth = legacy.randint(2, 5)
        drawn.append(tuple(int(legacy.randint(2, 6)) for _ in range(depth + 1)))
    return drawn


def count(widths, seed):
    start = time.perf_counter()
    result = count_conservation_laws(widths, rng=seed)
    elapsed = time.perf_counter() - start
    print(
        f"{str(widths):22s} N={result.n_parameters:4d} laws={result.n_laws:4d} from C={result.n_balancedness:4d} "
        f"dim W_k(theta)={result.lie.trace_dimensions} functions={result.lie.function_dimensions} {elapsed:7.2f} s",
        flush=True,
    )
    return result, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-protocol", action="store_true")
    args = parser.parse_args()
    print("issue 14's table")
    for widths in TABLE:
        count(widths, args.seed)
    if not args.skip_protocol:
        print("Marcotte et al.'s protocol (50 draws)")
        incomplete, total = [], 0.0
        for widths in their_architectures():
            result, elapsed = count(widths, args.seed)
            total += elapsed
            if not result.complete:
                incomplete.append(widths)
        print(f"C_i not all the laws for {incomplete or 'none'}; total {total:.1f} s")
    for depth in (2, 3, 4):
        print(f"square architectures, depth {depth} (until one count exceeds {args.limit} s)")
        for d in range(2, 64):
            _, elapsed = count((d,) * (depth + 1), args.seed)
            if elapsed > args.limit:
                break


if __name__ == "__main__":
    main()
