"""The command line (quotient/cli.py): `quotient explore`."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import quotient as q
from quotient.cli import EXPLORE_FILES, main

SMALL = ["--widths", "2,3,2", "--sigma", "2,1", "--init-scale", "0.05", "--quiet"]


def test_explore_writes_figures_summary_and_trajectory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["explore", *SMALL, "--init-scale", "1e-3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in EXPLORE_FILES:
        assert (out / name).stat().st_size > 0
    assert "global minimum 0" in printed and "conservation drift" in printed
    trajectory = q.Trajectory.load(out / "trajectory.npz")
    assert trajectory.problem.widths == (2, 3, 2)
    assert trajectory.loss[-1] < 1e-10
    summary = (out / "summary.md").read_text()
    assert "loss.png" in summary
    # the plateau table lists the critical values passed, ending at the global minimum
    rows = [line for line in summary.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows and rows[-1].split("|")[4].strip() == "0"
    assert rows[0].split("|")[4].strip() == "2.5"  # L_{} = (4 + 1) / 2 at the small init


def test_explore_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "loss.png").write_bytes(b"earlier result")
    assert main(["explore", *SMALL, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "loss.png").read_bytes() == b"earlier result"
    assert main(["explore", *SMALL, "--out", str(out), "--overwrite"]) == 0
    assert (out / "loss.png").read_bytes() != b"earlier result"


def test_explore_from_a_data_file_and_depth(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, X=rng.standard_normal((2, 30)), Y=rng.standard_normal((2, 30)))
    out = tmp_path / "run"
    assert main(["explore", "--widths", "2,3,2", "--depth", "3", "--data", str(path), "--out", str(out), "--quiet", "--init-scale", "0.1"]) == 0
    trajectory = q.Trajectory.load(out / "trajectory.npz")
    assert trajectory.problem.widths == (2, 3, 3, 2)
    assert trajectory.problem.offset > 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--sigma", "1,2", "--widths", "2,3,2"], "non-increasing"),
        (["--sigma", "2,1,1", "--widths", "2,3,2"], "m = min"),
        (["--widths", "2,0,2"], "argument --widths: every width must be a positive integer; got 0"),
        (["--t-final", "-1"], "argument --t-final: expected a positive finite number; got '-1'"),
        (["--init-scale", "0"], "argument --init-scale: expected a positive finite number"),
        (["--depth", "0"], "argument --depth: expected a positive integer"),
        (["--data", "missing.npz"], "no such file"),
    ],
)
def test_explore_bad_input(tmp_path, capsys, arguments, message):
    assert main(["explore", *arguments, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("quotient explore: error:")
    assert message.replace("\\", "") in error.replace("\\", "") or pytest.fail(error)
    assert not (tmp_path / "run" / "loss.png").exists()


def test_console_entry_point_runs():
    completed = subprocess.run([sys.executable, "-m", "quotient.cli", "explore", "--help"], capture_output=True, text=True, check=True)
    assert "--widths" in completed.stdout and "--init-scale" in completed.stdout


def test_explore_summary_links_every_picture(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["explore", *SMALL, "--init-scale", "1e-3", "--out", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    pictures = [name for name in EXPLORE_FILES if name.endswith(".png")]
    assert set(pictures) == {"loss.png", "singular_values.png", "quotient.png", "critical_graph.png", "conservation.png", "hessian.png"}
    for name in pictures:
        assert f"]({name})" in summary
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the Hessian is taken at the global minimum the run converged to, a point of its fiber
    assert "Hessian spectrum at the critical point nearest the final point" in summary
    assert "learned {1,2}, global minimum" in summary
    assert "wrote" in capsys.readouterr().out


def test_explore_one_mode_has_no_quotient_plane(tmp_path):
    out = tmp_path / "run"
    assert main(["explore", "--widths", "1,2,1", "--sigma", "2", "--init-scale", "0.05", "--quiet", "--out", str(out)]) == 0
    assert not (out / "quotient.png").exists()
    summary = (out / "summary.md").read_text()
    assert "quotient.png" not in summary and "](hessian.png)" in summary


# ---------------------------------------------------------------------------------------- transactional --out
OLD_RUN = ["--widths", "2,3,2", "--sigma", "2,1", "--init-scale", "0.05", "--seed", "0", "--quiet"]
NEW_RUN = ["--widths", "1,2,1", "--sigma", "2", "--init-scale", "0.05", "--seed", "1", "--quiet"]  # no quotient.png
#: Where `explore --overwrite` can be killed: QUOTIENT_TEST_KILL_AT=<stage> sends it SIGKILL there.
KILL_STAGES = ("computed", "trajectory", "figure:loss.png", "figure:singular_values.png", "figure:critical_graph.png",
               "figure:conservation.png", "figure:hessian.png", "summary", "before-swap", "after-swap", "done")  # fmt: skip


def _folder_state(out):
    """``"old"`` or ``"new"`` if ``out`` holds exactly one complete run, else a description of what it holds."""
    names = sorted(os.listdir(out)) if out.is_dir() else []
    summary = (out / "summary.md").read_text() if "summary.md" in names else ""
    old = sorted(set(EXPLORE_FILES))
    new = sorted(set(EXPLORE_FILES) - {"quotient.png"})
    if names == old and "seed 0" in summary and "widths 2-3-2" in summary:
        return "old"
    if names == new and "seed 1" in summary and "widths 1-2-1" in summary:
        return "new"
    return f"mixed: {names}"


def kill_at(tmp_path, stage):
    """Run explore into ``tmp/run``, then ``explore --overwrite`` killed at ``stage``; the state after.

    Returns ``(state, leftovers, state_after_rerun)``: what ``run`` holds after the kill, the
    temporary folders left beside it, and the state after a second, unkilled ``--overwrite``
    (which also removes the leftovers of the killed process).
    """
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(q.__file__).parents[1]))
    command = [sys.executable, "-m", "quotient", "explore", "--out", str(out)]
    subprocess.run([*command, *OLD_RUN], env=env, check=True, capture_output=True)
    killed = subprocess.run([*command, *NEW_RUN, "--overwrite"], env=dict(env, QUOTIENT_TEST_KILL_AT=stage), capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = _folder_state(out)
    leftovers = sorted(name for name in os.listdir(tmp_path) if name != "run")
    subprocess.run([*command, *NEW_RUN, "--overwrite"], env=env, check=True, capture_output=True)
    return state, leftovers, _folder_state(out), sorted(name for name in os.listdir(tmp_path) if name != "run")


@pytest.mark.parametrize("stage", ["figure:conservation.png", "after-swap"])
def test_explore_overwrite_killed_leaves_one_complete_run(tmp_path, stage):
    state, leftovers, after, left_after = kill_at(tmp_path, stage)
    assert state == ("new" if stage == "after-swap" else "old")
    assert after == "new" and left_after == []  # nothing stale: the new run has no quotient.png


def test_explore_overwrite_replaces_the_whole_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["explore", *OLD_RUN, "--out", str(out)]) == 0
    assert (out / "quotient.png").exists()
    assert main(["explore", *NEW_RUN, "--out", str(out), "--overwrite"]) == 0
    assert _folder_state(out) == "new" and sorted(os.listdir(tmp_path)) == ["run"]
    mode = os.stat(out / "trajectory.npz").st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_explore_infers_the_end_widths_from_data(tmp_path, capsys):
    rng = np.random.default_rng(1)
    path = tmp_path / "data.npz"
    np.savez(path, X=rng.standard_normal((3, 20)), Y=rng.standard_normal((2, 20)))
    out = tmp_path / "run"
    assert main(["explore", "--data", str(path), "--depth", "2", "--out", str(out), "--quiet", "--init-scale", "0.1"]) == 0
    assert q.Trajectory.load(out / "trajectory.npz").problem.widths == (3, 8, 2)


def test_explore_explains_a_cut_default_sigma_and_a_plateau(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["explore", "--widths", "3,5,2", "--t-final", "1", "--init-scale", "1e-3", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "the default 5,3,2,1 cut to its first m = min(d_0, d_h) = 2 values 5,3" in printed
    summary = (out / "summary.md").read_text()
    # at t = 1 from a small init the flow is still on the origin's plateau L_{} = (25 + 9) / 2 = 17
    assert "NOT at the global minimum: the run ended on the plateau of L_S = 17 (learned {})" in summary
    assert "ended on a plateau, not at the global minimum" in printed


def test_explore_method_is_passed_to_gradient_flow(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["explore", *SMALL, "--method", "RK45", "--t-final", "5", "--out", str(out)]) == 0
    assert q.Trajectory.load(out / "trajectory.npz").method == "RK45"
    assert main(["explore", *SMALL, "--method", "NOPE", "--out", str(tmp_path / "other")]) == 2
    assert capsys.readouterr().err.startswith("quotient explore: error: --method 'NOPE'")
    assert not (tmp_path / "other").exists() and sorted(os.listdir(tmp_path)) == ["run"]


def test_negative_numbers_reach_the_argument(tmp_path, capsys):
    assert main(["explore", "--sigma", "-1,3,2,1", "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error == "quotient explore: error: argument --sigma: singular values are non-negative; got '-1,3,2,1'\n"


def test_fiber_quiet_and_slog(tmp_path, capsys):
    out = tmp_path / "fib"
    assert main(["fiber", "--samples", "4", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "slog x = sign(x) log10(1 + |x|)" in printed.out and printed.err == ""
    assert sorted(os.listdir(out)) == ["fiber.png", "fiber_samples.npz"]
