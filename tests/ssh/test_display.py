"""What `dask ssh` prints: prefixed remote lines, colour only on a terminal, no markup."""

from __future__ import annotations

import io

from rich.console import Console

from dask_cli.ssh.display import Display


def make(terminal: bool) -> tuple[Display, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    kwargs = {"force_terminal": terminal, "color_system": "standard" if terminal else None}
    display = Display(Console(file=out, **kwargs), Console(file=err, **kwargs))
    return display, out, err


def test_remote_lines_are_prefixed_and_coloured_on_a_terminal():
    display, out, _ = make(terminal=True)
    display.remote_line("scheduler node1", "Scheduler at: tcp://10.0.0.1:8786")
    display.remote_line("worker node2", "a [bold]literal[/bold] line")
    text = out.getvalue()
    assert "\x1b[" in text
    assert "[scheduler node1]" in text and "[worker node2]" in text
    assert "a [bold]literal[/bold] line" in text  # remote text is never rich markup


def test_plain_text_when_not_a_terminal():
    display, out, err = make(terminal=False)
    display.remote_line("worker node2", "hello")
    display.progress("starting")  # no live line in a pipe or a file
    display.process_exited("worker node2", "exited with status 1", ["last words"])
    display.ready("tcp://10.0.0.1:8786", ["tcp://10.0.0.2:40000"], hosts=2)
    assert "\x1b[" not in out.getvalue() + err.getvalue()
    assert out.getvalue().splitlines() == [
        "[worker node2] hello",
        "Scheduler at tcp://10.0.0.1:8786  (1 worker on 2 hosts)",
        "  dask worker list --scheduler tcp://10.0.0.1:8786",
        "  dask worker shell tcp://10.0.0.2:40000 --scheduler tcp://10.0.0.1:8786",
        "Ctrl-C stops the cluster.",
    ]
    assert err.getvalue().splitlines() == [
        "dask ssh: worker node2 exited with status 1; its last lines:",
        "    last words",
    ]
