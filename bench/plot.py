"""docs/latency.png: p50 and p99 latency against data size, from the last benchmark run.

python -m bench.plot [bench/results/latest.json] [docs/latency.png]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: a file only
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
SERIES = (
    ("endpoint 20 items c1", "endpoint, 20 items, 1 connection", "tab:blue"),
    ("endpoint 20 items", "endpoint, 20 items, 16 connections", "tab:cyan"),
    ("endpoint 500 items c1", "endpoint, 500 items, 1 connection", "tab:red"),
    ("fixed body c1", "fixed body, 1 connection", "tab:gray"),
    ("fixed body", "fixed body, 16 connections", "silver"),
)


def plot(document: dict[str, Any], output: Path) -> None:
    """Draw p50 (solid) and p99 (dashed) of each run against the encounters in the database."""
    sizes = document["sizes"]
    encounters = [size["encounters"] for size in sizes]
    figure, axes = plt.subplots(figsize=(11, 5), dpi=100)
    for label, legend, colour in SERIES:
        if not all(label in size["runs"] for size in sizes):
            continue
        p50 = [size["runs"][label]["p50_ms"] for size in sizes]
        p99 = [size["runs"][label]["p99_ms"] for size in sizes]
        axes.plot(encounters, p50, "o-", color=colour, label=f"{legend}: p50")
        axes.plot(encounters, p99, "x--", color=colour, alpha=0.6, label=f"{legend}: p99")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("encounters in the database")
    axes.set_ylabel("latency (ms)")
    machine = document.get("machine", {})
    axes.set_title(
        f"GET /users/{{id}}/encounters, gunicorn 2 sync workers, PostgreSQL "
        f"{machine.get('postgres', '')}\nrevision {document.get('revision', '?')}, "
        f"{machine.get('cores', '?')} cores, wrk {document.get('seconds_per_run', '?')} s a run",
        fontsize=9,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output)
    plt.close(figure)


def main() -> int:
    """Read the results, write the PNG."""
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results" / "latest.json"
    output = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "latency.png"
    plot(json.loads(source.read_text()), output)
    print(f"plot: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
