"""From the last benchmark run: docs/latency.png (p50 and p99 latency against data size) and
docs/answer-size.png (latency and server CPU against answer size, largest dataset).

python -m bench.plot [bench/results/latest.json] [docs/latency.png] [docs/answer-size.png]
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


def plot_answer_size(document: dict[str, Any], output: Path) -> bool:
    """p50 latency, app CPU and PostgreSQL CPU per request against items per answer (staff
    members' own lists, 1 connection) on the largest dataset, with the fixed bodies' CPU."""
    size = document["sizes"][-1]
    points = sorted(
        (size["list_items"][label], run)
        for label, run in size["runs"].items()
        if label in size.get("list_items", {})
    )
    if len(points) < 2:
        return False
    items = [x for x, _ in points]
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    for column, legend, style in (
        ("p50_ms", "p50 latency", "o-"),
        ("app_cpu_ms_per_request", "server CPU (gunicorn)", "s-"),
        ("db_cpu_ms_per_request", "PostgreSQL CPU", "^-"),
    ):
        axes.plot(items, [run[column] for _, run in points], style, label=legend)
    for label, count, colour in (
        ("fixed body c1", 20, "tab:gray"),
        ("fixed body 250 items c1", 250, "black"),
    ):
        if label in size["runs"]:
            cpu = size["runs"][label]["app_cpu_ms_per_request"]
            axes.plot([count], [cpu], "D", color=colour, label=f"fixed body, {count} items: CPU")
    axes.set_xlabel("items per answer (a staff member's own list)")
    axes.set_ylabel("ms per request")
    axes.set_ylim(bottom=0)
    axes.set_title(
        f"{size['name']} encounters, 1 connection, gunicorn {document.get('workers', 2)} sync "
        f"workers; revision {document.get('revision', '?')}",
        fontsize=9,
    )
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(output)
    plt.close(figure)
    return True


def main() -> int:
    """Read the results, write the PNGs."""
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results" / "latest.json"
    output = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "latency.png"
    answers = Path(sys.argv[3]) if len(sys.argv) > 3 else ROOT / "docs" / "answer-size.png"
    document = json.loads(source.read_text())
    plot(document, output)
    print(f"plot: {output}")
    if plot_answer_size(document, answers):
        print(f"plot: {answers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
