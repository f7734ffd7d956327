"""The example notebook runs top to bottom in a real kernel and shows the views inline; InteractiveContext records runs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "penguin" / "penguin.ipynb"


def html_outputs(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.get("outputs", []))


def test_penguin_notebook_runs_and_shows_the_views(tmp_path, monkeypatch):
    root = tmp_path / "notebook-root"
    monkeypatch.setenv("BEAM_ML_NOTEBOOK_ROOT", str(root))
    monkeypatch.setenv("BEAM_ML_NOTEBOOK_TRAIN_STEPS", "50")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()

    code = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    shown = {c.source.strip().splitlines()[-1]: html_outputs(c) for c in code}
    statistics = shown["ctx.show(statistics_gen.outputs.statistics)"]
    assert 'data-feature="body_mass_g" data-dataset="train"' in statistics and "Plotly.newPlot" in statistics
    assert "window.Plotly" in statistics  # the library travels with the output: it renders offline
    assert 'data-feature="species"' in shown["ctx.show(schema_gen.outputs.schema)"]
    assert "present in 126 of 128 rows" in shown["ctx.show(example_validator.outputs.anomalies)"]
    evaluation = shown["ctx.show(evaluator)"]
    assert 'data-slice="island=Biscoe"' in evaluation and "BLESSED" in evaluation
    last = code[-1].outputs[-1]["data"]["text/plain"]
    assert last == "'CACHED'"

    # Each ctx.run() is a recorded run; the upstream steps of a run come from the cache.
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        runs = store.list_runs("penguin-notebook")
        assert len(runs) == 8
        last_run = store.executions_of_run(runs[0].id)
        assert [e.state for e in last_run] == ["CACHED", "CACHED"]
        assert all(os.path.isdir(a.uri) for a in store.artifacts_in_state("LIVE"))


def test_interactive_context_asks_for_upstream_components_first(tmp_path):
    import pytest

    from beam_ml.components.example_gen import ExampleGen
    from beam_ml.components.statistics_gen import StatisticsGen
    from beam_ml.interactive import InteractiveContext

    ctx = InteractiveContext(pipeline_root=str(tmp_path))
    example_gen = ExampleGen(input_path=str(tmp_path / "data.csv"))
    with pytest.raises(ValueError, match=r"StatisticsGen reads outputs of ExampleGen: ctx.run\(\) those first"):
        ctx.run(StatisticsGen(examples=example_gen.outputs.examples))
    with pytest.raises(ValueError, match=r"ExampleGen has not run in this context"):
        ctx.show(example_gen.outputs.examples)
