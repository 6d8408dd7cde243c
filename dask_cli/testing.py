"""Test harness: real ``dask scheduler``/``dask worker`` processes on 127.0.0.1.

Like click's ``testing`` module, this makes tests of dask-cli (and of projects
that use it) short: start a cluster of real processes, get their addresses, read
their logs, stop them, and see their output when something fails.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCALHOST = "127.0.0.1"


def dask_command(*args: str) -> list[str]:
    """argv that runs ``dask ARGS...`` with this interpreter (as a user's shell would)."""
    return [sys.executable, "-m", "dask_cli", *args]


class DaskProcess:
    """A subprocess whose combined stdout/stderr goes to a file that tests can poll."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ):
        self.argv = list(argv)
        self._log = tempfile.NamedTemporaryFile(
            "w+b", prefix="dask-cli-test-", suffix=".log", delete=False
        )
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return Path(self._log.name).read_bytes().decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait until the output matches the regular expression ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.output())
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"process exited with {self.proc.returncode} before printing "
                    f"{pattern!r}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {pattern!r}:\n{self.output()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send_signal(self, signum: int = signal.SIGINT) -> None:
        if self.alive():
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"process did not exit within {timeout}s:\n{self.output()}"
            ) from None

    def stop(self, signum: int = signal.SIGINT, timeout: float = 20) -> int:
        """Signal, wait, and kill the whole process group if it hangs."""
        self.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)
        finally:
            self._cleanup_group()

    def _cleanup_group(self) -> None:
        # Nanny children run in our process group: make sure none outlive the test.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        if self.alive():
            self.stop()
        self._cleanup_group()
        self._log.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._log.name)


def run_dask(
    *args: str,
    input: str | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``dask ARGS...`` to completion and capture its output."""
    return subprocess.run(
        dask_command(*args),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=None if input is not None else subprocess.DEVNULL,
    )


@contextlib.contextmanager
def started_processes() -> Iterator[Callable[..., DaskProcess]]:
    """``start(argv, **kwargs)`` makes a :class:`DaskProcess` that lives until the block
    ends; then each one's output goes to stderr (pytest shows it when the test failed)
    and each is stopped, so a failed test still leaves no process behind."""
    started: list[DaskProcess] = []

    def start(argv: Sequence[str], **kwargs: Any) -> DaskProcess:
        process = DaskProcess(argv, **kwargs)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            sys.stderr.write(f"--- {' '.join(process.argv)} ---\n{process.output()}\n")
            process.close()


@contextlib.contextmanager
def dask_terminal(
    *args: str, timeout: float = 30, dimensions: tuple[int, int] = (24, 80)
) -> Iterator[Any]:
    """``dask ARGS...`` on a pseudo-terminal (a ``pexpect.spawn``), for what only a
    terminal shows (prompts, Tab completion, Ctrl-C, spinners). A body that returns
    has driven the command to its end: the block then waits for EOF, so
    ``child.exitstatus`` is the command's; a failing body still kills the child."""
    import pexpect

    argv = dask_command(*args)
    child = pexpect.spawn(
        argv[0], argv[1:], timeout=timeout, encoding="utf-8", dimensions=dimensions
    )
    try:
        yield child
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


@dataclass(frozen=True)
class Invocation:
    """What an in-process ``dask ARGS`` printed and its exit status."""

    returncode: int
    stdout: str
    stderr: str


def invoke_dask(*args: str) -> Invocation:
    """Run ``dask ARGS...`` in this process, through the same entry point as the console
    script (error path included), capturing its output: a real command without the
    second or so a new interpreter costs. Use :func:`run_dask` for what needs a
    process of its own (signals, terminals, environment variables read at import)."""
    import io

    from dask_cli.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
    if code is None:
        code = 0
    return Invocation(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


# Start-up must stay fast: these may load only when a command really needs them.
HEAVY_MODULES = ("distributed", "ptpython", "prompt_toolkit", "asyncssh", "textual")

_IMPORT_PROBE = """
import json, sys
from dask_cli.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
sys.stdout.flush()
sys.stderr.write("\\nIMPORT-PROBE " + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@dataclass(frozen=True)
class ImportProbe:
    """What ``dask ARGS`` printed, its exit code, and the heavy modules it imported."""

    exit_code: int
    output: str
    heavy_modules: list[str]


def probe_imports(*args: str, timeout: float = 60) -> ImportProbe:
    """Run ``dask ARGS`` in a fresh interpreter and report which heavy modules it loaded."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    _, found, probe = result.stderr.rpartition("\nIMPORT-PROBE ")
    if not found:
        raise AssertionError(f"dask {' '.join(args)} did not finish:\n{result.stderr}")
    data = json.loads(probe)
    heavy = [name for name in data["modules"] if name.split(".")[0] in HEAVY_MODULES]
    return ImportProbe(data["code"], result.stdout, heavy)


@dataclass
class ProcessCluster:
    """A scheduler and named workers, each a real ``dask`` process on 127.0.0.1."""

    directory: Path
    scheduler_args: Sequence[str] = ()
    scheduler: DaskProcess | None = None
    scheduler_address: str = ""
    workers: dict[str, DaskProcess] = field(default_factory=dict)

    @property
    def scheduler_file(self) -> str:
        return str(self.directory / "scheduler.json")

    def start_scheduler(self, *extra: str, timeout: float = 30) -> str:
        self.scheduler = DaskProcess(
            dask_command(
                "scheduler",
                "--host",
                LOCALHOST,
                "--port",
                "0",
                # distributed binds 0.0.0.0:8787 even with --no-dashboard
                "--dashboard-address",
                f"{LOCALHOST}:0",
                "--scheduler-file",
                self.scheduler_file,
                *self.scheduler_args,
                *extra,
            ),
            cwd=self.directory,
        )
        self.scheduler.wait_for(r"Scheduler at:\s+\S+", timeout)
        deadline = time.monotonic() + timeout
        while True:  # the file may exist before its JSON is complete
            try:
                self.scheduler_address = json.loads(Path(self.scheduler_file).read_text())[
                    "address"
                ]
                return self.scheduler_address
            except (FileNotFoundError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"no scheduler file:\n{self.scheduler.output()}") from None
                time.sleep(0.05)

    def start_worker(
        self, name: str, *extra: str, wait: bool = True, timeout: float = 60
    ) -> DaskProcess:
        """Start ``dask worker`` named ``name``; with ``wait``, until it has registered."""
        process = DaskProcess(
            dask_command(
                "worker",
                self.scheduler_address,
                "--host",
                LOCALHOST,
                "--name",
                name,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--memory-limit",
                "0",
                *extra,
            ),
            cwd=self.directory,
        )
        self.workers[name] = process
        if wait:
            process.wait_for(r"Registered to:", timeout)
        return process

    def close(self) -> None:
        for process in self.workers.values():
            process.close()
        if self.scheduler is not None:
            self.scheduler.close()

    def dump_logs(self) -> str:
        parts = []
        if self.scheduler is not None:
            parts.append(f"--- scheduler ---\n{self.scheduler.output()}")
        for name, process in self.workers.items():
            parts.append(f"--- worker {name} ---\n{process.output()}")
        return "\n".join(parts)


@contextlib.contextmanager
def process_cluster(
    directory: str | Path,
    workers: Sequence[str] = ("w1", "w2"),
    worker_args: Sequence[str] = (),
    scheduler_args: Sequence[str] = (),
) -> Iterator[ProcessCluster]:
    """A running scheduler plus ``workers`` (by name); output printed if the body fails."""
    cluster = ProcessCluster(Path(directory), scheduler_args=scheduler_args)
    try:
        cluster.start_scheduler()
        for name in workers:
            cluster.start_worker(name, *worker_args, wait=False)
        for name in workers:
            cluster.workers[name].wait_for(r"Registered to:", 60)
        yield cluster
    except BaseException:
        sys.stderr.write(cluster.dump_logs())
        raise
    finally:
        cluster.close()


@dataclass(frozen=True)
class TLSFiles:
    ca_file: str
    cert: str
    key: str


def make_tls_files(directory: str | Path, name: str = "dask") -> TLSFiles:
    """A CA and a certificate for 127.0.0.1/localhost signed by it, as PEM files.

    One certificate serves scheduler, workers and clients (as in dask's own tests).
    Call twice with different ``directory`` for a second, untrusted CA.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOCALHOST))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    files = TLSFiles(
        ca_file=str(directory / "ca.pem"),
        cert=str(directory / "cert.pem"),
        key=str(directory / "key.pem"),
    )
    Path(files.ca_file).write_bytes(ca_cert.public_bytes(pem))
    Path(files.cert).write_bytes(cert.public_bytes(pem))
    Path(files.key).write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files
