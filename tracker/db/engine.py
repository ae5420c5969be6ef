"""Engine and session set-up for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take it over so that
        # BEGIN IMMEDIATE style locking behaves predictably under concurrent writers.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    # Liveness check on checkout, but only for connections that sat idle in the pool: a busy
    # pool (the webhook under load) skips a round trip per checkout, an idle one (after a
    # database restart, a quiet night) is pinged and silently replaced if dead.
    ping_idle = "pool_pre_ping" not in kwargs
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if ping_idle:
        event.listen(engine, "checkin", _note_idle)
        event.listen(engine, "checkout", _ping_if_idle)
    return engine


# A connection given back less than this long ago is trusted without a ping.
PING_AFTER_IDLE_SECONDS = 2.0


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.get("idle_since")
    if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        _ping(dbapi_connection)
    except Exception as error:
        # The pool discards this connection and checks out (or opens) another one.
        raise exc.DisconnectionError("pooled connection is dead") from error


def _ping(dbapi_connection: Any) -> None:
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # no BEGIN: one round trip
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    finally:
        cursor.close()
    dbapi_connection.autocommit = autocommit


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see make_engine).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
