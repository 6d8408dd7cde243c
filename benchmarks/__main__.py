"""``python -m benchmarks [--quick] [--json FILE] [-k PATTERN]``: run and print one table."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from benchmarks import Result, Settings, discover, run


def _figure(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 10 else f"{value:.1f} s"
    return f"{value:.3g} {unit}"


def rows(results: list[Result]) -> list[list[str]]:
    """Table cells: benchmark, ours, anchor, ratio, target, met."""
    table = []
    for result in results:
        sign = "≤" if result.better == "lower" else "≥"
        if result.error:
            met = "error: " + result.error
        else:
            met = {True: "yes", False: "NO", None: "-"}[result.met]
        table.append(
            [
                result.name,
                _figure(result.ours, result.unit),
                _figure(result.anchor, result.unit),
                "-" if math.isnan(result.ratio) else f"{result.ratio:.3f}",
                "-" if math.isnan(result.target) else f"{sign} {result.target:g}",
                met,
            ]
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmarks and print one table: ours vs anchor, ratio, target.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller workloads")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument("-k", metavar="PATTERN", help="only benchmarks whose module has PATTERN")
    parser.add_argument("--repeats", type=int, help="repeats per measurement (at least 5)")
    args = parser.parse_args(argv)

    repeats = args.repeats or (5 if args.quick else 15)
    try:
        settings = Settings(quick=args.quick, repeats=repeats)
    except ValueError as exc:
        parser.error(str(exc))
    selected = [(module, bench) for module, bench in discover() if not args.k or args.k in module]
    results = run(selected, settings)

    from dask_cli.output import print_table

    print_table(
        ["benchmark", "ours", "anchor", "ratio", "target", "met"],
        rows(results),
        title=f"dask-cli benchmarks (median of {repeats})",
    )
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in results], indent=2) + "\n")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
