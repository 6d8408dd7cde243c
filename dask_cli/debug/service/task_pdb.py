"""pdb in a paused task's own thread, talking to the shell session that attached.

A local ``pdb.set_trace()`` reads the process's stdin; on a worker nobody sees that.
:class:`TaskPdb` reads and writes through the attaching session's ``SessionOutput``
instead (the routing ``pm(key)`` uses: output and ``input`` requests of that session's
eval), so it is a whole pdb: ``next``, ``step``, ``until`` and breakpoints run the
task's code under the debugger. What differs from pdb, because a task belongs to the
cluster and not to the debugger:

- tracing is confined to the task: ``where`` ends at the task's outermost frame of
  user code, and when that frame returns the session ends;
- ``quit``, end of input and a client that went away resume the task; only ``kill``
  aborts it (it fails with :class:`TaskKilled`);
- ``list`` says why there is no source (code pickled by value) instead of nothing;
- the prompt goes to the client with its input request, and the names of the
  current frame are kept for remote completion (``Attachment.namespace``).
"""

from __future__ import annotations

import linecache
import pdb
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dask_cli.debug.service.streams import SessionOutput

# pdb never stops inside these (the hook's own frames, distributed's task runner).
SKIP_MODULES = ["dask_cli.debug.service.*", "distributed.*"]


class TaskKilled(Exception):
    """Raised in a paused task by the debugger's ``kill`` command: the task fails with it."""


@dataclass
class Attachment:
    """The debugger's end of a pause: the session output pdb writes to and reads from."""

    output: SessionOutput
    who: str
    since: float = field(default_factory=time.time)
    # Names of pdb's current frame, refreshed at every prompt, for remote completion.
    namespace: dict[str, Any] = field(default_factory=dict)
    ended: threading.Event = field(default_factory=threading.Event)
    outcome: str = ""
    prompt: str | None = None  # the prompt pdb wrote last, sent with the next input request
    debugger: TaskPdb | None = None

    def end(self, outcome: str) -> None:
        if not self.ended.is_set():
            self.outcome = outcome
            self.ended.set()


class _PdbOutput:
    """pdb's ``stdout``: the attached session's output. The prompt is held back and sent
    with the input request instead, so the client can show it as a real prompt."""

    def __init__(self, attachment: Attachment, debugger: pdb.Pdb):
        self.attachment = attachment
        self.debugger = debugger

    def write(self, text: str) -> int:
        if text and text == self.debugger.prompt:
            self.attachment.prompt = text
        else:
            self.attachment.output.write("stdout", text)
        return len(text)

    def flush(self) -> None:
        pass


class _PdbInput:
    """pdb's ``stdin``: each line is asked from the attached client ("" at end of input,
    also when the client went away, which pdb treats as ``EOF``: the task resumes)."""

    def __init__(self, attachment: Attachment, debugger: TaskPdb):
        self.attachment = attachment
        self.debugger = debugger

    def readline(self) -> str:
        self.debugger.refresh_namespace()
        prompt, self.attachment.prompt = self.attachment.prompt or "", None
        try:
            return self.attachment.output.readline(prompt)
        except KeyboardInterrupt:  # the session was interrupted or closed
            return ""


