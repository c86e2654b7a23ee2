"""How much do the test pictures change with the BLAS kernel and numpy's SIMD paths?

The picture tests (tests/test_plot.py) compare what is drawn with a record and the pixels with a
baseline PNG, each to a tolerance. This script measures the differences those tolerances must
absorb: it runs ``tests/test_plot.py`` in one subprocess per configuration, with
``OPENBLAS_CORETYPE`` set to another OpenBLAS kernel (numpy's and scipy's OpenBLAS both read it)
and, for some, numpy's AVX-512 loops switched off (``NPY_DISABLE_CPU_FEATURES``, what a CPU without
AVX-512 runs), keeps the PNG and JSON record each test rendered (``--basetemp``), and prints per
picture:

- the RMS pixel difference (0..255, ``matplotlib.testing.compare.calculate_rms``) of each
  configuration's rendering against the committed baseline, and the largest one between any two
  configurations;
- the largest difference of what is drawn (axes lengths, see ``DRAWN_TOL`` in the tests);
- the RMS of the picture with one element removed (``test_tolerance_catches_a_missing_element``),
  which the tolerance must stay below;
- whether the whole test module passed under that configuration.

With ``--figures`` it does the same for ``python -m quotient.figures`` (RMS against the committed
``figures/``, and the largest difference of what each figure draws between configurations).

Only this script sets ``OPENBLAS_CORETYPE`` (in the subprocesses' environment); the tests and CI
never do. A kernel the CPU cannot run is reported and skipped (OpenBLAS falls back silently, so the
script checks what ``OPENBLAS_VERBOSE=2`` says it loaded).

Run from the repository root::

    python benchmarks/picture_kernels.py            # all configurations
    python benchmarks/picture_kernels.py --kernels Haswell Zen
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.testing.compare import calculate_rms
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "tests" / "baseline"
sys.path.insert(0, str(ROOT / "tests"))

#: numpy's dispatched features above AVX2 (numpy 2.x names); disabling them runs the AVX2 loops.
AVX512 = "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"
KERNELS = ("Haswell", "SkylakeX", "Sandybridge", "Nehalem", "Zen")


def _configurations(kernels):
    for kernel in kernels:
        yield kernel, {"OPENBLAS_CORETYPE": kernel}
    for kernel in kernels[:2]:
        yield f"{kernel}+noAVX512", {"OPENBLAS_CORETYPE": kernel, "NPY_DISABLE_CPU_FEATURES": AVX512}


def _loaded_core(environment) -> str:
    """The core OpenBLAS reports it loaded under ``environment`` (numpy's OpenBLAS)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import numpy; numpy.dot(numpy.ones((4, 4)), numpy.ones((4, 4)))"],
        env={**environment, "OPENBLAS_VERBOSE": "2"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    for line in (probe.stdout + probe.stderr).splitlines():
        if line.startswith("Core:"):
            return line.split(":", 1)[1].strip()
    return "?"


def _run(name, extra, folder: Path) -> dict:
    environment = {**os.environ, **extra, "PYTHONPATH": str(ROOT)}
    environment.pop("QUOTIENT_UPDATE_BASELINES", None)
    core = _loaded_core(environment)
    base = folder / name.replace("+", "_")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", "--basetemp", str(base),
         str(ROOT / "tests" / "test_plot.py")],
        env=environment, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines() or ["?"]
    summary = "\n    ".join([lines[-1]] + [line[:160] for line in lines if line.startswith("FAILED")])
    renderings = {}
    for png in base.glob("test_baseline_image_*/*.png"):
        if not png.stem.endswith("-failed-diff") and "-expected" not in png.stem:
            renderings[png.stem] = png
    dropped = {png.stem.removesuffix("-dropped"): png for png in base.glob("test_tolerance_catches_*/*-dropped.png")}
    return {"core": core, "summary": summary, "renderings": renderings, "dropped": dropped}


_FIGURES_SNIPPET = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from matplotlib.backends.backend_agg import FigureCanvasAgg
from test_plot import _rounded, drawn
from quotient import figures
out = Path({out!r})
for name, build in figures.FIGURES.items():
    figure = build()
    figures.save(figure, str(out / f"{{name}}.png"))
    figure.set_dpi(figures.DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    (out / f"{{name}}.json").write_text(json.dumps(_rounded(drawn(figure, canvas.get_renderer()))))
"""


def _run_figures(name, extra, folder: Path) -> dict:
    """``python -m quotient.figures`` under one configuration, with a record of what each figure draws."""
    out = folder / ("figures-" + name.replace("+", "_"))
    out.mkdir()
    environment = {**os.environ, **extra, "PYTHONPATH": str(ROOT)}
    code = _FIGURES_SNIPPET.format(tests=str(ROOT / "tests"), out=str(out))
    result = subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True)
    summary = "ok" if result.returncode == 0 else "failed: " + result.stderr.strip().splitlines()[-1]
    return {"summary": summary, "renderings": {png.stem: png for png in out.glob("*.png")}, "dropped": {}}


def _rms(a: Path, b: Path) -> float:
    first, second = (np.asarray(Image.open(p).convert("RGB")).astype(np.int16) for p in (a, b))
    if first.shape != second.shape:
        return float("inf")
    return float(calculate_rms(first, second))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), help=f"OpenBLAS kernels (default {' '.join(KERNELS)})")
    parser.add_argument(
        "--figures", action="store_true",
        help="measure the committed figures (python -m quotient.figures) instead of the test pictures",
    )  # fmt: skip
    args = parser.parse_args(argv)
    reference = ROOT / "figures" if args.figures else BASELINE
    from test_plot import _largest_difference  # the tests' own comparison of records

    with tempfile.TemporaryDirectory(prefix="picture-kernels-") as tmp:
        runs = {}
        for name, extra in _configurations(args.kernels):
            core = _loaded_core({**os.environ, **extra})
            if extra["OPENBLAS_CORETYPE"].lower() not in core.lower():
                print(f"{name}: OpenBLAS loads core {core!r} (its kernels); not run again")
                continue
            what = "python -m quotient.figures" if args.figures else "tests/test_plot.py"
            print(f"running {what} under {name} ...", flush=True)
            run = (_run_figures if args.figures else _run)(name, extra, Path(tmp))
            print(f"  core {core}: {run['summary']}")
            runs[name] = run
        if not runs:
            print("no configuration ran")
            return 1
        pictures = sorted(set.union(*(set(r["renderings"]) for r in runs.values())))
        configurations = list(runs)
        print(f"\nRMS pixel difference against the committed {'figures' if args.figures else 'baseline'} (0..255)")
        print(f"{'picture':24s}" + "".join(f"{c:>20s}" for c in configurations) + f"{'max pair':>10s}{'drawn':>10s}{'removal':>9s}")
        for picture in pictures:
            row = f"{picture:24s}"
            for c in configurations:
                png = runs[c]["renderings"].get(picture)
                row += f"{_rms(reference / f'{picture}.png', png):20.3f}" if png else f"{'-':>20s}"
            pngs = [runs[c]["renderings"][picture] for c in configurations if picture in runs[c]["renderings"]]
            pair = max((_rms(a, b) for a in pngs for b in pngs), default=0.0)
            records = [json.loads(p.with_suffix(".json").read_text()) for p in pngs if p.with_suffix(".json").exists()]
            expected = reference / f"{picture}.json"
            if expected.exists():
                records.append(json.loads(expected.read_text()))
            gap = max((_largest_difference(a, b) for a in records for b in records), default=float("nan"))
            dropped = runs[configurations[0]]["dropped"].get(picture)
            removal = _rms(reference / f"{picture}.png", dropped) if dropped else float("nan")
            print(row + f"{pair:10.3f}{gap:10.1e}{removal:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
