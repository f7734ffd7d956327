"""The store tests run once against SQLite and once against a real PostgreSQL server."""

import itertools

import postgres_server
import pytest

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    try:
        server = postgres_server.start()
    except postgres_server.PostgresUnavailable as error:
        pytest.skip(f"PostgreSQL cannot be installed or started here: {error}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/metadata.sqlite"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"store_{next(_counter)}")
