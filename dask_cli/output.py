"""The only place that styles text for the terminal: errors, notices, tables, JSON,
progress, and the per-worker lines of ``dask worker exec``.

rich is imported on first use, so commands that print nothing styled stay fast.
What goes to a pipe is plain: no colour, no box, no progress.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from dask_cli.errors import DaskCliError

T = TypeVar("T")

# Progress appears only for waits longer than this (seconds).
PROGRESS_DELAY = 0.5

# Columns that are never folded: an address cut in two cannot be copied.
UNBROKEN_COLUMNS = frozenset({"address", "shell address"})

# Colours of worker names in `dask worker exec` (terminal only, ANSI codes), in turn:
# cyan, magenta, green, yellow, blue, bright cyan, bright magenta.
NAME_COLOURS = ("36", "35", "32", "33", "34", "96", "95")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


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


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 worker``, ``2 workers``, ``0 workers``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    title: str | None = None,
) -> None:
    """Print rows as a table; ``None`` cells show as ``-``.

    On a terminal: a rich table in which other columns fold before an address does.
    On a pipe: plain columns separated by two spaces, no box and no title, one
    line per row, so ``grep``/``awk`` see whole addresses."""
    cells = [["-" if cell is None else str(cell) for cell in row] for row in rows]
    if not sys.stdout.isatty():
        _plain_table(columns, cells)
        return
    from rich.table import Table

    # The narrowest each column may get: an address whole, any other column down
    # to its longest word (it folds between words).
    narrowest = []
    for i, column in enumerate(columns):
        values = [column, *(row[i] for row in cells)]
        if column in UNBROKEN_COLUMNS:
            narrowest.append(max(len(v) for v in values))
        else:
            narrowest.append(max(len(word) for v in values for word in v.split() or [""]))
    console = _console()
    if sum(narrowest) + 3 * len(columns) + 1 > console.width:
        # Too narrow even with every other column folded: whole addresses matter
        # more than the box.
        if title:
            console.print(f"[bold]{_escape(title)}[/]")
        _plain_table(columns, cells)
        return
    table = Table(title=title, header_style="bold", show_lines=False)
    for column, width in zip(columns, narrowest, strict=True):
        if column in UNBROKEN_COLUMNS:
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(column, overflow="fold", min_width=width)
    for row in cells:
        table.add_row(*row)
    console.print(table)


def print_records(
    records: Sequence[T],
    columns: Sequence[str],
    row: Callable[[T], Sequence[Any]],
    *,
    noun: str,
    as_json: bool,
    to_json: Callable[[T], Any] | None = None,
    empty: str | None = None,
) -> None:
    """What every ``list`` command prints: with ``--json`` one JSON list of whole
    records (for scripts), else a table of one ``row`` per record, titled with their
    count, so the listings of workers, jobs and the rest read alike; ``empty`` is said
    on stderr instead of an empty table. ``to_json`` defaults to ``record.to_dict()``."""
    if as_json:
        convert = to_json or (lambda record: record.to_dict())
        print_json([convert(record) for record in records])
        return
    if not records and empty:
        notice(empty)  # on stderr: stdout (nothing) stays what scripts parse
        return
    print_table(columns, [row(record) for record in records], title=plural(len(records), noun))


def _plain_table(columns: Sequence[str], cells: list[list[str]]) -> None:
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    for line in [list(columns), *cells]:
        text = "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True))
        sys.stdout.write(text.rstrip() + "\n")
    sys.stdout.flush()


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, no styling."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_json_line(data: Any) -> None:
    """One JSON record on one line (a stream of records: ``exec --json``, ``logs -f --json``)."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def print_header(text: str, failed: bool = False) -> None:
    """A bold section header on stdout (e.g. one per worker in `dask worker exec --group`)."""
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


def print_lines(lines: Iterable[str]) -> None:
    """Plain lines on stdout, flushed (``logs -f`` is read as it comes)."""
    for line in lines:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Spinner:
    """A spinner with a message on stderr, shown only when stderr is a terminal and the
    wait lasts longer than :data:`PROGRESS_DELAY`; gone when the wait ends.

    Use as a context manager; ``update(text)`` changes the message. On a pipe it
    does nothing at all."""

    def __init__(self, message: str, delay: float = PROGRESS_DELAY):
        self.message = message
        self.delay = delay
        self._status: Any = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._done = False

    def __enter__(self) -> Spinner:
        if sys.stderr.isatty():
            self._timer = threading.Timer(self.delay, self._show)
            self._timer.daemon = True
            self._timer.start()
        return self

    def update(self, message: str) -> None:
        with self._lock:
            self.message = message
            if self._status is not None:
                self._status.update(_escape(message))

    def _show(self) -> None:
        from rich.status import Status

        with self._lock:
            if self._done:
                return
            console = _console(stderr=True)
            # Lines our stdout writes meanwhile go above the spinner when stdout is
            # the same terminal; to a pipe they go straight through.
            self._status = Status(_escape(self.message), console=console)
            self._status._live._redirect_stdout = sys.stdout.isatty()
            self._status.start()

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            if self._status is not None:
                self._status.stop()
                self._status = None


