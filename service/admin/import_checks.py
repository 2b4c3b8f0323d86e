"""The consistency stage of load-data, in SQL over the staging tables.

Duplicates inside the document, references to centers, encounters and users that exist neither
in the document nor in the database, and emails or reference ids another user already holds.
Each check names at most MAX_LISTED records and counts them all; memory does not grow with the
document.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

ORDER = ("centers", "users", "encounters", "bookings")
MAX_LISTED = 20
MISSING = "No {} with this Id in the document or the database."


def record_label(kind: str, index: int, raw: Any) -> str:
    """How an error names a record: `users[17] (Id 9f…)`; a booking by EncounterId and UserId."""
    keys = ("EncounterId", "UserId") if kind == "bookings" else ("Id",)
    shown = [f"{key} {_shown(raw[key])}" for key in keys if isinstance(raw, dict) and key in raw]
    return f"{kind}[{index}] ({', '.join(shown)})" if shown else f"{kind}[{index}]"


@dataclass(frozen=True)
class Problem:
    """One line of the refusal, with where it sorts: kind, record, check, place in a list."""

    order: tuple[int, int, int, int]
    line: str


@dataclass(frozen=True)
class _Check:
    kind: str
    # Selects pos, label, the record's key columns (for its label), `detail` and `position`.
    sql: str
    message: str  # formatted with detail= and position=
    detail_is_id: bool = False


def _duplicate(kind: str, stage: str, keys: Sequence[str], message: str) -> _Check:
    joined = " AND ".join(f"f.{key} = s.{key}" for key in keys)
    listed = ", ".join(keys)
    return _Check(
        kind,
        f"SELECT s.*, f.first AS detail, 0 AS position FROM {stage} s JOIN"
        f" (SELECT {listed}, min(pos) AS first FROM {stage} GROUP BY {listed}"
        f" HAVING count(*) > 1) f ON {joined} WHERE s.pos > f.first",
        message,
    )


def _exists(table: str, column: str, value: str) -> str:
    return f"EXISTS (SELECT 1 FROM {table} t WHERE t.{column} = {value})"


def _key_clash(column: str, name: str) -> _Check:
    return _Check(
        "users",
        f"SELECT s.*, u.id AS detail, 0 AS position FROM stage_users s"
        f" JOIN (SELECT {column}, min(pos) AS first FROM stage_users GROUP BY {column}) f"
        f" ON f.first = s.pos JOIN users u ON u.{column} = f.{column}"
        f" WHERE NOT {_exists('stage_users', 'id', 'u.id')}",
        f"{name}: Already used by another user (Id {{detail}}).",
        detail_is_id=True,
    )


# In the order they are reported for one record (duplicates, references, key clashes).
CHECKS = (
    _duplicate("centers", "stage_centers", ["id"], "Id: Same Id as centers[{detail}]."),
    _duplicate("users", "stage_users", ["id"], "Id: Same Id as users[{detail}]."),
    _duplicate(
        "users", "stage_users", ["email_key"], "Email: Same as users[{detail}] (ignoring case)."
    ),
    _duplicate(
        "users",
        "stage_users",
        ["reference_key"],
        "ReferenceId: Same as users[{detail}] (ignoring case).",
    ),
    _duplicate("encounters", "stage_encounters", ["id"], "Id: Same Id as encounters[{detail}]."),
    _duplicate(
        "bookings",
        "stage_bookings",
        ["encounter_id", "user_id"],
        "Same EncounterId and UserId as bookings[{detail}].",
    ),
    _Check(
        "users",
        "SELECT s.*, NULL AS detail, 0 AS position FROM stage_users s"
        " WHERE s.center_id IS NOT NULL"
        f" AND NOT {_exists('stage_centers', 'id', 's.center_id')}"
        f" AND NOT {_exists('centers', 'id', 's.center_id')}",
        "CenterId: " + MISSING.format("center"),
    ),
    _Check(
        "users",
        "SELECT s.*, NULL AS detail, c.position AS position FROM stage_staff c"
        " JOIN stage_users s ON s.pos = c.pos"
        f" WHERE NOT {_exists('stage_centers', 'id', 'c.center_id')}"
        f" AND NOT {_exists('centers', 'id', 'c.center_id')}",
        "CenterIds[{position}]: " + MISSING.format("center"),
    ),
    _Check(
        "encounters",
        "SELECT s.*, NULL AS detail, 0 AS position FROM stage_encounters s"
        f" WHERE NOT {_exists('stage_centers', 'id', 's.center_id')}"
        f" AND NOT {_exists('centers', 'id', 's.center_id')}",
        "CenterId: " + MISSING.format("center"),
    ),
    _Check(
        "bookings",
        "SELECT s.*, NULL AS detail, 0 AS position FROM stage_bookings s"
        f" WHERE NOT {_exists('stage_encounters', 'id', 's.encounter_id')}"
        f" AND NOT {_exists('encounters', 'id', 's.encounter_id')}",
        "EncounterId: " + MISSING.format("encounter"),
    ),
    _Check(
        "bookings",
        "SELECT s.*, NULL AS detail, 0 AS position FROM stage_bookings s"
        f" WHERE NOT {_exists('stage_users', 'id', 's.user_id')}"
        f" AND NOT {_exists('users', 'id', 's.user_id')}",
        "UserId: " + MISSING.format("user"),
    ),
    _key_clash("email_key", "Email"),
    _key_clash("reference_key", "ReferenceId"),
)


def consistency_problems(connection: Connection) -> tuple[list[Problem], int]:
    """The first MAX_LISTED problems in document order, and how many there are in all."""
    found: list[Problem] = []
    total = 0
    for rank, check in enumerate(CHECKS):
        rows = connection.execute(
            text(
                f"SELECT q.*, count(*) OVER () AS total FROM ({check.sql}) q"
                f" ORDER BY q.pos, q.position LIMIT {MAX_LISTED}"
            )
        ).mappings()
        for number, row in enumerate(rows):
            total += row["total"] if number == 0 else 0
            detail = _guid(row["detail"]) if check.detail_is_id else row["detail"]
            line = check.message.format(detail=detail, position=row["position"])
            label = row["label"] or _canonical_label(check.kind, row)
            order = (ORDER.index(check.kind), row["pos"], rank, row["position"])
            found.append(Problem(order, f"{label}: {line}"))
    found.sort(key=lambda problem: problem.order)
    return found[:MAX_LISTED], total


def _canonical_label(kind: str, row: Any) -> str:
    if kind == "bookings":
        shown = f"EncounterId {_guid(row['encounter_id'])}, UserId {_guid(row['user_id'])}"
    else:
        shown = f"Id {_guid(row['id'])}"
    return f"{kind}[{row['pos']}] ({shown})"


def _guid(value: Any) -> str:
    # Raw SQL reads SQLite's GUIDs as the 32 hex digits it stores.
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) and value.isprintable() else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
