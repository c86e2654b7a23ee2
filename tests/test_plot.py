"""Pictures (quotient/plot.py): every function renders, draws what it should, and matches its baseline.

Each picture is checked three ways:

- its content against the library's own numbers (labels, levels, lines and points drawn, computed
  independently of the drawing), with floating-point tolerances;
- what is drawn against a record in ``tests/baseline/<name>.json``: every axes' limits, scales, labels
  and tick labels, every line's and collection's data in axes lengths (to ``DRAWN_TOL``), every
  text and its box (to ``EXTENT_TOL`` pixels), the legend entries; strings exactly;
- its pixels against ``tests/baseline/<name>.png`` with an RMS tolerance (``TOLERANCE``). The
  tolerance is checked too: removing a single element (a level, a curve, an arrow, a marker) from
  each picture must fail the comparison.

and for legibility: at least two distinct tick labels on every axis, no overlapping text boxes,
labels of points inside the axes, markers named in a legend not hidden under others.

Tolerances come from measured differences across OpenBLAS kernels and numpy SIMD paths
(``python benchmarks/picture_kernels.py``); nothing here sets ``OPENBLAS_CORETYPE``.

Rendering is deterministic: fixed seeds, matplotlib's default style (so no user ``matplotlibrc``
leaks in), its bundled DejaVu Sans font, fixed sizes and ``DPI``. After an intended change to a
picture, regenerate the baselines (PNG and record) and look at them before committing::

    QUOTIENT_UPDATE_BASELINES=1 python -m pytest tests/test_plot.py -k baseline_image
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.style
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.testing.compare import compare_images
from matplotlib.text import Annotation, Text
from strategies import seeds, widths

import quotient as q
from quotient import plot

BASELINE = Path(__file__).parent / "baseline"
UPDATE = os.environ.get("QUOTIENT_UPDATE_BASELINES") == "1"
DPI = 60
#: RMS of the pixel difference (0..255 scale) allowed against a baseline. Measured with
#: benchmarks/picture_kernels.py (OpenBLAS kernels Haswell = Zen, SkylakeX, Sandybridge, Nehalem, and
#: numpy without its AVX-512 loops): the largest RMS between any two renderings is 0.004 (a few
#: anti-aliased pixels of a curve that passes saddles), once no picture prints or draws round-off.
#: Removing any single element gives 1.8 (a coincident-sample dot of fiber_samples_origin) to 14
#: (test_tolerance_catches_a_missing_element checks every case). 0.5 is 100x the first and under a third
#: of the second. Text is the fragile part: another FreeType build or hinting mode moves every
#: glyph (RMS near 20), which no tolerance can absorb while still seeing a missing curve, hence the
#: matplotlib pin in the test extra (its wheels bundle FreeType and the DejaVu fonts).
TOLERANCE = 0.5


@pytest.fixture(autouse=True)
def default_style():
    """matplotlib's default style with its bundled font, whatever the user's matplotlibrc says."""
    with matplotlib.style.context("default"), matplotlib.rc_context({"font.family": "DejaVu Sans"}):
        yield


# ---------------------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def problem():
    return q.Problem.from_sigma([3.0, 2.0, 1.0], (3, 3, 3, 3))


@pytest.fixture(scope="module")
def run(problem):
    """Depth 3 from a small init: plateaus at S = {}, {1}, {1,2}, then the minimum {1,2,3}."""
    times = np.r_[0.0, np.geomspace(1e-2, 500.0, 300)]
    point0 = q.init.small_random(problem.widths, 1e-2, rng=0)
    # to t_final, no gradient_atol: where a tolerance stops the flow depends on the last bits of the
    # steps (5e-4 of the time span between OpenBLAS kernels, benchmarks/picture_kernels.py);
    # DOP853 pinned: the conservation-drift baseline is this method's drift curve
    return q.gradient_flow(problem, point0, 500.0, t_eval=times, method="DOP853", progress=False)


@pytest.fixture(scope="module")
def other_run(problem):
    times = np.r_[0.0, np.geomspace(1e-2, 500.0, 300)]
    point0 = q.init.small_random(problem.widths, 3e-2, rng=1)
    return q.gradient_flow(problem, point0, 500.0, t_eval=times, method="DOP853", progress=False)  # as `run`


@pytest.fixture(scope="module")
def plateau_run():
    """Depth 6 from a small init: the loss stays within 1e-9 of L_{} over the whole run."""
    problem = q.Problem.from_sigma([3.0, 2.0, 1.0], (3,) * 7)
    point0 = q.init.small_random(problem.widths, 1e-2, rng=0)
    return q.gradient_flow(problem, point0, 100.0, t_eval=51, progress=False)


@pytest.fixture(scope="module")
def origin_fiber():
    """The fiber of L_{} (widths 3-3-3-3, sigma = 5, 3, 2), what ``quotient fiber --learned none`` samples;
    many samples are the origin itself (non-strict saddles), the others strict saddles."""
    problem = q.Problem.from_sigma([5.0, 3.0, 2.0], (3, 3, 3, 3))
    chosen = q.fiber(problem, ())
    samples = chosen.sample(60, rng=0, spread=1.0)
    classes = [q.classify(problem, tuple(layer[k] for layer in samples)) for k in range(60)]
    return chosen, samples, classes


@pytest.fixture(scope="module")
def descent(problem):
    point0 = q.init.small_random(problem.widths, 0.3, rng=1)
    return q.gradient_descent(problem, point0, 0.02, 1000, record_every=10, progress=False)


@pytest.fixture(scope="module")
def scalar3():
    return q.Problem.from_sigma([2.0], (1, 1, 1, 1))


@pytest.fixture(scope="module")
def scalar_runs(scalar3):
    starts = ((0.2, 0.2, 0.2), (1.5, 0.1, 0.3), (0.3, 0.3, 1.8))
    return [
        q.gradient_flow(scalar3, tuple(np.array([[w]]) for w in start), 20.0, t_eval=201, progress=False)
        for start in starts
    ]


@pytest.fixture(scope="module")
def saddle_fiber(problem):
    """The fiber of the non-strict saddle value L_{1} = 2.5: both kinds of saddle live in it."""
    return q.fiber(problem, (1,))


@pytest.fixture(scope="module")
def saddle_samples(problem, saddle_fiber):
    samples = saddle_fiber.sample(24, rng=0, spread=0.5)
    classes = [q.classify(problem, tuple(layer[k] for layer in samples)) for k in range(24)]
    return samples, classes


# ---------------------------------------------------------------------------------------- symmetry inputs
def _scalar_point(*values):
    return tuple(np.array([[float(w)]]) for w in values)


@pytest.fixture(scope="module")
def scalar2():
    return q.Problem.from_sigma([2.0], (1, 1, 1))


@pytest.fixture(scope="module")
def teleported(scalar2):
    """x = (1.2, 0.5) and the point of its GL orbit g = e^s, |s| <= 0.8, with the largest gradient norm."""
    x = _scalar_point(1.2, 0.5)
    moves = [q.act(x, (np.array([[np.exp(s)]]),)) for s in np.linspace(-0.8, 0.8, 81)]
    return x, max(moves, key=lambda p: sum(np.sum(G**2) for G in scalar2.gradient(p)))


@pytest.fixture(scope="module")
def orbit_runs():
    """Widths 1-2-1: flows from 3 starts on one rescaling orbit and from 3 on one orthogonal orbit."""
    widths = (1, 2, 1)
    problem = q.Problem.from_sigma([2.0], widths)
    x = (np.array([[0.6], [0.3]]), np.array([[0.2, 0.5]]))
    times = np.linspace(0.0, 8.0, 81)
    rescalings = [q.symmetry.identity(widths)] + [q.random_rescaling(widths, rng=k, spread=1.0) for k in range(2)]
    rotations = [q.symmetry.identity(widths)] + [q.random_orthogonal(widths, rng=k) for k in range(2)]
    flow = lambda point: q.gradient_flow(problem, point, 8.0, t_eval=times, progress=False)  # noqa: E731
    return (
        [flow(q.act(x, g, group="rescaling")) for g in rescalings],
        [flow(q.act(x, R, group="orthogonal")) for R in rotations],
        rotations,
    )


@pytest.fixture(scope="module")
def fiber_pair():
    """Two points of the global-minimum fiber of widths 2-3-2 (h = 2: alignment is exact Procrustes)."""
    problem = q.Problem.from_sigma([3.0, 2.0], (2, 3, 2))
    samples = q.fiber(problem, (1, 2)).sample(2, rng=0, spread=0.6, structure=False)
    return problem, tuple(layer[0] for layer in samples), tuple(layer[1] for layer in samples)


def _axes(figure):
    """The main axes (colorbars and legends aside)."""
    return figure.axes[0]


def _texts(axes):
    return [text.get_text() for text in axes.texts]


def _scatter_points(axes) -> int:
    return sum(len(c.get_offsets()) for c in axes.collections if isinstance(c, PathCollection))


# ---------------------------------------------------------------------------------------- what is drawn
#: What is drawn must agree with the baseline's record to this many axes lengths (data converted to
#: the axes' scaled coordinates, 0 at one limit and 1 at the other, log and symlog aware). A pixel of
#: these pictures at DPI is at least 1/400 of an axes, so 1e-4 is a 25th of a pixel or less, and 20x
#: the largest difference measured across OpenBLAS kernels and numpy SIMD paths (4.4e-6, the
#: conservation drift of a flow; benchmarks/picture_kernels.py).
DRAWN_TOL = 1e-4
#: Text boxes (window extents, pixels at DPI) must agree to this many pixels.
EXTENT_TOL = 0.05


def _all_axes(figure) -> list:
    """Every axes of a figure and of its subfigures, in order."""
    found = list(figure.axes)
    for sub in getattr(figure, "subfigs", []):
        found += _all_axes(sub)
    return found


def _scaled(axis, limits, values) -> np.ndarray:
    """``values`` in axes lengths along ``axis``: 0 at ``limits[0]``, 1 at ``limits[1]`` (log / symlog aware)."""
    transform = axis.get_transform()
    values = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan).ravel()
    low, high = transform.transform(np.asarray(limits, dtype=float).reshape(-1, 1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = transform.transform(values.reshape(-1, 1)).ravel() if values.size else values
    return (scaled - low) / (high - low)


def _coords(axes, columns) -> list:
    """Data columns (x, y[, z]) of an artist in axes lengths, as lists (NaN for gaps)."""
    axis = [axes.xaxis, axes.yaxis] + ([axes.zaxis] if axes.name == "3d" else [])
    limits = [axes.get_xlim(), axes.get_ylim()] + ([axes.get_zlim()] if axes.name == "3d" else [])
    return [_scaled(a, lim, column).tolist() for a, lim, column in zip(axis, limits, columns)]


def _colour(value) -> list:
    rgba = np.asarray(matplotlib.colors.to_rgba_array(value), dtype=float)
    return np.round(rgba, 4).tolist()


def drawn(figure, renderer) -> list:
    """A record of everything drawn in ``figure``, per axes: limits, scales, labels, tick labels,
    lines, collections, texts (with their boxes) and legend entries. Numbers are in axes lengths
    (see :func:`_scaled`) or pixels, so they can be compared with a tolerance, not bit for bit."""
    record = []
    for axes in _all_axes(figure):
        three = axes.name == "3d"
        names = "xyz" if three else "xy"
        entry = {
            "name": axes.name,
            "title": [axes.get_title(loc=loc) for loc in ("left", "center", "right")],
            "labels": [getattr(axes, f"get_{c}label")() for c in names],
            "scales": [getattr(axes, f"get_{c}scale")() for c in names],
            "limits": [list(map(float, getattr(axes, f"get_{c}lim")())) for c in names],
            "ticks": [[t.get_text() for t in getattr(axes, f"get_{c}ticklabels")()] for c in names],
            "lines": [],
            "collections": [],
            "texts": [],
            "legend": None,
        }
        for line in axes.lines:
            columns = line.get_data_3d() if three else line.get_data()
            entry["lines"].append({
                "label": line.get_label() if not line.get_label().startswith("_") else "",
                "style": [str(line.get_linestyle()), str(line.get_marker()), _colour(line.get_color())],
                "zorder": line.get_zorder(),
                "data": _coords(axes, columns),
            })  # fmt: skip
        for collection in axes.collections:
            item = {
                "type": type(collection).__name__,
                "label": collection.get_label() if not collection.get_label().startswith("_") else "",
                "zorder": collection.get_zorder(),
                "face": _colour(collection.get_facecolor())[:1],
            }
            if isinstance(collection, PathCollection):
                columns = collection._offsets3d if three else collection.get_offsets().T
                item["data"] = _coords(axes, columns)
            elif isinstance(collection, LineCollection) and not three:
                segments = collection.get_segments()
                item["data"] = [_coords(axes, np.asarray(s).T) for s in segments]
            else:  # surfaces: the number of faces drawn
                item["data"] = len(collection.get_paths())
            entry["collections"].append(item)
        for text in axes.texts:
            if not text.get_visible() or not text.get_text():
                entry["texts"].append({"text": "", "arrow": bool(getattr(text, "arrow_patch", None))})
                continue
            box = Text.get_window_extent(text, renderer)
            entry["texts"].append({"text": text.get_text(), "box": [box.x0, box.y0, box.x1, box.y1]})
        legend = axes.get_legend()
        if legend is not None:
            entry["legend"] = [legend.get_title().get_text()] + [t.get_text() for t in legend.get_texts()]
        record.append(entry)
    return record


def _differences(expected, actual, where="") -> list:
    """Where two records disagree: strings and shapes exactly, numbers to DRAWN_TOL / EXTENT_TOL."""
    if isinstance(expected, dict):
        if set(expected) != set(actual):
            return [f"{where}: keys {sorted(expected)} != {sorted(actual)}"]
        return [d for key in expected for d in _differences(expected[key], actual[key], f"{where}.{key}")]
    if isinstance(expected, list) and expected and all(isinstance(v, (int, float)) for v in expected) and not any(
        isinstance(v, bool) for v in expected
    ):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: {len(expected)} numbers, drawn {len(actual) if isinstance(actual, list) else actual}"]
        a, b = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            return [f"{where}: gaps (NaN) at other places"]
        tol = EXTENT_TOL if where.endswith(".box") else DRAWN_TOL
        if ".limits" in where:  # limits in data units: relative to their size
            tol = DRAWN_TOL * max(1.0, float(np.nanmax(np.abs(a))))
        gap = np.nanmax(np.abs(a - b), initial=0.0)
        return [f"{where}: off by {gap:.2e} > {tol}"] if gap > tol else []
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: {len(expected)} items, drawn {len(actual) if isinstance(actual, list) else actual!r}"]
        return [d for k, (e, a) in enumerate(zip(expected, actual)) for d in _differences(e, a, f"{where}[{k}]")]
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return [] if abs(expected - actual) <= DRAWN_TOL * max(1.0, abs(expected)) else [f"{where}: {expected} != {actual}"]
    return [] if expected == actual else [f"{where}: {expected!r} != {actual!r}"]


def _largest_difference(expected, actual) -> float:
    """The largest numeric gap between two records of the same shape (for benchmarks/picture_kernels.py)."""
    if isinstance(expected, dict):
        return max((_largest_difference(expected[k], actual[k]) for k in expected), default=0.0)
    if isinstance(expected, list) and expected and all(isinstance(v, (int, float)) for v in expected):
        a, b = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
        return float(np.nanmax(np.abs(a - b), initial=0.0)) if a.shape == b.shape else np.inf
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return np.inf
        return max((_largest_difference(e, a) for e, a in zip(expected, actual)), default=0.0)
    return 0.0 if expected == actual else np.inf


# ---------------------------------------------------------------------------------------- cases
# name -> (build(request) -> Figure, drop(figure): remove one element); the baseline is <name>.png.
def _build_loss(request):
    return plot.loss_curve([request.getfixturevalue("run"), request.getfixturevalue("other_run")], labels=["a", "b"])


def _drop_level(figure):
    next(line for line in _axes(figure).lines if line.get_linestyle() == "--").remove()


def _build_singular(request):
    return plot.singular_value_curves(request.getfixturevalue("run"), log_time=True)


def _drop_curve(figure):
    next(line for line in _axes(figure).lines if line.get_linestyle() == "-").remove()


def _build_quotient(request):
    return plot.quotient_trajectory(request.getfixturevalue("run"))


def _build_quotient_3d(request):
    return plot.quotient_trajectory(
        [request.getfixturevalue("run"), request.getfixturevalue("other_run")], modes=(1, 2, 3), labels=["a", "b"]
    )


def _build_graph(request):
    return plot.critical_graph(request.getfixturevalue("problem"), trajectory=request.getfixturevalue("run"))


def _drop_arrow(figure):
    next(text for text in _axes(figure).texts if isinstance(text, Annotation) and text.arrow_patch).remove()


def _build_scalar(request):
    points = q.fiber(request.getfixturevalue("scalar3"), (1,)).sample(30, rng=0, spread=0.5)
    return plot.scalar_fiber(
        request.getfixturevalue("scalar3"), points=points, trajectories=request.getfixturevalue("scalar_runs")
    )


def _build_scalar_2(request):
    problem = q.Problem.from_sigma([1.5], (1, 1, 1))
    points = q.fiber(problem, (1,)).sample(20, rng=0, spread=0.7)
    return plot.scalar_fiber(problem, points=points)


def _drop_first_line(figure):
    next(line for line in _axes(figure).lines if len(line.get_xdata())).remove()


def _build_projection(request):
    samples, classes = request.getfixturevalue("saddle_samples")
    return plot.fiber_projection(
        samples, classes=classes, representative=request.getfixturevalue("saddle_fiber").representative
    )


def _drop_scatter(figure):
    next(c for c in figure.axes[0].collections if isinstance(c, PathCollection)).remove()


def _build_hessian(request):
    problem = request.getfixturevalue("problem")
    return plot.hessian_spectrum(problem, q.canonical_point(problem, (2,)), title="S = {2}")


def _drop_negative(figure):
    for collection in list(_axes(figure).collections):
        if np.allclose(collection.get_edgecolor()[:1], matplotlib.colors.to_rgba(plot.PALETTE[3])) or np.allclose(
            collection.get_facecolor()[:1], matplotlib.colors.to_rgba(plot.PALETTE[3])
        ):
            collection.remove()


def _build_drift(request):
    return plot.conservation_drift([request.getfixturevalue("run"), request.getfixturevalue("descent")])


def _build_samples(request):
    samples, classes = request.getfixturevalue("saddle_samples")
    return plot.fiber_samples(request.getfixturevalue("saddle_fiber"), samples, classes=classes)


def _drop_star(figure):
    next(c for c in _axes(figure).collections if c.get_label() == "canonical point").remove()


def _build_plateau(request):
    return plot.loss_curve(request.getfixturevalue("plateau_run"))


def _drop_curve_or_level(figure):
    _axes(figure).lines[-1].remove()


def _build_origin_samples(request):
    chosen, samples, classes = request.getfixturevalue("origin_fiber")
    return plot.fiber_samples(chosen, samples, classes=classes)


def _drop_rarest(figure):
    [c for c in _axes(figure).collections if isinstance(c, PathCollection)][-1].remove()


def _build_group_orbits(request):
    return plot.group_orbits(_scalar_point(1.2, 0.5), span=3.0, extent=3.0, samples=81)


def _build_level_set(request):
    x, moved = request.getfixturevalue("teleported")
    return plot.level_set_teleport(request.getfixturevalue("scalar2"), x, moved)


def _build_rescaling_flow(request):
    rescaled, rotated, _ = request.getfixturevalue("orbit_runs")
    return plot.rescaling_quotient_flow(rescaled, rotated)


def _build_geodesic(request):
    problem, x, y = request.getfixturevalue("fiber_pair")
    return plot.quotient_geodesic(problem, x, y, samples=41, orbit_samples=60)


CASES = {
    "loss_curve": (_build_loss, _drop_level),
    "singular_value_curves": (_build_singular, _drop_curve),
    "quotient_trajectory": (_build_quotient, _drop_curve),
    "quotient_trajectory_3d": (_build_quotient_3d, _drop_curve),
    "critical_graph": (_build_graph, _drop_arrow),
    "scalar_fiber": (_build_scalar, _drop_first_line),
    "scalar_fiber_2": (_build_scalar_2, _drop_first_line),
    "fiber_projection": (_build_projection, _drop_scatter),
    "hessian_spectrum": (_build_hessian, _drop_negative),
    "conservation_drift": (_build_drift, _drop_curve),
    "fiber_samples": (_build_samples, _drop_star),
    "loss_curve_plateau": (_build_plateau, _drop_curve_or_level),
    "fiber_samples_origin": (_build_origin_samples, _drop_rarest),
    "group_orbits": (_build_group_orbits, _drop_first_line),
    "level_set_teleport": (_build_level_set, _drop_arrow),
    "rescaling_quotient_flow": (_build_rescaling_flow, _drop_curve_or_level),
    "quotient_geodesic": (_build_geodesic, _drop_curve),
}


def _render(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, metadata={"Software": None})
    return path


def _record(figure: Figure, path: Path) -> list:
    """Draw ``figure`` at DPI, write what is drawn to ``path`` (JSON) and return it."""
    figure.set_dpi(DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    record = _rounded(drawn(figure, canvas.get_renderer()))
    path.write_text(json.dumps(record, indent=None, separators=(",", ":")) + "\n")
    return json.loads(path.read_text())


def _rounded(value):
    """Floats to 10 decimals (far below DRAWN_TOL), NaN as None-free JSON: the record stays small."""
    if isinstance(value, float):
        return round(value, 10) if np.isfinite(value) else value
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _compare(expected: Path, actual: Path):
    """``None`` when the images agree within TOLERANCE, else compare_images's report (a dict)."""
    return compare_images(str(expected), str(actual), tol=TOLERANCE, in_decorator=True)


