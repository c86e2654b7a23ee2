"""Kill `quotient explore --overwrite` (SIGKILL) at every stage and report what the folder holds.

Run: ``PYTHONPATH=$PWD python benchmarks/kill_explore.py``. For each stage of
``tests/test_cli.py::KILL_STAGES`` it writes an old run (widths 2-3-2, with quotient.png), kills
an ``--overwrite`` by a new run (widths 1-2-1, no quotient.png) at that stage, and prints what
``--out`` holds (old / new / mixed), the temporary folders left beside it, and the state after
a second, unkilled ``--overwrite``.
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_cli import KILL_STAGES, kill_at  # noqa: E402

if __name__ == "__main__":
    print("| killed at | --out holds | left beside it | after a rerun |")
    print("|---|---|---|---|")
    for stage in KILL_STAGES:
        with tempfile.TemporaryDirectory() as folder:
            state, leftovers, after, left_after = kill_at(Path(folder), stage)
        print(f"| {stage} | {state} | {', '.join(leftovers) or '-'} | {after}{', left: ' + ', '.join(left_after) if left_after else ''} |")
