"""Where a request reads: the replica while it keeps up with the primary, else the primary.

Bounded staleness (SPEC 8, docs/scaling.md): each worker looks at the replica at most once a
second, in the request that finds a look due (never a query per request), and keeps reading there
while its lag, plus the second until the next look, stays within DATABASE_REPLICA_MAX_LAG_SECONDS.
The lag is how long ago the primary last was where the replica's replay is now: zero when the
replica has replayed the primary's current WAL position (an idle primary is no lag), else the
smaller of two upper bounds, the age of the last replayed commit and the time since a look saw
the primary at or before the replica's position. A paused or slow replay, or a broken WAL stream
(a standby caught up with itself but not with the primary), all leave the replica behind the
primary's position; a replica that does not answer, or is no longer in recovery (promoted), is
not read from at all. Reads then go to the primary, or, with DATABASE_REPLICA_FALLBACK=none, are
refused (a 503). A primary that cannot be asked leaves reads on the replica: nothing newer is to
be had from it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from service.ops.metrics import READS, REPLICA_LAG

LOOK_INTERVAL_SECONDS = 1.0
log = logging.getLogger("encounters.replica")

_PRIMARY_POSITION = "SELECT pg_current_wal_lsn()::text"
_REPLICA_STATE = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
    " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8"
)


class ReplicaUnavailable(RuntimeError):
    """The replica is down or too far behind, and reads may not go to the primary: a 503."""


@dataclass(frozen=True)
class Staleness:
    """How far behind the replica may be (None: no bound), and whether reads fall back."""

    max_lag_seconds: int | None = 5
    fallback_to_primary: bool = True


class ReadRouter:
    """One worker's choice between the replica and the primary, looked at once a second."""

    def __init__(
        self,
        primary: Engine,
        replica: Engine | None,
        staleness: Staleness,
    ) -> None:
        self.primary = primary
        self.replica = replica
        # A look's statements run on their own (autocommit): no BEGIN and ROLLBACK around them.
        self._primary_looks = primary.execution_options(isolation_level="AUTOCOMMIT")
        self._replica_looks = replica and replica.execution_options(isolation_level="AUTOCOMMIT")
        self.staleness = staleness
        self.on_replica = True
        # Looks at a replica that is not PostgreSQL (a test's SQLite file) have nothing to ask.
        self._looks = replica is not None and replica.dialect.name == "postgresql"
        self._next_look = 0.0
        self._looking = threading.Lock()
        # (when, the primary's WAL position then), one a look: when the replica was last whole.
        self._primary_positions: deque[tuple[float, int]] = deque(maxlen=64)

    def reader(self) -> Engine:
        """The engine this request reads with; ReplicaUnavailable if none may."""
        if self.replica is None:
            return self.primary
        if self._looks and time.monotonic() >= self._next_look and self._looking.acquire(False):
            try:
                self._look()
            finally:
                self._looking.release()
        if self.on_replica:
            READS.labels("replica").inc()
            return self.replica
        if not self.staleness.fallback_to_primary:
            raise ReplicaUnavailable("the read replica is down or too far behind")
        READS.labels("primary").inc()
        return self.primary

    def _look(self) -> None:
        began = time.monotonic()
        lag, reason = self._lag()
        # A look takes at most a tenth of a worker's time, even on a replica host that drops
        # packets (each look would wait for the connect timeout, 3 s).
        took = time.monotonic() - began
        self._next_look = time.monotonic() + max(LOOK_INTERVAL_SECONDS, 10 * took)
        if lag is not None:
            REPLICA_LAG.set(lag)
        bound = self.staleness.max_lag_seconds
        # A lag of None is unknown (no bound, or no primary to ask), inf a replica not to read.
        usable = lag is None or (
            not math.isinf(lag) and (bound is None or lag + LOOK_INTERVAL_SECONDS <= bound)
        )
        if usable == self.on_replica:
            return
        self.on_replica = usable
        shown = None if lag is None or math.isinf(lag) else round(lag, 3)
        if usable:
            log.info("reads back on the replica", extra={"lag_seconds": shown})
            return
        destination = "primary" if self.staleness.fallback_to_primary else "none (503)"
        log.warning(
            "reads off the replica",
            extra={
                "reason": reason,
                "lag_seconds": shown,
                "max_lag_seconds": bound,
                "destination": destination,
            },
        )

    def _lag(self) -> tuple[float | None, str]:
        """The replica's lag in seconds (inf: not to be read from; None: unknown), and why."""
        assert self._replica_looks is not None
        measured = self.staleness.max_lag_seconds is not None
        # When the primary was at this position: everything committed before then is at or
        # before it.
        now = time.monotonic()
        primary_position = self._primary_position() if measured else None
        try:
            with self._replica_looks.connect() as connection:
                row = connection.exec_driver_sql(_REPLICA_STATE).one()
        except SQLAlchemyError as error:
            return math.inf, f"the replica does not answer ({type(error).__name__})"
        in_recovery, replayed, commit_age = row
        if not measured:
            return None, "no bound"
        if not in_recovery:
            return math.inf, "the replica is not in recovery (promoted)"
        if primary_position is None:
            return None, "the primary does not answer"
        replay = _position(replayed)
        self._primary_positions.append((now, primary_position))
        if replay >= primary_position:
            return 0.0, "caught up"
        bounds = [max(0.0, commit_age)] if commit_age is not None else []
        whole_since = [when for when, position in self._primary_positions if position <= replay]
        if whole_since:
            bounds.append(now - whole_since[-1])
        return (min(bounds) if bounds else math.inf), "behind the primary"

    def _primary_position(self) -> int | None:
        if self.primary.dialect.name != "postgresql":
            return None
        try:
            with self._primary_looks.connect() as connection:
                return _position(connection.exec_driver_sql(_PRIMARY_POSITION).scalar_one())
        except SQLAlchemyError:
            return None


def _position(lsn: str | None) -> int:
    """A WAL position (`16/B374D848`) as a number; -1 for none."""
    if lsn is None:
        return -1
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)
