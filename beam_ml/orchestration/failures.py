"""How a run that stops early says so: one line, one exit status, whatever stopped it.

Every way a run can end badly — the user's code raised, the disk filled up,
someone sent SIGTERM or pressed Ctrl-C, beam-ml itself has a bug — ends with
``FAILED: <component>: <first line of the error>`` on stderr and a non-zero
exit status. The full traceback is kept with the execution in the store
(``beam-ml logs EXECUTION_ID`` prints it) or, when the store itself could not
be written, in a file whose path the command prints.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

#: Exit statuses of ``beam-ml run``: a component failed (or beam-ml did), and
#: cancelled by a signal (the shell's 128 + signal number).
EXIT_FAILED = 1
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so the runner records the cancellation."""


class RunCancelled(KeyboardInterrupt):
    """The run was stopped by a signal; the runner recorded it CANCELLED before raising this."""

    def __init__(self, run_id: int, component: str | None, reason: str, run_number: int | None = None) -> None:
        super().__init__(reason)
        self.run_id = run_id
        self.run_number = run_number  # within its pipeline: what people see and type
        self.component = component
        self.reason = reason


class RunAborted(RuntimeError):
    """An error outside the component's own code (the store, the disk, beam-ml) stopped the run."""

    def __init__(self, run_id: int, component: str | None, error: BaseException, run_number: int | None = None) -> None:
        super().__init__(error_summary(error))
        self.run_id = run_id
        self.run_number = run_number  # within its pipeline: what people see and type
        self.component = component


def error_summary(error: BaseException) -> str:
    """``Type: message``, the form every stored and printed error starts with."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def cancel_reason(interrupt: KeyboardInterrupt) -> str:
    return "cancelled by SIGTERM" if isinstance(interrupt, Terminated) else "cancelled by Ctrl-C (SIGINT)"


def failure_line(component: str | None, error: str | None) -> str:
    """The last line of every failed run: ``FAILED: <component>: <first line of the error>``."""
    lines = (error or "").strip().splitlines()
    first = lines[0].strip() if lines else "failed"
    return f"FAILED: {component or 'beam-ml'}: {first}"


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active, SIGTERM raises ``Terminated`` in the main thread (as Ctrl-C raises KeyboardInterrupt)."""

    def _raise(signum: int, frame: object) -> None:
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
