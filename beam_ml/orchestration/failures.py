"""How a run that stops early says so: one line, one exit status, whatever stopped it.

Every way a run can end badly — the user's code raised, the disk filled up,
someone sent SIGTERM or pressed Ctrl-C, beam-ml itself has a bug — ends with
``FAILED: <component>: <first line of the error>`` on stderr and a non-zero
exit status. The full traceback is kept with the execution in the store
(``beam-ml logs EXECUTION_ID`` prints it) or, when the store itself could not
be written, in a file whose path the command prints.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress

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


class StopRequest:
    """Ctrl-C or SIGTERM asking a long-running command to stop between components (``beam-ml watch``).

    While ``installed``, the first signal only records itself (and says so on
    stdout): the runner lets the component it is in finish, then stops the run
    as a signal stops ``run`` (CANCELLED, ``RunCancelled``). A second signal
    interrupts at once, as in ``run``. The handler only sets an attribute and
    writes with ``os.write``: no lock is taken inside a signal handler.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def interrupt(self) -> KeyboardInterrupt:
        """What the runner raises at the next component boundary: the signal's interrupt."""
        return Terminated("SIGTERM") if self.signum == signal.SIGTERM else KeyboardInterrupt()

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        def _handle(signum: int, frame: object) -> None:
            if self.signum is not None:
                raise Terminated("SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt()
            self.signum = signum
            name = signal.Signals(signum).name
            with suppress(OSError):  # no stdout to tell: stopping is what matters
                os.write(1, f"{name}: stopping after the current component; {name} again stops now\n".encode())

        previous = {signum: signal.signal(signum, _handle) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
