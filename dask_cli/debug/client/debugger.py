"""``dask worker debug``: the tasks paused at ``breakpoint()`` across the cluster, and a
pdb session on one of them.

Listing reads what every worker publishes in the scheduler's metadata (one request,
whatever the cluster's size), joined with the worker list for names and shell
addresses. Attaching opens a shell session on the task's worker and runs
``debug(KEY)`` there: pdb runs in the task's thread and its prompts come here as input
requests of that eval (the machinery of ``pm(key)``). In a terminal each prompt is a
prompt_toolkit prompt with Tab completion of the names in pdb's current frame, asked
from the worker (``protocol.DebugComplete``); otherwise pdb commands are read from
stdin, one per line, and echoed after their prompt, so the transcript reads like a
session. End of input resumes the task, as ``continue`` and ``quit`` do.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from dask_cli.debug import protocol
from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.client.resolve import call, list_workers
from dask_cli.debug.client.settings import ClientSettings
from dask_cli.errors import DaskCliError

INTERRUPTED_EXIT = 130

# pdb's commands (and ours: kill), for completing the first word of a line.
PDB_COMMANDS = (
    "alias args break clear commands condition continue disable display down enable "
    "exit help ignore interact jump kill list longlist next pp quit retval return run "
    "source step tbreak unalias undisplay until up whatis where"
).split()
# Commands whose argument is an expression (or a name) of the frame.
EXPRESSION_COMMANDS = {"p", "pp", "display", "whatis", "source", "b", "break", "tbreak"}
# Commands, short ones included, whose argument is not an expression.
OTHER_COMMANDS = set(PDB_COMMANDS) - EXPRESSION_COMMANDS | set(
    "a bt c cl cont d h j l ll n q r restart rv s u unt w".split()
)

Prompt = Callable[[str], Awaitable["str | None"]]


@dataclass
class PausedTask:
    """One task paused at ``breakpoint()``, as ``dask worker debug`` lists it."""

    key: str
    worker: str
    address: str
    shell_address: str | None
    file: str
    line: int
    function: str
    since: float
    attached: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def paused_tasks(settings: ClientSettings) -> list[PausedTask]:
    """Every paused task of the cluster's live workers, oldest first.

    Raises ``DaskCliError`` when no worker runs the toolkit (nothing could pause)."""
    records, metadata = await asyncio.gather(
        list_workers(settings),
        call(
            settings,
            settings.scheduler_address(),
            "get_metadata",
            keys=[protocol.METADATA_KEY, protocol.PAUSED_KEY],
            default={},
        ),
    )
    if not any(r.shell_address for r in records):
        raise DaskCliError(
            "No worker in this cluster runs the dask-cli toolkit, so no task can pause "
            "at breakpoint()",
            hint="Start workers with `dask worker` (or --preload dask_cli.debug).",
        )
    workers = {r.address: r for r in records}
    found = []
    for address, pauses in (metadata if isinstance(metadata, dict) else {}).items():
        record = workers.get(address)
        if record is None:  # a worker that left: its pauses went with it
            continue
        for pause in pauses or ():
            if isinstance(pause, dict):
                found.append(_paused_task(pause, record))
    return sorted(found, key=lambda p: p.since)


def _paused_task(pause: dict[str, Any], record: Any) -> PausedTask:
    return PausedTask(
        key=str(pause.get("key")),
        worker=record.name,
        address=record.address,
        shell_address=record.shell_address,
        file=str(pause.get("file", "?")),
        line=int(pause.get("line") or 0),
        function=str(pause.get("function", "?")),
        since=float(pause.get("since") or 0),
        attached=pause.get("attached"),
    )


def find_paused(pauses: Iterable[PausedTask], query: str) -> PausedTask:
    """The pause ``query`` names: a key, a worker (name or address) with one paused
    task, or an unambiguous prefix of a key."""
    pauses = list(pauses)
    if not pauses:
        raise DaskCliError(
            "No task is paused at breakpoint() in this cluster",
            hint="A task pauses when it calls breakpoint(); the worker's log says so.",
        )
    exact = [p for p in pauses if p.key == query]
    if exact:
        return exact[0]
    on_worker = [p for p in pauses if query in (p.worker, p.address)]
    if len(on_worker) == 1:
        return on_worker[0]
    if on_worker:
        raise DaskCliError(
            f"Worker {query} has {len(on_worker)} paused tasks: {_keys(on_worker)}",
            hint="Name the task: dask worker debug KEY",
        )
    prefixed = [p for p in pauses if p.key.startswith(query)]
    if len(prefixed) == 1:
        return prefixed[0]
    if prefixed:
        raise DaskCliError(f"{query!r} matches several paused tasks: {_keys(prefixed)}")
    raise DaskCliError(
        f"Task {query!r} is not paused at a breakpoint; paused: {_keys(pauses)}",
        hint="`dask worker debug` lists the paused tasks.",
    )


def _keys(pauses: list[PausedTask]) -> str:
    return ", ".join(f"{p.key} ({p.worker})" for p in pauses[:10])


async def attach(
    settings: ClientSettings,
    query: str,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """``dask worker debug QUERY``: find the pause, attach, run pdb until it lets the
    task go; return the exit status. Interactive when both streams are terminals."""
    pause = find_paused(await paused_tasks(settings), query)
    if not pause.shell_address:
        raise DaskCliError(f"Worker {pause.worker} has no shell service to attach through")
    conn = await ShellConnection.open(
        pause.shell_address, settings.security(), settings.connect_timeout()
    )
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        if stdin.isatty() and stdout.isatty():
            prompt: Prompt = TerminalPrompt(conn)
        else:
            prompt = ScriptedPrompt(stdin, stdout)
        return await run_debugger(conn, pause.key, prompt, stdout)
    finally:
        await conn.close()


async def run_debugger(conn: ShellConnection, key: str, prompt: Prompt, stdout: TextIO) -> int:
    """``debug(key)`` on ``conn``: pdb's output to ``stdout``, its prompts to ``prompt``.

    Ctrl-C never kills the task, and does what pdb's does as far as a remote session
    can: at the prompt it discards the line, prints ``--KeyboardInterrupt--`` and asks
    again, the task still paused; while pdb runs a command that stays in the paused
    frame (``p``, ``where``, ``!stmt``...) it says so, and the prompt comes when the
    worker has finished the command (the session cannot stop pdb's thread mid-command).
    Ctrl-C while pdb runs the *task* (after ``next``, ``step``, ``until``, ``return``,
    ``continue`` to a breakpoint), or before the first prompt, detaches: the task goes
    on without stopping again, as when the client goes away."""

    def write(stream: str, text: str) -> None:
        target = sys.stderr if stream == "stderr" else stdout
        target.write(text)
        target.flush()

    state = SessionState(prompt)
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(
        conn.eval(f"debug({key!r})", mode="exec", on_output=write, on_input=state.ask)
    )
    detached = False

    def interrupted() -> None:
        nonlocal detached
        if state.phase == "prompt":
            state.interrupt_prompt()
        elif state.phase == "command":
            write("stderr", f"\n{KEYBOARD_INTERRUPT} (pdb finishes the command on the worker)\n")
        elif not detached:
            detached = True
            if state.phase == "attaching":
                write("stderr", "\nInterrupted while attaching: detaching.\n")
            else:
                write("stderr", "\nDetaching (Ctrl-C): the task goes on without stopping again.\n")
            asyncio.ensure_future(conn.interrupt())

    handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, interrupted)
        handled = True
    try:
        result = await task
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
    if result.status == "error":
        raise DaskCliError(remote_message(result.traceback or "", conn.target.name))
    if result.status == "interrupted" or detached:
        return INTERRUPTED_EXIT
    return 0


KEYBOARD_INTERRUPT = "--KeyboardInterrupt--"  # what pdb prints for Ctrl-C at its prompt

# pdb commands that run the task's code (Ctrl-C while they run detaches); pdb's
# others stay in the paused frame.
RUNNING_COMMANDS = set("n next s step unt until r return c cont continue".split())


class SessionState:
    """Where an attached session is, for what Ctrl-C does: ``attaching`` (no prompt
    yet), ``prompt`` (pdb waits for a line), ``command`` (pdb runs one that stays in
    the frame) or ``running`` (pdb runs the task)."""

    def __init__(self, prompt: Prompt):
        self.prompt = prompt
        self.phase = "attaching"
        self.last_command = ""  # pdb repeats it for an empty line

    async def ask(self, text: str) -> str | None:
        self.phase = "prompt"
        try:
            line = await self.prompt(text)
        finally:
            self.phase = "command"
        if line is None:  # end of input: the task resumes
            self.phase = "running"
            return line
        command = line.strip().split(maxsplit=1)[0] if line.strip() else self.last_command
        self.last_command = command
        if command in RUNNING_COMMANDS:
            self.phase = "running"
        return line

    def interrupt_prompt(self) -> None:
        """A SIGINT while the prompt is shown (Ctrl-C typed in a terminal is a key the
        prompt handles itself): what Ctrl-C at pdb's prompt does."""
        interrupt = getattr(self.prompt, "interrupt", None)
        if interrupt is not None:
            interrupt()


def remote_message(traceback: str, worker: str) -> str:
    """The one line to show for ``debug()`` failing on the worker."""
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "debug() failed"
    if last.startswith("NameError") and "debug" in last:
        return f"Worker {worker} cannot debug tasks (its dask-cli has no breakpoint support)"
    name, sep, message = last.partition(": ")
    if sep and name.rsplit(".", 1)[-1] in ("NotPaused", "AlreadyAttached", "DaskCliError"):
        return message
    return last


class ScriptedPrompt:
    """pdb commands from a file (stdin that is not a terminal), echoed after the prompt."""

    def __init__(self, stdin: TextIO, stdout: TextIO):
        self.stdin = stdin
        self.stdout = stdout

    async def __call__(self, prompt: str) -> str | None:
        line = await _read_line(self.stdin)
        if not line:
            self.stdout.write(f"{prompt}\n(end of input: the task resumes)\n")
            self.stdout.flush()
            return None
        self.stdout.write(prompt + line if line.endswith("\n") else f"{prompt}{line}\n")
        self.stdout.flush()
        return line.rstrip("\n")

    def interrupt(self) -> None:
        """SIGINT while waiting for the next line: pdb's answer; the task stays paused."""
        self.stdout.write(f"\n{KEYBOARD_INTERRUPT}\n")
        self.stdout.flush()


async def _read_line(stdin: TextIO) -> str:
    """``stdin.readline()`` on a daemon thread: a read still blocked when the session
    ends (Ctrl-C, the task finished) must not keep this process from exiting, as a
    thread of the default executor would."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def read() -> None:
        try:
            line = stdin.readline()
        except (OSError, ValueError):
            line = ""

        def deliver() -> None:
            if not future.done():
                future.set_result(line)

        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            loop.call_soon_threadsafe(deliver)

    threading.Thread(target=read, name="dask-cli-debug-stdin", daemon=True).start()
    return await future


class TerminalPrompt:
    """pdb's prompt in a terminal: line editing, history, Tab completion of the frame's
    names (asked from the worker). Ctrl-C discards the line and asks again, as pdb does;
    Ctrl-D resumes the task."""

    def __init__(self, conn: ShellConnection):
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory

        from dask_cli.debug.client.completer import RemoteCompleter

        async def complete(source: str, cursor: int) -> list[protocol.Completion]:
            return await frame_completions(conn, source, cursor)

        remote = RemoteCompleter(complete, asyncio.get_running_loop())
        self.session: Any = PromptSession(
            history=InMemoryHistory(),
            completer=PdbCompleter(remote),
            complete_in_thread=True,  # the remote completer blocks on this loop's answer
            complete_while_typing=False,
        )

    async def __call__(self, prompt: str) -> str | None:
        while True:
            try:
                # handle_sigint=False: Ctrl-C typed here is a key (the terminal is in
                # raw mode), and prompt_toolkit's own SIGINT handler would replace, then
                # remove, the session's (run_debugger), which acts between prompts.
                return await self.session.prompt_async(prompt, handle_sigint=False)
            except KeyboardInterrupt:
                print(KEYBOARD_INTERRUPT, flush=True)
            except EOFError:
                return None

    def interrupt(self) -> None:
        """A SIGINT (not a typed Ctrl-C) while the prompt is shown: the same as Ctrl-C."""
        app = self.session.app
        if app.is_running:
            app.exit(exception=KeyboardInterrupt())


async def frame_completions(
    conn: ShellConnection, source: str, cursor: int
) -> list[protocol.Completion]:
    """Completions of ``source`` in the attached debugger's current frame."""
    result = await conn.request(protocol.DebugComplete(id=0, source=source, cursor=cursor))
    if result.status != "ok":
        return []
    return [protocol.Completion(**item) for item in result.data or []]


class PdbCompleter(Completer):
    """Completes a pdb line: the command (first word) here, the expression after ``p``,
    ``pp``, ``!`` (or a line that is an expression) from the worker's frame."""

    def __init__(self, remote: Completer):
        self.remote = remote

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        stripped = text.lstrip()
        if stripped.startswith("!"):
            expression = stripped[1:]
        elif " " not in stripped:
            for command in PDB_COMMANDS:
                if stripped and command.startswith(stripped) and command != stripped:
                    yield Completion(command, start_position=-len(stripped), display_meta="pdb")
            expression = stripped
        else:
            command, _, rest = stripped.partition(" ")
            if command in OTHER_COMMANDS:
                return
            expression = rest if command in EXPRESSION_COMMANDS else stripped
        if not expression:
            return
        yield from self.remote.get_completions(
            Document(expression, len(expression)), complete_event
        )


def ago(when: float, now: float | None = None) -> str:
    """``"12 s ago"``, ``"3 min ago"``: how long a task has been paused."""
    seconds = max(0.0, (now or time.time()) - when)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
