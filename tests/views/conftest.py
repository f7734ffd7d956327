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
    run_id: int

    def store(self) -> MetadataStore:
        return MetadataStore(self.url)


@pytest.fixture(scope="session")
def penguin_run(tmp_path_factory) -> RecordedRun:
    """The whole penguin pipeline (no tuner), run once for the session."""
    root = tmp_path_factory.mktemp("views") / "penguin"
    result = LocalDagRunner().run(penguin_example().create_pipeline(str(root), tune=False))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return RecordedRun(root, sqlite_url_for_root(str(root)), result.run_id)


@pytest.fixture(scope="session")
def penguin_data_run_postgres(tmp_path_factory, postgres) -> RecordedRun:
    """The penguin data stages (no TensorFlow: seconds) recorded in a PostgreSQL store."""
    root = tmp_path_factory.mktemp("views-pg") / "penguin"
    url = postgres.create_database("views_ui")
    result = LocalDagRunner(metadata_url=url).run(penguin_example().create_data_pipeline(str(root)))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return RecordedRun(root, url, result.run_id)
