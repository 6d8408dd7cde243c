"""Start-up time of ``dask ... --help`` against dask's own ``python -m dask --help``.

dask's CLI imports every ``dask_cli`` entry point (distributed included) before it
can print help; ours imports only click and what the help needs. Target: at most a
quarter of dask's wall time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks import Result, Settings, median_times

TARGET = 0.25

CASES = {
    "dask --help": ["--help"],
    "dask worker --help": ["worker", "--help"],
    "dask worker shell --help": ["worker", "shell", "--help"],
}


def dask_cli_argv() -> list[str]:
    """Our console script next to this interpreter, as a user runs it; else ``-m dask_cli``."""
    script = Path(sys.executable).parent / "dask"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dask_cli"]


def _runner(argv: list[str]):
    def run() -> None:
        subprocess.run(
            argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60
        )

    return run


def help_startup(settings: Settings) -> list[Result]:
    """Wall time of our help commands and of dask's `--help`, interleaved, medians."""
    ours = dask_cli_argv()
    functions = {"anchor": _runner([sys.executable, "-m", "dask", "--help"])}
    failed: dict[str, str] = {}
    for name, args in CASES.items():
        try:
            _runner([*ours, *args])()
        except subprocess.CalledProcessError as exc:
            lines = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
            failed[name] = lines[0] if lines else f"exit {exc.returncode}"
            continue
        functions[name] = _runner([*ours, *args])
    medians = median_times(functions, settings.repeats)
    return [
        Result.failed(name, TARGET, failed[name])
        if name in failed
        else Result(name, medians[name], medians["anchor"], TARGET)
        for name in CASES
    ]


BENCHMARKS = [help_startup]
