"""Importing a component module imports neither Beam nor TensorFlow.

A pipeline file imports every component module it uses, so what those modules
import at module level is paid by every run, a fully cached rerun that runs
nothing included; Beam alone takes about two seconds. Components import Beam,
the Beam transforms and TensorFlow inside their function bodies, or through the
helper modules they import from there (listed below).
"""

import pathlib
import pkgutil
import subprocess
import sys

import beam_ml.components

#: Helpers that exist to hold a component's Beam steps: imported only from component bodies.
BEAM_HELPERS = {"_serving", "_writers", "examples_io"}

PROBE = (
    "import importlib, sys; "
    "[importlib.import_module(name) for name in sys.argv[1:]]; "
    "print('heavy', [m for m in ('apache_beam', 'tensorflow') if m in sys.modules])"
)


def test_component_modules_and_thresholds_import_neither_beam_nor_tensorflow():
    names = [
        f"beam_ml.components.{module.name}"
        for module in pkgutil.iter_modules(beam_ml.components.__path__)
        if module.name not in BEAM_HELPERS
    ]
    assert "beam_ml.components.evaluator" in names and "beam_ml.components.statistics_gen" in names
    names.append("beam_ml.transforms.thresholds")
    result = subprocess.run([sys.executable, "-c", PROBE, *names], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "heavy []", result.stdout


def _component_modules() -> list[str]:
    """The modules of beam_ml.components that declare a component (``@component``)."""
    import ast
    import importlib.util

    names = []
    for module in pkgutil.iter_modules(beam_ml.components.__path__):
        origin = importlib.util.find_spec(f"beam_ml.components.{module.name}").origin
        tree = ast.parse(pathlib.Path(origin).read_text())
        decorated = any(
            isinstance(node, ast.FunctionDef) and any(getattr(d, "id", None) == "component" for d in node.decorator_list)
            for node in ast.walk(tree)
        )
        if decorated:
            names.append(module.name)
    return names


def _imported_modules(name: str) -> set[str]:
    """Every module a module imports, at module level or inside a function."""
    import ast
    import importlib.util

    origin = importlib.util.find_spec(f"beam_ml.components.{name}").origin
    found: set[str] = set()
    for node in ast.walk(ast.parse(pathlib.Path(origin).read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_component_module_imports_another():
    """Artifacts own their layout and I/O (beam_ml.artifacts): a component that needs another's
    files asks the artifact, so no component module imports a sibling component module."""
    components = _component_modules()
    assert {"example_gen", "statistics_gen", "schema_gen", "trainer", "tuner", "evaluator", "pusher"} <= set(components)
    crossings = {
        name: sorted(f"beam_ml.components.{other}" for other in components
                     if other != name and f"beam_ml.components.{other}" in _imported_modules(name))
        for name in components
    }
    assert {name: found for name, found in crossings.items() if found} == {}
