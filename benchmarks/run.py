"""Speed of quotient against the tools researchers use, measured in one process.

    python benchmarks/run.py [--quick] [--slow] [--cases gradient,trajectory,stiff,ensemble,lanczos,plateau,
                              ensemble_stiff,gradient_hvp,ensemble_explore,taylor] [--members 256]
                             [--rounds 5] [--out benchmarks/results.json] [--merge]

Cases (issue 7):

- ``gradient``: one gradient of ``L = 1/2 ||Sigma - W_h ... W_1||_F^2`` for widths ``(4,)*5``,
  ``(32,)*7``, ``(256,)*9`` and ``(1024,)*5``: ``Problem.gradient`` against PyTorch autograd (CPU,
  float64) and a plain numpy implementation (``grad_j = B_j^T G F_{j-1}^T`` from explicit prefix and
  suffix products), and against the matmul-only lower bound: the ``3h - 3`` matrix products the
  gradient needs (forward ``F_2..F_h``, backward ``W_j^T (B_j^T G)``, and ``(B_j^T G) F_{j-1}^T``)
  timed alone on preallocated outputs;
- ``trajectory``: one gradient flow (explore's problem, 4-8-8-4 from 1e-2) until
  ``||grad L|| < 1e-8``: ``gradient_flow`` with the default ``"auto"`` (compiled DOP853, LSODA once
  stiff), scipy's DOP853 and LSODA + exact Hessian (the former default), against
  ``scipy.integrate.solve_ivp`` DOP853 on a PyTorch-autograd right-hand side and against JAX +
  diffrax (Dopri8, Tsit5; JIT compile time excluded); time, steps, final loss and drift;
- ``stiff``: the stiff depth-4 case (``(4,)*5``, sigma (3, 2, 1.5, 1), init 1e-2) to
  ``||grad L|| < 1e-8`` (t ~ 1.1e5): ``"auto"`` against the former default, solve_ivp LSODA with the same exact Hessian,
  diffrax Kvaerno5, and (``--slow``, minutes) DOP853; and on ``t <= 6000`` against DOP853;
- ``ensemble``: 256 trajectories of a small network to a fixed time, ``ensemble_flow`` (one ODE over
  the stacked batch; ``"auto"`` and DOP853) against a loop of ``gradient_flow`` and diffrax Dopri8
  on the stacked state; then stiff members until their global minimum (16, 256 with ``--slow``);
- ``lanczos``: the extreme Hessian eigenvalues by ARPACK Lanczos (``eigsh``, ``which='LA'`` and
  ``'SA'``) on ``Problem.hvp`` at ``N = 10^4, 10^5, 10^6`` parameters, against the same Lanczos on a
  PyTorch double-backward Hessian-vector product (and one product on its own);
- ``plateau``: solver steps against the length of the plateau for init scales ``1e-1 .. 1e-6`` at
  depth 4 with ``"auto"`` to the first critical point and to the global minimum (across every
  plateau), and the former default LSODA (and DOP853 with ``--slow``); adaptive steps should grow
  like the log of the horizon, not linearly;
- ``gradient_hvp`` (issue 12, target 6): gradient and Hessian-vector product at ``(256,)*9`` and
  ``(1024,)*5`` against ``jax.jit(jax.grad)``, jax's jvp-of-grad hvp and torch, with the numpy GEMM
  rate and the gradient's matmul-only lower bound measured in the same run;
- ``ensemble_stiff`` (target 5): ensembles of the stiff case until every member's global minimum,
  ``--members`` of them (default 256), each member with its own steps, time and peak memory;
- ``ensemble_explore`` (target 5): 256 members of explore's problem to ``t = 20`` and to the
  minimum against diffrax Dopri8 on the stacked state;
- ``taylor`` (the default method): heyoka's Taylor integrator (if installed) on explore's problem and
  the stiff case, compile time apart, against ``gradient_flow`` and diffrax.

``--merge`` keeps the rows of ``--out`` for the cases not run (so one case can be rerun alone).

Timing: every measurement is repeated; the time reported is the minimum over ``--rounds`` rounds of
the median of the repeats within a round (the machine may be shared, and the minimum of medians is
the least disturbed estimate). Ratios are reference / quotient, so a ratio above 1 means quotient is
faster; the lower-bound ratio is quotient / bound (1 is the best possible).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp
from scipy.sparse.linalg import LinearOperator, eigsh

import quotient as q

try:
    import torch
except ImportError:  # the bench extra is not installed: torch columns are skipped
    torch = None

GRADIENT_WIDTHS = ((4,) * 5, (32,) * 7, (256,) * 9, (1024,) * 5)
LANCZOS_WIDTHS = ((50,) * 5, (158,) * 5, (500,) * 5)  # N = 10^4, 99 856, 10^6
ROWS = []  # the printed table, also written to the JSON file


# ---------------------------------------------------------------------------------------- timing
def measure(function, repeats: int, rounds: int, warm_up: bool = True) -> float:
    """Minimum over ``rounds`` of the median of ``repeats`` timed calls, in seconds (after one untimed
    call unless ``warm_up`` is false: for runs of minutes, whose caches and imports do not count)."""
    if warm_up:
        function()  # warm up: caches, lazy imports, thread pools
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        medians.append(float(np.median(times)))
    return min(medians)


def measure_together(functions: dict, repeats: int, rounds: int) -> dict:
    """:func:`measure` for several functions with their rounds interleaved, so that a slow spell of
    a shared machine falls on all of them rather than on one."""
    for function in functions.values():
        function()
    medians = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                function()
                times.append(time.perf_counter() - start)
            medians[name].append(float(np.median(times)))
    return {name: min(values) for name, values in medians.items()}


def repeats_for(seconds_per_call: float, budget: float = 0.5) -> int:
    return int(np.clip(budget / max(seconds_per_call, 1e-7), 3, 2000))


def once(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


class PeakMemory:
    """Peak resident memory of this process during a ``with`` block, above the resident memory at its
    start (``/proc/self/statm`` polled every 20 ms by a thread; Linux only, else ``None``)."""

    def __enter__(self):
        import threading

        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.start = self.peak = self._resident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        if self.start is not None:
            self._thread.start()
        return self

    def _resident(self):
        try:
            with open("/proc/self/statm") as stream:
                return int(stream.read().split()[1]) * self.page
        except OSError:
            return None

    def _poll(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._resident())

    def __exit__(self, *exc):
        self._stop.set()
        if self.start is not None:
            self._thread.join()
            self.peak = max(self.peak, self._resident())
        return False

    @property
    def megabytes(self):
        """``(peak, peak - start)`` in MB, or ``(None, None)``."""
        if self.start is None:
            return None, None
        return self.peak / 1e6, (self.peak - self.start) / 1e6


def report(case: str, size: str, label: str, seconds: float, quotient: float | None = None, **extra) -> dict:
    """Print and keep one row; for a reference row, ``ratio = seconds / quotient`` (> 1: quotient is faster)."""
    ratio = None if quotient is None else seconds / quotient
    row = {"case": case, "size": size, "what": label, "seconds": seconds, "ratio": ratio, **extra}
    ROWS.append(row)
    text = f"{case:10s} {size:22s} {label:34s} {format_seconds(seconds):>10s}"
    if ratio is not None:
        text += f"   ratio {ratio:8.2f}"
    for key, value in extra.items():
        text += f"   {key} {value}"
    print(text, flush=True)
    return row


def format_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def machine_info() -> dict:
    info = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "load_average_start": list(os.getloadavg()),
        "numpy": np.__version__,
        "scipy": __import__("scipy").__version__,
        "quotient": q.__version__,
        "torch": None if torch is None else torch.__version__,
        "torch_threads": None if torch is None else torch.get_num_threads(),
        "thread_environment": {name: os.environ.get(name) for name in
                               ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS", "OPENBLAS_CORETYPE")},
    }
    try:
        with open("/proc/cpuinfo") as stream:
            names = [line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")]
        info["cpu_model"] = names[0] if names else None
    except OSError:
        info["cpu_model"] = None
    config = np.show_config(mode="dicts")
    info["numpy_blas"] = config.get("Build Dependencies", {}).get("blas", {}).get("name")
    return info


# ---------------------------------------------------------------------------------------- references
def scaled_point(widths, seed=0):
    """Layers with entries of size ``1 / sqrt(d_{i-1})``, so products neither blow up nor vanish."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((widths[i], widths[i - 1])) / np.sqrt(widths[i - 1]) for i in range(1, len(widths)))


