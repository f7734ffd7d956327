"""``beam-ml export airflow``: a pipeline file as an Apache Airflow DAG file (Airflow 3).

    beam-ml export airflow examples/penguin/pipeline.py --out ~/airflow/dags --schedule "0 3 * * *"

The DAG file imports only Airflow (``airflow.sdk.DAG`` and the standard
provider's ``BashOperator``), so it loads in the scheduler and the DAG
processor without beam-ml, TensorFlow or Beam. Each task runs one component
with ``beam-ml run-node`` through the Python of the venv that exported it (an
absolute path; ``--python`` names another), so workers must see that venv,
the pipeline file and the pipeline root: the same machine, or the same paths
on every worker (``beam_ml.orchestration.node_task`` for what tasks share).

- One task per component; a resolver is no task (its consumer's task resolves
  it); dependencies come from the pipeline's wiring (``node_task.task_upstreams``).
- The Airflow run id (``{{ run_id }}``) is the beam-ml run id: the tasks of one
  DAG run make one run in ``beam-ml runs``, ``show`` and lineage.
- Retries, the retry delay and the execution timeout are Airflow task
  parameters (``default_args``), the schedule the DAG's (None: triggered only).
- Everything beam-ml needs is written into the file as literals, quoted for
  the shell (``shlex``) and kept out of Airflow's Jinja templating. Secrets are
  not: a store URL with a password or a secret Beam flag is refused, to be
  given to the workers through their environment (``BEAM_ML_METADATA_URL``,
  the cloud's credential chains) instead.
"""

from __future__ import annotations

import datetime
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from beam_ml import fs, redaction
from beam_ml.dsl import Pipeline
from beam_ml.orchestration.node_task import task_upstreams

#: The environment variable a task's command reads the Airflow run id from (set by the task's templated env).
RUN_ID_VARIABLE = "BEAM_ML_RUN_ID"


class ExportRefused(ValueError):
    """The DAG file cannot be written as asked; the message says what to do instead."""


@dataclass(frozen=True)
class AirflowSettings:
    """How Airflow schedules and retries the tasks: written into the DAG file, editable there."""

    schedule: str | None = None
    retries: int = 1
    retry_delay: datetime.timedelta = datetime.timedelta(minutes=5)
    execution_timeout: datetime.timedelta = datetime.timedelta(hours=6)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ExportRefused(f"retries must be 0 or more, not {self.retries}")
        for name in ("retry_delay", "execution_timeout"):
            if getattr(self, name) <= datetime.timedelta(0):
                raise ExportRefused(f"{name} must be positive, not {getattr(self, name)}")


def dag_file_name(pipeline: Pipeline) -> str:
    """The DAG file's name in the DAGs folder: prefixed, so it never shadows a module Airflow imports."""
    return f"beam_ml_{pipeline.name.replace('-', '_')}.py"


def task_command(
    python: str, pipeline_file: str, node_id: str, *, pipeline_root: str, metadata_url: str | None,
    beam_args: Sequence[str],
) -> str:
    """The shell command of one task: ``run-node`` with the run id from :data:`RUN_ID_VARIABLE`."""
    head = [python, "-m", "beam_ml.run", "run-node", pipeline_file, node_id, "--pipeline-root", pipeline_root]
    if metadata_url:
        head += ["--metadata-url", metadata_url]
    command = f'{shlex.join(head)} --run-id "${RUN_ID_VARIABLE}"'
    if beam_args:
        command += f" -- {shlex.join(beam_args)}"
    return command


