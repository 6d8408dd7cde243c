"""The interactive side of ``dask worker shell``: a ptpython REPL whose code runs remotely.

ptpython does the editing (multi-line input, history, syntax highlighting, the
user's ``config.py``); this module swaps its evaluation for a round trip to the
worker:

- ``eval_async`` sends the input to the worker (``mode="auto"``: an expression's
  repr comes back as text) and writes the remote stdout/stderr as it streams in;
- the repr is shown the way ptpython shows local results, remote tracebacks (made
  on the worker) as ptpython shows local ones;
- Ctrl-C: ptpython cancels ``eval_async``; we then send ``interrupt`` for that
  eval and wait (bounded) for its ``interrupted`` result, then return to the
  prompt, keeping the session;
- completion is answered by the worker (``RemoteCompleter``); everything in
  ptpython that would look at the *local* namespace (dictionary completion,
  signature and docstring popups) is off, and the local namespace is empty.

The connection's event loop is the one running ``run_repl``; ptpython reads
input in a thread (``run_in_executor``) so the loop stays free to carry
completions while the user types.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptpython.repl import PythonRepl, run_config

from dask_cli.debug import protocol
from dask_cli.debug.client.completer import RemoteCompleter
from dask_cli.errors import ConnectionFailed, DaskCliError, RemoteError

if TYPE_CHECKING:
    from prompt_toolkit.document import Document

# How long, after Ctrl-C, to wait for the worker to confirm the code stopped.
# The service gives up on code that ignores the interrupt after its own grace
# period (0.5 s) and answers ``interrupted``; this only bounds a worker that does
# not answer at all.
INTERRUPT_WAIT = 5.0

HISTORY_FILE_NAME = "shell-history"


class RemoteValue:
    """The repr of a remote result: shows as that text at the prompt."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class RemoteRepl(PythonRepl):
    """ptpython's REPL, evaluating on the other end of a ``ShellConnection``."""

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop, **kwargs: Any):
        self.conn = conn
        self.remote_completer = RemoteCompleter(conn.complete, loop)
        self.connection_error: BaseException | None = None
        self._evaluating = False
        namespace: dict[str, Any] = {}  # nothing local may pass for a remote object
        super().__init__(
            get_globals=lambda: namespace,
            get_locals=lambda: namespace,
            _completer=self.remote_completer,
            **kwargs,
        )
        self.remote_completer._current_document = self._current_document
        self.confirm_exit = False  # leaving is harmless: the worker keeps running

    def _current_document(self) -> Document:
        return self.default_buffer.document

    def disable_local_introspection(self) -> None:
        """Turn off what would inspect local objects as if they were the worker's.

        Called after the user's ptpython config, which may have turned them on.
        """
        self.enable_dictionary_completion = False  # evaluates code locally
        self.show_signature = False  # signatures/docstrings come from local jedi
        self.show_docstring = False

    def _on_input_timeout(self, buff: Any) -> None:
        """ptpython computes signatures with local jedi here: nothing local to show."""

    async def eval_async(self, line: str) -> object:
        """Run ``line`` on the worker; stream its output; return its repr, if any."""
        self.remote_completer.forget()  # the namespace may change
        task = asyncio.ensure_future(
            self.conn.eval(line, mode="auto", on_output=self._on_output, on_input=self._on_input)
        )
        self._evaluating = True
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            # ptpython cancels us on Ctrl-C (a SIGINT handler on this loop). We
            # handle it: the cancellation is consumed, the REPL goes on.
            current = asyncio.current_task()
            if current is not None and hasattr(current, "uncancel"):
                current.uncancel()
            await self._interrupt(task)
            return None
        except Exception as exc:
            self._connection_lost(exc)
        finally:
            self._evaluating = False
        return self._present(result)

    def _present(self, result: Any) -> object:
        status = getattr(result, "status", "ok")
        if status == "exit":
            raise SystemExit(0)  # ptpython's run_async ends the REPL on SystemExit
        if status == "error":
            error = getattr(result, "error", None)
            text = getattr(result, "traceback", None) or (f"{error}\n" if error else None)
            raise RemoteError("the code raised", traceback=text or "(no traceback)\n")
        if status == "interrupted":
            self._print_interrupted(dropped=getattr(result, "dropped", 0))
            return None
        value = getattr(result, "value", None)
        return None if value is None else RemoteValue(value)

    async def _interrupt(self, task: asyncio.Future) -> None:
        """Ask the worker to stop ``task``'s code; wait (bounded) for it to confirm."""
        note = ""
        if not task.done():
            try:
                await _send_interrupt(self.conn)
                await asyncio.wait_for(asyncio.shield(task), INTERRUPT_WAIT)
            except asyncio.TimeoutError:
                note = " (the worker did not confirm; the code may still be running)"
            except asyncio.CancelledError:
                note = " (not waiting for the worker to confirm)"  # a second Ctrl-C
            except Exception as exc:
                self._connection_lost(exc)
        dropped = 0
        if task.done() and not task.cancelled():
            result = task.result() if task.exception() is None else None
            if getattr(result, "status", None) == "exit":
                raise SystemExit(0)
            # Output that raced the interrupt was already printed; the eval is over.
            dropped = getattr(result, "dropped", 0)
        self._print_interrupted(note, dropped)

    def _print_interrupted(self, note: str = "", dropped: int = 0) -> None:
        output = self.app.output
        output.write(f"\r{protocol.dropped_notice(dropped)}KeyboardInterrupt{note}\n\n")
        output.flush()

    def _connection_lost(self, exc: BaseException) -> None:
        """End the REPL: without its connection there is nothing to evaluate with."""
        self.connection_error = exc
        raise SystemExit(1)

    def _on_output(self, stream: str, text: str) -> None:
        """Remote stdout/stderr, as it arrives.

        During an eval ptpython's prompt is not on screen (the terminal is back in
        cooked mode), so the text goes straight out. Late output (code that kept
        printing after an interrupt) is printed above the prompt instead, so the
        line being edited is not garbled.
        """
        target = sys.stderr if stream == "stderr" else sys.stdout
        if self._evaluating or not self.app.is_running:
            target.write(text)
            target.flush()
            return
        from prompt_toolkit.application import run_in_terminal

        app_loop = getattr(self.app, "loop", None)
        if app_loop is None:
            return

        def write() -> None:
            target.write(text)
            target.flush()

        app_loop.call_soon_threadsafe(lambda: run_in_terminal(write))

    async def _on_input(self, prompt: str) -> str | None:
        """The remote code reads a line (``input()``, pdb): read it here.

        A plain prompt_toolkit prompt in a thread (as ptpython reads its own
        input), so it gets its own event loop and terminal mode. Ctrl-D answers end
        of file; Ctrl-C interrupts the remote code.
        """
        from prompt_toolkit import PromptSession

        loop = asyncio.get_running_loop()
        session: PromptSession[str] = PromptSession()
        try:
            return await loop.run_in_executor(None, lambda: session.prompt(prompt))
        except EOFError:
            return None
        except KeyboardInterrupt:
            await _send_interrupt(self.conn)
            return None

    def _handle_exception(self, e: BaseException) -> None:
        """Show remote tracebacks as ptpython shows local ones; Ctrl-C as it does."""
        if isinstance(e, asyncio.CancelledError):
            self._print_interrupted()
            return
        if not isinstance(e, RemoteError):
            super()._handle_exception(e)
            return
        from prompt_toolkit.styles.pygments import pygments_token_to_classname
        from pygments.lexers import PythonTracebackLexer

        text = e.traceback or e.message
        text = text if text.endswith("\n") else text + "\n"
        if self.enable_syntax_highlighting:
            fragments = [
                ("class:" + pygments_token_to_classname(token), part)
                for _, token, part in PythonTracebackLexer().get_tokens_unprocessed(text)
            ]
        else:
            fragments = [("", text)]
        self._get_output_printer().display_style_and_text_tuples(
            fragments, paginate=self.enable_pager
        )


