"""One-statement PostgreSQL writes from the server's event loop, on psycopg's asynchronous connections.

A point logged by itself (MLflow's ``log_metric``) is one statement on PostgreSQL (see
:meth:`shipyard.store.db.RawTransaction.insert_both`); running it in a worker thread cost more CPU than the
statement's own round trip, because the hop to the thread and back is two wake-ups and a hand-over of the
interpreter. Here the statement is sent on the event loop and the loop serves other requests while the
database answers. Anything out of the ordinary — no connection to spare, a connection the database dropped,
an error from the statement — is left to the caller's usual path (a thread, the synchronous store), which
explains it as it always has: :meth:`AsyncStatements.execute` says whether the statement was carried out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

_log = logging.getLogger(__name__)


class AsyncStatements:
    """Autocommit connections to the database ``url`` (SQLAlchemy's form), at most ``size`` of them, on the
    event loop that uses them (another loop starts afresh: a connection cannot change loops)."""

    def __init__(self, url: str, size: int = 4) -> None:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise ValueError(f"AsyncStatements needs PostgreSQL, not {parsed.get_backend_name()}")
        self._conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._idle: list[Any] = []
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def execute(self, sql: str, params: Sequence[Any]) -> bool:
        """Run ``sql`` as a transaction of its own; False when it was not carried out (nothing written)."""
        import psycopg

        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._idle, self._open = loop, [], 0
        conn = self._idle.pop() if self._idle else None
        if conn is None:
            if self._open >= self._size:
                return False  # every connection is busy: the caller's thread pool has more
            self._open += 1
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            except psycopg.Error as exc:
                self._open -= 1
                _log.debug("no asynchronous connection to the store: %s", exc)
                return False
        try:
            await conn.execute(sql, params)
        except psycopg.Error as exc:
            # A failed statement in autocommit mode wrote nothing; a broken connection goes.
            if conn.closed or conn.broken:
                self._open -= 1
                await _close(conn)
            else:
                self._idle.append(conn)
            _log.debug("asynchronous statement not carried out: %s", exc)
            return False
        except BaseException:  # cancelled mid-statement (the client went away): its state is unknown
            self._open -= 1
            await _close(conn)
            raise
        self._idle.append(conn)
        return True

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open -= 1
            await _close(conn)


async def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection: nothing left to do
        await conn.close()
