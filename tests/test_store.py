"""The run store on SQLite and PostgreSQL: round trips, listing, migrations, errors and atomic writes."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from fusion_core.errors import StoreError
from fusion_core.store import Base, Store, alembic_config
from fusion_core.types import Candidate, FusionResult, GenParams, RunConfig, RunResult, Selection


def metered(prompt_tokens, completion_tokens, cost, latency_s):
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost": cost,
        "latency_s": latency_s,
    }


def make_run(
    prompt: str = "Write a haiku about databases",
    models: tuple[str, ...] = ("local/smollm2-135m", "openai/gpt-4o-mini"),
    created_at: str | None = None,
    fused: bool = True,
) -> RunResult:
    """A complete run: one failed candidate, a Best-of-N pick with a missing score, a fused answer."""
    config = RunConfig(
        prompt=prompt,
        models=list(models),
        n=2,
        mode="teachers",
        fusor_model="local/smollm2-135m",
        fusion={"style": "synthesize", "shuffle": True},
        judge_model="local/smollm2-135m",
        language="en",
    )
    candidates = [
        Candidate(0, models[0], "Rows in quiet rest", None, GenParams(0.8, None, 512, 0), **metered(10, 7, 0.001, 0.5)),
        Candidate(1, models[0], "", "timeout after 120 s", GenParams(0.8, None, 512, 1), **metered(0, 0, None, 120.0)),
        Candidate(2, models[-1], "Tables hum softly", None, GenParams(0.7, 0.9, 256, 2), **metered(12, 9, 0.002, 1.25)),
    ]
    bon = Selection(2, "judge", [0.5, None, 0.9], "most vivid", "local/smollm2-135m", **metered(30, 5, None, 2.0))
    fusion = None
    if fused:
        messages = [{"role": "system", "content": "Fuse these."}, {"role": "user", "content": "A: ...\nB: ..."}]
        fusion = FusionResult(
            "Quiet tables hum", "local/smollm2-135m", messages, [2, 0], "<think>..</think>Quiet tables hum",
            ["candidate 1 skipped"], **metered(40, 12, 0.003, 3.5),
        )  # fmt: skip
    timings = {"sampling": 120.1, "selection": 2.0, "fusion": 3.5, "total": 125.6}
    return RunResult(config, candidates, bon, None, fusion, None, timings, created_at=created_at)


@pytest.fixture
def store(store_url: str):
    with Store(store_url) as opened:
        yield opened


def test_round_trip_preserves_everything(store: Store) -> None:
    run = make_run()
    run_id = store.save_run(run)
    assert run.run_id == run_id and len(run_id) == 32
    assert run.created_at and run.created_at.endswith("+00:00")
    loaded = store.get_run(run_id)
    assert loaded == run
    assert loaded.to_dict() == run.to_dict()
    assert loaded.candidates[1].error == "timeout after 120 s"
    assert loaded.candidates[2].params == GenParams(0.7, 0.9, 256, 2)
    assert loaded.bon is not None and loaded.bon.scores == [0.5, None, 0.9]
    assert loaded.fusion is not None and loaded.fusion.order == [2, 0]
    assert loaded.fusion.messages[1]["content"] == "A: ...\nB: ..."


def test_run_without_selection_or_fusion(store: Store) -> None:
    run = make_run(fused=False)
    run.bon, run.bon_error, run.fusion_error = None, "judge failed", "fusor failed"
    loaded = store.get_run(store.save_run(run))
    assert loaded == run
    [summary] = store.list_runs()
    assert summary.bon_index is None and summary.has_fusion is False


def test_totals_and_summary(store: Store) -> None:
    run = make_run()
    store.save_run(run)
    with store.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT prompt_tokens, completion_tokens, cost, models FROM runs")).one()
    assert row.prompt_tokens == 10 + 12 + 30 + 40
    assert row.completion_tokens == 7 + 9 + 5 + 12
    assert row.cost == pytest.approx(0.006)
    assert row.models == "local/smollm2-135m,openai/gpt-4o-mini"
    [summary] = store.list_runs()
    assert (summary.run_id, summary.created_at, summary.language) == (run.run_id, run.created_at, "en")
    assert summary.models == ["local/smollm2-135m", "openai/gpt-4o-mini"]
    assert (summary.n_candidates, summary.n_failed, summary.bon_index, summary.has_fusion) == (3, 1, 2, True)
    assert summary.cost == pytest.approx(0.006)


def test_list_runs_order_search_and_model_filter(store: Store) -> None:
    old = store.save_run(make_run("Explain 100% of SQL", ("a/one",), "2024-01-01T09:00:00+00:00"))
    mid = store.save_run(make_run("A poem about cats", ("a/one", "b/two"), "2024-01-02T09:00:00+02:00"))
    new = store.save_run(make_run("Explain joins", ("b/two",), "2024-01-03T09:00:00"))
    assert [s.run_id for s in store.list_runs()] == [new, mid, old]
    assert store.list_runs()[1].created_at == "2024-01-02T07:00:00+00:00"
    assert [s.run_id for s in store.list_runs(limit=1, offset=1)] == [mid]
    assert [s.run_id for s in store.list_runs(search="explain")] == [new, old]
    assert [s.run_id for s in store.list_runs(search="100%")] == [old]
    assert store.list_runs(search="_") == []
    assert [s.run_id for s in store.list_runs(model="a/one")] == [mid, old]
    assert [s.run_id for s in store.list_runs(model="b/two", search="poem")] == [mid]
    assert [s.run_id for s in store.list_runs(model="local/smollm2-135m")] == [new, mid, old]  # the fusor
    assert store.list_runs(model="a/on") == []
    assert store.count_runs() == 3


def test_delete_cascades_to_candidates(store: Store) -> None:
    keep, gone = store.save_run(make_run()), store.save_run(make_run())
    assert store.delete_run(gone) is True
    assert store.delete_run(gone) is False
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT COUNT(*) FROM candidates WHERE run_id = :r"), {"r": gone}) == 0
        assert conn.scalar(sa.text("SELECT COUNT(*) FROM candidates WHERE run_id = :r"), {"r": keep}) == 3
    with pytest.raises(StoreError, match="no run with id"):
        store.get_run(gone)
    assert store.count_runs() == 1


def test_set_attribution(store: Store) -> None:
    run_id = store.save_run(make_run())
    attribution = {"method": "overlap", "spans": [{"start": 0, "end": 5, "candidate": 2, "score": 0.8}]}
    store.set_attribution(run_id, attribution)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.column("attribution", sa.JSON)).select_from(sa.table("runs"))).scalar()
    assert stored == attribution
    with pytest.raises(StoreError, match="no run with id nope"):
        store.set_attribution("nope", {})


def test_missing_run(store: Store) -> None:
    with pytest.raises(StoreError, match="no run with id 0123"):
        store.get_run("0123")


def test_error_text_is_redacted(store: Store) -> None:
    run = make_run()
    run.candidates[1].error = "401 invalid api key sk-abcdef1234567890 for openai"
    run.bon_error = "judge said: key sk-abcdef1234567890 rejected"
    run.fusion_error = "fusor: sk-abcdef1234567890"
    loaded = store.get_run(store.save_run(run))
    for text in (loaded.candidates[1].error, loaded.bon_error, loaded.fusion_error):
        assert text and "sk-abcdef1234567890" not in text and "[redacted]" in text
    assert run.candidates[1].error and "sk-abcdef1234567890" in run.candidates[1].error  # the caller's run is untouched


def test_duplicate_candidate_index_writes_nothing(store: Store) -> None:
    run = make_run()
    run.candidates[2].index = 0
    with pytest.raises(StoreError, match=r"cannot save run .*(UNIQUE|unique|duplicate)"):
        store.save_run(run)
    assert run.run_id is None and run.created_at is None
    assert _row_counts(store) == (0, 0)
    store.save_run(make_run())
    assert _row_counts(store) == (1, 3)


def test_unserializable_value_writes_nothing(store: Store) -> None:
    run = make_run()
    run.timings["total"] = object()  # type: ignore[assignment]
    with pytest.raises(StoreError, match="not JSON serializable") as info:
        store.save_run(run)
    assert "\n" not in str(info.value)
    assert _row_counts(store) == (0, 0)


def test_reopen_keeps_rows_and_does_not_migrate_again(store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    caplog.set_level(logging.INFO, logger="alembic")
    with Store(store_url) as first:
        run_id = first.save_run(make_run())
    first_open = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running upgrade")]
    assert first_open[0] == "Running upgrade  -> 0001, Runs and their candidates."
    assert first_open[-1].split(" -> ")[1].startswith(head)
    caplog.clear()
    with Store(store_url) as second:
        assert second.get_run(run_id).run_id == run_id
        with second.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
    assert [r for r in caplog.records if r.getMessage().startswith("Running upgrade")] == []


def test_concurrent_open_of_new_database(store_url: str) -> None:
    barrier, errors, stores = threading.Barrier(4), [], []

    def open_store() -> None:
        barrier.wait()
        try:
            stores.append(Store(store_url))
        except StoreError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for s in stores:
        s.save_run(make_run())
    assert stores[0].count_runs() == 4
    for s in stores:
        s.close()


def test_models_match_migration(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if d[0] != "remove_table"] == []


def test_sqlite_pragmas(sqlite_url: str) -> None:
    with Store(sqlite_url) as store:
        assert Path(sqlite_url.removeprefix("sqlite:///")).is_file()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_postgres_scheme_uses_psycopg(postgres_url: str) -> None:
    with Store(postgres_url.replace("postgresql://", "postgres://")) as store:
        assert store.engine.url.drivername == "postgresql+psycopg"
        assert store.count_runs() == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", "postgresql+psycopg://postgres@127.0.0.1:1/test"),
        ("postgresql://postgres:hunter2@127.0.0.1:1/test", "postgresql+psycopg://postgres:***@127.0.0.1:1/test"),
        ("sqlite:////proc/nope/x.db", "sqlite:////proc/nope/x.db"),
        ("nosuchdb://x", "nosuchdb://x"),
        ("not a url", "not a url"),
    ],
)
def test_bad_url_is_one_clear_line(url: str, shown: str) -> None:
    with pytest.raises(StoreError) as info:
        Store(url)
    message = str(info.value)
    assert message.startswith(f"cannot open database {shown}: ")
    assert message.endswith("check FUSION_DATABASE_URL")
    assert "\n" not in message and "hunter2" not in message


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the pages you are looking for\n" * 200)
    with pytest.raises(StoreError, match=r"cannot open database .*notes\.db: file is not a database"):
        Store(f"sqlite:///{path}")


def _row_counts(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        return tuple(conn.scalar(sa.text(f"SELECT COUNT(*) FROM {t}")) for t in ("runs", "candidates"))  # type: ignore[return-value]


def test_attribution_round_trip(store: Store) -> None:
    run = make_run()
    segments = [{"start": 0, "end": 6, "source": 2, "sources": [0, 2]}, {"start": 6, "end": 16, "source": None}]
    run.attribution = {"segments": segments, "shares": {"0": 0.0, "1": 0.0, "2": 0.4, "novel": 0.6}}
    loaded = store.get_run(store.save_run(run))
    assert loaded.attribution == run.attribution and loaded == run
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT attribution FROM runs")).scalar()
    assert (json.loads(stored) if isinstance(stored, str) else stored) == run.attribution
    store.set_attribution(run.run_id, {"segments": [], "shares": {"novel": 1.0}})
    assert store.get_run(run.run_id).attribution == {"segments": [], "shares": {"novel": 1.0}}
    unfused = store.get_run(store.save_run(make_run(fused=False)))
    assert unfused.attribution is None
