"""Marks shared by the test files: the ``slow`` marker, assigned here so that the test files stay as they are.

``python -m pytest`` (CI, ``.ci/run``) runs everything; ``python -m pytest -m "not slow"`` leaves out, while
developing, the notebooks, the dask clusters, the image comparisons and the tests measured over ~2 s
(``--durations=60``, 2 workers at load ~2, 2026-12-02). The marker is registered in pyproject.toml.
"""

import matplotlib

matplotlib.use("Agg")

# Tests by function name (every parametrisation), grouped by why they are slow. A name that no longer exists
# only stops marking; rename it here with the test.
SLOW_TESTS = {
    # dask clusters: a LocalCluster of worker processes, or a sweep killed and resumed in a subprocess
    "test_tiny_sweep_on_a_local_cluster",
    "test_a_scheduler_address_is_accepted",
    "test_a_killed_sweep_resumes_with_nothing_recomputed_or_lost",
    # image comparisons: render, then compare pixels against tests/baseline/*.png
    "test_baseline_image",
    "test_tolerance_catches_a_missing_element",
    "test_rendering_is_deterministic",
    # measured over ~2 s a call
    "test_explore_overwrite_killed_leaves_one_complete_run",  # 5.3-5.7 s
    "test_explore_explains_a_cut_default_sigma_and_a_plateau",  # 2.3 s
    "test_landscape_answers_are_invariant_under_badly_conditioned_gl",  # 2.0-4.0 s
    "test_rank_conditions_agree_with_the_hessian_on_random_critical_points",  # 2.4 s
    "test_samples_are_as_accurate_as_the_steps",  # 2.6-4.0 s
    "test_stiff_members_until_minimum_agree_with_gradient_flow",  # 2.4-3.0 s
    "test_gradient_tol_stops_each_member_where_gradient_flow_would",  # 2.1 s
    "test_tangent_space_at_a_moved_point_is_spanned_by_moved_secants",  # 1.3-2.4 s
    "test_secants_to_nearby_fiber_points_span_the_tangent_space",  # 1.3-2.0 s
}


def pytest_collection_modifyitems(config, items):
    """Mark as ``slow`` every notebook (nbmake item, 3-5 s each) and every test named in SLOW_TESTS."""
    import pytest

    for item in items:
        name = getattr(item, "originalname", None) or item.name.split("[")[0]
        if item.path.suffix == ".ipynb" or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
