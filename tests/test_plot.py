"""Pictures (quotient/plot.py): every function renders, draws what it should, and matches its baseline.

Each picture is checked twice: its content (labels, the number of levels, lines and points drawn,
computed from the library independently of the drawing) and its pixels, against a committed PNG in
``tests/baseline`` with a tolerance. The tolerance is checked too: removing a single element (a
level, a curve, an arrow, a marker) from each picture must fail the comparison.

Rendering is deterministic: fixed seeds, matplotlib's default style (so no user ``matplotlibrc``
leaks in), its bundled DejaVu Sans font, fixed sizes and ``DPI``. After an intended change to a
picture, regenerate the baselines and look at them before committing::

    QUOTIENT_UPDATE_BASELINES=1 python -m pytest tests/test_plot.py -k baseline

"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.testing.compare import compare_images
from matplotlib.text import Annotation, Text

import quotient as q
from quotient import plot

BASELINE = Path(__file__).parent / "baseline"
UPDATE = os.environ.get("QUOTIENT_UPDATE_BASELINES") == "1"
DPI = 60
#: RMS of the pixel difference (0..255 scale) allowed against a baseline. The same matplotlib renders
#: these pictures byte for byte (its wheels bundle FreeType and the DejaVu fonts); removing any single
#: element of a picture gives an RMS of 2.1 (an orbit curve of the scalar fiber) to 14
#: (test_tolerance_catches_a_missing_element checks every case). Text is the fragile part: another
#: FreeType hinting mode moves every glyph and gives an RMS near 20, which no tolerance can absorb
#: while still seeing a missing curve, hence the matplotlib pin in the test extra (pyproject.toml).
TOLERANCE = 1.0


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
    # DOP853 pinned: the conservation-drift baseline image is this method's drift curve
    return q.gradient_flow(problem, point0, 500.0, t_eval=times, gradient_tol=1e-8, method="DOP853", progress=False)


@pytest.fixture(scope="module")
def other_run(problem):
    times = np.r_[0.0, np.geomspace(1e-2, 500.0, 300)]
    point0 = q.init.small_random(problem.widths, 3e-2, rng=1)
    return q.gradient_flow(problem, point0, 500.0, t_eval=times, gradient_tol=1e-8, progress=False)


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


def _axes(figure):
    """The main axes (colorbars and legends aside)."""
    return figure.axes[0]


def _texts(axes):
    return [text.get_text() for text in axes.texts]


def _scatter_points(axes) -> int:
    return sum(len(c.get_offsets()) for c in axes.collections if isinstance(c, PathCollection))


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
    [c for c in _axes(figure).collections if isinstance(c, PathCollection)][-1].remove()


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
}


def _render(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, metadata={"Software": None})
    return path


def _compare(expected: Path, actual: Path):
    """``None`` when the images agree within TOLERANCE, else compare_images's report (a dict)."""
    return compare_images(str(expected), str(actual), tol=TOLERANCE, in_decorator=True)


# ---------------------------------------------------------------------------------------- images
@pytest.mark.parametrize("name", sorted(CASES))
def test_baseline_image(name, request, tmp_path):
    actual = _render(CASES[name][0](request), tmp_path / f"{name}.png")
    expected = BASELINE / f"{name}.png"
    if UPDATE:
        BASELINE.mkdir(exist_ok=True)
        shutil.copyfile(actual, expected)
        (BASELINE / "matplotlib-version.txt").write_text(matplotlib.__version__ + "\n")
    assert expected.exists(), f"no baseline {expected}; make it with QUOTIENT_UPDATE_BASELINES=1 (see module docstring)"
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


def test_loss_curve_draws_the_visited_levels_labelled_by_learnt_sets(problem, run):
    figure = plot.loss_curve(run)
    axes = _axes(figure)
    visited = {p.critical_value for p in q.plateaus(problem, run.times, run.loss)}
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
    path = graph.path(q.plateaus(problem, run.times, run.loss))
    assert [graph.nodes[n].learned for n in path] == [(), (1,), (1, 2), (1, 2, 3)]
    arrows = [text for text in axes.texts if isinstance(text, Annotation) and text.arrow_patch]
    assert len(arrows) == len(path) - 1
    for arrow, (a, b) in zip(arrows, zip(path, path[1:])):
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
    # the end-to-end map is constant on the fiber: the title quotes its spread
    assert float(left.get_title().split("= ")[-1].rstrip("$")) < 1e-9
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
    assert legend == ["flow DOP853, rtol 1e-10", "gradient descent, step 0.02"]
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


# ---------------------------------------------------------------------------------------- figures command
def test_figures_command_writes_the_figures_asked_for(tmp_path, capsys):
    from quotient import figures

    assert set(figures.FIGURES) >= {
        "saddle_to_saddle", "balanced_vs_unbalanced", "quotient_path", "critical_graph",
        "nonstrict_saddle", "scalar_fiber", "hessian_spectra", "conservation",
    }  # fmt: skip
    assert figures.main(["--out", str(tmp_path), "--only", "scalar_fiber", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert [path.name for path in tmp_path.iterdir()] == ["scalar_fiber.png"]
    assert (tmp_path / "scalar_fiber.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figures.main(["--out", str(tmp_path), "--only", "scalar_fiber"]) == 0
    assert "scalar_fiber.png" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        figures.main(["--only", "no_such_figure"])
