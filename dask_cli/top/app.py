"""The ``dask top`` dashboard (Textual): what the snapshot says, refreshed about once
a second, and actions on the selected worker.

Data comes from :class:`~dask_cli.top.poller.SnapshotPoller` (one request per
refresh); actions from :mod:`dask_cli.top.actions`. When the scheduler is gone the
last data stays on screen under a banner that says so, and polling goes on.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import (
    DataTable,
    Footer,
    Log,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
)

from dask_cli.errors import DaskCliError
from dask_cli.top import actions, cells, report
from dask_cli.top.poller import SnapshotPoller
from dask_cli.top.protocol import Snapshot, WorkerRow

# Worker table: column key (also the sort key, see cells.SORTS) → header.
WORKER_COLUMNS = {
    "name": "name",
    "status": "status",
    "cpu": "cpu",
    "memory": "memory",
    "spilled": "spilled",
    "tasks": "proc/ready",
    "delay": "delay",
    "seen": "seen",
}
SORT_CYCLE = list(WORKER_COLUMNS)
# Sorting descending first makes sense for these (biggest users on top).
DESCENDING_FIRST = {"cpu", "memory", "spilled", "tasks", "delay", "seen"}

STATUS_STYLES = {
    "running": "green",
    "paused": "bold yellow",
    "kept-alive": "bold reverse magenta",
}
OTHER_STATUS_STYLE = "bold red"

HELP = """\
[b]dask top[/b]: the cluster at a glance; actions on the selected worker.

  [b]↑ ↓ PgUp PgDn[/b]  select a worker
  [b]s[/b] or [b]Enter[/b]   open `dask worker shell` on it (the dashboard comes back after)
  [b]t[/b]            its stack (every thread)
  [b]l[/b]            its recent log lines
  [b]k[/b]            switch keep-alive on/off
  [b]r[/b]            release it (a kept-alive worker exits)
  [b]d[/b]            attach `dask worker debug` to the paused task selected in tab 3
               (Tab moves to that table, ↑ ↓ choose); continue brings you back
  [b]o[/b] / [b]I[/b]        sort by the next column / invert (or click a header)
  [b]M P N T[/b]      sort by memory, CPU, name, tasks
  [b]1 2 3 4[/b]      task progress, erred tasks, paused tasks, scheduler log
  [b]?[/b]            this help        [b]q[/b]  quit

