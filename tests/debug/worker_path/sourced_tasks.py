"""Tasks the test workers can import (their PYTHONPATH has this folder), so cloudpickle
sends them by reference and the worker shows their source, whatever its version."""

from __future__ import annotations

from typing import Any


def load_batch(batch_id: int) -> dict[str, Any]:
    return {"id": batch_id, "readings": [-1.0, -3.5, -2.25], "sensor": "thermo-12"}


def summarise_batch(batch: dict[str, Any]) -> float:
    readings = batch["readings"]
    threshold = 0.0
    valid = [r for r in readings if r >= threshold]
    return sum(valid) / len(valid)  # ZeroDivisionError: no valid reading
