"""Every CombineFn of the project has a contract test: a new one without it fails here.

The project's CombineFns are found in the source (classes deriving from
`beam.CombineFn`, or from one of the project's CombineFns), not listed by hand;
a CombineFn counts as covered when a contract test module (a module of
tests/contracts that subclasses `CombineFnContract`) names it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("beam_ml", "transforms", "runners", "examples")
CONTRACTS = Path(__file__).resolve().parent


def _base_names(node: ast.ClassDef) -> set[str]:
    return {base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "") for base in node.bases}


def project_combine_fns() -> dict[str, str]:
    """Class name → file, for every CombineFn class defined in the project's code."""
    classes = []
    for root in SOURCES:
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef):
                    classes.append((node.name, _base_names(node), str(path.relative_to(REPO))))
    found: dict[str, str] = {}
    known = {"CombineFn"}
    while True:  # subclasses of subclasses
        new = {name: path for name, bases, path in classes if bases & known and name not in found}
        if not new:
            return found
        found.update(new)
        known |= set(new)


def contract_test_sources() -> list[str]:
    """The text of each tests/contracts module that subclasses CombineFnContract."""
    sources = []
    for path in sorted(CONTRACTS.glob("test_*.py")):
        text = path.read_text()
        classes = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ClassDef)]
        if any("CombineFnContract" in _base_names(n) for n in classes):
            sources.append(text)
    return sources


def test_the_project_has_combine_fns_to_check() -> None:
    found = project_combine_fns()
    assert {"StatisticsCombineFn", "_UnifyColumns", "MetricsCombineFn", "AUCCurves"} <= set(found), found


def test_every_combine_fn_has_a_contract_test() -> None:
    sources = contract_test_sources()
    uncovered = {
        name: path for name, path in project_combine_fns().items() if not any(name in text for text in sources)
    }
    assert not uncovered, (
        f"CombineFns without a contract test: {uncovered}. Add a test class inheriting "
        "CombineFnContract (tests/contracts/combine_fn_contract.py) with its combine_fn and inputs fixtures."
    )
