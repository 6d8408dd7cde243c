"""What ``dask ssh`` shows: remote output prefixed by host and role (in colour on a
terminal), a progress line while the cluster starts, and how to use it once it is up.

Remote lines are printed as plain text, never parsed as rich markup. A closed stdout
(``dask ssh ... | head``) stops the printing, not the cluster.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.text import Text

_WORKER_STYLES = ("cyan", "green", "yellow", "blue", "bright_cyan", "bright_green")


class Display:
    def __init__(self, console: Console | None = None, errors: Console | None = None):
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.errors = errors or Console(stderr=True, highlight=False, soft_wrap=True)
        self._styles: dict[str, str] = {}
        self._status = None
        self._closed = False

    def _style(self, label: str) -> str:
        if label not in self._styles:
            if label.startswith("scheduler"):
                self._styles[label] = "bold magenta"
            else:
                workers = sum(1 for known in self._styles if not known.startswith("scheduler"))
                self._styles[label] = _WORKER_STYLES[workers % len(_WORKER_STYLES)]
        return self._styles[label]

    def _print(self, text: Text, console: Console | None = None) -> None:
        if self._closed and console is None:
            return
        try:
            (console or self.console).print(text)
        except (BrokenPipeError, ValueError):  # stdout closed: keep running, stop printing
            self._closed = True
            with contextlib.suppress(OSError, ValueError):
                sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - for interpreter exit

    def remote_line(self, label: str, line: str) -> None:
        self._print(Text.assemble((f"[{label}]", self._style(label)), " ", line))

    def info(self, message: str) -> None:
        self._print(Text.assemble(("dask ssh: ", "bold"), message))

    def warning(self, message: str) -> None:
        self._print(Text.assemble(("dask ssh: ", "bold yellow"), (message, "yellow")), self.errors)

    def progress(self, message: str) -> None:
        """The one-line start-up progress: a live line on a terminal, nothing elsewhere
        (the milestones are printed with :meth:`info` anyway)."""
        if not self.console.is_terminal or self._closed:
            return
        if self._status is None:
            self._status = self.console.status(message, spinner="dots")
            self._status.start()
        else:
            self._status.update(message)

    def end_progress(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def process_exited(self, label: str, how: str, tail: Iterable[str]) -> None:
        """A remote process ended on its own: say so on stderr, with its last lines."""
        lines = list(tail)
        message = Text.assemble(("dask ssh: ", "bold red"), (f"{label} {how}", "red"))
        if lines:
            message.append("; its last lines:", "red")
        self._print(message, self.errors)
        for line in lines:
            self._print(Text.assemble("    ", (line, "dim")), self.errors)

    def ready(self, scheduler_address: str, workers: Sequence[str], hosts: int) -> None:
        """The cluster is up: where it is and the commands that use it."""
        self.end_progress()
        count = f"{len(workers)} worker{'s' if len(workers) != 1 else ''}"
        on = f"on {hosts} host{'s' if hosts != 1 else ''}"
        self._print(
            Text.assemble(
                ("Scheduler at ", "bold green"), (scheduler_address, "bold"), f"  ({count} {on})"
            )
        )
        self._print(Text(f"  dask worker list --scheduler {scheduler_address}"))
        if workers:
            self._print(Text(f"  dask worker shell {workers[0]} --scheduler {scheduler_address}"))
        self._print(Text("Ctrl-C stops the cluster.", style="dim"))
