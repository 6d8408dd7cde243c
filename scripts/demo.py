"""``./dev demo``: a worker fails, the scheduler dies, and you shell into the worker.

1. starts a local scheduler and a ``--keepalive`` worker (real processes, 127.0.0.1);
2. runs the "task raises" scenario (``debug/task_raises.py``): a task fails with
   ZeroDivisionError, and the worker keeps its live frames;
3. kills the scheduler: the worker stays up, kept alive, and logs how to connect;
4. opens ``dask worker shell ADDRESS`` on it: interactive in a terminal (try
   ``failed()``, ``pm()``, ``p readings``, ``q``, ``data``, ``exit()``); otherwise a
   scripted inspection (``failed()``, then pdb in the failing frame printing its
   locals) whose output is printed;
5. stops everything (SIGTERM: the worker exits with 0).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from dask_cli.testing import ProcessCluster, dask_command

ROOT = Path(__file__).resolve().parents[1]
FAILING_KEY = "summarise-batch-7"
KEPT = r"is kept alive for post-mortem: .*? Inspect it with: dask worker shell (?P<shell>\S+)"
SCRIPTED = f"""\
print(">>> failed()")
print(failed())
print()
print(">>> pm({FAILING_KEY!r})   # pdb on the live frames: where, p locals(), q")
pm({FAILING_KEY!r}, commands=["where", "p locals()", "q"])
print()
print(">>> sorted(data)   # what the worker still holds")
print(sorted(data))
"""


def step(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def main() -> int:
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    with tempfile.TemporaryDirectory(prefix="dask-cli-demo-") as directory:
        cluster = ProcessCluster(Path(directory))
        try:
            step("Starting a scheduler and a kept-alive worker on 127.0.0.1")
            cluster.start_scheduler()
            worker = cluster.start_worker("demo-worker", "--keepalive")
            print(f"scheduler {cluster.scheduler_address}, worker demo-worker (--keepalive)")

            step("Running debug/task_raises.py: a task fails")
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "debug" / "task_raises.py"),
                    "--scheduler",
                    cluster.scheduler_address,
                    "--worker",
                    "demo-worker",
                ],
                check=True,
            )

            step("Killing the scheduler")
            assert cluster.scheduler is not None
            cluster.scheduler.proc.kill()
            cluster.scheduler.wait(30)
            line = worker.wait_for(KEPT, 60)
            print("The worker logged:\n  " + line.group(0).split(" - WARNING - ")[-1])
            shell = line["shell"]

            if interactive:
                step(f"dask worker shell {shell}   (exit() to leave; the demo then cleans up)")
                print(f"Try: failed()   pm({FAILING_KEY!r})   p readings   up   q   sorted(data)")
                # Ctrl-C belongs to the shell (it interrupts remote code), not to us;
                # a Python handler (unlike SIG_IGN) is not inherited by the child.
                previous = signal.signal(signal.SIGINT, lambda *_: None)
                try:
                    subprocess.call(dask_command("worker", "shell", shell))
                finally:
                    signal.signal(signal.SIGINT, previous)
            else:
                step(f"dask worker shell {shell} (no terminal: a scripted inspection)")
                done = subprocess.run(
                    dask_command("worker", "shell", shell, "-c", SCRIPTED),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                sys.stdout.write(done.stdout)
                sys.stderr.write(done.stderr)
                if done.returncode != 0:
                    return done.returncode

            step("Stopping the worker (SIGTERM)")
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(30)
            print(f"worker exited with {code}")
            return 0 if code == 0 else 1
        except BaseException:
            sys.stderr.write(cluster.dump_logs())
            raise
        finally:
            cluster.close()


if __name__ == "__main__":
    sys.exit(main())
