"""One execution: parameters, timing, cache key, what it read and wrote, its error and its log."""

from __future__ import annotations

from beam_ml.metadata.store import ExecutionRecord, MetadataStore
from beam_ml.views.base import View, render
from beam_ml.views.run import Links

#: The most of a log a page shows (its end: where a failure is).
LOG_TAIL_CHARS = 200_000


def read_log(execution: ExecutionRecord) -> str | None:
    """The end of an execution's log file (``beam_ml.orchestration.logs``), or None when it has none here."""
    path = execution.properties.get("log_file")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as error:
        return f"(cannot read {path}: {error.strerror})"
    return text[-LOG_TAIL_CHARS:]


def execution_view(store: MetadataStore, execution_id: int, links: Links | None = None, *, with_log: bool = True) -> View:
    execution = store.get_execution(execution_id)
    html = render(
        "execution.html", e=execution, run=store.get_run(execution.run_id), links=links or Links(),
        inputs=store.inputs_of(execution.id), outputs=store.outputs_of(execution.id),
        log=read_log(execution) if with_log else None,
    )
    return View(f"{execution.component_id}: execution {execution.id}", html, anchor=f"execution-{execution.id}")
