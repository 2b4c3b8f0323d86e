"""The per-item cost: a least-squares line of CPU and latency per request against answer length.

The points are staff members' own lists of FIT_ITEMS items at 1 connection, measured on the
largest size only; its slope is the cost of one more item, its intercept that of the request.
"""

from __future__ import annotations

from bench.measure import SizeResult
from bench.mixes import FIT_ITEMS, list_label

FIT_COLUMNS = {
    "app CPU": "app_cpu_ms_per_request",
    "PostgreSQL CPU": "db_cpu_ms_per_request",
    "p50 latency": "p50_ms",
}


def per_item_fit(result: SizeResult) -> dict[str, tuple[float, float]]:
    """Least-squares line of each FIT_COLUMNS figure against items per answer, over the staff
    lists of FIT_ITEMS: (µs per item, ms at zero items). Empty without those runs."""
    points = [
        (result.list_items[label], result.runs[label])
        for label in (list_label(items) for items in FIT_ITEMS)
        if label in result.runs and label in result.list_items
    ]
    if len(points) < 2:
        return {}
    xs = [x for x, _ in points]
    mean_x = sum(xs) / len(xs)
    spread = sum((x - mean_x) ** 2 for x in xs)
    fits = {}
    for name, column in FIT_COLUMNS.items():
        ys = [run[column] for _, run in points]
        mean_y = sum(ys) / len(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
        fits[name] = (slope * 1000, mean_y - slope * mean_x)
    return fits


def fit_report(result: SizeResult) -> list[str]:
    """The per-item fit, one line per figure."""
    fits = per_item_fit(result)
    if not fits:
        return []
    sizes = ", ".join(f"{result.list_items[list_label(n)]:.0f}" for n in FIT_ITEMS)
    lines = [f"PER-ITEM FIT ({result.name}, staff members' own lists of {sizes} items, c1)"]
    for name, (per_item, fixed) in fits.items():
        lines.append(f"  {name:<15} {per_item:7.2f} µs per item + {fixed:6.2f} ms per request")
    return lines
