"""The ``Examples`` sections of the docstrings run and print what they show.

Each docstring with examples is one test (``test_examples[quotient.network.end_to_end]``), run by the
standard library's :mod:`doctest` with its default comparison: the output must match exactly, so an
example prints only values that are the same on every CPU (small integers and exact binary fractions,
or booleans of ``np.allclose``), never the last digits of a computed float.

The modules are listed here rather than collected with ``--doctest-modules``: that option would
import every module of the package a second time under another name, and run the examples of modules
that have not been written for it. Add a module to ``MODULES`` once its examples pass
``python -m pytest --doctest-modules quotient/<module>.py``.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "quotient.network",
    "quotient.groups",
    "quotient.symmetry",
    "quotient.orbit",
    "quotient.rank_manifold",
    "quotient.bundle",
    "quotient.conservation",
    "quotient.init",
    "quotient.datasets",
    "quotient.interop",
    "quotient.plot",
)


def _examples() -> dict[str, doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples:
                found[test.name] = test
    return dict(sorted(found.items()))


EXAMPLES = _examples()


def test_the_examples_are_found():
    # the entry points documented with an example (a floor, not the exact count: more may come)
    for name in (
        "quotient.network.end_to_end",
        "quotient.network.conserved_quantities",
        "quotient.network.to_adjacency",
        "quotient.symmetry.act",
        "quotient.orbit.balance",
        "quotient.groups.as_group",
        "quotient.rank_manifold.RankManifold",
        "quotient.conservation.count_conservation_laws",
    ):
        assert name in EXAMPLES, name
    assert len(EXAMPLES) >= 25


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_examples(name):
    test = EXAMPLES[name]
    # a fresh copy of the module's globals for every docstring, as pytest's doctest runner does
    test.globs = dict(test.globs)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    output: list[str] = []
    result = runner.run(test, out=output.append)
    assert result.attempted > 0
    assert result.failed == 0, "".join(output)
