"""Every CombineFn of the project has a contract test: a new one without it fails here.

The project's CombineFns are found in the source (classes deriving from
`beam.CombineFn` or from the statistics' `StatsGenerator`, which keeps the same
contract, or from one of the project's CombineFns), not listed by hand; an
abstract class (one with an abstract method) is left to its concrete subclasses.
A CombineFn counts as covered when a contract test module (a module of
tests/contracts that subclasses `CombineFnContract`) names it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("beam_ml", "transforms", "runners", "examples")
CONTRACTS = Path(__file__).resolve().parent


def _base_names(node: ast.ClassDef) -> set[str]:
    """The names of a class's bases; a generic base (`StatsGenerator[_A]`) by its own name."""
    bases = [base.value if isinstance(base, ast.Subscript) else base for base in node.bases]
    return {base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "") for base in bases}


def _is_abstract(node: ast.ClassDef) -> bool:
    return any(
        isinstance(item, ast.FunctionDef)
        and any(ast.unparse(decorator).endswith("abstractmethod") for decorator in item.decorator_list)
        for item in node.body
    )


def project_combine_fns() -> dict[str, str]:
    """Class name → file, for every CombineFn class defined in the project's code."""
    classes = []
    for root in SOURCES:
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef):
                    classes.append((node.name, _base_names(node), str(path.relative_to(REPO)), _is_abstract(node)))
    found: dict[str, str] = {}
    known = {"CombineFn", "StatsGenerator"}
    while True:  # subclasses of subclasses
        new = {name: (path, abstract) for name, bases, path, abstract in classes if bases & known and name not in known}
        if not new:
            return found
        found.update({name: path for name, (path, abstract) in new.items() if not abstract})
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
    generators = {"PresenceStatsGenerator", "NumericStatsGenerator", "StringStatsGenerator", "BytesStatsGenerator"}
    assert generators <= set(found), found
    assert not {"_BuiltInGenerator", "_ValueStatsGenerator"} & set(found), "abstract classes are not checked"


def test_every_combine_fn_has_a_contract_test() -> None:
    sources = contract_test_sources()
    uncovered = {
        name: path for name, path in project_combine_fns().items() if not any(name in text for text in sources)
    }
    assert not uncovered, (
        f"CombineFns without a contract test: {uncovered}. Add a test class inheriting "
        "CombineFnContract (tests/contracts/combine_fn_contract.py) with its combine_fn and inputs fixtures."
    )
