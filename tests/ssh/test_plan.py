"""The remote command lines of `dask ssh`: distributed's flags, mapped as its command does."""

from __future__ import annotations

import shlex
from dataclasses import fields

from dask_cli.ssh.plan import ClusterPlan, SSHSettings, is_loopback, read_hostfile


def argv(command: str) -> list[str]:
    assert command.startswith("exec ")
    return shlex.split(command[len("exec ") :])


def test_scheduler_listens_only_on_loopback_when_named_by_it():
    plan = ClusterPlan(hosts=("a",), scheduler="127.0.0.1", scheduler_port=0, remote_python="py")
    assert argv(plan.scheduler_command()) == [
        "py", "-u", "-m", "dask_cli.ssh.remote", "dask_cli", "scheduler",
        "--port", "0", "--host", "127.0.0.1", "--dashboard-address", ":8787",
    ]  # fmt: skip
    # An ssh-config alias counts by its HostName; a real host listens everywhere.
    assert "--host" in argv(plan.scheduler_command("localhost"))
    assert "--host" not in argv(ClusterPlan(hosts=("a",), scheduler="node1").scheduler_command())


def test_worker_gets_distributed_flags_and_waits_for_the_scheduler_address():
    plan = ClusterPlan(
        hosts=("node1",),
        scheduler="node1",
        nthreads=2,
        nworkers=3,
        memory_limit="4GB",
        worker_port="9000:9010",
        nanny_port="9100:9110",
        local_directory="/scratch/dask",
        remote_python="/opt/py",
        keepalive=True,
        shell_port="9200:9210",
    )
    assert argv(plan.worker_command("10.0.0.5")) == [
        "/opt/py", "-u", "-m", "dask_cli.ssh.remote", "--scheduler-from-stdin",
        "dask_cli", "worker", "{scheduler}", "--nthreads", "2", "--nworkers", "3",
        "--host", "10.0.0.5", "--memory-limit", "4GB", "--worker-port", "9000:9010",
        "--nanny-port", "9100:9110", "--local-directory", "/scratch/dask", "--keepalive",
        "--shell-port", "9200:9210",
    ]  # fmt: skip


def test_worker_defaults_nohost_and_another_worker_module():
    plan = ClusterPlan(
        hosts=("h",),
        scheduler="h",
        nohost=True,
        memory_limit=None,
        remote_dask_worker="distributed.cli.dask_worker",
        remote_python="py",
    )
    assert argv(plan.worker_command("h"))[4:] == [
        "--scheduler-from-stdin", "distributed.cli.dask_worker", "{scheduler}",
        "--nthreads", "0",
    ]  # fmt: skip


def test_connection_hosts_are_unique_scheduler_first():
    plan = ClusterPlan(hosts=("b", "a", "b"), scheduler="s")
    assert plan.connection_hosts() == ["s", "b", "a"]


def test_hostfile_is_whitespace_separated_with_comments(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("node1 node2\n# spare nodes\nnode3  # the big one\n\n")
    assert read_hostfile(str(path)) == ["node1", "node2", "node3"]


def test_loopback_names():
    assert all(map(is_loopback, ["127.0.0.1", "127.0.1.1", "::1", "localhost"]))
    assert not any(map(is_loopback, ["10.0.0.1", "node1", "daskbox"]))


def test_every_dask_ssh_option_reaches_the_plan_or_the_settings(tmp_path):
    """The options fill ClusterPlan and SSHSettings by name: one set to a value other
    than its default shows in the field it is meant for, and none is left unread."""
    from dask_cli.commands.ssh import ssh
    from dask_cli.ssh.launcher import plan_from_options

    args = ["a", "b", "--scheduler", "s", "--scheduler-port", "1", "--dashboard-address", ":2"]
    args += ["--nthreads", "3", "--nworkers", "4", "--ssh-username", "me", "--ssh-port", "5"]
    args += ["--ssh-private-key", "key", "--known-hosts", "kh", "--insecure", "--nohost"]
    args += ["--log-directory", str(tmp_path), "--local-directory", "ld", "--name", "n"]
    args += ["--remote-python", "py", "--memory-limit", "6GB", "--worker-port", "7"]
    args += ["--nanny-port", "8", "--remote-dask-worker", "w", "--keepalive"]
    args += ["--shell-port", "9"]
    options = dict(ssh.make_context("ssh", args).params)
    hosts = list(options.pop("hostnames"))
    del options["hostfile"]
    plan, settings, rest = plan_from_options(hosts, options)
    # Every option was given a value other than its default: so is every field.
    defaults = ClusterPlan(hosts=(), scheduler="")
    same = [f.name for f in fields(plan) if getattr(plan, f.name) == getattr(defaults, f.name)]
    assert same == []
    assert (plan.hosts, plan.scheduler, plan.nworkers, plan.shell_port) == (("a", "b"), "s", 4, "9")
    assert settings == SSHSettings(
        username="me", port=5, private_key="key", known_hosts="kh", insecure=True
    )
    assert rest == {"log_directory": str(tmp_path), "name": "n"}
    # Without --scheduler, the first host runs the scheduler.
    plan, _, _ = plan_from_options(["a", "b"], {"scheduler": None})
    assert plan.scheduler == "a"
