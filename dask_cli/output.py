"""The only place that styles text for the terminal: errors, notices, tables, JSON.

rich is imported on first use, so commands that print nothing styled stay fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from dask_cli.errors import DaskCliError


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def report_error(message: str, hint: str | None = None) -> None:
    """Print one red ``Error:`` line and an optional dimmed hint on stderr."""
    console = _console(stderr=True)
    console.print(f"[bold red]Error:[/] {_escape(message)}")
    if hint:
        console.print(f"[dim]Hint: {_escape(hint)}[/]")


def report_exception(exc: DaskCliError) -> None:
    report_error(exc.message, exc.hint)


def notice(message: str) -> None:
    """A one-line notice on stderr (yellow): something the user should know, not a failure."""
    _console(stderr=True).print(f"[yellow]{_escape(message)}[/]")


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    title: str | None = None,
) -> None:
    """Print rows as a rich table; ``None`` cells show as ``-``."""
    from rich.table import Table

    table = Table(title=title, header_style="bold", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")  # never cut addresses with "…"
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    _console().print(table)


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no styling."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def print_header(text: str, failed: bool = False) -> None:
    """A bold section header on stdout (e.g. one per worker in `dask worker exec`)."""
    style = "bold red" if failed else "bold cyan"
    _console().print(f"[{style}]{_escape(text)}[/]")


class Progress:
    """A one-line progress bar on stderr (rich), for waits such as ``dask cluster scale``.

    ``update(done, total)`` redraws it; nothing is drawn when stderr is not a terminal.
    """

    def __init__(self, description: str):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=_console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task(_escape(description), total=None)

    def __enter__(self) -> Progress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=max(total, done, 1))
