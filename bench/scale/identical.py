"""(a) Replica identity: every path answers every request alike, and the replica path reads from
the standby only."""

from __future__ import annotations

import json

import psycopg

from bench.load import Line
from bench.scale.traffic import get
from bench.scale.verdict import Check


def check_identical(
    lines: list[Line], targets: dict[str, int], primary: str, replica: str, marker: str
) -> Check:
    """(a) Every request answers the same status, body and ETag on every path."""
    differing, not_ok, items = [], 0, []
    for line in lines:
        answers = {name: get(port, line) for name, port in targets.items()}
        first = next(iter(answers.values()))
        if any(answer != first for answer in answers.values()):
            differing.append(line.path)
        if any(status != 200 for status, _, _ in answers.values()):
            not_ok += 1
        elif first[0] == 200:
            items.append(len(json.loads(first[1])))
    # The replica path must have read from the standby, and never from the primary.
    on_primary, on_standby = (_connections(url, marker) for url in (primary, replica))
    passed = (
        not differing and not not_ok and len(lines) >= 200 and on_standby > 0 and on_primary == 0
    )
    summary = (
        f"{len(lines) - len(differing)}/{len(lines)} identical (status, body, ETag) on "
        f"{', '.join(targets)}; non-200 {not_ok}; items per answer {min(items, default=0)}-"
        f"{max(items, default=0)}; replica path: {on_standby} connection(s) on the standby, "
        f"{on_primary} on the primary"
    )
    figures = {"requests": len(lines), "differing": differing[:5]}
    return Check(
        "a", passed, summary, figures, f"{len(lines) - len(differing)}/{len(lines)} identical"
    )


def _connections(url: str, application_name: str) -> int:
    with psycopg.connect(url, autocommit=True) as pg:
        row = pg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    return int(row[0]) if row else 0
