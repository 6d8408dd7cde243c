"""Fixtures shared by every test: real processes on 127.0.0.1, TLS files."""

from __future__ import annotations

import pytest

from dask_cli.testing import TLSFiles, make_tls_files, process_cluster


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and workers ``w1``, ``w2`` as real ``dask`` subprocesses."""
    with process_cluster(tmp_path, workers=("w1", "w2")) as running:
        yield running


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TLSFiles:
    """A CA and a certificate for 127.0.0.1, shared by the whole session."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def other_tls_files(tmp_path_factory) -> TLSFiles:
    """Certificates from a second CA that the first does not trust."""
    return make_tls_files(tmp_path_factory.mktemp("tls-other"), name="untrusted")
