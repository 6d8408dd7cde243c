"""The interactive ``dask worker shell NAME`` in a real pseudo-terminal (pexpect):
20 rounds of "print a lot, Ctrl-C". The issue's report: the third round printed
"the worker did not confirm", the shell exited and the worker never served a shell
again. After every round the prompt must come back and a fresh expression must
evaluate; at the end ``dask worker stack`` answers and the shell exits with 0."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from fault_checks import fresh_session_answers, stack_command_answers

# The pty driver of the REPL's own tests (tests/debug/client/test_repl.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "debug" / "client"))
from test_repl import PROMPT, Terminal, make_home, shell_env  # noqa: E402

PRINT_LOOP = "for i in range(10**7): print(i)"
ROUNDS = 20


@pytest.mark.timeout(300)
def test_fault_ctrl_c_print_loop_20_rounds_in_a_real_terminal(target, tmp_path) -> None:  # noqa: ANN001
    env = shell_env(target.cluster, make_home(tmp_path))
    term = Terminal(["worker", "shell", target.name], env)
    try:
        term.expect(rf"worker '{target.name}'")
        term.expect(PROMPT)
        for round_ in range(1, ROUNDS + 1):
            where = f"ctrl-c on a print loop, round {round_}"
            term.enter(PRINT_LOOP)
            term.expect(r"^\d{3,}$", timeout=20)  # the output streams to the screen
            term.send("\x03")
            # The REPL's own line; "(the worker did not confirm ...)" would mean the
            # service did not answer in time. (An interrupt that landed in a finalizer
            # on the worker shows as "KeyboardInterrupt: " in its "Exception ignored".)
            interrupted = term.expect(r"KeyboardInterrupt( \(.*\))?$", timeout=20)
            assert interrupted.group(1) is None, (where, interrupted.group(0))
            term.expect(PROMPT, timeout=20)
            term.enter(f"'round-' + str({round_} * 1001)")
            term.expect(rf"^'round-{round_ * 1001}'$", timeout=20)
            term.expect(PROMPT, timeout=20)
            assert term.child.isalive(), where
            term.forget()
        stack_command_answers(target)
        asyncio.run(fresh_session_answers(target.shell_address))
        term.enter("exit()")
        assert term.wait_exit() == 0
    finally:
        term.close()