class WorkerLines:
    """The output of ``dask worker exec``: each worker's lines as they arrive, prefixed
    by its name (aligned; coloured on a terminal), stdout to stdout, stderr to stderr.

    Text arrives in chunks that need not end at a line break: each (worker, stream)
    keeps its partial line until the rest comes or :meth:`finish` flushes it."""

    def __init__(self, names: Sequence[str]):
        self.width = max((len(n) for n in names), default=0)
        self.colours = {n: NAME_COLOURS[i % len(NAME_COLOURS)] for i, n in enumerate(names)}
        self._partial: dict[tuple[str, str], str] = {}
        self._colour = {"stdout": sys.stdout.isatty(), "stderr": sys.stderr.isatty()}

    def _prefix(self, name: str, stream: str) -> str:
        padded = name.ljust(self.width)
        if self._colour[stream]:
            return f"\x1b[{self.colours.get(name, '36')}m{padded}\x1b[0m | "
        return f"{padded} | "

    def write(self, name: str, stream: str, text: str) -> None:
        key = (name, stream)
        text = self._partial.pop(key, "") + text
        *lines, rest = text.split("\n")
        if rest:
            self._partial[key] = rest
        if lines:
            target = sys.stderr if stream == "stderr" else sys.stdout
            prefix = self._prefix(name, stream)
            target.write("".join(f"{prefix}{line}\n" for line in lines))
            target.flush()

    def finish(self, name: str) -> None:
        """The worker is done: print what is left of its partial lines."""
        for stream in ("stdout", "stderr"):
            if (name, stream) in self._partial:
                self.write(name, stream, "\n")

    def summary(self, total: int, failures: Sequence[tuple[str, str]]) -> None:
        """One line at the end: how many failed, and why (on stderr); nothing if none did."""
        if not failures:
            return
        reasons = "; ".join(f"{name}: {why}" for name, why in failures)
        report_error(f"{len(failures)} of {plural(total, 'worker')} failed ({reasons})")


class ExecView:
    """How ``dask worker exec`` shows its workers: an ``ExecListener`` of the client API.

    ``stream`` (the default): each line as it arrives, prefixed by the worker's name;
    ``group``: one block per worker under a header, printed as each worker finishes;
    ``json``: one JSON record per worker, as each finishes. A failure's traceback
    goes to stderr (prefixed lines in ``stream`` mode); progress (done/total) shows on
    a terminal's stderr while workers are still running."""

    def __init__(self, mode: str = "stream"):
        self.mode = mode
        self.total = 0
        self.finished = 0
        self.failures: list[tuple[str, str]] = []
        self.lines = WorkerLines([])
        self.progress = Spinner("Asking the scheduler for its workers").__enter__()

    def start(self, names: list[str]) -> None:
        self.total = len(names)
        self.lines = WorkerLines(names)
        self.progress.update(f"Running on {plural(self.total, 'worker')}: 0 done")

    def output(self, name: str, stream: str, text: str) -> None:
        if self.mode == "stream":
            self.lines.write(name, stream, text)

    def done(self, outcome: Any) -> None:
        self.finished += 1
        if outcome.failed:
            self.failures.append((outcome.name, outcome.reason))
        if self.mode == "json":
            print_json_line(outcome.to_dict())
        elif self.mode == "group":
            status = outcome.error or outcome.status
            print_header(f"=== {outcome.name} ({outcome.address}): {status}", outcome.failed)
            for stream, text in outcome.chunks:
                (sys.stderr if stream == "stderr" else sys.stdout).write(text)
            if outcome.traceback:
                sys.stderr.write(outcome.traceback)
            sys.stdout.flush()
            sys.stderr.flush()
        else:
            self.lines.finish(outcome.name)
            if outcome.traceback:
                self.lines.write(outcome.name, "stderr", outcome.traceback)
                self.lines.finish(outcome.name)
        self.progress.update(
            f"Running on {plural(self.total, 'worker')}: {self.finished} done"
            + (f", {len(self.failures)} failed" if self.failures else "")
        )

    def close(self) -> None:
        """Stop the progress and print the summary of failures (not in ``json`` mode)."""
        self.progress.__exit__(None, None, None)
        if self.mode != "json":
            self.lines.summary(self.total, self.failures)