async def _send_interrupt(conn: Any) -> None:
    """Ctrl-C for the evals running on ``conn`` (``ShellConnection.interrupt``)."""
    await conn.interrupt()


def history_path() -> Path | None:
    """``$XDG_DATA_HOME/dask-cli/shell-history`` (``~/.local/share`` by default).

    On Windows and macOS, click's application directory. None (history kept in
    memory only) when the directory cannot be created.
    """
    base = os.environ.get("XDG_DATA_HOME")
    if base:
        directory = Path(base) / "dask-cli"
    elif sys.platform.startswith(("win", "darwin")):
        import click

        directory = Path(click.get_app_dir("dask-cli"))
    else:
        directory = Path.home() / ".local" / "share" / "dask-cli"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return directory / HISTORY_FILE_NAME


def ptpython_config_path() -> Path | None:
    """The user's ptpython ``config.py``, found where ptpython's own command looks."""
    config_home = os.environ.get("PTPYTHON_CONFIG_HOME")
    if not config_home:
        try:
            import appdirs  # ptpython's own dependency, used by its entry point

            config_home = appdirs.user_config_dir("ptpython", "prompt_toolkit")
        except ImportError:
            config_home = os.path.expanduser("~/.config/ptpython")
    for candidate in (
        Path(config_home) / "config.py",
        Path(os.path.expanduser("~/.ptpython")) / "config.py",
    ):
        if candidate.is_file():
            return candidate
    return None


