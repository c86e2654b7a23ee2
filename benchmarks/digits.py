"""A deep linear network on scikit-learn's digits: time to the global minimum and the final gap.

Issue 15 measured 47 s to the global minimum through the API on whitened digits and found the
raw (non-whitened) data too stiff to finish. This script reruns both with today's defaults
(``gradient_flow(method="auto")``):

* whitened: ``datasets.digits().problem(hidden)`` (``Problem.from_data``), from
  ``init.small_random(scale)``, ``until="minimum"``, ``gradient_atol = 1e-6``, with the default
  ``method="auto"`` (LSODA) and with DOP853; the gap is the final
  loss minus ``global_minimum`` and, as an independent check, the data-frame loss minus the
  least-squares optimum of rank ``min(widths)`` (``np.linalg.lstsq`` and a truncated SVD);
* raw: ``Problem.from_loss(CovarianceSquareLoss.from_data(X, Y), widths)`` (``S_xx = X X^T`` with
  condition number ~6.5e6), the same init mapped to the data frame, ``until="critical"``; the gap
  is against the same least-squares optimum. It runs under a wall-clock cap (``--raw-limit``; 0
  leaves it out).

    python benchmarks/digits.py [--hidden 10,10] [--scale 1e-2] [--raw-limit 600]
"""

import argparse
import json
import multiprocessing
import time

import numpy as np

import quotient as q


def reduced_rank_optimum(X, Y, rank):
    """``min 1/2 ||Y - W X||^2`` over ``rank(W) <= rank``: whiten, truncate the SVD (Eckart-Young)."""
    W_full = np.linalg.lstsq(X.T, Y.T, rcond=None)[0].T
    fitted = W_full @ X
    U, s, Vt = np.linalg.svd(fitted, full_matrices=False)
    best = (U[:, :rank] * s[:rank]) @ Vt[:rank]
    return 0.5 * float(np.sum((Y - best) ** 2))


def whitened(hidden, scale, method):
    dataset = q.datasets.digits()
    problem = dataset.problem(hidden)
    point0 = q.init.small_random(problem.widths, scale, rng=0)
    start = time.perf_counter()
    run = q.gradient_flow(problem, point0, 1e4, t_eval=2001, gradient_atol=1e-6, until="minimum", method=method, progress=False)
    elapsed = time.perf_counter() - start
    optimum = reduced_rank_optimum(dataset.X, dataset.Y, min(problem.widths))
    final = run.point(-1)
    return {
        "case": "whitened", "method": method, "widths": problem.widths, "seconds": elapsed, "t_stop": float(run.times[-1]),
        "steps": run.n_steps, "status": run.status, "gap": float(run.loss[-1] - q.global_minimum(problem)),
        "data_gap": problem.data_loss(problem.to_data_frame(final)) - optimum,
        "plateaus": [sorted(p.critical_value.learned) for p in q.plateaus(problem, run.times, run.end_to_end)],
    }  # fmt: skip


def raw(hidden, scale, out):
    dataset = q.datasets.digits()
    whitened_problem = dataset.problem(hidden)
    problem = q.Problem.from_loss(q.CovarianceSquareLoss.from_data(dataset.X, dataset.Y), whitened_problem.widths)
    point0 = whitened_problem.to_data_frame(q.init.small_random(problem.widths, scale, rng=0))
    optimum = reduced_rank_optimum(dataset.X, dataset.Y, min(problem.widths))
    start = time.perf_counter()
    run = q.gradient_flow(problem, point0, 1e4, t_eval=201, gradient_atol=1e-6, progress=False, throw=False)
    out.put({
        "case": "raw", "method": "auto", "widths": problem.widths, "seconds": time.perf_counter() - start, "t_stop": float(run.times[-1]),
        "steps": run.n_steps, "status": run.status, "message": run.message, "gap": float(run.loss[-1] - optimum),
    })  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="10,10")
    parser.add_argument("--scale", type=float, default=1e-2)
    parser.add_argument("--raw-limit", type=float, default=600.0)
    args = parser.parse_args()
    hidden = tuple(int(w) for w in args.hidden.split(","))
    for method in ("auto", "DOP853"):
        print(json.dumps(whitened(hidden, args.scale, method)), flush=True)
    if args.raw_limit <= 0:
        return
    out = multiprocessing.Queue()
    worker = multiprocessing.Process(target=raw, args=(hidden, args.scale, out))
    start = time.perf_counter()
    worker.start()
    worker.join(args.raw_limit)
    if worker.is_alive():
        worker.terminate()
        worker.join()
        print(json.dumps({"case": "raw", "seconds": time.perf_counter() - start, "status": "killed at --raw-limit"}))
    else:
        print(json.dumps(out.get()))


if __name__ == "__main__":
    main()
