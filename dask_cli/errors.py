"""Errors that commands report to users as one line (plus a hint), never a traceback.

Library code raises these; only the root command turns them into output
(see :func:`dask_cli.output.report_error`). No click or rich import here, so code
that runs inside workers can use them too.
"""

from __future__ import annotations


class DaskCliError(Exception):
    """A failure the user can act on: ``message`` says what, ``hint`` says what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class WorkerNotFound(DaskCliError):
    """A name, address or prefix matched no worker, or more than one."""


class ConnectionFailed(DaskCliError):
    """A scheduler or shell service could not be reached, or refused us."""


class RemoteError(DaskCliError):
    """The other end answered, with an error: a request it could not serve (no such
    handler, a worker that is not kept alive), or code that raised there.

    ``traceback`` is the text formatted on the remote side, when code raised."""

    def __init__(self, message: str, hint: str | None = None, traceback: str | None = None):
        super().__init__(message, hint)
        self.traceback = traceback
