"""What a job ships to the worker: the script, and ``--working-dir`` as a zip.

Both travel inside the job's task, so the scheduler holds them while the job is
pending or running: that is why they are size-limited (``cli.job.max-upload``),
and why the limit is checked on the files' sizes before anything is read or
compressed. ``.git`` and ``__pycache__`` directories are left out.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from dask_cli.errors import DaskCliError

SKIPPED_DIRECTORIES = frozenset({".git", "__pycache__"})
DEFAULT_LIMIT = 64 * 2**20


def upload_limit() -> int:
    """Bytes a job may ship (script plus working directory): ``cli.job.max-upload``."""
    from dask.utils import parse_bytes

    from dask_cli import config

    value = config.get("job.max-upload", DEFAULT_LIMIT)
    try:
        return int(parse_bytes(value) if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return DEFAULT_LIMIT


def _files(directory: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRECTORIES)
        found.extend(Path(root) / name for name in sorted(names))
    return found


def _too_big(what: str, size: int, limit: int) -> DaskCliError:
    from dask.utils import format_bytes

    return DaskCliError(
        f"{what} is {format_bytes(size)}; a job can ship at most {format_bytes(limit)}",
        hint="Put large data where the workers can read it, or raise the dask config "
        "cli.job.max-upload.",
    )


def read_script(path: str, limit: int) -> bytes:
    script = Path(path)
    try:
        size = script.stat().st_size
        if size > limit:
            raise _too_big(f"Script {path}", size, limit)
        return script.read_bytes()
    except OSError as exc:
        raise DaskCliError(f"Cannot read script {path}: {exc.strerror or exc}") from None


def zip_directory(path: str, limit: int, script_size: int = 0) -> bytes:
    """``path`` as zip bytes; fails before reading anything when its files and the
    script (``script_size``) are over ``limit``."""
    directory = Path(path)
    if not directory.is_dir():
        raise DaskCliError(f"--working-dir {path} is not a directory")
    files = _files(directory)
    total = script_size
    for file in files:
        try:
            total += file.stat().st_size
        except OSError:
            continue
        if total > limit:
            # Keep walking only to say how big it is (stat is cheap).
            total = script_size + sum(f.stat().st_size for f in files if f.exists())
            raise _too_big(f"--working-dir {path} with the script", total, limit)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for file in files:
            try:
                archive.write(file, file.relative_to(directory).as_posix())
            except OSError as exc:
                raise DaskCliError(f"Cannot read {file}: {exc.strerror or exc}") from None
    return buffer.getvalue()


def path_inside(script: str, directory: str) -> str | None:
    """The script's path relative to ``directory`` when it lies inside it, else None."""
    try:
        relative = Path(script).resolve().relative_to(Path(directory).resolve())
    except ValueError:
        return None
    if any(part in SKIPPED_DIRECTORIES for part in relative.parts):
        return None
    return relative.as_posix()
