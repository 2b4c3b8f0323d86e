"""The standard world as an import document: `python -m bench.world [--scale N] FILE`.

200 centers, 100,000 students, 2,000 staff, 134,829 encounters and 393,827 bookings (about
100 MB of JSON) at scale 1; every count times N at scale N. The same seed writes the same bytes.
The document is written a record at a time, so any scale fits in memory.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

CENTERS, STUDENTS, STAFF, ENCOUNTERS, BOOKINGS = 200, 100_000, 2_000, 134_829, 393_827
START = datetime(2030, 1, 7, tzinfo=UTC)
UNITS = 20


def write_world(out: TextIO, scale: float = 1.0, seed: int = 7, tag: str = "") -> dict[str, int]:
    """Write the world's document to `out`; return its counts per list.

    `tag` starts every reference id and email, so that the world can join other users.
    """
    rng = random.Random(seed)

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    counts = {
        "centers": max(1, round(CENTERS * scale)),
        "students": max(1, round(STUDENTS * scale)),
        "staff": max(1, round(STAFF * scale)),
        "encounters": max(1, round(ENCOUNTERS * scale)),
        "bookings": round(BOOKINGS * scale),
    }
    centers = [new_id() for _ in range(counts["centers"])]
    students = [new_id() for _ in range(counts["students"])]
    encounters = [new_id() for _ in range(counts["encounters"])]

    def center_records() -> Iterator[dict[str, Any]]:
        for number, center in enumerate(centers, 1):
            yield {"Id": center, "ReferenceId": f"C-{number:03}", "Name": f"Center {number}"}

    def user_records() -> Iterator[dict[str, Any]]:
        for number, student in enumerate(students, 1):
            yield {"Id": student, "ReferenceId": f"{tag}ST-{number:06}",
                   "Email": f"{tag}student.{number}@example.com", "Role": "Student",
                   "CenterId": centers[number % len(centers)],
                   "CurrentUnit": rng.randint(1, UNITS)}  # fmt: skip
        for number in range(1, counts["staff"] + 1):
            works = rng.sample(centers, min(len(centers), rng.randint(1, 3)))
            yield {"Id": new_id(), "ReferenceId": f"{tag}SM-{number:04}",
                   "Email": f"{tag}staff.{number}@staff.example.com", "Role": "StaffMember",
                   "CenterIds": works}  # fmt: skip

    def encounter_records() -> Iterator[dict[str, Any]]:
        for number, encounter in enumerate(encounters):
            starts = START + timedelta(minutes=30 * rng.randrange(56 * 24))
            yield {"Id": encounter, "CenterId": centers[number % len(centers)],
                   "UnitNumber": rng.randint(1, UNITS), "DateTime": starts.isoformat(),
                   "EndDate": (starts + timedelta(minutes=rng.choice((45, 60, 90)))).isoformat(),
                   "IsOnline": rng.random() < 0.15, "Capacity": rng.randint(4, 8),
                   "Cancelled": rng.random() < 0.05}  # fmt: skip

    def booking_records() -> Iterator[dict[str, Any]]:
        # The students of the encounter's center: student n studies at center n % centers.
        per, extra = divmod(counts["bookings"], len(encounters))
        for number, encounter in enumerate(encounters):
            center = number % len(centers)
            pool = range(center, len(students), len(centers))
            for index in rng.sample(pool, min(len(pool), per + (number < extra))):
                yield {"EncounterId": encounter, "UserId": students[index],
                       "Cancelled": rng.random() < 0.08}  # fmt: skip

    out.write("{")
    lists = [("centers", center_records()), ("users", user_records()),
             ("encounters", encounter_records()), ("bookings", booking_records())]  # fmt: skip
    written: dict[str, int] = {}
    for number, (name, records) in enumerate(lists):
        out.write(f'{"," if number else ""}\n"{name}": [')
        written[name] = 0
        for record in records:
            out.write(("," if written[name] else "") + "\n " + json.dumps(record))
            written[name] += 1
        out.write("\n]")
    out.write("\n}\n")
    return written


def main() -> None:
    """Write the world to FILE (`-`: standard output) and its counts to standard error."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    if arguments.file == "-":
        counts = write_world(sys.stdout, arguments.scale, arguments.seed)
    else:
        with open(arguments.file, "w", encoding="utf-8") as out:
            counts = write_world(out, arguments.scale, arguments.seed)
    print(", ".join(f"{count:,} {name}" for name, count in counts.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
