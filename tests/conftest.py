"""Shared fixtures: where the shared data sets are, and skipping when they are absent."""

import itertools
import os
from pathlib import Path

import pytest

import postgres_server

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data sets in ../shared/data; tests that need them skip without them."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}: this test needs ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """TFDV's reference outputs in ../shared/reference."""
    if not SHARED_REFERENCE.is_dir():
        pytest.skip(f"reference outputs not found at {SHARED_REFERENCE}: this test needs ../shared/reference")
    return SHARED_REFERENCE


_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session, installed if missing (tests/postgres_server.py)."""
    try:
        server = postgres_server.start()
    except postgres_server.PostgresUnavailable as error:
        pytest.skip(f"PostgreSQL cannot be installed or started here: {error}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (SeaweedFS, built from the Go module proxy on first use) for the session."""
    from beam_ml.testing import seaweedfs

    try:
        server = seaweedfs.start()
    except seaweedfs.SeaweedUnavailable as error:
        pytest.skip(f"the S3 test server (SeaweedFS) cannot be built or started here: {error}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow_cli() -> Path:
    """The `airflow` executable of Apache Airflow's own venv, installed from PyPI on first use (beam_ml.testing.airflow)."""
    from beam_ml.testing import airflow

    try:
        return airflow.ensure_airflow()
    except airflow.AirflowUnavailable as error:
        pytest.skip(f"Apache Airflow cannot be installed here: {error}")


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh empty bucket on the session's S3 server, as ``s3://name``."""
    return s3_server.create_bucket(f"test-{next(_counter)}-{os.getpid()}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The store tests run once against SQLite and once against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/metadata.sqlite"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"store_{next(_counter)}")