def dag_source(
    pipeline: Pipeline,
    pipeline_file: str,
    *,
    settings: AirflowSettings = AirflowSettings(),
    metadata_url: str | None = None,
    beam_args: Sequence[str] = (),
    python: str | None = None,
    cwd: str | None = None,
    today: datetime.date | None = None,
) -> str:
    """The text of the DAG file for ``pipeline`` (loaded from ``pipeline_file``, its root already set)."""
    _refuse_secrets(metadata_url, beam_args)
    python = python or os.path.abspath(sys.executable)  # not resolved: a venv's python is a link out of it
    pipeline_file = os.path.abspath(pipeline_file)
    root = pipeline.root if not fs.is_local(pipeline.root) else os.path.abspath(pipeline.root)
    cwd = os.path.abspath(cwd or os.getcwd())
    tasks = task_upstreams(pipeline)
    commands = {
        node_id: _jinja_literal(
            task_command(python, pipeline_file, node_id, pipeline_root=root, metadata_url=metadata_url, beam_args=beam_args)
        )
        for node_id in tasks
    }
    today = today or datetime.datetime.now(datetime.UTC).date()
    command_lines = "".join(f"    {node_id!r}: {command!r},\n" for node_id, command in commands.items())
    upstream_lines = "".join(f"    {node_id!r}: {upstream!r},\n" for node_id, upstream in tasks.items() if upstream)
    return f'''"""Airflow DAG of the beam-ml pipeline {pipeline.name!r}, written by `beam-ml export airflow`.

Pipeline file: {pipeline_file}
Each task runs one component with `beam-ml run-node`; the Airflow run id is the beam-ml
run id, so the tasks of one DAG run make one run in `beam-ml runs`. Export again after
changing the pipeline's components or wiring; schedule and retries may be edited here.
"""

from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

COMMANDS = {{
{command_lines}}}
UPSTREAM = {{
{upstream_lines}}}

with DAG(
    dag_id={pipeline.name!r},
    schedule={settings.schedule!r},
    start_date=datetime.datetime({today.year}, {today.month}, {today.day}, tzinfo=datetime.timezone.utc),
    catchup=False,
    default_args={{
        "retries": {settings.retries!r},
        "retry_delay": datetime.timedelta(seconds={settings.retry_delay.total_seconds()!r}),
        "execution_timeout": datetime.timedelta(seconds={settings.execution_timeout.total_seconds()!r}),
    }},
    tags=["beam-ml"],
) as dag:
    tasks = {{
        node_id: BashOperator(
            task_id=node_id,
            bash_command=command,
            env={{{RUN_ID_VARIABLE!r}: "{{{{ run_id }}}}"}},
            append_env=True,
            cwd={_jinja_literal(cwd)!r},
            skip_on_exit_code=None,
        )
        for node_id, command in COMMANDS.items()
    }}
    for node_id, upstream in UPSTREAM.items():
        for upstream_id in upstream:
            tasks[upstream_id] >> tasks[node_id]
'''


def export(
    pipeline: Pipeline,
    pipeline_file: str,
    out_dir: str,
    *,
    settings: AirflowSettings = AirflowSettings(),
    metadata_url: str | None = None,
    beam_args: Sequence[str] = (),
    python: str | None = None,
) -> Path:
    """Write the DAG file for ``pipeline`` into ``out_dir`` (made if missing); returns its path.

    The tasks run in the current directory (relative paths in the pipeline file mean what they mean here).
    """
    source = dag_source(
        pipeline, pipeline_file, settings=settings, metadata_url=metadata_url, beam_args=beam_args, python=python
    )
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / dag_file_name(pipeline)
    staging = target.with_name(f".{target.name}.tmp")
    staging.write_text(source)
    staging.replace(target)  # the DAG processor never reads half a file
    return target


def _jinja_literal(text: str) -> str:
    """``text`` as Airflow's Jinja renders it unchanged: in a raw block when it holds template syntax."""
    if not any(mark in text for mark in ("{{", "{%", "{#")):
        return text
    if "endraw" in text:
        raise ExportRefused(f"cannot keep {text!r} out of Airflow's templating: it contains 'endraw'")
    return "{% raw %}" + text + "{% endraw %}"


def _refuse_secrets(metadata_url: str | None, beam_args: Sequence[str]) -> None:
    if metadata_url and redaction.secret_values([metadata_url]):
        raise ExportRefused(
            "the store URL holds a password, which the DAG file would show to everyone who reads it: export "
            "without --metadata-url and set BEAM_ML_METADATA_URL in the Airflow workers' environment "
            "(or use a URL without a password, e.g. with ~/.pgpass)"
        )
    secret = redaction.secret_flags(beam_args)
    if secret:
        raise ExportRefused(
            f"the Beam flags {', '.join(secret)} hold secrets, which the DAG file would show to everyone who reads it: "
            "give the workers credentials through their environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "a profile, Google application-default credentials) instead"
        )
