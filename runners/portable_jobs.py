"""Jobs on a portable runner (Prism, Flink, a job endpoint): their outcome recorded, a failure explained.

**Recording.** A component's Beam pipeline (``ExecutionContext.beam_pipeline()``)
on a portable runner records each job it ran, with the state Beam's
``PipelineResult`` reported when the job ended, in the context's notes, which
the runner saves with the execution::

    execution.properties["beam_jobs"] == [{"runner": "PrismRunner", "job_id": "job-003", "state": "DONE"}]

**Explaining.** When a portable job fails, Beam raises ``RuntimeError("Pipeline
job-003 failed in state FAILED: bundle inst002 stage-002 failed:Traceback
(most recent call last): ...")``: the worker's exception is there, but at the
end of a traceback that the CLI's one-line ``FAILED:`` summary never reaches.
:class:`BeamJobFailed` puts it first (``ValueError: penguin 3 has no beak
[while running 'ParDo(Explode)']``), then where it happened, then Beam's whole
text. The DirectRunner needs none of this: it re-raises the worker's own
exception.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

#: The execution property (``ExecutionContext.notes`` key) that lists a component's portable jobs.
NOTE_KEY = "beam_jobs"

# The line that ends a Python traceback: ``ValueError: message``, ``pyarrow.lib.ArrowInvalid: message``, ``StopIteration``.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(:|$)")
_TRACEBACK = "Traceback (most recent call last):"
_WHERE = re.compile(r"(?P<bundle>bundle \S+) (?P<stage>stage-\S+?) failed")
_JOB = re.compile(r"Pipeline (?P<job>\S+) failed in state (?P<state>\w+)")


class BeamJobFailed(RuntimeError):
    """A portable job failed; the message starts with the worker's exception."""


def worker_exception(text: str) -> str | None:
    """The exception line of the last Python traceback in ``text`` (a failed job's message), or None.

    In a traceback the frames are indented; the first line after them that is
    not is the exception. Chained tracebacks ("During handling of the above
    exception ...") end with the one raised last, which is the one wanted.
    """
    found = None
    in_traceback = False
    for line in text.splitlines():
        if line.endswith(_TRACEBACK):
            in_traceback = True
        elif in_traceback and line.strip() and not line[0].isspace():
            in_traceback = False
            if _EXCEPTION_LINE.match(line):
                found = line.strip()
    return found


def explain_failure(error: BaseException, runner: str) -> BeamJobFailed | None:
    """A :class:`BeamJobFailed` naming the worker's exception, or None when ``error`` carries none."""
    text = str(error)
    exception = worker_exception(text)
    if exception is None:
        return None
    where = []
    job = _JOB.search(text)
    if job:
        where.append(f"job {job['job']}")
    stage = _WHERE.search(text)
    if stage:
        where.append(f"{stage['stage']}, {stage['bundle']}")
    place = f" ({runner}{': ' if where else ''}{', '.join(where)})"
    return BeamJobFailed(f"{exception}{place}\n{text}")


class RecordedResult:
    """A portable runner's ``PipelineResult`` that records how its job ended and explains a failure.

    Everything but ``wait_until_finish`` is the wrapped result's own.
    """

    def __init__(self, result: Any, runner: str, notes: MutableMapping[str, Any]) -> None:
        self._result = result
        self._runner = runner
        self._notes = notes
        self._recorded = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def wait_until_finish(self, duration: int | None = None) -> Any:
        try:
            state = self._result.wait_until_finish(duration)
        except Exception as error:
            self._record()
            explained = explain_failure(error, self._runner)
            if explained is None:
                raise
            raise explained from error
        self._record()
        return state

    def _record(self) -> None:
        if self._recorded:
            return
        self._recorded = True
        # The state and job id the result holds (``.state`` would ask the job service again, which may be gone).
        job_id = getattr(self._result, "_job_id", None)
        state = getattr(self._result, "_state", None)
        self._notes.setdefault(NOTE_KEY, []).append(
            {"runner": self._runner, "job_id": str(job_id) if job_id else None, "state": str(state)}
        )


def is_portable_result(result: object) -> bool:
    """Whether ``result`` is a portable runner's (Job API) ``PipelineResult``."""
    from apache_beam.runners.portability.portable_runner import PipelineResult

    return isinstance(result, PipelineResult)
