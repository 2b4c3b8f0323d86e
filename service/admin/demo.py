"""demo-data: a realistic synthetic network, identical for the same seed and start day.

Every value comes from one `random.Random(seed)`, drawn in a fixed order (centers, students,
staff, then day by day), so a seed and a start day name one dataset. Rows go to the database in
bulk (COPY on PostgreSQL, large executemany batches elsewhere), a day of encounters at a time.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from service.admin.bulk import insert_rows
from service.admin.merge import recount_held_off
from service.directory import Role
from service.models import Base

UNITS = 20
ONLINE_SHARE = 0.15
CANCELLED_SHARE = 0.05
NO_UNIT_SHARE = 0.03
EXTRA_CANCELLED_BOOKING = 0.08
CAPACITY = (4, 8)
DURATIONS = (45, 60, 60, 90)
# Classes starting in each hour: weekdays 08:00-20:xx, Saturday mornings; Sunday is closed.
OPENING_HOURS = {5: range(9, 14), 6: range(0)}
WEEKDAY_HOURS = range(8, 21)
PARALLEL_CLASSES = (7, 11)
# Active bookings per encounter: 60 % none, then one, two, three, or full to capacity.
BOOKING_SHARES = ((0.60, 0), (0.80, 1), (0.90, 2), (0.95, 3))
# ...when at least this many students could take the class; fewer students, fewer bookings.
FULL_DEMAND_POOL = 25

FIRST_NAMES = """
ana bruno carla diego elena fabio gabriela hugo ines joao julia kevin laura marco nadia oscar
paula rafael sara tiago ursula vitor wanda xavier yara zeca amelia bernardo camila duarte eva
filipe gloria henrique irene jorge lucia mateus nuno olivia pedro rita
""".split()  # noqa: SIM905 (a word list reads best as text)
LAST_NAMES = """
lima silva santos costa pereira oliveira rodrigues martins ferreira alves gomes ribeiro carvalho
lopes sousa garcia fernandez gonzalez lopez martinez sanchez perez romero torres ramirez flores
rivera moreno jimenez ruiz navarro castro ortiz rubio molina delgado
""".split()  # noqa: SIM905 (a word list reads best as text)
CITIES = [
    name.strip()
    for name in """
