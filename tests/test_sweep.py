"""Sweeps on dask (quotient/sweep.py) and `quotient sweep`."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import quotient as q
from quotient.cli import main
from quotient.sweep import FolderLockedError, load_sweep, read_config, run_name

GRID = {"sigma": [2.0, 1.0], "depths": [1, 2], "widths": [3], "init_scales": [0.1, 0.01], "seeds": 2}
FLOW = {"t_final": 200.0, "gradient_atol": 1e-6, "n_samples": 101}


def _files(folder):
    runs = folder / "runs"
    return {name: (os.stat(runs / name).st_ino, os.stat(runs / name).st_mtime_ns) for name in os.listdir(runs) if name.endswith(".npz")}


def test_tiny_sweep_on_a_local_cluster(tmp_path):
    table = q.sweep(tmp_path / "s", **GRID, **FLOW, processes=False, n_workers=2, progress=False)
    assert len(table) == 8 and list(table["run"]) == [
        run_name(d, 3, s, k) for d in (1, 2) for s in (0.1, 0.01) for k in (0, 1)
    ]
    assert set(_files(tmp_path / "s")) == {name + ".npz" for name in table["run"]}
    assert table["converged"].all() and (table["final_loss"] < 1e-9).all()
    # oracle: one run redone by hand with gradient_flow
    row = table.iloc[5]  # depth 2, scale 0.1, seed 1
    problem = q.Problem.from_sigma([2.0, 1.0], (2, 3, 2))
    alone = q.gradient_flow(problem, q.init.small_random((2, 3, 2), 0.1, rng=1), 200.0, rtol=1e-8, atol=1e-10,
                            t_eval=101, gradient_atol=1e-6, progress=False)  # fmt: skip
    assert (row["depth"], row["init_scale"], row["seed"]) == (2, 0.1, 1)
    assert row["final_loss"] == alone.loss[-1] and row["t_stop"] == alone.times[-1] and row["n_rhs"] == alone.n_rhs
    stored = q.Trajectory.load(row["path"])
    assert np.array_equal(stored.loss, alone.loss)
    # critical values visited: every run from 0.01 at depth 2 passes the origin's value first
    for _, run in table[(table["depth"] == 2) & (table["init_scale"] == 0.01)].iterrows():
        assert run["visited"][0] == () and run["visited"][-1] == (1, 2)
        assert run["plateau_values"][0] == pytest.approx(2.5) and len(run["plateau_starts"]) == run["n_plateaus"]
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    assert len(index) == 8 and index[5]["final_loss"] == row["final_loss"]
    reloaded = load_sweep(tmp_path / "s").set_index("run").loc[table["run"]]
    assert np.array_equal(reloaded["final_loss"].to_numpy(), table["final_loss"].to_numpy())


def test_a_scheduler_address_is_accepted(tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        table = q.sweep(tmp_path / "s", **{**GRID, "depths": [2], "seeds": 1}, **FLOW,
                        scheduler=cluster.scheduler_address, progress=False)  # fmt: skip
    assert len(table) == 2 and table["converged"].all()


def test_a_killed_sweep_resumes_with_nothing_recomputed_or_lost(tmp_path):
    """`quotient sweep` in a subprocess, killed (SIGKILL) after some runs are stored, then resumed."""
    config = tmp_path / "sweep.toml"
    out = tmp_path / "killed"
    config.write_text(
        f'out = "{out}"\n[problem]\nsigma = [3.0, 2.0, 1.0]\n'
        "[grid]\ndepths = [3]\nwidths = [4]\ninit_scales = [0.01]\nseeds = 6\n"
        "[flow]\nt_final = 1e5\ngradient_atol = 1e-6\nn_samples = 201\n"
        "[cluster]\nprocesses = false\nn_workers = 1\n"
    )
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "quotient.cli", "sweep", str(config), "--quiet"],
                                   stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
    deadline = time.monotonic() + 300
    try:
        while not (out / "runs").is_dir() or len(_files(out)) < 2:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the sweep stored no run in 300 s"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    before = _files(out)
    assert 2 <= len(before) < 6, f"kill the sweep midway: {len(before)} of 6 runs were stored"
    arguments = read_config(config)
    del arguments["out"]
    resumed = q.sweep(out, **{**arguments, "n_workers": 2}, progress=False)
    after = _files(out)
    assert len(after) == 6 and set(resumed["path"].map(os.path.basename)) == set(after)
    for name, identity in before.items():
        assert after[name] == identity  # the same file, never rewritten
    # nothing lost: the same outcomes as an uninterrupted sweep
    fresh = q.sweep(tmp_path / "fresh", **{**arguments, "n_workers": 2}, progress=False)
    for column in ("run", "final_loss", "t_stop", "n_rhs", "visited", "plateau_starts"):
        assert list(resumed[column]) == list(fresh[column]), column
    assert not [name for name in os.listdir(out / "runs") if not name.endswith(".npz")]


def test_resuming_with_other_settings_is_refused(tmp_path):
    q.sweep(tmp_path / "s", **{**GRID, "depths": [1], "seeds": 1}, **FLOW, processes=False, n_workers=1, progress=False)
    with pytest.raises(ValueError, match=r"rtol = 1e-08.*rtol = 1e-09"):
        q.sweep(tmp_path / "s", **{**GRID, "depths": [1], "seeds": 1}, **FLOW, rtol=1e-9, processes=False, progress=False)
    record = tmp_path / "s" / "sweep.json"
    stored = json.loads(record.read_text())
    stored["settings"]["gradient_tol"] = stored["settings"].pop("gradient_atol")  # a folder from before issue 15
    record.write_text(json.dumps(stored))
    before = _files(tmp_path / "s")
    q.sweep(tmp_path / "s", **{**GRID, "depths": [1], "seeds": 1}, **FLOW, processes=False, n_workers=1, progress=False)
    assert _files(tmp_path / "s") == before  # resumed: nothing recomputed
    with pytest.raises(ValueError, match=r"gradient_atol = 1e-06.*gradient_atol = 1e-05"):
        q.sweep(tmp_path / "s", **{**GRID, "depths": [1], "seeds": 1}, **{**FLOW, "gradient_atol": 1e-5}, processes=False, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="no sweep.json"):
        q.sweep(tmp_path / "other", **GRID, **FLOW, progress=False)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"depths": [0]}, "depths must hold integers >= 1"),
        ({"widths": []}, "widths must hold at least one value"),
        ({"init_scales": [0.1, -1.0]}, "init_scales must be a positive number"),
        ({"seeds": [1, 1]}, "seeds holds a value twice"),
        ({"sigma": [1.0, 2.0]}, "non-increasing"),
        ({"sigma": [1.0], "d_in": 2, "d_out": 3}, "min\\(d_in, d_out\\) = 2"),
        ({"n_samples": 1}, "n_samples must be an integer >= 2"),
        ({"t_final": float("inf")}, "t_final must be a positive number"),
        ({"n_workers": 0}, "n_workers must be a positive integer"),
    ],
)
def test_bad_arguments_are_named(tmp_path, change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        q.sweep(tmp_path / "s", **{**GRID, **FLOW, **change}, progress=False)
    assert not (tmp_path / "s").exists()  # nothing written before the arguments are checked


@pytest.mark.parametrize(
    "text, message",
    [
        ("[grid]\ndepths = [1]\nwidths = [2]\ninit_scales = [0.1]\nseeds = 1\n", "missing key 'problem.sigma'"),
        ("[problem]\nsigma = [1.0]\n[grid]\ndepths = [1]\nwidths = [2]\ninit_scale = [0.1]\nseeds = 1\n", "unknown key 'grid.init_scale'"),
        ("[problem]\nsigma = [1.0]\n[grid]\ndepths = [1]\nwidths = [2]\ninit_scales = [0.1]\nseeds = 1\n[solver]\nx = 1\n", r"unknown section \[solver\]"),
        ("[problem]\nsigma = [1.0]\n[grid]\ndepths = [1.5]\nwidths = [2]\ninit_scales = [0.1]\nseeds = 1\n", "grid.depths must hold integers"),
        ("[problem]\nsigma = [1.0]\n[grid]\ndepths = [1]\nwidths = [2]\ninit_scales = [0.1]\nseeds = 1\n[flow]\nrtol = 0\n", "flow.rtol must be a positive number"),
        ("[problem]\nsigma = [1.0]\n[grid]\ndepths = [1]\nwidths = [2]\ninit_scales = [0.1]\nseeds = 1\n[cluster]\nprocesses = 1\n", "cluster.processes must be true or false"),
        ("[problem\nsigma = 1", "not valid TOML"),
    ],
)
def test_bad_config_files_are_reported_with_the_key(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_config(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "quotient sweep: error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_sweep_writes_the_table(tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text(
        "[problem]\nsigma = [2.0, 1.0]\n[grid]\ndepths = [2]\nwidths = [3]\ninit_scales = [0.1]\nseeds = [4, 7]\n"
        "[flow]\nt_final = 100.0\n[cluster]\nprocesses = false\nn_workers = 1\n"
    )
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "2 runs" in printed and "2 converged" in printed
    table = load_sweep(tmp_path / "out")
    assert sorted(table["seed"]) == [4, 7]
    assert (tmp_path / "out" / "outcomes.csv").read_text().startswith("run,depth,width,init_scale,seed")


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


TINY = {**GRID, "depths": [2], "init_scales": [0.1], "seeds": 1}


def test_a_second_sweep_refuses_a_locked_folder_and_takes_over_a_stale_lock(tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()
    (out / "sweep.lock").write_text(str(os.getppid()))  # a live process holds it
    with pytest.raises(FolderLockedError, match=f"in use by another sweep of process {os.getppid()}"):
        q.sweep(out, **TINY, **FLOW, processes=False, n_workers=1, progress=False)
    assert os.listdir(out) == ["sweep.lock"]  # nothing else touched
    config = tmp_path / "sweep.toml"
    config.write_text('out = "s"\n[problem]\nsigma = [2.0, 1.0]\n[grid]\ndepths = [2]\nwidths = [3]\ninit_scales = [0.1]\nseeds = 1\n'
                      "[flow]\nt_final = 200.0\n[cluster]\nprocesses = false\nn_workers = 1\n")  # fmt: skip
    assert main(["sweep", str(config), "--quiet"]) == 2
    assert f"process {os.getppid()}" in capsys.readouterr().err
    (out / "sweep.lock").write_text(str(_dead_pid()))  # left by a killed sweep
    table = q.sweep(out, **TINY, **FLOW, processes=False, n_workers=1, progress=False)
    assert len(table) == 1 and not (out / "sweep.lock").exists()


def test_out_in_the_file_is_relative_to_the_file(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "sweep.toml").write_text('out = "results"\n[problem]\nsigma = [2.0, 1.0]\n[grid]\ndepths = [2]\nwidths = [3]\n'
                                       "init_scales = [0.1]\nseeds = 1\n[flow]\nt_final = 200.0\n"
                                       "[cluster]\nprocesses = false\nn_workers = 1\n")  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert read_config(folder / "sweep.toml")["out"] == str(folder / "results")
    assert main(["sweep", str(folder / "sweep.toml"), "--quiet"]) == 0
    assert os.listdir(elsewhere) == [] and (folder / "results" / "outcomes.csv").exists()


def test_temporary_files_of_a_live_sweep_are_never_deleted(tmp_path):
    out = tmp_path / "s"
    q.sweep(out, **TINY, **FLOW, processes=False, n_workers=1, progress=False)
    live = out / "runs" / f".depth2-width3-scale0.1-seed5.npz.{os.getppid()}.abc.partial"
    dead = out / "runs" / f".depth2-width3-scale0.1-seed6.npz.{_dead_pid()}.abc.partial"
    live.write_bytes(b"being written")
    dead.write_bytes(b"left by a killed sweep")
    q.sweep(out, **TINY, **FLOW, processes=False, n_workers=1, progress=False)
    assert live.exists() and not dead.exists()
    mode = os.stat(out / "index.json").st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600