# ---------------------------------------------------------------------------------------- images
@pytest.mark.parametrize("name", sorted(CASES))
def test_baseline_image(name, request, tmp_path):
    """What is drawn agrees with the record (to DRAWN_TOL), then the pixels with the PNG (to TOLERANCE)."""
    figure = CASES[name][0](request)
    actual = _render(figure, tmp_path / f"{name}.png")
    record = _record(figure, tmp_path / f"{name}.json")
    expected = BASELINE / f"{name}.png"
    if UPDATE:
        BASELINE.mkdir(exist_ok=True)
        shutil.copyfile(actual, expected)
        shutil.copyfile(tmp_path / f"{name}.json", BASELINE / f"{name}.json")
        (BASELINE / "matplotlib-version.txt").write_text(matplotlib.__version__ + "\n")
    assert expected.exists(), f"no baseline {expected}; make it with QUOTIENT_UPDATE_BASELINES=1 (see module docstring)"
    differences = _differences(json.loads((BASELINE / f"{name}.json").read_text()), record, name)
    assert not differences, f"{name}: what is drawn differs from the baseline record:\n" + "\n".join(differences[:20])
    result = _compare(expected, actual)
    made_with = (BASELINE / "matplotlib-version.txt").read_text().strip()
    assert result is None, (
        f"{name}: RMS {result['rms']:.2f} > {TOLERANCE}; difference image {result['diff']} "
        f"(baselines made with matplotlib {made_with}, this is {matplotlib.__version__})"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_tolerance_catches_a_missing_element(name, request, tmp_path):
    expected = BASELINE / f"{name}.png"
    if not expected.exists():
        pytest.fail(f"no baseline {expected}")
    build, drop = CASES[name]
    figure = build(request)
    drop(figure)
    result = _compare(expected, _render(figure, tmp_path / f"{name}-dropped.png"))
    assert result is not None, f"{name}: removing an element still matches the baseline"


def test_rendering_is_deterministic(request, tmp_path):
    first = _render(_build_loss(request), tmp_path / "first.png").read_bytes()
    second = _render(_build_loss(request), tmp_path / "second.png").read_bytes()
    assert first == second


# ---------------------------------------------------------------------------------------- content
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_picture_is_a_figure_with_labelled_axes_and_no_pyplot_state(name, request, tmp_path):
    figure = CASES[name][0](request)
    assert isinstance(figure, Figure)
    assert plt.get_fignums() == []  # built without pyplot: nothing to show, nothing leaked
    for axes in figure.axes:
        assert axes.get_xlabel() and axes.get_ylabel()
        if axes.name == "3d":
            assert axes.get_zlabel()
    _render(figure, tmp_path / "picture.png")  # renders headless (Agg)


def test_loss_curve_draws_the_visited_levels_labelled_by_learned_sets(problem, run):
    figure = plot.loss_curve(run)
    axes = _axes(figure)
    visited = {p.critical_value for p in q.plateaus(problem, run.times, run.end_to_end)}
    assert {v.learned for v in visited} == {(), (1,), (1, 2), (1, 2, 3)}
    levels = [line for line in axes.lines if line.get_linestyle() == "--"]
    assert sorted(line.get_ydata()[0] for line in levels) == pytest.approx(sorted(v.value for v in visited))
    assert sorted(_texts(axes)) == sorted(
        ["$S = \\emptyset$", "$S = \\{1\\}$", "$S = \\{1,2\\}$", "$S = \\{1,2,3\\}$"]
    )
    curves = [line for line in axes.lines if line.get_linestyle() == "-"]
    assert len(curves) == 1 and np.array_equal(curves[0].get_ydata(), run.loss)
    assert "time" in axes.get_xlabel() and "loss" in axes.get_ylabel()
    assert axes.get_yscale() == "symlog" and axes.get_legend() is None


def test_loss_curve_all_levels_and_log_time(problem, run, other_run):
    figure = plot.loss_curve([run, other_run], labels=["a", "b"], levels="all", log_time=True)
    axes = _axes(figure)
    top = max(run.loss.max(), other_run.loss.max())
    expected = [v for v in q.critical_values(problem) if v.value <= 1.05 * top]
    assert len(expected) == 8  # every L_S of sigma = (3, 2, 1) lies below L_{} = 7
    assert len([line for line in axes.lines if line.get_linestyle() == "--"]) == len(expected)
    assert len(axes.texts) == len(expected)
    curves = [line for line in axes.lines if line.get_linestyle() == "-"]
    assert len(curves) == 2 and all(np.all(line.get_xdata() > 0) for line in curves)  # t = 0 dropped
    assert axes.get_xscale() == "log"
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["a", "b"]
    assert len([line for line in _axes(plot.loss_curve(run, levels="none")).lines]) == 1


def test_loss_curve_level_labels_do_not_overlap(run, other_run):
    figure = plot.loss_curve([run, other_run], levels="all")
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    # Text's own extent: an Annotation's includes its leader line
    boxes = sorted((Text.get_window_extent(text, renderer) for text in _axes(figure).texts), key=lambda box: box.y0)
    assert len(boxes) == 8
    assert all(lower.y1 <= upper.y0 + 0.5 for lower, upper in zip(boxes, boxes[1:]))


def test_singular_value_curves_against_targets(problem, run):
    times = run.times
    reference = np.abs(np.diagonal(run.end_to_end, axis1=1, axis2=2))
    figure = plot.singular_value_curves(run, reference=reference, plateau_times=[30.0, 45.0, np.inf])
    axes = _axes(figure)
    curves = [line for line in axes.lines if line.get_linestyle() == "-"]
    targets = [line for line in axes.lines if line.get_linestyle() == ":"]
    predictions = [line for line in axes.lines if line.get_linestyle() == "--" and line.get_color() == "black"]
    assert len(curves) == len(targets) == len(predictions) == 3
    assert [line.get_ydata()[0] for line in targets] == pytest.approx([3.0, 2.0, 1.0])
    measured = np.linalg.svd(run.end_to_end, compute_uv=False)
    for k, line in enumerate(curves):
        np.testing.assert_allclose(line.get_ydata(), measured[:, k])
        np.testing.assert_array_equal(line.get_xdata(), times)
    vertical = [line for line in axes.lines if line.get_linestyle() == "--" and line.get_color() != "black"]
    assert [line.get_xdata()[0] for line in vertical] == [30.0, 45.0]  # the infinite one is not drawn
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert "closed-form prediction" in legend and "predicted learning time" in legend
    assert "singular values" in axes.get_ylabel()
    with pytest.raises(ValueError, match="reference must have shape"):
        plot.singular_value_curves(run, reference=reference[:, :2])


def test_quotient_trajectory_marks_the_canonical_points(problem, run, other_run):
    axes = _axes(plot.quotient_trajectory([run, other_run], labels=["a", "b"]))
    assert sorted(_texts(axes)) == sorted(["$\\emptyset$", "$\\{1\\}$", "$\\{2\\}$", "$\\{1,2\\}$"])
    corners = [c.get_offsets()[0] for c in axes.collections if len(c.get_offsets()) == 1][:4]
    assert sorted(map(tuple, np.round(corners, 12))) == [(0.0, 0.0), (0.0, 2.0), (3.0, 0.0), (3.0, 2.0)]
    curves = [line for line in axes.lines if line.get_linestyle() == "-"]
    assert len(curves) == 2
    np.testing.assert_allclose(curves[0].get_xdata(), run.end_to_end[:, 0, 0])
    np.testing.assert_allclose(curves[0].get_ydata(), run.end_to_end[:, 1, 1])
    assert "u_{1}" in axes.get_xlabel() and "u_{2}" in axes.get_ylabel()
    # the flow ends at Sigma: the last point is the corner {1, 2}
    np.testing.assert_allclose([curves[0].get_xdata()[-1], curves[0].get_ydata()[-1]], [3.0, 2.0], atol=1e-6)


def test_quotient_trajectory_in_3d(run):
    axes = _axes(plot.quotient_trajectory(run, modes=(1, 2, 3)))
    assert axes.name == "3d" and "u_{3}" in axes.get_zlabel()
    assert len(axes.texts) == 8  # every subset of {1, 2, 3}
    assert len(_axes(plot.quotient_trajectory(run, modes=(1, 3), critical_points=False)).texts) == 0
    with pytest.raises(ValueError, match="modes must be 2 or 3 mode numbers in 1..3"):
        plot.quotient_trajectory(run, modes=(1, 4))
    with pytest.raises(ValueError, match="needs a 3-D axes"):
        plot.quotient_trajectory(run, modes=(1, 2, 3), axes=Figure().add_subplot())
    with pytest.raises(ValueError, match="one label per trajectory"):
        plot.quotient_trajectory(run, labels=["a", "b"])


def test_critical_graph_draws_every_value_edge_and_the_path(problem, run):
    graph = q.critical_graph(problem)
    axes = _axes(plot.critical_graph(problem, trajectory=run))
    edges = [line for line in axes.lines]
    assert len(edges) == len(graph.edges)
    assert sum(line.get_linestyle() == ":" for line in edges) == graph.kinds.count("swap")
    assert _scatter_points(axes) == len(graph.nodes)
    path = graph.path(q.plateaus(problem, run.times, run.end_to_end))
    assert [graph.nodes[n].learned for n in path] == [(), (1,), (1, 2), (1, 2, 3)]
    arrows = [text for text in axes.texts if isinstance(text, Annotation) and text.arrow_patch]
    assert len(arrows) == len(path) - 1
    for arrow, (_a, b) in zip(arrows, zip(path, path[1:])):
        assert arrow.xy == (len(graph.nodes[b].learned), graph.nodes[b].value)
    labels = [text.get_text() for text in axes.texts if text.get_text()]
    assert len(labels) == len(graph.nodes)
    plain = _axes(plot.critical_graph(problem))
    assert not [text for text in plain.texts if text.arrow_patch] and _scatter_points(plain) == len(graph.nodes)


def test_scalar_fiber_surface_orbits_samples_and_flows(scalar3, scalar_runs):
    points = q.fiber(scalar3, (1,)).sample(30, rng=0, spread=0.5)
    axes = _axes(plot.scalar_fiber(scalar3, points=points, trajectories=scalar_runs, orbit_curves=4))
    assert axes.name == "3d" and axes.get_zlabel() == "$w_3$"
    orbits = [line for line in axes.lines if line.get_label() == "GL orbit curves" or line.get_color() == plot.PALETTE[0]]
    assert len(orbits) == 4
    for line in orbits:  # every orbit curve lies on the surface w_3 w_2 w_1 = 2
        x, y, z = (np.asarray(v) for v in line.get_data_3d())
        keep = np.isfinite(x)
        np.testing.assert_allclose((x * y * z)[keep], 2.0, rtol=1e-12)
    flows = [line for line in axes.lines if line.get_color() == plot.PALETTE[3]]
    assert len(flows) == len(scalar_runs)
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert any("fiber" in name for name in legend) and "fiber samples" in legend


def test_scalar_fiber_depth_two_is_a_hyperbola():
    problem = q.Problem.from_sigma([1.5], (1, 1, 1))
    axes = _axes(plot.scalar_fiber(problem))
    assert axes.name != "3d"
    branches = [line for line in axes.lines if line.get_color() == plot.PALETTE[5] and len(line.get_xdata())]
    assert len(branches) == 2
    for line in branches:
        np.testing.assert_allclose(line.get_xdata() * line.get_ydata(), 1.5)
    with pytest.raises(ValueError, match="scalar chain"):
        plot.scalar_fiber(q.Problem.from_sigma([2.0, 1.0], (2, 2, 2)))
    with pytest.raises(ValueError, match="depth 2 or 3"):
        plot.scalar_fiber(q.Problem.from_sigma([2.0], (1, 1, 1, 1, 1)))


def test_fiber_projection_draws_each_sample_and_class(saddle_fiber, saddle_samples):
    samples, classes = saddle_samples
    assert set(classes) == {"nonstrict_saddle", "strict_saddle"}  # both kinds of saddle, one fiber
    figure = plot.fiber_projection(samples, classes=classes, representative=saddle_fiber.representative)
    left, right = figure.axes[:2]
    assert right.name == "3d"
    assert _scatter_points(left) == _scatter_points(right) == len(classes) + 1
    assert left.get_xlabel() == r"$\mathrm{tr}\, C_1$" and right.get_zlabel() == "$(W_{3})_{11}$"
    legend = [t.get_text() for t in left.get_legend().get_texts()]
    assert set(classes) <= set(legend) and "representative" in legend
    # the end-to-end map is constant on the fiber: the title bounds its spread, never prints round-off
    W = q.end_to_end(samples)
    assert np.max(np.abs(W - W[:1])) < 1e-12
    assert left.get_title().endswith(r"$\max |W - W^{(0)}| < 10^{-12}$")
    with pytest.raises(ValueError, match="one label per point"):
        plot.fiber_projection(samples, classes=classes[:3])


@pytest.mark.parametrize("learned, inertia", [((), (0, 27, 0)), ((1,), (0, 22, 5)), ((2,), (1, 22, 4)), ((1, 2, 3), (0, 18, 9))])
def test_hessian_spectrum_counts_match_the_inertia(problem, learned, inertia):
    """math.md section 4: widths 3-3-3-3, sigma = 3, 2, 1."""
    assert tuple(q.hessian_inertia(problem, q.canonical_point(problem, learned))) == inertia
    axes = _axes(plot.hessian_spectrum(problem, q.canonical_point(problem, learned)))
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend == [f"negative ({inertia[0]})", f"zero ({inertia[1]})", f"positive ({inertia[2]})"]
    assert _scatter_points(axes) == problem.n_params
    stems = sum(len(c.get_segments()) for c in axes.collections if isinstance(c, LineCollection))
    assert stems == problem.n_params
    assert axes.get_ylabel() == r"Hessian eigenvalue $\lambda_k$"
    if inertia[0] == inertia[2] == 0:
        assert axes.get_ylim() == (-1.0, 1.0)
    with pytest.raises(ValueError, match="yscale must be"):
        plot.hessian_spectrum(problem, q.canonical_point(problem, learned), yscale="log")


def test_conservation_drift_one_line_per_run(run, descent):
    axes = _axes(plot.conservation_drift([run, descent]))
    assert [line.get_linestyle() for line in axes.lines] == ["-", "--"]
    assert axes.get_yscale() == "log"
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend == ["flow DOP853, rtol 1e-10", "gradient descent, step 0.02", "round-off (below 1e-12)"]
    drift = axes.lines[1].get_ydata()
    np.testing.assert_allclose(drift[1:], descent.conservation_drift[1:])
    assert np.isnan(drift[0])  # exact zero at t = 0 is not drawn on the log axis
    assert "C(t) - C(0)" in axes.get_ylabel()


def test_fiber_samples_matrix_and_scalar(problem, saddle_fiber, saddle_samples):
    samples, classes = saddle_samples
    axes = _axes(plot.fiber_samples(saddle_fiber, samples, classes=classes))
    assert axes.name == "3d"
    assert _scatter_points(axes) == len(classes) + 1
    assert "S = \\{1\\}" in axes.get_title() and "24 critical points" in axes.get_title()
    scalar = q.fiber(q.Problem.from_sigma([2.0], (1, 1, 1)), (1,))
    axes = _axes(plot.fiber_samples(scalar, scalar.sample(10, rng=0)))
    assert axes.name != "3d" and axes.get_xlabel() == "$w_1$" and axes.get_ylabel() == "$w_2$"
    assert _scatter_points(axes) == 11
    assert len(axes.lines) == 2  # both branches of the hyperbola w_2 w_1 = 2


# ---------------------------------------------------------------------------------------- symmetry pictures
def _lines_of(axes, colour):
    return [line for line in axes.lines if matplotlib.colors.same_color(line.get_color(), colour) and len(line.get_xdata())]


def test_group_orbits_of_the_scalar_chain_are_exact():
    """(1, 1, 1), x = (1.2, 0.5): GL(1) draws both branches of w_1 w_2 = 0.6, the rescalings the branch
    through x, O(1) = {1, -1} the two points x and -x."""
    x = _scalar_point(1.2, 0.5)
    axes = _axes(plot.group_orbits(x, span=3.0, extent=3.0, samples=81))
    gl, rescaling = _lines_of(axes, plot.PALETTE[0]), _lines_of(axes, plot.PALETTE[2])
    assert len(gl) == 2 and len(rescaling) == 1
    for line in gl + rescaling:
        u, v = (np.asarray(c, dtype=float) for c in line.get_data())
        keep = np.isfinite(u)
        assert keep.sum() > 20
        np.testing.assert_allclose((u * v)[keep], 0.6, rtol=1e-12)  # the fiber of W = 0.6
    signs = sorted(float(np.sign(np.nanmean(line.get_xdata()))) for line in gl)
    assert signs == [-1.0, 1.0]  # one curve per component of GL(1), one per branch
    assert np.all(np.asarray(rescaling[0].get_xdata())[np.isfinite(rescaling[0].get_xdata())] > 0)
    points = [c for c in axes.collections if isinstance(c, PathCollection) and c.get_offsets().shape[0] == 1]
    orthogonal = sorted(map(tuple, np.concatenate([c.get_offsets() for c in points[:-1]])))
    assert orthogonal == [(-1.2, -0.5), (1.2, 0.5)]  # act(x, (-1,)) and x; the last marker is the star
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert legend == ["GL orbit (2 components)", "orthogonal orbit (2 components): 2 points", "rescaling orbit", "the point $x$"]
    assert axes.get_title().endswith("< 10^{-12}$")


def test_group_orbits_of_a_larger_network_stay_in_the_fiber():
    """Widths 2-3-2: the rescaling curves keep the rescaling invariant (W_2)_11 (W_1)_11; the end-to-end
    map is constant on every orbit drawn (checked here on the drawn orthogonal curves' end points)."""
    x = q.init.small_random((2, 3, 2), 1.0, rng=2)
    axes = _axes(plot.group_orbits(x, directions=2, span=1.5, samples=41))
    rescaling = _lines_of(axes, plot.PALETTE[2])
    assert len(rescaling) == 2  # the rescalings are connected: one curve per direction
    for line in rescaling:
        u, v = (np.asarray(c, dtype=float) for c in line.get_data())
        np.testing.assert_allclose(u * v, x[0][0, 0] * x[1][0, 0], rtol=1e-12)
    assert len(_lines_of(axes, plot.PALETTE[0])) == len(_lines_of(axes, plot.PALETTE[3])) == 2 * 2  # 2 components
    assert axes.get_title().endswith("< 10^{-12}$") and "widths 2-3-2" in axes.get_title()
    with pytest.raises(ValueError, match="group must be one of"):
        plot.group_orbits(x, groups=("so",))
    with pytest.raises(ValueError, match="entries"):
        plot.group_orbits(x, entries=((1, 0, 0), (3, 0, 0)))
    with pytest.raises(ValueError, match="at least two layers"):
        plot.group_orbits((np.ones((2, 2)),))
    with pytest.raises(ValueError, match="samples must be an integer >= 2"):
        plot.group_orbits(x, samples=1)
    with pytest.raises(ValueError, match="span"):
        plot.group_orbits(x, span=-1.0)


def test_level_set_teleport_draws_the_level_the_orbit_and_both_gradients(scalar2, teleported):
    x, moved = teleported
    value = scalar2.loss(x)
    assert abs(scalar2.loss(moved) - value) <= 1e-12 * value  # teleportation keeps the loss
    norms = [float(np.sqrt(sum(np.sum(G**2) for G in scalar2.gradient(p)))) for p in (x, moved)]
    assert norms[1] > 2.0 * norms[0]
    axes = _axes(plot.level_set_teleport(scalar2, x, moved))
    level = [c for c in axes.collections if type(c).__name__ == "QuadContourSet" and len(c.levels) == 1]
    assert len(level) == 1 and level[0].levels[0] == pytest.approx(value, rel=1e-15)
    orbit = _lines_of(axes, plot.PALETTE[0])
    assert len(orbit) == 2
    for line in orbit:
        np.testing.assert_allclose(line.get_xdata() * line.get_ydata(), 0.6, rtol=1e-12)
    arrows = [text for text in axes.texts if isinstance(text, Annotation) and text.arrow_patch]
    assert len(arrows) == 2
    for arrow, point, norm in zip(arrows, (x, moved), norms):
        start, end = np.asarray(arrow.xyann), np.asarray(arrow.xy)
        np.testing.assert_allclose(start, [point[0][0, 0], point[1][0, 0]], rtol=1e-15)
        grad = scalar2.gradient(point)
        direction = -np.array([grad[0][0, 0], grad[1][0, 0]])
        np.testing.assert_allclose((end - start) / np.linalg.norm(end - start), direction / norm, rtol=1e-12)
    lengths = [np.linalg.norm(np.asarray(a.xy) - np.asarray(a.xyann)) for a in arrows]
    assert lengths[1] / lengths[0] == pytest.approx(norms[1] / norms[0], rel=1e-12)  # one common scale
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert any(f"= {norms[0]:.3g}$" in t for t in legend) and any(f"= {norms[1]:.3g}$" in t for t in legend)
    with pytest.raises(ValueError, match="moved must lie on the level set"):
        plot.level_set_teleport(scalar2, x, _scalar_point(1.2, 0.6))
    with pytest.raises(ValueError, match="widths \\(1, 1, 1\\)"):
        plot.level_set_teleport(q.Problem.from_sigma([2.0], (1, 1, 1, 1)), x + x[:1], x + x[:1])


@settings(max_examples=30, deadline=None)
@given(widths(min_depth=2, max_depth=3, max_width=4), seeds)
def test_quotient_coordinates_are_invariant(shape, seed):
    """path_products under rescalings, orthogonal_invariants under rotations, at points moved far."""
    rng = np.random.default_rng(seed)
    x = q.init.small_random(shape, 1.0, rng=rng)
    r = q.random_rescaling(shape, rng=rng, spread=2.0)  # entries spread over ~e^8
    R = q.random_orthogonal(shape, rng=rng)
    paths = [tuple(int(rng.integers(d)) for d in shape[1:-1]) for _ in range(3)]
    batch = lambda point: tuple(W[None] for W in point)  # noqa: E731
    p = plot.path_products(batch(x), paths)
    expected = [np.prod([x[k][full[k + 1], full[k]] for k in range(len(x))]) for full in ((0,) + path + (0,) for path in paths)]
    np.testing.assert_allclose(p[0], expected, rtol=1e-14)
    np.testing.assert_allclose(plot.path_products(batch(q.act(x, r, group="rescaling")), paths), p, rtol=1e-12)
    scale = float(np.prod([np.linalg.norm(W) for W in x]))
    invariants = plot.orthogonal_invariants(batch(x))
    moved = plot.orthogonal_invariants(batch(q.act(x, R, group="orthogonal")))
    np.testing.assert_allclose(moved[:, 0], invariants[:, 0], rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(moved[:, 1], invariants[:, 1], rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(widths(min_depth=2, max_depth=3, max_width=4), seeds, st.sampled_from(["gl", "orthogonal", "rescaling"]))
def test_orbit_curves_follow_the_exponential(shape, seed, group):
    """group_orbits' one-parameter subgroups exp(t xi) against scipy.linalg.expm."""
    from scipy.linalg import expm

    xi = plot._algebra_direction(shape[1:-1], group, np.random.default_rng(seed))
    if xi is None:  # so(1) = 0: the orthogonal orbit of width-1 hidden layers is finite
        assert group == "orthogonal" and all(d == 1 for d in shape[1:-1])
        return
    times = np.array([-1.5, 0.0, 0.7, 2.0])
    for t, factors in zip(times, plot._exponentials(xi, times, group)):
        for F, Z in zip(factors, xi):
            np.testing.assert_allclose(F, expm(t * Z), rtol=1e-10, atol=1e-12 * np.exp(2.0))


def test_quotient_coordinates_reject_bad_input():
    x = tuple(W[None] for W in q.init.small_random((3, 4, 2), 1.0, rng=0))
    with pytest.raises(ValueError, match="must name one neuron per hidden layer"):
        plot.path_products(x, [(4,)])
    with pytest.raises(ValueError, match="must name one neuron per hidden layer"):
        plot.path_products(x, [(0, 0)])


def test_neighbour_products_are_not_rescaling_invariant_at_depth_three():
    """Why path products: W_2[0, j] W_1[j, 0] changes under the rescaling of hidden layer 2 when h = 3."""
    shape = (1, 2, 2, 1)
    x = q.init.small_random(shape, 1.0, rng=0)
    moved = q.act(x, q.random_rescaling(shape, rng=1, spread=1.0), group="rescaling")
    assert abs(moved[1][0, 0] * moved[0][0, 0] - x[1][0, 0] * x[0][0, 0]) > 1e-3 * abs(x[1][0, 0] * x[0][0, 0])
    batch = lambda point: tuple(W[None] for W in point)  # noqa: E731
    np.testing.assert_allclose(plot.path_products(batch(moved), [(0, 0), (1, 0)]), plot.path_products(batch(x), [(0, 0), (1, 0)]), rtol=1e-12)


def test_rescaling_quotient_flow_curves_differ_orthogonal_ones_coincide(orbit_runs):
    """What is true (measured, docs/pictures.md): flows from one orthogonal orbit are R . x(t), one quotient curve;
    flows from one rescaling orbit start at one quotient point and separate (rescalings are no isometries)."""
    rescaled, rotated, rotations = orbit_runs
    for run, R in zip(rotated, rotations):  # the theorem behind the right panel: the flow commutes with R
        moved = q.act(rescaled[0].points, R)
        assert max(np.max(np.abs(a - b)) for a, b in zip(moved, run.points)) < 1e-7
    figure = plot.rescaling_quotient_flow(rescaled, rotated)
    left, right = figure.axes[:2]
    curves = lambda axes: [np.stack(line.get_data(), axis=1) for line in axes.lines if line.get_label().startswith("start")]  # noqa: E731
    quotient_left, quotient_right = curves(left), curves(right)
    assert len(quotient_left) == len(quotient_right) == 3
    for k, run in enumerate(rescaled):
        np.testing.assert_array_equal(quotient_left[k], plot.path_products(run.points, ((0,), (1,))))
    for k, run in enumerate(rotated):
        np.testing.assert_array_equal(quotient_right[k], plot.orthogonal_invariants(run.points))
    gap = lambda first, other: np.max(np.abs(first - other), axis=1)  # noqa: E731
    param = lambda a, b: np.sqrt(sum(np.sum((A - B) ** 2, axis=(1, 2)) for A, B in zip(a.points, b.points)))  # noqa: E731
    for k in (1, 2):
        assert gap(quotient_left[0], quotient_left[k])[0] < 1e-12  # one quotient point at t = 0
        assert gap(quotient_left[0], quotient_left[k]).max() > 1e-2  # ... then curves 1e5 x further apart than the right's
        assert np.max(gap(quotient_right[0], quotient_right[k])) < 1e-7  # one curve
        assert param(rotated[0], rotated[k]).min() > 0.1  # while the points stay apart
        assert param(rescaled[0], rescaled[k])[0] > 0.1
    assert "apart by $< 10^{-6}$" in right.get_title()
    with pytest.raises(ValueError, match="at least two trajectories"):
        plot.rescaling_quotient_flow(rescaled[:1])


def _procrustes(x, y):
    """h = 2: min_R ||x - R . y|| in closed form, R the polar factor of W_1x W_1y^T + W_2x^T W_2y."""
    U, _, Vt = np.linalg.svd(x[0] @ y[0].T + x[1].T @ y[1])
    R = U @ Vt
    return (R @ y[0], y[1] @ R.T)


def test_quotient_geodesic_lengths_and_losses(fiber_pair):
    from quotient.bundle import ParameterSpace

    problem, x, y = fiber_pair
    aligned = _procrustes(x, y)
    distance = float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(x, aligned))))
    naive = float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(x, y))))
    space = ParameterSpace(problem.widths)
    quotient = space.equip_with_quotient()
    assert quotient.metric.dist(q.to_vector(x), q.to_vector(y)) == pytest.approx(distance, rel=1e-10)
    assert distance < 0.6 * naive
    figure = plot.quotient_geodesic(problem, x, y, samples=41, orbit_samples=60)
    left, right = figure.axes[:2]
    line, geodesic = [l for l in left.lines if l.get_linestyle() == "-"]
    assert line.get_xdata()[-1] == pytest.approx(naive, rel=1e-12)
    assert geodesic.get_xdata()[-1] == pytest.approx(distance, rel=1e-10)
    flat_x, flat_a = q.to_vector(x), q.to_vector(aligned)
    for s, loss in zip(geodesic.get_xdata(), geodesic.get_ydata()):
        point = q.from_vector(flat_x + (s / distance) * (flat_a - flat_x), problem.widths)
        assert loss == pytest.approx(problem.loss(point), rel=1e-8, abs=1e-12)
    assert max(geodesic.get_ydata()) < 0.5 * max(line.get_ydata())  # the geodesic stays nearer the fiber
    assert abs(geodesic.get_ydata()[0]) < 1e-12 and abs(geodesic.get_ydata()[-1]) < 1e-12  # both ends on it
    ecdf = next(l for l in right.lines if l.get_drawstyle() == "steps-post")
    assert np.min(ecdf.get_xdata()) >= distance - 1e-9  # no orbit sample is nearer than the aligned point
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert any(f"= {distance:.3g}$" in t for t in legend) and any(f"= {naive:.3g}$" in t for t in legend)
    assert _axes(plot.quotient_geodesic(problem, x, y, aligned=aligned, samples=5, orbit_samples=0)).lines
    with pytest.raises(ValueError, match="aligned must lie on the orthogonal orbit of y"):
        plot.quotient_geodesic(problem, x, y, aligned=x, samples=5)


