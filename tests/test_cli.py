"""The command line (quotient/cli.py): `quotient explore`."""

import subprocess
import sys

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
    assert "learnt {1,2}, global minimum" in summary
    assert "wrote" in capsys.readouterr().out


def test_explore_one_mode_has_no_quotient_plane(tmp_path):
    out = tmp_path / "run"
    assert main(["explore", "--widths", "1,2,1", "--sigma", "2", "--init-scale", "0.05", "--quiet", "--out", str(out)]) == 0
    assert not (out / "quotient.png").exists()
    summary = (out / "summary.md").read_text()
    assert "quotient.png" not in summary and "](hessian.png)" in summary
