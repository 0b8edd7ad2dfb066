"""One-statement writes from an event loop on psycopg's asynchronous connections (a real PostgreSQL)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from shipyard.store.async_pg import AsyncStatements
from shipyard.store.db import MetadataStore
from tests.conftest import PostgresCluster

pytestmark = pytest.mark.postgres


def _table(url: str) -> MetadataStore:
    store = MetadataStore(url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE probe (k TEXT PRIMARY KEY, v INTEGER)")
    return store


def _rows(store: MetadataStore) -> list[tuple[str, int]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql("SELECT k, v FROM probe ORDER BY k")]


def test_statements_are_carried_out_and_failures_leave_nothing_written(postgres: PostgresCluster) -> None:
    url = postgres.create_database()
    store = _table(url)
    statements = AsyncStatements(url, size=2)
    insert = "INSERT INTO probe (k, v) VALUES (%s, %s)"

    async def scenario() -> list[bool]:
        done = [await statements.execute(insert, (f"k{i}", i)) for i in range(3)]
        done.append(await statements.execute(insert, ("k0", 99)))  # a duplicate key: refused, not written
        # The database drops every connection (a restart, say): the next statement is not carried out,
        # and the one after runs on a new connection.
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        done.append(await statements.execute(insert, ("k3", 3)))
        done.append(await statements.execute(insert, ("k4", 4)))
        # More statements at once than connections: the rest are left to the caller.
        many = await asyncio.gather(*(statements.execute(insert, (f"m{i}", i)) for i in range(5)))
        done.append(sum(many) == 2)
        await statements.close()
        return done

    assert asyncio.run(scenario()) == [True, True, True, False, False, True, True]
    store.engine.dispose()  # its pooled connections were dropped too
    rows = dict(_rows(store))
    assert {k: rows[k] for k in ("k0", "k1", "k2", "k4")} == {"k0": 0, "k1": 1, "k2": 2, "k4": 4}
    assert "k3" not in rows and sum(k.startswith("m") for k in rows) == 2
    store.dispose()


def test_only_postgresql_is_taken() -> None:
    with pytest.raises(ValueError, match="needs PostgreSQL, not sqlite"):
        AsyncStatements("sqlite:///x.db")
