"""The experiment tables: migration 0003 on SQLite and PostgreSQL, and claims that never hand out an item twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import fusion_core.experiment_schema  # noqa: F401 - registers the experiment tables on Base
from fusion_core.batch_input import BatchItem
from fusion_core.experiments import ExperimentStore
from fusion_core.store import Base, Store
from fusion_core.votes import VoteStore
from tests.test_migrations import SCRIPTS, migrate, tables_and_version
from tests.test_votes import make_run

EXPERIMENT_TABLES = {"experiments", "experiment_items"}


def items(n: int) -> list[BatchItem]:
    return [BatchItem(id=f"i{k}", prompt=f"prompt {k}", line=k + 1, language="en") for k in range(n)]


def test_0003_follows_0002_on_a_single_line() -> None:
    assert SCRIPTS.get_revision("0003").down_revision == "0002"
    assert len(SCRIPTS.get_heads()) == 1


def test_upgrade_from_0002_keeps_runs_and_votes(store_url: str) -> None:
    with Store(store_url) as store:
        run_id = store.save_run(make_run())
        votes = VoteStore(store)
        votes.build_queue([store.get_run(run_id)])
        assignment = votes.next_comparison("voter")
        votes.cast_vote(assignment.comparison_id, "voter", assignment.left_output, "left")
    migrate(store_url, "0002", down=True)
    assert not EXPERIMENT_TABLES & tables_and_version(store_url)[0]
    with Store(store_url) as store:
        assert store.get_run(run_id).run_id == run_id and VoteStore(store).count_votes() == 1
        experiments = ExperimentStore(store)
        experiment_id = experiments.create("e", {"n": 1}, items(2))
        assert experiments.get(experiment_id).counts["pending"] == 2
    tables, version = tables_and_version(store_url)
    assert EXPERIMENT_TABLES <= tables and version == [SCRIPTS.get_current_head()]


def test_experiment_models_match_migration(store_url: str) -> None:
    with Store(store_url) as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert EXPERIMENT_TABLES <= set(Base.metadata.tables)
        assert [d for d in diff if d[0] != "remove_table"] == []


def test_concurrent_claims_hand_out_every_item_once(store_url: str) -> None:
    with Store(store_url) as store:
        experiments = ExperimentStore(store)
        experiment_id = experiments.create("race", {}, items(40))
        claimed: dict[str, list[str]] = {}
        start = threading.Barrier(6)

        def worker(name: str) -> None:
            mine = claimed.setdefault(name, [])
            start.wait()
            while (item := experiments.claim(experiment_id, name)) is not None:
                mine.append(item.id)
                assert experiments.finish(experiment_id, item.id, name, {"id": item.id, "status": "done"})

        threads = [threading.Thread(target=worker, args=(f"w{k}",)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        every = [i for ids in claimed.values() for i in ids]
        assert sorted(every) == sorted(f"i{k}" for k in range(40))
        assert experiments.get(experiment_id).counts["done"] == 40
        assert [r["id"] for r in experiments.results(experiment_id)] == [f"i{k}" for k in range(40)]


def test_stale_claims_are_taken_over_and_fresh_ones_are_not(sqlite_url: str) -> None:
    with Store(sqlite_url) as store:
        now = datetime.now(UTC)
        past = ExperimentStore(store, clock=lambda: now - timedelta(seconds=30))
        experiments = ExperimentStore(store, clock=lambda: now)
        experiment_id = experiments.create("stale", {}, items(2))
        assert past.claim(experiment_id, "dead").id == "i0"
        assert experiments.claim(experiment_id, "alive").id == "i1"
        assert experiments.claim(experiment_id, "other", stale_after_s=600) is None  # both still fresh enough
        taken = experiments.claim(experiment_id, "other", stale_after_s=20)
        assert taken.id == "i0"
        assert not experiments.finish(experiment_id, "i0", "dead", {"status": "done"})
        assert experiments.finish(experiment_id, "i0", "other", {"status": "done"})
        assert experiments.release(experiment_id, "alive") == 1
        assert experiments.get(experiment_id).counts == {"pending": 1, "running": 0, "done": 1, "failed": 0}


def test_add_items_is_idempotent_and_delete_cascades(sqlite_url: str) -> None:
    with Store(sqlite_url) as store:
        experiments = ExperimentStore(store)
        experiment_id = experiments.create("grow", {}, items(2))
        assert experiments.add_items(experiment_id, items(3)) == 1
        assert experiments.add_items(experiment_id, items(3)) == 0
        assert experiments.get(experiment_id).n_items == 3
        assert [i["item_id"] for i in experiments.items(experiment_id)] == ["i0", "i1", "i2"]
        assert experiments.delete(experiment_id)
        with store.engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM experiment_items")) == 0
