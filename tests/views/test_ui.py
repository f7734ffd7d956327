"""`beam-ml ui`: pipelines → runs → executions → artifacts → lineage, and comparisons, against SQLite and PostgreSQL."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from beam_ml.ui import create_app


def links(html: str, pattern: str) -> list[str]:
    return list(dict.fromkeys(re.findall(rf'href="({pattern})"', html)))


def walk(store, run_id: int) -> dict[str, str]:
    """Follow the links a person would, from the home page to an artifact's lineage; returns each page."""
    pages = {}
    with TestClient(create_app(store)) as client:
        home = client.get("/")
        assert home.status_code == 200
        pipeline = links(home.text, r"/pipelines/[\w-]+")[0]
        runs = client.get(pipeline)
        assert runs.status_code == 200
        assert f'href="/runs/{run_id}"' in runs.text
        number = store.get_run(run_id).number
        assert f'<a class="run-link" href="/runs/{run_id}">run {number}</a>' in runs.text  # numbered per pipeline
        run = client.get(f"/runs/{run_id}")
        assert run.status_code == 200
        assert f"run {number} of {store.get_run(run_id).pipeline}" in run.text
        pages["run"] = run.text
        for execution in links(run.text, r"/executions/\d+"):
            page = client.get(execution)
            assert page.status_code == 200
            pages[execution] = page.text
            assert "cache key" in page.text and "parameters" in page.text
        for artifact in {a for p in list(pages.values()) for a in links(p, r"/artifacts/\d+")}:
            page = client.get(artifact)
            assert page.status_code == 200, artifact
            pages[artifact] = page.text
            lineage = client.get(links(page.text, r"/artifacts/\d+/lineage")[0])
            assert lineage.status_code == 200
            pages[artifact + "/lineage"] = lineage.text
        for compare in {c for p in list(pages.values()) for c in re.findall(r'href="(/compare\?ids=[\d,]+)"', p)}:
            page = client.get(compare)
            assert page.status_code == 200, compare
            pages[compare] = page.text
        assert client.get("/artifacts/99999").status_code == 404
        assert client.get("/compare?ids=1").status_code == 400
    return pages


def check_data_pages(pages: dict[str, str], store, run_id: int) -> None:
    executions = store.executions_of_run(run_id)
    by_component = {e.component_id: e for e in executions}
    for execution in executions:
        text = pages[f"/executions/{execution.id}"]
        assert execution.cache_key in text
    stats = next(a for a in store.outputs_of(by_component["StatisticsGen"].id).values())
    page = pages[f"/artifacts/{stats.id}"]
    assert 'data-feature="bill_length_mm" data-dataset="train"' in page
    assert 'data-feature="bill_length_mm" data-dataset="eval"' in page
    anomalies = next(a for a in store.outputs_of(by_component["ExampleValidator"].id).values())
    assert re.search(r"present in 126 of 128 rows", pages[f"/artifacts/{anomalies.id}"])
    lineage = pages[f"/artifacts/{anomalies.id}/lineage"]
    for component in ("ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator"):
        assert component in lineage


def test_ui_walks_the_penguin_run_in_sqlite(penguin_run):
    with penguin_run.store() as store:
        pages = walk(store, penguin_run.run_id)
        check_data_pages(pages, store, penguin_run.run_id)
        evaluator = next(e for e in store.executions_of_run(penguin_run.run_id) if e.component_id == "Evaluator")
        evaluation = store.outputs_of(evaluator.id)["evaluation"]
    page = pages[f"/artifacts/{evaluation.id}"]
    assert 'data-slice="island=Dream"' in page and "BLESSED" in page
    # Every execution's page shows its log (the file the runner recorded for it).
    trainer = next(p for k, p in pages.items() if k.startswith("/executions/") and "Trainer: execution" in p)
    assert 'class="log"' in trainer


def test_ui_reads_a_postgresql_store(penguin_data_run_postgres):
    with penguin_data_run_postgres.store() as store:
        pages = walk(store, penguin_data_run_postgres.run_id)
        check_data_pages(pages, store, penguin_data_run_postgres.run_id)


def test_ui_compares_two_statistics_and_highlights_differences(penguin_run, adelie_statistics):
    """Statistics of one run against another: every split of both, side by side, differences marked."""
    everyone, adelie = adelie_statistics
    with penguin_run.store() as store, TestClient(create_app(store)) as client:
        artifact_page = client.get(f"/artifacts/{everyone}")
        assert f'href="/compare?ids={everyone},{adelie}"' in artifact_page.text
        page = client.get(f"/compare?ids={everyone},{adelie}")
    assert page.status_code == 200
    for dataset in (f"#{everyone} train", f"#{everyone} eval", f"#{adelie} train", f"#{adelie} eval"):
        assert f'data-feature="bill_length_mm" data-dataset="{dataset}"' in page.text
    species = re.search(rf'data-feature="species" data-dataset="#{adelie} train">(.*?)</tr>', page.text, re.DOTALL)
    assert species and 'class="n diff">1<' in species.group(1)  # one species left, not three
    assert 'class="n"' in page.text


def test_ui_command_refuses_a_root_that_was_never_run(tmp_path, capsys):
    from beam_ml.run import main

    assert main(["ui", "--pipeline-root", str(tmp_path / "nothing")]) == 2
    assert "has this pipeline root been run?" in capsys.readouterr().err


def test_ui_compares_two_evaluations(penguin_run, two_evaluations):
    first, second = two_evaluations
    with penguin_run.store() as store, TestClient(create_app(store)) as client:
        assert f'href="/compare?ids={first},{second}"' in client.get(f"/artifacts/{first}").text
        page = client.get(f"/compare?ids={first},{second}")
    assert page.status_code == 200
    assert f"<th>#{first}</th><th>#{second}</th>" in page.text
    overall = re.search(r'data-slice="Overall"><td>Overall</td><td>accuracy</td>(.*?)</tr>', page.text, re.DOTALL)
    values = re.findall(r">([\d.]+)<", overall.group(1))
    assert len(values) == 2 and values[0] == values[1]  # the same model on the same rows
    assert 'data-slice="sex=female"' in page.text  # only the second evaluation has it
    assert "accuracy per slice" in page.text