def numpy_gradient(point, target):
    """Textbook numpy: ``grad_j = B_j^T (W - Sigma) F_{j-1}^T`` with explicit prefix and suffix products."""
    h = len(point)
    forward = [np.eye(point[0].shape[1])]
    for W in point:
        forward.append(W @ forward[-1])
    backward = [np.eye(point[-1].shape[0])]
    for W in point[::-1]:
        backward.append(backward[-1] @ W)
    backward = backward[::-1]  # backward[j] = W_h ... W_{j+1}
    G = forward[-1] - target
    return tuple(backward[j].T @ G @ forward[j - 1].T for j in range(1, h + 1))


def torch_gradient_function(point, target):
    layers = [torch.tensor(W, requires_grad=True) for W in point]
    sigma = torch.tensor(target)

    def gradient():
        product = layers[0]
        for W in layers[1:]:
            product = W @ product
        loss = 0.5 * ((product - sigma) ** 2).sum()
        return torch.autograd.grad(loss, layers)

    return layers, gradient


def torch_flat_gradient(widths, target):
    """``y -> grad L(y)`` on flat numpy vectors through torch autograd (the usual researcher's RHS)."""
    sigma = torch.tensor(target)
    sizes = [widths[i] * widths[i - 1] for i in range(1, len(widths))]
    shapes = [(widths[i], widths[i - 1]) for i in range(1, len(widths))]

    def gradient(y):
        flat = torch.tensor(y, requires_grad=True)
        layers = [part.reshape(shape) for part, shape in zip(torch.split(flat, sizes), shapes)]
        product = layers[0]
        for W in layers[1:]:
            product = W @ product
        loss = 0.5 * ((product - sigma) ** 2).sum()
        (grad,) = torch.autograd.grad(loss, flat)
        return grad.numpy()

    return gradient


def matmul_bound_function(point):
    """The ``3h - 3`` products of one gradient, on preallocated outputs, nothing else."""
    h = len(point)
    forward = [point[0]] + [np.empty((W.shape[0], point[0].shape[1])) for W in point[1:]]
    G = np.random.default_rng(1).standard_normal(forward[-1].shape)
    back = [None] * (h + 1)
    back[h] = G
    for j in range(h - 1, 0, -1):
        back[j] = np.empty((point[j].shape[1], G.shape[1]))
    grads = [np.empty(W.shape) for W in point]

    def products():
        for j in range(1, h):
            np.matmul(point[j], forward[j - 1], out=forward[j])
        for j in range(h, 1, -1):
            np.matmul(back[j], forward[j - 2].T, out=grads[j - 1])
            np.matmul(point[j - 1].T, back[j], out=back[j - 1])

    return products


# ---------------------------------------------------------------------------------------- cases
def case_gradient(args):
    for widths in GRADIENT_WIDTHS:
        size = f"{widths[0]}^{len(widths) - 1} ({len(widths) - 1} layers)"
        d = widths[0]
        problem = q.Problem.from_sigma(np.linspace(2.0, 1.0, d), widths)
        point = scaled_point(widths)
        ours = problem.gradient(point)
        check = numpy_gradient(point, problem.target)
        error = max(np.max(np.abs(a - b)) for a, b in zip(ours, check))
        repeats = repeats_for(once(lambda: problem.gradient(point)), 0.3)
        functions = {
            "quotient": lambda: problem.gradient(point),
            "numpy": lambda: numpy_gradient(point, problem.target),
            "bound": matmul_bound_function(point),
        }
        if torch is not None:
            functions["torch"] = torch_gradient_function(point, problem.target)[1]
        times = measure_together(functions, repeats, args.rounds)
        t_ours, t_bound = times["quotient"], times["bound"]
        report("gradient", size, "quotient Problem.gradient", t_ours, max_abs_diff_vs_numpy=f"{error:.1e}")
        report("gradient", size, "plain numpy (prefix/suffix)", times["numpy"], t_ours)
        if torch is not None:
            report("gradient", size, "torch autograd (CPU, float64)", times["torch"], t_ours)
        report("gradient", size, f"matmul lower bound ({3 * (len(widths) - 1) - 3} products)", t_bound)
        ROWS[-1]["ratio_quotient_over_bound"] = t_ours / t_bound
        print(f"{'':10s} {size:22s} quotient / lower bound = {t_ours / t_bound:.2f}", flush=True)


def jax_loss_function(target):
    import jax.numpy as jnp

    sigma = jnp.asarray(target)

    def loss(layers):
        product = layers[0]
        for W in layers[1:]:
            product = W @ product
        return 0.5 * jnp.sum((product - sigma) ** 2)

    return loss


def torch_layer_hvp_function(point, target, direction):
    """Double backward on layer tensors (no flattening): ``H(point)[direction]`` as torch layers."""
    layers = [torch.tensor(W, requires_grad=True) for W in point]
    sigma = torch.tensor(target)
    directions = [torch.tensor(D) for D in direction]

    def hvp():
        product = layers[0]
        for W in layers[1:]:
            product = W @ product
        loss = 0.5 * ((product - sigma) ** 2).sum()
        grads = torch.autograd.grad(loss, layers, create_graph=True)
        return torch.autograd.grad(grads, layers, grad_outputs=directions)

    return hvp


def gemm_function(d):
    """One ``(d, d) @ (d, d)`` numpy product on a preallocated output (``2 d^3`` flops)."""
    rng = np.random.default_rng(2)
    a, b, out = rng.standard_normal((d, d)), rng.standard_normal((d, d)), np.empty((d, d))
    return lambda: np.matmul(a, b, out=out)


