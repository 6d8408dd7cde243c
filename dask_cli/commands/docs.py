"""``dask docs``: open the documentation, or print its address where no browser exists."""

from __future__ import annotations

import click

DOCS_URL = "https://docs.dask.org"


def open_in_browser(url: str) -> bool:
    """Try to open ``url``; False when no browser is available (e.g. a headless server)."""
    import webbrowser

    try:
        return bool(webbrowser.open(url))
    except Exception:  # noqa: BLE001 - webbrowser.Error, or a broken $BROWSER command
        return False


@click.command()
def docs() -> None:
    """Open the Dask documentation (https://docs.dask.org) in a web browser.

    Where no browser is available, prints the address instead.
    """
    if not open_in_browser(DOCS_URL):
        click.echo(DOCS_URL)
