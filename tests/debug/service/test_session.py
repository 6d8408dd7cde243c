"""Shell sessions against in-process workers, driven through ShellConnection."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest
from distributed import Client, Scheduler, Worker

from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.service.plugin import ShellWorkerPlugin

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def worker():
    async with Scheduler(host="127.0.0.1", dashboard_address=":0") as scheduler:
        async with Worker(scheduler.address, host="127.0.0.1", name="w1", nthreads=2) as w:
            await w.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
            yield w


@pytest.fixture
async def conn(worker):
    connection = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
    yield connection
    await connection.close()


async def run(conn, source, mode="exec"):
    out = []
    result = await conn.eval(source, mode=mode, on_output=lambda s, t: out.append((s, t)))
    return result, "".join(t for _, t in out)


async def test_welcome_names_the_worker(conn, worker):
    assert conn.target.kind == "worker"
    assert conn.target.name == "w1"
    assert conn.target.address == worker.address
    assert "worker" in conn.banner


async def test_expression_value_and_underscore(conn):
    result = await conn.eval("6 * 7")
    assert (result.status, result.value) == ("ok", "42")
    result = await conn.eval("_ + 1")
    assert result.value == "43"
    result = await conn.eval("x = 1")  # a statement has no value
    assert (result.status, result.value) == ("ok", None)


async def test_session_sees_real_state(conn, worker):
    async with Client(worker.scheduler.address, asynchronous=True) as client:
        future = client.submit(sum, [1, 2, 3], key="total")
        assert await future == 6
        result, out = await run(
            conn,
            "print(data['total'])\n"
            "rows = list(tasks())\n"
            "print([r[:2] for r in rows])\n"
            "print(len(story('total')) > 0)\n"
            "print(repr(tasks()).splitlines()[0].split())",
        )
        assert result.status == "ok", result.traceback
        lines = out.splitlines()
        assert lines[0] == "6"
        assert "('total', 'memory')" in lines[1]
        assert lines[2] == "True"
        assert lines[3].startswith("['key', 'state', 'prefix'")


async def test_top_level_await_runs_on_worker_loop(conn, worker):
    result = await conn.eval("(await worker.scheduler.identity())['type']")
    assert (result.status, result.value) == ("ok", "'Scheduler'")


async def test_error_traceback_is_remote_and_user_only(conn):
    result, _ = await run(conn, "def f():\n    raise ValueError('boom')\nf()")
    assert result.status == "error"
    assert "ValueError: boom" in result.traceback
    assert "raise ValueError('boom')" in result.traceback  # source lines are shown
    assert "session.py" not in result.traceback
    syntax = await conn.eval("def (")
    assert syntax.status == "error" and "SyntaxError" in syntax.traceback


async def test_interrupt_sleep_while_worker_keeps_computing(conn, worker):
    async with Client(worker.scheduler.address, asynchronous=True) as client:
        task = asyncio.ensure_future(conn.eval("import time\ntime.sleep(30)", mode="exec"))
        await asyncio.sleep(0.3)
        assert not task.done()
        # The worker computes while the session sleeps.
        assert await client.submit(lambda x: x + 1, 1, pure=False) == 2
        start = time.monotonic()
        await conn.interrupt()
        result = await asyncio.wait_for(task, 5)
        assert result.status == "interrupted"
        assert time.monotonic() - start < 1.0
        assert await client.submit(lambda x: x * 2, 21, pure=False) == 42
    # The session goes on (on a fresh thread).
    assert (await conn.eval("1 + 1")).value == "2"


async def test_interrupt_python_loop_raises_keyboardinterrupt(conn):
    source = (
        "n = 0\ntry:\n    while True:\n        n += 1\n"
        "except KeyboardInterrupt:\n    stopped = True\n    raise"
    )
    task = asyncio.ensure_future(conn.eval(source, mode="exec"))
    await asyncio.sleep(0.2)
    await conn.interrupt()
    result = await asyncio.wait_for(task, 5)
    assert result.status == "interrupted"
    assert (await conn.eval("stopped")).value == "True"


async def test_interrupt_await_cancels(conn):
    task = asyncio.ensure_future(conn.eval("import asyncio\nawait asyncio.sleep(30)"))
    await asyncio.sleep(0.2)
    await conn.interrupt()
    result = await asyncio.wait_for(task, 5)
    assert result.status == "interrupted"


async def test_exit_ends_session_not_worker(conn, worker):
    for source in ("exit()", "quit()", "raise SystemExit(3)"):
        result = await conn.eval(source)
        assert result.status == "exit"
    assert worker.status.name == "running"
    again = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
    assert (await again.eval("worker.name")).value == "'w1'"
    await again.close()


async def test_output_streams_while_code_runs(conn):
    seen: list[float] = []
    start = time.monotonic()
    task = asyncio.ensure_future(
        conn.eval(
            "import time\nfor i in range(10):\n    print(i)\n    time.sleep(0.1)",
            mode="exec",
            on_output=lambda stream, text: seen.append(time.monotonic()),
        )
    )
    result = await task
    end = time.monotonic()
    assert result.status == "ok"
    assert seen, "no output"
    assert seen[0] - start < (end - start) / 2  # the first line came before the loop ended


async def test_output_goes_to_session_not_worker_stdout(conn, capsys):
    result, out = await run(conn, "import sys, warnings\nprint('a')\nprint('b', file=sys.stderr)")
    assert result.status == "ok"
    assert out == "a\nb\n"
    captured = capsys.readouterr()
    assert "a\n" not in captured.out and "b\n" not in captured.err


async def test_large_output_streams_in_chunks(conn):
    sizes: list[int] = []
    result = await conn.eval(
        "import sys\nfor _ in range(64):\n    sys.stdout.write('x' * (1 << 20))",
        mode="exec",
        on_output=lambda stream, text: sizes.append(len(text)),
    )
    assert result.status == "ok"
    assert sum(sizes) == 64 << 20
    assert max(sizes) <= 1 << 20


async def test_input_reaches_the_client(conn):
    prompts = []

    async def on_input(prompt):
        prompts.append(prompt)
        return "bob"

    out = []
    result = await conn.eval(
        "name = input('who? ')\nprint('hi', name)",
        mode="exec",
        on_output=lambda s, t: out.append(t),
        on_input=on_input,
    )
    assert result.status == "ok", result.traceback
    assert "".join(out) == "who? hi bob\n"
    eof = await conn.eval("input()")
    assert eof.status == "error" and "EOFError" in eof.traceback


async def test_two_sessions_have_separate_namespaces(conn, worker):
    other = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
    try:
        await conn.eval("secret = 1")
        result = await other.eval("secret")
        assert result.status == "error" and "NameError" in result.traceback
        first, second = await asyncio.gather(conn.eval("secret"), other.eval("1 + 1"))
        assert (first.value, second.value) == ("1", "2")
    finally:
        await other.close()


async def test_concurrent_requests_on_one_connection(conn):
    sleeper = asyncio.ensure_future(conn.eval("import time\ntime.sleep(0.5)\n'done'", mode="exec"))
    stacks, logs = await asyncio.gather(conn.stacks(), conn.logs(5))
    assert "dask-cli-shell" in stacks
    assert isinstance(logs, list)
    assert (await sleeper).status == "ok"


async def test_every_source_is_audited(conn, worker):
    await conn.eval("1 + 2")
    scheduler_events = []
    for _ in range(50):
        async with Client(worker.scheduler.address, asynchronous=True) as client:
            scheduler_events = await client.get_events("dask-cli-shell")
        if scheduler_events:
            break
        await asyncio.sleep(0.1)
    sources = [event["source"] for _, event in scheduler_events]
    assert "1 + 2" in sources
    assert scheduler_events[0][1]["client"]["user"]


async def test_abandoned_code_output_is_dropped(conn):
    source = (
        "import time\ntry:\n    time.sleep(1.5)\nexcept KeyboardInterrupt:\n    pass\nprint('late')"
    )
    task = asyncio.ensure_future(conn.eval(source, mode="exec"))
    await asyncio.sleep(0.2)
    await conn.interrupt()
    assert (await asyncio.wait_for(task, 5)).status == "interrupted"
    result, out = await run(conn, "import time\ntime.sleep(2)\nprint('next')")
    assert result.status == "ok"
    assert out == "next\n"


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
async def test_code_that_floods_output_runs_at_a_lower_priority_on_its_own_thread(conn):
    """A print flood is demoted (niceness 19) so the service and the worker go first;
    the next eval runs on a fresh thread at the worker's own priority."""
    from dask_cli.debug.service.evaluation import FLOOD_NICENESS

    await conn.eval(
        "import os, threading\n"
        "def niceness(): return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())",
        mode="exec",
    )
    before = int((await conn.eval("niceness()")).value)
    result, out = await run(
        conn, "for _ in range(2048):\n    print('x' * 1023)\nflooded = niceness()"
    )
    assert result.status == "ok"
    assert len(out) == 2048 * 1024  # all of it, demoted or not
    assert int((await conn.eval("flooded")).value) == max(before, FLOOD_NICENESS)
    assert int((await conn.eval("niceness()")).value) == before
    main_thread = int((await conn.eval("os.getpriority(os.PRIO_PROCESS, os.getpid())")).value)
    assert main_thread == before  # the worker's own threads are left alone
    # A little output is no flood.
    result, _ = await run(conn, "print('a')\nprint('b')\nquiet = niceness()")
    assert int((await conn.eval("quiet")).value) == before


