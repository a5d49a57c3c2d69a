"""Migrations on SQLite and PostgreSQL: a database with runs at 0001 gains the vote tables without losing a row."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from fusion_core.store import Base, Store, _create_engine, _normalize, _to_row, alembic_config
from fusion_core.votes import VoteStore
from tests.test_votes import make_run

VOTE_TABLES = {"comparisons", "votes"}
SCRIPTS = ScriptDirectory.from_config(alembic_config())


def migrate(url: str, revision: str, down: bool = False) -> None:
    """Upgrade (or downgrade) the database to `revision` with the store's engine and Alembic configuration."""
    engine = _create_engine(_normalize(url))
    try:
        with engine.connect() as conn, conn.begin():
            (command.downgrade if down else command.upgrade)(alembic_config(conn), revision)
    finally:
        engine.dispose()


def tables_and_version(url: str) -> tuple[set[str], list[str]]:
    engine = _create_engine(_normalize(url))
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
            return set(sa.inspect(conn).get_table_names()), version
    finally:
        engine.dispose()


def insert_at_0001(url: str, runs: list) -> None:
    """Write runs with the columns the tables have at 0001 (reflected), as an older version of the app did."""
    engine = _create_engine(_normalize(url))
    try:
        with engine.connect() as conn, conn.begin():
            metadata = sa.MetaData()
            runs_table = sa.Table("runs", metadata, autoload_with=conn)
            candidates_table = sa.Table("candidates", metadata, autoload_with=conn)
            for run in runs:
                row = _to_row(run)
                conn.execute(sa.insert(runs_table).values({c.name: getattr(row, c.name) for c in runs_table.c}))
                for candidate in row.candidates:
                    values = {c.name: getattr(candidate, c.name) for c in candidates_table.c if c.name != "run_id"}
                    conn.execute(sa.insert(candidates_table).values(run_id=run.run_id, **values))
    finally:
        engine.dispose()


def test_0002_follows_0001_on_a_single_line() -> None:
    assert SCRIPTS.get_revision("0002").down_revision == "0001"
    assert len(SCRIPTS.get_heads()) == 1


def test_upgrade_from_0001_keeps_every_run(store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    migrate(store_url, "0001")
    assert tables_and_version(store_url) == ({"alembic_version", "runs", "candidates"}, ["0001"])
    runs = [make_run(f"prompt {i}") for i in range(3)]
    for i, run in enumerate(runs):
        run.run_id, run.created_at = f"{i:032x}", f"2024-06-0{i + 1}T12:00:00+00:00"
    runs[2].fusion, runs[2].fusion_error = None, "fusor failed"
    insert_at_0001(store_url, runs)

    caplog.set_level(logging.INFO, logger="alembic")
    with Store(store_url) as store:
        upgrades = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running upgrade")]
        assert upgrades[0] == "Running upgrade 0001 -> 0002, Blind A/B comparisons and the votes cast on them."
        assert not any("-> 0001" in message for message in upgrades)
        assert store.count_runs() == 3
        for run in runs:
            assert store.get_run(run.run_id) == run
        votes = VoteStore(store)
        assert votes.build_queue([store.get_run(run.run_id) for run in runs]) == 2  # the third has no fused answer
        assignment = votes.next_comparison("voter")
        assert votes.cast_vote(assignment.comparison_id, "voter", assignment.left_output, "left").duplicate is False
    tables, version = tables_and_version(store_url)
    assert VOTE_TABLES <= tables and version == [SCRIPTS.get_current_head()]


def test_downgrade_to_0001_and_back(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.save_run(make_run())
        votes = VoteStore(store)
        votes.build_queue([store.get_run(run_id)])
    migrate(store_url, "0001", down=True)
    tables, version = tables_and_version(store_url)
    assert not VOTE_TABLES & tables and version == ["0001"]
    with Store(store_url) as store:  # opening upgrades again; the runs survived both ways
        assert store.get_run(run_id).run_id == run_id
        votes = VoteStore(store)
        assert votes.queues() == []
        assert votes.build_queue([store.get_run(run_id)]) == 1
        assignment = votes.next_comparison("voter")
        votes.cast_vote(assignment.comparison_id, "voter", assignment.left_output, "tie")
        assert votes.count_votes() == 1


def test_vote_models_match_migration(store_url: str) -> None:
    with Store(store_url) as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert VOTE_TABLES <= set(Base.metadata.tables)
        assert [d for d in diff if d[0] != "remove_table"] == []
        foreign_keys = {fk["referred_table"]: fk["options"] for fk in sa.inspect(conn).get_foreign_keys("votes")}
        assert foreign_keys["comparisons"].get("ondelete") == "CASCADE"
        foreign_keys = {fk["referred_table"]: fk["options"] for fk in sa.inspect(conn).get_foreign_keys("comparisons")}
        assert foreign_keys["runs"].get("ondelete") == "SET NULL"
