"""What ``dask ssh`` runs on each host: ``python -m dask_cli.ssh.remote [--scheduler-from-stdin]
MODULE ARGS...``, which runs ``python -m MODULE ARGS...`` in this same process.

The SSH session's stdin is the lifeline to ``dask ssh``. Without a terminal, sshd sends
no signal when the connection goes away; it only closes the pipes. So when stdin
reaches end-of-file (``dask ssh`` stopped, was killed, or lost the connection) this
process sends itself SIGTERM, which ``dask scheduler``/``dask worker`` handle as a
clean shutdown, and after :data:`GRACE` seconds kills its whole process group
(sshd made it the group's leader), nanny children included. No orphans.

With ``--scheduler-from-stdin`` the first stdin line is the scheduler's address,
put in place of the argument ``{scheduler}``: a worker host imports distributed
while its scheduler is still starting, instead of after.

Runs on the remote host, so it imports only the standard library until ``MODULE``
runs: never asyncssh, click or rich.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

MARKER = "dask-cli-ssh:"  # lines that `dask ssh` reads and does not show as output
SCHEDULER_PLACEHOLDER = "{scheduler}"
GRACE = 15.0


def _read_line(fd: int = 0) -> str | None:
    """One line from ``fd`` without a buffered reader (the rest of stdin stays unread);
    ``None`` at end-of-file."""
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = os.read(fd, 1)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data.decode().strip()


class _Lifeline(threading.Thread):
    """Reads stdin for the whole life of the process: the scheduler's address first
    (with ``--scheduler-from-stdin``), then nothing until end-of-file, which stops us.

    End-of-file before the address means nothing has started: exit at once, even in
    the middle of importing distributed (seconds on a busy host)."""

    def __init__(self, wants_address: bool, grace: float = GRACE):
        super().__init__(name="dask-ssh-lifeline", daemon=True)
        self.wants_address = wants_address
        self.grace = grace
        self.address: str | None = None
        self.has_address = threading.Event()

    def run(self) -> None:
        if self.wants_address:
            self.address = _read_line()
            if self.address is None:
                os._exit(0)
            self.has_address.set()
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(self.grace)
        print(f"{MARKER} still running {self.grace:g}s after SIGTERM: killing", file=sys.stderr)
        os.killpg(os.getpgrp(), signal.SIGKILL)


def main(argv: list[str]) -> int | None:
    from_stdin = argv[:1] == ["--scheduler-from-stdin"]
    if from_stdin:
        argv = argv[1:]
    if not argv:
        print(f"usage: {__spec__.name} [--scheduler-from-stdin] MODULE ARGS...", file=sys.stderr)
        return 2
    module, *args = argv
    print(f"{MARKER} pid {os.getpid()}", file=sys.stderr, flush=True)
    lifeline = _Lifeline(wants_address=from_stdin)
    lifeline.start()
    if from_stdin:
        import distributed  # noqa: F401 - the slow part of a worker's start-up, done early

        lifeline.has_address.wait()
        args = [lifeline.address if arg == SCHEDULER_PLACEHOLDER else arg for arg in args]
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