async def test_ctrl_c_on_a_print_loop_drops_the_backlog_and_keeps_what_follows(conn):
    """What waited to be sent at Ctrl-C is dropped with a notice; what the code prints
    after catching the interrupt still arrives."""
    started = asyncio.Event()
    out: list[tuple[str, str]] = []

    def on_output(stream, text):
        out.append((stream, text))
        started.set()

    source = (
        "try:\n    while True:\n        print('flood' * 200)\n"
        "except KeyboardInterrupt:\n    print('caught')\n    raise"
    )
    task = asyncio.ensure_future(conn.eval(source, mode="exec", on_output=on_output))
    await asyncio.wait_for(started.wait(), 10)
    await conn.interrupt()
    result = await asyncio.wait_for(task, 10)
    assert result.status == "interrupted"
    text = "".join(t for _, t in out)
    assert text.endswith("caught\n")
    assert "flood" in text
    assert "not shown" not in text  # the count is in the result, not in the output
    assert (await conn.eval("1 + 1")).value == "2"


async def test_switch_interval_is_short_while_shell_code_runs(conn):
    """A print loop must not keep the GIL 5 ms at a time from the service."""
    from dask_cli.debug.service.evaluation import SwitchInterval

    await conn.eval("import sys", mode="exec")
    result = await conn.eval("sys.getswitchinterval()")
    assert float(result.value) == pytest.approx(SwitchInterval.RESPONSIVE)