def relative_difference(ours, theirs) -> float:
    scale = max(np.max(np.abs(a)) for a in ours)
    return float(max(np.max(np.abs(np.asarray(a) - np.asarray(b))) for a, b in zip(ours, theirs)) / scale)


def case_gradient_hvp(args):
    """Target 6: one gradient and one Hessian-vector product at widths ``(256,)*9`` and ``(1024,)*5``,
    quotient against ``jax.jit(jax.grad(loss))``, jax's jvp-of-grad Hessian-vector product (jit) and
    torch autograd (double backward for the hvp), all interleaved in this process; beside them the
    GEMM rate (GFLOP/s of one square numpy matmul of the layer size) and the matmul-only lower bound
    of the gradient (:func:`matmul_bound_function`), so that ``quotient / bound`` and the gradient's
    own GFLOP/s say how close to the BLAS it runs. "within 1.1x" compares quotient with the faster
    of jax and torch (ratio = their time / quotient's, so within 1.1x means ratio >= 1/1.1)."""
    widths_list = ((64,) * 5, (128,) * 9) if args.quick else ((256,) * 9, (1024,) * 5)
    jax_ok = have_jax("(256,)*9, (1024,)*5", "gradient_hvp")
    if jax_ok:
        import jax
        import jax.numpy as jnp
    for widths in widths_list:
        h, d = len(widths) - 1, widths[0]
        size = f"{d}^{h} ({h} layers)"
        problem = q.Problem.from_sigma(np.linspace(2.0, 1.0, d), widths)
        point = scaled_point(widths)
        direction = scaled_point(widths, seed=3)
        grad_flops = (3 * h - 3) * 2.0 * d**3
        gradients = {"quotient": lambda: problem.gradient(point)}
        hvps = {"quotient": lambda: problem.hvp(point, direction)}
        checks = {}
        if jax_ok:
            loss = jax_loss_function(problem.target)
            jax_grad = jax.jit(jax.grad(loss))
            jax_hvp = jax.jit(lambda layers, v: jax.jvp(jax.grad(loss), (layers,), (v,))[1])
            point_j = tuple(jnp.asarray(W) for W in point)
            direction_j = tuple(jnp.asarray(D) for D in direction)
            gradients["jax"] = lambda: jax.block_until_ready(jax_grad(point_j))
            hvps["jax"] = lambda: jax.block_until_ready(jax_hvp(point_j, direction_j))
            checks["jax"] = (jax_grad(point_j), jax_hvp(point_j, direction_j))  # compiles: not timed
        if torch is not None:
            gradients["torch"] = torch_gradient_function(point, problem.target)[1]
            hvps["torch"] = torch_layer_hvp_function(point, problem.target, direction)
            checks["torch"] = (tuple(g.detach().numpy() for g in gradients["torch"]()), tuple(g.numpy() for g in hvps["torch"]()))
        gradients["bound"] = matmul_bound_function(point)
        gradients["gemm"] = gemm_function(d)
        # the same product in the other libraries' own BLAS (XLA's and torch's kernels: on a CPU with
        # AVX-512 they may use it where numpy's OpenBLAS runs the kernel its environment chose)
        square = np.random.default_rng(2).standard_normal((2, d, d))
        if jax_ok:
            jax_matmul = jax.jit(jnp.matmul)
            a_j, b_j = jnp.asarray(square[0]), jnp.asarray(square[1])
            jax.block_until_ready(jax_matmul(a_j, b_j))
            gradients["gemm_jax"] = lambda: jax.block_until_ready(jax_matmul(a_j, b_j))
        if torch is not None:
            a_t, b_t = torch.tensor(square[0]), torch.tensor(square[1])
            out_t = torch.empty((d, d), dtype=torch.float64)
            gradients["gemm_torch"] = lambda: torch.matmul(a_t, b_t, out=out_t)
        ours_gradient, ours_hvp = problem.gradient(point), problem.hvp(point, direction)
        repeats = repeats_for(once(lambda: problem.hvp(point, direction)), 0.3)
        times = measure_together(gradients, repeats, args.rounds)
        load = f"{os.getloadavg()[0]:.2f}"
        gemm_rate = 2.0 * d**3 / times["gemm"] / 1e9
        t_ours = times["quotient"]
        report("gradient_hvp", size, "quotient Problem.gradient", t_ours, gflops=f"{grad_flops / t_ours / 1e9:.1f}",
               quotient_over_bound=f"{t_ours / times['bound']:.3f}", load_average=load)  # fmt: skip
        report("gradient_hvp", size, f"matmul lower bound ({3 * h - 3} products)", times["bound"],
               gflops=f"{grad_flops / times['bound'] / 1e9:.1f}")  # fmt: skip
        report("gradient_hvp", size, f"numpy GEMM ({d}x{d} @ {d}x{d})", times["gemm"], gflops=f"{gemm_rate:.1f}",
               openblas_coretype=os.environ.get("OPENBLAS_CORETYPE"))  # fmt: skip
        for name, label in (("gemm_jax", "jax.jit(matmul) GEMM"), ("gemm_torch", "torch.matmul GEMM")):
            if name in times:
                report("gradient_hvp", size, f"{label} ({d}x{d} @ {d}x{d})", times[name], gflops=f"{2.0 * d**3 / times[name] / 1e9:.1f}")
        for name, label in (("jax", "jax.jit(jax.grad)"), ("torch", "torch autograd (CPU, float64)")):
            if name in times:
                report("gradient_hvp", size, f"gradient: {label}", times[name], t_ours,
                       rel_diff=f"{relative_difference(ours_gradient, checks[name][0]):.1e}")  # fmt: skip
        others = [times[name] for name in ("jax", "torch") if name in times]
        if others:
            best = min(others) / t_ours
            ROWS.append({"case": "gradient_hvp", "size": size, "what": "gradient: best of jax and torch / quotient", "ratio": best,
                         "within_1.1x": bool(best >= 1 / 1.1)})  # fmt: skip
            print(f"{'gradient_hvp':10s} {size:22s} gradient: best other / quotient = {best:.3f} (within 1.1x: {best >= 1 / 1.1})", flush=True)
        times = measure_together(hvps, repeats, args.rounds)
        t_ours = times["quotient"]
        report("gradient_hvp", size, "quotient Problem.hvp", t_ours, load_average=f"{os.getloadavg()[0]:.2f}")
        for name, label in (("jax", "jax jvp of grad (jit)"), ("torch", "torch double backward")):
            if name in times:
                report("gradient_hvp", size, f"hvp: {label}", times[name], t_ours,
                       rel_diff=f"{relative_difference(ours_hvp, checks[name][1]):.1e}")  # fmt: skip
        others = [times[name] for name in ("jax", "torch") if name in times]
        if others:
            best = min(others) / t_ours
            ROWS.append({"case": "gradient_hvp", "size": size, "what": "hvp: best of jax and torch / quotient", "ratio": best,
                         "within_1.1x": bool(best >= 1 / 1.1)})  # fmt: skip
            print(f"{'gradient_hvp':10s} {size:22s} hvp: best other / quotient = {best:.3f} (within 1.1x: {best >= 1 / 1.1})", flush=True)


