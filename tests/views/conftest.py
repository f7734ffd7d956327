"""One penguin run shared by the views tests (it costs about a minute), and a data-only run in PostgreSQL."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest

from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root
from beam_ml.orchestration.runner import LocalDagRunner

REPO = Path(__file__).resolve().parents[2]
PENGUIN = REPO / "examples" / "penguin" / "pipeline.py"


def penguin_example():
    spec = importlib.util.spec_from_file_location("penguin_example_for_views", PENGUIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class RecordedRun:
    root: Path
    url: str
    run_id: int  # the store's key
    run_number: int  # within its pipeline: what the CLI takes and the pages show
    pipeline: str

    def store(self) -> MetadataStore:
        return MetadataStore(self.url)


@pytest.fixture(scope="session")
def penguin_run(tmp_path_factory) -> RecordedRun:
    """The whole penguin pipeline (no tuner), run once for the session."""
    root = tmp_path_factory.mktemp("views") / "penguin"
    result = LocalDagRunner().run(penguin_example().create_pipeline(str(root), tune=False))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return RecordedRun(root, sqlite_url_for_root(str(root)), result.run_id, result.run_number, result.pipeline)


@pytest.fixture(scope="session")
def penguin_data_run_postgres(tmp_path_factory, postgres) -> RecordedRun:
    """The penguin data stages (no TensorFlow: seconds) recorded in a PostgreSQL store."""
    root = tmp_path_factory.mktemp("views-pg") / "penguin"
    url = postgres.create_database("views_ui")
    result = LocalDagRunner(metadata_url=url).run(penguin_example().create_data_pipeline(str(root)))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return RecordedRun(root, url, result.run_id, result.run_number, result.pipeline)


@pytest.fixture(scope="session")
def adelie_statistics(penguin_run, tmp_path_factory) -> tuple[int, int]:
    """(the penguin run's Statistics id, the id of Statistics of the Adelie penguins only) in one store.

    The data stages run again, in the penguin run's store, on the Adelie rows:
    a second run whose statistics differ (one species, other sizes).
    """
    import csv

    example = penguin_example()
    with open(example.penguins_csv(), newline="") as handle:
        rows = list(csv.DictReader(handle))
    path = tmp_path_factory.mktemp("adelie") / "adelie.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["species"] == "Adelie")
    result = LocalDagRunner().run(example.create_data_pipeline(str(penguin_run.root), data=str(path)))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    with penguin_run.store() as store:
        first = next(a for e in store.executions_of_run(penguin_run.run_id) if e.component_id == "StatisticsGen"
                     for a in store.outputs_of(e.id).values())
    return first.id, result.outputs("StatisticsGen")["statistics"].id


@pytest.fixture(scope="session")
def two_evaluations(penguin_run) -> tuple[int, int]:
    """The penguin run's ModelEvaluation and a second one of the same model sliced by sex too (Evaluator reruns)."""
    pipeline = penguin_example().create_pipeline(str(penguin_run.root), tune=False)
    pipeline = pipeline.with_components(
        node.with_params(slice_features=["island", "sex"]) if node.id == "Evaluator" else node
        for node in pipeline.components
    )
    result = LocalDagRunner().run(pipeline)
    assert result.state == "COMPLETE", result.failed and result.failed.error
    with penguin_run.store() as store:
        first = next(a for e in store.executions_of_run(penguin_run.run_id) if e.component_id == "Evaluator"
                     for a in store.outputs_of(e.id).values() if a.type_name == "ModelEvaluation")
    return first.id, result.outputs("Evaluator")["evaluation"].id
