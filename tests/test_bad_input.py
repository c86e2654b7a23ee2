"""A table of bad inputs to the command line and the API, each expecting its clear error.

Every case is ``(id, kind, call, expected, fragment)``:

- ``kind == "cli"``: ``call`` is the argument list of ``quotient.cli.main`` (``{tmp}`` stands for a
  scratch folder holding the files of :func:`_fixtures`); it must return 2 and print exactly one
  line on standard error, ``quotient <command>: error: ...``, containing ``fragment``.
- ``kind == "api"``: ``call(tmp)`` must raise ``expected`` (a class, or the name of one in
  ``quotient``) with ``fragment`` in its message.

:func:`outcome` sorts what a case does into clear / unclear (the expected kind of error, but a
message lacking the fragment, or several lines) / traceback (another exception) / silent (no
error) / hang; run this file as a script (``python tests/test_bad_input.py``) to count them on
the package found on ``PYTHONPATH``, e.g. an older commit.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import quotient as q
from quotient import init
from quotient.problem import Problem

PROBLEM = Problem.from_sigma([2.0, 1.0], (2, 3, 2))
POINT = init.small_random((2, 3, 2), 0.1, rng=0)
G = (np.eye(3),)
BATCH = tuple(np.stack(layers) for layers in zip(POINT, POINT))
EMPTY = (np.ones((0, 3, 2)), np.ones((0, 2, 3)))
SMALL = ["--quiet", "--t-final", "1", "--out", "{out}"]
FIBER = ["--samples", "3", "--out", "{out}"]


def _fixtures(tmp: Path) -> None:
    """The files the cases read: corrupt, foreign and contradicting ones."""
    rng = np.random.default_rng(0)
    (tmp / "afile.txt").write_text("not a folder\n")
    (tmp / "text.npz").write_text("hello, I am text\n")
    np.savez(tmp / "good.npz", X=rng.standard_normal((2, 9)), Y=rng.standard_normal((2, 9)))
    (tmp / "truncated.npz").write_bytes((tmp / "good.npz").read_bytes()[:200])
    np.savez(tmp / "foreign.npz", a=np.zeros(3))
    np.savez(tmp / "noxy.npz", a=np.zeros(3))
    np.savez(tmp / "nan.npz", X=np.full((2, 5), np.nan), Y=np.ones((2, 5)))
    np.savez(tmp / "mismatch.npz", X=np.ones((2, 5)), Y=np.ones((2, 6)))
    np.savez(tmp / "data23.npz", X=rng.standard_normal((2, 9)), Y=rng.standard_normal((3, 9)))
    np.save(tmp / "cube.npy", np.ones((2, 2, 2)))
    np.savez(tmp / "wrongtag.npz", meta=np.array('{"format": "someone.else/1"}'))
    np.savez(tmp / "badmeta.npz", meta=np.array("{not json"))
    (tmp / "data.csv").write_text("1,2\n3,4\n")
    (tmp / "results").mkdir()
    (tmp / "results" / "summary.md").write_text("earlier run\n")
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "notes.txt").write_text("mine\n")
    base = "[problem]\nsigma = [2.0, 1.0]\n[grid]\ndepths = [2]\nwidths = [3]\ninit_scales = [0.1]\n"
    tomls = {
        "bad_toml": "this is = = not toml",
        "neg_seeds": base + "seeds = -2\n",
        "unknown_key": base + "seeds = 1\ncolour = 3\n",
        "no_depths": base.replace("depths = [2]\n", "") + "seeds = 1\n",
        "neg_sigma": base.replace("[2.0, 1.0]", "[2.0, -1.0]") + "seeds = 1\n",
        "zero_depth": base.replace("[2]", "[0]") + "seeds = 1\n",
        "zero_scale": base.replace("[0.1]", "[0.0]") + "seeds = 1\n",
        "inf_time": base + "seeds = 1\n[flow]\nt_final = inf\n",
        "out_file": 'out = "afile.txt"\n' + base + "seeds = 1\n",
        "bad_scheduler": base + "seeds = 1\n[cluster]\nscheduler = 5\n",
        "float_seed": base + "seeds = [0.5]\n",
    }
    for name, text in tomls.items():
        (tmp / f"{name}.toml").write_text(text)


def _format_error(name: str):
    return getattr(q, "FileFormatError", name)


def cli(*argv, fragment):
    return ("cli", list(argv), None, fragment)


def api(call, expected, fragment):
    return ("api", call, expected, fragment)


def _sweep(tmp, **overrides):
    settings = dict(sigma=[2.0, 1.0], depths=[2], widths=[3], init_scales=[0.1], seeds=[0], progress=False)
    settings.update(overrides)
    return q.sweep(overrides.pop("out", tmp / "sw"), **{k: v for k, v in settings.items() if k != "out"})


def _trajectory():
    return q.gradient_flow(PROBLEM, POINT, 1.0, t_eval=3, progress=False)


def _save_into_missing_folder(tmp):
    _trajectory().save(tmp / "no" / "such" / "run.npz")


def _load_sweep_with_corrupt_run(tmp):
    out = tmp / "swc"
    (out / "runs").mkdir(parents=True)
    (out / "sweep.json").write_text('{"format": "quotient.sweep/1", "settings": {}}')
    (out / "runs" / "depth2-width3-scale0.1-seed0.npz").write_bytes(b"PK\x03\x04garbage")
    q.load_sweep(out)


def _ensemble_load(tmp, name):
    q.Ensemble.load(tmp / name)


CASES = {
    # ------------------------------------------------------------------ explore: widths and depth
    "widths negative": cli("explore", "--widths", "4,-3,4", *SMALL, fragment="--widths"),
    "widths empty": cli("explore", "--widths", "", *SMALL, fragment="--widths"),
    "widths one": cli("explore", "--widths", "4", *SMALL, fragment="--widths"),
    "widths letters": cli("explore", "--widths", "a,b", *SMALL, fragment="--widths"),
    "widths zero": cli("explore", "--widths", "4,0,4", *SMALL, fragment="--widths"),
    "widths float": cli("explore", "--widths", "4,2.5,4", *SMALL, fragment="--widths"),
    "widths no value": cli("explore", *SMALL, "--widths", fragment="--widths"),
    "depth contradicts widths": cli("explore", "--depth", "2", "--widths", "4,8,8,8,4", *SMALL, fragment="--depth"),
    "depth zero": cli("explore", "--depth", "0", *SMALL, fragment="--depth"),
    "depth negative": cli("explore", "--depth", "-2", *SMALL, fragment="--depth"),
    "depth float": cli("explore", "--depth", "1.5", *SMALL, fragment="--depth"),
    # ------------------------------------------------------------------ explore: sigma
    "sigma negative": cli("explore", "--sigma", "-1,3,2,1", *SMALL, fragment="--sigma"),
    "sigma= negative": cli("explore", "--sigma=-1,3,2,1", *SMALL, fragment="--sigma"),
    "sigma increasing": cli("explore", "--sigma", "1,2,3,4", *SMALL, fragment="--sigma"),
    "sigma too short": cli("explore", "--sigma", "5,3", *SMALL, fragment="--sigma"),
    "sigma too long": cli("explore", "--widths", "2,3,2", "--sigma", "3,2,1", *SMALL, fragment="--sigma"),
    "sigma nan": cli("explore", "--sigma", "nan,1,1,1", *SMALL, fragment="--sigma"),
    "sigma inf": cli("explore", "--sigma", "inf,1,1,1", *SMALL, fragment="--sigma"),
    "sigma letters": cli("explore", "--sigma", "x", *SMALL, fragment="--sigma"),
    "sigma empty": cli("explore", "--sigma", "", *SMALL, fragment="--sigma"),
    # ------------------------------------------------------------------ explore: numbers
    "init-scale zero": cli("explore", "--init-scale", "0", *SMALL, fragment="--init-scale"),
    "init-scale negative": cli("explore", "--init-scale", "-1", *SMALL, fragment="--init-scale"),
    "init-scale nan": cli("explore", "--init-scale", "nan", *SMALL, fragment="--init-scale"),
    "init-scale inf": cli("explore", "--init-scale", "inf", *SMALL, fragment="--init-scale"),
    "init-scale overflow": cli("explore", "--init-scale", "1e200", *SMALL, fragment="--init-scale"),
    "init-scale beyond float64": cli("explore", "--init-scale", "1e3", "--quiet", "--out", "{out}", fragment="below the resolution of float64"),
    "widths too many modes": cli("explore", "--widths", "40,40,40", *SMALL, fragment="--widths"),
    "fiber too many modes": cli("fiber", *FIBER, "--widths", "30,30,30", fragment="--widths"),
    "init-scale letters": cli("explore", "--init-scale", "big", *SMALL, fragment="--init-scale"),
    "seed negative": cli("explore", "--seed", "-1", *SMALL, fragment="--seed"),
    "seed float": cli("explore", "--seed", "1.5", *SMALL, fragment="--seed"),
    "t-final inf": cli("explore", *SMALL, "--t-final", "inf", fragment="--t-final"),
    "t-final nan": cli("explore", *SMALL, "--t-final", "nan", fragment="--t-final"),
    "t-final zero": cli("explore", *SMALL, "--t-final", "0", fragment="--t-final"),
    "t-final negative": cli("explore", *SMALL, "--t-final", "-1", fragment="--t-final"),
    "gradient-atol zero": cli("explore", "--gradient-atol", "0", *SMALL, fragment="--gradient-atol"),
    "gradient-atol negative": cli("explore", "--gradient-atol", "-1", *SMALL, fragment="--gradient-atol"),
    "gradient-atol nan": cli("explore", "--gradient-atol", "nan", *SMALL, fragment="--gradient-atol"),
    "method unknown": cli("explore", "--method", "NOPE", *SMALL, fragment="--method"),
    # ------------------------------------------------------------------ explore: files
    "out is a file": cli("explore", "--quiet", "--t-final", "1", "--out", "{tmp}/afile.txt", fragment="--out"),
    "out empty": cli("explore", "--quiet", "--t-final", "1", "--out", "", fragment="--out"),
    "out holds results": cli("explore", "--quiet", "--t-final", "1", "--out", "{tmp}/results", fragment="--overwrite"),
    "out holds other files": cli("explore", "--quiet", "--t-final", "1", "--out", "{tmp}/foreign", "--overwrite", fragment="--out"),
    "data missing": cli("explore", "--data", "{tmp}/missing.npz", *SMALL, fragment="--data"),
    "data truncated": cli("explore", "--data", "{tmp}/truncated.npz", *SMALL, fragment="--data"),
    "data text": cli("explore", "--data", "{tmp}/text.npz", *SMALL, fragment="--data"),
    "data no X Y": cli("explore", "--data", "{tmp}/noxy.npz", *SMALL, fragment="--data"),
    "data and sigma": cli("explore", "--data", "{tmp}/good.npz", "--sigma", "2,1", *SMALL, fragment="--sigma"),
    "data csv": cli("explore", "--data", "{tmp}/data.csv", *SMALL, fragment="--data"),
    "data nan": cli("explore", "--data", "{tmp}/nan.npz", *SMALL, fragment="--data"),
    "data samples mismatch": cli("explore", "--data", "{tmp}/mismatch.npz", *SMALL, fragment="--data"),
    "data contradicts widths": cli("explore", "--data", "{tmp}/data23.npz", "--widths", "2,3,2", *SMALL, fragment="--widths"),
    "data cube": cli("explore", "--data", "{tmp}/cube.npy", *SMALL, fragment="--data"),
    # ------------------------------------------------------------------ the parser
    "unknown option": cli("explore", "--colour", "red", *SMALL, fragment="--colour"),
    "no command": cli(fragment="command"),
    "unknown command": cli("bogus", fragment="bogus"),
    # ------------------------------------------------------------------ fiber
    "fiber samples zero": cli("fiber", *FIBER, "--samples", "0", fragment="--samples"),
    "fiber samples negative": cli("fiber", *FIBER, "--samples", "-5", fragment="--samples"),
    "fiber samples huge": cli("fiber", *FIBER, "--samples", "1000000000", fragment="--samples"),
    "fiber spread negative": cli("fiber", *FIBER, "--spread", "-1", fragment="--spread"),
    "fiber spread nan": cli("fiber", *FIBER, "--spread", "nan", fragment="--spread"),
    "fiber learned too large": cli("fiber", *FIBER, "--learned", "7", fragment="--learned"),
    "fiber learned zero": cli("fiber", *FIBER, "--learned", "0", fragment="--learned"),
    "fiber learned letters": cli("fiber", *FIBER, "--learned", "a", fragment="--learned"),
    "fiber learned twice": cli("fiber", *FIBER, "--learned", "1,1", fragment="--learned"),
    "fiber seed negative": cli("fiber", *FIBER, "--seed", "-1", fragment="--seed"),
    "fiber widths negative": cli("fiber", *FIBER, "--widths", "3,-3,3", fragment="--widths"),
    "fiber out is a file": cli("fiber", "--samples", "3", "--out", "{tmp}/afile.txt", fragment="--out"),
    "fiber depth contradicts": cli("fiber", *FIBER, "--depth", "2", "--widths", "3,3,3,3", fragment="--depth"),
    "fiber sigma negative": cli("fiber", *FIBER, "--sigma", "-2,1,1", fragment="--sigma"),
    # ------------------------------------------------------------------ sweep
    "sweep missing config": cli("sweep", "{tmp}/missing.toml", "--quiet", fragment="missing.toml"),
    "sweep bad toml": cli("sweep", "{tmp}/bad_toml.toml", "--quiet", fragment="TOML"),
    "sweep negative seeds": cli("sweep", "{tmp}/neg_seeds.toml", "--quiet", fragment="seeds"),
    "sweep unknown key": cli("sweep", "{tmp}/unknown_key.toml", "--quiet", fragment="colour"),
    "sweep missing depths": cli("sweep", "{tmp}/no_depths.toml", "--quiet", fragment="depths"),
    "sweep negative sigma": cli("sweep", "{tmp}/neg_sigma.toml", "--quiet", fragment="sigma"),
    "sweep zero depth": cli("sweep", "{tmp}/zero_depth.toml", "--quiet", fragment="depths"),
    "sweep zero scale": cli("sweep", "{tmp}/zero_scale.toml", "--quiet", fragment="init_scales"),
    "sweep infinite time": cli("sweep", "{tmp}/inf_time.toml", "--quiet", fragment="t_final"),
    "sweep out is a file": cli("sweep", "{tmp}/out_file.toml", "--quiet", fragment="afile.txt"),
    "sweep bad scheduler": cli("sweep", "{tmp}/bad_scheduler.toml", "--quiet", fragment="scheduler"),
    "sweep float seed": cli("sweep", "{tmp}/float_seed.toml", "--quiet", fragment="seeds"),
    "sweep --out is a file": cli("sweep", "{tmp}/neg_sigma.toml", "--out", "{tmp}/afile.txt", "--quiet", fragment="sigma"),
    # ------------------------------------------------------------------ problem, network, init
    "from_sigma negative": api(lambda t: Problem.from_sigma([1.0, -1.0], (2, 2, 2)), ValueError, "sigma"),
    "from_sigma increasing": api(lambda t: Problem.from_sigma([1.0, 2.0], (2, 2, 2)), ValueError, "sigma"),
    "from_sigma text": api(lambda t: Problem.from_sigma("abc", (2, 2, 2)), TypeError, "sigma"),
    "from_sigma 3-D": api(lambda t: Problem.from_sigma(np.ones((2, 2, 2)), (2, 2, 2)), ValueError, "sigma"),
    "from_sigma widths zero": api(lambda t: Problem.from_sigma([1.0], (2, 0, 1)), ValueError, "widths"),
    "from_sigma widths float": api(lambda t: Problem.from_sigma([1.0], (1, 2.5, 1)), ValueError, "widths"),
    "from_sigma widths text": api(lambda t: Problem.from_sigma([1.0], "abc"), TypeError, "widths"),
    "from_data mismatch": api(lambda t: Problem.from_data(np.ones((2, 4)), np.ones((2, 5)), (2, 2, 2)), ValueError, "X and Y"),
    "from_data rcond negative": api(lambda t: Problem.from_data(np.eye(2), np.eye(2), (2, 2, 2), rcond=-1), ValueError, "rcond"),
    "from_data rcond nan": api(lambda t: Problem.from_data(np.eye(2), np.eye(2), (2, 2, 2), rcond=np.nan), ValueError, "rcond"),
    "loss bad point": api(lambda t: PROBLEM.loss((np.ones((3, 3)), np.ones((2, 3)))), ValueError, "point"),
    "hessian too large": api(lambda t: Problem.from_sigma(np.ones(100), (100, 100, 100)).hessian(init.small_random((100, 100, 100))),
                             ValueError, "HESSIAN_LIMIT"),
    "hvp bad direction": api(lambda t: PROBLEM.hvp(POINT, (np.ones((3, 3)),)), ValueError, "direction"),
    "small_random scale negative": api(lambda t: init.small_random((2, 3, 2), -1.0), ValueError, "scale"),
    "small_random scale nan": api(lambda t: init.small_random((2, 3, 2), np.nan), ValueError, "scale"),
    "small_random rng text": api(lambda t: init.small_random((2, 3, 2), rng="seed"), TypeError, "rng"),
    "small_random rng negative": api(lambda t: init.small_random((2, 3, 2), rng=-1), ValueError, "rng"),
    "small_random rng float": api(lambda t: init.small_random((2, 3, 2), rng=1.5), TypeError, "rng"),
    "orthogonal scale inf": api(lambda t: init.orthogonal((2, 3, 2), np.inf), ValueError, "scale"),
    "balanced end_to_end shape": api(lambda t: init.balanced((2, 3, 2), np.ones((3, 3))), ValueError, "end_to_end"),
    "decoupled strengths nan": api(lambda t: init.decoupled((2, 2, 2), [np.nan]), ValueError, "strengths"),
    "spectral u 2-D": api(lambda t: init.spectral((2, 2, 2), np.ones((2, 2))), ValueError, "u"),
    "check_widths one": api(lambda t: q.network.check_widths((3,)), ValueError, "widths"),
    "from_vector length": api(lambda t: q.from_vector(np.ones(5), (2, 3, 2)), ValueError, "x"),
    "from_adjacency shape": api(lambda t: q.from_adjacency(np.ones((3, 3)), (2, 3, 2)), ValueError, "A"),
    "end_to_end empty": api(lambda t: q.end_to_end(()), ValueError, "point"),
    "to_vector text": api(lambda t: q.to_vector("abc"), TypeError, "point"),
    "conserved mismatched": api(lambda t: q.conserved_quantities((np.ones((3, 2)), np.ones((2, 4)))), ValueError, "point"),
    # ------------------------------------------------------------------ symmetry and orbit
    "act g shape": api(lambda t: q.act(POINT, (np.eye(2),)), ValueError, "g"),
    "act group": api(lambda t: q.act(POINT, G, group="xx"), ValueError, "group"),
    "random_gl spread negative": api(lambda t: q.random_gl((2, 3, 2), spread=-1), ValueError, "spread"),
    "random_orthogonal widths": api(lambda t: q.random_orthogonal((2, 0, 2)), ValueError, "widths"),
    "inverse singular": api(lambda t: q.inverse((np.zeros((3, 3)),)), ValueError, "singular"),
    "compose lengths": api(lambda t: q.compose(G, G + G), ValueError, "g and k"),
    "vertical_space rtol negative": api(lambda t: q.vertical_space(POINT, rtol=-1.0), ValueError, "rtol"),
    "vertical_space rtol nan": api(lambda t: q.vertical_space(POINT, rtol=np.nan), ValueError, "rtol"),
    "horizontal tangent shape": api(lambda t: q.horizontal_projection(POINT, (np.ones((3, 3)),)), ValueError, "tangent"),
    "vertical_vector xi shape": api(lambda t: q.vertical_vector(POINT, (np.eye(2),)), ValueError, "xi"),
    "orbit_infimum rtol negative": api(lambda t: q.orbit_infimum(POINT, rtol=-1.0), ValueError, "rtol"),
    "is_closed_orbit rtol nan": api(lambda t: q.is_closed_orbit(POINT, rtol=np.nan), ValueError, "rtol"),
    "balanced_lift W shape": api(lambda t: q.balanced_lift(np.ones((3, 3)), (2, 3, 2)), ValueError, "W"),
    "balanced_lift rtol negative": api(lambda t: q.balanced_lift(np.eye(2), (2, 3, 2), rtol=-1.0), ValueError, "rtol"),
    "balance method": api(lambda t: q.balance(POINT, method="x"), ValueError, "method"),
    "balance balance_rtol negative": api(lambda t: q.balance(POINT, balance_rtol=-1.0), ValueError, "balance_rtol"),
    "align n_starts zero": api(lambda t: q.align_orthogonal(POINT, POINT, n_starts=0), ValueError, "n_starts"),
    "align rtol negative": api(lambda t: q.align_orthogonal(POINT, POINT, rtol=-1.0), ValueError, "rtol"),
    "align max_sweeps zero": api(lambda t: q.align_orthogonal(POINT, POINT, max_sweeps=0), ValueError, "max_sweeps"),
    "balance_rescaling rtol zero": api(lambda t: q.balance_rescaling(POINT, rtol=0.0), ValueError, "rtol"),
    "balance_rescaling iterations": api(lambda t: q.balance_rescaling(POINT, max_iterations=0), ValueError, "max_iterations"),
    # ------------------------------------------------------------------ modes, losses, discretisation
    "mode_solution sigma negative": api(lambda t: q.mode_solution(-1.0, 0.1, [0.0, 1.0], 2), ValueError, "sigma"),
    "mode_solution t negative": api(lambda t: q.mode_solution(1.0, 0.1, [-1.0], 2), ValueError, "t"),
    "mode_solution depth zero": api(lambda t: q.mode_solution(1.0, 0.1, [1.0], 0), ValueError, "depth"),
    "mode_time depth float": api(lambda t: q.mode_time(1.0, 0.1, 0.5, 1.5), ValueError, "depth"),
    "learning_time fraction": api(lambda t: q.learning_time(1.0, 0.1, 2, fraction=1.5), ValueError, "fraction"),
    "chain_time target": api(lambda t: q.chain_time(1.0, [0.1, 0.1], 2.0), ValueError, "target"),
    "predict fraction": api(lambda t: q.predict_plateaus(PROBLEM, POINT, fraction=0.0), ValueError, "fraction"),
    "predict rtol negative": api(lambda t: q.predict_plateaus(PROBLEM, POINT, rtol=-1.0), ValueError, "rtol"),
    "covariance not PSD": api(lambda t: q.CovarianceSquareLoss(-np.eye(2), np.eye(2)), ValueError, "input_covariance"),
    "pseudo-huber delta": api(lambda t: q.PseudoHuberLoss(np.eye(2), 0.0), ValueError, "delta"),
    "logistic samples": api(lambda t: q.LogisticLoss(np.ones((2, 3)), np.ones((2, 4))), ValueError, "labels"),
    "charge_increment step nan": api(lambda t: q.charge_increment(PROBLEM, POINT, np.nan), ValueError, "step"),
    "descent_vs_flow one step": api(lambda t: q.descent_vs_flow(PROBLEM, POINT, 1.0, [0.1]), ValueError, "steps"),
    "descent_vs_flow t_final": api(lambda t: q.descent_vs_flow(PROBLEM, POINT, -1.0, [0.1, 0.05]), ValueError, "t_final"),
    "descent_vs_flow rtol": api(lambda t: q.descent_vs_flow(PROBLEM, POINT, 1.0, [0.1, 0.05], rtol=-1.0), ValueError, "rtol"),
    # ------------------------------------------------------------------ flows
    "flow rtol negative": api(lambda t: q.gradient_flow(PROBLEM, POINT, 1.0, rtol=-1.0, progress=False), ValueError, "rtol"),
    "flow rtol nan": api(lambda t: q.gradient_flow(PROBLEM, POINT, 1.0, rtol=np.nan, progress=False), ValueError, "rtol"),
    "flow atol negative": api(lambda t: q.gradient_flow(PROBLEM, POINT, 1.0, atol=-1.0, progress=False), ValueError, "atol"),
    "flow t_final inf": api(lambda t: q.gradient_flow(PROBLEM, POINT, np.inf, progress=False), ValueError, "t_final"),
    "flow t_eval decreasing": api(lambda t: q.gradient_flow(PROBLEM, POINT, 1.0, t_eval=[0.5, 0.1], progress=False), ValueError, "t_eval"),
    "flow t_eval one": api(lambda t: q.gradient_flow(PROBLEM, POINT, 1.0, t_eval=1, progress=False), ValueError, "t_eval"),
    "flow gradient_atol zero": api(lambda t: q.gradient_flow(PROBLEM, POINT, 1.0, gradient_atol=0.0, progress=False), ValueError, "gradient_atol"),
    "flow until": api(lambda t: q.gradient_flow(PROBLEM, POINT, 1.0, until="x", progress=False), ValueError, "until"),
    "flow method number": api(lambda t: q.gradient_flow(PROBLEM, POINT, 1.0, method=5, progress=False), TypeError, "method"),
    "flow problem text": api(lambda t: q.gradient_flow("p", POINT, 1.0, progress=False), TypeError, "problem"),
    "flow point0 shape": api(lambda t: q.gradient_flow(PROBLEM, (np.ones((2, 2)),), 1.0, progress=False), ValueError, "point0"),
    "descent step zero": api(lambda t: q.gradient_descent(PROBLEM, POINT, 0.0, 10, progress=False), ValueError, "step"),
    "descent n_steps zero": api(lambda t: q.gradient_descent(PROBLEM, POINT, 0.1, 0, progress=False), ValueError, "n_steps"),
    "descent record_every": api(lambda t: q.gradient_descent(PROBLEM, POINT, 0.1, 5, record_every=0, progress=False), ValueError, "record_every"),
    "descent gradient_atol": api(lambda t: q.gradient_descent(PROBLEM, POINT, 0.1, 5, gradient_atol=-1.0, progress=False), ValueError, "gradient_atol"),
    "ensemble rtol negative": api(lambda t: q.ensemble_flow(PROBLEM, BATCH, 1.0, rtol=-1.0, progress=False), ValueError, "rtol"),
    "ensemble empty": api(lambda t: q.ensemble_flow(PROBLEM, EMPTY, 1.0, progress=False), ValueError, "points"),
    "ensemble t_final nan": api(lambda t: q.ensemble_flow(PROBLEM, BATCH, np.nan, progress=False), ValueError, "t_final"),
    # ------------------------------------------------------------------ files
    "load text file": api(lambda t: q.Trajectory.load(t / "text.npz"), _format_error("FileFormatError"), "text.npz"),
    "load truncated": api(lambda t: q.Trajectory.load(t / "truncated.npz"), _format_error("FileFormatError"), "truncated.npz"),
    "load foreign npz": api(lambda t: q.Trajectory.load(t / "foreign.npz"), _format_error("FileFormatError"), "meta"),
    "load wrong tag": api(lambda t: q.Trajectory.load(t / "wrongtag.npz"), _format_error("FileFormatError"), "someone.else"),
    "load bad meta": api(lambda t: q.Trajectory.load(t / "badmeta.npz"), _format_error("FileFormatError"), "badmeta.npz"),
    "load missing": api(lambda t: q.Trajectory.load(t / "missing.npz"), FileNotFoundError, "missing.npz"),
    "load a folder": api(lambda t: q.Trajectory.load(t / "results"), _format_error("FileFormatError"), "results"),
    "ensemble load text": api(lambda t: _ensemble_load(t, "text.npz"), _format_error("FileFormatError"), "text.npz"),
    "ensemble load foreign": api(lambda t: _ensemble_load(t, "foreign.npz"), _format_error("FileFormatError"), "meta"),
    "save missing folder": api(_save_into_missing_folder, FileNotFoundError, os.path.join("such", "run.npz")),
    "save not npz": api(lambda t: _trajectory().save(t / "run.txt"), ValueError, "path"),
    "load_sweep corrupt run": api(_load_sweep_with_corrupt_run, _format_error("FileFormatError"), "depth2-width3"),
    "load_sweep missing": api(lambda t: q.load_sweep(t / "nothing"), FileNotFoundError, "nothing"),
    "sweep seeds negative": api(lambda t: _sweep(t, seeds=-2), ValueError, "seeds"),
    "sweep out a file": api(lambda t: _sweep(t, out=t / "afile.txt"), ValueError, "afile.txt"),
    "sweep n_workers": api(lambda t: _sweep(t, n_workers=0), ValueError, "n_workers"),
    "sweep sigma text": api(lambda t: _sweep(t, sigma="abc"), TypeError, "sigma"),
    "sweep init_scales nan": api(lambda t: _sweep(t, init_scales=[np.nan]), ValueError, "init_scales"),
}


def _resolve(expected):
    if isinstance(expected, str):
        return getattr(q, expected, None)
    return expected


def outcome(name: str, tmp: Path, timeout: float | None = None) -> tuple[str, str]:
    """``(category, detail)`` of one case: clear, unclear, traceback, silent or hang."""
    kind, call, expected, fragment = CASES[name]

    def alarm(signum, frame):
        raise TimeoutError

    if timeout:
        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        if kind == "cli":
            from quotient.cli import main

            out = str(tmp / ("out-" + "".join(c if c.isalnum() else "-" for c in name)))
            argv = [part.replace("{tmp}", str(tmp)).replace("{out}", out) for part in call]
            err, out = io.StringIO(), io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                try:
                    status = main(argv)
                except SystemExit as exit:
                    status = exit.code
                except TimeoutError:
                    raise
                except BaseException as error:  # noqa: BLE001 - what escapes main is what a user sees
                    return "traceback", f"{type(error).__name__}: {error}"
            lines = [line for line in err.getvalue().splitlines() if line.strip()]
            if status == 0:
                return "silent", "exit 0"
            if status == 2 and len(lines) == 1 and fragment in lines[0] and ": error:" in lines[0]:
                return "clear", lines[0]
            return "unclear", f"exit {status}: " + " / ".join(lines)[:300]
        expected_type = _resolve(expected) or ValueError
        try:
            call(tmp)
        except TimeoutError:
            raise
        except expected_type as error:
            if fragment in str(error) and (not isinstance(expected, str) or type(error).__name__ == expected or _resolve(expected)):
                return "clear", f"{type(error).__name__}: {error}"
            return "unclear", f"{type(error).__name__}: {error}"
        except (ValueError, TypeError) as error:
            return "unclear", f"{type(error).__name__}: {error}"
        except Exception as error:  # noqa: BLE001
            return "traceback", f"{type(error).__name__}: {error}"
        return "silent", "no error"
    except TimeoutError:
        return "hang", f"over {timeout} s"
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    _fixtures(tmp)
    return tmp


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_its_clear_error(name, scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    category, detail = outcome(name, scratch)
    assert category == "clear", f"{name}: {category}: {detail}"


def test_the_table_is_large():
    assert len(CASES) >= 100


def _run(*argv, **kwargs):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(q.__file__).parents[1]), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "quotient", *argv], capture_output=True, text=True, env=env, **kwargs)


def test_exit_status_and_one_line_in_a_subprocess(tmp_path):
    completed = _run("explore", "--widths", "4,-3,4", "--out", str(tmp_path / "run"))
    assert completed.returncode == 2
    assert completed.stderr.strip().count("\n") == 0 and "--widths" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_version(tmp_path):
    completed = _run("--version")
    assert completed.returncode == 0 and completed.stdout.strip() == f"quotient {q.__version__}"


def test_ctrl_c_ends_with_one_line_and_status_130(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "quotient", "explore", "--widths", "4,40,40,40,40,4", "--t-final", "1e9", "--gradient-atol", "1e-300",
         "--quiet", "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(Path(q.__file__).parents[1])),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(name.startswith(".run.partial-") for name in os.listdir(tmp_path)):  # it is integrating
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().count("\n") == 0 and "interrupted" in err
    assert os.listdir(tmp_path) == []  # nothing half-written is left behind


if __name__ == "__main__":
    import tempfile
    from collections import Counter

    counts = Counter()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        _fixtures(tmp)
        os.chdir(tmp)
        for name in CASES:
            category, detail = outcome(name, tmp, timeout=20.0)
            counts[category] += 1
            print(f"{category:9s} {name}: {detail[:200]}")
    print(f"\n{len(CASES)} cases: " + ", ".join(f"{counts[c]} {c}" for c in ("clear", "unclear", "traceback", "silent", "hang")))