def trajectory_problem():
    widths = (4, 8, 8, 4)
    problem = q.Problem.from_sigma([5.0, 3.0, 2.0, 1.0], widths)
    return problem, q.init.small_random(widths, 1e-2, rng=0)


def case_trajectory(args):
    problem, point0 = trajectory_problem()
    size = "4-8-8-4 init 1e-2"
    rtol, atol, tol, t_final = 1e-10, 1e-12, 1e-8, 1e6
    result = {}
    rounds = max(1, args.rounds // 2)
    timings = {}
    for method in ("auto", "DOP853", "LSODA"):

        def ours(method=method):
            result[method] = q.gradient_flow(
                problem, point0, t_final, rtol=rtol, atol=atol, gradient_atol=tol, method=method, t_eval=2, progress=False
            )

        timings[method] = measure(ours, 1, rounds)
    t_ours = timings["auto"]
    for method in ("auto", "DOP853", "LSODA"):
        trajectory = result[method]
        report(
            "trajectory", size, f"quotient gradient_flow ({method})", timings[method], None if method == "auto" else t_ours,
            n_steps=trajectory.n_steps, n_rhs=trajectory.n_rhs, t_stop=f"{trajectory.times[-1]:.4g}",
            final_loss=f"{trajectory.loss[-1]:.3e}", drift=f"{trajectory.conservation_drift[-1]:.1e}",
        )  # fmt: skip
    trajectory = result["auto"]
    if torch is not None:
        gradient = torch_flat_gradient(problem.widths, problem.target)
        counter = {"rhs": 0}

        def rhs(t, y):
            counter["rhs"] += 1
            return -gradient(y)

        def converged(t, y):
            counter["rhs"] += 1
            return np.linalg.norm(gradient(y)) - tol

        converged.terminal, converged.direction = True, -1

        def reference():
            counter["rhs"] = 0
            result["torch"] = solve_ivp(rhs, (0, t_final), q.to_vector(point0), method="DOP853", rtol=rtol, atol=atol, events=[converged])

        t_torch = measure(reference, 1, rounds)
        final = q.from_vector(result["torch"].y[:, -1], problem.widths)
        report(
            "trajectory", size, "torch autograd + solve_ivp (DOP853)", t_torch, t_ours, n_rhs=counter["rhs"],
            t_stop=f"{result['torch'].t[-1]:.4g}", final_loss_diff=f"{abs(problem.loss(final) - trajectory.loss[-1]):.1e}",
        )  # fmt: skip
    if not have_jax(size, "trajectory"):
        return
    for solver in ("Dopri8", "Tsit5"):
        t_jax, steps, final = jax_trajectory(problem, point0, rtol, atol, tol, t_final, rounds, solver)
        report(
            "trajectory", size, f"JAX + diffrax ({solver}, jit)", t_jax, t_ours, n_steps=steps,
            final_loss=f"{problem.loss(final):.3e}", drift=f"{drift_of(point0, final):.1e}",
        )  # fmt: skip


def have_jax(size, case) -> bool:
    try:
        import diffrax  # noqa: F401
        import jax
    except ImportError:
        print(f"{case:10s} {size:22s} JAX + diffrax: skipped (not installed; pip install -e '.[bench]')", flush=True)
        ROWS.append({"case": case, "size": size, "what": "jax + diffrax", "skipped": "not installed"})
        return False
    jax.config.update("jax_enable_x64", True)
    return True


def drift_of(point0, point) -> float:
    """The relative conservation drift between two points (Trajectory.conservation_drift's formula)."""
    start, end = q.conserved_quantities(point0), q.conserved_quantities(point)
    change = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(start, end)))
    scale = max(sum(np.sum(W**2) for W in point0), sum(np.sum(W**2) for W in point))
    return float(change / scale)


def jax_trajectory(problem, point0, rtol, atol, tol, t_final, rounds, solver="Dopri8", batched=False, timing=None):
    """diffrax from ``point0`` (layers, or stacked layers with ``batched``) until ``||grad L|| < tol``
    (every member's, when batched) or ``t_final``; returns ``(seconds, steps, final point)``, and
    puts the seconds of the first (compiling) call in ``timing["compile"]`` when given a dict."""
    import diffrax
    import jax
    import jax.numpy as jnp

    sigma = jnp.asarray(problem.target)

    def loss(layers):
        product = layers[0]
        for W in layers[1:]:
            product = W @ product
        return 0.5 * jnp.sum((product - sigma) ** 2)

    field = jax.grad(loss)
    if batched:
        field = jax.vmap(field)
    term = diffrax.ODETerm(lambda t, y, args: jax.tree_util.tree_map(jnp.negative, field(y)))

    def stop(t, y, args, **kwargs):
        squares = sum(jnp.sum(g**2, axis=tuple(range(1 if batched else 0, g.ndim))) for g in field(y))
        return jnp.all(squares < tol**2)

    method = getattr(diffrax, solver)()

    @jax.jit
    def solve(y0):
        return diffrax.diffeqsolve(
            term, method, 0.0, t_final, None, y0, stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            event=None if tol is None else diffrax.Event(stop), max_steps=10**7, saveat=diffrax.SaveAt(t1=True),
        )  # fmt: skip

    y0 = tuple(jnp.asarray(W) for W in point0)
    start = time.perf_counter()
    solution = solve(y0)  # compiles: not in the run's time
    jax.block_until_ready(solution.ys)
    if timing is not None:
        timing["compile"] = time.perf_counter() - start
    seconds = measure(lambda: jax.block_until_ready(solve(y0).ys), 1, rounds)
    final = tuple(np.asarray(W[-1]) for W in solution.ys)
    return seconds, int(solution.stats["num_steps"]), final


def stiff_problem():
    problem = q.Problem.from_sigma([3.0, 2.0, 1.5, 1.0], (4,) * 5)
    return problem, q.init.small_random(problem.widths, 1e-2, rng=0)