Statuses: running, paused (memory), kept-alive (failed, held for inspection:
`dask worker shell NAME`), closing... A kept-alive worker that left the
cluster stays listed without metrics.
"""


class TextScreen(ModalScreen[None]):
    """A scrollable text (a stack, log lines, the help); Escape or q closes it."""

    BINDINGS = [Binding("escape,q", "close", "Close")]
    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > VerticalScroll {
        width: 100%; height: 100%; border: round $accent; padding: 0 1;
    }
    """

    def __init__(self, title: str, text: str | Text, markup: bool = False):
        super().__init__()
        self.title_text = title
        self.text = text
        self.markup = markup

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = self.title_text
            scroll.border_subtitle = "Esc to close"
            yield Static(self.text, markup=self.markup, id="text")

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: y confirms, anything else cancels."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Static { width: 60; height: auto; border: round $warning; padding: 1 2; }
    """

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(f"{self.question}\n\n[b]y[/b] yes    [b]n[/b] no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TopApp(App[int]):
    """``dask top``: ``settings`` says which scheduler (a ``ClientSettings``)."""

    TITLE = "dask top"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #summary, #tasks-line, #detail { height: 1; }
    #tasks { width: auto; max-width: 70%; padding-right: 1; }
    #throughput { width: 1fr; }
    #banner { height: auto; display: none; text-style: bold reverse; }
    #banner.visible { display: block; }
    #workers { height: 1fr; min-height: 4; }
    #lower { height: 40%; min-height: 7; max-height: 24; }
    #lower DataTable, #lower Log { height: 1fr; }
    """

    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("s", "shell", "Shell"),
        Binding("t", "stack", "Stack"),
        Binding("l", "logs", "Logs"),
        Binding("k", "keepalive", "Keep-alive"),
        Binding("r", "release", "Release"),
        Binding("d", "debug", "Debug"),
        Binding("o", "next_sort", "Sort", show=False),
        Binding("I", "invert_sort", "Invert", show=False),
        Binding("M", "sort('memory')", "Sort by memory", show=False),
        Binding("P", "sort('cpu')", "Sort by CPU", show=False),
        Binding("N", "sort('name')", "Sort by name", show=False),
        Binding("T", "sort('tasks')", "Sort by tasks", show=False),
        Binding("1", "tab('progress')", "Progress", show=False),
        Binding("2", "tab('erred')", "Erred", show=False),
        Binding("3", "tab('paused')", "Paused", show=False),
        Binding("4", "tab('log')", "Log", show=False),
    ]

    def __init__(self, settings: Any, interval: float = 1.0, poller: SnapshotPoller | None = None):
        super().__init__()
        self.settings = settings
        self.interval = interval
        self.poller = poller or SnapshotPoller(settings)
        self.snapshot: Snapshot | None = None
        self.error: DaskCliError | None = None  # why the last refresh failed, if it did
        self.last_ok: float | None = None  # monotonic time of the last snapshot
        self.refreshes = 0  # snapshots shown (tests wait on it)
        self.sort_column = "name"
        self.sort_reverse = False
        self._log_shown = 0.0  # time of the last log line written

    # --- layout -------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("dask top: connecting...", id="summary", markup=False)
        with Horizontal(id="tasks-line"):
            yield Static("", id="tasks", markup=False)
            yield Sparkline([], id="throughput")
        yield Static("", id="banner", markup=False)
        workers = DataTable(id="workers", cursor_type="row", zebra_stripes=True)
        for key, label in WORKER_COLUMNS.items():
            workers.add_column(label, key=key)
        yield workers
        yield Static("", id="detail", markup=False)
        with TabbedContent(id="lower", initial="progress"):
            with TabPane("Progress", id="progress"):
                yield DataTable(id="prefixes", cursor_type="row", show_cursor=False)
            with TabPane("Erred", id="erred"):
                yield DataTable(id="erred-tasks", cursor_type="row")
            with TabPane("Paused", id="paused"):
                yield DataTable(id="paused-tasks", cursor_type="row")
            with TabPane("Log", id="log"):
                yield Log(id="scheduler-log", max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#prefixes", DataTable).add_columns("prefix", "progress", "done/total")
        self.query_one("#erred-tasks", DataTable).add_columns("time", "key", "exception")
        self.query_one("#paused-tasks", DataTable).add_columns(
            "key", "worker", "where", "since", "attached"
        )
        self._label_sorted_column()
        self.query_one("#workers", DataTable).focus()
        self.poll()

    # --- data ---------------------------------------------------------------

    @work(exclusive=True, group="poll")
    async def poll(self) -> None:
        """Fetch a snapshot about every ``interval`` seconds, forever."""
        while True:
            started = time.monotonic()
            server_sort = cells.SERVER_SORT.get(self.sort_column, self.sort_column)
            try:
                outcome: Snapshot | DaskCliError = await self.poller.fetch(
                    server_sort, self.sort_reverse
                )
            except DaskCliError as exc:
                outcome = exc
            except Exception as exc:  # noqa: BLE001 - the dashboard must keep running
                outcome = DaskCliError(f"{type(exc).__name__}: {exc}")
            if not self.is_running:  # shutting down: the widgets are going away
                return
            if isinstance(outcome, DaskCliError):
                self.show_error(outcome)
            else:
                self.show(outcome)
            await asyncio.sleep(max(self.interval - (time.monotonic() - started), 0.05))

    async def on_unmount(self) -> None:
        await self.poller.close()

    def show_error(self, exc: DaskCliError) -> None:
        self.error = exc
        address = self.poller.address or "the scheduler"
        if self.last_ok is None:
            age = "no data yet"
        else:
            age = f"data {cells.duration(time.monotonic() - self.last_ok)} old"
        text = f"{exc.message} ({age}; retrying every {self.interval:g}s)"
        if exc.hint:
            text += f"\n{exc.hint}"
        banner = self.query_one("#banner", Static)
        banner.update(text)
        banner.add_class("visible")
        if self.snapshot is None:
            self.query_one("#summary", Static).update(f"dask top: {address} unreachable")

    def show(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.error = None
        self.last_ok = time.monotonic()
        self.query_one("#banner", Static).remove_class("visible")
        self.query_one("#summary", Static).update(summary_line(snapshot))
        self.query_one("#tasks", Static).update(
            f"tasks: {report.task_states(snapshot)} · {snapshot.totals.tasks_per_second:.1f}/s"
        )
        self.query_one("#throughput", Sparkline).data = snapshot.totals.throughput or [0]
        self._fill_workers()
        self._fill_lower(snapshot)
        self.refreshes += 1

    def _fill_workers(self) -> None:
        if self.snapshot is None:
            return
        rows = cells.sort_workers(self.snapshot.workers, self.sort_column, self.sort_reverse)
        table = self.query_one("#workers", DataTable)
        _refill(table, [(w.address, _worker_cells(w)) for w in rows])
        if self.snapshot.workers_total > len(rows):
            table.border_subtitle = f"{len(rows)} of {self.snapshot.workers_total} workers"
        self._show_detail()

    @on(DataTable.RowHighlighted, "#workers")
    def _show_detail(self) -> None:
        """One line under the table about the selected worker: address, why kept alive."""
        worker = self.selected_worker(quiet=True)
        text = ""
        if worker is not None:
            text = f"{worker.name} {worker.address} · {cells.status(worker)}"
        self.query_one("#detail", Static).update(text)

    def _fill_lower(self, snapshot: Snapshot) -> None:
        width = max(self.size.width - 50, 10)
        prefixes = self.query_one("#prefixes", DataTable)
        _refill(
            prefixes,
            [
                (p.name, (p.name, cells.prefix_bar(p, width), cells.prefix_counts(p)))
                for p in snapshot.prefixes
            ],
        )
        erred = self.query_one("#erred-tasks", DataTable)
        _refill(
            erred,
            [(e.key, (report.clock(e.time), e.key, e.exception)) for e in snapshot.erred],
        )
        paused = self.query_one("#paused-tasks", DataTable)
        _refill(
            paused,
            [
                (
                    f"{p.address} {p.key}",
                    (p.key, p.worker, p.where, _since(p.since, snapshot.time), p.attached or ""),
                )
                for p in snapshot.paused
            ],
        )
        tabs = self.query_one("#lower", TabbedContent)
        tabs.get_tab("erred").label = f"Erred ({len(snapshot.erred)})"
        tabs.get_tab("paused").label = f"Paused ({len(snapshot.paused)})"
        log = self.query_one("#scheduler-log", Log)
        new = [line for line in snapshot.logs if line.time > self._log_shown]
        if new:
            log.write_lines(
                f"{report.clock(line.time)} {line.level:<7} {line.logger}: {line.message}"
                for line in new
            )
            self._log_shown = new[-1].time

    # --- sorting ------------------------------------------------------------

    def action_sort(self, column: str) -> None:
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = column
            self.sort_reverse = column in DESCENDING_FIRST
        self._label_sorted_column()
        self._fill_workers()

    def action_next_sort(self) -> None:
        index = SORT_CYCLE.index(self.sort_column)
        self.action_sort(SORT_CYCLE[(index + 1) % len(SORT_CYCLE)])

    def action_invert_sort(self) -> None:
        self.action_sort(self.sort_column)

    @on(DataTable.HeaderSelected, "#workers")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.action_sort(str(event.column_key.value))

    def _label_sorted_column(self) -> None:
        table = self.query_one("#workers", DataTable)
        for key, label in WORKER_COLUMNS.items():
            arrow = (" ▼" if self.sort_reverse else " ▲") if key == self.sort_column else ""
            column = table.columns[key]  # type: ignore[index]
            column.label = Text(label + arrow)
            column.content_width = max(column.content_width, column.label.cell_len)
        table.refresh(layout=True)

    def action_tab(self, tab: str) -> None:
        self.query_one("#lower", TabbedContent).active = tab

    # --- actions on the selected worker -------------------------------------

    def selected_worker(self, quiet: bool = False) -> WorkerRow | None:
        """The worker under the cursor, or None (and a notice) when there is none."""
        table = self.query_one("#workers", DataTable)
        if self.snapshot is None or table.row_count == 0:
            if not quiet:
                self.notify("No worker selected", severity="warning")
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        for worker in self.snapshot.workers:
            if worker.address == key:
                return worker
        return None

    @on(DataTable.RowSelected, "#workers")
    def _row_chosen(self) -> None:
        self.action_shell()

    def action_shell(self) -> None:
        """Hand the terminal to ``dask worker shell`` on the selected worker."""
        worker = self.selected_worker()
        if worker is None:
            return
        self._hand_over(
            actions.worker_command(self.settings, "shell", worker.address),
            f"dask worker shell {worker.name}",
            "exit() to return",
        )

    def action_debug(self) -> None:
        """Hand the terminal to ``dask worker debug KEY`` on the selected paused task."""
        table = self.query_one("#paused-tasks", DataTable)
        if self.snapshot is None or not self.snapshot.paused or table.row_count == 0:
            self.notify("No task is paused at breakpoint()", severity="warning")
            return
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        pause = next(p for p in self.snapshot.paused if f"{p.address} {p.key}" == row_key)
        self._hand_over(
            actions.worker_command(self.settings, "debug", pause.key),
            f"dask worker debug {pause.key}",
            "continue to resume the task and return",
        )

    def _hand_over(self, argv: list[str], command: str, how_back: str) -> None:
        """Run ``argv`` in this terminal, the dashboard suspended until it ends."""
        env = dict(os.environ)
        if self.no_color:
            env["NO_COLOR"] = "1"  # Textual removed it from our environment
        try:
            with self.suspend():
                print(f"{command}; {how_back}")
                status = subprocess.run(argv, env=env, check=False).returncode
        except SuspendNotSupported:
            self.notify(f"This terminal cannot be handed over; run: {command}", severity="warning")
            return
        if status != 0:
            # Its last words (say, "Task ... is not paused") went with the screen it
            # printed them on: the dashboard's redraw covers them.
            self.notify(
                f"{command} ended with exit status {status}", severity="warning", timeout=10
            )

    @work(group="actions")
    async def _ask(
        self,
        worker: WorkerRow,
        call: Callable[[Any, str], Awaitable[Any]],
        show: Callable[[WorkerRow, Any], None],
    ) -> None:
        """``call(settings, address)`` of :mod:`dask_cli.top.actions` off the screen's
        loop, then ``show(worker, answer)``; a failure is a notification naming the
        worker, and the dashboard goes on."""
        try:
            answer = await call(self.settings, worker.address)
        except DaskCliError as exc:
            self.notify(f"{worker.name}: {exc.message}", severity="error")
            return
        show(worker, answer)

    def _ask_selected(
        self,
        call: Callable[[Any, str], Awaitable[Any]],
        show: Callable[[WorkerRow, Any], None],
    ) -> None:
        worker = self.selected_worker()
        if worker is not None:
            self._ask(worker, call, show)

    def action_stack(self) -> None:
        self._ask_selected(actions.stack, self._show_stack)

    def _show_stack(self, worker: WorkerRow, text: str) -> None:
        self.push_screen(TextScreen(f"stack of {worker.name} ({worker.address})", text))

    def action_logs(self) -> None:
        self._ask_selected(actions.logs, self._show_logs)

    def _show_logs(self, worker: WorkerRow, lines: list[str]) -> None:
        text = "\n".join(lines) or "(no log lines)"
        self.push_screen(TextScreen(f"log of {worker.name} ({worker.address})", text))

    def action_keepalive(self) -> None:
        self._ask_selected(actions.toggle_keepalive, self._show_keepalive)

    def _show_keepalive(self, worker: WorkerRow, info: Any) -> None:
        self.notify(f"Keep-alive {'on' if info.keepalive else 'off'} for {info.name}")

    def action_release(self) -> None:
        worker = self.selected_worker()
        if worker is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._ask(worker, actions.release, self._show_released)

        self.push_screen(
            ConfirmScreen(
                f"Release {worker.name} ({worker.address})? A kept-alive worker exits, "
                "and what it holds is lost."
            ),
            answered,
        )

    def _show_released(self, worker: WorkerRow, info: Any) -> None:
        self.notify(f"Released {info.name}: it exits now")

    def action_help(self) -> None:
        self.push_screen(TextScreen("help", HELP, markup=True))


def summary_line(snapshot: Snapshot) -> str:
    """``tcp://10.0.0.1:8786 · 3 workers, 1 kept alive · 6 threads · 1.2G/12G · 20:05:31``."""
    t = snapshot.totals
    kept = sum(1 for w in snapshot.workers if w.status == "kept-alive")
    parts = [snapshot.address, f"{t.workers} workers" + (f", {kept} kept alive" if kept else "")]
    parts.append(f"{t.threads} threads")
    memory = cells.size(t.memory) + (f"/{cells.size(t.memory_limit)}" if t.memory_limit else "")
    parts.append(f"mem {memory}" + (f", {cells.size(t.spilled)} spilled" if t.spilled else ""))
    parts.append(report.clock(snapshot.time))
    return " · ".join(parts)


def _since(when: float | None, now: float) -> str:
    return cells.duration(max(now - when, 0.0)) if when else cells.MISSING


def _worker_cells(worker: WorkerRow) -> tuple[Any, ...]:
    style = STATUS_STYLES.get(worker.status, OTHER_STATUS_STYLE)
    return (
        worker.name,
        Text(worker.status, style=style),
        cells.percent(worker.cpu),
        cells.memory(worker),
        cells.size(worker.spilled),
        cells.tasks(worker),
        cells.duration(cells.loop_delay(worker)),
        cells.duration(worker.last_seen),
    )


def _refill(table: DataTable, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Replace the rows of ``table``, keeping the cursor on the same row key and the
    scroll position (rows come and go between refreshes)."""
    selected = None
    if table.row_count:
        selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    scroll_y = table.scroll_y
    table.clear()
    seen = set()
    for key, values in rows:
        if key in seen:  # keys are unique in a snapshot; a duplicate would raise
            continue
        seen.add(key)
        table.add_row(*values, key=key)
    if selected in seen:
        table.move_cursor(row=table.get_row_index(selected), scroll=False)
    table.scroll_y = scroll_y


def run(settings: Any, interval: float = 1.0) -> int:
    """Run the dashboard until ``q``; the exit status."""
    result = TopApp(settings, interval).run()
    return result or 0
