"""``dask completion SHELL``: click's completion script for the ``dask`` command."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_DASK_COMPLETE"


def completion_script(shell: str) -> str:
    """The script that makes ``shell`` complete ``dask`` commands and options (click's own)."""
    from click.shell_completion import get_completion_class

    from dask_cli.cli import cli

    completion_class = get_completion_class(shell)
    if completion_class is None:
        raise ValueError(f"click has no completion for {shell!r}")
    return completion_class(cli, {}, "dask", COMPLETE_VAR).source()


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print a shell completion script for bash, zsh or fish.

    \b
    bash:  echo 'eval "$(dask completion bash)"' >> ~/.bashrc
    zsh:   echo 'eval "$(dask completion zsh)"' >> ~/.zshrc
    fish:  dask completion fish > ~/.config/fish/completions/dask.fish
    """
    click.echo(completion_script(shell))
