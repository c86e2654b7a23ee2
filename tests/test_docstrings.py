"""Every public callable documents its parameters, its return value and what it raises.

The public API is what ``quotient.__all__`` names, the other functions and classes of the package
importable from ``quotient`` (``quotient.count_conservation_laws``, ...), the public modules
``__all__`` exports (``quotient.groups``, ``quotient.init``, ...), the modules loaded on use
(``quotient.bundle``, ``quotient.plot``) and the public methods and properties of every public
class. Each is checked
with numpydoc's own validator for:

- GL08: a docstring at all;
- PR01 / PR02: every parameter documented, no documented parameter that does not exist;
- PR07: every documented parameter described;
- RT01: a Returns (or Yields) section where the callable returns a value;

and, by reading the source, a ``Raises`` section wherever the body itself raises an exception (a
``raise`` statement outside an ``except`` clause that re-raises).
"""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import textwrap
import types

import pytest
from numpydoc.docscrape import NumpyDocString
from numpydoc.validate import validate

import quotient

CHECKS = ("GL08", "PR01", "PR02", "PR07", "RT01")

# Public modules that ``import quotient`` does not load (matplotlib, geomstats are imported on use).
SEPARATE_MODULES = ("quotient.bundle", "quotient.plot")


def _public_api() -> dict[str, object]:
    found: dict[str, object] = {}

    def visit(prefix: str, owner) -> None:
        for name in getattr(owner, "__all__", ()):
            value = getattr(owner, name)
            path = f"{prefix}.{name}"
            if isinstance(value, types.ModuleType):
                if value.__name__.startswith("quotient.") and path == f"quotient.{name}":
                    visit(value.__name__, value)
                continue
            visit_class_or_function(value)

    def visit_class_or_function(value) -> None:
        if inspect.isclass(value):
            found.setdefault(f"{value.__module__}.{value.__qualname__}", value)
            # its own members, and those it inherits from a private base of the package (which is
            # documented nowhere else); public bases are checked under their own names
            owners = [value] + [
                base
                for base in value.__mro__[1:]
                if base.__module__.startswith("quotient.") and base.__name__.startswith("_")
            ]
            for owner in owners:
                for attribute, member in vars(owner).items():
                    if attribute.startswith("_") or (owner is not value and attribute in vars(value)):
                        continue
                    if inspect.isfunction(member) or isinstance(member, (property, classmethod, staticmethod)):
                        found.setdefault(f"{value.__module__}.{value.__qualname__}.{attribute}", member)
        elif inspect.isfunction(value):
            found.setdefault(f"{value.__module__}.{value.__qualname__}", value)

    visit("quotient", quotient)
    # Functions and classes importable as ``quotient.X`` that ``__all__`` does not name (e.g. the
    # conservation-law counts): public by the flat namespace all the same.
    for name, value in vars(quotient).items():
        if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value)):
            if getattr(value, "__module__", "").startswith("quotient."):
                visit_class_or_function(value)
    for module in SEPARATE_MODULES:
        visit(module, importlib.import_module(module))
    return dict(sorted(found.items()))


PUBLIC = _public_api()


def _function(member):
    if isinstance(member, property):
        return member.fget
    if isinstance(member, (classmethod, staticmethod)):
        return member.__func__
    return member if inspect.isfunction(member) else None


def _raises_directly(function) -> bool:
    """Whether the body raises an exception itself (a bare ``raise`` re-raising is not counted)."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return False
    tree = ast.parse(source)
    body = tree.body[0]
    for node in ast.walk(body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not body:
            continue
        if isinstance(node, ast.Raise) and node.exc is not None:
            if not _inside_nested_function(body, node):
                return True
    return False


def _inside_nested_function(body, target) -> bool:
    for node in ast.walk(body):
        if node is not body and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if any(child is target for child in ast.walk(node)):
                return True
    return False


def _has_a_constructor(member) -> bool:
    """Whether users build the object by calling it: not for an enumeration (``Status(0)`` looks a
    member up) nor a ``typing.Protocol`` (which cannot be instantiated); their signature is the
    standard library's."""
    if not inspect.isclass(member):
        return True
    return not (issubclass(member, enum.Enum) or getattr(member, "_is_protocol", False))


def test_the_public_api_is_found():
    assert "quotient.critical.classify" in PUBLIC or any(name.endswith(".classify") for name in PUBLIC)
    assert len(PUBLIC) > 150


@pytest.mark.parametrize("name", list(PUBLIC))
def test_numpydoc_sections(name):
    checks = CHECKS if _has_a_constructor(PUBLIC[name]) else tuple(c for c in CHECKS if c not in ("PR01", "PR02"))
    errors = [f"{code}: {message}" for code, message in validate(name)["errors"] if code in checks]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("name", [name for name, member in PUBLIC.items() if _function(member) or inspect.isclass(member)])
def test_raises_section_where_the_body_raises(name):
    member = PUBLIC[name]
    if not _has_a_constructor(member):
        return
    function = member.__init__ if inspect.isclass(member) and "__init__" in vars(member) else _function(member)
    if function is None or not _raises_directly(function):
        return
    document = inspect.getdoc(member if inspect.isclass(member) else function) or ""
    assert NumpyDocString(document)["Raises"], f"{name} raises but its docstring has no Raises section"
