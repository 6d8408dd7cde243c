"""Worker records and name resolution (pure functions)."""

from __future__ import annotations

import pytest

from dask_cli.debug.names import build_records, resolve
from dask_cli.debug.protocol import KEPT_ALIVE, WorkerRecord
from dask_cli.errors import WorkerNotFound

WORKERS = {
    "tcp://127.0.0.1:1001": {"name": "alpha", "status": "running", "nthreads": 2, "tasks": 3},
    "tcp://127.0.0.1:1002": {"name": "alps", "status": "running", "nthreads": 1},
    "tcp://127.0.0.1:2003": {"name": 7, "status": "paused"},
}
METADATA = {
    "tcp://127.0.0.1:1001": {"shell_address": "tcp://127.0.0.1:9001"},
    "tcp://127.0.0.1:1002": {"shell_address": "tcp://127.0.0.1:9002", "status": KEPT_ALIVE},
}


@pytest.fixture
def records():
    return build_records(WORKERS, METADATA)


def test_build_records(records):
    by_name = {r.name: r for r in records}
    assert by_name["alpha"].shell_address == "tcp://127.0.0.1:9001"
    assert by_name["alpha"].nthreads == 2 and by_name["alpha"].tasks == 3
    assert by_name["alps"].status == KEPT_ALIVE  # the worker's own record wins
    assert by_name["7"].shell_address is None and by_name["7"].status == "paused"


def test_remembered_kept_alive_workers_are_listed_until_their_name_returns():
    remembered = {"tcp://127.0.0.1:3000": {"name": "gone", "shell_address": "tcp://h:1"}}
    names = [r.name for r in build_records(WORKERS, METADATA, remembered)]
    assert "gone" in names
    back = {**WORKERS, "tcp://127.0.0.1:3001": {"name": "gone", "status": "running"}}
    gone = [r for r in build_records(back, METADATA, remembered) if r.name == "gone"]
    assert [r.status for r in gone] == ["running"]


@pytest.mark.parametrize(
    "query, name",
    [
        ("alpha", "alpha"),
        ("7", "7"),
        ("tcp://127.0.0.1:1001", "alpha"),
        ("127.0.0.1:1002", "alps"),
        ("tcp://127.0.0.1:9002", "alps"),  # a shell address
        ("alph", "alpha"),  # unambiguous prefix
        ("tcp://127.0.0.1:2", "7"),  # address prefix
    ],
)
def test_resolve(records, query, name):
    assert resolve(records, query).name == name


def test_unknown_lists_known_names(records):
    with pytest.raises(WorkerNotFound, match="Known workers: 7, alpha, alps"):
        resolve(records, "nope")


def test_ambiguous_lists_matches(records):
    with pytest.raises(WorkerNotFound, match="matches several workers") as info:
        resolve(records, "alp")
    assert "alpha" in str(info.value) and "alps" in str(info.value)
    assert "7 (" not in str(info.value)


def test_record_round_trip():
    record = WorkerRecord(name="a", address="tcp://x:1", shell_address="tcp://x:2")
    assert WorkerRecord.from_msg({**record.to_msg(), "extra": 1}) == record
