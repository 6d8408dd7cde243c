"""The stack text of ``dask worker stack``: source when the worker has it, else the
function's qualified name, line, locals and why the source is missing."""

from __future__ import annotations

import sys
import threading

import cloudpickle

from dask_cli.debug.service.helpers import format_stack, missing_source

NOTEBOOK_CELL = """
def wait_in_cell(event):
    waiting = True
    event.wait(10)
"""


def _stack_of(function) -> str:  # noqa: ANN001
    event = threading.Event()
    thread = threading.Thread(target=function, args=(event,), daemon=True)
    thread.start()
    try:
        while not any(f.f_code.co_name == function.__name__ for f in _frames(thread.ident)):
            pass
        return format_stack(sys._current_frames()[thread.ident])
    finally:
        event.set()
        thread.join(5)


def _frames(ident):  # noqa: ANN001, ANN202
    frame = sys._current_frames().get(ident)
    while frame is not None:
        yield frame
        frame = frame.f_back


def wait_in_module(event: threading.Event) -> None:
    event.wait(10)


def test_a_function_from_a_file_shows_its_source() -> None:
    text = _stack_of(wait_in_module)
    assert "in wait_in_module\n    event.wait(10)\n" in text
    assert "no source" not in text.split("wait_in_module", 1)[1].split("File", 1)[0]


def test_a_function_sent_by_value_says_why_it_has_no_source() -> None:
    namespace: dict = {"__name__": "notebook_cell"}  # a module nothing can import
    exec(compile(NOTEBOOK_CELL, "<ipython-input-3>", "exec"), namespace)
    received = cloudpickle.loads(cloudpickle.dumps(namespace["wait_in_cell"]))
    text = _stack_of(received)
    entry = text.split("in wait_in_cell\n", 1)[1].split("\n", 1)[0]
    assert entry.startswith("    (no source: "), text
    assert "locals: event, waiting" in entry
    assert ", line 4, in wait_in_cell" in text


def test_the_reasons() -> None:
    assert missing_source(__file__) is None
    assert "sent by value" in missing_source("<dynamic-code>")
    assert "compiled from a string" in missing_source("<stdin>")
    assert "not on this machine" in missing_source("/nonexistent/job.py")


def test_a_frame_without_a_line_number_is_shown_not_an_error(monkeypatch) -> None:  # noqa: ANN001
    """Another thread's frame has no line number at times (a thread just starting);
    ``dask worker stack`` answered with a TypeError then."""
    import traceback

    frame = sys._getframe()
    monkeypatch.setattr(traceback, "walk_stack", lambda f: iter([(frame, None)]))
    text = format_stack(frame)
    assert ", line ?, in test_a_frame_without_a_line_number_is_shown_not_an_error" in text
