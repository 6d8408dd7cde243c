"""``dask info``: a paste-ready report for bug reports (logic in :mod:`dask_cli.info`)."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
@click.pass_context
def info(ctx: click.Context) -> None:
    """Report versions and configuration for bug reports.

    Without a subcommand, prints a Markdown report (Python, platform, versions of
    the Dask stack, and the configuration that differs from the defaults, with
    secrets masked) to paste into an issue.
    """
    if ctx.invoked_subcommand is None:
        from dask_cli.info import markdown_report

        click.echo(markdown_report(), nl=False)


@info.command(short_help="Versions of the Dask stack as JSON.")
def versions() -> None:
    """Versions of the Dask stack as JSON (as dask's `dask info versions`)."""
    from dask_cli.info import versions as collect_versions
    from dask_cli.output import print_json

    print_json(collect_versions())


@info.command(short_help="Only the non-default configuration, secrets masked.")
def config() -> None:
    """Only the configuration that differs from the defaults, secrets masked."""
    from dask_cli.info import markdown_config

    click.echo(markdown_config(), nl=False)
