"""Showing a run as it goes: one line per component with its state and elapsed time.

``RichProgress`` draws a live table on a terminal; ``NullProgress`` says
nothing, for pipes, logs and tests (the CLI prints a summary at the end).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from beam_ml.dsl import Pipeline


class Progress(Protocol):
    def start(self, pipeline: Pipeline) -> None: ...
    def node_started(self, node_id: str) -> None: ...
    def node_finished(self, node_id: str, state: str, elapsed: float, error: str | None) -> None: ...
    def stop(self) -> None: ...


class NullProgress:
    def start(self, pipeline: Pipeline) -> None:
        pass

    def node_started(self, node_id: str) -> None:
        pass

    def node_finished(self, node_id: str, state: str, elapsed: float, error: str | None) -> None:
        pass

    def stop(self) -> None:
        pass


_STYLES = {"COMPLETE": "green", "CACHED": "cyan", "FAILED": "bold red", "RUNNING": "yellow", "WAITING": "dim", "RESOLVED": "cyan"}


class RichProgress:
    """A live table on the terminal, redrawn a few times a second."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console()
        self._rows: dict[str, list] = {}
        self._live = None

    def start(self, pipeline: Pipeline) -> None:
        from rich.live import Live

        self._title = f"pipeline {pipeline.name}"
        self._rows = {node_id: ["WAITING", None, None] for node_id in pipeline.order}
        # stderr is left alone: while a component runs it points at the execution's log file
        # (orchestration.logs), and Rich would otherwise pull third-party writes back onto the screen.
        self._live = Live(
            console=self.console, get_renderable=self._table, refresh_per_second=4, transient=False,
            redirect_stderr=False,
        )
        self._live.start()

    def _table(self):
        from rich.table import Table

        table = Table(title=self._title, title_justify="left", box=None, pad_edge=False)
        table.add_column("component")
        table.add_column("state")
        table.add_column("elapsed", justify="right")
        now = time.monotonic()
        for node_id, (state, started, elapsed) in self._rows.items():
            if state == "RUNNING" and started is not None:
                elapsed = now - started
            shown = "" if elapsed is None else f"{elapsed:6.1f}s"
            label = "cached" if state == "CACHED" else state.lower()
            table.add_row(node_id, f"[{_STYLES.get(state, '')}]{label}[/]", shown)
        return table

    def node_started(self, node_id: str) -> None:
        self._rows[node_id] = ["RUNNING", time.monotonic(), None]

    def node_finished(self, node_id: str, state: str, elapsed: float, error: str | None) -> None:
        self._rows[node_id] = [state, None, elapsed]

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
