"""The notebooks in notebooks/: stored without outputs, and collected by the test run.

They are executed top to bottom by nbmake (``--nbmake`` in pyproject's addopts, ``notebooks`` in its
testpaths), each as one test item, in the kernel conftest.py provides.
"""

import json
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_the_five_notebooks():
    assert [path.name for path in NOTEBOOKS] == [
        "01_adjacency_and_conservation.ipynb",
        "02_landscape.ipynb",
        "03_trajectories.ipynb",
        "04_symmetry.ipynb",
        "05_digits.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_stored_without_outputs(path):
    notebook = json.loads(path.read_text())
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    assert sum(cell["cell_type"] == "markdown" for cell in notebook["cells"]) >= 4  # prose between the code


def test_pytest_runs_the_notebooks():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "notebooks" in options["testpaths"] and "--nbmake" in options["addopts"].split()
