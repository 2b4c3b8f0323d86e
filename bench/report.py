"""The benchmark's results: the summary it prints, and the JSON and markdown it writes.

`bench/results/latest.json` (`ci.json` with `--ci`) holds every figure, for `bench/plot.py`; its
`.md` twin is the table docs/performance.md shows.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.fit import fit_report, per_item_fit
from bench.measure import SizeResult
from bench.mixes import SAME_BYTES_ITEMS
from bench.targets import Target


def print_summary(
    results: list[SizeResult], targets: dict[str, Target], profiles: list[str], ci: bool
) -> None:
    """The figures of every size, the targets' verdicts, the per-item fit and any profiles."""
    print()
    print(table(results))
    print()
    print(f"TARGETS ({'CI: correctness only, timings not judged' if ci else 'full run'})")
    for target in targets.values():
        print("  " + target.row())
    fit = fit_report(results[-1])
    if fit:
        print()
        print("\n".join(fit))
    for text in profiles:
        print()
        print(text)


def results_document(
    info: dict[str, Any],
    results: list[SizeResult],
    targets: dict[str, Target],
    *,
    seconds_per_run: float,
    connections: int,
    workers: int,
    elapsed_seconds: int,
) -> dict[str, Any]:
    """The run as the results JSON holds it: `info` (revision, machine, command), then figures."""
    return {
        **info,
        "seconds_per_run": seconds_per_run,
        "connections": connections,
        "workers": workers,
        "elapsed_seconds": elapsed_seconds,
        "sizes": [asdict(r) for r in results],
        "targets": [asdict(t) for t in targets.values()],
        "per_item_fit": {
            name: {"us_per_item": per_item, "ms_per_request": fixed}
            for name, (per_item, fixed) in per_item_fit(results[-1]).items()
        },
    }


def write_results(document: dict[str, Any], output: Path) -> None:
    """`document` as JSON at `output`, and as markdown beside it (same name, `.md`)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    output.with_suffix(".md").write_text(markdown(document))


def markdown(document: dict[str, Any]) -> str:
    """The run as docs/performance.md shows it: how, where, the figures and the targets."""
    machine = document["machine"]
    lines = [
        f"Revision `{document['revision']}`, command `{document['command']}`; "
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"PostgreSQL {machine['postgres']}, Python {machine['python']}; "
        f"{document['workers']} gunicorn sync workers; {document['seconds_per_run']} s per run; "
        f"load average {machine['load_average_at_start']} at start, "
        f"{machine.get('load_average_at_end')} at the end; {document['elapsed_seconds']} s.",
        "",
        "| size | encounters | run | conns | req/s | p50 ms | p99 ms | app CPU ms/req "
        "| db CPU ms/req | SQL/req | items/answer | vs fixed |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in document["sizes"]:
        fixed = size["runs"].get("fixed body", {}).get("requests_per_second") or 0
        for label, run in size["runs"].items():
            items = (
                f"{size['list_items'][label]:.0f}"
                if label in size["list_items"]
                else f"{SAME_BYTES_ITEMS} (fixed)"
                if label == f"fixed body {SAME_BYTES_ITEMS} items c1"
                else ""
                if label.startswith("fixed")
                else f"{size['mean_items']:.1f}"
            )
            ratio = (
                f"{run['requests_per_second'] / fixed:.0%}"
                if fixed and label == "endpoint 20 items"
                else ""
            )
            lines.append(
                f"| {size['name']} | {size['encounters']:,} | {label} | {run['connections']} "
                f"| {run['requests_per_second']:.0f} | {run['p50_ms']:.2f} | {run['p99_ms']:.2f} "
                f"| {run['app_cpu_ms_per_request']:.2f} | {run['db_cpu_ms_per_request']:.2f} "
                f"| {run['statements_per_request']:.2f} | {items} | {ratio} |"
            )
    lines += ["", "| target | verdict | figure |", "|---|---|---|"]
    for target in document["targets"]:
        verdict = {True: "MET", False: "**MISSED**", None: "n/a"}[target["met"]]
        detail = f" ({target['detail']})" if target["detail"] else ""
        lines.append(f"| {target['name']} | {verdict} | {target['figure']}{detail} |")
    fits = document.get("per_item_fit") or {}
    if fits:
        lines += ["", "| per-item fit (largest size) | µs per item | ms per request at 0 items |"]
        lines.append("|---|---:|---:|")
        for name, fit in fits.items():
            lines.append(f"| {name} | {fit['us_per_item']:.2f} | {fit['ms_per_request']:.2f} |")
    return "\n".join(lines) + "\n"


def table(results: list[SizeResult]) -> str:
    """The figures of every size, one row per run."""
    header = (
        f"{'size':<6}{'encounters':>11}  {'run':<22}{'conns':>6}{'req/s':>9}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'app CPU':>9}{'db CPU':>8}{'SQL':>7}{'vs fixed':>9}"
    )
    rows = [header, "-" * len(header)]
    for result in results:
        fixed = result.runs.get("fixed body", {}).get("requests_per_second") or 0
        for label, run in result.runs.items():
            ratio = (
                f"{run['requests_per_second'] / fixed:.0%}"
                if fixed and label == "endpoint 20 items"
                else ""
            )
            rows.append(
                f"{result.name:<6}{result.encounters:>11,}  {label:<22}{run['connections']:>6}"
                f"{run['requests_per_second']:>9.0f}{run['p50_ms']:>9.2f}{run['p99_ms']:>9.2f}"
                f"{run['app_cpu_ms_per_request']:>9.2f}{run['db_cpu_ms_per_request']:>8.2f}"
                f"{run['statements_per_request']:>7.2f}{ratio:>9}"
            )
        rows.append(
            f"{'':<6}{'':>11}  items per answer: {result.mean_items:.1f} (20-item mix), "
            f"{result.mean_big_items:.0f} (500-item mix)"
        )
    rows.append("CPU columns: ms of CPU per request (app: gunicorn master and workers; db: the")
    rows.append("PostgreSQL backends of this database). SQL: statements per request (/metrics).")
    return "\n".join(rows)
