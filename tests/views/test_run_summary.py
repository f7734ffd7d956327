"""The run summary and `show --run N` name every output's artifact id, and the summary the commands that show them."""

from __future__ import annotations

import re
from pathlib import Path

from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root
from beam_ml.run import main

PENGUIN = Path(__file__).resolve().parents[2] / "examples" / "penguin" / "pipeline.py"

DATA_PIPELINE = """\
import importlib.util

_spec = importlib.util.spec_from_file_location("penguin_example_pipeline", {path!r})
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)


def create_pipeline():
    return _example.create_data_pipeline()
"""


def test_run_summary_and_show_run_print_each_outputs_artifact_id(tmp_path, capsys):
    pipeline_file = tmp_path / "penguin_data.py"
    pipeline_file.write_text(DATA_PIPELINE.format(path=str(PENGUIN)))
    root = tmp_path / "root"
    assert main(["run", str(pipeline_file), "--pipeline-root", str(root)]) == 0
    out = capsys.readouterr().out
    printed = {m.group(1): (m.group(2), int(m.group(3)))
               for m in re.finditer(r"^  (\w+\.\w+): .*?\[(\w+) (\d+)\]$", out, re.MULTILINE)}
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        (run,) = store.list_runs()
        recorded = {f"{e.component_id}.{name}": (a.type_name, a.id)
                    for e in store.executions_of_run(run.id) for name, a in store.outputs_of(e.id).items()}
    assert printed == recorded
    assert "ExampleGen.examples: rows: train" in out  # the summary stays in front of the id
    assert f"run 1 of {run.pipeline}: COMPLETE" in out
    assert f"beam-ml report 1 --pipeline {run.pipeline} --out report.html --pipeline-root {root}" in out

    assert main(["show", "--run", "1", "--pipeline-root", str(root)]) == 0
    listing = capsys.readouterr().out
    for key, (type_name, artifact_id) in recorded.items():
        component, name = key.split(".")
        assert re.search(rf"^ \d+\s+{component}\s+COMPLETE .*\b{artifact_id} {name} \({type_name}\)", listing, re.MULTILINE), key
    assert main(["show", "--pipeline-root", str(root)]) == 2
    assert "ARTIFACT_ID, or --run N" in capsys.readouterr().err