def banner(target: Any, service_banner: str = "", helpers: list[str] | None = None) -> str:
    """What the user sees first: who they are talking to and what is at hand
    (``helpers``: the names the service's welcome lists; else its own banner)."""
    kind = getattr(target, "kind", "worker")
    status = getattr(target, "status", "?")
    lines = [
        f"dask-cli shell: {kind} {getattr(target, 'name', '?')!r} at "
        f"{getattr(target, 'address', '?')} (status: {status}, "
        f"pid {getattr(target, 'pid', '?')} on {getattr(target, 'host', '?')})"
    ]
    kept_alive = status == protocol.KEPT_ALIVE
    if helpers:
        lines.append(f"Available: {', '.join(helpers)}")
    elif service_banner and service_banner.strip():
        lines.append(service_banner.strip())
    if kept_alive and getattr(target, "kept_alive_reason", None):
        lines.append(f"Kept alive because: {target.kept_alive_reason}")
    lines.append(
        f"Code runs in the {kind}; top-level await runs on its event loop. "
        f"Ctrl-C interrupts it; exit() or Ctrl-D leaves (the {kind} keeps running)."
    )
    return "\n".join(lines)


async def run_repl(conn: Any) -> int:
    """Run the interactive shell on an open ``ShellConnection`` until the user leaves.

    Returns 0 when the user leaves (Ctrl-D, ``exit()``); raises ``ConnectionFailed``
    when the connection is lost. The caller owns (and closes) ``conn``.
    """
    loop = asyncio.get_running_loop()
    history = history_path()
    repl = RemoteRepl(conn, loop, history_filename=str(history) if history else None)
    config = ptpython_config_path()
    if config is not None:
        run_config(repl, str(config))
    repl.disable_local_introspection()

    target = conn.target
    print(
        banner(target, getattr(conn, "banner", "") or "", getattr(conn, "helpers", None)),
        flush=True,
    )
    await repl.run_async()
    error = repl.connection_error
    if error is not None:
        detail = error.message if isinstance(error, DaskCliError) else str(error)
        raise ConnectionFailed(
            f"Lost the connection to {target.kind} {target.name!r}: "
            f"{detail or type(error).__name__}",
            hint="Is it still running? `dask worker list` shows the workers the scheduler knows.",
        )
    return 0
