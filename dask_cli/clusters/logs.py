"""``dask cluster logs``: the holder's log file (scheduler and worker output included)."""

from __future__ import annotations

import collections
import time
from typing import TextIO

from dask_cli.clusters.state import log_file, read

FOLLOW_INTERVAL = 0.2


def print_log(name: str, lines: int | None, follow: bool, out: TextIO) -> None:
    """Write the log of ``name`` to ``out`` (the last ``lines``); with ``follow``, keep
    writing what is appended until the cluster's record is removed or Ctrl-C."""
    read(name)  # one clear error for an unknown cluster
    path = log_file(name)
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            if lines is None:
                out.write(log.read())
            else:
                out.writelines(collections.deque(log, maxlen=lines))
            out.flush()
            while follow and path.exists():
                chunk = log.read()
                if chunk:
                    out.write(chunk)
                    out.flush()
                else:
                    time.sleep(FOLLOW_INTERVAL)
    except KeyboardInterrupt:
        return
    except FileNotFoundError:
        return  # stopped meanwhile
