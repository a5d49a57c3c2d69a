"""Short transactions that a busy database does not turn into errors.

Two things go wrong when many threads of one process (a Streamlit server's sessions, say) write
at once. The database may report a lock or a conflict: SQLite "database is locked" or "busy"
once its busy_timeout runs out, PostgreSQL a serialization failure or a deadlock. Those are
retried here with a short, jittered backoff. And SQLAlchemy's connection pool is not fair: a
thread that just returned a connection takes it straight back, so with more threads than
connections one of them can wait until the pool's 30 s timeout fails it. Threads therefore
enter through a first-come-first-served gate with fewer slots than the pool holds.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from .errors import StoreError
from .store import SQLITE_IMMEDIATE, error_reason

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRIES = 6
_PG_TRANSIENT = ("40001", "40P01")  # serialization failure, deadlock detected


class FairGate:
    """At most `slots` threads inside at once; the others enter in the order they arrived."""

    def __init__(self, slots: int) -> None:
        self._condition = threading.Condition()
        self._free, self._next_ticket, self._serving = slots, 0, 0

    def __enter__(self) -> None:
        with self._condition:
            ticket, self._next_ticket = self._next_ticket, self._next_ticket + 1
            self._condition.wait_for(lambda: ticket == self._serving and self._free > 0)
            self._serving, self._free = self._serving + 1, self._free - 1
            self._condition.notify_all()  # the next ticket may enter too if a slot is free

    def __exit__(self, *exc_info: object) -> None:
        with self._condition:
            self._free += 1
            self._condition.notify_all()


class Transactions:
    """Runs work in one transaction on an engine, retrying transient failures, with fair access to the pool."""

    def __init__(self, engine: sa.Engine, masked_url: str, max_connections: int = 8) -> None:
        self.engine, self.masked_url = engine, masked_url
        self._gate = FairGate(max_connections)

    def run(
        self, action: str, work: Callable[[sa.Connection], T], write: bool = False, integrity_errors: bool = False
    ) -> T:
        """`work(connection)` in one transaction (BEGIN IMMEDIATE on SQLite when `write`); StoreError on failure.

        With `integrity_errors`, an IntegrityError reaches the caller as it is (a duplicate it handles).
        """
        for attempt in range(RETRIES):
            try:
                with self._gate, self.engine.connect() as conn:
                    if write:
                        conn = conn.execution_options(**{SQLITE_IMMEDIATE: True})
                    with conn.begin():
                        return work(conn)
            except OperationalError as exc:
                if attempt + 1 == RETRIES or not transient(exc):
                    raise self._failed(action, exc) from exc
                log.info("database busy during %s, retrying (%s)", action, error_reason(exc))
                time.sleep(0.02 * 2**attempt * (1 + random.random()))
            except IntegrityError as exc:
                if integrity_errors:
                    raise
                raise self._failed(action, exc) from exc
            except SQLAlchemyError as exc:
                raise self._failed(action, exc) from exc
        raise AssertionError("unreachable")

    def _failed(self, action: str, exc: SQLAlchemyError) -> StoreError:
        return StoreError(f"cannot {action} in {self.masked_url}: {error_reason(exc)}")


def transient(exc: OperationalError) -> bool:
    """Locked or busy (SQLite), a serialization failure or a deadlock (PostgreSQL): worth another try."""
    if getattr(exc.orig, "sqlstate", None) in _PG_TRANSIENT:
        return True
    text = str(exc.orig).lower()
    return "locked" in text or "busy" in text