def test_switch_interval_comes_back_after_the_last_eval():
    """Counted across overlapping evals; a value set meanwhile by the user stays."""
    import sys

    from dask_cli.debug.service.evaluation import SwitchInterval

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        guard = SwitchInterval()
        guard.enter()
        guard.enter()
        assert sys.getswitchinterval() == pytest.approx(SwitchInterval.RESPONSIVE)
        guard.leave()
        assert sys.getswitchinterval() == pytest.approx(SwitchInterval.RESPONSIVE)  # one runs
        guard.leave()
        assert sys.getswitchinterval() == 0.005
        guard.enter()
        sys.setswitchinterval(0.002)  # the user's code sets its own
        guard.leave()
        assert sys.getswitchinterval() == 0.002
    finally:
        sys.setswitchinterval(before)


def _drain_idle_threads() -> None:
    """No idle thread left over from other tests."""
    from dask_cli.debug.service.evaluation import idle_threads

    with idle_threads.lock:
        leftovers, idle_threads.threads[:] = list(idle_threads.threads), []
    for thread in leftovers:
        thread.abandoned = True
        thread.jobs.put(None)


def _spare():
    from dask_cli.debug.service.evaluation import idle_threads

    live = [t for t in idle_threads.threads if t.is_alive() and not t.abandoned]
    return live[-1] if live else None


