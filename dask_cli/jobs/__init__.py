"""``dask job``: a Python script run as a task on the cluster, fetched later by key.

Three parts, one per process, speaking :mod:`dask_cli.jobs.protocol`:

- :mod:`~dask_cli.jobs.client` (the user's terminal) submits a job and follows it;
- :mod:`~dask_cli.jobs.registry` (a scheduler plugin) keeps the job records, so they
  outlive the submitting process, and relays output reads to the worker;
- :mod:`~dask_cli.jobs.runner` (the task on a worker) runs the script as its own
  subprocess and keeps its output in the worker's local directory.

The client registers the scheduler plugin itself, on submit, and the runner
installs its worker handlers when the first job runs: nothing is preloaded, and
the debugging toolkit never imports this package.
"""
