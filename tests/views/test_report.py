"""`beam-ml report`: one self-contained HTML file holding the views of everything a run produced."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from beam_ml.metadata.lineage import lineage_graph
from beam_ml.run import main


class ResourceReferences(HTMLParser):
    """Every URL the page would load or link to: tag attributes and CSS url(...) outside scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts_with_src: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "action", "poster", "data", "srcset") and value:
                self.urls.append(value)
        if tag == "script" and dict(attrs).get("src"):
            self.scripts_with_src.append(dict(attrs)["src"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls.extend(re.findall(r"url\(\s*['\"]?([^)'\"]+)", data) + re.findall(r"@import\s+['\"]([^'\"]+)", data))


def external(urls: list[str]) -> list[str]:
    return [u for u in urls if re.match(r"\s*(https?:)?//", u, re.IGNORECASE)]


def test_report_of_the_penguin_run_is_one_offline_file_with_every_view(penguin_run, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", str(penguin_run.run_number), "--pipeline", penguin_run.pipeline, "--out", str(out), "--pipeline-root", str(penguin_run.root)]) == 0
    assert "wrote" in capsys.readouterr().out
    html = out.read_text()

    refs = ResourceReferences()
    refs.feed(html)
    assert external(refs.urls) == [], external(refs.urls)
    assert refs.scripts_with_src == []
    assert "Plotly.newPlot" in html and "window.Plotly" in html  # the library itself is inlined

    with penguin_run.store() as store:
        executions = store.executions_of_run(penguin_run.run_id)
        artifacts = {a.id: a for e in executions for a in store.outputs_of(e.id).values()}
    for execution in executions:
        assert f'id="execution-{execution.id}"' in html
    for artifact_id in artifacts:
        assert f'id="artifact-{artifact_id}"' in html
    # Statistics: both splits, each numeric feature with its histogram, the label's top values.
    assert 'data-feature="bill_length_mm" data-dataset="train"' in html
    assert 'data-feature="bill_length_mm" data-dataset="eval"' in html
    assert re.search(r"Adelie \(\d+\)", html)
    # Anomalies: the measured figure and the schema's expectation beside it.
    assert re.search(r"present in 126 of 128 rows \(98\.4%\).*?required", html, re.DOTALL)
    # Evaluation: overall and per-slice rows, and the blessing with its verdict.
    assert 'data-slice="Overall"' in html and 'data-slice="island=Biscoe"' in html
    assert "BLESSED" in html
    # ... and its curves, calibration and the 3x3 confusion matrix of the species, drawn from plots.json.
    for title in ("ROC (Overall)", "precision-recall (Overall)", "calibration (Overall)", "confusion matrix (Overall)"):
        assert title in html
    assert re.search(r'"x":\["Adelie","Chinstrap","Gentoo"\],"y":\["Adelie","Chinstrap","Gentoo"\]', html)
    # Links inside the file are anchors that exist in it.
    for anchor in set(re.findall(r'href="#([\w-]+)"', html)):
        assert f'id="{anchor}"' in html, anchor


def test_report_of_an_unknown_run_says_how_to_find_runs(penguin_run, tmp_path, capsys):
    code = main(["report", "999", "--pipeline", penguin_run.pipeline, "--out", str(tmp_path / "r.html"), "--pipeline-root", str(penguin_run.root)])
    assert code == 2
    assert "has no run 999; `beam-ml runs` lists its runs" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_lineage_graph_names_each_artifact_and_execution_once(penguin_run):
    with penguin_run.store() as store:
        model = next(a for e in store.executions_of_run(penguin_run.run_id)
                     for a in store.outputs_of(e.id).values() if a.type_name == "Model")
        graph = lineage_graph(store, model.id)
    dot = graph.to_dot()
    types = {a.type_name for a in graph.artifacts.values()}
    assert {"Examples", "Schema", "TransformGraph", "Model", "ModelEvaluation", "PushedModel", "InferenceResult"} <= types
    components = {e.component_id for e in graph.executions.values()}
    assert {"ExampleGen", "SchemaGen", "Transform", "Trainer", "Evaluator", "Pusher", "BulkInferrer"} <= components
    for artifact_id in graph.artifacts:
        assert len(re.findall(rf"^  a{artifact_id} \[", dot, re.MULTILINE)) == 1
    for execution_id in graph.executions:
        assert len(re.findall(rf"^  e{execution_id} \[", dot, re.MULTILINE)) == 1
    trainer = next(e for e in graph.executions.values() if e.component_id == "Trainer")
    assert f"  e{trainer.id} -> a{model.id} [label=\"model\"];" in dot