class TaskPdb(pdb.Pdb):
    """pdb on a paused task, in the task's thread, talking to the attached session.

    Tracing is confined to the task: ``where`` ends at the task's outermost frame of
    user code (``botframe``), and when that frame returns the session ends. ``quit``
    and end of input resume the task instead of aborting it; ``kill`` aborts it.
    """

    def __init__(self, attachment: Attachment, key: Any, on_finish: Callable[[TaskPdb], None]):
        super().__init__(nosigint=True, readrc=False, skip=SKIP_MODULES)
        self.stdout = _PdbOutput(attachment, self)  # type: ignore[assignment]
        self.stdin = _PdbInput(attachment, self)  # type: ignore[assignment]
        self.use_rawinput = False
        self.key = key
        self.on_finish = on_finish
        self.attachment = attachment
        attachment.debugger = self
        self._routing: Any = None
        self._done = False

    # --- starting and ending ---------------------------------------------------

    def start(self, frame: FrameType, header: str | None = None) -> None:
        """``set_trace(frame)``, confined to the task's own frames: call it last, pdb
        stops at the next line the task runs."""
        from dask_cli.debug.service.streams import current_output

        # Output of the task's code (``!print(x)``, a ``next`` over a print) goes to the
        # debugger, as it would in a local pdb session.
        self._routing = current_output.set(self.attachment.output)
        if header:
            self.message(header)
        self.reset()
        for task_frame in _task_frames(frame):
            task_frame.f_trace = self.trace_dispatch
            self.botframe = task_frame
        self.set_step()
        sys.settrace(self.trace_dispatch)

    def finish(self, outcome: str) -> None:
        """Stop tracing and let the task go; called in the task's thread."""
        if self._done:
            return
        self._done = True
        sys.settrace(None)
        frame: FrameType | None = sys._getframe()
        while frame is not None:
            if frame.f_trace is not None:
                frame.f_trace = None
            if frame is self.botframe:
                break
            frame = frame.f_back
        if self._routing is not None:
            from dask_cli.debug.service.streams import current_output

            try:
                current_output.reset(self._routing)
            except ValueError:  # another context: leave it to the task's end
                current_output.set(None)
        self.attachment.end(outcome)
        self.on_finish(self)

    def trace_dispatch(self, frame: FrameType, event: str, arg: Any) -> Any:
        traced = super().trace_dispatch(frame, event, arg)
        return None if self._done else traced  # finished: no more line events here

    def dispatch_return(self, frame: FrameType, arg: Any) -> Any:
        result = super().dispatch_return(frame, arg)
        if frame is self.botframe:
            self.finish("the task's function returned")
            return None
        return result

    def set_continue(self) -> None:
        super().set_continue()
        if not self.breaks:
            self.finish("continue")

    # --- commands ---------------------------------------------------------------

    def do_quit(self, arg: str) -> bool:
        """q(uit) | exit
        Leave the debugger; the task goes on (use 'kill' to stop it)."""
        self.message("Leaving the debugger: the task resumes (kill stops it).")
        self.clear_all_breaks()
        self._set_stopinfo(self.botframe, None, -1)
        self.finish("quit")
        return True

    do_q = do_exit = do_quit

    def do_EOF(self, arg: str) -> bool:
        """End of input: leave the debugger, the task resumes."""
        self.message("")
        self.clear_all_breaks()
        self._set_stopinfo(self.botframe, None, -1)
        self.finish("end of input")
        return True

    def do_kill(self, arg: str) -> bool:
        """kill
        Stop the task: it fails with TaskKilled (quit and continue let it go on)."""
        who = self.attachment.who
        self.finish("killed")
        raise TaskKilled(f"Task {str(self.key)!r} was stopped from the debugger by {who}")

    def do_list(self, arg: str) -> None:
        if self._has_source(self.curframe):
            super().do_list(arg)

    do_l = do_list

    def do_longlist(self, arg: str) -> None:
        if self._has_source(self.curframe):
            super().do_longlist(arg)

    do_ll = do_longlist

    def _has_source(self, frame: FrameType) -> bool:
        filename = frame.f_code.co_filename
        if linecache.getlines(filename, frame.f_globals):
            return True
        self.error(no_source_message(filename))
        return False

    def stop_at(self, frame: FrameType) -> None:
        """Another ``breakpoint()`` in the task while attached: stop at its next line."""
        frame.f_trace = self.trace_dispatch
        self.set_step()

    def refresh_namespace(self) -> None:
        """The names of the current frame, for completion while the prompt is shown."""
        frame = getattr(self, "curframe", None)
        names = self.attachment.namespace
        names.clear()
        if frame is not None:
            names.update(frame.f_globals)
            names.update(getattr(self, "curframe_locals", None) or frame.f_locals)


def no_source_message(filename: str) -> str:
    return (
        f"No source for {filename} on this worker: code defined in __main__, a notebook or "
        "`python -c` reaches workers pickled by value, without its file "
        "(p, pp, where, up and down still work)"
    )


def _task_frames(frame: FrameType) -> list[FrameType]:
    """``frame`` and its callers up to the task's outermost frame of user code: below
    distributed's task runner and the dask code that called the task's function."""
    frames = []
    current: FrameType | None = frame
    while current is not None and not _is_task_runner(current):
        frames.append(current)
        current = current.f_back
    if current is None:  # not under distributed's runner: trace the whole stack
        return frames
    while len(frames) > 1 and _module(frames[-1]).split(".")[0] in ("dask", "distributed"):
        frames.pop()
    return frames


def _is_task_runner(frame: FrameType) -> bool:
    return frame.f_code.co_name in ("_run_task_simple", "_run_actor") and _module(frame).startswith(
        "distributed"
    )


def _module(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))