async def _runs_on(worker, thread) -> bool:  # noqa: ANN001
    other = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
    try:
        ident = await other.eval("__import__('threading').get_ident()")
        return int(ident.value) == thread.ident
    finally:
        await other.close()


async def test_a_flood_leaves_a_spare_thread_for_the_next_session(conn, worker):
    """The flooding session's thread is retired; a spare is started as soon as it is,
    so the next session (the user looking at what went wrong) starts none."""
    _drain_idle_threads()
    result, _ = await run(conn, "for _ in range(2048):\n    print('x' * 1023)")
    assert result.status == "ok"
    waiting = _spare()
    assert waiting is not None  # already: not a moment later
    assert await _runs_on(worker, waiting)


async def test_a_session_that_took_the_last_thread_has_it_replaced(conn, worker):
    """Here the flooding session itself goes on (a fresh thread: the flooder is gone)
    and takes the spare; another one is started shortly after."""
    _drain_idle_threads()
    result, _ = await run(conn, "for _ in range(2048):\n    print('x' * 1023)")
    assert result.status == "ok"
    assert (await conn.eval("1 + 1")).value == "2"
    for _ in range(500):
        if _spare() is not None:
            break
        await asyncio.sleep(0.01)
    waiting = _spare()
    assert waiting is not None
    assert await _runs_on(worker, waiting)


def test_the_pool_keeps_one_spare_thread():
    from dask_cli.debug.service.evaluation import ThreadPool

    pool = ThreadPool(2)
    taken = pool.get("session")
    assert pool.threads == []
    pool.keep_one()
    assert len(pool.threads) == 1 and pool.threads[0].is_alive()
    pool.keep_one()  # one is enough
    assert len(pool.threads) == 1
    for thread in [taken, *pool.threads]:
        thread.abandoned = True
        thread.jobs.put(None)
        thread.join(5)
        assert not thread.is_alive()


async def test_a_source_run_again_keeps_one_name_and_one_cache_entry(conn):
    """The lines of every ``<shell-N>`` stay in ``linecache`` (tracebacks, getsource);
    running the same command again must not add an entry each time."""
    import linecache

    await conn.eval("import inspect")
    before = {name for name in linecache.cache if name.startswith("<shell-")}
    names = set()
    for _ in range(20):
        result = await conn.eval("inspect.currentframe().f_code.co_filename")
        names.add(result.value)
    assert len(names) == 1
    added = {name for name in linecache.cache if name.startswith("<shell-")} - before
    assert added == {eval(names.pop())}
    result, out = await run(
        conn, "def f():\n    return 1\nimport inspect\nprint(inspect.getsource(f))"
    )
    assert out == "def f():\n    return 1\n\n", result.traceback


def test_shell_sources_drops_the_least_recently_run():
    import linecache

    from dask_cli.debug.service.evaluation import ShellSources

    sources = ShellSources(limit=3)
    first, second = sources.name("a = 1"), sources.name("b = 2")
    assert sources.name("a = 1") == first  # run again: now the most recent
    sources.name("c = 3")
    sources.name("d = 4")  # one too many: "b = 2" goes, with its lines
    assert second not in linecache.cache
    assert linecache.getline(first, 1) == "a = 1"
    assert sources.name("b = 2") not in (first, second)
    linecache.clearcache()
    assert linecache.getline(sources.name("a = 1"), 1) == "a = 1"  # registered again