Lisbon, Porto, Coimbra, Braga, Faro, Madrid, Barcelona, Valencia, Seville, Bilbao, Malaga,
Zaragoza, São Paulo, Rio de Janeiro, Curitiba, Recife, Salvador, Fortaleza, Belo Horizonte,
Porto Alegre, Brasília, Buenos Aires, Córdoba, Rosario, Mendoza, Santiago, Valparaíso, Lima,
Arequipa, Bogotá, Medellín, Cali, Quito, Guayaquil, Montevideo, Asunción, La Paz, Mexico City,
Guadalajara, Monterrey, Puebla, Lyon, Milan, Turin, Munich, Hamburg, Warsaw, Krakow, Prague,
Vienna
""".split(",")  # noqa: SIM905
]
# A network opens downtown first: C-001 is Lisbon Downtown, C-051 Lisbon Old Town.
DISTRICTS = ["Downtown", "Old Town", "Riverside", "University", "Harbour"]
DISTRICTS += ["North", "South", "East", "West", "Station"]
TABLES = Base.metadata.tables
# Children before parents, so that emptying never trips a foreign key.
EMPTYING_ORDER = ("bookings", "staff_centers", "encounters", "users", "centers")


class DemoRefused(RuntimeError):
    """The database already holds data and --replace was not given."""


@dataclass(frozen=True)
class DemoOptions:
    """The shape of the network to build."""

    centers: int = 5
    students: int = 200
    staff: int = 4
    days: int = 14
    seed: int = 7
    start: date | None = None


def create_demo_network(engine: Engine, options: DemoOptions, *, replace: bool) -> Counter[str]:
    """Build the network in one transaction (emptying the tables first with `replace`)."""
    with engine.begin() as connection:
        if replace:
            _empty(connection)
        elif any(_holds_rows(connection, name) for name in EMPTYING_ORDER):
            raise DemoRefused(
                "the database already holds data; give --replace to delete all of it "
                "and build the demo network in its place"
            )
        counts = _DemoNetwork(options).write(connection)
        _analyze(connection)
    return counts


class _DemoNetwork:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.start = datetime.combine(options.start or datetime.now(UTC).date(), time(), UTC)
        self.rng = random.Random(options.seed)
        self.centers = [self.new_id() for _ in range(options.centers)]
        # Students who may book: by (center, unit) for classes in a center, by unit for online ones.
        self.local: defaultdict[tuple[int, int], list[uuid.UUID]] = defaultdict(list)
        self.online: defaultdict[int, list[uuid.UUID]] = defaultdict(list)

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def write(self, connection: Connection) -> Counter[str]:
        counts: Counter[str] = Counter()
        counts["centers"] = insert_rows(connection, TABLES["centers"], self.center_rows())
        students = self.student_rows()
        staff, assignments = self.staff_rows()
        counts["students"], counts["staff members"] = len(students), len(staff)
        counts["users"] = insert_rows(connection, TABLES["users"], itertools.chain(students, staff))
        counts["staff assignments"] = insert_rows(connection, TABLES["staff_centers"], assignments)
        # Each encounter is written with its count of active bookings, so the recount trigger is
        # held off: it would rewrite every booked encounter (a dead row each on PostgreSQL).
        with recount_held_off(connection):
            for day in range(self.options.days):
                encounters, bookings = self.day_rows(self.start + timedelta(days=day))
                counts["encounters"] += insert_rows(connection, TABLES["encounters"], encounters)
                counts["bookings"] += insert_rows(connection, TABLES["bookings"], bookings)
        return counts

    def center_rows(self) -> list[dict[str, Any]]:
        names = [f"{city} {district}" for district in DISTRICTS for city in CITIES]
        return [
            {
                "id": center_id,
                "reference_id": f"C-{number:03d}",
                "name": names[(number - 1) % len(names)]
                + (f" {(number - 1) // len(names) + 1}" if number > len(names) else ""),
            }
            for number, center_id in enumerate(self.centers, start=1)
        ]

    def student_rows(self) -> list[dict[str, Any]]:
        # Centers differ in size: some draw three times as many students as others.
        weights = [self.rng.uniform(0.5, 1.5) for _ in self.centers]
        homes = self.rng.choices(range(len(self.centers)), weights, k=self.options.students)
        homes[0] = 0  # ST-000001, the student the README's curl line uses, studies at C-001.
        rows = []
        for number, home in enumerate(homes, start=1):
            unit: int | None = self.rng.randint(1, UNITS)
            if number > 1 and self.rng.random() < NO_UNIT_SHARE:
                unit = None  # between courses: such a student sees no encounters
            student = self.user_row(f"ST-{number:06d}", f"{number}@example.com", Role.STUDENT)
            student.update(center_id=self.centers[home], current_unit=unit)
            rows.append(student)
            if unit is not None:
                self.local[home, unit].append(student["id"])
                self.online[unit].append(student["id"])
        return rows

    def staff_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows, assignments = [], []
        for number in range(1, self.options.staff + 1):
            member = self.user_row(
                f"SM-{number:04d}", f"{number}@staff.example.com", Role.STAFF_MEMBER
            )
            count = self.rng.randint(1, min(3, len(self.centers)))
            centers = self.rng.sample(range(len(self.centers)), count)
            if number == 1 and 0 not in centers:
                centers[0] = 0  # SM-0001 works at C-001, so they may see ST-000001's encounters.
            rows.append(member)
            assignments += [
                {"user_id": member["id"], "center_id": self.centers[c]} for c in centers
            ]
        return rows, assignments

    def user_row(self, reference: str, email_tail: str, role: Role) -> dict[str, Any]:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{email_tail}"
        return {
            "id": self.new_id(),
            "email": email,
            "email_key": email.lower(),
            "reference_id": reference,
            "reference_key": reference.lower(),
            "role": role.value,
            "center_id": None,
            "current_unit": None,
        }

    def day_rows(self, day: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rng, encounters, bookings = self.rng, [], []
        hours = OPENING_HOURS.get(day.weekday(), WEEKDAY_HOURS)
        for center, center_id in enumerate(self.centers):
            unit = rng.randrange(UNITS)  # units take turns, so every unit has classes every day
            for hour in hours:
                for _ in range(rng.randint(*PARALLEL_CLASSES)):
                    unit = unit % UNITS + 1
                    starts = day + timedelta(hours=hour, minutes=rng.choice((0, 0, 30)))
                    encounter = {
                        "id": self.new_id(),
                        "center_id": center_id,
                        "unit_number": unit,
                        "starts_at": starts,
                        "ends_at": starts + timedelta(minutes=rng.choice(DURATIONS)),
                        "is_online": rng.random() < ONLINE_SHARE,
                        "capacity": rng.randint(*CAPACITY),
                        "cancelled": rng.random() < CANCELLED_SHARE,
                    }
                    encounters.append(encounter)
                    booked = []
                    if not encounter["cancelled"]:
                        pool = (
                            self.online[unit]
                            if encounter["is_online"]
                            else self.local[center, unit]
                        )
                        booked = self.booking_rows(encounter, pool)
                    encounter["active_bookings"] = sum(not b["cancelled"] for b in booked)
                    bookings += booked
        return encounters, bookings

    def booking_rows(
        self, encounter: dict[str, Any], pool: list[uuid.UUID]
    ) -> list[dict[str, Any]]:
        if self.rng.random() * FULL_DEMAND_POOL > len(pool):
            return []  # few students could take this class
        draw = self.rng.random()
        wanted = next((n for share, n in BOOKING_SHARES if draw < share), encounter["capacity"])
        extra = self.rng.random() < EXTRA_CANCELLED_BOOKING  # someone who booked, then cancelled
        students = self.rng.sample(pool, min(wanted + extra, len(pool)))
        return [
            {"encounter_id": encounter["id"], "user_id": student, "cancelled": extra and i == 0}
            for i, student in enumerate(students)
        ]


def _holds_rows(connection: Connection, table: str) -> bool:
    return connection.scalar(select(TABLES[table].c[0]).limit(1)) is not None


def _empty(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"TRUNCATE {', '.join(EMPTYING_ORDER)}"))
        return
    for name in EMPTYING_ORDER:
        connection.execute(TABLES[name].delete())


def _analyze(connection: Connection) -> None:
    """Give the query planner statistics on the new rows, so the first requests use indexes."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"ANALYZE {', '.join(EMPTYING_ORDER)}"))
    elif connection.dialect.name == "sqlite":
        connection.execute(text("PRAGMA analysis_limit = 1000"))
        connection.execute(text("ANALYZE"))
