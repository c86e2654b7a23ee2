"""Test-session set-up shared by tests/ and notebooks/.

The notebooks run under nbmake (``--nbmake`` in pyproject's addopts) in a Jupyter kernel named
``python3``. A user-level kernelspec of that name (``~/.local/share/jupyter/kernels``) could point to
another interpreter, so the session puts first on ``JUPYTER_PATH`` a ``python3`` kernelspec that starts
this very interpreter (the virtual environment the tests run in).
"""

import json
import os
import shutil
import sys
import tempfile

_KERNEL_DIRECTORY = None


def pytest_configure(config):
    global _KERNEL_DIRECTORY
    _KERNEL_DIRECTORY = tempfile.mkdtemp(prefix="quotient-kernels-")
    spec = os.path.join(_KERNEL_DIRECTORY, "kernels", "python3")
    os.makedirs(spec)
    with open(os.path.join(spec, "kernel.json"), "w") as stream:
        json.dump(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (quotient tests)",
                "language": "python",
            },
            stream,
        )
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [_KERNEL_DIRECTORY, os.environ.get("JUPYTER_PATH")]))


def pytest_unconfigure(config):
    if _KERNEL_DIRECTORY is not None:
        shutil.rmtree(_KERNEL_DIRECTORY, ignore_errors=True)
