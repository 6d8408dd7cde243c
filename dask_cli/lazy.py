"""click groups that import their subcommands only when one is used.

This is click's documented LazyGroup pattern, plus short help stored beside each
import path so that ``--help`` can list commands without importing them, and a
default subcommand so that ``dask worker tcp://host:8786`` keeps meaning
``dask worker start tcp://host:8786``.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, NamedTuple

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


class LazyCommand(NamedTuple):
    """Where a subcommand lives (``"package.module:attribute"``) and its one-line help."""

    import_path: str
    short_help: str


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(
        self,
        *args,
        lazy_subcommands: dict[str, LazyCommand] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def short_help_for(self, ctx: click.Context, cmd_name: str) -> str | None:
        """Help text for the listing in ``--help``, without importing lazy commands."""
        if cmd_name in self.lazy_subcommands:
            return self.lazy_subcommands[cmd_name].short_help
        command = super().get_command(ctx, cmd_name)
        if command is None or command.hidden:
            return None
        return command.get_short_help_str(limit=80)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            text = self.short_help_for(ctx, name)
            if text is not None:
                rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Complete subcommand names from the declared short help, without importing them.

        click's own ``Group.shell_complete`` loads every matching subcommand to read
        its help; that would import distributed on a ``<TAB>``.
        """
        from click.shell_completion import CompletionItem

        items = []
        for name in self.list_commands(ctx):
            if name.startswith(incomplete):
                text = self.short_help_for(ctx, name)
                if text is not None:
                    items.append(CompletionItem(name, help=text))
        # Options of the group itself (``--help``, ``--version``): click.Command's part.
        items.extend(click.Command.shell_complete(self, ctx, incomplete))
        return items

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            suggestion = self.suggest(ctx, click.utils.make_str(args[0])) if args else None
            if suggestion is None or "No such command" not in exc.message:
                raise
            raise click.UsageError(f"{exc.message} Did you mean {suggestion!r}?", ctx) from None

    def suggest(self, ctx: click.Context, word: str, cutoff: float = 0.6) -> str | None:
        """The subcommand ``word`` was probably meant to be (``worekr`` -> ``worker``)."""
        matches = difflib.get_close_matches(word, self.list_commands(ctx), n=1, cutoff=cutoff)
        return matches[0] if matches else None

    def _load(self, cmd_name: str) -> click.Command:
        module_name, attribute = self.lazy_subcommands[cmd_name].import_path.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command


class DefaultLazyGroup(LazyGroup):
    """A LazyGroup that runs ``default_command`` when the first token is not a subcommand.

    ``dask worker tcp://host:8786 --nthreads 2`` and ``dask worker`` (address from
    config) both start a worker; ``dask worker shell w1`` runs the subcommand;
    ``dask worker --help`` shows the group's help.
    """

    def __init__(self, *args, default_command: str, **kwargs):
        kwargs.setdefault("invoke_without_command", False)
        super().__init__(*args, **kwargs)
        self.default_command = default_command
        self.no_args_is_help = False

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        help_names = set(ctx.help_option_names)
        if not args and ctx.resilient_parsing:
            # Shell completion of `dask worker <TAB>`: offer the subcommands, do not
            # descend into the default command.
            return super().parse_args(ctx, args)
        if not args or (args[0] not in help_names and args[0] not in self.list_commands(ctx)):
            if args and not ctx.resilient_parsing:
                self._refuse_misspelling(ctx, args[0])
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def _refuse_misspelling(self, ctx: click.Context, word: str) -> None:
        """``dask worker lsit`` is a typo, not a scheduler named "lsit": say so.

        Only plain words very close to a subcommand count; anything with ``:``, ``.``
        or ``/`` (an address, a host name) goes to the default command."""
        if word.startswith("-") or any(c in word for c in ":./"):
            return
        suggestion = self.suggest(ctx, word, cutoff=0.75)
        if suggestion is not None and suggestion != self.default_command:
            ctx.fail(f"No such command {word!r}. Did you mean {suggestion!r}?")
