"""The metadata store's tables, and the schema version they make up.

Kept apart from the store's API so a reader sees the whole data model on one
page. Times are UNIX seconds (floats): portable across SQLite and PostgreSQL
and what durations are computed from anyway.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: Bump with every change to the tables below, and add a step to ``MIGRATIONS``.
SCHEMA_VERSION = 3

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

# A pipeline (kind "pipeline") or one run of it (kind "run", parent = the pipeline). A run's
# ``number`` counts the runs of its pipeline from 1: what people say and type ("run 3 of penguin").
contexts = Table(
    "contexts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(255), nullable=False),
    Column("parent_id", Integer, ForeignKey("contexts.id"), nullable=True),
    Column("state", String(16), nullable=True),  # runs: RUNNING, COMPLETE, FAILED, ABANDONED
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("properties", JSON, nullable=False, default=dict),
    Column("number", Integer, nullable=True),  # runs only
    UniqueConstraint("kind", "name", "parent_id", name="uq_context_name"),
    Index("uq_run_number", "parent_id", "number", unique=True),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type_name", String(128), nullable=False),
    Column("uri", Text, nullable=False),
    Column("state", String(16), nullable=False),  # PENDING, LIVE, ABANDONED
    Column("properties", JSON, nullable=False, default=dict),
    Column("fingerprint", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_artifacts_type_state", "type_name", "state"),
)

executions = Table(
    "executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("contexts.id"), nullable=False),
    Column("component_id", String(255), nullable=False),
    Column("component_type", String(512), nullable=False),
    Column("state", String(16), nullable=False),  # RUNNING, COMPLETE, CACHED, FAILED, ABANDONED
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    Column("cache_key", String(64), nullable=False),
    Column("parameters", JSON, nullable=False, default=dict),
    Column("properties", JSON, nullable=False, default=dict),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Index("ix_executions_cache_key", "cache_key", "state"),
    Index("ix_executions_run", "run_id"),
)

# An input or output edge between an execution and an artifact, with the argument name.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", Integer, ForeignKey("executions.id"), nullable=False),
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # INPUT, OUTPUT
    Column("name", String(255), nullable=False),
    Index("ix_events_artifact", "artifact_id", "kind"),
    Index("ix_events_execution", "execution_id", "kind"),
)

# Which process may run a pipeline now (``beam-ml watch``): one row per pipeline name while held.
# A holder on this host is checked by pid (and its start time, against pid reuse); one on another
# host by ``heartbeat_at``, which the holder renews while it runs.
pipeline_locks = Table(
    "pipeline_locks",
    metadata,
    Column("pipeline", String(255), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("proc_start", String(32), nullable=True),
    Column("acquired_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

#: version -> SQL statements that bring a store from ``version - 1`` to ``version``.
MIGRATIONS: dict[int, list[str]] = {
    # Runs numbered per pipeline; existing runs in the order they were begun. Plain SQL both
    # SQLite and PostgreSQL take.
    2: [
        "ALTER TABLE contexts ADD COLUMN number INTEGER",
        "UPDATE contexts SET number = (SELECT COUNT(*) FROM contexts AS earlier WHERE earlier.kind = 'run' "
        "AND earlier.parent_id = contexts.parent_id AND earlier.id <= contexts.id) WHERE kind = 'run'",
        "CREATE UNIQUE INDEX uq_run_number ON contexts (parent_id, number)",
    ],
    # The run lock of ``beam-ml watch``. IF NOT EXISTS: a store whose tables were made at version 3
    # and then marked older still migrates.
    3: [
        "CREATE TABLE IF NOT EXISTS pipeline_locks (pipeline VARCHAR(255) NOT NULL PRIMARY KEY, "
        "host VARCHAR(255) NOT NULL, pid INTEGER NOT NULL, proc_start VARCHAR(32), "
        "acquired_at FLOAT NOT NULL, heartbeat_at FLOAT NOT NULL)",
    ],
}
