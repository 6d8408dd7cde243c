"""What ``dask info`` reports: versions and non-default configuration, secrets masked.

Plain functions that return data (and, for the report, Markdown text) so tests can
call them directly. Versions come from package metadata: nothing is imported, so
the report is fast and works even when a package in the stack is broken.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

# dask.utils.show_versions' list (a local variable there, so it cannot be imported).
# Kept in its order so that `dask info versions` has the same keys as dask's.
SHOW_VERSIONS_PACKAGES = ("numpy", "pandas", "cloudpickle", "fsspec", "bokeh", "pyarrow", "zarr")

# The rest of the usual stack, shown in the Markdown report only.
STACK_PACKAGES = (
    "msgpack",
    "tornado",
    "toolz",
    "cytoolz",
    "partd",
    "psutil",
    "tblib",
    "zict",
    "sortedcontainers",
    "lz4",
    "click",
    "pyyaml",
    "jinja2",
    "scipy",
    "xarray",
    "s3fs",
    "gcsfs",
    "ptpython",
    "prompt-toolkit",
    "jedi",
    "asyncssh",
    "rich",
)

SECRET_WORDS = ("token", "password", "secret", "key", "credential", "auth")
MASK = "***"
NOT_INSTALLED = "not installed"

# scheme://user:password@host -> scheme://user:***@host
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s@/]*@")


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` from its metadata, or None."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """The data of dask's ``dask info versions`` (same keys, same order), plus ``dask-cli``.

    Missing packages are ``None`` (JSON null), as in dask.
    """
    result: dict[str, str | None] = {
        "Python": ".".join(str(part) for part in sys.version_info[:3]),
        "Platform": platform.uname().system,
        "dask": package_version("dask"),
        "distributed": package_version("distributed"),
    }
    for name in SHOW_VERSIONS_PACKAGES:
        result[name] = package_version(name)
    result["dask-cli"] = package_version("dask-cli")
    return result


def stack_versions() -> dict[str, str]:
    """Versions of dask, distributed, dask-cli and the usual stack; missing ones named so."""
    names = ("dask", "distributed", "dask-cli", *SHOW_VERSIONS_PACKAGES, *STACK_PACKAGES)
    return {name: package_version(name) or NOT_INSTALLED for name in names}


def environment() -> dict[str, str]:
    """Python and platform details that matter for a bug report."""
    return {
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
        "Platform": platform.platform(),
        "Machine": platform.machine(),
        "CPUs": str(os.cpu_count()),
        "Executable": sys.executable,
    }


def is_secret_key(name: str) -> bool:
    """Whether a config key's name says its value is a secret (case-insensitive)."""
    lowered = str(name).lower()
    return any(word in lowered for word in SECRET_WORDS)


def mask_url_credentials(text: str) -> str:
    """Hide passwords inside URLs anywhere in ``text``: ``s3://me:pw@host`` -> ``s3://me:***@host``."""
    return _URL_CREDENTIALS.sub(rf"\1{MASK}@", text)


def mask_secrets(data: Any) -> Any:
    """A copy of ``data`` with secret keys' values and URL credentials replaced by ``***``.

    A key counts as secret when its name contains one of :data:`SECRET_WORDS`;
    everything below such a key is masked.
    """
    if isinstance(data, Mapping):
        return {
            key: (MASK if is_secret_key(key) else mask_secrets(value))
            for key, value in data.items()
        }
    if isinstance(data, (list, tuple)):
        return type(data)(mask_secrets(item) for item in data)
    if isinstance(data, str):
        return mask_url_credentials(data)
    return data


def default_config() -> dict[str, Any]:
    """dask's defaults plus distributed's and dask-cli's (distributed is not imported)."""
    import dask.config

    from dask_cli.config import register_defaults, register_distributed_defaults

    register_defaults()
    if not _distributed_defaults_registered():
        register_distributed_defaults()
    return dask.config.merge(*dask.config.defaults)


def _distributed_defaults_registered() -> bool:
    import dask.config

    return any("distributed" in layer for layer in dask.config.defaults)


def config_changes(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``config`` that differs from ``defaults``, as a nested dict.

    Keys are compared the way dask does (``-`` and ``_`` are the same), so a value set
    through ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT`` matches its default's key.
    """
    changes: dict[str, Any] = {}
    for key, value in config.items():
        default = _lookup(defaults, key)
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            nested = config_changes(value, default)
            if nested:
                changes[key] = nested
        elif default is _MISSING or value != default:
            changes[key] = value
    return changes


_MISSING = object()


def _lookup(mapping: Mapping[str, Any], key: str) -> Any:
    for candidate in (key, str(key).replace("_", "-"), str(key).replace("-", "_")):
        if candidate in mapping:
            return mapping[candidate]
    return _MISSING


def changed_config() -> dict[str, Any]:
    """The active dask configuration that differs from the defaults, secrets masked."""
    import dask.config

    defaults = default_config()
    return mask_secrets(config_changes(dask.config.config, defaults))


def config_sources() -> list[str]:
    """Where non-default configuration can come from: YAML files found and DASK_* variables.

    Only the names of environment variables are listed, never their values.
    """
    import dask.config

    sources = []
    for path in dask.config.paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith((".yaml", ".yml")):
                    sources.append(os.path.join(path, name))
        elif os.path.isfile(path):
            sources.append(path)
    sources.extend(sorted(name for name in os.environ if name.startswith("DASK_")))
    return sources


def markdown_config() -> str:
    """The configuration section of the report, in Markdown."""
    import yaml

    changes = changed_config()
    lines = ["## Configuration that differs from the defaults", ""]
    if changes:
        lines += ["```yaml", yaml.safe_dump(_plain(changes), sort_keys=True).rstrip(), "```"]
    else:
        lines.append("All settings are the defaults of dask, distributed and dask-cli.")
    sources = config_sources()
    if sources:
        lines += ["", "Read from: " + ", ".join(f"`{source}`" for source in sources)]
    lines += ["", f"Secrets (keys containing {', '.join(SECRET_WORDS)}; URL passwords) are masked."]
    return "\n".join(lines) + "\n"


def _plain(data: Any) -> Any:
    """Only YAML-safe types: values set from the environment may be sets, bytes, objects."""
    if isinstance(data, Mapping):
        return {str(key): _plain(value) for key, value in data.items()}
    if isinstance(data, (list, tuple, set, frozenset)):
        return [_plain(item) for item in data]
    if data is None or isinstance(data, (str, int, float, bool)):
        return data
    return str(data)


def _table(header: tuple[str, str], rows: Mapping[str, str]) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in rows.items()]
    return lines


def markdown_report() -> str:
    """The whole ``dask info`` report: paste it into a bug report as it is."""
    lines = ["# dask info", "", "## Environment", ""]
    lines += _table(("", ""), environment())
    lines += ["", "## Versions", ""]
    lines += _table(("package", "version"), stack_versions())
    lines.append("")
    return "\n".join(lines) + "\n" + markdown_config()
