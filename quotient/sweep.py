"""Sweeps: gradient flows over a grid of depths, widths, init scales and seeds, on dask.

Each run integrates ``gradient_flow`` from ``init.small_random(widths, init_scale, rng=seed)`` for
widths ``(d_in, width, ..., width, d_out)`` with ``depth`` layers, and is stored as soon as it
finishes, as ``<out>/runs/<run>.npz`` (a :class:`~quotient.flow.Trajectory` file whose ``meta``
holds the run's parameters and outcome). Starting the same sweep again loads the stored runs and
computes only the missing ones, so an interrupted sweep resumes where it stopped: nothing stored
is recomputed or rewritten, and a run lost mid-way (killed before it was stored) is run again.
``<out>/sweep.json`` records the settings, and ``<out>/index.json`` the outcome of every stored
run (rewritten after each run, through a temporary file).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import numbers
import os
import tomllib

import numpy as np
from tqdm import tqdm

from . import init
from ._io import FileFormatError, FolderLockedError, lock_folder, read_meta, read_npz, stale_partial, write_json
from .critical import global_minimum
from .flow import gradient_flow
from .graph import plateaus
from .problem import Problem

__all__ = ["sweep", "load_sweep", "read_config", "run_name", "FolderLockedError"]

_FORMAT = "quotient.sweep/1"

# settings that change what a run computes: a folder holds runs of one set of them only
_SETTINGS = ("sigma", "d_in", "d_out", "t_final", "gradient_atol", "rtol", "atol", "n_samples")
_DEFAULTS = (None, None, None, 1e4, 1e-6, 1e-8, 1e-10, 501)  # of _SETTINGS, as in sweep()
# names of settings in the sweep.json of older folders (issue 15's tolerance names), so that they resume
_RENAMED_SETTINGS = {"gradient_tol": "gradient_atol"}
_GRID = ("depths", "widths", "init_scales", "seeds")
_CONFIG_KEYS = {
    None: ("out",),
    "problem": ("sigma", "d_in", "d_out"),
    "grid": _GRID,
    "flow": ("t_final", "gradient_atol", "rtol", "atol", "n_samples"),
    "cluster": ("scheduler", "n_workers", "processes"),
}


def run_name(depth: int, width: int, init_scale: float, seed: int) -> str:
    """File stem of one run, e.g. ``depth3-width8-scale0.01-seed0`` (the scale as ``repr``, exact)."""
    return f"depth{depth}-width{width}-scale{init_scale!r}-seed{seed}"


# ---------------------------------------------------------------------------------------- validation
def _int_list(name, values, minimum):
    if isinstance(values, (numbers.Integral, np.integer)) and not isinstance(values, bool) and name == "seeds":
        if values < 1:
            raise ValueError(f"seeds as a number n means the seeds 0, ..., n - 1 and must be at least 1; got {values!r}")
        values = list(range(int(values)))  # seeds = 4 means seeds 0, 1, 2, 3
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of integers >= {minimum}; got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must hold at least one value; got an empty list")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < minimum:
            raise ValueError(f"{name} must hold integers >= {minimum}; got {value!r} in {values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} holds a value twice: {values!r}")
    return [int(value) for value in values]


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating)) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return float(value)


def _settings(sigma, d_in, d_out, t_final, gradient_atol, rtol, atol, n_samples) -> dict:
    if isinstance(sigma, (str, bytes)) or not hasattr(sigma, "__iter__"):
        raise TypeError(f"sigma must be a list of target singular values; got {sigma!r}")
    values = np.asarray(list(sigma))
    if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "fiu":
        raise ValueError(f"sigma must be a non-empty list of numbers; got {sigma!r}")
    values = values.astype(float)
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(np.diff(values) > 0):
        raise ValueError(f"sigma must hold finite non-negative singular values in non-increasing order; got {list(sigma)!r}")
    m = values.size
    dims = {}
    for name, value in (("d_in", d_in), ("d_out", d_out)):
        value = m if value is None else value
        if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
        dims[name] = int(value)
    if min(dims.values()) != m:
        raise ValueError(f"sigma must hold min(d_in, d_out) = {min(dims.values())} singular values; got {m}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (numbers.Integral, np.integer)) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2; got {n_samples!r}")
    return {
        "sigma": [float(s) for s in values],
        **dims,
        "t_final": _positive("t_final", t_final),
        "gradient_atol": None if gradient_atol is None else _positive("gradient_atol", gradient_atol),
        "rtol": _positive("rtol", rtol),
        "atol": _positive("atol", atol),
        "n_samples": int(n_samples),
    }


def _grid(depths, widths, init_scales, seeds) -> list[dict]:
    depths = _int_list("depths", depths, 1)
    widths = _int_list("widths", widths, 1)
    seeds = _int_list("seeds", seeds, 0)
    if isinstance(init_scales, (str, bytes)) or not hasattr(init_scales, "__iter__"):
        raise TypeError(f"init_scales must be a list of positive numbers; got {init_scales!r}")
    init_scales = [_positive("init_scales", s) for s in init_scales]
    if not init_scales:
        raise ValueError("init_scales must hold at least one value; got an empty list")
    if len(set(init_scales)) != len(init_scales):
        raise ValueError(f"init_scales holds a value twice: {init_scales!r}")
    return [
        {"depth": d, "width": w, "init_scale": s, "seed": k}
        for d, w, s, k in itertools.product(depths, widths, init_scales, seeds)
    ]


# ---------------------------------------------------------------------------------------- one run
def _run(spec: dict, settings: dict):
    """Integrate one run and summarise it; executed on a dask worker. Returns a Trajectory."""
    widths = (settings["d_in"],) + (spec["width"],) * (spec["depth"] - 1) + (settings["d_out"],)
    problem = Problem.from_sigma(np.array(settings["sigma"]), widths)
    point0 = init.small_random(widths, spec["init_scale"], rng=spec["seed"])
    trajectory = gradient_flow(
        problem, point0, settings["t_final"], rtol=settings["rtol"], atol=settings["atol"],
        t_eval=settings["n_samples"], gradient_atol=settings["gradient_atol"], progress=False, throw=False,
    )  # fmt: skip
    minimum = global_minimum(problem)
    visited = plateaus(problem, trajectory.times, trajectory.end_to_end)
    outcome = {
        "widths": "-".join(map(str, widths)),
        "n_params": problem.n_params,
        "status": trajectory.status,
        "final_loss": float(trajectory.loss[-1]),
        "loss_gap": float(trajectory.loss[-1] - minimum),
        "t_stop": float(trajectory.times[-1]),
        "n_steps": trajectory.n_steps,
        "n_rhs": trajectory.n_rhs,
        "max_drift": float(trajectory.conservation_drift.max()),
        "visited": [list(p.critical_value.learned) for p in visited],
        "plateau_values": [p.critical_value.value for p in visited],
        "plateau_starts": [p.t_start for p in visited],
        "plateau_ends": [p.t_end for p in visited],
        "message": trajectory.message,
    }
    return dataclasses.replace(trajectory, meta={"run": spec, "outcome": outcome})


def _row(name: str, meta: dict, path: str) -> dict:
    outcome = meta["outcome"]
    row = {"run": name, **meta["run"], **{k: v for k, v in outcome.items() if k != "message"}}
    row["converged"] = outcome["status"] == 1
    row["n_plateaus"] = len(outcome["visited"])
    row["visited"] = tuple(tuple(learned) for learned in outcome["visited"])
    for key in ("plateau_values", "plateau_starts", "plateau_ends"):
        row[key] = tuple(outcome[key])
    row["path"] = path
    return row


def _read_run(path: str) -> dict:
    """The ``meta`` of a stored run, as the sweep wrote it; :class:`FileFormatError` if unreadable."""
    arrays = read_npz(path, "a quotient trajectory file", names=("meta",))
    meta = read_meta(path, arrays, "quotient.trajectory/1").get("meta")
    if not isinstance(meta, dict) or "run" not in meta or "outcome" not in meta:
        raise FileFormatError(f"{path} is a trajectory file, but not a run of a sweep (its meta lacks 'run' and 'outcome')")
    return meta


# ---------------------------------------------------------------------------------------- storage
_LOCK = "sweep.lock"


def _prepare_folder(out: str, settings: dict) -> str:
    """Create ``out`` or check that it holds a sweep with the same settings; return the runs folder."""
    runs = os.path.join(out, "runs")
    record = os.path.join(out, "sweep.json")
    if os.path.exists(record):
        try:
            with open(record) as stream:
                stored = json.load(stream)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise FileFormatError(f"{record} is not a quotient sweep record: {error}") from None
        if not isinstance(stored, dict) or stored.get("format") != _FORMAT or not isinstance(stored.get("settings"), dict):
            raise ValueError(f"{record} is not a quotient sweep record (format {stored.get('format')!r})")
        previous = {_RENAMED_SETTINGS.get(key, key): value for key, value in stored["settings"].items()}
        for key in _SETTINGS:
            if previous.get(key) != settings[key]:
                raise ValueError(
                    f"out = {out!r} holds a sweep with {key} = {previous.get(key)!r}, but this sweep asks "
                    f"for {key} = {settings[key]!r}; its runs would not be comparable: choose another folder"
                )
    elif set(os.listdir(out)) - {_LOCK}:
        raise ValueError(f"out = {out!r} is a folder that holds other files and no sweep.json; choose a new or empty folder")
    os.makedirs(runs, exist_ok=True)
    if not os.path.exists(record):
        write_json(record, {"format": _FORMAT, "settings": settings})
    for folder in (out, runs):  # temporary files of a sweep killed while writing; never a finished run
        for name in os.listdir(folder):
            if stale_partial(name):
                os.unlink(os.path.join(folder, name))
    return runs


def _frame(rows: list[dict]):
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("sweep tables need pandas: pip install 'quotient[sweep]'") from None

    return pd.DataFrame(rows)


def load_sweep(out):
    """The outcomes of the runs stored in ``out``, one row per run (a pandas DataFrame).

    Parameters
    ----------
    out : str or os.PathLike
        The folder of a :func:`sweep` (holding ``sweep.json`` and ``runs/``); runs still being
        computed are not listed.

    Returns
    -------
    pandas.DataFrame
        One row per stored run, columns as in :func:`sweep`'s result.

    Raises
    ------
    FileNotFoundError
        If ``out`` holds no sweep.
    FileFormatError
        If a stored run file is not a run of a sweep, or is corrupt (the message names it).
    """
    out = os.fspath(out)
    runs = os.path.join(out, "runs")
    if not os.path.exists(os.path.join(out, "sweep.json")):
        raise FileNotFoundError(f"{out!r} holds no sweep (no sweep.json)")
    names = sorted(name[:-4] for name in os.listdir(runs) if name.endswith(".npz"))
    return _frame([_row(name, _read_run(os.path.join(runs, name + ".npz")), os.path.join(runs, name + ".npz")) for name in names])


# ---------------------------------------------------------------------------------------- the sweep
def sweep(
    out,
    *,
    sigma,
    depths,
    widths,
    init_scales,
    seeds,
    d_in: int | None = None,
    d_out: int | None = None,
    t_final: float = 1e4,
    gradient_atol: float | None = 1e-6,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    n_samples: int = 501,
    scheduler=None,
    n_workers: int | None = None,
    processes: bool = True,
    progress: bool = True,
):
    """Run gradient flows over a grid on dask, storing each run as it finishes; resumable.

    Parameters
    ----------
    out : str or path
        Folder of the sweep: a new or empty folder, or one holding this sweep (then the stored
        runs are loaded and only the missing ones computed).
    sigma : sequence of float
        Target singular values, non-increasing; ``m = min(d_in, d_out)`` of them.
    depths, widths : sequence of int
        Numbers of layers ``h >= 1`` and hidden widths; a run has widths
        ``(d_in, width, ..., width, d_out)`` (the width plays no part at depth 1).
    init_scales : sequence of float
        Standard deviations of the small random init (``init.small_random``).
    seeds : sequence of int, or int
        Seeds of the init; an integer ``n`` means ``0, ..., n - 1``.
    d_in, d_out : int, optional
        Input and output widths (default ``len(sigma)``).
    t_final, gradient_atol, rtol, atol : float
        Passed to :func:`~quotient.flow.gradient_flow` (runs stop at ``gradient_atol``).
    n_samples : int
        Samples stored per run (evenly spaced up to the stopping time).
    scheduler : str or distributed.Client, optional
        ``None`` starts a ``LocalCluster`` (closed at the end); a scheduler address such as
        ``"tcp://host:8786"`` connects to a running cluster; a ``Client`` is used as it is.
    n_workers : int, optional
        Workers of the LocalCluster (default: the number of cores), one thread each.
    processes : bool
        LocalCluster workers as processes (default) or threads in this process.
    progress : bool
        Show a tqdm bar of finished runs.

    Returns
    -------
    pandas.DataFrame
        One row per run of the grid, in grid order: ``run``, ``depth``, ``width``, ``init_scale``,
        ``seed``, ``widths``, ``n_params``, ``status`` (1 converged, 0 reached ``t_final``, -1
        failed), ``converged``, ``final_loss``, ``loss_gap`` (to the global minimum), ``t_stop``,
        ``n_steps``, ``n_rhs``, ``max_drift``, ``n_plateaus``, ``visited`` (the learned sets of the
        critical values passed, in order), ``plateau_values``, ``plateau_starts``,
        ``plateau_ends`` and ``path`` (the run's ``.npz``, loadable with ``Trajectory.load``).

    Raises
    ------
    ValueError
        On a bad argument (named in the message), or if ``out`` holds a sweep with other settings.
    FolderLockedError
        If another live sweep holds the lock ``out/sweep.lock`` (the message names its process id);
        a lock left by a dead process is taken over.
    """
    settings = _settings(sigma, d_in, d_out, t_final, gradient_atol, rtol, atol, n_samples)
    grid = _grid(depths, widths, init_scales, seeds)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, numbers.Integral) or n_workers < 1):
        raise ValueError(f"n_workers must be a positive integer; got {n_workers!r}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False; got {progress!r}")
    out = os.fspath(out)
    if not out:
        raise ValueError("out must name a folder; got ''")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out = {out!r} is a file, not a folder")
    os.makedirs(out, exist_ok=True)
    lock = lock_folder(out, _LOCK, "another sweep")
    try:
        return _sweep(out, settings, grid, scheduler, n_workers, processes, progress)
    finally:
        os.unlink(lock)


def _sweep(out, settings, grid, scheduler, n_workers, processes, progress):
    runs = _prepare_folder(out, settings)
    names = [run_name(**spec) for spec in grid]
    rows = {}
    for name in names:
        path = os.path.join(runs, name + ".npz")
        if os.path.exists(path):
            rows[name] = _row(name, _read_run(path), path)
    todo = [spec for spec, name in zip(grid, names) if name not in rows]
    index = os.path.join(out, "index.json")
    bar = tqdm(total=len(grid), initial=len(rows), desc="sweep", unit="run", disable=None if progress else True)
    with bar:
        if todo:
            _compute(todo, settings, runs, rows, bar, index, scheduler, n_workers, processes)
        write_json(index, [rows[name] for name in names if name in rows])
    return _frame([rows[name] for name in names])


def _compute(todo, settings, runs, rows, bar, index, scheduler, n_workers, processes):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError("sweep needs dask.distributed: pip install 'quotient[sweep]'") from None

    if scheduler is None:
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=processes, dashboard_address=":0"
        )  # a free port for the dashboard: the default 8787 may be taken
        client = Client(cluster)
    elif isinstance(scheduler, Client):
        cluster, client = None, scheduler
    elif isinstance(scheduler, str):
        cluster, client = None, Client(scheduler)
    else:
        raise TypeError(f"scheduler must be None, an address like 'tcp://host:8786' or a distributed.Client; got {scheduler!r}")
    try:
        futures = {client.submit(_run, spec, settings, pure=False): spec for spec in todo}
        for future in as_completed(futures):
            trajectory = future.result()
            name = run_name(**futures[future])
            path = os.path.join(runs, name + ".npz")
            trajectory.save(path)
            rows[name] = _row(name, trajectory.meta, path)
            write_json(index, list(rows.values()))
            bar.update()
    finally:
        if cluster is not None or isinstance(scheduler, str):
            client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------------------------------- config files
def read_config(path) -> dict:
    """Keyword arguments of :func:`sweep` from a TOML file (format in docs/flow.md, section Sweeps).

    A relative ``out`` is taken relative to the folder of the TOML file, so the sweep is found
    again from any working directory.

    Raises
    ------
    ValueError
        If the file is not valid TOML, holds an unknown section or key, or lacks a required one;
        the message names the key.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as stream:
            document = tomllib.load(stream)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a text (TOML) file: {error}") from None
    config = {}
    for key, value in document.items():
        if isinstance(value, dict):
            if key not in _CONFIG_KEYS or key is None:
                raise ValueError(f"{path}: unknown section [{key}]; known sections: {', '.join(k for k in _CONFIG_KEYS if k)}")
            for inner, item in value.items():
                if inner not in _CONFIG_KEYS[key]:
                    raise ValueError(f"{path}: unknown key '{key}.{inner}'; [{key}] takes {', '.join(_CONFIG_KEYS[key])}")
                config[inner] = item
        elif key in _CONFIG_KEYS[None]:
            config[key] = value
        else:
            raise ValueError(f"{path}: unknown key '{key}' at the top level; it takes out and the sections [problem], [grid], [flow], [cluster]")
    for key, section in (("sigma", "problem"), *((name, "grid") for name in _GRID)):
        if key not in config:
            raise ValueError(f"{path}: missing key '{section}.{key}'")
    scheduler = config.get("scheduler")
    if scheduler is not None and not isinstance(scheduler, str):
        raise ValueError(f"{path}: cluster.scheduler must be an address string like 'tcp://host:8786' or 'local'; got {scheduler!r}")
    if scheduler == "local":
        config["scheduler"] = None
    if "processes" in config and not isinstance(config["processes"], bool):
        raise ValueError(f"{path}: cluster.processes must be true or false; got {config['processes']!r}")
    if "out" in config:
        if not isinstance(config["out"], str) or not config["out"]:
            raise ValueError(f"{path}: out must be a folder name (a non-empty string); got {config['out']!r}")
        config["out"] = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.expanduser(config["out"]))
    sections = {key: section for section, keys in _CONFIG_KEYS.items() if section for key in keys}
    try:  # validate now, so that a bad value is reported with its section before anything runs
        _settings(*(config.get(key, default) for key, default in zip(_SETTINGS, _DEFAULTS)))
        _grid(*(config[key] for key in _GRID))
    except (TypeError, ValueError) as error:
        key = str(error).split(" ", 1)[0]
        raise ValueError(f"{path}: {sections.get(key, '?')}.{error}") from None
    return config
