"""``dask top``: a terminal dashboard of a running cluster.

``protocol`` is the snapshot's wire format; ``snapshot`` and ``feature`` run in the
scheduler; ``poller`` fetches snapshots for the client; ``report`` prints one
(``--once``); ``app`` is the Textual dashboard. Only ``app`` imports Textual.
"""
