"""load-data: read an import document as a stream, check it whole, write it in one transaction.

Phases, all in one transaction (any failure, a kill included, leaves the database as it was):
1. parse and check: each record is read (service/admin/json_stream.py), checked against its
   schema, and staged in a temporary table (service/admin/staging.py); then the consistency
   checks run in SQL over the staged rows (service/admin/import_checks.py).
2. write: one statement a table merges the staged rows (service/admin/merge.py).
3. recount: the encounters whose bookings changed get their count of active bookings, once.
4. analyze: the planner's statistics for every table written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from marshmallow import ValidationError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from schemas.imports import ImportDocumentSchema
from service.admin import merge
from service.admin.fast_records import fast_record
from service.admin.import_checks import MAX_LISTED, ORDER, consistency_problems, record_label
from service.admin.json_stream import DocumentReader, NotJson
from service.admin.progress import Phase, Progress
from service.admin.records import SCHEMAS, staged_rows
from service.admin.staging import Stager
from service.problems import flatten_messages

LISTS = ORDER


class ImportRejected(ValueError):
    """Nothing was written; `errors` names the first bad records, `count` all problems."""

    def __init__(self, errors: Sequence[str], count: int | None = None) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)
        self.count = len(self.errors) if count is None else count

    def __str__(self) -> str:
        lines = [f"nothing was written; {self.count} problem{'' if self.count == 1 else 's'}:"]
        lines += [f"  {error}" for error in self.errors[:MAX_LISTED]]
        if self.count > MAX_LISTED:
            lines.append(f"  and {self.count - MAX_LISTED} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class LoadSummary:
    """How many records of each kind were inserted or updated."""

    centers: int
    users: int
    staff_assignments: int
    encounters: int
    bookings: int

    def __str__(self) -> str:
        return (
            f"loaded (inserted or updated) {self.centers:,} centers, {self.users:,} users "
            f"({self.staff_assignments:,} staff assignments), {self.encounters:,} encounters "
            f"and {self.bookings:,} bookings"
        )


def load_stream(
    engine: Engine, source: BinaryIO, progress: Progress, size: int | None = None
) -> LoadSummary:
    """Check the document of `source` whole, then upsert it in one transaction, or nothing."""
    try:
        with engine.begin() as connection:
            stager = Stager(connection)
            with progress.phase("parse and check") as phase:
                _stage(DocumentReader(source, LISTS), stager, phase, size)
                listed, count = consistency_problems(connection)
                if count:
                    raise ImportRejected([problem.line for problem in listed], count)
            summary = LoadSummary(
                stager.counts["centers"],
                stager.counts["users"],
                stager.counts["staff"],
                stager.counts["encounters"],
                stager.counts["bookings"],
            )
            _write(connection, summary, progress)
            stager.drop()
            return summary
    except DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise ImportRejected([f"the database failed, so everything was undone: {reason}"]) from None


class _Problems:
    """The schema stage's problems: the first MAX_LISTED in document order, and the count."""

    def __init__(self) -> None:
        self.count = 0
        self._kept: list[tuple[tuple[int, int, int], str]] = []

    def add(self, kind: str, index: int, lines: list[str]) -> None:
        order = ORDER.index(kind) if kind in ORDER else len(ORDER)
        for line in lines:
            self._kept.append(((order, index, self.count), line))
            self.count += 1
        if len(self._kept) > 10 * MAX_LISTED:  # memory stays bounded however bad the document
            self._kept = sorted(self._kept)[:MAX_LISTED]

    def rejection(self) -> ImportRejected:
        return ImportRejected([line for _order, line in sorted(self._kept)], self.count)


def _stage(reader: DocumentReader, stager: Stager, phase: Phase, size: int | None) -> None:
    if size:
        phase.fraction = lambda: reader.bytes_read / size
    problems = _Problems()
    try:
        for item in reader.items():
            if item.index < 0 or item.key not in SCHEMAS:
                _top_level(problems, item.key, item.index, item.value)
                continue
            phase.advance()
            try:
                record = fast_record(item.key, item.value) or SCHEMAS[item.key].load(item.value)
            except ValidationError as error:
                label = record_label(item.key, item.index, item.value)
                problems.add(item.key, item.index, [f"{label}: {line}" for line in _lines(error)])
                continue
            if not problems.count:  # once the document is refused, staging is wasted work
                for kind, row in staged_rows(item.key, item.index, item.value, record):
                    stager.add(kind, row)
    except NotJson as error:
        raise ImportRejected([str(error)]) from None
    if problems.count:
        raise problems.rejection()
    stager.finish()


def _top_level(problems: _Problems, key: str, index: int, value: Any) -> None:
    """A top-level key that is no list, or not one of the four (named once)."""
    if index > 0 or (index < 0 and key in SCHEMAS and value == []):
        return
    try:
        ImportDocumentSchema().load({key: value if index < 0 else []})
    except ValidationError as error:
        problems.add(key, -1, [f"{key}: {line}" for line in _lines(error, key)])


def _lines(error: ValidationError, key: str | None = None) -> list[str]:
    """marshmallow's nested messages as `Key[index]: message` lines."""
    messages = error.messages_dict.get(key, {}) if key else error.messages_dict
    return [f"{path}: {text}" if path else text for path, text in flatten_messages(messages)]


def _write(connection: Connection, summary: LoadSummary, progress: Progress) -> None:
    steps = [
        ("centers", summary.centers, merge.merge_centers),
        ("users", summary.users, merge.merge_users),
        ("encounters", summary.encounters, merge.merge_encounters),
        ("bookings", summary.bookings, merge.merge_bookings),
    ]
    written = [name for name, count, _merge in steps if count]
    total = sum(count for _name, count, _merge in steps)
    with progress.phase("write", total, "rows") as phase, merge.recount_held_off(connection):
        for _name, count, step in steps:
            if count:
                step(connection)
            phase.advance(count)
    if summary.bookings:
        with progress.phase("recount", unit="encounters") as phase:
            phase.advance(merge.recount(connection))
    tables = [
        table
        for name in written
        for table in {
            "users": ["users", "staff_centers"],
            "bookings": ["encounters", "bookings"],
        }.get(name, [name])
    ]
    tables = list(dict.fromkeys(tables))
    with progress.phase("analyze", len(tables), "tables") as phase:
        for table in tables:
            merge.analyze(connection, [table])
            phase.advance()
