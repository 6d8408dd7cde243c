"""Benchmarks that compare dask-cli against its anchors, as ratios measured in one run.

Adding a benchmark: create a module ``benchmarks/NAME.py`` exposing ``BENCHMARKS``,
a list of callables. Each takes a :class:`Settings` and returns a :class:`Result`
or a list of them; measure the anchor in the same call (interleaved with ours
where possible) so both see the same machine noise, and take the median of at
least :data:`MIN_REPEATS` repeats (``settings.repeats``; helpers below). Then
``python -m benchmarks`` runs it with the others and prints one table.

The machine is noisy, so these are figures for people, not assertions in tests.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

MIN_REPEATS = 5


@dataclass(frozen=True)
class Settings:
    """How hard to measure: ``quick`` asks benchmarks for smaller workloads too."""

    quick: bool = False
    repeats: int = 15

    def __post_init__(self) -> None:
        if self.repeats < MIN_REPEATS:
            raise ValueError(f"repeats must be at least {MIN_REPEATS}")


@dataclass(frozen=True)
class Result:
    """One row of the table: our figure against the anchor's, and whether we met the target.

    ``better="lower"`` for times (met when ``ratio <= target``), ``"higher"`` for
    throughputs (met when ``ratio >= target``). ``error`` marks a benchmark that
    could not be measured; it never counts as met. A NaN ``target`` makes a row
    shown for reference (``met`` is None).
    """

    name: str
    ours: float
    anchor: float
    target: float
    better: Literal["lower", "higher"] = "lower"
    unit: str = "s"
    error: str | None = None

    @property
    def ratio(self) -> float:
        if self.error or not self.anchor:
            return math.nan
        return self.ours / self.anchor

    @property
    def met(self) -> bool | None:
        if math.isnan(self.target) and not self.error:
            return None
        if math.isnan(self.ratio):
            return False
        return self.ratio <= self.target if self.better == "lower" else self.ratio >= self.target

    def to_json(self) -> dict[str, object]:
        """The machine-readable row: name, ours, anchor, ratio, target, met."""

        def number(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {
            "name": self.name,
            "ours": number(self.ours),
            "anchor": number(self.anchor),
            "ratio": number(self.ratio),
            "target": self.target,
            "met": self.met,
        }

    @classmethod
    def failed(cls, name: str, target: float, error: str, **kwargs) -> Result:
        return cls(name, math.nan, math.nan, target, error=error, **kwargs)


Benchmark = Callable[[Settings], Result | list[Result]]


def wall_time(function: Callable[[], object]) -> float:
    """Seconds one call of ``function`` takes (monotonic clock)."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median_times(
    functions: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median wall time of each function, calls interleaved so noise hits all alike."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            samples[name].append(wall_time(function))
    return {name: statistics.median(values) for name, values in samples.items()}


def discover() -> list[tuple[str, Benchmark]]:
    """Every ``BENCHMARKS`` entry of every module in this package, as (module, callable)."""
    found = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for benchmark in getattr(module, "BENCHMARKS", ()):
            found.append((module_info.name, benchmark))
    return found


def run(benchmarks: Iterable[tuple[str, Benchmark]], settings: Settings) -> list[Result]:
    """Run benchmarks in order; one that raises becomes a failed row, the rest still run."""
    results: list[Result] = []
    for module, benchmark in benchmarks:
        try:
            produced = benchmark(settings)
        except Exception as exc:  # noqa: BLE001 - reported in the table
            name = f"{module}.{getattr(benchmark, '__name__', 'benchmark')}"
            results.append(Result.failed(name, math.nan, f"{type(exc).__name__}: {exc}"))
            continue
        results.extend(produced if isinstance(produced, list) else [produced])
    return results