# ---------------------------------------------------------------------------------------- figures command
def test_figures_command_writes_the_figures_asked_for(tmp_path, capsys):
    from quotient import figures

    assert set(figures.FIGURES) >= {
        "saddle_to_saddle", "balanced_vs_unbalanced", "quotient_path", "critical_graph",
        "nonstrict_saddle", "scalar_fiber", "hessian_spectra", "conservation",
        "group_orbits", "level_set_teleport", "rescaling_quotient_flow", "quotient_geodesic",
    }  # fmt: skip
    assert figures.main(["--out", str(tmp_path), "--only", "scalar_fiber", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert [path.name for path in tmp_path.iterdir()] == ["scalar_fiber.png"]
    assert (tmp_path / "scalar_fiber.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figures.main(["--out", str(tmp_path), "--only", "scalar_fiber"]) == 0
    assert "scalar_fiber.png" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        figures.main(["--only", "no_such_figure"])


# ---------------------------------------------------------------------------------------- legibility
def _drawn_figure(figure):
    """``figure`` drawn at DPI; returns the renderer."""
    figure.set_dpi(DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def _axis_list(axes):
    return [axes.xaxis, axes.yaxis] + ([axes.zaxis] if axes.name == "3d" else [])


def _shown_ticklabels(axis) -> list:
    """The tick labels drawn: those of ticks within the view (3-D axes keep others, not drawn)."""
    low, high = sorted(axis.get_view_interval())
    slack = 1e-9 * max(1.0, abs(high - low))
    return [
        label for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
        if low - slack <= loc <= high + slack and label.get_visible()
    ]  # fmt: skip


def _boxes(axes, renderer) -> list:
    """(name, window extent) of every piece of text of an axes but its legend and title:
    tick labels, axis labels and the texts drawn in it."""
    found = []
    for axis in _axis_list(axes):
        for label in _shown_ticklabels(axis):
            if label.get_text():
                found.append((f"{axis.axis_name} tick {label.get_text()}", label.get_window_extent(renderer)))
        if axis.label.get_text():
            found.append((f"{axis.axis_name} label", axis.label.get_window_extent(renderer)))
    for text in axes.texts:
        if text.get_visible() and text.get_text():
            found.append((f"text {text.get_text()}", Text.get_window_extent(text, renderer)))
    return found


def _overlapping(boxes, margin: float = 0.5) -> list:
    """Pairs of boxes whose intersection is wider and taller than ``margin`` pixels."""
    pairs = []
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if width > margin and height > margin:
            pairs.append((a, b))
    return pairs


@pytest.mark.parametrize("name", sorted(CASES))
def test_tick_labels_present_and_distinct(name, request):
    """Every axis of every picture has at least two tick labels, all different (issue 13: the depth-6
    loss had none, nonstrict_saddle's loss panel one)."""
    figure = CASES[name][0](request)
    _drawn_figure(figure)
    for axes in _all_axes(figure):
        for axis in _axis_list(axes):
            texts = [label.get_text() for label in _shown_ticklabels(axis)]
            assert len(texts) >= 2 and all(texts), f"{name}: {axis.axis_name} axis has tick labels {texts}"
            assert len(set(texts)) == len(texts), f"{name}: {axis.axis_name} tick labels repeat: {texts}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_text_does_not_overlap(name, request):
    """No two tick labels, axis labels or texts of an axes overlap (issue 13: 3-D panels)."""
    figure = CASES[name][0](request)
    renderer = _drawn_figure(figure)
    for axes in _all_axes(figure):
        assert not _overlapping(_boxes(axes, renderer)), f"{name}: overlapping text {_overlapping(_boxes(axes, renderer))}"


@pytest.mark.parametrize("name", ["quotient_trajectory", "loss_curve", "critical_graph", "fiber_samples_origin"])
def test_texts_inside_the_axes(name, request):
    """Labels of points drawn inside the axes sit inside it (issue 13: quotient.png's corner labels);
    the loss curve's level labels are outside on purpose, beside the right edge."""
    figure = CASES[name][0](request)
    renderer = _drawn_figure(figure)
    axes = _axes(figure)
    frame = axes.get_window_extent(renderer)
    for text in axes.texts:
        if not text.get_text():
            continue
        box = Text.get_window_extent(text, renderer)
        if name == "loss_curve":
            middle = (box.y0 + box.y1) / 2  # a label of the level at the bottom edge is centred on it
            assert frame.x1 <= box.x0 and frame.y0 - 1 <= middle <= frame.y1 + 1, text.get_text()
        else:
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text.get_text()


def test_bound_prints_no_round_off():
    assert plot._bound(1.3e-15) == plot._bound(8.9e-16) == plot._bound(0.0) == "< 10^{-12}"
    assert plot._bound(3e-5) == "< 10^{-4}" and plot._bound(1e-4) == "< 10^{-3}" and plot._bound(0.5) == "< 10^{0}"


def test_loss_curve_keeps_a_plateau_flat(plateau_run):
    """Depth 6: the loss changes by less than 1e-9; the axis runs from 0 past L_{}, so the curve is flat."""
    loss = plateau_run.loss
    assert np.ptp(loss) < 1e-9
    axes = _axes(plot.loss_curve(plateau_run))
    low, high = axes.get_ylim()
    assert -1e-2 < low < 0.0 and high > 7.0  # L_{} = 7
    scale = axes.yaxis.get_transform()
    span = np.diff(scale.transform(np.array([[low], [high]])).ravel())[0]
    drawn = np.ptp(scale.transform(loss.reshape(-1, 1)))
    assert drawn / span < 1e-6  # the 1e-10 change is not stretched over the picture


def test_nonstrict_saddle_loss_panel_has_ticks():
    """figures.nonstrict_saddle's loss panel: several distinct y tick labels (issue 13: it had one)."""
    from quotient import figures

    figure = figures.nonstrict_saddle()
    _drawn_figure(figure)
    loss = next(axes for axes in _all_axes(figure) if axes.get_title().startswith("the loss"))
    texts = [label.get_text() for label in _shown_ticklabels(loss.yaxis)]
    assert len(texts) >= 3 and len(set(texts)) == len(texts) and all(texts), texts


@pytest.mark.parametrize("three", [False, True])
def test_quotient_end_marker_is_not_hidden(run, three):
    """The end dot is drawn over the hollow diamond at Sigma where the flow ends (issue 13)."""
    modes = (1, 2, 3) if three else (1, 2)
    axes = _axes(plot.quotient_trajectory([run, run], modes=modes, labels=["a", "b"]))
    if three:
        assert axes.computed_zorder is False  # else mplot3d sorts by depth and ignores zorder
    diamonds = [c for c in axes.collections if c.get_paths() and len(c.get_offsets()) == 1 and c.get_zorder() == 4]
    dots = [c for c in axes.collections if c.get_zorder() >= 5]
    assert len(diamonds) == 2 ** len(modes) and len(dots) == 4  # start and end of both runs
    for diamond in diamonds:
        assert np.all(diamond.get_facecolor()[:, 3] == 0)  # hollow: what is under it shows
    end = [dot for dot in dots if dot.get_zorder() == 6]
    assert len(end) == 2 and all(dot.get_zorder() > diamond.get_zorder() for dot in end for diamond in diamonds)
    assert all(dot.get_sizes()[0] < diamonds[0].get_sizes()[0] for dot in dots)  # inside the diamond


def test_fiber_samples_shows_every_class_over_the_star(origin_fiber):
    """``quotient fiber --learned none``: samples at the origin (non-strict saddles) coincide with the
    canonical point; they are drawn over its hollow star, as one dot with their count (issue 13)."""
    chosen, samples, classes = origin_fiber
    counts = {name: classes.count(name) for name in set(classes)}
    assert set(counts) == {"nonstrict_saddle", "strict_saddle"}
    at_origin = sum(all(np.all(layer[k] == 0) for layer in samples) for k in range(len(classes)))
    assert at_origin == counts["nonstrict_saddle"] >= 2
    figure = plot.fiber_samples(chosen, samples, classes=classes)
    axes = _axes(figure)
    assert axes.computed_zorder is False
    star = next(c for c in axes.collections if c.get_label() == "canonical point")
    assert np.all(star.get_facecolor()[:, 3] == 0)
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert f"non-strict saddle ({counts['nonstrict_saddle']})" in legend
    assert f"strict saddle ({counts['strict_saddle']})" in legend
    for collection in axes.collections:
        if isinstance(collection, PathCollection) and collection is not star:
            assert collection.get_zorder() > star.get_zorder()
    assert f"  {counts['nonstrict_saddle']}x" in _texts(axes)
    assert "slog" in axes.get_title() and r"S = \emptyset" in axes.get_title()


def test_every_run_is_named(run, other_run, descent):
    """Several runs get a legend entry each, even without labels; default labels are distinct (issue 13)."""
    legend = _axes(plot.loss_curve([run, other_run])).get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["run 1", "run 2"]
    legend = _axes(plot.quotient_trajectory([run, other_run])).get_legend()
    assert [t.get_text() for t in legend.get_texts()][:2] == ["run 1", "run 2"]
    axes = _axes(plot.conservation_drift([run, other_run, descent]))
    names = [t.get_text() for t in axes.get_legend().get_texts()]
    assert names[:3] == [
        "flow DOP853, rtol 1e-10 (run 1)", "flow DOP853, rtol 1e-10 (run 2)", "gradient descent, step 0.02",
    ]  # fmt: skip
    assert len(set(names)) == len(names)


def test_conservation_drift_draws_round_off_at_the_floor(run):
    axes = _axes(plot.conservation_drift(run, floor=1e-12))
    drift = axes.lines[0].get_ydata()
    expected = np.where(run.conservation_drift > 0, np.maximum(run.conservation_drift, 1e-12), np.nan)
    np.testing.assert_array_equal(drift, expected)
    assert axes.get_ylim()[0] < 1e-12
    with pytest.raises(ValueError, match="floor must be a positive number"):
        plot.conservation_drift(run, floor=0.0)


def test_hessian_spectra_figure_shows_every_critical_value():
    """figures.hessian_spectra: one panel per critical value, as its title says (issue 13: 6 of 8)."""
    from quotient import figures

    figure = figures.hessian_spectra()
    problem = q.Problem.from_sigma((3.0, 2.0, 1.0), (3, 3, 3, 3))
    values = q.critical_values(problem)
    titles = [axes.get_title() for axes in figure.axes]
    assert len(titles) == len(values) == 8
    for value in values:
        assert sum(f"$S = {plot.learned_label(value.learned)}$" in title for title in titles) == 1
    assert f"all {len(values)} critical values" in figure.get_suptitle()
