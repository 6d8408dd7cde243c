"""``dask job ... --cluster NAME``: a job on a named cluster of ``dask cluster``."""

from __future__ import annotations

import json

import pytest

from tests.clusters.conftest import dask, holder_log, state_dir  # noqa: F401 - fixture


@pytest.mark.timeout(240)
def test_submit_wait_and_list_by_cluster_name(state_dir, tmp_path):  # noqa: F811
    path = tmp_path / "named.py"
    path.write_text("import os\nprint('on', os.environ['DASK_SCHEDULER_ADDRESS'])\n")
    dask("cluster", "start", "jobs", "--workers", "1", "--nthreads", "1")
    try:
        waited = dask("job", "submit", "--wait", "--cluster", "jobs", str(path))
        assert waited.stdout.startswith("on tcp://127.0.0.1:")
        listed = json.loads(dask("job", "list", "--cluster", "jobs", "--json").stdout)
        assert [r["state"] for r in listed] == ["SUCCEEDED"]
        gathered = dask("job", "gather", "--cluster", "jobs", listed[0]["key"])
        assert gathered.stdout == waited.stdout
    except BaseException:
        print(holder_log(state_dir, "jobs"))
        raise
    finally:
        dask("cluster", "stop", "jobs", check=False)
