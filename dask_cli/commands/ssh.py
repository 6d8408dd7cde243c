"""``dask ssh``: distributed's command line, on asyncssh (see :mod:`dask_cli.ssh`).

Every flag of distributed's ``dask ssh`` with its meaning and default, plus
``--keepalive``, ``--shell-port``, ``--known-hosts``, ``--insecure``,
``--dashboard-address`` and ``--name``. Nothing heavy is imported until the
command runs.
"""

from __future__ import annotations

import click

from dask_cli import __version__


def _port_given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT


@click.command(
    name="ssh",
    help="Launch a Dask cluster over SSH. A `dask scheduler` process runs on the first "
    "host in HOSTNAMES or in the hostfile, unless --scheduler names another, and one "
    "`dask worker` process on each host (--nworkers worker processes under its nanny, "
    "--nthreads threads each). The workers have shells (`dask worker shell`) and "
    "--keepalive. Output of every remote process is shown here, prefixed by its host; "
    "Ctrl-C stops them all.\n\n"
    "Logs in with asyncssh, which honours ~/.ssh/config (Host aliases, HostName, User, "
    "Port, IdentityFile, ProxyJump) and checks host keys against ~/.ssh/known_hosts.",
)
@click.argument("hostnames", nargs=-1, type=str)
@click.option("--scheduler", default=None, help="Scheduler node. Defaults to first address.")
@click.option(
    "--scheduler-port",
    default=8786,
    show_default=True,
    type=int,
    help="Scheduler port number (0: a random free port).",
)
@click.option(
    "--dashboard-address",
    default=":8787",
    show_default=True,
    help="Address of the scheduler's dashboard, as in `dask scheduler`.",
)
@click.option(
    "--nthreads",
    default=0,
    type=int,
    help="Number of threads per worker process. Defaults to number of cores divided by "
    "the number of processes per host.",
)
@click.option(
    "--nworkers",
    "n_workers",
    default=1,
    show_default=True,
    type=int,
    help="Number of worker processes per host.",
)
@click.option(
    "--hostfile",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Text file with hostnames/IP addresses.",
)
@click.option(
    "--ssh-username",
    default=None,
    help="Username to use when establishing SSH connections "
    "[default: User in ~/.ssh/config, else your user name].",
)
@click.option(
    "--ssh-port",
    default=22,
    type=int,
    show_default=True,
    help="Port to use for SSH connections (when not given: Port in ~/.ssh/config, else 22).",
)
@click.option(
    "--ssh-private-key",
    default=None,
    type=click.Path(dir_okay=False),
    help="Private key file to use for SSH connections "
    "[default: IdentityFile in ~/.ssh/config, the default keys and ssh-agent].",
)
@click.option(
    "--known-hosts",
    default=None,
    type=click.Path(dir_okay=False),
    help="known_hosts file to check host keys against [default: ~/.ssh/known_hosts].",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Do not check host keys (anyone on the path could pose as the host).",
)
@click.option("--nohost", is_flag=True, help="Do not pass the hostname to the worker.")
@click.option(
    "--log-directory",
    default=None,
    type=click.Path(exists=True, file_okay=False),
    help="Keep the output of every remote dask scheduler and dask worker in files in "
    "this directory (on this machine, one file per process).",
)
@click.option(
    "--local-directory",
    default=None,
    help="Directory to use on all cluster nodes to place workers files.",
)
@click.option(
    "--remote-python",
    default=None,
    help="Path to Python on remote nodes [default: the path of this Python]; it needs "
    "dask-cli installed.",
)
@click.option(
    "--memory-limit",
    default="auto",
    show_default=True,
    help="Bytes of memory that the worker can use. This can be an integer (bytes), "
    "float (fraction of total system memory), string (like 5GB or 5000M), 'auto', or "
    "zero for no memory management",
)
@click.option("--worker-port", default=None, help="Serving computation port, defaults to random.")
@click.option("--nanny-port", default=None, help="Serving nanny port, defaults to random.")
@click.option(
    "--remote-dask-worker",
    default="dask_cli worker",
    show_default=True,
    help="Worker to run: a module run as `python -m MODULE [ARGS]` "
    "(`distributed.cli.dask_worker` runs distributed's, without shells or --keepalive).",
)
@click.option(
    "--keepalive/--no-keepalive",
    default=False,
    help="A failing worker stays up for post-mortem (see `dask worker --keepalive`).",
)
@click.option(
    "--shell-port",
    default=None,
    help="Port of each worker's shell service, random by default; a range like "
    "9000:9010 with --nworkers.",
)
@click.option(
    "--name",
    default=None,
    help="Register the cluster under this name for `dask cluster` and --cluster NAME.",
)
@click.version_option(__version__, package_name="dask-cli", prog_name="dask ssh")
@click.pass_context
def ssh(ctx: click.Context, hostnames: tuple[str, ...], hostfile: str | None, **options) -> None:
    from dask_cli.ssh.plan import read_hostfile

    hosts = list(hostnames) + (read_hostfile(hostfile) if hostfile else [])
    if not hosts:
        raise click.UsageError("Give at least one host, as HOSTNAMES or with --hostfile.")
    if options["n_workers"] < 1:
        raise click.BadParameter("must be at least 1", param_hint="--nworkers")

    if not _port_given(ctx, "ssh_port"):
        options["ssh_port"] = None  # then ~/.ssh/config decides, else 22

    from dask_cli.ssh.launcher import launch

    ctx.exit(launch(hosts, **options))
