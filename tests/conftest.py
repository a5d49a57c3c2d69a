"""Shared fixtures: a private data folder for every test, and fresh SQLite / PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_SERVER = os.environ.get("FUSION_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from the real data folder and database."""
    monkeypatch.setenv("FUSION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FUSION_DATABASE_URL", raising=False)
    monkeypatch.delenv("FUSION_ADMIN_PASSWORD", raising=False)  # pages are open unless a test sets one


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a folder that does not exist yet (the store creates it)."""
    return f"sqlite:///{tmp_path / 'db' / 'fusion.db'}"


def _admin_connection():
    """An autocommit connection to the server's `postgres` database, or `test` if that is refused."""
    import psycopg

    errors = []
    for db in ("postgres", "test"):
        try:
            return psycopg.connect(f"{PG_SERVER}/{db}", autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            errors.append(f"{db}: {str(exc).strip().splitlines()[0]}")
    pytest.fail(f"PostgreSQL at {PG_SERVER} is unreachable ({'; '.join(errors)}); start it or set FUSION_TEST_PG")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards. Fails (never skips) without a server."""
    name = f"fx_test_{uuid.uuid4().hex[:16]}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")
