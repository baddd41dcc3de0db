"""Every example in kiku's docstrings runs and prints what it says (the docs cannot drift from the code)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import kiku

MODULES = sorted(m.name for m in pkgutil.walk_packages(kiku.__path__, prefix="kiku.") if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} failed (details above)"


def test_the_doctests_cover_the_stage_modules() -> None:
    """A guard against the walk finding nothing (which would make the test above vacuous)."""
    assert {"kiku.naming", "kiku.embed", "kiku.llm.hierarchy", "kiku.loaders._stream", "kiku.classify.drift"} <= set(MODULES)
