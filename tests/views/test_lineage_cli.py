"""`beam-ml lineage`: each step and artifact printed once, and `--format dot` for Graphviz."""

from __future__ import annotations

import re

from beam_ml.run import main


def penguin_model(penguin_run):
    with penguin_run.store() as store:
        trainer = next(e for e in store.executions_of_run(penguin_run.run_id) if e.component_id == "Trainer")
        return store.outputs_of(trainer.id)["model"]


def test_lineage_prints_each_step_and_artifact_once(penguin_run, capsys):
    model = penguin_model(penguin_run)
    assert main(["lineage", str(model.id), "--pipeline-root", str(penguin_run.root)]) == 0
    text = capsys.readouterr().out
    executions = re.findall(r"\(execution (\d+), run", text)
    assert len(executions) == len(set(executions))
    components = set(re.findall(r"^  [←→] (\w+) \(execution", text, re.MULTILINE))
    # every step but the unlabelled data's ExampleGen and the validator, whose output the model never read
    assert components == {"ExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer",
                          "Evaluator", "InfraValidator", "BulkInferrer", "Pusher"}
    listed = re.findall(r"^  (\w+ \d+)", text, re.MULTILINE)
    assert len(listed) == len(set(listed))
    assert f"Model {model.id} (this one)" in text
    assert "← Trainer" in text and "← ExampleGen" in text and "→ Pusher" in text and "→ BulkInferrer" in text
    # one line per step and per artifact, and three headings: the tree repeated ancestors under every path
    assert len(text.splitlines()) == len(executions) + len(listed) + 3


def test_lineage_dot_is_a_graph_of_artifacts_and_executions(penguin_run, capsys):
    model = penguin_model(penguin_run)
    assert main(["lineage", str(model.id), "--pipeline-root", str(penguin_run.root), "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert f"a{model.id} [shape=box, style=bold" in dot
    nodes = re.findall(r"^  ([ae]\d+) \[", dot, re.MULTILINE)
    assert len(nodes) == len(set(nodes))
    edges = re.findall(r"^  ([ae]\d+) -> ([ae]\d+) \[label=", dot, re.MULTILINE)
    assert len(edges) == len(set(edges)) and all({a[0], b[0]} == {"a", "e"} for a, b in edges)