def case_stiff(args):
    """The issue's stiff case: depth 4, (4,)*5, sigma (3, 2, 1.5, 1), init 1e-2, to ||grad L|| < 1e-8 (t ~ 1.1e5).

    DOP853 (the former default) to ``||grad L|| < 1e-8`` takes minutes (~350 000 steps); it is run
    only with ``--slow``, and otherwise on ``t in [0, 6000]`` beside the default on the same span."""
    problem, point0 = stiff_problem()
    rtol, atol, tol = 1e-10, 1e-12, 1e-8
    size = "depth 4 (4,)*5 init 1e-2"
    rounds = max(1, args.rounds // 2)
    result = {}

    def ours():
        result["auto"] = q.gradient_flow(problem, point0, 1e30, rtol=rtol, atol=atol, gradient_atol=tol, t_eval=2, progress=False)

    t_ours = measure(ours, 1, rounds)
    trajectory = result["auto"]
    report(
        "stiff", size + " to 1e-8", "quotient gradient_flow (auto)", t_ours, n_steps=trajectory.n_steps, n_rhs=trajectory.n_rhs,
        n_hessians=trajectory.meta["n_hessians"], t_stop=f"{trajectory.times[-1]:.4g}", drift=f"{trajectory.conservation_drift.max():.1e}",
    )  # fmt: skip

    def lsoda_default():
        result["LSODA"] = q.gradient_flow(problem, point0, 1e30, rtol=rtol, atol=atol, gradient_atol=tol, t_eval=2, method="LSODA",
                                          progress=False)  # fmt: skip

    t_former = measure(lsoda_default, 1, rounds)
    trajectory = result["LSODA"]
    report(
        "stiff", size + " to 1e-8", "quotient gradient_flow (LSODA + exact Hessian, the former default)", t_former, t_ours,
        n_steps=trajectory.n_steps, n_rhs=trajectory.n_rhs, n_hessians=trajectory.meta["n_hessians"], t_stop=f"{trajectory.times[-1]:.4g}",
        drift=f"{trajectory.conservation_drift.max():.1e}",
    )  # fmt: skip
    from quotient._ode import flat_gradient, flat_hessian

    layers, gradient = flat_gradient(problem)
    hessian = flat_hessian(problem)

    def converged(t, y):
        return np.linalg.norm(gradient(y)) - tol

    converged.terminal, converged.direction = True, -1

    def lsoda():
        result["lsoda"] = solve_ivp(
            lambda t, y: -gradient(y), (0, 1e30), q.to_vector(point0), method="LSODA", rtol=rtol, atol=atol,
            jac=lambda t, y: -hessian(y), events=[converged],
        )  # fmt: skip

    t_lsoda = measure(lsoda, 1, rounds)
    final = q.from_vector(result["lsoda"].y[:, -1], problem.widths)
    report("stiff", size + " to 1e-8", "solve_ivp LSODA + exact Hessian (stores every step)", t_lsoda, t_ours,
           n_steps=result["lsoda"].t.size - 1, drift=f"{drift_of(point0, final):.1e}")  # fmt: skip
    if args.slow:
        start = time.perf_counter()
        slow = q.gradient_flow(problem, point0, 1e30, rtol=rtol, atol=atol, gradient_atol=tol, method="DOP853", t_eval=2, progress=False)
        report("stiff", size + " to 1e-8", "quotient gradient_flow (scipy DOP853, the default before LSODA)", time.perf_counter() - start, t_ours,
               n_steps=slow.n_steps, drift=f"{slow.conservation_drift.max():.1e}")  # fmt: skip
    if have_jax(size, "stiff"):
        t_jax, steps, final = jax_trajectory(problem, point0, rtol, atol, tol, 1e30, 1, "Kvaerno5")
        report("stiff", size + " to 1e-8", "JAX + diffrax (Kvaerno5, jit)", t_jax, t_ours, n_steps=steps,
               drift=f"{drift_of(point0, final):.1e}", final_loss=f"{problem.loss(final):.2e}")  # fmt: skip
    span = 6000.0
    for method in ("auto", "DOP853"):

        def on_span(method=method):
            result[method] = q.gradient_flow(problem, point0, span, rtol=rtol, atol=atol, method=method, t_eval=2, progress=False)

        seconds = measure(on_span, 1, 1)
        if method == "auto":
            t_span = seconds
        report("stiff", size + f" t <= {span:g}", f"quotient gradient_flow ({method})", seconds, None if method == "auto" else t_span,
               n_steps=result[method].n_steps)  # fmt: skip


def case_ensemble(args):
    widths = (3, 4, 4, 3)
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], widths)
    members = 256
    generator = np.random.default_rng(0)
    starts = [q.init.small_random(widths, 0.1, rng=generator) for _ in range(members)]
    stacked = tuple(np.stack(layers) for layers in zip(*starts))
    t_final, rtol, atol = 20.0, 1e-8, 1e-10
    size = f"256 x 3-4-4-3, t = {t_final:g}"
    result = {}
    rounds = max(1, args.rounds // 2)
    timings = {}
    for method in ("auto", "DOP853"):

        def batched(method=method):
            result[method] = q.ensemble_flow(problem, stacked, t_final, rtol=rtol, atol=atol, method=method, t_eval=2, progress=False)

        timings[method] = measure(batched, 1, rounds)
    t_ours = timings["auto"]
    for method in ("auto", "DOP853"):
        report("ensemble", size, f"quotient ensemble_flow ({method})", timings[method], None if method == "auto" else t_ours,
               n_steps=result[method].n_steps, n_rhs=result[method].n_rhs)  # fmt: skip
    if not args.quick:
        looped = measure(lambda: [q.gradient_flow(problem, s, t_final, rtol=rtol, atol=atol, t_eval=2, progress=False) for s in starts], 1, 1)
        report("ensemble", size, "looped gradient_flow (auto)", looped, t_ours)
    if have_jax(size, "ensemble"):
        # one ODE on the stacked state, diffrax's controller on its RMS norm (tolerances as given)
        t_jax, steps, _ = jax_trajectory(problem, stacked, rtol, atol, None, t_final, rounds, "Dopri8", batched=True)
        report("ensemble", size, "JAX + diffrax (Dopri8 on the stacked state, jit)", t_jax, t_ours, n_steps=steps)
    # members of the stiff case (16; 256 with --slow: minutes), each until its own global minimum
    problem, _ = stiff_problem()
    starts = [q.init.small_random(problem.widths, 1e-2, rng=generator) for _ in range(members if args.slow else 16)]
    stacked = tuple(np.stack(layers) for layers in zip(*starts))
    start = time.perf_counter()
    stiff = q.ensemble_flow(
        problem, stacked, 1e30, rtol=1e-10, atol=1e-12, gradient_atol=1e-8, until="minimum", t_eval=101, method="auto", progress=False
    )
    report(
        "ensemble", f"{len(starts)} x (4,)*5 stiff, to 1e-8", "quotient ensemble_flow (auto, until minimum)", time.perf_counter() - start,
        n_steps=stiff.n_steps, status=stiff.status, converged=int(np.sum(stiff.member_status == 1)),
        t_stop=f"{stiff.times[-1]:.4g}", drift=f"{stiff.conservation_drift.max():.1e}",
    )  # fmt: skip


def case_ensemble_stiff(args):
    """Target 5: ensembles of the stiff case (depth 4, ``(4,)*5``, sigma (3, 2, 1.5, 1), init 1e-2),
    every member until its global minimum (``until="minimum"``, ``gradient_atol=1e-8``, ``method="auto"``).

    ``"auto"`` integrates every member with steps of its own (``shared_steps=False``, its default
    for implicit methods). ``--members`` sets the sizes (default 256; with several sizes and no 256
    among them, 256 is extrapolated by a power law fitted in log-log, and the row says so). Time,
    peak resident memory (and its growth over the process's resident memory before the run), the
    members' steps (summed), members converged."""
    problem, _ = stiff_problem()
    sizes, seconds = [], []
    for members in args.members:
        starts = [q.init.small_random(problem.widths, 1e-2, rng=seed) for seed in range(members)]
        stacked = tuple(np.stack(layers) for layers in zip(*starts))
        with PeakMemory() as memory:
            start = time.perf_counter()
            stiff = q.ensemble_flow(
                problem, stacked, 1e30, rtol=1e-10, atol=1e-12, gradient_atol=1e-8, until="minimum", t_eval=101,
                method="auto", progress=False, throw=False,
            )  # fmt: skip
            elapsed = time.perf_counter() - start
        peak, growth = memory.megabytes
        sizes.append(members)
        seconds.append(elapsed)
        report(
            "ensemble_stiff", f"{members} x (4,)*5 stiff, to min", "quotient ensemble_flow (auto, separate steps, until minimum)", elapsed,
            n_steps=stiff.n_steps, status=stiff.status, converged=int(np.sum(stiff.member_status == 1)),
            t_stop=f"{stiff.times[-1]:.4g}", drift=f"{stiff.conservation_drift.max():.1e}",
            peak_rss_mb=None if peak is None else round(peak), rss_growth_mb=None if growth is None else round(growth),
            load_average=f"{os.getloadavg()[0]:.2f}",
        )  # fmt: skip
    if len(set(sizes)) >= 2 and 256 not in sizes:
        exponent, offset = np.polyfit(np.log(sizes), np.log(seconds), 1)
        estimate = float(np.exp(offset) * 256.0**exponent)
        ROWS.append({"case": "ensemble_stiff", "size": "256 x (4,)*5 stiff, to min", "what": "extrapolated, not run",
                     "seconds": estimate, "ratio": None, "exponent": float(exponent), "from_members": sizes})  # fmt: skip
        print(f"{'ensemble_stiff':10s} 256 members: not run; time ~ members^{exponent:.2f} from {sizes} gives ~{format_seconds(estimate)}", flush=True)


def case_ensemble_explore(args):
    """Target 5: 256 members of explore's problem (4-8-8-4, sigma (5, 3, 2, 1), init 1e-2, seeds 0..255)
    as one ODE, ``ensemble_flow`` against diffrax Dopri8 on the stacked state (jit, compile excluded),
    ``rtol = 1e-10``, ``atol = 1e-12`` (explore's), (a) to ``t = 20`` and (b) until every member's
    ``||grad L|| < 1e-8`` (``until="minimum"`` for quotient; diffrax stops when all gradients are
    below the tolerance). Both controllers use the RMS norm of the whole stacked state."""
    problem, _ = trajectory_problem()
    members = 16 if args.quick else 256
    starts = [q.init.small_random(problem.widths, 1e-2, rng=seed) for seed in range(members)]
    stacked = tuple(np.stack(layers) for layers in zip(*starts))
    rtol, atol, tol = 1e-10, 1e-12, 1e-8
    rounds = max(1, args.rounds // 2)
    jax_ok = have_jax(f"{members} x 4-8-8-4", "ensemble_explore")
    for t_final, gradient_atol in ((20.0, None), (1e30, tol)):
        size = f"{members} x 4-8-8-4, " + ("t = 20" if gradient_atol is None else "to min")
        result, timings, memory = {}, {}, {}
        # (method, shared_steps): the batched ODE (DOP853's default) and every member on its own
        for method, shared in (("auto", False), ("DOP853", True)):
            label = f"{method}, {'shared' if shared else 'separate'} steps"

            def batched(method=method, shared=shared, label=label):
                result[label] = q.ensemble_flow(
                    problem, stacked, t_final, rtol=rtol, atol=atol, method=method, t_eval=2, gradient_atol=gradient_atol,
                    until="minimum", shared_steps=shared, progress=False, throw=False,
                )  # fmt: skip

            with PeakMemory() as peak:
                timings[label] = measure(batched, 1, rounds if gradient_atol is None else 1, warm_up=gradient_atol is None)
            memory[label] = peak.megabytes[0]
        t_ours = timings["auto, separate steps"]
        for method, seconds in timings.items():
            run = result[method]
            report(
                "ensemble_explore", size, f"quotient ensemble_flow ({method})", seconds, None if method == "auto, separate steps" else t_ours,
                n_steps=run.n_steps, n_rhs=run.n_rhs, status=run.status, converged=int(np.sum(run.member_status == 1)),
                t_stop=f"{run.times[-1]:.4g}", max_final_loss=f"{run.loss[:, -1].max():.6e}", drift=f"{run.conservation_drift.max():.1e}",
                peak_rss_mb=None if memory[method] is None else round(memory[method]), load_average=f"{os.getloadavg()[0]:.2f}",
            )  # fmt: skip
        if jax_ok:
            t_jax, steps, final = jax_trajectory(problem, stacked, rtol, atol, gradient_atol, t_final, rounds, "Dopri8", batched=True)
            losses = [problem.loss(tuple(W[b] for W in final)) for b in range(members)]
            report("ensemble_explore", size, "JAX + diffrax (Dopri8 on the stacked state, jit)", t_jax, t_ours, n_steps=steps,
                   max_final_loss=f"{max(losses):.6e}", load_average=f"{os.getloadavg()[0]:.2f}")  # fmt: skip


def torch_hvp_function(point, target):
    layers = [torch.tensor(W, requires_grad=True) for W in point]
    sigma = torch.tensor(target)
    sizes = [W.size for W in point]
    shapes = [W.shape for W in point]

    def hvp(v):
        product = layers[0]
        for W in layers[1:]:
            product = W @ product
        loss = 0.5 * ((product - sigma) ** 2).sum()
        grads = torch.autograd.grad(loss, layers, create_graph=True)
        direction = [part.reshape(shape) for part, shape in zip(torch.split(torch.from_numpy(np.ravel(v)), sizes), shapes)]
        products = torch.autograd.grad(grads, layers, grad_outputs=direction)
        return torch.cat([p.reshape(-1) for p in products]).numpy()

    return hvp


def extreme_eigenvalues(matvec, n, v0, tol):
    counter = {"n": 0}

    def counted(x):
        counter["n"] += 1
        return matvec(x)

    operator = LinearOperator((n, n), matvec=counted, dtype=float)
    top = eigsh(operator, k=1, which="LA", v0=v0, tol=tol, return_eigenvectors=False)[0]
    bottom = eigsh(operator, k=1, which="SA", v0=v0, tol=tol, return_eigenvectors=False)[0]
    return float(bottom), float(top), counter["n"]


def case_lanczos(args):
    sizes = LANCZOS_WIDTHS[:2] if args.quick else LANCZOS_WIDTHS
    for widths in sizes:
        problem = q.Problem.from_sigma(np.linspace(2.0, 1.0, widths[0]), widths)
        point = tuple(W * 0.9 for W in scaled_point(widths))
        n = problem.n_params
        size = f"N = {n} ({widths[0]}^{len(widths) - 1})"
        v0 = np.random.default_rng(0).standard_normal(n)

        def ours(x):
            return q.to_vector(problem.hvp(point, q.from_vector(np.ravel(x), widths)))

        repeats = repeats_for(once(lambda: ours(v0)), 0.3)
        t_one = measure(lambda: ours(v0), repeats, args.rounds)
        report("lanczos", size, "quotient one hvp", t_one)
        if torch is not None:
            theirs = torch_hvp_function(point, problem.target)
            error = np.max(np.abs(theirs(v0) - ours(v0))) / np.max(np.abs(ours(v0)))
            t_theirs = measure(lambda: theirs(v0), repeats, args.rounds)
            report("lanczos", size, "torch double-backward one hvp", t_theirs, t_one, rel_diff=f"{error:.1e}")
        result = {}
        start = time.perf_counter()
        result["ours"] = extreme_eigenvalues(ours, n, v0, 1e-8)
        t_ours = time.perf_counter() - start
        low, high, count = result["ours"]
        report("lanczos", size, "quotient eigsh LA + SA on hvp", t_ours, n_hvp=count, eigenvalues=f"[{low:.6g}, {high:.6g}]")
        if torch is not None:
            start = time.perf_counter()
            low_t, high_t, count_t = extreme_eigenvalues(theirs, n, v0, 1e-8)
            t_theirs = time.perf_counter() - start
            report("lanczos", size, "torch eigsh LA + SA on hvp", t_theirs, t_ours, n_hvp=count_t, eigenvalues=f"[{low_t:.6g}, {high_t:.6g}]")


def case_plateau(args):
    """Steps against horizon: gradient_flow to ||grad L|| < 1e-8 from smaller and smaller inits.

    Relative tolerance only (``atol`` negligible) to the first critical point, so the tiny early
    states are integrated as accurately as the later ones; to the global minimum (across every
    plateau) with the default ``atol = 1e-12``: escaping the later saddles, components of the layers
    pass through zero, where a purely relative tolerance cannot be met (``atol = 1e-300`` from
    init 1e-4 and 1e-5 fails there with steps below the spacing of the times). DOP853 (explicit, the default) and LSODA (switches to a stiff
    method when the step is limited by stability rather than accuracy).
    """
    widths = (4,) * 5
    problem = q.Problem.from_sigma([3.0, 2.0, 1.5, 1.0], widths)
    scales = [1e-1, 1e-3, 1e-5] if args.quick else [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
    runs = [("auto", "critical"), ("auto", "minimum"), ("LSODA", "critical")] + ([("DOP853", "critical")] if args.slow else [])
    for method, until in runs:
        horizons, steps = [], []
        for scale in scales:
            point0 = q.init.small_random(widths, scale, rng=0)
            start = time.perf_counter()
            trajectory = q.gradient_flow(
                problem, point0, 1e30, rtol=1e-10, atol=1e-300 if until == "critical" else 1e-12, method=method, gradient_atol=1e-8,
                until=until, progress=False,
                throw=False,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            visited = q.plateaus(problem, trajectory.times, trajectory.end_to_end)
            escape = visited[0].t_end if visited and visited[0].critical_value.learned == () else float("nan")
            horizon = float(trajectory.times[-1])
            horizons.append(horizon)
            steps.append(trajectory.n_steps)
            report(
                "plateau", f"depth 4, init {scale:g}", f"{method} to ||grad|| < 1e-8 (until {until})", seconds,
                n_steps=trajectory.n_steps, n_rhs=trajectory.n_rhs, horizon=f"{horizon:.3g}", first_escape=f"{escape:.3g}",
                stopped_at="{" + ",".join(map(str, visited[-1].critical_value.learned)) + "}" if visited else "-",
                status=trajectory.status, solver=trajectory.meta["solver"],
            )  # fmt: skip
        horizons, steps = np.array(horizons), np.array(steps, dtype=float)
        # the runs that stop at the first saddle after the origin's plateau: steps against its length
        first = np.array([row["stopped_at"] == "{1}" for row in ROWS[-len(scales):]])
        slope = np.polyfit(np.log10(horizons[first]), steps[first], 1)[0] if first.sum() >= 2 else float("nan")
        overall = np.polyfit(np.log10(horizons), steps, 1)[0]
        summary = (
            f"{method} (until {until}): over all runs {overall:.0f} steps per decade of horizon "
            f"({steps.min():.0f} to {steps.max():.0f} steps for horizons {horizons.min():.3g} to {horizons.max():.3g}); across the origin's plateau alone (runs that stop at the saddle {{1}}) the horizon grows "
            f"from {horizons[first].min() if first.any() else float('nan'):.3g} to "
            f"{horizons[first].max() if first.any() else float('nan'):.3g} and the steps by {slope:.0f} per decade; "
            f"runs through later plateaus take up to {steps.max():.0f} steps"
        )
        print(f"{'plateau':10s} {summary}", flush=True)
        ROWS.append({"case": "plateau", "what": f"{method} (until {until})", "summary": summary, "steps_per_decade": slope, "steps_per_decade_all": overall})


def heyoka_field(problem):
    """The gradient flow ``dW_i/dt = W_{>i}^T (Sigma - W) W_{<i}^T`` as heyoka expressions (square loss).

    Returns ``(variables, right-hand sides)`` on the flat state of :func:`quotient.to_vector`; the
    products are built once and shared (heyoka's decomposition removes common subexpressions)."""
    import heyoka as hy

    widths = problem.widths
    variables = hy.make_vars(*[f"w{k}" for k in range(problem.n_params)])
    layers, k = [], 0
    for i in range(len(widths) - 1):
        rows, columns = widths[i + 1], widths[i]
        layers.append(np.array(variables[k : k + rows * columns], dtype=object).reshape(rows, columns))
        k += rows * columns

    def product(A, B):
        return np.array(
            [[hy.sum([A[i, m] * B[m, j] for m in range(A.shape[1])]) for j in range(B.shape[1])] for i in range(A.shape[0])],
            dtype=object,
        )

    prefix = [None, layers[0]]  # prefix[i] = W_i ... W_1
    for W in layers[1:]:
        prefix.append(product(W, prefix[-1]))
    back = problem.target - prefix[-1]  # W_{>i}^T (Sigma - W), from i = h down
    fields = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        fields[i] = back if i == 0 else product(back, prefix[i].T)
        if i > 0:
            back = product(layers[i].T, back)
    return variables, [entry for G in fields for entry in G.ravel()]


def heyoka_trajectory(problem, point0, tol, stop, t_final, rounds):
    """heyoka's adaptive Taylor integrator (compact mode; tolerance ``tol``) from ``point0`` until
    ``||grad L|| < stop`` (checked after each step; ``None``: to ``t_final``). Returns
    ``(compile seconds, run seconds, steps, final point, order)``."""
    import heyoka as hy

    variables, fields = heyoka_field(problem)
    y0 = q.to_vector(point0)
    start = time.perf_counter()
    # compact_mode: the default (one function per subexpression) did not compile within 5 minutes for 4-8-8-4
    integrator = hy.taylor_adaptive(list(zip(variables, fields)), y0, tol=tol, compact_mode=True)
    compile_seconds = time.perf_counter() - start
    steps = [0]

    def gradient_norm(y):
        return np.linalg.norm(q.to_vector(problem.gradient(q.from_vector(y, problem.widths))))

    def integrate():
        integrator.state[:] = y0
        integrator.time = 0.0
        steps[0] = 0
        if stop is None:
            outcome = integrator.propagate_until(t_final)
            steps[0] = int(outcome[3])
            return
        while integrator.time < t_final:
            integrator.step()
            steps[0] += 1
            if gradient_norm(integrator.state) < stop:
                return

    seconds = measure(integrate, 1, rounds)
    return compile_seconds, seconds, steps[0], q.from_vector(integrator.state.copy(), problem.widths), integrator.order


def case_taylor(args):
    """Issue 12, the default method: heyoka's Taylor integrator (``pip install heyoka``, bench venv only)
    on explore's problem (4-8-8-4 from 1e-2) and the stiff case, to ``||grad L|| < 1e-8``: compile time
    apart, run time, steps, final loss and conservation drift, against ``gradient_flow`` DOP853 and
    ``auto`` and diffrax Dopri8 / Kvaerno5 in the same process. heyoka's tolerance is 1e-10 (its one
    tolerance is relative where the state is large, absolute where it is small). The stiff case to
    the minimum takes minutes with heyoka (an explicit method, its steps held by stability) and runs
    only with ``--slow``; otherwise on ``t <= 6000``."""
    try:
        import heyoka  # noqa: F401
    except ImportError:
        print("taylor     heyoka: skipped (not installed; pip install heyoka)", flush=True)
        ROWS.append({"case": "taylor", "what": "heyoka", "skipped": "not installed"})
        return
    rtol, atol, tol = 1e-10, 1e-12, 1e-8
    rounds = max(1, args.rounds // 2)
    for name, (problem, point0) in (("explore 4-8-8-4 init 1e-2", trajectory_problem()), ("stiff (4,)*5 init 1e-2", stiff_problem())):
        stiff = name.startswith("stiff")
        to_min = not stiff or args.slow
        size = name + (" to 1e-8" if to_min else " t <= 6000")
        t_final = 1e30 if to_min else 6000.0
        result, timings = {}, {}
        for method in ("auto", "DOP853", "LSODA"):
            if stiff and to_min and method == "DOP853":
                continue  # ~6 minutes: the stiff case's --slow row

            def ours(method=method):
                result[method] = q.gradient_flow(problem, point0, t_final, rtol=rtol, atol=atol, method=method,
                                                 gradient_atol=tol if to_min else None, t_eval=2, progress=False)  # fmt: skip

            timings[method] = measure(ours, 1, rounds)
        reference = timings["auto"] if stiff else timings["DOP853"]
        for method, seconds in timings.items():
            run = result[method]
            report("taylor", size, f"quotient gradient_flow ({method})", seconds, None if seconds == reference else reference,
                   n_steps=run.n_steps, final_loss=f"{run.loss[-1]:.3e}", drift=f"{run.conservation_drift.max():.1e}",
                   load_average=f"{os.getloadavg()[0]:.2f}")  # fmt: skip
        compile_seconds, seconds, steps, final, order = heyoka_trajectory(problem, point0, 1e-10, tol if to_min else None, t_final, rounds)
        report("taylor", size, f"heyoka taylor_adaptive (order {order}, compact mode, tol 1e-10; compile {compile_seconds:.2f} s apart)",
               seconds, reference, n_steps=steps, compile_seconds=round(compile_seconds, 3), final_loss=f"{problem.loss(final):.3e}",
               drift=f"{drift_of(point0, final):.1e}", load_average=f"{os.getloadavg()[0]:.2f}")  # fmt: skip
        report("taylor", size, "heyoka, compile + run (a user runs explore once)", compile_seconds + seconds, reference)
        if have_jax(size, "taylor"):
            solver = "Kvaerno5" if stiff else "Dopri8"
            timing = {}
            t_jax, steps, final = jax_trajectory(problem, point0, rtol, atol, tol if to_min else None, t_final, rounds, solver, timing=timing)
            report("taylor", size, f"JAX + diffrax ({solver}, jit, compile excluded)", t_jax, reference, n_steps=steps,
                   compile_and_first_run_seconds=round(timing["compile"], 3), final_loss=f"{problem.loss(final):.3e}",
                   drift=f"{drift_of(point0, final):.1e}", load_average=f"{os.getloadavg()[0]:.2f}")  # fmt: skip
            report("taylor", size, "JAX + diffrax, compile + first run", timing["compile"], reference)


CASES = {
    "gradient": case_gradient,
    "trajectory": case_trajectory,
    "stiff": case_stiff,
    "ensemble": case_ensemble,
    "lanczos": case_lanczos,
    "plateau": case_plateau,
    "ensemble_stiff": case_ensemble_stiff,
    "gradient_hvp": case_gradient_hvp,
    "ensemble_explore": case_ensemble_explore,
    "taylor": case_taylor,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of repeats; the minimum of their medians is reported")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds (a smoke run)")
    parser.add_argument("--slow", action="store_true", help="also the runs that take minutes (DOP853 across the stiff plateaus)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch's threads (default: all cores); numpy's and jax's come from the environment "
                             "(OPENBLAS_NUM_THREADS, XLA_FLAGS), recorded in the JSON file")  # fmt: skip
    parser.add_argument("--members", default="256", help="ensemble sizes of the ensemble_stiff case (comma-separated)")
    parser.add_argument("--merge", action="store_true", help="keep the rows of --out for the cases not run now (replace those run)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = min(args.rounds, 2)
    args.members = [int(m) for m in args.members.split(",") if m.strip()]
    cases = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = [name for name in cases if name not in CASES]
    if unknown:
        parser.error(f"--cases: unknown {unknown}; choose from {list(CASES)}")
    if torch is None:
        print("torch is not installed: the PyTorch references are skipped (pip install -e '.[bench]')")
    else:
        torch.set_num_threads(args.threads or os.cpu_count() or 1)
    info = machine_info()
    print(f"machine: {info['cpu_model']}, {info['cpu_count']} cores, numpy {info['numpy']} ({info['numpy_blas']}), "
          f"torch {info['torch']}; load average {info['load_average_start'][0]:.2f}")  # fmt: skip
    print("time = min over rounds of the median of repeats; ratio = reference time / quotient time (> 1: quotient faster)")
    for name in cases:
        CASES[name](args)
    info["load_average_end"] = list(os.getloadavg())
    info["rounds"] = args.rounds
    info["quick"] = args.quick
    rows, machines = ROWS, info
    if args.merge and os.path.exists(args.out):
        with open(args.out) as stream:
            previous = json.load(stream)
        kept = [row for row in previous["results"] if row.get("case") not in cases]
        rows = kept + ROWS
        # the machine of each pass: the earlier ones as they were, keyed by their cases
        earlier = previous.get("machine_by_cases", {})
        if not earlier:
            earlier = {",".join(sorted({row.get("case") for row in previous["results"]} - set(cases))): previous["machine"]}
        machines = {**earlier, ",".join(cases): info}
    with open(args.out, "w") as stream:
        if args.merge:
            json.dump({"machine": info, "machine_by_cases": machines, "results": rows}, stream, indent=1)
        else:
            json.dump({"machine": info, "results": rows}, stream, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
